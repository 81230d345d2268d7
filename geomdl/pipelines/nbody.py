"""N-body charged-particle forecasting with PONITA: predict positions 1000 steps ahead.

Input per particle: charge and speed (scalars), velocity (vector); output one vector ``dx`` per
particle; prediction ``x + dx``; loss and metric: MSE of the predicted positions (averaged over
particles and coordinates, as in EGNN/PONITA). Graphs are fully connected per system.
"""
from __future__ import annotations

import copy
import math
import time

import torch

from geomdl.datasets.functional import random_rotation_matrix
from geomdl.pipelines.ema import ModelEMA
from geomdl.pipelines.optim import lr_multiplier
from geomdl.utils.devices import module_device


def nbody_inputs(data: dict, index: torch.Tensor, device: torch.device | str | None = None):
    """Flatten systems ``index`` of a split into one batch: pos ``[S n, 3]``, scalars ``[S n, 2]``,
    vectors ``[S n, 1, 3]``, batch ``[S n]``, target ``[S n, 3]``, all on ``device`` (default: that of
    ``data["pos"]``)."""
    device = data["pos"].device if device is None else torch.device(device)
    pos, vel = data["pos"][index].to(device), data["vel"][index].to(device)
    s, n, _ = pos.shape
    q = data["charges"][index][..., None].to(device)
    scalars = torch.cat([q, vel.norm(dim=-1, keepdim=True)], -1).reshape(s * n, 2)
    batch = torch.arange(s, device=device).repeat_interleave(n)
    target = data["target"][index].to(device).reshape(s * n, 3)
    return pos.reshape(s * n, 3), scalars, vel.reshape(s * n, 1, 3), batch, target


