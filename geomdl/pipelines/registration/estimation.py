"""Robust pose estimation from putative correspondences.

``spectral_estimate`` is geomdl's estimator (second-order spatial compatibility, after SC2-PCR,
Chen et al. CVPR 2022): rigid motions preserve distances, so two correct correspondences ``i, j``
satisfy ``| |s_i - s_j| - |t_i - t_j| | < tau``. With the hard compatibility graph
``C_ij = [| |s_i - s_j| - |t_i - t_j| | < tau]`` the second-order score ``SC2_ij = C_ij (C C)_ij``
counts the correspondences compatible with both; inliers form a dense clique. Seeds are picked
by the leading eigenvector of ``C`` (spectral matching, Leordeanu & Hebert 2005) with non-maximum
suppression; each seed grows a consensus set of its ``k`` most SC2-compatible correspondences; every
set gives one weighted-Kabsch hypothesis; all hypotheses are scored at once in torch by a truncated
residual score over all correspondences; the best one is refined on its inliers.

``ransac_open3d`` is Open3D's feature-matching RANSAC (the peer).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from geomdl.ops._validation import check_int, check_positive_real
from geomdl.pipelines.registration.geometry import transform, weighted_kabsch


@dataclass
class Estimate:
    """A pose with the correspondences that support it."""

    pose: torch.Tensor  # [4, 4] float64, source -> target
    inliers: torch.Tensor  # [K] bool over the input correspondences
    score: float  # truncated inlier score of the pose
    correspondences: torch.Tensor | None = None  # [K, 2] (source, target) indices when the estimator made its own


def leading_eigenvector(matrix: torch.Tensor, iterations: int = 20) -> torch.Tensor:
    """Power iteration for the leading eigenvector of a symmetric non-negative ``[N, N]`` matrix."""
    v = matrix.new_ones(matrix.shape[0])
    for _ in range(iterations):
        v = matrix @ v
        v = v / v.norm().clamp_min(1e-12)
    return v


def score_hypotheses(poses: torch.Tensor, src: torch.Tensor, tgt: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Truncated-quadratic score ``sum_i max(0, 1 - r_i^2 / tau^2)`` of every pose, ``r_i = |R s_i + t - t_i|``.

    ``poses [H, 4, 4]``, ``src/tgt [K, 3]`` -> ``(score [H], residual [H, K])``.
    """
    res = (transform(src, poses) - tgt).norm(dim=-1)
    return (1 - (res / tau) ** 2).clamp_min(0).sum(1), res


def spectral_estimate(src: torch.Tensor, tgt: torch.Tensor, tau: float, num_seeds: int = 100,
                      consensus: int = 30, max_correspondences: int = 2500, refine_steps: int = 3) -> Estimate:
    """geomdl's robust rigid estimator (see the module docstring).

    Args:
        src, tgt: ``[K, 3]`` putative correspondences (source point ``i`` matches target point ``i``),
            best first (only the first ``max_correspondences`` are used).
        tau: inlier threshold (same units as the points; e.g. 1.5-2 voxels).
        num_seeds: seeds (hypotheses) per call (int >= 1); consensus: size of each seed's consensus set (int
            >= 3: a rigid fit needs 3 points); max_correspondences: int >= 3.
        refine_steps: re-fits of the best pose on its inliers (int >= 0).

    Returns:
        :class:`Estimate`; with fewer than 3 correspondences the pose is the identity and no inlier is set.

    Raises:
        ValueError: ``src``/``tgt`` not both ``[K, 3]`` with the same ``K``, ``tau`` not a positive
            finite number, or a count (``num_seeds``, ``consensus``, ``max_correspondences``, ``refine_steps``)
            that is not an int in its range.
    """
    if not (isinstance(src, torch.Tensor) and isinstance(tgt, torch.Tensor)) or src.dim() != 2 \
            or src.shape[-1] != 3 or src.shape != tgt.shape:
        raise ValueError(f"src and tgt must be [K, 3] tensors of the same shape, got "
                         f"{tuple(getattr(src, 'shape', ()))} and {tuple(getattr(tgt, 'shape', ()))}")
    if not (bool(torch.isfinite(src).all()) and bool(torch.isfinite(tgt).all())):
        raise ValueError("src and tgt must not contain NaN or infinite coordinates")
    tau = check_positive_real(tau, "tau")
    num_seeds, refine_steps = check_int(num_seeds, "num_seeds"), check_int(refine_steps, "refine_steps", 0)
    consensus = check_int(consensus, "consensus", 3)
    max_correspondences = check_int(max_correspondences, "max_correspondences", 3)
    k = src.shape[0]
    if k < 3:
        return Estimate(torch.eye(4, dtype=torch.float64), torch.zeros(k, dtype=torch.bool), 0.0)
    src_all, tgt_all = src.double(), tgt.double()
    use = min(k, max_correspondences)
    # lengths in float32 from points relative to their mean: cdist's expansion |a|^2 - 2 a.b + |b|^2 would
    # cancel far from the origin (at 1e4 units every length was off by more than a small tau)
    s = (src_all[:use] - src_all[:use].mean(0)).float()
    t = (tgt_all[:use] - tgt_all[:use].mean(0)).float()
    length_gap = (torch.cdist(s, s) - torch.cdist(t, t)).abs()
    compat = (length_gap < tau).float()
    compat.fill_diagonal_(0)
    lead = leading_eigenvector(compat)
    seeds = _nms_seeds(lead, compat, num_seeds)
    rows = compat[seeds]  # [H, K]
    sc2 = rows * (rows @ compat)  # second-order compatibility of each seed with every correspondence
    sc2[torch.arange(seeds.numel()), seeds] = sc2.max() + 1  # the seed belongs to its own set
    m = min(consensus, use)
    weight, members = sc2.topk(m, dim=1)
    weight = (weight > 0).double() * (1 + lead[members].double())
    poses = weighted_kabsch(src_all[:use][members], tgt_all[:use][members], weight)
    scores, _ = score_hypotheses(poses, src_all[:use], tgt_all[:use], tau)
    best = poses[int(scores.argmax())]
    for _ in range(refine_steps):
        score, res = score_hypotheses(best[None], src_all, tgt_all, tau)
        inl = res[0] < tau
        if int(inl.sum()) < 3:
            break
        w = (1 - (res[0][inl] / tau) ** 2).clamp_min(1e-3)
        best = weighted_kabsch(src_all[inl], tgt_all[inl], w)
    score, res = score_hypotheses(best[None], src_all, tgt_all, tau)
    return Estimate(best, res[0] < tau, float(score[0]))


