"""Pipeline argument checks: config ranges, benchmark arguments,
evaluation output folders."""
from types import SimpleNamespace

import pytest
import torch

from geomdl.cli import main
from geomdl.pipelines.config import ConfigError, load_config


@pytest.mark.parametrize("override, message", [
    ("optim.lr=inf", "optim.lr: expected a finite float > 0, got inf"),
    ("optim.lr=.nan", "optim.lr: expected a finite float > 0"),
    ("optim.weight_decay=inf", "optim.weight_decay: expected a finite float >= 0"),
    ("optim.grad_clip=inf", "optim.grad_clip: expected a finite float > 0 or null"),
    ("optim.momentum=1.5", r"optim.momentum: expected a float in \[0, 1\), got 1.5"),
    ("optim.momentum=-0.1", "optim.momentum: expected a float in"),
    ("optim.gamma=0", r"optim.gamma: expected a float in \(0, 1\], got 0.0"),
    ("optim.gamma=-2", "optim.gamma: expected a float in"),
])
def test_optimiser_settings_out_of_range_are_config_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_optimiser_settings_in_range_are_accepted():
    cfg = load_config(None, ["optim.lr=3e-4", "optim.momentum=0", "optim.gamma=1", "optim.grad_clip=10"])
    assert (cfg.optim.lr, cfg.optim.momentum, cfg.optim.gamma, cfg.optim.grad_clip) == (3e-4, 0.0, 1.0, 10.0)


@pytest.mark.parametrize("kwargs, message", [
    ({"max_pairs": 0}, "max_pairs must be None .* got 0"),
    ({"max_pairs": -1}, "max_pairs must be None .* got -1"),
    ({"max_pairs": 1.5}, "max_pairs must be None .* got 1.5"),
    ({"voxel_size": 0.0}, "voxel_size must be a positive finite number, got 0.0"),
    ({"voxel_size": float("inf")}, "voxel_size must be a positive finite number, got inf"),
])
def test_evaluate_benchmark_checks_its_arguments_first(tmp_path, kwargs, message):
    from geomdl.pipelines.registration.evaluate import evaluate_benchmark

    with pytest.raises(ValueError, match=message):  # before looking for gt.log (absent here)
        evaluate_benchmark(tmp_path, tmp_path, **kwargs)


