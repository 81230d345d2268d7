"""Bad files and options on the command line: one error line naming the argument or file, exit code 2,
no traceback, nothing written and no work done before the mistake is reported."""
import os

import numpy as np
import pytest
import torch
import yaml

from geomdl.cli import main


def _one_error_line(capsys, command: str) -> str:
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if not ln.startswith("epoch ")]
    assert len(err) == 1, err
    assert err[0].startswith(f"geomdl {command}: error: ")
    return err[0]


@pytest.fixture
def no_registration(monkeypatch):
    import geomdl.pipelines.registration as reg

    def fail(*args, **kwargs):
        raise AssertionError("register() ran although the arguments were invalid")

    monkeypatch.setattr(reg, "register", fail)


@pytest.fixture
def cloud(tmp_path):
    path = tmp_path / "cloud.npy"
    np.save(path, np.random.default_rng(0).random((200, 3)))
    return str(path)


def test_truncated_ascii_pcd_is_an_error_naming_the_file(tmp_path, capsys, cloud, no_registration):
    # Open3D read the missing rows of a truncated ASCII PCD as uninitialised memory (huge coordinates)
    from geomdl.utils.optional import import_open3d

    try:
        import_open3d()
    except ImportError as exc:
        pytest.skip(f"open3d: {exc}")
    rows = np.random.default_rng(1).random((50, 3))
    header = ("VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 50\nHEIGHT 1\n"
              "VIEWPOINT 0 0 0 1 0 0 0\nPOINTS 50\nDATA ascii\n")
    pcd = tmp_path / "half.pcd"
    pcd.write_text(header + "\n".join(" ".join(map(str, r)) for r in rows[:20]) + "\n")
    assert main(["register", str(pcd), cloud]) == 2
    line = _one_error_line(capsys, "register")
    assert str(pcd) in line and "header says POINTS 50, the file has 20 data rows" in line


def test_register_checks_voxel_before_reading_the_clouds(tmp_path, capsys, no_registration):
    for value in ("0", "-1", "nan", "inf"):
        assert main(["register", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--voxel", value]) == 2
        assert "--voxel must be a positive number" in _one_error_line(capsys, "register")


def test_register_names_the_cloud_file_in_its_errors(tmp_path, capsys, cloud):
    np.save(tmp_path / "empty.npy", np.zeros((0, 3)))
    nan = np.random.default_rng(0).random((200, 3))
    nan[3, 1] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    assert main(["register", str(tmp_path / "empty.npy"), cloud]) == 2
    assert f"source {tmp_path / 'empty.npy'}: is empty" in _one_error_line(capsys, "register")
    assert main(["register", cloud, str(tmp_path / "nan.npy")]) == 2
    assert f"target {tmp_path / 'nan.npy'}: contains 1 point(s) with NaN" in _one_error_line(capsys, "register")


def test_outputs_that_cannot_be_written_fail_before_the_work(tmp_path, capsys, cloud, monkeypatch, no_registration):
    (tmp_path / "afile").write_text("")
    for command in (["register", cloud, cloud], ["register-eval", str(tmp_path), str(tmp_path)]):
        assert main([*command, "--out", str(tmp_path / "afile" / "x.txt")]) == 2
        assert f"afile/x.txt: {tmp_path / 'afile'} is a file, expected a folder" in _one_error_line(capsys, command[0])
    (tmp_path / "ro").mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p).endswith("ro") else real_access(p, mode))
    assert main(["register", cloud, cloud, "--show", str(tmp_path / "ro" / "a.png")]) == 2
    assert "--show" in (line := _one_error_line(capsys, "register")) and "permission denied" in line


def test_an_output_file_named_with_a_trailing_slash_is_refused(tmp_path, capsys, cloud, no_registration):
    # `--out newdir/` wrote a file named "newdir" and printed "pose written to newdir/"
    for command, option in ((["register", cloud, cloud], "--out"), (["register", cloud, cloud], "--show"),
                            (["register-eval", str(tmp_path), str(tmp_path)], "--out")):
        assert main([*command, option, str(tmp_path / "newdir") + "/"]) == 2
        assert f"{option} {tmp_path / 'newdir'}/: ends with '/', a folder; expected a file name" in _one_error_line(
            capsys, command[0])
    assert not (tmp_path / "newdir").exists()


