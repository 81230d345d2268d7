"""Equivariant feature interaction with the Gaunt product ("Gaunt-Selfmix", Luo et al. 2024, section 2.9-1).

.. math:: x_i' = x_i + \\mathrm{Lin}\\big(\\mathrm{GTP}_w(x_i, y_i)\\big),\\qquad y_i = x_i \\text{ by default},

with :class:`GauntTensorProduct` (channelwise, per-degree weights) and an equivariant linear layer
(e3nn ``o3.Linear``) mixing the channels, which the channelwise product does not.
"""
from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from geomdl.nn.message_passing import check_dtypes
from geomdl.nn.tensor_products.clebsch_gordan import _irreps
from geomdl.nn.tensor_products.gaunt import GauntTensorProduct


class GauntSelfInteraction(nn.Module):
    """``x [N, irreps.dim]`` (and optionally ``y [N, irreps.dim]``) -> ``[N, irreps.dim]``.

    Args:
        irreps: natural-parity channelwise irreps, e.g. ``"32x0e + 32x1o + 32x2e"``.
        residual: add the input (default ``True``).
        mix_channels: apply an ``o3.Linear`` after the product (default ``True``).
    """

    def __init__(self, irreps, residual: bool = True, mix_channels: bool = True):
        super().__init__()
        self.irreps = _irreps(irreps, "irreps")
        self.product = GauntTensorProduct(self.irreps, self.irreps, self.irreps)
        self.linear = o3.Linear(self.irreps, self.irreps) if mix_channels else None
        self.residual = residual

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """``x [N, irreps.dim]``, optional ``y [N, irreps.dim]`` (default ``x``) -> ``[N, irreps.dim]``:
        ``x + Lin(GTP_w(x, y))`` (without ``x +`` when ``residual=False``, without ``Lin`` when ``mix_channels=False``).
        Leading dimensions may be any broadcastable ``[...]``, as for :class:`GauntTensorProduct`."""
        if self.linear is not None:  # (else e3nn's Linear fails with "both inputs should have same dtype")
            check_dtypes(next(iter(self.parameters())), x=x, y=y)
        out = self.product(x, x if y is None else y)
        if self.linear is not None:
            out = self.linear(out)
        return x + out if self.residual else out

    def extra_repr(self) -> str:
        return f"{self.irreps}, residual={self.residual}"
