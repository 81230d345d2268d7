import csv
import math

import pytest
import torch

from geomdl.pipelines.checkpoint import load_checkpoint
from geomdl.pipelines.config import ConfigError
from geomdl.pipelines.ema import ModelEMA
from geomdl.pipelines.optim import lr_multiplier
from geomdl.pipelines.trainer import Trainer




def _weights(path):
    return load_checkpoint(path)["model"]


def test_classification_run_writes_checkpoints_metrics_and_plots(tmp_path, tiny_config):
    cfg = tiny_config(tmp_path / "run", "train.epochs=4")
    summary = Trainer(cfg).fit()
    run = tmp_path / "run"
    for name in ("config.yaml", "last.pt", "best.pt", "metrics.csv", "learning_curves.png", "confusion_val.png",
                 "val_metrics.json", "results.json"):
        assert (run / name).is_file(), name
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert {"train/loss", "val/loss", "val/accuracy", "val/class_mean_accuracy", "lr", "step"} <= set(rows[0])
    assert float(rows[-1]["train/loss"]) < float(rows[0]["train/loss"])  # it learns
    assert summary["finished"] and summary["epoch"] == 4 and summary["step"] == 8
    assert 0 <= summary["metrics"]["val"]["accuracy"] <= 1
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["epoch"] == 4 and ckpt["finished"] and ckpt["geomdl_version"]
    assert ckpt["model_kwargs"]["out_channels"] == 4  # inferred from the data by the task


