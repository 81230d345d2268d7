"""The compiled Gaunt product (``geomdl::gaunt_columns``: ``kernels/gaunt/gaunt_cpu.cpp``, and
``kernels/gaunt/gaunt_cuda.cu`` for CUDA tensors when the extension is built with CUDA).

The kernel runs the same half-torus algorithm as the pure-PyTorch reference
(:func:`geomdl.o3.gaunt_product._gaunt_columns_reference`) with the same plan tables
(:mod:`geomdl.o3.gaunt_plans`, built once per degrees and dtype and passed in as tensors), fused per
block of 128 bytes of columns with every intermediate in cache, and with each of its four small GEMMs
halved by the mirror symmetries of the tables (``theta <-> pi - theta``, ``phi <-> pi - phi``).

One call computes ``out[i] = Proj_{<= Lo_i}[f_a f_{others[i]}]`` for one or two ``others``: the forward
product (``a = x1``, ``others = [x2]``) and the fused first-order backward (``a = grad``, shared by
``others = [x2, x1]``). Operands are read and written in place through a :class:`Layout` (row
``l^2+l+m`` of column ``(node b, channel c)`` at ``off + b * node_stride + c * stride``), so the same
kernel serves the column arrays ``[(L+1)^2, R]`` and e3nn ``C x l`` features ``[N, dim]`` without
layout copies (:func:`gaunt_features`). Backend choice (``GEOMDL_KERNELS``): :func:`use_kernel`.
"""
from __future__ import annotations

import operator
from typing import NamedTuple

import torch

from geomdl.o3.gaunt_plain import gaunt_features_plain
from geomdl.o3.gaunt_plans import grid_sizes, projection_tables, synthesis_tables
from geomdl.o3.spherical_harmonics import lmax_from_dim
from geomdl.ops._extension import extension_loaded, legacy_batched, transform_active, use_compiled
from geomdl.utils.constants import constant_cache

OP = "gaunt_product"  # name in GEOMDL_KERNELS messages
KERNEL = "gaunt_columns"  # geomdl::gaunt_columns


class Layout(NamedTuple):
    """Where the SH coefficients of degree ``<= lmax`` of each column live in a flat tensor of ``numel``
    elements: ``table [(lmax+1)^2, 2]`` int64 (offset or -1 for an absent row, channel stride)."""

    lmax: int
    table: torch.Tensor
    node_stride: int
    numel: int


def use_kernel(x: torch.Tensor) -> bool:
    """True when the compiled kernel runs for tensors like ``x`` (a device with a kernel: CPU, or CUDA in a CUDA
    build; float32/float64; extension loaded; ``GEOMDL_KERNELS`` not ``reference``); warns once when ``auto``
    falls back to the reference."""
    return use_compiled(OP, x, kernel=KERNEL)


@constant_cache(maxsize=256)
def column_layout(lmax: int, cols: int) -> Layout:
    """Layout of a column array ``[(lmax+1)^2, cols]`` (one node with ``cols`` channels)."""
    rows = (lmax + 1) ** 2
    table = torch.stack([torch.arange(rows, dtype=torch.long) * cols, torch.ones(rows, dtype=torch.long)], 1)
    return Layout(lmax, table, 0, rows * cols)


def feature_layout(mul_ls: tuple[tuple[int, int], ...], lmax: int, nodes: int) -> Layout:
    """Layout of an e3nn feature ``[nodes, dim]`` with blocks ``mul x l`` in the order of ``mul_ls`` (each degree
    at most once, ``mul`` = the channels; degrees ``<= lmax`` not listed are absent rows)."""
    table, dim = _feature_table(tuple(mul_ls), lmax)
    return Layout(lmax, table, dim, nodes * dim)


@constant_cache(maxsize=256)
def _feature_table(mul_ls: tuple[tuple[int, int], ...], lmax: int) -> tuple[torch.Tensor, int]:
    table = torch.full(((lmax + 1) ** 2, 2), -1, dtype=torch.long)
    table[:, 1] = 0
    start = 0
    for mul, l in mul_ls:
        if l <= lmax:
            rows = torch.arange(l * l, (l + 1) ** 2)
            table[rows, 0] = start + torch.arange(2 * l + 1)
            table[rows, 1] = 2 * l + 1
        start += mul * (2 * l + 1)
    return table, start


