"""CUDA kernels of radius / knn / radius_graph / knn_graph / fps: edge for edge (index for index) equal to
the references and to the CPU kernels, in the same order (torch.equal).

Every test starts with ``require_cuda_kernel``: it skips without a GPU and fails when a GPU is present
but the CUDA kernel is missing. The compiled CUDA op runs under ``use_backend("compiled")``; the
references run on the same data (copied to the CPU, where they are the tested specification; one test
also runs them on the GPU), and the CPU kernels too when the extension has them.
"""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl import ops
from geomdl.ops import (
    fps,
    fps_reference,
    knn,
    knn_graph,
    knn_graph_reference,
    knn_reference,
    radius,
    radius_graph,
    radius_graph_reference,
    radius_reference,
)
from geomdl.testing.cuda import require_cuda_kernel
from neighbor_checks import assert_fps_kernel_rejects_bad_plans, check_order, random_batch


def _cpu(v):
    return v.cpu() if isinstance(v, torch.Tensor) else v


def _on(v, device):
    return v.to(device) if isinstance(v, torch.Tensor) else v


def _cpu_kernels():
    return all(ops.has_kernel(op, "cpu") for op in ("radius", "knn", "fps"))


def cuda_equals_reference(op, reference, *args, **kwargs):
    """``op`` compiled on the GPU (args already there) == ``reference`` on the same data (CPU copy) ==
    the CPU kernel when built. Compared with torch.equal: same edges/indices in the same order.
    Returns the GPU result, on the CPU."""
    with ops.use_backend("compiled"):
        got = op(*args, **kwargs)
    assert got.device.type == "cuda", got.device
    assert got.dtype == torch.long
    got = got.cpu()
    cargs = [_cpu(a) for a in args]
    ckwargs = {k: _cpu(v) for k, v in kwargs.items()}
    want = reference(*cargs, **ckwargs)
    assert got.shape == want.shape, f"cuda {tuple(got.shape)} != reference {tuple(want.shape)}"
    assert torch.equal(got, want), f"cuda != reference (first difference at {_first_difference(got, want)})"
    if _cpu_kernels():
        with ops.use_backend("compiled"):
            cpu = op(*cargs, **ckwargs)
        assert torch.equal(got, cpu), "cuda != cpu kernel"
    return got


def cuda_equals_cpu_kernel(op, *args, **kwargs):
    """For large inputs: the GPU result against the CPU kernel (fast), or the reference without it."""
    with ops.use_backend("compiled"):
        got = op(*args, **kwargs).cpu()
    cargs = [_cpu(a) for a in args]
    ckwargs = {k: _cpu(v) for k, v in kwargs.items()}
    backend = "compiled" if _cpu_kernels() else "reference"
    with ops.use_backend(backend):
        want = op(*cargs, **ckwargs)
    assert got.shape == want.shape, f"cuda {tuple(got.shape)} != {backend} {tuple(want.shape)}"
    assert torch.equal(got, want), f"cuda != {backend} (first difference at {_first_difference(got, want)})"
    return got


def _first_difference(a, b):
    if a.shape != b.shape:
        return "shape"
    diff = (a != b).nonzero()
    return tuple(diff[0].tolist()) if diff.numel() else None


