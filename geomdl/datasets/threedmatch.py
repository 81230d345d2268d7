"""3DMatch / 3DLoMatch registration pairs (Zeng et al., CVPR 2017; 3DLoMatch: Huang et al., CVPR 2021).

Layout under ``root`` (default ``<data root>/3dmatch``)::

    fragments/<scene>/cloud_bin_<k>.ply        (or .npy / .pth point arrays, [N, 3] metres)
    benchmarks/3DMatch/<scene>/gt.log          records "i j n" + 4x4 pose
    benchmarks/3DMatch/<scene>/gt.info         records "i j n" + 6x6 information matrix (optional)
    benchmarks/3DMatch/<scene>/gt_overlap.log  "i,j,overlap" for fragment pairs (optional)
    benchmarks/3DLoMatch/<scene>/...           (optional)

**Pose convention** (checked numerically on the real fragments): the gt.log record ``i j`` holds
``T`` mapping fragment ``j`` into fragment ``i``'s frame. Items use ``ref = fragment i`` and
``src = fragment j``, so ``transform = T`` maps ``pos_src`` onto ``pos_ref``.

**Pair selection.** ``benchmark="3DMatch"`` / ``"3DLoMatch"`` reads that benchmark's gt.log when it
exists (the official lists). Otherwise the pairs come from the scene's other gt.log files and are
selected by the ``gt_overlap.log`` ratio: 3DMatch ``overlap > 0.3``, 3DLoMatch ``0.1 < overlap <= 0.3``
(the 3DLoMatch definition). ``overlap_range=(lo, hi)`` further keeps ``lo < overlap <= hi``; pairs whose
overlap is unknown are then left out, with a warning that counts them.

Items: :class:`~geomdl.datasets.data.PairData` with ``pos_ref``, ``pos_src`` (float32, voxel-downsampled
to ``voxel_size`` metres unless ``None``), ``transform [1, 4, 4] float64``, ``overlap [1]`` (NaN
when unknown), ``info [1, 6, 6]`` (zeros when unknown), ``ref_id``, ``src_id``, ``scene``.
Terms: research use; cite 3DMatch (and 7-Scenes / SUN3D for the scenes).
"""
from __future__ import annotations

import math
import pathlib
import warnings

import numpy as np
import torch

from geomdl.datasets import functional as F
from geomdl.datasets.base import GeometricDataset
from geomdl.datasets.data import PairData
from geomdl.datasets.formats.gtlog import read_gt_info, read_gt_log, read_gt_overlap
from geomdl.datasets.formats.points import read_points
from geomdl.ops._validation import check_positive_real

BENCHMARKS = {"3DMatch": (0.3, 1.0), "3DLoMatch": (0.1, 0.3)}
FRAGMENT_EXTENSIONS = (".ply", ".npy", ".pth", ".pt")


def find_fragment(folder: pathlib.Path, index: int) -> pathlib.Path | None:
    """``cloud_bin_<index>`` with the first existing extension of :data:`FRAGMENT_EXTENSIONS`."""
    for ext in FRAGMENT_EXTENSIONS:
        p = folder / f"cloud_bin_{index}{ext}"
        if p.is_file():
            return p
    return None


def load_pair(ref, src, transform=None, *, voxel_size: float | None = None) -> PairData:
    """A registration pair from two point files (``.ply``/``.npy``/``.pth``) and an optional 4x4 pose file/array.

    ``transform`` maps ``src`` into ``ref``'s frame (e.g. GeoTransformer's demo ``ref.npy``, ``src.npy``, ``gt.npy``).
    """
    pos_ref, pos_src = torch.from_numpy(read_points(ref)), torch.from_numpy(read_points(src))
    if voxel_size is not None:
        pos_ref, pos_src = F.voxel_downsample(pos_ref, voxel_size), F.voxel_downsample(pos_src, voxel_size)
    data = PairData(pos_ref=pos_ref, pos_src=pos_src)
    if transform is not None:
        if isinstance(transform, (str, pathlib.Path)):
            from geomdl.datasets.formats.points import read_array

            name, transform = str(transform), read_array(transform)
        else:
            name = "transform"
        mat = np.asarray(transform, dtype=np.float64)
        if mat.shape != (4, 4) or not np.allclose(mat[3], [0, 0, 0, 1]):
            raise ValueError(f"{name}: expected a 4x4 rigid transform with last row [0, 0, 0, 1], got shape {mat.shape}")
        if not np.isfinite(mat).all():  # only the last row was checked: a NaN rotation or translation passed
            raise ValueError(f"{name}: the 4x4 transform contains NaN or infinite values")
        data.transform = torch.from_numpy(mat).unsqueeze(0)
    return data


