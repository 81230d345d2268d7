"""Regression tests of the training engine: steps the fp16 gradient scaler skips, and the default folder of
``geomdl eval``."""
from __future__ import annotations

import json
import math
import warnings

import torch

from geomdl.cli import main
from geomdl.pipelines.loggers import read_csv
from geomdl.pipelines.trainer import Trainer

INF_STEPS = {0, 2}  # the training steps (0-based, over the run) whose gradients are made infinite


def _first_weight(module: torch.nn.Module) -> torch.Tensor:
    return next(module.parameters()).detach().clone()


def _snapshot(trainer) -> tuple:
    """``(scheduler.last_epoch, lr, a weight of the EMA, the same raw weight, state["step"])``."""
    return (trainer.scheduler.last_epoch, trainer.scheduler.get_last_lr()[0], _first_weight(trainer.ema.module),
            _first_weight(trainer.raw_model), trainer.state["step"])


def _scaled_trainer(monkeypatch, trace: list) -> None:
    """Make every Trainer built under ``monkeypatch`` use a gradient scaler on CPU (as fp16 does on a GPU) and
    give infinite gradients on :data:`INF_STEPS`; each backward pass first appends to ``trace`` the
    :func:`_snapshot` the previous step left."""
    build = Trainer._build

    def scaled_build(self, *args):
        build(self, *args)
        self.scaler = torch.amp.GradScaler("cpu")
        calls = []

        def hook(grad):
            trace.append(_snapshot(self))
            calls.append(None)
            return grad * torch.inf if len(calls) - 1 in INF_STEPS else grad

        next(self.raw_model.parameters()).register_hook(hook)

    monkeypatch.setattr(Trainer, "_build", scaled_build)


def test_a_step_the_gradient_scaler_skips_moves_neither_schedule_nor_ema(tmp_path, tiny_config, monkeypatch):
    # scaler.step skips optimizer.step on inf/NaN gradients, but the scheduler and the EMA were stepped anyway:
    # the LR schedule ran ahead of the optimiser (torch warned "lr_scheduler.step() before optimizer.step()")
    # and the EMA averaged in weights of a step that did not happen
    trace: list = []
    _scaled_trainer(monkeypatch, trace)
    cfg = tiny_config(tmp_path / "run", "train.epochs=3", "train.ema_decay=0.9", "optim.schedule=cosine",
                      "optim.grad_clip=1.0", "train.plots=false")
    trainer = Trainer(cfg)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*lr_scheduler.step.*optimizer.step")
        summary = trainer.fit()
    trace.append(_snapshot(trainer))
    assert len(trace) == 6 + 1  # 3 epochs of 2 steps, then the end
    for i in range(6):
        (epoch0, lr0, ema0, raw0, step0), (epoch1, lr1, ema1, raw1, step1) = trace[i], trace[i + 1]
        if i in INF_STEPS:
            assert (epoch1, lr1, step1) == (epoch0, lr0, step0), f"step {i} was skipped but the schedule moved"
            assert torch.equal(ema1, ema0) and torch.equal(raw1, raw0), f"step {i} was skipped but the weights moved"
        else:
            assert (epoch1, step1) == (epoch0 + 1, step0 + 1) and lr1 != lr0
            assert not torch.equal(ema1, ema0) and not torch.equal(raw1, raw0)
    applied = 6 - len(INF_STEPS)
    assert summary["step"] == applied and summary["skipped_steps"] == len(INF_STEPS)
    assert trainer.ema.num_updates == applied and trainer.scheduler.last_epoch == applied
    rows = trainer.state["history"]
    assert [r["train/skipped_steps"] for r in rows] == [1, 1, 0]
    assert [r["step"] for r in rows] == [1, 2, 4]
    assert all(math.isfinite(r["train/loss"]) for r in rows)  # the loss itself was fine
    assert all(math.isfinite(r["train/grad_norm"]) for r in rows)  # the mean over applied steps only


def test_skipped_steps_are_kept_in_the_checkpoint(tmp_path, tiny_config, monkeypatch):
    _scaled_trainer(monkeypatch, [])
    cfg = tiny_config(tmp_path / "run", "train.epochs=3", "train.stop_after_epochs=1", "train.ema_decay=0.9",
                      "train.plots=false")
    assert Trainer(cfg).fit()["finished"] is False
    assert Trainer(cfg).fit(resume=True)["finished"] is False
    summary = Trainer(cfg).fit(resume=True)  # each of the 3 runs skips its first step (the hook counts afresh)
    assert (summary["step"], summary["skipped_steps"]) == (3, 3)
    assert [r["train/skipped_steps"] for r in read_csv(tmp_path / "run" / "metrics.csv")] == [1, 1, 1]


def test_eval_of_best_and_last_keeps_both_metrics(tmp_path, tiny_config, capsys):
    # the default output folder was <checkpoint folder>/eval for every checkpoint: evaluating last.pt after
    # best.pt overwrote best.pt's metrics and plots
    run = tmp_path / "run"
    Trainer(tiny_config(run, "train.epochs=2", "train.plots=false")).fit()
    assert main(["eval", str(run / "best.pt"), "--split", "val", "--no-plots"]) == 0
    best = json.loads((run / "eval" / "best" / "val_metrics.json").read_text())
    assert main(["eval", str(run / "last.pt"), "--split", "val", "--no-plots"]) == 0
    last = json.loads((run / "eval" / "last" / "val_metrics.json").read_text())
    assert json.loads((run / "eval" / "best" / "val_metrics.json").read_text()) == best
    assert set(best) == set(last)
    assert not (run / "eval" / "val_metrics.json").exists()


def test_eval_default_folder_under_a_file_is_one_error_line(tmp_path, tiny_config, capsys):
    # with the default eval/<stem> folder, a file named eval in the run folder is the file in the way
    run = tmp_path / "run"
    Trainer(tiny_config(run, "train.epochs=1", "train.plots=false")).fit()
    (run / "eval").write_text("keep me")
    assert main(["eval", str(run / "last.pt"), "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert "eval' is a file, expected a folder" in err and "Traceback" not in err
    assert (run / "eval").read_text() == "keep me"
