"""Integer size arguments of geomdl.ops accept NumPy integers (numbers.Integral, not bool) with the same
results as Python ints: scatter's dim_size, segment_softmax's num_segments, fps's num, painn_message's
num_nodes (and knn's k / radius's max_num_neighbors, already accepted); fps's ratio accepts NumPy floats."""
import numpy as np
import pytest
import torch

from geomdl.ops import fps, knn, painn_message, painn_message_reference, radius, scatter, segment_softmax
from geomdl.ops.fps import fps_reference
from geomdl.ops.scatter import scatter_reference
from geomdl.ops.softmax import segment_softmax_reference

NP_INTS = [np.int64, np.int32]


def _data():
    gen = torch.Generator().manual_seed(0)
    src = torch.randn(7, 3, generator=gen, dtype=torch.float64)
    index = torch.tensor([0, 2, 2, 1, 0, 2, 4])
    return src, index


@pytest.mark.parametrize("np_int", NP_INTS)
@pytest.mark.parametrize("fn", [scatter, scatter_reference])
@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_scatter_dim_size_accepts_numpy_integers(np_int, fn, reduce):
    src, index = _data()
    ref = fn(src, index, dim=0, dim_size=6, reduce=reduce)
    out = fn(src, index, dim=0, dim_size=np_int(6), reduce=reduce)
    assert out.shape == (6, 3) and torch.equal(out, ref)
    out = fn(src.T, index, dim=1, dim_size=np_int(6), reduce=reduce)  # another dim
    assert torch.equal(out, fn(src.T, index, dim=1, dim_size=6, reduce=reduce))


@pytest.mark.parametrize("np_int", NP_INTS)
@pytest.mark.parametrize("fn", [segment_softmax, segment_softmax_reference])
def test_segment_softmax_num_segments_accepts_numpy_integers(np_int, fn):
    src, index = _data()
    assert torch.equal(fn(src, index, num_segments=np_int(5)), fn(src, index, num_segments=5))


def _two_clouds():
    pos = torch.randn(12, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return pos, torch.tensor([0] * 5 + [1] * 7)


@pytest.mark.parametrize("np_int", NP_INTS)
@pytest.mark.parametrize("fn", [fps, fps_reference])
def test_fps_num_accepts_numpy_integers(np_int, fn):
    pos, batch = _two_clouds()
    for num in (1, 3, 6):
        assert torch.equal(fn(pos, batch, num=np_int(num)), fn(pos, batch, num=num))


@pytest.mark.parametrize("np_float", [np.float32, np.float16])
@pytest.mark.parametrize("fn", [fps, fps_reference])
def test_fps_ratio_accepts_numpy_floats(np_float, fn):
    # np.float32(0.5) is no Python float: it was refused with "ratio must lie in (0, 1]"
    pos, batch = _two_clouds()
    for ratio in (0.25, 0.5, 1.0):
        assert torch.equal(fn(pos, batch, ratio=np_float(ratio)), fn(pos, batch, ratio=ratio))
    with pytest.raises(ValueError, match="ratio must lie in"):
        fn(pos, batch, ratio=np_float(1.5))


@pytest.mark.parametrize("np_int", NP_INTS)
@pytest.mark.parametrize("fn", [painn_message, painn_message_reference])
def test_painn_message_num_nodes_accepts_numpy_integers(np_int, fn):
    gen = torch.Generator().manual_seed(4)
    n, e, f = 5, 9, 2
    args = [torch.randn(*shape, generator=gen, dtype=torch.float64) for shape in ((n, 3 * f), (e, 3 * f), (n, 3, f), (e, 3))]
    edge_index = torch.randint(0, n, (2, e), generator=gen)
    for got, want in zip(fn(*args, edge_index, np_int(n + 2)), fn(*args, edge_index, n + 2)):
        assert got.shape[0] == n + 2 and torch.equal(got, want)

@pytest.mark.parametrize("np_int", NP_INTS)
def test_knn_and_radius_accept_numpy_integers(np_int):
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(10, 3, generator=gen, dtype=torch.float64)
    assert torch.equal(knn(x, x, np_int(3)), knn(x, x, 3))
    assert torch.equal(radius(x, x, 1.0, max_num_neighbors=np_int(4)), radius(x, x, 1.0, max_num_neighbors=4))


@pytest.mark.parametrize("value", [True, False, np.bool_(True)])
def test_bool_size_arguments_are_still_rejected(value):
    src, index = _data()
    pos = torch.randn(6, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="dim_size"):
        scatter(src, index, dim_size=value)
    with pytest.raises(ValueError, match="dim_size"):
        scatter_reference(src, index, dim_size=value)
    with pytest.raises(ValueError, match="num_segments"):
        segment_softmax(src, index, num_segments=value)
    with pytest.raises(ValueError, match="num_segments"):
        segment_softmax_reference(src, index, num_segments=value)
    with pytest.raises(ValueError, match="num"):
        fps(pos, num=value)
    with pytest.raises(ValueError, match="num"):
        fps_reference(pos, num=value)


@pytest.mark.parametrize("bad", [np.int64(-1), np.float64(3.0), 3.0])
def test_negative_or_non_integer_sizes_are_still_rejected(bad):
    src, index = _data()
    with pytest.raises(ValueError, match="dim_size"):
        scatter(src, index, dim_size=bad)
    with pytest.raises(ValueError, match="num_segments"):
        segment_softmax(src, index, num_segments=bad)
    with pytest.raises(ValueError, match="num"):
        fps(torch.randn(4, 3, dtype=torch.float64), num=bad if bad != np.int64(-1) else np.int64(0))
