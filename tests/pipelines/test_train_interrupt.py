"""Ctrl-C during ``geomdl train``: one line that says which epoch ``last.pt`` holds and the command that
continues the run (exit code 130), and a resume from there that finishes the run."""
from __future__ import annotations

import pytest
import yaml

from geomdl.cli import main
from geomdl.pipelines.checkpoint import load_checkpoint
from geomdl.pipelines.trainer import Trainer, TrainingInterrupted

SETTINGS = {
    "data": {"name": "toy_shapes", "kwargs": {"num_samples": 16, "num_points": 16}},
    "model": {"name": "tiny_pointnet", "kwargs": {"hidden_channels": 16}},
    "optim": {"lr": 0.01},
    "train": {"epochs": 4, "batch_size": 8, "progress": "off", "tensorboard": False, "plots": False},
}


def _interrupt_in_epoch(monkeypatch, epoch: int) -> None:
    """Ctrl-C in the middle of the 1-based ``epoch`` (the first training step of it)."""
    train_epoch = Trainer._train_epoch

    def interrupted(self, index):
        if index + 1 == epoch:
            raise KeyboardInterrupt
        return train_epoch(self, index)

    monkeypatch.setattr(Trainer, "_train_epoch", interrupted)


def test_ctrl_c_names_the_saved_epoch_and_the_resume_command(tmp_path, monkeypatch, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(SETTINGS))
    run = tmp_path / "run"
    _interrupt_in_epoch(monkeypatch, 3)
    assert main(["train", str(cfg), "--out", str(run), "--set", "optim.lr=0.02", "--quiet"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("geomdl train: training interrupted in epoch 3; ")
    assert f"{run / 'last.pt'} holds epoch 2" in err[0]
    assert err[0].endswith(f"continue with: geomdl train {cfg} --set optim.lr=0.02 --out {run} --resume")
    assert load_checkpoint(run / "last.pt")["epoch"] == 2
    monkeypatch.undo()
    assert main(["train", str(cfg), "--out", str(run), "--set", "optim.lr=0.02", "--quiet", "--resume"]) == 0
    assert load_checkpoint(run / "last.pt")["epoch"] == 4


def test_ctrl_c_before_any_checkpoint_says_there_is_nothing_to_resume(tmp_path, monkeypatch, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(SETTINGS))
    _interrupt_in_epoch(monkeypatch, 1)
    assert main(["train", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 130
    err = capsys.readouterr().err.strip()
    assert err == "geomdl train: training interrupted in epoch 1; no checkpoint; nothing to resume: run the same command again"


def test_the_library_raises_a_keyboard_interrupt_with_the_run_state(tmp_path, monkeypatch):
    from geomdl.pipelines.config import load_config

    cfg = load_config(None, ["data.kwargs.num_samples=16", "data.kwargs.num_points=16", "model.kwargs.hidden_channels=16",
                             "train.epochs=4", "train.batch_size=8", "train.progress=off", "train.tensorboard=false",
                             "train.checkpoint_every=2", f"train.out_dir={tmp_path / 'run'}"])
    _interrupt_in_epoch(monkeypatch, 4)
    with pytest.raises(KeyboardInterrupt) as info:  # still a KeyboardInterrupt for scripts that catch that
        Trainer(cfg).fit()
    exc = info.value
    assert isinstance(exc, TrainingInterrupted)
    assert (exc.epoch, exc.last_checkpoint) == (4, tmp_path / "run" / "last.pt")
    assert exc.saved_epoch == load_checkpoint(exc.last_checkpoint)["epoch"] >= 2  # every 2 epochs, or on improvement


@pytest.mark.parametrize("interrupted_save", [2, 4])
def test_ctrl_c_while_saving_names_the_epoch_being_saved(tmp_path, monkeypatch, interrupted_save):
    # the epoch counter moves on before the epoch is logged and saved: an interrupt while saving epoch 2
    # reported "epoch 3", and while saving the last epoch "during the final evaluation"
    from geomdl.pipelines import checkpoint
    from geomdl.pipelines.config import load_config

    saves = []
    save = checkpoint.save_checkpoint

    def interrupted(state, path):
        saves.append(state["epoch"])
        if state["epoch"] == interrupted_save:
            raise KeyboardInterrupt
        save(state, path)

    monkeypatch.setattr(checkpoint, "save_checkpoint", interrupted)
    cfg = load_config(None, ["data.kwargs.num_samples=16", "data.kwargs.num_points=16", "model.kwargs.hidden_channels=16",
                             "train.epochs=4", "train.batch_size=8", "train.progress=off", "train.tensorboard=false",
                             "train.checkpoint_every=1", "train.plots=false", f"train.out_dir={tmp_path / 'run'}"])
    with pytest.raises(TrainingInterrupted) as info:
        Trainer(cfg).fit()
    assert str(info.value).startswith(f"training interrupted in epoch {interrupted_save}; ")
    assert info.value.epoch == interrupted_save and info.value.saved_epoch == interrupted_save - 1


def test_the_interrupt_pickles_with_its_state(tmp_path):
    import pickle

    exc = pickle.loads(pickle.dumps(TrainingInterrupted(3, 2, tmp_path / "last.pt", tmp_path)))
    assert (exc.epoch, exc.saved_epoch, exc.last_checkpoint, exc.out_dir) == (3, 2, tmp_path / "last.pt", tmp_path)
    assert str(exc) == f"training interrupted in epoch 3; {tmp_path / 'last.pt'} holds epoch 2"


def test_ctrl_c_in_the_final_evaluation_says_so(tmp_path, monkeypatch):
    from geomdl.pipelines.config import load_config

    def interrupted(self, logger, stopped_early):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_final", interrupted)
    cfg = load_config(None, ["data.kwargs.num_samples=16", "data.kwargs.num_points=16", "model.kwargs.hidden_channels=16",
                             "train.epochs=2", "train.batch_size=8", "train.progress=off", "train.tensorboard=false",
                             "train.plots=false", f"train.out_dir={tmp_path / 'run'}"])
    with pytest.raises(TrainingInterrupted, match="during the final evaluation; .*last.pt holds epoch 2"):
        Trainer(cfg).fit()


def test_ctrl_c_while_the_run_is_prepared_is_a_training_interrupt(tmp_path, monkeypatch, capsys):
    # building the datasets can take minutes; a Ctrl-C there was a bare KeyboardInterrupt ("geomdl train: interrupted")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(SETTINGS))

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_build", interrupted)
    assert main(["train", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 130
    assert capsys.readouterr().err.strip() == ("geomdl train: training interrupted while preparing the run; no checkpoint; "
                                               "nothing to resume: run the same command again")
