"""Multi-part scenes for part segmentation under new arrangements of the parts.

Every sample is a point cloud made of rigid *parts* with a class per part; the *arrangement* says how
each part is oriented about its own centroid, independently of the other parts, so that a model can
be trained on one arrangement distribution and tested on another:

* ``"none"``: the source's own pose (upright objects; articulated objects as generated);
* ``"z"``: every part rotated about the vertical axis through its centroid by a uniform angle;
* ``"so3"``: every part rotated by its own Haar-random rotation (objects tumbled freely).

Sources (``source``):

* ``"shapes"``: 2-4 objects drawn from the built-in shape classes
  (:data:`geomdl.datasets.synthetic.shapes.SHAPE_CLASSES`: a fresh random instance per object),
  scaled to a radius in ``object_radius`` and placed in distinct cells of a 3 x 3 grid of pitch
  ``spacing`` (with jitter; the objects' bounding spheres never overlap, under any arrangement).
* ``"modelnet"``: the same layout with real ModelNet40 shapes (``modelnet40_normal_resampled`` text
  files under ``root``; every listed shape of the chosen ``classes`` is used, a fresh random subset
  of its 10,000 points per scene). Label = index into ``classes``.
* ``"parts"``: the built-in articulated objects and scenes of
  :class:`~geomdl.datasets.synthetic.SyntheticParts` (arms, figures, floor scenes; part classes
  :data:`~geomdl.datasets.synthetic.parts.PART_CLASSES`), re-posed by the arrangement part by part.

Items (:class:`~geomdl.datasets.data.PartData`): ``pos [N, 3]`` float32, ``y [N]`` (class of the
point's part), ``part [N]`` (rigid part id, offset when batched), ``part_label [P]``, ``part_rot
[P, 3, 3]`` / ``part_trans [P, 3]`` (the rigid motion of every part from its canonical pose:
``pos = canonical @ R.T + t`` up to the noise), ``sample_id [1]``. Samples depend only on
``(seed, split, index)`` and the options; ``train``/``val`` use ``train_arrangement``, ``test`` uses
``test_arrangement``.
"""
from __future__ import annotations

import pathlib

import torch

from geomdl.utils.constants import constant_cache

ARRANGEMENTS = ("none", "z", "so3")
SOURCES = ("shapes", "modelnet", "parts")
SPLITS = ("train", "val", "test")
MODELNET_SCENE_CLASSES = ("airplane", "bottle", "bowl", "chair", "guitar", "person", "table", "tent")


def arrangement_rotation(arrangement: str, generator: torch.Generator) -> torch.Tensor:
    """``[3, 3]`` float64 rotation of one part under ``arrangement`` (see the module docstring)."""
    from geomdl.datasets.functional import random_rotation_matrix

    if arrangement == "none":
        return torch.eye(3, dtype=torch.float64)
    if arrangement == "z":
        return random_rotation_matrix("z", generator, dtype=torch.float64)
    if arrangement == "so3":
        return random_rotation_matrix("SO3", generator, dtype=torch.float64)
    raise ValueError(f"arrangement must be one of {ARRANGEMENTS}, got {arrangement!r}")


@constant_cache(maxsize=256)
def _modelnet_points(path: str) -> torch.Tensor:
    """Positions of one ``normal_resampled`` file, centred and scaled into the unit sphere (float64)."""
    from geomdl.datasets.functional import normalize_points
    from geomdl.datasets.modelnet import read_modelnet_txt

    arr = read_modelnet_txt(path)
    pos, _, _ = normalize_points(torch.from_numpy(arr[:, :3]).double(), "mean", "sphere")
    return pos


def modelnet_shape_files(root, classes) -> dict[str, list[pathlib.Path]]:
    """``{class: [txt files]}`` of the ``modelnet40_normal_resampled`` layout under ``root``."""
    from geomdl.datasets.base import data_root

    root = pathlib.Path(root) if root is not None else data_root() / "modelnet40"
    for folder in (root, root / "modelnet40_normal_resampled"):
        if (folder / "modelnet40_shape_names.txt").is_file():
            break
    else:
        raise FileNotFoundError(f"no modelnet40_normal_resampled files under {root}: expected "
                                f"modelnet40_shape_names.txt and <class>/<class>_<id>.txt (set data.root)")
    files = {c: sorted((folder / c).glob(f"{c}_*.txt")) for c in classes}
    empty = [c for c, f in files.items() if not f]
    if empty:
        raise ValueError(f"{folder}: no shapes of class(es) {empty}; present: "
                         f"{sorted(p.name for p in folder.iterdir() if p.is_dir() and any(p.glob('*.txt')))}")
    return files


