"""Softmax within segments: ``segment_softmax`` and ``segment_softmax_reference``.

.. math::  y_i = \\frac{\\exp(x_i - m_s)}{\\sum_{j:\\,\\mathrm{index}_j = s} \\exp(x_j - m_s)},
           \\quad s = \\mathrm{index}_i,\\ m_s = \\max_{j:\\,\\mathrm{index}_j = s} x_j

Used for attention over the incoming edges of each node (``index = edge_index[1]``).
"""
from __future__ import annotations

import torch

from geomdl.ops._extension import extension_loaded, use_compiled
from geomdl.ops._fast_path import segment_call
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
    den = x.new_zeros((num_segments, c)).index_add(0, index, e)
    return (e / den.index_select(0, index)).to(src.dtype)


def _setup_context(ctx, inputs, output):
    _, index, num_segments = inputs
    ctx.num_segments = num_segments
    ctx.save_for_backward(index, output)


def _backward(ctx, grad_out):
    index, y = ctx.saved_tensors
    # dy_i/dx: grad_x = y * (g - sum_{j in s} g_j y_j)
    gy = grad_out * y
    seg = gy.new_zeros((ctx.num_segments, gy.shape[1])).index_add(0, index, gy)
    return y * (grad_out - seg.index_select(0, index)), None, None


def _register() -> None:
    if not extension_loaded():
        return
    torch.library.register_autograd("geomdl::segment_softmax", _backward, setup_context=_setup_context)

    @torch.library.register_fake("geomdl::segment_softmax")
    def _fake(src, index, num_segments):
        return torch.empty_like(src)


_register()
