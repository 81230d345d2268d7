"""Plain functions behind the datasets and transforms (no state, explicit generators).

Conventions: points are row vectors ``pos [N, 3]``; a rotation ``R`` acts as ``pos @ R.T``; a rigid
transform is a 4x4 matrix ``T = [[R, t], [0, 1]]`` acting as ``pos @ R.T + t``.
"""
from __future__ import annotations

import math

import torch

from geomdl.ops._validation import check_int, check_positive_real, check_real
from geomdl.utils.rotations import random_rotation

ROTATION_GROUPS = ("SO3", "z", "O3")


def _check_pos(pos, name="pos"):
    if not isinstance(pos, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(pos).__name__}")
    if pos.dim() != 2 or pos.shape[1] != 3 or not pos.is_floating_point():
        raise ValueError(f"{name} must be a float tensor of shape [N, 3], got {tuple(pos.shape)} {pos.dtype}")
    return pos


def random_rotation_matrix(group: str = "SO3", generator: torch.Generator | None = None, dtype=torch.float32) -> torch.Tensor:
    """One random ``[3, 3]`` orthogonal matrix.

    ``"SO3"``: Haar-uniform rotation (normalised Gaussian quaternion ``q``, ``R(q)``);
    ``"z"``: rotation about the z axis by ``theta ~ U[0, 2 pi)``;
    ``"O3"``: Haar-uniform on O(3) (``R`` or ``-R`` with probability 1/2 each, ``det = -1`` for the latter).
    """
    if group not in ROTATION_GROUPS:
        raise ValueError(f"group must be one of {ROTATION_GROUPS}, got {group!r}")
    if group == "z":
        theta = float(torch.rand((), generator=generator, dtype=torch.float64)) * 2 * math.pi
        c, s = math.cos(theta), math.sin(theta)
        return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=dtype)
    rot = random_rotation(generator, dtype=torch.float64)
    if group == "O3" and float(torch.rand((), generator=generator)) < 0.5:
        rot = -rot
    return rot.to(dtype)


def rigid_matrix(rot: torch.Tensor, trans: torch.Tensor) -> torch.Tensor:
    """``[4, 4]`` matrix ``[[R, t], [0, 1]]`` from ``R [3, 3]`` and ``t [3]``."""
    out = torch.eye(4, dtype=rot.dtype)
    out[:3, :3] = rot
    out[:3, 3] = trans.to(rot.dtype)
    return out


def apply_rigid(pos: torch.Tensor, transform: torch.Tensor) -> torch.Tensor:
    """``pos @ R.T + t`` for ``T [4, 4]`` (computed in ``T``'s dtype, returned in ``pos``'s dtype)."""
    _check_pos(pos)
    transform = torch.as_tensor(transform)
    if transform.shape[-2:] != (4, 4) or transform.numel() != 16:  # [4, 4] (or [1, 4, 4]): one transform
        raise ValueError(f"transform must have shape [4, 4], got {tuple(transform.shape)}")
    transform = transform.reshape(4, 4).to(torch.promote_types(pos.dtype, transform.dtype))
    return (pos.to(transform.dtype) @ transform[:3, :3].T + transform[:3, 3]).to(pos.dtype)


