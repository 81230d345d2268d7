"""Resuming a checkpoint of one folder into a folder that holds another run overwrote that run's checkpoints
without a word (the "already holds a run" guard covered fresh runs only); a Ctrl-C between the writes of
``last.pt`` and ``best.pt`` left a ``last.pt`` whose best epoch ``best.pt`` did not hold (the resumed run then
evaluated older weights as "best"); ``--resume ""`` started afresh instead of resuming, an empty
``train.out_dir`` wrote the run into the working folder (``--out ""`` was refused), and ``geomdl demo --seed``
out of torch's range ended in a traceback."""
import shutil

import pytest

from geomdl.cli import main
from geomdl.pipelines import trainer_checkpoints
from geomdl.pipelines.checkpoint import load_checkpoint
from geomdl.pipelines.config import ConfigError, load_config
from geomdl.pipelines.trainer import Trainer, TrainingInterrupted

OPTIONS = ("train.epochs=3", "train.plots=false")


def test_resuming_into_a_folder_that_holds_another_run_is_refused(tmp_path, tiny_config):
    assert Trainer(tiny_config(tmp_path / "done", *OPTIONS)).fit()["finished"]
    before = (tmp_path / "done" / "last.pt").read_bytes()
    Trainer(tiny_config(tmp_path / "part", *OPTIONS, "train.stop_after_epochs=1")).fit()
    with pytest.raises(ConfigError, match=r"train.out_dir: .*done.* already holds another run \(last.pt\)"):
        Trainer(tiny_config(tmp_path / "done", *OPTIONS)).fit(resume=tmp_path / "part" / "last.pt")
    assert (tmp_path / "done" / "last.pt").read_bytes() == before  # was overwritten with the resumed run's epochs
    # asked for: the resumed run replaces the other one
    summary = Trainer(tiny_config(tmp_path / "done", *OPTIONS)).fit(resume=tmp_path / "part" / "last.pt", overwrite=True)
    assert summary["finished"] and load_checkpoint(tmp_path / "done" / "last.pt")["epoch"] == 3


def test_resuming_within_the_run_folder_or_into_an_empty_one_still_works(tmp_path, tiny_config):
    Trainer(tiny_config(tmp_path / "run", *OPTIONS, "train.stop_after_epochs=1")).fit()
    assert Trainer(tiny_config(tmp_path / "run", *OPTIONS, "train.stop_after_epochs=1")).fit(
        resume=tmp_path / "run" / "last.pt")["epoch"] == 2
    assert Trainer(tiny_config(tmp_path / "new", *OPTIONS)).fit(resume=tmp_path / "run" / "last.pt")["finished"]


def test_ctrl_c_between_the_last_and_best_checkpoint_writes_resumes_to_the_uninterrupted_result(
        tmp_path, tiny_config, monkeypatch):
    options = ("data.kwargs.num_samples=32", "train.epochs=4", "optim.lr=0.02", "train.plots=false",
               "train.monitor=val/accuracy", "train.monitor_mode=max", "seed=0")
    full = Trainer(tiny_config(tmp_path / "full", *options)).fit()
    assert full["final_weights"] == "best" and full["best_epoch"] < 4  # best.pt is reloaded for the final evaluation
    saving, save, copy = [], trainer_checkpoints.CheckpointMixin._save, shutil.copyfile

    def save_noting_the_epoch(self, improved):
        saving[:] = [self.state["epoch"]]
        return save(self, improved)

    def copy_interrupted_in_the_best_epoch(src, dst, **kwargs):  # between the two files of that epoch's save
        if saving == [full["best_epoch"]]:
            raise KeyboardInterrupt
        return copy(src, dst, **kwargs)

    monkeypatch.setattr(trainer_checkpoints.CheckpointMixin, "_save", save_noting_the_epoch)
    monkeypatch.setattr(trainer_checkpoints.shutil, "copyfile", copy_interrupted_in_the_best_epoch)
    with pytest.raises(TrainingInterrupted) as info:
        Trainer(tiny_config(tmp_path / "run", *options)).fit()
    monkeypatch.undo()
    if info.value.saved_epoch is not None:  # the message names the epoch that last.pt holds
        assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == info.value.saved_epoch
    resumed = Trainer(tiny_config(tmp_path / "run", *options)).fit(resume=(tmp_path / "run" / "last.pt").exists())
    for key in ("final_weights", "final_weights_epoch", "best_epoch", "metrics"):
        assert resumed[key] == full[key], key  # were the weights of an earlier epoch, reported as the best epoch's


