"""Scatter reductions: ``scatter`` (compiled or reference) and ``scatter_reference``.

.. math::  \\mathrm{out}_{s} = \\bigoplus_{i:\\,\\mathrm{index}_i = s} \\mathrm{src}_i,
           \\quad \\oplus \\in \\{\\mathrm{sum}, \\mathrm{mean}, \\max, \\min\\}

Empty segments give 0 for every reduction.

Tie rule for ``max``/``min``: the gradient of an output entry flows, whole, to the *first* row (in
index order of ``src``) that attains the maximum/minimum; other tied rows get zero gradient. NaN
propagates: a segment containing NaN in a channel outputs NaN there.

Precision of ``sum``/``mean`` (a float32 running sum over n rows, what torch's ``index_add_`` /
``scatter_reduce`` and torch_scatter compute, drifts by up to ~n/2 ulps: hundreds at n = 1e5):

* the reference sums every floating dtype in float64, in row order, and rounds once (after the division of a
  mean);
* the compiled CPU kernel sums float32 rows in float64 when the output is small (``dim_size * C <= 2**14``
  with few segments: pooling), else in float32 runs of at most 16 rows of a segment (per thread) whose sums
  are added in float64; either way the total is rounded once. The worst-case error is that of a 16-row
  float32 sum relative to the segment's sum of ``|v|`` (a few ulps when all runs err alike, e.g. constant
  rows); segments of a few dozen rows are about as precise as a float32 sum, and on random data large ones
  stay within about an ulp of the exact sum (``python -m benchmarks ops --only scatter_sums``). float64 is
  summed in float64;
* the CUDA kernel accumulates in the input's dtype (float atomics).

Summation order of the compiled CPU kernel (deterministic: the same inputs and thread count give
the same bits on every run):

* ``sum``/``mean`` with few segments (``(2T + 1) * dim_size <= N / 2`` for ``T`` threads, and the path's
  scratch memory within 64 MiB: the ``T - 1`` extra ``[dim_size, C]`` accumulators, or ``T`` float64 ones
  when summing directly in float64, plus for float32 runs ``T`` float64 pools of up to
  ``min(dim_size, N / (16 T))`` rows with a slot and a state per segment, plus a mean's ``T x dim_size``
  counts; ``T = 1`` below 32k elements): thread
  ``t`` sums the contiguous rows ``[N t/T, N (t+1)/T)`` in row order into its own accumulator and
  the ``T`` accumulators are added in thread order. ``src`` is streamed once, like a plain read of
  it. Another thread count changes only the rounding; one thread gives the row-order sum (float32:
  accumulated in float64, directly or in runs of 16, and rounded once).
* otherwise (and ``max``/``min`` always) every segment is reduced by one thread in row order:
  identical bits for any number of threads.
"""
from __future__ import annotations

import torch

from geomdl.ops._extension import extension_loaded, use_compiled
from geomdl.ops._fast_path import segment_call
from geomdl.ops._segment_sum import segment_sum64
from geomdl.ops._validation import check_index_values, segment_inputs

REDUCTIONS = ("sum", "mean", "max", "min")


def _prepare(src, index, dim, dim_size, reduce, check_values=True):
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
    if isinstance(src, torch.Tensor):
        if src.is_complex() and reduce in ("max", "min"):
            raise TypeError(f"src of dtype {src.dtype} has no order: reduce={reduce!r} needs a real dtype")
        if src.dtype == torch.bool and reduce in ("sum", "mean"):  # index_add on bool is a logical or
            raise TypeError(f"src of dtype torch.bool cannot be summed (reduce={reduce!r}); convert it, e.g. src.long() "
                            "or src.float(); max/min of bool are any/all")
    return segment_inputs(src, index, dim, dim_size, check_values=check_values)


def _finish(out2, dim, dim_size, rest):
    return out2.reshape((dim_size,) + tuple(rest)).movedim(0, dim)


def scatter(src: torch.Tensor, index: torch.Tensor, dim: int = 0, dim_size: int | None = None, reduce: str = "sum") -> torch.Tensor:
    """Reduce the slices of ``src`` along ``dim`` that share an ``index`` value.

    Args:
        src: tensor ``[..., N, ...]`` with ``N`` entries along ``dim``.
        index: int tensor ``[N]`` with values in ``[0, dim_size)``.
        dim: the dimension of ``src`` to reduce (default 0).
        dim_size: number of output segments (default ``index.max() + 1``, 0 for empty input).
        reduce: ``"sum"``, ``"mean"``, ``"max"`` or ``"min"`` (default ``"sum"``).

    Returns:
        tensor like ``src`` with ``dim_size`` entries along ``dim``.

    Raises:
        ValueError: negative or out-of-range ``index`` entries, wrong lengths, unknown ``reduce``.
        TypeError: non-tensor arguments, non-integer ``index``.
    """
    if reduce in REDUCTIONS:  # the common eager call: few checks, no autograd layer without a gradient
        out = segment_call("scatter_reduce", src, index, dim, dim_size, reduce)
        if out is not None:
            return out
    # The compiled kernel checks the range of `index` in its own pass over it (raising the same
    # ValueError), so the values are checked here only for the reference.
    src2, index, dim, dim_size, rest = _prepare(src, index, dim, dim_size, reduce, check_values=False)
    if use_compiled("scatter", src2, kernel="scatter_reduce"):
        out2, _ = torch.ops.geomdl.scatter_reduce(src2.contiguous(), index.contiguous(), dim_size, reduce)
    else:
        check_index_values(index, "index", dim_size)
        out2 = _scatter_reference_2d(src2, index, dim_size, reduce)
    return _finish(out2, dim, dim_size, rest)


