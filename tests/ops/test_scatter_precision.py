"""float32 ``scatter`` sum/mean (compiled CPU kernel on its paths, and the reference) within about one float32
ulp of the exact sum on large segments, and the kernel's run arithmetic bit for bit.

A float32 running sum over n rows drifts by up to about n/2 ulps: at n = 1e5 rows of values near 1 the
float32 ``index_add_`` (what the reference and kernel used to do, and what torch / PyG / torch_scatter do) is
hundreds of ulps off. The reference now sums in float64; the kernel in float64 for small outputs, else in
float32 runs of at most 16 rows added in float64; both round once. Bound on large segments, with ``exact`` the
float64 sum of the same float32 inputs: ``|out - exact| <= eps |exact| + 2**-40 sum |v|``.
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


def _runs_on_two_threads(g):
    """2e5 rows into 600 segments, 32 channels: row split with an output too large for the float64
    accumulators, so each thread sums its ~170 rows of a segment in runs and the threads' sums are combined."""
    n = 200_000
    return 1 + 0.01 * torch.rand(n, 32, generator=g), torch.randint(0, 600, (n,), generator=g), 600


CASES = {"one_segment_1e5": _one_segment, "mixed_sizes": _mixed_segments, "row_split_runs": _runs_on_two_threads}


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


@pytest.mark.parametrize("case", ["one_segment_1e5", "mixed_sizes"])  # (segments of 1e5 and 6e4 rows)
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


KRUN = 16  # kRun of kernels/scatter/scatter_cpu.cpp


def _runs_of_16(src, index, s, reduce):
    """Model of one thread's runs: each segment's rows (in row order) summed in float32 runs of 16, the runs added
    in float64 in order, the total (divided by the count for a mean) rounded once."""
    n, c = src.shape
    order = torch.sort(index, stable=True).indices
    seg = index[order]
    rank = torch.arange(n) - torch.searchsorted(seg, seg)  # position of a row within its segment
    run, pos = rank // KRUN, rank % KRUN
    n_runs = int(run.max()) + 1 if n else 0
    runs = torch.zeros(s, n_runs, c)
    for p in range(KRUN):  # float32 additions in row order within every run
        m = pos == p
        runs[seg[m], run[m]] += src[order[m]]
    total = torch.zeros(s, c, dtype=torch.float64)
    for k in range(n_runs):
        total += runs[:, k].double()
    if reduce == "mean":
        total /= torch.bincount(index, minlength=s).clamp(min=1).double().unsqueeze(1)
    return total.float()


def _many_run_segments(g, c):
    """32,000 segments: most of 1 row, 2,000 of 1 to 80 rows (several runs each), 3 empty; rows shuffled."""
    sizes = torch.ones(32000, dtype=torch.long)
    sizes[torch.randperm(32000, generator=g)[:2000]] = torch.randint(1, 81, (2000,), generator=g)
    sizes[-3:] = 0
    index = torch.repeat_interleave(torch.arange(32000), sizes)
    index = index[torch.randperm(len(index), generator=g)]
    return torch.randn(len(index), c, generator=g) + 0.5, index, 32000


@pytest.mark.parametrize("isa", ["default", "generic"])  # the AVX2 copy of the row loops (where the CPU has it), the baseline one
@pytest.mark.parametrize("reduce", ["sum", "mean"])
@pytest.mark.parametrize("channels", [1, 5, 11])
@pytest.mark.parametrize("threads", [1, 2])  # 1: row split; 2: ownership, ~1,000 multi-run segments per thread
def test_float32_runs_bit_for_bit(reduce, channels, threads, isa, monkeypatch):
    if isa == "generic":
        monkeypatch.setenv("GEOMDL_SCATTER_ISA", "generic")
    else:
        monkeypatch.delenv("GEOMDL_SCATTER_ISA", raising=False)
    src, index, s = _many_run_segments(torch.Generator().manual_seed(channels), channels)
    out = _threads(threads)(src, index, s, reduce)
    assert torch.equal(out, _runs_of_16(src, index, s, reduce))


@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_small_output_sums_in_float64_on_one_thread(reduce):
    """Few segments, small output (the pooling case): float64 sums rounded once, i.e. the reference bit for bit
    on one thread (its float64 index_add_ adds in row order too)."""
    g = torch.Generator().manual_seed(4)
    src = 1 + torch.rand(200_000, 8, generator=g)
    index = torch.randint(0, 16, (200_000,), generator=g)
    out = _threads(1)(src, index, 16, reduce)
    assert torch.equal(out, scatter_reference(src, index, dim_size=16, reduce=reduce))
    two = _threads(2)(src, index, 16, reduce)  # per-thread float64 sums: at most the final rounding differs
    torch.testing.assert_close(two, out, rtol=EPS, atol=0)
