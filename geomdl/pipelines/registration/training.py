"""Self-supervised training of the learned descriptor on pairs with known poses.

Data: built-in pairs only (no download, no real scan): room-like scenes cut into two partial views
(:func:`~geomdl.pipelines.registration.pairs.partial_pair`, varied density, overlap, noise and
outliers) and :class:`~geomdl.datasets.SyntheticRegistrationPairs` shapes scaled to about 2 m. Both
clouds are voxel-downsampled at ``voxel`` and get PCA normals, exactly as in :func:`register`.

Positives: source points whose ground-truth image has a target point within ``voxel`` (that target
point is the match). Loss: symmetric InfoNCE over a batch of positives from several pairs,

.. math:: L = -\\frac{1}{2B} \\sum_i \\Big[\\log \\frac{e^{a_i \\cdot b_i / \\tau}}{\\sum_j e^{a_i \\cdot b_j / \\tau}}
          + \\log \\frac{e^{a_i \\cdot b_i / \\tau}}{\\sum_j e^{a_j \\cdot b_i / \\tau}}\\Big]

where negatives ``j`` of the same pair lying within ``2 * voxel`` of the positive are masked out
(they are near-duplicates, not mistakes).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch

from geomdl.pipelines.registration.descriptors import ppf_histogram
from geomdl.pipelines.registration.geometry import estimate_normals, transform, voxel_downsample
from geomdl.pipelines.registration.neighbors import knn_search
from geomdl.pipelines.registration.patches import patch_features
from geomdl.utils.devices import module_device


@dataclass
class TrainingPair:
    """A downsampled pair with normals and the ground-truth pose (source -> target)."""

    source: torch.Tensor  # [N, 3] float64
    source_normals: torch.Tensor
    target: torch.Tensor  # [M, 3]
    target_normals: torch.Tensor
    pose: torch.Tensor  # [4, 4]
    kind: str


def _prepare(src, tgt, pose, voxel, kind) -> TrainingPair | None:
    s, _ = voxel_downsample(src.double(), voxel)
    t, _ = voxel_downsample(tgt.double(), voxel)
    if s.shape[0] < 64 or t.shape[0] < 64:
        return None
    return TrainingPair(s, _oriented_normals(s), t, _oriented_normals(t), pose.double(), kind)


def _oriented_normals(points):
    from geomdl.pipelines.registration.descriptors import orient_normals

    nbr = knn_search(points, points, 16)[0]
    return orient_normals(points, estimate_normals(points, neighbors=nbr), nbr)


def make_training_pairs(num_scenes: int, num_shapes: int, seed: int, voxel: float = 0.05,
                        progress: bool = False) -> list[TrainingPair]:
    """Generate the training pairs (see the module docstring); seeded, no files."""
    from tqdm import tqdm

    from geomdl.datasets import SyntheticRegistrationPairs
    from geomdl.pipelines.registration.pairs import partial_pair, synthetic_scene

    gen = torch.Generator().manual_seed(seed)
    pairs = []

    def u(lo, hi):
        return lo + (hi - lo) * float(torch.rand((), generator=gen))

    for _ in tqdm(range(num_scenes), desc="scene pairs", disable=None if progress else True):
        scene = synthetic_scene(int(u(25000, 90000)), extent=u(2.5, 4.0), generator=gen)
        src, tgt, pose = partial_pair(scene, u(0.8, 1.4), u(0.3, 1.1), noise=u(0.0, 0.01),
                                      outlier_fraction=u(0.0, 0.05), generator=gen)
        pair = _prepare(src, tgt, pose, voxel, "scene")
        if pair is not None:
            pairs.append(pair)
    if num_shapes:
        shapes = SyntheticRegistrationPairs(num_shapes, num_points=8000, split="train", seed=seed, noise=0.004,
                                            outlier_ratio=0.02, keep_ratio=0.7, view_angle=70.0)
        for k in tqdm(range(num_shapes), desc="shape pairs", disable=None if progress else True):
            item = shapes[k]
            scale = u(0.8, 1.3)
            pose = item.transform[0].double().clone()
            pose[:3, 3] *= scale
            pair = _prepare(item.pos_src.double() * scale, item.pos_ref.double() * scale, pose, voxel, "shape")
            if pair is not None:
                pairs.append(pair)
    return pairs


def sample_correspondences(pair: TrainingPair, num: int, voxel: float, generator: torch.Generator):
    """Up to ``num`` ground-truth matches ``(source index, target index)`` (target point within
    ``voxel`` of the moved source point), drawn at random. Returns ``[P, 2]`` int64."""
    moved = transform(pair.source, pair.pose)
    idx, dist = knn_search(pair.target, moved, 1)
    ok = torch.nonzero(dist[:, 0] < voxel).reshape(-1)
    if ok.numel() == 0:
        return torch.zeros((0, 2), dtype=torch.long)
    pick = ok[torch.randperm(ok.numel(), generator=generator)[:num]]
    return torch.stack([pick, idx[pick, 0]], 1)


def info_nce(a: torch.Tensor, b: torch.Tensor, positions: torch.Tensor, group: torch.Tensor, min_distance: float,
             temperature: float = 0.1) -> torch.Tensor:
    """Symmetric InfoNCE (module docstring). ``a, b [B, D]`` unit descriptors of matched points,
    ``positions [B, 3]`` their target-frame positions, ``group [B]`` the pair each comes from (all on one device)."""
    logits = a @ b.T / temperature
    # each pair's positions relative to their own mean: cdist's expansion cancels far from the origin, and
    # the pairs' frames may lie far apart (one shared mean would leave them far from it)
    _, slot, counts = torch.unique(group, return_inverse=True, return_counts=True)
    sums = positions.new_zeros(counts.shape[0], positions.shape[1]).index_add_(0, slot, positions)
    centred = positions - (sums / counts[:, None].to(positions.dtype))[slot]
    near = (group[:, None] == group[None]) & (torch.cdist(centred, centred) < min_distance)
    near.fill_diagonal_(False)
    logits = logits.masked_fill(near, -1e4)
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (torch.nn.functional.cross_entropy(logits, target) + torch.nn.functional.cross_entropy(logits.T, target))


def batch_features(model, pairs: list[TrainingPair], per_pair: int, voxel: float, generator: torch.Generator):
    """Patch features (and PPF histograms, if the model takes them) of sampled matches from several
    pairs: ``(feat_src, feat_tgt, ppf_src, ppf_tgt, positions, group)``; ``positions`` are relative to each
    pair's target-cloud mean (only distances within a pair are used)."""
    radius = model.config["radius_voxels"] * voxel
    k = model.config["num_neighbors"]
    fs, ft, ps, pt, pos, grp = [], [], [], [], [], []
    for g, pair in enumerate(pairs):
        corr = sample_correspondences(pair, per_pair, voxel, generator)
        if corr.shape[0] < 2:
            continue
        fs.append(patch_features(pair.source, pair.source_normals, corr[:, 0], radius, k).float())
        ft.append(patch_features(pair.target, pair.target_normals, corr[:, 1], radius, k).float())
        if model.config.get("ppf_input"):
            ps.append(ppf_histogram(pair.source, pair.source_normals, corr[:, 0], radius, oriented=True).float())
            pt.append(ppf_histogram(pair.target, pair.target_normals, corr[:, 1], radius, oriented=True).float())
        pos.append((pair.target[corr[:, 1]] - pair.target.mean(0)).float())  # centred before float32 rounding
        grp.append(torch.full((corr.shape[0],), g, dtype=torch.long))
    ps, pt = (torch.cat(ps), torch.cat(pt)) if ps else (None, None)
    return torch.cat(fs), torch.cat(ft), ps, pt, torch.cat(pos), torch.cat(grp)


