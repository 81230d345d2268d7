"""PointNet (Qi et al., CVPR 2017) without the input/feature transform networks.

.. math::  h_i = \\mathrm{MLP}_1([p_i, x_i]),\\quad g_b = \\max_{i \\in b} \\mathrm{MLP}_2(h_i),\\quad
           y_b = \\mathrm{MLP}_{head}(g_b)\\ \\ (\\text{graph}),\\quad y_i = \\mathrm{MLP}_{seg}([h_i, g_{b(i)}])\\ \\ (\\text{node})

Permutation invariant (graph task) / equivariant (node task); not rotation or translation
invariant (it sees raw coordinates; centre/align the inputs, or feed TinvNN's invariant embedding
as ``pos``). Call forms and shapes: see :mod:`geomdl.models._points`.
"""
from __future__ import annotations

import torch
from torch import nn

from geomdl import ops
from geomdl.models._points import check_int, check_task, check_widths, point_inputs
from geomdl.nn.mlp import MLP, activation


class PointNet(nn.Module):
    """Args:
        out_channels: classes / targets per cloud (graph task) or per point (node task).
        in_channels: extra per-point features ``x`` (default 0).
        pos_dim: coordinate dimension (default 3).
        local_channels: widths of the per-point MLP before the local features are taken (default (64, 64)).
        global_channels: widths after it, ending in the global feature size (default (128, 1024)).
        head_channels: hidden widths of the head (default (512, 256)).
        dropout: dropout in the head (default 0.3).
        task: ``"graph"`` (default) or ``"node"`` (segmentation).
        act: activation (default ``"relu"``).
    """

    def __init__(self, out_channels: int, in_channels: int = 0, pos_dim: int = 3, local_channels=(64, 64),
                 global_channels=(128, 1024), head_channels=(512, 256), dropout: float = 0.3, task: str = "graph", act="relu"):
        super().__init__()
        self.out_channels, self.in_channels = check_int("out_channels", out_channels), check_int("in_channels", in_channels, 0)
        self.pos_dim, self.task = check_int("pos_dim", pos_dim), check_task(task)
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")
        local_channels, global_channels = check_widths("local_channels", local_channels, False), check_widths("global_channels", global_channels, False)
        head_channels = check_widths("head_channels", head_channels)
        self.local = MLP([pos_dim + in_channels, *local_channels], act=act, last_act=True)
        self.glob = MLP([local_channels[-1], *global_channels], act=act, last_act=True)
        head_in = global_channels[-1] + (local_channels[-1] if task == "node" else 0)
        layers: list[nn.Module] = []
        for a, b in zip([head_in, *head_channels[:-1]], head_channels):
            layers += [nn.Linear(a, b), activation(act), nn.Dropout(dropout)]
        layers.append(nn.Linear(head_channels[-1] if head_channels else head_in, out_channels))
        self.head = nn.Sequential(*layers)

    def forward(self, pos, x: torch.Tensor | None = None, batch: torch.Tensor | None = None) -> torch.Tensor:
        """``pos [N, pos_dim]`` float (or a PyG batch), ``x [N, in_channels]`` or None, ``batch [N]`` sorted cloud
        ids (default one cloud) -> ``[B, out_channels]`` (graph task) or ``[N, out_channels]`` (node task).

        Raises ``ValueError``/``TypeError`` for bad shapes or dtypes, a missing ``x`` when ``in_channels > 0``.
        """
        pos, x, batch, nb = point_inputs(self, pos, x, batch)
        h = self.local(pos if x is None else torch.cat([pos, x], dim=1))
        g = ops.scatter(self.glob(h), batch, 0, nb, "max")
        if self.task == "graph":
            return self.head(g)
        return self.head(torch.cat([h, g.index_select(0, batch)], dim=1))

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}, task={self.task!r}"
