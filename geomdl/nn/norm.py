"""Equivariant layer normalisation for irreps features (e3nn layout ``mul x ir``).

For every irrep block ``(mul, l, p)`` with channels ``x_u in R^{2l+1}``, ``u = 1..mul``:

.. math::
    \\tilde x_u &= x_u - \\tfrac{1}{mul}\\textstyle\\sum_v x_v \\quad (\\text{scalars only, } l = 0) \\\\
    \\sigma^2 &= \\tfrac{1}{mul}\\textstyle\\sum_u \\tfrac{1}{2l+1}\\|\\tilde x_u\\|^2 \\\\
    y_u &= w_u\\, \\tilde x_u / \\sqrt{\\sigma^2 + \\epsilon} \\;+\\; b_u\\,[l = 0,\\ p = +1]

Only norms and channel means are used, so the layer is O(3) equivariant; biases are added to
even scalars only (a bias on ``0o`` or ``l > 0`` would break equivariance).
"""
from __future__ import annotations

import torch
from torch import nn

from geomdl.nn.gate import _irreps
from geomdl.ops._validation import check_bool, check_real


class EquivariantLayerNorm(nn.Module):
    """Per-node layer norm of irreps features.

    Args:
        irreps: the irreps of the features (e.g. ``"16x0e+8x1o+4x2e"``).
        eps: added to the variance (default 1e-5).
        affine: learn per-channel scales ``w`` (and biases ``b`` for ``0e``) (default True).
        center_scalars: subtract the channel mean of scalar blocks (default True).

    Shapes: ``[..., irreps.dim] -> [..., irreps.dim]``.
    """

    def __init__(self, irreps, eps: float = 1e-5, affine: bool = True, center_scalars: bool = True):
        super().__init__()
        self.irreps = _irreps(irreps, "irreps")
        self.irreps_in = self.irreps_out = self.irreps
        # eps=inf zeroed every output; affine="no" read as True
        self.eps = check_real(eps, "eps", minimum=0, open_minimum=True)
        self.affine, self.center_scalars = check_bool(affine, "affine"), check_bool(center_scalars, "center_scalars")
        num_channels = sum(mul for mul, _ in self.irreps)
        num_bias = sum(mul for mul, ir in self.irreps if ir.l == 0 and ir.p == 1)
        if affine:
            self.weight = nn.Parameter(torch.ones(num_channels))
            self.bias = nn.Parameter(torch.zeros(num_bias))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        if self.affine:
            nn.init.ones_(self.weight)
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [..., irreps.dim]`` float -> ``[..., irreps.dim]`` (module docstring equation, per irrep block).

        Raises ``ValueError`` when the last dimension is not ``irreps.dim``.
        """
        if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.shape[-1] != self.irreps.dim:
            raise ValueError(f"x must have shape [..., {self.irreps.dim}] (irreps {self.irreps}), got {tuple(getattr(x, 'shape', ()))}")
        if not x.is_floating_point():
            raise TypeError(f"x must have a floating dtype, got {x.dtype}")
        lead = x.shape[:-1]
        out, start, ch, bi = [], 0, 0, 0
        for mul, ir in self.irreps:
            d = ir.dim
            block = x[..., start:start + mul * d].reshape(*lead, mul, d)
            start += mul * d
            if mul == 0:
                continue
            if ir.l == 0 and self.center_scalars:
                block = block - block.mean(dim=-2, keepdim=True)
            var = block.pow(2).mean(dim=-1).mean(dim=-1, keepdim=True)          # [..., 1]
            block = block * torch.rsqrt(var + self.eps).unsqueeze(-1)
            if self.affine:
                block = block * self.weight[ch:ch + mul].unsqueeze(-1)
                if ir.l == 0 and ir.p == 1:
                    block = block + self.bias[bi:bi + mul].unsqueeze(-1)
                    bi += mul
            ch += mul
            out.append(block.reshape(*lead, mul * d))
        return torch.cat(out, dim=-1) if out else x

    def extra_repr(self) -> str:
        return f"{self.irreps}, eps={self.eps}, affine={self.affine}"


__all__ = ["EquivariantLayerNorm"]
