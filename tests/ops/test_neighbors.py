"""radius / knn / radius_graph / knn_graph: compiled kernels == references (edge for edge, same order),
references == exhaustive search (scipy cKDTree sets), edge cases and argument errors."""
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree

from geomdl import ops
from geomdl.ops import (
    knn,
    knn_graph,
    knn_graph_reference,
    knn_reference,
    radius,
    radius_graph,
    radius_graph_reference,
    radius_reference,
)
from geomdl.ops.neighbors import squared_distance
from geomdl.testing import assert_kernel_matches_reference
from neighbor_checks import check_order, random_batch

compiled = pytest.mark.skipif(not (ops.has_kernel("radius") and ops.has_kernel("knn")),
                              reason="geomdl._C not built (reference mode)")


def compiled_equals_reference(op, reference, *args, **kwargs):
    """Both paths, compared with torch.equal (same edges, same order); returns the edges."""
    with ops.use_backend("compiled"):
        got = op(*args, **kwargs)
    want = reference(*args, **kwargs)
    assert got.dtype == torch.long and got.shape[0] == 2
    assert torch.equal(got, want), f"compiled {tuple(got.shape)} != reference {tuple(want.shape)}"
    return got


# --- the references against an exhaustive search --------------------------------------------


@pytest.mark.parametrize("dim", [2, 3, 5])
def test_radius_reference_matches_ckdtree_ball_sets(dim):
    gen = torch.Generator().manual_seed(dim)
    x = torch.rand(600, dim, generator=gen, dtype=torch.float64)
    y = torch.rand(250, dim, generator=gen, dtype=torch.float64)
    bx, by = random_batch(600, 3, gen), random_batch(250, 3, gen)
    r = 0.25 if dim <= 3 else 0.45
    edges = radius_reference(x, y, r, bx, by, max_num_neighbors=10**6)
    check_order(edges, x, y)
    expected = set()
    for b in range(3):
        xi, yi = torch.nonzero(bx == b).flatten(), torch.nonzero(by == b).flatten()
        tree = cKDTree(x[xi].numpy())
        for q, hits in zip(yi.tolist(), tree.query_ball_point(y[yi].numpy(), r)):
            expected.update((int(xi[h]), q) for h in hits)
    assert set(map(tuple, edges.T.tolist())) == expected


@pytest.mark.parametrize("dim", [1, 3, 4])
def test_knn_reference_matches_ckdtree_query(dim):
    gen = torch.Generator().manual_seed(10 + dim)
    x = torch.rand(5000, dim, generator=gen, dtype=torch.float64)  # > 4096: the grid path for dim <= 3
    y = torch.rand(300, dim, generator=gen, dtype=torch.float64)
    k = 7
    edges = knn_reference(x, y, k)
    check_order(edges, x, y)
    _, idx = cKDTree(x.numpy()).query(y.numpy(), k=k)
    expected = {(int(j), q) for q, row in enumerate(idx) for j in row}
    assert set(map(tuple, edges.T.tolist())) == expected


# --- compiled == reference ----------------------------------------------------------------------


@compiled
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dim", [1, 2, 3, 5])
def test_radius_graph_compiled_matches_reference(dim, dtype):
    gen = torch.Generator().manual_seed(dim)
    n = 1500
    pos = torch.rand(n, dim, generator=gen).to(dtype)
    batch = random_batch(n, 5, gen, empty=(2,))
    r = {1: 0.004, 2: 0.05, 3: 0.14, 5: 0.4}[dim]
    for limit, loop in ((4, False), (32, True), (10**6, False)):
        edges = compiled_equals_reference(radius_graph, radius_graph_reference, pos, r, batch,
                                          max_num_neighbors=limit, loop=loop)
        assert edges.shape[1] > 2 * n  # a real workload, not an empty graph
    check_order(edges, pos, pos)


