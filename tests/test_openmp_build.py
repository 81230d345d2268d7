"""Building the extension without OpenMP (setup.py's probe, kernels/common/parallel.h) and reporting it.

setup.py probes the C++ compiler with a tiny OpenMP program and builds ``geomdl._C`` without ``-fopenmp``
when the compiler rejects it (Apple clang) or ``GEOMDL_NO_OPENMP=1`` is set; the kernels then include
kernels/common/parallel.h's serial stand-ins for the OpenMP functions. Whether the kernels give the same
results serially is checked by the ops tests run against such a build
(``GEOMDL_NO_OPENMP=1 python setup.py build_ext --inplace`` in a copy of the repository).
"""
from __future__ import annotations

import ast
import os
import pathlib
import shutil
import stat
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup_py():
    """setup.py's module-level imports, constants and functions, without running ``setup()``."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    keep = [node for node in tree.body
            if isinstance(node, ast.Import)
            or (isinstance(node, ast.FunctionDef))
            or (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant))]
    namespace = {"__file__": str(ROOT / "setup.py")}
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(ROOT / "setup.py"), "exec"), namespace)
    return namespace


def _fake_compiler(tmp_path, body: str) -> str:
    path = tmp_path / "fake-c++"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


# Like Apple clang: builds anything (writes the -o file) but rejects -fopenmp.
NO_OPENMP = """for a in "$@"; do [ "$a" = -fopenmp ] && { echo "clang: error: unsupported option '-fopenmp'" >&2; exit 1; }; done
while [ $# -gt 0 ]; do [ "$1" = -o ] && : > "$2"; shift; done
exit 0
"""


@pytest.mark.skipif(sys.platform == "win32", reason="shell-script compilers")
def test_probe_rejects_a_compiler_without_openmp(setup_py, tmp_path):
    assert setup_py["_accepts_openmp"](_fake_compiler(tmp_path, NO_OPENMP)) is False


@pytest.mark.skipif(sys.platform == "win32", reason="shell-script compilers")
def test_probe_cannot_tell_without_a_working_compiler(setup_py, tmp_path):
    """No compiler, or one that fails on everything: not an OpenMP question (None: the build keeps -fopenmp
    and reports its own failure), and the probe never raises."""
    assert setup_py["_accepts_openmp"](str(tmp_path / "missing-c++")) is None
    assert setup_py["_accepts_openmp"](_fake_compiler(tmp_path, "exit 1\n")) is None
    assert setup_py["_accepts_openmp"](_fake_compiler(tmp_path, "sleep 5\n"), timeout=0.5) is None


def _gnu_compiler():
    gxx = shutil.which("g++")
    if gxx is None:
        return None
    try:
        version = subprocess.run([gxx, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return gxx if "Free Software Foundation" in version else None  # macOS's g++ is Apple clang


def test_probe_accepts_gcc(setup_py):
    gxx = _gnu_compiler()
    if gxx is None:
        pytest.skip("no GNU g++ here")
    assert setup_py["_accepts_openmp"](gxx) is True


@pytest.mark.skipif(sys.platform == "win32", reason="shell-script compilers")
def test_serial_build_is_chosen_and_explained(setup_py, tmp_path, monkeypatch):
    reason = setup_py["_openmp_disabled_reason"]
    monkeypatch.setenv("CXX", _fake_compiler(tmp_path, NO_OPENMP))
    monkeypatch.delenv("GEOMDL_NO_OPENMP", raising=False)
    assert "does not support OpenMP" in reason()
    monkeypatch.setenv("GEOMDL_NO_OPENMP", "1")
    assert "GEOMDL_NO_OPENMP=1" in reason()
    gxx = _gnu_compiler()
    if gxx is not None:
        monkeypatch.setenv("CXX", gxx)
        monkeypatch.setenv("GEOMDL_NO_OPENMP", "0")
        assert reason() is None


def test_strip_openmp_removes_the_flag_from_compile_and_link(setup_py):
    class Ext:
        extra_compile_args = {"cxx": ["-O3", "-fopenmp", "-DX"], "nvcc": ["-O3"]}
        extra_link_args = ["-fopenmp", "-lm"]

    ext = Ext()
    setup_py["_strip_openmp"](ext)
    assert ext.extra_compile_args == {"cxx": ["-O3", "-Wno-unknown-pragmas", "-DX"], "nvcc": ["-O3"]}
    assert ext.extra_link_args == ["-lm"]


# Uses the stand-ins the way the kernels do (unqualified, inside namespace geomdl), after an <omp.h> that
# some other header may have included (GCC ships it even without -fopenmp): no clash either way.
HEADER_USE = """
%s
#include "common/parallel.h"
namespace geomdl {
int team() {
  int n = 0;
#pragma omp parallel
  {
    n += omp_get_num_threads() * 0 + omp_get_thread_num() + omp_get_max_threads();
  }
  return n;
}
static_assert(kOpenMP == %s, "kOpenMP follows _OPENMP");
}  // namespace geomdl
"""


@pytest.mark.parametrize("openmp", [False, True], ids=["serial", "openmp"])
@pytest.mark.parametrize("omp_h_first", [False, True], ids=["plain", "omp.h-first"])
def test_parallel_header_compiles(tmp_path, openmp, omp_h_first):
    gxx = shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++")
    if gxx is None:
        pytest.skip("no C++ compiler")
    flags = ["-fopenmp"] if openmp else ["-Wno-unknown-pragmas"]  # as setup.py builds the kernels
    if openmp or omp_h_first:
        probe = tmp_path / "omp.cpp"
        probe.write_text("#include <omp.h>\n")
        if subprocess.run([gxx, "-fsyntax-only", *flags, str(probe)], capture_output=True, timeout=120).returncode != 0:
            pytest.skip(f"{gxx} has no OpenMP")
    src = tmp_path / "use.cpp"
    src.write_text(HEADER_USE % ("#include <omp.h>" if omp_h_first else "", "true" if openmp else "false"))
    cmd = [gxx, "-std=c++17", "-fsyntax-only", "-Wall", "-Werror", *flags, "-I", str(ROOT / "kernels"), str(src)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_info_reports_whether_the_kernels_are_multithreaded(monkeypatch):
    from geomdl import ops
    from geomdl.cli import info

    if not ops.extension_loaded():
        assert info.collect()["openmp"].startswith("n/a")
        return
    import geomdl._C as C

    if not hasattr(C, "openmp"):
        pytest.skip("geomdl._C was built before it reported OpenMP (rebuild it)")
    assert info.collect()["openmp"].startswith("yes" if C.openmp else "no")
    monkeypatch.setattr(C, "openmp", 0)
    assert "single-threaded" in info.collect()["openmp"]
    monkeypatch.setattr(C, "openmp", 1)
    assert info.collect()["openmp"].startswith("yes")


def test_no_cuda_builds_the_cpu_kernels_alone(setup_py, monkeypatch):
    """``GEOMDL_NO_CUDA=1``: a CPU extension even where the CUDA one would be built (torch refuses an nvcc of
    another CUDA major version than its own, and the failed CUDA build dropped the CPU kernels with it)."""
    from torch.utils.cpp_extension import CUDA_HOME

    monkeypatch.chdir(ROOT)
    monkeypatch.setitem(setup_py, "ROOT", str(ROOT))  # (a computed module constant: not in the fixture)
    monkeypatch.setenv("GEOMDL_FORCE_CUDA", "1")
    monkeypatch.delenv("GEOMDL_NO_EXT", raising=False)
    if CUDA_HOME is not None:  # CUDAExtension needs a CUDA toolkit to describe the build
        monkeypatch.delenv("GEOMDL_NO_CUDA", raising=False)
        (ext,), _ = setup_py["_extension_config"]()
        assert any(src.endswith(".cu") for src in ext.sources)
    monkeypatch.setenv("GEOMDL_NO_CUDA", "1")
    (ext,), _ = setup_py["_extension_config"]()
    assert ext.sources and not any(src.endswith(".cu") for src in ext.sources)
    assert ("WITH_CUDA", None) not in ext.define_macros
