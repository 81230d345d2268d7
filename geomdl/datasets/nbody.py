"""Charged N-body systems simulated by geomdl (the EGNN benchmark setting, Satorras et al. 2021,
after the 2D charged-particles system of Kipf et al. 2018).

``num_particles`` (5) particles with charges ``q = +-1`` (p = 1/2 each), initial positions
``N(0, loc_std^2)`` per coordinate, initial velocities of norm ``vel_norm`` (0.5) in random directions,
Coulomb-like forces ``F_i = c sum_j q_i q_j (x_i - x_j) / |x_i - x_j|^3`` clipped per component to
``+-0.1/dt``, and the time stepping of the reference simulator (``v += dt F`` then ``x += dt v``,
``dt = 0.001``), in 3D without a bounding box (``box_size=None``). States are recorded every
``sample_every`` (100) steps; frame ``k`` is the state after ``(k + 1) * sample_every`` steps. The task
input is frame 30 (positions, velocities, charges), the target the positions at frame 40 (1000
steps later). Everything is seeded; results are cached atomically as ``.pt`` files.
"""
from __future__ import annotations

import numbers
import os

import numpy as np
import torch

from geomdl.utils.io import atomic_torch_save


def simulate_charged_systems(num_systems: int, num_particles: int = 5, frames: int = 41, sample_every: int = 100,
                             dt: float = 0.001, loc_std: float = 1.0, vel_norm: float = 0.5, interaction: float = 1.0,
                             box_size: float | None = None, seed: int = 0, progress: bool = False) -> dict:
    """Simulate ``num_systems`` systems at once (vectorised over systems).

    Returns ``{"loc": [S, frames, n, 3], "vel": [S, frames, n, 3], "charges": [S, n]}`` (float64 numpy).
    """
    for name, v in (("num_systems", num_systems), ("num_particles", num_particles), ("frames", frames), ("sample_every", sample_every)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    rng = np.random.default_rng(seed)
    s, n = num_systems, num_particles
    charges = rng.choice(np.array([-1.0, 1.0]), size=(s, n))
    loc = rng.normal(size=(s, n, 3)) * loc_std
    vel = rng.normal(size=(s, n, 3))
    vel = vel * vel_norm / np.linalg.norm(vel, axis=-1, keepdims=True)
    qq = charges[:, :, None] * charges[:, None, :] * interaction  # [S, n, n]
    max_f = 0.1 / dt
    eye = np.eye(n, dtype=bool)

    def force(x):
        diff = x[:, :, None, :] - x[:, None, :, :]  # x_i - x_j
        d2 = (diff ** 2).sum(-1)
        d2[:, eye] = 1.0
        size = qq / d2 ** 1.5
        size[:, eye] = 0.0
        return np.clip((size[..., None] * diff).sum(2), -max_f, max_f)

    def clamp(x, v):
        if box_size is None:
            return x, v
        over, under = x > box_size, x < -box_size
        x = np.where(over, 2 * box_size - x, np.where(under, -2 * box_size - x, x))
        v = np.where(over | under, -v, v)
        return x, v

    out_loc = np.zeros((s, frames, n, 3))
    out_vel = np.zeros((s, frames, n, 3))
    loc, vel = clamp(loc, vel)
    vel = vel + dt * force(loc)
    total = frames * sample_every
    steps = range(1, total + 1)
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc="n-body simulation", unit="step", mininterval=2.0, disable=None)
    for i in steps:
        loc = loc + dt * vel
        loc, vel = clamp(loc, vel)
        if i % sample_every == 0:
            out_loc[:, i // sample_every - 1], out_vel[:, i // sample_every - 1] = loc, vel
        vel = vel + dt * force(loc)
    return {"loc": out_loc, "vel": out_vel, "charges": charges}


SPLIT_SEEDS = {"train": 43, "val": 44, "test": 45}


def nbody_split(split: str, num_systems: int, cache_dir: str | os.PathLike | None = None, frame_in: int = 30,
                frame_out: int = 40, num_particles: int = 5, seed_offset: int = 0, progress: bool = True) -> dict:
    """The forecasting task of one split: ``{"pos" [S, n, 3], "vel" [S, n, 3], "charges" [S, n],
    "target" [S, n, 3]}`` (float32 tensors). Cached in ``cache_dir`` when given (atomic writes)."""
    if split not in SPLIT_SEEDS:
        raise ValueError(f"split must be one of {sorted(SPLIT_SEEDS)}, got {split!r}")
    # a float frame was a bare numpy IndexError (frame_in) or an error about the simulator's "frames" (frame_out)
    for name, value in (("frame_in", frame_in), ("frame_out", frame_out), ("seed_offset", seed_offset)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an int, got {value!r}")
    frame_in, frame_out, seed_offset = int(frame_in), int(frame_out), int(seed_offset)
    if not 0 <= frame_in < frame_out:
        raise ValueError(f"need 0 <= frame_in < frame_out, got {frame_in}, {frame_out}")
    path = None
    if cache_dir is not None:
        path = os.path.join(os.fspath(cache_dir), f"nbody_{split}_{num_systems}_{num_particles}_{frame_in}_{frame_out}_{seed_offset}.pt")
        if os.path.exists(path):
            try:
                return torch.load(path)
            except Exception as exc:
                raise ValueError(f"{path}: corrupt n-body cache ({exc}); delete it to regenerate") from exc
    sim = simulate_charged_systems(num_systems, num_particles, frames=frame_out + 1, seed=SPLIT_SEEDS[split] + 1000 * seed_offset,
                                   progress=progress)
    data = {"pos": torch.tensor(sim["loc"][:, frame_in], dtype=torch.float32),
            "vel": torch.tensor(sim["vel"][:, frame_in], dtype=torch.float32),
            "charges": torch.tensor(sim["charges"], dtype=torch.float32),
            "target": torch.tensor(sim["loc"][:, frame_out], dtype=torch.float32)}
    if path is not None:
        atomic_torch_save(data, path)
    return data
