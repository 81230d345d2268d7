"""Point arrays on disk: PLY (via ``plyfile``), ``.npy``, ``.pth`` (torch.save) and ``.txt`` tables.

:func:`read_points` dispatches on the extension and returns ``float`` numpy arrays ``[N, 3]``
(``.ply`` may also return normals). Errors name the file and what is wrong (short body,
missing ``x/y/z`` properties, wrong shape).
"""
from __future__ import annotations

import codecs
import os
import pathlib

import numpy as np


def read_ply(path: str | os.PathLike, *, with_normals: bool = False):
    """Read the vertices of a PLY file (ASCII or binary).

    Returns:
        ``pos [N, 3] float32``, plus ``normals [N, 3] float32`` (or ``None`` when the file has no
        ``nx, ny, nz``) if ``with_normals``.
    """
    from plyfile import PlyData

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        ply = PlyData.read(path)
    except Exception as exc:  # plyfile raises several types (PlyParseError, ValueError, struct.error)
        raise ValueError(f"{path}: unreadable PLY file ({type(exc).__name__}: {exc}); truncated or corrupt?") from None
    if "vertex" not in ply:
        raise ValueError(f"{path}: PLY file has no 'vertex' element")
    vert = ply["vertex"].data
    names = vert.dtype.names or ()
    missing = [k for k in ("x", "y", "z") if k not in names]
    if missing:
        raise ValueError(f"{path}: PLY vertex element lacks properties {missing} (has {list(names)})")
    pos = np.stack([vert["x"], vert["y"], vert["z"]], axis=1).astype(np.float32)
    if not with_normals:
        return pos
    normals = None
    if all(k in names for k in ("nx", "ny", "nz")):
        normals = np.stack([vert["nx"], vert["ny"], vert["nz"]], axis=1).astype(np.float32)
    return pos, normals


def read_ply_faces(path: str | os.PathLike) -> np.ndarray | None:
    """Triangle faces ``[F, 3] int64`` of a PLY mesh (polygons fan-triangulated), ``None`` without faces.

    Raises ``ValueError`` naming the file for an unreadable file, a face of fewer than 3 vertices (as
    :func:`~geomdl.datasets.formats.off.parse_off` does) or a vertex index outside ``[0, num_vertices)``."""
    from plyfile import PlyData

    from geomdl.datasets.formats.off import triangulate

    path = os.fspath(path)
    if not os.path.isfile(path):  # as read_ply: a missing file is no "unreadable PLY file"
        raise FileNotFoundError(f"{path}: no such file")
    try:
        ply = PlyData.read(path)
    except Exception as exc:
        raise ValueError(f"{path}: unreadable PLY file ({type(exc).__name__}: {exc})") from None
    if "face" not in ply:
        return None
    face = ply["face"].data
    key = "vertex_indices" if "vertex_indices" in face.dtype.names else face.dtype.names[0]
    polygons = [list(map(int, f)) for f in face[key]]
    if (short := next((i for i, f in enumerate(polygons) if len(f) < 3), None)) is not None:
        raise ValueError(f"{path}: face {short} has {len(polygons[short])} vertices, a face needs at least 3")
    faces = triangulate(polygons)
    num_v = len(ply["vertex"].data) if "vertex" in ply else None
    if faces.size and (faces.min() < 0 or (num_v is not None and faces.max() >= num_v)):
        raise ValueError(f"{path}: face vertex index out of range [0, {num_v}) (min {faces.min()}, max {faces.max()})")
    return faces


def _load_pth(path: str):
    """``torch.load`` restricted to tensors and plain numpy arrays (no arbitrary pickles)."""
    import torch

    from geomdl.utils.torch_compat import safe_globals

    core = getattr(np, "_core", None) or np.core  # numpy >= 2 / < 2
    safe = [np.ndarray, np.dtype, core.multiarray._reconstruct, codecs.encode]  # encode: array bytes (torch < 2.5)
    safe += [type(np.dtype(t)) for t in ("float32", "float64", "int64", "int32")]
    with safe_globals(safe):
        return torch.load(path, weights_only=True, map_location="cpu")


def read_array(path: str | os.PathLike) -> np.ndarray:
    """Read a numeric array from ``.npy`` (no pickles), ``.pth``/``.pt`` (tensor or numpy array) or ``.txt``/``.csv``."""
    path = os.fspath(path)
    ext = pathlib.Path(path).suffix.lower()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        if ext == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif ext in (".pth", ".pt"):
            obj = _load_pth(path)
            arr = obj.numpy() if hasattr(obj, "numpy") else np.asarray(obj)
        elif ext in (".txt", ".csv", ".xyz"):
            with open(path, encoding="utf-8-sig") as fh:  # the delimiter of the first data line (comments may hold commas)
                first = next((ln for ln in fh if ln.split("#", 1)[0].strip()), "")
            arr = np.loadtxt(path, delimiter="," if "," in first.split("#", 1)[0] else None, ndmin=2, encoding="utf-8-sig")
        else:
            raise ValueError(f"unsupported extension {ext!r} (use .npy, .pth, .pt, .txt, .csv)")
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    except Exception as exc:
        raise ValueError(f"{path}: unreadable array file ({type(exc).__name__}: {exc})") from None
    return arr


def read_points(path: str | os.PathLike) -> np.ndarray:
    """Points ``[N, 3] float32`` from ``.ply``, ``.npy``, ``.pth``/``.pt`` or a text table (first 3 columns).

    Raises:
        FileNotFoundError: no such file.
        ValueError: naming the file, for an unreadable file, a shape other than ``[N, >=3]``, a
            non-real dtype (bool, complex, strings) or NaN/infinite coordinates.
    """
    path = os.fspath(path)
    if path.lower().endswith(".ply"):
        pos = read_ply(path)
    else:
        arr = read_array(path)
        if arr.ndim != 2 or arr.shape[1] < 3:
            raise ValueError(f"{path}: expected a point array of shape [N, 3] (or [N, >=3]), got {arr.shape}")
        if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
            raise ValueError(f"{path}: expected real numbers (integer or float dtype), got dtype {arr.dtype}")
        pos = np.ascontiguousarray(arr[:, :3], dtype=np.float32)
    bad = ~np.isfinite(pos).all(axis=1)
    if bad.any():
        raise ValueError(f"{path}: {int(bad.sum())} of {len(pos)} points have NaN or infinite coordinates "
                         f"(first at row {int(np.argmax(bad))}); remove them before use")
    return pos
