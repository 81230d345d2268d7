"""Radial bases and smooth cutoffs of interatomic / inter-point distances.

Plain functions hold the maths; the small modules only store the hyper-parameters (and, for
``BesselBasis(trainable=True)``, the frequencies). All functions accept distances ``d`` of any
shape ``[...]`` and return ``[..., num_basis]`` (bases) or ``[...]`` (cutoffs). Every function is
smooth at ``d = 0`` (no NaN gradients for coincident points), so forces ``-dE/dpos`` and their
second derivatives are finite. At ``d = +inf`` every function returns its limit, 0, with a zero
gradient; a NaN distance gives NaN (never hidden as 0).

Bases
    * Bessel (DimeNet, NequIP): :math:`e_n(d) = \\sqrt{2/c}\\, \\sin(n\\pi d/c)/d`, ``n = 1..N``.
    * Gaussian (SchNet): :math:`e_n(d) = \\exp(-\\gamma (d - \\mu_n)^2)`, centres ``mu_n`` evenly
      spaced on ``[start, c]``, :math:`\\gamma = 1 / (2\\,\\Delta\\mu^2)`.

Cutoffs (1 at ``d = 0``, 0 for ``d >= c``)
    * cosine (Behler): :math:`f(d) = \\tfrac12(\\cos(\\pi d/c) + 1)`.
    * polynomial envelope (DimeNet/NequIP), order ``p``:
      :math:`f(u) = 1 - \\tfrac{(p+1)(p+2)}{2}u^p + p(p+2)u^{p+1} - \\tfrac{p(p+1)}{2}u^{p+2}`, ``u = d/c``;
      ``f``, ``f'`` and ``f''`` vanish at ``d = c``: twice continuously differentiable there for every
      ``p`` (the third derivative jumps by ``p(p+1)(p+2)/c^3``).
"""
from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from geomdl.utils.devices import Float64Buffers


def _check_cutoff(cutoff) -> float:
    if isinstance(cutoff, bool) or not isinstance(cutoff, (int, float)) or not cutoff > 0 or not math.isfinite(cutoff):
        raise ValueError(f"cutoff must be a positive finite number, got {cutoff!r}")
    return float(cutoff)


def _check_num(num_basis) -> int:
    if isinstance(num_basis, bool) or not isinstance(num_basis, int) or num_basis < 1:
        raise ValueError(f"num_basis must be an int >= 1, got {num_basis!r}")
    return num_basis


def _check_start(start, cutoff: float) -> float:
    number = isinstance(start, numbers.Real) or (isinstance(start, torch.Tensor) and start.numel() == 1)
    if isinstance(start, bool) or not number or not math.isfinite(float(start)):
        raise ValueError(f"start must be a finite number, got {start!r}")
    if not float(start) < cutoff:
        raise ValueError(f"start must be smaller than cutoff ({cutoff}), got {start!r}")
    return float(start)


def _check_distance(d) -> torch.Tensor:
    if not isinstance(d, torch.Tensor):
        raise TypeError(f"d must be a torch.Tensor of distances, got {type(d).__name__}")
    if not d.is_floating_point():
        raise TypeError(f"d must have a floating dtype, got {d.dtype}")
    return d


def edge_length(vec: torch.Tensor) -> torch.Tensor:
    """Lengths ``|v|`` of edge vectors ``vec [..., D]`` -> ``[...]``, with finite derivatives of every order.

    ``torch.linalg.vector_norm`` (``Tensor.norm``) has a NaN second derivative at ``v = 0`` (self loops,
    coincident atoms), which poisons Hessians and force-training gradients; here the square root is only
    taken where ``|v|^2 > 0`` and the zero vector has length 0 with zero derivatives.
    """
    sq = vec.pow(2).sum(-1)
    pos = sq > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, sq, torch.ones_like(sq))), torch.zeros_like(sq))


def bessel_basis(d: torch.Tensor, num_basis: int, cutoff: float, freq: torch.Tensor | None = None) -> torch.Tensor:
    """Radial Bessel functions :math:`\\sqrt{2/c}\\,\\sin(w_n d)/d`, :math:`w_n = n\\pi/c`.

    Args:
        d: distances ``[...]``.
        num_basis: number of functions ``N``.
        cutoff: ``c > 0``.
        freq: optional frequencies ``w [N]`` (default ``n * pi / c``).

    Returns:
        ``[..., N]``; equals ``sqrt(2/c) * w_n`` at ``d = 0`` (the limit), smooth there. Not truncated at
        the cutoff (it decays like ``1/d``; multiply by a cutoff envelope); 0 at ``d = +-inf`` (the limit).
    """
    d = _check_distance(d)
    num_basis, cutoff = _check_num(num_basis), _check_cutoff(cutoff)
    if freq is None:
        freq = torch.arange(1, num_basis + 1, dtype=d.dtype, device=d.device) * (math.pi / cutoff)
    elif not isinstance(freq, torch.Tensor):
        raise TypeError(f"freq must be a torch.Tensor of shape [{num_basis}], got {type(freq).__name__}")
    elif freq.shape != (num_basis,):
        raise ValueError(f"freq must have shape [{num_basis}], got {tuple(freq.shape)}")
    far = torch.isinf(d)
    d = torch.where(far, torch.zeros_like(d), d)  # sin(inf) is NaN, also in the unused branch's grad
    far = far.unsqueeze(-1)
    # sin(w d) / d = w * sinc(w d) with a sinc that is smooth (to all orders used) at 0
    out = math.sqrt(2.0 / cutoff) * freq * _sinc(d.unsqueeze(-1) * freq)
    return torch.where(far, torch.zeros_like(out), out)