def _nms_seeds(lead: torch.Tensor, compat: torch.Tensor, num_seeds: int) -> torch.Tensor:
    """Seeds with a locally maximal spectral score among their compatible correspondences, best first."""
    neighbour_best = (compat * lead[None]).max(1).values
    is_peak = lead >= neighbour_best
    order = torch.argsort(lead, descending=True)
    peaks = order[is_peak[order]]
    if peaks.numel() < num_seeds:  # too few local maxima: fill with the best remaining scores
        rest = order[~is_peak[order]]
        peaks = torch.cat([peaks, rest[: num_seeds - peaks.numel()]])
    return peaks[:num_seeds]


def open3d_seed(seed: int) -> int:
    """``seed`` folded into the C ``int`` range Open3D's ``utility.random.seed`` takes (a 64-bit seed was a
    pybind ``TypeError``); seeds already in that range are unchanged."""
    return (int(seed) + 2**31) % 2**32 - 2**31


def ransac_open3d(src_points, tgt_points, desc_src, desc_tgt, tau: float, max_iterations: int = 100000,
                  confidence: float = 0.999, seed: int | None = 0) -> Estimate:
    """Open3D ``registration_ransac_based_on_feature_matching`` (mutual filter, 3-point samples, edge-
    length 0.9 and distance checkers): the peer estimator. ``*_points [N, 3]``, ``desc_* [N, D]``.

    Run as the two Open3D calls that function makes (``correspondences_from_features`` with the mutual filter,
    then ``registration_ransac_based_on_correspondence``; the same pose for the same seed on a quiet machine: Open3D's
    RANSAC runs on several threads and is not repeatable under load, so the test compares within tolerance), so that the
    putative matches RANSAC sampled from are kept without matching twice.

    ``max_iterations`` (int >= 1) and ``confidence`` (in ``(0, 1]``) are Open3D's RANSAC convergence
    criteria; ``seed`` (any int, folded by :func:`open3d_seed`) seeds Open3D's global random engine.

    Returns an :class:`Estimate` whose ``correspondences`` ``[K, 2]`` are those putative matches (mutual nearest
    FPFH neighbours; Open3D falls back to every source point's nearest target when the mutual pairs are fewer
    than a tenth of the source points, its ``mutual_consistency_ratio``), ``inliers``
    the matches within ``tau`` under the pose and ``score`` their count. (Open3D's own ``correspondence_set`` is
    not comparable with other estimators' matches: it pairs every source point with its nearest target point
    under the estimated pose, so it agrees with that pose by construction.)

    Raises:
        ValueError: ``tau`` not a positive finite number, ``max_iterations`` < 1, ``confidence`` out of range.
    """
    import numpy as np

    from geomdl.utils.optional import import_open3d

    tau = check_positive_real(tau, "tau")
    max_iterations = check_int(max_iterations, "max_iterations")
    if not 0 < confidence <= 1:
        raise ValueError(f"confidence must be in (0, 1], got {confidence!r}")
    o3d = import_open3d()
    reg = o3d.pipelines.registration
    if seed is not None:
        o3d.utility.random.seed(open3d_seed(seed))

    def cloud(p):
        pcd = o3d.geometry.PointCloud()
        pcd.points = o3d.utility.Vector3dVector(p.detach().cpu().numpy().astype(np.float64))
        return pcd

    def feature(d):
        f = reg.Feature()
        f.data = d.detach().cpu().numpy().astype(np.float64).T
        return f

    matches = reg.correspondences_from_features(feature(desc_src), feature(desc_tgt), True)
    result = reg.registration_ransac_based_on_correspondence(
        cloud(src_points), cloud(tgt_points), matches, tau, reg.TransformationEstimationPointToPoint(False), 3,
        [reg.CorrespondenceCheckerBasedOnEdgeLength(0.9), reg.CorrespondenceCheckerBasedOnDistance(tau)],
        reg.RANSACConvergenceCriteria(max_iterations, confidence))
    pose = torch.from_numpy(np.asarray(result.transformation).copy())
    corr = torch.from_numpy(np.asarray(matches, dtype=np.int64).reshape(-1, 2).copy())
    src_p, tgt_p = src_points.detach().cpu().double(), tgt_points.detach().cpu().double()
    inliers = (transform(src_p[corr[:, 0]], pose) - tgt_p[corr[:, 1]]).norm(dim=1) < tau
    return Estimate(pose, inliers, float(inliers.sum()), corr)