@compiled
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dim", [1, 2, 3, 6])
def test_knn_graph_compiled_matches_reference(dim, dtype):
    gen = torch.Generator().manual_seed(20 + dim)
    n = 1500
    pos = torch.randn(n, dim, generator=gen).to(dtype)
    batch = random_batch(n, 4, gen, empty=(0,))
    for k, loop in ((1, False), (5, True), (16, False)):
        edges = compiled_equals_reference(knn_graph, knn_graph_reference, pos, k, batch, loop=loop)
        assert edges.shape[1] == n * k
    check_order(edges, pos, pos)


@compiled
def test_large_single_cloud_uses_the_threaded_grid_path_and_matches():
    gen = torch.Generator().manual_seed(5)
    n = 5000  # > 4096 points: the reference's grid knn; N + M >= 4096: the threaded kernel path
    pos = torch.rand(n, 3, generator=gen)
    r = (20 / (n * 4 / 3 * math.pi)) ** (1 / 3)
    assert_kernel_matches_reference(radius_graph, radius_graph_reference, pos, r, max_num_neighbors=64,
                                    backward=False, exact=True)
    assert_kernel_matches_reference(knn_graph, knn_graph_reference, pos, 12, backward=False, exact=True)


@compiled
@pytest.mark.parametrize("dim", [2, 3, 4])
def test_bipartite_radius_and_knn_with_empty_clouds_on_either_side(dim):
    gen = torch.Generator().manual_seed(30 + dim)
    x = torch.rand(900, dim, generator=gen)
    y = torch.rand(500, dim, generator=gen) * 1.2 - 0.1  # queries partly outside the x cloud
    bx = random_batch(900, 6, gen, empty=(1, 4))
    by = random_batch(500, 6, gen, empty=(2, 4))
    for r in (0.05, 0.2, 5.0):
        compiled_equals_reference(radius, radius_reference, x, y, r, bx, by, max_num_neighbors=50)
    for k in (1, 8, 1000):  # 1000 > any cloud: every point of the cloud, sorted
        edges = compiled_equals_reference(knn, knn_reference, x, y, k, bx, by)
        check_order(edges, x, y)


@compiled
def test_far_queries_and_bipartite_ignore_same_index():
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(400, 3, generator=gen, dtype=torch.float64)
    y = torch.cat([x[:200], x[:50] + 100.0])  # far queries: knn must still find the k nearest
    compiled_equals_reference(knn, knn_reference, x, y, 9)
    compiled_equals_reference(knn, knn_reference, x, x, 9, ignore_same_index=True)
    compiled_equals_reference(radius, radius_reference, x, y, 0.2, max_num_neighbors=100)
    compiled_equals_reference(radius, radius_reference, x, x, 0.2, max_num_neighbors=100, ignore_same_index=True)


# --- edge cases ----------------------------------------------------------------------------------


@compiled
def test_empty_and_single_point_inputs():
    for fn, ref, arg in ((radius_graph, radius_graph_reference, 1.0), (knn_graph, knn_graph_reference, 3)):
        for pos in (torch.zeros(0, 3), torch.zeros(1, 3), torch.zeros(0, 2, dtype=torch.float64)):
            for loop in (False, True):
                edges = compiled_equals_reference(fn, ref, pos, arg, loop=loop)
                assert edges.shape == (2, pos.shape[0] if loop else 0)
    x = torch.rand(5, 3)
    assert compiled_equals_reference(radius, radius_reference, x, torch.zeros(0, 3), 0.5).shape == (2, 0)
    assert compiled_equals_reference(knn, knn_reference, torch.zeros(0, 3), x, 2).shape == (2, 0)


@compiled
def test_coincident_points_tie_to_the_lowest_index():
    pos = torch.zeros(40, 3)
    edges = compiled_equals_reference(radius_graph, radius_graph_reference, pos, 0.1, max_num_neighbors=5)
    assert edges[0, :5].tolist() == [1, 2, 3, 4, 5] and edges[1, :5].tolist() == [0] * 5
    edges = compiled_equals_reference(knn_graph, knn_graph_reference, pos, 3, loop=True)
    assert edges[0, 6:9].tolist() == [0, 1, 2]  # query 2: itself is not preferred over lower indices
    dup = torch.cat([torch.rand(30, 2), torch.rand(30, 2)])[torch.randperm(60)]
    dup = torch.cat([dup, dup])  # every point twice
    compiled_equals_reference(knn_graph, knn_graph_reference, dup, 4)
    compiled_equals_reference(radius_graph, radius_graph_reference, dup, 0.2, max_num_neighbors=6)


