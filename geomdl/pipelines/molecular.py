"""Molecular energy/force pipeline: read frames, fit per-element shifts, train and evaluate a
potential (``E``, ``F = -dE/dx``) with the standard weighted loss.

Loss (``sigma`` = RMS of the training force components, ``n_b`` = atoms of structure ``b``):

    L = w_E mean_b ((E_b - E^_b) / (sigma n_b))^2  +  w_F mean_{i,k} ((F_ik - F^_ik) / sigma)^2

Energies are modelled as ``E = sigma * sum_i e_i + sum_i shift[Z_i]`` with the shifts fitted by least
squares on the training set (:func:`geomdl.nn.ponita.fit_energy_shifts`). Reported metrics: energy
MAE/RMSE per structure (meV) and force-component MAE/RMSE (meV/A), on inputs in eV and A.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, fields, replace

import numpy as np
import torch

from geomdl.pipelines.ema import ModelEMA
from geomdl.pipelines.optim import lr_multiplier
from geomdl.utils.rotations import random_rotation
from geomdl.utils.devices import module_device


@dataclass
class Frame:
    """One structure: atomic numbers ``z`` ``[N]``, positions ``pos`` ``[N, 3]`` (A), ``energy`` (eV),
    ``forces`` ``[N, 3]`` (eV/A) or ``None``."""

    z: torch.Tensor
    pos: torch.Tensor
    energy: float | None
    forces: torch.Tensor | None


def read_frames(path, index=":", energy_key: str = "energy", forces_key: str = "forces", unit_energy: float = 1.0,
                unit_length: float = 1.0) -> list[Frame]:
    """Read structures with energies/forces from any file ASE reads (extxyz, ASE db, traj, ...) or an
    MD17-style ``.npz`` (keys ``R, E, F, z`` or ``coords, energies, forces, nuclear_charges``).

    ``unit_energy`` multiplies energies (e.g. ``0.0433641`` for kcal/mol -> eV); forces are scaled
    by ``unit_energy / unit_length``. Raises ValueError naming the file when it cannot be read or
    holds no energies.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if path.endswith(".npz"):
        return _read_npz(path, index, unit_energy, unit_length)
    import ase.io

    try:
        atoms_list = ase.io.read(path, index)
    except Exception as exc:
        raise ValueError(f"{path}: cannot read structures ({exc})") from exc
    if not isinstance(atoms_list, list):
        atoms_list = [atoms_list]
    frames = []
    for k, atoms in enumerate(atoms_list):
        energy, forces = _energy_forces(atoms, energy_key, forces_key)
        if energy is None:
            raise ValueError(f"{path}: structure {k} has no energy (looked for info/calc key {energy_key!r})")
        frames.append(Frame(torch.as_tensor(atoms.numbers, dtype=torch.long),
                            torch.as_tensor(atoms.positions * unit_length, dtype=torch.float64),
                            float(energy) * unit_energy,
                            None if forces is None else torch.as_tensor(forces * unit_energy / unit_length, dtype=torch.float64)))
    return frames


def _energy_forces(atoms, energy_key, forces_key):
    energy = atoms.info.get(energy_key)
    forces = atoms.arrays.get(forces_key)
    calc = atoms.calc
    if calc is not None and hasattr(calc, "results"):
        energy = calc.results.get("energy", energy) if energy is None else energy
        forces = calc.results.get("forces", forces) if forces is None else forces
    if energy is None and hasattr(atoms, "data"):
        energy = atoms.data.get(energy_key)
    return energy, None if forces is None else np.asarray(forces, dtype=np.float64)


def _read_npz(path, index, unit_energy, unit_length):
    from geomdl.datasets.molecular import read_md17_npz

    # the dataset reader's checks: keys, shapes, integer charges, real and finite values (naming the file)
    arrays = read_md17_npz(path, require_forces=False)
    pos, energy, forces = arrays["pos"], arrays["energy"], arrays["forces"]
    sel = _select(len(energy), index, path)
    z = torch.as_tensor(arrays["z"], dtype=torch.long)
    return [Frame(z, torch.as_tensor(pos[i] * unit_length, dtype=torch.float64), float(energy[i]) * unit_energy,
                  None if forces is None else torch.as_tensor(forces[i] * unit_energy / unit_length, dtype=torch.float64))
            for i in sel]


