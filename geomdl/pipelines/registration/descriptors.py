"""Rotation-invariant local descriptors: Open3D FPFH (baseline) and geomdl's PPF histogram.

Both are invariant to proper and improper rotations and translations of the cloud (they are built
from distances and angles between points and normals only).
"""
from __future__ import annotations

import torch

from geomdl.pipelines.registration.neighbors import knn_search


def orient_normals(points: torch.Tensor, normals: torch.Tensor, nbr: torch.Tensor) -> torch.Tensor:
    """Flip each normal to point towards the centroid of its neighbourhood (its concave side).

    ``s_i = sign(n_i · (mean_j p_j - p_i))``; this choice is equivariant under E(3) (unlike "towards the
    sensor"), and where it is ill-defined (flat patches) the features using it vanish anyway.

    Args:
        points: ``[N, 3]``; normals: ``[N, 3]``; nbr: ``[N, K]`` neighbour indices (``-1`` = missing).
    """
    valid = nbr >= 0
    nb = points[nbr.clamp_min(0)]
    w = valid.to(points.dtype)[..., None]
    centroid = (nb * w).sum(1) / w.sum(1).clamp_min(1)
    side = ((centroid - points) * normals).sum(1)
    sign = torch.where(side < 0, -1.0, 1.0).to(points.dtype)
    return normals * sign[:, None]


def _soft_bins(value: torch.Tensor, lo: float, hi: float, bins: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Linear (tent) binning of ``value`` into ``bins`` bins spanning ``[lo, hi]``: returns the two
    bin indices and the weight of the upper one."""
    pos = ((value - lo) / (hi - lo) * bins - 0.5).clamp(0, bins - 1)
    low = pos.floor().clamp(max=bins - 2) if bins > 1 else torch.zeros_like(pos)
    frac = pos - low
    return low.long(), (low + 1).clamp(max=bins - 1).long(), frac


def ppf_histogram(points: torch.Tensor, normals: torch.Tensor, keypoints: torch.Tensor, radius: float,
                  max_neighbors: int = 64, bins: tuple[int, int, int] = (3, 5, 5),
                  oriented: bool = False) -> torch.Tensor:
    """geomdl's rotation-invariant local descriptor: a soft 3-D histogram of point-pair features.

    For a keypoint ``i`` with oriented normal ``n_i`` and each neighbour ``j`` within ``radius``
    (``d_ij = p_j - p_i``), the invariants are

    * ``rho = |d_ij - (n_i · d_ij) n_i| / radius``  (in-plane distance, in [0, 1])
    * ``h = (n_i · d_ij) / radius``                    (signed height over the tangent plane)
    * ``c = n_i · n_j``                                (normal agreement)

    accumulated with trilinear (tent) weights into ``bins = (B_rho, B_h, B_c)`` bins, then normalised
    with the Hellinger map ``sqrt(hist) / |sqrt(hist)|``. Normals are oriented with
    :func:`orient_normals`, so the features are invariant to E(3) (incl. reflections) and to the
    order of the points.

    Args:
        points: ``[N, 3]`` cloud (already downsampled); normals: ``[N, 3]`` unit normals.
        keypoints: ``[M]`` int64 indices of the points that get a descriptor.
        radius: support radius (e.g. 5 voxels).
        max_neighbors: neighbours used per keypoint (the nearest ones within ``radius``).
        oriented: ``normals`` are already oriented by :func:`orient_normals` (skips that step).

    Returns:
        ``[M, B_rho * B_h * B_c]`` descriptors (dtype of ``points``) with unit L2 norm.
    """
    if keypoints.numel() == 0:
        return points.new_zeros((0, bins[0] * bins[1] * bins[2]))
    if not oriented:
        normals = orient_normals(points, normals, knn_search(points, points, 16)[0])
    nbr, _ = knn_search(points, points[keypoints], max_neighbors + 1, radius=radius)
    nbr = nbr[:, 1:]  # drop the keypoint itself (its own nearest neighbour)
    valid = (nbr >= 0).to(points.dtype)
    j = nbr.clamp_min(0)
    p_i = points[keypoints][:, None]
    n_i = normals[keypoints][:, None]
    d = points[j] - p_i
    height = (d * n_i).sum(-1)
    rho = (d - height[..., None] * n_i).norm(dim=-1) / radius
    h = height / radius
    c = (normals[j] * n_i).sum(-1)
    b_rho, b_h, b_c = bins
    (r0, r1, fr), (h0, h1, fh), (c0, c1, fc) = (
        _soft_bins(rho, 0.0, 1.0, b_rho), _soft_bins(h, -0.5, 0.5, b_h), _soft_bins(c, -1.0, 1.0, b_c))
    m = keypoints.numel()
    hist = points.new_zeros((m, b_rho * b_h * b_c))
    for ri, wr in ((r0, 1 - fr), (r1, fr)):
        for hi, wh in ((h0, 1 - fh), (h1, fh)):
            for ci, wc in ((c0, 1 - fc), (c1, fc)):
                hist.scatter_add_(1, (ri * b_h + hi) * b_c + ci, wr * wh * wc * valid)
    hist = hist.sqrt()
    return hist / hist.norm(dim=1, keepdim=True).clamp_min(1e-12)


def fpfh_open3d(points: torch.Tensor, normals: torch.Tensor, radius: float, max_neighbors: int = 100) -> torch.Tensor:
    """Open3D's Fast Point Feature Histograms (Rusu et al. 2009), ``[N, 3] -> [N, 33]`` float32 (L2-normalised).

    Normals are passed in (not re-estimated) so both pipelines share the preprocessing.
    """
    import numpy as np

    from geomdl.utils.optional import import_open3d

    o3d = import_open3d()
    pcd = o3d.geometry.PointCloud()
    pcd.points = o3d.utility.Vector3dVector(points.detach().cpu().numpy().astype(np.float64))
    pcd.normals = o3d.utility.Vector3dVector(normals.detach().cpu().numpy().astype(np.float64))
    feat = o3d.pipelines.registration.compute_fpfh_feature(
        pcd, o3d.geometry.KDTreeSearchParamHybrid(radius=radius, max_nn=max_neighbors))
    desc = torch.from_numpy(np.asarray(feat.data).T.copy()).float()
    return desc / desc.norm(dim=1, keepdim=True).clamp_min(1e-12)
