"""The Gaunt product of two spherical functions, computed with zero-padded 2D FFTs.

For coefficient vectors ``x1 [..., (L1+1)^2]``, ``x2 [..., (L2+1)^2]`` (integral-normalised real SH,
e3nn order) the Gaunt product is the projection of the pointwise product of the two functions:

.. math::
    z_{l_3 m_3} = \\int_{S^2} f_1 f_2\\, Y_{l_3 m_3}\\, d\\Omega
                = \\sum G^{l_1 l_2 l_3}_{m_1 m_2 m_3} x^{(1)}_{l_1 m_1} x^{(2)}_{l_2 m_2},\\qquad l_3 \\le L_\\mathrm{out}.

Algorithm (per row, all in batched matmuls and ``torch.fft``):

1. ``sh2f``: ``F_k[u, v>=0]`` by one batched matmul over ``v = |m|`` (the sparse change of basis of
   :mod:`geomdl.o3.fourier`, stored per ``v`` as a small dense real matrix, zero-padded in ``u`` to ``N_u``);
2. ``irfft2`` of each ``F_k`` on an ``N_u x N_v`` torus grid (= zero-padded 2D FFT), pointwise product,
   ``rfft2`` back: the 2D linear convolution ``H = F_1 * F_2`` without aliasing, since
   ``N_u >= 2(L1+L2)+1`` and ``N_v >= L1+L2+L_out+1`` (only ``|v| <= L_out`` is needed);
3. ``f2sh``: one batched matmul over ``v`` with the dense-in-``u`` projection matrix.

Cost per row ``O(L^3)`` for the conversions and ``O(L^2 log L)`` for the FFTs (vs ``O(L^5..L^6)`` for a
Clebsch-Gordan product). Backward: the Gaunt tensor is fully symmetric, so
``dz -> (gaunt(dz, x2, L1), gaunt(dz, x1, L2))`` -- two more products, also differentiable (double
backward works). Plans are cached per ``(L1, L2, L_out, dtype, device)``.
"""
from __future__ import annotations

import math

import torch

from geomdl.o3.gaunt_kernel import gaunt_columns_backward_compiled, gaunt_columns_compiled, use_kernel
from geomdl.o3.gaunt_plain import gaunt_columns_plain, gaunt_fft_plain
from geomdl.ops._extension import legacy_batched, transform_active
from geomdl.o3.gaunt_plans import dft_plan, fft_plan, grid_sizes, projection_tables, synthesis_tables
from geomdl.o3.spherical_harmonics import lmax_from_dim

METHODS = ("auto", "dft", "fft")
_CHUNK_ELEMENTS = 1 << 18  # torus values per chunk (columns x grid points): the working set stays in L2


def _fft_to_grid(x: torch.Tensor, idx: torch.Tensor, t: torch.Tensor, n_u: int, n_v: int) -> torch.Tensor:
    """``x [R, (L+1)^2]`` -> torus samples ``[N_v, R, N_u]`` (zero-padded inverse 2D FFT)."""
    nv_in = t.shape[0]
    x = torch.nn.functional.pad(x, (0, 1)).index_select(1, idx).view(x.shape[0], nv_in, -1).transpose(0, 1)
    f = torch.bmm(x, t).view(nv_in, x.shape[1], n_u, 2)  # F[v, R, u] (re/im)
    return torch.fft.irfftn(torch.view_as_complex(f), s=(n_u, n_v), dim=(2, 0), norm="forward")


