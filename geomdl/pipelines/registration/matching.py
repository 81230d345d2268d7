"""Correspondences from descriptors: mutual nearest neighbours in descriptor space."""
from __future__ import annotations

import torch


def _best_matches(desc_src: torch.Tensor, desc_tgt: torch.Tensor, block: int = 2048):
    """Nearest neighbours in both directions from one pass over blocks of the similarity ``a . b``.

    For unit-norm descriptors ``|a - b|^2 = 2 - 2 a . b``, so the nearest neighbour is the most
    similar one and each block is one matrix product. Returns ``(s2t [N], s2t_dist [N], t2s [M])``.
    """
    n, m = desc_src.shape[0], desc_tgt.shape[0]
    best_t = desc_src.new_full((m,), -float("inf"))
    t2s = torch.zeros(m, dtype=torch.long, device=desc_src.device)
    s2t, s2t_d = [], []
    for start in range(0, n, block):
        sim = desc_src[start:start + block] @ desc_tgt.T
        v, i = sim.max(1)
        s2t.append(i)
        s2t_d.append((2 - 2 * v).clamp_min(0).sqrt())
        cv, ci = sim.max(0)
        better = cv > best_t
        best_t = torch.where(better, cv, best_t)
        t2s = torch.where(better, ci + start, t2s)
    return torch.cat(s2t), torch.cat(s2t_d), t2s


def mutual_nearest_neighbors(desc_src: torch.Tensor, desc_tgt: torch.Tensor, min_matches: int = 0) -> torch.Tensor:
    """Pairs ``(i, j)`` where ``desc_tgt[j]`` is the nearest of ``desc_src[i]`` and vice versa.

    Descriptors are L2-normalised first (distances are those of the unit vectors).

    Args:
        desc_src: ``[N, D]``; desc_tgt: ``[M, D]`` (same ``D``).
        min_matches: if fewer mutual pairs are found, fall back to the one-way nearest neighbours of
            the source (so a hard pair still gets a chance; the estimator rejects outliers).

    Returns:
        ``[K, 2]`` int64 correspondences (column 0 indexes the source, column 1 the target), sorted by
        descriptor distance, on the descriptors' device.
    """
    if desc_src.dim() != 2 or desc_tgt.dim() != 2 or desc_src.shape[1] != desc_tgt.shape[1]:
        raise ValueError(f"descriptors must be [N, D] and [M, D] with the same D, got {tuple(desc_src.shape)} "
                         f"and {tuple(desc_tgt.shape)}")
    if desc_src.shape[0] == 0 or desc_tgt.shape[0] == 0:
        return torch.zeros((0, 2), dtype=torch.long, device=desc_src.device)
    desc_src = torch.nn.functional.normalize(desc_src.float(), dim=1)
    desc_tgt = torch.nn.functional.normalize(desc_tgt.float(), dim=1)
    s2t, dist, t2s = _best_matches(desc_src, desc_tgt)
    src = torch.arange(desc_src.shape[0], device=desc_src.device)
    mutual = t2s[s2t] == src
    if int(mutual.sum()) < min_matches:
        mutual = torch.ones_like(mutual)
    pairs = torch.stack([src[mutual], s2t[mutual]], 1)
    return pairs[torch.argsort(dist[mutual], stable=True)]
