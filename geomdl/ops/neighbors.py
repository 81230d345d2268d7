"""Neighbour search: ``radius``, ``knn`` (bipartite) and ``radius_graph``, ``knn_graph``.

Conventions (shared by every op here and by PyG):

* ``edge_index`` is ``[2, E]`` int64 with ``edge_index[0]`` the *source* (the neighbour ``j``) and
  ``edge_index[1]`` the *target* (the centre/query ``i``); messages flow ``j -> i``.
* Output order is deterministic: edges are sorted by target, then by distance, then by source index.
* ``radius`` keeps, per query, the ``max_num_neighbors`` *nearest* points within ``r`` (distance
  ``<= r``), ties broken by the lower index; ``knn`` keeps the ``k`` nearest (fewer when the cloud is
  smaller).
* ``batch`` vectors assign points to clouds; they must be sorted (clouds contiguous), as PyG's
  ``Batch`` produces. Points only connect within their own cloud.

The compiled CPU kernels use a uniform cell grid (radius) / cell-grid search with growing shells
(knn), O(N log N) or better; the references compute blockwise dense distances (O(N M), bounded memory).
"""
from __future__ import annotations

import torch

from geomdl.ops._extension import use_compiled
from geomdl.ops._validation import batch_to_ptr, check_batch, check_tensor

_BLOCK_ELEMENTS = 1 << 22  # distance entries per block in the references (bounded memory)


def _check_points(x, name):
    check_tensor(x, name, dim=2, floating=True)
    if x.shape[1] < 1:
        raise ValueError(f"{name} must have shape [N, D] with D >= 1, got {tuple(x.shape)}")
    return x


