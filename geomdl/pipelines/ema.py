"""Exponential moving average (EMA) of a model's weights.

.. math::  \\bar\\theta \\leftarrow d\\,\\bar\\theta + (1 - d)\\,\\theta \\quad\\text{after every optimiser step}

with the warm-up ``d_t = min(decay, (1 + t) / (10 + t))`` so early averages are not dominated by
the random initialisation. Buffers (e.g. batch-norm statistics) are copied, not averaged.
"""
from __future__ import annotations

import copy

import torch


class ModelEMA:
    """Holds ``module``, an averaged copy of a model (call :meth:`update` after each step)."""

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0 <= decay < 1:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.num_updates = 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.num_updates += 1
        d = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        for avg, new in zip(self.module.parameters(), model.parameters()):
            avg.lerp_(new.detach(), 1 - d)
        for avg, new in zip(self.module.buffers(), model.buffers()):
            avg.copy_(new)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "num_updates": self.num_updates, "module": self.module.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.decay, self.num_updates = state["decay"], state["num_updates"]
        self.module.load_state_dict(state["module"])
