"""``register(source, target)``: from two point clouds to a rigid pose, stage by stage.

Stages (each timed): voxel downsampling -> normals -> keypoints -> descriptors -> matching (mutual
nearest neighbours in descriptor space) -> robust estimation -> point-to-plane ICP. Methods:

=================  ==========================  ===========================  ======================
method             descriptor                  estimator                    refinement
=================  ==========================  ===========================  ======================
``"geomdl"``       PPF histogram (geomdl)      spectral / SC2 (geomdl)      ICP (geomdl, torch)
``"learned"``      learned LRF-PointNet        spectral / SC2 (geomdl)      ICP (geomdl, torch)
``"fpfh"``         FPFH (Open3D)               spectral / SC2 (geomdl)      ICP (geomdl, torch)
``"open3d"``       FPFH (Open3D)               RANSAC (Open3D)              ICP (Open3D)
=================  ==========================  ===========================  ======================

``"open3d"`` runs Open3D end to end (its own voxel grid and normals): it is the peer in benchmarks.
"""
from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass, field

import torch

from geomdl.pipelines.registration import descriptors as desc
from geomdl.pipelines.registration.estimation import spectral_estimate
from geomdl.ops._validation import check_int, check_positive_real
from geomdl.pipelines.registration.geometry import as_points, estimate_normals, transform, voxel_downsample
from geomdl.pipelines.registration.matching import mutual_nearest_neighbors
from geomdl.pipelines.registration.neighbors import knn_search
from geomdl.pipelines.registration.refine import DEFAULT_SCHEDULE, multiscale_icp
from geomdl.pipelines.registration.verify import inlier_spread, verify_pose  # noqa: F401 (re-export)

METHODS = ("geomdl", "learned", "fpfh", "open3d")
MIN_POINTS = 16  # points needed after downsampling for normals/descriptors to mean anything


@dataclass
class RegistrationResult:
    """Outcome of :func:`register`. ``pose`` maps source points into the target frame."""

    pose: torch.Tensor  # [4, 4] float64
    success: bool  # False when the evidence for the pose is too weak (see ``reason``)
    correspondences: torch.Tensor  # [K, 2] indices into (source_down, target_down) after matching
    inliers: torch.Tensor  # [K] bool: correspondences consistent with the final pose
    inlier_ratio: float  # inliers / correspondences
    num_inliers: int
    fitness: float  # fraction of downsampled source points within icp_distance of the target (final pose)
    rmse: float  # point-to-plane RMSE of those pairs
    constraint: float = 0.0  # smallest eigenvalue of the normalised point-to-plane matrix (verify.constraint_strength)
    log10_nfa: float = math.inf  # a-contrario significance of the consensus (verify.log10_nfa; < 0: significant)
    coarse_pose: torch.Tensor | None = None  # [4, 4] robust estimate before ICP
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, and "total"
    method: str = "geomdl"
    reason: str = ""
    source_down: torch.Tensor | None = None  # [N, 3] downsampled source
    target_down: torch.Tensor | None = None  # [M, 3] downsampled target

    def summary(self) -> str:
        """One line: method, success (or the failed check), inlier correspondences, fitness and time."""
        status = "success" if self.success else f"FAILED ({self.reason})"
        return (f"{self.method}: {status}; {self.num_inliers}/{self.correspondences.shape[0]} inlier correspondences "
                f"(ratio {self.inlier_ratio:.3f}), fitness {self.fitness:.3f}, {self.timings.get('total', 0):.3f} s")


class _Timer:
    def __init__(self):
        self.timings: dict[str, float] = {}
        self._t = time.perf_counter()
        self._start = self._t

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self._t
        self._t = now

    def finish(self) -> dict[str, float]:
        self.timings["total"] = time.perf_counter() - self._start
        return self.timings


def check_downsampled(points: torch.Tensor, count: int, voxel_size: float, name: str) -> None:
    """Raise ``ValueError`` when ``count`` occupied voxels are too few to register."""
    if count < MIN_POINTS:
        if points.shape[0] < MIN_POINTS:  # no voxel size helps
            raise ValueError(f"{name} has only {points.shape[0]} point(s); registration needs >= {MIN_POINTS}")
        raise ValueError(f"{name} has only {count} occupied voxel(s) at voxel_size={voxel_size:g} "
                         f"(need >= {MIN_POINTS}); use a smaller voxel_size (the cloud spans "
                         f"{float((points.max(0).values - points.min(0).values).max()):.3g} units)")


def _downsample(points: torch.Tensor, voxel_size: float, name: str) -> torch.Tensor:
    down, _ = voxel_downsample(points, voxel_size)
    check_downsampled(points, down.shape[0], voxel_size, name)
    return down


