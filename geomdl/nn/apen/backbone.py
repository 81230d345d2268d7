"""The per-part backbone of APEN: a PointNet averaged over the PCA frames of each part.

For each part P (all parts of all clouds in one batched pass) and each frame (R, t) of P:

    local_i = (p_i - t) R                                     (invariant coordinates)
    h_i     = MLP_1([local_i, x_i]),   g = max_{i in P} h_i   (per part and frame)
    [o_i, v_i] = MLP_2([h_i, g])

and the outputs average over the frames F(P):

    invariant features   f_i = 1/|F| sum_F o_i
    votes (points)       y_i = 1/|F| sum_F (R v_i + t)        (move with the part)

so ``f`` is invariant and ``y`` equivariant under any rigid motion (with reflections when 8 frames
are used) applied to the part, independently of all other parts.
"""
from __future__ import annotations

import torch
from torch import nn

from geomdl.nn.apen.frames import centred_positions, frames_of_centred
from geomdl.nn.message_passing import check_dtypes, check_positions
from geomdl.ops import scatter


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.LayerNorm(b))
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


class FrameAveragedPointNet(nn.Module):
    """Frame-averaged PointNet on every part of a partition.

    Args:
        in_features: invariant input features per point (0 allowed).
        hidden: width of the point MLPs.
        out_features: invariant output features per point.
        reflections: average over 8 frames (E(3)) or 4 proper frames (SE(3)).

    Shapes:
        forward(pos [N, 3], x [N, in_features] or None, part [N] int, num_parts) ->
        (features [N, out_features], votes [N, 3])
    """

    def __init__(self, in_features: int, hidden: int, out_features: int, reflections: bool = True):
        super().__init__()
        if in_features < 0 or hidden < 1 or out_features < 1:
            raise ValueError(f"need in_features >= 0, hidden >= 1, out_features >= 1; got {in_features}, {hidden}, {out_features}")
        self.in_features, self.out_features, self.reflections = in_features, out_features, reflections
        self.mlp1 = _mlp([3 + in_features, hidden, hidden])
        self.mlp2 = _mlp([2 * hidden, hidden, out_features + 3])

    def forward(self, pos: torch.Tensor, x: torch.Tensor | None, part: torch.Tensor, num_parts: int):
        """``pos [N, 3]``, ``x [N, in_features]`` or None, ``part [N]`` int in ``[0, num_parts)`` ->
        ``(features [N, out_features], votes [N, 3])``.

        Per part: PCA frames (:func:`geomdl.nn.apen.frames.pca_frames`), the PointNet in every frame on the
        frame coordinates of ``pos - centroid``, max-pooled per part; features are averaged over the frames,
        votes are rotated back to world coordinates, averaged and shifted by the part centroid.
        Raises ``ValueError`` when ``pos`` is not ``[N, 3]`` or ``x`` is missing (``in_features > 0``) or has the
        wrong shape; ``TypeError`` when ``pos``/``x`` are not of the parameters' floating dtype.
        """
        pos = check_positions(pos, "pos", dim=3)
        if x is None:
            if self.in_features:
                raise ValueError(f"x is required: the backbone expects {self.in_features} input features")
            x = pos.new_zeros((pos.shape[0], 0))
        if x.shape != (pos.shape[0], self.in_features):
            raise ValueError(f"x must have shape [{pos.shape[0]}, {self.in_features}], got {tuple(x.shape)}")
        check_dtypes(self.mlp1[0].weight, pos=pos, x=x)  # else an opaque matmul dtype error inside the MLP
        rel, centroid = centred_positions(pos, part, num_parts)  # [N, 3]: accurate also far from the origin
        rot, _ = frames_of_centred(rel, part, num_parts, self.reflections)  # the PCA frames of pca_frames
        nf = rot.shape[1]
        frames = rot[part]  # [N, F, 3, 3]
        local = torch.einsum("nc,nfcd->nfd", rel, frames)  # [N, F, 3]
        inp = torch.cat([local, x.unsqueeze(1).expand(-1, nf, -1)], dim=-1)
        h = self.mlp1(inp)  # [N, F, H]
        width = h.shape[2]  # explicit sizes: N = 0 (an empty input) must not hit an ambiguous reshape(-1)
        pooled = scatter(h.reshape(h.shape[0], nf * width), part, dim_size=num_parts, reduce="max").reshape(num_parts, nf, width)
        out = self.mlp2(torch.cat([h, pooled[part]], dim=-1))  # [N, F, out + 3]
        features = out[..., : self.out_features].mean(1)
        votes_local = out[..., self.out_features :]
        votes = torch.einsum("nfd,nfcd->nfc", votes_local, frames).mean(1) + centroid[part]
        return features, votes
