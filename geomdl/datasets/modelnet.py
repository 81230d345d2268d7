"""ModelNet10 / ModelNet40 shape classification (Wu et al., CVPR 2015, "3D ShapeNets").

Three on-disk formats are read (``format="auto"`` picks the first found in this order):

* ``"normal_resampled"`` (PointNet++, Qi et al. 2017): ``modelnet40_normal_resampled/<class>/<id>.txt``,
  10,000 lines ``x,y,z,nx,ny,nz`` per shape, with ``modelnet{10,40}_shape_names.txt`` (label = line
  number) and ``modelnet{10,40}_{train,test}.txt`` (shape ids). Points come normalised to the unit sphere.
* ``"hdf5"`` (PointNet): ``modelnet40_ply_hdf5_2048/ply_data_{train,test}*.h5`` with ``data [B, 2048, 3]``,
  ``label [B, 1]`` (and optionally ``normal``), listed in ``{train,test}_files.txt``, names in ``shape_names.txt``.
* ``"off"`` (the original archive): ``ModelNet{10,40}/<class>/{train,test}/<class>_<id>.off`` meshes,
  turned into points by area-weighted surface sampling (normals = face normals), seeded per shape.

Axes: the OFF meshes are z-up; the resampled and HDF5 files are y-up. With ``up="z"`` (default) the
latter are rotated by the proper rotation ``(x, y, z) -> (x, -z, y)`` so that every format is z-up and
the ``"z"`` rotation protocols rotate about gravity. ``up="file"`` keeps the file's axes.

Statistics (official): ModelNet40 9,843 train / 2,468 test shapes in 40 classes; ModelNet10 3,991 /
908 in 10 classes. Terms: academic/research use, cite the ModelNet paper.

Items: ``Data(pos [N, 3] float32, normal [N, 3] float32, y [1] int64, shape_id str)``.

Rotation protocols (``rotation="train/test"``): ``"z/z"``, ``"z/SO3"``, ``"SO3/SO3"`` (or ``None``):
the train split draws a fresh rotation of the named kind at every access from a generator seeded by
``seed``; the test split uses one fixed rotation per shape (seeded by ``seed`` and the index), so an
evaluation is the same in every epoch and run. Rotations are applied on access (not cached).
"""
from __future__ import annotations

import numbers
import pathlib

import numpy as np
import torch

from geomdl.datasets import functional as F
from geomdl.datasets.base import GeometricDataset, SeededStream, check_seed
from geomdl.ops._validation import check_bool
from geomdl.utils.io import read_text

MODELNET40_CLASSES = (
    "airplane", "bathtub", "bed", "bench", "bookshelf", "bottle", "bowl", "car", "chair", "cone", "cup", "curtain",
    "desk", "door", "dresser", "flower_pot", "glass_box", "guitar", "keyboard", "lamp", "laptop", "mantel", "monitor",
    "night_stand", "person", "piano", "plant", "radio", "range_hood", "sink", "sofa", "stairs", "stool", "table", "tent",
    "toilet", "tv_stand", "vase", "wardrobe", "xbox",
)
MODELNET10_CLASSES = ("bathtub", "bed", "chair", "desk", "dresser", "monitor", "night_stand", "sofa", "table", "toilet")
PROTOCOLS = ("z/z", "z/SO3", "SO3/SO3")
_Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # (x, y, z) -> (x, -z, y), det +1


def read_modelnet_txt(path, max_rows: int | None = None) -> np.ndarray:
    """One ``normal_resampled`` shape: ``[N, 6] float32`` (``x, y, z, nx, ny, nz``); errors name the file."""
    try:
        arr = np.loadtxt(path, delimiter=",", dtype=np.float32, max_rows=max_rows, ndmin=2, encoding="utf-8-sig")
    except ValueError as exc:
        raise ValueError(f"{path}: malformed ModelNet text file ({exc})") from None
    if arr.shape[1] != 6 or arr.shape[0] == 0:
        raise ValueError(f"{path}: expected rows of 6 comma-separated numbers x,y,z,nx,ny,nz, got shape {arr.shape}")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise ValueError(f"{path}: {int(bad.sum())} of {len(arr)} rows have NaN or infinite values "
                         f"(first at data row {int(np.argmax(bad))})")
    return arr


