"""E(n)-equivariant graph convolution (EGNN, Satorras, Hoogeboom, Welling, ICML 2021).

.. math::
    m_{ij} &= \\phi_e\\big(h_i,\\ h_j,\\ \\|x_i - x_j\\|^2,\\ a_{ij}\\big) \\\\
    x_i' &= x_i + \\frac{1}{|\\mathcal{N}(i)|}\\sum_{j} (x_i - x_j)\\, \\phi_x(m_{ij}) \\\\
    h_i' &= h_i + \\phi_h\\big(h_i,\\ \\textstyle\\sum_j m_{ij}\\big)

Optional: attention ``m_ij <- sigmoid(w . m_ij) m_ij``; ``normalize=True`` uses the unit vector
``(x_i - x_j) / (|x_i - x_j| + 1)`` in the coordinate update (more stable for large graphs);
``tanh=True`` bounds ``phi_x`` to ``[-coords_range, coords_range]``.

Symmetry: E(3) (rotations, reflections, translations) and permutations: ``h`` invariant, ``x``
transforms as positions. Edge attributes ``a_ij`` must be invariant.

Speed: the first Linear of ``phi_e`` is applied per node (``W_i h_i + W_j h_j``), per edge only the
distance and edge-attribute columns are added.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from geomdl import ops
from geomdl.nn.message_passing import (MessagePassing, check_dtypes, check_edge_index, check_features, check_optional_features,
                                       check_positions)
from geomdl.ops._validation import check_bool, check_real
from geomdl.nn.mlp import MLP


class EGNNLayer(MessagePassing):
    """One EGNN layer.

    Args:
        channels: node feature channels ``C`` (input = output; residual update).
        hidden_channels: width of ``phi_e``, ``phi_x``, ``phi_h`` (default ``channels``).
        edge_channels: channels of invariant edge attributes ``a_ij`` (default 0).
        act: activation (default ``"silu"``).
        update_coords: update positions (default True); False gives an E(3)-invariant GNN.
        attention: sigmoid edge gates (default False).
        normalize: unit vectors in the coordinate update (default False).
        tanh: bound ``phi_x`` with ``coords_range * tanh`` (default False).
        coords_range: the bound of ``phi_x`` when ``tanh=True``, a positive finite number (default 15.0).
        coords_agg: ``"mean"`` (default) or ``"sum"`` for the coordinate update.

    Shapes: ``h [N, C]``, ``pos [N, 3]``, ``edge_index [2, E]``, ``edge_attr [E, edge_channels]`` ->
    ``(h' [N, C], pos' [N, 3])``.
    """

    def __init__(self, channels: int, hidden_channels: int | None = None, edge_channels: int = 0, act="silu",
                 update_coords: bool = True, attention: bool = False, normalize: bool = False, tanh: bool = False,
                 coords_range: float = 15.0, coords_agg: str = "mean"):
        super().__init__(aggr="sum")
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be an int >= 1, got {channels!r}")
        hidden = channels if hidden_channels is None else hidden_channels
        for name, value, low in (("hidden_channels", hidden, 1), ("edge_channels", edge_channels, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if coords_agg not in ("mean", "sum"):
            raise ValueError(f"coords_agg must be 'mean' or 'sum', got {coords_agg!r}")
        self.channels, self.hidden_channels, self.edge_channels = channels, hidden, edge_channels
        update_coords, attention, normalize, tanh = (check_bool(v, n) for v, n in ((update_coords, "update_coords"), (attention, "attention"),
                                                                       (normalize, "normalize"), (tanh, "tanh")))
        self.update_coords, self.attention, self.normalize, self.tanh = update_coords, attention, normalize, tanh
        self.coords_range, self.coords_agg = check_real(coords_range, "coords_range", minimum=0, open_minimum=True), coords_agg
        self.phi_e = MLP([2 * channels + 1 + edge_channels, hidden, hidden], act=act, last_act=True)
        self.phi_h = MLP([channels + hidden, hidden, channels], act=act)
        self.att = nn.Linear(hidden, 1) if attention else None
        if update_coords:
            self.phi_x = MLP([hidden, hidden, 1], act=act, bias=True)
            nn.init.xavier_uniform_(self.phi_x[-1].weight, gain=0.001)
        else:
            self.phi_x = None

    def forward(self, h: torch.Tensor, pos: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor | None = None):
        """One layer: ``(h [N, C], pos [N, 3], edge_index [2, E], edge_attr [E, edge_channels] | None)
        -> (h' [N, C], pos' [N, 3])`` (module docstring; ``pos' = pos`` when ``update_coords=False``).

        ``edge_index`` row 0 is the source ``j``, row 1 the target ``i``. ``h``, ``pos`` and ``edge_attr``
        share the parameters' floating dtype.

        Raises:
            TypeError: non-tensor or non-floating inputs, mixed dtypes, integer ``edge_index`` expected.
            ValueError: wrong shapes, ``edge_index`` entries out of range, ``edge_attr`` missing although
                ``edge_channels > 0`` or given although ``edge_channels == 0``.
        """
        check_features(h, "h", None, self.channels)
        n = h.shape[0]
        check_positions(pos, "pos", n)
        edge_index = check_edge_index(edge_index, n, n)
        check_optional_features(edge_attr, "edge_attr", edge_index.shape[1], self.edge_channels, "edge_channels")
        check_dtypes(self.phi_e.first.weight, h=h, pos=pos, edge_attr=edge_attr)
        src, dst = edge_index[0], edge_index[1]
        rel = pos.index_select(0, dst) - pos.index_select(0, src)       # x_i - x_j  [E, 3]
        d2 = rel.pow(2).sum(1, keepdim=True)                             # [E, 1]
        w = self.phi_e.first.weight
        c = self.channels
        a = F.linear(h, w[:, :c], self.phi_e.first.bias)                 # [N, H]  W_i h_i + b
        v = F.linear(h, w[:, c:2 * c])                                   # [N, H]  W_j h_j
        # the distance column w_d times d2 = sum_k rel_k^2, as [E, 3] x [3, H]: a [E, 1] x [1, H] product's
        # backward guards on E == 1, which a compiled graph cannot decide when the graph is built inside it
        pre = a.index_select(0, dst) + v.index_select(0, src) + F.linear(rel * rel, w[:, 2 * c:2 * c + 1].expand(-1, 3))
        if self.edge_channels:
            pre = pre + F.linear(edge_attr, w[:, 2 * c + 1:])
        m = self.phi_e.rest(pre)                                         # [E, H]
        if self.att is not None:
            m = m * torch.sigmoid(self.att(m))
        if self.phi_x is not None:
            coef = self.phi_x(m)                                         # [E, 1]
            if self.tanh:
                coef = self.coords_range * torch.tanh(coef)
            if self.normalize:
                rel = rel / (torch.sqrt(d2 + 1e-12) + 1.0)
            pos = pos + ops.scatter(rel * coef, dst, 0, n, self.coords_agg)
        agg = ops.scatter(m, dst, 0, n, "sum")
        h = h + self.phi_h(torch.cat([h, agg], dim=1))
        return h, pos

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, hidden_channels={self.hidden_channels}, edge_channels={self.edge_channels}, "
                f"update_coords={self.update_coords}, attention={self.attention}, normalize={self.normalize}")
