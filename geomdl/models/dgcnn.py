"""DGCNN (Wang et al., ACM TOG 2019): dynamic EdgeConv layers on k-NN graphs rebuilt in feature space.

.. math::  h^{1} = \\mathrm{EdgeConv}_{knn([p, x])}([p, x]),\\ h^{t+1} = \\mathrm{EdgeConv}_{knn(h^t)}(h^t),\\quad
           e_i = W[h^1_i, \\dots, h^T_i],\\quad g_b = [\\max_{i \\in b} e_i,\\ \\mathrm{mean}_{i \\in b} e_i]

The first k-NN graph is built on ``[p, x]`` (the coordinates and, when ``in_channels > 0``, the features).
Graph task: ``MLP(g_b)``; node task: ``MLP([e_i, g_{b(i)}])``. Permutation invariant/equivariant;
not rotation or translation invariant. Call forms: :mod:`geomdl.models._points`.
"""
from __future__ import annotations

import torch
from torch import nn

from geomdl import ops
from geomdl.models._points import check_int, check_task, check_widths, dropout_head, point_inputs
from geomdl.nn.edge_conv import DynamicEdgeConv
from geomdl.nn.mlp import MLP


class DGCNN(nn.Module):
    """Args:
        out_channels: classes / targets per cloud (graph) or per point (node).
        in_channels: extra per-point features (default 0); pos_dim: coordinate dimension (default 3).
        k: neighbours per point (default 20).
        conv_channels: output widths of the EdgeConv layers (default (64, 64, 128, 256)).
        emb_channels: width of the point embedding before pooling (default 1024).
        head_channels: hidden widths of the head (default (512, 256)); dropout (default 0.5).
        task: ``"graph"`` (default) or ``"node"`` (segmentation).
        act: activation (default ``"leaky_relu"``, slope 0.2 as in DGCNN).
    """

    def __init__(self, out_channels: int, in_channels: int = 0, pos_dim: int = 3, k: int = 20, conv_channels=(64, 64, 128, 256),
                 emb_channels: int = 1024, head_channels=(512, 256), dropout: float = 0.5, task: str = "graph", act="leaky_relu"):
        super().__init__()
        self.out_channels, self.in_channels = check_int("out_channels", out_channels), check_int("in_channels", in_channels, 0)
        self.pos_dim, self.task, self.k = check_int("pos_dim", pos_dim), check_task(task), check_int("k", k)
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")
        conv_channels = check_widths("conv_channels", conv_channels, False)
        emb_channels = check_int("emb_channels", emb_channels)
        widths = [pos_dim + in_channels, *conv_channels]
        self.convs = nn.ModuleList(DynamicEdgeConv(a, b, k=k, hidden_channels=(), act=act, last_act=True)
                                   for a, b in zip(widths[:-1], widths[1:]))
        self.emb = MLP([sum(conv_channels), emb_channels], act=act, last_act=True)
        head_in = 2 * emb_channels + (emb_channels if task == "node" else 0)
        self.head = dropout_head(head_in, check_widths("head_channels", head_channels), out_channels, act, dropout)

    def forward(self, pos, x: torch.Tensor | None = None, batch: torch.Tensor | None = None) -> torch.Tensor:
        """``pos [N, pos_dim]`` float (or a PyG batch), ``x [N, in_channels]`` or None, ``batch [N]`` sorted cloud
        ids (default one cloud) -> ``[B, out_channels]`` (graph task) or ``[N, out_channels]`` (node task).

        Raises ``ValueError``/``TypeError`` for bad shapes or dtypes, a missing ``x`` when ``in_channels > 0``.
        """
        pos, x, batch, nb = point_inputs(self, pos, x, batch)
        h = pos if x is None else torch.cat([pos, x], dim=1)
        feats = []
        for conv in self.convs:
            h = conv(h, batch)
            feats.append(h)
        e = self.emb(torch.cat(feats, dim=1))
        g = torch.cat([ops.scatter(e, batch, 0, nb, "max"), ops.scatter(e, batch, 0, nb, "mean")], dim=1)
        if self.task == "graph":
            return self.head(g)
        return self.head(torch.cat([e, g.index_select(0, batch)], dim=1))

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}, k={self.k}, task={self.task!r}"