def flip_charge_signs(scalars: torch.Tensor, batch: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip the sign of every charge (column 0 of ``scalars [N, 2]``) of a random half of the systems
    in ``batch [N]`` (each system keeps or flips all its charges together); the other columns are kept."""
    if batch.numel() == 0:
        return scalars
    # drawn on the CPU (the generator's device), used on the device of scalars
    sign = torch.randint(0, 2, (int(batch.max()) + 1,), generator=generator).to(scalars.device, scalars.dtype) * 2 - 1
    return torch.cat([scalars[:, :1] * sign[batch, None], scalars[:, 1:]], 1)


def predict(model, pos, scalars, vel, batch):
    """``x + dx`` with ``dx`` the model's first vector output, ``[N, 3]``."""
    _, vectors = model(pos, scalars, vel, batch=batch)
    return pos + vectors[:, 0]


@torch.no_grad()
def predict_rotation_averaged(model, pos, scalars, vel, batch, rotations: list[torch.Tensor]) -> torch.Tensor:
    """``x + dx`` averaged over rotated copies of the input: ``(1/K) sum_k R_k^T f(R_k x, R_k v)``, ``[N, 3]``.

    An exactly equivariant model gives ``f`` back unchanged; a fiber-bundle model on a finite orientation
    grid is equivariant only up to the grid, and the average is its group-averaged (symmetrised) prediction,
    the test protocol PONITA uses for its grid models (5 rotated copies on rMD17)."""
    out = torch.zeros_like(pos)
    for rot in rotations:
        rot = rot.to(pos.device, pos.dtype)
        out += predict(model, pos @ rot.T, scalars, vel @ rot.T, batch) @ rot
    return out / len(rotations)


@torch.no_grad()
def evaluate_nbody(model, data: dict, batch_size: int = 500, rotations: int = 0, seed: int = 0) -> float:
    """Mean squared error of predicted positions over a split; with ``rotations = K > 0`` the prediction of
    each batch is averaged over ``K`` Haar-random rotations of its input (:func:`predict_rotation_averaged`).
    Batches are moved to the device of ``model``; the random draws stay on the CPU (same numbers on every device).
    ``ValueError`` for a split without systems; the model's training mode is restored afterwards."""
    if not isinstance(rotations, int) or rotations < 0:
        raise ValueError(f"rotations must be a non-negative int, got {rotations!r}")
    if data["pos"].shape[0] == 0:
        raise ValueError("data holds no systems (data['pos'] has 0 rows): nothing to evaluate")
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    total, count = 0.0, 0
    num = data["pos"].shape[0]
    for k in range(0, num, batch_size):
        idx = torch.arange(k, min(k + batch_size, num))
        pos, sc, vel, batch, target = nbody_inputs(data, idx, module_device(model))
        if rotations:
            rots = [random_rotation_matrix("SO3", gen, torch.float64) for _ in range(rotations)]
            pred = predict_rotation_averaged(model, pos, sc, vel, batch, rots)
        else:
            pred = predict(model, pos, sc, vel, batch)
        total += float((pred - target).pow(2).sum())
        count += target.numel()
    model.train(was_training)
    return total / count


def train_nbody(model, train: dict, val: dict | None = None, *, epochs: int = 1000, batch_size: int = 100, lr: float = 1e-3,
                weight_decay: float = 1e-10, time_budget: float | None = None, rotate: bool = True,
                flip_charges: bool = True, ema_decay: float | None = None, eval_every: int = 10, seed: int = 0,
                log=print) -> dict:
    """Adam (+ decoupled weight decay), linear warm-up over one epoch then cosine decay (per step, or
    over the elapsed fraction of ``time_budget`` seconds), random rotations of each batch, the best
    validation model kept. Returns ``{"model", "history", "epoch_times"}``.

    ``flip_charges`` flips the sign of all charges of a random half of the systems in each batch: the
    Coulomb forces depend only on the products ``q_i q_j``, so ``q -> -q`` leaves every trajectory (and
    the target) unchanged, an exact symmetry of the task the model is not built to respect.
    ``ema_decay`` (e.g. 0.999) validates and returns an exponential moving average of the weights
    (:class:`~geomdl.pipelines.ema.ModelEMA`) instead of the raw weights. Batches are moved to the device of
    ``model``; the random draws (order, rotations, charge flips) stay on the CPU generator."""
    if ema_decay is not None and not 0 <= ema_decay < 1:
        raise ValueError(f"ema_decay must be in [0, 1) or None, got {ema_decay!r}")
    ema = ModelEMA(model, ema_decay) if ema_decay else None
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    num = train["pos"].shape[0]
    steps_per_epoch = math.ceil(num / batch_size)
    total = epochs * steps_per_epoch
    start, step = time.perf_counter(), 0
    best, best_mse, history, epoch_times = None, float("inf"), [], []

    def averaged():  # the weights that are validated and returned
        return ema.module if ema is not None else model

    def lr_at(step):  # warm-up over one epoch, then a cosine over the steps or over the elapsed fraction of time_budget
        elapsed = (time.perf_counter() - start) / time_budget if time_budget and step >= steps_per_epoch else None
        return lr * lr_multiplier(step, schedule="cosine", total_steps=total, warmup_steps=steps_per_epoch, progress=elapsed)

    for epoch in range(epochs):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(num, generator=gen)
        running = torch.zeros((), dtype=torch.float64, device=module_device(model))
        for k in range(0, num, batch_size):
            pos, sc, vel, batch, target = nbody_inputs(train, perm[k:k + batch_size], module_device(model))
            if flip_charges:
                sc = flip_charge_signs(sc, batch, gen)
            if rotate:
                rot = random_rotation_matrix("SO3", gen, pos.dtype).to(pos.device)
                pos, vel, target = pos @ rot.T, vel @ rot.T, target @ rot.T
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            loss = (predict(model, pos, sc, vel, batch) - target).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if ema is not None:
                ema.update(model)
            running += loss.detach().double() * target.shape[0]  # on the device: no host sync per step
            step += 1
        running = float(running)  # waits for the epoch's queued device work: before its time is taken
        epoch_times.append(time.perf_counter() - t0)
        entry = {"epoch": epoch + 1, "train_mse": running / (num * train["pos"].shape[1]), "time_s": epoch_times[-1]}
        spent = time_budget is not None and time.perf_counter() - start >= time_budget
        if val is not None and ((epoch + 1) % eval_every == 0 or epoch + 1 == epochs or spent):
            entry["val_mse"] = evaluate_nbody(averaged(), val)
            if entry["val_mse"] < best_mse:
                best_mse, best = entry["val_mse"], copy.deepcopy(averaged().state_dict())
        history.append(entry)
        if log is not None:
            log("  ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in entry.items()))
        if spent:
            break
    if best is not None:
        model.load_state_dict(best)
    elif ema is not None:  # no validation: return the averaged weights
        model.load_state_dict(ema.module.state_dict())
    model.eval()
    return {"model": model, "history": history, "epoch_times": epoch_times}
