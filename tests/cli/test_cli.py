import json
import subprocess
import sys

import geomdl
from geomdl.cli import COMMANDS, main


def test_version_and_help(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert geomdl.__version__ in capsys.readouterr().out
    assert main([]) == 0
    assert "COMMAND" in capsys.readouterr().out


def test_info_reports_backend_and_kernels(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "backend" in out and "scatter_reduce" in out and "torch" in out


def test_info_reports_which_cpu_kernel_copies_run(monkeypatch):
    import sys

    from geomdl import ops
    from geomdl.cli.info import collect

    for k in ("GEOMDL_GAUNT_ISA", "GEOMDL_TRILINEAR_ISA", "GEOMDL_SCATTER_ISA", "GEOMDL_FPS_ISA"):
        monkeypatch.delenv(k, raising=False)
    line = collect()["cpu kernels"]
    if not ops.extension_loaded():
        assert line.startswith("n/a")
        return
    avx2 = bool(getattr(sys.modules["geomdl._C"], "avx2"))
    assert line == ("avx2" if avx2 else "baseline (no AVX2+FMA on this CPU, or not an x86 GCC build)")
    monkeypatch.setenv("GEOMDL_SCATTER_ISA", "generic")
    if avx2:
        assert collect()["cpu kernels"].startswith("avx2, except where set: GEOMDL_SCATTER_ISA=generic")


def test_every_command_module_has_the_contract():
    import importlib

    for name, (module, _) in COMMANDS.items():
        mod = importlib.import_module(module)  # every registered command must exist
        assert callable(mod.add_arguments) and callable(mod.run), name


def test_demo_ops_stage_runs_on_built_in_data(tmp_path, capsys):
    assert main(["demo", "--quick", "--only", "ops", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "demo_results.json").read_text())["ops"]
    assert result["edges"] > 0 and result["reference_agrees"]
    assert 0.0 <= result["surface_variation"] < 0.05  # points on a surface: locally planar


def test_demo_rejects_unknown_stage(tmp_path, capsys):
    assert main(["demo", "--only", "nonsense", "--out", str(tmp_path)]) == 2
    assert "unknown stage" in capsys.readouterr().err


def test_console_entry_point_runs_as_module():
    out = subprocess.run([sys.executable, "-m", "geomdl", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"geomdl {geomdl.__version__}"


def test_train_takes_a_bundled_config_by_name(tmp_path, monkeypatch, capsys):
    from geomdl import configs

    monkeypatch.chdir(tmp_path)  # no checkout in sight
    monkeypatch.setenv("COLUMNS", "2000")  # argparse: no line wrapping
    try:
        main(["train", "--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in configs.names())
    args = ["train", "toy_regression", "--set", "train.epochs=1", "--set", "train.progress=off",
            "--set", "train.tensorboard=false", "--set", "train.plots=false", "--out", "run", "--quiet"]
    assert main(args) == 0
    assert "run folder: run" in capsys.readouterr().out and (tmp_path / "run" / "last.pt").is_file()
