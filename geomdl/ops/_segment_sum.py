"""Segment sums accumulated in float64: the pure-PyTorch side of the float64 accumulators of the compiled
``scatter`` sum/mean and ``segment_softmax`` kernels.

.. math::  \\mathrm{acc}_s = \\sum_{i:\\,\\mathrm{index}_i = s} v_i  \\quad\\text{(in float64)}

A float32 running sum over a segment of ``n`` rows errs by up to about ``n/2`` ulps (1e-3 relative at
``n = 1e5``); summed in float64 and rounded once, the result stays within about one float32 ulp of the exact
sum for any ``n < 2**29``.
"""
from __future__ import annotations

import torch

# Elements of float32 (or narrower) values widened to float64 at a time: the extra memory stays at one such
# chunk (2 MiB) whatever N is, and the chunk stays in cache between its widening and its index_add (faster than
# one float32 index_add of the whole tensor, measured at 1e6 x 16).
CHUNK_ELEMENTS = 1 << 18


def _row_step(n, c, dtype):
    """Rows per chunk of an ``[n, c]`` tensor of ``dtype``, or ``None`` for one piece: float64 needs no
    widening, small tensors fit in one chunk, and under ``torch.compile`` a Python loop would be unrolled
    into the graph (or, with symbolic sizes, could not run): the compiler plans that memory itself."""
    if dtype == torch.float64 or torch.compiler.is_compiling() or not (isinstance(n, int) and isinstance(c, int)):
        return None
    if n * c <= CHUNK_ELEMENTS:
        return None
    return max(1, CHUNK_ELEMENTS // max(c, 1))


def segment_sum64(v: torch.Tensor, index: torch.Tensor, num_segments: int) -> torch.Tensor:
    """``acc[s] = sum_{i: index_i = s} v_i`` accumulated in float64, in row order.

    Args:
        v: floating tensor ``[N, C]``.
        index: int64 tensor ``[N]`` with values in ``[0, num_segments)`` (not checked here).
        num_segments: number of output rows ``S``.

    Returns:
        float64 tensor ``[S, C]``. Differentiable in both modes (autograd, ``torch.func.jvp``); the rows are
        widened a chunk at a time (``CHUNK_ELEMENTS``).
    """
    acc = v.new_zeros((num_segments, v.shape[1]), dtype=torch.float64)
    step = _row_step(v.shape[0], v.shape[1], v.dtype)
    if step is None:
        return acc.index_add(0, index, v.to(torch.float64))
    # (split, not slices: the backward of one split is one cat, that of each slice a full-size gradient)
    for part, part_index in zip(v.split(step), index.split(step)):
        acc.index_add_(0, part_index, part.to(torch.float64))
    return acc
