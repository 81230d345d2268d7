"""Seeded transforms on torch_geometric ``Data`` that never modify their input.

Every transform subclasses :class:`torch_geometric.transforms.BaseTransform` (the input is
shallow-copied before ``forward``) and only *reassigns* attributes, so the caller's tensors are
never changed in place. Random transforms take ``seed``: an int gives the transform its own
``torch.Generator`` (a reproducible sequence of draws); ``None`` uses torch's global RNG (what
DataLoader workers seed differently).

Geometric transforms declare the attributes they move: positions (rotated and translated) and
vectors (rotated only, e.g. ``normal``, ``forces``). Point selections (sampling, crop, voxel
downsampling) subset every per-point attribute (a tensor whose first dimension equals the
number of points) and drop a now-stale ``edge_index``.

======================  ========================================================================
``SamplePoints``        mesh (``pos`` + ``face``) -> area-weighted surface samples (+ normals);
                        point cloud -> ``num`` points (random / FPS / first)
``Normalize``           centre (mean / bbox) and scale (unit sphere / unit cube)
``RandomRotation``      Haar-uniform SO(3), rotation about z, or O(3) (rotations and reflections)
``Jitter``              clipped Gaussian noise on positions
``RandomCrop``          keep a fraction of points: half-space (plane) or ball crop
``VoxelDownsample``     one point per voxel (means; first value for integer attributes)
``RadiusGraph``         ``edge_index`` from :func:`geomdl.ops.radius_graph`
``KNNGraph``            ``edge_index`` from :func:`geomdl.ops.knn_graph`
======================  ========================================================================
"""
from __future__ import annotations

import copy
import numbers

import torch
from torch_geometric.transforms import BaseTransform, Compose

from geomdl.datasets import functional as F
from geomdl.datasets.base import SeededStream
from geomdl.ops._validation import check_bool, check_int, check_positive_real, check_real

VECTOR_ATTRS = ("normal", "forces", "vel")
_NOT_PER_POINT = ("edge_index", "edge_attr", "face", "batch", "ptr")

__all__ = ["Compose", "SamplePoints", "Normalize", "RandomRotation", "Jitter", "RandomCrop", "VoxelDownsample",
           "RadiusGraph", "KNNGraph", "select_points"]


def _num_points(data) -> int:
    if getattr(data, "pos", None) is None:
        raise ValueError("the transform needs data.pos ([N, 3] float)")
    F._check_pos(data.pos, "data.pos")
    return data.pos.shape[0]


def _attr_names(names, arg: str) -> tuple[str, ...]:
    """``names`` (an iterable of attribute names: list, tuple, set, ...) as a tuple; a bare string (which would
    iterate character by character), a non-iterable or a non-string name is a ValueError naming ``arg``."""
    try:
        out = tuple(names) if not isinstance(names, (str, bytes)) else None
    except TypeError:
        out = None
    if out is None or not all(isinstance(n, str) for n in out):
        raise ValueError(f"{arg} must be a sequence of attribute names, got {names!r}")
    return out


def select_points(data, index: torch.Tensor):
    """Copy of ``data`` keeping the points ``index`` in every per-point attribute (drops ``edge_index``)."""
    n = _num_points(data)
    out = copy.copy(data)
    for key, value in data.items():
        if key in _NOT_PER_POINT:
            continue
        if isinstance(value, torch.Tensor) and value.dim() >= 1 and value.shape[0] == n and not (key == "y" and n == 1):
            out[key] = value[index]
    for key in ("edge_index", "edge_attr"):
        if key in out:
            del out[key]
    return out


