"""Reading point clouds (.ply, .pcd, .xyz/.txt, .npy) and 3DMatch ground truth (gt.log, gt.info)."""
from __future__ import annotations

import os
import pathlib

import numpy as np
import torch

SUFFIXES = (".ply", ".pcd", ".xyz", ".txt", ".npy")


def read_point_cloud(path) -> torch.Tensor:
    """Read the xyz coordinates of a point cloud file as float64 ``[N, 3]``.

    ``.ply`` (ASCII or binary; via plyfile), ``.pcd`` (ascii and binary; binary_compressed via Open3D), ``.xyz``/``.txt`` (whitespace- or
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
    from geomdl.datasets.formats.points import read_plydata

    ply = read_plydata(path)  # also refuses data after the declared vertices (a header count too small)
    if "vertex" not in ply:
        raise ValueError("no 'vertex' element")
    vertex = ply["vertex"]
    return np.stack([np.asarray(vertex[c], dtype=np.float64) for c in ("x", "y", "z")], 1)


def _read_pcd(path):
    """x, y, z of a PCD file: ``ascii`` and ``binary`` data read here with NumPy, ``binary_compressed`` through
    Open3D. Open3D's own ascii/binary reading gave wrong points without an error: 8-byte (double) coordinates
    read as zeros, a short or non-numeric ascii row as another row's values or 0, and rows or bytes beyond
    ``POINTS`` were dropped."""
    header, offset = _pcd_header(path)
    fields, dtype, points = _pcd_layout(header)
    kind = header[b"DATA"][0].lower() if header[b"DATA"] else b""
    if kind == b"ascii":
        return _read_pcd_ascii(path, offset, fields, dtype, points)
    if kind == b"binary":
        return _read_pcd_binary(path, offset, fields, dtype, points)
    if kind != b"binary_compressed":
        raise ValueError(f"unknown PCD DATA {kind.decode(errors='replace')!r} (expected ascii, binary or binary_compressed)")
    xyz = [dtype.fields[f"f{fields.index(c)}"][0] for c in "xyz"]
    if any(t != np.dtype("<f4") for t in xyz):  # Open3D reads other coordinate types of compressed files as zeros
        raise ValueError(f"binary_compressed PCD with x/y/z of types {[t.str for t in xyz]}: only 4-byte floats "
                         f"(SIZE 4, TYPE F) are supported; save it as binary or ascii")
    _check_pcd_compressed_sizes(path, offset, dtype, points)
    from geomdl.utils.optional import import_open3d

    o3d = import_open3d()
    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):  # our error, not its warnings
        pcd = o3d.io.read_point_cloud(str(path), format="pcd")
    out = np.asarray(pcd.points).reshape(-1, 3)
    if out.shape[0] != points:
        raise ValueError(f"the header says POINTS {points} but Open3D read {out.shape[0]} (a truncated or corrupt file?)")
    return out


def _check_pcd_compressed_sizes(path, offset: int, dtype, points: int) -> None:
    """``binary_compressed`` data is ``uint32 compressed size, uint32 uncompressed size`` then the LZF bytes: the
    uncompressed size must be ``POINTS`` records (Open3D read the first ``POINTS`` of a larger block without an
    error) and the compressed bytes must all be there."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        sizes = fh.read(8)
        rest = len(fh.read())
    if len(sizes) < 8:
        raise ValueError("truncated file: binary_compressed data lacks its 8-byte size header")
    compressed, uncompressed = np.frombuffer(sizes, "<u4").tolist()
    if uncompressed != points * dtype.itemsize:
        raise ValueError(f"the header says POINTS {points} ({points * dtype.itemsize} bytes) but the compressed data "
                         f"holds {uncompressed} bytes (a wrong count?)")
    if rest < compressed:
        raise ValueError(f"truncated file: {compressed} compressed bytes announced, {rest} present")


def _pcd_header(path) -> tuple[dict, int]:
    """``({KEY: [values]}, offset)``: the header lines up to ``DATA`` (bytes, upper-case keys, comments skipped) and
    the byte offset where the data starts. Only the header is read (a binary file's data is not split as text)."""
    header, offset = {}, 0
    with open(path, "rb") as fh:
        for line in fh:
            offset += len(line)
            parts = line.split()
            if parts and not parts[0].startswith(b"#"):
                header[parts[0].upper()] = parts[1:]
            if parts[:1] == [b"DATA"]:
                return header, offset
            if offset > 1 << 16:  # no header is this long: not a PCD file
                break
    raise ValueError("missing PCD header (FIELDS/DATA)")


