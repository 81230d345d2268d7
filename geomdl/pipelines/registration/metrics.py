"""Registration metrics following the 3DMatch protocol (Zeng et al. 2017; Choi et al. 2015).

* RRE (degrees): the angle of ``R_est^T R_gt``, ``arccos((tr(R_est^T R_gt) - 1) / 2)``, after projecting
  both rotations onto SO(3) (:func:`geomdl.pipelines.metrics.nearest_rotation`) and evaluated as ``atan2(sin, cos)``: gt.log
  rotations are printed with ~7 digits and are not exactly orthonormal (redkitchen 0-6: det 0.99990,
  ``|R^T R - I|_max`` 7e-5), and the plain arccos formula then reports 0.43 / 0.70 / 0.82 deg between the
  ground truth of pairs 4-6 / 0-4 / 0-6 and *itself*. RTE: ``|t_est - t_gt|``.
* Correspondence RMSE with the ``gt.info`` information matrix ``I`` (6x6): with ``E = T_gt^{-1} T_est``,
  ``xi = (t_E, q_E[1:4])`` (translation and the vector part of the unit quaternion of ``R_E``),
  ``rmse = sqrt(xi^T I xi / I[0, 0])``; a pair is registered when ``rmse <= 0.2`` m (registration recall;
  the benchmark's toolbox tests ``rmse^2 <= 0.04``, and counts only non-consecutive pairs ``j - i > 1``, see
  :func:`geomdl.pipelines.registration.evaluate.is_protocol_pair`).
  Without ``gt.info``: the RMS distance between ``T_est p`` and ``T_gt p`` over the source points.
* Inlier ratio: fraction of correspondences ``(s, t)`` with ``|T_gt s - t| < 0.1`` m; feature-match
  recall: fraction of pairs whose inlier ratio exceeds 5 %.
"""
from __future__ import annotations

import math

import torch

from geomdl.ops._validation import check_positive_real
from geomdl.pipelines.metrics import rotation_error_deg as _rotation_error_deg
from geomdl.pipelines.registration.geometry import as_points, check_pose, transform


def rotation_error_deg(pose: torch.Tensor, gt: torch.Tensor) -> float:
    """Relative rotation error (RRE) in degrees between two ``[4, 4]`` poses, both rotations projected onto
    SO(3) first (:func:`geomdl.pipelines.metrics.rotation_error_deg`)."""
    return float(_rotation_error_deg(check_pose(pose, "pose"), check_pose(gt, "gt")))


def translation_error(pose: torch.Tensor, gt: torch.Tensor) -> float:
    """Relative translation error (RTE), ``|t_est - t_gt|`` in the units of the poses."""
    pose, gt = check_pose(pose, "pose"), check_pose(gt, "gt")
    return float((pose[:3, 3] - gt[:3, 3]).norm())


def _quaternion_xyz(rot: torch.Tensor) -> torch.Tensor:
    """Vector part ``(x, y, z)`` of the unit quaternion of ``rot`` with ``w >= 0``."""
    w = math.sqrt(max(0.0, 1.0 + float(rot.trace()))) / 2
    if w > 1e-6:
        return torch.stack([rot[2, 1] - rot[1, 2], rot[0, 2] - rot[2, 0], rot[1, 0] - rot[0, 1]]) / (4 * w)
    # 180-degree rotation: axis from the largest diagonal entry
    i = int(torch.argmax(torch.diagonal(rot)))
    j, k = (i + 1) % 3, (i + 2) % 3
    s = math.sqrt(max(0.0, 1.0 + float(rot[i, i] - rot[j, j] - rot[k, k]))) * 2
    q = torch.zeros(3, dtype=rot.dtype)
    q[i] = s / 4
    q[j] = (rot[j, i] + rot[i, j]) / s
    q[k] = (rot[k, i] + rot[i, k]) / s
    return q