class ThreeDMatch(GeometricDataset):
    """3DMatch / 3DLoMatch test pairs (see the module docstring).

    Args:
        root: dataset folder (default ``<data root>/3dmatch``).
        benchmark: ``"3DMatch"`` or ``"3DLoMatch"``.
        scenes: a scene name or a list of them (default: every scene with a gt.log).
        voxel_size: voxel size in metres for downsampling the fragments (``None``: all points).
        overlap_range: optional ``(lo, hi)``: keep pairs with ``lo < overlap <= hi``.
        missing: ``"error"`` (default) raises when a pair's fragment file is absent; ``"skip"`` drops such pairs.
        fragments_dir / benchmarks_dir: override ``root/fragments`` and ``root/benchmarks``.
        transform, processed_dir, force_reload: see :class:`~geomdl.datasets.base.GeometricDataset`.
    """

    subdir = "3dmatch"
    data_cls = None
    version = 1

    def __init__(self, root=None, *, benchmark: str = "3DMatch", scenes=None, voxel_size: float | None = 0.025,
                 overlap_range=None, missing: str = "error", fragments_dir=None, benchmarks_dir=None,
                 transform=None, processed_dir=None, force_reload: bool = False):
        super().__init__(root, transform=transform, processed_dir=processed_dir, force_reload=force_reload)
        if not isinstance(benchmark, str) or benchmark not in BENCHMARKS:
            raise ValueError(f"benchmark must be one of {list(BENCHMARKS)}, got {benchmark!r}")
        # NumPy reals (np.float32(0.025)) are numbers too; a bool or an infinite size is not (it failed later, in processing)
        if voxel_size is not None:
            voxel_size = check_positive_real(voxel_size, "voxel_size")
        if missing not in ("error", "skip"):
            raise ValueError(f"missing must be 'error' or 'skip', got {missing!r}")
        if overlap_range is not None and (isinstance(overlap_range, str) or not hasattr(overlap_range, "__len__")
                                          or len(overlap_range) != 2 or not overlap_range[0] < overlap_range[1]):
            raise ValueError(f"overlap_range must be (lo, hi) with lo < hi, got {overlap_range!r}")
        if isinstance(scenes, str):  # one scene, not a list of its characters
            scenes = [scenes]
        elif scenes is not None:
            given = scenes
            scenes = list(scenes) if hasattr(scenes, "__iter__") else None
            if scenes is None or not all(isinstance(s, str) for s in scenes):
                raise TypeError(f"scenes must be a scene name, a sequence of names or None, got {given!r}")
        self.benchmark, self.voxel_size, self.missing = benchmark, voxel_size, missing
        self.overlap_range = tuple(overlap_range) if overlap_range is not None else None
        self.fragments_dir = pathlib.Path(fragments_dir).expanduser() if fragments_dir else self.root / "fragments"
        self.benchmarks_dir = pathlib.Path(benchmarks_dir).expanduser() if benchmarks_dir else self.root / "benchmarks"
        self.scenes = list(scenes) if scenes is not None else self._find_scenes()
        self.pairs = self._select_pairs()
        self._fragment_paths = sorted({p for pair in self.pairs for p in (pair["ref_path"], pair["src_path"])})
        self._fragment_index = {p: k for k, p in enumerate(self._fragment_paths)}
        self.load()
        self._count = len(self.pairs)

    def _find_scenes(self):
        scenes = sorted({p.parent.name for p in self.benchmarks_dir.glob("*/*/gt.log")})
        if not scenes:
            raise FileNotFoundError(f"no <benchmark>/<scene>/gt.log under {self.benchmarks_dir} "
                                    "(expected benchmarks/3DMatch/<scene>/gt.log; see datasets/README.md)")
        return scenes

    def _scene_records(self, scene):
        """Poses (from the benchmark's own gt.log or all of the scene's), overlaps, info matrices."""
        own = self.benchmarks_dir / self.benchmark / scene / "gt.log"
        logs = [own] if own.is_file() else sorted(self.benchmarks_dir.glob(f"*/{scene}/gt.log"))
        if not logs:
            raise FileNotFoundError(f"no gt.log for scene {scene!r} under {self.benchmarks_dir}")
        poses, infos, overlaps = {}, {}, {}
        for log in logs:
            for i, j, _, mat in read_gt_log(log):
                poses.setdefault((i, j), mat)
            info = log.with_name("gt.info")
            if info.is_file():
                for i, j, _, mat in read_gt_info(info):
                    infos.setdefault((i, j), mat)
        for ov in [own.with_name("gt_overlap.log")] + [lg.with_name("gt_overlap.log") for lg in logs]:
            if ov.is_file():
                for key, value in read_gt_overlap(ov).items():
                    overlaps.setdefault(key, value)
        return own.is_file(), poses, infos, overlaps

    def _select_pairs(self):
        pairs, absent = [], []
        for scene in self.scenes:
            official, poses, infos, overlaps = self._scene_records(scene)
            rng = self.overlap_range
            if not official:
                if not overlaps:
                    raise FileNotFoundError(f"scene {scene!r}: no {self.benchmark} gt.log and no gt_overlap.log to select pairs by overlap")
                warnings.warn(f"scene {scene!r}: no {self.benchmark}/gt.log; selecting pairs with overlap in "
                              f"{BENCHMARKS[self.benchmark]} from the scene's other gt.log files", stacklevel=3)
                rng = BENCHMARKS[self.benchmark] if rng is None else (max(rng[0], BENCHMARKS[self.benchmark][0]), min(rng[1], BENCHMARKS[self.benchmark][1]))
            folder = self.fragments_dir / scene
            unknown = 0
            for (i, j), mat in sorted(poses.items()):
                ov = overlaps.get((i, j), overlaps.get((j, i), math.nan))
                if rng is not None and not (rng[0] < ov <= rng[1]):
                    unknown += ov != ov
                    continue
                ref, src = find_fragment(folder, i), find_fragment(folder, j)
                if ref is None or src is None:
                    absent.append(f"{folder}/cloud_bin_{i if ref is None else j}")
                    continue
                pairs.append({"scene": scene, "ref": i, "src": j, "ref_path": str(ref), "src_path": str(src), "transform": mat,
                              "overlap": ov, "info": infos.get((i, j))})
            if unknown:
                warnings.warn(f"scene {scene!r}: {unknown} gt.log pair(s) have no overlap in gt_overlap.log and were left "
                              f"out by the overlap range {rng}", stacklevel=3)
        if absent and self.missing == "error":
            raise FileNotFoundError(f"{len(absent)} pair(s) need fragments that are missing, e.g. {absent[0]}.* "
                                    f"(pass missing='skip' to use only the pairs whose fragments are present)")
        return pairs

    def options(self):
        return {"voxel_size": self.voxel_size, "fragments": self._fragment_paths}

    def raw_paths(self):
        return self._fragment_paths

    def process(self):
        from torch_geometric.data import Data
        from tqdm import tqdm

        out = []
        for path in tqdm(self._fragment_paths, desc="3DMatch fragments", leave=False, disable=True if len(self._fragment_paths) < 10 else None):
            pos = torch.from_numpy(read_points(path))
            if self.voxel_size is not None:
                pos = F.voxel_downsample(pos, self.voxel_size)
            out.append(Data(pos=pos))
        return out

    def load(self):
        self._store, self._slices, _ = self.cached("3dmatch-fragments", self.options(), self.raw_paths(), self.process)

    def fragment(self, path: str) -> torch.Tensor:
        """The (downsampled) points of one fragment file used by this dataset."""
        return super().get(self._fragment_index[path]).pos

    def get(self, idx: int) -> PairData:
        p = self.pairs[idx]
        info = p["info"] if p["info"] is not None else np.zeros((6, 6))
        return PairData(pos_ref=self.fragment(p["ref_path"]), pos_src=self.fragment(p["src_path"]),
                        transform=torch.tensor(np.asarray(p["transform"])).unsqueeze(0),  # copies: in-place edits stay in the item
                        overlap=torch.tensor([p["overlap"]], dtype=torch.float64), info=torch.tensor(np.asarray(info)).unsqueeze(0),
                        ref_id=p["ref"], src_id=p["src"], scene=p["scene"])

    def __repr__(self):
        return f"ThreeDMatch({len(self)}, benchmark={self.benchmark!r}, scenes={len(self.scenes)}, voxel_size={self.voxel_size})"