def _run(a: torch.Tensor, lay_a: Layout, others, outs, n_u: int, n_v: int, cols: int, channels: int) -> list[torch.Tensor]:
    """``others``: ``[(tensor, layout)]``; ``outs``: ``[(layout, lmax_in of the projected product)]``."""
    dtype, device = a.dtype, a.device
    _, ta, fa = synthesis_tables(lay_a.lmax, n_u, n_v, dtype, device)
    tensors, thetas, phis, analyses, projs = [], [], [], [], []
    for (t, lay), (lay_out, lmax_in) in zip(others, outs):
        _, th, ph = synthesis_tables(lay.lmax, n_u, n_v, dtype, device)
        analysis, proj, _ = projection_tables(lmax_in, lay_out.lmax, n_u, n_v, dtype, device)
        tensors.append(t)
        thetas.append(th)
        phis.append(ph)
        analyses.append(analysis)
        projs.append(proj)
    layouts = [lay_a] + [lay for _, lay in others] + [lay for lay, _ in outs]
    return torch.ops.geomdl.gaunt_columns(
        a, ta, fa, tensors, thetas, phis, analyses, projs, [lay.table for lay in layouts],
        [lay.node_stride for lay in layouts], [lay.numel for lay, _ in outs], cols, channels)


def _forward(x1, lay1: Layout, x2, lay2: Layout, lay_out: Layout, cols: int, channels: int) -> torch.Tensor:
    n_u, n_v = grid_sizes(lay1.lmax, lay2.lmax, lay_out.lmax, fast=False)
    return _run(x1, lay1, [(x2, lay2)], [(lay_out, lay1.lmax + lay2.lmax)], n_u, n_v, cols, channels)[0]


def _backward(grad, lay_g: Layout, x1, lay1: Layout, x2, lay2: Layout, need1: bool, need2: bool, cols: int, channels: int):
    """``dL/dx1 = gaunt(grad, x2, L1)``, ``dL/dx2 = gaunt(grad, x1, L2)`` in one call on one torus large enough
    for both (the synthesis of ``grad`` shared, as :func:`geomdl.o3.gaunt_product._gaunt_columns_backward_reference`)."""
    if not (need1 or need2):
        return None, None
    lo, l1, l2 = lay_g.lmax, lay1.lmax, lay2.lmax
    sizes = [grid_sizes(lo, l2, l1, fast=False), grid_sizes(lo, l1, l2, fast=False)]
    n_u, n_v = max(s[0] for s in sizes), max(s[1] for s in sizes)
    others, outs = [], []
    if need1:
        others.append((x2, lay2))
        outs.append((lay1, lo + l2))
    if need2:
        others.append((x1, lay1))
        outs.append((lay2, lo + l1))
    res = _run(grad, lay_g, others, outs, n_u, n_v, cols, channels)
    if need1 and need2:
        return res[0], res[1]
    return (res[0], None) if need1 else (None, res[0])


def gaunt_columns_compiled(x1t: torch.Tensor, x2t: torch.Tensor, lmax_out: int) -> torch.Tensor:
    """``[(L1+1)^2, R] x [(L2+1)^2, R] -> [(lmax_out+1)^2, R]`` with the kernel (contiguous inputs, no autograd)."""
    cols = x1t.shape[1]
    lay1 = column_layout(lmax_from_dim(x1t.shape[0], "x1t"), cols)
    lay2 = column_layout(lmax_from_dim(x2t.shape[0], "x2t"), cols)
    z = _forward(x1t, lay1, x2t, lay2, column_layout(lmax_out, cols), cols, max(cols, 1))
    return z.view((lmax_out + 1) ** 2, cols)