class _Seeded(BaseTransform):
    def __init__(self, seed: int | None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        seed = None if seed is None else int(seed)
        self.seed = seed
        self._stream = SeededStream(seed) if seed is not None else None

    @property
    def generator(self) -> torch.Generator | None:
        """The seeded generator (re-seeded per DataLoader worker, see :class:`SeededStream`); ``None``
        without a seed (torch's global RNG, which the DataLoader seeds per worker)."""
        return self._stream.get() if self._stream is not None else None

    @generator.setter
    def generator(self, gen: torch.Generator | None) -> None:
        if gen is None:
            self._stream = None
            return
        if self._stream is None:
            self._stream = SeededStream(0)
        self._stream.generator = gen


class SamplePoints(_Seeded):
    """``num`` points from a mesh (``pos`` = vertices, ``face [3, F]`` as in PyG or ``[F, 3]``; a ``[3, 3]``
    face tensor is read as PyG's ``[3, F]``) or a point cloud.

    Meshes: area-weighted surface sampling (:func:`geomdl.datasets.functional.sample_surface`), sets
    ``normal`` when ``include_normals``, removes ``face``. Point clouds: ``method="random"`` (without
    replacement; with replacement only when the cloud has fewer than ``num`` points), ``"fps"``
    (farthest-point sampling from a random start, :func:`geomdl.ops.fps`; all points when the
    cloud is smaller) or ``"first"`` (the first ``num`` points, the
    PointNet++ convention for ModelNet's resampled files).
    """

    def __init__(self, num: int, include_normals: bool = True, method: str = "random", seed: int | None = None):
        super().__init__(seed)
        num, include_normals = check_int(num, "num"), check_bool(include_normals, "include_normals")
        if method not in ("random", "fps", "first"):
            raise ValueError(f"method must be 'random', 'fps' or 'first', got {method!r}")
        self.num, self.include_normals, self.method = num, include_normals, method

    def forward(self, data):
        n = _num_points(data)
        face = getattr(data, "face", None)
        if face is not None:
            if face.dim() != 2 or 3 not in face.shape:
                raise ValueError(f"face must have shape [3, F] or [F, 3], got {tuple(face.shape)}")
            faces = face.T if face.shape[0] == 3 else face  # [3, F] (PyG's Data.face) wins when F = 3
            pos, normal = F.sample_surface(data.pos, faces, self.num, generator=self.generator)
            # the samples are new points: per-vertex attributes (normals, labels, ...) and a vertex graph no longer
            # apply to them
            for key in [k for k, v in data.items() if k not in _NOT_PER_POINT and k != "pos" and isinstance(v, torch.Tensor)
                        and v.dim() > 0 and v.shape[0] == n]:
                del data[key]
            for key in ("edge_index", "edge_attr"):
                if key in data:
                    del data[key]
            data.pos = pos
            del data.face
            if self.include_normals:
                data.normal = normal
            return data
        if n == 0:
            raise ValueError("cannot sample points from an empty cloud")
        if self.method == "first":
            index = torch.arange(min(self.num, n))
        elif self.method == "fps":
            from geomdl.ops import fps

            index = fps(data.pos, num=self.num, random_start=True, generator=self.generator)
        elif n >= self.num:
            index = torch.randperm(n, generator=self.generator)[: self.num]
        else:
            index = torch.randint(n, (self.num,), generator=self.generator)
        return select_points(data, index)

    def __repr__(self):
        return f"{type(self).__name__}({self.num}, method={self.method!r})"


class Normalize(BaseTransform):
    """``pos <- (pos - c) / s`` (see :func:`geomdl.datasets.functional.normalize_points`); vectors unchanged.

    ``center`` (default ``"mean"``) and ``scale`` (default ``"sphere"``) are the options of
    :func:`~geomdl.datasets.functional.normalize_points`, validated here (``ValueError``).
    """

    def __init__(self, center: str | None = "mean", scale: str | None = "sphere"):
        F.normalize_points(torch.zeros(1, 3), center, scale)  # validates the options
        self.center, self.scale = center, scale

    def forward(self, data):
        _num_points(data)
        data.pos, _, _ = F.normalize_points(data.pos, self.center, self.scale)
        return data

    def __repr__(self):
        return f"{type(self).__name__}(center={self.center!r}, scale={self.scale!r})"


class RandomRotation(_Seeded):
    """Rotate positions and vectors by one random orthogonal matrix per call: ``x <- x R^T``.

    Args:
        group: ``"SO3"`` (Haar-uniform), ``"z"`` (about the z axis) or ``"O3"`` (Haar on O(3), reflections included).
        positions / vectors: attribute names to rotate (missing ones are skipped).
        record: store the matrix in ``data.rotation [1, 3, 3]``.
    """

    def __init__(self, group: str = "SO3", seed: int | None = None, positions=("pos",), vectors=VECTOR_ATTRS, record: bool = False):
        super().__init__(seed)
        if group not in F.ROTATION_GROUPS:
            raise ValueError(f"group must be one of {F.ROTATION_GROUPS}, got {group!r}")
        positions, vectors = _attr_names(positions, "positions"), _attr_names(vectors, "vectors")
        self.group, self.positions, self.vectors, self.record = group, positions, vectors, check_bool(record, "record")

    def forward(self, data):
        rot = F.random_rotation_matrix(self.group, self.generator, dtype=torch.float64)
        for key in self.positions + self.vectors:
            value = getattr(data, key, None)
            if isinstance(value, torch.Tensor):
                if value.shape[-1] != 3:
                    raise ValueError(f"data.{key} must have a last dimension of 3 to be rotated, got {tuple(value.shape)}")
                data[key] = (value.double() @ rot.T).to(value.dtype)
        if self.record:
            data.rotation = rot.to(data.pos.dtype if getattr(data, "pos", None) is not None else torch.float32).unsqueeze(0)
        return data

    def __repr__(self):
        return f"{type(self).__name__}({self.group!r})"


class Jitter(_Seeded):
    """``pos <- pos + clip(N(0, sigma^2), -clip, clip)`` per coordinate (``clip=None``: no clipping).

    Defaults ``sigma=0.01``, ``clip=0.05``; ``seed``: seeded generator (None: torch's global RNG).
    """

    def __init__(self, sigma: float = 0.01, clip: float | None = 0.05, seed: int | None = None):
        super().__init__(seed)
        self.sigma = check_real(sigma, "sigma", minimum=0)
        self.clip = check_real(clip, "clip", minimum=0, open_minimum=True, optional=True)

    def forward(self, data):
        _num_points(data)
        noise = torch.randn(data.pos.shape, generator=self.generator, dtype=torch.float64) * self.sigma
        if self.clip is not None:
            noise = noise.clamp(-self.clip, self.clip)
        data.pos = data.pos + noise.to(data.pos.dtype)
        return data

    def __repr__(self):
        return f"{type(self).__name__}(sigma={self.sigma}, clip={self.clip})"


class RandomCrop(_Seeded):
    """Keep ``round(ratio * N)`` points: those farthest along a random direction (``"plane"``,
    a half-space crop) or those nearest to a random point of the cloud (``"sphere"``).

    ``ratio`` in (0, 1] (default 0.7), ``mode`` ``"plane"`` (default) or ``"sphere"``, ``seed`` as for
    :class:`Jitter`. At least one point is kept; the kept points stay in their original order.
    """

    def __init__(self, ratio: float = 0.7, mode: str = "plane", seed: int | None = None):
        super().__init__(seed)
        ratio = check_real(ratio, "ratio", minimum=0, maximum=1, open_minimum=True)
        if mode not in ("plane", "sphere"):
            raise ValueError(f"mode must be 'plane' or 'sphere', got {mode!r}")
        self.ratio, self.mode = ratio, mode

    def forward(self, data):
        n = _num_points(data)
        if n == 0:  # nothing to crop: the empty cloud as it is
            return data
        keep = max(1, int(round(self.ratio * n)))
        pos = data.pos.double()
        if self.mode == "plane":
            direction = torch.randn(3, generator=self.generator, dtype=torch.float64)
            score = (pos - pos.mean(dim=0)) @ (direction / direction.norm())
        else:
            centre = pos[int(torch.randint(n, (1,), generator=self.generator))]
            score = -(pos - centre).norm(dim=1)
        index = torch.topk(score, keep).indices.sort().values
        return select_points(data, index)

    def __repr__(self):
        return f"{type(self).__name__}(ratio={self.ratio}, mode={self.mode!r})"


class VoxelDownsample(BaseTransform):
    """One point per occupied voxel of size ``voxel_size``: float attributes averaged (``normal``
    re-normalised), integer/bool attributes take the value of the voxel's first point."""

    def __init__(self, voxel_size: float):
        self.voxel_size = check_positive_real(voxel_size, "voxel_size")

    def forward(self, data):
        from geomdl.ops import scatter

        n = _num_points(data)
        if n == 0:  # no voxel is occupied: the empty cloud as it is
            return data
        cluster, count = F.voxel_clusters(data.pos, self.voxel_size)
        first = torch.full((count,), n, dtype=torch.long).scatter_reduce(0, cluster, torch.arange(n), reduce="amin")
        out = select_points(data, first)
        for key, value in data.items():
            if key in _NOT_PER_POINT or not isinstance(value, torch.Tensor) or value.dim() == 0 or value.shape[0] != n:
                continue
            if value.is_floating_point() and not (key == "y" and n == 1):
                mean = scatter(value.reshape(n, -1), cluster, dim=0, dim_size=count, reduce="mean").reshape(count, *value.shape[1:])
                if key in VECTOR_ATTRS[:1]:
                    mean = mean / mean.norm(dim=-1, keepdim=True).clamp_min(1e-12)
                out[key] = mean
        return out

    def __repr__(self):
        return f"{type(self).__name__}({self.voxel_size})"


class RadiusGraph(BaseTransform):
    """``edge_index`` (row 0 source ``j``, row 1 target ``i``) of all pairs within ``r`` (:func:`geomdl.ops.radius_graph`).

    At most ``max_num_neighbors`` (default 32) nearest sources per target; ``loop`` (default False) adds
    self-loops; ``data.batch`` is used when present.
    """

    def __init__(self, r: float, max_num_neighbors: int = 32, loop: bool = False):
        self.r, self.loop = check_positive_real(r, "r"), check_bool(loop, "loop")
        self.max_num_neighbors = check_int(max_num_neighbors, "max_num_neighbors")

    def forward(self, data):
        from geomdl.ops import radius_graph

        _num_points(data)
        data.edge_index = radius_graph(data.pos, self.r, getattr(data, "batch", None), self.max_num_neighbors, self.loop)
        return data

    def __repr__(self):
        return f"{type(self).__name__}(r={self.r}, max_num_neighbors={self.max_num_neighbors})"


class KNNGraph(BaseTransform):
    """``edge_index`` from each point's ``k`` nearest neighbours (:func:`geomdl.ops.knn_graph`).

    ``loop`` (default False): count the point itself among its ``k``; ``data.batch`` is used when present.
    """

    def __init__(self, k: int, loop: bool = False):
        self.k, self.loop = check_int(k, "k"), check_bool(loop, "loop")

    def forward(self, data):
        from geomdl.ops import knn_graph

        _num_points(data)
        data.edge_index = knn_graph(data.pos, self.k, getattr(data, "batch", None), self.loop)
        return data

    def __repr__(self):
        return f"{type(self).__name__}(k={self.k})"