def test_an_empty_resume_path_is_refused(tmp_path, capsys):
    assert main(["train", "toy_classification", "--set", "train.epochs=1", "--set", "data.kwargs.num_samples=16",
                 "--out", str(tmp_path / "run"), "--resume", "", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['geomdl train: error: --resume: empty path; give the checkpoint, or --resume alone for <out_dir>/last.pt']
    assert not (tmp_path / "run").exists()  # was: a fresh run


@pytest.mark.parametrize("value", ["", "' '"])
def test_an_empty_out_dir_is_refused(tmp_path, capsys, monkeypatch, value):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"train.out_dir: expected the run folder, got an empty path"):
        load_config(None, [f"train.out_dir={value}"])
    assert main(["train", "toy_classification", "--set", "train.epochs=1", "--set", "data.kwargs.num_samples=16",
                 "--set", f"train.out_dir={value}", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.out_dir: expected the run folder, got an empty path" in err[0], err
    assert list(tmp_path.iterdir()) == []  # was: the run's checkpoints, results and plots in the working folder


@pytest.mark.parametrize("seed", [str(2 ** 64), str(-(2 ** 63) - 1)])
def test_a_demo_seed_out_of_range_is_named(tmp_path, capsys, seed):
    assert main(["demo", "--only", "ops", "--quick", "--out", str(tmp_path / "d"), "--seed", seed]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"geomdl demo: error: --seed must be an int in [0, 2**31), got {seed}"]


def test_a_best_checkpoint_the_resumed_run_did_not_reproduce_is_reported_with_its_own_epoch(
        tmp_path, tiny_config, monkeypatch, caplog):
    # non-deterministic training: a Ctrl-C after best.pt's write of epoch k, and the resumed run's redo of epoch k
    # scores worse; best.pt still holds the interrupted epoch's weights, which were reported as the record's best epoch
    options = ("data.kwargs.num_samples=32", "train.epochs=4", "optim.lr=0.02", "train.plots=false",
               "train.monitor=val/accuracy", "train.monitor_mode=max", "seed=0")
    full = Trainer(tiny_config(tmp_path / "full", *options)).fit()
    target = full["best_epoch"]
    assert 1 < target < 4
    saving, save, copy, track = [], trainer_checkpoints.CheckpointMixin._save, shutil.copyfile, \
        trainer_checkpoints.CheckpointMixin._track

    def save_noting_the_epoch(self, improved):
        saving[:] = [self.state["epoch"]]
        return save(self, improved)

    def copy_interrupted_in_the_best_epoch(src, dst, **kwargs):
        if saving == [target]:
            raise KeyboardInterrupt
        return copy(src, dst, **kwargs)

    monkeypatch.setattr(trainer_checkpoints.CheckpointMixin, "_save", save_noting_the_epoch)
    monkeypatch.setattr(trainer_checkpoints.shutil, "copyfile", copy_interrupted_in_the_best_epoch)
    with pytest.raises(TrainingInterrupted):
        Trainer(tiny_config(tmp_path / "run", *options)).fit()
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "run" / "best.pt")["epoch"] == target

    def track_scoring_the_redo_worse(self, row):
        if row["epoch"] == target:
            row = {**row, "val/accuracy": -1.0}
        return track(self, row)

    monkeypatch.setattr(trainer_checkpoints.CheckpointMixin, "_track", track_scoring_the_redo_worse)
    resumed = Trainer(tiny_config(tmp_path / "run", *options)).fit(resume=True)
    assert resumed["best_epoch"] != target and resumed["final_weights"] == "best"
    assert resumed["final_weights_epoch"] == target  # was the record's best epoch, whose weights best.pt no longer holds
    assert f"best.pt holds the weights of epoch {target}" in caplog.text
