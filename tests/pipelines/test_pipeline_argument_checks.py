"""Pipeline argument checks: config ranges, benchmark arguments,
evaluation output folders."""
import pytest

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
