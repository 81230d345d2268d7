"""The dense kNN search of the CPU kernel (knn_dense_cpu.cpp, chosen for feature spaces such as DGCNN's
when it is expected to be cheaper than the grid; forced here with GEOMDL_KNN_SEARCH=dense) against the
reference and an exhaustive oracle: random, tied, badly conditioned and misaligned inputs, the
boundaries of its candidate set, a property test; and the automatic choice."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl import ops
from geomdl.ops import knn, knn_graph, knn_graph_reference, knn_reference
from neighbor_checks import assert_searches_agree, bipartite_clouds, brute_force_neighbors, check_order, random_batch

compiled = pytest.mark.skipif(not ops.has_kernel("knn"), reason="geomdl._C not built (reference mode)")

DENSE_DIMS = [9, 16, 64]


@pytest.fixture(autouse=True)
def dense_search(monkeypatch):
    """Every test here runs the dense search unless it sets GEOMDL_KNN_SEARCH itself."""
    monkeypatch.setenv("GEOMDL_KNN_SEARCH", "dense")


def oracle(x, y, k, batch_x, batch_y, ignore_same_index):
    """Every query against every point of its cloud: the k smallest (squared distance, source), in order."""
    return brute_force_neighbors(x, y, batch_x, batch_y, ignore_same_index, k)


def compiled_knn(*args, **kwargs):
    with ops.use_backend("compiled"):
        return knn(*args, **kwargs)


@compiled
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dim", DENSE_DIMS)
def test_dense_knn_graph_matches_reference_and_oracle(dim, dtype):
    gen = torch.Generator().manual_seed(dim)
    x = torch.randn(700, dim, generator=gen).to(dtype)
    batch = random_batch(700, 5, gen, empty=(2,))
    with ops.use_backend("compiled"):
        got = knn_graph(x, 12, batch)
    assert torch.equal(got, knn_graph_reference(x, 12, batch))
    assert torch.equal(got, oracle(x, x, 12, batch, batch, True))
    check_order(got, x, x)


@compiled
@pytest.mark.parametrize("n", [1, 2, 16, 17, 24, 25, 26, 40])
def test_candidate_set_boundaries(n):
    """k = 16 keeps 24 candidates: clouds around that size switch between the exact scan and the heap."""
    gen = torch.Generator().manual_seed(n)
    x = torch.randn(n, 12, generator=gen, dtype=torch.float64)
    for loop in (False, True):
        with ops.use_backend("compiled"):
            got = knn_graph(x, 16, loop=loop)
        assert torch.equal(got, oracle(x, x, 16, torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long), not loop))


@compiled
def test_ties_and_duplicates_go_to_the_lower_index():
    """Integer lattice points in 12-D: many exactly equal distances and duplicated points; the heap's
    candidates cannot be certified and the exact scan decides."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randint(0, 2, (300, 12), generator=gen).double()
    x[100:150] = x[0]  # 51 copies of one point
    batch = torch.zeros(300, dtype=torch.long)
    for k in (1, 5, 40, 60):
        got = compiled_knn(x, x, k, batch, batch, ignore_same_index=True)
        assert torch.equal(got, oracle(x, x, k, batch, batch, True))
        assert torch.equal(got, knn_reference(x, x, k, batch, batch, ignore_same_index=True))
    nearest_of_0 = compiled_knn(x, x, 5, batch, batch, ignore_same_index=True)[0, :5]
    assert nearest_of_0.tolist() == [100, 101, 102, 103, 104]


@compiled
@pytest.mark.parametrize("offset", [1e3, 1e6, 3e7])
def test_far_from_the_origin_the_expansion_cancels_but_the_result_is_exact(offset):
    """|y|^2 + |x|^2 - 2 y.x loses most digits far from the origin: the bound must send such queries to
    the exact scan rather than return a wrong order."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(400, 10, generator=gen, dtype=torch.float64) * 1e-2 + offset
    batch = torch.zeros(400, dtype=torch.long)
    got = compiled_knn(x, x, 8, batch, batch, ignore_same_index=True)
    assert torch.equal(got, oracle(x, x, 8, batch, batch, True))


@compiled
@pytest.mark.parametrize("dim", [3, 16])
def test_misaligned_bipartite_ignore_same_index_counts_per_query(dim):
    """ignore_same_index drops j == i only where i is one of the cloud's source rows: queries 5 and 6
    below have no such row and keep every point of the cloud (grid and dense kernels, and the reference)."""
    gen = torch.Generator().manual_seed(dim)
    x, y = torch.randn(5, dim, generator=gen).double(), torch.randn(7, dim, generator=gen).double()
    bx, by = torch.zeros(5, dtype=torch.long), torch.zeros(7, dtype=torch.long)
    for k in (3, 5, 9):
        want = oracle(x, y, k, bx, by, True)
        assert torch.bincount(want[1], minlength=7).tolist() == [min(k, 4)] * 5 + [min(k, 5)] * 2
        assert torch.equal(compiled_knn(x, y, k, bx, by, ignore_same_index=True), want)
        assert torch.equal(knn_reference(x, y, k, bx, by, ignore_same_index=True), want)


def test_reference_growing_radius_path_counts_per_query():
    """The same rule in the reference's growing-radius search (clouds above 4096 points, D <= 3)."""
    gen = torch.Generator().manual_seed(1)
    x, y = torch.rand(4200, 2, generator=gen).double(), torch.rand(4203, 2, generator=gen).double()
    bx, by = torch.zeros(4200, dtype=torch.long), torch.zeros(4203, dtype=torch.long)
    got = knn_reference(x, y, 4200, bx, by, ignore_same_index=True)
    counts = torch.bincount(got[1], minlength=4203)
    assert counts[:4200].eq(4199).all() and counts[4200:].eq(4200).all()


