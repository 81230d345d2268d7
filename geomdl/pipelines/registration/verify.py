"""Deciding whether a registration result may be reported as a success.

A pose is accepted only when all of these hold (each failure adds a reason):

* **consensus** — at least ``min_inliers`` putative correspondences agree with the *final* pose
  (``|T s_i - t_i| < tau``);
* **significant consensus** — that many agreeing correspondences are unlikely by chance: the a-contrario
  number of false alarms of ORSA (Moisan & Stival 2004; Moisan, Moulon & Monasse 2012),
  ``NFA = (n - 3) C(n, k) C(k, 3) alpha^(k - 3)`` for ``k`` inliers among ``n`` correspondences, is
  below ``max_nfa`` (1). ``alpha`` is the probability that a *random* pairing agrees with the same pose,
  measured on the same points (:func:`chance_agreement`: the fraction of the pairs ``(i, j != i)`` with
  ``|T s_i - t_j| < tau``). Few correspondences agreeing among many, on a small or repetitive target,
  are then rejected even when they outnumber ``min_inliers``;
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

import math
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


def chance_agreement(moved_src: torch.Tensor, tgt: torch.Tensor, tau: float, block: int = 1024) -> float:
    """Probability ``alpha`` that a random pairing agrees with the pose: the fraction of the pairs
    ``(i, j)``, ``i != j``, of the correspondence points with ``|T s_i - t_j| < tau``.

    Args:
        moved_src: ``[K, 3]`` source correspondence points already moved by the pose ``T``.
        tgt: ``[K, 3]`` their target correspondence points. tau: inlier distance.

    Returns:
        ``alpha`` in ``[0, 1]`` (0 for fewer than 2 correspondences). Exact, in blocks of ``block`` rows
        (``O(K^2)`` distances, ``O(block K)`` memory).
    """
    k = moved_src.shape[0]
    if k < 2:
        return 0.0
    hits = 0
    centre = tgt.mean(0)  # (distances relative to the targets' mean: cdist's expansion cancels far from the origin)
    moved_c, tgt_c = moved_src - centre, tgt - centre
    for start in range(0, k, block):
        hits += int((torch.cdist(moved_c[start:start + block], tgt_c) < tau).sum())
    hits -= int(((moved_src - tgt).norm(dim=1) < tau).sum())  # the pairs i == j are the tested ones
    return hits / (k * (k - 1))


def log10_nfa(num_correspondences: int, num_inliers: int, alpha: float, sample_size: int = 3) -> float:
    """``log10`` of ORSA's number of false alarms ``(n - s) C(n, k) C(k, s) alpha^(k - s)``.

    ``n`` correspondences, ``k`` inliers, ``s`` = ``sample_size`` (3 for a rigid motion: the points
    of a minimal sample agree by construction). ``+inf`` when ``k <= s``; ``-inf`` when ``alpha == 0``.
    """
    n, k, s = num_correspondences, num_inliers, sample_size
    if k <= s or n <= s:
        return math.inf
    if alpha <= 0:
        return -math.inf

    def log10_binomial(a, b):
        return (math.lgamma(a + 1) - math.lgamma(b + 1) - math.lgamma(a - b + 1)) / math.log(10)

    return math.log10(n - s) + log10_binomial(n, k) + log10_binomial(k, s) + (k - s) * math.log10(min(alpha, 1.0))


@dataclass
class Verdict:
    success: bool
    reasons: list[str] = field(default_factory=list)
    num_inliers: int = 0  # correspondences consistent with the final pose
    fitness: float = 0.0
    constraint: float = 0.0
    spread: float = 0.0
    log10_nfa: float = math.inf  # a-contrario significance of the consensus (< 0: significant)


def verify_pose(pose, coarse_pose, src_down, tgt_down, tgt_normals, corr_src, corr_tgt, tau: float, icp_distance: float,
                voxel_size: float, min_inliers: int = 15, min_fitness: float = 0.05, min_constraint: float = 0.01,
                max_nfa: float = 1.0) -> Verdict:
    """Apply the checks of the module docstring.

    Args:
        pose: ``[4, 4]`` final (refined) pose; coarse_pose: ``[4, 4]`` robust estimate before ICP.
        src_down, tgt_down: ``[N, 3]``/``[M, 3]`` downsampled clouds; tgt_normals: ``[M, 3]``.
        corr_src, corr_tgt: ``[K, 3]`` putative correspondences (points).
        tau: inlier distance of correspondences; icp_distance: overlap distance; voxel_size: voxel side.
        min_inliers, min_fitness, min_constraint, max_nfa: the thresholds of the checks.
    """
    if not max_nfa > 0:
        raise ValueError(f"max_nfa must be positive, got {max_nfa!r}")
    reasons = []
    pose = pose.double()
    moved_corr = transform(corr_src.double(), pose)
    inl = (moved_corr - corr_tgt.double()).norm(dim=1) < tau
    num = int(inl.sum())
    spread = inlier_spread(corr_src[inl].double()) if num >= 3 else 0.0
    nfa = math.inf
    if num < min_inliers:
        reasons.append(f"{num} correspondences agree with the pose < min_inliers={min_inliers}")
    else:
        alpha = chance_agreement(moved_corr, corr_tgt.double(), tau)
        nfa = log10_nfa(corr_src.shape[0], num, alpha)
        if nfa >= math.log10(max_nfa):
            reasons.append(f"{num} of {corr_src.shape[0]} correspondences agreeing is not significant (NFA 10^{nfa:.1f} "
                           f">= max_nfa={max_nfa:g}; {alpha:.2%} of random pairings agree with the pose)")
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
    return Verdict(not reasons, reasons, num, fitness, strength, spread, nfa)
