"""PointNet / PointNet++ layers: ``PointNetConv``, ``SetAbstraction``, ``GlobalSetAbstraction``,
``FeaturePropagation`` and the function ``knn_interpolate``.

PointNet convolution (PointNet++'s local PointNet; PyG ``PointNetConv``):

.. math::  x_i' = \\max_{j \\in \\mathcal{N}(i)} h_\\Theta\\big([x_j,\\ p_j - p_i]\\big)

Set abstraction (Qi et al., 2017): centres ``c = fps(p)``, neighbourhoods ``radius(p, p_c, r)``,
``x_c' = PointNetConv``. Feature propagation: inverse-squared-distance ``k``-NN interpolation

.. math::  x_i = \\frac{\\sum_{j \\in \\mathrm{knn}(i)} w_{ij} x_j}{\\sum_j w_{ij}},\\quad w_{ij} = \\|p_j - p_i\\|^{-2}

followed by ``MLP([x_i, skip_i])``.

Symmetry: translation invariant and permutation equivariant; *not* rotation equivariant (the
relative positions enter an MLP). ``SetAbstraction`` is permutation equivariant up to the FPS start
point (the first point of each cloud).

Speed: the feature part of the first Linear of ``h`` is applied to the nodes, not the edges:
``W [x_j; p_j - p_i] + b = (W_x x_j + b) + W_p (p_j - p_i)``; per edge only the ``D`` relative-position
columns are multiplied. The relative positions are formed before the product (not ``W_p p_j - W_p p_i``),
so float32 clouds far from the origin keep full precision (translation invariance to rounding).
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from geomdl import ops
from geomdl.ops._validation import check_bool, check_int, check_positive_real, check_real, num_batches
from geomdl.nn.message_passing import (
    MessagePassing,
    check_batch_vector,
    check_dtypes,
    check_edge_index,
    check_features,
    check_optional_features,
    check_positions,
)
from geomdl.nn.mlp import MLP


def _hidden(hidden, name="hidden_channels") -> list[int]:
    if isinstance(hidden, int):
        hidden = (hidden,)
    if not isinstance(hidden, Sequence) or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden):
        raise ValueError(f"{name} must be an int or a sequence of positive ints, got {hidden!r}")
    return list(hidden)


class PointNetConv(MessagePassing):
    """Local PointNet: ``x_i' = aggr_j MLP([x_j, p_j - p_i])``.

    Args:
        in_channels: channels ``C`` of ``x`` (0: positions only, pass ``x=None``).
        out_channels: output channels.
        hidden_channels: hidden widths of ``h`` (default ``(64,)``).
        pos_dim: dimension ``D`` of positions (default 3).
        act: activation (default ``"relu"``); ``last_act``: also after the last Linear (default False).
        aggr: ``"max"`` (default), ``"mean"``, ``"sum"`` or ``"min"``.

    Shapes: ``x [N, C]`` (or None), ``pos [N, D]``, ``edge_index [2, E]``, optional ``pos_dst [M, D]``
    for bipartite graphs (sources = ``pos``, targets = ``pos_dst``); output ``[M, out_channels]``
    (``M = N`` when ``pos_dst`` is None).
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int | Sequence[int] = (64,), pos_dim: int = 3,
                 act="relu", last_act: bool = False, aggr: str = "max"):
        super().__init__(aggr=aggr)
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 0:
            raise ValueError(f"in_channels must be an int >= 0, got {in_channels!r}")
        if isinstance(pos_dim, bool) or not isinstance(pos_dim, int) or pos_dim < 1:
            raise ValueError(f"pos_dim must be an int >= 1, got {pos_dim!r}")
        self.in_channels, self.out_channels, self.pos_dim = in_channels, out_channels, pos_dim
        self.mlp = MLP([in_channels + pos_dim, *_hidden(hidden_channels), out_channels], act=act, last_act=last_act)

    def reset_parameters(self) -> None:
        self.mlp.reset_parameters()

    def forward(self, x: torch.Tensor | None, pos: torch.Tensor, edge_index: torch.Tensor, pos_dst: torch.Tensor | None = None) -> torch.Tensor:
        """``x [N, C]`` or None, ``pos [N, D]``, ``edge_index [2, E]`` (row 0 source in ``pos``, row 1 target),
        ``pos_dst [M, D]`` or None -> ``[M, out_channels]`` (``M = N`` without ``pos_dst``).

        Raises ``ValueError`` when ``x`` is missing although ``in_channels > 0`` (or given although it is 0),
        for wrong shapes or out-of-range ``edge_index``; ``TypeError`` for mixed dtypes.
        """
        pos = check_positions(pos, "pos", dim=self.pos_dim)
        n = pos.shape[0]
        if self.in_channels:
            if x is None:
                raise ValueError(f"x is required: this layer has in_channels={self.in_channels}")
            check_features(x, "x", n, self.in_channels)
        elif x is not None:
            raise ValueError(f"x must be None for in_channels=0, got shape {tuple(x.shape)}")
        if pos_dst is None:
            pos_dst = pos
        else:
            check_positions(pos_dst, "pos_dst", dim=self.pos_dim)
        check_dtypes(self.mlp.first.weight, pos=pos, x=x, pos_dst=pos_dst)
        edge_index = check_edge_index(edge_index, n, pos_dst.shape[0])
        w, b = self.mlp.first.weight, self.mlp.first.bias
        a = None if x is None else F.linear(x, w[:, :self.in_channels], b)   # [N, H]: W_x x_j + b
        return self._propagate_checked(edge_index, pos_dst.shape[0], {"a_j": a, "pos_j": pos, "pos_i": pos_dst})  # checked above

    def message(self, a_j: torch.Tensor | None, pos_j: torch.Tensor, pos_i: torch.Tensor) -> torch.Tensor:
        first = self.mlp.first
        w_pos = first.weight[:, self.in_channels:]
        if a_j is None:  # positions only: the bias goes with the position columns
            return self.mlp.rest(F.linear(pos_j - pos_i, w_pos, first.bias))
        return self.mlp.rest(a_j + F.linear(pos_j - pos_i, w_pos))   # W_p (p_j - p_i): no cancellation

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}, pos_dim={self.pos_dim}, aggr={self.aggr!r}"


