"""The dense radius search of the CPU kernel (radius_dense_cpu.cpp, chosen in feature spaces when it is
expected to be cheaper than the grid; forced here with GEOMDL_RADIUS_SEARCH=dense) against the
reference and an exhaustive oracle: random, tied, boundary, badly conditioned and misaligned inputs, the
max_num_neighbors cut, a property test; and the automatic choice."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl import ops
from geomdl.ops import radius, radius_graph, radius_graph_reference, radius_reference
from neighbor_checks import assert_searches_agree, bipartite_clouds, brute_force_neighbors, check_order, random_batch

compiled = pytest.mark.skipif(not ops.has_kernel("radius"), reason="geomdl._C not built (reference mode)")


@pytest.fixture(autouse=True)
def dense_search(monkeypatch):
    """Every test here runs the dense search unless it sets GEOMDL_RADIUS_SEARCH itself."""
    monkeypatch.setenv("GEOMDL_RADIUS_SEARCH", "dense")


def oracle(x, y, r, batch_x, batch_y, limit, ignore_same_index):
    """Every query against every point of its cloud: the pairs with distance <= r, in order, cut to the
    `limit` nearest."""
    return brute_force_neighbors(x, y, batch_x, batch_y, ignore_same_index, limit, r)


def compiled_radius(*args, **kwargs):
    with ops.use_backend("compiled"):
        return radius(*args, **kwargs)


@compiled
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dim", [5, 16, 64])
def test_dense_radius_graph_matches_reference_and_oracle(dim, dtype):
    gen = torch.Generator().manual_seed(dim)
    x = torch.randn(600, dim, generator=gen).to(dtype)
    batch = random_batch(600, 5, gen, empty=(2,))
    r = float(torch.cdist(x[:50].double(), x.double()).sort(1).values[:, 15].median())  # ~15 neighbours
    for loop in (False, True):
        with ops.use_backend("compiled"):
            got = radius_graph(x, r, batch, max_num_neighbors=40, loop=loop)
        assert got.shape[1] > 600
        assert torch.equal(got, radius_graph_reference(x, r, batch, max_num_neighbors=40, loop=loop))
        assert torch.equal(got, oracle(x, x, r, batch, batch, 40, not loop))
        check_order(got, x, x)


@compiled
def test_points_exactly_at_distance_r_are_kept_and_ties_go_to_the_lower_index():
    """Integer lattice points in 6-D with r = 1 and r = sqrt(2): many distances equal r^2 exactly, where the
    expansion may land on either side; duplicated points tie at distance 0."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randint(0, 3, (400, 6), generator=gen).double()
    x[100:130] = x[0]  # 31 copies of one point
    batch = torch.zeros(400, dtype=torch.long)
    for r in (1.0, 2.0 ** 0.5, 2.0):
        for limit in (1, 7, 30, 500):
            got = compiled_radius(x, x, r, batch, batch, max_num_neighbors=limit, ignore_same_index=True)
            assert torch.equal(got, oracle(x, x, r, batch, batch, limit, True))
            assert torch.equal(got, radius_reference(x, x, r, batch, batch, limit, ignore_same_index=True))
    first = compiled_radius(x, x, 1.0, batch, batch, max_num_neighbors=5, ignore_same_index=True)
    assert first[0, :5].tolist() == [100, 101, 102, 103, 104]


