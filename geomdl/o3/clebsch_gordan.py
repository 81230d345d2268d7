"""Real Clebsch-Gordan coefficients (e3nn's ``wigner_3j`` convention) and Wigner D matrices.

The complex (SU(2), Condon-Shortley) coefficients come from Racah's formula evaluated in exact rational
arithmetic; the real ones by the change of basis real <-> complex of each degree:

.. math::  C^{\\mathrm{real}}_{ijk} = \\sum_{abc} Q^{l_1}_{ai} Q^{l_2}_{bj} \\overline{Q^{l_3}_{ck}}\\,
           \\langle l_1 a\\, l_2 b | l_3 c\\rangle,\\qquad \\|C^{\\mathrm{real}}\\|_F = 1 ,

which makes ``C`` real and invariant: ``C_ijk = C_abc D^{l1}_ai D^{l2}_bj D^{l3}_ck`` with e3nn's D.
"""
from __future__ import annotations

import math
from fractions import Fraction

import torch

from geomdl.utils.constants import constant_cache


def _check_degrees(l1, l2, l3) -> None:
    """``ValueError`` naming the first of ``l1, l2, l3`` that is not a non-negative int (bools refused)."""
    for name, v in (("l1", l1), ("l2", l2), ("l3", l3)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ValueError(f"{name} must be a non-negative int, got {v!r}")


def _check_dtype(dtype) -> None:
    """``TypeError`` unless ``dtype`` is ``None`` (the default dtype) or a floating/complex ``torch.dtype``: an
    integer or bool table would round the coefficients (all of magnitude < 1) to zeros."""
    if dtype is not None and not (isinstance(dtype, torch.dtype) and (dtype.is_floating_point or dtype.is_complex)):
        raise TypeError(f"dtype must be a floating or complex torch.dtype (or None: the default dtype), got {dtype!r}")


def _check_triple(l1, l2, l3):
    _check_degrees(l1, l2, l3)
    if not abs(l1 - l2) <= l3 <= l1 + l2:
        raise ValueError(f"(l1, l2, l3) = ({l1}, {l2}, {l3}) violates the triangle rule |l1-l2| <= l3 <= l1+l2")


def su2_clebsch_gordan_coefficient(j1: int, m1: int, j2: int, m2: int, j3: int, m3: int) -> float:
    """``<j1 m1 j2 m2 | j3 m3>`` for integer angular momenta (Condon-Shortley phase), Racah's formula."""
    if m1 + m2 != m3 or abs(m1) > j1 or abs(m2) > j2 or abs(m3) > j3 or not abs(j1 - j2) <= j3 <= j1 + j2:
        return 0.0
    f = math.factorial
    total = Fraction(0)
    kmin = max(0, j2 - j3 - m1, j1 - j3 + m2)
    kmax = min(j1 + j2 - j3, j1 - m1, j2 + m2)
    for k in range(kmin, kmax + 1):
        den = f(k) * f(j1 + j2 - j3 - k) * f(j1 - m1 - k) * f(j2 + m2 - k) * f(j3 - j2 + m1 + k) * f(j3 - j1 - m2 + k)
        total += Fraction((-1) ** k, den)
    square = Fraction((2 * j3 + 1) * f(j3 + j1 - j2) * f(j3 - j1 + j2) * f(j1 + j2 - j3), f(j1 + j2 + j3 + 1))
    square *= f(j3 + m3) * f(j3 - m3) * f(j1 - m1) * f(j1 + m1) * f(j2 - m2) * f(j2 + m2)
    value_sq = total * total * square
    return math.copysign(math.sqrt(value_sq), float(total)) if total != 0 else 0.0


@constant_cache(maxsize=None)
def _su2_table(l1: int, l2: int, l3: int) -> torch.Tensor:
    out = torch.zeros(2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1, dtype=torch.float64)
    for m1 in range(-l1, l1 + 1):
        for m2 in range(max(-l2, -l3 - m1), min(l2, l3 - m1) + 1):
            out[l1 + m1, l2 + m2, l3 + m1 + m2] = su2_clebsch_gordan_coefficient(l1, m1, l2, m2, l3, m1 + m2)
    return out


def real_to_complex_basis(l: int) -> torch.Tensor:
    """Unitary ``Q [2l+1 (complex m), 2l+1 (real m)]``: real basis vector ``k`` = ``sum_a Q_ak |l a>``.

    Standard real form (Wikipedia) times the global phase ``(-i)^l`` that makes real CG real. complex128;
    cached, a copy is returned.
    """
    if not isinstance(l, int) or isinstance(l, bool) or l < 0:
        raise ValueError(f"l must be a non-negative int, got {l!r}")
    return _real_to_complex_basis(l).clone()


@constant_cache(maxsize=None)
def _real_to_complex_basis(l: int) -> torch.Tensor:
    q = torch.zeros(2 * l + 1, 2 * l + 1, dtype=torch.complex128)
    s = 1 / math.sqrt(2)
    q[l, l] = 1.0
    for m in range(1, l + 1):
        # complex |l, -m> and |l, +m> (rows) against real components l-m (sin-like), l+m (cos-like)
        q[l - m, l + m] = s
        q[l - m, l - m] = -1j * s
        q[l + m, l + m] = (-1) ** m * s
        q[l + m, l - m] = 1j * (-1) ** m * s
    return ((-1j) ** l) * q


@constant_cache(maxsize=None)
def _real_clebsch_gordan(l1: int, l2: int, l3: int) -> torch.Tensor:
    c = _su2_table(l1, l2, l3).to(torch.complex128)
    q1, q2, q3 = _real_to_complex_basis(l1), _real_to_complex_basis(l2), _real_to_complex_basis(l3)
    real = torch.einsum("ai,bj,ck,abc->ijk", q1, q2, q3.conj(), c)
    if real.imag.abs().max() > 1e-10:  # pragma: no cover - would be a bug in the basis change
        raise RuntimeError(f"real Clebsch-Gordan ({l1},{l2},{l3}) has an imaginary part")
    real = real.real
    return real / real.norm()


def clebsch_gordan(l1: int, l2: int, l3: int, dtype=None, device=None) -> torch.Tensor:
    """Real Clebsch-Gordan tensor ``[2l1+1, 2l2+1, 2l3+1]`` with unit Frobenius norm (= e3nn ``wigner_3j``).

    Invariance: :math:`C_{ijk} = \\sum C_{abc} D^{l_1}_{ai} D^{l_2}_{bj} D^{l_3}_{ck}` for every rotation.
    Raises ``ValueError`` when the degrees violate the triangle rule, ``TypeError`` for an integer or bool
    ``dtype``. Cached in float64.
    """
    _check_triple(l1, l2, l3)
    _check_dtype(dtype)
    return _real_clebsch_gordan(l1, l2, l3).to(dtype=dtype or torch.get_default_dtype(), device=device, copy=True)


def wigner_D(l: int, alpha: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """Wigner D of degree ``l`` for Euler angles (Y-X-Y, e3nn's convention): ``[..., 2l+1, 2l+1]``."""
    from e3nn import o3

    return o3.wigner_D(l, alpha, beta, gamma)


def wigner_D_from_matrix(irreps, rotation: torch.Tensor) -> torch.Tensor:
    """Block-diagonal representation matrix of ``irreps`` (or an int lmax: ``0e + 1o + 2e + ...``) for a
    3x3 orthogonal matrix ``rotation [..., 3, 3]`` (``det = -1`` applies the parities). ``[..., dim, dim]``.

    Computed from the matrix itself, without Euler angles (whose recovery by an arccos loses about half the
    digits near the poles: e3nn's ``D_from_matrix`` is off by ~1e-8 there in float64). With ``Q = det(R) R``
    (proper), ``D^0 = 1``, ``D^1 = Q`` (e3nn's basis) and, since ``C = C^{1, l-1, l}`` is invariant with
    ``|C|_F = 1``, :math:`D^l_{km} = (2l+1) \\sum C_{ijk} Q_{ia} D^{l-1}_{jb} C_{abm}`; an irrep of parity
    ``p`` gets the factor ``p`` where ``det(R) = -1``. Exact to rounding for every rotation, in ``rotation``'s
    dtype and on its device. Half-precision rotations (float16, bfloat16; torch has no determinant for them)
    are computed in float32 and the result returned in the input dtype, like :func:`clebsch_gordan`'s
    ``dtype``.
    """
    from e3nn import o3

    if isinstance(irreps, int) and not isinstance(irreps, bool):
        irreps = natural_irreps(irreps)
    if not isinstance(rotation, torch.Tensor) or rotation.shape[-2:] != (3, 3) or not rotation.is_floating_point():
        raise ValueError(f"rotation must be a float tensor of shape [..., 3, 3], got {getattr(rotation, 'shape', rotation)}")
    irreps = o3.Irreps(irreps)
    if rotation.dtype in (torch.float16, torch.bfloat16):
        return wigner_D_from_matrix(irreps, rotation.to(torch.float32)).to(rotation.dtype)
    det_sign = torch.where(torch.linalg.det(rotation) < 0, -1.0, 1.0).to(rotation.dtype)  # [...]
    proper = rotation * det_sign[..., None, None]
    lmax = max((ir.l for _, ir in irreps), default=0)
    ds = [torch.ones(rotation.shape[:-2] + (1, 1), dtype=rotation.dtype, device=rotation.device), proper]
    for l in range(2, lmax + 1):
        c = clebsch_gordan(1, l - 1, l, dtype=rotation.dtype, device=rotation.device)  # [3, 2l-1, 2l+1]
        ds.append(torch.einsum("ijk,...ia,...jb,abm->...km", c, proper, ds[-1], c) * (2 * l + 1))
    out = rotation.new_zeros(rotation.shape[:-2] + (irreps.dim, irreps.dim))
    start = 0
    for mul, ir in irreps:
        d = ds[ir.l] * det_sign[..., None, None] if ir.p == -1 else ds[ir.l]
        for _ in range(mul):
            out[..., start:start + ir.dim, start:start + ir.dim] = d
            start += ir.dim
    return out


def natural_irreps(lmax: int, multiplicity: int = 1):
    """``e3nn.o3.Irreps`` ``mul x 0e + mul x 1o + mul x 2e + ...`` up to ``lmax`` (parity ``(-1)^l``)."""
    from e3nn import o3

    if not isinstance(lmax, int) or isinstance(lmax, bool) or lmax < 0:
        raise ValueError(f"lmax must be a non-negative int, got {lmax!r}")
    if not isinstance(multiplicity, int) or isinstance(multiplicity, bool) or multiplicity < 0:
        raise ValueError(f"multiplicity must be a non-negative int, got {multiplicity!r}")
    return o3.Irreps([(multiplicity, (l, (-1) ** l)) for l in range(lmax + 1)])