def _select(num: int, index, path) -> range:
    """The frames ``index`` picks out of ``num``, as ``ase.io.read`` reads ``index``: ``":"``/None (all), a slice
    string (``"1:"``, ``"::2"``) or one frame (an int or a string without ``:``, e.g. ``-1`` or ``"-1"``: the last).
    Raises IndexError naming ``path`` for a single frame out of range."""
    if index == ":" or index is None:
        return range(num)
    if isinstance(index, int) or ":" not in str(index):
        i = int(index)
        if not -num <= i < num:
            raise IndexError(f"{path}: frame index {index!r} out of range for {num} frames")
        return range(i % num, i % num + 1)
    parts = [int(p) if p else None for p in str(index).split(":")]
    return range(num)[slice(*parts)]


@dataclass
class MoleculeBatch:
    z: torch.Tensor
    pos: torch.Tensor
    batch: torch.Tensor
    energy: torch.Tensor
    forces: torch.Tensor
    num_atoms: torch.Tensor
    num_graphs: int

    def to(self, device) -> "MoleculeBatch":
        """The same batch with every tensor on ``device``."""
        return replace(self, **{f.name: getattr(self, f.name).to(device) for f in fields(self)
                                if isinstance(getattr(self, f.name), torch.Tensor)})


def collate(frames: list[Frame], dtype=torch.float32) -> MoleculeBatch:
    """Concatenate frames into one batch (positions/forces in ``dtype``)."""
    z = torch.cat([f.z for f in frames])
    counts = torch.tensor([f.z.numel() for f in frames])
    return MoleculeBatch(z, torch.cat([f.pos for f in frames]).to(dtype),
                         torch.repeat_interleave(torch.arange(len(frames)), counts),
                         torch.tensor([f.energy for f in frames], dtype=torch.float64),
                         torch.cat([f.forces if f.forces is not None else torch.zeros(f.z.numel(), 3, dtype=torch.float64)
                                    for f in frames]).to(dtype), counts.to(dtype), len(frames))


def composition(frames: list[Frame], atomic_numbers: list[int]) -> torch.Tensor:
    """Counts ``[B, T]`` of each element of ``atomic_numbers`` in each frame."""
    lookup = {z: k for k, z in enumerate(atomic_numbers)}
    counts = torch.zeros(len(frames), len(atomic_numbers), dtype=torch.float64)
    for b, f in enumerate(frames):
        for zz in f.z.tolist():
            counts[b, lookup[zz]] += 1
    return counts


def prepare_potential(model, train: list[Frame]) -> None:
    """Fit ``model.energy_shift`` (least squares per element) and ``model.energy_scale`` (RMS of the
    training force components; energy residual RMS per atom when there are no forces) on ``train``."""
    from geomdl.nn.ponita import fit_energy_shifts

    counts = composition(train, model.atomic_numbers)
    energies = torch.tensor([f.energy for f in train], dtype=torch.float64)
    shift = fit_energy_shifts(counts, energies)
    forces = [f.forces for f in train if f.forces is not None]
    if forces:
        scale = torch.cat(forces).pow(2).mean().sqrt()
    else:
        scale = ((energies - counts @ shift) / counts.sum(1)).pow(2).mean().sqrt()
    model.energy_shift.copy_(shift.to(model.energy_shift.dtype))
    model.energy_scale.fill_(float(scale) if float(scale) > 0 else 1.0)


def _rotate(batch: MoleculeBatch, generator) -> MoleculeBatch:
    """One random rotation per structure applied to positions and forces (augmentation); drawn on the CPU
    (the generator's device), applied on the batch's."""
    rots = torch.stack([random_rotation(generator) for _ in range(batch.num_graphs)]).to(batch.pos.device, batch.pos.dtype)
    rots = rots[batch.batch]
    return MoleculeBatch(batch.z, torch.einsum("nij,nj->ni", rots, batch.pos), batch.batch, batch.energy,
                         torch.einsum("nij,nj->ni", rots, batch.forces), batch.num_atoms, batch.num_graphs)


def loss_fn(out: dict, batch: MoleculeBatch, scale: float, energy_weight: float, forces_weight: float) -> torch.Tensor:
    """The weighted energy/force loss of the module docstring."""
    e = ((out["energy"] - batch.energy) / (scale * batch.num_atoms)).pow(2).mean()
    f = ((out["forces"] - batch.forces) / scale).pow(2).mean()
    return energy_weight * e + forces_weight * f