def sample_surface(vertices, faces, num: int, *, generator: torch.Generator | None = None,
                   face_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Area-weighted uniform samples on a triangle mesh, with the face normals.

    A face ``f`` is drawn with probability ``A_f w_f / sum_g A_g w_g`` (``A`` = area, ``w`` =
    ``face_weights``, default 1), then a point ``p = (1 - sqrt(r1)) a + sqrt(r1) (1 - r2) b + sqrt(r1) r2 c``
    with ``r1, r2 ~ U[0, 1)`` is uniform on the triangle ``(a, b, c)``.

    Args:
        vertices: ``[V, 3]`` float; faces: ``[F, 3]`` int64 vertex indices; num: number of samples (>= 1).

    Returns:
        ``pos [num, 3]`` and unit ``normal [num, 3]`` (``(b - a) x (c - a)`` normalised), in ``vertices``' dtype.
    """
    vertices = _check_pos(torch.as_tensor(vertices), "vertices")
    faces = torch.as_tensor(faces)
    if faces.dim() != 2 or faces.shape[1] != 3 or faces.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"faces must be an int tensor of shape [F, 3], got {tuple(faces.shape)} {faces.dtype}")
    num = check_int(num, "num")
    if faces.numel() and (faces.min() < 0 or faces.max() >= vertices.shape[0]):
        raise ValueError(f"faces index vertices out of range [0, {vertices.shape[0]})")
    a, b, c = (vertices[faces[:, k].long()].double() for k in range(3))
    cross = torch.linalg.cross(b - a, c - a)
    area = 0.5 * cross.norm(dim=1)
    weight = area if face_weights is None else area * _check_face_weights(face_weights, faces.shape[0])
    if faces.shape[0] == 0 or not float(weight.sum()) > 0:
        raise ValueError("the mesh has no face with positive area to sample from")
    idx = torch.multinomial(weight, num, replacement=True, generator=generator)
    r1 = torch.rand(num, 1, generator=generator, dtype=torch.float64).sqrt()
    r2 = torch.rand(num, 1, generator=generator, dtype=torch.float64)
    pos = (1 - r1) * a[idx] + r1 * (1 - r2) * b[idx] + r1 * r2 * c[idx]
    normal = cross[idx] / cross[idx].norm(dim=1, keepdim=True)
    return pos.to(vertices.dtype), normal.to(vertices.dtype)


def _check_face_weights(face_weights, num_faces: int) -> torch.Tensor:
    """``face_weights`` as float64 ``[F]``; a ``ValueError`` naming the argument for another shape or a negative or
    non-finite weight (they came back as a broadcasting error or "invalid multinomial distribution")."""
    weights = torch.as_tensor(face_weights, dtype=torch.float64)
    if weights.shape != (num_faces,):
        raise ValueError(f"face_weights must have shape [F] = [{num_faces}] (one weight per face), got {tuple(weights.shape)}")
    if not (torch.isfinite(weights).all() and (weights >= 0).all()):
        raise ValueError("face_weights must be finite numbers >= 0")
    return weights


def normalize_points(pos: torch.Tensor, center: str | None = "mean", scale: str | None = "sphere"):
    """Centre and scale a cloud: ``(pos - c) / s``.

    ``center``: ``"mean"`` (centroid), ``"bbox"`` (bounding-box centre) or ``None``;
    ``scale``: ``"sphere"`` (max distance to the centre becomes 1), ``"cube"`` (max |coordinate| becomes 1) or ``None``.

    Returns:
        ``(pos', c [3], s)`` so that ``pos = pos' * s + c``.
    """
    _check_pos(pos)
    if center not in ("mean", "bbox", None):
        raise ValueError(f"center must be 'mean', 'bbox' or None, got {center!r}")
    if scale not in ("sphere", "cube", None):
        raise ValueError(f"scale must be 'sphere', 'cube' or None, got {scale!r}")
    if pos.shape[0] == 0:
        return pos.clone(), torch.zeros(3, dtype=pos.dtype), 1.0
    if center == "mean":
        c = pos.mean(dim=0)
    elif center == "bbox":
        c = 0.5 * (pos.min(dim=0).values + pos.max(dim=0).values)
    else:
        c = torch.zeros(3, dtype=pos.dtype)
    out = pos - c
    if center == "mean":  # far from the origin the float32 centroid is off by ~ulp(|c|): remove the rest exactly
        rest = out.mean(dim=0)
        out, c = out - rest, c + rest
    s = 1.0
    if scale == "sphere":
        s = float(out.norm(dim=1).max())
    elif scale == "cube":
        s = float(out.abs().max())
    if scale is not None:
        s = s if s > 0 else 1.0
        out = out / s
    return out, c, s


def voxel_clusters(pos: torch.Tensor, voxel_size: float) -> tuple[torch.Tensor, int]:
    """Voxel id of every point: ``cluster [N] int64`` in ``[0, C)`` (grid cells ``floor(pos / voxel_size)``) and ``C``."""
    _check_pos(pos)
    voxel_size = check_positive_real(voxel_size, "voxel_size")
    if pos.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long), 0
    import numpy as np

    # numpy's unique is several times faster than torch.unique on CPU for this
    cells = np.floor(pos.detach().cpu().double().numpy() / float(voxel_size)).astype(np.int64)
    cells -= cells.min(axis=0)
    extent = cells.max(axis=0) + 1
    if float(np.prod(extent.astype(np.float64))) < 2.0**62:  # one int64 key per cell, in lexicographic order
        key = (cells[:, 0] * extent[1] + cells[:, 1]) * extent[2] + cells[:, 2]
        _, inverse = np.unique(key, return_inverse=True)
    else:
        _, inverse = np.unique(cells, axis=0, return_inverse=True)
    cluster = torch.from_numpy(inverse.reshape(-1).astype(np.int64)).to(pos.device)
    return cluster, int(cluster.max()) + 1


def voxel_downsample(pos: torch.Tensor, voxel_size: float) -> torch.Tensor:
    """One point per occupied voxel: the mean of its points, ``[C, 3]`` (ordered by voxel coordinates)."""
    from geomdl.ops import scatter

    cluster, count = voxel_clusters(pos, voxel_size)
    return scatter(pos, cluster, dim=0, dim_size=count, reduce="mean")


def overlap_ratio(ref: torch.Tensor, src: torch.Tensor, transform=None, radius: float = 0.0375) -> float:
    """Fraction of ``src`` points that lie within ``radius`` of some ``ref`` point after ``transform``.

    ``transform`` (``[4, 4]``, default identity) maps ``src`` into ``ref``'s frame. Nearest
    neighbours come from :class:`scipy.spatial.cKDTree` (fast on large fragments).
    """
    from scipy.spatial import cKDTree

    _check_pos(ref, "ref")
    _check_pos(src, "src")
    radius = check_real(radius, "radius", minimum=0)
    if src.shape[0] == 0 or ref.shape[0] == 0:
        return 0.0
    moved = apply_rigid(src, transform) if transform is not None else src
    # the tree's bound is strict (and compared squared): a point at exactly ``radius`` (every point when radius is 0
    # and the clouds coincide) came back as inf and was not counted; search a little further and test ``<=`` here
    bound = float(radius) * (1 + 1e-6) + 1e-100
    dist, _ = cKDTree(ref.double().numpy()).query(moved.double().numpy(), k=1, distance_upper_bound=bound)
    return float((dist <= radius).sum()) / src.shape[0]
