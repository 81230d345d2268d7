"""Rigid-geometry maths for registration: input checks, voxel grids, normals, poses, weighted Kabsch.

Conventions: points are row vectors ``[N, 3]``; a pose ``T [4, 4]`` maps a source point ``p`` to
``R p + t`` (``T[:3, :3] = R``, ``T[:3, 3] = t``), so ``transform(points, T) = points @ R.T + t``.
"""
from __future__ import annotations

import math

import torch

from geomdl.ops._validation import check_positive_real
from geomdl.pipelines.registration.neighbors import knn_search


def as_points(points, name: str = "points", *, min_points: int = 1) -> torch.Tensor:
    """Validate a point cloud and return it as a float64 ``[N, 3]`` tensor.

    Accepts a tensor or anything ``torch.as_tensor`` reads (numpy arrays, lists). Raises ``TypeError``
    for non-numeric input and ``ValueError`` for a wrong shape, NaN/inf coordinates or fewer than
    ``min_points`` points, naming ``name`` in the message.
    """
    if not isinstance(points, torch.Tensor):
        try:
            points = torch.as_tensor(points)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(f"{name} must be a tensor or array of shape [N, 3], got {type(points).__name__}") from exc
    if points.is_complex() or points.dtype == torch.bool:
        raise TypeError(f"{name} must hold real coordinates, got dtype {points.dtype}")
    if points.dim() != 2 or points.shape[1] != 3:
        raise ValueError(f"{name} must have shape [N, 3], got {tuple(points.shape)}")
    if points.shape[0] < min_points:
        what = "is empty" if points.shape[0] == 0 else f"has {points.shape[0]} points"
        raise ValueError(f"{name} {what}; at least {min_points} point{'s' if min_points != 1 else ''} "
                         f"{'are' if min_points != 1 else 'is'} needed")
    points = points.detach().to(torch.float64)
    bad = ~torch.isfinite(points).all(1)
    if bool(bad.any()):
        raise ValueError(f"{name} contains {int(bad.sum())} point(s) with NaN or infinite coordinates "
                         f"(first at row {int(bad.nonzero()[0])}); drop them before registering")
    return points


def check_pose(pose, name: str = "pose") -> torch.Tensor:
    """Validate a rigid ``[4, 4]`` pose and return it as float64."""
    pose = torch.as_tensor(pose, dtype=torch.float64)
    if pose.shape != (4, 4):
        raise ValueError(f"{name} must have shape [4, 4], got {tuple(pose.shape)}")
    if not bool(torch.isfinite(pose).all()):
        raise ValueError(f"{name} contains NaN or infinite entries")
    return pose


