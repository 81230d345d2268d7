"""Reading point clouds (.ply, .pcd, .xyz/.txt, .npy) and 3DMatch ground truth (gt.log, gt.info)."""
from __future__ import annotations

import os
import pathlib

import numpy as np
import torch

SUFFIXES = (".ply", ".pcd", ".xyz", ".txt", ".npy")


def read_point_cloud(path) -> torch.Tensor:
    """Read the xyz coordinates of a point cloud file as float64 ``[N, 3]``.

    ``.ply`` (ASCII or binary; via plyfile), ``.pcd`` (via Open3D), ``.xyz``/``.txt`` (whitespace- or
    comma-separated rows, first three columns used), ``.npy`` (an ``[N, >=3]`` array).

    Raises:
        FileNotFoundError: missing file. IsADirectoryError: a folder. ValueError: unknown suffix, or a
        corrupt/unreadable file (the message names the file).
    """
    path = pathlib.Path(path)
    if path.is_dir():  # was "point cloud file not found" for a folder that exists
        raise IsADirectoryError(f"{path}: is a folder, expected a point cloud file")
    if not path.is_file():
        raise FileNotFoundError(f"point cloud file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: unsupported point cloud format {suffix!r}; expected one of {SUFFIXES}")
    try:
        array = _READERS[suffix](path)
    except Exception as exc:  # plyfile/numpy/Open3D raise many types for a corrupt file
        raise ValueError(f"{path}: cannot read point cloud ({type(exc).__name__}: {exc})") from exc
    array = np.asarray(array)
    if array.ndim != 2 or array.shape[1] < 3 or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{path}: expected numeric rows of at least 3 coordinates, got an array of shape "
                         f"{array.shape} and dtype {array.dtype}")
    return torch.from_numpy(np.ascontiguousarray(array[:, :3], dtype=np.float64))


def _read_ply(path):
    from plyfile import PlyData

    ply = PlyData.read(str(path))
    if "vertex" not in ply:
        raise ValueError("no 'vertex' element")
    vertex = ply["vertex"]
    return np.stack([np.asarray(vertex[c], dtype=np.float64) for c in ("x", "y", "z")], 1)


def _read_pcd(path):
    from geomdl.utils.optional import import_open3d

    o3d = import_open3d()
    text = path.read_bytes()[:4096]
    if b"DATA" not in text or b"FIELDS" not in text:
        raise ValueError("missing PCD header (FIELDS/DATA)")
    _check_ascii_pcd_rows(path)
    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):  # our error, not its warnings
        pcd = o3d.io.read_point_cloud(str(path), format="pcd")
    points = np.asarray(pcd.points)
    if points.shape[0] == 0 and b"POINTS 0" not in text:
        raise ValueError("Open3D read no points (a truncated or corrupt file?)")
    return points.reshape(-1, 3)


def _check_ascii_pcd_rows(path) -> None:
    """A ``DATA ascii`` PCD must hold the ``POINTS`` rows its header promises: Open3D fills the rows of a
    truncated file with uninitialised memory instead of failing. Reads the header line by line and counts the
    data rows only for ASCII files (a binary PCD is not read here)."""
    header = {}
    with open(path, "rb") as fh:
        for line in fh:
            parts = line.split()
            if parts and not parts[0].startswith(b"#"):
                header[parts[0].upper()] = parts[1:]
            if parts[:1] == [b"DATA"]:
                break
        data, points = header.get(b"DATA") or [b""], header.get(b"POINTS") or []
        if data[0].lower() != b"ascii" or len(points) != 1 or not points[0].isdigit():
            return
        rows = sum(1 for line in fh if line.strip())
    expected = int(points[0])
    if rows < expected:
        raise ValueError(f"truncated file: the header says POINTS {expected}, the file has {rows} data rows")


def _read_text(path):
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.replace(",", " ").split()
        try:
            rows.append([float(v) for v in parts[:3]])
        except ValueError as exc:
            raise ValueError(f"line {lineno} is not numeric: {line[:60]!r}") from exc
        if len(parts) < 3:
            raise ValueError(f"line {lineno} has {len(parts)} column(s), expected >= 3")
    return np.asarray(rows, dtype=np.float64).reshape(-1, 3)


def _read_npy(path):
    return np.load(path, allow_pickle=False)


_READERS = {".ply": _read_ply, ".pcd": _read_pcd, ".xyz": _read_text, ".txt": _read_text, ".npy": _read_npy}


def read_gt_log(path) -> dict[tuple[int, int], torch.Tensor]:
    """Parse a 3DMatch ``gt.log``: records ``i j n`` + a 4x4 pose mapping fragment ``j`` into fragment
    ``i``'s frame. Returns ``{(i, j): pose [4, 4] float64}`` (:func:`geomdl.datasets.formats.gtlog.parse_gt_log`:
    errors name the file and line; a pair recorded twice is an error)."""
    from geomdl.datasets.formats.gtlog import read_gt_log as read_records

    return {(i, j): torch.from_numpy(mat) for i, j, _, mat in read_records(_existing(path))}


def read_gt_info(path) -> dict[tuple[int, int], torch.Tensor]:
    """Parse a 3DMatch ``gt.info``: records ``i j n`` + a 6x6 information matrix (as :func:`read_gt_log`)."""
    from geomdl.datasets.formats.gtlog import read_gt_info as read_records

    return {(i, j): torch.from_numpy(mat) for i, j, _, mat in read_records(_existing(path))}


def _existing(path) -> pathlib.Path:
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ground-truth file not found: {path}")
    return path


def write_pose(path, pose: torch.Tensor) -> None:
    """Write a ``[4, 4]`` pose as four whitespace-separated rows (atomically); a ``.npy`` path gets a NumPy
    array file instead (float64), so that ``--gt`` reads it back.

    Raises ``ValueError`` for another shape or NaN/inf entries (nothing is written then).
    """
    from geomdl.pipelines.registration.geometry import check_pose
    from geomdl.utils.io import atomic_path, atomic_write_text

    pose = check_pose(pose, "pose")
    if os.fspath(path).lower().endswith(".npy"):
        import numpy as np

        with atomic_path(os.fspath(path)) as tmp, open(tmp, "wb") as fh:
            np.save(fh, pose.detach().double().cpu().numpy())
        return
    text = "\n".join(" ".join(f"{float(v):.9e}" for v in row) for row in pose) + "\n"
    atomic_write_text(os.fspath(path), text)
