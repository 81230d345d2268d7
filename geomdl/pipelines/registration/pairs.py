"""Built-in registration problems: generated scenes/shapes, partial-overlap pairs, low-overlap crops.

* :func:`synthetic_scene` — a room-like scene (floor, two walls, random boxes and cylinders) sampled
  on its surfaces, about ``extent`` metres wide; asymmetric, so registration is well posed.
* :func:`synthetic_shape` — a closed bumpy blob (a sphere with random low-frequency bumps), unit size.
* :func:`partial_pair` — two overlapping views of one cloud (two balls around nearby centres), the
  source moved by a random pose, with Gaussian noise and uniform outliers.
* :func:`crop_low_overlap` — crops a real fragment pair with two opposite half-spaces so that only
  a chosen fraction of the source overlaps the target (3DLoMatch-like, 10-30 %).

Every function takes a ``torch.Generator`` and returns float64 tensors; a pair is
``(source, target, pose)`` with ``pose [4, 4]`` mapping the source into the target frame.
"""
from __future__ import annotations

import math

import torch

from geomdl.pipelines.registration.geometry import random_pose, transform


def _uniform(n, lo, hi, gen):
    lo, hi = torch.as_tensor(lo, dtype=torch.float64), torch.as_tensor(hi, dtype=torch.float64)
    return lo + (hi - lo) * torch.rand(n, lo.numel(), generator=gen, dtype=torch.float64)


def _box_surface(center, size, n, gen):
    """``n`` points uniformly on the surface of an axis-aligned box."""
    areas = torch.stack([size[1] * size[2], size[0] * size[2], size[0] * size[1]]).repeat(2)
    face = torch.multinomial(areas, n, replacement=True, generator=gen)
    pts = (torch.rand(n, 3, generator=gen, dtype=torch.float64) - 0.5) * size
    axis = face % 3
    sign = torch.where(face < 3, 0.5, -0.5).to(torch.float64)
    pts[torch.arange(n), axis] = sign * size[axis]
    return pts + center


def _cylinder_surface(center, radius, height, n, gen):
    theta = 2 * math.pi * torch.rand(n, generator=gen, dtype=torch.float64)
    z = (torch.rand(n, generator=gen, dtype=torch.float64) - 0.5) * height
    return torch.stack([radius * theta.cos(), radius * theta.sin(), z], 1) + center


