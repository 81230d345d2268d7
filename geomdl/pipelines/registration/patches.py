"""Rotation-invariant patch coordinates for the learned descriptor (normal axis + tangent plane).

For a keypoint ``p`` with neighbours ``q_j`` within the support radius ``r`` (``d_j = q_j - p``):

* **normal axis** ``z`` — the eigenvector of the smallest eigenvalue of the distance-weighted covariance
  ``C = sum_j w_j d_j d_j^T`` (``w_j = r - |d_j|``), oriented towards the neighbours,
  ``z <- z * sign(sum_j w_j d_j . z)`` (the concave side; equivariant, unlike "towards the sensor");
* **tangent basis** ``(e_1, e_2 = z × e_1)`` — any right-handed one: a rotation about ``z`` by ``δ``
  only multiplies the tangent coordinate ``t_j = (d_j . e_1 + i d_j . e_2) / r`` by ``e^{-iδ}``, and the
  network (:mod:`~geomdl.pipelines.registration.learned`) uses ``t_j`` only through products that
  cancel that phase. No x axis is chosen, so there is no unstable frame to get wrong.

Per neighbour (10 numbers, dtype of the points):

* ``rho = |d_j - h_j z| / r``, ``h = (d_j . z) / r`` — cylindrical coordinates;
* the sign-free normal tensor of ``n_j`` in the (``z``, radial ``d_t / r``, azimuthal ``z × d_t / r``) frame:
  ``a = n . z``, ``b = n . d_t / r``, ``c = n . (z × d_t) / r`` -> ``(a^2, b^2, c^2, a b, a c, b c)``
  (``n`` and ``-n`` give the same numbers; ``b, c`` vanish smoothly at the keypoint);
* ``Re t_j``, ``Im t_j`` — the tangent coordinates (basis-dependent, phase-only).

The first 8 are exactly invariant to proper rotations, translations and the order of the points;
under a reflection ``c`` and ``Im t`` change sign, so descriptors built from them are SO(3)-, not
O(3)-invariant: registration needs proper rotations only, and chirality helps tell mirror-image
corners apart. Missing neighbours (fewer than ``K`` within ``r``) are copies of the keypoint
(``d = 0``: zero tangent coordinates), so they add nothing to the angular harmonics.
"""
from __future__ import annotations

import torch

from geomdl.pipelines.registration.neighbors import knn_search

NUM_FEATURES = 10
NUM_SCALARS = 8


def normal_axes(offsets: torch.Tensor, radius: float) -> torch.Tensor:
    """Oriented normal axis ``z`` of each patch (module docstring): ``offsets [M, K, 3] -> [M, 3]``.

    Padding rows (zero offsets) and offsets beyond ``radius`` carry no weight.
    """
    if offsets.dim() != 3 or offsets.shape[-1] != 3:
        raise ValueError(f"offsets must have shape [M, K, 3], got {tuple(offsets.shape)}")
    w = (radius - offsets.norm(dim=-1)).clamp_min(0)
    cov = torch.einsum("mk,mki,mkj->mij", w, offsets, offsets)
    _, vecs = torch.linalg.eigh(cov)
    z = vecs[:, :, 0]
    side = (w * (offsets * z[:, None]).sum(-1)).sum(1)
    return z * torch.where(side < 0, -1.0, 1.0).to(offsets.dtype)[:, None]


def tangent_basis(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A right-handed orthonormal tangent basis ``(e1, e2)`` of unit vectors ``z [M, 3]`` (``e2 = z × e1``)."""
    helper = torch.where(z[:, :1].abs() < 0.6, z.new_tensor([1.0, 0.0, 0.0]), z.new_tensor([0.0, 1.0, 0.0]))
    e1 = torch.linalg.cross(helper.expand_as(z), z, dim=1)
    e1 = e1 / e1.norm(dim=1, keepdim=True)
    return e1, torch.linalg.cross(z, e1, dim=1)


def patch_features(points: torch.Tensor, normals: torch.Tensor, keypoints: torch.Tensor, radius: float,
                   num_neighbors: int = 48) -> torch.Tensor:
    """Per-neighbour features of every keypoint's patch (module docstring).

    Args:
        points: ``[N, 3]`` (downsampled) cloud; normals: ``[N, 3]`` unit normals (any sign).
        keypoints: ``[M]`` int64 indices into ``points``.
        radius: support radius ``r``; num_neighbors: the ``K`` nearest points within ``r`` (the keypoint
            included; missing ones are copies of the keypoint).

    Returns:
        ``[M, K, 10]``: 8 invariant scalars, then ``Re t``, ``Im t``.
    """
    if points.dim() != 2 or points.shape[1] != 3:
        raise ValueError(f"points must have shape [N, 3], got {tuple(points.shape)}")
    if normals.shape != points.shape:
        raise ValueError(f"normals must have the shape of points {tuple(points.shape)}, got {tuple(normals.shape)}")
    if not isinstance(keypoints, torch.Tensor) or keypoints.dtype != torch.long or keypoints.dim() != 1:
        raise TypeError("keypoints must be a 1-D int64 tensor of indices")
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius!r}")
    k = min(int(num_neighbors), points.shape[0])
    if keypoints.numel() == 0:
        return points.new_zeros((0, k, NUM_FEATURES))
    nbr, _ = knn_search(points, points[keypoints], k, radius=radius)
    nbr = torch.where(nbr < 0, keypoints[:, None], nbr)
    d = points[nbr] - points[keypoints][:, None]
    z = normal_axes(d, radius)
    e1, e2 = tangent_basis(z)
    height = (d * z[:, None]).sum(-1)
    tangent = (d - height[..., None] * z[:, None]) / radius
    n = normals.to(points.dtype)[nbr]
    a = (n * z[:, None]).sum(-1)
    b = (n * tangent).sum(-1)
    c = (n * torch.linalg.cross(z[:, None].expand_as(tangent), tangent, dim=-1)).sum(-1)
    return torch.stack([tangent.norm(dim=-1), height / radius, a * a, b * b, c * c, a * b, a * c, b * c,
                        (tangent * e1[:, None]).sum(-1), (tangent * e2[:, None]).sum(-1)], -1)