def _sinc(x: torch.Tensor) -> torch.Tensor:
    """``sin(x) / x`` with a Taylor branch near 0 (finite first and second derivatives there;
    ``torch.sinc`` has a NaN second derivative at 0)."""
    small = x.abs() < 1e-2
    safe = torch.where(small, torch.ones_like(x), x)
    tiny = torch.where(small, x, torch.zeros_like(x))  # the unused branch must not overflow (0 * inf = NaN grads)
    x2 = tiny * tiny
    return torch.where(small, 1.0 - x2 / 6.0 + x2 * x2 / 120.0, torch.sin(safe) / safe)


def gaussian_basis(d: torch.Tensor, num_basis: int, cutoff: float, start: float = 0.0) -> torch.Tensor:
    """Gaussians :math:`\\exp(-\\gamma (d - \\mu_n)^2)` with ``num_basis`` centres on ``[start, cutoff]``.

    Args:
        d: distances ``[...]`` float.
        num_basis: number of Gaussians ``N`` (>= 1).
        cutoff: ``c > 0``, the last centre.
        start: the first centre (default 0.0, must be ``< cutoff``); the centres ``mu_n`` are evenly
            spaced, ``gamma = 1 / (2 dmu^2)`` with ``dmu = (c - start) / max(N - 1, 1)``.

    Returns ``[..., num_basis]``; 0 at ``d = +-inf``. Not truncated at the cutoff.

    Raises:
        TypeError: ``d`` is not a floating tensor.
        ValueError: ``num_basis``, ``cutoff`` or ``start`` out of range.
    """
    d = _check_distance(d)
    num_basis, cutoff = _check_num(num_basis), _check_cutoff(cutoff)
    start = _check_start(start, cutoff)
    mu = torch.linspace(start, cutoff, num_basis, dtype=d.dtype, device=d.device)
    delta = (cutoff - start) / max(num_basis - 1, 1)
    gamma = 0.5 / delta**2
    far = torch.isinf(d)
    d = torch.where(far, torch.zeros_like(d), d)  # (inf - mu) * exp(-inf) = NaN gradient
    far = far.unsqueeze(-1)
    out = torch.exp(-gamma * (d.unsqueeze(-1) - mu) ** 2)
    return torch.where(far, torch.zeros_like(out), out)


def cosine_cutoff(d: torch.Tensor, cutoff: float) -> torch.Tensor:
    """:math:`\\tfrac12(\\cos(\\pi d/c) + 1)` for ``d < c``, else 0 (NaN for NaN). Returns ``[...]``.

    Evaluated as :math:`\\sin^2(\\pi (c - d) / 2c)`, accurate relative to the value up to the cutoff.

    Args:
        d: distances ``[...]`` float.
        cutoff: ``c > 0`` (finite).

    Raises ``TypeError`` for a non-floating ``d``, ``ValueError`` for a bad ``cutoff``.
    """
    d = _check_distance(d)
    cutoff = _check_cutoff(cutoff)
    inside = d < cutoff
    x = torch.where(inside, d, torch.zeros_like(d))  # cos(inf) is NaN, also in the unused branch's grad
    # = sin^2(pi (c - d) / (2c)), a form without the cancellation of cos(pi d / c) + 1 near the cutoff
    return torch.where(inside, torch.sin((cutoff - x) * (0.5 * math.pi / cutoff)).square(), _outside(d))


def _outside(d: torch.Tensor) -> torch.Tensor:
    """A cutoff's value for ``d >= c``: 0, but NaN where ``d`` is NaN (``d < c`` is False for NaN)."""
    return torch.where(torch.isnan(d), d, torch.zeros_like(d))


