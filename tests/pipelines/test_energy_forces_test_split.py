"""The energy/force task scores the test split at the end of training, capped at ``final_test_frames``
frames (a seeded random subset), and reports how many items each split had."""
from __future__ import annotations

import pytest
import torch

from geomdl.pipelines.config import ConfigError, load_config
from geomdl.pipelines.energy_forces import EnergyForceTask
from geomdl.pipelines.runs import evaluate_checkpoint, train

TINY = ["data.kwargs.frames_per_trajectory=20", "model.kwargs={hidden: 8, layers: 1, num_ori: 4, basis_dim: 8, radius: 4.0}",
        "train.epochs=1", "train.eval_every=1", "train.progress=off", "train.tensorboard=false", "train.plots=off",
        "optim.warmup_steps=0"]


def _task(*overrides):
    return EnergyForceTask(load_config("ponita_molecules", [*TINY, *overrides]))


def test_test_split_is_capped_at_a_seeded_subset():
    full = _task("task.kwargs.final_test_frames=null").build_datasets()
    assert set(full) == {"train", "val", "test"} and len(full["test"]) == 20  # its own stream of 20 frames
    capped = _task("task.kwargs.final_test_frames=3").build_datasets()
    again = _task("task.kwargs.final_test_frames=3").build_datasets()
    assert len(capped["test"]) == 3 and capped["test"].indices == again["test"].indices
    assert capped["test"].indices != [0, 1, 2]  # random, not the first frames of the trajectory
    for j, k in enumerate(capped["test"].indices):
        assert torch.equal(capped["test"][j].pos, full["test"][k].pos)
    assert "test" not in _task("task.kwargs.final_test_frames=0").build_datasets()
    assert len(_task().build_datasets()["test"]) == 20  # default cap 1000 > split: the whole split


@pytest.mark.parametrize("value", ["-1", "true", "2.5", "many"])
def test_bad_final_test_frames_names_the_option(value):
    with pytest.raises(ConfigError, match="final_test_frames"):
        _task(f"task.kwargs.final_test_frames={value}")


def test_results_hold_test_metrics_equal_to_geomdl_eval(tmp_path):
    summary = train("ponita_molecules", [*TINY, f"train.out_dir={tmp_path}", "task.kwargs.final_test_frames=null"])
    assert set(summary["metrics"]) == {"val", "test"}
    assert summary["eval_sizes"] == {"val": 20, "test": 20}
    evaluated = evaluate_checkpoint(tmp_path / "best.pt", splits=["test"], out_dir=tmp_path / "eval", plots=False)
    for key, value in summary["metrics"]["test"].items():
        assert evaluated["test"][key] == pytest.approx(value, rel=1e-6), key


def test_eval_passes_any_split_name_to_the_dataset(tmp_path, monkeypatch):
    # `geomdl eval --split all` was refused up front although qm9, md17/rmd17, 3bpa, extxyz and ase_db have an
    # "all" split; the synthetic molecules here have none, so a stand-in maps "all" to the test frames
    from geomdl.cli import main

    train("ponita_molecules", [*TINY, f"train.out_dir={tmp_path}", "task.kwargs.final_test_frames=0"])
    dataset_for = EnergyForceTask.dataset_for
    monkeypatch.setattr(EnergyForceTask, "dataset_for", lambda self, split: dataset_for(self, "test" if split == "all" else split))
    assert main(["eval", str(tmp_path / "best.pt"), "--split", "all", "--no-plots", "--out", str(tmp_path / "e")]) == 0
    assert (tmp_path / "e" / "all_metrics.json").is_file()


def test_no_test_scoring_does_not_even_build_the_test_split(monkeypatch):
    dataset_for = EnergyForceTask.dataset_for

    def no_test(self, split):
        if split == "test":
            raise AssertionError("the test split was built although final_test_frames is 0")
        return dataset_for(self, split)

    monkeypatch.setattr(EnergyForceTask, "dataset_for", no_test)
    assert set(_task("task.kwargs.final_test_frames=0").build_datasets()) == {"train", "val"}
