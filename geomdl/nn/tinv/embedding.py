"""Public entry points: :func:`mds_embedding` (positions or distances) and :func:`geodesic_distances`."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from geomdl.nn.tinv import mds as _mds
from geomdl.nn.tinv.mds import _check_options, mds_from_distances, mds_from_positions
from geomdl.nn.tinv.result import MDSResult
from geomdl.ops._validation import batch_values_count, check_batch_and_count, check_int


def _check_batch(batch, num_points: int, device, num_clouds: int | None) -> tuple[torch.Tensor, int]:
    """The checked ``batch [N]`` (sorted cloud ids, ``None``: one cloud) and the number of clouds."""
    if num_clouds is not None and (isinstance(num_clouds, bool) or not isinstance(num_clouds, int)):
        raise TypeError(f"num_clouds must be an int or None, got {num_clouds!r}")
    batch, inferred = check_batch_and_count(batch, "batch", num_points, device)
    if inferred is None:  # inside torch.compile, which skips the value checks: checked and counted here instead
        inferred = batch_values_count(batch, "batch") if num_points else 0  # (a graph break; eigh's sizes are data)
    if num_clouds is None:
        num_clouds = inferred
    elif num_clouds < inferred:
        raise ValueError(f"num_clouds={num_clouds} but batch holds cloud id {inferred - 1}")
    if num_clouds == 0:
        raise ValueError("pos holds no points: nothing to embed")
    empty = torch.nonzero(torch.bincount(batch, minlength=num_clouds) == 0).flatten()
    if empty.numel():
        raise ValueError(f"cloud {int(empty[0])} has no points (batch skips its id); every cloud needs >= 2 points")
    return batch, num_clouds


GEODESIC_WORK_MATRICES = 2  # n x n float64 matrices for geodesic_distances (measured peak 1.13 to 1.5)


def _check_dense_size(where: str, n: int, limit: float, origin: str) -> None:
    """Refuse an ``n x n`` matrix whose dense MDS work would exceed ``limit`` bytes (before allocating it)."""
    need = _mds.dense_work_bytes(n)
    if need > limit:
        raise ValueError(
            f"{where} is a {n} x {n} matrix: classical MDS on it needs about {_mds.format_bytes(need)} "
            f"({_mds.DENSE_WORK_MATRICES} n x n float64 matrices, eigh's workspace included) and O(n^3) time, over the "
            f"limit of {_mds.format_bytes(limit)} ({origin}). Pass pos= ([N, d] coordinates; the d x d covariance "
            f"route, O(N d^2)) if the points have coordinates, subsample the points, or raise the limit with "
            f"max_dense_bytes= (bytes; math.inf for none)")


def _check_distances(distances, squared: bool, max_dense_bytes=None) -> tuple[list[torch.Tensor], float]:
    """Validated matrices and the byte cap on the dense work of one chunk (:func:`geomdl.nn.tinv.mds.dense_limit`)."""
    if isinstance(distances, torch.Tensor):
        if distances.dim() == 2:
            mats = [distances]
        elif distances.dim() == 3:
            if distances.shape[0] == 0:
                raise ValueError(f"distances holds no matrix (shape {tuple(distances.shape)}); give at least one [n, n]")
            mats = list(distances.unbind(0))
        else:
            raise ValueError(f"distances must be [n, n], [B, n, n] or a list of [n_b, n_b] tensors, got shape "
                             f"{tuple(distances.shape)}")
    elif isinstance(distances, Sequence) and not isinstance(distances, (str, bytes)) and distances:
        mats = list(distances)
    else:
        raise TypeError(f"distances must be a torch.Tensor or a non-empty list of tensors, got {type(distances).__name__}")
    name = "squared distances" if squared else "distances"
    limit = origin = None
    for i, m in enumerate(mats):
        where = f"distances[{i}]" if len(mats) > 1 or not isinstance(distances, torch.Tensor) else "distances"
        if not isinstance(m, torch.Tensor):
            raise TypeError(f"{where} must be a torch.Tensor, got {type(m).__name__}")
        if not m.is_floating_point():
            raise TypeError(f"{where} must have a floating dtype, got {m.dtype}")
        if m.dim() != 2 or m.shape[0] != m.shape[1]:
            raise ValueError(f"{where} must be a square [n, n] matrix, got shape {tuple(m.shape)}")
        if m.shape[0] < 2:
            raise ValueError(f"{where} has {m.shape[0]} point(s); MDS needs at least 2")
        if limit is None:
            limit, origin = _mds.dense_limit(max_dense_bytes, m.device)
        _check_dense_size(where, m.shape[0], limit, origin)
        if not bool(torch.isfinite(m).all()):
            raise ValueError(f"{where} has non-finite entries (disconnected graph? infinite geodesic distance)")
        big = float(m.abs().max())
        if bool((m < 0).any()):
            raise ValueError(f"{where}: {name} must be >= 0")
        # tolerances relative to the largest entry (the same decision at every scale), loose enough for the
        # rounding of float32 cdist (its errors grow with the coordinates' offset, not only with the distances)
        tol = max(1e-6, min(1e4 * torch.finfo(m.dtype).eps, 1e-2)) * big
        if float((m - m.T).abs().max()) > tol:
            raise ValueError(f"{where} must be symmetric (max |D - D^T| = {float((m - m.T).abs().max()):.3g})")
        if float(torch.diagonal(m).abs().max()) > tol:
            raise ValueError(f"{where} must have a zero diagonal (the distance of a point to itself)")
        if m.device != mats[0].device or m.dtype != mats[0].dtype:
            raise ValueError(f"{where} is {m.dtype} on {m.device}; all matrices must share distances[0]'s dtype and device")
    return mats, limit


def mds_embedding(pos: torch.Tensor | None = None, dim: int = 3, batch: torch.Tensor | None = None, *,
                  distances: torch.Tensor | Sequence[torch.Tensor] | None = None, squared: bool = False,
                  scale: str | None = "rms", degenerate: str = "pick", gap_tol: float = 1e-2, sign_tol: float = 1e-2,
                  max_frames: int = 128, num_clouds: int | None = None, chunk_size: int | None = None,
                  max_dense_bytes: float | None = None) -> MDSResult:
    r"""Transformation-invariant, distance-preserving coordinates of point clouds (TinvNN's modified MDS).

    .. math::  z = U_k \Lambda_k^{1/2} S, \qquad -\tfrac{1}{2s^2} J D J = U \Lambda U^\top

    invariant to rotations and reflections (O(d)), translations and (with ``scale``) scalings of the input,
    and equivariant to permutations of its points; see :mod:`geomdl.nn.tinv.mds` for the sign and scale
    rules and the exact conditions. Computed in float64 whatever the input dtype, returned in the input's.
    Gradients flow through ``torch.linalg.eigh`` and are NaN/inf at repeated eigenvalues (cubes, cylinders):
    detach ``pos`` inside a trained pipeline, as :class:`TinvNet` does.

    Args:
        pos: ``[N, d]`` points of one or many clouds (``batch``). Uses the ``d x d`` covariance (``O(N d^2)``).
        dim: number of components ``k`` kept (default 3; use 2 for planar data such as TSP cities).
            Distances are preserved exactly when ``dim >= rank`` of the centred cloud.
        batch: ``[N]`` sorted cloud ids (default: one cloud).
        distances: instead of ``pos``: ``[n, n]``, ``[B, n, n]`` or a list of ``[n_b, n_b]`` symmetric distance
            matrices (e.g. :func:`geodesic_distances` of a graph). Uses the ``n x n`` Gram matrix: ``O(n^3)`` time
            and about ``5 * 8 * n**2`` bytes besides the input (4 GiB at ``n ~ 10,000``); a matrix over
            ``max_dense_bytes`` raises a ``ValueError`` before anything is allocated.
        squared: ``distances`` already holds squared distances (default False).
        scale: ``"rms"`` (default; RMS distance to the centroid), ``"max"`` (largest distance to the
            centroid) or ``None`` (no scale invariance).
        degenerate: ``"pick"`` (default) keeps one frame even where it is ill-defined (the diagnostics say
            where); ``"average"`` returns, for such clouds, every candidate frame in ``frames`` so that callers
            (e.g. :class:`TinvNet`) average over them and stay invariant on symmetric shapes.
        gap_tol: relative eigen-gap below which two eigenvalues count as repeated (default 1e-2).
        sign_tol: sign margin (``|skewness|``) below which a column's sign counts as ambiguous (default 1e-2).
        max_frames: cap on the frames per cloud in ``"average"`` mode (default 128).
        num_clouds: number of clouds (default ``batch.max() + 1``).
        chunk_size: rows per chunk for positions (default 2**20) or matrices per chunk for distances (default 64;
            fewer where the chunk's dense work would exceed ``max_dense_bytes``).
        max_dense_bytes: cap in bytes on the dense ``n x n`` work of one chunk of ``distances`` (estimated as
            :func:`geomdl.nn.tinv.mds.dense_work_bytes`). Default ``None``: the smaller of
            :data:`geomdl.nn.tinv.mds.MAX_DENSE_BYTES` (4 GiB) and the memory available on the device; a number
            replaces both (``math.inf``: no cap). Ignored for ``pos``.

    Raises:
        ValueError: on bad input (naming the argument), and when one ``distances`` matrix needs more than
            ``max_dense_bytes`` (the message gives ``n``, the estimated bytes and the ways out: ``pos=``,
            subsampling, a larger ``max_dense_bytes``).

    Returns:
        :class:`MDSResult` with ``embedding [N, k]`` and the diagnostics (eigenvalues, gaps, sign margins,
        degenerate flags, frames).

    Shapes:
        ``pos [N, d]``, ``batch [N]`` -> ``embedding [N, k]``, per-cloud diagnostics ``[B, ...]``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(100, 3, generator=g, dtype=torch.float64) * torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)
        >>> r = mds_embedding(x + 0.3 * x**2)
        >>> r.embedding.shape, bool(r.degenerate[0])
        (torch.Size([100, 3]), False)
    """
    _check_options(dim, scale, degenerate, gap_tol, sign_tol, max_frames)
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, "chunk_size")
    _mds.check_max_dense_bytes(max_dense_bytes)
    options = dict(scale=scale, gap_tol=float(gap_tol), sign_tol=float(sign_tol), degenerate=degenerate,
                   max_frames=max_frames)
    if (pos is None) == (distances is None):
        raise ValueError("give exactly one of pos ([N, d] points) and distances ([n, n] matrices)")
    if distances is not None:
        if batch is not None:
            raise ValueError("batch is for pos; with distances pass a [B, n, n] tensor or a list of matrices")
        mats, limit = _check_distances(distances, squared, max_dense_bytes)
        return mds_from_distances(mats, dim, squared=squared, chunk_size=chunk_size or 64, max_bytes=limit, **options)
    if not isinstance(pos, torch.Tensor):
        raise TypeError(f"pos must be a torch.Tensor, got {type(pos).__name__}")
    if pos.dim() != 2 or pos.shape[1] < 1:
        raise ValueError(f"pos must have shape [N, d] (points x coordinates), got {tuple(pos.shape)}")
    if not pos.is_floating_point():
        raise TypeError(f"pos must have a floating dtype (float32 or float64), got {pos.dtype}")
    if not bool(torch.isfinite(pos).all()):
        raise ValueError("pos has non-finite entries (NaN or inf)")
    batch, num_clouds = _check_batch(batch, pos.shape[0], pos.device, num_clouds)
    return mds_from_positions(pos, dim, batch, num_clouds, chunk_size=chunk_size or (1 << 20), **options)


def geodesic_distances(edge_index: torch.Tensor, num_nodes: int, edge_weight: torch.Tensor | None = None, *,
                       max_dense_bytes: float | None = None) -> torch.Tensor:
    """All-pairs shortest-path distances ``[n, n]`` of an undirected graph (Dijkstra, scipy).

    The result is dense: ``8 * n**2`` bytes from scipy plus the output (measured peak 1.13 ``n x n`` float64
    matrices for a float64 output, 1.5 for float32), estimated as ``2 * 8 * n**2`` bytes.

    Args:
        edge_index: ``[2, E]`` edges (either direction; the graph is symmetrised).
        num_nodes: number of nodes ``n``.
        edge_weight: ``[E]`` positive edge lengths (default 1: hop counts).
        max_dense_bytes: cap in bytes on that estimate. Default ``None``: the smaller of
            :data:`geomdl.nn.tinv.mds.MAX_DENSE_BYTES` (4 GiB, ``n ~ 16,000``) and the available host memory; a
            number replaces both (``math.inf``: no cap). :func:`mds_embedding` on the result needs 2.5x as much.

    Raises:
        ValueError: when the graph is disconnected (some distance is infinite), on bad input, and when the
            ``n x n`` result would exceed ``max_dense_bytes`` (checked before any work).
    """
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import shortest_path

    if not isinstance(edge_index, torch.Tensor) or edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must be a [2, E] tensor, got {getattr(edge_index, 'shape', type(edge_index))}")
    if edge_index.dtype.is_floating_point or edge_index.dtype == torch.bool or edge_index.is_complex():
        raise TypeError(f"edge_index must have an integer dtype (node ids), got {edge_index.dtype}")
    num_nodes = check_int(num_nodes, "num_nodes")
    limit, origin = _mds.dense_limit(max_dense_bytes, torch.device("cpu"))
    need = _mds.dense_work_bytes(num_nodes, GEODESIC_WORK_MATRICES)
    if need > limit:
        raise ValueError(f"num_nodes={num_nodes}: the dense [n, n] geodesic distance matrix needs about "
                         f"{_mds.format_bytes(need)}, over the limit of {_mds.format_bytes(limit)} ({origin}); "
                         f"mds_embedding on it would need {_mds.DENSE_WORK_MATRICES / GEODESIC_WORK_MATRICES:.3g}x "
                         f"as much. Subsample the graph's nodes (e.g. landmarks), use node coordinates with "
                         f"mds_embedding(pos=...), or raise the limit with max_dense_bytes= (bytes; math.inf for none)")
    ei = edge_index.detach().cpu().long().numpy()
    if ei.size and (ei.min() < 0 or ei.max() >= num_nodes):
        raise ValueError(f"edge_index entries must lie in [0, {num_nodes})")
    if edge_weight is None:
        w = np.ones(ei.shape[1])
    else:
        if not isinstance(edge_weight, torch.Tensor) or edge_weight.shape != (ei.shape[1],):
            raise ValueError(f"edge_weight must be a tensor of shape [{ei.shape[1]}]")
        w = edge_weight.detach().cpu().double().numpy()
        if not (np.isfinite(w) & (w > 0)).all():  # (NaN passed a "w <= 0" test and read as a missing edge)
            raise ValueError("edge_weight must be finite and > 0 (edge lengths)")
    if ei.shape[1]:  # an edge listed several times is one edge of its shortest length (a sparse matrix sums them)
        order = np.lexsort((w, ei[1], ei[0]))
        ei, w = ei[:, order], w[order]
        first = np.ones(ei.shape[1], dtype=bool)
        first[1:] = (ei[0, 1:] != ei[0, :-1]) | (ei[1, 1:] != ei[1, :-1])
        ei, w = ei[:, first], w[first]
    graph = coo_matrix((w, (ei[0], ei[1])), shape=(num_nodes, num_nodes)).tocsr()
    dist = shortest_path(graph, method="D", directed=False)
    if not np.isfinite(dist).all():
        raise ValueError("the graph is disconnected: geodesic distances between components are infinite")
    dtype = edge_weight.dtype if edge_weight is not None and edge_weight.is_floating_point() else torch.get_default_dtype()
    return torch.as_tensor(dist, dtype=dtype, device=edge_index.device)
