import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl import ops
from geomdl.ops import scatter, scatter_reference, segment_softmax, segment_softmax_reference
from geomdl.testing import assert_kernel_matches_reference

REDUCTIONS = ["sum", "mean", "max", "min"]
compiled = pytest.mark.skipif(not ops.has_kernel("scatter_reduce"), reason="geomdl._C not built (reference mode)")


def test_reference_matches_hand_computed_values():
    src = torch.tensor([[1.0, -2.0], [3.0, 5.0], [3.0, 0.0], [-1.0, 4.0]])
    index = torch.tensor([0, 2, 2, 0])
    assert torch.equal(scatter_reference(src, index, dim_size=4, reduce="sum"), torch.tensor([[0.0, 2.0], [0, 0], [6.0, 5.0], [0, 0]]))
    assert torch.equal(scatter_reference(src, index, dim_size=4, reduce="mean"), torch.tensor([[0.0, 1.0], [0, 0], [3.0, 2.5], [0, 0]]))
    assert torch.equal(scatter_reference(src, index, dim_size=4, reduce="max"), torch.tensor([[1.0, 4.0], [0, 0], [3.0, 5.0], [0, 0]]))
    assert torch.equal(scatter_reference(src, index, dim_size=4, reduce="min"), torch.tensor([[-1.0, -2.0], [0, 0], [3.0, 0.0], [0, 0]]))


@pytest.mark.parametrize("reduce", ["max", "min"])
def test_tie_rule_gradient_goes_to_first_row(reduce):
    src = torch.tensor([[2.0], [2.0], [1.0], [2.0]], requires_grad=True)
    index = torch.tensor([0, 0, 1, 0])
    for fn in (scatter, scatter_reference):
        s = src if reduce == "max" else -src
        (g,) = torch.autograd.grad(fn(s, index, reduce=reduce).sum(), src)
        expected = torch.tensor([[1.0], [0.0], [1.0], [0.0]]) * (1 if reduce == "max" else -1)
        assert torch.equal(g, expected), (fn.__name__, g)


@compiled
@pytest.mark.parametrize("reduce", REDUCTIONS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_matches_reference_random(reduce, dtype):
    g = torch.Generator().manual_seed(1)
    src = torch.randn(3000, 5, 3, generator=g, dtype=dtype)
    index = torch.randint(0, 97, (3000,), generator=g)
    tol = {} if dtype == torch.float64 else {"atol": 1e-5, "rtol": 1e-5}
    assert_kernel_matches_reference(scatter, scatter_reference, src, index, dim_size=100, reduce=reduce, **tol)


@compiled
@pytest.mark.parametrize("reduce", REDUCTIONS)
def test_compiled_gradcheck_and_other_dims(reduce):
    src = torch.randn(4, 9, 2, dtype=torch.float64)
    index = torch.tensor([0, 1, 1, 3, 3, 3, 0, 5, 1])
    assert_kernel_matches_reference(scatter, scatter_reference, src, index, dim=1, dim_size=7, reduce=reduce, gradcheck=True)
    assert_kernel_matches_reference(scatter, scatter_reference, src, index, dim=-2, reduce=reduce)


@compiled
@pytest.mark.parametrize("reduce", REDUCTIONS)
def test_double_backward(reduce):
    src = torch.randn(12, 3, dtype=torch.float64, requires_grad=True)
    index = torch.tensor([0, 1, 1, 2, 2, 2, 0, 3, 3, 1, 0, 2])
    with ops.use_backend("compiled"):
        assert torch.autograd.gradgradcheck(lambda s: scatter(s, index, reduce=reduce) ** 2, (src,))


@compiled
@pytest.mark.parametrize("reduce", REDUCTIONS)
def test_edge_cases_empty_single_duplicates(reduce):
    cases = [
        (torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), 3),  # empty input, non-empty output
        (torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), None),  # empty everything
        (torch.randn(1, 4), torch.tensor([2]), None),  # one element
        (torch.ones(6, 2), torch.zeros(6, dtype=torch.long), 1),  # duplicates, all ties
        (torch.randn(5, 0), torch.tensor([0, 1, 1, 0, 2]), 3),  # zero channels
    ]
    for src, index, dim_size in cases:
        assert_kernel_matches_reference(scatter, scatter_reference, src, index, dim_size=dim_size, reduce=reduce)


