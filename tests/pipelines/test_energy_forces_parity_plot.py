"""Energy/force runs write ``parity_<split>.png`` (energies and force components), like regression runs."""
from __future__ import annotations

import pytest
import torch

from geomdl.pipelines.plots import energy_force_parity_plot
from geomdl.pipelines.runs import train

TINY = ["data.kwargs.frames_per_trajectory=10", "model.kwargs={hidden: 8, layers: 1, num_ori: 4, basis_dim: 8, radius: 4.0}",
        "train.epochs=1", "train.progress=off", "train.tensorboard=false", "optim.warmup_steps=0"]
PNG = b"\x89PNG\r\n\x1a\n"


def test_a_trained_run_writes_energy_force_parity_plots(tmp_path):
    summary = train("ponita_molecules", [*TINY, f"train.out_dir={tmp_path}"])
    for split in ("val", "test"):
        path = tmp_path / f"parity_{split}.png"
        assert str(path) in summary["plots"] and path.read_bytes().startswith(PNG)


def test_the_plot_draws_a_capped_subset_but_scores_every_point(tmp_path, monkeypatch):
    from geomdl.pipelines import plots

    figures = []
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: (figures.append(fig), save(fig, path))[1])
    gen = torch.Generator().manual_seed(0)
    f_true = torch.randn(3000, generator=gen)
    f_pred = f_true + torch.where(torch.arange(3000) < 1500, 0.1, -0.3)  # MAE 0.2 over all 3000
    path = energy_force_parity_plot(torch.zeros(4), torch.ones(4), f_pred, f_true, tmp_path / "p.png",
                                    unit="meV", max_points=500)
    assert path.read_bytes().startswith(PNG)
    energy_ax, forces_ax = figures[0].axes
    assert energy_ax.get_title().startswith("energy (meV)\nMAE 1, RMSE 1")
    assert forces_ax.get_title().startswith("forces (meV)\nMAE 0.2,") and "(500 of 3000 drawn)" in forces_ax.get_title()
    assert len(forces_ax.collections[0].get_offsets()) == 500 and len(energy_ax.collections[0].get_offsets()) == 4
    with pytest.raises(ValueError, match="forces: predictions and targets must have the same size"):
        energy_force_parity_plot(torch.zeros(4), torch.ones(4), f_true[:5], f_true, tmp_path / "q.png")
    assert not (tmp_path / "q.png").exists()


def test_without_plots_no_predictions_are_gathered(tmp_path, monkeypatch):
    # the per-atom force predictions were kept (and gathered over ranks) for plots that were never drawn
    from geomdl.cli import main
    from geomdl.pipelines.energy_forces import EnergyForceTask

    def refuse(self, batch, output):
        raise AssertionError("predictions collected although plots are off")

    monkeypatch.setattr(EnergyForceTask, "predictions", refuse)
    summary = train("ponita_molecules", [*TINY, f"train.out_dir={tmp_path}", "train.plots=false"])
    assert summary["plots"] == []
    assert main(["eval", str(tmp_path / "best.pt"), "--no-plots", "--out", str(tmp_path / "e")]) == 0