# --- radius ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dim", [1, 2, 3, 5])
def test_radius_graph_matches_reference(dim, dtype):
    device = require_cuda_kernel("radius")
    gen = torch.Generator().manual_seed(dim)
    n = 1500
    pos = torch.rand(n, dim, generator=gen).to(dtype)
    batch = random_batch(n, 5, gen, empty=(2,))
    r = {1: 0.004, 2: 0.05, 3: 0.14, 5: 0.4}[dim]
    # 4 and 32: lists kept in local memory; 100 and 10**6: longer lists (heap in global memory)
    for limit, loop in ((4, False), (32, True), (100, False), (10**6, True)):
        edges = cuda_equals_reference(radius_graph, radius_graph_reference, pos.to(device), r, batch.to(device),
                                      max_num_neighbors=limit, loop=loop)
        assert edges.shape[1] > 2 * n
    check_order(edges, pos, pos)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_radius_truncation_keeps_the_nearest(dtype):
    device = require_cuda_kernel("radius")
    gen = torch.Generator().manual_seed(11)
    pos = torch.rand(1500, 3, generator=gen).to(dtype)
    r = 0.3  # ~170 neighbours inside the cube, ~20 at its corners
    full = cuda_equals_reference(radius_graph, radius_graph_reference, pos.to(device), r, max_num_neighbors=10**6)
    deg = torch.bincount(full[1], minlength=pos.shape[0])
    assert int(deg.max()) > 129 and float(deg.double().mean()) > 64
    for limit in (1, 7, 64, 65, 129):  # around the local-memory capacity (64)
        edges = cuda_equals_reference(radius_graph, radius_graph_reference, pos.to(device), r,
                                      max_num_neighbors=limit)
        assert edges.shape[1] == int(deg.clamp(max=limit).sum())
        check_order(edges, pos, pos)


@pytest.mark.parametrize("dim", [2, 3, 4])
def test_bipartite_radius_and_knn_with_empty_clouds_on_either_side(dim):
    device = require_cuda_kernel("radius")
    require_cuda_kernel("knn")
    gen = torch.Generator().manual_seed(30 + dim)
    x = torch.rand(900, dim, generator=gen)
    y = torch.rand(500, dim, generator=gen) * 1.2 - 0.1  # queries partly outside the x cloud
    bx = random_batch(900, 6, gen, empty=(1, 4))
    by = random_batch(500, 6, gen, empty=(2, 4))
    xd, yd, bxd, byd = x.to(device), y.to(device), bx.to(device), by.to(device)
    for r in (0.05, 0.2, 5.0):
        cuda_equals_reference(radius, radius_reference, xd, yd, r, bxd, byd, max_num_neighbors=50)
        cuda_equals_reference(radius, radius_reference, xd, yd, r, bxd, byd, max_num_neighbors=500)
    for k in (1, 8, 70, 1000):  # 1000 > any cloud: every point of the cloud, sorted
        edges = cuda_equals_reference(knn, knn_reference, xd, yd, k, bxd, byd)
        check_order(edges, x, y)


def test_far_queries_and_bipartite_ignore_same_index():
    device = require_cuda_kernel("radius")
    require_cuda_kernel("knn")
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(400, 3, generator=gen, dtype=torch.float64)
    y = torch.cat([x[:200], x[:50] + 100.0])  # far queries: knn must still find the k nearest
    xd, yd = x.to(device), y.to(device)
    for k in (9, 80):
        cuda_equals_reference(knn, knn_reference, xd, yd, k)
        cuda_equals_reference(knn, knn_reference, xd, xd, k, ignore_same_index=True)
        cuda_equals_reference(knn, knn_reference, xd, yd, k, ignore_same_index=True)  # y != x: i indexes y
    cuda_equals_reference(radius, radius_reference, xd, yd, 0.2, max_num_neighbors=100)
    cuda_equals_reference(radius, radius_reference, xd, xd, 0.2, max_num_neighbors=100, ignore_same_index=True)
    cuda_equals_reference(radius, radius_reference, xd, yd, 0.2, max_num_neighbors=10, ignore_same_index=True)


