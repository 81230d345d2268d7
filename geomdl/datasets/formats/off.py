"""Object File Format (``.off``) meshes, as in the original ModelNet10/40 archives.

Layout: a header line ``OFF``, a line ``num_vertices num_faces num_edges``, ``num_vertices``
lines ``x y z``, then ``num_faces`` lines ``n v_1 ... v_n [colour]`` (polygons of any size,
0-based vertex indices). Handled quirks: the ModelNet header where ``OFF`` and the counts share a
line (``OFF3514 3546 0``), ``#`` comments and blank lines, ``COFF``/``NOFF`` variants (extra
vertex columns are ignored) and polygon faces (fan-triangulated by :func:`triangulate`). Blank
lines and comments may appear anywhere, including after the faces; any other line after the
declared faces is an error (the counts do not describe the file). Every error names the file and
what is wrong.
"""
from __future__ import annotations

import os
import re

import numpy as np

from geomdl.utils.io import read_text

_HEADER = re.compile(r"^(C|N|CN|ST)?OFF")


def triangulate(polygons: list[list[int]]) -> np.ndarray:
    """Fan-triangulate polygons ``(v0, v1, ..., vn)`` into triangles ``(v0, vk, vk+1)``: ``[F, 3]`` int64."""
    tris = [(p[0], p[k], p[k + 1]) for p in polygons for k in range(1, len(p) - 1)]
    return np.asarray(tris, dtype=np.int64).reshape(-1, 3)


def parse_off(text: str, name: str = "<string>") -> tuple[np.ndarray, np.ndarray]:
    """Parse OFF text into ``vertices [V, 3] float64`` and triangle ``faces [F, 3] int64``.

    Raises:
        ValueError: naming ``name`` for a missing header, bad counts, too few vertex/face lines,
            non-blank, non-comment lines after the declared faces, non-numeric values, faces with
            fewer than 3 vertices or out-of-range indices.
    """
    numbered = [(i + 1, ln.split("#", 1)[0].strip()) for i, ln in enumerate(text.splitlines())]
    numbered = [(i, ln) for i, ln in numbered if ln]
    lines = [ln for _, ln in numbered]
    if not lines or not _HEADER.match(lines[0]):
        raise ValueError(f"{name}: not an OFF file (first line must start with 'OFF')")
    rest = _HEADER.sub("", lines[0], count=1).strip()
    pos = 1
    if not rest:  # standard: counts on the next line
        if len(lines) < 2:
            raise ValueError(f"{name}: missing the 'num_vertices num_faces num_edges' line")
        rest, pos = lines[1], 2
    counts = rest.split()
    try:
        if len(counts) < 2:
            raise ValueError
        num_v, num_f = int(counts[0]), int(counts[1])
    except ValueError:
        raise ValueError(f"{name}: bad counts line {rest!r} (expected 'num_vertices num_faces num_edges')") from None
    if num_v < 0 or num_f < 0:
        raise ValueError(f"{name}: negative counts {num_v}, {num_f}")
    vlines = lines[pos:pos + num_v]
    if len(vlines) < num_v:
        raise ValueError(f"{name}: header declares {num_v} vertices but only {len(vlines)} vertex lines follow (truncated file?)")
    if len(lines) - pos < num_v + num_f:
        face_like = 0
        while face_like < len(vlines) and _is_face(vlines[len(vlines) - 1 - face_like]):
            face_like += 1
        if face_like:
            raise ValueError(f"{name}: header declares {num_v} vertices but only {num_v - face_like} vertex lines come "
                             f"before the faces (too few vertices)")
    try:
        verts = np.array([ln.split()[:3] for ln in vlines], dtype=np.float64).reshape(num_v, 3)
    except ValueError:
        bad = next((i for i, ln in enumerate(vlines) if len(ln.split()) < 3 or not _is_floats(ln.split()[:3])), 0)
        raise ValueError(f"{name}: vertex {bad} is not three numbers: {vlines[bad]!r}") from None
    flines = lines[pos + num_v:pos + num_v + num_f]
    if len(flines) < num_f:
        raise ValueError(f"{name}: header declares {num_f} faces but only {len(flines)} face lines follow (truncated file?)")
    if len(lines) > pos + num_v + num_f:
        lineno, extra = numbered[pos + num_v + num_f]
        raise ValueError(f"{name}: header declares {num_v} vertices + {num_f} faces = {num_v + num_f} lines but "
                         f"{len(lines) - pos} non-blank, non-comment lines follow the header (line {lineno} after the faces: {extra!r})")
    polygons = []
    for i, ln in enumerate(flines):
        parts = ln.split()
        try:
            n = int(parts[0])
            poly = [int(v) for v in parts[1:1 + n]]
        except ValueError:
            raise ValueError(f"{name}: face {i} is not integers: {ln!r}") from None
        if n < 3 or len(poly) != n:
            raise ValueError(f"{name}: face {i} must list n >= 3 vertex indices after n, got {ln!r}")
        polygons.append(poly)
    try:
        faces = triangulate(polygons)
    except OverflowError:  # an index beyond int64: certainly out of range
        raise ValueError(f"{name}: face vertex index out of range [0, {num_v}) (too large for int64)") from None
    if faces.size and (faces.min() < 0 or faces.max() >= num_v):
        raise ValueError(f"{name}: face vertex index out of range [0, {num_v}) (min {faces.min()}, max {faces.max()})")
    if not np.isfinite(verts).all():
        raise ValueError(f"{name}: vertices contain NaN or infinite values")
    return verts, faces


def _is_face(line: str) -> bool:
    """``n v1 .. vn [colour]`` with integer tokens and n >= 3 (vertex lines have 3 coordinates)."""
    tokens = line.split()
    if not tokens or not all(t.lstrip("-").isdigit() for t in tokens):
        return False
    return int(tokens[0]) >= 3 and len(tokens) >= int(tokens[0]) + 1 and len(tokens) != 3


def _is_floats(tokens) -> bool:
    try:
        [float(t) for t in tokens]
        return True
    except ValueError:
        return False


def read_off(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read an OFF file: ``vertices [V, 3] float64``, triangle ``faces [F, 3] int64`` (see :func:`parse_off`)."""
    path = os.fspath(path)
    return parse_off(read_text(path, "an OFF mesh"), name=path)


def write_off(path: str | os.PathLike, vertices, faces, *, quirk: bool = False) -> None:
    """Write an OFF file (``quirk=True`` writes ModelNet's ``OFF<counts>`` header on one line)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    head = f"OFF{len(vertices)} {len(faces)} 0\n" if quirk else f"OFF\n{len(vertices)} {len(faces)} 0\n"
    body = "".join(f"{x!r} {y!r} {z!r}\n" for x, y, z in vertices.tolist())
    body += "".join(f"{len(f)} " + " ".join(str(int(v)) for v in f) + "\n" for f in faces)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(head + body)
