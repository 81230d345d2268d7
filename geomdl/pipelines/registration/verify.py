"""Deciding whether a registration result may be reported as a success.

A pose is accepted only when all of these hold (each failure adds a reason):

* **consensus** — at least ``min_inliers`` putative correspondences agree with the *final* pose
  (``|T s_i - t_i| < tau``);
* **non-degenerate consensus** — those inliers do not lie on one plane or line
  (:func:`inlier_spread` >= ``voxel``);
* **overlap** — ICP fitness (fraction of source points with a target point within the ICP distance)
  at least ``min_fitness``;
* **well-constrained alignment** — the overlap pins down all six degrees of freedom:
  :func:`constraint_strength` (the smallest eigenvalue of the normalised point-to-plane Gauss-Newton
  matrix over the overlapping points) at least ``min_constraint``. A floor slid over a floor, or two
  walls slid along their common edge, have a (near) zero eigenvalue, however many points agree;
* **stable refinement** — ICP did not move far from the robust estimate.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from geomdl.pipelines.registration.geometry import transform
from geomdl.pipelines.registration.neighbors import NearestNeighbor


def inlier_spread(points: torch.Tensor) -> float:
    """Standard deviation of ``points [K, 3]`` along their flattest direction (``sqrt`` of the smallest
    covariance eigenvalue). Inliers on one plane or line (spread ~ 0) do not pin down a 3-D pose:
    planar scenes give such spurious consensus sets (floor matched to floor)."""
    if points.shape[0] < 3:
        return 0.0
    centred = points - points.mean(0)
    return float(torch.linalg.eigvalsh(centred.T @ centred / points.shape[0])[0].clamp_min(0).sqrt())


def constraint_strength(points: torch.Tensor, normals: torch.Tensor) -> float:
    """How well point-to-plane pairs ``(points [K, 3], unit normals [K, 3])`` constrain a rigid motion.

    With ``c`` the centroid and ``L`` the RMS distance to it, the rows ``J_i = [((p_i - c) × n_i) / L, n_i]``
    give ``H = J^T J / K`` (6x6); returns its smallest eigenvalue (0 when a direction of motion leaves
    every residual unchanged to first order; about 1/6 for points spread evenly over all orientations).
    It is invariant to rigid motions and to the scale of the cloud.
    """
    if points.shape[0] < 6:
        return 0.0
    centred = points - points.mean(0)
    scale = centred.pow(2).sum(1).mean().sqrt().clamp_min(1e-12)
    jac = torch.cat([torch.linalg.cross(centred / scale, normals, dim=1), normals], 1)
    return float(torch.linalg.eigvalsh(jac.T @ jac / points.shape[0])[0].clamp_min(0))


@dataclass
class Verdict:
    success: bool
    reasons: list[str] = field(default_factory=list)
    num_inliers: int = 0  # correspondences consistent with the final pose
    fitness: float = 0.0
    constraint: float = 0.0
    spread: float = 0.0


def verify_pose(pose, coarse_pose, src_down, tgt_down, tgt_normals, corr_src, corr_tgt, tau: float, icp_distance: float,
                voxel_size: float, min_inliers: int = 15, min_fitness: float = 0.05, min_constraint: float = 0.01) -> Verdict:
    """Apply the checks of the module docstring.

    Args:
        pose: ``[4, 4]`` final (refined) pose; coarse_pose: ``[4, 4]`` robust estimate before ICP.
        src_down, tgt_down: ``[N, 3]``/``[M, 3]`` downsampled clouds; tgt_normals: ``[M, 3]``.
        corr_src, corr_tgt: ``[K, 3]`` putative correspondences (points).
        tau: inlier distance of correspondences; icp_distance: overlap distance; voxel_size: voxel side.
    """
    reasons = []
    pose = pose.double()
    if corr_src.shape[0]:
        inl = (transform(corr_src.double(), pose) - corr_tgt.double()).norm(dim=1) < tau
    else:
        inl = torch.zeros(0, dtype=torch.bool)
    num = int(inl.sum())
    spread = inlier_spread(corr_src[inl].double()) if num >= 3 else 0.0
    if num < min_inliers:
        reasons.append(f"{num} correspondences agree with the pose < min_inliers={min_inliers}")
    elif spread < voxel_size:
        reasons.append("inlier correspondences lie on one plane (degenerate)")
    moved = transform(src_down.double(), pose)
    idx, dist = NearestNeighbor(tgt_down).query(moved)
    close = dist < icp_distance
    fitness = float(close.double().mean()) if moved.shape[0] else 0.0
    if fitness < min_fitness:
        reasons.append(f"fitness {fitness:.3f} < min_fitness={min_fitness}")
    strength = constraint_strength(moved[close], tgt_normals[idx[close]].double())
    if strength < min_constraint:
        reasons.append(f"overlap does not constrain all 6 degrees of freedom (constraint {strength:.4f} < "
                       f"min_constraint={min_constraint}): sliding planes")
    drift = (moved - transform(src_down.double(), coarse_pose.double())).norm(dim=1).median()
    if float(drift) > 0.5 * float((src_down.max(0).values - src_down.min(0).values).norm()):
        reasons.append("ICP moved far from the robust estimate")
    return Verdict(not reasons, reasons, num, fitness, strength, spread)
