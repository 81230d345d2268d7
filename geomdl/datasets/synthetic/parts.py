"""Built-in multi-part data: articulated objects and scenes made of rigid parts, with per-point part
labels and the per-part rigid motions (for piecewise-equivariant models such as APEN and for
part segmentation).

Kinds (``category``, :data:`PART_KINDS`):

* ``"arm"``: a base, a chain of 2-4 links and a gripper; joint angles drawn in [-60, 60] degrees
  about alternating axes, base yaw uniform.
* ``"figure"``: a torso, a head and two-segment arms and legs (10 parts), limbs swung at
  shoulders, elbows, hips and knees.
* ``"scene"``: a floor and 2-4 primitive objects (box, sphere, cylinder, cone, torus), each moved
  by its own rotation about z and translation on the floor.

Every part has a *rest* pose (joint angles 0, objects on a grid) and an *observed* pose; the
part's rigid motion maps rest to observed::

    pos[i] = pos_rest[i] @ part_rot[part[i]].T + part_trans[part[i]]

Items (:class:`~geomdl.datasets.data.PartData`): ``pos [N, 3]``, ``normal [N, 3]``,
``pos_rest [N, 3]`` (float32), ``part [N]`` (part id, unique per sample and offset when batched),
``y [N]`` (part class, index into :data:`PART_CLASSES`, for segmentation), ``part_rot [P, 3, 3]``,
``part_trans [P, 3]``, ``part_label [P]`` and ``category [1]`` (index into :data:`PART_KINDS`).
Every part gets at least ``min_points_per_part`` points (the rest are spread by area). ``noise``
(default 0) perturbs ``pos`` only, so with the default the relation above is exact up to float32.
"""
from __future__ import annotations

import math

import torch

from geomdl.datasets import functional as F
from geomdl.datasets.data import PartData
from geomdl.datasets.synthetic import meshes as M
from geomdl.datasets.synthetic.shapes import SyntheticDataset, _u, sample_generator
from geomdl.ops._validation import check_real

PART_KINDS = ("arm", "figure", "scene")
PART_CLASSES = ("floor", "base", "link", "gripper", "torso", "head", "limb", "box", "sphere", "cylinder", "cone", "torus")


def _rigid(rot, trans):
    return rot, torch.as_tensor(trans, dtype=torch.float64)


def _compose(a, b):
    """``a o b`` for rigid motions ``(R, t)``."""
    return a[0] @ b[0], a[0] @ b[1] + a[1]


_I = torch.eye(3, dtype=torch.float64)


def _arm(gen, pose: bool):
    """Parts ``(class, local mesh, world motion)``; ``pose=False`` gives the rest configuration."""
    n_links = int(torch.randint(2, 5, (1,), generator=gen))
    lengths = [_u(gen, 0.5, 0.9) for _ in range(n_links)]
    angles = [_u(gen, -math.pi / 3, math.pi / 3) for _ in range(n_links)]
    yaw = _u(gen, 0, 2 * math.pi)
    parts = [("base", M.cylinder(0.45, 0.2), _rigid(_I, (0, 0, 0.1)))]
    frame = _rigid(M.rotation("z", yaw) if pose else _I, (0, 0, 0.2))
    for k, length in enumerate(lengths):
        axis = "y" if k % 2 == 0 else "x"
        frame = _compose(frame, _rigid(M.rotation(axis, angles[k]) if pose else _I, (0, 0, 0)))
        parts.append(("link", M.place(M.box(0.14, 0.14, length), trans=(0, 0, length / 2)), frame))
        frame = _compose(frame, _rigid(_I, (0, 0, length)))
    parts.append(("gripper", M.place(M.box(0.3, 0.1, 0.12), trans=(0, 0, 0.06)), frame))
    return parts


def _figure(gen, pose: bool):
    def ang(lo, hi):  # always draw, so the rest and posed builds consume the same random numbers
        value = _u(gen, lo, hi)
        return value if pose else 0.0

    torso = _rigid(_I, (0, 0, 1.2))
    parts = [("torso", M.box(0.5, 0.28, 0.8), torso), ("head", M.sphere(0.15, 16, 8), _rigid(_I, (0, 0, 1.78)))]
    for side in (-1, 1):
        for (x, z, up, low, a1, a2) in ((0.32, 1.55, 0.35, 0.35, (-1.4, 1.4), (0.0, 1.6)), (0.14, 0.8, 0.4, 0.4, (-0.8, 0.8), (-1.4, 0.0))):
            seg = M.place(M.cylinder(0.06, up), trans=(0, 0, -up / 2))
            joint = _compose(_rigid(_I, (side * x, 0, z)), _rigid(M.rotation("x", ang(*a1)), (0, 0, 0)))
            parts.append(("limb", seg, joint))
            knee = _compose(joint, _rigid(M.rotation("x", ang(*a2)), (0, 0, -up)))
            parts.append(("limb", M.place(M.cylinder(0.05, low), trans=(0, 0, -low / 2)), knee))
    return parts