def test_empty_and_single_point_inputs():
    device = require_cuda_kernel("radius")
    require_cuda_kernel("knn")
    for fn, ref, arg in ((radius_graph, radius_graph_reference, 1.0), (knn_graph, knn_graph_reference, 3)):
        for pos in (torch.zeros(0, 3), torch.zeros(1, 3), torch.zeros(0, 2, dtype=torch.float64),
                    torch.zeros(1, 5, dtype=torch.float64)):
            for loop in (False, True):
                edges = cuda_equals_reference(fn, ref, pos.to(device), arg, loop=loop)
                assert edges.shape == (2, pos.shape[0] if loop else 0)
    x = torch.rand(5, 3).to(device)
    empty = torch.zeros(0, 3, device=device)
    assert cuda_equals_reference(radius, radius_reference, x, empty, 0.5).shape == (2, 0)
    assert cuda_equals_reference(radius, radius_reference, empty, x, 0.5).shape == (2, 0)
    assert cuda_equals_reference(knn, knn_reference, empty, x, 2).shape == (2, 0)
    assert cuda_equals_reference(knn, knn_reference, x, empty, 2).shape == (2, 0)
    # points and queries in different clouds only: no edges at all
    bx = torch.zeros(5, dtype=torch.long, device=device)
    by = torch.ones(5, dtype=torch.long, device=device)
    assert cuda_equals_reference(radius, radius_reference, x, x, 10.0, bx, by).shape == (2, 0)
    assert cuda_equals_reference(knn, knn_reference, x, x, 3, bx, by).shape == (2, 0)


def test_coincident_points_tie_to_the_lowest_index():
    device = require_cuda_kernel("radius")
    require_cuda_kernel("knn")
    pos = torch.zeros(40, 3, device=device)
    edges = cuda_equals_reference(radius_graph, radius_graph_reference, pos, 0.1, max_num_neighbors=5)
    assert edges[0, :5].tolist() == [1, 2, 3, 4, 5] and edges[1, :5].tolist() == [0] * 5
    edges = cuda_equals_reference(knn_graph, knn_graph_reference, pos, 3, loop=True)
    assert edges[0, 6:9].tolist() == [0, 1, 2]  # query 2: itself is not preferred over lower indices
    big = torch.zeros(300, 2, device=device)  # 300 ties per query: heap path
    cuda_equals_reference(radius_graph, radius_graph_reference, big, 0.5, max_num_neighbors=200)
    cuda_equals_reference(knn_graph, knn_graph_reference, big, 150)
    gen = torch.Generator().manual_seed(12)
    dup = torch.cat([torch.rand(30, 2, generator=gen), torch.rand(30, 2, generator=gen)])
    dup = dup[torch.randperm(60, generator=gen)]
    dup = torch.cat([dup, dup]).to(device)  # every point twice
    for loop in (False, True):
        cuda_equals_reference(knn_graph, knn_graph_reference, dup, 4, loop=loop)
        cuda_equals_reference(knn_graph, knn_graph_reference, dup, 90, loop=loop)
        cuda_equals_reference(radius_graph, radius_graph_reference, dup, 0.2, max_num_neighbors=6, loop=loop)
        cuda_equals_reference(radius_graph, radius_graph_reference, dup, 0.2, max_num_neighbors=80, loop=loop)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_points_exactly_at_distance_r_are_included(dim):
    device = require_cuda_kernel("radius")
    require_cuda_kernel("knn")
    side = {1: 50, 2: 12, 3: 6}[dim]
    grid = torch.stack(torch.meshgrid(*[torch.arange(side)] * dim, indexing="ij"), -1).reshape(-1, dim)
    for scale in (1.0, 0.1, 0.3):  # 0.1 and 0.3: distances that round in binary
        for dtype in (torch.float64, torch.float32):
            pos = (grid.double() * scale).to(dtype).to(device)
            r = float(pos[1, -1] - pos[0, -1])  # the lattice step as stored
            edges = cuda_equals_reference(radius_graph, radius_graph_reference, pos, r, max_num_neighbors=100)
            if scale == 1.0:  # integer lattice: exactly the 2 * dim axis neighbours of an interior point
                interior = ((grid > 0) & (grid < side - 1)).all(1)
                deg = torch.bincount(edges[1], minlength=pos.shape[0])
                assert bool((deg[interior] == 2 * dim).all())
            cuda_equals_reference(knn_graph, knn_graph_reference, pos, 2 * dim + 1)


