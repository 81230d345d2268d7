"""Real spherical harmonics in e3nn's convention, for any degree.

e3nn's real basis has **y as the polar axis** and the components of degree ``l`` ordered
``m = -l..l``; for ``l = 1`` the three components are ``(x, y, z)``. In polar coordinates around y,

.. math::
    y = \\cos\\theta,\\quad z = \\sin\\theta\\cos\\varphi,\\quad x = \\sin\\theta\\sin\\varphi,

    Y_{l0} = \\bar P_l^0(\\cos\\theta),\\quad
    Y_{l,m>0} = \\sqrt2\\,\\bar P_l^{m}(\\cos\\theta)\\cos(m\\varphi),\\quad
    Y_{l,m<0} = \\sqrt2\\,\\bar P_l^{|m|}(\\cos\\theta)\\sin(|m|\\varphi),

with :math:`\\bar P_l^a = \\sqrt{\\tfrac{2l+1}{4\\pi}\\tfrac{(l-a)!}{(l+a)!}}P_l^a` **without** the
Condon-Shortley phase. ``sin^a(theta) cos/sin(a phi)`` is evaluated as the real/imaginary part of
``(z + i x)^a`` and ``P_l^a / sin^a`` by the stable normalised three-term recurrence, so the result is a
polynomial in ``(x, y, z)`` (no division by ``sin theta``, no overflow up to high degree).
e3nn stops at ``l = 12``; this implementation has no limit and agrees with e3nn to ~1e-15 where both exist
(tested), and transforms with e3nn's ``wigner_D`` for every degree (tested to l = 16).
"""
from __future__ import annotations

import math

import torch

NORMALIZATIONS = ("integral", "component", "norm")


_RECURRENCE: dict = {}  # lmax -> constants; a plain dict, which torch.compile reads (it bypasses lru_cache)


def _recurrence_constants(lmax: int):
    """Float64 constants of the normalised recurrence (Python lists, cached per lmax).

    ``diag[a]``: value of ``Pbar_a^a / sin^a``; ``a_[l][m], b_[l][m]``: for
    ``Pbar_l^m = a y Pbar_{l-1}^m - b Pbar_{l-2}^m`` (sin^m factored out).
    """
    if lmax not in _RECURRENCE:
        _RECURRENCE[lmax] = _build_recurrence_constants(lmax)
    return _RECURRENCE[lmax]


def _build_recurrence_constants(lmax: int):
    diag = []
    prod = 1.0
    for a in range(lmax + 1):
        if a > 0:
            prod *= (2 * a - 1) / (2 * a)
        diag.append(math.sqrt((2 * a + 1) / (4 * math.pi) * prod))
    a_, b_ = {}, {}
    for l in range(1, lmax + 1):
        for m in range(0, l):
            a_[l, m] = math.sqrt((4 * l * l - 1) / (l * l - m * m))
            b_[l, m] = math.sqrt(((l - 1) ** 2 - m * m) * (2 * l + 1) / ((2 * l - 3) * (l * l - m * m))) if l - 2 >= m else 0.0
    return diag, a_, b_


def _parse_lmax(l) -> list[int]:
    """Accept an int lmax, a list of degrees, an e3nn Irreps or an irreps string."""
    if isinstance(l, bool):
        raise TypeError("l must be an int lmax, a list of degrees or an irreps string, got a bool")
    if isinstance(l, int):
        if l < 0:
            raise ValueError(f"lmax must be >= 0, got {l}")
        return list(range(l + 1))
    if isinstance(l, (list, tuple)) and all(isinstance(v, int) for v in l):
        if any(isinstance(v, bool) for v in l):  # True would be read as degree 1, as a bare bool is refused above
            raise TypeError(f"degrees must be ints, got a bool in {list(l)}")
        if any(v < 0 for v in l):
            raise ValueError(f"degrees must be >= 0, got {list(l)}")
        return list(l)
    from e3nn import o3

    try:
        irreps = o3.Irreps(l)
    except Exception as exc:  # e3nn raises ValueError/AssertionError on bad strings
        raise ValueError(f"l must be an int lmax, a list of degrees or an irreps string, got {l!r}") from exc
    return [ir.l for mul, ir in irreps for _ in range(mul)]


