"""Point-cloud registration: ``register(source, target, method=..., voxel_size=...)`` and its stages."""
from geomdl.pipelines.registration.estimation import Estimate, ransac_open3d, spectral_estimate
from geomdl.pipelines.registration.geometry import (
    as_points,
    estimate_normals,
    random_pose,
    transform,
    voxel_downsample,
    weighted_kabsch,
)
from geomdl.pipelines.registration.io import read_gt_info, read_gt_log, read_point_cloud, write_pose
from geomdl.pipelines.registration.matching import mutual_nearest_neighbors
from geomdl.pipelines.registration.metrics import (
    correspondence_rmse,
    feature_match_recall,
    inlier_ratio,
    registration_metrics,
    rotation_error_deg,
    translation_error,
)
from geomdl.pipelines.registration.pipeline import METHODS, RegistrationResult, register
from geomdl.pipelines.registration.refine import ICPResult, icp_point_to_plane, multiscale_icp

__all__ = [
    "register", "RegistrationResult", "METHODS",
    "as_points", "voxel_downsample", "estimate_normals", "transform", "random_pose", "weighted_kabsch",
    "mutual_nearest_neighbors", "spectral_estimate", "ransac_open3d", "Estimate",
    "icp_point_to_plane", "multiscale_icp", "ICPResult",
    "rotation_error_deg", "translation_error", "correspondence_rmse", "inlier_ratio", "feature_match_recall",
    "registration_metrics",
    "read_point_cloud", "read_gt_log", "read_gt_info", "write_pose",
]
