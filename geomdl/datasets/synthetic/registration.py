"""Built-in registration pairs: two partial, noisy scans of one synthetic shape with a known pose.

For sample ``i``: a random :mod:`~geomdl.datasets.synthetic.shapes` mesh is normalised into the unit
sphere; two independent surface samplings are cropped to ``keep_ratio`` of their points by
half-spaces whose normals are ``view_angle`` degrees apart (partial overlap); the source is then
moved by a random rigid motion ``(R, t)`` (rotation angle <= ``max_angle`` degrees about a uniform
axis, ``|t| <= max_translation``), both clouds get Gaussian ``noise`` and a fraction
``outlier_ratio`` of their points is replaced by uniform outliers in the cloud's bounding box.

Items (:class:`~geomdl.datasets.data.PairData`): ``pos_ref [N, 3]``, ``pos_src [N, 3]`` (float32),
``transform [1, 4, 4]`` mapping src into ref (``pos_ref ~ pos_src @ R.T + t`` on the overlap),
``overlap [1]`` (fraction of clean source points within ``overlap_radius`` of a clean reference point
after alignment), ``correspondences [2, K]`` (ref index, src index of those clean inlier pairs) and
``outlier_src [N]`` / ``outlier_ref [N]`` bool masks.
"""
from __future__ import annotations

import math

import torch

from geomdl.datasets import functional as F
from geomdl.datasets.data import PairData
from geomdl.datasets.synthetic.shapes import SHAPE_CLASSES, SyntheticDataset, sample_generator, sample_shape, shape_mesh
from geomdl.ops._validation import check_positive_real, check_real


def _axis_angle(axis: torch.Tensor, angle: float) -> torch.Tensor:
    axis = axis / axis.norm()
    k = torch.tensor([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]], dtype=torch.float64)
    return torch.eye(3, dtype=torch.float64) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


class SyntheticRegistrationPairs(SyntheticDataset):
    """Partial-overlap registration pairs with known pose (see the module docstring).

    Args:
        num_samples: number of pairs.
        num_points: points per cloud.
        split, seed: disjoint seeded streams per split.
        keep_ratio: fraction of each scan kept by its half-space crop (0, 1].
        view_angle: angle in degrees between the two crop directions (larger = less overlap).
        max_angle: largest rotation angle in degrees (180 = any rotation; the axis is uniform).
        max_translation: largest translation norm.
        noise: std of the Gaussian noise; outlier_ratio: fraction of points replaced by outliers.
        overlap_radius: distance defining overlap and correspondences.
        transform: applied on access.
    """

    data_cls = PairData

    def __init__(self, num_samples: int = 64, num_points: int = 1024, split: str = "train", seed: int = 0, *,
                 keep_ratio: float = 0.7, view_angle: float = 60.0, max_angle: float = 180.0, max_translation: float = 0.5,
                 noise: float = 0.005, outlier_ratio: float = 0.05, overlap_radius: float = 0.05, transform=None):
        if not 0 < keep_ratio <= 1:
            raise ValueError(f"keep_ratio must be in (0, 1], got {keep_ratio}")
        if not 0 <= max_angle <= 180 or not 0 <= view_angle <= 180:
            raise ValueError(f"max_angle and view_angle must be in [0, 180] degrees, got {max_angle}, {view_angle}")
        if not 0 <= outlier_ratio < 1:
            raise ValueError(f"outlier_ratio must be in [0, 1), got {outlier_ratio!r}")
        # a NaN noise or max_translation gave NaN clouds and poses; a NaN overlap_radius no correspondences
        noise, max_translation = check_real(noise, "noise", minimum=0), check_real(max_translation, "max_translation", minimum=0)
        overlap_radius = check_positive_real(overlap_radius, "overlap_radius")
        if not isinstance(num_points, int) or num_points < 8:
            raise ValueError(f"num_points must be an int >= 8, got {num_points!r}")
        super().__init__(num_samples, split, seed, transform)
        self.num_points, self.keep_ratio, self.view_angle = num_points, float(keep_ratio), float(view_angle)
        self.max_angle, self.max_translation, self.noise = float(max_angle), float(max_translation), float(noise)
        self.outlier_ratio, self.overlap_radius = float(outlier_ratio), float(overlap_radius)
        self.load()

    def _scan(self, mesh, direction, gen):
        total = int(math.ceil(self.num_points / self.keep_ratio))
        pos, _ = sample_shape(mesh, total, gen)
        score = pos @ direction
        return pos[torch.topk(score, self.num_points).indices.sort().values]

    def _corrupt(self, pos, gen):
        pos = pos + self.noise * torch.randn(pos.shape, generator=gen, dtype=pos.dtype)
        n_out = int(round(self.outlier_ratio * pos.shape[0]))
        mask = torch.zeros(pos.shape[0], dtype=torch.bool)
        if n_out:
            idx = torch.randperm(pos.shape[0], generator=gen)[:n_out]
            lo, hi = pos.min(dim=0).values, pos.max(dim=0).values
            pos = pos.clone()
            pos[idx] = lo + (hi - lo) * torch.rand(n_out, 3, generator=gen, dtype=pos.dtype)
            mask[idx] = True
        return pos, mask

    def generate(self, index: int):
        """Pair ``index``: a ``PairData`` of two partial, corrupted views of one scene (``pos_ref``, ``pos_src`` in its
        own moved frame), the ground-truth ``transform`` (src -> ref), the ``overlap`` fraction, the true
        ``correspondences`` and the outlier masks."""
        from scipy.spatial import cKDTree

        gen = sample_generator(self.seed, self.split, index)
        mesh = shape_mesh(SHAPE_CLASSES[int(torch.randint(len(SHAPE_CLASSES), (1,), generator=gen))], gen)
        verts, _ = mesh
        centre = verts.mean(dim=0)
        scale = (verts - centre).norm(dim=1).max()
        mesh = ((verts - centre) / scale, mesh[1])
        d1 = torch.randn(3, generator=gen, dtype=torch.float64)
        d1 = d1 / d1.norm()
        perp = torch.linalg.cross(d1, torch.randn(3, generator=gen, dtype=torch.float64))
        d2 = _axis_angle(perp, math.radians(self.view_angle)) @ d1
        ref, src = self._scan(mesh, d1, gen), self._scan(mesh, d2, gen)
        axis = torch.randn(3, generator=gen, dtype=torch.float64)
        rot = _axis_angle(axis, math.radians(self.max_angle) * float(torch.rand((), generator=gen, dtype=torch.float64)))
        shift = torch.randn(3, generator=gen, dtype=torch.float64)
        shift = shift / shift.norm() * self.max_translation * float(torch.rand((), generator=gen, dtype=torch.float64))
        src_moved = src @ rot.T + shift  # src observed in its own (moved) frame
        transform = F.rigid_matrix(rot.T, -rot.T @ shift)  # maps src_moved back onto ref's frame
        dist, nn = cKDTree(ref.numpy()).query(src.numpy(), k=1)
        inlier = torch.from_numpy(dist <= self.overlap_radius)
        corr = torch.stack([torch.from_numpy(nn)[inlier], torch.nonzero(inlier).reshape(-1)]).long()
        ref_obs, out_ref = self._corrupt(ref, gen)
        src_obs, out_src = self._corrupt(src_moved, gen)
        keep = ~(out_ref[corr[0]] | out_src[corr[1]])
        return PairData(pos_ref=ref_obs.float(), pos_src=src_obs.float(), transform=transform.unsqueeze(0).float(),
                        overlap=torch.tensor([float(inlier.double().mean())]), correspondences=corr[:, keep],
                        outlier_ref=out_ref, outlier_src=out_src)
