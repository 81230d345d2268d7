"""Metrics as plain functions, shared by every pipeline.

Two forms are provided for each metric: a direct one on whole tensors (``accuracy(pred, target)``)
and a *sufficient-statistics* one (``confusion_matrix`` / ``error_sums`` + ``*_from_*``) whose
statistics are sums, so they can be accumulated over batches and all-reduced over DDP ranks and
still give the exact metric of the whole split.

Shapes: ``C`` classes, ``N`` samples (graphs, points, atoms or pairs), ``...`` any trailing dims.
"""
from __future__ import annotations

import math

import torch


def _check_labels(pred: torch.Tensor, target: torch.Tensor, num_classes: int | None = None):
    if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError("pred and target must be tensors")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    if pred.dtype.is_floating_point or target.dtype.is_floating_point:
        raise TypeError(f"pred and target must be integer class labels, got {pred.dtype} and {target.dtype}")
    if num_classes is not None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        for name, t in (("pred", pred), ("target", target)):
            if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_classes):
                raise ValueError(f"{name} labels must lie in [0, {num_classes}), got range [{int(t.min())}, {int(t.max())}]")


# ---- classification / segmentation ------------------------------------------------------------


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None) -> torch.Tensor:
    """Counts ``M[t, p]`` of samples with true class ``t`` predicted as ``p``.

    Args:
        pred, target: integer labels ``[N]`` (any shape, flattened), values in ``[0, C)``.
        num_classes: ``C``.
        ignore_index: target value to skip (e.g. unlabelled points), or None.

    Returns:
        ``[C, C]`` int64 tensor (rows: true class, columns: predicted class).
    """
    pred, target = pred.reshape(-1), target.reshape(-1)
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    _check_labels(pred, target, num_classes)
    flat = target.long() * num_classes + pred.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def accuracy_from_confusion(conf: torch.Tensor) -> float:
    """Overall accuracy :math:`\\sum_c M_{cc} / \\sum M` (nan for an empty matrix)."""
    total = float(conf.sum())
    return float(conf.diagonal().sum()) / total if total else math.nan


def class_mean_accuracy_from_confusion(conf: torch.Tensor) -> float:
    """Mean over classes present in the targets of the per-class recall :math:`M_{cc} / \\sum_p M_{cp}`."""
    support = conf.sum(dim=1).double()
    present = support > 0
    if not present.any():
        return math.nan
    return float((conf.diagonal().double()[present] / support[present]).mean())


def iou_from_confusion(conf: torch.Tensor) -> torch.Tensor:
    """Per-class IoU :math:`M_{cc} / (\\sum_p M_{cp} + \\sum_t M_{tc} - M_{cc})`, ``[C]`` float64,
    nan for a class absent from both targets and predictions."""
    conf = conf.double()
    inter = conf.diagonal()
    union = conf.sum(0) + conf.sum(1) - inter
    return torch.where(union > 0, inter / union.clamp_min(1), torch.full_like(inter, math.nan))


def miou_from_confusion(conf: torch.Tensor) -> float:
    """Mean IoU over the classes that appear (in targets or predictions)."""
    iou = iou_from_confusion(conf)
    valid = ~torch.isnan(iou)
    return float(iou[valid].mean()) if valid.any() else math.nan