def train_potential(model, train: list[Frame], val: list[Frame] | None = None, *, epochs: int = 100, batch_size: int = 5,
                    lr: float = 5e-3, min_lr_ratio: float = 0.01, warmup_epochs: int = 1, energy_weight: float = 1.0,
                    forces_weight: float = 100.0, ema_decay: float | None = 0.99, grad_clip: float | None = 10.0,
                    rotate: bool = True, eval_every: int = 10, seed: int = 0, time_limit: float | None = None,
                    time_budget: float | None = None, dtype=torch.float32, log=print, progress: bool = False,
                    keep_freed_memory: bool = True) -> dict:
    """Train ``model`` (a :class:`~geomdl.nn.ponita.PonitaPotential`-like module) on ``train``.

    Adam with a linear warm-up then a cosine decay of the learning rate (per step) to
    ``lr * min_lr_ratio``, gradient clipping, optional EMA of the weights
    (:class:`~geomdl.pipelines.ema.ModelEMA`, as in the Trainer; the EMA copy is evaluated and
    returned), random-rotation augmentation. ``time_limit`` (seconds) stops training early and
    says so. ``time_budget`` (seconds) makes the schedule follow the elapsed fraction of the budget
    instead of the step count and ends training when it is spent (at most ``epochs`` epochs), so the
    recipe completes its schedule on a slow or busy machine. ``keep_freed_memory`` (default on) calls
    :func:`geomdl.utils.allocator.keep_freed_memory` so the large per-step tensors reuse the heap instead
    of being page-faulted in at every step (about 25 % of a PONITA step on 3BPA; the process keeps its
    peak heap). Batches are moved to the device of ``model``. Returns ``{"model", "history", "epoch_times",
    "stopped_early"}``.
    """
    if not train:
        raise ValueError("train: no frames")
    if keep_freed_memory:
        from geomdl.utils.allocator import keep_freed_memory as _keep

        _keep()
    prepare_potential(model, train)
    model.to(dtype).train()
    ema = ModelEMA(model, ema_decay) if ema_decay else None
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = math.ceil(len(train) / batch_size)
    total, warm = epochs * steps_per_epoch, warmup_epochs * steps_per_epoch

    def lr_at(step):  # warm-up, then a cosine over the steps or over the elapsed fraction of time_budget
        elapsed = (time.perf_counter() - start) / time_budget if time_budget is not None and step >= warm else None
        return lr * lr_multiplier(step, schedule="cosine", total_steps=total, warmup_steps=warm, min_lr_ratio=min_lr_ratio,
                                  progress=elapsed)

    scale = float(model.energy_scale)
    history, epoch_times, step, start, stopped = [], [], 0, time.perf_counter(), False
    epoch_iter = range(epochs)
    if progress:
        from tqdm import tqdm

        epoch_iter = tqdm(epoch_iter, desc="train", unit="epoch", disable=None)  # a terminal only
    for epoch in epoch_iter:
        t0 = time.perf_counter()
        perm = torch.randperm(len(train), generator=gen).tolist()
        running = torch.zeros((), dtype=torch.float64, device=module_device(model))
        for k in range(0, len(train), batch_size):
            batch = collate([train[i] for i in perm[k:k + batch_size]], dtype).to(module_device(model))
            if rotate:
                batch = _rotate(batch, gen)
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            out = model(batch.z, batch.pos, batch.batch, batch.num_graphs, create_graph=True)
            loss = loss_fn(out, batch, scale, energy_weight, forces_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            opt.step()
            if ema is not None:
                ema.update(model)
            running += loss.detach().double() * batch.num_graphs  # on the device: no host sync per step
            step += 1
        running = float(running)  # waits for the epoch's queued device work: before its time is taken
        epoch_times.append(time.perf_counter() - t0)
        entry = {"epoch": epoch + 1, "loss": running / len(train), "lr": lr_at(step - 1), "time_s": epoch_times[-1]}
        budget_spent = time_budget is not None and time.perf_counter() - start >= time_budget
        last = epoch + 1 == epochs or budget_spent
        over = time_limit is not None and time.perf_counter() - start > time_limit
        if val and ((epoch + 1) % eval_every == 0 or last or over):
            entry.update({f"val_{k}": v for k, v in evaluate_potential(model if ema is None else ema.module, val, batch_size=2 * batch_size, dtype=dtype).items()})
        history.append(entry)
        if log is not None:
            log("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in entry.items()))
        if budget_spent:
            break
        if over and not last:
            stopped = True
            if log is not None:
                log(f"time limit of {time_limit:.0f} s reached after {epoch + 1} of {epochs} epochs: stopping early")
            break
    final = model if ema is None else ema.module.requires_grad_(True)  # trainable, as the raw model is
    final.eval()
    return {"model": final, "history": history, "epoch_times": epoch_times, "stopped_early": stopped}


def evaluate_potential(model, frames: list[Frame], batch_size: int = 10, dtype=torch.float32, rotations: int = 0,
                       seed: int = 1) -> dict:
    """Energy MAE/RMSE (meV per structure) and force-component MAE/RMSE (meV/A) on ``frames``.

    ``rotations > 0`` averages the predictions over that many random rotations of each batch
    (forces rotated back), which reduces the grid discretisation error of fiber-bundle models. Batches are
    moved to the device of ``model``. ``ValueError`` for no frames (no error to average).
    """
    if len(frames) == 0:
        raise ValueError("frames is empty: no structure to evaluate")
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    e_err, f_err = [], []
    for k in range(0, len(frames), batch_size):
        batch = collate(frames[k:k + batch_size], dtype).to(module_device(model))
        if rotations:
            es, fs = 0.0, 0.0
            for _ in range(rotations):
                rot = random_rotation(gen).to(batch.pos.device, dtype)
                out = model(batch.z, batch.pos @ rot.T, batch.batch, batch.num_graphs, create_graph=False)
                es = es + out["energy"].detach()
                fs = fs + out["forces"].detach() @ rot
            energy, forces = es / rotations, fs / rotations
        else:
            out = model(batch.z, batch.pos, batch.batch, batch.num_graphs, create_graph=False)
            energy, forces = out["energy"].detach(), out["forces"].detach()
        e_err.append((energy - batch.energy).double())
        f_err.append((forces - batch.forces).double().reshape(-1))
    model.train(was_training)
    e, f = torch.cat(e_err) * 1000, torch.cat(f_err) * 1000
    return {"energy_mae": float(e.abs().mean()), "energy_rmse": float(e.pow(2).mean().sqrt()),
            "forces_mae": float(f.abs().mean()), "forces_rmse": float(f.pow(2).mean().sqrt())}


def save_potential(model, path) -> None:
    """Write a trained :class:`~geomdl.nn.ponita.PonitaPotential` (config + weights + shifts + grid)
    atomically to ``path``."""
    from geomdl.utils.io import atomic_torch_save

    atomic_torch_save({"kind": "PonitaPotential", "config": dict(model.config), "state_dict": model.state_dict()}, path)


def load_potential(path, map_location="cpu"):
    """Load a checkpoint written by :func:`save_potential` or by ``geomdl train`` with model
    ``ponita_energy``; raises ValueError naming the file when it is neither."""
    from geomdl.nn.ponita import PonitaPotential

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)  # no code runs on load
    except Exception as exc:
        raise ValueError(f"{path}: not a readable torch checkpoint ({exc})") from exc
    if isinstance(ckpt, dict) and ckpt.get("model_name") == "ponita_energy" and "model" in ckpt:
        # a checkpoint of the training engine (geomdl train ponita_*): EMA weights if any
        from geomdl.models.ponita import PonitaEnergy

        model = PonitaEnergy(**ckpt["model_kwargs"])
        ema = ckpt.get("ema")
        model.load_state_dict(ema["module"] if isinstance(ema, dict) and "module" in ema else ckpt["model"])
        return model.eval()
    if not isinstance(ckpt, dict) or ckpt.get("kind") != "PonitaPotential" or "config" not in ckpt:
        raise ValueError(f"{path}: not a PonitaPotential checkpoint (expected keys kind/config/state_dict, "
                         "or a 'ponita_energy' checkpoint of geomdl train)")
    config = dict(ckpt["config"])
    numbers = config.pop("atomic_numbers")
    model = PonitaPotential(numbers, **config)
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def frames_from_dataset(dataset) -> list[Frame]:
    """Frames from a dataset of ``Data(z, pos, energy, forces)`` items (e.g.
    ``geomdl.datasets.synthetic.molecules.SyntheticMolecules`` or the extxyz/ASE loaders)."""
    frames = []
    for k in range(len(dataset)):
        d = dataset[k]
        forces = getattr(d, "forces", None)
        frames.append(Frame(d.z.long().reshape(-1), d.pos.double(), float(torch.as_tensor(d.energy).reshape(-1)[0]),
                            None if forces is None else forces.double()))
    return frames