def scatter_reference(src: torch.Tensor, index: torch.Tensor, dim: int = 0, dim_size: int | None = None, reduce: str = "sum") -> torch.Tensor:
    """Pure-PyTorch specification of :func:`scatter` (same arguments, results and gradients; float32 sums are
    accumulated in float64 here, so they may differ from the compiled kernel's by its run rounding)."""
    src2, index, dim, dim_size, rest = _prepare(src, index, dim, dim_size, reduce)
    return _finish(_scatter_reference_2d(src2, index, dim_size, reduce), dim, dim_size, rest)


def _scatter_reference_2d(src: torch.Tensor, index: torch.Tensor, dim_size: int, reduce: str) -> torch.Tensor:
    n, c = src.shape
    if reduce in ("sum", "mean"):
        if not src.is_floating_point():  # integers: exact sums in their own dtype (an integer mean is floating)
            if reduce == "mean" and not src.is_complex():  # its sum in int64: one in int8 / uint8 / ... would wrap
                src = src.long()
            out = src.new_zeros((dim_size, c)).index_add(0, index, src)
            return out / _counts(index, dim_size, torch.get_default_dtype()) if reduce == "mean" else out
        # every floating dtype accumulates in float64, in row order, and is rounded once (after the division of
        # a mean), like the compiled CPU kernel: float32 running sums drift by up to ~n/2 ulps over n rows, and
        # fp16 partial sums and counts overflow at 65504
        out = segment_sum64(src, index, dim_size)
        if reduce == "mean":
            out = out / _counts(index, dim_size, torch.float64)
        return out.to(src.dtype)
    arg = _argreduce_reference(src, index, dim_size, reduce)
    padded = torch.cat([src, src.new_zeros((1, c))], 0)
    return padded.gather(0, arg)


def _counts(index, dim_size, dtype):
    """``[S, 1]`` number of rows of every segment (at least 1, so that an empty segment's mean is 0)."""
    return torch.bincount(index, minlength=dim_size).clamp(min=1).to(dtype).unsqueeze(1)


def _argreduce_reference(src: torch.Tensor, index: torch.Tensor, dim_size: int, reduce: str) -> torch.Tensor:
    """Row of the first max/min (NaN counts as extreme) of every [segment, channel]; n if empty."""
    n, c = src.shape
    with torch.no_grad():
        amode = "amax" if reduce == "max" else "amin"
        ext = src.new_zeros((dim_size, c)).scatter_reduce(0, index.unsqueeze(1).expand(n, c), src, amode, include_self=False)
        picked = ext.index_select(0, index)
        hit = (src == picked) | (torch.isnan(src) & torch.isnan(picked))
        rows = torch.arange(n, device=src.device).unsqueeze(1).expand(n, c)
        cand = torch.where(hit, rows, torch.full_like(rows, n))
        arg = torch.full((dim_size, c), n, dtype=torch.long, device=src.device)
        arg = arg.scatter_reduce(0, index.unsqueeze(1).expand(n, c), cand, "amin", include_self=True)
    return arg


# --- autograd and fake kernels of the compiled op ---------------------------------------------


def _setup_context(ctx, inputs, output):
    src, index, dim_size, reduce = inputs
    out, arg = output
    ctx.reduce = reduce
    ctx.n = src.shape[0]
    ctx.dim_size = dim_size
    ctx.save_for_backward(index, arg)
    ctx.mark_non_differentiable(arg)


def _backward(ctx, grad_out, _grad_arg):
    index, arg = ctx.saved_tensors
    reduce = ctx.reduce
    if reduce in ("sum", "mean"):
        grad = grad_out.index_select(0, index)
        if reduce == "mean":
            count = torch.bincount(index, minlength=ctx.dim_size).clamp(min=1).to(grad.dtype)
            grad = grad / count.index_select(0, index).unsqueeze(1)
    else:
        c = grad_out.shape[1]
        grad = grad_out.new_zeros((ctx.n + 1, c)).scatter_add(0, arg, grad_out)[: ctx.n]
    return grad, None, None, None


def _register() -> None:
    if not extension_loaded():
        return
    torch.library.register_autograd("geomdl::scatter_reduce", _backward, setup_context=_setup_context)

    @torch.library.register_fake("geomdl::scatter_reduce")
    def _fake(src, index, dim_size, reduce):
        out = src.new_empty((dim_size, src.shape[1]))
        arg_shape = (dim_size, src.shape[1]) if reduce in ("max", "min") else (0,)
        return out, index.new_empty(arg_shape)


_register()