def _with_threads(n, fn):
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(n)
        return fn()
    finally:
        torch.set_num_threads(old)


# Inputs of >= 32k elements run on several threads. Few segments (S * (2T + 1) <= N / 2) take the
# row split path of sum/mean (per-thread accumulators, T-dependent rounding), many segments the
# ownership path (one thread per segment, identical bits for any thread count).
ROW_SPLIT = dict(n=40_000, segments=100)
OWNERSHIP = dict(n=40_000, segments=30_000)


@compiled
@pytest.mark.parametrize("path", ["row_split", "ownership"])
@pytest.mark.parametrize("reduce", ["sum", "mean"])
@pytest.mark.parametrize("channels", [1, 3, 17, 64])
def test_compiled_sum_mean_paths_match_reference_on_two_threads(path, reduce, channels):
    shape = ROW_SPLIT if path == "row_split" else OWNERSHIP
    g = torch.Generator().manual_seed(channels)
    src = torch.randn(shape["n"], channels, generator=g, dtype=torch.float64)
    index = torch.randint(0, shape["segments"], (shape["n"],), generator=g)
    index[:5] = shape["segments"] - 1  # the last segment is never empty; some others are
    with ops.use_backend("compiled"):
        out = _with_threads(2, lambda: scatter(src, index, dim_size=shape["segments"] + 3, reduce=reduce))
    ref = scatter_reference(src, index, dim_size=shape["segments"] + 3, reduce=reduce)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    assert torch.equal(out[-3:], torch.zeros(3, channels, dtype=torch.float64))  # empty segments


@compiled
@pytest.mark.parametrize("path", ["row_split", "ownership"])
def test_compiled_is_deterministic(path):
    shape = ROW_SPLIT if path == "row_split" else OWNERSHIP
    g = torch.Generator().manual_seed(5)
    src = torch.randn(shape["n"], 8, generator=g)
    index = torch.randint(0, shape["segments"], (shape["n"],), generator=g)
    with ops.use_backend("compiled"):
        runs = {t: [_with_threads(t, lambda: scatter(src, index, dim_size=shape["segments"])) for _ in range(2)] for t in (1, 2)}
        one_thread_max = _with_threads(1, lambda: scatter(src, index, dim_size=shape["segments"], reduce="max"))
        two_thread_max = _with_threads(2, lambda: scatter(src, index, dim_size=shape["segments"], reduce="max"))
    for a, b in runs.values():
        assert torch.equal(a, b)  # the same thread count gives the same bits on every run
    # one thread sums each segment in row order: float32 in float64 directly (row_split: small output) or in
    # float32 runs of 16 rows added in float64 (ownership shape); the reference sums in float64 throughout:
    # equal to about an ulp ...
    torch.testing.assert_close(runs[1][0], scatter_reference(src, index, dim_size=shape["segments"]), rtol=1e-6, atol=2e-5)
    # ... and float64 rows exactly like the (sequential) reference
    src64 = src.double()
    with ops.use_backend("compiled"):
        one_thread64 = _with_threads(1, lambda: scatter(src64, index, dim_size=shape["segments"]))
    assert torch.equal(one_thread64, scatter_reference(src64, index, dim_size=shape["segments"]))
    if path == "ownership":
        assert torch.equal(runs[1][0], runs[2][0])  # one thread per segment: identical for any thread count
    else:
        torch.testing.assert_close(runs[1][0], runs[2][0], rtol=1e-5, atol=1e-5)  # rounding only
    assert torch.equal(one_thread_max, two_thread_max)  # max/min always take the ownership path


