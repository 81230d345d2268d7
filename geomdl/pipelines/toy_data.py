"""Tiny deterministic datasets built into the training engine (no files, no downloads).

They exist so that the engine, its tests, the ``train`` demo stage and example configs run
anywhere in seconds. The full synthetic data sets live in :mod:`geomdl.datasets`.

* ``toy_shapes``: point clouds sampled on the surface of simple shapes (sphere, cube, cylinder,
  cone, torus, square plate), randomly rotated, scaled and jittered; label ``y`` = shape index.
* ``toy_regression``: the same clouds; target ``y [1, 2]`` = (scale, height/width ratio) of the shape.

Each split uses its own seed stream (``seed``, split), so train/val/test never share samples.
"""
from __future__ import annotations

import math

import torch

SHAPES = ("sphere", "cube", "cylinder", "cone", "torus", "plate")
_SPLIT_OFFSET = {"train": 0, "val": 1_000_003, "test": 2_000_003}


def _rotation(gen: torch.Generator) -> torch.Tensor:
    q = torch.randn(4, generator=gen, dtype=torch.float64)
    w, x, y, z = (q / q.norm()).tolist()
    return torch.tensor([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ], dtype=torch.float64)


def sample_shape(shape: str, num_points: int, gen: torch.Generator, height: float = 1.0) -> torch.Tensor:
    """``[num_points, 3]`` float64 points on the unit-size surface of ``shape`` (axis along z)."""
    u = torch.rand(num_points, generator=gen, dtype=torch.float64)
    v = torch.rand(num_points, generator=gen, dtype=torch.float64)
    if shape == "sphere":
        z, phi = 2 * u - 1, 2 * math.pi * v
        r = (1 - z * z).clamp_min(0).sqrt()
        return torch.stack([r * phi.cos(), r * phi.sin(), z * height], -1)
    if shape == "cube":
        face = torch.randint(0, 6, (num_points,), generator=gen)
        sign = 1.0 - 2.0 * (face % 2).double()
        pts = torch.stack([2 * u - 1, 2 * v - 1, sign], -1)
        order = torch.tensor([[0, 1, 2], [2, 0, 1], [1, 2, 0]])[face // 2]  # which axis the face is normal to
        return pts.gather(1, order) * torch.tensor([1.0, 1.0, height], dtype=torch.float64)
    if shape == "cylinder":
        phi = 2 * math.pi * v
        return torch.stack([phi.cos(), phi.sin(), (2 * u - 1) * height], -1)
    if shape == "cone":
        r, phi = u.sqrt(), 2 * math.pi * v  # area-uniform on the lateral surface
        return torch.stack([r * phi.cos(), r * phi.sin(), (1 - 2 * r) * height], -1)
    if shape == "torus":
        a, b = 2 * math.pi * u, 2 * math.pi * v
        return torch.stack([(1 + 0.35 * b.cos()) * a.cos() / 1.35, (1 + 0.35 * b.cos()) * a.sin() / 1.35, 0.35 * b.sin() * height], -1)
    if shape == "plate":
        return torch.stack([2 * u - 1, 2 * v - 1, 0.05 * (2 * torch.rand(num_points, generator=gen, dtype=torch.float64) - 1) * height], -1)
    raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")


def _clouds(split: str, num_samples: int, num_points: int, num_classes: int, noise: float, seed: int, rotate: bool):
    from torch_geometric.data import Data

    if split not in _SPLIT_OFFSET:
        raise ValueError(f"split must be one of {list(_SPLIT_OFFSET)}, got {split!r}")
    if not 1 <= num_classes <= len(SHAPES):
        raise ValueError(f"num_classes must be in [1, {len(SHAPES)}], got {num_classes}")
    for name, value in (("num_samples", num_samples), ("num_points", num_points)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    gen = torch.Generator().manual_seed(seed + _SPLIT_OFFSET[split])
    out = []
    for i in range(num_samples):
        label = i % num_classes
        scale = 0.5 + torch.rand((), generator=gen, dtype=torch.float64).item()
        height = 0.5 + torch.rand((), generator=gen, dtype=torch.float64).item()
        pos = sample_shape(SHAPES[label], num_points, gen, height) * scale
        if rotate:
            pos = pos @ _rotation(gen).T
        pos = pos + noise * torch.randn(pos.shape, generator=gen, dtype=torch.float64)
        out.append((Data(pos=pos.float()), label, scale, height))
    return out


def toy_shapes(split: str = "train", num_samples: int = 96, num_points: int = 64, num_classes: int = 4,
               noise: float = 0.01, seed: int = 0, rotate: bool = True) -> list:
    """Classification clouds: ``Data(pos [num_points, 3] float32, y [1] long)``; classes cycle
    through the first ``num_classes`` of :data:`SHAPES` (balanced)."""
    clouds = _clouds(split, num_samples, num_points, num_classes, noise, seed, rotate)
    for data, label, _, _ in clouds:
        data.y = torch.tensor([label])
    return [c[0] for c in clouds]


def toy_regression(split: str = "train", num_samples: int = 96, num_points: int = 64, num_classes: int = 4,
                   noise: float = 0.01, seed: int = 0, rotate: bool = True) -> list:
    """Regression clouds: ``Data(pos [num_points, 3], y [1, 2] float32 = (scale, height))``."""
    clouds = _clouds(split, num_samples, num_points, num_classes, noise, seed, rotate)
    for data, _, scale, height in clouds:
        data.y = torch.tensor([[scale, height]], dtype=torch.float32)
    return [c[0] for c in clouds]


TOY_DATASETS = {"toy_shapes": toy_shapes, "toy_regression": toy_regression}
