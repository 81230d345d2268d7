"""Property tests of ``segment_softmax``: the compiled kernel equals ``segment_softmax_reference`` (values and
gradients) on random shapes, layouts and index patterns (empty input, one row, empty segments, all rows in one
segment, extreme and infinite values), and the output has the defining properties of a softmax per segment."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl import ops
from geomdl.ops import scatter_reference, segment_softmax, segment_softmax_reference
from geomdl.testing import assert_kernel_matches_reference

compiled = pytest.mark.skipif(not ops.has_kernel("segment_softmax"), reason="geomdl._C not built (reference mode)")

_SPECIAL = torch.tensor([0.0, 1.0, -1.0, 1e4, -1e4, 88.0, -88.0, 2.5])


def _case(seed, n, trailing, segments, pattern, special):
    g = torch.Generator().manual_seed(seed)
    if pattern == "one_segment":
        index = torch.full((n,), segments - 1, dtype=torch.long)
    elif pattern == "sorted":
        index = torch.randint(0, segments, (n,), generator=g).sort().values
    else:
        index = torch.randint(0, segments, (n,), generator=g)
    shape = (n,) + tuple(trailing)
    if special:  # exact ties, huge magnitudes (overflow of a naive exp), exact zeros
        src = _SPECIAL[torch.randint(0, len(_SPECIAL), shape, generator=g)].double()
    else:
        src = torch.randn(shape, generator=g, dtype=torch.float64) * 5
    return src, index


CASES = dict(seed=st.integers(0, 2**31 - 1), n=st.integers(0, 40),
             trailing=st.lists(st.integers(1, 3), max_size=2), segments=st.integers(1, 8),
             pattern=st.sampled_from(["random", "sorted", "one_segment"]), special=st.booleans())


@compiled
@settings(max_examples=60, deadline=None)
@given(**CASES, dim_last=st.booleans(), float32=st.booleans(), extra_segments=st.integers(0, 3))
def test_compiled_equals_reference(seed, n, trailing, segments, pattern, special, dim_last, float32, extra_segments):
    src, index = _case(seed, n, trailing, segments, pattern, special)
    if float32:
        src = src.float()
    dim = 0
    if dim_last and src.dim() > 1:  # the segment dimension last: exercises the movedim/flatten layout
        src, dim = src.movedim(0, -1).contiguous(), src.dim() - 1
    tol = dict(atol=1e-6, rtol=1e-5) if float32 else dict(atol=1e-12, rtol=1e-10)
    assert_kernel_matches_reference(segment_softmax, segment_softmax_reference, src, index,
                                    segments + extra_segments, dim, **tol)
    # num_segments=None infers index.max() + 1 on both paths
    if n:
        assert_kernel_matches_reference(segment_softmax, segment_softmax_reference, src, index, None, dim, **tol)


@compiled
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 12), segments=st.integers(1, 4))
def test_compiled_gradcheck(seed, n, segments):
    src, index = _case(seed, n, (2,), segments, "random", False)
    assert_kernel_matches_reference(segment_softmax, segment_softmax_reference, src, index, segments, gradcheck=True)


@compiled
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 20), segments=st.integers(1, 5), c=st.integers(1, 3))
def test_compiled_propagates_infinities_like_the_reference(seed, n, segments, c):
    """-inf entries get weight 0; a segment of only -inf entries (or any +inf / NaN entry) gives NaN: the kernel
    must produce NaN exactly where the reference does."""
    g = torch.Generator().manual_seed(seed)
    values = torch.tensor([float("-inf"), float("inf"), float("nan"), 0.0, 1.0, -3.0], dtype=torch.float64)
    src = values[torch.randint(0, len(values), (n, c), generator=g)]
    index = torch.randint(0, segments, (n,), generator=g)
    assert_kernel_matches_reference(segment_softmax, segment_softmax_reference, src, index, segments,
                                    backward=False, exact=True)


@settings(max_examples=60, deadline=None)
@given(**CASES)
def test_sums_to_one_shift_invariance_and_permutation_equivariance(seed, n, trailing, segments, pattern, special):
    src, index = _case(seed, n, trailing, segments, pattern, special)
    for fn in (segment_softmax, segment_softmax_reference):
        out = fn(src, index, segments)
        assert out.shape == src.shape and out.dtype == src.dtype
        assert torch.isfinite(out).all() and (out >= 0).all() and (out <= 1).all()
        flat = out.reshape(n, math.prod(trailing))
        sums = scatter_reference(flat, index, dim_size=segments)
        present = torch.bincount(index, minlength=segments) > 0
        torch.testing.assert_close(sums[present], torch.ones_like(sums[present]))
        assert (sums[~present] == 0).all()
        # adding a constant per segment (and channel) changes nothing
        g = torch.Generator().manual_seed(seed + 1)
        shift = torch.randint(-50, 50, (segments,) + tuple(trailing), generator=g).double()
        torch.testing.assert_close(fn(src + shift[index], index, segments), out, atol=1e-12, rtol=1e-9)
        # rows are independent of their order
        perm = torch.randperm(n, generator=g)
        torch.testing.assert_close(fn(src[perm], index[perm], segments), out[perm], atol=1e-15, rtol=0)
        # one segment holding all rows is torch.softmax over that dimension
        if n:
            torch.testing.assert_close(fn(src, torch.zeros_like(index), 1), torch.softmax(src, 0))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_softmax_computes_in_float32(dtype):
    """float16/bfloat16 (autocast) use the reference; like ``torch.softmax`` it exponentiates and sums in
    float32, so the result is the float64 softmax rounded once to ``dtype`` (the denominator summed in
    bfloat16 used to be off by percents)."""
    g = torch.Generator().manual_seed(0)
    index = torch.repeat_interleave(torch.arange(3), torch.tensor([10, 1000, 20_000]))
    src = (torch.randn(index.numel(), 2, generator=g) * 3).to(dtype)
    exact = segment_softmax_reference(src.double(), index, 3)
    for fn in (segment_softmax, segment_softmax_reference):
        out = fn(src, index, 3)
        assert out.dtype == dtype
        torch.testing.assert_close(out.double(), exact, rtol=torch.finfo(dtype).eps, atol=1e-7)