@compiled
@pytest.mark.parametrize("path", ["row_split", "ownership"])
@pytest.mark.parametrize("reduce", REDUCTIONS)
@pytest.mark.parametrize("where", [0, 25_000, 39_999])  # first thread, second thread, last row (tail loop)
def test_compiled_checks_index_range_in_its_own_pass(path, reduce, where):
    shape = ROW_SPLIT if path == "row_split" else OWNERSHIP
    src = torch.randn(shape["n"], 4)
    index = torch.randint(0, shape["segments"], (shape["n"],))
    with ops.use_backend("compiled"):
        for bad, match in ((shape["segments"] + 7, rf"index has an entry {shape['segments'] + 7} out of range"),
                           (-3, r"index has a negative entry \(-3\)")):
            wrong = index.clone()
            wrong[where] = bad
            with pytest.raises(ValueError, match=match):
                _with_threads(2, lambda: scatter(src, wrong, dim_size=shape["segments"], reduce=reduce))
        with pytest.raises(ValueError, match="index has an entry 0 out of range"):
            scatter(src, index * 0, dim_size=0, reduce=reduce)


@compiled
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(100, 200, 100), (40_000, 8, 30_000), (40_000, 4, 5_000)])
def test_wild_index_raises_and_does_not_crash(shape, threads, dtype):
    """Entries far outside [0, dim_size) (2**40, -2**40) ahead of the row being summed: the kernel reads the
    index ahead of its range check (prefetching); it must raise the ValueError, never touch memory there."""
    n, c, s = shape
    src = torch.randn(n, c, dtype=dtype)
    index = torch.randint(0, s, (n,), generator=torch.Generator().manual_seed(n))
    with ops.use_backend("compiled"):
        for bad in (1 << 40, -(1 << 40)):
            for where in (20, n // 2, n - 1):
                wrong = index.clone()
                wrong[where] = bad
                for reduce in ("sum", "mean"):
                    with pytest.raises(ValueError, match="index has"):
                        _with_threads(threads, lambda: scatter(src, wrong, dim_size=s, reduce=reduce))


@compiled
def test_skewed_segments_large_input():
    # one huge segment and many small ones exercises the load balancing
    index = torch.cat([torch.zeros(100_000, dtype=torch.long), torch.randint(1, 1000, (100_000,))]).sort().values
    src = torch.randn(200_000, 16, dtype=torch.float64)
    for reduce in REDUCTIONS:
        assert_kernel_matches_reference(scatter, scatter_reference, src, index, dim_size=1000, reduce=reduce, backward=False)


@compiled
def test_nan_propagates_in_max():
    src = torch.tensor([[1.0], [float("nan")], [3.0]])
    index = torch.tensor([0, 0, 0])
    assert torch.isnan(scatter(src, index, reduce="max")).all()
    assert torch.isnan(scatter_reference(src, index, reduce="max")).all()


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 60),
    c=st.integers(1, 4),
    segments=st.integers(1, 10),
    reduce=st.sampled_from(REDUCTIONS),
    seed=st.integers(0, 2**16),
)
def test_property_compiled_equals_reference_and_sum_is_conserved(n, c, segments, reduce, seed):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(-3, 4, (n, c), generator=g).double()  # small ints: many exact ties
    index = torch.randint(0, segments, (n,), generator=g)
    ref = scatter_reference(src, index, dim_size=segments, reduce=reduce)
    out = scatter(src, index, dim_size=segments, reduce=reduce)
    assert torch.equal(out, ref)
    if reduce == "sum":
        assert torch.allclose(out.sum(0), src.sum(0))
    if reduce in ("max", "min") and n:
        present = torch.bincount(index, minlength=segments) > 0
        pick = src.max(0).values if reduce == "max" else src.min(0).values
        assert torch.equal((out[present].max(0).values if reduce == "max" else out[present].min(0).values), pick)


SPECIAL = [float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1.0, -1.0, 2.0]


def _special_values(n, c, g, dtype):
    """Small integers with NaN, +-inf and +-0 mixed in: many exact ties and NaN/inf orderings."""
    pick = torch.randint(0, len(SPECIAL) + 3, (n, c), generator=g)
    values = torch.tensor(SPECIAL + [3.0, -2.0, 0.5], dtype=dtype)
    return values[pick]


def _check_argreduce(src, index, segments, reduce):
    from geomdl.ops.scatter import _argreduce_reference

    out, arg = torch.ops.geomdl.scatter_reduce(src, index, segments, reduce)
    ref_arg = _argreduce_reference(src, index, segments, reduce)
    assert torch.equal(arg, ref_arg)  # the row that attains the extreme: first tie, first NaN; n if empty
    ref = scatter_reference(src, index, dim_size=segments, reduce=reduce)
    assert torch.equal(torch.isnan(out), torch.isnan(ref)) and torch.equal(out.nan_to_num(), ref.nan_to_num())
    assert torch.equal(torch.signbit(out), torch.signbit(ref))  # -0.0 and 0.0: the first row's sign


