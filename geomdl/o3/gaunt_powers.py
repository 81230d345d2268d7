"""Powers of a spherical function projected onto SH: the many-body (body-order) Gaunt products.

.. math:: B^{(\\nu)}_{lm} = \\int_{S^2} f^\\nu\\, Y_{lm}\\, d\\Omega,\\qquad f = \\sum_{lm} x_{lm} Y_{lm},
          \\quad \\nu = 2, \\dots, \\nu_\\max,

equal to the ``nu``-fold iterated Gaunt product ``(((x . x) . x) ...)`` without truncating the
intermediate degrees (MACE-Gaunt's symmetric contraction of the atomic basis ``A``). ``f`` is sampled once
on a half torus big enough for the highest power (degree ``nu_max L``; the torus/Fourier grid of
:mod:`geomdl.o3.gaunt_plans`), every power is one pointwise multiplication of the previous one (each body
order computed once), and each is projected exactly with the 2D-Fourier ``f2sh`` weights. Differentiable
(plain torch ops).
"""
from __future__ import annotations

import torch

from geomdl.o3.gaunt_plans import projection_tables, synthesis_tables
from geomdl.o3.gaunt_product import half_grid, project_half_grid
from geomdl.o3.spherical_harmonics import lmax_from_dim


def gaunt_powers_columns(xt: torch.Tensor, max_order: int, lmax_out: int) -> list[torch.Tensor]:
    """Columns ``xt [(L+1)^2, R]`` -> ``[B^(2), ..., B^(max_order)]``, each ``[(lmax_out+1)^2, R]``."""
    if not isinstance(max_order, int) or isinstance(max_order, bool) or max_order < 2:
        raise ValueError(f"max_order must be an int >= 2, got {max_order!r}")
    if not isinstance(lmax_out, int) or isinstance(lmax_out, bool) or lmax_out < 0:
        raise ValueError(f"lmax_out must be a non-negative int, got {lmax_out!r}")
    if not isinstance(xt, torch.Tensor):
        raise TypeError(f"xt must be a torch.Tensor, got {type(xt).__name__}")
    if xt.dim() != 2:
        raise ValueError(f"xt must be [(L+1)^2, R], got {tuple(xt.shape)}")
    if not xt.is_floating_point():
        raise TypeError(f"xt must be floating point, got {xt.dtype}")
    lmax = lmax_from_dim(xt.shape[0], "xt")
    lmax_prod = max_order * lmax
    n_u = 2 * lmax_prod + 2  # even, >= 2 * lmax_prod + 1: every theta frequency of f^nu resolved
    n_v = max(lmax_prod + lmax_out + 1, 2 * max(lmax, lmax_out) + 1)
    n_v += n_v % 2
    synth = synthesis_tables(lmax, n_u, n_v, xt.dtype, xt.device)
    proj = projection_tables(lmax_prod, lmax_out, n_u, n_v, xt.dtype, xt.device)
    e, o = half_grid(xt, synth)
    f_plus, f_minus = e + o, e - o  # samples at +phi and -phi
    outs, p_plus, p_minus = [], f_plus, f_minus
    for _ in range(2, max_order + 1):
        p_plus, p_minus = p_plus * f_plus, p_minus * f_minus
        parts = torch.stack([p_plus + p_minus, p_plus - p_minus]) * 0.5  # even / odd azimuthal parts
        outs.append(project_half_grid(parts, proj, xt.shape[1]))
    return outs


def gaunt_powers(x: torch.Tensor, max_order: int, lmax_out: int | None = None) -> list[torch.Tensor]:
    """``x [..., (L+1)^2]`` -> ``[B^(2), ..., B^(max_order)]``, each ``[..., (lmax_out+1)^2]`` (default
    ``lmax_out = L``)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 0:
        raise ValueError("x must have shape [..., (L+1)^2], got a scalar")
    lmax = lmax_from_dim(x.shape[-1], "x")
    lmax_out = lmax if lmax_out is None else lmax_out
    flat = x.reshape(-1, x.shape[-1]).T
    return [b.T.reshape(*x.shape[:-1], b.shape[0]) for b in gaunt_powers_columns(flat, max_order, lmax_out)]
