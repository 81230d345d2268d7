"""Built-in shape classification data: 12 classes of primitives and compositions, generated from a seed.

Classes (:data:`SHAPE_CLASSES`, label = position): ``sphere``, ``ellipsoid``, ``cube``, ``cuboid``,
``cylinder``, ``cone``, ``torus``, ``pyramid`` (primitives) and ``dumbbell``, ``table``,
``snowman``, ``mushroom`` (compositions). Every sample draws its own proportions within the
class's ranges, is sampled from the mesh surface by area (optionally non-uniformly: face
weights ``exp(s * <c_f, d>)`` for a random direction ``d``, so one side is denser), gets Gaussian
noise, and is centred and scaled into the unit sphere. Shapes are upright (z-up) unless
``rotation`` asks for ``"z"``, ``"SO3"`` or ``"O3"`` rotations (one per sample, seeded).

Items: ``Data(pos [N, 3] float32, normal [N, 3] float32, y [1] int64)``. Sample ``i`` of a split
depends only on ``(seed, split, i)``, never on the other options' order of use.
"""
from __future__ import annotations

import math

import torch

from geomdl.datasets import functional as F
from geomdl.datasets.base import GeometricDataset, collate_list
from geomdl.datasets.synthetic import meshes as M
from geomdl.ops._validation import check_real

SHAPE_CLASSES = ("sphere", "ellipsoid", "cube", "cuboid", "cylinder", "cone", "torus", "pyramid",
                 "dumbbell", "table", "snowman", "mushroom")
_SPLIT_OFFSET = {"train": 0, "val": 1, "test": 2}


def sample_generator(seed: int, split: str, index: int, stream: int = 0) -> torch.Generator:
    """The generator of one synthetic sample (independent streams per seed, split, index and kind)."""
    return torch.Generator().manual_seed(((int(seed) * 3 + _SPLIT_OFFSET[split]) * 1_000_003 + index) * 7 + stream)


def _u(gen, lo, hi) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen, dtype=torch.float64))


def shape_mesh(name: str, gen: torch.Generator) -> M.Mesh:
    """A random instance of class ``name`` (z-up), proportions drawn from ``gen``."""
    if name == "sphere":
        return M.sphere(1.0)
    if name == "ellipsoid":
        return M.place(M.sphere(1.0), scale=(1.0, _u(gen, 0.55, 0.75), _u(gen, 0.3, 0.45)))
    if name == "cube":
        return M.box(*(_u(gen, 0.95, 1.05) for _ in range(3)))
    if name == "cuboid":
        return M.box(1.0, _u(gen, 0.45, 0.65), _u(gen, 0.12, 0.25))
    if name == "cylinder":
        return M.cylinder(_u(gen, 0.35, 0.5), _u(gen, 1.6, 2.2))
    if name == "cone":
        return M.cone(_u(gen, 0.5, 0.7), _u(gen, 1.2, 1.8))
    if name == "torus":
        return M.torus(1.0, _u(gen, 0.18, 0.32))
    if name == "pyramid":
        return M.pyramid(1.0, _u(gen, 0.8, 1.2))
    if name == "dumbbell":
        r, d = _u(gen, 0.35, 0.5), _u(gen, 0.9, 1.2)
        bar = M.place(M.cylinder(_u(gen, 0.08, 0.14), 2 * d), M.rotation("y", math.pi / 2))
        return M.merge(bar, M.place(M.sphere(r), trans=(-d, 0, 0)), M.place(M.sphere(r), trans=(d, 0, 0)))
    if name == "table":
        w, dp, h, leg = _u(gen, 1.4, 2.0), _u(gen, 0.8, 1.2), _u(gen, 0.7, 1.0), _u(gen, 0.05, 0.09)
        top = M.place(M.box(w, dp, 0.08), trans=(0, 0, h))
        legs = [M.place(M.cylinder(leg, h), trans=(sx * (w / 2 - 0.12), sy * (dp / 2 - 0.12), h / 2)) for sx in (-1, 1) for sy in (-1, 1)]
        return M.merge(top, *legs)
    if name == "snowman":
        r1, r2, r3 = _u(gen, 0.5, 0.6), _u(gen, 0.35, 0.45), _u(gen, 0.22, 0.3)
        return M.merge(M.place(M.sphere(r1), trans=(0, 0, r1)), M.place(M.sphere(r2), trans=(0, 0, 2 * r1 + r2 * 0.8)),
                       M.place(M.sphere(r3), trans=(0, 0, 2 * r1 + 1.6 * r2 + r3 * 0.8)))
    if name == "mushroom":
        h, cap = _u(gen, 0.6, 0.9), _u(gen, 0.6, 0.8)
        return M.merge(M.place(M.cylinder(_u(gen, 0.12, 0.2), h), trans=(0, 0, h / 2)),
                       M.place(M.hemisphere(cap), trans=(0, 0, h), scale=(1.0, 1.0, _u(gen, 0.5, 0.8))))
    raise ValueError(f"unknown shape {name!r}; choose from {SHAPE_CLASSES}")


