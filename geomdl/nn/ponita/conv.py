"""Depthwise PONITA convolutions (weights and wiring only; the maths is in the plain functions).

Messages flow ``j -> i`` along ``edge_index = [src; dst]``; aggregation is a sum (``geomdl.ops.scatter``).
"""
from __future__ import annotations

import torch
from torch import nn

from geomdl.ops import scatter


def point_conv(x: torch.Tensor, kernel: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """``y[i, c] = sum_{j in N(i)} k[(j->i), c] x[j, c]``; ``x`` ``[N, C]``, ``kernel`` ``[E, C]`` -> ``[N, C]``."""
    return scatter(kernel * x[edge_index[0]], edge_index[1], dim=0, dim_size=x.shape[0])


def fiber_bundle_conv(x: torch.Tensor, kernel_spatial: torch.Tensor, kernel_fiber: torch.Tensor,
                      edge_index: torch.Tensor) -> torch.Tensor:
    """Separable group convolution on ``R^n x S^{n-1}`` sampled on a grid of ``O`` orientations.

    1. spatial, per orientation and channel: ``h[i, o, c] = sum_j K_s[(j->i), o, c] x[j, o, c]``
    2. over the fiber, per channel:          ``z[i, p, c] = (1/O) sum_o K_f[o, p, c] h[i, o, c]``

    Shapes: ``x`` ``[N, O, C]``, ``kernel_spatial`` ``[E, O, C]``, ``kernel_fiber`` ``[O, O, C]`` -> ``[N, O, C]``.
    """
    n, o, c = x.shape
    h = scatter((kernel_spatial * x[edge_index[0]]).reshape(-1, o * c), edge_index[1], dim=0, dim_size=n).view(n, o, c)
    return torch.bmm(h.permute(2, 0, 1).contiguous(), kernel_fiber.permute(2, 0, 1).contiguous()).permute(1, 2, 0) / o


class PointConv(nn.Module):
    """Depthwise convolution on a point cloud (``R^n`` or ``R^n x S^{n-1}`` with given orientations):
    ``y_i = sum_j (B_ij W) * x_j + b`` with the shared basis ``B`` ``[E, basis_dim]``.

    Args:
        channels: feature width ``C`` (input = output).
        basis_dim: width of the shared kernel basis.
        bias: add a learned bias per channel.
    """

    def __init__(self, channels: int, basis_dim: int, bias: bool = True):
        super().__init__()
        self.kernel = nn.Linear(basis_dim, channels, bias=False)
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
        """``x`` ``[N, C]``, ``edge_index`` ``[2, E]``, ``basis`` ``[E, basis_dim]`` -> ``[N, C]``."""
        y = point_conv(x, self.kernel(basis), edge_index)
        return y if self.bias is None else y + self.bias


class FiberBundleConv(nn.Module):
    """Separable (spatial, then fiber) depthwise convolution of :func:`fiber_bundle_conv` with kernels
    ``K_s = B_s W_s`` and ``K_f = B_f W_f`` from the shared bases ``B_s`` ``[E, O, basis_dim]`` and
    ``B_f`` ``[O, O, basis_dim]``, plus a bias per channel."""

    def __init__(self, channels: int, basis_dim: int, bias: bool = True):
        super().__init__()
        self.kernel_spatial = nn.Linear(basis_dim, channels, bias=False)
        self.kernel_fiber = nn.Linear(basis_dim, channels, bias=False)
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, basis_spatial: torch.Tensor,
                basis_fiber: torch.Tensor) -> torch.Tensor:
        """``x`` ``[N, O, C]`` -> ``[N, O, C]``."""
        y = fiber_bundle_conv(x, self.kernel_spatial(basis_spatial), self.kernel_fiber(basis_fiber), edge_index)
        return y if self.bias is None else y + self.bias
