"""float32 ``scatter`` sum/mean (compiled CPU kernel on both of its paths, and the reference) within about one
float32 ulp of the exact sum on large segments.

A float32 running sum over n rows drifts by up to about n/2 ulps: at n = 1e5 rows of values near 1 the
float32 ``index_add_`` (what the reference and kernel used to do, and what torch / PyG / torch_scatter do) is
hundreds of ulps off. Both now accumulate in float64 and round once. Bound, with ``exact`` the float64 sum of
the same float32 inputs: ``|out - exact| <= eps |exact| + 2**-40 sum |v|`` (one float32 rounding, plus the float64
running sum's own drift, which is 2**29 times smaller than float32's).
"""
import pytest
import torch

import geomdl.ops._segment_sum as segment_sum_module
from geomdl import ops
from geomdl.ops import scatter, scatter_reference

EPS = torch.finfo(torch.float32).eps


def _one_segment(g):
    """1e5 rows near 1 in one segment, 4 channels (row split: few segments)."""
    n = 100_000
    return 1 + 0.01 * torch.rand(n, 4, generator=g), torch.zeros(n, dtype=torch.long), 1


def _mixed_segments(g):
    """One segment of 60,000 rows, 30,000 segments of 2 rows, an empty one, rows shuffled (ownership path on
    two threads: many segments), channels of both signs."""
    sizes = torch.cat([torch.tensor([60_000, 0]), torch.full((30_000,), 2)])
    index = torch.repeat_interleave(torch.arange(len(sizes)), sizes)
    index = index[torch.randperm(len(index), generator=g)]
    v = torch.rand(len(index), 3, generator=g) * torch.tensor([1.0, -1.0, 1.0]) + torch.tensor([1.0, -1.0, 0.0])
    return v, index, len(sizes)


CASES = {"one_segment_1e5": _one_segment, "mixed_sizes": _mixed_segments}


def _threads(n):
    def run(src, index, s, reduce):
        if not ops.has_kernel("scatter_reduce"):
            pytest.skip("compiled scatter kernel not built")
        old = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            with ops.use_backend("compiled"):
                return scatter(src, index, dim_size=s, reduce=reduce)
        finally:
            torch.set_num_threads(old)

    return run


def _reference_chunked(src, index, s, reduce):
    old = segment_sum_module.CHUNK_ELEMENTS
    segment_sum_module.CHUNK_ELEMENTS = 4096  # many chunks of widened rows
    try:
        return scatter_reference(src, index, dim_size=s, reduce=reduce)
    finally:
        segment_sum_module.CHUNK_ELEMENTS = old


IMPLS = {
    "compiled_1_thread": _threads(1),
    "compiled_2_threads": _threads(2),
    "reference": lambda src, index, s, reduce: scatter_reference(src, index, dim_size=s, reduce=reduce),
    "reference_chunked": _reference_chunked,
}


def _exact_and_bound(src, index, s, reduce):
    v = src.double()
    exact = torch.zeros(s, v.shape[1], dtype=torch.float64).index_add(0, index, v)
    mag = torch.zeros(s, v.shape[1], dtype=torch.float64).index_add(0, index, v.abs())
    if reduce == "mean":
        count = torch.bincount(index, minlength=s).clamp(min=1).double().unsqueeze(1)
        exact, mag = exact / count, mag / count
    return exact, EPS * exact.abs() + 2.0**-40 * mag


@pytest.mark.parametrize("reduce", ["sum", "mean"])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("impl", list(IMPLS))
def test_float32_within_an_ulp_of_the_exact_sum(impl, case, reduce):
    src, index, s = CASES[case](torch.Generator().manual_seed(11))
    out = IMPLS[impl](src, index, s, reduce)
    assert out.dtype == torch.float32 and out.shape == (s, src.shape[1])
    exact, bound = _exact_and_bound(src, index, s, reduce)
    excess = ((out.double() - exact).abs() - bound).max().item()
    assert excess <= 0, f"{impl}: float32 {reduce} off the exact value by {excess:.3g} beyond one ulp"


@pytest.mark.parametrize("case", list(CASES))
def test_the_bound_catches_a_float32_running_sum(case):
    """The test above can fail: a float32 running sum (torch's index_add_) breaks its bound by far."""
    src, index, s = CASES[case](torch.Generator().manual_seed(11))
    running = torch.zeros(s, src.shape[1]).index_add(0, index, src)
    exact, bound = _exact_and_bound(src, index, s, "sum")
    assert ((running.double() - exact).abs() > 10 * bound).any()


def test_half_mean_of_a_large_segment_is_rounded_once():
    """fp16/bf16 (autocast) go to the reference: float64 sums, the mean rounded once (a float16 running sum would
    reach inf at 65504); the sum itself overflows float16 only where its value does."""
    src = 1 + 0.01 * torch.rand(100_000, 2, generator=torch.Generator().manual_seed(2))
    index = torch.zeros(100_000, dtype=torch.long)
    for dtype in (torch.float16, torch.bfloat16):
        half = src.to(dtype)
        exact = half.double().sum(0, keepdim=True)
        assert torch.equal(scatter(half, index, dim_size=1, reduce="mean"), (exact / 100_000).to(dtype))
        assert torch.equal(scatter(half, index, dim_size=1, reduce="sum"), exact.to(dtype))
    assert torch.isinf(scatter(src.half(), index, dim_size=1)).all()  # 1e5 > 65504


def test_integer_sums_stay_exact_and_integer():
    index = torch.tensor([0, 0, 1])
    big = torch.tensor([[2**62], [2**61 + 1], [3]])
    assert torch.equal(scatter_reference(big, index, dim_size=2), torch.tensor([[2**62 + 2**61 + 1], [3]]))
    mean = scatter_reference(torch.tensor([[1], [2], [5]]), index, dim_size=3, reduce="mean")
    assert mean.is_floating_point() and torch.equal(mean, torch.tensor([[1.5], [5.0], [0.0]]))
