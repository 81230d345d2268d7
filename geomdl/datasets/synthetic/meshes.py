"""Procedural triangle meshes (float64 vertices ``[V, 3]``, int64 faces ``[F, 3]``, outward normals).

Primitives are centred at the origin unless stated; :func:`place` moves a mesh, :func:`merge`
concatenates meshes. Used by the synthetic datasets and by tests.
"""
from __future__ import annotations

import math

import torch

Mesh = tuple[torch.Tensor, torch.Tensor]


def box(sx: float = 1.0, sy: float = 1.0, sz: float = 1.0) -> Mesh:
    """Axis-aligned box with side lengths ``sx, sy, sz``."""
    v = torch.tensor([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)], dtype=torch.float64)
    v = v * torch.tensor([sx, sy, sz], dtype=torch.float64)
    f = torch.tensor([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                      [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]], dtype=torch.long)
    return v, f


def _revolve(profile: list[tuple[float, float]], segments: int) -> Mesh:
    """Surface of revolution about z of a profile ``[(r, z), ...]`` (r = 0 at the ends closes the poles)."""
    verts, faces = [], []
    rings = []
    for r, z in profile:
        if r == 0.0:
            rings.append([len(verts)])
            verts.append((0.0, 0.0, z))
        else:
            rings.append(list(range(len(verts), len(verts) + segments)))
            verts.extend((r * math.cos(2 * math.pi * k / segments), r * math.sin(2 * math.pi * k / segments), z) for k in range(segments))
    for a, b in zip(rings[:-1], rings[1:]):
        for k in range(segments):
            k1 = (k + 1) % segments
            if len(a) == 1 and len(b) > 1:
                faces.append((a[0], b[k1], b[k]))
            elif len(b) == 1 and len(a) > 1:
                faces.append((a[k], a[k1], b[0]))
            elif len(a) > 1:
                faces.extend([(a[k], a[k1], b[k1]), (a[k], b[k1], b[k])])
    v = torch.tensor(verts, dtype=torch.float64)
    f = torch.tensor(faces, dtype=torch.long)
    # orient outward: profile order decides the winding; flip if the signed volume is negative
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    if float((a * torch.linalg.cross(b, c)).sum()) < 0:
        f = f[:, [0, 2, 1]]
    return v, f


def sphere(radius: float = 1.0, segments: int = 24, rings: int = 12) -> Mesh:
    """UV sphere."""
    prof = [(radius * math.sin(math.pi * i / rings), -radius * math.cos(math.pi * i / rings)) for i in range(rings + 1)]
    prof[0], prof[-1] = (0.0, -radius), (0.0, radius)
    return _revolve(prof, segments)


def cylinder(radius: float = 0.5, height: float = 1.0, segments: int = 24) -> Mesh:
    """Capped cylinder along z, from ``-height/2`` to ``height/2``."""
    h = height / 2
    return _revolve([(0.0, -h), (radius, -h), (radius, h), (0.0, h)], segments)


def cone(radius: float = 0.5, height: float = 1.0, segments: int = 24) -> Mesh:
    """Capped cone along z: base disc at ``-height/2``, apex at ``height/2``."""
    h = height / 2
    return _revolve([(0.0, -h), (radius, -h), (0.0, h)], segments)


def hemisphere(radius: float = 1.0, segments: int = 24, rings: int = 8) -> Mesh:
    """Upper half sphere closed by a disc at ``z = 0``."""
    prof = [(0.0, 0.0)] + [(radius * math.cos(0.5 * math.pi * i / rings), radius * math.sin(0.5 * math.pi * i / rings)) for i in range(rings)]
    return _revolve(prof + [(0.0, radius)], segments)


def torus(major: float = 1.0, minor: float = 0.3, segments: int = 32, tube: int = 12) -> Mesh:
    """Torus around z."""
    verts, faces = [], []
    for i in range(segments):
        u = 2 * math.pi * i / segments
        for j in range(tube):
            w = 2 * math.pi * j / tube
            r = major + minor * math.cos(w)
            verts.append((r * math.cos(u), r * math.sin(u), minor * math.sin(w)))
    for i in range(segments):
        for j in range(tube):
            a, b = i * tube + j, ((i + 1) % segments) * tube + j
            c, d = ((i + 1) % segments) * tube + (j + 1) % tube, i * tube + (j + 1) % tube
            faces.extend([(a, b, c), (a, c, d)])
    return torch.tensor(verts, dtype=torch.float64), torch.tensor(faces, dtype=torch.long)


def pyramid(base: float = 1.0, height: float = 1.0) -> Mesh:
    """Square pyramid: base at ``z = -height/2``, apex at ``z = height/2``."""
    b, h = base / 2, height / 2
    v = torch.tensor([[-b, -b, -h], [b, -b, -h], [b, b, -h], [-b, b, -h], [0, 0, h]], dtype=torch.float64)
    f = torch.tensor([[0, 2, 1], [0, 3, 2], [0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]], dtype=torch.long)
    return v, f


def rotation(axis: str, angle: float) -> torch.Tensor:
    """``[3, 3]`` rotation by ``angle`` (radians) about ``"x"``, ``"y"`` or ``"z"``."""
    c, s = math.cos(angle), math.sin(angle)
    mats = {"x": [[1, 0, 0], [0, c, -s], [0, s, c]], "y": [[c, 0, s], [0, 1, 0], [-s, 0, c]], "z": [[c, -s, 0], [s, c, 0], [0, 0, 1]]}
    return torch.tensor(mats[axis], dtype=torch.float64)


def place(mesh: Mesh, rot: torch.Tensor | None = None, trans=(0.0, 0.0, 0.0), scale=1.0) -> Mesh:
    """``v -> R (scale * v) + t`` (``scale`` a number or per-axis triple; negative-determinant scales flip faces)."""
    v, f = mesh
    s = torch.as_tensor(scale, dtype=torch.float64)
    v = v * s
    if rot is not None:
        v = v @ rot.T
    if s.numel() == 3 and float(s.prod()) < 0:
        f = f[:, [0, 2, 1]]
    return v + torch.as_tensor(trans, dtype=torch.float64), f


def merge(*meshes: Mesh) -> Mesh:
    """Concatenate meshes (faces re-indexed)."""
    verts, faces, offset = [], [], 0
    for v, f in meshes:
        verts.append(v)
        faces.append(f + offset)
        offset += v.shape[0]
    return torch.cat(verts), torch.cat(faces)