@compiled
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_points_exactly_at_distance_r_are_included(dim):
    side = {1: 50, 2: 12, 3: 6}[dim]
    grid = torch.stack(torch.meshgrid(*[torch.arange(side)] * dim, indexing="ij"), -1).reshape(-1, dim)
    for scale in (1.0, 0.1, 0.3):  # 0.1 and 0.3: distances that round in binary
        pos = grid.double() * scale
        edges = compiled_equals_reference(radius_graph, radius_graph_reference, pos, scale, max_num_neighbors=100)
        d2 = squared_distance(pos[edges[0]], pos[edges[1]])
        assert bool((d2 <= scale * scale).all())
        if scale == 1.0:  # integer lattice: exactly the 2 * dim axis neighbours of an interior point
            interior = ((grid > 0) & (grid < side - 1)).all(1)
            deg = torch.bincount(edges[1], minlength=pos.shape[0])
            assert bool((deg[interior] == 2 * dim).all())
        compiled_equals_reference(knn_graph, knn_graph_reference, pos, 2 * dim + 1)


@compiled
def test_k_larger_than_the_cloud_returns_the_whole_cloud_sorted():
    gen = torch.Generator().manual_seed(4)
    pos = torch.rand(30, 3, generator=gen)
    batch = torch.tensor([0] * 4 + [1] * 25 + [3])
    edges = compiled_equals_reference(knn_graph, knn_graph_reference, pos, 50, batch)
    assert edges.shape[1] == 4 * 3 + 25 * 24 + 0
    edges = compiled_equals_reference(knn_graph, knn_graph_reference, pos, 50, batch, loop=True)
    assert edges.shape[1] == 16 + 625 + 1
    check_order(edges, pos, pos)


@compiled
def test_coordinates_far_from_the_origin_and_flat_clouds():
    gen = torch.Generator().manual_seed(6)
    base = torch.rand(800, 3, generator=gen, dtype=torch.float64)
    for offset in (1e6, -3e8):
        pos = base + offset
        compiled_equals_reference(radius_graph, radius_graph_reference, pos, 0.1, max_num_neighbors=40)
        compiled_equals_reference(knn_graph, knn_graph_reference, pos, 6)
    flat = base.clone()
    flat[:, 1] = 0.5  # a plane in 3-D: one cell along y
    compiled_equals_reference(radius_graph, radius_graph_reference, flat, 0.05, max_num_neighbors=40)
    compiled_equals_reference(knn_graph, knn_graph_reference, flat, 6)
    line = torch.zeros(500, 3)
    line[:, 2] = torch.rand(500, generator=gen)
    compiled_equals_reference(radius_graph, radius_graph_reference, line, 0.01, max_num_neighbors=40)
    compiled_equals_reference(knn_graph, knn_graph_reference, line, 5)


@compiled
def test_tiny_and_huge_radius():
    gen = torch.Generator().manual_seed(7)
    pos = torch.rand(300, 3, generator=gen)
    assert compiled_equals_reference(radius_graph, radius_graph_reference, pos, 1e-9).shape == (2, 0)
    edges = compiled_equals_reference(radius_graph, radius_graph_reference, pos, 1e3, max_num_neighbors=1000)
    assert edges.shape[1] == 300 * 299



