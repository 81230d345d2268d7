"""geomdl.pipelines.tasks: errors of the dataset built from ``data.kwargs`` name the key they came from."""
import pytest

from geomdl.cli import main
from geomdl.pipelines.config import ConfigError, load_config
from geomdl.pipelines.tasks import build_task, get_dataset


def test_a_bad_data_kwarg_value_of_a_toy_dataset_names_the_key():
    task = build_task(load_config("toy_classification", ["data.kwargs.num_points=-1"]))
    with pytest.raises(ValueError, match=r"^data.kwargs.num_points: num_points must be >= 1, got -1$") as info:
        task.dataset_for("train")
    # the same type as the constructor's error (not a ConfigError), with that error chained
    assert type(info.value) is ValueError and type(info.value.__cause__) is ValueError
    assert str(info.value.__cause__) == "num_points must be >= 1, got -1"


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_per_class=2, num_points=-1), r"^data.kwargs.num_points: num_points must be an int >= 1, got -1$"),
    (dict(num_per_class=2, noise=-1.0), r"^data.kwargs.noise: noise must be a finite number >= 0, got -1.0$"),
])
def test_a_bad_data_kwarg_value_of_a_registry_dataset_names_the_key(kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        get_dataset("synthetic_shapes", "train", **kwargs)
    assert not isinstance(info.value, ConfigError) and isinstance(info.value.__cause__, ValueError)


def test_an_error_that_names_no_data_kwarg_is_left_as_it_is():
    # the split is the trainer's, not a data.kwargs entry (and "no test split" errors must stay plain ValueErrors)
    with pytest.raises(ValueError, match=r"^split must be one of \['train', 'val', 'test'\], got 'bogus'$") as info:
        get_dataset("toy_shapes", "bogus", num_points=8)
    assert info.value.__cause__ is None


def test_the_cli_reports_the_data_kwarg(tmp_path, capsys):
    code = main(["train", "toy_classification", "--set", "data.kwargs.num_points=0", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "error: data.kwargs.num_points: num_points must be >= 1, got 0" in err


def test_a_task_of_your_own_trains_and_evaluates_on_clouds_in_memory(tmp_path, monkeypatch):
    # the README's recipe: register a task whose dataset_for returns a DataList, then train and evaluate
    import numpy as np

    from geomdl.datasets import DataList
    from geomdl.pipelines.config import config_from_dict
    from geomdl.pipelines.generic import ClassificationTask
    from geomdl.pipelines.runs import evaluate_checkpoint, train
    from geomdl.pipelines.tasks import TASKS

    class CloudsInMemory(ClassificationTask):
        def dataset_for(self, split):
            rng = np.random.default_rng({"train": 0, "val": 1, "test": 2}[split])
            clouds = [rng.normal(size=(32, 3)) * (1.0 if i % 2 else [2.0, 0.5, 0.5]) for i in range(8)]
            return DataList.from_arrays(clouds, y=[i % 2 for i in range(8)])

    monkeypatch.setitem(TASKS, "clouds_in_memory", CloudsInMemory)
    cfg = config_from_dict({"task": {"name": "clouds_in_memory"}, "data": {"name": "mine"},
                            "model": {"name": "tiny_pointnet"},
                            "train": {"epochs": 1, "batch_size": 4, "out_dir": str(tmp_path / "run"), "progress": "off",
                                      "tensorboard": False, "plots": False}})
    summary = train(cfg)
    assert summary["finished"] and summary["eval_sizes"] == {"val": 8, "test": 8}
    again = evaluate_checkpoint(tmp_path / "run" / "last.pt", plots=False)
    assert again["test"] == pytest.approx(summary["metrics"]["test"])