def accuracy(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of ``pred == target`` (integer labels, same shape)."""
    _check_labels(pred, target)
    return float((pred == target).double().mean()) if target.numel() else math.nan


def class_mean_accuracy(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> float:
    """Per-class accuracy averaged over the classes present in ``target``."""
    return class_mean_accuracy_from_confusion(confusion_matrix(pred, target, num_classes))


def mean_iou(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None) -> tuple[float, torch.Tensor]:
    """``(mIoU, per-class IoU [C])`` of integer labels (segmentation)."""
    conf = confusion_matrix(pred, target, num_classes, ignore_index)
    return miou_from_confusion(conf), iou_from_confusion(conf)


# ---- regression: energies and forces ----------------------------------------------------------


def _check_pair(pred, target):
    if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError("pred and target must be tensors")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")


def mae(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean absolute error over all elements :math:`\\frac1n\\sum|p-t|` (forces: per component)."""
    _check_pair(pred, target)
    return float((pred.double() - target.double()).abs().mean())


def rmse(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Root mean squared error over all elements :math:`\\sqrt{\\frac1n\\sum(p-t)^2}`."""
    _check_pair(pred, target)
    return float((pred.double() - target.double()).pow(2).mean().sqrt())


def error_sums(pred: torch.Tensor, target: torch.Tensor, name: str = "") -> dict:
    """Summable statistics ``{name/abs_sum, name/sq_sum, name/count}`` (float64 scalars on the device of
    ``pred``) of ``pred - target`` over all elements; feed them (summed) to :func:`mae_rmse_from_sums`."""
    _check_pair(pred, target)
    err = pred.detach().double() - target.detach().double()
    p = f"{name}/" if name else ""
    return {f"{p}abs_sum": err.abs().sum(), f"{p}sq_sum": err.pow(2).sum(),
            f"{p}count": torch.tensor(float(err.numel()), dtype=torch.float64, device=err.device)}


def mae_rmse_from_sums(stats: dict, name: str = "") -> dict:
    """``{name_mae, name_rmse}`` (or ``{mae, rmse}``) from summed :func:`error_sums` statistics."""
    p = f"{name}/" if name else ""
    count = float(stats[f"{p}count"])
    out = f"{name}_" if name else ""
    if count == 0:
        return {f"{out}mae": math.nan, f"{out}rmse": math.nan}
    return {f"{out}mae": float(stats[f"{p}abs_sum"]) / count, f"{out}rmse": math.sqrt(float(stats[f"{p}sq_sum"]) / count)}


# ---- registration ------------------------------------------------------------------------------


def nearest_rotation(matrix: torch.Tensor) -> torch.Tensor:
    """The rotations closest to ``matrix [..., 3, 3]`` in Frobenius norm (float64): ``U diag(1, 1, det(U V^T)) V^T``
    from the SVD ``U S V^T`` (orthogonal Procrustes). Exact rotations come back unchanged (to rounding)."""
    u, _, vh = torch.linalg.svd(matrix.double())
    u = u.clone()
    u[..., :, 2] *= torch.sign(torch.det(u @ vh))[..., None]
    return u @ vh


def rotation_error_deg(rot_pred: torch.Tensor, rot_true: torch.Tensor) -> torch.Tensor:
    """Relative rotation error (RRE) in degrees: with ``R = P(R_p)^T P(R_t)`` (``P`` = :func:`nearest_rotation`),
    ``atan2(|vee(R - R^T)| / 2, (tr R - 1) / 2)``.

    The projection matters for ground truths printed with few digits (3DMatch gt.log rotations are not
    exactly orthonormal: the plain ``arccos`` formula gives 0.4-0.8 deg between such a pose and itself);
    ``atan2`` stays accurate for small angles, where ``arccos`` loses half the digits.

    Args:
        rot_pred, rot_true: ``[..., 3, 3]`` rotation matrices (or ``[..., 4, 4]`` poses).

    Returns:
        ``[...]`` angles in ``[0, 180]`` degrees (float64); NaN where either matrix has a NaN or infinite entry
        (a failed estimate: it fails every recall threshold instead of stopping the SVD of the whole batch).
    """
    rot_pred, rot_true = _rotations(rot_pred, "rot_pred"), _rotations(rot_true, "rot_true")
    if rot_pred.shape != rot_true.shape:
        raise ValueError(f"rot_pred and rot_true must have the same shape, got {tuple(rot_pred.shape)} and {tuple(rot_true.shape)}")
    finite = (torch.isfinite(rot_pred) & torch.isfinite(rot_true)).flatten(-2).all(-1)
    eye = torch.eye(3, dtype=torch.float64, device=rot_pred.device)
    rot_pred, rot_true = (torch.where(finite[..., None, None], r.double(), eye) for r in (rot_pred, rot_true))
    rel = nearest_rotation(rot_pred).transpose(-1, -2) @ nearest_rotation(rot_true)
    skew = rel - rel.transpose(-1, -2)
    sin = torch.stack([skew[..., 2, 1], skew[..., 0, 2], skew[..., 1, 0]], -1).norm(dim=-1) / 2
    cos = (rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    return torch.where(finite, torch.rad2deg(torch.atan2(sin, cos)), math.nan)


def translation_error(t_pred: torch.Tensor, t_true: torch.Tensor) -> torch.Tensor:
    """Relative translation error (RTE) :math:`\\|t_p - t_t\\|` in the data's units.

    Args:
        t_pred, t_true: ``[..., 3]`` translations (or ``[..., 4, 4]`` poses).
    """
    t_pred, t_true = _translations(t_pred, "t_pred"), _translations(t_true, "t_true")
    if t_pred.shape != t_true.shape:
        raise ValueError(f"t_pred and t_true must have the same shape, got {tuple(t_pred.shape)} and {tuple(t_true.shape)}")
    return (t_pred.double() - t_true.double()).norm(dim=-1)


def registration_recall(rre_deg: torch.Tensor, rte: torch.Tensor, max_rre_deg: float = 15.0, max_rte: float = 0.3) -> float:
    """Fraction of pairs with ``RRE < max_rre_deg`` and ``RTE < max_rte`` (3DMatch: 15 deg, 30 cm)."""
    if rre_deg.shape != rte.shape:
        raise ValueError(f"rre_deg and rte must have the same shape, got {tuple(rre_deg.shape)} and {tuple(rte.shape)}")
    if rre_deg.numel() == 0:
        return math.nan
    return float(((rre_deg < max_rre_deg) & (rte < max_rte)).double().mean())


def registration_metrics(pose_pred: torch.Tensor, pose_true: torch.Tensor,
                         thresholds: tuple[tuple[float, float], ...] = ((5.0, 0.1), (15.0, 0.3))) -> dict:
    """RRE/RTE statistics and recall at ``(max_rre_deg, max_rte)`` thresholds for ``[N, 4, 4]`` poses (medians
    of an even count are the mean of the two middle values, as ``statistics.median``)."""
    rre, rte = rotation_error_deg(pose_pred, pose_true), translation_error(pose_pred, pose_true)
    out = {"rre_mean_deg": float(rre.mean()), "rre_median_deg": _median(rre),
           "rte_mean": float(rte.mean()), "rte_median": _median(rte)}
    for max_rre, max_rte in thresholds:
        out[f"recall@{max_rre:g}deg,{max_rte:g}"] = registration_recall(rre, rte, max_rre, max_rte)
    return out


def _median(x: torch.Tensor) -> float:
    """The median of all entries of ``x`` (``torch.median`` gives the lower of the two middle values); nan when empty."""
    return float(x.double().flatten().quantile(0.5)) if x.numel() else math.nan


def _rotations(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a tensor")
    if x.shape[-2:] == (4, 4):
        return x[..., :3, :3]
    if x.shape[-2:] != (3, 3):
        raise ValueError(f"{name} must have shape [..., 3, 3] or [..., 4, 4], got {tuple(x.shape)}")
    return x


def _translations(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a tensor")
    if x.dim() >= 2 and x.shape[-2:] == (4, 4):
        return x[..., :3, 3]
    if x.shape[-1:] != (3,):
        raise ValueError(f"{name} must have shape [..., 3] or [..., 4, 4], got {tuple(x.shape)}")
    return x