@pytest.mark.parametrize("dim", [2, 3, 6])
@pytest.mark.parametrize("r", [1e-6, 1e-9])
def test_reference_keeps_coincident_points_at_a_radius_far_below_the_coordinates(dim, r):
    # pairs at distance 0 (self loops, duplicated points) lie within any r; the references' dense prefilter once used
    # torch.cdist's matrix-product form, which puts a point about 1e-8 |x| away from itself, and dropped them
    gen = torch.Generator().manual_seed(3)
    pos = torch.randn(300, dim, generator=gen, dtype=torch.float64) * 1e3
    pos = torch.cat([pos, pos[:20]])  # points 300..319 duplicate 0..19
    dup = torch.arange(20)
    want = {(i, i) for i in range(320)} | {(j, j + 300) for j in range(20)} | {(j + 300, j) for j in range(20)}
    edges = radius_graph_reference(pos, r, loop=True)
    assert set(map(tuple, edges.T.tolist())) == want
    edges = radius_reference(pos, pos[dup].clone(), r)
    assert set(map(tuple, edges.T.tolist())) == {(j, j) for j in range(20)} | {(j + 300, j) for j in range(20)}
    if ops.has_kernel("radius"):
        compiled_equals_reference(radius_graph, radius_graph_reference, pos, r, loop=True)

@compiled
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), dim=st.integers(1, 4), n=st.integers(0, 120), m=st.integers(0, 60),
       clouds=st.integers(1, 4), lattice=st.booleans(), r=st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.7]),
       k=st.integers(1, 10), limit=st.integers(1, 12), double=st.booleans())
def test_property_random_clouds_compiled_equals_reference(seed, dim, n, m, clouds, lattice, r, k, limit, double):
    gen = torch.Generator().manual_seed(seed)
    dtype = torch.float64 if double else torch.float32
    if lattice:  # small integer coordinates: many ties and points exactly at distance r
        x = torch.randint(0, 4, (n, dim), generator=gen).to(dtype)
        y = torch.randint(0, 4, (m, dim), generator=gen).to(dtype)
    else:
        x = (torch.rand(n, dim, generator=gen) * 6).to(dtype)
        y = (torch.rand(m, dim, generator=gen) * 6).to(dtype)
    bx, by = random_batch(n, clouds, gen), random_batch(m, clouds, gen)
    compiled_equals_reference(radius, radius_reference, x, y, r, bx, by, max_num_neighbors=limit)
    compiled_equals_reference(knn, knn_reference, x, y, k, bx, by)
    compiled_equals_reference(radius_graph, radius_graph_reference, x, r, bx, max_num_neighbors=limit)
    compiled_equals_reference(knn_graph, knn_graph_reference, x, k, bx, loop=bool(seed % 2))


# --- backends and errors ---------------------------------------------------------------------------


def test_reference_backend_from_the_environment(monkeypatch):
    gen = torch.Generator().manual_seed(8)
    pos = torch.rand(200, 3, generator=gen)
    monkeypatch.setenv("GEOMDL_KERNELS", "reference")
    assert ops.get_backend() == "reference"
    assert not ops._extension.use_compiled("radius", pos)
    assert torch.equal(radius_graph(pos, 0.2), radius_graph_reference(pos, 0.2))
    assert torch.equal(knn_graph(pos, 4), knn_graph_reference(pos, 4))


