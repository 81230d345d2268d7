"""Change of basis between real spherical harmonics and 2D Fourier series on the torus.

The sphere is parametrised by the torus ``(theta, phi) in [0, 2pi)^2`` through

.. math:: s(\\theta,\\varphi) = (\\sin\\theta\\sin\\varphi,\\ \\cos\\theta,\\ \\sin\\theta\\cos\\varphi)
          \\quad (x, y, z;\\ \\text{y is e3nn's polar axis}),

which covers the sphere twice (``(theta, phi)`` and ``(2pi - theta, phi + pi)`` give the same point).
Every ``Y_lm(s(theta, phi))`` is a polynomial in ``(cos, sin)`` of both angles, i.e. a 2D trigonometric
polynomial (``sin^|m| theta`` continued analytically, never ``|sin theta|^|m|``):

.. math:: f = \\sum_{lm} x_{lm} Y_{lm}(s) = \\sum_{|u|,|v| \\le L} F_{uv}\\, e^{i(u\\theta + v\\varphi)},
          \\qquad F = \\mathrm{sh2f}(x).

Its sparsity: ``v = +-m`` and ``u = l (mod 2)``, ``|u| <= l``; ``F_{-u,-v} = conj(F_{uv})``. Products of
spherical functions are products of these series, i.e. 2D linear convolutions of ``F`` arrays, and the
projection back onto SH is

.. math:: x_{lm} = \\int_{S^2} h\\, Y_{lm}\\, d\\Omega = \\mathrm{Re}\\sum_{uv} H_{uv} M^{lm}_{uv},\\qquad
          M^{lm}_{uv} = \\int_0^\\pi\\!\\!\\int_0^{2\\pi} e^{i(u\\theta+v\\varphi)} Y_{lm}(s)\\sin\\theta\\,d\\varphi\\,d\\theta ,

computed in closed form (``int_0^pi e^{in theta} = pi, 0, 2i/n`` for ``n = 0``, even, odd). ``M`` is dense
in ``u`` (a half-period integral). Matrices are built in float64 once per degree and cached.
"""
from __future__ import annotations

import math

import torch

from geomdl.o3.spherical_harmonics import lmax_from_dim, spherical_harmonics
from geomdl.utils.constants import constant_cache


def torus_points(n_theta: int, n_phi: int) -> torch.Tensor:
    """Points ``s(theta_j, phi_k)`` of the equispaced ``n_theta x n_phi`` torus grid, ``[n_theta, n_phi, 3]``."""
    for name, n in (("n_theta", n_theta), ("n_phi", n_phi)):
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"{name} must be a positive int, got {n!r}")
    theta = torch.arange(n_theta, dtype=torch.float64) * (2 * math.pi / n_theta)
    phi = torch.arange(n_phi, dtype=torch.float64) * (2 * math.pi / n_phi)
    st, ct = torch.sin(theta)[:, None], torch.cos(theta)[:, None]
    return torch.stack([st * torch.sin(phi), ct.expand(n_theta, n_phi), st * torch.cos(phi)], dim=-1)


@constant_cache(maxsize=None)
def _sh_to_fourier(lmax: int) -> torch.Tensor:
    n = 2 * lmax + 2
    values = spherical_harmonics(lmax, torus_points(n, n))  # [n, n, (L+1)^2], real trig polynomials
    coef = torch.fft.fft2(values.to(torch.complex128), dim=(0, 1), norm="forward")  # index u mod n, v mod n
    idx = torch.arange(-lmax, lmax + 1) % n
    coef = coef[idx][:, idx].permute(2, 0, 1)  # [(L+1)^2, u, v]
    # exact sparsity: v = +-m, u = l mod 2 (the discarded entries are rounding noise, < 1e-15)
    ls = torch.tensor([l for l in range(lmax + 1) for _ in range(2 * l + 1)])
    ms = torch.tensor([m for l in range(lmax + 1) for m in range(-l, l + 1)])
    u = torch.arange(-lmax, lmax + 1)
    keep = ((u[None, :, None] - ls[:, None, None]) % 2 == 0) & (u.abs()[None, :, None] <= ls[:, None, None])
    keep = keep & (u.abs()[None, None, :] == ms.abs()[:, None, None])
    return torch.where(keep, coef, torch.zeros_like(coef))


def sh_to_fourier_matrix(lmax: int) -> torch.Tensor:
    """``sh2f`` as a dense complex128 tensor ``[(L+1)^2, 2L+1 (u), 2L+1 (v)]`` (frequency ``u`` at index
    ``u + L``): ``F_uv = sum_lm x_lm S[lm, u, v]``. Cached; a copy is returned."""
    _check_degree("lmax", lmax)
    return _sh_to_fourier(lmax).clone()


def _check_degree(name: str, v) -> None:
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ValueError(f"{name} must be a non-negative int, got {v!r}")


def _half_period_integrals(n: torch.Tensor) -> torch.Tensor:
    """``I(n) = int_0^pi e^{i n theta} d theta`` for integer ``n``: pi, 0 (even n != 0), 2i/n (odd n)."""
    out = torch.zeros(n.shape, dtype=torch.complex128)
    out[n == 0] = math.pi
    odd = n % 2 == 1
    out[odd] = 2j / n[odd].to(torch.complex128)
    return out