def test_same_seed_gives_identical_weights_and_other_seed_does_not(tmp_path, tiny_config):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        Trainer(tiny_config(tmp_path / name, f"seed={seed}", "train.epochs=2")).fit()
    a, b, c = (_weights(tmp_path / n / "last.pt") for n in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


RICH = ["train.epochs=4", "train.ema_decay=0.9", "optim.grad_clip=0.5", "optim.schedule=cosine", "optim.warmup_steps=2",
        "model.kwargs.dropout=0.3", "data.kwargs.num_samples=24"]


def test_interrupted_and_resumed_run_matches_uninterrupted_run_exactly(tmp_path, tiny_config):
    full = Trainer(tiny_config(tmp_path / "full", *RICH)).fit()
    part = Trainer(tiny_config(tmp_path / "part", *RICH, "train.stop_after_epochs=1")).fit()
    assert not part["finished"] and part["epoch"] == 1
    part = Trainer(tiny_config(tmp_path / "part", *RICH, "train.stop_after_epochs=2")).fit(resume=True)
    assert part["epoch"] == 3
    resumed = Trainer(tiny_config(tmp_path / "part", *RICH)).fit(resume=True)
    assert resumed["metrics"] == full["metrics"]  # exact, not approximate
    a, b = load_checkpoint(tmp_path / "full" / "last.pt"), load_checkpoint(tmp_path / "part" / "last.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert all(torch.equal(a["ema"]["module"][k], b["ema"]["module"][k]) for k in a["model"])
    assert a["history"] == [{**r, "time_s": a["history"][i]["time_s"]} for i, r in enumerate(b["history"])]
    rows = list(csv.DictReader(open(tmp_path / "part" / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]


def test_resume_with_loader_workers_matches_uninterrupted_run_exactly(tmp_path, tiny_config):
    # persistent workers draw their base seed from the global RNG once per process: the resumed run drew it
    # again at its first epoch (the uninterrupted one did not) and went on with other dropout masks
    extra = ["train.epochs=3", "model.kwargs.dropout=0.3", "data.num_workers=1", "train.plots=false"]
    full = Trainer(tiny_config(tmp_path / "full", *extra)).fit()
    Trainer(tiny_config(tmp_path / "part", *extra, "train.stop_after_epochs=1")).fit()
    resumed = Trainer(tiny_config(tmp_path / "part", *extra)).fit(resume=True)
    assert resumed["metrics"] == full["metrics"]
    a, b = _weights(tmp_path / "full" / "last.pt"), _weights(tmp_path / "part" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_fresh_run_refuses_to_overwrite_an_existing_run(tmp_path, tiny_config):
    Trainer(tiny_config(tmp_path / "run", "train.epochs=1")).fit()
    before = (tmp_path / "run" / "last.pt").read_bytes()
    with pytest.raises(ConfigError, match="already holds a run"):
        Trainer(tiny_config(tmp_path / "run", "train.epochs=1")).fit()
    assert (tmp_path / "run" / "last.pt").read_bytes() == before


def test_resume_rejects_a_different_model_or_experiment(tmp_path, tiny_config):
    Trainer(tiny_config(tmp_path / "run", "train.epochs=1")).fit()
    with pytest.raises(ValueError, match="model.kwargs.hidden_channels"):
        Trainer(tiny_config(tmp_path / "run", "model.kwargs.hidden_channels=8")).fit(resume=True)
    with pytest.raises(ValueError, match="another experiment .*optim.lr"):
        Trainer(tiny_config(tmp_path / "run", "optim.lr=0.5")).fit(resume=True)


def test_resume_accepts_settings_that_do_not_change_the_training(tmp_path, tiny_config):
    # a longer wait for the dataset preparation or another checkpoint interval was refused as "another experiment"
    full = Trainer(tiny_config(tmp_path / "full", "train.plots=false")).fit()
    Trainer(tiny_config(tmp_path / "part", "train.plots=false", "train.stop_after_epochs=1")).fit()
    resumed = Trainer(tiny_config(tmp_path / "part", "train.plots=false", "train.checkpoint_every=2",
                                  "train.prepare_timeout=60")).fit(resume=True)
    assert resumed["metrics"] == full["metrics"]


def test_early_stopping_stops_when_the_monitored_metric_stalls(tmp_path, tiny_config):
    cfg = tiny_config(tmp_path / "run", "train.epochs=10", "optim.lr=1e-12", "train.monitor=val/accuracy",
                      "train.monitor_mode=max", "train.early_stopping_patience=2")
    summary = Trainer(cfg).fit()
    assert summary["stopped_early"] and summary["epoch"] == 3 and summary["best_epoch"] == 1


def test_unknown_monitor_is_a_config_error_before_the_first_epoch(tmp_path, tiny_config, monkeypatch):
    def no_training(self, epoch):
        raise AssertionError("trained an epoch before checking train.monitor")

    monkeypatch.setattr(Trainer, "_train_epoch", no_training)
    with pytest.raises(ConfigError, match="train.monitor: 'val/acuracy' .*val/accuracy"):
        Trainer(tiny_config(tmp_path / "run", "train.monitor=val/acuracy", "train.epochs=1")).fit()
    assert not (tmp_path / "run" / "last.pt").exists()


def test_checking_the_monitor_leaves_the_random_stream_and_results_unchanged(tmp_path, tiny_config, monkeypatch):
    # the check evaluates one validation batch under a forked RNG: the first epoch starts from the same
    # global random state as a run monitoring val/loss (which needs no check), and ends with the same weights
    states, train_epoch = [], Trainer._train_epoch

    def recording(self, epoch):
        states.append(torch.random.get_rng_state())
        return train_epoch(self, epoch)

    monkeypatch.setattr(Trainer, "_train_epoch", recording)
    a = Trainer(tiny_config(tmp_path / "a", "train.epochs=1", "train.monitor=val/accuracy", "train.monitor_mode=max"))
    a.fit()
    b = Trainer(tiny_config(tmp_path / "b", "train.epochs=1"))
    b.fit()
    assert len(states) == 2 and torch.equal(states[0], states[1])
    assert all(torch.equal(x, y) for x, y in zip(a.raw_model.state_dict().values(), b.raw_model.state_dict().values()))


def test_regression_task_reports_mae_rmse_and_parity_plot(tmp_path, tiny_config):
    cfg = tiny_config(tmp_path / "run", "task.name=regression", "data.name=toy_regression",
                      "task.kwargs.target_names=[scale, height]")
    summary = Trainer(cfg).fit()
    val = summary["metrics"]["val"]
    assert {"loss", "mae", "rmse", "scale_mae", "scale_rmse", "height_mae", "height_rmse"} <= set(val)
    assert val["rmse"] >= val["mae"] > 0
    assert (tmp_path / "run" / "parity_val.png").is_file()
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["task_state"]["mean"].shape == (2,)
    std = ckpt["task_state"]["std"]
    assert val["normalized_mae"] == pytest.approx((val["scale_mae"] / std[0] + val["height_mae"] / std[1]).item() / 2, rel=1e-12)
    assert float(std[0]) != pytest.approx(float(std[1]), rel=0.05)  # the check above can tell the units apart


def test_lr_schedules():
    f = lambda s, **kw: lr_multiplier(s, total_steps=100, **kw)  # noqa: E731
    assert [f(s, schedule="constant", warmup_steps=4) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert f(0, schedule="cosine") == 1.0 and f(100, schedule="cosine", min_lr_ratio=0.1) == pytest.approx(0.1)
    assert f(50, schedule="cosine") == pytest.approx(0.5)
    assert f(10, schedule="cosine", warmup_steps=10) == pytest.approx(1.0)
    assert [f(s, schedule="step", step_size=10, gamma=0.5) for s in (0, 9, 10, 25)] == [1, 1, 0.5, 0.25]
    # time-budgeted runs: the elapsed fraction replaces the step count in the cosine (clamped to [0, 1])
    assert f(90, schedule="cosine", progress=0.5) == pytest.approx(0.5)
    assert f(3, schedule="cosine", warmup_steps=4, progress=0.5) == pytest.approx(0.5)
    assert f(5, schedule="cosine", min_lr_ratio=0.1, progress=1.7) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="schedule"):
        f(0, schedule="linear")


def test_ema_follows_the_documented_update():
    model = torch.nn.Linear(2, 1)
    ema = ModelEMA(model, decay=0.9)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    d = min(0.9, 2 / 11)
    assert torch.allclose(ema.module.weight, d * start + (1 - d) * model.weight)
    with pytest.raises(ValueError, match="decay"):
        ModelEMA(model, decay=1.0)


def test_metrics_csv_round_trips_numpy_floats_and_changing_columns(tmp_path):
    """numpy float64 values (a float subclass whose repr is ``np.float64(...)`` since numpy 2) are written as
    numbers; a column that appears later leaves the earlier rows' cells empty."""
    import numpy as np

    from geomdl.pipelines.loggers import read_csv, write_csv

    write_csv([{"epoch": 1, "val/mae": np.float64(0.125)}, {"epoch": 2, "val/mae": 1 / 3, "val/r2": np.float64(0.5)}],
              tmp_path / "metrics.csv")
    assert read_csv(tmp_path / "metrics.csv") == [{"epoch": 1, "val/mae": 0.125},
                                                  {"epoch": 2, "val/mae": 1 / 3, "val/r2": 0.5}]


def test_grad_clip_bounds_the_logged_gradient_norm(tmp_path, tiny_config):
    summary = Trainer(tiny_config(tmp_path / "run", "optim.grad_clip=1e-3", "train.epochs=1")).fit()
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert math.isfinite(float(rows[0]["train/grad_norm"])) and summary["finished"]


def test_bf16_autocast_runs_on_cpu_and_fp16_needs_a_gpu(tmp_path, tiny_config):
    summary = Trainer(tiny_config(tmp_path / "bf16", "train.amp=bf16", "train.epochs=1")).fit()
    assert math.isfinite(summary["metrics"]["val"]["loss"])
    with pytest.raises(ConfigError, match="train.amp: 'fp16' needs a GPU"):
        Trainer(tiny_config(tmp_path / "fp16", "train.amp=fp16", "train.epochs=1")).fit()


def test_tensorboard_receives_the_logged_scalars(tmp_path, tiny_config, monkeypatch):
    """The TensorBoard path, with a stand-in SummaryWriter (the package is optional)."""
    import importlib.util
    import sys
    import types

    calls = []

    class FakeWriter:
        def __init__(self, log_dir, purge_step=None):
            calls.append(("init", log_dir, purge_step))

        def add_scalar(self, tag, value, global_step):
            calls.append((tag, value, global_step))

        def flush(self):
            pass

        def close(self):
            calls.append(("close",))

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=FakeWriter))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "tensorboard" else real_find_spec(name, *a))
    Trainer(tiny_config(tmp_path / "run", "train.tensorboard=true", "train.epochs=2", "train.plots=false")).fit()
    assert calls[0] == ("init", str(tmp_path / "run" / "tensorboard"), None) and calls[-1] == ("close",)
    assert {c[0] for c in calls} >= {"train/loss", "val/loss", "val/accuracy"}
    assert [c[2] for c in calls if c[0] == "train/loss"] == [2, 4]  # x axis: optimiser steps


class TickClock:
    """A clock that advances ``tick`` seconds per reading (the trainer reads it once per optimiser step,
    once per epoch end and once when a run starts)."""

    def __init__(self, tick: float = 1.0):
        self.t, self.tick = 0.0, tick

    def __call__(self) -> float:
        self.t += self.tick
        return self.t


def _budgeted_steps(steps_per_epoch: int, budget: float, max_epochs: int, start: float = 0.0):
    """The (steps, epochs, elapsed at each step) a TickClock run takes: one tick per step and per epoch end."""
    t, at_step = start, []
    for epoch in range(1, max_epochs + 1):
        for _ in range(steps_per_epoch):
            t += 1
            at_step.append(t)
            if t >= budget:
                return len(at_step), epoch, at_step, t + 1
        t += 1
        if t >= budget:
            return len(at_step), epoch, at_step, t
    return len(at_step), max_epochs, at_step, t


BUDGET = ["train.epochs=50", "train.batch_size=2", "optim.schedule=cosine", "train.time_budget=10.5"]


def test_time_budget_stops_mid_epoch_and_the_cosine_follows_the_spent_fraction(tmp_path, tiny_config):
    trainer = Trainer(tiny_config(tmp_path / "run", *BUDGET))
    trainer.clock = TickClock()
    summary = trainer.fit()
    steps, epochs, at_step, elapsed = _budgeted_steps(trainer.steps_per_epoch, 10.5, 50)
    assert trainer.steps_per_epoch > 2 and steps % trainer.steps_per_epoch != 0  # the budget ends inside an epoch
    assert summary["finished"] and summary["time_budget_spent"] and not summary["stopped_early"]
    assert (summary["step"], summary["epoch"], summary["elapsed_s"]) == (steps, epochs, elapsed)
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert len(rows) == epochs and "val/loss" in rows[-1]  # the cut epoch was validated
    for row in rows:  # lr after the epoch's last step: 0.01 * (1 + cos(pi * min(1, t / budget))) / 2
        t = at_step[int(row["step"]) - 1]
        assert float(row["lr"]) == pytest.approx(0.01 * 0.5 * (1 + math.cos(math.pi * min(1.0, t / 10.5))), abs=1e-12)
    assert float(rows[-1]["lr"]) == pytest.approx(0.0, abs=1e-12)
    assert load_checkpoint(tmp_path / "run" / "last.pt")["elapsed"] == elapsed


def test_time_budget_resumes_only_when_raised(tmp_path, tiny_config):
    first = Trainer(tiny_config(tmp_path / "run", *BUDGET))
    first.clock = TickClock()
    done = first.fit()
    again = Trainer(tiny_config(tmp_path / "run", *BUDGET))
    again.clock = TickClock()
    same = again.fit(resume=True)  # the budget is spent: nothing more to train
    assert (same["step"], same["epoch"]) == (done["step"], done["epoch"])
    more = Trainer(tiny_config(tmp_path / "run", *BUDGET[:-1], "train.time_budget=20.5"))
    more.clock = TickClock()
    longer = more.fit(resume=True)
    assert longer["time_budget_spent"] and longer["step"] > done["step"] and longer["elapsed_s"] >= 20.5


def test_time_budget_without_a_fake_clock_and_its_validation(tmp_path, tiny_config):
    summary = Trainer(tiny_config(tmp_path / "run", "train.epochs=100000", "train.time_budget=0.5")).fit()
    assert summary["time_budget_spent"] and summary["epoch"] < 100000 and summary["elapsed_s"] >= 0.5
    plain = Trainer(tiny_config(tmp_path / "plain", "train.epochs=1")).fit()
    assert not plain["time_budget_spent"] and plain["elapsed_s"] > 0
    for bad in ("0", "-3"):
        with pytest.raises(ConfigError, match="train.time_budget: expected seconds > 0"):
            tiny_config(tmp_path / "bad", f"train.time_budget={bad}")


def _eval_split(path, split="val"):
    from geomdl.pipelines.runs import evaluate_checkpoint

    return evaluate_checkpoint(path, splits=[split], plots=False, out_dir=path.parent / f"eval_{path.stem}")[split]


@pytest.mark.parametrize("ema", [False, True])
def test_final_metrics_come_from_best_checkpoint_by_default(tmp_path, tiny_config, ema):
    # monitoring the *largest* val loss makes an early epoch the best one, so best.pt != last.pt
    extra = ["train.epochs=4", "train.monitor_mode=max"] + (["train.ema_decay=0.5"] if ema else [])
    summary = Trainer(tiny_config(tmp_path / "run", *extra)).fit()
    assert summary["best_epoch"] < summary["epoch"] == 4  # precondition: the reload path is taken
    assert summary["final_weights"] == "best" and summary["final_weights_epoch"] == summary["best_epoch"]
    run = tmp_path / "run"
    assert summary["metrics"]["val"] == pytest.approx(_eval_split(run / "best.pt"), rel=1e-6)
    assert summary["metrics"]["val"]["loss"] != pytest.approx(_eval_split(run / "last.pt")["loss"], rel=1e-6)
    assert summary["metrics"]["val"]["loss"] == pytest.approx(summary["best"], rel=1e-6)
    assert load_checkpoint(run / "last.pt")["epoch"] == 4  # resuming still continues from the end


def test_final_weights_last_keeps_the_end_of_training(tmp_path, tiny_config):
    summary = Trainer(tiny_config(tmp_path / "run", "train.epochs=4", "train.monitor_mode=max",
                                  "train.final_weights=last")).fit()
    assert summary["best_epoch"] < 4 and summary["final_weights"] == "last" and summary["final_weights_epoch"] == 4
    assert summary["metrics"]["val"] == pytest.approx(_eval_split(tmp_path / "run" / "last.pt"), rel=1e-6)


def test_final_weights_fall_back_to_last_without_a_finite_monitored_value(tmp_path, tiny_config, monkeypatch, caplog):
    monkeypatch.setattr(Trainer, "_track", lambda self, row: (False, False))  # nothing ever improves
    summary = Trainer(tiny_config(tmp_path / "run", "train.epochs=2")).fit()
    assert summary["final_weights"] == "last" and summary["final_weights_epoch"] == 2
    assert "no best checkpoint" in caplog.text


def test_final_weights_is_validated(tmp_path, tiny_config):
    with pytest.raises(ConfigError, match="train.final_weights"):
        tiny_config(tmp_path / "run", "train.final_weights=best_val")


def test_fit_restores_the_callers_deterministic_setting_with_warn_only(tmp_path, tiny_config):
    """``fit`` turns on deterministic algorithms (warn_only) for the run and restores torch's global setting
    afterwards: both the mode and warn_only. Restoring the mode alone left a caller's
    ``use_deterministic_algorithms(True, warn_only=True)`` as errors-instead-of-warnings after the run."""
    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        for mode, warn_only in ((True, True), (True, False), (False, False)):
            torch.use_deterministic_algorithms(mode, warn_only=warn_only)
            Trainer(tiny_config(tmp_path / f"{mode}-{warn_only}", "train.epochs=1", "train.plots=false")).fit()
            assert (torch.are_deterministic_algorithms_enabled(),
                    torch.is_deterministic_algorithms_warn_only_enabled()) == (mode, warn_only)
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


@pytest.mark.parametrize("local_rank", [0, 1])
@pytest.mark.parametrize("fails", [False, True])
def test_ddp_local_rank_0_builds_the_datasets_first(tmp_path, tiny_config, monkeypatch, local_rank, fails):
    """Under DDP local rank 0 builds the datasets (and writes their caches) before the other ranks, which wait
    at a barrier and then read the caches; rank 0 reaches the barrier also when building fails, so the others
    are never left waiting. (Before, every rank processed the raw files at the same time.)"""
    from geomdl.pipelines import trainer as trainer_mod
    from geomdl.pipelines.distributed import DistInfo

    events = []
    monkeypatch.setattr(trainer_mod, "barrier", lambda info, timeout=None: events.append(("barrier", timeout)))
    info = DistInfo(rank=local_rank, world_size=2, local_rank=local_rank, backend="gloo")
    trainer = Trainer(tiny_config(tmp_path / "run", "train.prepare_timeout=123"), dist_info=info)

    def build():
        events.append("build")
        if fails:
            raise ValueError("unreadable raw file")
        return {"train": [], "val": []}

    monkeypatch.setattr(trainer.task, "build_datasets", build)
    # no samples: _build stops with a ConfigError right after building, before DDP needs a process group
    with pytest.raises(ValueError if fails else ConfigError, match="unreadable raw file" if fails else "built no 'train'"):
        trainer._build(None, None)
    # the wait has its own timeout (train.prepare_timeout), not the process group's
    assert events == (["build", ("barrier", 123.0)] if local_rank == 0 else [("barrier", 123.0), "build"])
    single = Trainer(tiny_config(tmp_path / "single"), dist_info=DistInfo())  # one process: no barrier
    events.clear()
    monkeypatch.setattr(single.task, "build_datasets", build)
    with pytest.raises(ValueError if fails else ConfigError):
        single._build(None, None)
    assert events == ["build"]