def test_atomic_write_errors_name_the_target_not_the_temporary_file(tmp_path, monkeypatch):
    from geomdl.utils.io import atomic_write_text

    (tmp_path / "afile").write_text("")
    with pytest.raises(NotADirectoryError) as info:
        atomic_write_text(tmp_path / "afile" / "x.json", "{}")
    assert info.value.filename == str(tmp_path / "afile" / "x.json")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".x.json.abc.part"))

    monkeypatch.setattr("tempfile.mkstemp", denied)
    with pytest.raises(PermissionError) as info:
        atomic_write_text(tmp_path / "x.json", "{}")
    assert info.value.filename == str(tmp_path / "x.json")


def test_register_eval_names_a_wrong_folder_and_an_empty_gt_log(tmp_path, capsys):
    (tmp_path / "gt.log").write_text("")
    for args, expected in (([str(tmp_path / "gt.log"), str(tmp_path)], "benchmark folder"),
                           ([str(tmp_path), str(tmp_path / "none")], "fragments folder"),
                           ([str(tmp_path), str(tmp_path)], "gt.log: no pair records")):
        assert main(["register-eval", *args]) == 2
        assert expected in _one_error_line(capsys, "register-eval")


SETTINGS = {
    "data": {"name": "toy_shapes", "kwargs": {"num_samples": 8, "num_points": 8}},
    "model": {"name": "tiny_pointnet", "kwargs": {"hidden_channels": 8}},
    "train": {"epochs": 1, "batch_size": 8, "progress": "off", "tensorboard": False, "plots": "off"},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished run whose config has a data.root (an empty folder): (config, run folder)."""
    tmp = tmp_path_factory.mktemp("run")
    (tmp / "data").mkdir()
    cfg = tmp / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({**SETTINGS, "data": {**SETTINGS["data"], "root": str(tmp / "data")}}))
    assert main(["train", str(cfg), "--out", str(tmp / "run"), "--quiet"]) == 0
    return cfg, tmp / "run"


def test_checkpoint_that_is_text_or_unreadable(run, tmp_path, capsys, monkeypatch):
    cfg, _ = run
    assert main(["eval", str(cfg)]) == 2
    assert "a text file, not a PyTorch checkpoint: it starts with 'data:'" in _one_error_line(capsys, "eval")

    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(torch, "load", denied)
    assert main(["eval", str(run[1] / "last.pt")]) == 2
    line = _one_error_line(capsys, "eval")
    assert "cannot be read (Permission denied)" in line and "corrupt" not in line


def test_train_out_that_is_a_file(run, tmp_path, capsys):
    cfg, _ = run
    (tmp_path / "afile").write_text("")
    for out in (tmp_path / "afile", tmp_path / "afile" / "sub"):
        assert main(["train", str(cfg), "--out", str(out), "--quiet"]) == 2
        assert f"train.out_dir: {str(tmp_path / 'afile')!r} is a file" in _one_error_line(capsys, "train")


def test_eval_of_a_run_whose_data_folder_moved_suggests_data(run, tmp_path, capsys):
    cfg, folder = run
    data = folder.parent / "data"
    data.rename(folder.parent / "moved")
    try:
        assert main(["eval", str(folder / "last.pt"), "--no-plots", "--out", str(tmp_path / "ev")]) == 2
        line = _one_error_line(capsys, "eval")
        assert str(data) in line and "--data PATH" in line
        assert main(["eval", str(folder / "last.pt"), "--no-plots", "--out", str(tmp_path / "ev"),
                     "--data", str(folder.parent / "moved")]) == 0
        capsys.readouterr()
    finally:
        (folder.parent / "moved").rename(data)


def test_eval_unknown_split_names_the_option(run, capsys):
    assert main(["eval", str(run[1] / "last.pt"), "--split", "validation"]) == 2
    # the dataset decides which splits exist (molecular data also has "all"): its message, naming the split
    assert "split 'validation': split must be one of ['train', 'val', 'test']" in _one_error_line(capsys, "eval")


def test_eval_split_is_repeatable(run, tmp_path, capsys):
    # was: the last --split only (argparse's store), so "--split val --split test" evaluated test alone
    assert main(["eval", str(run[1] / "last.pt"), "--no-plots", "--out", str(tmp_path / "ev"),
                 "--split", "val", "--split", "test", "val"]) == 0
    printed = [line.split(":")[0] for line in capsys.readouterr().out.splitlines() if line.startswith(("val:", "test:"))]
    assert printed == ["val", "test"]


def test_datasets_root_that_is_a_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    for extra in ([], ["--download", "modelnet40"]):
        assert main(["datasets", "--root", str(tmp_path / "afile"), *extra]) == 2
        assert "afile: is a file, expected the data folder" in _one_error_line(capsys, "datasets")


@pytest.mark.parametrize("text, expected", [
    ("", "the config is empty"),
    ("# a comment only\n", "the config is empty"),
    ("train:\n  epochs: 2\ntrain:\n  epochs: 3\n", "invalid YAML at line 3, column 1: duplicate key 'train'"),
    ("optim: {lr: 0.1, lr: 0.2}\n", "duplicate key 'lr'"),
])
def test_train_refuses_an_empty_config_and_repeated_keys(tmp_path, capsys, text, expected):
    # an empty file trained the defaults (exit 0) and a repeated key silently kept the last value
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(text)
    assert main(["train", str(cfg), "--out", str(tmp_path / "run")]) == 2
    line = _one_error_line(capsys, "train")
    assert str(cfg) in line and expected in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", [["train", "toy_classification"], ["demo", "--only", "ops"]])
def test_an_empty_out_is_refused(tmp_path, capsys, monkeypatch, command):
    # --out "" trained into train.out_dir's default / wrote the demo into the working folder
    monkeypatch.chdir(tmp_path)
    assert main([*command, "--out", ""]) == 2
    assert "--out: empty path" in _one_error_line(capsys, command[0])
    assert list(tmp_path.iterdir()) == []


def test_eval_of_a_binary_file_that_is_no_checkpoint_says_what_it_is(tmp_path, capsys):
    # a .npy gave torch's "Unsupported operand 100", other binary files a similar unpickling message
    np.save(tmp_path / "arr.npy", np.zeros(3))
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02\x03 not a checkpoint")
    assert main(["eval", str(tmp_path / "arr.npy")]) == 2
    assert "(a NumPy .npy file, not a PyTorch checkpoint)" in _one_error_line(capsys, "eval")
    assert main(["eval", str(tmp_path / "blob.bin")]) == 2
    assert "not a PyTorch checkpoint: it starts with the bytes b'\\x00\\x01\\x02\\x03'" in _one_error_line(capsys, "eval")


def test_yaml_merge_keys_still_load(tmp_path):
    # the repeated-key check built the `<<` merge key itself, which SafeLoader has no constructor for
    from geomdl.pipelines.config import load_config

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("optim: {<<: [{name: adamw}, {lr: 1.0e-3}], weight_decay: 0.0}\ntrain: {epochs: 2}\n")
    loaded = load_config(cfg)
    assert (loaded.optim.name, loaded.optim.lr, loaded.optim.weight_decay, loaded.train.epochs) == ("adamw", 1e-3, 0.0, 2)


def test_a_utf8_text_file_given_as_checkpoint_is_named_text_even_if_cut_mid_character(tmp_path, capsys):
    path = tmp_path / "notes.pt"
    path.write_text("# comment: " + "é" * 200, encoding="utf-8")  # byte 256 falls inside an "é"
    assert main(["eval", str(path)]) == 2
    assert "a text file, not a PyTorch checkpoint: it starts with '# comment: é" in _one_error_line(capsys, "eval")


def test_a_tilde_in_path_options_is_the_home_folder(run, tmp_path, monkeypatch, capsys):
    # the shell leaves "~" after "=" alone: "--out=~/x" wrote a literal "~" folder in the working directory
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    cfg, folder = run
    assert main(["train", str(cfg), "--out=~/fresh", "--quiet"]) == 0
    assert (home / "fresh" / "last.pt").is_file()
    assert main(["eval", str(folder / "last.pt"), "--no-plots", "--split", "val", "--out=~/ev"]) == 0
    assert (home / "ev" / "val_metrics.json").is_file()
    assert not (work / "~").exists()
    capsys.readouterr()
