"""An empty path option is refused by every command (as train and demo do), and the one-line help of
each command in ``geomdl --help`` is the command's own."""
import importlib

import pytest

from geomdl.cli import COMMANDS, build_parser, main


def _one_error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"geomdl {command}: error: ")
    return err[0]


@pytest.mark.parametrize("option", ["--out", "--show", "--gt"])
def test_register_refuses_an_empty_path(tmp_path, capsys, monkeypatch, option):
    # --out "" (e.g. an unset shell variable) was skipped: the pose was registered, printed and never written
    import geomdl.pipelines.registration as reg

    monkeypatch.setattr(reg, "register", lambda *a, **k: pytest.fail("registered although an option was empty"))
    monkeypatch.chdir(tmp_path)
    assert main(["register", "a.ply", "b.ply", option, ""]) == 2
    assert f"{option}: empty path" in _one_error_line(capsys, "register")
    assert list(tmp_path.iterdir()) == []


def test_register_eval_refuses_an_empty_out(tmp_path, capsys):
    assert main(["register-eval", str(tmp_path), str(tmp_path), "--out", ""]) == 2
    assert "--out: empty path" in _one_error_line(capsys, "register-eval")


def test_eval_refuses_an_empty_out(tmp_path, capsys, monkeypatch):
    # --out "" evaluated into the default folder <checkpoint folder>/eval/<stem>
    import geomdl.pipelines.runs as runs

    monkeypatch.setattr(runs, "evaluate_checkpoint", lambda *a, **k: pytest.fail("evaluated although --out was empty"))
    assert main(["eval", str(tmp_path / "last.pt"), "--out", " "]) == 2
    assert "--out: empty path" in _one_error_line(capsys, "eval")


@pytest.mark.parametrize("option", ["--root", "--manifest"])
def test_datasets_refuses_an_empty_path(tmp_path, capsys, monkeypatch, option):
    # --root "" listed (and --download fetched into) the default data root; --manifest "" said "manifest . is a folder"
    monkeypatch.setenv("GEOMDL_DATA", str(tmp_path))
    for extra in ([], ["--download", "modelnet40"]):
        assert main(["datasets", option, "", *extra]) == 2
        assert f"{option}: empty path" in _one_error_line(capsys, "datasets")
    assert list(tmp_path.iterdir()) == []


def test_eval_refuses_an_empty_data(tmp_path, capsys, monkeypatch):
    # --data "" reached the run as data.root '' and was reported as "data.root: path '' does not exist"
    import geomdl.pipelines.runs as runs

    monkeypatch.setattr(runs, "evaluate_checkpoint", lambda *a, **k: pytest.fail("evaluated although --data was empty"))
    assert main(["eval", str(tmp_path / "last.pt"), "--data", ""]) == 2
    assert "--data: empty path" in _one_error_line(capsys, "eval")


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_command_list_shows_each_commands_own_help(name):
    module, help_ = COMMANDS[name]
    assert help_ == importlib.import_module(module).HELP
    if name == "register":
        assert "[--method geomdl]" in help_
        assert "--method" in build_parser().format_help()  # was in `geomdl register --help` only
