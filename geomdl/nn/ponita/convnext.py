"""ConvNeXt-style block around a depthwise PONITA convolution."""
from __future__ import annotations

import torch
from torch import nn


class ConvNextBlock(nn.Module):
    """``y = x + gamma * W_2 GELU(W_1 LayerNorm(conv(x)))`` with ``W_1: C -> wC``, ``W_2: wC -> C``.

    LayerNorm acts over channels (per node and orientation). ``gamma`` is a layer-scale vector
    initialised to ``layer_scale`` (``None`` or 0: no layer scale).

    Args:
        conv: a :class:`~geomdl.nn.ponita.conv.PointConv` or :class:`~geomdl.nn.ponita.conv.FiberBundleConv`.
        channels: ``C``.
        widening: ``w`` (default 4).
        layer_scale: initial value of ``gamma`` (default ``None``).
    """

    def __init__(self, conv: nn.Module, channels: int, widening: int = 4, layer_scale: float | None = None):
        super().__init__()
        self.conv = conv
        self.norm = nn.LayerNorm(channels)
        self.lin1 = nn.Linear(channels, widening * channels)
        self.lin2 = nn.Linear(widening * channels, channels)
        self.act = nn.GELU()
        self.gamma = nn.Parameter(torch.full((channels,), float(layer_scale))) if layer_scale else None

    def forward(self, x: torch.Tensor, *conv_args) -> torch.Tensor:
        """``x`` ``[N, C]`` or ``[N, O, C]``; ``conv_args`` are passed to the convolution."""
        y = self.lin2(self.act(self.lin1(self.norm(self.conv(x, *conv_args)))))
        if self.gamma is not None:
            y = self.gamma * y
        return x + y
