"""Scatter reductions: ``scatter`` (compiled or reference) and ``scatter_reference``.

.. math::  \\mathrm{out}_{s} = \\bigoplus_{i:\\,\\mathrm{index}_i = s} \\mathrm{src}_i,
           \\quad \\oplus \\in \\{\\mathrm{sum}, \\mathrm{mean}, \\max, \\min\\}

Empty segments give 0 for every reduction.

Tie rule for ``max``/``min``: the gradient of an output entry flows, whole, to the *first* row (in
index order of ``src``) that attains the maximum/minimum; other tied rows get zero gradient. NaN
propagates: a segment containing NaN in a channel outputs NaN there.

Summation order of the compiled CPU kernel (deterministic: the same inputs and thread count give
the same bits on every run):

* ``sum``/``mean`` with few segments (``(2T + 1) * dim_size <= N / 2`` for ``T`` threads, and the
  ``T - 1`` extra ``[dim_size, C]`` accumulators within 64 MiB; ``T = 1`` below 32k elements): thread
  ``t`` sums the contiguous rows ``[N t/T, N (t+1)/T)`` in row order into its own accumulator and
  the ``T`` accumulators are added in thread order. ``src`` is streamed once, like a plain read of
  it. Another thread count changes only the rounding; one thread gives the plain row-order sum.
* otherwise (and ``max``/``min`` always) every segment is reduced by one thread in row order:
  identical bits for any number of threads.
"""
from __future__ import annotations

import torch

from geomdl.ops._extension import extension_loaded, use_compiled
from geomdl.ops._fast_path import segment_call
from geomdl.ops._validation import check_index_values, segment_inputs

REDUCTIONS = ("sum", "mean", "max", "min")


def _prepare(src, index, dim, dim_size, reduce, check_values=True):
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
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
    """Pure-PyTorch specification of :func:`scatter` (same arguments, same results and gradients)."""
    src2, index, dim, dim_size, rest = _prepare(src, index, dim, dim_size, reduce)
    return _finish(_scatter_reference_2d(src2, index, dim_size, reduce), dim, dim_size, rest)


def _scatter_reference_2d(src: torch.Tensor, index: torch.Tensor, dim_size: int, reduce: str) -> torch.Tensor:
    n, c = src.shape
    if reduce in ("sum", "mean"):
        # float16/bfloat16 (autocast) accumulate in float32, as torch's own sum/mean do: fp16 partial sums and
        # counts overflow at 65504 (a mean over a big segment became inf/NaN) and small addends were lost
        acc = src.float() if src.dtype in (torch.float16, torch.bfloat16) else src
        out = acc.new_zeros((dim_size, c)).index_add(0, index, acc)
        if reduce == "mean":
            count = torch.bincount(index, minlength=dim_size).clamp(min=1).to(acc.dtype)
            out = out / count.unsqueeze(1)
        return out.to(src.dtype) if acc is not src else out  # (an integer mean stays floating, as before)
    arg = _argreduce_reference(src, index, dim_size, reduce)
    padded = torch.cat([src, src.new_zeros((1, c))], 0)
    return padded.gather(0, arg)


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