def test_eval_out_that_is_a_file_is_one_error_line(tmp_path, tiny_config, capsys):
    from geomdl.pipelines.runs import train

    train(tiny_config(tmp_path / "run", "train.epochs=1", "train.plots=false"))
    target = tmp_path / "metrics.txt"
    target.write_text("keep me")
    assert main(["eval", str(tmp_path / "run" / "last.pt"), "--out", str(target), "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert "metrics.txt' is a file, expected a folder" in err and "Traceback" not in err
    assert target.read_text() == "keep me"


def test_registration_gt_reader_names_a_binary_file(tmp_path):
    from geomdl.pipelines.registration.io import read_gt_log

    (tmp_path / "gt.log").write_bytes(bytes(range(128, 256)))
    with pytest.raises(ValueError, match="gt.log: not a text file"):
        read_gt_log(tmp_path / "gt.log")


@pytest.mark.parametrize("config, overrides, message", [
    ("toy_classification", ["task.kwargs.num_classes=0"], r"task.kwargs.num_classes: expected an int >= 1 or null, got 0"),
    ("tinvnn_shapes", ["task.kwargs.num_classes=-3"], r"task.kwargs.num_classes: expected an int >= 1 or null, got -3"),
    ("apen_segmentation", ["task.kwargs.num_classes=0"], r"task.kwargs.num_classes: expected an int >= 1 or null, got 0"),
    ("apen_segmentation", ["task.kwargs.vote_weight=.nan"], r"task.kwargs.vote_weight: expected a finite float >= 0, got nan"),
    ("ponita_molecules", ["task.kwargs.forces_weight=-1"], r"task.kwargs.forces_weight: expected a finite float >= 0, got -1.0"),
    ("ponita_molecules", ["task.kwargs.energy_weight=.nan"], r"task.kwargs.energy_weight: expected a finite float >= 0, got nan"),
    ("ponita_molecules", ["task.kwargs.energy_weight=0", "task.kwargs.forces_weight=0"],
     r"task.kwargs.energy_weight, task.kwargs.forces_weight: both are 0"),
    ("ponita_molecules", ["task.kwargs.metric_scale=0"], r"task.kwargs.metric_scale: expected a finite float > 0, got 0.0"),
    # the evaluation seed rotation_seed * 1_000_003 + ... overflowed torch's 64-bit seed at the first validation
    ("tinvnn_shapes", ["task.kwargs.rotation_seed=99999999999999"],
     r"task.kwargs.rotation_seed: expected an int in \(-2\*\*40, 2\*\*40\), got 99999999999999"),
])
def test_task_options_out_of_range_are_config_errors_naming_the_key(config, overrides, message):
    # these were accepted: a NaN or negative loss weight, zero metrics, or a model built with 0 outputs whose error
    # named model.kwargs.out_channels
    from geomdl.pipelines.tasks import build_task

    with pytest.raises(ConfigError, match=message):
        build_task(load_config(config, overrides))


def test_num_classes_below_the_training_labels_is_a_config_error():
    # it was an IndexError ("Target 2 is out of bounds") from the first training step (a device assert on a GPU)
    from geomdl.pipelines.tasks import build_task

    cfg = load_config("toy_classification", ["task.kwargs.num_classes=2", "data.kwargs.num_samples=16",
                                             "data.kwargs.num_points=16"])
    task = build_task(cfg)
    datasets = task.build_datasets()
    with pytest.raises(ConfigError, match=r"task.kwargs.num_classes: 2 classes, but the training set has label 3"):
        task.model_kwargs(datasets)
    ok = build_task(load_config("toy_classification", ["task.kwargs.num_classes=4", "data.kwargs.num_samples=16",
                                                       "data.kwargs.num_points=16"]))
    assert ok.model_kwargs(datasets)["out_channels"] == 4


def test_a_dataset_that_states_its_classes_is_not_read_item_by_item():
    # ModelNet40's ~10k training items (with their transforms) would be read just to check num_classes
    from geomdl.pipelines.generic import check_labels_fit

    class Stated:
        num_classes = 5

        def __len__(self):
            return 10

        def __getitem__(self, k):
            raise AssertionError("read item by item")

    class Named(Stated):  # ModelNet: a list of class names, no count
        num_classes = None
        classes = ("a", "b", "c", "d", "e")

    for dataset in (Stated(), Named()):
        check_labels_fit(5, dataset)
        check_labels_fit(7, dataset)

    class Labelled(Stated):  # more classes stated than asked for: the labels decide
        def __getitem__(self, k):
            return SimpleNamespace(y=torch.tensor(k % 3 if k < 9 else 4))

    check_labels_fit(5, Labelled())
    with pytest.raises(ConfigError, match=r"task.kwargs.num_classes: 3 classes, but the training set has label 4"):
        check_labels_fit(3, Labelled())


@pytest.mark.parametrize("config", ["toy_classification", "apen_segmentation"])
def test_class_names_of_the_wrong_count_are_a_config_error(config):
    # three names for four classes were dropped from the plots without a word
    from geomdl.pipelines.tasks import build_task

    overrides = ["task.kwargs.class_names=[a, b, c]"] + (
        ["data.kwargs.num_samples=8", "data.kwargs.num_points=16"] if config == "toy_classification" else
        ["data.kwargs.num_scenes=4", "data.kwargs.eval_scenes=2"])
    task = build_task(load_config(config, overrides))
    with pytest.raises(ConfigError, match=r"task.kwargs.class_names: 3 names for \d+ classes"):
        task.model_defaults(task.build_datasets())


@pytest.mark.parametrize("names", [["scale"], ["scale", "height", "extra"]])
def test_target_names_of_the_wrong_count_are_a_config_error(names):
    # the metrics fell back to y0, y1, ... without a word when the count did not match the targets
    from geomdl.pipelines.tasks import build_task

    overrides = [f"task.kwargs.target_names={names}", "data.kwargs.num_samples=8", "data.kwargs.num_points=16"]
    task = build_task(load_config("toy_regression", overrides))
    with pytest.raises(ConfigError, match=rf"task.kwargs.target_names: {len(names)} names for 2 targets"):
        task.model_defaults(task.build_datasets())


def test_target_names_of_the_right_count_name_the_metrics():
    from geomdl.pipelines.tasks import build_task

    task = build_task(load_config("toy_regression", ["data.kwargs.num_samples=8", "data.kwargs.num_points=16"]))
    assert task.model_defaults(task.build_datasets()) == {"out_channels": 2}
    assert task.names(2) == ["scale", "height"]


def test_train_applies_overrides_to_a_config_object(tmp_path, tiny_config):
    # runs.train(config_object, overrides) ignored the overrides and trained the object's 3 epochs
    from geomdl.pipelines.runs import train

    cfg = tiny_config(tmp_path / "run", "train.plots=false")
    summary = train(cfg, ["train.epochs=1"])
    assert summary["epoch"] == 1 and cfg.train.epochs == 3  # the caller's object is left as it was
    with pytest.raises(ConfigError, match="train.epochs: expected int, got 'x'"):
        train(cfg, ["train.epochs=x"])
