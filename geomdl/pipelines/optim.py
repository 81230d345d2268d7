"""Optimisers and learning-rate schedules built from ``config.optim``.

Schedules are per optimiser step and multiply the base learning rate by

.. math::
    m(s) = \\underbrace{\\min(1, (s+1)/W)}_{\\text{linear warm-up}} \\cdot
    \\begin{cases} 1 & \\text{constant} \\\\
    r + (1-r)\\,\\tfrac12\\bigl(1 + \\cos(\\pi\\, \\min(1, (s-W)/(S-W)))\\bigr) & \\text{cosine} \\\\
    \\gamma^{\\lfloor s / k \\rfloor} & \\text{step} \\end{cases}

with ``W = warmup_steps``, ``S`` the total number of optimiser steps, ``r = min_lr_ratio``,
``k = step_size`` and ``γ = gamma``. A time-budgeted run passes the elapsed fraction of its budget as
``progress``, which then replaces ``(s-W)/(S-W)`` in the cosine.
"""
from __future__ import annotations

import functools
import math

import torch

from geomdl.pipelines.config import OptimConfig


def lr_multiplier(step: int, *, schedule: str, total_steps: int, warmup_steps: int = 0, min_lr_ratio: float = 0.0,
                  step_size: int = 1000, gamma: float = 0.1, progress: float | None = None) -> float:
    """The factor ``m(step)`` above (``step`` counts optimiser steps from 0; ``progress`` in [0, 1], if
    given, is the cosine's position instead of the step count)."""
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    if schedule == "constant":
        return warm
    if schedule == "cosine":
        if progress is None:
            progress = max(0, step - warmup_steps) / max(1, total_steps - warmup_steps)
        progress = min(1.0, max(0.0, progress))
        return warm * (min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))
    if schedule == "step":
        return warm * gamma ** (step // step_size)
    raise ValueError(f"schedule must be 'constant', 'cosine' or 'step', got {schedule!r}")


def build_optimizer(params, cfg: OptimConfig) -> torch.optim.Optimizer:
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=tuple(cfg.betas))
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=tuple(cfg.betas))
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise ValueError(f"optim.name must be 'adamw', 'adam' or 'sgd', got {cfg.name!r}")


def _with_progress(multiplier, progress, step: int) -> float:
    return multiplier(step, progress=progress())


def build_scheduler(optimizer, cfg: OptimConfig, total_steps: int, progress=None) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step ``LambdaLR`` of :func:`lr_multiplier`. ``progress``: optional callable returning the cosine's
    position in [0, 1] at each step (a time-budgeted run passes the spent fraction of its budget)."""
    fn = functools.partial(lr_multiplier, schedule=cfg.schedule, total_steps=total_steps, warmup_steps=cfg.warmup_steps,
                           min_lr_ratio=cfg.min_lr_ratio, step_size=cfg.step_size, gamma=cfg.gamma)
    if progress is not None:
        fn = functools.partial(_with_progress, fn, progress)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn)
