"""User mistakes on the command line: one error line, exit code 2, no traceback, no wasted work."""
import numpy as np
import pytest

from geomdl.cli import CommandError, main
from geomdl.cli._common import user_errors


def _err(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_datasets_reports_an_explicit_manifest_that_is_missing_or_malformed(tmp_path, capsys):
    assert main(["datasets", "--manifest", str(tmp_path / "nope")]) == 2
    assert "manifest not found" in _err(capsys)
    (tmp_path / "bad").write_text("only two fields\n")
    assert main(["datasets", "--manifest", str(tmp_path / "bad")]) == 2
    assert "bad:1: expected 5 fields" in _err(capsys)
    assert main(["datasets", "--manifest", str(tmp_path)]) == 2
    assert "is a folder" in _err(capsys)


def test_datasets_reports_a_missing_root(tmp_path, capsys):
    assert main(["datasets", "--root", str(tmp_path / "typo")]) == 2
    assert "typo: no such folder" in _err(capsys)
    assert main(["datasets", "--root", str(tmp_path)]) == 0  # an existing (empty) root is listed


def test_datasets_root_expands_the_home_folder(tmp_path, capsys, monkeypatch):
    # --root=~/data (no shell expansion after "=") was "no such folder", while root="~/data" of the datasets works
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "data").mkdir()
    assert main(["datasets", "--root=~/data"]) == 0
    assert f"data root: {tmp_path / 'data'}" in capsys.readouterr().out


@pytest.fixture
def no_registration(monkeypatch):
    """Registration must not start when an option is already known to be wrong."""
    import geomdl.pipelines.registration as reg

    def fail(*args, **kwargs):
        raise AssertionError("register() ran although the arguments were invalid")

    monkeypatch.setattr(reg, "register", fail)


def test_register_checks_gt_and_out_before_registering(tmp_path, capsys, no_registration):
    np.save(tmp_path / "a.npy", np.random.default_rng(0).random((50, 3)))
    src = str(tmp_path / "a.npy")
    (tmp_path / "gt.txt").write_text("1 0 0\n0 1 0\n")
    assert main(["register", src, src, "--gt", str(tmp_path / "gt.txt")]) == 2
    assert "expected a 4x4 numeric pose, got shape (2, 3)" in _err(capsys)
    (tmp_path / "empty.npy").write_bytes(b"")
    assert main(["register", src, src, "--gt", str(tmp_path / "empty.npy")]) == 2
    assert "empty.npy: cannot read a 4x4 pose" in _err(capsys)
    np.savetxt(tmp_path / "nan.txt", np.full((4, 4), np.nan))
    assert main(["register", src, src, "--gt", str(tmp_path / "nan.txt")]) == 2
    assert "NaN" in _err(capsys)
    assert main(["register", src, src, "--out", str(tmp_path)]) == 2
    assert "is a folder, expected a file name" in _err(capsys)


def test_register_gt_reads_back_a_pose_written_to_an_upper_case_npy_name(tmp_path, capsys, no_registration):
    # --out pose.NPY writes a NumPy file (write_pose ignores the case); --gt pose.NPY read it as text:
    # "cannot read a 4x4 pose (UnicodeDecodeError ...)"
    import torch

    from geomdl.pipelines.registration import write_pose

    write_pose(tmp_path / "pose.NPY", torch.eye(4, dtype=torch.float64))
    np.save(tmp_path / "a.npy", np.random.default_rng(0).random((50, 3)))
    src = str(tmp_path / "a.npy")
    with pytest.raises(AssertionError, match="register\\(\\) ran"):  # the pose was read: registration starts
        main(["register", src, src, "--gt", str(tmp_path / "pose.NPY")])
    assert "cannot read" not in _err(capsys)


@pytest.mark.parametrize("command", [["train", "toy_classification", "--out", "NAME"],
                                     ["demo", "--only", "ops", "--out", "NAME"],
                                     ["datasets", "--root", "NAME"], ["register", "NAME", "b.npy"]])
def test_an_os_error_the_command_did_not_foresee_is_one_line_not_a_traceback(tmp_path, capsys, monkeypatch, command):
    # a file name too long for the file system (or a read-only or full disk) raised a bare OSError: a traceback
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GEOMDL_DEBUG", raising=False)
    name = "a" * 300
    assert main([name if a == "NAME" else a for a in command]) == 2
    err = _err(capsys).strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"geomdl {command[0]}: error: ")
    assert err[0].endswith(f"{name}: File name too long")


