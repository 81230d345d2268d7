"""Point arrays on disk: PLY (via ``plyfile``), ``.npy``, ``.pth`` (torch.save) and ``.txt`` tables.

:func:`read_points` dispatches on the extension and returns ``float`` numpy arrays ``[N, 3]``
(``.ply`` may also return normals). Errors name the file and what is wrong (short body,
missing ``x/y/z`` properties, wrong shape).
"""
from __future__ import annotations

import codecs
import os
import pathlib
import re

import numpy as np


_END_HEADER = re.compile(rb"^end_header[ \t]*\r?$", re.MULTILINE)


def read_plydata(path: str | os.PathLike):
    """``plyfile.PlyData`` of a PLY file (ASCII or binary), checked to end where its header says.

    Raises:
        FileNotFoundError: no such file.
        ValueError: naming the file, for an unreadable file (plyfile raises several types) or data after the
            elements the header declares: an element count too small in the header read only the first rows
            and dropped the rest without an error.
    """
    from plyfile import PlyData

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with open(path, "rb") as fh:
            ply = PlyData.read(fh)
            end = None if ply.text else fh.tell()  # binary: the data ends where plyfile stopped reading
    except Exception as exc:  # plyfile raises several types (PlyParseError, ValueError, struct.error)
        raise ValueError(f"{path}: unreadable PLY file ({type(exc).__name__}: {exc}); truncated or corrupt?") from None
    _check_ply_end(path, ply, end)
    return ply


def _check_ply_end(path: str, ply, end: int | None) -> None:
    """``ValueError`` naming ``path`` when non-blank data follows the declared elements (``end``: the byte offset
    where a binary file's data ends; ``None`` for ASCII, whose rows are one line each)."""
    counts = ", ".join(f"{e.name} {e.count}" for e in ply.elements)
    with open(path, "rb") as fh:
        if end is not None:
            fh.seek(end)
            extra = len(fh.read().rstrip())  # a final newline is tolerated
            if extra:
                raise ValueError(f"{path}: {extra} bytes follow the elements declared in the header ({counts}); "
                                 f"an element count in the header is too small (or the file is corrupt)")
            return
        data = fh.read()
    match = _END_HEADER.search(data)
    rows = sum(1 for line in data[match.end():].splitlines() if line.strip()) if match else 0
    declared = sum(e.count for e in ply.elements)
    if rows > declared:
        raise ValueError(f"{path}: the header declares {declared} data rows ({counts}) but {rows} non-blank lines "
                         f"follow it; an element count in the header is too small (or the file is corrupt)")


def read_ply(path: str | os.PathLike, *, with_normals: bool = False):
    """Read the vertices of a PLY file (ASCII or binary).

    Returns:
        ``pos [N, 3] float32``, plus ``normals [N, 3] float32`` (or ``None`` when the file has no
        ``nx, ny, nz``) if ``with_normals``.
    """
    path = os.fspath(path)
    ply = read_plydata(path)
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
    from geomdl.datasets.formats.off import triangulate

    path = os.fspath(path)
    ply = read_plydata(path)  # as read_ply: a missing file is no "unreadable PLY file"
    if "face" not in ply:
        return None
    face = ply["face"].data
    polygons = [list(map(int, f)) for f in face[_face_index_property(path, ply["face"])]]
    if (short := next((i for i, f in enumerate(polygons) if len(f) < 3), None)) is not None:
        raise ValueError(f"{path}: face {short} has {len(polygons[short])} vertices, a face needs at least 3")
    faces = triangulate(polygons)
    num_v = len(ply["vertex"].data) if "vertex" in ply else None
    if faces.size and (faces.min() < 0 or (num_v is not None and faces.max() >= num_v)):
        raise ValueError(f"{path}: face vertex index out of range [0, {num_v}) (min {faces.min()}, max {faces.max()})")
    return faces


def _face_index_property(path: str, face) -> str:
    """The name of the face element's list of integer vertex indices: ``vertex_indices``, else ``vertex_index``,
    else its only integer list property; a ``ValueError`` naming ``path`` otherwise (the first property was taken:
    a scalar one, such as a ``flags`` byte written first, failed with a bare ``TypeError``, and a list of floats
    was truncated to other vertex indices)."""
    from plyfile import PlyListProperty

    lists = {p.name: p for p in face.properties if isinstance(p, PlyListProperty)}
    name = next((k for k in ("vertex_indices", "vertex_index") if k in lists), None)
    if name is None and len(lists) == 1:
        name = next(iter(lists))
    if name is None:
        raise ValueError(f"{path}: PLY face element has no list property 'vertex_indices' "
                         f"(has {[p.name for p in face.properties]})")
    if lists[name].val_dtype.lstrip("<>=|")[0] not in "iu":
        raise ValueError(f"{path}: PLY face property {name!r} must list integer vertex indices, got {lists[name].val_dtype!r}")
    return name


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