def test_coordinates_far_from_the_origin_and_flat_clouds():
    device = require_cuda_kernel("radius")
    require_cuda_kernel("knn")
    gen = torch.Generator().manual_seed(6)
    base = torch.rand(800, 3, generator=gen, dtype=torch.float64)
    for offset in (1e6, -3e8):
        pos = (base + offset).to(device)
        cuda_equals_reference(radius_graph, radius_graph_reference, pos, 0.1, max_num_neighbors=40)
        cuda_equals_reference(knn_graph, knn_graph_reference, pos, 6)
    flat = base.clone()
    flat[:, 1] = 0.5  # a plane in 3-D: one cell along y
    cuda_equals_reference(radius_graph, radius_graph_reference, flat.to(device), 0.05, max_num_neighbors=40)
    cuda_equals_reference(knn_graph, knn_graph_reference, flat.to(device), 6)
    line = torch.zeros(500, 3)
    line[:, 2] = torch.rand(500, generator=gen)
    cuda_equals_reference(radius_graph, radius_graph_reference, line.to(device), 0.01, max_num_neighbors=40)
    cuda_equals_reference(knn_graph, knn_graph_reference, line.to(device), 5)


def test_tiny_and_huge_radius():
    device = require_cuda_kernel("radius")
    gen = torch.Generator().manual_seed(7)
    pos = torch.rand(300, 3, generator=gen).to(device)
    assert cuda_equals_reference(radius_graph, radius_graph_reference, pos, 1e-9).shape == (2, 0)
    edges = cuda_equals_reference(radius_graph, radius_graph_reference, pos, 1e3, max_num_neighbors=1000)
    assert edges.shape[1] == 300 * 299


