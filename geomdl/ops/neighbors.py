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
(knn); in feature spaces knn may run a dense search instead (per block of queries one matrix product
gives ``|y|^2 + |x|^2 - 2 y.x``, the ``k + 8`` smallest are re-ranked by their exact distances, and a
query whose rounding bound does not separate the ``k``-th from the rest is redone exactly). From 4
coordinates on, a sample of queries measures how much of its cloud the grid would scan, and a cost model
picks the cheaper search (``GEOMDL_KNN_SEARCH=grid|dense`` forces one). radius has the same two
searches: its dense one keeps the points whose expanded distance is within ``r^2`` plus the rounding
bound, then decides each by its exact distance (``GEOMDL_RADIUS_SEARCH=grid|dense``).

The references are vectorised pure PyTorch: a sorted cell grid with ``searchsorted`` for D <= 3
(blockwise dense distances otherwise), and knn by radius searches whose radius doubles until every
query has its k neighbours inside the searched ball. Candidate pairs come in chunks of about 4M pairs
(:mod:`geomdl.ops.neighbor_candidates`), selected chunk by chunk, so a radius covering a large cloud
costs time, not memory.
"""
from __future__ import annotations

import torch

from geomdl.ops._extension import extension_loaded, use_compiled
from geomdl.ops._validation import (batch_to_ptr, check_batch_and_count, check_bool, check_int, check_positive_real,
                                    check_tensor, compact_batches, rescale_points, rescale_points_traced)
from geomdl.ops.neighbor_candidates import BLOCK_ELEMENTS, candidate_chunks, sort_and_limit



_INT64_MAX = 2**63 - 1


def _check_count(value, name):
    """``k`` / ``max_num_neighbors`` as an int >= 1 (:func:`check_int`), capped at ``2**63 - 1``: a query never has
    more neighbours than that, and a larger count is no int64 (the compiled ops could not take it, and the
    comparison of radius_reference with it wrapped around: no neighbours at all)."""
    return min(check_int(value, name), _INT64_MAX)


def _check_points(x, name):
    check_tensor(x, name, dim=2, floating=True)
    if x.shape[1] < 1:
        raise ValueError(f"{name} must have shape [N, D] with D >= 1, got {tuple(x.shape)}")
    return x


PAIR_NAMES = ("x", "y", "batch_x", "batch_y")
GRAPH_NAMES = ("pos", "pos", "batch", "batch")  # radius_graph / knn_graph: errors name their own arguments


def _check_pair(x, y, batch_x, batch_y, r=None, names=PAIR_NAMES):
    """Checks (errors name the caller's arguments ``names``); returns ``x, y, r`` (rescaled by a power of two at
    extreme scales), the batches and the cloud count."""
    nx, ny, nbx, nby = names
    _check_points(x, nx)
    _check_points(y, ny)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same dimension, got {x.shape[1]} and {y.shape[1]}")
    if y.dtype != x.dtype:
        raise TypeError(f"x and y must have the same dtype, got {x.dtype} and {y.dtype}")
    if y.device != x.device:
        raise ValueError(f"x and y must be on the same device, got {x.device} and {y.device}")
    # radius_graph/knn_graph pass the same tensors as x and y: each is checked (and read from the device) once
    batch_x, count_x = check_batch_and_count(batch_x, nbx, x.shape[0], x.device)
    batch_y, count_y = ((batch_x, count_x) if y is x and batch_y is batch_x
                        else check_batch_and_count(batch_y, nby, y.shape[0], y.device))
    _check_finite(x, nx)
    if y is not x:
        _check_finite(y, ny)
    if torch.compiler.is_compiling():  # sizes may be data-dependent (fps centres): no branch on them
        if r is None:  # knn (a radius is a constant of the graph: see rescale_points_traced)
            x, y = rescale_points_traced(x, y)
        return x, y, r, batch_x, batch_y, 1 + torch.cat([batch_x, batch_y, batch_x.new_zeros(1)]).max().item()
    (batch_x, batch_y), nb = compact_batches(batch_x, batch_y, counts=(count_x, count_y))  # sparse cloud ids: no huge pointers
    return *rescale_points(x, y, r), batch_x, batch_y, nb


def squared_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``sum_d (a_d - b_d)^2`` over the last dimension, in float64, summed left to right over ``d``.

    ``a`` and ``b`` broadcast against each other (``[..., D]``); returns ``[...]`` float64. The compiled
    kernels accumulate in exactly this order, so distances, ties and points exactly at distance ``r``
    agree bit for bit (``Tensor.sum`` reorders the additions, e.g. for D >= 5).
    """
    diff = a.double() - b.double()
    sq = diff * diff
    out = sq[..., 0].clone()
    for d in range(1, sq.shape[-1]):
        out += sq[..., d]
    return out