def test_register_names_a_cloud_that_is_a_folder(tmp_path, capsys, no_registration):
    # a folder given as SOURCE was reported as "point cloud file not found: <folder>"
    np.save(tmp_path / "a.npy", np.random.default_rng(0).random((50, 3)))
    assert main(["register", str(tmp_path), str(tmp_path / "a.npy")]) == 2
    err = _err(capsys)
    assert f"{tmp_path}: is a folder, expected a point cloud file" in err and "not found" not in err


def test_a_missing_optional_dependency_is_one_line_with_its_install_hint(tmp_path, capsys, monkeypatch):
    # `geomdl register --method open3d` without open3d ended in a traceback (ImportError from import_open3d)
    import sys

    monkeypatch.setitem(sys.modules, "open3d", None)  # import open3d -> ImportError
    monkeypatch.delenv("GEOMDL_DEBUG", raising=False)
    np.save(tmp_path / "a.npy", np.random.default_rng(0).random((400, 3)))
    src = str(tmp_path / "a.npy")
    assert main(["register", src, src, "--voxel", "0.05", "--method", "open3d"]) == 2
    err = _err(capsys).strip().splitlines()
    assert err == ["geomdl register: error: open3d is not installed: pip install 'geomdl[data]' (or open3d-cpu)"]


def test_register_eval_rejects_bad_max_pairs_and_voxel(tmp_path, capsys):
    for args, message in ((["--max-pairs", "0"], "--max-pairs must be >= 1, got 0"),
                          (["--max-pairs", "-3"], "--max-pairs must be >= 1, got -3"),
                          (["--voxel", "nan"], "--voxel must be a positive number"),
                          (["--out", str(tmp_path)], "is a folder")):
        assert main(["register-eval", str(tmp_path), str(tmp_path), *args]) == 2
        assert message in _err(capsys)


@pytest.mark.parametrize("exc", [FileExistsError(17, "File exists", "x"), IsADirectoryError(21, "Is a directory", "y")])
def test_user_errors_turns_file_system_mistakes_into_one_line(exc):
    with pytest.raises(CommandError, match="File exists|Is a directory"):
        with user_errors(CommandError):
            raise exc


def test_demo_out_that_is_a_file_is_one_error_line(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    assert main(["demo", "--quick", "--only", "ops", "--out", str(tmp_path / "afile")]) == 2
    assert "afile: is a file, expected a folder" in _err(capsys)


def test_train_resume_and_overwrite_together_are_refused(tmp_path, capsys):
    code = main(["train", "toy_classification", "--out", str(tmp_path / "run"), "--resume", "--overwrite"])
    assert code == 2 and "--resume and --overwrite exclude each other" in _err(capsys)
    assert not (tmp_path / "run").exists()  # refused before any work


def test_train_log_lines_follow_the_current_stderr(monkeypatch):
    # the handler used to keep the stderr of its first call: once that stream was closed (a notebook cell,
    # pytest's capture), every later epoch line was a "--- Logging error ---" traceback
    import io
    import logging

    from geomdl.cli._common import configure_logging

    first, second = io.StringIO(), io.StringIO()
    logger = logging.getLogger("geomdl.train")
    before = list(logger.handlers)
    try:
        monkeypatch.setattr("sys.stderr", first)
        configure_logging()
        first.close()
        monkeypatch.setattr("sys.stderr", second)
        logger.info("epoch 1/1")
        assert second.getvalue() == "epoch 1/1\n"
    finally:
        logger.handlers[:] = before


@pytest.mark.parametrize("out", [True, False])
def test_train_setting_a_whole_section_to_a_scalar_names_the_users_key(tmp_path, capsys, out):
    # `--set train=3` used to be blamed on the implicit `train.out_dir=...` override that --out adds
    args = ["train", "toy_classification", "--set", "train=3"] + (["--out", str(tmp_path / "run")] if out else [])
    assert main(args) == 2
    err = _err(capsys)
    assert "--set train=3: train is a section, not a single value; set one of its fields with --set train.<field>=..." in err
    assert "(fields: epochs, batch_size, out_dir," in err and "train.out_dir=" not in err
    assert not (tmp_path / "run").exists()  # refused before any work


def test_a_closed_output_pipe_stops_quietly(monkeypatch, capsys):
    # `geomdl demo | head` printed "geomdl demo: error: [Errno 32] Broken pipe" and exited 2
    import geomdl.cli.info

    def closed(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(geomdl.cli.info, "run", closed)
    assert main(["info"]) == 141
    assert capsys.readouterr().err == ""
