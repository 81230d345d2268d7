"""Dense ``[M, k]`` neighbour tables for registration (k nearest, optionally within a radius).

Uses the compiled ``geomdl.ops.knn`` kernel when it is built for the device; otherwise a scipy
``cKDTree`` (O(N log N)), because the pure-PyTorch ``knn_reference`` is blockwise dense (O(N M)) and
too slow for 300k-point scans. ``GEOMDL_KERNELS=reference`` forces ``geomdl.ops`` (the spec).
"""
from __future__ import annotations

import torch

from geomdl import ops


def _use_ops(x: torch.Tensor) -> bool:
    backend = ops.get_backend()
    if backend == "reference":
        return True
    return backend in ("auto", "compiled") and ops.has_kernel("knn", x.device.type)


def knn_search(points: torch.Tensor, queries: torch.Tensor, k: int,
               radius: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest ``points`` of every query, sorted by distance.

    Args:
        points: ``[N, 3]`` searched points (N >= 1).
        queries: ``[M, 3]`` query points (any float dtype; searched in the dtype of ``points``).
        k: neighbours per query (clamped to N).
        radius: when given, neighbours farther than ``radius`` are marked missing.

    Returns:
        ``(index [M, k] int64, distance [M, k])``; missing entries have index ``-1`` and distance ``inf``.
    """
    n = points.shape[0]
    if n == 0:
        raise ValueError("points is empty: nothing to search")
    k = min(int(k), n)
    if queries.shape[0] == 0:
        return torch.zeros((0, k), dtype=torch.long), points.new_zeros((0, k))
    if _use_ops(points):
        queries = queries.to(points.dtype)  # the kernels need one dtype (ICP queries float64 against a float32 cloud)
        edge = ops.knn(points, queries, k)
        idx = edge[0].view(-1, k)
        dist = (points[idx] - queries[:, None]).norm(dim=-1)
    else:
        from scipy.spatial import cKDTree

        tree = cKDTree(points.detach().cpu().numpy())
        bound = float("inf") if radius is None else float(radius) * (1 + 1e-9)
        dist_np, idx_np = tree.query(queries.detach().cpu().numpy(), k=k, workers=1, distance_upper_bound=bound)
        if k == 1:
            dist_np, idx_np = dist_np[:, None], idx_np[:, None]
        idx = torch.from_numpy(idx_np).long()
        idx[idx >= n] = -1  # scipy marks missing neighbours with index n and distance inf
        dist = torch.from_numpy(dist_np).to(points.dtype)
    if radius is not None:
        far = dist > radius
        idx = idx.masked_fill(far, -1)
        dist = dist.masked_fill(far, float("inf"))
    return idx, dist


class NearestNeighbor:
    """Repeated 1-nearest-neighbour queries against a fixed cloud (ICP): builds the tree once."""

    def __init__(self, points: torch.Tensor):
        if points.shape[0] == 0:
            raise ValueError("points is empty: nothing to search")
        self.points = points
        self._tree = None
        if not _use_ops(points):
            from scipy.spatial import cKDTree

            self._tree = cKDTree(points.detach().cpu().numpy())

    def query(self, queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(index [M], distance [M])`` of the nearest point of every query."""
        if self._tree is None:
            idx, dist = knn_search(self.points, queries, 1)
            return idx[:, 0], dist[:, 0]
        dist, idx = self._tree.query(queries.detach().cpu().numpy(), k=1, workers=1)
        return torch.from_numpy(idx).long(), torch.from_numpy(dist).to(queries.dtype)
