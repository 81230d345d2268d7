"""Kernel bases of PONITA: polynomial features of invariants and a smooth radial window.

The basis is computed once per forward pass and shared by every layer; each layer then only applies
its own bias-free linear map ``basis_dim -> channels`` (see :mod:`geomdl.nn.ponita.conv`).
"""
from __future__ import annotations

import functools

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


def _monomial_levels(num_inputs: int, degree: int) -> list[list[tuple[int, ...]]]:
    """Sorted index tuples of the distinct monomials of each degree ``1..degree`` (combinations with
    replacement, in the order of their first appearance among the tensor powers)."""
    levels = [[(i,) for i in range(num_inputs)]]
    for _ in range(degree - 1):
        levels.append([m + (i,) for m in levels[-1] for i in range(m[-1], num_inputs)])
    return levels


def monomial_fold(num_inputs: int, degree: int, dtype=torch.float64) -> torch.Tensor:
    """0/1 matrix ``S`` ``[polynomial_dim, U]`` with ``polynomial_features(a) = polynomial_monomials(a) @ S.T``
    (up to rounding): column ``u`` marks the tensor-power entries equal to monomial ``u`` (``a_i a_j`` and
    ``a_j a_i`` are the same monomial). A linear map ``W`` on the tensor powers equals ``W S`` on the
    ``U`` distinct monomials (``U = C(k + d, d) - 1``: 9 instead of 14 for ``k = 2, d = 3``)."""
    if not isinstance(degree, int) or degree < 1:
        raise ValueError(f"degree must be a positive int, got {degree!r}")
    index = {m: u for u, m in enumerate(m for level in _monomial_levels(num_inputs, degree) for m in level)}
    rows = []
    for p in range(1, degree + 1):  # tensor-power entries of degree p, in polynomial_features' order
        rows.extend(torch.cartesian_prod(*[torch.arange(num_inputs)] * p).reshape(-1, p).tolist())
    fold = torch.zeros(len(rows), len(index), dtype=dtype)
    for r, idx in enumerate(rows):
        fold[r, index[tuple(sorted(idx))]] = 1
    return fold


def polynomial_monomials(a: torch.Tensor, degree: int) -> torch.Tensor:
    """The distinct monomials of :func:`polynomial_features`: ``a`` ``[..., k]`` -> ``[..., U]``.

    Monomial ``a_i1 a_i2 ... a_ip`` (``i1 <= ... <= ip``) is computed as ``((a_i1 a_i2) ...) a_ip``, the
    same rounding as its sorted tensor-power entry. See :func:`monomial_fold` for the map back.
    """
    if not isinstance(degree, int) or degree < 1:
        raise ValueError(f"degree must be a positive int, got {degree!r}")
    feats, cur = [a], a
    for left, right in _monomial_steps(a.shape[-1], degree):
        cur = cur.index_select(-1, torch.tensor(left, device=a.device)) * a.index_select(-1, torch.tensor(right, device=a.device))
        feats.append(cur)
    return torch.cat(feats, dim=-1)


@functools.lru_cache(maxsize=None)
def _monomial_steps(num_inputs: int, degree: int) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
    """Per degree ``p = 2..degree``: (index into the degree ``p - 1`` monomials, index into ``a``) of each
    degree ``p`` monomial, the entry of level ``p - 1`` times ``a_i`` for ``i`` >= its last index. Cached:
    :func:`polynomial_monomials` runs on every forward pass."""
    levels = _monomial_levels(num_inputs, degree)
    steps = []
    for p in range(1, degree):
        prev = {m: j for j, m in enumerate(levels[p - 1])}
        steps.append((tuple(prev[m[:-1]] for m in levels[p]), tuple(m[-1] for m in levels[p])))
    return tuple(steps)


def smooth_cutoff(dist: torch.Tensor, cutoff: float, p: int = 6) -> torch.Tensor:
    """DimeNet polynomial envelope, ``u = d / r_c``:

    ``w(u) = 1 - (p+1)(p+2)/2 u^p + p(p+2) u^(p+1) - p(p+1)/2 u^(p+2)`` for ``u < 1``, else 0.
    ``w`` and its first two derivatives vanish at ``u = 1`` (smooth energies and forces).

    ``dist [...]`` float, ``cutoff = r_c > 0``, order ``p`` (default 6) -> ``[...]``. No argument checks
    (see :func:`geomdl.graph.radial.polynomial_cutoff` for the validating version of the same envelope).
    """
    u = dist / cutoff
    # Clamped to 1 (w(1) = 0 exactly): far edges (u ~ 1e6 in float32) would overflow u^(p+2) to inf in the
    # unused branch of torch.where, and inf * 0 in its backward is NaN; clamped, their gradient is 0.
    uc = u.clamp(max=1)
    w = 1 - (p + 1) * (p + 2) / 2 * uc.pow(p) + p * (p + 2) * uc.pow(p + 1) - p * (p + 1) / 2 * uc.pow(p + 2)
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
        # lin1 acts on the tensor powers; W S on the distinct monomials is the same map (not saved)
        self.register_buffer("fold", monomial_fold(num_inputs, degree, torch.get_default_dtype()), persistent=False)

    # rows per chunk without autograd: the monomials and the two hidden activations of a chunk are transient,
    # so inference holds little more than the [..., basis_dim] output (PONITA's grid basis has E x O rows)
    CHUNK_ROWS = 1 << 16

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """``a`` ``[..., num_inputs]`` -> ``[..., basis_dim]``."""
        if a.shape[-1] != self.num_inputs:
            raise ValueError(f"attributes must have {self.num_inputs} entries in the last dimension, got shape {tuple(a.shape)}")
        w = self.lin1.weight @ self.fold.to(self.lin1.weight.dtype)  # [hidden, U]
        # w.T made row-major: the weight gradient is then m^T g ([U, M] @ [M, hidden]), which BLAS runs
        # several times faster than g^T m for a thin m
        wt = w.t().contiguous()
        rows = a.reshape(-1, self.num_inputs)
        if torch.is_grad_enabled() or torch.compiler.is_compiling() or rows.shape[0] <= self.CHUNK_ROWS:
            return self._rows(rows, wt).view(*a.shape[:-1], self.lin2.out_features)
        out = rows.new_empty(rows.shape[0], self.lin2.out_features)
        for start in range(0, rows.shape[0], self.CHUNK_ROWS):
            out[start:start + self.CHUNK_ROWS] = self._rows(rows[start:start + self.CHUNK_ROWS], wt)
        return out.view(*a.shape[:-1], self.lin2.out_features)

    def _rows(self, rows: torch.Tensor, wt: torch.Tensor) -> torch.Tensor:
        """``[M, num_inputs]`` -> ``[M, basis_dim]``, with ``wt = (W_1 S)^T`` ``[U, hidden]``."""
        h = torch.addmm(self.lin1.bias, polynomial_monomials(rows, self.degree), wt)
        return self.act(self.lin2(self.act(h)))