@compiled
@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 80),
    c=st.integers(1, 19),
    segments=st.integers(1, 12),
    reduce=st.sampled_from(["max", "min"]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=st.integers(0, 2**16),
)
def test_property_compiled_max_min_rows_equal_reference(n, c, segments, reduce, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    _check_argreduce(_special_values(n, c, g, dtype), torch.randint(0, segments, (n,), generator=g), segments, reduce)


@compiled
@pytest.mark.parametrize("reduce", ["max", "min"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("sort", [True, False])
def test_compiled_max_min_rows_equal_reference_on_two_threads(reduce, dtype, sort):
    g = torch.Generator().manual_seed(7)
    n, segments = 40_000, 3_000
    src = _special_values(n, 13, g, dtype)
    index = torch.randint(0, segments - 5, (n,), generator=g)  # the last 5 segments are empty
    if sort:
        index = index.sort().values
    with ops.use_backend("compiled"):
        _with_threads(2, lambda: _check_argreduce(src, index, segments, reduce))


@pytest.mark.parametrize("fn", [scatter, scatter_reference])
def test_bad_input_raises_clear_errors(fn):
    src = torch.randn(4, 2)
    with pytest.raises(ValueError, match="index.*negative"):
        fn(src, torch.tensor([0, -1, 1, 2]))
    with pytest.raises(ValueError, match="index.*out of range"):
        fn(src, torch.tensor([0, 1, 5, 2]), dim_size=3)
    with pytest.raises(ValueError, match="index must have 4 entries"):
        fn(src, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="index must have an integer dtype"):
        fn(src, torch.tensor([0.0, 1.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match="reduce must be one of"):
        fn(src, torch.tensor([0, 1, 1, 0]), reduce="prod")
    with pytest.raises(TypeError, match="src must be a torch.Tensor"):
        fn([1.0, 2.0], torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="dim=2 is out of range"):
        fn(src, torch.tensor([0, 1, 1, 0]), dim=2)
    with pytest.raises(ValueError, match="index must be 1-D"):
        fn(src, torch.zeros(4, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="dim must be an int, got 0.0"):
        fn(src, torch.tensor([0, 1, 1, 0]), dim=0.0)
    # NumPy integers are ints (they were refused as "out of range")
    assert torch.equal(fn(src.t(), torch.tensor([0, 1, 1, 0]), dim=np.int64(1)), fn(src.t(), torch.tensor([0, 1, 1, 0]), dim=1))
    for reduce in ("max", "min"):  # complex numbers have no order (torch failed deep inside)
        with pytest.raises(TypeError, match="complex64 has no order"):
            fn(src.to(torch.complex64), torch.tensor([0, 1, 1, 0]), reduce=reduce)
    for reduce in ("sum", "mean"):  # index_add on bool is a logical or: a mean of [True, True] was 0.5
        with pytest.raises(TypeError, match="torch.bool cannot be summed"):
            fn(src > 0, torch.tensor([0, 1, 1, 0]), reduce=reduce)
    assert torch.equal(fn(torch.tensor([True, False, False]), torch.tensor([0, 0, 1]), reduce="max"), torch.tensor([True, False]))


def test_integer_src_uses_reference_path():
    src = torch.tensor([[1], [2], [3]])
    assert torch.equal(scatter(src, torch.tensor([0, 0, 1])), torch.tensor([[3], [3]]))


@compiled
def test_opcheck_schema_fake_and_autograd_registration():
    src = torch.randn(10, 3, requires_grad=True)
    index = torch.randint(0, 4, (10,))
    for reduce in REDUCTIONS:
        torch.library.opcheck(torch.ops.geomdl.scatter_reduce.default, (src, index, 4, reduce))
    torch.library.opcheck(torch.ops.geomdl.segment_softmax.default, (src, index, 4))


@compiled
def test_torch_compile_traces_the_op_without_graph_breaks():
    index = torch.tensor([0, 1, 1, 2])

    def f(x):
        return scatter(x * 2, index, dim_size=3, reduce="max").sum()

    x = torch.randn(4, 3)
    compiled_f = torch.compile(f, backend="eager", fullgraph=False)
    assert torch.allclose(compiled_f(x), f(x))


# ---- segment softmax ----


@pytest.mark.parametrize("shape", [(50,), (50, 3), (50, 2, 2)])
def test_segment_softmax_sums_to_one_and_matches_reference(shape):
    src = torch.randn(*shape, dtype=torch.float64) * 10
    index = torch.randint(0, 7, (50,))
    out = segment_softmax(src, index, num_segments=9)
    ref = segment_softmax_reference(src, index, num_segments=9)
    torch.testing.assert_close(out, ref)
    sums = scatter_reference(out.reshape(50, -1), index, dim_size=9)
    present = torch.bincount(index, minlength=9) > 0
    torch.testing.assert_close(sums[present], torch.ones_like(sums[present]))


@compiled
def test_segment_softmax_compiled_gradcheck_and_edge_cases():
    src = torch.randn(20, 2, dtype=torch.float64)
    index = torch.randint(0, 5, (20,))
    assert_kernel_matches_reference(segment_softmax, segment_softmax_reference, src, index, gradcheck=True)
    assert_kernel_matches_reference(segment_softmax, segment_softmax_reference, torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), 3)
    big = torch.tensor([[1000.0], [1000.0], [-1000.0]])  # overflow-safe
    assert_kernel_matches_reference(segment_softmax, segment_softmax_reference, big, torch.tensor([0, 0, 1]))


def test_segment_softmax_rejects_bad_input():
    with pytest.raises(TypeError, match="src must have a floating dtype"):
        segment_softmax(torch.tensor([1, 2]), torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="index"):
        segment_softmax(torch.randn(3), torch.tensor([0, 1]))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_sums_and_means_accumulate_in_float32(dtype):
    """float16/bfloat16 (autocast) run the reference. A mean over 100k rows of ~1 used to be inf/NaN in float16
    (the partial sums and the count overflow at 65504); accumulating in float32 leaves only the rounding of the
    result to ``dtype`` (bfloat16, whose range is float32's, is checked for that rounding too)."""
    g = torch.Generator().manual_seed(0)
    index = torch.repeat_interleave(torch.arange(3), 100_000)
    src = (torch.randn(300_000, 2, generator=g) * 0.1 + 1.0).to(dtype)
    exact = scatter_reference(src.double(), index, dim_size=3, reduce="mean")
    for fn in (scatter, scatter_reference):
        mean = fn(src, index, dim_size=3, reduce="mean")
        assert mean.dtype == dtype and torch.isfinite(mean).all()
        torch.testing.assert_close(mean.double(), exact, rtol=torch.finfo(dtype).eps, atol=0)
        if dtype == torch.bfloat16:  # (float16 cannot hold a sum of 1e5)
            total = fn(src, index, dim_size=3, reduce="sum")
            torch.testing.assert_close(total.double(), exact * 100_000, rtol=torch.finfo(dtype).eps, atol=0)


def test_integer_mean_stays_floating():
    """The mean of an integer input is a float (1.5, not a truncated 1), through both entry points."""
    src, index = torch.tensor([[1], [2], [4]]), torch.tensor([0, 0, 1])
    for fn in (scatter, scatter_reference):
        out = fn(src, index, 0, 2, reduce="mean")
        assert out.is_floating_point() and out.flatten().tolist() == [1.5, 4.0]


@pytest.mark.parametrize("dtype", [torch.int8, torch.uint8, torch.int16, torch.int32])
def test_integer_mean_does_not_wrap_in_a_narrow_dtype(dtype):
    """The mean of narrow integers is taken of their exact sum: [100, 100, 100] of int8 had the sum 300 wrap to 44
    (mean 14.67, not 100)."""
    big = 100 if dtype in (torch.int8, torch.uint8) else torch.iinfo(dtype).max
    src, index = torch.full((3, 2), big, dtype=dtype), torch.tensor([0, 0, 0])
    for fn in (scatter, scatter_reference):
        out = fn(src, index, 0, 1, reduce="mean")
        torch.testing.assert_close(out, torch.full((1, 2), float(big)))