def spherical_harmonics(l, vectors: torch.Tensor, normalize: bool = True, normalization: str = "integral") -> torch.Tensor:
    """Real spherical harmonics of the vectors, e3nn layout ``[..., sum_l (2l+1)]``.

    Args:
        l: ``int`` lmax (all degrees ``0..lmax``), a list of degrees, or an irreps string/``Irreps``
            (``"0e + 1o + 2e"``; the degrees are read, the parities are not checked).
        vectors: ``[..., 3]`` floating tensor ``(x, y, z)``.
        normalize: project the vectors onto the unit sphere first (zero vectors give the value at
            ``(0, 0, 0)``: only ``Y_00`` is non-zero). With ``False`` the result is the solid
            harmonic ``|r|^l Y_l(r/|r|)``.
        normalization: ``"integral"`` (``int_S2 Y_lm^2 = 1``, the default here and the basis of the
            Gaunt coefficients), ``"component"`` (``|Y_l|^2 = 2l+1``, e3nn's default in layers),
            ``"norm"`` (``|Y_l| = 1``).

    Returns:
        ``[..., sum_l (2l+1)]`` with components ordered ``l`` then ``m = -l..l`` (e3nn order).
    """
    ls = _parse_lmax(l)
    if not isinstance(vectors, torch.Tensor):
        raise TypeError(f"vectors must be a torch.Tensor, got {type(vectors).__name__}")
    if vectors.shape[-1:] != (3,):
        raise ValueError(f"vectors must have shape [..., 3], got {tuple(vectors.shape)}")
    if not vectors.is_floating_point():
        raise TypeError(f"vectors must be floating point, got {vectors.dtype}")
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    if not ls:  # no degrees (an empty list or irreps): an empty last dimension, like e3nn's ``Irreps("").dim``
        return vectors[..., :0].clone()
    if normalize:
        vectors = unit_vectors(vectors)
    lmax = max(ls)
    x, y, z = vectors.unbind(-1)
    blocks = _all_degrees(lmax, x, y, z)
    out = []
    for deg in ls:
        block = blocks[deg]
        if normalization == "component":
            block = block * math.sqrt(4 * math.pi)
        elif normalization == "norm":
            block = block * math.sqrt(4 * math.pi / (2 * deg + 1))
        out.append(block)
    return torch.cat(out, dim=-1)


def unit_vectors(vectors: torch.Tensor) -> torch.Tensor:
    """Unit vectors ``v / |v|`` of ``vectors [..., D]`` -> ``[..., D]``.

    Exact at every scale (no overflow/underflow of ``|v|^2``, no ``eps`` floor: a vector of norm ``1e-13`` or
    ``1e200`` gives its direction). The zero vector maps to ``0`` with zero derivatives of every order, so first
    and second derivatives stay finite at self loops and coincident points (``Tensor.norm``'s are NaN there)."""
    scale = vectors.detach().abs().amax(dim=-1, keepdim=True)  # exact to detach: v / |v| is scale invariant
    scaled = vectors / torch.where(scale > 0, scale, torch.ones_like(scale))
    sq = scaled.pow(2).sum(dim=-1, keepdim=True)  # in [1, 3], or 0 for the zero vector
    nonzero = sq > 0
    # sqrt only where sq > 0: vector_norm's double backward is NaN at 0 (Hessians / force training on zero edges)
    norm = torch.sqrt(torch.where(nonzero, sq, torch.ones_like(sq)))
    return torch.where(nonzero, scaled / norm, torch.zeros_like(scaled))


def _all_degrees(lmax: int, x, y, z) -> list[torch.Tensor]:
    """Integral-normalised blocks ``[..., 2l+1]`` for ``l = 0..lmax`` (solid harmonics of (x, y, z))."""
    diag, a_, b_ = _recurrence_constants(lmax)
    r2 = x * x + y * y + z * z
    # azimuthal parts: cos_a + i sin_a = (z + i x)^a  (= r^a sin^a(theta) e^{i a phi})
    cos_parts, sin_parts = [torch.ones_like(x)], [torch.zeros_like(x)]
    for _ in range(lmax):
        c, s = cos_parts[-1], sin_parts[-1]
        cos_parts.append(c * z - s * x)
        sin_parts.append(s * z + c * x)
    # polar parts: p[l][m] = r^(l-m) Pbar_l^m(cos theta) / sin^m(theta), by the recurrence in l
    p: list[dict[int, torch.Tensor]] = []
    for l in range(lmax + 1):
        row = {}
        for m in range(l):
            term = a_[l, m] * y * p[l - 1][m]
            if l - 2 >= m:
                term = term - b_[l, m] * r2 * p[l - 2][m]
            row[m] = term
        row[l] = torch.full_like(x, diag[l])
        p.append(row)
    blocks = []
    sqrt2 = math.sqrt(2.0)
    for l in range(lmax + 1):
        comps = [sqrt2 * p[l][a] * sin_parts[a] for a in range(l, 0, -1)]
        comps.append(p[l][0])
        comps += [sqrt2 * p[l][a] * cos_parts[a] for a in range(1, l + 1)]
        blocks.append(torch.stack(comps, dim=-1))
    return blocks


def sh_dim(lmax: int) -> int:
    """Number of coefficients of degrees ``0..lmax``: ``(lmax + 1)^2``."""
    if not isinstance(lmax, int) or isinstance(lmax, bool) or lmax < 0:
        raise ValueError(f"lmax must be a non-negative int, got {lmax!r}")
    return (lmax + 1) ** 2


def lmax_from_dim(dim: int, name: str = "x") -> int:
    """Inverse of :func:`sh_dim`; raises ``ValueError`` naming ``name`` when ``dim`` is not a square."""
    lmax = math.isqrt(dim) - 1
    if dim <= 0 or (lmax + 1) ** 2 != dim:
        raise ValueError(f"{name}: last dimension must be (L+1)^2 (coefficients of degrees 0..L), got {dim}")
    return lmax
