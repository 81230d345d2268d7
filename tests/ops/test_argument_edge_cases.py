"""Edge cases of the ops' arguments: sparse (huge) cloud ids, non-finite radii, bools and NumPy scalars for
counts, and the references' checks of their inputs (the same errors as the public ops)."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl import ops
from geomdl.ops import fps, fps_reference, knn, knn_graph, knn_graph_reference, knn_reference
from geomdl.ops import radius, radius_graph, radius_graph_reference, radius_reference

BACKENDS = ["auto", "reference"] + (["compiled"] if ops.has_kernel("knn") and ops.has_kernel("fps") else [])


# --- sparse cloud ids: the pointers must not get one entry per id up to the largest ---------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_huge_cloud_ids_give_the_same_graphs_as_dense_ids(backend):
    gen = torch.Generator().manual_seed(0)
    pos = torch.rand(12, 3, generator=gen)
    batch = torch.tensor([0] * 5 + [1] * 7)
    sparse = batch * 10**12  # a dense pointer would need 8 TB
    with ops.use_backend(backend):
        assert torch.equal(knn_graph(pos, 3, sparse), knn_graph(pos, 3, batch))
        assert torch.equal(radius_graph(pos, 0.6, sparse), radius_graph(pos, 0.6, batch))
        # bipartite: the clouds are matched by id, including ids only one side has
        bx, by = torch.tensor([3 * 10**11] * 6 + [9 * 10**11] * 6), torch.tensor([10**11] * 4 + [9 * 10**11] * 8)
        dx, dy = torch.tensor([1] * 6 + [2] * 6), torch.tensor([0] * 4 + [2] * 8)
        assert torch.equal(knn(pos, pos, 2, bx, by), knn(pos, pos, 2, dx, dy))
        assert torch.equal(radius(pos, pos, 0.7, bx, by), radius(pos, pos, 0.7, dx, dy))
    assert torch.equal(knn_graph_reference(pos, 3, sparse), knn_graph_reference(pos, 3, batch))
    assert torch.equal(radius_graph_reference(pos, 0.6, sparse), radius_graph_reference(pos, 0.6, batch))


@pytest.mark.parametrize("backend", BACKENDS)
def test_fps_with_huge_cloud_ids(backend):
    gen = torch.Generator().manual_seed(1)
    pos = torch.rand(10, 3, generator=gen)
    batch = torch.tensor([0] * 4 + [1] * 6)
    with ops.use_backend(backend):
        assert torch.equal(fps(pos, batch * 10**12, num=3), fps(pos, batch, num=3))
        assert torch.equal(fps(pos, batch * 10**12, ratio=0.5), fps_reference(pos, batch, ratio=0.5))
        g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
        assert torch.equal(fps(pos, batch * 10**12, num=2, random_start=True, generator=g1),
                           fps(pos, batch, num=2, random_start=True, generator=g2))
        # ids 0 and 15 (16 clouds, 10 points): renumbered; `start` is still given per original cloud id
        start = torch.zeros(16, dtype=torch.long)
        start[0], start[15] = 3, 5
        assert torch.equal(fps(pos, batch * 15, num=3, start=start), fps(pos, batch, num=3, start=torch.tensor([3, 5])))
        start[15] = 6
        with pytest.raises(ValueError, match=r"start\[15\]=6 is not a local index of cloud 15 \(size 6\)"):
            fps(pos, batch * 15, num=3, start=start)


# --- numbers: finite radius, no bools, NumPy scalars accepted -----------------------------------------


@pytest.mark.parametrize("fn", [radius_graph, radius_graph_reference])
@pytest.mark.parametrize("r", [float("inf"), float("nan"), -1.0, 0.0, True, "1.0", torch.tensor(1.0)])
def test_radius_must_be_a_positive_finite_number(fn, r):
    with pytest.raises(ValueError, match="r must be a positive finite number"):
        fn(torch.rand(6, 3), r)


@pytest.mark.parametrize("fn", [radius_graph, radius_graph_reference])
def test_max_num_neighbors_rejects_bools(fn):
    with pytest.raises(ValueError, match="max_num_neighbors must be an int >= 1"):
        fn(torch.rand(6, 3), 0.5, None, True)


@pytest.mark.parametrize("fn", [knn_graph, knn_graph_reference])
@pytest.mark.parametrize("k", [True, 0, 2.0, -1])
def test_k_must_be_an_int(fn, k):
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        fn(torch.rand(6, 3), k)


def test_numpy_scalars_work_like_python_numbers():
    pos = torch.rand(20, 3, generator=torch.Generator().manual_seed(2))
    assert torch.equal(knn_graph(pos, np.int64(3)), knn_graph(pos, 3))
    assert torch.equal(radius_graph(pos, np.float32(0.5), max_num_neighbors=np.int32(4)),
                       radius_graph(pos, float(np.float32(0.5)), max_num_neighbors=4))


@pytest.mark.parametrize("fn", [fps, fps_reference])
def test_fps_rejects_bool_counts_and_float_starts(fn):
    pos = torch.rand(6, 3)
    with pytest.raises(ValueError, match="num must be an int >= 1"):
        fn(pos, num=True)
    with pytest.raises(ValueError, match="ratio must lie in"):
        fn(pos, ratio=True)
    with pytest.raises(TypeError, match="start must hold integer local indices"):
        fn(pos, num=2, start=torch.tensor([1.7]))


# --- the references check their inputs like the public ops -------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_references_reject_non_finite_coordinates(bad):
    pos = torch.rand(6, 3)
    pos[2, 1] = bad
    with pytest.raises(ValueError, match="pos contains NaN or infinite"):
        radius_graph_reference(pos, 0.5)
    with pytest.raises(ValueError, match="pos contains NaN or infinite"):
        knn_graph_reference(pos, 2)
    with pytest.raises(ValueError, match="y contains NaN or infinite"):
        knn_reference(torch.rand(6, 3), pos, 2)
    with pytest.raises(ValueError, match="y contains NaN or infinite"):
        radius_reference(torch.rand(6, 3), pos, 0.5)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(0, 30), clouds=st.integers(1, 4),
       scale=st.sampled_from([1, 7, 10**6, 10**15]))
def test_property_sparse_ids_equal_dense_ids(seed, n, clouds, scale):
    gen = torch.Generator().manual_seed(seed)
    pos = torch.rand(n, 2, generator=gen, dtype=torch.float64)
    batch = torch.sort(torch.randint(0, clouds, (n,), generator=gen)).values
    assert torch.equal(knn_graph(pos, 3, batch * scale), knn_graph(pos, 3, batch))
    assert torch.equal(radius_graph(pos, 0.4, batch * scale), radius_graph(pos, 0.4, batch))
    assert torch.equal(fps(pos, batch * scale, num=2), fps(pos, batch, num=2))


# --- float64 coordinates whose squared distances overflow (> ~1e154) or underflow (< ~1e-162) ----------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("scale", [2.0**600, 2.0**-600, 2.0**450])
@pytest.mark.parametrize("dim", [3, 5])
def test_extreme_scales_give_the_neighbours_of_the_exact_geometry(backend, scale, dim):
    # a power of two scales every coordinate, difference and square exactly: the same graphs as at scale 1
    gen = torch.Generator().manual_seed(dim)
    pos = torch.rand(40, dim, generator=gen, dtype=torch.float64) - 0.5
    pos[7] = pos[3]  # a coincident pair
    batch = torch.tensor([0] * 25 + [1] * 15)
    with ops.use_backend(backend):
        assert torch.equal(knn_graph(pos * scale, 4, batch), knn_graph_reference(pos, 4, batch))
        assert torch.equal(radius_graph(pos * scale, 0.4 * scale, batch), radius_graph_reference(pos, 0.4, batch))
        assert torch.equal(knn(pos * scale, pos[:9] * scale, 3), knn_reference(pos, pos[:9], 3))
        assert torch.equal(fps(pos * scale, batch, num=9), fps_reference(pos, batch, num=9))
    assert torch.equal(knn_graph_reference(pos * scale, 4, batch), knn_graph_reference(pos, 4, batch))
    assert torch.equal(radius_graph_reference(pos * scale, 0.4 * scale, batch), radius_graph_reference(pos, 0.4, batch))
    assert torch.equal(fps_reference(pos * scale, batch, num=9), fps_reference(pos, batch, num=9))


@pytest.mark.parametrize("backend", BACKENDS)
def test_huge_coordinates_keep_their_small_distances(backend):
    # the rescaling of coordinates beyond 2**400 brought 1e200 down to ~1, where the square of a distance of 1e30
    # underflowed to 0: fps sampled point 0 twice instead of point 1, the compiled radius put 0 and 1 within r = 1
    pos = torch.tensor([[0.0], [1e30], [1e200]], dtype=torch.float64)
    with ops.use_backend(backend):
        assert fps(pos, num=3).tolist() == [0, 2, 1]
        assert radius_graph(pos, 1.0).shape == (2, 0)
        assert radius(pos, pos[:1], 1.0).tolist() == [[0], [0]]
        assert knn_graph(pos, 1).tolist() == [[1, 0, 0], [0, 1, 2]]
    assert fps_reference(pos, num=3).tolist() == [0, 2, 1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_subnormal_coordinates_are_rescaled(backend):
    # every coordinate below 2**-1022: the power of two 2.0**-exponent that rescales them overflowed (OverflowError)
    pos = torch.tensor([[0.0], [1e-310], [3e-310]], dtype=torch.float64)
    with ops.use_backend(backend):
        assert fps(pos, num=3).tolist() == [0, 2, 1]
        assert knn_graph(pos, 1).tolist() == [[1, 0, 1], [0, 1, 2]]
        assert radius_graph(pos, 1.5e-310).tolist() == [[1, 0], [0, 1]]
    assert radius_graph_reference(pos, 1.5e-310).tolist() == [[1, 0], [0, 1]]


@pytest.mark.parametrize("build, args", [(ops.radius_graph, (0.5,)), (ops.knn_graph, (2,)),
                                         (ops.radius_graph_reference, (0.5,)), (ops.knn_graph_reference, (2,))])
def test_graph_builders_name_their_own_arguments(build, args):
    """radius_graph/knn_graph take pos and batch: their errors say pos and batch, not radius's x and batch_x."""
    pos = torch.rand(5, 3)
    with pytest.raises(ValueError, match=r"^batch must be sorted"):
        build(pos, *args, batch=torch.tensor([1, 0, 0, 0, 0]))
    with pytest.raises(ValueError, match=r"^batch must have 5 entries"):
        build(pos, *args, batch=torch.tensor([0, 0]))
    with pytest.raises(ValueError, match=r"^pos contains NaN"):
        build(torch.tensor([[float("nan"), 0.0, 0.0]] * 3), *args)
    with pytest.raises(ValueError, match=r"^pos must be 2-D"):
        build(torch.rand(5), *args)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("count", [2**63, 2**64, 10**30])
def test_counts_beyond_int64_mean_every_neighbour(backend, count):
    # k / max_num_neighbors >= 2**63: the compiled ops raised "Expected a value of type 'int' ... found type 'int'",
    # radius_reference returned no edge at all (its comparison with the count wrapped) or raised OverflowError
    pos = torch.rand(12, 3, generator=torch.Generator().manual_seed(0))
    with ops.use_backend(backend):
        assert torch.equal(knn_graph(pos, count), knn_graph(pos, 12))
        assert torch.equal(radius_graph(pos, 0.7, None, count), radius_graph(pos, 0.7, None, 12))
    assert torch.equal(knn_reference(pos, pos, count), knn_reference(pos, pos, 12))
    assert torch.equal(radius_reference(pos, pos, 0.7, None, None, count), radius_reference(pos, pos, 0.7, None, None, 12))