_PCD_TYPES = {b"F": "f", b"I": "i", b"U": "u"}


def _pcd_layout(header: dict) -> tuple[list[str], np.dtype, int]:
    """``(field names, record dtype (little-endian, fields named f0, f1, ...), number of points)`` of a PCD header."""
    try:
        fields = [f.decode() for f in header[b"FIELDS"]]
        sizes = [int(v) for v in header[b"SIZE"]]
        types = header[b"TYPE"]
        counts = [int(v) for v in header.get(b"COUNT", [b"1"] * len(fields))]
        points = int(header[b"POINTS"][0]) if b"POINTS" in header else int(header[b"WIDTH"][0]) * int(header[b"HEIGHT"][0])
    except (KeyError, IndexError, ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"malformed PCD header ({type(exc).__name__}: {exc}); needs FIELDS, SIZE, TYPE and POINTS") from None
    if not len(fields) == len(sizes) == len(types) == len(counts) or min(counts, default=1) < 1 or points < 0:
        raise ValueError(f"malformed PCD header: FIELDS {fields}, SIZE {sizes}, TYPE {types}, COUNT {counts}, POINTS {points}")
    missing = [c for c in "xyz" if c not in fields]
    if missing:
        raise ValueError(f"PCD fields {fields} lack {missing}")
    try:
        dtype = np.dtype([(f"f{k}", f"<{_PCD_TYPES[t]}{size}", (count,) if count > 1 else ())
                          for k, (t, size, count) in enumerate(zip(types, sizes, counts))])
    except (KeyError, TypeError):
        raise ValueError(f"unsupported PCD TYPE/SIZE {[t.decode(errors='replace') for t in types]}/{sizes} "
                         f"(TYPE F, I or U of SIZE 1, 2, 4 or 8)") from None
    if any(counts[fields.index(c)] != 1 for c in "xyz"):
        raise ValueError(f"PCD fields x, y, z must have COUNT 1, got {counts}")
    return fields, dtype, points


def _read_pcd_ascii(path, offset: int, fields, dtype, points: int) -> np.ndarray:
    """x, y, z of ``DATA ascii`` rows (one point a line, ``sum(COUNT)`` numbers each)."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        rows = [(k, line.split()) for k, line in enumerate(fh.read().decode("ascii", "replace").splitlines(), 1)
                if line.strip()]
    if len(rows) < points:
        raise ValueError(f"truncated file: the header says POINTS {points}, the file has {len(rows)} data rows")
    if len(rows) > points:
        raise ValueError(f"the header says POINTS {points}, the file has {len(rows)} data rows (a wrong count?)")
    width = sum(int(np.prod(dtype[k].shape)) for k in range(len(dtype)))
    bad = next(((k, r) for k, r in rows if len(r) != width), None)
    if bad is not None:
        raise ValueError(f"data row {bad[0]} has {len(bad[1])} values, the fields {fields} need {width}")
    try:
        table = np.array([r for _, r in rows], dtype=np.float64).reshape(points, width)
    except ValueError as exc:
        raise ValueError(f"non-numeric data row ({exc})") from None
    columns = np.cumsum([0] + [int(np.prod(dtype[k].shape)) for k in range(len(dtype))])
    return table[:, [columns[fields.index(c)] for c in "xyz"]]


def _read_pcd_binary(path, offset: int, fields, dtype, points: int) -> np.ndarray:
    """x, y, z of ``DATA binary`` records (``POINTS`` records of the header's fields, little-endian)."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read()
    need = points * dtype.itemsize
    if len(data) < need:
        raise ValueError(f"truncated file: the header says POINTS {points} ({need} bytes of data), the file has {len(data)}")
    if data[need:].strip():
        raise ValueError(f"{len(data) - need} bytes follow the POINTS {points} records of the header (a wrong count?)")
    records = np.frombuffer(data, dtype=dtype, count=points)
    return np.stack([records[f"f{fields.index(c)}"].astype(np.float64) for c in "xyz"], axis=1)


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