def _read_lines(path) -> list[str]:
    """Non-blank lines of a name/id list (UTF-8; a byte-order mark from a Windows editor is dropped)."""
    text = read_text(path, "a list of names, one per line").lstrip("\ufeff")
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def _read_class_names(path) -> list[str]:
    """The class names of a ``shape_names`` file, one per line; a name listed twice is a ``ValueError`` naming the file
    (every label after the repeat was shifted by one: the label is the line number among the names)."""
    names = _read_lines(path)
    seen: dict[str, int] = {}
    for k, name in enumerate(names, 1):
        if name in seen:
            raise ValueError(f"{path}: class {name!r} is listed twice (names {seen[name]} and {k}); labels are positions "
                             f"in this list, so each class must appear once")
        seen[name] = k
    return names


class ModelNet(GeometricDataset):
    """ModelNet10/40 point clouds with labels; see the module docstring for formats and protocols.

    Args:
        root: folder holding one of the layouts (default ``<data root>/modelnet40`` or ``modelnet10``).
        name: ``"40"`` or ``"10"``.
        split: ``"train"`` or ``"test"``.
        format: ``"auto"``, ``"normal_resampled"``, ``"hdf5"`` or ``"off"``.
        num_points: points per shape (<= 10,000 for resampled files, <= 2,048 for HDF5).
        sampling: for point files, ``"first"`` (the first ``num_points`` rows, PointNet++ convention),
            ``"random"`` or ``"fps"`` (seeded); OFF meshes are always surface-sampled.
        normalize: centre on the mean and scale into the unit sphere.
        up: ``"z"`` (every format z-up) or ``"file"`` (keep the file's axes).
        rotation: ``None`` or a protocol ``"z/z"``, ``"z/SO3"``, ``"SO3/SO3"``.
        seed: seed of the surface sampling, point subsampling and rotations.
        transform, processed_dir, force_reload: see :class:`~geomdl.datasets.base.GeometricDataset`.
    """

    version = 1

    def __init__(self, root=None, name: str = "40", split: str = "train", *, format: str = "auto", num_points: int = 1024,
                 sampling: str = "first", normalize: bool = True, up: str = "z", rotation: str | None = None, seed: int = 0,
                 transform=None, processed_dir=None, force_reload: bool = False):
        name = str(name)
        if name not in ("10", "40"):
            raise ValueError(f"name must be '10' or '40', got {name!r}")
        self.subdir = f"modelnet{name}"
        super().__init__(root, transform=transform, processed_dir=processed_dir, force_reload=force_reload)
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if format not in ("auto", "normal_resampled", "hdf5", "off"):
            raise ValueError(f"format must be 'auto', 'normal_resampled', 'hdf5' or 'off', got {format!r}")
        if isinstance(num_points, bool) or not isinstance(num_points, numbers.Integral) or num_points < 1:
            raise ValueError(f"num_points must be an int >= 1, got {num_points!r}")
        num_points = int(num_points)  # a NumPy integer: a Python int (cache keys are JSON)
        if sampling not in ("first", "random", "fps"):
            raise ValueError(f"sampling must be 'first', 'random' or 'fps', got {sampling!r}")
        if up not in ("z", "file"):
            raise ValueError(f"up must be 'z' or 'file', got {up!r}")
        if rotation is not None and rotation not in PROTOCOLS:
            raise ValueError(f"rotation must be None or one of {PROTOCOLS}, got {rotation!r}")
        normalize = check_bool(normalize, "normalize")  # bool("no") was True
        self.name, self.split, self.num_points, self.sampling = name, split, num_points, sampling
        self.normalize, self.up, self.rotation, self.seed = normalize, up, rotation, check_seed(seed)
        self.classes = MODELNET40_CLASSES if name == "40" else MODELNET10_CLASSES
        self.format, self.folder = self._detect(format)
        self._train_stream = SeededStream(self.seed)  # per-access train rotations (re-seeded in DataLoader workers)
        self.load()

    # ---- layout detection -----------------------------------------------------------------------
    def _detect(self, fmt: str):
        r, n = self.root, self.name
        candidates = {
            "normal_resampled": [r, r / "modelnet40_normal_resampled"],
            "hdf5": [r, r / "modelnet40_ply_hdf5_2048"],
            "off": [r, r / f"ModelNet{n}"],
        }
        tests = {
            "normal_resampled": lambda d: (d / f"modelnet{n}_shape_names.txt").is_file(),
            "hdf5": lambda d: (d / "shape_names.txt").is_file() and any(d.glob("*.h5")),
            "off": lambda d: any(d.glob(f"*/{self.split}/*.off")),
        }
        order = ["normal_resampled", "hdf5", "off"] if fmt == "auto" else [fmt]
        for f in order:
            for d in candidates[f]:
                if d.is_dir() and tests[f](d):
                    return f, d
        raise FileNotFoundError(
            f"no ModelNet{n} files ({', '.join(order)}) found under {r}: expected modelnet40_normal_resampled/"
            f"modelnet{n}_shape_names.txt, modelnet40_ply_hdf5_2048/*.h5 or ModelNet{n}/<class>/{self.split}/*.off "
            f"(see datasets/README.md; `geomdl datasets` shows what is present)")

    # ---- GeometricDataset API ---------------------------------------------------------------------
    def options(self) -> dict:
        return {"name": self.name, "split": self.split, "format": self.format, "num_points": self.num_points,
                "sampling": self.sampling, "normalize": self.normalize, "up": self.up, "seed": self.seed,
                "folder": str(self.folder.resolve())}

    def _items(self):
        """``[(path, label)]`` of the split (for the text and OFF formats)."""
        d, n = self.folder, self.name
        if self.format == "normal_resampled":
            names = _read_class_names(d / f"modelnet{n}_shape_names.txt")
            listing = d / f"modelnet{n}_{self.split}.txt"
            if not listing.is_file():
                raise FileNotFoundError(f"{listing}: split list missing (it ships with the official "
                                        "modelnet40_normal_resampled archive; one shape id per line)")
            ids = _read_lines(listing)
            out = []
            for sid in ids:
                cls = sid.rsplit("_", 1)[0]
                if cls not in names:
                    raise ValueError(f"{d / f'modelnet{n}_{self.split}.txt'}: shape {sid!r} has class {cls!r} not in shape_names")
                path = d / cls / f"{sid}.txt"
                if not path.is_file():
                    raise FileNotFoundError(f"{path}: listed in modelnet{n}_{self.split}.txt but missing")
                out.append((path, names.index(cls)))
            return out
        out = []
        for path in sorted(d.glob(f"*/{self.split}/*.off")):
            cls = path.parent.parent.name
            if cls not in self.classes:
                raise ValueError(f"{path}: class folder {cls!r} is not a ModelNet{n} class")
            out.append((path, self.classes.index(cls)))
        return out

    def _h5_files(self):
        d = self.folder
        listing = d / f"{self.split}_files.txt"
        if listing.is_file():
            files = [d / pathlib.Path(ln).name for ln in _read_lines(listing)]
        else:
            files = sorted(d.glob(f"ply_data_{self.split}*.h5"))
        missing = [str(f) for f in files if not f.is_file()]
        if missing or not files:
            raise FileNotFoundError(f"ModelNet HDF5 files missing for split {self.split!r} in {d}: {missing or 'none listed'}")
        return files

    def raw_paths(self):
        if self.format == "hdf5":
            return self._h5_files() + [self.folder / "shape_names.txt"]
        # the shape-name list fixes the labels: editing it must invalidate the cache like the split list
        extra = ([self.folder / f"modelnet{self.name}_{self.split}.txt", self.folder / f"modelnet{self.name}_shape_names.txt"]
                 if self.format == "normal_resampled" else [])
        return [p for p, _ in self._items()] + extra

    def process(self):
        from tqdm import tqdm

        from geomdl.datasets.formats.off import read_off

        if self.format == "hdf5":
            return self._process_h5()
        items = self._items()
        out = []
        for k, (path, label) in enumerate(tqdm(items, desc=f"ModelNet{self.name} {self.split}", leave=False, disable=True if len(items) < 50 else None)):
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + k)
            if self.format == "off":
                verts, faces = read_off(path)
                pos, normal = F.sample_surface(torch.from_numpy(verts), torch.from_numpy(faces), self.num_points, generator=gen)
                pos, normal = pos.float(), normal.float()
            else:
                rows = self.num_points if self.sampling == "first" else None
                arr = torch.from_numpy(read_modelnet_txt(path, max_rows=rows))
                pos, normal = self._subsample(arr[:, :3], arr[:, 3:], gen, path)
            out.append(self._finish(pos, normal, label, path.stem))
        return out

    def _process_h5(self):
        import h5py

        names = _read_class_names(self.folder / "shape_names.txt")
        if len(names) != len(self.classes):
            raise ValueError(f"{self.folder / 'shape_names.txt'}: expected {len(self.classes)} class names, got {len(names)}")
        out, k = [], 0
        for path in self._h5_files():
            try:
                with h5py.File(path, "r") as fh:
                    missing = [key for key in ("data", "label") if key not in fh]
                    if missing:
                        raise ValueError(f"missing dataset(s) {missing} (has {list(fh.keys())})")
                    data = np.asarray(fh["data"], dtype=np.float32)
                    raw_label = np.asarray(fh["label"]).reshape(-1)
                    normal = np.asarray(fh["normal"], dtype=np.float32) if "normal" in fh else None
            except (OSError, ValueError) as exc:
                raise ValueError(f"{path}: bad ModelNet HDF5 file: {exc}") from None
            if data.ndim != 3 or data.shape[2] != 3 or raw_label.shape[0] != data.shape[0]:
                raise ValueError(f"{path}: expected data [B, P, 3] and label [B], got {data.shape} and {raw_label.shape}")
            if normal is not None and normal.shape != data.shape:
                raise ValueError(f"{path}: expected normal {data.shape} like data, got {normal.shape}")
            # as read_modelnet_txt: a NaN point or normal, or a fractional label (truncated to another class), is an error
            if raw_label.dtype.kind not in "iu" and not (raw_label.dtype.kind == "f" and np.isfinite(raw_label).all()
                                                         and (raw_label == np.round(raw_label)).all()):
                raise ValueError(f"{path}: labels must be integer class indices, got dtype {raw_label.dtype}")
            label = raw_label.astype(np.int64)
            for key, arr in (("data", data), ("normal", normal)):
                bad = ~np.isfinite(arr).all(axis=(1, 2)) if arr is not None else np.zeros(0, dtype=bool)
                if bad.any():
                    raise ValueError(f"{path}: {key} of {int(bad.sum())} of {len(arr)} shapes has NaN or infinite values "
                                     f"(first: shape {int(np.argmax(bad))})")
            if label.size and (label.min() < 0 or label.max() >= len(names)):
                raise ValueError(f"{path}: labels outside [0, {len(names)})")
            for b in range(data.shape[0]):
                gen = torch.Generator().manual_seed(self.seed * 1_000_003 + k)
                nrm = torch.from_numpy(normal[b]) if normal is not None else None
                pos, nrm = self._subsample(torch.from_numpy(data[b]), nrm, gen, path)
                out.append(self._finish(pos, nrm, int(label[b]), f"{path.stem}:{b}"))
                k += 1
        return out

    def _subsample(self, pos, normal, gen, path):
        n = pos.shape[0]
        if n < self.num_points:
            raise ValueError(f"{path}: has {n} points, fewer than num_points={self.num_points}")
        if self.sampling == "first":
            idx = torch.arange(self.num_points)
        elif self.sampling == "random":
            idx = torch.randperm(n, generator=gen)[: self.num_points]
        else:
            from geomdl.ops import fps

            idx = fps(pos, num=self.num_points, random_start=True, generator=gen)
        return pos[idx], (normal[idx] if normal is not None else None)

    def _finish(self, pos, normal, label, shape_id):
        from torch_geometric.data import Data

        if self.format != "off" and self.up == "z":
            rot = torch.from_numpy(_Y_UP_TO_Z_UP).float()
            pos = pos @ rot.T
            normal = normal @ rot.T if normal is not None else None
        if self.normalize:
            pos, _, _ = F.normalize_points(pos, "mean", "sphere")
        data = Data(pos=pos.contiguous(), y=torch.tensor([label], dtype=torch.long), shape_id=shape_id)
        if normal is not None:
            data.normal = normal.contiguous()
        return data

    # ---- rotation protocols -------------------------------------------------------------------------
    def apply_transform(self, data, raw_index: int):
        if self.rotation is not None:
            group = self.rotation.split("/")[0 if self.split == "train" else 1]
            gen = self._train_stream.get() if self.split == "train" else torch.Generator().manual_seed(self.seed * 7_919 + raw_index + 1)
            rot = F.random_rotation_matrix(group, gen, dtype=data.pos.dtype)
            data = data.__copy__()
            data.pos = data.pos @ rot.T
            if getattr(data, "normal", None) is not None:
                data.normal = data.normal @ rot.T
        return super().apply_transform(data, raw_index)

    def __repr__(self):
        return f"ModelNet{self.name}({len(self)}, split={self.split!r}, format={self.format!r}, num_points={self.num_points})"
