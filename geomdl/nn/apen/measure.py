"""Measuring piecewise equivariance and partition quality (the quantities of APEN's bound).

* :func:`random_piecewise_motion`: an independent rigid motion (O(3) element incl. reflections, and
  a translation) for every ground-truth part, applied to the points of that part.
* :func:`refinement_violation` (lambda-hat): fraction of clouds whose predicted partition is NOT a
  refinement of the ground truth (one-sided test Z Z^T <= Z_gt Z_gt^T: some predicted part contains
  points of two true parts), plus the fraction of points lying in such impure parts.
* :func:`assignment_uncertainty` (delta-hat): ``1 - prod_i max_j Q_ij`` per cloud (0 iff the soft
  assignment is one-hot), and the mean per-point ``1 - max_j Q_ij``.
* :func:`piecewise_equivariance_error`: ``|phi(g.X) - phi(X)| / |phi(X)|`` for invariant per-point
  logits (and of every layer's features) under random piecewise motions g, averaged over samples;
  with ``partition="gt"`` the model is run on the true partition (must be ~0), with ``"predicted"``
  on its own partitions, with a fixed part-id tensor on that partition (constructed cases).
"""
from __future__ import annotations

import torch

from geomdl.ops import scatter
from geomdl.utils.rotations import random_rotation


def random_piecewise_motion(pos: torch.Tensor, gt_part: torch.Tensor, generator: torch.Generator | None = None,
                            reflections: bool = True, translation_scale: float = 1.0):
    """Move every ground-truth part by its own random rigid motion.

    Args:
        pos: ``[N, 3]`` float points.
        gt_part: ``[N]`` int64 part ids; ``P = gt_part.max() + 1`` motions are drawn.
        generator: CPU generator for the rotations, reflection draws and translations (default: global RNG).
        reflections: when True each part is reflected with probability 1/2 (O(3)); False: SO(3) only.
        translation_scale: standard deviation of the Gaussian translations (default 1.0).

    Returns ``(moved_pos [N, 3], rot [P, 3, 3], trans [P, 3])``; each part rotates about its centroid.
    """
    if pos.dim() != 2 or pos.shape[1] != 3 or not pos.dtype.is_floating_point:
        raise ValueError(f"pos must be a float tensor of shape [N, 3], got {pos.dtype} {tuple(pos.shape)}")
    if gt_part.shape != (pos.shape[0],) or gt_part.dtype.is_floating_point or gt_part.dtype == torch.bool:
        raise ValueError(f"gt_part must be an integer tensor of shape [{pos.shape[0]}] (one part id per point), "
                         f"got {gt_part.dtype} {tuple(gt_part.shape)}")
    num = int(gt_part.max()) + 1 if gt_part.numel() else 0
    rots = torch.stack([
        random_rotation(generator, dtype=pos.dtype, reflection=reflections and bool(torch.rand(1, generator=generator) < 0.5))
        for _ in range(num)
    ]).to(pos.device) if num else pos.new_zeros((0, 3, 3))
    # drawn on the CPU (the generator's device), used on pos's
    trans = torch.randn(num, 3, generator=generator, dtype=torch.float64).to(pos.device, pos.dtype) * translation_scale
    centroid = scatter(pos, gt_part, dim_size=num, reduce="mean")
    rel = pos - centroid[gt_part]
    moved = torch.einsum("nij,nj->ni", rots[gt_part], rel) + centroid[gt_part] + trans[gt_part]
    return moved, rots, trans


def refinement_violation(pred_part: torch.Tensor, gt_part: torch.Tensor, batch: torch.Tensor) -> dict[str, float]:
    """lambda-hat: share of clouds (and of points) where a predicted part mixes true parts.

    ``pred_part [N]``, ``gt_part [N]`` int64 (ids unique across clouds or restarting in every cloud, as
    :class:`~geomdl.nn.apen.APEN` accepts them), ``batch [N]`` cloud ids.
    Returns ``{"lambda_clouds": float, "lambda_points": float}`` (0.0 for empty inputs).
    """
    if gt_part.shape != pred_part.shape or batch.shape != pred_part.shape or pred_part.dim() != 1:
        raise ValueError(f"pred_part, gt_part and batch must share one shape [N], got {tuple(pred_part.shape)}, "
                         f"{tuple(gt_part.shape)} and {tuple(batch.shape)}")
    if pred_part.numel():  # a predicted part is a (cloud, id) pair: equal ids in two clouds are two parts
        pred_part = torch.unique(torch.stack([batch.long(), pred_part.long()]), dim=1, return_inverse=True)[1]
    num_pred = int(pred_part.max()) + 1 if pred_part.numel() else 0
    lo = scatter(gt_part.unsqueeze(1).double(), pred_part, dim_size=num_pred, reduce="min")[:, 0]
    hi = scatter(gt_part.unsqueeze(1).double(), pred_part, dim_size=num_pred, reduce="max")[:, 0]
    impure = lo != hi  # [num_pred]
    point_bad = impure[pred_part]
    nb = int(batch.max()) + 1 if batch.numel() else 0
    cloud_bad = scatter(point_bad.unsqueeze(1).double(), batch, dim_size=nb, reduce="max")[:, 0] > 0
    cloud_bad = cloud_bad[torch.bincount(batch, minlength=nb) > 0]  # the clouds present (ids may have gaps)
    return {"lambda_clouds": float(cloud_bad.double().mean()) if nb else 0.0,
            "lambda_points": float(point_bad.double().mean()) if point_bad.numel() else 0.0}


