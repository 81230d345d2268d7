"""``geomdl train`` / ``geomdl eval`` from the command line: outputs, and bad input as one clear
error line with a non-zero exit code that leaves earlier checkpoints intact."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from geomdl.cli import main
from geomdl.pipelines.checkpoint import load_checkpoint

SETTINGS = {
    "data": {"name": "toy_shapes", "kwargs": {"num_samples": 16, "num_points": 16}},
    "model": {"name": "tiny_pointnet", "kwargs": {"hidden_channels": 16}},
    "optim": {"lr": 0.01},
    "train": {"epochs": 2, "batch_size": 8, "progress": "off", "tensorboard": False},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished run shared by the tests of this module: (config path, run folder, bytes of its
    last.pt). Tests must leave it unchanged (and check that they did)."""
    tmp = tmp_path_factory.mktemp("trained")
    cfg = tmp / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(SETTINGS))
    run = tmp / "run"
    assert main(["train", str(cfg), "--out", str(run), "--quiet"]) == 0
    return cfg, run, (run / "last.pt").read_bytes()


def test_train_prints_final_metrics_and_run_folder(trained, tmp_path, capsys):
    cfg, _, _ = trained
    assert main(["train", str(cfg), "--out", str(tmp_path / "r"), "--set", "train.epochs=1", "--set", "train.plots=off"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "final evaluation with the best weights (epoch 1 of 1)"
    assert out[1].startswith("val (16 items): loss=") and "accuracy=" in out[1]
    assert out[2].startswith("test (16 items): loss=")  # the data's test split, scored at the end only
    assert out[3] == f"run folder: {tmp_path / 'r'}"
    assert not (tmp_path / "r" / "learning_curves.png").exists()


def _one_error_line(capsys, command: str) -> str:
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if not ln.startswith("epoch ")]
    assert len(err) == 1, err
    assert err[0].startswith(f"geomdl {command}: error: ")
    return err[0]


@pytest.mark.parametrize("text, expected", [
    ("train: {epochs: 2\n", "invalid YAML at line"),
    ("optim: {lr: abc}\n", "optim.lr: expected float, got 'abc'"),
    ("optim: {learning_rate: 0.1}\n", "optim.learning_rate: unknown key"),
    ("train: {epochs: two}\n", "train.epochs: expected int, got 'two'"),
    ("model: {name: tiny_pointnet, kwargs: {width: 3}}\n", "model.kwargs.width: unknown argument of TinyPointNet"),
    ("task: nope\n", "task.name: unknown task 'nope'"),
    ("data: {root: /no/such/folder}\n", "data.root: path '/no/such/folder' does not exist"),
])
def test_bad_config_is_one_error_line_and_keeps_checkpoints(trained, tmp_path, capsys, text, expected):
    _, run, before = trained
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    assert main(["train", str(bad), "--out", str(run), "--resume"]) == 2
    line = _one_error_line(capsys, "train")
    assert expected in line
    assert (run / "last.pt").read_bytes() == before


def test_missing_config_file_and_bad_override(trained, tmp_path, capsys):
    cfg, run, before = trained
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "config file not found" in _one_error_line(capsys, "train")
    assert main(["train", str(cfg), "--out", str(run), "--resume", "--set", "optim.lr"]) == 2
    assert "expected key=value" in _one_error_line(capsys, "train")
    assert (run / "last.pt").read_bytes() == before


def test_corrupt_checkpoint_is_one_error_line_and_keeps_checkpoints(trained, tmp_path, capsys):
    cfg, run, before = trained
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(before[: len(before) // 2])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    for path, expected in ((corrupt, "corrupt or truncated"), (garbage, "corrupt or truncated"),
                           (foreign, "not a geomdl checkpoint"), (tmp_path / "none.pt", "not found")):
        assert main(["eval", str(path)]) == 2
        line = _one_error_line(capsys, "eval")
        assert expected in line and str(path) in line
        assert main(["train", str(cfg), "--out", str(run), "--resume", str(path)]) == 2
        assert expected in _one_error_line(capsys, "train")
    assert (run / "last.pt").read_bytes() == before


def test_checkpoint_of_another_version_or_model_is_refused(trained, tmp_path, capsys):
    cfg, run, before = trained
    ckpt = load_checkpoint(run / "last.pt")
    old = tmp_path / "old.pt"
    torch.save({**ckpt, "geomdl_version": "0.0.1"}, old)
    assert main(["eval", str(old)]) == 2
    assert "was written by geomdl 0.0.1" in _one_error_line(capsys, "eval")
    other = tmp_path / "other.pt"
    torch.save({**ckpt, "model_kwargs": {**ckpt["model_kwargs"], "hidden_channels": 8}}, other)
    assert main(["eval", str(other)]) == 2
    assert "weights do not fit" in _one_error_line(capsys, "eval")
    assert main(["train", str(cfg), "--out", str(run), "--resume", str(other)]) == 2
    assert "hidden_channels" in _one_error_line(capsys, "train")
    assert (run / "last.pt").read_bytes() == before


def test_eval_command_writes_metrics_and_plots(trained, tmp_path, capsys):
    _, run, _ = trained
    assert main(["eval", str(run / "best.pt"), "--split", "val", "test", "--out", str(tmp_path / "ev")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("val: loss=") and "\ntest: loss=" in out
    val = json.loads((tmp_path / "ev" / "val_metrics.json").read_text())
    assert set(val) == {"loss", "accuracy", "class_mean_accuracy"}
    assert (tmp_path / "ev" / "confusion_test.png").is_file()
    # evaluating the final weights again reproduces the training run's own validation metrics
    assert main(["eval", str(run / "last.pt"), "--split", "val", "--out", str(tmp_path / "ev2")]) == 0
    capsys.readouterr()
    assert json.loads((tmp_path / "ev2" / "val_metrics.json").read_text()) == json.loads((run / "val_metrics.json").read_text())
    assert main(["eval", str(run / "last.pt"), "--data", str(tmp_path / "nowhere")]) == 2
    assert f"--data {tmp_path / 'nowhere'}: the run's dataset 'toy_shapes' is built-in" in _one_error_line(capsys, "eval")


def test_eval_of_an_explicitly_requested_empty_split_is_an_error(trained, tmp_path, capsys, monkeypatch):
    # it printed nothing and exited 0, as if the split had been evaluated
    from geomdl.pipelines.tasks import Task

    _, run, _ = trained
    full = Task.dataset_for
    monkeypatch.setattr(Task, "dataset_for", lambda self, split: [] if split == "test" else full(self, split))
    assert main(["eval", str(run / "best.pt"), "--split", "test", "--out", str(tmp_path / "ev")]) == 2
    assert "--split test: the 'test' split of 'toy_shapes' has no items" in _one_error_line(capsys, "eval")
    assert main(["eval", str(run / "best.pt"), "--out", str(tmp_path / "ev")]) == 0  # default splits: skipped
    assert capsys.readouterr().out.startswith("val: loss=")


def test_sigkilled_run_resumes_to_the_uninterrupted_result(tmp_path, capsys):
    settings = {**SETTINGS, "data": {"name": "toy_shapes", "kwargs": {"num_samples": 64, "num_points": 16}},
                "train": {**SETTINGS["train"], "epochs": 4, "ema_decay": 0.8}}
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(settings))
    run = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "geomdl", "train", str(cfg), "--out", str(run), "--quiet"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not (run / "last.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    killed_at = load_checkpoint(run / "last.pt")["epoch"]
    assert 1 <= killed_at < 4, "the run finished before it could be killed"
    assert main(["train", str(cfg), "--out", str(run), "--resume", "--quiet"]) == 0
    assert main(["train", str(cfg), "--out", str(tmp_path / "whole"), "--quiet"]) == 0
    capsys.readouterr()
    resumed = json.loads((run / "results.json").read_text())
    whole = json.loads((tmp_path / "whole" / "results.json").read_text())
    assert resumed["metrics"] == whole["metrics"] and resumed["weights_sha256_per_rank"] == whole["weights_sha256_per_rank"]