class SetAbstraction(torch.nn.Module):
    """PointNet++ set abstraction: FPS centres, radius neighbourhoods, :class:`PointNetConv`.

    Args:
        in_channels, out_channels, hidden_channels, pos_dim, act: as :class:`PointNetConv`.
        ratio: fraction of points kept per cloud (FPS), in (0, 1].
        r: neighbourhood radius.
        max_num_neighbors: nearest neighbours kept per centre (default 64).

    ``forward(x [N, C] | None, pos [N, D], batch [N] | None) -> (x' [M, out], pos[M, D], batch [M])``.
    """

    def __init__(self, in_channels: int, out_channels: int, ratio: float, r: float, hidden_channels=(64,), pos_dim: int = 3,
                 max_num_neighbors: int = 64, act="relu"):
        super().__init__()
        if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real) or not 0 < ratio <= 1:  # NumPy reals too
            raise ValueError(f"ratio must lie in (0, 1], got {ratio!r}")
        # checked here, not at the first forward (ops.radius): a float count is not truncated, a bad one fails now
        self.ratio, self.r = float(ratio), check_positive_real(r, "r")
        self.max_num_neighbors = check_int(max_num_neighbors, "max_num_neighbors")
        self.conv = PointNetConv(in_channels, out_channels, hidden_channels, pos_dim, act=act, last_act=True)

    def forward(self, x, pos, batch=None):
        """``x [N, C]`` or None, ``pos [N, D]``, ``batch [N]`` sorted (default one cloud) ->
        ``(x' [M, out_channels], pos[idx] [M, D], batch[idx] [M])`` with ``idx = fps(pos, batch, ratio)``."""
        pos = check_positions(pos, "pos", dim=self.conv.pos_dim)
        batch = check_batch_vector(batch, pos.shape[0], pos.device)
        idx = ops.fps(pos.detach(), batch, ratio=self.ratio)
        pos_c, batch_c = pos.index_select(0, idx), batch.index_select(0, idx)
        edge_index = ops.radius(pos.detach(), pos_c.detach(), self.r, batch, batch_c, self.max_num_neighbors)
        return self.conv(x, pos, edge_index, pos_dst=pos_c), pos_c, batch_c

    def extra_repr(self) -> str:
        return f"ratio={self.ratio}, r={self.r}, max_num_neighbors={self.max_num_neighbors}"