def test_bad_arguments_raise_clear_errors():
    pos = torch.rand(10, 3)
    with pytest.raises(ValueError, match="r must be a positive"):
        radius_graph(pos, -0.5)
    with pytest.raises(ValueError, match="r must be a positive"):
        radius_graph(pos, 0.0)
    with pytest.raises(ValueError, match="max_num_neighbors"):
        radius_graph(pos, 0.5, max_num_neighbors=0)
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        knn_graph(pos, 0)
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        knn_graph(pos, 2.5)
    with pytest.raises(ValueError, match="batch must be sorted"):
        knn_graph(pos, 2, torch.tensor([0, 1, 0, 1, 0, 1, 0, 1, 0, 1]))
    with pytest.raises(ValueError, match="batch must have 10 entries"):
        radius_graph(pos, 0.5, torch.zeros(9, dtype=torch.long))
    with pytest.raises(ValueError, match="batch has a negative entry"):
        radius_graph(pos, 0.5, torch.full((10,), -1))
    with pytest.raises(TypeError, match="batch must have an integer dtype"):
        radius_graph(pos, 0.5, torch.zeros(10))
    with pytest.raises(ValueError, match="same dimension"):
        radius(pos, torch.rand(4, 2), 0.5)
    with pytest.raises(TypeError, match="same dtype"):
        knn(pos, pos.double(), 2)
    with pytest.raises(TypeError, match="pos must have a floating dtype"):
        knn_graph(torch.ones(5, 3, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="pos must be 2-D"):
        radius_graph(torch.rand(10), 0.5)
    bad = pos.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="pos contains NaN"):
        radius_graph(bad, 0.5)
    with pytest.raises(ValueError, match="y contains NaN"):
        knn(pos, bad, 2)
    bad[3, 1] = float("inf")
    with pytest.raises(ValueError, match="pos contains NaN or infinite"):
        knn_graph(bad, 2)
    # flags are bools on both paths ("no" meant True in the references and in knn_graph(loop=...))
    for call in (lambda: knn_graph(pos, 2, loop="no"), lambda: radius_graph(pos, 0.5, loop="no"),
                 lambda: knn_graph_reference(pos, 2, loop="no"), lambda: radius_graph_reference(pos, 0.5, loop=None)):
        with pytest.raises(ValueError, match="loop must be a bool"):
            call()
    for call in (knn, knn_reference):
        with pytest.raises(ValueError, match="ignore_same_index must be a bool"):
            call(pos, pos, 2, ignore_same_index="no")
    for call in (radius, radius_reference):
        with pytest.raises(ValueError, match="ignore_same_index must be a bool"):
            call(pos, pos, 0.5, ignore_same_index=2)
    assert torch.equal(knn_graph(pos, 2, loop=np.bool_(True)), knn_graph(pos, 2, loop=True))


@compiled
def test_kernel_boundary_rejects_inconsistent_batch_pointers():
    x = torch.rand(6, 3)
    with pytest.raises(RuntimeError, match="ptr_x"):
        torch.ops.geomdl.radius(x, x, 0.5, torch.tensor([0, 4]), torch.tensor([0, 6]), 8, False)
    with pytest.raises(RuntimeError, match="non-decreasing"):
        torch.ops.geomdl.knn(x, x, 2, torch.tensor([0, 5, 3, 6]), torch.tensor([0, 2, 4, 6]), False)
    with pytest.raises(RuntimeError, match="same length"):
        torch.ops.geomdl.knn(x, x, 2, torch.tensor([0, 6]), torch.tensor([0, 3, 6]), False)
    with pytest.raises(RuntimeError, match="k must be >= 1"):
        torch.ops.geomdl.knn(x, x, 0, torch.tensor([0, 6]), torch.tensor([0, 6]), False)


def test_squared_distance_sums_left_to_right():
    gen = torch.Generator().manual_seed(9)
    a, b = torch.randn(500, 9, generator=gen) * 1e3, torch.randn(500, 9, generator=gen)
    sq = (a.double() - b.double()) ** 2
    expected = np.zeros(500)
    for d in range(9):
        expected = expected + sq[:, d].numpy()
    assert np.array_equal(squared_distance(a, b).numpy(), expected)


@pytest.mark.parametrize("call", [lambda p: ops.radius_graph(p, 1.0), lambda p: ops.knn_graph(p, 2),
                                  lambda p: ops.radius(p, p[:3], 1.0), lambda p: ops.fps(p, ratio=0.5)])
def test_float64_positions_that_require_grad_give_no_warning(call):
    # the scale check of float64 coordinates read float(x.abs().max()) of the positions themselves, and torch warned
    # "Converting a tensor with requires_grad=True to a scalar" on every call with positions that track forces
    pos = torch.randn(10, 3, dtype=torch.float64, requires_grad=True)
    previous = torch.is_warn_always_enabled()
    torch.set_warn_always(True)  # (torch warns it once per process otherwise)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            call(pos)
    finally:
        torch.set_warn_always(previous)
