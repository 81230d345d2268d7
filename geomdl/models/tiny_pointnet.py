"""TinyPointNet: a small PointNet-style network (shared per-point MLP + global pooling + head).

.. math::  h_i = \\mathrm{MLP}([p_i - \\bar p_{b(i)},\\ x_i]), \\qquad
           g_b = \\mathrm{pool}_{i:\\,b(i)=b}\\, h_i, \\qquad y_b = \\mathrm{MLP}_{\\mathrm{head}}(g_b)

Invariant to translations (positions are centred per cloud) and to point permutations; **not**
rotation invariant. It is the engine's reference model (Qi et al., PointNet, CVPR 2017), small
enough to train in seconds on CPU.

Shapes: ``pos [N, 3]``, ``x [N, in_channels]`` (optional), ``batch [N]`` -> ``[B, out_channels]``.
"""
from __future__ import annotations

import torch
from torch import nn

from geomdl.nn.message_passing import check_dtypes, data_num_graphs
from geomdl.nn.point_net import centre_per_cloud
from geomdl.ops import scatter


class TinyPointNet(nn.Module):
    """Args:
        out_channels: outputs per cloud (classes for classification, targets for regression).
        in_channels: per-point input features ``x`` besides the positions (default 0: positions only).
        hidden_channels: width of the per-point MLP and the head (default 64).
        num_layers: number of per-point layers (default 2).
        pool: ``"max"`` or ``"mean"`` (default ``"max"``).
        dropout: dropout before the last head layer (default 0).
    """

    def __init__(self, out_channels: int = 2, in_channels: int = 0, hidden_channels: int = 64, num_layers: int = 2,
                 pool: str = "max", dropout: float = 0.0):
        super().__init__()
        for name, value, low in (("out_channels", out_channels, 1), ("in_channels", in_channels, 0),
                                 ("hidden_channels", hidden_channels, 1), ("num_layers", num_layers, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if pool not in ("max", "mean"):
            raise ValueError(f"pool must be 'max' or 'mean', got {pool!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_channels, self.out_channels, self.pool = in_channels, out_channels, pool
        layers, width = [], 3 + in_channels
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_channels), nn.SiLU()]
            width = hidden_channels
        self.point_mlp = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(hidden_channels, hidden_channels), nn.SiLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden_channels, out_channels))

    def forward(self, data) -> torch.Tensor:
        """``data``: a batch with ``pos [N, 3]``, optional ``x [N, in_channels]`` and ``batch [N]``."""
        pos = data.pos
        if not isinstance(pos, torch.Tensor) or pos.dim() != 2 or pos.shape[1] != 3:
            raise ValueError(f"data.pos must have shape [N, 3], got {getattr(pos, 'shape', pos)}")
        check_dtypes(next(self.parameters()), pos=pos)
        batch = getattr(data, "batch", None)
        if batch is None:
            batch = torch.zeros(pos.shape[0], dtype=torch.long, device=pos.device)
        elif not isinstance(batch, torch.Tensor) or batch.is_floating_point() or batch.is_complex() or batch.dtype == torch.bool \
                or batch.shape != (pos.shape[0],):
            raise TypeError(f"data.batch must be an integer tensor [{pos.shape[0]}], got {getattr(batch, 'dtype', type(batch))} "
                            f"{tuple(getattr(batch, 'shape', ()))}")
        num_graphs = batch.max().item() + 1 if batch.numel() else 0  # .item(), not int(): traceable by torch.export
        if data_num_graphs(data) is not None:  # a PyG Batch whose last clouds are empty: a row each still
            num_graphs = max(num_graphs, data_num_graphs(data))
        _, centred = centre_per_cloud(pos, batch, num_graphs)  # float32-safe far from the origin
        feats = [centred]
        if self.in_channels:
            x = getattr(data, "x", None)
            if x is None or x.dim() != 2 or x.shape != (pos.shape[0], self.in_channels):
                raise ValueError(f"data.x must have shape [{pos.shape[0]}, {self.in_channels}], got {getattr(x, 'shape', None)}")
            feats.append(x.to(pos.dtype))
        h = self.point_mlp(torch.cat(feats, dim=-1))
        return self.head(scatter(h, batch, dim_size=num_graphs, reduce=self.pool))
