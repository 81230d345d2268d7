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