def gaunt_columns_backward_compiled(grad: torch.Tensor, x1t: torch.Tensor, x2t: torch.Tensor, need1: bool = True,
                                    need2: bool = True) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Both input gradients of ``z = gaunt(x1t, x2t, Lo)`` (``grad [(Lo+1)^2, R]``) in one kernel call."""
    cols = grad.shape[1]
    lay_g = column_layout(lmax_from_dim(grad.shape[0], "grad"), cols)
    lay1 = column_layout(lmax_from_dim(x1t.shape[0], "x1t"), cols)
    lay2 = column_layout(lmax_from_dim(x2t.shape[0], "x2t"), cols)
    g1, g2 = _backward(grad, lay_g, x1t, lay1, x2t, lay2, need1, need2, cols, max(cols, 1))
    return (None if g1 is None else g1.view(x1t.shape)), (None if g2 is None else g2.view(x2t.shape))


class _GauntFeatures(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y, lay_x, lay_y, lay_out, channels, blocks):
        ctx.save_for_backward(x, y)
        ctx.layouts, ctx.channels, ctx.blocks = (lay_x, lay_y, lay_out), channels, blocks
        cols = x.shape[0] * channels
        # explicit width (not -1): N = 0 rows (no edges, no nodes) must give [0, dim_out], not a reshape error
        return _forward(x, lay_x, y, lay_y, lay_out, cols, channels).view(x.shape[0], lay_out.node_stride)

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        lay_x, lay_y, lay_out = ctx.layouts
        grad = grad.contiguous()
        need_x, need_y = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        bx, by, bo = ctx.blocks
        if legacy_batched(grad):  # gradients batched by is_grads_batched: plain ops (the kernel has no batching rule)
            gx = gaunt_features_plain(grad, y, bo, by, bx, ctx.channels) if need_x else None
            gy = gaunt_features_plain(grad, x, bo, bx, by, ctx.channels) if need_y else None
            return gx, gy, None, None, None, None, None
        if not torch.is_grad_enabled():  # first order: one fused call
            cols = x.shape[0] * ctx.channels
            gx, gy = _backward(grad, lay_out, x, lay_x, y, lay_y, need_x, need_y, cols, ctx.channels)
            gx = None if gx is None else gx.view_as(x)
            gy = None if gy is None else gy.view_as(y)
            return gx, gy, None, None, None, None, None
        gx = _GauntFeatures.apply(grad, y, lay_out, lay_y, lay_x, ctx.channels, (bo, by, bx)) if need_x else None
        gy = _GauntFeatures.apply(grad, x, lay_out, lay_x, lay_y, ctx.channels, (bo, bx, by)) if need_y else None
        return gx, gy, None, None, None, None, None


def _check_blocks(name: str, blocks) -> tuple[tuple[int, int], ...]:
    """``blocks`` as a tuple of plain-int ``(mul, l)`` pairs: at least one, ``mul >= 1``, distinct degrees ``l >= 0``
    (else ``ValueError`` naming ``name``). Any integer type is accepted (NumPy ints too, not bools). A tuple of
    plain-int pairs (what the layers pass on every call) is checked without building anything."""
    if type(blocks) is tuple and blocks and all(type(b) is tuple and len(b) == 2 and type(b[0]) is int
                                                and type(b[1]) is int and b[0] >= 1 and b[1] >= 0 for b in blocks):
        if len({b[1] for b in blocks}) == len(blocks):
            return blocks
    return _check_blocks_uncached(name, blocks)


def _check_blocks_uncached(name: str, blocks) -> tuple[tuple[int, int], ...]:
    try:
        raw = tuple(tuple(b) for b in blocks)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of (mul, l) pairs, got {blocks!r}") from None
    if not raw:
        raise ValueError(f"{name} must list at least one (mul, l) block, got {blocks!r}")
    pairs, seen = [], set()
    for pair in raw:
        try:
            if len(pair) != 2 or any(isinstance(v, bool) for v in pair):
                raise TypeError
            mul, l = (operator.index(v) for v in pair)
        except TypeError:
            raise ValueError(f"{name} must be a sequence of (mul, l) int pairs, got the entry {pair!r} in {blocks!r}") from None
        if l < 0 or mul < 1:
            raise ValueError(f"{name} needs non-negative degrees l and multiplicities >= 1, got ({mul}, {l}) in {blocks!r}")
        if l in seen:
            raise ValueError(f"{name} must list each degree at most once, got l={l} twice in {blocks!r}")
        seen.add(l)
        pairs.append((mul, l))
    return tuple(pairs)


def gaunt_features(x: torch.Tensor, y: torch.Tensor, irreps_x, irreps_y, irreps_out) -> torch.Tensor:
    """Channelwise Gaunt product of e3nn features in place: ``x [N, dim_x]``, ``y [N, dim_y]`` -> ``[N, dim_out]``.

    ``irreps_*`` are non-empty ``((mul, l), ...)`` of ints with one multiplicity ``C`` (the channels) for all three
    and each degree ``l >= 0`` at most once (else ``ValueError``); ``x``, ``y`` float32 or float64 (else
    ``TypeError``) on one device (else ``ValueError``). Block ``l`` of channel ``c`` is
    ``z^l_c = Proj_l[f_{x,c} f_{y,c}]`` (same maths as :func:`geomdl.o3.gaunt_product_columns` on the columns
    ``(node, channel)``, without the layout copies).
    Compiled kernel only (see :func:`use_kernel`); differentiable (any order). Inside forward-mode AD or a
    ``torch.func`` transform it runs in plain torch ops (:func:`geomdl.o3.gaunt_plain.gaunt_features_plain`).
    """
    irreps_x, irreps_y, irreps_out = (_check_blocks(n, b) for n, b in
                                      (("irreps_x", irreps_x), ("irreps_y", irreps_y), ("irreps_out", irreps_out)))
    muls = {m for m, _ in (*irreps_x, *irreps_y, *irreps_out)}
    if len(muls) != 1:
        raise ValueError(f"gaunt_features needs one multiplicity for every block, got {irreps_x}, {irreps_y}, {irreps_out}")
    channels = muls.pop()
    for name, t, irreps in (("x", x, irreps_x), ("y", y, irreps_y)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"{name} must be float32 or float64, got {t.dtype}")
        dim = sum(m * (2 * l + 1) for m, l in irreps)
        if t.dim() != 2 or t.shape[1] != dim:
            raise ValueError(f"{name} must be [N, {dim}] for irreps {irreps}, got {tuple(t.shape)}")
    if x.shape[0] != y.shape[0] or x.dtype != y.dtype or x.device != y.device:
        raise ValueError(f"x and y must share N, dtype and device, got {tuple(x.shape)} {x.dtype} {x.device} and "
                         f"{tuple(y.shape)} {y.dtype} {y.device}")
    if torch.compiler.is_compiling():  # an opaque operator for the compiler (geomdl.o3.gaunt_ops)
        from geomdl.o3.gaunt_ops import flat_blocks, gaunt_features_op

        return gaunt_features_op(x.contiguous(), y.contiguous(), flat_blocks(irreps_x), flat_blocks(irreps_y),
                                 flat_blocks(irreps_out))
    if transform_active(x, y):  # forward AD / torch.func / batched grads: plain torch ops (no jvp, no vmap rule)
        return gaunt_features_plain(x, y, irreps_x, irreps_y, irreps_out, channels)
    n = x.shape[0]
    lay_x = feature_layout(irreps_x, max(l for _, l in irreps_x), n)
    lay_y = feature_layout(irreps_y, max(l for _, l in irreps_y), n)
    lay_out = feature_layout(irreps_out, max(l for _, l in irreps_out), n)
    return _GauntFeatures.apply(x.contiguous(), y.contiguous(), lay_x, lay_y, lay_out, channels,
                                (irreps_x, irreps_y, irreps_out))


def _register() -> None:
    if not extension_loaded():
        return
    try:
        torch.ops.geomdl.gaunt_columns  # noqa: B018  (an older build may lack the op)
    except (AttributeError, RuntimeError):
        return

    @torch.library.register_fake("geomdl::gaunt_columns")
    def _fake(a, a_theta, a_phi, others, theta, phi, analysis, proj, layouts, node_strides, out_numel, columns, channels):
        return [a.new_empty(n) for n in out_numel]


_register()
