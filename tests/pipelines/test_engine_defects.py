"""Regression tests of defects of the training engine and its CLI (one test per defect)."""
from __future__ import annotations

import json
import logging
import math
import os
import shlex

import pytest
import torch

from geomdl.cli import main
from geomdl.pipelines.config import ConfigError, check_kwargs
from geomdl.pipelines.generic import ClassificationTask
from geomdl.pipelines.trainer import Trainer

TINY = ["data.kwargs.num_samples=16", "data.kwargs.num_points=16", "model.kwargs.hidden_channels=16", "train.batch_size=8",
        "train.progress=off", "train.tensorboard=false", "optim.lr=0.01"]  # as tiny_config (conftest.py)


def _model_with_pep604_annotations(cutoff: float | None = 5.0, width: int | None = None):
    pass


def test_check_kwargs_validates_pep604_optional_annotations():
    # `X | None` (types.UnionType) was not recognised: the value went to the constructor unchecked, e.g. the
    # string '1e-3' that YAML 1.1 reads from `cutoff: 1e-3`
    fn = _model_with_pep604_annotations
    assert check_kwargs(fn, {"cutoff": "1e-3", "width": None}, "model.kwargs") == {"cutoff": 1e-3, "width": None}
    assert isinstance(check_kwargs(fn, {"cutoff": 4}, "model.kwargs")["cutoff"], float)
    with pytest.raises(ConfigError, match=r"model.kwargs.width: expected int or null, got 'wide'"):
        check_kwargs(fn, {"width": "wide"}, "model.kwargs")


CLI_TINY = [x for item in TINY + ["train.epochs=1", "train.plots=false"] for x in ("--set", item)]


@pytest.mark.parametrize("out", ["2024-05-01", "run #1", "123"])
def test_train_out_is_a_folder_name_taken_verbatim(tmp_path, monkeypatch, capsys, out):
    # --out went through the YAML parser: a date or a number was an error, and `#` started a comment
    monkeypatch.chdir(tmp_path)
    assert main(["train", "toy_classification", *CLI_TINY, "--out", out, "--quiet"]) == 0
    assert (tmp_path / out / "results.json").is_file()
    assert f"run folder: {out}" in capsys.readouterr().out


def test_stop_message_gives_a_resume_command_that_works(tmp_path, monkeypatch, capsys):
    # the suggested command dropped the --set overrides, so the resume was refused as another experiment
    monkeypatch.chdir(tmp_path)
    argv = ["train", "toy_classification", *CLI_TINY, "--set", "train.epochs=2", "--set", "optim.lr=0.02",
            "--set", "train.stop_after_epochs=1", "--out", "my run", "--quiet"]
    assert main(argv) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("stopped after epoch 1; continue with: geomdl train ")
    again = shlex.split(line.split("continue with: ", 1)[1])
    assert again[:2] == ["geomdl", "train"] and again[-1] == "--resume"
    assert main(again[1:] + ["--quiet"]) == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "my run" / "results.json").read_text())["epoch"] == 2


class _FormattingHandler(logging.Handler):
    """Formats every record and lets a formatting error escape (the stdlib handlers print it instead)."""

    def emit(self, record):
        self.format(record)


def test_early_stopping_on_a_never_finite_monitor_logs_cleanly(tmp_path, tiny_config, monkeypatch):
    # with no finite monitored value `best` is None, and the early-stopping line formatted it with %.4g
    compute = ClassificationTask.compute_metrics
    monkeypatch.setattr(ClassificationTask, "compute_metrics", lambda self, stats: {**compute(self, stats), "bad": math.nan})
    logger = logging.getLogger("geomdl.train")
    handler = _FormattingHandler()
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        summary = Trainer(tiny_config(tmp_path / "run", "train.epochs=5", "train.monitor=val/bad",
                                      "train.early_stopping_patience=2", "train.plots=false")).fit()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert summary["stopped_early"] and summary["epoch"] == 2 and summary["best"] is None
    assert summary["final_weights"] == "last"


