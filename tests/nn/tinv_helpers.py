"""Shared helpers of the TinvNN tests (generic clouds, symmetric shapes, a tiny backbone)."""
from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import torch

from geomdl.models.tiny_pointnet import TinyPointNet
from geomdl.nn.tinv import TinvNet


def generic_cloud(n: int, seed: int, dim: int = 3, dtype=torch.float64) -> torch.Tensor:
    """Anisotropic, skewed cloud: distinct eigenvalues and clearly non-zero skewness per axis."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=gen, dtype=torch.float64) * torch.linspace(3.0, 1.0, dim, dtype=torch.float64)
    x = x + 0.4 * x.pow(2)
    return x.to(dtype)


def cube_vertices() -> torch.Tensor:
    return torch.tensor(list(itertools.product([-1.0, 1.0], repeat=3)), dtype=torch.float64)


def cube_surface(m: int = 4) -> torch.Tensor:
    """Regular grid on the 6 faces of [-1, 1]^3 (octahedral symmetry, edges shared)."""
    g = torch.linspace(-1, 1, m, dtype=torch.float64)
    uu, vv = torch.meshgrid(g, g, indexing="ij")
    face = torch.stack([uu.flatten(), vv.flatten()], 1)
    pts = []
    for axis in range(3):
        for side in (-1.0, 1.0):
            p = torch.zeros(face.shape[0], 3, dtype=torch.float64)
            others = [a for a in range(3) if a != axis]
            p[:, others] = face
            p[:, axis] = side
            pts.append(p)
    return torch.unique(torch.cat(pts), dim=0)


def cylinder(rings: int = 3, per_ring: int = 8, height: float = 3.0) -> torch.Tensor:
    """Regular rings on a cylinder of radius 1 along z, with a point on the axis at each end
    (so that the in-plane and axial eigenvalues differ)."""
    pts = []
    for r in range(rings):
        z = height * (r / (rings - 1) - 0.5)
        for k in range(per_ring):
            a = 2 * math.pi * k / per_ring
            pts.append([math.cos(a), math.sin(a), z])
    pts += [[0.0, 0.0, 0.9 * height], [0.0, 0.0, -0.5 * height]]
    return torch.tensor(pts, dtype=torch.float64)


def mirror_symmetric(n_half: int = 20, seed: int = 3) -> torch.Tensor:
    """A generic half cloud and its mirror image in the plane x = 0 (no other symmetry)."""
    half = generic_cloud(n_half, seed)
    half[:, 0] = half[:, 0].abs() + 0.1
    mirrored = half * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    return torch.cat([half, mirrored])


def tiny_tinvnet(degenerate: str = "pick", dim: int = 3, seed: int = 0, **kw) -> TinvNet:
    torch.manual_seed(seed)
    backbone = TinyPointNet(out_channels=5, hidden_channels=16, pool="max")
    return TinvNet(backbone, dim=dim, degenerate=degenerate, **kw)


class AsBatch(torch.nn.Module):
    """Adapter for ``assert_equivariant``: ``fn(pos, batch) -> model(data)`` (a Module, so that the
    test kit converts it to float64)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pos, batch):
        return self.model(SimpleNamespace(pos=pos, batch=batch))


def as_batch(model) -> AsBatch:
    return AsBatch(model)
