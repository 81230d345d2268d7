"""Gaunt coefficients (integrals of three real spherical harmonics) and their relation to Clebsch-Gordan.

.. math::
    G^{l_1 l_2 l_3}_{m_1 m_2 m_3} = \\int_{S^2} Y_{l_1 m_1} Y_{l_2 m_2} Y_{l_3 m_3}\\, d\\Omega
        = c(l_1, l_2, l_3)\\; C^{l_1 l_2 l_3}_{m_1 m_2 m_3},

    c(l_1,l_2,l_3) = \\|G^{l_1 l_2 l_3}\\|_F
        = \\sqrt{\\tfrac{(2l_1+1)(2l_2+1)(2l_3+1)}{4\\pi}}\\;\\left|\\begin{pmatrix} l_1 & l_2 & l_3\\\\ 0&0&0\\end{pmatrix}\\right| ,

with ``Y`` the integral-normalised real SH of :mod:`geomdl.o3.spherical_harmonics` and ``C`` the
unit-norm real Clebsch-Gordan tensor of :func:`geomdl.o3.clebsch_gordan` (both e3nn's convention;
in this basis the sign of the relation is ``+`` for every path, which the tests check by quadrature).
``c = 0`` exactly when ``l1 + l2 + l3`` is odd: the Gaunt product has no antisymmetric paths
(e.g. the cross product ``1 x 1 -> 1``).
"""
from __future__ import annotations

import math
from fractions import Fraction

import torch

from geomdl.o3.clebsch_gordan import _check_degrees, _check_dtype, _check_triple, clebsch_gordan
from geomdl.utils.constants import constant_cache


def wigner_3j_000(l1: int, l2: int, l3: int) -> float:
    """The Wigner 3j symbol ``(l1 l2 l3; 0 0 0)`` (0 when ``l1+l2+l3`` is odd or the triangle rule fails).

    .. math:: (-1)^g \\sqrt{\\frac{(J-2l_1)!(J-2l_2)!(J-2l_3)!}{(J+1)!}}\\frac{g!}{(g-l_1)!(g-l_2)!(g-l_3)!},
              \\quad J = l_1+l_2+l_3 = 2g
    """
    _check_degrees(l1, l2, l3)
    big_j = l1 + l2 + l3
    if big_j % 2 or not abs(l1 - l2) <= l3 <= l1 + l2:
        return 0.0
    g = big_j // 2
    f = math.factorial
    # exact integer ratio under the square root, then one rounding
    num = f(big_j - 2 * l1) * f(big_j - 2 * l2) * f(big_j - 2 * l3)
    den = f(big_j + 1)
    ratio = f(g) // (f(g - l1) * f(g - l2) * f(g - l3))  # a multinomial coefficient: exact
    # one exact rational, rounded once: sqrt(num / den) alone underflows (and ratio overflows) from l ~ 300
    return (-1) ** g * math.sqrt(Fraction(num * ratio * ratio, den))


def gaunt_cg_constant(l1: int, l2: int, l3: int) -> float:
    """``c(l1, l2, l3)`` such that Gaunt = ``c`` x real CG (unit norm); 0 on odd paths and outside the triangle.
    Raises ``ValueError`` unless every degree is a non-negative int."""
    _check_degrees(l1, l2, l3)  # before any arithmetic on them
    if not abs(l1 - l2) <= l3 <= l1 + l2:
        return 0.0
    return math.sqrt((2 * l1 + 1) * (2 * l2 + 1) * (2 * l3 + 1) / (4 * math.pi)) * abs(wigner_3j_000(l1, l2, l3))


@constant_cache(maxsize=None)
def _gaunt(l1: int, l2: int, l3: int) -> torch.Tensor:
    return gaunt_cg_constant(l1, l2, l3) * clebsch_gordan(l1, l2, l3, dtype=torch.float64)


def gaunt_coefficients(l1: int, l2: int, l3: int, dtype=None, device=None) -> torch.Tensor:
    """Real Gaunt tensor ``[2l1+1, 2l2+1, 2l3+1]`` (all zeros on odd-sum paths). Raises ``ValueError``
    outside the triangle rule, ``TypeError`` for an integer or bool ``dtype``. Fully symmetric under permutations
    of the three (l, m) pairs."""
    _check_triple(l1, l2, l3)
    _check_dtype(dtype)
    return _gaunt(l1, l2, l3).to(dtype=dtype or torch.get_default_dtype(), device=device, copy=True)


def _check_lmaxes(lmax1, lmax2, lmax_out) -> None:
    for name, v in (("lmax1", lmax1), ("lmax2", lmax2), ("lmax_out", lmax_out)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ValueError(f"{name} must be a non-negative int, got {v!r}")


def gaunt_paths(lmax1: int, lmax2: int, lmax_out: int) -> list[tuple[int, int, int]]:
    """The ``(l1, l2, l3)`` with non-zero Gaunt coefficients: triangle rule and ``l1+l2+l3`` even."""
    _check_lmaxes(lmax1, lmax2, lmax_out)
    return [(a, b, c) for a in range(lmax1 + 1) for b in range(lmax2 + 1) for c in range(abs(a - b), min(a + b, lmax_out) + 1)
            if (a + b + c) % 2 == 0]


def gaunt_output_normalization(lmax1: int, lmax2: int, lmax_out: int) -> torch.Tensor:
    """Per-output-degree factor ``n_l3 = (sum_{l1,l2} c(l1,l2,l3)^2 / (2 l3 + 1))^(-1/2)`` ``[lmax_out+1]``.

    With unit-variance i.i.d. input coefficients the Gaunt product's degree-``l3`` components have
    variance ``1 / n_l3^2``; multiplying by ``n_l3`` restores unit variance (used by the layers).
    """
    _check_lmaxes(lmax1, lmax2, lmax_out)
    out = torch.zeros(lmax_out + 1, dtype=torch.float64)
    for a, b, c in gaunt_paths(lmax1, lmax2, lmax_out):
        out[c] += gaunt_cg_constant(a, b, c) ** 2 / (2 * c + 1)
    return torch.where(out > 0, out.clamp_min(1e-300).rsqrt(), torch.zeros_like(out))
