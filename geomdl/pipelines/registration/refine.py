"""ICP refinement: point-to-plane Gauss-Newton steps (Chen & Medioni 1992) in torch, with an optional
Tukey-biweight robust kernel (IRLS), run as a schedule of levels (voxel scale of the full-resolution
clouds, correspondence distance, kernel scale).

Measured (README, "registration"; ``python -m benchmarks registration_refine``): the default schedule,
plain then robust, lowers RRE and RTE against ``gt.log`` on each of the three real redkitchen pairs and
the median errors on the built-in pairs, at equal success rate, compared with one plain level.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from geomdl.ops._validation import check_int, check_positive_real, check_real
from geomdl.pipelines.registration.geometry import axis_angle_to_matrix, estimate_normals, make_pose, transform, voxel_downsample
from geomdl.pipelines.registration.neighbors import NearestNeighbor, knn_search

# Levels (voxel factor, distance factor, kernel factor): voxel side = f_v * voxel_size, correspondence
# distance d = f_d * icp_distance, Tukey scale = f_k * d (None: plain least squares). Default: a plain
# level on the registration grid (the widest basin: it pulls in coarse estimates 10-25 deg off), then a
# robust level on the same grid that ignores pairs off the tangent plane (rim of the overlap, outliers).
# Finer grids of the full-resolution clouds are possible (e.g. ``(0.5, 0.5, 0.5)``) but measured no better
# (README, "registration": refinement variants).
DEFAULT_SCHEDULE: tuple[tuple[float, float, float | None], ...] = ((1.0, 1.0, None), (1.0, 1.0, 0.5))


@dataclass
class ICPResult:
    """Outcome of :func:`icp_point_to_plane` (of the last level for :func:`multiscale_icp`)."""

    pose: torch.Tensor  # [4, 4] float64
    fitness: float  # fraction of source points with a target point within max_distance
    rmse: float  # RMS point-to-plane residual of those pairs (inf when there is none)
    iterations: int  # Gauss-Newton steps applied to the pose: 0 when none ran (iterations=0, or < 6 usable pairs)


def tukey_weights(residual: torch.Tensor, scale: float) -> torch.Tensor:
    """Tukey's biweight IRLS weights ``w(r) = (1 - (r / c)^2)^2`` for ``|r| < c``, else 0 (``c = scale``).

    The weight of the M-estimator ``rho(r) = c^2 / 6 (1 - (1 - (r/c)^2)^3)`` (``rho'(r) / r``): residuals
    beyond ``c`` are ignored, so wrong pairs at the rim of the overlap do not pull the pose.
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    return (1 - (residual / scale) ** 2).clamp_min(0) ** 2


def icp_point_to_plane(source: torch.Tensor, target: torch.Tensor, target_normals: torch.Tensor, init: torch.Tensor,
                       max_distance: float, iterations: int = 30, tolerance: float = 1e-5,
                       robust_scale: float | None = None, nn_index: NearestNeighbor | None = None) -> ICPResult:
    """Refine ``init`` so that ``source`` lies on the tangent planes of ``target``.

    Each step pairs every transformed source point ``s_i`` with its nearest target point ``q_i``
    (kept when ``|s_i - q_i| < max_distance``) and solves the (weighted) linearised least squares

    .. math:: \\min_{\\omega, v} \\sum_i w_i ((s_i - q_i) \\cdot n_i + ((s_i - c) \\times n_i) \\cdot \\omega + n_i \\cdot v)^2

    (``c`` the centroid of the kept ``s_i``) with ``w_i = 1``, or ``w_i`` = :func:`tukey_weights` of the current
    residual when ``robust_scale`` is given, then composes ``T <- S T`` with
    ``S x = exp(omega) (x - c) + c + v``. Stops when the update is below ``tolerance``.

    Args:
        source: ``[N, 3]``; target: ``[M, 3]``; target_normals: ``[M, 3]`` unit normals (sign-free).
        init: ``[4, 4]`` initial pose source -> target.
        max_distance: correspondence distance threshold.
        robust_scale: Tukey scale ``c`` (same units as the points); ``None`` = plain least squares.
        nn_index: a prebuilt :class:`NearestNeighbor` over ``target`` (built when not given).

    Returns:
        :class:`ICPResult` (pose, fitness, point-to-plane RMSE and the number of steps applied: 0 when no step
        ran, e.g. fewer than 6 source points within ``max_distance`` of the target at ``init``).
    """
    if not max_distance > 0:
        raise ValueError(f"max_distance must be positive, got {max_distance!r}")
    nn_index = nn_index or NearestNeighbor(target)
    pose = init.double().clone()
    src = source.double()
    done = 0  # steps applied (a step refused for too few pairs is not counted)
    for _ in range(iterations):
        moved = transform(src, pose)
        idx, dist = nn_index.query(moved)
        keep = dist < max_distance
        if int(keep.sum()) < 6:
            break
        s, q, n = moved[keep], target[idx[keep]].double(), target_normals[idx[keep]].double()
        # linearised about the pairs' centroid c (the step rotates about c): far from the origin a rotation
        # about the origin and a translation move the points almost alike, and the 6x6 system lost the
        # difference (ICP diverged from a good start at 1e5 units)
        c = s.mean(0)
        jac = torch.cat([torch.cross(s - c, n, dim=1), n], 1)  # [K, 6]
        res = ((s - q) * n).sum(1)
        w = tukey_weights(res, robust_scale) if robust_scale is not None else torch.ones_like(res)
        if int((w > 0).sum()) < 6:
            break
        lhs = jac.T @ (w[:, None] * jac) + 1e-9 * torch.eye(6, dtype=torch.float64)
        delta = -torch.linalg.solve(lhs, jac.T @ (w * res))
        rot = axis_angle_to_matrix(delta[:3])
        step = make_pose(rot, delta[3:] + c - rot @ c)  # x -> rot (x - c) + c + v
        pose = step @ pose
        done += 1
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


def multiscale_icp(source: torch.Tensor, target: torch.Tensor, init: torch.Tensor, voxel_size: float,
                   icp_distance: float | None = None, schedule=DEFAULT_SCHEDULE, iterations: int = 30,
                   max_points: int = 3000, generator: torch.Generator | None = None,
                   levels: dict | None = None, tolerance: float = 2e-3) -> ICPResult:
    """Point-to-plane ICP as a schedule of levels (plain or Tukey-robust, coarse to fine) on the
    full-resolution clouds.

    For each ``(f_v, f_d, f_k)`` of ``schedule`` both clouds are voxel-downsampled at ``f_v * voxel_size``
    (target normals by PCA of 16 neighbours), at most ``max_points`` random source points are kept, and
    :func:`icp_point_to_plane` runs with distance ``d = f_d * icp_distance``, Tukey scale ``f_k * d``
    (plain least squares when ``f_k`` is ``None``) and update tolerance ``tolerance * d``, starting
    from the previous level's pose. A plain first level has the widest basin; robust levels then drop
    pairs off the tangent planes; finer grids (``f_v < 1``) see detail the registration grid averages.

    Args:
        source: ``[N, 3]``; target: ``[M, 3]`` full-resolution clouds; init: ``[4, 4]`` source -> target.
        voxel_size: registration voxel size; icp_distance: base distance (default ``voxel_size``).
        schedule: sequence of ``(voxel factor, distance factor, kernel factor or None)``, coarse first.
        iterations: ICP steps per level (int >= 0); max_points: source points per level (int >= 1);
            tolerance: update tolerance as a fraction of each level's distance (>= 0; 0: all ``iterations``).
        levels: optional cache ``{voxel factor: (source_down, target_down, target_normals)}`` of levels
            already computed for these clouds and this ``voxel_size`` (e.g. the registration grid); filled
            with the levels computed here.

    Returns:
        :class:`ICPResult` of the last level (its fitness and RMSE at the last level's distance).

    Raises:
        ValueError: an empty or malformed ``schedule``, a non-positive scale, or a count/tolerance out of range
            (``max_points=0`` refined nothing and returned ``init`` without a word).
    """
    iterations, max_points = check_int(iterations, "iterations", 0), check_int(max_points, "max_points")
    tolerance = check_real(tolerance, "tolerance", minimum=0.0)
    if not schedule:
        raise ValueError("schedule must hold at least one (voxel factor, distance factor, kernel factor) level")
    for level in schedule:
        if len(level) != 3:
            raise ValueError(f"each schedule level must be (voxel factor, distance factor, kernel factor or None), "
                             f"got {level!r}")
        f_v, f_d, f_k = level
        if not (f_v > 0 and f_d > 0 and (f_k is None or f_k > 0)):
            raise ValueError(f"schedule factors must be positive, got {tuple(level)!r}")
    voxel_size = check_positive_real(voxel_size, "voxel_size")
    icp_distance = voxel_size if icp_distance is None else check_positive_real(icp_distance, "icp_distance")
    levels = {} if levels is None else levels
    pose = init.double()
    result = None
    for f_v, f_d, f_k in schedule:
        if f_v not in levels:
            src_l = voxel_downsample(source, f_v * voxel_size)[0]
            tgt_l = voxel_downsample(target, f_v * voxel_size)[0]
            if tgt_l.shape[0] < 3:  # the target's normals need 3 points
                raise ValueError(f"schedule (register: icp_schedule) level {(f_v, f_d, f_k)!r} is too coarse for the "
                                 f"target: voxels of {f_v * voxel_size:g} (voxel factor {f_v:g} x voxel_size "
                                 f"{voxel_size:g}) leave {tgt_l.shape[0]} target points (at least 3); use smaller voxel "
                                 "factors")
            nbr = knn_search(tgt_l, tgt_l, 16)[0]
            levels[f_v] = (src_l, tgt_l, estimate_normals(tgt_l, neighbors=nbr))
        src_l, tgt_l, normals_l = levels[f_v]
        if src_l.shape[0] > max_points:
            src_l = src_l[torch.randperm(src_l.shape[0], generator=generator)[:max_points]]
        dist = f_d * icp_distance
        result = icp_point_to_plane(src_l, tgt_l, normals_l, pose, dist, iterations, tolerance * dist,
                                    robust_scale=None if f_k is None else f_k * dist)
        pose = result.pose
    return result