class PartScenes(torch.utils.data.Dataset):
    """Scenes of independently arranged rigid parts (see the module docstring).

    Args:
        source: ``"shapes"``, ``"modelnet"`` or ``"parts"``.
        split: ``"train"``, ``"val"`` or ``"test"`` (disjoint seeded streams).
        num_scenes: samples in the split.
        eval_scenes: samples in ``val`` and ``test`` (default: ``num_scenes``).
        num_points: points per scene (objects share them equally).
        train_arrangement / test_arrangement: arrangement of ``train``/``val`` and of ``test``.
        objects_per_scene: ``[min, max]`` objects per scene (``shapes``/``modelnet``; at most 9).
        object_radius: ``[min, max]`` radius of an object's bounding sphere.
        spacing: pitch of the 3 x 3 placement grid (must exceed ``2 * max radius``).
        noise: std of Gaussian noise on the positions.
        classes: object classes (default: every shape class / :data:`MODELNET_SCENE_CLASSES`).
        kinds: ``SyntheticParts`` kinds for ``source="parts"``.
        root: ModelNet folder for ``source="modelnet"``.
        seed: master seed.
    """

    def __init__(self, source: str = "shapes", split: str = "train", num_scenes: int = 64, num_points: int = 512, *,
                 train_arrangement: str = "z", test_arrangement: str = "so3", objects_per_scene=(2, 4),
                 object_radius=(0.35, 0.45), spacing: float = 1.2, noise: float = 0.005, classes=None,
                 kinds=("arm", "figure", "scene"), root=None, seed: int = 0, eval_scenes: int | None = None):
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        for name, value in (("train_arrangement", train_arrangement), ("test_arrangement", test_arrangement)):
            if value not in ARRANGEMENTS:
                raise ValueError(f"{name} must be one of {ARRANGEMENTS}, got {value!r}")
        if isinstance(num_scenes, bool) or not isinstance(num_scenes, int) or num_scenes < 1:
            raise ValueError(f"num_scenes must be an int >= 1, got {num_scenes!r}")
        if eval_scenes is not None and (isinstance(eval_scenes, bool) or not isinstance(eval_scenes, int) or eval_scenes < 1):
            raise ValueError(f"eval_scenes must be None or an int >= 1, got {eval_scenes!r}")
        if split != "train" and eval_scenes is not None:
            num_scenes = eval_scenes
        lo, hi = (int(v) for v in objects_per_scene)
        if not 1 <= lo <= hi <= 9:
            raise ValueError(f"objects_per_scene must be [min, max] with 1 <= min <= max <= 9, got {list(objects_per_scene)}")
        if isinstance(num_points, bool) or not isinstance(num_points, int) or num_points < 16 * hi:
            raise ValueError(f"num_points must be an int >= 16 points per object ({16 * hi}), got {num_points!r}")
        r_lo, r_hi = (float(v) for v in object_radius)
        if not 0 < r_lo <= r_hi:
            raise ValueError(f"object_radius must be [min, max] with 0 < min <= max, got {list(object_radius)}")
        if not spacing > 2 * r_hi:
            raise ValueError(f"spacing must exceed 2 * max object_radius = {2 * r_hi}, got {spacing}")
        if noise < 0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        self.source, self.split, self.num_points, self.seed = source, split, num_points, int(seed)
        self.arrangement = test_arrangement if split == "test" else train_arrangement
        self.objects_per_scene, self.object_radius = (lo, hi), (r_lo, r_hi)
        self.spacing, self.noise = float(spacing), float(noise)
        if source == "shapes":
            from geomdl.datasets.synthetic.shapes import SHAPE_CLASSES

            self.class_names = tuple(classes) if classes else SHAPE_CLASSES
            unknown = [c for c in self.class_names if c not in SHAPE_CLASSES]
            if unknown:
                raise ValueError(f"classes: unknown shape class(es) {unknown}; choose from {SHAPE_CLASSES}")
        elif source == "modelnet":
            self.class_names = tuple(classes) if classes else MODELNET_SCENE_CLASSES
            self.files = modelnet_shape_files(root, self.class_names)
        else:
            from geomdl.datasets.synthetic.parts import PART_CLASSES

            if classes:
                raise ValueError("classes: the 'parts' source has fixed part classes (PART_CLASSES); leave classes unset")
            self.class_names = PART_CLASSES
            self.kinds = tuple(kinds)
        self.num_classes = len(self.class_names)
        self.items = self._parts_scenes(num_scenes) if source == "parts" else [self._object_scene(i) for i in range(num_scenes)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        return self.items[index]

    def __repr__(self) -> str:
        return (f"PartScenes({len(self)}, source={self.source!r}, split={self.split!r}, arrangement={self.arrangement!r}, "
                f"num_points={self.num_points})")

    # ---- generation ------------------------------------------------------------------------------
    def _generator(self, index: int, stream: int) -> torch.Generator:
        from geomdl.datasets.synthetic.shapes import sample_generator

        return sample_generator(self.seed + 7919 * SOURCES.index(self.source), self.split, index, stream)

    def _object_points(self, label: int, n: int, gen: torch.Generator) -> torch.Tensor:
        """``[n, 3]`` float64 points of a random instance of class ``label`` in the unit sphere, upright."""
        from geomdl.datasets.functional import normalize_points

        if self.source == "shapes":
            from geomdl.datasets.synthetic.shapes import sample_shape, shape_mesh

            pos, _ = sample_shape(shape_mesh(self.class_names[label], gen), n, gen)
            return normalize_points(pos.double(), "mean", "sphere")[0]
        files = self.files[self.class_names[label]]
        path = files[int(torch.randint(len(files), (1,), generator=gen))]
        full = _modelnet_points(str(path))
        pos = full[torch.randperm(full.shape[0], generator=gen)[:n]]
        return normalize_points(pos, "mean", "sphere")[0]

    def _object_scene(self, index: int):
        from geomdl.datasets.data import PartData

        gen, gen_rot = self._generator(index, 0), self._generator(index, 3)  # arrangements: own stream
        lo, hi = self.objects_per_scene
        k = int(torch.randint(lo, hi + 1, (1,), generator=gen))
        cells = torch.randperm(9, generator=gen)[:k]
        counts = [self.num_points // k + (1 if i < self.num_points % k else 0) for i in range(k)]
        r_lo, r_hi = self.object_radius
        slack = (self.spacing - 2 * r_hi) / 2
        pos, labels, rots, trans = [], [], [], []
        for i in range(k):
            label = int(torch.randint(self.num_classes, (1,), generator=gen))
            radius = r_lo + (r_hi - r_lo) * float(torch.rand((), generator=gen, dtype=torch.float64))
            local = self._object_points(label, counts[i], gen) * radius
            rot = arrangement_rotation(self.arrangement, gen_rot)
            cell = int(cells[i])
            centre = torch.tensor([(cell % 3 - 1) * self.spacing, (cell // 3 - 1) * self.spacing, 0.0], dtype=torch.float64)
            centre[:2] += (torch.rand(2, generator=gen, dtype=torch.float64) * 2 - 1) * slack
            pos.append(local @ rot.T + centre)
            labels.append(label)
            rots.append(rot)
            trans.append(centre)
        return self._pack(pos, labels, rots, trans, gen, index, PartData)

    def _pack(self, pos, labels, rots, trans, gen, index, cls):
        part = torch.cat([torch.full((len(p),), i, dtype=torch.long) for i, p in enumerate(pos)])
        pos = torch.cat(pos)
        shift = pos.mean(0)  # centre the scene
        if self.noise > 0:
            pos = pos + self.noise * torch.randn(pos.shape, generator=gen, dtype=pos.dtype)
        part_label = torch.tensor(labels, dtype=torch.long)
        return cls(pos=(pos - shift).float(), y=part_label[part], part=part, part_label=part_label,
                   part_rot=torch.stack(rots).float(), part_trans=(torch.stack(trans) - shift).float(),
                   sample_id=torch.tensor([index]))

    def _parts_scenes(self, num: int) -> list:
        from geomdl.datasets.data import PartData
        from geomdl.datasets.synthetic.parts import SyntheticParts

        base = SyntheticParts(num_samples=num, num_points=self.num_points, split=self.split, seed=self.seed, kinds=self.kinds)
        out = []
        for index in range(num):
            d = base[index]
            gen, gen_rot = self._generator(index, 1), self._generator(index, 3)
            pos, part = d.pos.double(), d.part
            num_parts = int(d.part_rot.shape[0])
            pieces, rots, trans = [], [], []
            for p in range(num_parts):
                pts = pos[part == p]
                c = pts.mean(0)
                extra = arrangement_rotation(self.arrangement, gen_rot)
                pieces.append((pts - c) @ extra.T + c)
                rots.append(extra @ d.part_rot[p].double())
                trans.append(extra @ (d.part_trans[p].double() - c) + c)
            # points of SyntheticParts are stored part by part, so the concatenation keeps their order
            if not torch.equal(part, torch.sort(part, stable=True).values):
                raise RuntimeError("SyntheticParts points are expected to be grouped by part")
            out.append(self._pack(pieces, d.part_label.tolist(), rots, trans, gen, index, PartData))
        return out


def scene_summary(dataset) -> str:
    """One line describing a :class:`PartScenes` split (for logs)."""
    n_parts = [int(d.part_label.numel()) for d in dataset.items]
    return (f"{dataset!r}: {len(dataset.items)} scenes, {sum(n_parts) / max(1, len(n_parts)):.1f} parts/scene, "
            f"{dataset.num_classes} classes")