def _scene(gen, pose: bool):
    n_obj = int(torch.randint(2, 5, (1,), generator=gen))
    cells = torch.randperm(9, generator=gen)[:n_obj].tolist()
    kinds = ("box", "sphere", "cylinder", "cone", "torus")
    parts = [("floor", M.box(4.0, 4.0, 0.05), _rigid(_I, (0, 0, -0.025)))]
    for k, cell in enumerate(cells):
        kind = kinds[int(torch.randint(len(kinds), (1,), generator=gen))]
        s = _u(gen, 0.25, 0.4)
        mesh = {"box": M.box(2 * s, 1.4 * s, s), "sphere": M.sphere(s, 16, 8), "cylinder": M.cylinder(0.6 * s, 2 * s),
                "cone": M.cone(0.8 * s, 2 * s), "torus": M.torus(s, 0.3 * s, 20, 8)}[kind]
        lift = float(-mesh[0][:, 2].min())
        rest = (-1.6 + 1.6 * (k % 3), -1.6 + 1.6 * (k // 3), lift)
        cx, cy = -1.2 + 1.2 * (cell % 3), -1.2 + 1.2 * (cell // 3)
        posed = (cx + _u(gen, -0.2, 0.2), cy + _u(gen, -0.2, 0.2), lift)
        yaw = _u(gen, 0, 2 * math.pi)
        parts.append((kind, mesh, _rigid(M.rotation("z", yaw), posed) if pose else _rigid(_I, rest)))
    return parts


_BUILDERS = {"arm": _arm, "figure": _figure, "scene": _scene}


class SyntheticParts(SyntheticDataset):
    """Articulated objects and multi-object scenes with rigid parts (see the module docstring).

    Args:
        num_samples: number of samples (kinds cycle through ``kinds``).
        num_points: points per sample.
        split, seed: disjoint seeded streams per split.
        kinds: subset of :data:`PART_KINDS`.
        min_points_per_part: lower bound of points on every part (for PCA frames etc.).
        noise: std of Gaussian noise added to ``pos`` (not ``pos_rest``).
        transform: applied on access.
    """

    data_cls = PartData

    def __init__(self, num_samples: int = 60, num_points: int = 2048, split: str = "train", seed: int = 0, *,
                 kinds=PART_KINDS, min_points_per_part: int = 16, noise: float = 0.0, transform=None):
        kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)  # one kind, not its letters
        if not kinds or any(k not in PART_KINDS for k in kinds):
            raise ValueError(f"kinds must be a non-empty subset of {PART_KINDS}, got {kinds}")
        if not isinstance(min_points_per_part, int) or min_points_per_part < 1:
            raise ValueError(f"min_points_per_part must be an int >= 1, got {min_points_per_part!r}")
        if not isinstance(num_points, int) or num_points < 11 * min_points_per_part:
            raise ValueError(f"num_points must be an int >= 11 * min_points_per_part = {11 * min_points_per_part} "
                             f"(up to 11 parts), got {num_points!r}")
        noise = check_real(noise, "noise", minimum=0)  # NaN was taken as no noise
        super().__init__(num_samples, split, seed, transform)
        self.kinds, self.num_points, self.min_points_per_part, self.noise = kinds, num_points, min_points_per_part, float(noise)
        self.load()

    def generate(self, index: int):
        """Object or scene ``index`` (kind ``kinds[index % len(kinds)]``): a ``PartData`` whose parts moved
        independently from their rest poses (``part``, ``part_rot``, ``part_trans``, ``pos_rest``, ``y``)."""
        kind = self.kinds[index % len(self.kinds)]
        builder = _BUILDERS[kind]
        gen_rest, gen_pose = sample_generator(self.seed, self.split, index, 1), sample_generator(self.seed, self.split, index, 1)
        rest, posed = builder(gen_rest, False), builder(gen_pose, True)  # same draws: same shapes, pose differs
        gen = sample_generator(self.seed, self.split, index, 2)
        areas = torch.stack([0.5 * torch.linalg.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]).norm(dim=1).sum()
                             for _, (v, f), _ in rest])
        counts = torch.full((len(rest),), self.min_points_per_part, dtype=torch.long)
        extra = self.num_points - int(counts.sum())
        counts += torch.bincount(torch.multinomial(areas, extra, replacement=True, generator=gen), minlength=len(rest))
        pos, pos_rest, normal, part, label, rots, trans = [], [], [], [], [], [], []
        for p, ((cls, (v, f), m_rest), (_, _, m_pose), n) in enumerate(zip(rest, posed, counts.tolist())):
            local, n_local = F.sample_surface(v, f, n, generator=gen)
            rot = m_pose[0] @ m_rest[0].T
            rots.append(rot)
            trans.append(m_pose[1] - rot @ m_rest[1])
            pos_rest.append(local @ m_rest[0].T + m_rest[1])
            pos.append(local @ m_pose[0].T + m_pose[1])
            normal.append(n_local @ m_pose[0].T)
            part.append(torch.full((n,), p, dtype=torch.long))
            label.append(PART_CLASSES.index(cls))
        pos = torch.cat(pos)
        if self.noise > 0:
            pos = pos + self.noise * torch.randn(pos.shape, generator=gen, dtype=pos.dtype)
        part = torch.cat(part)
        part_label = torch.tensor(label)
        return PartData(pos=pos.float(), normal=torch.cat(normal).float(), pos_rest=torch.cat(pos_rest).float(), part=part,
                        y=part_label[part], part_rot=torch.stack(rots).float(), part_trans=torch.stack(trans).float(),
                        part_label=part_label, category=torch.tensor([PART_KINDS.index(kind)]))
