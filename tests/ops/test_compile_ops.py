"""The ops under torch.compile(fullgraph=True): one graph, the eager results and gradients."""
import pytest
import torch

from geomdl import ops
from geomdl.ops import scatter, segment_softmax
from geomdl.testing import assert_compiles


def _inputs(seed=0, n=40, segments=7):
    g = torch.Generator().manual_seed(seed)
    src = torch.randn(n, 3, generator=g, dtype=torch.float64)
    index = torch.randint(0, segments, (n,), generator=g)
    return src, index


@pytest.mark.parametrize("backend", ["auto", "reference"])
@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_scatter(reduce, backend):
    src, index = _inputs()
    with ops.use_backend(backend):
        assert_compiles(lambda s, i: scatter(s, i, 0, 9, reduce=reduce), (src, index))


@pytest.mark.parametrize("backend", ["auto", "reference"])
def test_segment_softmax(backend):
    src, index = _inputs(1)
    with ops.use_backend(backend):
        assert_compiles(lambda s, i: segment_softmax(s, i, num_segments=9), (src, index))


def test_scatter_with_a_data_dependent_number_of_segments():
    # dim_size from the data (as a graph-level readout with num_graphs = batch.max() + 1 does)
    src, index = _inputs(2)
    assert_compiles(lambda s, i: scatter(s, i, 0, int(i.max()) + 1, reduce="sum"), (src, index))


def test_compiled_scatter_still_rejects_out_of_range_targets():
    src, index = _inputs(3)
    if not ops.has_kernel("scatter_reduce"):
        pytest.skip("geomdl._C not built: the reference's index_add raises its own error")
    f = torch.compile(lambda s, i: scatter(s, i, 0, 5), backend="aot_eager", fullgraph=True)
    with pytest.raises((ValueError, RuntimeError), match="index"):
        f(src, index.clamp(max=4) + 3)
    torch._dynamo.reset()


needs_kernels = pytest.mark.skipif(not ops.has_kernel("knn"), reason="graph building compiles only as the compiled op")


@needs_kernels
@pytest.mark.parametrize("build", ["radius_graph", "knn_graph", "knn_bipartite_16d"])
def test_graph_building_with_a_data_dependent_number_of_edges(build):
    g = torch.Generator().manual_seed(4)
    pos = torch.randn(40, 3, generator=g, dtype=torch.float64)
    batch = torch.tensor([0] * 15 + [1] * 25)
    fns = {
        "radius_graph": lambda p, b: ops.radius_graph(p, 1.0, b, max_num_neighbors=6),
        "knn_graph": lambda p, b: ops.knn_graph(p, 5, b, loop=True),
        "knn_bipartite_16d": lambda p, b: ops.knn(p.repeat(1, 6)[:, :16], p.repeat(1, 6)[:7, :16], 3),
    }
    assert_compiles(fns[build], (pos, batch), grad=False)


@needs_kernels
@pytest.mark.parametrize("case", ["ratio", "num_and_start", "one_cloud", "empty_cloud_between", "one_point", "duplicates"])
def test_fps_with_a_data_dependent_number_of_samples(case):
    g = torch.Generator().manual_seed(5)
    pos = torch.randn(40, 3, generator=g, dtype=torch.float64)
    batch = torch.tensor([0] * 15 + [1] * 25)
    fns = {
        "ratio": (lambda p, b: ops.fps(p, b, ratio=0.3), (pos, batch)),
        "num_and_start": (lambda p, b: ops.fps(p, b, num=20, start=torch.tensor([3, 24])), (pos, batch)),  # 20 > 15
        "one_cloud": (lambda p: ops.fps(p, ratio=0.5), (pos,)),
        "empty_cloud_between": (lambda p, b: ops.fps(p, b, ratio=0.25), (pos, torch.tensor([0] * 15 + [2] * 25))),
        "one_point": (lambda p: ops.fps(p, num=3), (pos[:1],)),
        "duplicates": (lambda p: ops.fps(p, num=4), (pos[:3].repeat(5, 1),)),
    }
    fn, args = fns[case]
    assert_compiles(fn, args, grad=False)


@needs_kernels
def test_fps_under_compile_refuses_random_start_and_says_what_to_pass():
    f = torch.compile(lambda p: ops.fps(p, num=3, random_start=True), backend="aot_eager", fullgraph=True)
    with pytest.raises((ValueError, RuntimeError), match="start="):  # dynamo wraps the ValueError
        f(torch.randn(10, 3))
    torch._dynamo.reset()


class _Call(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, src, index):
        return self.fn(src, index)


@pytest.mark.parametrize("op", ["scatter", "segment_softmax"])
def test_export_with_the_default_number_of_segments(op):
    # dim_size / num_segments left out (index.max() + 1): int() of the maximum failed under torch.export
    # (GuardOnDataDependentSymNode), while torch.compile took it
    from torch.export import Dim

    from geomdl.testing import assert_exports

    fns = {"scatter": lambda s, i: scatter(s, i, 0, reduce="mean"), "segment_softmax": lambda s, i: segment_softmax(s, i)}
    src, index = _inputs(5)
    other_src, other_index = _inputs(6, n=25, segments=4)
    rows = Dim("rows", min=2)
    assert_exports(_Call(fns[op]), (src, index), ({0: rows}, {0: rows}), [(other_src, other_index)])


@needs_kernels
@pytest.mark.parametrize("num", [2**63, 2**64])
def test_fps_under_compile_takes_a_num_beyond_int64(num):
    # eager fps keeps every point for such a num; the traced clamp raised "value cannot be converted to type int64_t"
    pos = torch.randn(12, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    assert_compiles(lambda p: ops.fps(p, num=num), (pos,), grad=False)
    assert torch.equal(ops.fps(pos, num=num), ops.fps(pos, num=12))


@needs_kernels
@pytest.mark.parametrize("scale", [2.0**600, 2.0**-600])
@pytest.mark.parametrize("build", ["knn_graph", "knn_bipartite", "fps"])
def test_graph_building_at_extreme_scales_matches_eager(build, scale):
    # eager rescales float64 coordinates beyond 2**400 / below 2**-400 by a power of two; compiled graphs did not,
    # and their squared distances overflowed to inf (or vanished): every pair tied
    pos = (torch.rand(30, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64) - 0.5) * scale
    fns = {"knn_graph": lambda p: ops.knn_graph(p, 4), "knn_bipartite": lambda p: ops.knn(p, p[:7], 3),
           "fps": lambda p: ops.fps(p, num=10)}
    assert_compiles(fns[build], (pos,), grad=False)