def _gaunt_fft(x1: torch.Tensor, x2: torch.Tensor, lmax_out: int) -> torch.Tensor:
    """Rows ``[R, (L1+1)^2] x [R, (L2+1)^2] -> [R, (Lo+1)^2]`` by zero-padded ``irfftn``/``rfftn``."""
    p = fft_plan(lmax_from_dim(x1.shape[-1]), lmax_from_dim(x2.shape[-1]), lmax_out, x1.dtype, x1.device)
    out = x1.new_empty(x1.shape[0], (lmax_out + 1) ** 2)
    chunk = max(1, _CHUNK_ELEMENTS // (p.n_u * p.n_v))
    for start in range(0, x1.shape[0], chunk):
        h = _fft_to_grid(x1[start:start + chunk], p.idx1, p.t1, p.n_u, p.n_v)
        h.mul_(_fft_to_grid(x2[start:start + chunk], p.idx2, p.t2, p.n_u, p.n_v))
        spec = torch.fft.rfftn(h, dim=(2, 0), norm="forward")[: lmax_out + 1]  # H[v, r, u]
        spec = torch.view_as_real(spec).reshape(lmax_out + 1, h.shape[1], 2 * p.n_u)
        z = torch.bmm(spec, p.b)  # [Lo+1, r, 2(Lo+1)]
        out[start:start + chunk] = z.permute(1, 0, 2).reshape(h.shape[1], -1).index_select(1, p.gather)
    return out


class _Workspace:
    """Reusable flat buffers: fresh large temporaries cost page faults that dominate these small GEMMs
    (measured 2-16x slower than writing into reused memory on CPU)."""

    def __init__(self, like: torch.Tensor):
        self.like, self.buffers = like, {}

    def get(self, name: str, *shape: int) -> torch.Tensor:
        numel = 1
        for n in shape:
            numel *= n
        buf = self.buffers.get(name)
        if buf is None or buf.numel() < numel:
            buf = self.like.new_empty(numel)
            self.buffers[name] = buf
        return buf[:numel].view(*shape)


def half_grid(xt: torch.Tensor, tables, ws: _Workspace | None = None, tag: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """Columns ``xt [(L+1)^2, R]`` -> even/odd azimuthal parts ``E, O [K, J * R]`` on the half torus
    (``f(theta_j, +-phi_k) = E +- O``), two batched GEMMs (see :func:`geomdl.o3.gaunt_plans.synthesis_tables`).
    With a workspace (no autograd) the results live in reused buffers."""
    idx, theta, phi = tables
    nv_in, n_theta, cols = theta.shape[0], theta.shape[2], xt.shape[1]
    if ws is None:
        # a zero row appended by cat, not pad: torch 2.4's pad rejects an input with no columns (cols = 0)
        x = torch.cat([xt, xt.new_zeros(1, cols)]).index_select(0, idx).view(nv_in, 2, nv_in, cols)
        g = torch.matmul(theta, x).view(nv_in, 2, -1)  # [v, cos/sin, J * R]
        return phi[0] @ g[:, 0], phi[1] @ g[:, 1]
    # absent (l, m) pairs point at the zero pad row; their theta columns are zero, so any row will do
    idx = torch.where(idx < xt.shape[0], idx, torch.zeros_like(idx))
    x = torch.index_select(xt, 0, idx, out=ws.get("x" + tag, idx.numel(), cols)).view(nv_in, 2, nv_in, cols)
    g = torch.matmul(theta, x, out=ws.get("g" + tag, nv_in, 2, n_theta, cols)).view(nv_in, 2, -1)
    k = phi.shape[1]
    e = torch.matmul(phi[0], g[:, 0], out=ws.get("e" + tag, k, g.shape[2]))
    o = torch.matmul(phi[1], g[:, 1], out=ws.get("o" + tag, k, g.shape[2]))
    return e, o


def project_half_grid(parts: torch.Tensor, tables, cols: int, ws: _Workspace | None = None) -> torch.Tensor:
    """Even/odd azimuthal parts ``parts [2, K, J * R]`` (``S, D``) of a function -> SH ``[(Lo+1)^2, R]``."""
    analysis, proj, gather = tables
    if ws is None:  # differentiable path (no out=)
        spec = torch.stack([analysis[0] @ parts[0], analysis[1] @ parts[1]])
        z = torch.matmul(proj, spec.view(2, spec.shape[1], proj.shape[-1], cols))  # explicit J: cols may be 0
    else:
        spec = ws.get("spec", 2, analysis.shape[1], parts.shape[2])
        torch.matmul(analysis[0], parts[0], out=spec[0])  # Re of the azimuthal coefficients
        torch.matmul(analysis[1], parts[1], out=spec[1])  # Im
        z = torch.matmul(proj, spec.view(2, spec.shape[1], proj.shape[-1], cols), out=ws.get("z", *proj.shape[:3], cols))
    # [cos/sin, v, Lo+1, R] -> e3nn order (reshape, not flatten: the legacy vmap of batched gradients has no
    # flatten rule; explicit rows, not -1: R may be 0)
    return z.reshape(math.prod(z.shape[:3]), z.shape[3]).index_select(0, gather)


def _gaunt_columns(x1t: torch.Tensor, x2t: torch.Tensor, lmax_out: int) -> torch.Tensor:
    """Columns ``[(L1+1)^2, R] x [(L2+1)^2, R] -> [(Lo+1)^2, R]`` (contiguous, no autograd): the compiled
    kernel (:mod:`geomdl.o3.gaunt_kernel`) or :func:`_gaunt_columns_reference`, by ``GEOMDL_KERNELS``."""
    if use_kernel(x1t):
        return gaunt_columns_compiled(x1t, x2t, lmax_out)
    return _gaunt_columns_reference(x1t, x2t, lmax_out)


def _gaunt_columns_backward(grad: torch.Tensor, x1t: torch.Tensor, x2t: torch.Tensor, need1: bool = True,
                            need2: bool = True) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Fused first-order backward (see :func:`_gaunt_columns_backward_reference`), compiled or reference."""
    if use_kernel(grad):
        return gaunt_columns_backward_compiled(grad, x1t, x2t, need1, need2)
    return _gaunt_columns_backward_reference(grad, x1t, x2t, need1, need2)


def _gaunt_columns_reference(x1t: torch.Tensor, x2t: torch.Tensor, lmax_out: int) -> torch.Tensor:
    """Columns ``[(L1+1)^2, R] x [(L2+1)^2, R] -> [(Lo+1)^2, R]`` by the half-torus GEMMs (no autograd).

    With ``f1 = E1 +- O1``, ``f2 = E2 +- O2`` at ``+-phi``: ``S = E1 E2 + O1 O2``, ``D = E1 O2 + O1 E2``.
    """
    lmax1, lmax2 = lmax_from_dim(x1t.shape[0], "x1t"), lmax_from_dim(x2t.shape[0], "x2t")
    p = dft_plan(lmax1, lmax2, lmax_out, x1t.dtype, x1t.device)
    cols = x1t.shape[1]
    out = x1t.new_empty((lmax_out + 1) ** 2, cols)
    chunk = max(1, _CHUNK_ELEMENTS // (p.n_theta * p.n_v))
    ws = _Workspace(x1t)
    for start in range(0, cols, chunk):
        a, b = x1t[:, start:start + chunk], x2t[:, start:start + chunk]
        e1, o1 = half_grid(a, p.synth1, ws, "1")
        e2, o2 = half_grid(b, p.synth2, ws, "2")
        parts = ws.get("parts", 2, *e1.shape)
        torch.mul(e1, e2, out=parts[0]).addcmul_(o1, o2)
        torch.mul(e1, o2, out=parts[1]).addcmul_(o1, e2)
        out[:, start:start + chunk] = project_half_grid(parts, p.proj, a.shape[1], ws)
    return out


def _gaunt_columns_backward_reference(grad: torch.Tensor, x1t: torch.Tensor, x2t: torch.Tensor, need1: bool = True,
                                      need2: bool = True) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Both input gradients of ``z = gaunt(x1t, x2t, Lo)`` in one pass (no autograd), with ``grad [(Lo+1)^2, R]``.

    The Gaunt tensor is symmetric, so ``dL/dx1 = gaunt(grad, x2, L1)`` and ``dL/dx2 = gaunt(grad, x1, L2)``;
    here the half-torus samples of ``grad`` are synthesised once and shared by both products (3 syntheses
    + 2 projections instead of 4 + 2), on one torus large enough for both (exact for any larger torus).
    """
    lmax1, lmax2 = lmax_from_dim(x1t.shape[0], "x1t"), lmax_from_dim(x2t.shape[0], "x2t")
    lmax_out = lmax_from_dim(grad.shape[0], "grad")
    sizes = [grid_sizes(lmax_out, lmax2, lmax1, fast=False), grid_sizes(lmax_out, lmax1, lmax2, fast=False)]
    n_u, n_v = max(s[0] for s in sizes), max(s[1] for s in sizes)
    n_theta = n_u // 2 + 1
    dtype, device = grad.dtype, grad.device
    synth_g = synthesis_tables(lmax_out, n_u, n_v, dtype, device)
    synth1, synth2 = synthesis_tables(lmax1, n_u, n_v, dtype, device), synthesis_tables(lmax2, n_u, n_v, dtype, device)
    proj1 = projection_tables(lmax_out + lmax2, lmax1, n_u, n_v, dtype, device) if need1 else None
    proj2 = projection_tables(lmax_out + lmax1, lmax2, n_u, n_v, dtype, device) if need2 else None
    cols = grad.shape[1]
    g1 = grad.new_empty(x1t.shape[0], cols) if need1 else None
    g2 = grad.new_empty(x2t.shape[0], cols) if need2 else None
    chunk = max(1, _CHUNK_ELEMENTS // (n_theta * n_v))
    ws = _Workspace(grad)
    for start in range(0, cols, chunk):
        sl = slice(start, start + chunk)
        eg, og = half_grid(grad[:, sl], synth_g, ws, "g")
        parts = ws.get("parts", 2, *eg.shape)
        for need, other, synth, proj, target in ((need1, x2t, synth2, proj1, g1), (need2, x1t, synth1, proj2, g2)):
            if not need:
                continue
            e, o = half_grid(other[:, sl], synth, ws, "o")
            torch.mul(eg, e, out=parts[0]).addcmul_(og, o)
            torch.mul(eg, o, out=parts[1]).addcmul_(og, e)
            target[:, sl] = project_half_grid(parts, proj, eg.shape[1] // n_theta, ws)
    return g1, g2


def _gaunt_rows(x1: torch.Tensor, x2: torch.Tensor, lmax_out: int, method: str) -> torch.Tensor:
    if method == "fft":
        return _gaunt_fft(x1, x2, lmax_out)
    return _gaunt_columns(x1.T.contiguous(), x2.T.contiguous(), lmax_out).T


class _GauntProduct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x1, x2, lmax_out, method):
        ctx.save_for_backward(x1, x2)
        ctx.method = method
        return _gaunt_rows(x1, x2, lmax_out, method)

    @staticmethod
    def backward(ctx, grad):
        x1, x2 = ctx.saved_tensors
        # gradients batched by is_grads_batched: plain ops (the kernel has no batching rule)
        product = _plain_rows if legacy_batched(grad) else _GauntProduct.apply
        g1 = g2 = None
        if ctx.needs_input_grad[0]:
            g1 = product(grad, x2, lmax_from_dim(x1.shape[-1]), ctx.method)
        if ctx.needs_input_grad[1]:
            g2 = product(grad, x1, lmax_from_dim(x2.shape[-1]), ctx.method)
        return g1, g2, None, None


def _plain_rows(a: torch.Tensor, b: torch.Tensor, lmax_out: int, method: str) -> torch.Tensor:
    """Rows ``[R, (L1+1)^2] x [R, (L2+1)^2] -> [R, (lmax_out+1)^2]`` in plain torch ops (:mod:`geomdl.o3.gaunt_plain`)."""
    return gaunt_fft_plain(a, b, lmax_out) if method == "fft" else gaunt_columns_plain(a.T, b.T, lmax_out).T


class _GauntColumns(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x1t, x2t, lmax_out):
        ctx.save_for_backward(x1t, x2t)
        return _gaunt_columns(x1t, x2t, lmax_out)

    @staticmethod
    def backward(ctx, grad):
        x1t, x2t = ctx.saved_tensors
        if legacy_batched(grad):  # gradients batched by is_grads_batched: plain ops (the kernel has no batching rule)
            g1 = gaunt_columns_plain(grad, x2t, lmax_from_dim(x1t.shape[0])) if ctx.needs_input_grad[0] else None
            g2 = gaunt_columns_plain(grad, x1t, lmax_from_dim(x2t.shape[0])) if ctx.needs_input_grad[1] else None
            return g1, g2, None
        if not torch.is_grad_enabled():  # first-order backward: one fused pass sharing the grad synthesis
            g1, g2 = _gaunt_columns_backward(grad.contiguous(), x1t, x2t, ctx.needs_input_grad[0], ctx.needs_input_grad[1])
            return g1, g2, None
        g1 = g2 = None  # double backward: differentiable products
        if ctx.needs_input_grad[0]:
            g1 = _GauntColumns.apply(grad.contiguous(), x2t, lmax_from_dim(x1t.shape[0]))
        if ctx.needs_input_grad[1]:
            g2 = _GauntColumns.apply(grad.contiguous(), x1t, lmax_from_dim(x2t.shape[0]))
        return g1, g2, None


def gaunt_product_columns(x1t: torch.Tensor, x2t: torch.Tensor, lmax_out: int) -> torch.Tensor:
    """Gaunt product in the column layout the layers use: ``x1t [(L1+1)^2, R] x x2t [(L2+1)^2, R] ->
    [(lmax_out+1)^2, R]``, one column per (node, channel); ``method="dft"``, differentiable (any order).

    Same maths as :func:`gaunt_product` (``z[:, r] = gaunt_product(x1t[:, r], x2t[:, r])``) without the
    transposes; compiled kernel or reference by ``GEOMDL_KERNELS`` (:mod:`geomdl.o3.gaunt_kernel`).
    ``R`` must match (no broadcasting); float32 or float64, same dtype and device (else ``TypeError``).
    Inside forward-mode AD or a ``torch.func`` transform it runs in plain torch ops (:mod:`geomdl.o3.gaunt_plain`).
    """
    for name, t in (("x1t", x1t), ("x2t", x2t)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if x1t.dim() != 2 or x2t.dim() != 2 or x1t.shape[1] != x2t.shape[1]:
        raise ValueError(f"x1t and x2t must be [(L+1)^2, R] with the same R, got {tuple(x1t.shape)} and {tuple(x2t.shape)}")
    lmax_from_dim(x1t.shape[0], "x1t")
    lmax_from_dim(x2t.shape[0], "x2t")
    if x1t.dtype != x2t.dtype or x1t.device != x2t.device:
        raise TypeError(f"x1t and x2t must share dtype and device, got {x1t.dtype}/{x1t.device} and {x2t.dtype}/{x2t.device}")
    if x1t.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"x1t and x2t must both be float32 or float64, got {x1t.dtype} and {x2t.dtype}")
    if not isinstance(lmax_out, int) or isinstance(lmax_out, bool) or lmax_out < 0:
        raise ValueError(f"lmax_out must be a non-negative int, got {lmax_out!r}")
    if torch.compiler.is_compiling():  # an opaque operator for the compiler (geomdl.o3.gaunt_ops)
        from geomdl.o3.gaunt_ops import gaunt_columns_op

        return gaunt_columns_op(x1t.contiguous(), x2t.contiguous(), lmax_out, "dft")
    if transform_active(x1t, x2t):  # forward AD / torch.func / batched grads: plain torch ops (no jvp, no vmap rule)
        return gaunt_columns_plain(x1t, x2t, lmax_out)
    return _GauntColumns.apply(x1t.contiguous(), x2t.contiguous(), lmax_out)


def _check_input(x, name):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{name} must be float32 or float64, got {x.dtype}")
    if x.dim() == 0:
        raise ValueError(f"{name} must have shape [..., (L+1)^2], got a scalar")
    return lmax_from_dim(x.shape[-1], name)


def gaunt_product(x1: torch.Tensor, x2: torch.Tensor, lmax_out: int | None = None, method: str = "auto") -> torch.Tensor:
    """Gaunt product ``[..., (L1+1)^2] x [..., (L2+1)^2] -> [..., (lmax_out+1)^2]`` (2D-FFT algorithm).

    Args:
        x1, x2: SH coefficients (integral-normalised real SH in e3nn order, degrees ``0..L``, parity
            ignored: the product is that of the two spherical functions). Leading dims broadcast.
            float32 or float64, same dtype and device.
        lmax_out: highest output degree (default ``L1 + L2``, the full product).
        method: ``"fft"`` (zero-padded ``torch.fft.irfftn``/``rfftn`` on the full torus, the paper's
            algorithm), ``"dft"`` (the same transform with the DFTs as small GEMMs on the half torus, see
            :mod:`geomdl.o3.gaunt_plans`; on CPU it runs in the compiled kernel of :mod:`geomdl.o3.gaunt_kernel`
            unless ``GEOMDL_KERNELS=reference``) or ``"auto"`` (``"dft"``: measured faster on CPU, see the
            README). Both are exact to rounding and give the same numbers.

    Inside forward-mode AD (``torch.func.jvp``, ``torch.autograd.forward_ad``) or a ``torch.func`` transform
    (``grad``, ``vmap``, ...) it runs in plain torch ops (:mod:`geomdl.o3.gaunt_plain`), the same numbers.

    Returns:
        ``z [..., (lmax_out+1)^2]`` with ``z_{l3 m3} = int f1 f2 Y_{l3 m3}`` (see the module docstring).
    """
    lmax1, lmax2 = _check_input(x1, "x1"), _check_input(x2, "x2")
    if x1.dtype != x2.dtype or x1.device != x2.device:
        raise TypeError(f"x1 and x2 must share dtype and device, got {x1.dtype}/{x1.device} and {x2.dtype}/{x2.device}")
    if lmax_out is None:
        lmax_out = lmax1 + lmax2
    if not isinstance(lmax_out, int) or isinstance(lmax_out, bool) or lmax_out < 0:
        raise ValueError(f"lmax_out must be a non-negative int, got {lmax_out!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    method = "dft" if method == "auto" else method
    try:
        batch = torch.broadcast_shapes(x1.shape[:-1], x2.shape[:-1])
    except RuntimeError as exc:
        raise ValueError(f"leading dimensions of x1 {tuple(x1.shape)} and x2 {tuple(x2.shape)} do not broadcast") from exc
    a = x1.expand(*batch, x1.shape[-1]).reshape(-1, x1.shape[-1])
    b = x2.expand(*batch, x2.shape[-1]).reshape(-1, x2.shape[-1])
    if a.shape[0] == 0:
        return x1.new_zeros(*batch, (lmax_out + 1) ** 2) + 0 * (a.sum() + b.sum())
    if torch.compiler.is_compiling():  # an opaque operator for the compiler (geomdl.o3.gaunt_ops)
        from geomdl.o3.gaunt_ops import gaunt_columns_op

        z = gaunt_columns_op(a.T.contiguous(), b.T.contiguous(), lmax_out, method).T
        return z.reshape(*batch, (lmax_out + 1) ** 2)
    if transform_active(a, b):  # forward AD / torch.func / batched grads: plain torch ops (no jvp, no vmap rule)
        return _plain_rows(a, b, lmax_out, method).reshape(*batch, (lmax_out + 1) ** 2)
    return _GauntProduct.apply(a, b, lmax_out, method).reshape(*batch, (lmax_out + 1) ** 2)