def _check_pair(x, y, batch_x, batch_y):
    _check_points(x, "x")
    _check_points(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same dimension, got {x.shape[1]} and {y.shape[1]}")
    if y.dtype != x.dtype:
        raise TypeError(f"x and y must have the same dtype, got {x.dtype} and {y.dtype}")
    if y.device != x.device:
        raise ValueError(f"x and y must be on the same device, got {x.device} and {y.device}")
    batch_x = check_batch(batch_x, "batch_x", x.shape[0], x.device)
    batch_y = check_batch(batch_y, "batch_y", y.shape[0], y.device)
    nb = 1 + max(int(batch_x.max()) if batch_x.numel() else 0, int(batch_y.max()) if batch_y.numel() else 0)
    return batch_x, batch_y, nb


def _check_finite(x, name):
    if x.numel() and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite coordinates")


# --- reference ------------------------------------------------------------------------------


def _select_neighbors_reference(x, y, batch_x, batch_y, limit, r, ignore_same_index):
    """Blockwise dense search. Keeps per query the `limit` nearest (within r if r is not None)."""
    nx, ny = x.shape[0], y.shape[0]
    if nx == 0 or ny == 0:
        return x.new_zeros((2, 0), dtype=torch.long)
    block = max(1, _BLOCK_ELEMENTS // max(nx, 1))
    rows, cols = [], []
    ar_x = torch.arange(nx, device=x.device)
    for start in range(0, ny, block):
        yb = y[start : start + block]
        d2 = torch.cdist(yb.double(), x.double()).pow(2) if x.dtype != torch.float64 else torch.cdist(yb, x).pow(2)
        # exact squared distances (cdist may use the matmul trick; recompute on candidates below)
        valid = batch_y[start : start + block].unsqueeze(1) == batch_x.unsqueeze(0)
        if ignore_same_index:
            valid &= (torch.arange(start, start + yb.shape[0], device=x.device).unsqueeze(1) != ar_x.unsqueeze(0))
        if r is not None:
            valid &= d2 <= (r * r) * (1 + 1e-6) + 1e-12
        qi, xj = valid.nonzero(as_tuple=True)
        # exact distances of candidates, in float64
        dd = (yb[qi].double() - x[xj].double()).pow(2).sum(1)
        if r is not None:
            keep = dd <= float(r) * float(r)
            qi, xj, dd = qi[keep], xj[keep], dd[keep]
        # sort by (query, distance, source index)
        order = torch.argsort(xj, stable=True)
        order = order[torch.argsort(dd[order], stable=True)]
        order = order[torch.argsort(qi[order], stable=True)]
        qi, xj = qi[order], xj[order]
        # rank within query
        counts = torch.bincount(qi, minlength=yb.shape[0])
        first = torch.cumsum(counts, 0) - counts
        rank = torch.arange(qi.numel(), device=x.device) - first[qi]
        keep = rank < limit
        rows.append(xj[keep])
        cols.append(qi[keep] + start)
    return torch.stack([torch.cat(rows), torch.cat(cols)])


def radius_reference(x, y, r, batch_x=None, batch_y=None, max_num_neighbors=32, ignore_same_index=False):
    """Pure-PyTorch specification of :func:`radius`."""
    batch_x, batch_y, _ = _check_pair(x, y, batch_x, batch_y)
    return _select_neighbors_reference(x, y, batch_x, batch_y, max_num_neighbors, float(r), ignore_same_index)


def knn_reference(x, y, k, batch_x=None, batch_y=None, ignore_same_index=False):
    """Pure-PyTorch specification of :func:`knn`."""
    batch_x, batch_y, _ = _check_pair(x, y, batch_x, batch_y)
    return _select_neighbors_reference(x, y, batch_x, batch_y, k, None, ignore_same_index)


# --- public ops -----------------------------------------------------------------------------


def radius(x, y, r, batch_x=None, batch_y=None, max_num_neighbors=32, ignore_same_index=False):
    """For every query ``y[i]``, the points ``x[j]`` of the same cloud with ``|x_j - y_i| <= r``.

    Args:
        x: ``[N, D]`` float points searched.
        y: ``[M, D]`` float query points (same dtype and device).
        r: radius (> 0).
        batch_x, batch_y: sorted cloud ids ``[N]`` / ``[M]`` (default: one cloud).
        max_num_neighbors: keep at most this many nearest neighbours per query (>= 1).
        ignore_same_index: drop pairs with ``j == i`` (for ``x is y``).

    Returns:
        ``[2, E]`` int64: row 0 indexes ``x``, row 1 indexes ``y``; sorted by query, then distance.
    """
    if not isinstance(r, (int, float)) or not r > 0:
        raise ValueError(f"r must be a positive number, got {r!r}")
    if not isinstance(max_num_neighbors, int) or max_num_neighbors < 1:
        raise ValueError(f"max_num_neighbors must be an int >= 1, got {max_num_neighbors!r}")
    batch_x, batch_y, nb = _check_pair(x, y, batch_x, batch_y)
    _check_finite(x, "x")
    _check_finite(y, "y")
    if use_compiled("radius", x):
        return torch.ops.geomdl.radius(
            x.contiguous(), y.contiguous(), float(r), batch_to_ptr(batch_x, nb), batch_to_ptr(batch_y, nb),
            max_num_neighbors, ignore_same_index,
        )
    return _select_neighbors_reference(x, y, batch_x, batch_y, max_num_neighbors, float(r), ignore_same_index)


def knn(x, y, k, batch_x=None, batch_y=None, ignore_same_index=False):
    """For every query ``y[i]``, its ``k`` nearest points ``x[j]`` of the same cloud.

    Args:
        x: ``[N, D]`` float points searched.
        y: ``[M, D]`` float query points.
        k: number of neighbours (>= 1); fewer are returned where a cloud has fewer points.
        batch_x, batch_y: sorted cloud ids (default: one cloud).
        ignore_same_index: drop pairs with ``j == i`` (for ``x is y``).

    Returns:
        ``[2, E]`` int64: row 0 indexes ``x``, row 1 indexes ``y``; sorted by query, then distance.
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")
    batch_x, batch_y, nb = _check_pair(x, y, batch_x, batch_y)
    _check_finite(x, "x")
    _check_finite(y, "y")
    if use_compiled("knn", x):
        return torch.ops.geomdl.knn(
            x.contiguous(), y.contiguous(), k, batch_to_ptr(batch_x, nb), batch_to_ptr(batch_y, nb), ignore_same_index
        )
    return _select_neighbors_reference(x, y, batch_x, batch_y, k, None, ignore_same_index)


def radius_graph(pos, r, batch=None, max_num_neighbors=32, loop=False):
    """Edges ``j -> i`` between points of one cloud closer than ``r`` (see :func:`radius`).

    Args:
        pos: ``[N, D]`` float positions.
        r: radius (> 0).
        batch: sorted cloud ids ``[N]`` (default: one cloud).
        max_num_neighbors: at most this many nearest sources per target.
        loop: include self-loops ``i -> i``.

    Returns:
        ``edge_index [2, E]`` (row 0 source, row 1 target), sorted by target then distance.
    """
    return radius(pos, pos, r, batch, batch, max_num_neighbors, ignore_same_index=not loop)


def knn_graph(pos, k, batch=None, loop=False):
    """Edges ``j -> i`` from the ``k`` nearest points ``j`` of each point ``i`` (see :func:`knn`).

    Returns:
        ``edge_index [2, E]`` (row 0 source, row 1 target), sorted by target then distance.
    """
    return knn(pos, pos, k, batch, batch, ignore_same_index=not loop)


def radius_graph_reference(pos, r, batch=None, max_num_neighbors=32, loop=False):
    """Reference of :func:`radius_graph`."""
    return radius_reference(pos, pos, r, batch, batch, max_num_neighbors, ignore_same_index=not loop)


def knn_graph_reference(pos, k, batch=None, loop=False):
    """Reference of :func:`knn_graph`."""
    return knn_reference(pos, pos, k, batch, batch, ignore_same_index=not loop)