@compiled
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), dim=st.integers(9, 40), n=st.integers(0, 90), m=st.integers(0, 50),
       clouds=st.integers(1, 4), lattice=st.booleans(), k=st.integers(1, 30), double=st.booleans(),
       ignore=st.booleans())
def test_property_dense_equals_oracle_and_reference(seed, dim, n, m, clouds, lattice, k, double, ignore):
    gen = torch.Generator().manual_seed(seed)
    dtype = torch.float64 if double else torch.float32
    if lattice:
        x = torch.randint(0, 3, (n, dim), generator=gen).to(dtype)
        y = torch.randint(0, 3, (m, dim), generator=gen).to(dtype)
    else:
        x, y = torch.randn(n, dim, generator=gen).to(dtype), torch.randn(m, dim, generator=gen).to(dtype)
    bx, by = random_batch(n, clouds, gen), random_batch(m, clouds, gen)
    got = compiled_knn(x, y, k, bx, by, ignore_same_index=ignore)
    assert torch.equal(got, oracle(x, y, k, bx, by, ignore))
    assert torch.equal(got, knn_reference(x, y, k, bx, by, ignore_same_index=ignore))


@compiled
def test_nearly_equal_distances_below_the_expansion_rounding():
    """Sources on a thin shell around the queries (radii 1e-13 apart, far below the rounding of the
    expansion at |x| ~ 300): the expansion cannot rank them, the heap's candidates are not certified and
    the exact scan ranks them."""
    gen = torch.Generator().manual_seed(5)
    dim, n = 10, 600
    centre = torch.full((dim,), 100.0, dtype=torch.float64)
    v = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    radii = 1.0 + 1e-13 * torch.randperm(n, generator=gen).double()
    x = centre + v / v.norm(dim=1, keepdim=True) * radii[:, None]
    y = centre + 1e-13 * torch.randn(20, dim, generator=gen, dtype=torch.float64)
    bx, by = torch.zeros(n, dtype=torch.long), torch.zeros(20, dtype=torch.long)
    for k in (1, 8):
        got = compiled_knn(x, y, k, bx, by)
        assert torch.equal(got, oracle(x, y, k, bx, by, False))


@compiled
@pytest.mark.parametrize("dim", [1, 2, 3, 5, 8, 12, 32])
def test_grid_dense_and_automatic_choice_agree_at_every_dimension(dim, monkeypatch):
    """GEOMDL_KNN_SEARCH forces either search; forced either way or chosen automatically they give the
    same edges (bipartite, several clouds, one of them empty)."""
    x, y, bx, by = bipartite_clouds(dim, seed=dim)
    assert_searches_agree(monkeypatch, "GEOMDL_KNN_SEARCH", lambda: compiled_knn(x, y, 10, bx, by),
                          knn_reference(x, y, 10, bx, by))


@compiled
def test_automatic_choice_on_a_low_dimensional_manifold_in_feature_space(monkeypatch):
    """Points on a 2-D surface embedded in 12-D (what local-shape features look like): the automatic
    choice returns the exact edges, whichever search it takes."""
    monkeypatch.setenv("GEOMDL_KNN_SEARCH", "auto")
    gen = torch.Generator().manual_seed(7)
    uv = torch.rand(3000, 2, generator=gen, dtype=torch.float64)
    x = torch.cat([torch.sin(uv * k) for k in range(1, 7)], dim=1)  # [3000, 12]
    got = knn_graph(x, 8)
    assert torch.equal(got, knn_graph_reference(x, 8))


@compiled
def test_bad_search_value_is_reported(monkeypatch):
    monkeypatch.setenv("GEOMDL_KNN_SEARCH", "fastest")
    with pytest.raises(ValueError, match="GEOMDL_KNN_SEARCH must be 'auto', 'grid' or 'dense'"):  # was RuntimeError
        compiled_knn(torch.rand(5, 3), torch.rand(5, 3), 2)
