"""float32 segment_softmax (compiled kernel and reference), forward and backward, within a few float32 ulps of
the float64 result on large segments.

The per-segment sums (the denominators, and ``sum_j g_j y_j`` of the backward) used to be float32 running sums,
up to about n/2 ulps off on a segment of n rows: 1.3e-4 relative (about 1000 ulps) at n = 1e5 for nearly equal
logits, where every exp(x - max) is about 1. They are accumulated in float64 now.

Bounds (eps = float32 eps, everything on the right computed in float64 from the same float32 inputs):

* forward: ``|y - y64| <= K eps y64 (1 + |x - m|)``: ``x - m`` is rounded once in float32 (a relative
  error ``eps |x - m| / 2`` of ``exp(x - m)``), then exp, the rounded denominator and the division add an ulp each;
* backward: ``|gx - gx64| <= K eps y64 (|g| + sum_{j in s} |g_j| y64_j)``: the terms of ``g - sum_j g_j y_j``
  are each within an ulp or two, their difference may cancel.
"""
import pytest
import torch

import geomdl.ops._segment_sum as segment_sum_module
from geomdl import ops

EPS = torch.finfo(torch.float32).eps
K = 4  # ulps allowed (measured: below 1 forward, below 2 backward); the float32 running sums were 500-1000 off


def _one_segment(g):
    """1e5 nearly equal logits in one segment (every exp(x - max) is about 1: the worst case of a running sum)."""
    n = 100_000
    return torch.rand(n, 1, generator=g) * 0.01, torch.zeros(n, dtype=torch.long), 1


def _mixed_segments(g):
    """Segments of 1 to 60,000 rows (and an empty one), rows in random order, 3 channels of differing spread."""
    sizes = torch.tensor([1, 2, 7, 300, 5000, 0, 60_000])
    index = torch.repeat_interleave(torch.arange(len(sizes)), sizes)
    index = index[torch.randperm(len(index), generator=g)]
    x = torch.rand(len(index), 3, generator=g) * torch.tensor([0.01, 1.0, 8.0])
    return x, index, len(sizes)


CASES = {"one_segment_1e5": _one_segment, "mixed_sizes": _mixed_segments}


def _compiled(src, index, s):
    if not ops.has_kernel("segment_softmax"):
        pytest.skip("compiled segment_softmax kernel not built")
    with ops.use_backend("compiled"):
        return ops.segment_softmax(src, index, s)


def _reference_chunked(src, index, s):
    """The reference with its float64 widening split into many chunks (the path of large inputs)."""
    old = segment_sum_module.CHUNK_ELEMENTS
    segment_sum_module.CHUNK_ELEMENTS = 4096
    try:
        return ops.segment_softmax_reference(src, index, s)
    finally:
        segment_sum_module.CHUNK_ELEMENTS = old


IMPLS = {"compiled": _compiled, "reference": ops.segment_softmax_reference, "reference_chunked": _reference_chunked}


def _inputs(case):
    g = torch.Generator().manual_seed(7)
    x, index, s = CASES[case](g)
    # Output gradients of mean 1: sum_j g_j y_j then grows like the denominator (with a zero mean the running
    # sum would stay small and hide its rounding).
    return x, index, s, 1 + 0.5 * torch.randn(x.shape, generator=g)


def _segment_max(x64, index, s):
    return x64.new_full((s, x64.shape[1]), float("-inf")).scatter_reduce(0, index.unsqueeze(1).expand_as(x64), x64, "amax")


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("impl", list(IMPLS))
def test_float32_forward_within_ulps_of_float64(impl, case):
    x, index, s, _ = _inputs(case)
    y = IMPLS[impl](x, index, s)
    x64 = x.double()
    y64 = ops.segment_softmax_reference(x64, index, s)
    shift = (x64 - _segment_max(x64, index, s)[index]).abs()
    ulps = ((y.double() - y64).abs() / (EPS * y64 * (1 + shift))).max().item()
    assert ulps <= K, f"{impl}: float32 forward {ulps:.1f} eps off the float64 result"


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("impl", list(IMPLS))
def test_float32_backward_within_ulps_of_float64(impl, case):
    x, index, s, g = _inputs(case)
    leaf = x.clone().requires_grad_()
    (gx,) = torch.autograd.grad(IMPLS[impl](leaf, index, s), leaf, g)
    leaf64 = x.double().requires_grad_()
    y64 = ops.segment_softmax_reference(leaf64, index, s)
    (gx64,) = torch.autograd.grad(y64, leaf64, g.double())
    y64 = y64.detach()
    seg_abs = torch.zeros(s, x.shape[1], dtype=torch.float64).index_add(0, index, g.double().abs() * y64)
    scale = EPS * y64 * (g.double().abs() + seg_abs[index])
    ulps = ((gx.double() - gx64).abs() / scale).max().item()
    assert ulps <= K, f"{impl}: float32 backward {ulps:.1f} eps off the float64 result"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_chunked_reference_keeps_semantics(dtype):
    """NaN spreading, all -inf segments, empty segments and gradients are those of the one-piece reference."""
    nan, inf = float("nan"), float("inf")
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3000, 2, generator=g, dtype=torch.float64).to(dtype)
    index = torch.randint(0, 40, (3000,), generator=g) * 2  # odd segments empty
    x[index == 4, 0] = -inf  # a segment of -inf in channel 0: NaN
    x[torch.nonzero(index == 6)[0], 1] = nan  # one NaN spreads over its segment's channel
    x[torch.nonzero(index == 8)[:3], 0] = -inf  # some -inf in a segment: zeros there
    weights = torch.randn(x.shape, generator=g, dtype=dtype)
    outs = []
    for impl in (ops.segment_softmax_reference, _reference_chunked):
        leaf = x.clone().requires_grad_()
        y = impl(leaf, index, 81)
        (gx,) = torch.autograd.grad(y, leaf, weights)
        outs.append((y.detach(), gx))
    for a, b in zip(outs[0], outs[1]):
        torch.testing.assert_close(a, b, equal_nan=True, rtol=4 * torch.finfo(dtype).eps, atol=0)
    y = outs[0][0]
    assert y[index == 4, 0].isnan().all() and y[index == 6, 1].isnan().all() and not y[index == 6, 0].isnan().any()
    assert (y[torch.nonzero(index == 8)[:3], 0] == 0).all()