def test_resuming_a_finished_run_keeps_why_it_ended(tmp_path, tiny_config):
    # resuming a run that had already ended rewrote results.json with stopped_early / time_budget_spent false
    args = ("train.epochs=10", "optim.lr=1e-12", "train.monitor=val/accuracy", "train.monitor_mode=max",
            "train.early_stopping_patience=2", "train.plots=false")
    first = Trainer(tiny_config(tmp_path / "run", *args)).fit()
    assert first["stopped_early"] and first["epoch"] == 3
    again = Trainer(tiny_config(tmp_path / "run", *args)).fit(resume=True)
    assert again["stopped_early"] and again["epoch"] == 3
    assert json.loads((tmp_path / "run" / "results.json").read_text())["stopped_early"] is True

    first = Trainer(tiny_config(tmp_path / "budget", "train.time_budget=1e-9", "train.plots=false")).fit()
    assert first["time_budget_spent"] and first["step"] == 1
    again = Trainer(tiny_config(tmp_path / "budget", "train.time_budget=1e-9", "train.plots=false")).fit(resume=True)
    assert again["time_budget_spent"] and again["step"] == 1


class _RunsCode:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.makedirs, (self.path,))


def test_load_potential_runs_no_code_from_the_file(tmp_path):
    # load_potential used torch.load(weights_only=False): a crafted file ran code when loaded
    from geomdl.pipelines.molecular import load_potential

    marker = tmp_path / "code_ran"
    torch.save({"kind": "PonitaPotential", "config": {}, "payload": _RunsCode(str(marker))}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="evil.pt"):
        load_potential(tmp_path / "evil.pt")
    assert not marker.exists()


def test_overwrite_removes_the_earlier_runs_outputs_only_once_the_config_checks_pass(tmp_path, tiny_config):
    # --overwrite left the earlier run's results.json, <split>_metrics.json and plots next to the new run
    run = tmp_path / "run"
    Trainer(tiny_config(run, "train.epochs=2")).fit()
    (run / "notes.txt").write_text("mine")
    stale = ["results.json", "val_metrics.json", "confusion_val.png", "learning_curves.png"]
    assert all((run / name).is_file() for name in stale)
    with pytest.raises(ConfigError, match="train.monitor"):  # a typo must not cost the earlier run
        Trainer(tiny_config(run, "train.epochs=2", "train.monitor=val/acuracy")).fit(overwrite=True)
    assert all((run / name).is_file() for name in stale + ["last.pt", "best.pt"])
    summary = Trainer(tiny_config(run, "train.epochs=2", "train.stop_after_epochs=1")).fit(overwrite=True)
    assert not summary["finished"]
    assert [name for name in stale if (run / name).exists()] == []
    assert (run / "notes.txt").read_text() == "mine" and (run / "last.pt").is_file()
    assert [int(line.split(",")[0]) for line in (run / "metrics.csv").read_text().splitlines()[1:]] == [1]


def test_data_kwargs_of_a_registry_dataset_are_checked_against_its_constructor(tmp_path, capsys):
    # a typo in data.kwargs of a geomdl.datasets dataset was a TypeError traceback, not an error naming the key
    from geomdl.pipelines.tasks import get_dataset

    with pytest.raises(ConfigError, match=r"data.kwargs.num_molecule: unknown argument of SyntheticMolecules \(accepted: .*molecules"):
        get_dataset("synthetic_molecules", "train", num_molecule=3)
    with pytest.raises(ConfigError, match=r"data.kwargs.frames_per_trajectory: expected int, got 'many'"):
        get_dataset("synthetic_molecules", "train", frames_per_trajectory="many")
    code = main(["train", "ponita_molecules", "--set", "data.kwargs.split=test", "--out", str(tmp_path / "run")])
    assert code == 2 and "data.kwargs.split: set by the trainer" in capsys.readouterr().err
    assert main(["train", "ponita_molecules", "--set", "data.kwargs.frame_per_trajectory=5",
                 "--out", str(tmp_path / "run")]) == 2
    assert "data.kwargs.frame_per_trajectory: unknown argument of SyntheticMolecules" in capsys.readouterr().err