def _check_finite(x, name):
    if torch.compiler.is_compiling():  # a data-dependent branch: not checked inside a compiled graph
        return
    if x.numel() and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite coordinates")


# --- reference ------------------------------------------------------------------------------


def _select_neighbors_reference(x, y, batch_x, batch_y, limit, r, ignore_same_index):
    """Pairs (source j, query i), sorted by query, distance, source; the ``limit`` nearest per query
    (within ``r`` when ``r`` is not None). Distances are exact float64 sums of squares."""
    nx, ny = x.shape[0], y.shape[0]
    if nx == 0 or ny == 0:
        return torch.zeros((2, 0), dtype=torch.long, device=x.device)
    if r is None:
        return _knn_reference(x, y, batch_x, batch_y, limit, ignore_same_index)
    out_q, out_x = [], []
    for q0, q1, qi, xj in candidate_chunks(x, y, batch_x, batch_y, ignore_same_index, r):  # bounded memory
        dd = squared_distance(y[qi], x[xj])
        keep = dd <= r * r
        qi, xj, _ = sort_and_limit(qi[keep] - q0, xj[keep], dd[keep], q1 - q0, limit)
        out_q.append(qi + q0)
        out_x.append(xj)
    if not out_q:
        return torch.zeros((2, 0), dtype=torch.long, device=x.device)
    return torch.stack([torch.cat(out_x), torch.cat(out_q)])


