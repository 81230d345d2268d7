"""Softmax within segments: ``segment_softmax`` and ``segment_softmax_reference``.

.. math::  y_i = \\frac{\\exp(x_i - m_s)}{\\sum_{j:\\,\\mathrm{index}_j = s} \\exp(x_j - m_s)},
           \\quad s = \\mathrm{index}_i,\\ m_s = \\max_{j:\\,\\mathrm{index}_j = s} x_j

Used for attention over the incoming edges of each node (``index = edge_index[1]``).

Precision: the per-segment sums (the denominators, and ``sum_j g_j y_j`` of the backward) are accumulated
in float64 for every input dtype, here and in the compiled kernels, then rounded once to the working
dtype. A float32 running sum over a segment of ``n`` rows errs by up to about ``n/2`` ulps (1e-4 relative
at ``n = 1e5``); the float64 one stays within about one float32 ulp.
"""
from __future__ import annotations

import torch

from geomdl.ops._extension import extension_loaded, use_compiled
from geomdl.ops._fast_path import segment_call
from geomdl.ops._segment_sum import segment_sum64
from geomdl.ops._validation import check_index_values, segment_inputs


def _prepare(src, index, num_segments, dim, check_values=True):
    src2, index, dim, num_segments, rest = segment_inputs(src, index, dim, num_segments, floating=True,
                                                          size_name="num_segments", check_values=check_values)
    return src2, index, num_segments, dim, rest


def segment_softmax(src: torch.Tensor, index: torch.Tensor, num_segments: int | None = None, dim: int = 0) -> torch.Tensor:
    """Softmax of ``src`` over the entries along ``dim`` that share an ``index`` value.

    Args:
        src: floating tensor with ``N`` entries along ``dim``.
        index: int tensor ``[N]`` with values in ``[0, num_segments)``.
        num_segments: number of segments (default ``index.max() + 1``).
        dim: dimension of ``src`` that ``index`` refers to.

    Returns:
        tensor of the shape of ``src``; entries of each segment sum to 1 per channel.
    """
    out = segment_call("segment_softmax", src, index, dim, num_segments)
    if out is not None:  # the common eager call: few checks, no autograd layer without a gradient
        return out
    # The compiled kernels check the range of `index` in their own pass over it (raising the same
    # ValueError), so the values are checked here only for the reference (one host sync fewer on CUDA).
    src2, index, num_segments, dim, rest = _prepare(src, index, num_segments, dim, check_values=False)
    if use_compiled("segment_softmax", src2):
        out = torch.ops.geomdl.segment_softmax(src2.contiguous(), index.contiguous(), num_segments)
    else:
        check_index_values(index, "index", num_segments)
        out = _segment_softmax_reference_2d(src2, index, num_segments)
    return out.reshape(src2.shape[:1] + tuple(rest)).movedim(0, dim)


def segment_softmax_reference(src: torch.Tensor, index: torch.Tensor, num_segments: int | None = None, dim: int = 0) -> torch.Tensor:
    """Pure-PyTorch specification of :func:`segment_softmax`."""
    src2, index, num_segments, dim, rest = _prepare(src, index, num_segments, dim)
    out = _segment_softmax_reference_2d(src2, index, num_segments)
    return out.reshape(src2.shape[:1] + tuple(rest)).movedim(0, dim)


def _segment_softmax_reference_2d(src, index, num_segments):
    n, c = src.shape
    x = src.float() if src.dtype in (torch.float16, torch.bfloat16) else src  # as torch.softmax: float32 inside
    idx = index.unsqueeze(1).expand(n, c)
    with torch.no_grad():
        mx = x.new_full((num_segments, c), float("-inf")).scatter_reduce(0, idx, x, "amax", include_self=True)
    e = torch.exp(x - mx.index_select(0, index))
    den = segment_sum64(e, index, num_segments)  # den_s = sum_{j in s} e_j, in float64
    return (e / _gather_rounded(den, index, x.dtype)).to(src.dtype)


def _gather_rounded(acc, index, dtype):
    """``out_i = fl(acc[index_i])`` (``[N, C]`` in ``dtype``).

    Under reverse-mode autograd the rows are gathered in float64, then rounded, so that the gradient, a
    segment sum over the rows, flows back into ``acc`` in float64 too (one piece: the backward of a gather in
    chunks would build an ``[S, C]`` gradient per chunk). Otherwise rounding first gives the same values for
    an ``[S, C]`` conversion instead of an ``[N, C]`` one."""
    if torch.is_grad_enabled() and acc.requires_grad:
        return acc.index_select(0, index).to(dtype)
    return acc.to(dtype).index_select(0, index)


def _setup_context(ctx, inputs, output):
    _, index, num_segments = inputs
    ctx.num_segments = num_segments
    ctx.save_for_backward(index, output)


def _backward(ctx, grad_out):
    index, y = ctx.saved_tensors
    # dy_i/dx: grad_x = y * (g - sum_{j in s} g_j y_j), the segment sum accumulated in float64
    seg = segment_sum64(grad_out * y, index, ctx.num_segments)
    return y * (grad_out - _gather_rounded(seg, index, y.dtype)), None, None


def _register() -> None:
    if not extension_loaded():
        return
    torch.library.register_autograd("geomdl::segment_softmax", _backward, setup_context=_setup_context)

    @torch.library.register_fake("geomdl::segment_softmax")
    def _fake(src, index, num_segments):
        return torch.empty_like(src)


_register()
