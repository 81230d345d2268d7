"""Equivariant many-body interaction with Gaunt powers (MACE-Gaunt, Luo et al. 2024, section 2.9-3).

For node ``i`` (element ``z_i``), channel ``c`` and output degree ``l``:

.. math:: B_{i,c,l} = w^{(1)}_{z_i c l}\\, A_{i,c,l}
          + \\sum_{\\nu=2}^{\\nu_\\max} w^{(\\nu)}_{z_i c l}\\;\\mathrm{Proj}_l\\big[\\tilde F_{A_{i,c}}^{\\,\\nu}\\big],
          \\qquad \\tilde F_A = F_A / \\sigma_L,\\ \\sigma_L^2 = \\sum_{l \\le L} \\tfrac{2l+1}{4\\pi},

the powers being computed once per body order on one torus grid (:func:`geomdl.o3.gaunt_powers`). ``sigma``
makes ``F`` unit-variance pointwise for unit-variance coefficients so that powers stay O(1). Weights
``[num_elements, C, Lo+1]`` per order (one-hot element contraction = row lookup); far fewer than MACE's
per-coupling-path weights. Channel mixing belongs to a following linear layer.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from geomdl.o3.gaunt_powers import gaunt_powers_columns
from geomdl.nn.tensor_products._layout import channel_irreps, degree_expand, from_columns, to_columns
from geomdl.nn.tensor_products.clebsch_gordan import _irreps, autocast_float32
from geomdl.nn.tensor_products.gaunt import _is_natural


class GauntManyBody(nn.Module):
    """``A [N, irreps_in.dim]`` (+ ``element [N]`` ints) -> ``[N, irreps_out.dim]``.

    Args:
        irreps_in: natural-parity channelwise irreps (``C x 0e + C x 1o + ...``).
        irreps_out: natural-parity, multiplicity ``C`` (default ``irreps_in``).
        correlation: highest body order ``nu_max >= 1`` (default 3).
        num_elements: number of element types (weights per element); ``None`` (default): one set.

    The weights ``w^(nu)`` start at ``1 / nu!``. Raises ``ValueError`` for non-natural irreps, an
    ``irreps_out`` multiplicity other than ``C``, ``correlation < 1`` or a bad ``num_elements``.
    """

    def __init__(self, irreps_in, irreps_out=None, correlation: int = 3, num_elements: int | None = None):
        super().__init__()
        self.irreps_in = _irreps(irreps_in, "irreps_in")
        self.irreps_out = self.irreps_in if irreps_out is None else _irreps(irreps_out, "irreps_out")
        for name, irreps in (("irreps_in", self.irreps_in), ("irreps_out", self.irreps_out)):
            bad = [str(ir) for _, ir in irreps if not _is_natural(ir)]
            if bad:
                raise ValueError(f"{name} must have natural parity (0e, 1o, 2e, ...) for Gaunt powers, got {', '.join(bad)}")
        self.channels, ls = channel_irreps(self.irreps_in, "irreps_in")
        mul_out, ls_out = channel_irreps(self.irreps_out, "irreps_out")
        if mul_out != self.channels:
            raise ValueError(f"irreps_out must have multiplicity {self.channels}, got {self.irreps_out}")
        if not isinstance(correlation, int) or isinstance(correlation, bool) or correlation < 1:
            raise ValueError(f"correlation must be an int >= 1, got {correlation!r}")
        if num_elements is not None and (not isinstance(num_elements, int) or isinstance(num_elements, bool) or num_elements < 1):
            raise ValueError(f"num_elements must be a positive int or None, got {num_elements!r}")
        self.lmax, self.lmax_out, self.correlation = max(ls), max(ls_out), correlation
        self.num_elements = num_elements
        self.sigma = math.sqrt(sum(2 * l + 1 for l in ls) / (4 * math.pi))
        self.weights = nn.Parameter(torch.empty(correlation, num_elements or 1, self.channels, self.lmax_out + 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            for nu in range(self.correlation):
                self.weights[nu].fill_(1.0 / math.factorial(nu + 1))

    def forward(self, x: torch.Tensor, element: torch.Tensor | None = None) -> torch.Tensor:
        """``x [N, irreps_in.dim]`` float (the ``A`` features), ``element [N]`` int32/int64 in ``[0, num_elements)``
        (required when ``num_elements`` is set, ignored otherwise) -> ``B [N, irreps_out.dim]`` (module docstring).

        Under ``torch.autocast``, float16/bfloat16 ``x`` runs in float32 (the output is float32).

        Raises ``TypeError`` for an ``x`` that is not a float32/float64 tensor (integer features would round the
        weights to integers), ``ValueError`` for a wrong shape of ``x`` or a missing / wrongly shaped /
        out-of-range ``element``.
        """
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        (x,) = autocast_float32(x)
        if x.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"x must be float32 or float64 (the products run in it), got {x.dtype}; convert it "
                            "(under torch.autocast half inputs run in float32)")
        if x.dim() != 2 or x.shape[1] != self.irreps_in.dim:
            raise ValueError(f"x must have shape [N, {self.irreps_in.dim}] for irreps {self.irreps_in}, got {tuple(x.shape)}")
        n = x.shape[0]
        if self.num_elements is None:
            w = self.weights[:, 0][:, None]  # [nu, 1, C, Lo+1]
        else:
            if element is None or element.shape != (n,) or element.dtype not in (torch.int32, torch.int64):
                raise ValueError(f"element must be an int tensor of shape [{n}] when num_elements is set")
            if n and (int(element.min()) < 0 or int(element.max()) >= self.num_elements):
                raise ValueError(f"element values must lie in [0, {self.num_elements})")
            w = self.weights[:, element]  # [nu, N, C, Lo+1]
        if torch.is_autocast_enabled(x.device.type):  # the products in float32, not in autocast's half matmuls
            with torch.autocast(x.device.type, enabled=False):
                return self._contract(x, w, n)
        return self._contract(x, w, n)

    def _contract(self, x: torch.Tensor, w: torch.Tensor, n: int) -> torch.Tensor:
        """``B`` of the module docstring from ``x [N, irreps_in.dim]`` and the weights ``w [nu, N|1, C, Lo+1]``."""
        w = degree_expand(w.to(x.dtype), self.lmax_out).permute(0, 3, 1, 2)  # [nu, n_out, N|1, C]
        cols = to_columns(x, self.irreps_in, self.lmax)  # [(L+1)^2, N*C]
        n_out = (self.lmax_out + 1) ** 2
        # zero rows appended by cat, not pad: torch 2.4's pad rejects an input with no columns (N*C = 0)
        linear = cols[:n_out] if cols.shape[0] >= n_out else torch.cat([cols, cols.new_zeros(n_out - cols.shape[0], cols.shape[1])])
        out = linear.view(n_out, n, self.channels) * w[0]
        if self.correlation > 1:
            powers = gaunt_powers_columns(cols / self.sigma, self.correlation, self.lmax_out)
            for nu, b in enumerate(powers, start=1):
                out = out + b.view(n_out, n, self.channels) * w[nu]
        return from_columns(out.reshape(n_out, n * self.channels), self.irreps_out, n)

    def extra_repr(self) -> str:
        return f"{self.irreps_in} -> {self.irreps_out}, correlation={self.correlation}, num_elements={self.num_elements}"
