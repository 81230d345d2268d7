"""Point-to-plane ICP refinement (Chen & Medioni 1992), linearised Gauss-Newton steps in torch."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from geomdl.pipelines.registration.geometry import axis_angle_to_matrix, make_pose, transform
from geomdl.pipelines.registration.neighbors import NearestNeighbor


@dataclass
class ICPResult:
    pose: torch.Tensor  # [4, 4] float64
    fitness: float  # fraction of source points with a target point within max_distance
    rmse: float  # RMS point-to-plane residual of those pairs
    iterations: int


def icp_point_to_plane(source: torch.Tensor, target: torch.Tensor, target_normals: torch.Tensor, init: torch.Tensor,
                       max_distance: float, iterations: int = 30, tolerance: float = 1e-5) -> ICPResult:
    """Refine ``init`` so that ``source`` lies on the tangent planes of ``target``.

    Each step pairs every transformed source point ``s_i`` with its nearest target point ``q_i``
    (kept when ``|s_i - q_i| < max_distance``) and solves the linearised least squares

    .. math:: \\min_{\\omega, v} \\sum_i ((s_i - q_i) \\cdot n_i + (s_i \\times n_i) \\cdot \\omega + n_i \\cdot v)^2

    then composes ``T <- [exp(omega) | v] T``. Stops when the update is below ``tolerance``.

    Args:
        source: ``[N, 3]``; target: ``[M, 3]``; target_normals: ``[M, 3]`` unit normals (sign-free).
        init: ``[4, 4]`` initial pose source -> target.
        max_distance: correspondence distance threshold.

    Returns:
        :class:`ICPResult` (pose, fitness, point-to-plane RMSE and iterations run).
    """
    nn_index = NearestNeighbor(target)
    pose = init.double().clone()
    src = source.double()
    done = 0
    for done in range(1, iterations + 1):
        moved = transform(src, pose)
        idx, dist = nn_index.query(moved)
        keep = dist < max_distance
        if int(keep.sum()) < 6:
            break
        s, q, n = moved[keep], target[idx[keep]].double(), target_normals[idx[keep]].double()
        jac = torch.cat([torch.cross(s, n, dim=1), n], 1)  # [K, 6]
        res = ((s - q) * n).sum(1)
        lhs = jac.T @ jac + 1e-9 * torch.eye(6, dtype=torch.float64)
        delta = -torch.linalg.solve(lhs, jac.T @ res)
        step = make_pose(axis_angle_to_matrix(delta[:3]), delta[3:])
        pose = step @ pose
        if float(delta.norm()) < tolerance:
            break
    moved = transform(src, pose)
    idx, dist = nn_index.query(moved)
    keep = dist < max_distance
    fitness = float(keep.double().mean()) if src.shape[0] else 0.0
    if bool(keep.any()):
        res = ((moved[keep] - target[idx[keep]].double()) * target_normals[idx[keep]].double()).sum(1)
        rmse = float(res.pow(2).mean().sqrt())
    else:
        rmse = float("inf")
    return ICPResult(pose, fitness, rmse, done)
