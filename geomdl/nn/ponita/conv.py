"""Depthwise PONITA convolutions (weights and wiring only; the maths is in the plain functions).

Messages flow ``j -> i`` along ``edge_index = [src; dst]``; aggregation is a sum (:func:`gather_mul_scatter`).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from geomdl.ops._extension import transform_active


CHUNK_BYTES = 1024 * 1024  # edge chunks (measured best on QM9-sized PONITA steps: 1-4 MiB)


def _rows(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], math.prod(t.shape[1:]))


def _chunks(num_edges: int, row: torch.Tensor):
    step = max(1, CHUNK_BYTES // max(1, row.shape[1] * row.element_size()))
    return range(0, num_edges, step), step


def _gms_rows(k: torch.Tensor, x: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """``[E, D]``, ``[N, D]`` -> ``[num_nodes, D]``, edge chunk by edge chunk (no ``[E, D]`` temporary).

    Under ``torch.compile`` one expression instead: the compiler fuses the gather, product and scatter
    itself (and cannot trace a loop over a data-dependent number of edges)."""
    if torch.compiler.is_compiling():
        return x.new_zeros((num_nodes, x.shape[1])).index_add_(0, dst, k * x.index_select(0, src))
    out = x.new_zeros((num_nodes, x.shape[1]))
    starts, step = _chunks(src.numel(), x)
    buf = x.new_empty((min(step, src.numel()), x.shape[1]))
    for a in starts:
        b = min(a + step, src.numel())
        m = buf[: b - a]
        torch.index_select(x, 0, src[a:b], out=m)
        m.mul_(k[a:b])
        out.index_add_(0, dst[a:b], m)
    return out


def _gm_rows(a: torch.Tensor, b: torch.Tensor, ia: torch.Tensor, ib: torch.Tensor) -> torch.Tensor:
    """``a[ia] * b[ib]`` ``[E, D]`` with the second gather done chunk by chunk in cache (one expression under
    ``torch.compile``)."""
    if torch.compiler.is_compiling():
        return a.index_select(0, ia) * b.index_select(0, ib)
    out = a.new_empty((ia.numel(), a.shape[1]))
    starts, step = _chunks(ia.numel(), a)
    buf = b.new_empty((min(step, ia.numel()), b.shape[1]))
    for s in starts:
        e = min(s + step, ia.numel())
        torch.index_select(a, 0, ia[s:e], out=out[s:e])
        m = buf[: e - s]
        torch.index_select(b, 0, ib[s:e], out=m)
        out[s:e].mul_(m)
    return out


class _GatherMulScatter(torch.autograd.Function):
    """``y[n] = sum_{e: dst_e = n} k[e] * x[src_e]`` without keeping ``x[src]`` for the backward pass.

    The gradients are again gather-multiply(-scatter) ops (``dk = gy[dst] * x[src]``,
    ``dx = GMS(k, gy, dst, src)``), applied through the autograd Functions, so derivatives of every
    order (forces trained with ``create_graph``) stay exact.
    """

    @staticmethod
    def forward(ctx, k, x, src, dst, num_nodes):
        ctx.save_for_backward(k, x, src, dst)
        return _gms_rows(_rows(k), _rows(x), src, dst, num_nodes).view((num_nodes,) + tuple(x.shape[1:]))

    @staticmethod
    def backward(ctx, gy):
        k, x, src, dst = ctx.saved_tensors
        gk = gather_mul(gy, x, dst, src) if ctx.needs_input_grad[0] else None
        gx = gather_mul_scatter(k, gy, dst, src, x.shape[0]) if ctx.needs_input_grad[1] else None
        return gk, gx, None, None, None


class _GatherMul(torch.autograd.Function):
    """``out[e] = a[ia_e] * b[ib_e]`` (both gathered); gradients are :class:`_GatherMulScatter` ops."""

    @staticmethod
    def forward(ctx, a, b, ia, ib):
        ctx.save_for_backward(a, b, ia, ib)
        return _gm_rows(_rows(a), _rows(b), ia, ib).view((ia.numel(),) + tuple(a.shape[1:]))

    @staticmethod
    def backward(ctx, g):
        a, b, ia, ib = ctx.saved_tensors
        ga = gather_mul_scatter(g, b, ib, ia, a.shape[0]) if ctx.needs_input_grad[0] else None
        gb = gather_mul_scatter(g, a, ia, ib, b.shape[0]) if ctx.needs_input_grad[1] else None
        return ga, gb, None, None


class _SharedLinear(torch.autograd.Function):
    """``(x W_1^T, ..., x W_L^T)`` of one input; the input gradient ``sum_l g_l W_l`` is accumulated in one
    buffer by BLAS (``addmm_``, beta = 1) instead of ``L`` products plus ``L - 1`` additions (every one a
    fresh ``[M, K]`` tensor). The backward is made of differentiable ops: derivatives of every order."""

    @staticmethod
    def forward(ctx, x, *weights):
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x, *weights)
        return tuple(x @ w.t() for w in weights)

    @staticmethod
    def backward(ctx, *grads):
        x, *weights = ctx.saved_tensors
        gx = None
        if ctx.needs_input_grad[0]:
            for g, w in zip(grads, weights):
                if g is not None:
                    gx = g @ w if gx is None else gx.addmm_(g, w)
            if gx is None:
                gx = torch.zeros_like(x)
        gw = [g.t() @ x if g is not None and need else None for g, need in zip(grads, ctx.needs_input_grad[1:])]
        return (gx, *gw)


def shared_linear(x: torch.Tensor, weights) -> tuple[torch.Tensor, ...]:
    """``x`` ``[M, K]``, weights ``W_l`` ``[C_l, K]`` -> ``(x W_l^T)_l``, ``[M, C_l]`` each: the spatial kernels
    of all layers from the shared basis, equal to ``[F.linear(x, W) for W in weights]`` with a cheaper
    backward (see :class:`_SharedLinear`). Under ``torch.compile``: the plain products."""
    if x.dim() != 2 or any(w.dim() != 2 or w.shape[1] != x.shape[1] for w in weights):
        raise ValueError(f"shared_linear: x must be [M, K] and every weight [C, K]; got {tuple(x.shape)} and "
                         f"{[tuple(w.shape) for w in weights]}")
    if torch.compiler.is_compiling() or transform_active(x):  # (torch.func / forward AD: plain ops compose)
        return tuple(x @ w.t() for w in weights)
    return _SharedLinear.apply(x, *weights)


def gather_mul_scatter(k: torch.Tensor, x: torch.Tensor, src: torch.Tensor, dst: torch.Tensor,
                       num_nodes: int) -> torch.Tensor:
    """Fused message passing ``y[n] = sum_{e: dst_e = n} k[e] * x[src_e]``.

    ``k`` ``[E, ...]``, ``x`` ``[N, ...]`` (same trailing shape and dtype), ``src``/``dst`` int64 ``[E]``
    -> ``[num_nodes, ...]``. Equal to ``zeros.index_add(0, dst, k * x[src])``, with gradients of every
    order, but the gathered ``x[src]`` is neither kept for the backward pass nor scattered back with
    ``index_put``.
    """
    if k.shape[1:] != x.shape[1:] or k.shape[0] != src.numel() or src.shape != dst.shape:
        raise ValueError(f"gather_mul_scatter: k [E, ...] and x [N, ...] need the same trailing shape and E = len(src) = "
                         f"len(dst); got k {tuple(k.shape)}, x {tuple(x.shape)}, src {tuple(src.shape)}, dst {tuple(dst.shape)}")
    n = num_nodes if isinstance(num_nodes, torch.SymInt) else int(num_nodes)  # int() would specialize a traced count
    # torch.func / forward AD / batched gradients: the plain definition, which every transform sees through
    if transform_active(k, x):
        return x.new_zeros((n,) + tuple(x.shape[1:])).index_add(0, dst, k * x.index_select(0, src))
    return _GatherMulScatter.apply(k.contiguous(), x.contiguous(), src, dst, n)


def gather_mul(a: torch.Tensor, b: torch.Tensor, ia: torch.Tensor, ib: torch.Tensor) -> torch.Tensor:
    """``out[e] = a[ia_e] * b[ib_e]``, ``[E, ...]`` (``a``, ``b`` with the same trailing shape), with
    gradients of every order."""
    if a.shape[1:] != b.shape[1:] or ia.shape != ib.shape:
        raise ValueError(f"gather_mul: a and b need the same trailing shape and ia, ib the same length; got "
                         f"{tuple(a.shape)}, {tuple(b.shape)}, {tuple(ia.shape)}, {tuple(ib.shape)}")
    if transform_active(a, b):  # torch.func / forward AD / batched grads: the plain definition
        return a.index_select(0, ia) * b.index_select(0, ib)
    return _GatherMul.apply(a.contiguous(), b.contiguous(), ia, ib)


def point_conv(x: torch.Tensor, kernel: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """``y[i, c] = sum_{j in N(i)} k[(j->i), c] x[j, c]``; ``x`` ``[N, C]``, ``kernel`` ``[E, C]`` -> ``[N, C]``."""
    return gather_mul_scatter(kernel, x, edge_index[0], edge_index[1], x.shape[0])


def fiber_bundle_conv(x: torch.Tensor, kernel_spatial: torch.Tensor, kernel_fiber: torch.Tensor,
                      edge_index: torch.Tensor, kernel_loop: torch.Tensor | None = None) -> torch.Tensor:
    """Separable group convolution on ``R^n x S^{n-1}`` sampled on a grid of ``O`` orientations.

    1. spatial, per orientation and channel: ``h[i, o, c] = sum_j K_s[(j->i), o, c] x[j, o, c]``
       (``+ K_loop[o, c] x[i, o, c]`` when ``kernel_loop`` is given: the self loop ``i -> i``, whose
       attributes are the same for every node, applied per node instead of as ``N`` edges)
    2. over the fiber, per channel:          ``z[i, p, c] = (1/O) sum_o K_f[o, p, c] h[i, o, c]``

    Shapes: ``x`` ``[N, O, C]``, ``kernel_spatial`` ``[E, O, C]``, ``kernel_fiber`` ``[O, O, C]``,
    ``kernel_loop`` ``[O, C]`` -> ``[N, O, C]``.
    """
    n, o, c = x.shape
    h = gather_mul_scatter(kernel_spatial, x, edge_index[0], edge_index[1], n)
    if kernel_loop is not None:
        h = torch.addcmul(h, kernel_loop, x)
    return torch.bmm(h.permute(2, 0, 1).contiguous(), kernel_fiber.permute(2, 0, 1).contiguous()).permute(1, 2, 0) / o


class PointConv(nn.Module):
    """Depthwise convolution on a point cloud (``R^n`` or ``R^n x S^{n-1}`` with given orientations):
    ``y_i = sum_j (B_ij W) * x_j + b`` with the shared basis ``B`` ``[E, basis_dim]``.

    Args:
        channels: feature width ``C`` (input = output).
        basis_dim: width of the shared kernel basis.
        bias: add a learned bias per channel.
    """

    def __init__(self, channels: int, basis_dim: int, bias: bool = True):
        super().__init__()
        self.kernel = nn.Linear(basis_dim, channels, bias=False)
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
        """``x`` ``[N, C]``, ``edge_index`` ``[2, E]``, ``basis`` ``[E, basis_dim]`` -> ``[N, C]``."""
        y = point_conv(x, self.kernel(basis), edge_index)
        return y if self.bias is None else y + self.bias


class FiberBundleConv(nn.Module):
    """Separable (spatial, then fiber) depthwise convolution of :func:`fiber_bundle_conv` with kernels
    ``K_s = B_s W_s`` and ``K_f = B_f W_f`` from the shared bases ``B_s`` ``[E, O, basis_dim]`` and
    ``B_f`` ``[O, O, basis_dim]``, plus a bias per channel."""

    def __init__(self, channels: int, basis_dim: int, bias: bool = True):
        super().__init__()
        self.kernel_spatial = nn.Linear(basis_dim, channels, bias=False)
        self.kernel_fiber = nn.Linear(basis_dim, channels, bias=False)
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, basis_spatial: torch.Tensor | None,
                basis_fiber: torch.Tensor, basis_loop: torch.Tensor | None = None,
                kernel_spatial: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``[N, O, C]``, ``edge_index`` ``[2, E]``, ``basis_spatial`` ``[E, O, basis_dim]``,
        ``basis_fiber`` ``[O, O, basis_dim]``, ``basis_loop`` ``[O, basis_dim]`` (the spatial basis of a
        self loop, applied to every node; ``None``: self loops, if any, are among the edges) -> ``[N, O, C]``.
        ``kernel_spatial`` ``[E, O, C]``: ``basis_spatial W_s^T`` computed by the caller (e.g. for all layers
        at once with :func:`shared_linear`); ``basis_spatial`` is then not used."""
        k_loop = None if basis_loop is None else self.kernel_spatial(basis_loop)
        if kernel_spatial is None:
            if basis_spatial is None:
                raise ValueError("FiberBundleConv: pass basis_spatial [E, O, basis_dim] or kernel_spatial [E, O, C]")
            kernel_spatial = self.kernel_spatial(basis_spatial)
        y = fiber_bundle_conv(x, kernel_spatial, self.kernel_fiber(basis_fiber), edge_index, k_loop)
        return y if self.bias is None else y + self.bias