def synthetic_scene(num_points: int = 40000, extent: float = 3.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """A room corner with furniture, ``[num_points, 3]`` float64 (metres); see the module docstring."""
    gen = generator
    e = extent
    parts = []
    n_floor, n_wall = num_points // 4, num_points // 8
    floor = _uniform(n_floor, [0, 0, 0], [e, e, 0], gen)
    wall_x = _uniform(n_wall, [0, 0, 0], [0, e, 0.6 * e], gen)
    wall_y = _uniform(n_wall, [0, 0, 0], [e, 0, 0.6 * e], gen)
    parts += [floor, wall_x, wall_y]
    remaining = num_points - n_floor - 2 * n_wall
    num_objects = 8
    sizes = torch.multinomial(torch.ones(num_objects), num_objects, generator=gen).double() + 4
    counts = (sizes / sizes.sum() * remaining).long()
    counts[-1] += remaining - int(counts.sum())
    for k in range(num_objects):
        c = _uniform(1, [0.15 * e, 0.15 * e, 0], [0.85 * e, 0.85 * e, 0], gen)[0]
        if k % 3 == 2:
            r = 0.04 * e + 0.06 * e * float(torch.rand((), generator=gen))
            h = 0.1 * e + 0.3 * e * float(torch.rand((), generator=gen))
            c[2] = h / 2
            parts.append(_cylinder_surface(c, r, h, int(counts[k]), gen))
        else:
            size = _uniform(1, [0.05 * e, 0.05 * e, 0.05 * e], [0.3 * e, 0.25 * e, 0.35 * e], gen)[0]
            c[2] = size[2] / 2
            parts.append(_box_surface(c, size, int(counts[k]), gen))
    return torch.cat(parts)[:num_points]


def synthetic_shape(num_points: int = 4000, generator: torch.Generator | None = None) -> torch.Tensor:
    """A bumpy closed blob of radius about 1: ``r(u) = 1 + sum_k a_k exp(-|u - c_k|^2 / w_k^2)``."""
    gen = generator
    u = torch.randn(num_points, 3, generator=gen, dtype=torch.float64)
    u = u / u.norm(dim=1, keepdim=True)
    centres = torch.randn(7, 3, generator=gen, dtype=torch.float64)
    centres = centres / centres.norm(dim=1, keepdim=True)
    amp = 0.15 + 0.35 * torch.rand(7, generator=gen, dtype=torch.float64)
    width = 0.3 + 0.4 * torch.rand(7, generator=gen, dtype=torch.float64)
    r = 1 + (amp * torch.exp(-torch.cdist(u, centres) ** 2 / width**2)).sum(1)
    stretch = torch.tensor([1.3, 1.0, 0.8], dtype=torch.float64)
    return u * r[:, None] * stretch


def partial_pair(points: torch.Tensor, overlap_radius: float, offset: float, noise: float = 0.0,
                 outlier_fraction: float = 0.0, max_translation: float = 1.0,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two partial views of ``points``: the balls of radius ``overlap_radius`` around a random point
    ``c`` and around ``c + offset * d`` (random direction ``d``). Larger ``offset`` -> smaller overlap.

    The source gets Gaussian noise (std ``noise``) and ``outlier_fraction`` uniform outliers in its
    bounding box (the target too), then a random pose. Returns ``(source, target, pose)`` with
    ``transform(source_clean, pose) == target-frame points``.
    """
    gen = generator
    centre = points[int(torch.randint(points.shape[0], (1,), generator=gen))]
    direction = torch.randn(3, generator=gen, dtype=torch.float64)
    direction[2] = 0.0  # slide along the floor for scenes; harmless for shapes
    direction = direction / direction.norm().clamp_min(1e-12)
    views = []
    for c in (centre, centre + offset * direction):
        view = points[(points - c).norm(dim=1) < overlap_radius]
        if noise > 0:
            view = view + noise * torch.randn(view.shape, generator=gen, dtype=torch.float64)
        if outlier_fraction > 0 and view.shape[0]:
            lo, hi = view.min(0).values, view.max(0).values
            n_out = int(outlier_fraction * view.shape[0])
            view = torch.cat([view, lo + (hi - lo) * torch.rand(n_out, 3, generator=gen, dtype=torch.float64)])
        views.append(view)
    target, source_in_target = views[1], views[0]
    pose = random_pose(gen, max_translation=max_translation)  # maps the source into the target frame
    source = transform(source_in_target, torch.linalg.inv(pose))
    return source, target, pose


def crop_low_overlap(source: torch.Tensor, target: torch.Tensor, pose: torch.Tensor, overlap: float,
                     generator: torch.Generator | None = None, voxel_size: float = 0.025,
                     radius: float = 0.0375, rotate: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Crop a real pair down to about ``overlap`` (fraction of cropped source points within ``radius``
    of the cropped target, at ``voxel_size`` resolution; the 3DMatch/Predator definition).

    Both clouds (source in the target frame) are projected on a random horizontal-ish direction ``d``;
    the source keeps ``proj >= a``, the target ``proj <= b``; ``a``, ``b`` are chosen so that the kept
    parts keep about half of each cloud and the overlap lands near ``overlap``. The source is then
    moved by a random rotation (``rotate=True``). Returns ``(source, target, pose, measured_overlap)``.
    """
    from geomdl.datasets.functional import overlap_ratio
    from geomdl.pipelines.registration.geometry import voxel_downsample

    gen = generator
    src_t = transform(source, pose)
    direction = torch.randn(3, generator=gen, dtype=torch.float64)
    direction = direction / direction.norm()
    ps, pt = src_t @ direction, target @ direction
    small_s = voxel_downsample(src_t, voxel_size)[0]
    small_t = voxel_downsample(target, voxel_size)[0]
    qs, qt = small_s @ direction, small_t @ direction
    best = None
    for frac in torch.linspace(0.3, 0.9, 25).tolist():
        a = float(torch.quantile(qs, frac))
        kept_s = small_s[qs >= a]
        for b_frac in (0.5, 0.65, 0.8, 1.0):
            b = float(torch.quantile(qt, b_frac))
            kept_t = small_t[qt <= b]
            if kept_s.shape[0] < 500 or kept_t.shape[0] < 500:
                continue
            ov = overlap_ratio(kept_t.float(), kept_s.float(), radius=radius)
            if best is None or abs(ov - overlap) < abs(best[0] - overlap):
                best = (ov, a, b)
    if best is None:
        raise ValueError("cannot crop this pair: too few points")
    ov, a, b = best
    new_source, new_target = src_t[ps >= a], target[pt <= b]
    new_pose = torch.eye(4, dtype=torch.float64)
    if rotate:
        new_pose = random_pose(gen, max_translation=0.5)
    new_source = transform(new_source, torch.linalg.inv(new_pose))
    return new_source, new_target, new_pose, ov
