"""The AVX2 and baseline copies of the CPU scatter row loops (kernels/scatter/scatter_rows.h) give the same values.

x86 builds compile the row loops twice and run the AVX2 copy where the CPU has it; GEOMDL_SCATTER_ISA=generic
forces the baseline (SSE2) copy. Every channel loop is elementwise, so the two must agree bit for bit on every
path: row split (float64-direct and in runs), ownership (sum/mean in runs, max/min with int32 and float64
row lanes), on 1 and 2 threads, with channel counts around the vector widths, NaN and ties. The one exception:
where NaNs of different signs meet in a sum, either may come out (the add's operand order is the compiler's),
so NaNs are compared as NaN. Each call's copy is checked through torch.ops.geomdl._cpu_copy_used.
"""
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl import ops
from geomdl.ops import scatter_reference

pytestmark = pytest.mark.skipif(not ops.has_kernel("scatter_reduce"), reason="geomdl._C not built (reference mode)")

ENV = "GEOMDL_SCATTER_ISA"


def _has_avx2() -> bool:
    return bool(getattr(sys.modules.get("geomdl._C"), "avx2", 0))


needs_avx2 = pytest.mark.skipif(not _has_avx2(), reason="the CPU has no AVX2 (or not an x86 build): one copy only")


def _op(src, index, s, reduce, threads, monkeypatch, isa):
    if isa == "generic":
        monkeypatch.setenv(ENV, "generic")
    else:
        monkeypatch.delenv(ENV, raising=False)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return torch.ops.geomdl.scatter_reduce(src, index, s, reduce)
    finally:
        torch.set_num_threads(old)


def _both(src, index, s, reduce, threads, monkeypatch):
    """(out, arg) of the AVX2 copy and of the baseline copy (each call checked to have run that copy)."""
    copy = torch.ops.geomdl._cpu_copy_used
    fast = _op(src, index, s, reduce, threads, monkeypatch, "avx2")
    if src.numel():
        assert copy("scatter") == "avx2"
    base = _op(src, index, s, reduce, threads, monkeypatch, "generic")
    if src.numel():
        assert copy("scatter") == "generic"
    monkeypatch.delenv(ENV, raising=False)
    return fast, base


def _same_bits(a, b):
    """Equal bit for bit (-0.0 != 0.0), except that any NaN equals any NaN."""
    assert a.dtype == b.dtype and a.shape == b.shape
    if a.is_floating_point():
        assert torch.equal(a.isnan(), b.isnan())
        keep = ~a.isnan()
        ai = a[keep].view(torch.int64 if a.dtype == torch.float64 else torch.int32)
        bi = b[keep].view(torch.int64 if b.dtype == torch.float64 else torch.int32)
        assert torch.equal(ai, bi)
    else:
        assert torch.equal(a, b)


# (n, segments): which path a shape takes on 2 threads (scatter_cpu.cpp: use_row_split, kDirectElements)
SHAPES = {
    "row_split_direct": (60_000, 40),  # S * C <= 2^14: float64 accumulators
    "row_split_runs": (60_000, 2_000),  # row split, S * C > 2^14 for C >= 9: float32 runs
    "ownership": (60_000, 20_000),  # many segments
}


def _inputs(n, c, s, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    src = torch.randn(n, c, generator=g, dtype=dtype)
    src[1::7] = src[::7][: len(src[1::7])]  # ties (max/min: the first row attaining them wins)
    src[::97, ::3] = float("nan")
    src[5::89] = torch.round(src[5::89])  # more ties
    index = torch.randint(0, s, (n,), generator=g)
    return src, index


@needs_avx2
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("channels", [1, 7, 9, 33])
def test_avx2_and_generic_copies_agree_bit_for_bit(shape, reduce, dtype, channels, monkeypatch):
    n, s = SHAPES[shape]
    src, index = _inputs(n, channels, s, dtype, seed=channels)
    for threads in (1, 2):
        (out_a, arg_a), (out_b, arg_b) = _both(src, index, s, reduce, threads, monkeypatch)
        _same_bits(out_a, out_b)
        _same_bits(arg_a, arg_b)
    finite = src.nan_to_num(0.0)  # (sums with NaN are NaN either way)
    (out_a, _), (out_b, _) = _both(finite, index, s, reduce, 2, monkeypatch)
    _same_bits(out_a, out_b)
    want = scatter_reference(finite, index, dim_size=s, reduce=reduce)
    tol = 1e-12 if dtype == torch.float64 else 2e-6
    torch.testing.assert_close(out_a, want, rtol=tol, atol=tol)


@needs_avx2
@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 3_000), c=st.integers(1, 40), s=st.integers(1, 400), reduce=st.sampled_from(["sum", "mean", "max", "min"]),
       double=st.booleans(), threads=st.sampled_from([1, 2]), seed=st.integers(0, 2**16))
def test_property_copies_agree(n, c, s, reduce, double, threads, seed):
    src, index = _inputs(n, c, s, torch.float64 if double else torch.float32, seed)
    with pytest.MonkeyPatch.context() as mp:
        (out_a, arg_a), (out_b, arg_b) = _both(src, index, s, reduce, threads, mp)
    _same_bits(out_a, out_b)
    _same_bits(arg_a, arg_b)


@needs_avx2
@pytest.mark.parametrize("dtype,c,s", [(torch.float64, 4, 1), (torch.float64, 8, 1), (torch.float32, 33, 2000)])
def test_nans_of_both_signs_give_nan_in_both_copies(dtype, c, s, monkeypatch):
    """NaN and -NaN in one segment: both copies give NaN there (which of the two may differ), numbers elsewhere."""
    n = 4096  # long enough for the prefetching main loop of Rows::runs
    src = torch.ones(n, c, dtype=dtype)
    index = torch.arange(n) % s
    src[:s] = float("nan")
    src[s:2 * s] = -float("nan")
    src[:, 0] = 2.0  # a channel without NaN
    for threads in (1, 2):
        (fast, _), (base, _) = _both(src, index, s, "sum", threads, monkeypatch)
        _same_bits(fast, base)
        assert bool(fast[:, 1:].isnan().all())
        assert torch.equal(fast[:, 0], 2 * torch.bincount(index, minlength=s).to(dtype))


@pytest.mark.parametrize("value", ["avx512", "GENERIC", "sse2"])
@pytest.mark.parametrize("empty", [False, True])
def test_misspelt_isa_setting_raises(value, empty, monkeypatch):
    """The kernel reads GEOMDL_SCATTER_ISA on every call, empty ones included, and refuses values it does not
    know instead of ignoring them."""
    monkeypatch.setenv(ENV, value)
    n = 0 if empty else 4
    with pytest.raises(ValueError, match=f"{ENV} must be 'generic'.*not '{value}'"):
        torch.ops.geomdl.scatter_reduce(torch.ones(n, 2), torch.zeros(n, dtype=torch.long), 1, "max")
    for ok in ("generic", "avx2", ""):
        monkeypatch.setenv(ENV, ok)
        assert torch.equal(torch.ops.geomdl.scatter_reduce(torch.ones(4, 2), torch.zeros(4, dtype=torch.long), 1, "sum")[0],
                           torch.full((1, 2), 4.0))


def test_extension_reports_whether_the_avx2_copies_run():
    flag = getattr(sys.modules["geomdl._C"], "avx2")
    assert flag in (0, 1)
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        assert flag == 1  # an x86 CPU that torch runs AVX2 kernels on