def _knn_dense_per_cloud(x, y, batch_x, batch_y, k, ignore_same_index):
    """k nearest by dense per-cloud search: candidates from float64 ``|y|^2 + |x|^2 - 2 y.x``
    (one matrix product per block), then exact float64 sums of squares of the candidates, stable-sorted
    (ties: the lower source index). A query whose k-th exact distance is not certainly below every
    excluded candidate's (rounding bound) is redone on its whole cloud exactly."""
    nb = int(max(batch_x.max(), batch_y.max())) + 1
    ptr_x, ptr_y = batch_to_ptr(batch_x, nb).tolist(), batch_to_ptr(batch_y, nb).tolist()
    out_q, out_x = [], []
    for b in range(nb):
        x0, x1, y0, y1 = ptr_x[b], ptr_x[b + 1], ptr_y[b], ptr_y[b + 1]
        n = x1 - x0
        if n == 0 or y1 == y0:
            continue
        xs = x[x0:x1].double()
        xn = xs.pow(2).sum(1)
        kk = min(k, n)  # a query's own index (ignore_same_index) is masked below and never kept
        extra = min(n, kk + 8)
        rows = max(1, BLOCK_ELEMENTS // max(1, n * max(4, x.shape[1])))
        for start in range(y0, y1, rows):
            stop = min(y1, start + rows)
            ys = y[start:stop].double()
            yn = ys.pow(2).sum(1, keepdim=True)
            approx = (yn + xn - 2.0 * ys @ xs.T).clamp_min(0)  # [q, n]
            bound = 1e-12 * (yn + xn.max()) + 1e-300  # rounding of the expansion (generous)
            same = None
            if ignore_same_index:
                same = torch.arange(start, stop, device=x.device).unsqueeze(1) == torch.arange(x0, x1, device=x.device)
                approx = approx.masked_fill(same, float("inf"))
            cand_d, cand = torch.topk(approx, extra, dim=1, largest=False, sorted=True)
            exact = squared_distance(ys.unsqueeze(1), xs[cand])
            exact = torch.where(torch.isfinite(cand_d), exact, torch.full_like(exact, float("inf")))
            # sort candidates by (exact distance, source index)
            order = torch.argsort(cand, dim=1, stable=True)
            cand, exact = cand.gather(1, order), exact.gather(1, order)
            order = torch.argsort(exact, dim=1, stable=True)
            cand, exact = cand.gather(1, order)[:, :kk], exact.gather(1, order)[:, :kk]
            if extra < n:  # certify: no excluded point can be as close as the k-th chosen one
                excluded_min = cand_d[:, -1:]
                bad = (exact[:, -1:] + 2 * bound >= excluded_min - 2 * bound).squeeze(1)
                if bool(bad.any()):
                    full = squared_distance(ys[bad].unsqueeze(1), xs.unsqueeze(0))
                    if same is not None:
                        full = full.masked_fill(same[bad], float("inf"))
                    fd, fo = torch.sort(full, dim=1, stable=True)
                    cand[bad], exact[bad] = fo[:, :kk], fd[:, :kk]
            q = torch.arange(start, stop, device=x.device).unsqueeze(1).expand(-1, kk)
            keep = torch.isfinite(exact)
            out_q.append(q[keep])
            out_x.append(cand[keep] + x0)
    if not out_q:
        return torch.zeros((2, 0), dtype=torch.long, device=x.device)
    return torch.stack([torch.cat(out_x), torch.cat(out_q)])


def _knn_reference(x, y, batch_x, batch_y, k, ignore_same_index):
    """k nearest by growing radius searches: a query is final once k points lie within the radius
    searched (then the k nearest are among them); otherwise the radius doubles. Above 3 dimensions
    (feature-space graphs, e.g. DGCNN) and for clouds of at most 4096 points the exact dense
    per-cloud search (:func:`_knn_dense_per_cloud`, same result) is used instead."""
    ny = y.shape[0]
    dim = x.shape[1]
    if dim > 3 or int(torch.bincount(batch_x).max()) <= 4096:
        return _knn_dense_per_cloud(x, y, batch_x, batch_y, k, ignore_same_index)
    extent = float((torch.maximum(x.max(0).values, y.max(0).values) - torch.minimum(x.min(0).values, y.min(0).values)).max())
    nb = int(max(batch_x.max(), batch_y.max())) + 1
    per_cloud = max(1.0, x.shape[0] / nb)
    r = max(extent * (2.0 * k / per_cloud) ** (1.0 / dim), 1e-9) if extent > 0 else 1.0
    available = torch.bincount(batch_x, minlength=nb)[batch_y]
    if ignore_same_index:  # less the query itself where its index is one of its cloud's points
        ptr = batch_to_ptr(batch_x, nb)
        rows = torch.arange(ny, device=x.device)
        available = available - ((rows >= ptr[batch_y]) & (rows < ptr[batch_y + 1])).long()
    need = torch.clamp(available, max=k)  # a query can only get as many as its cloud offers
    todo = torch.arange(ny, device=x.device)
    res_q, res_x, res_d = [], [], []
    while todo.numel():
        sub_y, sub_b = y[todo], batch_y[todo]
        if not r < 4 * extent + 1:
            r = float("inf")  # every point of the cloud: dense blocks
        done = torch.zeros(todo.numel(), dtype=torch.bool, device=x.device)
        for q0, q1, qi, xj in candidate_chunks(x, sub_y, batch_x, sub_b, False, r):  # bounded memory
            if ignore_same_index:
                keep = todo[qi] != xj
                qi, xj = qi[keep], xj[keep]
            dd = squared_distance(sub_y[qi], x[xj])
            keep = dd <= r * r
            qi, xj, dd = qi[keep] - q0, xj[keep], dd[keep]
            chunk_done = torch.bincount(qi, minlength=q1 - q0) >= need[todo[q0:q1]]
            done[q0:q1] = chunk_done
            sel = chunk_done[qi]
            q2, x2, d2 = sort_and_limit(qi[sel], xj[sel], dd[sel], q1 - q0, k)
            res_q.append(todo[q2 + q0])
            res_x.append(x2)
            res_d.append(d2)
        todo = todo[~done]
        r *= 2.0
    qi, xj, dd = torch.cat(res_q), torch.cat(res_x), torch.cat(res_d)
    qi, xj, _ = sort_and_limit(qi, xj, dd, ny, k)
    return torch.stack([xj, qi])


def radius_reference(x, y, r, batch_x=None, batch_y=None, max_num_neighbors=32, ignore_same_index=False):
    """Pure-PyTorch specification of :func:`radius`."""
    return _radius_reference_named(x, y, r, batch_x, batch_y, max_num_neighbors, ignore_same_index, PAIR_NAMES)


def _radius_reference_named(x, y, r, batch_x, batch_y, max_num_neighbors, ignore_same_index, names):
    r, max_num_neighbors = check_positive_real(r, "r"), _check_count(max_num_neighbors, "max_num_neighbors")
    ignore_same_index = check_bool(ignore_same_index, "ignore_same_index")
    x, y, r, batch_x, batch_y, _ = _check_pair(x, y, batch_x, batch_y, r, names)
    return _select_neighbors_reference(x, y, batch_x, batch_y, max_num_neighbors, r, ignore_same_index)


def knn_reference(x, y, k, batch_x=None, batch_y=None, ignore_same_index=False):
    """Pure-PyTorch specification of :func:`knn`."""
    return _knn_reference_named(x, y, k, batch_x, batch_y, ignore_same_index, PAIR_NAMES)


def _knn_reference_named(x, y, k, batch_x, batch_y, ignore_same_index, names):
    k, ignore_same_index = _check_count(k, "k"), check_bool(ignore_same_index, "ignore_same_index")
    x, y, _, batch_x, batch_y, _ = _check_pair(x, y, batch_x, batch_y, names=names)
    return _select_neighbors_reference(x, y, batch_x, batch_y, k, None, ignore_same_index)


# --- public ops -----------------------------------------------------------------------------


def radius(x, y, r, batch_x=None, batch_y=None, max_num_neighbors=32, ignore_same_index=False):
    """For every query ``y[i]``, the points ``x[j]`` of the same cloud with ``|x_j - y_i| <= r``.

    Args:
        x: ``[N, D]`` float points searched.
        y: ``[M, D]`` float query points (same dtype and device).
        r: radius (a finite number > 0).
        batch_x, batch_y: sorted cloud ids ``[N]`` / ``[M]`` (default: one cloud).
        max_num_neighbors: keep at most this many nearest neighbours per query (>= 1).
        ignore_same_index: drop pairs with ``j == i`` (for ``x is y``).

    Returns:
        ``[2, E]`` int64: row 0 indexes ``x``, row 1 indexes ``y``; sorted by query, then distance.
    """
    return _radius(x, y, r, batch_x, batch_y, max_num_neighbors, ignore_same_index, PAIR_NAMES)


def _radius(x, y, r, batch_x, batch_y, max_num_neighbors, ignore_same_index, names):
    r, max_num_neighbors = check_positive_real(r, "r"), _check_count(max_num_neighbors, "max_num_neighbors")
    ignore_same_index = check_bool(ignore_same_index, "ignore_same_index")
    x, y, r, batch_x, batch_y, nb = _check_pair(x, y, batch_x, batch_y, r, names)
    if use_compiled("radius", x, tangents=False):  # indices: no tangents, compiled inside forward-mode AD too
        return torch.ops.geomdl.radius(
            x.detach().contiguous(), y.detach().contiguous(), r, batch_to_ptr(batch_x, nb), batch_to_ptr(batch_y, nb),
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
    return _knn(x, y, k, batch_x, batch_y, ignore_same_index, PAIR_NAMES)


def _knn(x, y, k, batch_x, batch_y, ignore_same_index, names):
    k, ignore_same_index = _check_count(k, "k"), check_bool(ignore_same_index, "ignore_same_index")
    x, y, _, batch_x, batch_y, nb = _check_pair(x, y, batch_x, batch_y, names=names)
    if use_compiled("knn", x, tangents=False):
        return torch.ops.geomdl.knn(
            x.detach().contiguous(), y.detach().contiguous(), k, batch_to_ptr(batch_x, nb), batch_to_ptr(batch_y, nb), ignore_same_index
        )
    return _select_neighbors_reference(x, y, batch_x, batch_y, k, None, ignore_same_index)


def radius_graph(pos, r, batch=None, max_num_neighbors=32, loop=False):
    """Edges ``j -> i`` between points of one cloud within distance ``r`` (``|p_j - p_i| <= r``, see :func:`radius`).

    Args:
        pos: ``[N, D]`` float positions.
        r: radius (> 0).
        batch: sorted cloud ids ``[N]`` (default: one cloud).
        max_num_neighbors: at most this many nearest sources per target.
        loop: include self-loops ``i -> i``.

    Returns:
        ``edge_index [2, E]`` (row 0 source, row 1 target), sorted by target then distance.
    """
    return _radius(pos, pos, r, batch, batch, max_num_neighbors, not check_bool(loop, "loop"), GRAPH_NAMES)


def knn_graph(pos, k, batch=None, loop=False):
    """Edges ``j -> i`` from the ``k`` nearest points ``j`` of each point ``i`` (see :func:`knn`).

    Args:
        pos: ``[N, D]`` float positions.
        k: neighbours per point (>= 1); fewer where a cloud has fewer points.
        batch: sorted cloud ids ``[N]`` (default: one cloud).
        loop: include each point itself (a self-loop ``i -> i``) among its ``k`` (default False).

    Returns:
        ``edge_index [2, E]`` (row 0 source, row 1 target), sorted by target then distance.
    """
    return _knn(pos, pos, k, batch, batch, not check_bool(loop, "loop"), GRAPH_NAMES)


def radius_graph_reference(pos, r, batch=None, max_num_neighbors=32, loop=False):
    """Reference of :func:`radius_graph`."""
    return _radius_reference_named(pos, pos, r, batch, batch, max_num_neighbors, not check_bool(loop, "loop"), GRAPH_NAMES)


def knn_graph_reference(pos, k, batch=None, loop=False):
    """Reference of :func:`knn_graph`."""
    return _knn_reference_named(pos, pos, k, batch, batch, not check_bool(loop, "loop"), GRAPH_NAMES)


# --- fake kernels: the compiled ops inside torch.compile graphs -----------------------------------


def _register() -> None:
    if not extension_loaded():
        return

    def _edges(x, y):  # [2, E] with E known only at run time (an unbacked size for the compiler)
        return x.new_empty((2, torch.library.get_ctx().new_dynamic_size()), dtype=torch.long)

    @torch.library.register_fake("geomdl::radius")
    def _radius_fake(x, y, r, ptr_x, ptr_y, max_num_neighbors, ignore_same_index):
        return _edges(x, y)

    @torch.library.register_fake("geomdl::knn")
    def _knn_fake(x, y, k, ptr_x, ptr_y, ignore_same_index):
        return _edges(x, y)


_register()