@compiled
@pytest.mark.parametrize("offset", [1e3, 1e6, 3e7])
def test_far_from_the_origin_the_expansion_cancels_but_the_result_is_exact(offset):
    """Far from the origin the expansion loses most digits: its bound widens the candidate set, and the
    exact distances decide."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 10, generator=gen, dtype=torch.float64) * 1e-2 + offset
    batch = torch.zeros(300, dtype=torch.long)
    got = compiled_radius(x, x, 0.03, batch, batch, max_num_neighbors=64, ignore_same_index=True)
    assert got.shape[1] > 0
    assert torch.equal(got, oracle(x, x, 0.03, batch, batch, 64, True))


@compiled
def test_misaligned_bipartite_clouds_and_edge_cases():
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(60, 9, generator=gen).double(), torch.randn(45, 9, generator=gen).double()
    bx, by = random_batch(60, 3, gen, empty=(1,)), random_batch(45, 3, gen)
    for ignore in (False, True):
        got = compiled_radius(x, y, 3.5, bx, by, max_num_neighbors=10, ignore_same_index=ignore)
        assert torch.equal(got, oracle(x, y, 3.5, bx, by, 10, ignore))
    empty = torch.zeros(0, 9, dtype=torch.float64)
    zeros = torch.zeros(0, dtype=torch.long)
    assert compiled_radius(empty, y, 1.0, zeros, torch.zeros(45, dtype=torch.long)).shape == (2, 0)
    assert compiled_radius(x, empty, 1.0, torch.zeros(60, dtype=torch.long), zeros).shape == (2, 0)
    one = x[:1]
    assert compiled_radius(one, one, 1.0, ignore_same_index=True).shape == (2, 0)
    assert compiled_radius(one, one, 1.0).tolist() == [[0], [0]]
    # r larger than the cloud: every point (max_num_neighbors above the cloud size), and then the nearest 7
    whole = torch.zeros(60, dtype=torch.long)
    got = compiled_radius(x, x, 1e3, max_num_neighbors=100)
    assert torch.equal(got, oracle(x, x, 1e3, whole, whole, 100, False)) and got.shape[1] == 60 * 60
    got = compiled_radius(x, x, 1e3, max_num_neighbors=7)
    assert torch.equal(got, oracle(x, x, 1e3, whole, whole, 7, False)) and got.shape[1] == 60 * 7


@compiled
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), dim=st.integers(4, 40), n=st.integers(0, 90), m=st.integers(0, 50),
       clouds=st.integers(1, 4), lattice=st.booleans(), r=st.floats(0.1, 8.0), limit=st.integers(1, 40),
       double=st.booleans(), ignore=st.booleans())
def test_property_dense_equals_oracle_and_reference(seed, dim, n, m, clouds, lattice, r, limit, double, ignore):
    gen = torch.Generator().manual_seed(seed)
    dtype = torch.float64 if double else torch.float32
    if lattice:
        x = torch.randint(0, 3, (n, dim), generator=gen).to(dtype)
        y = torch.randint(0, 3, (m, dim), generator=gen).to(dtype)
        r = float(max(1, round(r)))  # lattice distances hit r exactly
    else:
        x, y = torch.randn(n, dim, generator=gen).to(dtype), torch.randn(m, dim, generator=gen).to(dtype)
    bx, by = random_batch(n, clouds, gen), random_batch(m, clouds, gen)
    got = compiled_radius(x, y, r, bx, by, max_num_neighbors=limit, ignore_same_index=ignore)
    assert torch.equal(got, oracle(x, y, r, bx, by, limit, ignore))
    assert torch.equal(got, radius_reference(x, y, r, bx, by, limit, ignore_same_index=ignore))


@compiled
@pytest.mark.parametrize("dim", [1, 2, 3, 5, 8, 12, 32])
def test_grid_dense_and_automatic_choice_agree_at_every_dimension(dim, monkeypatch):
    """GEOMDL_RADIUS_SEARCH forces either search; forced either way or chosen automatically they give the
    same edges (bipartite, several clouds, one of them empty)."""
    x, y, bx, by = bipartite_clouds(dim, seed=dim)
    r = float(torch.cdist(y[:40].double(), x.double()).sort(1).values[:, 10].median())  # ~10 neighbours
    assert_searches_agree(monkeypatch, "GEOMDL_RADIUS_SEARCH",
                          lambda: compiled_radius(x, y, r, bx, by, max_num_neighbors=24),
                          radius_reference(x, y, r, bx, by, 24))


@compiled
def test_bad_search_value_is_reported(monkeypatch):
    monkeypatch.setenv("GEOMDL_RADIUS_SEARCH", "fastest")
    with pytest.raises(ValueError, match="GEOMDL_RADIUS_SEARCH must be 'auto', 'grid' or 'dense'"):  # was RuntimeError
        compiled_radius(torch.rand(5, 3), torch.rand(5, 3), 0.5)
