"""3DMatch benchmark ground truth: ``gt.log``, ``gt.info`` and ``gt_overlap.log``.

* ``gt.log``: records of 5 lines, ``i j n`` (``n`` = number of fragments in the scene) then a 4x4
  matrix. **Convention** (checked numerically on the 3DMatch fragments): the matrix ``T`` of record
  ``i j`` maps points of fragment ``j`` into the frame of fragment ``i``:
  ``p_i = R p_j + t`` with ``T = [[R, t], [0, 1]]``.
* ``gt.info``: records of 7 lines, ``i j n`` then a 6x6 information matrix (used by the official
  registration-recall metric).
* ``gt_overlap.log``: lines ``i,j,overlap`` (overlap ratio in [0, 1] for every fragment pair).
"""
from __future__ import annotations

import os

import numpy as np

from geomdl.utils.io import read_text


def _records(path, text: str, rows: int, cols: int):
    numbered = [(k, ln.split()) for k, ln in enumerate(text.splitlines(), 1) if ln.strip()]
    lineno = [k for k, _ in numbered]  # file line of each non-empty line: errors name the line in the file
    lines = [tokens for _, tokens in numbered]
    block = rows + 1
    if len(lines) % block:
        raise ValueError(f"{path}: {len(lines)} non-empty lines is not a multiple of {block} "
                         f"(records of one 'i j n' line and {rows} matrix rows); truncated file?")
    out, seen = [], {}
    for r in range(0, len(lines), block):
        head = lines[r]
        try:
            if len(head) != 3:
                raise ValueError
            i, j, n = (int(v) for v in head)
        except ValueError:
            raise ValueError(f"{path}: line {lineno[r]}: expected 'i j n' (three integers), got {' '.join(head)!r}") from None
        try:
            mat = np.array(lines[r + 1:r + block], dtype=np.float64)
        except ValueError:
            raise ValueError(f"{path}: record at line {lineno[r]}: matrix rows must be {cols} numbers each") from None
        if mat.shape != (rows, cols):
            raise ValueError(f"{path}: record at line {lineno[r]}: expected a {rows}x{cols} matrix, got rows of lengths "
                             f"{[len(x) for x in lines[r + 1:r + block]]}")
        if not np.isfinite(mat).all():
            raise ValueError(f"{path}: record at line {lineno[r]}: matrix contains NaN or infinite values")
        if (i, j) in seen:  # a second record of one pair would silently replace or double-count the first
            raise ValueError(f"{path}: line {lineno[r]}: a second record of the pair {i} {j} (first at line {seen[i, j]})")
        seen[i, j] = lineno[r]
        out.append((i, j, n, mat))
    return out


def parse_gt_log(text: str, name: str = "<string>") -> list[tuple[int, int, int, np.ndarray]]:
    """Records ``(i, j, n, T)`` with ``T [4, 4] float64`` mapping fragment ``j`` into fragment ``i``'s frame."""
    return _records(name, text, 4, 4)


def parse_gt_info(text: str, name: str = "<string>") -> list[tuple[int, int, int, np.ndarray]]:
    """Records ``(i, j, n, info)`` with a 6x6 information matrix ``info [6, 6] float64``."""
    return _records(name, text, 6, 6)


def parse_gt_overlap(text: str, name: str = "<string>") -> dict[tuple[int, int], float]:
    """``{(i, j): overlap}`` from ``i,j,overlap`` lines (commas or whitespace)."""
    out = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.replace(",", " ").split()
        try:
            if len(parts) != 3:
                raise ValueError
            i, j, v = int(parts[0]), int(parts[1]), float(parts[2])
        except ValueError:
            raise ValueError(f"{name}: line {lineno}: expected 'i,j,overlap', got {line.strip()!r}") from None
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{name}: line {lineno}: overlap {v} outside [0, 1]")
        if (i, j) in out:
            raise ValueError(f"{name}: line {lineno}: a second overlap of the pair {i} {j}")
        out[(i, j)] = v
    return out


def _read(path, parser):
    path = os.fspath(path)
    return parser(read_text(path, "3DMatch ground truth"), name=path)


def read_gt_log(path):
    """:func:`parse_gt_log` of a file."""
    return _read(path, parse_gt_log)


def read_gt_info(path):
    """:func:`parse_gt_info` of a file."""
    return _read(path, parse_gt_info)


def read_gt_overlap(path):
    """:func:`parse_gt_overlap` of a file."""
    return _read(path, parse_gt_overlap)


def format_gt_log(records) -> str:
    """Inverse of :func:`parse_gt_log` (the 3DMatch layout, ``%.8e`` numbers)."""
    out = []
    for i, j, n, mat in records:
        out.append(f"{i}\t {j}\t {n}\t\n")
        for row in np.asarray(mat, dtype=np.float64).reshape(4, 4):
            out.append("\t ".join(f"{v: .8e}" for v in row) + "\t\n")
    return "".join(out)