class GlobalSetAbstraction(torch.nn.Module):
    """``max`` over each cloud of ``MLP([x, p - c])``: ``(x [N, C], pos, batch) -> (x' [B, out], c [B, D], batch [B])``.

    ``c`` is the centroid of each cloud when ``center=True`` (default; translation invariant), else
    the origin (the original PointNet++ "group all", which sees absolute positions).
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels=(256, 512), pos_dim: int = 3, act="relu",
                 center: bool = True):
        super().__init__()
        check_int(in_channels, "in_channels", 0)
        check_int(pos_dim, "pos_dim", 1)
        self.in_channels, self.pos_dim, self.center = in_channels, pos_dim, check_bool(center, "center")
        self.mlp = MLP([in_channels + pos_dim, *_hidden(hidden_channels), out_channels], act=act, last_act=True)

    def forward(self, x, pos, batch=None, num_clouds: int | None = None):
        """``x [N, C]`` or None, ``pos [N, D]``, ``batch [N]`` sorted (default one cloud) ->
        ``(x' [B, out_channels], c [B, D], arange(B) [B])``: ``x'_b = max_{i in b} MLP([x_i, p_i - c_b])``.
        ``num_clouds``: ``B`` (default the largest id in ``batch`` + 1; larger for trailing empty clouds, whose
        rows are zero; smaller than an id in ``batch`` is an error)."""
        pos = check_positions(pos, "pos", dim=self.pos_dim)
        check_optional_features(x, "x", pos.shape[0], self.in_channels, "in_channels")
        check_dtypes(self.mlp.first.weight, pos=pos, x=x)
        batch = check_batch_vector(batch, pos.shape[0], pos.device)
        if num_clouds is None:
            nb = num_batches(batch)
        else:  # no read of batch (a device sync): a count below an id fails in the scatter's index check
            nb = num_clouds if torch.compiler.is_compiling() else check_int(num_clouds, "num_clouds", 0)
        if self.center:
            c, rel = centre_per_cloud(pos, batch, nb)
        else:
            c, rel = pos.new_zeros((nb, pos.shape[1])), pos
        h = self.mlp(rel if x is None else torch.cat([x, rel], dim=1))
        return ops.scatter(h, batch, 0, nb, "max"), c, torch.arange(nb, device=pos.device)


def centre_per_cloud(pos: torch.Tensor, batch: torch.Tensor, num_clouds: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Centroids ``c [B, D]`` of the clouds and the centred positions ``pos - c[batch]`` ``[N, D]``.

    The mean is taken of ``pos - a`` with ``a`` the (detached) coordinate-wise minimum of each cloud: a
    shift that cancels exactly, so clouds far from the origin in float32 are centred to the precision of
    their extent rather than of their offset (``sum(pos) / n`` loses ``|offset| * eps``)."""
    anchor = ops.scatter(pos.detach(), batch, 0, num_clouds, "min")
    local = pos - anchor.index_select(0, batch)
    mean = ops.scatter(local, batch, 0, num_clouds, "mean")
    return anchor + mean, local - mean.index_select(0, batch)


def knn_interpolate(x: torch.Tensor, pos_src: torch.Tensor, pos_dst: torch.Tensor, batch_src: torch.Tensor | None = None,
                    batch_dst: torch.Tensor | None = None, k: int = 3, eps: float = 1e-16) -> torch.Tensor:
    """Inverse-squared-distance interpolation of ``x [N, C]`` at ``pos_dst [M, D]`` from its ``k``
    nearest sources (module docstring). Returns ``[M, C]``; a target that coincides with a source
    takes (almost exactly) that source's features.

    ``pos_src [N, D]``, ``batch_src [N]`` / ``batch_dst [M]`` sorted cloud ids (default one cloud), ``k``
    (default 3); squared distances are clamped to ``eps > 0`` (default 1e-16) before inversion."""
    pos_src = check_positions(pos_src, "pos_src", dim=None)
    pos_dst = check_positions(pos_dst, "pos_dst", dim=pos_src.shape[1])
    check_features(x, "x", pos_src.shape[0])
    # eps <= 0: a coinciding target gets 1 / 0 weights and a NaN; a 0-d tensor is a number too (as before)
    eps = check_real(eps, "eps", minimum=0, open_minimum=True)
    batch_src = check_batch_vector(batch_src, pos_src.shape[0], pos_src.device)
    batch_dst = check_batch_vector(batch_dst, pos_dst.shape[0], pos_dst.device)
    edge_index = ops.knn(pos_src.detach(), pos_dst.detach(), k, batch_src, batch_dst)
    src, dst = edge_index[0], edge_index[1]
    d2 = (pos_src.index_select(0, src) - pos_dst.index_select(0, dst)).pow(2).sum(1)
    w = 1.0 / d2.clamp(min=eps)
    num = ops.scatter(x.index_select(0, src) * w.unsqueeze(1), dst, 0, pos_dst.shape[0])
    den = ops.scatter(w.unsqueeze(1), dst, 0, pos_dst.shape[0])
    return num / den.clamp(min=eps)


class FeaturePropagation(torch.nn.Module):
    """PointNet++ feature propagation: :func:`knn_interpolate` from the coarse to the fine level, concat
    the fine level's skip features, then ``MLP``.

    ``forward(x [N_c, C], pos [N_c, D], batch [N_c], x_skip [N_f, S] | None, pos_skip [N_f, D], batch_skip [N_f])
    -> (x' [N_f, out], pos_skip, batch_skip)``.
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, hidden_channels=(), k: int = 3, act="relu"):
        super().__init__()
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an int >= 1, got {k!r}")
        check_int(in_channels, "in_channels", 1)
        check_int(skip_channels, "skip_channels", 0)
        self.k, self.in_channels, self.skip_channels = k, in_channels, skip_channels
        self.mlp = MLP([in_channels + skip_channels, *_hidden(list(hidden_channels)), out_channels], act=act, last_act=True)

    def forward(self, x, pos, batch, x_skip, pos_skip, batch_skip):
        """Coarse ``x [N_c, C]``, ``pos [N_c, D]``, ``batch [N_c]``; fine ``x_skip [N_f, S]`` (ignored when
        ``skip_channels=0``), ``pos_skip [N_f, D]``, ``batch_skip [N_f]`` -> ``(x' [N_f, out_channels], pos_skip, batch_skip)``.
        Raises ``ValueError`` when ``x_skip`` is missing or misshapen although ``skip_channels > 0``."""
        check_features(x, "x", None, self.in_channels)
        check_dtypes(self.mlp.first.weight, x=x, pos=pos, pos_skip=pos_skip, x_skip=x_skip if self.skip_channels else None)
        h = knn_interpolate(x, pos, pos_skip, batch, batch_skip, k=self.k)
        if self.skip_channels:
            if x_skip is None:
                raise ValueError(f"x_skip is required: this layer has skip_channels={self.skip_channels}")
            check_features(x_skip, "x_skip", pos_skip.shape[0], self.skip_channels)
            h = torch.cat([h, x_skip], dim=1)
        batch_skip = check_batch_vector(batch_skip, pos_skip.shape[0], pos_skip.device)
        return self.mlp(h), pos_skip, batch_skip

    def extra_repr(self) -> str:
        return f"k={self.k}"