def transform(points: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    """Apply ``pose [4, 4]`` (or a batch ``[B, 4, 4]``) to ``points [N, 3]``: ``p -> R p + t``.

    Computed in the dtype of floating ``points``; integer points are promoted to the pose's floating dtype
    (casting the pose to an integer dtype would truncate its rotation).
    """
    if not points.is_floating_point():
        dtype = pose.dtype if pose.is_floating_point() else torch.get_default_dtype()
        points = points.to(dtype)
    pose = pose.to(points.dtype)
    return points @ pose[..., :3, :3].transpose(-1, -2) + pose[..., None, :3, 3]


def make_pose(rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """Assemble ``[..., 4, 4]`` poses from rotations ``[..., 3, 3]`` and translations ``[..., 3]``."""
    pose = torch.zeros(*rotation.shape[:-2], 4, 4, dtype=rotation.dtype, device=rotation.device)
    pose[..., :3, :3] = rotation
    pose[..., :3, 3] = translation
    pose[..., 3, 3] = 1.0
    return pose


def random_pose(generator: torch.Generator | None = None, max_translation: float = 1.0,
                max_angle_deg: float = 180.0) -> torch.Tensor:
    """A random proper rigid pose (float64 ``[4, 4]``): axis uniform on S^2, angle uniform in
    ``[0, max_angle_deg]`` (180 gives rotations covering SO(3)), translation uniform in a ball."""
    axis = torch.randn(3, generator=generator, dtype=torch.float64)
    axis = axis / axis.norm()
    angle = math.radians(max_angle_deg) * float(torch.rand((), generator=generator, dtype=torch.float64))
    rot = axis_angle_to_matrix(axis * angle)
    direction = torch.randn(3, generator=generator, dtype=torch.float64)
    direction = direction / direction.norm()
    t = direction * max_translation * float(torch.rand((), generator=generator, dtype=torch.float64)) ** (1 / 3)
    return make_pose(rot, t)


def axis_angle_to_matrix(vec: torch.Tensor) -> torch.Tensor:
    """Rodrigues: ``R = I + sin(a) K + (1 - cos(a)) K^2`` for ``vec = a * axis`` (``[3]``)."""
    angle = vec.norm()
    if float(angle) < 1e-12:
        return torch.eye(3, dtype=vec.dtype)
    k = vec / angle
    kx = torch.tensor([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]], dtype=vec.dtype)
    return torch.eye(3, dtype=vec.dtype) + torch.sin(angle) * kx + (1 - torch.cos(angle)) * kx @ kx


def check_voxel_extent(points: torch.Tensor, voxel_size: float) -> None:
    """``ValueError`` when the voxel grid of ``points`` ``[N, 3]`` would have more than ``2**62`` cells: its integer
    keys would overflow (checked in floating point, before any conversion to int64 can wrap)."""
    if points.shape[0] == 0:
        return
    extent = (points.max(0).values - points.min(0).values).double() / voxel_size
    if float(torch.floor(extent).add(1).prod()) > 2**62:
        raise ValueError(f"voxel_size {voxel_size} is too small for the extent of the cloud")


def voxel_downsample(points: torch.Tensor, voxel_size: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Average the points falling in each cubic voxel of side ``voxel_size``.

    Args:
        points: ``[N, 3]`` float points.
        voxel_size: voxel side (> 0), in the units of ``points``.

    Returns:
        ``(centroids [M, 3], voxel_of_point [N])``: one centroid per occupied voxel (sorted by voxel
        key) and the voxel index of every input point. Uses one sort, O(N log N).
    """
    voxel_size = check_positive_real(voxel_size, "voxel_size")
    if points.dim() != 2 or points.shape[1] != 3:
        raise ValueError(f"points must have shape [N, 3], got {tuple(points.shape)}")
    if points.shape[0] == 0:
        return points.new_zeros((0, 3)), torch.zeros(0, dtype=torch.long)
    bad = ~torch.isfinite(points).all(1)
    if bool(bad.any()):  # one NaN made the grid origin NaN: every cell index garbage, no error
        raise ValueError(f"points contains {int(bad.sum())} point(s) with NaN or infinite coordinates "
                         f"(first at row {int(bad.nonzero()[0])}); drop them before downsampling")
    check_voxel_extent(points, voxel_size)
    cell = torch.floor((points - points.min(0).values) / voxel_size).long()
    dims = cell.max(0).values + 1
    key = (cell[:, 0] * dims[1] + cell[:, 1]) * dims[2] + cell[:, 2]
    sorted_key, order = torch.sort(key)
    new = torch.ones_like(sorted_key, dtype=torch.bool)
    new[1:] = sorted_key[1:] != sorted_key[:-1]
    voxel_sorted = torch.cumsum(new.long(), 0) - 1
    voxel = torch.empty_like(voxel_sorted)
    voxel[order] = voxel_sorted
    num = int(voxel_sorted[-1]) + 1
    sums = points.new_zeros((num, 3)).index_add_(0, voxel, points)
    counts = torch.bincount(voxel, minlength=num).to(points.dtype)
    return sums / counts[:, None], voxel


def estimate_normals(points: torch.Tensor, k: int = 16, neighbors: torch.Tensor | None = None) -> torch.Tensor:
    """Unit normals from the PCA of the ``k`` nearest neighbours (smallest-eigenvalue eigenvector).

    ``[N, 3] -> [N, 3]``. The sign of each normal is arbitrary (see
    :func:`geomdl.pipelines.registration.descriptors.orient_normals`). ``neighbors [N, k]`` (a knn
    table including the point itself) skips the search.
    """
    n = points.shape[0]
    if n < 3:
        raise ValueError(f"need at least 3 points to estimate normals, got {n}")
    idx = neighbors if neighbors is not None else knn_search(points, points, min(k, n))[0]
    nb = points[idx]  # [N, k, 3]
    centred = nb - nb.mean(1, keepdim=True)
    cov = centred.transpose(1, 2) @ centred
    _, vecs = torch.linalg.eigh(cov)
    return vecs[:, :, 0]


def check_weights(weights, shape: torch.Size, name: str = "weights") -> torch.Tensor:
    """Validate the correspondence weights of :func:`weighted_kabsch` and return them as a tensor.

    ``weights`` must have ``shape`` (``[B, K]`` or ``[K]``) and hold finite, non-negative reals, at least one
    of them positive in every set of ``K`` (all-zero weights leave the fit undefined: it silently came out as
    the identity rotation); else ``ValueError`` naming ``name``.
    """
    weights = torch.as_tensor(weights)
    if weights.is_complex():
        raise ValueError(f"{name} must hold real numbers, got dtype {weights.dtype}")
    if weights.shape != shape:
        raise ValueError(f"{name} must have shape {list(shape)} (one weight per correspondence), "
                         f"got {list(weights.shape)}")
    if not bool(torch.isfinite(weights).all()):
        raise ValueError(f"{name} contains NaN or infinite entries")
    if bool((weights < 0).any()):
        raise ValueError(f"{name} must be non-negative, got a minimum of {float(weights.min())}")
    if weights.numel() and not bool((weights.reshape(-1, shape[-1]) > 0).any(1).all()):
        raise ValueError(f"{name} are all zero" + (" in some set" if len(shape) == 2 else "")
                         + "; at least one correspondence needs a positive weight")
    return weights


def weighted_kabsch(src: torch.Tensor, tgt: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Batched weighted least-squares rigid fit (Kabsch/Umeyama without scale).

    Minimises ``sum_i w_i |R s_i + t - t_i|^2`` with ``det R = +1``:
    ``H = sum_i w_i (s_i - s̄)(t_i - t̄)^T = U S V^T``, ``R = V diag(1, 1, det(V U^T)) U^T``, ``t = t̄ - R s̄``.

    Args:
        src, tgt: ``[B, K, 3]`` (or ``[K, 3]``) corresponding points.
        weights: ``[B, K]`` (or ``[K]``) non-negative weights (default: uniform).

    Returns:
        ``[B, 4, 4]`` (or ``[4, 4]``) poses mapping ``src`` onto ``tgt``.

    Raises:
        ValueError: ``src``/``tgt`` not both ``[B, K, 3]`` (or ``[K, 3]``) of the same shape, or ``weights`` not of
            shape ``[B, K]`` (``[K]``), with a NaN/inf or negative entry, or all zero in some set (no fit then).
    """
    if src.dim() not in (2, 3) or src.shape[-1] != 3 or src.shape != tgt.shape:
        raise ValueError(f"src and tgt must both have shape [B, K, 3] or [K, 3], got {tuple(src.shape)} and "
                         f"{tuple(tgt.shape)}")
    if weights is not None:
        weights = check_weights(weights, src.shape[:-1])
    squeeze = src.dim() == 2
    if squeeze:
        src, tgt = src[None], tgt[None]
        weights = None if weights is None else weights[None]
    if weights is None:
        weights = src.new_ones(src.shape[:2])
    w = weights / weights.sum(1, keepdim=True).clamp_min(1e-12)
    mu_s = (w[..., None] * src).sum(1)
    mu_t = (w[..., None] * tgt).sum(1)
    h = (src - mu_s[:, None]).transpose(1, 2) @ (w[..., None] * (tgt - mu_t[:, None]))
    u, _, vh = torch.linalg.svd(h)
    v = vh.transpose(1, 2)
    d = torch.sign(torch.det(v @ u.transpose(1, 2)))
    d = torch.where(d == 0, torch.ones_like(d), d)
    diag = torch.ones_like(mu_s)
    diag[:, 2] = d
    rot = v @ torch.diag_embed(diag) @ u.transpose(1, 2)
    pose = make_pose(rot, mu_t - (rot @ mu_s[..., None])[..., 0])
    return pose[0] if squeeze else pose
