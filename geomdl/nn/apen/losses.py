"""APEN's vote loss: L_A = sum_l mean_i |Y_l,i - c_gt(i)|_1, with c_gt(i) the centroid of the
ground-truth part of point i (a per-point target, methods.md 4.7)."""
from __future__ import annotations

import torch

from geomdl.ops import scatter


def part_centroid_targets(pos: torch.Tensor, gt_part: torch.Tensor) -> torch.Tensor:
    """``[N, 3]``: for every point, the centroid of its ground-truth part.

    ``pos [N, 3]`` float, ``gt_part [N]`` int64 part ids (unique across the clouds of a batch).
    """
    num = int(gt_part.max()) + 1 if gt_part.numel() else 0
    return scatter(pos, gt_part, dim_size=num, reduce="mean")[gt_part]


def vote_loss(votes: list[torch.Tensor], pos: torch.Tensor, gt_part: torch.Tensor) -> torch.Tensor:
    """Sum over layers of the mean L1 distance between votes and ground-truth part centroids.

    ``L_A = sum_l mean_i |Y_l,i - c_gt(i)|_1`` with ``votes``: list of ``[N, 3]`` (one per layer), ``pos [N, 3]``
    (detached for the targets), ``gt_part [N]`` int64. Returns a scalar tensor; ``ValueError`` for empty ``votes``
    or shapes other than these (misshapen votes would broadcast against the targets).

    ``gt_part`` ids must be unique across the clouds of a batch (``PartData`` offsets them when batched):
    equal ids in two clouds would be averaged into one centroid."""
    if not isinstance(votes, (list, tuple)) or not votes:
        raise ValueError("votes must be a non-empty list of [N, 3] tensors (one per layer)")
    if pos.dim() != 2 or pos.shape[1] != 3:
        raise ValueError(f"pos must have shape [N, 3], got {tuple(pos.shape)}")
    if gt_part.shape != (pos.shape[0],):
        raise ValueError(f"gt_part must have shape [{pos.shape[0]}] (one part id per point), got {tuple(gt_part.shape)}")
    for layer, y in enumerate(votes):  # else [N, 1] or [1, 3] votes broadcast against the [N, 3] targets
        if y.shape != pos.shape:
            raise ValueError(f"votes[{layer}] must have shape [{pos.shape[0]}, 3] like pos, got {tuple(y.shape)}")
    target = part_centroid_targets(pos.detach(), gt_part)
    return sum((y - target).abs().sum(1).mean() for y in votes)