def test_spread_out_cloud_with_tiny_radius_caps_the_grid():
    device = require_cuda_kernel("radius")
    require_cuda_kernel("knn")
    gen = torch.Generator().manual_seed(8)
    n = 20_000
    pos = (torch.rand(n, 3, generator=gen, dtype=torch.float64) - 0.5) * 1e6  # (1e6 / 1e-3)^3 cells uncapped
    pos[n // 2:] = pos[: n // 2] + torch.rand(n // 2, 3, generator=gen, dtype=torch.float64) * 1e-3  # close pairs
    edges = cuda_equals_cpu_kernel(radius_graph, pos.to(device), 1e-3, max_num_neighbors=16)
    assert edges.shape[1] > 0
    cuda_equals_cpu_kernel(knn_graph, pos.to(device), 4)
    # mixed scales: one dense cluster and far outliers, and a 1-D line of many cells
    mixed = torch.cat([torch.rand(5000, 3, generator=gen) * 1e-2, torch.rand(50, 3, generator=gen) * 1e7])
    cuda_equals_cpu_kernel(radius_graph, mixed.to(device), 1e-4, max_num_neighbors=32)
    cuda_equals_cpu_kernel(knn_graph, mixed.to(device), 8)
    line = torch.zeros(50_000, 2)
    line[:, 0] = torch.rand(50_000, generator=gen) * 1e5
    cuda_equals_cpu_kernel(radius_graph, line.to(device), 0.5, max_num_neighbors=8)
    cuda_equals_cpu_kernel(knn_graph, line.to(device), 3)


def test_large_random_cloud():
    device = require_cuda_kernel("radius")
    require_cuda_kernel("knn")
    gen = torch.Generator().manual_seed(5)
    n = 200_000
    pos = torch.rand(n, 3, generator=gen)
    r = (32 / (n * 4 / 3 * math.pi)) ** (1 / 3)  # ~32 neighbours
    batch = torch.cat([torch.zeros(n - 5000, dtype=torch.long), torch.ones(5000, dtype=torch.long) * 2])
    posd, batchd = pos.to(device), batch.to(device)
    for limit in (32, 64, 128):
        edges = cuda_equals_cpu_kernel(radius_graph, posd, r, batchd, max_num_neighbors=limit)
        check_order(edges[:, :20_000], pos, pos)
    for k in (1, 16, 65):
        edges = cuda_equals_cpu_kernel(knn_graph, posd, k, batchd)
        assert edges.shape[1] == n * k
    # bipartite: queries in another order than the points
    y = torch.rand(50_000, 3, generator=gen)
    cuda_equals_cpu_kernel(radius, posd, y.to(device), r, max_num_neighbors=48)
    cuda_equals_cpu_kernel(knn, posd, y.to(device), 12)


def test_high_dimensional_features():
    device = require_cuda_kernel("knn")
    require_cuda_kernel("radius")
    gen = torch.Generator().manual_seed(9)
    for dtype in (torch.float32, torch.float64):
        feats = torch.randn(2000, 16, generator=gen).to(dtype)
        batch = random_batch(2000, 3, gen).to(device)
        cuda_equals_reference(knn_graph, knn_graph_reference, feats.to(device), 20, batch)
        cuda_equals_reference(radius_graph, radius_graph_reference, feats.to(device), 3.5, batch, max_num_neighbors=40)


def test_references_on_the_gpu_agree():
    device = require_cuda_kernel("radius")
    require_cuda_kernel("knn")
    gen = torch.Generator().manual_seed(13)
    pos = torch.rand(1200, 3, generator=gen).to(device)
    batch = random_batch(1200, 3, gen, empty=(1,)).to(device)
    with ops.use_backend("compiled"):
        got_r = radius_graph(pos, 0.12, batch, max_num_neighbors=24)
        got_k = knn_graph(pos, 10, batch)
    assert torch.equal(got_r, radius_graph_reference(pos, 0.12, batch, max_num_neighbors=24))
    assert torch.equal(got_k, knn_graph_reference(pos, 10, batch))


def test_kernel_boundary_checks_and_cpu_pointers():
    device = require_cuda_kernel("radius")
    require_cuda_kernel("knn")
    x = torch.rand(6, 3, device=device)
    p6 = torch.tensor([0, 6])
    with pytest.raises(RuntimeError, match="ptr_x"):
        torch.ops.geomdl.radius(x, x, 0.5, torch.tensor([0, 4]), p6, 8, False)
    with pytest.raises(RuntimeError, match="ptr_x"):
        torch.ops.geomdl.radius(x, x, 0.5, torch.tensor([0, 4], device=device), p6.to(device), 8, False)
    with pytest.raises(RuntimeError, match="non-decreasing"):
        torch.ops.geomdl.knn(x, x, 2, torch.tensor([0, 5, 3, 6]), torch.tensor([0, 2, 4, 6]), False)
    with pytest.raises(RuntimeError, match="same length"):
        torch.ops.geomdl.knn(x, x, 2, p6, torch.tensor([0, 3, 6]), False)
    with pytest.raises(RuntimeError, match="k must be >= 1"):
        torch.ops.geomdl.knn(x, x, 0, p6, p6, False)
    with pytest.raises(RuntimeError, match="max_num_neighbors"):
        torch.ops.geomdl.radius(x, x, 0.5, p6, p6, 0, False)
    # batch pointers on the CPU or on the GPU give the same edges
    gen = torch.Generator().manual_seed(14)
    pts = torch.rand(300, 3, generator=gen).to(device)
    ptr = torch.tensor([0, 100, 100, 300])
    for op, arg in ((torch.ops.geomdl.radius, 0.2), (torch.ops.geomdl.knn, 5)):
        extra = (16, True) if op is torch.ops.geomdl.radius else (True,)
        a = op(pts, pts, arg, ptr, ptr, *extra)
        b = op(pts, pts, arg, ptr.to(device), ptr.to(device), *extra)
        assert a.device.type == "cuda" and torch.equal(a, b)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), dim=st.integers(1, 4), n=st.integers(0, 120), m=st.integers(0, 60),
       clouds=st.integers(1, 4), lattice=st.booleans(), r=st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.7]),
       k=st.sampled_from([1, 3, 10, 70]), limit=st.sampled_from([1, 5, 12, 70]), double=st.booleans())
