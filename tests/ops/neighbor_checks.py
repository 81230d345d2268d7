"""Helpers shared by the neighbour and fps tests of the CPU kernels (test_neighbors.py, test_fps.py) and of
the CUDA kernels (test_cuda_neighbors.py)."""
from __future__ import annotations

import pytest
import torch

from geomdl.ops.neighbors import squared_distance


def random_batch(n, clouds, gen, empty=()):
    """Sorted cloud ids of n points over `clouds` clouds, leaving the clouds in `empty` without points."""
    allowed = torch.tensor([c for c in range(clouds) if c not in empty])
    return torch.sort(allowed[torch.randint(0, len(allowed), (n,), generator=gen)]).values


def brute_force_neighbors(x, y, batch_x, batch_y, ignore_same_index, limit, r=None):
    """Every query against every point of its cloud: the (squared distance, source) pairs in order (ties to
    the lower source), only those with distance <= r when r is given, cut to the `limit` nearest."""
    src, dst = [], []
    for i in range(y.shape[0]):
        js = torch.nonzero(batch_x == batch_y[i]).flatten()
        if ignore_same_index:
            js = js[js != i]
        d = squared_distance(y[i].expand(len(js), -1), x[js])
        order = torch.argsort(d, stable=True)  # js ascending, so ties keep the lower index first
        keep = js[order] if r is None else js[order][d[order] <= r * r]
        keep = keep[:limit]
        src.append(keep)
        dst.append(torch.full_like(keep, i))
    if not src:
        return torch.zeros(2, 0, dtype=torch.long)
    return torch.stack([torch.cat(src), torch.cat(dst)])


def bipartite_clouds(dim, seed):
    """``(x [500, dim], y [230, dim], batch_x, batch_y)``: uniform points in 4 clouds, cloud 1 without sources."""
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.rand(500, dim, generator=gen), torch.rand(230, dim, generator=gen)
    return x, y, random_batch(500, 4, gen, empty=(1,)), random_batch(230, 4, gen)


def assert_searches_agree(monkeypatch, variable, run, reference):
    """``run()`` with the environment variable ``variable`` (GEOMDL_KNN_SEARCH / GEOMDL_RADIUS_SEARCH) set to
    dense, grid and auto gives the same non-empty edges, equal to ``reference``."""
    results = []
    for search in ("dense", "grid", "auto"):
        monkeypatch.setenv(variable, search)
        results.append(run())
    assert results[0].shape[1] > 0
    assert all(torch.equal(results[0], other) for other in results[1:])
    assert torch.equal(results[0], reference)


def check_order(edges, x, y):
    """Edges grouped by increasing target, then increasing (distance, source)."""
    if edges.shape[1] == 0:
        return
    src, dst = edges
    d = squared_distance(y[dst], x[src])
    assert bool((dst[1:] >= dst[:-1]).all())
    same = dst[1:] == dst[:-1]
    later = (d[1:] > d[:-1]) | ((d[1:] == d[:-1]) & (src[1:] > src[:-1]))
    assert bool(later[same].all())


def assert_fps_kernel_rejects_bad_plans(pos):
    """geomdl::fps on 6 points `pos` (one cloud; pointers on the CPU) rejects a num above the cloud size, a
    start outside the cloud and a pointer that does not end at the number of points."""
    with pytest.raises(RuntimeError, match="num"):
        torch.ops.geomdl.fps(pos, torch.tensor([0, 6]), torch.tensor([7]), torch.tensor([0]))
    with pytest.raises(RuntimeError, match="start"):
        torch.ops.geomdl.fps(pos, torch.tensor([0, 6]), torch.tensor([2]), torch.tensor([6]))
    with pytest.raises(RuntimeError, match="ptr"):
        torch.ops.geomdl.fps(pos, torch.tensor([0, 5]), torch.tensor([2]), torch.tensor([0]))