def assignment_uncertainty(soft: torch.Tensor, batch: torch.Tensor) -> dict[str, float]:
    """delta-hat of a soft assignment ``soft [N, K]`` (rows on the simplex), ``batch [N]`` cloud ids.

    Returns ``{"delta_clouds": mean over clouds of 1 - prod_i max_j Q_ij, "delta_points": mean of 1 - max_j Q_ij}``.
    """
    top = soft.max(1).values.double().clamp_min(1e-300)
    nb = int(batch.max()) + 1 if batch.numel() else 0
    log_prod = scatter(top.log().unsqueeze(1), batch, dim_size=nb)[:, 0]
    log_prod = log_prod[torch.bincount(batch, minlength=nb) > 0]  # the clouds present (ids may have gaps)
    return {"delta_clouds": float((1 - log_prod.exp()).mean()) if nb else 0.0,
            "delta_points": float((1 - top).mean()) if top.numel() else 0.0}


def _relative_change(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((b - a).norm() / a.norm().clamp_min(1e-12))


@torch.no_grad()
def piecewise_equivariance_error(model, pos, batch, gt_part, *, n_samples: int = 4, partition="predicted",
                                 generator: torch.Generator | None = None, reflections: bool = True,
                                 translation_scale: float = 1.0, carry_initial: bool = True, x=None) -> dict:
    """Relative change of the invariant outputs under random independent motions of the true parts.

    Args:
        model: an :class:`~geomdl.nn.apen.APEN` (called as ``model(pos, batch, partition=...)``, with ``x=x``
            when ``x`` is given).
        pos: ``[N, 3]``; batch: ``[N]`` sorted cloud ids; gt_part: ``[N]`` true rigid parts.
        n_samples: random piecewise motions averaged over (>= 1).
        partition: ``"predicted"`` (the model's own partitions, recomputed on every moved input),
            ``"gt"`` (the true parts: must give ~0) or a fixed ``[N]`` part-id tensor that moves with
            the points (e.g. a constructed partition with straddling parts).
        generator: seeds the motions; reflections: draw O(3) (True) or SO(3) elements.
        translation_scale: std of the random translation of every part.
        carry_initial: with ``"predicted"``, keep the first-layer partition ``Z_1`` of the original
            input attached to the points (the paper's definition: the partition moves with ``g``, and
            ``Z_1`` is a refinement of the true parts with probability ``1 - lambda``); False
            recomputes it on every moved input (what happens at test time: FPS cells are globally,
            not piecewise, equivariant, so the cells themselves change).
        x: ``[N, in_features]`` invariant point features for a model built with ``in_features > 0`` (they
            move with their points, unchanged by the motions), or None.

    Returns a dict with ``equivariance_error`` (mean over samples of ``|phi(gX) - phi(X)| / |phi(X)|``
    of the logits), ``equivariance_error_max``, ``equivariance_error_per_layer`` (the same for the
    invariant features of every layer, when the model returns them) and, for predicted or fixed
    partitions, ``lambda_points_per_layer`` / ``lambda_clouds_per_layer`` (lambda-hat of the partition
    each layer used on the original input), ``delta_points_per_layer`` / ``delta_clouds_per_layer``
    (delta-hat: 0 for the deterministic first and fixed partitions) and ``parts_per_layer``.
    """
    fixed = None
    if isinstance(partition, torch.Tensor):
        if partition.shape != gt_part.shape or partition.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"partition must be 'predicted', 'gt' or an int64 tensor of shape {tuple(gt_part.shape)}, "
                             f"got {partition.dtype} {tuple(partition.shape)}")
        fixed = partition
    elif partition == "gt":
        fixed = gt_part
    elif partition != "predicted":
        raise ValueError(f"partition must be 'predicted', 'gt' or a part-id tensor, got {partition!r}")
    if not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be an int >= 1, got {n_samples!r}")
    extra = {} if x is None else {"x": x}  # models without an x argument (x=None) are called as before
    base = model(pos, batch, **extra, partition=fixed)
    ref = base["logits"]
    feats = base.get("features") or []
    errs, layer_errs = [], [[] for _ in feats]
    for _ in range(n_samples):
        moved, _, _ = random_piecewise_motion(pos, gt_part, generator, reflections, translation_scale)
        if fixed is None and carry_initial:
            out = model(moved, batch, **extra, initial_partition=base["partitions"][0])
        else:
            out = model(moved, batch, **extra, partition=fixed)
        errs.append(_relative_change(ref, out["logits"]))
        for k, f in enumerate(out.get("features") or []):
            layer_errs[k].append(_relative_change(feats[k], f))
    result = {"equivariance_error": sum(errs) / len(errs), "equivariance_error_max": max(errs),
              "initial_partition": "carried" if fixed is None and carry_initial else ("fixed" if fixed is not None else "recomputed")}
    if feats:
        result["equivariance_error_per_layer"] = [sum(e) / len(e) for e in layer_errs]
    if not (isinstance(partition, str) and partition == "gt"):
        lam = [refinement_violation(p, gt_part, batch) for p in base["partitions"]]
        result["lambda_points_per_layer"] = [v["lambda_points"] for v in lam]
        result["lambda_clouds_per_layer"] = [v["lambda_clouds"] for v in lam]
        # one entry per layer: layers without a predicted (soft) partition are deterministic (delta 0)
        soft = ([None] + list(base["soft"]) if fixed is None else []) + [None] * len(lam)
        deltas = [assignment_uncertainty(q, batch) if q is not None else {"delta_points": 0.0, "delta_clouds": 0.0}
                  for q in soft[: len(lam)]]
        result["delta_points_per_layer"] = [d["delta_points"] for d in deltas]
        result["delta_clouds_per_layer"] = [d["delta_clouds"] for d in deltas]
        result["parts_per_layer"] = [int(p.max()) + 1 if p.numel() else 0 for p in base["partitions"]]
    return result
