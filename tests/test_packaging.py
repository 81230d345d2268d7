"""geomdl works from a built package, not only from its checkout.

A source distribution is built from a copy of the project's files, a wheel from that sdist, and the wheel
is unpacked into a folder that is imported from a working folder outside any checkout. What the demo and
the CLI need at run time must be inside: the bundled configs, the dataset manifest, the registration
descriptor's weights. The compiled extension is left out (``GEOMDL_NO_EXT=1``) to keep this to seconds;
its build is tested by the install itself.
"""
from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROJECT_FILES = ("setup.py", "pyproject.toml", "README.md", "MANIFEST.in", "datasets/manifest")

pytestmark = pytest.mark.skipif(importlib.util.find_spec("setuptools") is None,
                                reason="building a package needs setuptools (installed by the README's test command)")


def _run(cmd, cwd, env=None):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``(sdist, wheel)`` built from a copy of the project (no build/, no caches, no compiled files)."""
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"
    for name in PROJECT_FILES:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    skip = shutil.ignore_patterns("__pycache__", "*.so", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "geomdl", src / "geomdl", ignore=skip)
    shutil.copytree(ROOT / "kernels", src / "kernels", ignore=skip)
    (src / "geomdl" / "datasets" / "manifest").unlink(missing_ok=True)  # only a build writes it here
    env = {**os.environ, "GEOMDL_NO_EXT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    _run([sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp / "dist")], cwd=src, env=env)
    (sdist,) = (tmp / "dist").glob("geomdl-*.tar.gz")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps", "-w", str(tmp / "dist"),
          str(sdist)], cwd=tmp, env=env)
    (wheel,) = (tmp / "dist").glob("geomdl-*.whl")
    return sdist, wheel


def test_sdist_holds_sources_and_data(built):
    sdist, _ = built
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    needed = {"setup.py", "pyproject.toml", "datasets/manifest", "geomdl/configs/tinvnn_shapes.yaml",
              "geomdl/pipelines/registration/weights/descriptor.pt"}
    needed |= {str(p.relative_to(ROOT)) for p in (ROOT / "kernels").rglob("*") if p.suffix in {".cpp", ".h", ".cu", ".cuh"}}
    assert needed <= names, sorted(needed - names)


def test_wheel_holds_runtime_data(built):
    _, wheel = built
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert zf.read("geomdl/datasets/manifest") == (ROOT / "datasets" / "manifest").read_bytes()
    configs = {f"geomdl/configs/{p.name}" for p in (ROOT / "geomdl" / "configs").glob("*.yaml")}
    assert configs and configs <= names
    assert "geomdl/pipelines/registration/weights/descriptor.pt" in names
    assert not any(n.startswith(("tests/", "benchmarks/", "kernels/")) for n in names)


def test_installed_wheel_runs_outside_a_checkout(built, tmp_path):
    _, wheel = built
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    work = tmp_path / "work"
    work.mkdir()
    script = """
import json, geomdl
from geomdl import configs
from geomdl.datasets import download
from geomdl.pipelines.config import load_config
from geomdl.pipelines.registration import learned
cfg = load_config("tinvnn_shapes", ["train.epochs=1"])
entries = download.read_manifest()
print(json.dumps({"geomdl": geomdl.__file__, "configs": configs.names(), "task": cfg.task.name,
                  "manifest": str(download.default_manifest()), "entries": len(entries),
                  "weights": learned.WEIGHTS.is_file()}))
"""
    env = {k: v for k, v in os.environ.items() if k not in {"GEOMDL_DATA", "PYTHONPATH"}}
    env.update(PYTHONPATH=str(site), GEOMDL_NO_EXT="1", PYTHONWARNINGS="ignore")
    out = json.loads(_run([sys.executable, "-c", script], cwd=work, env=env).stdout.strip().splitlines()[-1])
    assert pathlib.Path(out["geomdl"]).is_relative_to(site)
    assert "tinvnn_shapes" in out["configs"] and out["task"] == "rotated_classification"
    assert pathlib.Path(out["manifest"]) == site / "geomdl" / "datasets" / "manifest"
    assert out["entries"] > 0 and out["weights"]
