"""APEN: approximately piecewise-E(3)-equivariant point networks (methods.md section 4)."""
from geomdl.nn.apen.backbone import FrameAveragedPointNet
from geomdl.nn.apen.frames import frame_degeneracy, pca_frames
from geomdl.nn.apen.losses import part_centroid_targets, vote_loss
from geomdl.nn.apen.measure import (
    assignment_uncertainty,
    piecewise_equivariance_error,
    random_piecewise_motion,
    refinement_violation,
)
from geomdl.nn.apen.model import APEN, GlobalFrameAveragedNet
from geomdl.nn.apen.partition import cluster_votes, fps_partition

__all__ = ["APEN", "GlobalFrameAveragedNet", "FrameAveragedPointNet", "pca_frames", "frame_degeneracy",
           "fps_partition", "cluster_votes", "vote_loss", "part_centroid_targets", "random_piecewise_motion",
           "refinement_violation", "assignment_uncertainty", "piecewise_equivariance_error"]
