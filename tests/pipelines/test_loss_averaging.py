"""The evaluation loss of a split must not depend on how the split is batched: per-point and per-atom
losses over samples of unequal size are exact means over the whole split (not a mean of batch means)."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data

from geomdl.pipelines.config import load_config
from geomdl.pipelines.distributed import DistInfo
from geomdl.pipelines.evaluation import eval_loader, evaluate

SIZES = (2, 10, 3, 7)  # samples of unequal size


def _evaluate_with_batch_sizes(task, model, dataset):
    info = DistInfo()
    return [evaluate(task, model, eval_loader(task, dataset, bs, info), info)[0] for bs in (1, 2, len(dataset))]


class _XLogits(torch.nn.Module):
    def forward(self, batch):
        return torch.stack([batch.pos[:, 0], -batch.pos[:, 0]], 1)


def test_segmentation_loss_is_the_per_point_mean_for_any_batch_size():
    from geomdl.pipelines.segmentation import PartSegmentationTask

    task = PartSegmentationTask(load_config(None, ["task.name=part_segmentation", "task.kwargs.num_classes=2",
                                                   "task.kwargs.vote_weight=0"]))
    gen = torch.Generator().manual_seed(0)
    clouds = [Data(pos=torch.randn(n, 3, generator=gen), y=torch.randint(0, 2, (n,), generator=gen)) for n in SIZES]
    pos, y = torch.cat([c.pos for c in clouds]), torch.cat([c.y for c in clouds])
    expected = float(torch.nn.functional.cross_entropy(torch.stack([pos[:, 0], -pos[:, 0]], 1), y))
    for m in _evaluate_with_batch_sizes(task, _XLogits(), clouds):
        assert m["loss"] == pytest.approx(expected, rel=1e-6)
        assert m["num_points"] == sum(SIZES)


class _HarmonicEnergy(torch.nn.Module):
    """E = sum_i |x_i|^2 / 2 per structure (forces -x)."""

    def forward(self, batch):
        e = 0.5 * batch.pos.double().pow(2).sum(1)
        return torch.zeros(batch.num_graphs, dtype=torch.float64).index_add(0, batch.batch, e)


def test_energy_force_loss_and_metrics_by_hand_for_any_batch_size():
    from geomdl.pipelines.energy_forces import EnergyForceTask

    task = EnergyForceTask(load_config(None, ["task.name=energy_forces", "model.name=ponita_energy",
                                              "task.kwargs={energy_weight: 2.0, forces_weight: 10.0}"]))
    task.scale = 0.5
    gen = torch.Generator().manual_seed(1)
    mols = [Data(z=torch.ones(n, dtype=torch.long), pos=torch.randn(n, 3, generator=gen),
                 energy=torch.tensor([float(n)], dtype=torch.float64), forces=torch.randn(n, 3, generator=gen))
            for n in SIZES]
    de = torch.tensor([0.5 * float(m.pos.double().pow(2).sum()) - float(m.energy) for m in mols], dtype=torch.float64)
    n = torch.tensor(SIZES, dtype=torch.float64)
    df = torch.cat([-m.pos.double() - m.forces.double() for m in mols])
    expected_loss = 2.0 * float((de / (0.5 * n)).pow(2).mean()) + 10.0 * float((df / 0.5).pow(2).mean())
    for m in _evaluate_with_batch_sizes(task, _HarmonicEnergy(), mols):
        assert m["loss"] == pytest.approx(expected_loss, rel=1e-6)
        # metrics in meV (per structure) and meV/A (per force component) for data in eV and A
        assert m["energy_mae"] == pytest.approx(1000 * float(de.abs().mean()), rel=1e-6)
        assert m["energy_rmse"] == pytest.approx(1000 * float(de.pow(2).mean().sqrt()), rel=1e-6)
        assert m["forces_mae"] == pytest.approx(1000 * float(df.abs().mean()), rel=1e-6)
        assert m["forces_rmse"] == pytest.approx(1000 * float(df.pow(2).mean().sqrt()), rel=1e-6)