def test_property_random_clouds(seed, dim, n, m, clouds, lattice, r, k, limit, double):
    device = require_cuda_kernel("radius")
    require_cuda_kernel("knn")
    gen = torch.Generator().manual_seed(seed)
    dtype = torch.float64 if double else torch.float32
    if lattice:  # small integer coordinates: many ties and points exactly at distance r
        x = torch.randint(0, 4, (n, dim), generator=gen).to(dtype)
        y = torch.randint(0, 4, (m, dim), generator=gen).to(dtype)
    else:
        x = (torch.rand(n, dim, generator=gen) * 6).to(dtype)
        y = (torch.rand(m, dim, generator=gen) * 6).to(dtype)
    bx, by = random_batch(n, clouds, gen).to(device), random_batch(m, clouds, gen).to(device)
    x, y = x.to(device), y.to(device)
    cuda_equals_reference(radius, radius_reference, x, y, r, bx, by, max_num_neighbors=limit)
    cuda_equals_reference(knn, knn_reference, x, y, k, bx, by)
    cuda_equals_reference(radius_graph, radius_graph_reference, x, r, bx, max_num_neighbors=limit, loop=bool(seed % 2))
    cuda_equals_reference(knn_graph, knn_graph_reference, x, k, bx, loop=bool(seed % 3))


# --- fps -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dim", [1, 2, 3, 7])
def test_fps_matches_reference_on_batches(dim, dtype):
    device = require_cuda_kernel("fps")
    gen = torch.Generator().manual_seed(10 + dim)
    pos = torch.randn(700, dim, generator=gen).to(dtype)
    batch = torch.sort(torch.tensor([0, 1, 3, 4])[torch.randint(0, 4, (700,), generator=gen)]).values  # cloud 2 empty
    posd, batchd = pos.to(device), batch.to(device)
    cuda_equals_reference(fps, fps_reference, posd, batchd, ratio=0.1)
    cuda_equals_reference(fps, fps_reference, posd, batchd, num=40)
    cuda_equals_reference(fps, fps_reference, posd, batchd, ratio=1.0)
    cuda_equals_reference(fps, fps_reference, posd, batchd, num=30, start=torch.tensor([5, 0, 0, 17, 2]))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    with ops.use_backend("compiled"):
        a = fps(posd, batchd, num=25, random_start=True, generator=g1)
    assert torch.equal(a.cpu(), fps_reference(pos, batch, num=25, random_start=True, generator=g2))