def train_descriptor(model, pairs: list[TrainingPair], steps: int, voxel: float = 0.05, pairs_per_step: int = 4,
                     per_pair: int = 128, lr: float = 2e-3, temperature: float = 0.1, seed: int = 0,
                     progress: bool = False) -> list[float]:
    """Train ``model`` (a :class:`~geomdl.pipelines.registration.learned.PatchDescriptor`) in place with
    AdamW and a cosine schedule; returns the loss of every step. The patches are built on the CPU (the
    registration pipeline's device) and moved to the device of ``model``."""
    from tqdm import tqdm

    if not pairs:
        raise ValueError("pairs is empty: nothing to train on")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    model.train()
    device = module_device(model)
    losses = []
    bar = tqdm(range(steps), desc="descriptor", disable=None if progress else True)
    for _ in bar:
        chosen = rng.sample(pairs, min(pairs_per_step, len(pairs)))
        fs, ft, ps, pt, pos, grp = (None if t is None else t.to(device)
                                    for t in batch_features(model, chosen, per_pair, voxel, gen))
        loss = info_nce(model(fs, ps), model(ft, pt), pos, grp, 2 * voxel, temperature)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    return losses


@torch.no_grad()
def match_statistics(describe, pair: TrainingPair, voxel: float, spacing: float, max_keypoints: int = 5000) -> dict:
    """Mutual-nearest-neighbour matches of ``describe(points, normals, keypoints) -> [M, D]`` on grid
    keypoints (``spacing``) of both clouds: ``{"matches", "inliers", "inlier_ratio"}`` (inlier: the
    matched points are within ``2 * voxel`` under the ground-truth pose)."""
    from geomdl.pipelines.registration.matching import mutual_nearest_neighbors
    from geomdl.pipelines.registration.pipeline import grid_keypoints

    gen = torch.Generator().manual_seed(0)
    ks = grid_keypoints(pair.source, spacing, max_keypoints, gen)
    kt = grid_keypoints(pair.target, spacing, max_keypoints, gen)
    ds, dt = describe(pair.source, pair.source_normals, ks), describe(pair.target, pair.target_normals, kt)
    m = mutual_nearest_neighbors(ds, dt)
    err = (transform(pair.source[ks[m[:, 0]]], pair.pose) - pair.target[kt[m[:, 1]]]).norm(dim=1)
    inl = int((err < 2 * voxel).sum())
    return {"matches": int(m.shape[0]), "inliers": inl, "inlier_ratio": inl / max(m.shape[0], 1)}
