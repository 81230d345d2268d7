"""EdgeConv and dynamic EdgeConv (DGCNN, Wang et al., 2019).

.. math::  x_i' = \\max_{j \\in \\mathcal{N}(i)} h_\\Theta\\big([x_i,\\ x_j - x_i]\\big)

``DynamicEdgeConv`` rebuilds the graph in feature space at every call: ``N(i)`` = the ``k`` nearest
neighbours of ``x_i`` among the ``x_j`` of the same cloud (``geomdl.ops.knn_graph``).

Symmetry: permutation equivariant; when ``x`` are coordinates, ``x_j - x_i`` is translation
invariant but ``x_i`` is not, so EdgeConv on raw coordinates is neither translation nor rotation
equivariant (declared group: permutations).

Speed: the first Linear is applied per node, ``W[x_i; x_j - x_i] + b = ((W_1 - W_2) x_i + b) + W_2 x_j``,
so the edges only see the hidden width (one gather per endpoint).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from geomdl import ops
from geomdl.nn.message_passing import MessagePassing, check_batch_vector, check_dtypes, check_edge_index, check_features
from geomdl.ops._validation import check_bool
from geomdl.nn.mlp import MLP
from geomdl.nn.point_net import _hidden


class EdgeConv(MessagePassing):
    """``x_i' = aggr_j MLP([x_i, x_j - x_i])``.

    Args:
        in_channels: channels ``C`` of ``x``.
        out_channels: output channels.
        hidden_channels: hidden widths of ``h`` (default ``(64,)``; ``()`` for a single Linear).
        act: activation (default ``"relu"``); ``last_act``: also after the last Linear (default False).
        aggr: ``"max"`` (default), ``"mean"``, ``"sum"``, ``"min"``.

    Shapes: ``x [N, C]``, ``edge_index [2, E]`` -> ``[N, out_channels]``.
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int | Sequence[int] = (64,), act="relu",
                 last_act: bool = False, aggr: str = "max"):
        super().__init__(aggr=aggr)
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"in_channels must be an int >= 1, got {in_channels!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.mlp = MLP([2 * in_channels, *_hidden(hidden_channels), out_channels], act=act, last_act=last_act)

    def reset_parameters(self) -> None:
        self.mlp.reset_parameters()

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """``x [N, C]`` float, ``edge_index [2, E]`` int (row 0 source ``j``, row 1 target ``i``) -> ``[N, out_channels]``.

        ``x_i' = aggr_{j -> i} MLP([x_i, x_j - x_i])``; a node without incoming edges gets the empty
        reduction of :func:`geomdl.ops.scatter` (0).

        Raises ``TypeError``/``ValueError`` for a wrong shape or dtype of ``x``, or ``edge_index`` entries
        outside ``[0, N)``.
        """
        check_features(x, "x", None, self.in_channels)
        check_dtypes(self.mlp.first.weight, x=x)
        n = x.shape[0]
        edge_index = check_edge_index(edge_index, n, n)
        w, b = self.mlp.first.weight, self.mlp.first.bias
        c = self.in_channels
        w_i, w_j = w[:, :c], w[:, c:]
        a = F.linear(x, w_i - w_j, b)          # [N, H]: (W_1 - W_2) x_i + b
        v = F.linear(x, w_j)                    # [N, H]: W_2 x_j
        return self._propagate_checked(edge_index, n, {"a_i": a, "v_j": v})  # edge_index checked above

    def message(self, a_i: torch.Tensor, v_j: torch.Tensor) -> torch.Tensor:
        """Per edge ``MLP.rest(a_i + v_j)`` with ``a_i = (W_1 - W_2) x_i + b`` and ``v_j = W_2 x_j``, both ``[E, H]``
        (the first Linear applied per node); returns ``[E, out_channels]``."""
        return self.mlp.rest(a_i + v_j)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}, aggr={self.aggr!r}"


class DynamicEdgeConv(EdgeConv):
    """:class:`EdgeConv` on the ``k``-NN graph of ``x`` in feature space, rebuilt at every call.

    Args:
        in_channels, out_channels, hidden_channels, act, last_act, aggr: as :class:`EdgeConv`.
        k: neighbours per point (default 20), found among the same cloud (``batch``).
        loop: include the point itself among its neighbours (DGCNN's original does; default True).

    Shapes: ``x [N, C]``, ``batch [N]`` (sorted, optional) -> ``[N, out_channels]``.
    """

    def __init__(self, in_channels: int, out_channels: int, k: int = 20, hidden_channels=(64,), act="relu",
                 last_act: bool = False, aggr: str = "max", loop: bool = True):
        super().__init__(in_channels, out_channels, hidden_channels, act, last_act, aggr)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an int >= 1, got {k!r}")
        self.k, self.loop = k, check_bool(loop, "loop")

    def forward(self, x: torch.Tensor, batch: torch.Tensor | None = None) -> torch.Tensor:
        """``x [N, C]`` float, ``batch [N]`` int (sorted cloud ids, default one cloud) -> ``[N, out_channels]``.

        The ``k``-NN graph is built on ``x.detach()`` (no gradient flows through the neighbour choice).
        Raises ``TypeError``/``ValueError`` for a bad ``x`` or an unsorted / wrongly sized ``batch``.
        """
        check_features(x, "x", None, self.in_channels)
        check_dtypes(self.mlp.first.weight, x=x)
        batch = check_batch_vector(batch, x.shape[0], x.device)
        edge_index = ops.knn_graph(x.detach(), self.k, batch, loop=self.loop)
        return super().forward(x, edge_index)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", k={self.k}, loop={self.loop}"
