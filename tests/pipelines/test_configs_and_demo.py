"""Every example config in configs/ validates (sections, types, task name, model kwargs), and the
``train`` demo stage does its work."""
import json
import pathlib

import pytest

from geomdl.pipelines.config import check_kwargs, load_config
from geomdl.pipelines.tasks import get_model_constructor, get_task

CONFIGS = sorted((pathlib.Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_config_is_valid(path):
    cfg = load_config(path)
    get_task(cfg.task.name)
    check_kwargs(get_model_constructor(cfg.model.name), cfg.model.kwargs, "model.kwargs")


def test_toy_configs_exist():
    assert {"toy_classification.yaml", "toy_regression.yaml"} <= {p.name for p in CONFIGS}


def test_train_demo_stage(tmp_path, capsys):
    from geomdl.pipelines.demo_train import run

    result = run(tmp_path, quick=True)
    out = capsys.readouterr().out
    assert "interrupted after epoch 1" in out and "best.pt on the test split" in out
    run_dir = tmp_path / "train"
    for name in ("last.pt", "best.pt", "metrics.csv", "learning_curves.png", "confusion_val.png", "eval/test_metrics.json"):
        assert (run_dir / name).is_file(), name
    assert result["epochs"] == 4 and 0 <= result["test"]["accuracy"] <= 1
    assert json.loads((run_dir / "eval" / "test_metrics.json").read_text()) == result["test"]
