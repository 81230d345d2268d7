"""Measuring piecewise equivariance and partition quality (the quantities of APEN's bound).

* :func:`random_piecewise_motion`: an independent rigid motion (O(3) element incl. reflections, and
  a translation) for every ground-truth part, applied to the points of that part.
* :func:`refinement_violation` (lambda-hat): fraction of clouds whose predicted partition is NOT a
  refinement of the ground truth (one-sided test Z Z^T <= Z_gt Z_gt^T: some predicted part contains
  points of two true parts), plus the fraction of points lying in such impure parts.
* :func:`assignment_uncertainty` (delta-hat): ``1 - prod_i max_j Q_ij`` per cloud (0 iff the soft
  assignment is one-hot), and the mean per-point ``1 - max_j Q_ij``.
* :func:`piecewise_equivariance_error`: ``|phi(g.X) - phi(X)| / |phi(X)|`` for invariant per-point
  logits under random piecewise motions g, averaged over samples; with ``partition="gt"`` the model is
  run on the true partition (must be ~0), with ``"predicted"`` on its own partitions.
"""
from __future__ import annotations

import torch

from geomdl.ops import scatter
from geomdl.testing.equivariance import random_rotation


def random_piecewise_motion(pos: torch.Tensor, gt_part: torch.Tensor, generator: torch.Generator | None = None,
                            reflections: bool = True, translation_scale: float = 1.0):
    """Move every ground-truth part by its own random rigid motion.

    Returns ``(moved_pos [N, 3], rot [P, 3, 3], trans [P, 3])``; each part rotates about its centroid.
    """
    num = int(gt_part.max()) + 1 if gt_part.numel() else 0
    rots = torch.stack([
        random_rotation(generator, dtype=pos.dtype, reflection=reflections and bool(torch.rand(1, generator=generator) < 0.5))
        for _ in range(num)
    ]) if num else pos.new_zeros((0, 3, 3))
    trans = torch.randn(num, 3, generator=generator, dtype=torch.float64).to(pos.dtype) * translation_scale
    centroid = scatter(pos, gt_part, dim_size=num, reduce="mean")
    rel = pos - centroid[gt_part]
    moved = torch.einsum("nij,nj->ni", rots[gt_part], rel) + centroid[gt_part] + trans[gt_part]
    return moved, rots, trans


def refinement_violation(pred_part: torch.Tensor, gt_part: torch.Tensor, batch: torch.Tensor) -> dict[str, float]:
    """lambda-hat: share of clouds (and of points) where a predicted part mixes true parts."""
    num_pred = int(pred_part.max()) + 1 if pred_part.numel() else 0
    lo = scatter(gt_part.unsqueeze(1).double(), pred_part, dim_size=num_pred, reduce="min")[:, 0]
    hi = scatter(gt_part.unsqueeze(1).double(), pred_part, dim_size=num_pred, reduce="max")[:, 0]
    impure = lo != hi  # [num_pred]
    point_bad = impure[pred_part]
    nb = int(batch.max()) + 1 if batch.numel() else 0
    cloud_bad = scatter(point_bad.unsqueeze(1).double(), batch, dim_size=nb, reduce="max")[:, 0] > 0
    return {"lambda_clouds": float(cloud_bad.double().mean()) if nb else 0.0,
            "lambda_points": float(point_bad.double().mean()) if point_bad.numel() else 0.0}


def assignment_uncertainty(soft: torch.Tensor, batch: torch.Tensor) -> dict[str, float]:
    """delta-hat of a soft assignment ``[N, K]`` (rows on the simplex)."""
    top = soft.max(1).values.double().clamp_min(1e-300)
    nb = int(batch.max()) + 1 if batch.numel() else 0
    log_prod = scatter(top.log().unsqueeze(1), batch, dim_size=nb)[:, 0]
    return {"delta_clouds": float((1 - log_prod.exp()).mean()) if nb else 0.0,
            "delta_points": float((1 - top).mean()) if top.numel() else 0.0}


@torch.no_grad()
def piecewise_equivariance_error(model, pos, batch, gt_part, *, n_samples: int = 4, partition: str = "predicted",
                                 generator: torch.Generator | None = None, reflections: bool = True) -> dict[str, float]:
    """Relative change of the invariant logits under random independent motions of the true parts.

    Also returns lambda-hat and delta-hat of the model's predicted partitions on the original input.
    """
    if partition not in ("predicted", "gt"):
        raise ValueError(f"partition must be 'predicted' or 'gt', got {partition!r}")
    fixed = gt_part if partition == "gt" else None
    base = model(pos, batch, partition=fixed)
    ref = base["logits"]
    errs = []
    for _ in range(n_samples):
        moved, _, _ = random_piecewise_motion(pos, gt_part, generator, reflections)
        out = model(moved, batch, partition=fixed)["logits"]
        errs.append(float((out - ref).norm() / ref.norm().clamp_min(1e-12)))
    result = {"equivariance_error": sum(errs) / len(errs), "equivariance_error_max": max(errs)}
    if partition == "predicted":
        lam = [refinement_violation(p, gt_part, batch) for p in base["partitions"]]
        result["lambda_points_per_layer"] = [v["lambda_points"] for v in lam]
        result["lambda_clouds_per_layer"] = [v["lambda_clouds"] for v in lam]
        result["delta_points_per_layer"] = [assignment_uncertainty(q, batch)["delta_points"] for q in base["soft"]]
        result["parts_per_layer"] = [int(p.max()) + 1 for p in base["partitions"]]
    return result
