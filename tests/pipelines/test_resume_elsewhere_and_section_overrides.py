"""Engine defects found by an audit: a run resumed into another folder lost its best checkpoint, a planned
stop between checkpoints made resuming loop, ``--set section=...`` replaced the section, ``--overwrite``
left the earlier run's ``geomdl eval`` results, and a huge seed failed without naming the key."""
import json

import pytest
import torch

from geomdl.pipelines.config import ConfigError, load_config
from geomdl.pipelines.loggers import remove_run_files
from geomdl.pipelines.trainer import Trainer


def test_resume_into_another_folder_keeps_the_best_checkpoint(tmp_path, tiny_config):
    # monitor_mode=max on a falling loss: the best stays at epoch 1, so the new folder never writes its own best.pt
    options = ("train.epochs=3", "train.monitor_mode=max")
    assert not Trainer(tiny_config(tmp_path / "r1", *options, "train.stop_after_epochs=1")).fit()["finished"]
    summary = Trainer(tiny_config(tmp_path / "r2", *options)).fit(resume=tmp_path / "r1" / "last.pt")
    assert summary["finished"]  # failed at the end: "checkpoint 'r2/best.pt' not found"
    results = json.loads((tmp_path / "r2" / "results.json").read_text())
    assert results["final_weights"] == "best" and results["final_weights_epoch"] == 1
    assert torch.load(tmp_path / "r2" / "best.pt", weights_only=False)["epoch"] == 1


def test_a_planned_stop_between_checkpoints_saves_the_epoch_it_reports(tmp_path, tiny_config):
    cfg = lambda: tiny_config(tmp_path / "run", "train.epochs=6", "train.checkpoint_every=3",  # noqa: E731
                              "train.stop_after_epochs=2", "train.early_stopping_patience=null",
                              "train.monitor_mode=max")  # no improvement after epoch 1: no save but the planned ones
    epochs = []
    for _ in range(3):
        trainer = Trainer(cfg())
        summary = trainer.fit(resume=(tmp_path / "run" / "last.pt").exists())
        epochs.append(torch.load(tmp_path / "run" / "last.pt", weights_only=False)["epoch"])
    assert epochs == [2, 4, 6] and summary["finished"]  # was 1, 3, 3, ...: resuming never passed epoch 3


def test_section_overrides_update_the_section():
    base = load_config(None, ["optim.lr=0.005", "optim.schedule=cosine", "train.epochs=7", "train.monitor=val/accuracy"])
    cfg = load_config(None, ["optim.lr=0.005", "optim.schedule=cosine", "train.epochs=7", "train.monitor=val/accuracy",
                             "optim=sgd", "train={epochs: 5}"])
    assert cfg.optim.name == "sgd" and cfg.optim.lr == base.optim.lr == 0.005 and cfg.optim.schedule == "cosine"
    assert cfg.train.epochs == 5 and cfg.train.monitor == "val/accuracy"  # the rest of train kept
    # a new model name drops the old model's kwargs; null resets a section to its defaults
    cfg = load_config(None, ["model.kwargs.hidden_channels=8", "model=pointnet"])
    assert cfg.model.name == "pointnet" and cfg.model.kwargs == {}
    assert load_config(None, ["optim.lr=0.5", "optim=null"]).optim.lr != 0.5


def test_overwrite_removes_the_earlier_runs_eval_results(tmp_path):
    (tmp_path / "eval" / "best").mkdir(parents=True)
    (tmp_path / "eval" / "best" / "val_metrics.json").write_text("{}")
    (tmp_path / "eval" / "best" / "notes.txt").write_text("mine")
    remove_run_files(tmp_path)
    assert not (tmp_path / "eval" / "best" / "val_metrics.json").exists()
    assert (tmp_path / "eval" / "best" / "notes.txt").exists()  # other files stay


def test_a_seed_out_of_range_is_named():
    with pytest.raises(ConfigError, match=r"seed: expected an int in \[-2\*\*63, 2\*\*64 - 2\*\*40\)"):
        load_config(None, ["seed=99999999999999999999"])
    assert load_config(None, [f"seed={2 ** 63 - 10}"]).seed == 2 ** 63 - 10  # 64-bit seeds stay valid


def test_continuing_a_finished_run_removes_its_end_results_until_it_ends_again(tmp_path, tiny_config):
    # a continuation stopped before its new end left results.json saying "finished at epoch 2" beside last.pt at 3
    assert Trainer(tiny_config(tmp_path / "run", "train.epochs=2")).fit()["finished"]
    ended = json.loads((tmp_path / "run" / "results.json").read_text())
    assert ended["finished"] and ended["epoch"] == 2 and list((tmp_path / "run").glob("*_metrics.json"))
    summary = Trainer(tiny_config(tmp_path / "run", "train.epochs=4", "train.stop_after_epochs=1")).fit(resume=True)
    assert not summary["finished"] and torch.load(tmp_path / "run" / "last.pt", weights_only=False)["epoch"] == 3
    assert not (tmp_path / "run" / "results.json").exists() and not list((tmp_path / "run").glob("*_metrics.json"))
    assert (tmp_path / "run" / "metrics.csv").exists() and (tmp_path / "run" / "best.pt").exists()
    assert Trainer(tiny_config(tmp_path / "run", "train.epochs=4")).fit(resume=True)["finished"]
    assert json.loads((tmp_path / "run" / "results.json").read_text())["epoch"] == 4
