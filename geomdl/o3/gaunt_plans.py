"""Precomputed matrices ("plans") of the two executions of the Gaunt product, built once per degrees.

Both are the 2D-Fourier algorithm of :mod:`geomdl.o3.fourier` (``sh2f`` -> product on a torus grid
= linear 2D convolution of the coefficient arrays -> ``f2sh``); they differ only in how the DFTs run:

* ``FFTPlan`` (``method="fft"``, the paper's algorithm): ``sh2f`` by a batched matmul per ``v = |m|``,
  then zero-padded ``torch.fft.irfftn`` on the full ``N_u x N_v`` torus, product, ``rfftn``, ``f2sh``.
* ``DFTPlan`` (``method="dft"``): the same change of basis with the ``u``-DFT folded into the
  (already dense-in-``u``) ``sh2f``/``f2sh`` matrices, the ``v``-DFT as a small dense real matrix, and only
  half of the torus (``theta in [0, pi]``): the torus covers the sphere twice, ``h(2pi - theta, phi) =
  h(theta, phi + pi)``, i.e. ``H_v(2pi - theta) = (-1)^v H_v(theta)``, which is folded into the
  projection weights. Every step is then a plain GEMM on columns ``[..., rows]`` (fast on CPUs, where
  ``torch.fft``'s small complex-to-real transforms are several times slower than these GEMMs).

All matrices are built in float64 and cast once per ``(dtype, device)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from geomdl.o3.fourier import _fourier_to_sh, _sh_to_fourier
from geomdl.utils.constants import constant_cache


def fast_fft_size(n: int, even: bool = False) -> int:
    """Smallest integer ``>= n`` whose prime factors are 2, 3 and 5 (and even, if asked)."""
    m = max(math.ceil(n), 1)  # not int(n): that rounds a fractional n down, below n
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1 and (not even or m % 2 == 0):
            return m
        m += 1


def grid_sizes(lmax1: int, lmax2: int, lmax_out: int, fast: bool = True) -> tuple[int, int]:
    """Torus sizes ``(N_u, N_v)``: ``N_u >= 2(L1+L2)+1`` (no aliasing in theta, all ``u`` needed) and
    ``N_v >= L1+L2+Lo+1`` (aliasing only beyond the needed ``|v| <= Lo``), both even."""
    lp = lmax1 + lmax2
    n_u = 2 * lp + 1
    n_v = max(lp + lmax_out + 1, 2 * max(lmax1, lmax2, lmax_out) + 1)
    if fast:
        return fast_fft_size(n_u, even=True), fast_fft_size(n_v, even=True)
    return n_u + n_u % 2, n_v + n_v % 2


def _sh_gather_index(lmax: int) -> torch.Tensor:
    """``[(L+1) v, 2 sign, (L+1) l]`` -> flat SH index of ``(l, m = +v / -v)``; ``(L+1)^2`` (a zero pad) where
    the pair does not exist (``l < v``, or ``v = 0`` with the minus sign)."""
    idx = torch.full((lmax + 1, 2, lmax + 1), (lmax + 1) ** 2, dtype=torch.long)
    for v in range(lmax + 1):
        for l in range(v, lmax + 1):
            idx[v, 0, l] = l * l + l + v
            if v > 0:
                idx[v, 1, l] = l * l + l - v
    return idx.reshape(-1)


def _output_gather_index(lmax_out: int) -> torch.Tensor:
    """Flat SH index ``(l, m)`` -> row ``(|m|, sign(m<0), l)`` of the projection output."""
    gather = torch.zeros((lmax_out + 1) ** 2, dtype=torch.long)
    for l in range(lmax_out + 1):
        for m in range(-l, l + 1):
            gather[l * l + l + m] = (abs(m) * 2 + int(m < 0)) * (lmax_out + 1) + l
    return gather


def _sh2f_by_v(lmax: int, n_u: int) -> torch.Tensor:
    """Complex ``[v, 2(L+1) (sign, l), N_u]``: ``F[u mod N_u, v] = sum_(sign,l) x[l, +-v] * table``."""
    s = _sh_to_fourier(lmax)
    idx = _sh_gather_index(lmax).view(lmax + 1, 2, lmax + 1)
    t = torch.zeros(lmax + 1, 2, lmax + 1, n_u, dtype=torch.complex128)
    u_pos = torch.arange(-lmax, lmax + 1) % n_u
    for v in range(lmax + 1):
        for sign in range(2):
            for l in range(v, lmax + 1):
                k = int(idx[v, sign, l])
                if k < (lmax + 1) ** 2:
                    t[v, sign, l, u_pos] = s[k, :, v + lmax]
    return t.reshape(lmax + 1, 2 * (lmax + 1), n_u)


def _f2sh_by_v(lmax_in: int, lmax_out: int, n_u: int) -> torch.Tensor:
    """Complex ``[v, N_u, 2(Lo+1) (sign, l)]``: ``z[l, +-v] = Re sum_u H[u mod N_u, v] * table`` (``v >= 0``
    only: the ``-v`` half is folded in with a factor 2)."""
    m = _fourier_to_sh(lmax_in, lmax_out)
    b = torch.zeros(lmax_out + 1, n_u, 2, lmax_out + 1, dtype=torch.complex128)
    u_pos = torch.arange(-lmax_in, lmax_in + 1) % n_u
    for l in range(lmax_out + 1):
        for mm in range(-l, l + 1):
            v = abs(mm)
            if v <= lmax_in:
                b[v, u_pos, int(mm < 0), l] = (2.0 if v > 0 else 1.0) * m[l * l + l + mm, :, v + lmax_in]
    return b.reshape(lmax_out + 1, n_u, 2 * (lmax_out + 1))


@dataclass(frozen=True)
class FFTPlan:
    """Zero-padded 2D FFT execution. ``t1/t2 [L+1, 2(L+1), 2 N_u]`` (re/im interleaved), ``b [Lo+1, 2 N_u,
    2(Lo+1)]``; ``idx1/idx2`` gather SH columns, ``gather`` orders the output."""

    n_u: int
    n_v: int
    idx1: torch.Tensor
    t1: torch.Tensor
    idx2: torch.Tensor
    t2: torch.Tensor
    b: torch.Tensor
    gather: torch.Tensor


@dataclass(frozen=True)
class DFTPlan:
    """Half-torus GEMM execution on columns (see :func:`synthesis_tables`, :func:`projection_tables`)."""

    n_u: int
    n_v: int
    n_theta: int
    synth1: tuple
    synth2: tuple
    proj: tuple


@constant_cache(maxsize=64)
def fft_plan(lmax1: int, lmax2: int, lmax_out: int, dtype: torch.dtype, device: torch.device) -> FFTPlan:
    n_u, n_v = grid_sizes(lmax1, lmax2, lmax_out, fast=True)
    cast = dict(dtype=dtype, device=device)

    def real(t):  # complex [a, b, n] -> real [a, b, 2n] with (re, im) interleaved
        return torch.view_as_real(t).reshape(t.shape[0], t.shape[1], -1).to(**cast)

    b = _f2sh_by_v(lmax1 + lmax2, lmax_out, n_u)  # Re(H B) = Hr Br - Hi Bi
    b_real = torch.stack([b.real, -b.imag], dim=2).reshape(lmax_out + 1, 2 * n_u, -1)
    return FFTPlan(n_u, n_v, _sh_gather_index(lmax1).to(device), real(_sh2f_by_v(lmax1, n_u)),
                   _sh_gather_index(lmax2).to(device), real(_sh2f_by_v(lmax2, n_u)), b_real.to(**cast),
                   _output_gather_index(lmax_out).to(device))


def _phi_synthesis(lmax: int, n_v: int) -> torch.Tensor:
    """``[N_v, 2(L+1)]``: ``f(phi_k) = sum_v w_v (Re G_v cos(v phi_k) - Im G_v sin(v phi_k))``, ``w = 1, 2, 2..``,
    columns ordered (v, re/im)."""
    phi = torch.arange(n_v, dtype=torch.float64) * (2 * math.pi / n_v)
    v = torch.arange(lmax + 1, dtype=torch.float64)
    w = torch.where(v > 0, 2.0, 1.0)
    arg = phi[:, None] * v[None, :]
    return torch.stack([w * torch.cos(arg), -w * torch.sin(arg)], dim=-1).reshape(n_v, -1)


def _diagonal_blocks(t: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """``[v, 2 rows, 2 cols]`` with zero off-diagonal (cos/sin) blocks -> ``[v, 2, rows, cols]``."""
    blocks = torch.stack([t[:, :rows, :cols], t[:, rows:, cols:]], dim=1)
    off = max(float(t[:, :rows, cols:].abs().max()), float(t[:, rows:, :cols].abs().max()))
    if off > 1e-12 * max(float(t.abs().max()), 1.0):  # pragma: no cover - structural property of real SH
        raise RuntimeError(f"cos/sin blocks are not decoupled ({off:.3g})")
    return blocks


@constant_cache(maxsize=128)
def synthesis_tables(lmax: int, n_u: int, n_v: int, dtype: torch.dtype, device: torch.device):
    """Half-torus synthesis of degree-``lmax`` functions: ``(idx, theta [L+1, 2, J, L+1], phi [2, K, L+1])``
    (``theta`` is exactly zero in the columns of absent pairs ``l < v``).

    With ``X = x_padded[idx].view(L+1 (v), 2 (cos/sin: m = +v/-v), L+1 (l), R)``, ``G = theta @ X`` are the
    azimuthal Fourier profiles at the ``J = N_u/2 + 1`` polar rows, and ``E = phi[0] @ G[:, 0]``,
    ``O = phi[1] @ G[:, 1]`` (``K = N_v/2 + 1`` azimuths ``phi_k in [0, pi]``) give the samples
    ``f(theta_j, +-phi_k) = E +- O`` (even/odd split of the azimuthal DFT).
    """
    n_theta = n_u // 2 + 1
    u = torch.arange(n_u)
    u = torch.where(u > n_u // 2, u - n_u, u).to(torch.float64)  # signed frequency of each FFT slot
    theta_half = torch.arange(n_theta, dtype=torch.float64) * (2 * math.pi / n_u)
    a = _sh2f_by_v(lmax, n_u) @ torch.exp(1j * u[:, None] * theta_half[None, :])  # [v, 2(L+1), J]: G_v(theta_j)
    theta = torch.cat([a.real, a.imag], dim=2).transpose(1, 2)  # [v, (re/im, j), (sign, l)]
    theta = _diagonal_blocks(theta, n_theta, lmax + 1)  # re <- m = +v only, im <- m = -v only
    phi = _phi_synthesis(lmax, n_v).view(n_v, lmax + 1, 2)[: n_v // 2 + 1].permute(2, 0, 1)  # [2, K, L+1]
    cast = dict(dtype=dtype, device=device)
    return _sh_gather_index(lmax).to(device), theta.contiguous().to(**cast), phi.contiguous().to(**cast)


@constant_cache(maxsize=128)
def projection_tables(lmax_in: int, lmax_out: int, n_u: int, n_v: int, dtype: torch.dtype, device: torch.device):
    """Projection of half-torus samples of a degree-``lmax_in`` function onto degrees ``<= lmax_out``:
    ``(analysis [2, Lo+1, K], proj [2, Lo+1, Lo+1, J], gather [(Lo+1)^2])``. From the even/odd parts
    ``S = (h(+phi) + h(-phi))/2``, ``D = (h(+phi) - h(-phi))/2`` on ``K`` azimuths: ``A = analysis[0] @ S``,
    ``B = analysis[1] @ D`` are Re/Im of the azimuthal coefficients, ``z = proj @ [A; B]``. Exact when
    ``N_u >= 2 lmax_in + 1`` and ``N_v >= lmax_in + lmax_out + 1``."""
    if n_u < 2 * lmax_in + 1 or n_v < lmax_in + lmax_out + 1 or n_u % 2 or n_v % 2:
        raise ValueError(f"torus {n_u}x{n_v} too small or odd for degree {lmax_in} -> {lmax_out}")
    n_theta = n_u // 2 + 1
    u = torch.arange(n_u)
    u = torch.where(u > n_u // 2, u - n_u, u).to(torch.float64)
    # z = Re sum_j Hv[j] W[j] over the full torus, folded onto j = 0..N_u/2 with H_v(2pi - theta) = (-1)^v H_v(theta)
    theta_full = torch.arange(n_u, dtype=torch.float64) * (2 * math.pi / n_u)
    analysis_u = torch.exp(-1j * u[:, None] * theta_full[None, :]) / n_u  # [N_u (u slot), N_u (j)]
    w_full = torch.einsum("uj,vuk->vjk", analysis_u, _f2sh_by_v(lmax_in, lmax_out, n_u))  # [v, N_u (j), 2(Lo+1)]
    sign = torch.tensor([(-1.0) ** v for v in range(lmax_out + 1)], dtype=torch.float64)[:, None, None]
    w_half = w_full[:, :n_theta].clone()
    mirror = torch.arange(1, n_u // 2)
    w_half[:, mirror] += sign * w_full[:, n_u - mirror]
    proj = torch.cat([w_half.real, -w_half.imag], dim=1).transpose(1, 2)  # [v, (sign, l), (re/im, j)]
    proj = _diagonal_blocks(proj, lmax_out + 1, n_theta).transpose(0, 1)  # [cos/sin, v, Lo+1, J]: z[l, +-v] <- Re/Im
    k = torch.arange(n_v // 2 + 1, dtype=torch.float64)
    mult = torch.where((k == 0) | (k == n_v // 2), 1.0, 2.0)  # h(phi_k) and h(-phi_k) are both in the sum
    arg = torch.arange(lmax_out + 1, dtype=torch.float64)[:, None] * (k * (2 * math.pi / n_v))[None, :]
    analysis = torch.stack([mult * torch.cos(arg), -mult * torch.sin(arg)]) / n_v  # [2, Lo+1, K]
    cast = dict(dtype=dtype, device=device)
    gather = torch.zeros((lmax_out + 1) ** 2, dtype=torch.long)  # (l, m) -> row (sign, |m|, l) of z
    for l in range(lmax_out + 1):
        for m in range(-l, l + 1):
            gather[l * l + l + m] = (int(m < 0) * (lmax_out + 1) + abs(m)) * (lmax_out + 1) + l
    return analysis.to(**cast), proj.contiguous().to(**cast), gather.to(device)


@constant_cache(maxsize=64)
def dft_plan(lmax1: int, lmax2: int, lmax_out: int, dtype: torch.dtype, device: torch.device) -> DFTPlan:
    n_u, n_v = grid_sizes(lmax1, lmax2, lmax_out, fast=False)
    return DFTPlan(n_u, n_v, n_u // 2 + 1, synthesis_tables(lmax1, n_u, n_v, dtype, device),
                   synthesis_tables(lmax2, n_u, n_v, dtype, device),
                   projection_tables(lmax1 + lmax2, lmax_out, n_u, n_v, dtype, device))
