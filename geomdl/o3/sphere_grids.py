"""Quadrature grids on the sphere S^2 (exact for band-limited functions) and projections onto SH.

The product grid uses Gauss-Legendre nodes in ``cos(theta)`` (polar axis y, e3nn's convention) and
equispaced azimuths. It integrates every polynomial of degree ``<= degree`` on the sphere exactly when

.. math:: n_\\theta \\ge \\lceil (\\mathrm{degree}+1)/2 \\rceil,\\qquad n_\\varphi \\ge \\mathrm{degree}+1 .

So a product ``f g Y_l3`` (degrees L1, L2, L3) is integrated exactly with ``degree = L1 + L2 + L3``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from geomdl.o3.spherical_harmonics import spherical_harmonics
from geomdl.utils.constants import constant_cache


def _check_floating(name: str, t) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not (t.is_floating_point() or t.is_complex()):  # an integer tensor would round the weights / basis to integers
        raise TypeError(f"{name} must be floating point (or complex), got {t.dtype}")
    if t.dim() == 0:
        raise ValueError(f"{name} must have at least one dimension, got a scalar")


def _check_samples(values, grid: "SphereGrid") -> None:
    _check_floating("values", values)
    if values.shape[-1] != grid.weights.numel():
        raise ValueError(f"values: last dimension must be the {grid.weights.numel()} grid points, got {tuple(values.shape)}")


@dataclass(frozen=True)
class SphereGrid:
    """A quadrature rule on the unit sphere.

    Attributes:
        points: ``[n_theta * n_phi, 3]`` unit vectors (x, y, z), float64.
        weights: ``[n_theta * n_phi]`` positive weights summing to ``4 pi``.
        n_theta, n_phi: grid sizes.
        degree: polynomial degree integrated exactly.
    """

    points: torch.Tensor
    weights: torch.Tensor
    n_theta: int
    n_phi: int
    degree: int

    def integrate(self, values: torch.Tensor) -> torch.Tensor:
        """``int_S2 f dOmega`` for samples ``values [..., n_points]`` -> ``[...]``."""
        _check_samples(values, self)
        return values @ self.weights.to(values)


def sphere_quadrature(degree: int) -> SphereGrid:
    """Smallest Gauss-Legendre x equispaced grid integrating polynomials of degree ``degree`` exactly.

    The grid is built once and cached; every call returns fresh copies of its tensors (see
    :func:`gauss_legendre_grid`)."""
    if not isinstance(degree, int) or isinstance(degree, bool) or degree < 0:
        raise ValueError(f"degree must be a non-negative int, got {degree!r}")
    return gauss_legendre_grid(degree // 2 + 1, degree + 1)


def gauss_legendre_grid(n_theta: int, n_phi: int) -> SphereGrid:
    """Gauss-Legendre nodes in ``cos(theta)`` (about the y axis) times ``n_phi`` equispaced azimuths.

    Exact for polynomials of degree ``min(2 n_theta - 1, n_phi - 1)``. Cached; the returned grid holds copies
    of the cached tensors, so modifying them in place does not affect later calls.
    """
    for name, n in (("n_theta", n_theta), ("n_phi", n_phi)):  # before the cache: True == 1 hashes alike
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"{name} must be a positive int, got {n!r}")
    cached = _gauss_legendre_grid(n_theta, n_phi)
    return dataclasses.replace(cached, points=cached.points.clone(), weights=cached.weights.clone())


@constant_cache(maxsize=32)
def _gauss_legendre_grid(n_theta: int, n_phi: int) -> SphereGrid:
    nodes, w = np.polynomial.legendre.leggauss(n_theta)
    cos_t = torch.as_tensor(nodes, dtype=torch.float64)
    sin_t = torch.sqrt(torch.clamp(1 - cos_t**2, min=0.0))
    phi = torch.arange(n_phi, dtype=torch.float64) * (2 * math.pi / n_phi)
    y = cos_t[:, None].expand(n_theta, n_phi)
    z = sin_t[:, None] * torch.cos(phi)[None, :]
    x = sin_t[:, None] * torch.sin(phi)[None, :]
    points = torch.stack([x, y, z], dim=-1).reshape(-1, 3)
    weights = (torch.as_tensor(w, dtype=torch.float64)[:, None] * (2 * math.pi / n_phi)).expand(n_theta, n_phi).reshape(-1)
    return SphereGrid(points, weights.contiguous(), n_theta, n_phi, min(2 * n_theta - 1, n_phi - 1))


def sh_to_grid(coefficients: torch.Tensor, grid: SphereGrid) -> torch.Tensor:
    """Evaluate ``f(s) = sum_lm x_lm Y_lm(s)`` (integral-normalised SH) on the grid.

    ``coefficients [..., (L+1)^2]`` -> ``[..., n_points]``.
    """
    from geomdl.o3.spherical_harmonics import lmax_from_dim

    _check_floating("coefficients", coefficients)
    lmax = lmax_from_dim(coefficients.shape[-1], "coefficients")
    basis = spherical_harmonics(lmax, grid.points).to(coefficients)  # [P, (L+1)^2]
    return coefficients @ basis.T


def grid_to_sh(values: torch.Tensor, grid: SphereGrid, lmax: int) -> torch.Tensor:
    """Projection ``x_lm = int_S2 f Y_lm dOmega`` from samples ``[..., n_points]`` -> ``[..., (lmax+1)^2]``.

    Exact when ``f Y_lm`` has degree ``<= grid.degree``. ``lmax`` must be a non-negative int.
    """
    _check_samples(values, grid)
    if not isinstance(lmax, int) or isinstance(lmax, bool) or lmax < 0:
        raise ValueError(f"lmax must be a non-negative int (output [..., (lmax+1)^2]), got {lmax!r}")
    basis = spherical_harmonics(lmax, grid.points).to(values)
    return (values * grid.weights.to(values)) @ basis
