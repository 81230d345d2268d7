"""``geomdl demo --seed`` reaches every stage's own seeds, and ``geomdl eval --data`` is refused for a run on
built-in (generated) data instead of being ignored."""
import importlib
import inspect
import json

import pytest
import yaml

from geomdl.cli import demo as demo_cli
from geomdl.cli import main


def test_every_demo_stage_is_given_the_seed(tmp_path, monkeypatch):
    # the seed only went to torch.manual_seed before each stage, which the stages' own generators ignore
    for _, target in demo_cli.STAGES:
        module, func = target.split(":")
        assert "seed" in inspect.signature(getattr(importlib.import_module(module), func)).parameters, target
    monkeypatch.setattr(demo_cli, "STAGES", [("a", f"{__name__}:_record"), ("b", f"{__name__}:_record")])
    _SEEN.clear()
    assert main(["demo", "--out", str(tmp_path), "--seed", "7"]) == 0
    assert _SEEN == [7, 7]


_SEEN = []


def _record(out_dir, quick, seed=0):
    _SEEN.append(seed)
    return {}


@pytest.mark.parametrize("stage, key", [("ops", lambda r: r["surface_variation"]),
                                        ("train", lambda r: (r["val"], r["test"]))])
def test_demo_seed_changes_the_stage_results(tmp_path, capsys, stage, key):
    results = {}
    for seed in (0, 7, 0):
        out = tmp_path / f"s{seed}"
        assert main(["demo", "--quick", "--only", stage, "--out", str(out), "--seed", str(seed)]) == 0
        results.setdefault(seed, []).append(key(json.loads((out / "demo_results.json").read_text())[stage]))
    assert results[0][0] == results[0][1]  # repeatable
    assert results[0][0] != results[7][0]  # was: the same data, model and training for every --seed


@pytest.mark.parametrize("seed", ["-1", str(2 ** 31)])
def test_a_demo_seed_outside_the_stages_range_is_named(tmp_path, capsys, seed):
    assert main(["demo", "--only", "ops", "--quick", "--out", str(tmp_path / "d"), "--seed", seed]) == 2
    assert capsys.readouterr().err.strip() == f"geomdl demo: error: --seed must be an int in [0, 2**31), got {seed}"
    assert not (tmp_path / "d").exists()


def test_eval_data_for_a_run_on_generated_data_is_an_error(tmp_path, capsys):
    # --data was silently ignored: the generated data were evaluated, exit 0 (a run with a data.root keeps
    # --data as its replacement: tests/cli/test_cli_bad_inputs.py, a moved data folder)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"name": "toy_shapes", "kwargs": {"num_samples": 16, "num_points": 16}},
                                   "model": {"name": "tiny_pointnet", "kwargs": {"hidden_channels": 8}},
                                   "train": {"epochs": 1, "batch_size": 8, "progress": "off", "tensorboard": False}}))
    assert main(["train", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run" / "last.pt"), "--data", str(tmp_path), "--out", str(tmp_path / "ev")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"geomdl eval: error: --data {tmp_path}: ") and "'toy_shapes' is built-in" in err[0]
    assert not (tmp_path / "ev").exists()
    assert main(["eval", str(tmp_path / "run" / "last.pt"), "--out", str(tmp_path / "ev")]) == 0


def test_generated_datasets_are_told_apart_from_datasets_on_files():
    from geomdl.pipelines.tasks import is_generated_dataset

    assert all(map(is_generated_dataset, ["toy_shapes", "toy_regression", "synthetic_shapes", "Synthetic-Molecules"]))
    assert not any(map(is_generated_dataset, ["modelnet40", "md17", "extxyz", "no_such_dataset", 3]))