def polynomial_cutoff(d: torch.Tensor, cutoff: float, p: int = 6) -> torch.Tensor:
    """Polynomial envelope of order ``p`` (see module docstring); 0 for ``d >= c``, NaN for NaN. Returns ``[...]``.

    :math:`f(u) = 1 - \\tfrac{(p+1)(p+2)}{2}u^p + p(p+2)u^{p+1} - \\tfrac{p(p+1)}{2}u^{p+2}`, ``u = d / c`` (evaluated as
    :math:`(1-u)^3 \\sum_{k<p} \\binom{k+2}{2} u^k`, accurate to the dtype's precision relative to ``f`` up to the cutoff).

    Args:
        d: distances ``[...]`` float.
        cutoff: ``c > 0`` (finite).
        p: order (int >= 1, default 6).

    Raises ``TypeError`` for a non-floating ``d``, ``ValueError`` for a bad ``cutoff`` or ``p``.
    """
    d = _check_distance(d)
    cutoff = _check_cutoff(cutoff)
    if isinstance(p, bool) or not isinstance(p, int) or p < 1:
        raise ValueError(f"p must be an int >= 1, got {p!r}")
    u = d / cutoff
    inside = u < 1.0
    u = torch.where(inside, u, torch.zeros_like(u))  # beyond the cutoff: no overflow of u^(p+2) (NaN grads)
    # f(u) = (1 - u)^3 sum_{k<p} C(k+2, 2) u^k, the same polynomial (f, f', f'' vanish at u = 1) in a form without
    # cancellation: the expanded one loses ~2e-6 absolute in float32 near the cutoff, 1% of f at u = 0.99
    g = torch.full_like(u, float(math.comb(p + 1, 2)))
    for k in range(p - 2, -1, -1):  # Horner
        g = g * u + math.comb(k + 2, 2)
    f = ((cutoff - d.where(inside, torch.zeros_like(d))) / cutoff).pow(3) * g  # 1 - u as (c - d) / c: no rounding of u
    return torch.where(inside, f, _outside(d))


class BesselBasis(Float64Buffers):
    """Module form of :func:`bessel_basis`; ``trainable=True`` learns the frequencies (NequIP).

    Fixed frequencies are a float64 buffer that stays float64 under ``.float()``/``.double()`` and is used in
    the input's dtype (built in the default dtype they were float32-accurate in float64 models).

    Args:
        num_basis: number of functions ``N`` (default 8).
        cutoff: ``c`` (default 5.0).
        trainable: learn the frequencies ``w [N]`` (initialised to ``n * pi / c``; default False).

    Shapes: ``d [...] -> [..., num_basis]``.
    """

    def __init__(self, num_basis: int = 8, cutoff: float = 5.0, trainable: bool = False):
        super().__init__()
        self.num_basis, self.cutoff = _check_num(num_basis), _check_cutoff(cutoff)
        freq = torch.arange(1, num_basis + 1, dtype=torch.float64) * (math.pi / self.cutoff)
        if trainable:
            self.freq = nn.Parameter(freq.to(torch.get_default_dtype()))
        else:
            self.register_buffer("freq", freq)

    def float64_buffers(self) -> list[str]:
        return ["freq"]

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        """``d [...]`` float -> ``[..., num_basis]`` (:func:`bessel_basis` with this module's frequencies)."""
        return bessel_basis(d, self.num_basis, self.cutoff, self.freq.to(d.dtype))

    def extra_repr(self) -> str:
        return f"num_basis={self.num_basis}, cutoff={self.cutoff}, trainable={isinstance(self.freq, nn.Parameter)}"


class GaussianBasis(nn.Module):
    """Module form of :func:`gaussian_basis`.

    Args:
        num_basis: number of Gaussians (default 32).
        cutoff: the last centre ``c`` (default 5.0).
        start: the first centre (default 0.0).

    Shapes: ``d [...] -> [..., num_basis]``.
    """

    def __init__(self, num_basis: int = 32, cutoff: float = 5.0, start: float = 0.0):
        super().__init__()
        self.num_basis, self.cutoff = _check_num(num_basis), _check_cutoff(cutoff)
        self.start = _check_start(start, self.cutoff)

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        """``d [...]`` float -> ``[..., num_basis]`` (:func:`gaussian_basis`)."""
        return gaussian_basis(d, self.num_basis, self.cutoff, self.start)

    def extra_repr(self) -> str:
        return f"num_basis={self.num_basis}, cutoff={self.cutoff}, start={self.start}"


class CosineCutoff(nn.Module):
    """Module form of :func:`cosine_cutoff`.

    Args:
        cutoff: ``c`` (default 5.0).

    Shapes: ``d [...] -> [...]``.
    """

    def __init__(self, cutoff: float = 5.0):
        super().__init__()
        self.cutoff = _check_cutoff(cutoff)

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        """``d [...]`` float -> ``[...]`` (:func:`cosine_cutoff`)."""
        return cosine_cutoff(d, self.cutoff)

    def extra_repr(self) -> str:
        return f"cutoff={self.cutoff}"


class PolynomialCutoff(nn.Module):
    """Module form of :func:`polynomial_cutoff`.

    Args:
        cutoff: ``c`` (default 5.0).
        p: envelope order (int >= 1, default 6).

    Shapes: ``d [...] -> [...]``.
    """

    def __init__(self, cutoff: float = 5.0, p: int = 6):
        super().__init__()
        self.cutoff = _check_cutoff(cutoff)
        if isinstance(p, bool) or not isinstance(p, int) or p < 1:
            raise ValueError(f"p must be an int >= 1, got {p!r}")
        self.p = p

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        """``d [...]`` float -> ``[...]`` (:func:`polynomial_cutoff`)."""
        return polynomial_cutoff(d, self.cutoff, self.p)

    def extra_repr(self) -> str:
        return f"cutoff={self.cutoff}, p={self.p}"


RADIAL_BASES = {"bessel": BesselBasis, "gaussian": GaussianBasis}
CUTOFFS = {"cosine": CosineCutoff, "polynomial": PolynomialCutoff}