@constant_cache(maxsize=None)
def _fourier_to_sh(lmax_in: int, lmax_out: int) -> torch.Tensor:
    s = _sh_to_fourier(lmax_out)  # [(Lo+1)^2, 2Lo+1 (u'), 2Lo+1 (v')]
    # times sin(theta) = (e^{i theta} - e^{-i theta}) / 2i  ->  u' in [-Lo-1, Lo+1]
    c = torch.zeros(s.shape[0], 2 * lmax_out + 3, s.shape[2], dtype=torch.complex128)
    c[:, 2:] += s / 2j
    c[:, :-2] -= s / 2j
    u = torch.arange(-lmax_in, lmax_in + 1)
    up = torch.arange(-lmax_out - 1, lmax_out + 2)
    imat = _half_period_integrals(u[:, None] + up[None, :])  # [2Li+1, 2Lo+3]
    # phi integral: 2 pi delta(v + v'); output v in [-Li, Li], only |v| <= Lo non-zero
    m = torch.zeros(s.shape[0], 2 * lmax_in + 1, 2 * lmax_in + 1, dtype=torch.complex128)
    inner = 2 * math.pi * torch.einsum("ua,kab->kub", imat, c)  # [(Lo+1)^2, u, v']
    for vp in range(-lmax_out, lmax_out + 1):
        v = -vp
        if abs(v) <= lmax_in:
            m[:, :, v + lmax_in] = inner[:, :, vp + lmax_out]
    return m


def fourier_to_sh_matrix(lmax_in: int, lmax_out: int) -> torch.Tensor:
    """``f2sh`` as a dense complex128 tensor ``[(Lo+1)^2, 2Li+1 (u), 2Li+1 (v)]``:
    ``x_lm = Re sum_uv H_uv M[lm, u, v]`` for ``H`` with frequencies ``|u|, |v| <= Li``. Cached; copied."""
    for name, v in (("lmax_in", lmax_in), ("lmax_out", lmax_out)):
        _check_degree(name, v)
    return _fourier_to_sh(lmax_in, lmax_out).clone()


def sh_to_fourier(x: torch.Tensor) -> torch.Tensor:
    """Reference ``sh2f``: ``x [..., (L+1)^2]`` float32/float64 -> ``F [..., 2L+1 (u), 2L+1 (v)]``
    complex64/complex128 (dense einsum). Other dtypes (integer, bool, float16, bfloat16, complex) raise
    ``TypeError``: there is no complex dtype of matching precision to return."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"x must have dtype float32 or float64, got {x.dtype}")
    if x.dim() == 0:
        raise ValueError("x must have shape [..., (L+1)^2], got a scalar")
    lmax = lmax_from_dim(x.shape[-1], "x")
    s = _sh_to_fourier(lmax).to(device=x.device, dtype=torch.complex128 if x.dtype == torch.float64 else torch.complex64)
    return torch.einsum("...k,kuv->...uv", x.to(s.dtype), s)


_FOURIER_DTYPES = (torch.float32, torch.float64, torch.complex64, torch.complex128)


def _check_fourier_dtype(name: str, f: torch.Tensor) -> None:
    """Fourier arrays are float32/float64 or complex64/complex128, like :func:`sh_to_fourier`'s output: integer
    or bool arrays would be silently promoted, and half precision has no FFT / complex matmul on every device."""
    if f.dtype not in _FOURIER_DTYPES:
        raise TypeError(f"{name} must have dtype float32, float64, complex64 or complex128, got {f.dtype}")


def fourier_to_sh(h: torch.Tensor, lmax_out: int) -> torch.Tensor:
    """Reference ``f2sh``: ``H [..., 2Li+1, 2Li+1]`` (Hermitian) -> ``[..., (lmax_out+1)^2]`` real.

    ``h`` must be float32/float64 or complex64/complex128 (else ``TypeError``, as in :func:`sh_to_fourier`)."""
    if not isinstance(h, torch.Tensor):
        raise TypeError(f"h must be a torch.Tensor, got {type(h).__name__}")
    _check_fourier_dtype("h", h)
    _check_degree("lmax_out", lmax_out)
    _check_square_odd("h", h)
    n = h.shape[-1]
    if not h.is_complex():  # a real H: Re(H M) = H Re(M), computed in complex (no discarded-imaginary warning)
        h = h.to(torch.complex128 if h.dtype == torch.float64 else torch.complex64)
    m = _fourier_to_sh((n - 1) // 2, lmax_out).to(device=h.device, dtype=h.dtype)
    return torch.einsum("...uv,kuv->...k", h, m).real


def _check_square_odd(name: str, f: torch.Tensor) -> None:
    if f.dim() < 2 or f.shape[-1] != f.shape[-2] or f.shape[-1] % 2 == 0:
        raise ValueError(f"{name} must have shape [..., 2L+1, 2L+1], got {tuple(f.shape)}")


def fourier_convolve(f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
    """Linear 2D convolution of coefficient arrays ``[..., 2L1+1, 2L1+1] * [..., 2L2+1, 2L2+1]`` ->
    ``[..., 2(L1+L2)+1, 2(L1+L2)+1]`` by zero-padded FFT (size exactly ``2(L1+L2)+1``: no aliasing).
    Both must be float32/float64 or complex64/complex128 (else ``TypeError``)."""
    for name, f in (("f1", f1), ("f2", f2)):
        if not isinstance(f, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(f).__name__}")
        _check_fourier_dtype(name, f)
        _check_square_odd(name, f)  # a non-square array would wrap around in u (aliasing)
    n = f1.shape[-1] + f2.shape[-1] - 1
    a = torch.fft.fft2(f1, s=(n, n))
    b = torch.fft.fft2(f2, s=(n, n))
    return torch.fft.ifft2(a * b)
