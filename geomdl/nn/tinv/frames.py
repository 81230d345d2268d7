"""Ambiguous frames of an MDS embedding: which axes are ill-defined, and the finite set to average over.

An MDS/PCA embedding ``z = X_c V / s`` is unique up to an orthogonal map that is block-diagonal over the
*clusters* of (numerically) equal eigenvalues: a sign for a simple eigenvalue, any element of ``O(m)`` for
an ``m``-fold one. A deterministic sign rule fixes simple axes whose sign statistic is clearly non-zero;
the rest is ambiguous. Here each ambiguous block gets a finite candidate set of bases built only from the
point set itself, so that the *set* of candidate embeddings is the same (up to a permutation of points)
whatever rotation, reflection, translation, scale or point order the input had:

* simple eigenvalue with sign margin < ``sign_tol``: both signs ``{+1, -1}``;
* ``m``-fold eigenvalue (``m >= 2``): Gram-Schmidt on extreme points. The first axis is the direction of any
  point whose projection on the eigenspace has the largest norm (ties within ``tie_tol`` all count,
  duplicate directions merged); the next axis is the direction of any point with the largest component
  orthogonal to the axes chosen so far, and so on; the last axis is the unit complement with both signs.

Frame averaging (``mean_f g(z R_f)``, ``g`` permutation invariant) over this set is exactly invariant,
because an orthogonal change ``O`` of the eigenbasis maps the candidate set ``{Q}`` to ``{O^T Q}``.
Exact symmetries (cube corners, rings) give many tied points and so many frames; ``max_frames`` caps them.
"""
from __future__ import annotations

import itertools

import torch


def eigen_clusters(eigenvalues: torch.Tensor, gap_tol: float, null_tol: float) -> list[list[int]]:
    """Group consecutive descending eigenvalues whose relative gap ``(l_j - l_{j+1}) / l_1`` is < ``gap_tol``.

    Null eigenvalues (``l_j <= null_tol * l_1``) form no cluster: their columns are zero.

    Args:
        eigenvalues: ``[k]`` descending, non-negative.
    Returns:
        list of clusters, each a list of column indices.
    """
    lam = eigenvalues.tolist()
    if not lam or lam[0] <= 0:
        return []
    top = lam[0]
    clusters: list[list[int]] = []
    for j, value in enumerate(lam):
        if value <= null_tol * top:
            break
        if clusters and (lam[j - 1] - value) / top < gap_tol:
            clusters[-1].append(j)
        else:
            clusters.append([j])
    return clusters


def _unique_directions(vectors: torch.Tensor, tie_tol: float) -> list[torch.Tensor]:
    """Unit directions of ``vectors [p, m]`` with near-duplicates (distance < sqrt(tie_tol)) merged."""
    units = vectors / vectors.norm(dim=1, keepdim=True)
    kept: list[torch.Tensor] = []
    for u in units:
        if all(float((u - v).norm()) > tie_tol**0.5 for v in kept):
            kept.append(u)
    return kept


def _complement(axes: list[torch.Tensor], m: int, dtype, device) -> torch.Tensor:
    """Orthonormal basis ``[m, m - len(axes)]`` of the complement of the orthonormal ``axes``."""
    if not axes:
        return torch.eye(m, dtype=dtype, device=device)
    a = torch.stack(axes, dim=1)
    proj = torch.eye(m, dtype=dtype, device=device) - a @ a.T
    _, vecs = torch.linalg.eigh(proj)
    return vecs[:, len(axes):]


def _block_bases(y: torch.Tensor, tie_tol: float, null_tol: float, limit: int) -> tuple[list[torch.Tensor], bool]:
    """Candidate orthonormal bases ``[m, m]`` (columns = axes) of an ``m``-fold eigenspace.

    Args:
        y: ``[n, m]`` coordinates of the points in an arbitrary orthonormal basis of the eigenspace.
        limit: stop after this many bases (then the second return value is True).
    """
    n, m = y.shape
    scale = float(y.norm(dim=1).max()) if n else 0.0
    bases: list[torch.Tensor] = []
    truncated = False

    def extend(axes: list[torch.Tensor]) -> None:
        nonlocal truncated
        if truncated:
            return
        if len(axes) == m - 1:
            last = _complement(axes, m, y.dtype, y.device)[:, 0]
            for sign in (1.0, -1.0):
                if len(bases) >= limit:
                    truncated = True
                    return
                bases.append(torch.stack(axes + [sign * last], dim=1))
            return
        residual = y if not axes else y - (y @ torch.stack(axes, 1)) @ torch.stack(axes, 1).T
        norms = residual.norm(dim=1)
        top = float(norms.max()) if n else 0.0
        if top <= null_tol**0.5 * max(scale, 1e-300):
            # the points span only the chosen axes: the rest is irrelevant, complete arbitrarily
            if len(bases) >= limit:
                truncated = True
                return
            rest = _complement(axes, m, y.dtype, y.device)
            bases.append(torch.cat([torch.stack(axes, 1), rest], dim=1) if axes else rest)
            return
        tied = residual[norms >= top * (1.0 - tie_tol)]
        for u in _unique_directions(tied, tie_tol):
            extend(axes + [u])

    if m == 1:
        return [torch.ones(1, 1, dtype=y.dtype, device=y.device), -torch.ones(1, 1, dtype=y.dtype, device=y.device)], False
    extend([])
    return bases, truncated


def ambiguous_frames(z: torch.Tensor, eigenvalues: torch.Tensor, sign_margins: torch.Tensor, *, gap_tol: float,
                     sign_tol: float, tie_tol: float = 1e-6, null_tol: float = 1e-12,
                     max_frames: int = 128) -> tuple[torch.Tensor, bool]:
    """The finite set of frames to average over for one cloud.

    Args:
        z: ``[n, k]`` the (sign-fixed) embedding of one cloud.
        eigenvalues: ``[k]`` descending eigenvalues (any positive scaling).
        sign_margins: ``[k]`` sign margins (NaN for null columns).
        gap_tol, sign_tol: thresholds of :func:`geomdl.nn.tinv.mds_embedding`.
        tie_tol: relative tolerance under which two extreme points count as tied.
        max_frames: cap on the number of frames.

    Returns:
        ``(frames [F, k, k], truncated)``; ``z @ frames[f]`` is candidate ``f``; ``F = 1`` (identity) when
        nothing is ambiguous.
    """
    k = z.shape[1]
    options: list[tuple[list[int], list[torch.Tensor]]] = []
    truncated = False
    for cluster in eigen_clusters(eigenvalues, gap_tol, null_tol):
        if len(cluster) == 1:
            margin = float(sign_margins[cluster[0]])
            if margin == margin and margin < sign_tol:
                options.append((cluster, _block_bases(z[:, cluster], tie_tol, null_tol, 2)[0]))
            continue
        bases, cut = _block_bases(z[:, cluster], tie_tol, null_tol, max_frames)
        truncated |= cut
        options.append((cluster, bases))
    identity = torch.eye(k, dtype=z.dtype, device=z.device)
    frames = []
    for combo in itertools.product(*(bases for _, bases in options)):
        if len(frames) >= max_frames:
            truncated = True
            break
        frame = identity.clone()
        for (cluster, _), block in zip(options, combo):
            idx = torch.tensor(cluster, device=z.device)
            frame[idx.unsqueeze(1), idx.unsqueeze(0)] = block
        frames.append(frame)
    return torch.stack(frames), truncated
