"""PointNet++ (Qi et al., NeurIPS 2017), single-scale grouping.

Classification: ``SA(ratio_1, r_1) -> SA(ratio_2, r_2) -> global SA -> MLP head``.
Segmentation (``task="node"``): the same encoder, then feature propagation back through the levels
(``k``-NN interpolation with skip features) and a per-point head.

Permutation invariant/equivariant up to the FPS start point (the first point of each cloud) and
translation invariant (relative positions in the balls; the global level uses positions relative to
each cloud's centroid); not rotation invariant.
Default radii assume clouds normalised to the unit sphere. Call forms: :mod:`geomdl.models._points`.
"""
from __future__ import annotations

import torch
from torch import nn

from geomdl.models._points import check_int, check_task, check_widths, dropout_head, point_inputs
from geomdl.nn.point_net import FeaturePropagation, GlobalSetAbstraction, SetAbstraction


class PointNet2(nn.Module):
    """Args:
        out_channels: classes / targets per cloud (graph) or per point (node).
        in_channels: extra per-point features (default 0); pos_dim: coordinate dimension (default 3).
        ratios, radii: FPS ratio and ball radius of each set-abstraction level (default (0.5, 0.25), (0.2, 0.4)).
        sa_channels: MLP widths of each level, the last entry its output (default ((64, 64, 128), (128, 128, 256))).
        global_channels: widths of the global SA (default (256, 512, 1024)).
        fp_channels: output widths of the feature-propagation levels, coarse to fine (node task; default (256, 128, 128)).
        head_channels: hidden widths of the head (default (512, 256) graph, (128,) node).
        max_num_neighbors: per ball (default 64); dropout (default 0.5); act (default ``"relu"``).
    """

    def __init__(self, out_channels: int, in_channels: int = 0, pos_dim: int = 3, ratios=(0.5, 0.25), radii=(0.2, 0.4),
                 sa_channels=((64, 64, 128), (128, 128, 256)), global_channels=(256, 512, 1024), fp_channels=(256, 128, 128),
                 head_channels=None, max_num_neighbors: int = 64, dropout: float = 0.5, task: str = "graph", act="relu"):
        super().__init__()
        self.out_channels, self.in_channels = check_int("out_channels", out_channels), check_int("in_channels", in_channels, 0)
        self.pos_dim, self.task = check_int("pos_dim", pos_dim), check_task(task)
        if not (len(ratios) == len(radii) == len(sa_channels)) or not ratios:
            raise ValueError(f"ratios, radii and sa_channels need one entry per level, got {len(ratios)}, {len(radii)}, {len(sa_channels)}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")
        self.sa = nn.ModuleList()
        widths = [in_channels]
        for level, (ratio, r, ch) in enumerate(zip(ratios, radii, sa_channels)):
            ch = check_widths(f"sa_channels[{level}]", ch, False)
            self.sa.append(SetAbstraction(widths[-1], ch[-1], ratio, r, ch[:-1], pos_dim, max_num_neighbors, act))
            widths.append(ch[-1])
        gch = check_widths("global_channels", global_channels, False)
        self.global_sa = GlobalSetAbstraction(widths[-1], gch[-1], gch[:-1], pos_dim, act)
        self.fp = nn.ModuleList()
        if task == "node":
            fp_channels = check_widths("fp_channels", fp_channels)
            if len(fp_channels) != len(self.sa) + 1:
                raise ValueError(f"fp_channels needs {len(self.sa) + 1} entries (one per level incl. the global one), got {len(fp_channels)}")
            coarse = gch[-1]
            for level, out in enumerate(fp_channels):
                skip = widths[len(widths) - 1 - level]
                self.fp.append(FeaturePropagation(coarse, skip, out, hidden_channels=(out,), k=1 if level == 0 else 3, act=act))
                coarse = out
            head_in = fp_channels[-1]
            head_channels = (128,) if head_channels is None else head_channels
        else:
            head_in = gch[-1]
            head_channels = (512, 256) if head_channels is None else head_channels
        self.head = dropout_head(head_in, check_widths("head_channels", head_channels), out_channels, act, dropout)

    def forward(self, pos, x: torch.Tensor | None = None, batch: torch.Tensor | None = None) -> torch.Tensor:
        """``pos [N, pos_dim]`` float (or a PyG batch), ``x [N, in_channels]`` or None, ``batch [N]`` sorted cloud
        ids (default one cloud) -> ``[B, out_channels]`` (graph task) or ``[N, out_channels]`` (node task).

        Raises ``ValueError``/``TypeError`` for bad shapes or dtypes, a missing ``x`` when ``in_channels > 0``.
        """
        pos, x, batch, nb = point_inputs(self, pos, x, batch)
        levels = [(x, pos, batch)]
        for sa in self.sa:
            levels.append(sa(*levels[-1]))
        h, p, b = self.global_sa(*levels[-1], num_clouds=nb)
        if self.task == "graph":
            return self.head(h)
        for fp, (xs, ps, bs) in zip(self.fp, reversed(levels)):
            h, p, b = fp(h, p, b, xs, ps, bs)
        return self.head(h)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}, task={self.task!r}"