def grid_keypoints(points: torch.Tensor, spacing: float, max_keypoints: int, generator: torch.Generator) -> torch.Tensor:
    """One keypoint per occupied cell of a grid of side ``spacing``: the lowest-index point of the cell
    (then a random subset when more than ``max_keypoints``). ``[N, 3] -> [M]`` int64 indices, sorted.

    Keypoints of two overlapping scans lie within ``~spacing`` of each other, so they can match
    within the inlier threshold without describing every point.
    """
    _, cell = voxel_downsample(points, spacing)
    first = torch.full((int(cell.max()) + 1,), points.shape[0], dtype=torch.long)
    first = first.scatter_reduce(0, cell, torch.arange(points.shape[0]), reduce="amin")
    if first.numel() > max_keypoints:
        first = first[torch.randperm(first.numel(), generator=generator)[:max_keypoints]]
    return first.sort().values


def register(source, target, method: str = "geomdl", voxel_size: float = 0.05, *, keypoint_spacing: float | None = None,
             max_keypoints: int = 5000,
             descriptor_radius: float | None = None, inlier_threshold: float | None = None,
             icp_distance: float | None = None, icp_iterations: int = 30, icp_points: int = 3000,
             icp_schedule=DEFAULT_SCHEDULE, min_inliers: int = 15,
             min_fitness: float = 0.05, min_constraint: float = 0.01, max_nfa: float = 1.0,
             seed: int = 0) -> RegistrationResult:
    """Register ``source`` onto ``target``: find ``T`` with ``T(source) ≈ target`` where they overlap.

    Args:
        source, target: ``[N, 3]`` / ``[M, 3]`` point clouds (tensor or array, any float dtype).
        method: one of ``METHODS`` (see the module table).
        voxel_size: voxel side of the downsampling grid, in the clouds' units (the default 0.05 is 5 cm for
            clouds in metres, as 3DMatch; scale it with the clouds, e.g. 50 for millimetres); every other scale
            defaults to a multiple of it.
        keypoint_spacing: grid side for keypoint selection (default ``2 * voxel_size``: one keypoint per
            2x2x2 voxels, which keeps matching and description cheap without losing the overlap).
        max_keypoints: at most this many keypoints per cloud (random subset beyond).
        descriptor_radius: support radius of the hand-crafted descriptors (default ``5 * voxel_size``;
            the learned one uses the radius it was trained with, in voxels).
        inlier_threshold: correspondence inlier distance (default ``2 * voxel_size``).
        icp_distance: base ICP correspondence distance and the overlap distance of the fitness check
            (default ``voxel_size``); icp_iterations: ICP steps per level; icp_points: each ICP level uses
            a random subset of at most this many source points.
        icp_schedule: levels ``(voxel factor, distance factor, Tukey factor or None)`` of the point-to-plane
            ICP on the full-resolution clouds (see :func:`geomdl.pipelines.registration.refine.multiscale_icp`);
            default: plain, then Tukey-robust (scale ``icp_distance / 2``), both on the ``voxel_size`` grid.
        min_inliers, min_fitness, min_constraint, max_nfa: the result is flagged ``success=False`` unless
            ``min_inliers`` correspondences agree with the final pose (and do not lie on one plane), so
            many agreeing is unlikely by chance (a-contrario number of false alarms < ``max_nfa``), the
            fitness reaches ``min_fitness`` and the overlap constrains all six degrees of freedom
            (see :mod:`geomdl.pipelines.registration.verify`); ``reason`` says which check failed.
        seed: seed of the keypoint subset, of the ICP point subsets and of Open3D's RANSAC.

    ``method="open3d"`` runs Open3D end to end: it ignores ``keypoint_spacing``, ``max_keypoints``,
    ``icp_points`` and ``icp_schedule`` (one point-to-plane ICP at ``icp_distance``). Its ``correspondences`` are
    the mutual FPFH matches its RANSAC samples from: putative descriptor matches, as for the other methods, so
    its inlier ratio (and the evaluation's) compares with theirs.

    Returns:
        :class:`RegistrationResult` (pose, correspondences, inlier ratio, fitness, success, timings).

    Raises:
        ValueError: empty clouds, NaN/inf coordinates, wrong shapes, an unknown method, fewer than
            16 occupied voxels at ``voxel_size``, or a scale (``voxel_size``, ``keypoint_spacing``,
            ``descriptor_radius``, ``inlier_threshold``, ``icp_distance``) that is not a positive finite
            number (``None`` picks the default; ``0`` is an error) or a count out of range.
            TypeError: non-numeric input, a non-int ``seed``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    voxel_size = check_positive_real(voxel_size, "voxel_size")
    max_keypoints, icp_points = check_int(max_keypoints, "max_keypoints", MIN_POINTS), check_int(icp_points, "icp_points")
    icp_iterations, min_inliers = check_int(icp_iterations, "icp_iterations", 0), check_int(min_inliers, "min_inliers", 0)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int, got {seed!r}")
    if not -(2 ** 63) <= seed < 2 ** 63:
        raise ValueError(f"seed must fit in 64 bits (a torch seed), got {seed}")
    # None means "the default multiple of voxel_size"; 0, negative, NaN or inf are errors (not the default)
    radius, tau, icp_dist, spacing = (
        5.0 * voxel_size if descriptor_radius is None else check_positive_real(descriptor_radius, "descriptor_radius"),
        2.0 * voxel_size if inlier_threshold is None else check_positive_real(inlier_threshold, "inlier_threshold"),
        1.0 * voxel_size if icp_distance is None else check_positive_real(icp_distance, "icp_distance"),
        2.0 * voxel_size if keypoint_spacing is None else check_positive_real(keypoint_spacing, "keypoint_spacing"))
    src = as_points(source, "source")
    tgt = as_points(target, "target")
    checks = {"tau": tau, "icp_distance": icp_dist, "voxel_size": voxel_size, "min_inliers": min_inliers,
              "min_fitness": min_fitness, "min_constraint": min_constraint, "max_nfa": max_nfa}
    if method == "open3d":
        from geomdl.pipelines.registration.open3d_pipeline import register_open3d

        out = register_open3d(src, tgt, voxel_size, radius, tau, icp_dist, icp_iterations, int(seed), check_downsampled, _Timer())
        return _finish(method=method, checks=checks, **out)

    timer = _Timer()
    src_down, tgt_down = _downsample(src, voxel_size, "source"), _downsample(tgt, voxel_size, "target")
    timer.lap("voxel")
    src_nbr = knn_search(src_down, src_down, 16)[0]
    tgt_nbr = knn_search(tgt_down, tgt_down, 16)[0]
    src_normals = desc.orient_normals(src_down, estimate_normals(src_down, neighbors=src_nbr), src_nbr)
    tgt_normals = desc.orient_normals(tgt_down, estimate_normals(tgt_down, neighbors=tgt_nbr), tgt_nbr)
    timer.lap("normals")
    gen = torch.Generator().manual_seed(int(seed))
    src_key = grid_keypoints(src_down, spacing, max_keypoints, gen)
    tgt_key = grid_keypoints(tgt_down, spacing, max_keypoints, gen)
    timer.lap("keypoints")
    if method == "geomdl":
        d_src = desc.ppf_histogram(src_down, src_normals, src_key, radius, oriented=True)
        d_tgt = desc.ppf_histogram(tgt_down, tgt_normals, tgt_key, radius, oriented=True)
    elif method == "learned":
        from geomdl.pipelines.registration.learned import default_descriptor

        net = default_descriptor()
        d_src = net.describe(src_down, src_normals, src_key, voxel_size)
        d_tgt = net.describe(tgt_down, tgt_normals, tgt_key, voxel_size)
    else:
        d_src = desc.fpfh_open3d(src_down, src_normals, radius)[src_key]
        d_tgt = desc.fpfh_open3d(tgt_down, tgt_normals, radius)[tgt_key]
    timer.lap("descriptors")
    pairs = mutual_nearest_neighbors(d_src, d_tgt, min_matches=3 * min_inliers)
    corr = torch.stack([src_key[pairs[:, 0]], tgt_key[pairs[:, 1]]], 1)
    timer.lap("matching")
    est = spectral_estimate(src_down[corr[:, 0]], tgt_down[corr[:, 1]], tau)
    timer.lap("estimation")
    icp = multiscale_icp(src, tgt, est.pose, voxel_size, icp_dist, schedule=icp_schedule, iterations=icp_iterations,
                         max_points=icp_points, generator=gen, levels={1.0: (src_down, tgt_down, tgt_normals)})
    timer.lap("refinement")
    return _finish(method=method, checks=checks, pose=icp.pose, coarse_pose=est.pose, corr=corr, rmse=icp.rmse,
                   src_down=src_down, tgt_down=tgt_down, tgt_normals=tgt_normals, timer=timer)


def _finish(method, checks, pose, coarse_pose, corr, rmse, src_down, tgt_down, tgt_normals, timer) -> RegistrationResult:
    verdict = verify_pose(pose, coarse_pose, src_down, tgt_down, tgt_normals, src_down[corr[:, 0]], tgt_down[corr[:, 1]],
                          checks["tau"], checks["icp_distance"], checks["voxel_size"], checks["min_inliers"],
                          checks["min_fitness"], checks["min_constraint"], checks["max_nfa"])
    inliers = (transform(src_down[corr[:, 0]], pose) - tgt_down[corr[:, 1]]).norm(dim=1) < checks["tau"]
    timer.lap("verification")
    return RegistrationResult(pose=pose, success=verdict.success, correspondences=corr, inliers=inliers,
                              inlier_ratio=verdict.num_inliers / max(corr.shape[0], 1), num_inliers=verdict.num_inliers,
                              fitness=verdict.fitness, rmse=rmse, constraint=verdict.constraint,
                              log10_nfa=verdict.log10_nfa, coarse_pose=coarse_pose, timings=timer.finish(),
                              method=method, reason="; ".join(verdict.reasons), source_down=src_down, target_down=tgt_down)