def check_info(info, name: str = "info") -> torch.Tensor:
    """Validate a ``gt.info`` information matrix: float64 ``[6, 6]``, finite, with ``info[0, 0] > 0``."""
    info = torch.as_tensor(info, dtype=torch.float64)
    if info.shape != (6, 6):
        raise ValueError(f"{name} must have shape [6, 6], got {tuple(info.shape)}")
    if not bool(torch.isfinite(info).all()):
        raise ValueError(f"{name} contains NaN or infinite entries")
    if not float(info[0, 0]) > 0:
        raise ValueError(f"{name}[0, 0] must be positive (the number of points behind the information matrix), "
                         f"got {float(info[0, 0])}")
    return info


def correspondence_rmse(pose: torch.Tensor, gt: torch.Tensor, info: torch.Tensor | None = None,
                        source: torch.Tensor | None = None) -> float:
    """3DMatch correspondence RMSE of ``pose`` against ``gt`` (see the module docstring).

    Args:
        pose, gt: ``[4, 4]`` source -> target poses.
        info: ``[6, 6]`` information matrix from ``gt.info`` (preferred): finite, with ``info[0, 0] > 0``.
        source: ``[N, 3]`` source points (N >= 1, finite), used when ``info`` is not given.

    Raises:
        ValueError: a wrong shape, NaN/inf entries, ``info[0, 0] <= 0`` (the normaliser: a zero or NaN matrix gave
            an RMSE of 0, a "registered" pair whatever the pose), or neither ``info`` nor ``source``.
    """
    pose, gt = check_pose(pose, "pose"), check_pose(gt, "gt")
    if info is not None:
        info = check_info(info)
        err = torch.linalg.inv(gt) @ pose
        xi = torch.cat([err[:3, 3], _quaternion_xyz(err[:3, :3])])
        return math.sqrt(max(0.0, float(xi @ info @ xi / info[0, 0])))
    if source is None:
        raise ValueError("correspondence_rmse needs info (gt.info matrix) or source points")
    source = as_points(source, "source")
    return float((transform(source, pose) - transform(source, gt)).pow(2).sum(1).mean().sqrt())


def inlier_ratio(src_points: torch.Tensor, tgt_points: torch.Tensor, gt: torch.Tensor, threshold: float = 0.1) -> float:
    """Fraction of correspondences ``src_points[i] <-> tgt_points[i]`` (``[K, 3]`` each) within ``threshold``
    of each other under the ground-truth pose (``threshold`` > 0, in the units of the points); 0 without
    correspondences."""
    threshold = check_positive_real(threshold, "threshold")
    if src_points.dim() != 2 or src_points.shape[-1] != 3 or src_points.shape != tgt_points.shape:
        raise ValueError(f"src_points and tgt_points must both have shape [K, 3], got {tuple(src_points.shape)} "
                         f"and {tuple(tgt_points.shape)}")
    if src_points.shape[0] == 0:
        return 0.0
    gt = check_pose(gt, "gt")
    dist = (transform(src_points.double(), gt) - tgt_points.double()).norm(dim=1)
    return float((dist < threshold).double().mean())


def feature_match_recall(inlier_ratios, tau2: float = 0.05) -> float:
    """Fraction of pairs whose correspondence inlier ratio exceeds ``tau2`` (default 5 %)."""
    ratios = torch.as_tensor(list(inlier_ratios), dtype=torch.float64)
    return float((ratios > tau2).double().mean()) if ratios.numel() else float("nan")


def registration_metrics(pose, gt, info=None, source=None, rre_max: float = 15.0, rte_max: float = 0.3,
                         rmse_max: float = 0.2) -> dict:
    """RRE, RTE, correspondence RMSE and the success flags for one pair.

    ``recall_ok`` is the 3DMatch criterion (``rmse <= rmse_max``, needs ``info`` or ``source``);
    ``success`` is the common ``RRE < rre_max`` deg and ``RTE < rte_max`` criterion.
    """
    out = {"rre_deg": rotation_error_deg(pose, gt), "rte": translation_error(pose, gt)}
    out["success"] = out["rre_deg"] < rre_max and out["rte"] < rte_max
    if info is not None or source is not None:
        out["rmse"] = correspondence_rmse(pose, gt, info, source)
        out["recall_ok"] = out["rmse"] <= rmse_max
    return out
