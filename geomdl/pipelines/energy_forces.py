"""``energy_forces`` task for the training engine: molecular energies and forces ``F = -dE/dpos``.

Works with any dataset of ``Data(z, pos, energy, forces)`` (``3bpa``, ``md17``/``rmd17``, ``extxyz``,
``ase_db``, ``synthetic_molecules``) and a model returning energies ``[B]`` from ``model(batch)``
(``ponita_energy``). On the training set the task fits per-element energy shifts (least squares) and
the force scale ``sigma`` (RMS of the force components) and hands them to the model as
``energy_shifts``/``energy_scale`` (saved in checkpoints). Loss, as in :mod:`geomdl.pipelines.molecular`:

    L = w_E mean_b ((E_b - E^_b) / (sigma n_b))^2 + w_F mean ((F - F^) / sigma)^2

Metrics: ``energy_mae/rmse`` (per structure) and ``forces_mae/rmse`` (per component), in the data's
units x ``metric_scale`` (default 1000: eV -> meV).

Test split: the final evaluation of ``geomdl train`` (``results.json``) also scores the dataset's test
split, never looked at during training. ``final_test_frames`` (default 1000) caps it at a seeded random
subset of that many frames, so that e.g. rMD17 with ``split_sizes: [950, 50, null]`` (~99k test frames)
does not spend hours on it; ``null`` scores the whole split, ``0`` none. ``geomdl eval`` always scores
the whole split.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from geomdl.pipelines import metrics
from geomdl.pipelines.config import ConfigError, check_kwargs
from geomdl.pipelines.tasks import Task


@dataclass
class EnergyForceOptions:
    energy_weight: float = 1.0
    forces_weight: float = 100.0
    metric_scale: float = 1000.0
    final_test_frames: int | None = 1000  # test frames scored at the end of training (None: all, 0: none)

    def __post_init__(self):
        for name in ("energy_weight", "forces_weight"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):  # a negative weight maximises that error
                raise ConfigError(f"task.kwargs.{name}: expected a finite float >= 0, got {value}")
        if self.energy_weight == 0 and self.forces_weight == 0:
            raise ConfigError("task.kwargs.energy_weight, task.kwargs.forces_weight: both are 0 (the loss is 0); "
                              "expected at least one > 0")
        if not (math.isfinite(self.metric_scale) and self.metric_scale > 0):
            raise ConfigError(f"task.kwargs.metric_scale: expected a finite float > 0, got {self.metric_scale}")
        n = self.final_test_frames
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
            raise ConfigError(f"task.kwargs.final_test_frames must be an int >= 0 or null, got {n!r}")


class EnergyForceTask(Task):
    kind = "generic"
    grad_in_eval = True

    def __init__(self, config):
        super().__init__(config)
        self.options = EnergyForceOptions(**check_kwargs(EnergyForceOptions, config.task.kwargs, "task.kwargs"))
        self.scale = 1.0

    def final_test_split(self):
        """The test split capped at ``final_test_frames`` (a seeded random subset; see the module docstring);
        ``None`` for ``final_test_frames: 0`` (then not even built)."""
        n = self.options.final_test_frames
        test = super().final_test_split() if n != 0 else None
        if test is not None and n is not None and len(test) > n:
            pick = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[:n].sort().values
            test = torch.utils.data.Subset(test, pick.tolist())
        return test

    def model_defaults(self, datasets):
        from geomdl.nn.ponita import fit_energy_shifts

        train = datasets["train"]
        zs, energies, forces = [], [], []
        for k in range(len(train)):
            d = train[k]
            zs.append(d.z.reshape(-1).long())
            energies.append(float(torch.as_tensor(d.energy).reshape(-1)[0]))
            if getattr(d, "forces", None) is not None:
                forces.append(d.forces.double())
        numbers = sorted({int(z) for zz in zs for z in zz.tolist()})
        lookup = {z: i for i, z in enumerate(numbers)}
        counts = torch.zeros(len(zs), len(numbers), dtype=torch.float64)
        for b, zz in enumerate(zs):
            for z in zz.tolist():
                counts[b, lookup[z]] += 1
        shifts = fit_energy_shifts(counts, torch.tensor(energies, dtype=torch.float64))
        self.scale = float(torch.cat(forces).pow(2).mean().sqrt()) if forces else 1.0
        return {"atomic_numbers": numbers, "energy_shifts": shifts.tolist(), "energy_scale": self.scale}

    def state_dict(self):
        return {"scale": self.scale}

    def load_state_dict(self, state):
        self.scale = float(state["scale"])

    def forward(self, model, batch, train):
        with torch.enable_grad():
            pos = batch.pos.detach().requires_grad_(True)
            batch.pos = pos
            energy = model(batch)
            (grad,) = torch.autograd.grad(energy.sum(), pos, create_graph=train)
        return {"energy": energy, "forces": -grad}

    def _scaled_errors(self, batch, output):
        """``((E - E^) / (sigma n_b)) [B]`` and ``((F - F^) / sigma) [N, 3]``, the terms of the loss."""
        n = torch.bincount(batch.batch, minlength=batch.num_graphs).to(output["energy"].dtype)
        target_e = batch.energy.reshape(-1).to(output["energy"].dtype)
        e = (output["energy"] - target_e) / (self.scale * n)
        f = (output["forces"] - batch.forces.to(output["forces"].dtype)) / self.scale
        return e, f

    def loss(self, batch, output):
        e, f = self._scaled_errors(batch, output)
        return (self.options.energy_weight * e.pow(2).mean() + self.options.forces_weight * f.pow(2).mean()).float()

    def metric_stats(self, batch, output):
        s = self.options.metric_scale
        e, f = self._scaled_errors(batch, output)
        # the two loss terms as sums: the energy term is a mean over structures, the force term over force
        # components, so no single per-batch weight makes the mean of batch losses exact (see compute_metrics)
        return {**metrics.error_sums(output["energy"] * s, batch.energy.reshape(-1) * s, "energy"),
                **metrics.error_sums(output["forces"] * s, batch.forces * s, "forces"),
                **metrics.error_sums(e.detach(), torch.zeros_like(e), "loss_energy"),
                **metrics.error_sums(f.detach(), torch.zeros_like(f), "loss_forces")}

    def predictions(self, batch, output):
        """Energies ``[B]`` and force components ``[3N]`` (float32, in the metrics' units) for the parity plot."""
        s = self.options.metric_scale
        return {"energy_pred": (output["energy"].detach() * s).float().cpu(),
                "energy_true": (batch.energy.reshape(-1) * s).float().cpu(),
                "forces_pred": (output["forces"].detach() * s).reshape(-1).float().cpu(),
                "forces_true": (batch.forces * s).reshape(-1).float().cpu()}

    def plot(self, predictions, stats, out_dir, split):
        """``parity_<split>.png``: predicted against true energies and force components."""
        from geomdl.pipelines.plots import energy_force_parity_plot

        if not predictions:
            return []
        p = predictions
        return [energy_force_parity_plot(p["energy_pred"], p["energy_true"], p["forces_pred"], p["forces_true"],
                                         out_dir / f"parity_{split}.png", title=split)]

    def compute_metrics(self, stats):
        out = {**metrics.mae_rmse_from_sums(stats, "energy"), **metrics.mae_rmse_from_sums(stats, "forces")}
        e_n, f_n = float(stats["loss_energy/count"]), float(stats["loss_forces/count"])
        if e_n and f_n:  # the loss of the whole split (replaces the batch-weighted mean of the evaluation loop)
            out["loss"] = (self.options.energy_weight * float(stats["loss_energy/sq_sum"]) / e_n
                           + self.options.forces_weight * float(stats["loss_forces/sq_sum"]) / f_n)
        return out
