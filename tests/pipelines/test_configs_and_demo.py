"""Every bundled config (geomdl/configs/) validates (sections, types, task name, model kwargs), and the
``train`` and ``datasets`` demo stages do their work."""
import json
import shutil

import pytest

from geomdl import configs
from geomdl.pipelines.config import ConfigError, check_kwargs, load_config, resolve_config_path
from geomdl.pipelines.tasks import get_model_constructor, get_task

CONFIGS = sorted(configs.FOLDER.glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_example_config_is_valid(path):
    cfg = load_config(path)
    get_task(cfg.task.name)
    check_kwargs(get_model_constructor(cfg.model.name), cfg.model.kwargs, "model.kwargs")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_a_config_that_validates_on_its_test_split_reports_the_last_weights(path):
    """With ``val_split: test`` (ModelNet has no val split) ``best.pt`` is chosen on the test data, so the final
    evaluation must use the last epoch's weights (``train.final_weights: last``), as the config's comment says."""
    cfg = load_config(path)
    kwargs = cfg.task.kwargs or {}
    if kwargs.get("val_split", "val") == kwargs.get("test_split", "test"):
        assert cfg.train.final_weights == "last", path.name


def test_toy_configs_exist():
    assert {"toy_classification.yaml", "toy_regression.yaml"} <= {p.name for p in CONFIGS}
    assert configs.names() == [p.stem for p in CONFIGS]


def test_bundled_config_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no checkout around: the name alone must find the packaged file
    for name in ("toy_regression", "toy_regression.yaml"):
        assert resolve_config_path(name) == configs.FOLDER / "toy_regression.yaml"
        assert load_config(name).task.name == load_config(configs.FOLDER / "toy_regression.yaml").task.name
    # a file of that name in the working folder wins; a path with a folder part is never replaced
    (tmp_path / "toy_regression.yaml").write_text("train: {epochs: 3}\n")
    assert load_config("toy_regression.yaml").train.epochs == 3
    assert resolve_config_path("sub/toy_regression.yaml") == "sub/toy_regression.yaml"
    with pytest.raises(ConfigError, match=r"no_such_config: config file not found .*toy_classification"):
        load_config("no_such_config")
    with pytest.raises(KeyError, match="no bundled config named 'nope'"):
        configs.path("nope")
    with pytest.raises(TypeError, match="name must be a str"):
        configs.path(3)
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        load_config(3)  # would otherwise open file descriptor 3


def test_a_folder_named_like_a_bundled_config_does_not_hide_it(tmp_path, monkeypatch):
    # `geomdl train toy_regression --out toy_regression` made a run folder of that name; the printed resume command
    # (`geomdl train toy_regression ... --resume`) then failed with "toy_regression: is a folder"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "toy_regression").mkdir()
    assert resolve_config_path("toy_regression") == configs.FOLDER / "toy_regression.yaml"
    assert load_config("toy_regression").task.name == load_config(configs.FOLDER / "toy_regression.yaml").task.name
    (tmp_path / "mine").mkdir()  # not a bundled name: still reported as a folder
    with pytest.raises(ConfigError, match="mine: is a folder, expected a YAML config file"):
        load_config("mine")


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


def test_train_demo_stage_reruns_and_keeps_other_files_in_its_folder(tmp_path, capsys):
    # the stage removed <out>/train whole before training: `geomdl demo --out .` deleted a user's own train/ folder
    from geomdl.pipelines.demo_train import run

    mine = tmp_path / "train" / "data" / "shape_0001.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text("1,2,3\n")
    first = run(tmp_path, quick=True)
    again = run(tmp_path, quick=True)  # into the same folder: the earlier run's files are replaced
    assert mine.read_text() == "1,2,3\n"
    assert again["test"] == first["test"] and again["epochs"] == 4
    assert (tmp_path / "train" / "best.pt").is_file()


def test_datasets_demo_stage_skips_a_missing_real_sample(tmp_path, monkeypatch, capsys, shared_data):
    # one absent sample folder (only QM9 here) stopped the whole demo with a FileNotFoundError
    from geomdl.pipelines import demo_datasets

    shutil.copytree(shared_data / "qm9", tmp_path / "data" / "qm9")
    monkeypatch.setattr(demo_datasets, "_SHARED", tmp_path / "data")
    result = demo_datasets.run(tmp_path / "out", quick=True)
    assert list(result["real"]) == ["qm9"] and result["real"]["qm9"] > 0
    assert "not found under" in capsys.readouterr().out


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_workers_persist_across_epochs(workers):
    """``data.num_workers > 0``: persistent workers (a spawn start would otherwise start new processes every
    epoch); the loader still yields every item of the dataset."""
    from geomdl.pipelines.tasks import build_task

    config = load_config("toy_classification", [f"data.num_workers={workers}"])
    task = build_task(config)
    dataset = task.build_datasets()["val"]
    loader = task.make_loader(dataset, batch_size=8)
    assert loader.num_workers == workers and loader.persistent_workers == (workers > 0)
    for _ in range(2):  # two epochs through the same workers
        assert sum(batch.num_graphs for batch in loader) == len(dataset)


def test_demo_exports_saves_and_reloads_an_egnn(tmp_path):
    """The torch.export part of `geomdl demo --only layers`: the saved program reloads and matches eager."""
    from geomdl import ops
    from geomdl.pipelines.demo_layers import _exported

    out = _exported(tmp_path)
    if not ops.has_kernel("radius"):
        assert "skipped" in out
        return
    assert out["max_abs_difference"] <= 1e-10 and (tmp_path / "egnn.pt2").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part.pt2")]  # the temporary file is gone
