"""Kernel bases of PONITA: polynomial features of invariants and a smooth radial window.

The basis is computed once per forward pass and shared by every layer; each layer then only applies
its own bias-free linear map ``basis_dim -> channels`` (see :mod:`geomdl.nn.ponita.conv`).
"""
from __future__ import annotations

import torch
from torch import nn


def polynomial_features(a: torch.Tensor, degree: int) -> torch.Tensor:
    """Tensor powers ``[a, a (x) a, ..., a^(x degree)]`` flattened and concatenated (no constant term).

    ``a`` ``[..., k]`` -> ``[..., k + k^2 + ... + k^degree]`` (duplicates kept, as in PONITA).
    """
    if not isinstance(degree, int) or degree < 1:
        raise ValueError(f"degree must be a positive int, got {degree!r}")
    feats, cur = [a], a
    for _ in range(degree - 1):
        cur = (cur[..., :, None] * a[..., None, :]).flatten(-2)
        feats.append(cur)
    return torch.cat(feats, dim=-1)


def polynomial_dim(num_inputs: int, degree: int) -> int:
    """Length of :func:`polynomial_features` for ``num_inputs`` invariants."""
    return sum(num_inputs ** p for p in range(1, degree + 1))


def smooth_cutoff(dist: torch.Tensor, cutoff: float, p: int = 6) -> torch.Tensor:
    """DimeNet polynomial envelope, ``u = d / r_c``:

    ``w(u) = 1 - (p+1)(p+2)/2 u^p + p(p+2) u^(p+1) - p(p+1)/2 u^(p+2)`` for ``u < 1``, else 0.
    ``w`` and its first two derivatives vanish at ``u = 1`` (smooth energies and forces).
    """
    u = dist / cutoff
    w = 1 - (p + 1) * (p + 2) / 2 * u.pow(p) + p * (p + 2) * u.pow(p + 1) - p * (p + 1) / 2 * u.pow(p + 2)
    return torch.where(u < 1, w, torch.zeros_like(w))


class PolynomialBasis(nn.Module):
    """``basis(a) = GELU(W_2 GELU(W_1 poly(a) + b_1) + b_2)``: ``[..., num_inputs] -> [..., basis_dim]``.

    Args:
        num_inputs: number of invariants ``k`` in the last dimension of ``a``.
        hidden: width of the hidden layer.
        basis_dim: output width.
        degree: polynomial degree of :func:`polynomial_features` (default 3).
    """

    def __init__(self, num_inputs: int, hidden: int, basis_dim: int, degree: int = 3):
        super().__init__()
        self.num_inputs, self.degree = num_inputs, degree
        self.lin1 = nn.Linear(polynomial_dim(num_inputs, degree), hidden)
        self.lin2 = nn.Linear(hidden, basis_dim)
        self.act = nn.GELU()

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        if a.shape[-1] != self.num_inputs:
            raise ValueError(f"attributes must have {self.num_inputs} entries in the last dimension, got shape {tuple(a.shape)}")
        return self.act(self.lin2(self.act(self.lin1(polynomial_features(a, self.degree)))))
