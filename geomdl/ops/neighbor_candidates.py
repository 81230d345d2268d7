"""Candidate pairs for the neighbour-search references, produced in chunks of bounded size.

A chunk covers a contiguous range of queries ``[q0, q1)`` and holds *all* candidate pairs of those
queries, so a per-query selection (the nearest ``limit`` within ``r``) can run chunk by chunk, and
concatenating the selected chunks keeps the output sorted by query. A chunk holds about
``BLOCK_ELEMENTS`` pairs (more only when a single query alone has more candidates), so a radius that
covers a whole large cloud costs time, not memory: all pairs of a 100,000-point cloud would be 1e10.
"""
from __future__ import annotations

from typing import Iterator

import torch

BLOCK_ELEMENTS = 1 << 22  # candidate pairs (or dense distance entries) per chunk

Chunk = tuple[int, int, torch.Tensor, torch.Tensor]  # (q0, q1, query index [P], source index [P])


def sort_and_limit(qi, xj, dd, num_queries, limit):
    """Sort pairs by (query, distance, source) and keep the first ``limit`` of every query.

    ``qi`` must lie in ``[0, num_queries)``; returns the kept ``(qi, xj, dd)``.
    """
    order = torch.argsort(xj, stable=True)
    order = order[torch.argsort(dd[order], stable=True)]
    order = order[torch.argsort(qi[order], stable=True)]
    qi, xj, dd = qi[order], xj[order], dd[order]
    counts = torch.bincount(qi, minlength=num_queries)
    first = torch.cumsum(counts, 0) - counts
    keep = (torch.arange(qi.numel(), device=qi.device) - first[qi]) < limit
    return qi[keep], xj[keep], dd[keep]


def dense_chunks(x, y, batch_x, batch_y, ignore_same_index, r, budget: int | None = None) -> Iterator[Chunk]:
    """All (query, source) pairs of the same cloud (within ``r`` when given, a loose float64 prefilter:
    the caller decides by exact distances), by blocks of ``budget // N`` queries: O(N M) time."""
    nx, ny = x.shape[0], y.shape[0]
    block = max(1, (budget or BLOCK_ELEMENTS) // max(nx, 1))
    ar_x = torch.arange(nx, device=x.device)
    xd = x.double() if r is not None else None
    for start in range(0, ny, block):
        stop = min(ny, start + block)
        valid = batch_y[start:stop].unsqueeze(1) == batch_x.unsqueeze(0)
        if ignore_same_index:
            valid &= torch.arange(start, stop, device=x.device).unsqueeze(1) != ar_x.unsqueeze(0)
        if r is not None:  # direct differences: the matrix-product form errs by ~1e-8 |x| (a point misses itself)
            dist = torch.cdist(y[start:stop].double(), xd, compute_mode="donot_use_mm_for_euclid_dist")
            valid &= dist <= r * (1 + 1e-6) + 1e-12
        qi, xj = valid.nonzero(as_tuple=True)
        yield start, stop, qi + start, xj


class CellGrid:
    """Points ``x`` sorted into a uniform grid of cell size ``r`` (per cloud), queried by ``y``.

    :meth:`chunks` yields, per chunk of queries, every point in the 3^D cells around each query: a superset
    of the pairs within ``r`` (the caller decides by exact distances). Build with :meth:`build`, which
    returns ``None`` where the grid is unsuitable (D > 3, or more cells than int64 keys can address).
    """

    def __init__(self, order_x, sorted_keys, key_y, offsets):
        self.order_x, self.sorted_keys, self.key_y, self.offsets = order_x, sorted_keys, key_y, offsets

    @classmethod
    def build(cls, x, y, batch_x, batch_y, r) -> "CellGrid | None":
        dim = x.shape[1]
        if dim > 3:
            return None
        lo = torch.minimum(x.min(0).values, y.min(0).values).double()
        cx = torch.floor((x.double() - lo) / r).long()
        cy = torch.floor((y.double() - lo) / r).long()
        size = torch.maximum(cx.max(0).values, cy.max(0).values) + 3  # +1 margin each side
        nb = int(max(batch_x.max(), batch_y.max())) + 1
        if float(nb) * float(torch.prod(size.double())) > 2**62:
            return None
        strides = [1] * dim
        for d in range(dim - 2, -1, -1):
            strides[d] = strides[d + 1] * int(size[d + 1])
        cells_total = strides[0] * int(size[0])
        stride_t = torch.tensor(strides, device=x.device)
        key_x = batch_x * cells_total + ((cx + 1) * stride_t).sum(1)
        key_y = batch_y * cells_total + ((cy + 1) * stride_t).sum(1)
        order_x = torch.argsort(key_x, stable=True)
        cube = torch.cartesian_prod(*[torch.tensor([-1, 0, 1], device=x.device)] * dim).reshape(-1, dim)
        return cls(order_x, key_x[order_x], key_y, (cube * stride_t).sum(1).tolist())

    def _ranges(self, keys, offset):
        k = keys + offset
        start = torch.searchsorted(self.sorted_keys, k, side="left")
        return start, torch.searchsorted(self.sorted_keys, k, side="right") - start

    def chunks(self, ignore_same_index: bool, budget: int | None = None) -> Iterator[Chunk]:
        budget = budget or BLOCK_ELEMENTS
        ny = self.key_y.shape[0]
        total = torch.zeros(ny, dtype=torch.long, device=self.key_y.device)
        for off in self.offsets:  # pass 1: candidates per query (memory O(M), not O(3^D M))
            total += self._ranges(self.key_y, off)[1]
        ends = torch.cumsum(total, 0)
        # chunk c takes the queries whose candidates start in [c budget, (c + 1) budget)
        chunk_of = torch.div(ends - total, budget, rounding_mode="floor")
        _, sizes = torch.unique_consecutive(chunk_of, return_counts=True)
        q0 = 0
        for q1 in torch.cumsum(sizes, 0).tolist():
            keys = self.key_y[q0:q1]
            out_q, out_x = [], []
            for off in self.offsets:  # pass 2: the chunk's pairs
                start, cnt = self._ranges(keys, off)
                q = torch.repeat_interleave(torch.arange(q0, q1, device=keys.device), cnt)
                pos_in = torch.arange(int(cnt.sum()), device=keys.device) - torch.repeat_interleave(torch.cumsum(cnt, 0) - cnt, cnt)
                out_q.append(q)
                out_x.append(self.order_x[torch.repeat_interleave(start, cnt) + pos_in])
            qi, xj = torch.cat(out_q), torch.cat(out_x)
            if ignore_same_index:
                keep = qi != xj
                qi, xj = qi[keep], xj[keep]
            yield q0, q1, qi, xj
            q0 = q1


def candidate_chunks(x, y, batch_x, batch_y, ignore_same_index, r, budget: int | None = None) -> Iterator[Chunk]:
    """Chunks of candidate pairs within ``r`` (a superset): the cell grid where it applies, else dense.

    ``budget``: pairs per chunk (default the module's ``BLOCK_ELEMENTS``, read at call time)."""
    grid = CellGrid.build(x, y, batch_x, batch_y, r) if r is not None and r < float("inf") else None
    if grid is not None:
        return grid.chunks(ignore_same_index, budget)
    return dense_chunks(x, y, batch_x, batch_y, ignore_same_index, r if r is not None and r < float("inf") else None, budget)