def sample_shape(mesh: M.Mesh, num_points: int, gen: torch.Generator, *, noise: float = 0.0, nonuniform: float = 0.0):
    """Surface samples of ``mesh`` with normals, non-uniform density ``nonuniform`` and Gaussian ``noise`` (both >= 0)."""
    verts, faces = mesh
    weights = None
    if nonuniform > 0:
        direction = torch.randn(3, generator=gen, dtype=torch.float64)
        centroid = verts[faces].mean(dim=1)
        centroid = (centroid - centroid.mean(dim=0)) / centroid.norm(dim=1).max().clamp_min(1e-12)
        weights = torch.exp(nonuniform * centroid @ (direction / direction.norm()))
    pos, normal = F.sample_surface(verts, faces, num_points, generator=gen, face_weights=weights)
    if noise > 0:
        pos = pos + noise * torch.randn(pos.shape, generator=gen, dtype=pos.dtype)
    return pos, normal


class SyntheticDataset(GeometricDataset):
    """Base of the generated datasets: built in memory from ``seed`` on construction, nothing written."""

    subdir = "synthetic"

    def __init__(self, num_samples: int, split: str, seed: int, transform=None):
        super().__init__(None, transform=transform)
        if not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be an int >= 1, got {num_samples!r}")
        if split not in _SPLIT_OFFSET:
            raise ValueError(f"split must be one of {tuple(_SPLIT_OFFSET)}, got {split!r}")
        if not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        self.num_samples, self.split, self.seed = num_samples, split, seed

    def load(self):
        data_list = [self.generate(i) for i in range(self.num_samples)]
        self._store, self._slices = collate_list(data_list, self.data_cls)
        self._count = len(data_list)

    def generate(self, index: int):
        """Item ``index`` of the split, a ``Data`` drawn from a generator seeded by ``(seed, split, index)`` only:
        the same item whatever the dataset's size or the order items are made in. Subclasses implement it."""
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}({len(self)}, split={self.split!r}, seed={self.seed})"


class SyntheticShapes(SyntheticDataset):
    """Shape classification data (see the module docstring).

    Args:
        num_per_class: samples per class (total ``12 * num_per_class``; labels cycle through the classes).
        num_points: points per shape.
        split: ``"train"``, ``"val"`` or ``"test"`` (disjoint random streams).
        seed: master seed.
        noise: std of the Gaussian noise before normalisation (shape units ~1).
        nonuniform: strength ``s >= 0`` of the non-uniform sampling (0 = uniform by area).
        rotation: ``None``, ``"z"``, ``"SO3"`` or ``"O3"``: one random rotation per sample.
        classes: subset of :data:`SHAPE_CLASSES` (labels index this tuple).
        transform: applied on access.
    """

    def __init__(self, num_per_class: int = 10, num_points: int = 1024, split: str = "train", seed: int = 0, *,
                 noise: float = 0.01, nonuniform: float = 1.0, rotation: str | None = None, classes=SHAPE_CLASSES,
                 transform=None):
        classes = (classes,) if isinstance(classes, str) else tuple(classes)  # one class, not its letters
        unknown = [c for c in classes if c not in SHAPE_CLASSES]
        if unknown or not classes:
            raise ValueError(f"classes must be a non-empty subset of {SHAPE_CLASSES}, got unknown {unknown}")
        # checked here: the base class reported a bad count as num_samples (the product), a bool num_points as num
        if isinstance(num_per_class, bool) or not isinstance(num_per_class, int) or num_per_class < 1:
            raise ValueError(f"num_per_class must be an int >= 1, got {num_per_class!r}")
        if isinstance(num_points, bool) or not isinstance(num_points, int) or num_points < 1:
            raise ValueError(f"num_points must be an int >= 1, got {num_points!r}")
        # a NaN noise or non-uniformity was taken as 0 (NaN > 0 is False); an infinite one gave NaN points
        noise, nonuniform = check_real(noise, "noise", minimum=0), check_real(nonuniform, "nonuniform", minimum=0)
        if rotation is not None and rotation not in F.ROTATION_GROUPS:
            raise ValueError(f"rotation must be None or one of {F.ROTATION_GROUPS}, got {rotation!r}")
        super().__init__(num_per_class * len(classes), split, seed, transform)
        self.classes, self.num_points, self.noise, self.nonuniform, self.rotation = classes, num_points, noise, nonuniform, rotation
        self.load()

    def generate(self, index: int):
        """Shape ``index``: class ``index % len(classes)``, ``pos [num_points, 3]`` sampled on its surface, ``y [1]``."""
        from torch_geometric.data import Data

        label = index % len(self.classes)
        gen = sample_generator(self.seed, self.split, index)
        mesh = shape_mesh(self.classes[label], gen)
        pos, normal = sample_shape(mesh, self.num_points, gen, noise=self.noise, nonuniform=self.nonuniform)
        pos, _, _ = F.normalize_points(pos, "mean", "sphere")
        if self.rotation is not None:
            rot = F.random_rotation_matrix(self.rotation, gen, dtype=torch.float64)
            pos, normal = pos @ rot.T, normal @ rot.T
        return Data(pos=pos.float(), normal=normal.float(), y=torch.tensor([label]))