# 256-thread blocks; 1024 threads with the minima in (static-sized, then opt-in) shared memory; minima in
# global memory
@pytest.mark.parametrize("n", [1500, 5000, 20_000, 40_000])
def test_fps_block_sizes_and_memory_paths(n):
    device = require_cuda_kernel("fps")
    gen = torch.Generator().manual_seed(n)
    pos = torch.rand(n, 3, generator=gen)
    batch = torch.cat([torch.zeros(n - 700, dtype=torch.long), torch.ones(700, dtype=torch.long)])
    out = cuda_equals_reference(fps, fps_reference, pos.to(device), batch.to(device), num=64,
                                start=torch.tensor([n // 3, 699]))
    assert out.unique().numel() == 128


def test_fps_large_cloud():
    device = require_cuda_kernel("fps")
    gen = torch.Generator().manual_seed(1)
    n = (1 << 18) + 1000
    pos = torch.rand(n, 3, generator=gen)
    out = cuda_equals_reference(fps, fps_reference, pos.to(device), num=25)
    assert out.unique().numel() == 25
    pos2 = torch.cat([pos, torch.rand(300, 3, generator=gen)])
    cuda_equals_reference(fps, fps_reference, pos2.to(device), torch.tensor([0] * n + [1] * 300).to(device), num=12,
                          start=torch.tensor([n - 1, 5]))


def test_fps_ties_and_duplicates():
    device = require_cuda_kernel("fps")
    same = torch.zeros(5, 3, device=device)
    assert cuda_equals_reference(fps, fps_reference, same, num=5).tolist() == [0, 0, 0, 0, 0]
    square = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.5]], device=device)
    assert cuda_equals_reference(fps, fps_reference, square, num=4).tolist() == [0, 3, 1, 2]
    gen = torch.Generator().manual_seed(2)
    dup = torch.rand(40, 2, generator=gen).repeat(3, 1).to(device)
    cuda_equals_reference(fps, fps_reference, dup, num=100)
    lattice = torch.stack(torch.meshgrid(torch.arange(9.0), torch.arange(9.0), indexing="ij"), -1).reshape(-1, 2)
    cuda_equals_reference(fps, fps_reference, lattice.to(device), num=30)
    big_lattice = torch.stack(torch.meshgrid(*[torch.arange(40.0)] * 3, indexing="ij"), -1).reshape(-1, 3)
    cuda_equals_reference(fps, fps_reference, big_lattice.to(device), num=50)  # ties across warps and threads
    cuda_equals_reference(fps, fps_reference, big_lattice.to(device), num=50, start=torch.tensor([31_999]))


def test_fps_edge_cases_empty_single_and_more_than_the_cloud():
    device = require_cuda_kernel("fps")
    assert cuda_equals_reference(fps, fps_reference, torch.zeros(0, 3, device=device), num=4).shape == (0,)
    assert cuda_equals_reference(fps, fps_reference, torch.zeros(1, 3, device=device), ratio=0.5).tolist() == [0]
    pos = torch.rand(7, 3).to(device)
    assert sorted(cuda_equals_reference(fps, fps_reference, pos, num=100).tolist()) == list(range(7))
    assert cuda_equals_reference(fps, fps_reference, pos, ratio=1.0).shape == (7,)
    far = (torch.rand(50, 3, dtype=torch.float64) + 1e7).to(device)
    cuda_equals_reference(fps, fps_reference, far, num=20)
    # clouds of one point between larger ones
    batch = torch.tensor([0, 1, 1, 1, 2, 3, 3]).to(device)
    cuda_equals_reference(fps, fps_reference, pos, batch, num=3)


def test_fps_kernel_boundary_checks():
    device = require_cuda_kernel("fps")
    pos = torch.rand(6, 3, device=device)
    assert_fps_kernel_rejects_bad_plans(pos)
    a = torch.ops.geomdl.fps(pos, torch.tensor([0, 6]), torch.tensor([4]), torch.tensor([2]))
    b = torch.ops.geomdl.fps(pos, torch.tensor([0, 6], device=device), torch.tensor([4], device=device),
                             torch.tensor([2], device=device))
    assert a.device.type == "cuda" and torch.equal(a, b)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(0, 150), dim=st.integers(1, 5), clouds=st.integers(1, 4),
       num=st.integers(1, 40), lattice=st.booleans(), double=st.booleans())
def test_fps_property_random_clouds(seed, n, dim, clouds, num, lattice, double):
    device = require_cuda_kernel("fps")
    gen = torch.Generator().manual_seed(seed)
    dtype = torch.float64 if double else torch.float32
    pos = torch.randint(0, 3, (n, dim), generator=gen).to(dtype) if lattice else torch.randn(n, dim, generator=gen).to(dtype)
    batch = torch.sort(torch.randint(0, clouds, (n,), generator=gen)).values
    cuda_equals_reference(fps, fps_reference, pos.to(device), batch.to(device), num=num)
