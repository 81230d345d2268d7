"""Build the CPU emulation of the CUDA kernels: every ``kernels/**/*_cuda.cu``, rewritten by convert.py and
compiled against emu.h, as one op library (``torch.ops.geomdl_emu.*``).

With ninja available the library is built by ``torch.utils.cpp_extension.load`` (one translation unit per
.cu file, compiled in parallel); without ninja (a plain ``pip install -e .[test]`` does not install it) the
same translation units are compiled directly with the C++ compiler, in parallel, and cached by a hash of
everything they include. The build directory is ``$GEOMDL_EMU_BUILD_DIR`` or
``${XDG_CACHE_HOME:-~/.cache}/geomdl/cuda_emulation``; ``$GEOMDL_EMU_KERNELS`` replaces the ``kernels/`` directory
(e.g. by a copy with a deliberate bug, to see that the tests catch it).

Standalone: ``python tests/cuda_emulation/build.py [-v]`` builds (or reuses) the library and prints its ops.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# GEOMDL_EMU_KERNELS: another kernels/ tree (e.g. a mutated copy, to check that the tests catch a bug).
KERNELS = Path(os.environ.get("GEOMDL_EMU_KERNELS") or ROOT / "kernels").resolve()
NAME = "geomdl_cuda_emu"
# -ffp-contract=off: no FMA contraction (each a*b+c rounded twice, like the CPU kernels and references;
# nvcc contracts by default, hence tolerances for float results). -fno-strict-aliasing: the kernels
# reinterpret memory (float4 loads, int offsets stored in float slots) as CUDA allows.
CFLAGS = ["-O1", "-ffp-contract=off", "-fno-strict-aliasing", "-Wno-unknown-pragmas", "-pthread", "-g0"]
LDFLAGS = ["-pthread"]


def cuda_sources() -> list[Path]:
    """The CUDA kernels of the project, then the emulator's runtime ops and self-test kernels."""
    return sorted(KERNELS.glob("**/*_cuda.cu")) + [HERE / "emu_runtime.cu"]


def build_dir() -> Path:
    env = os.environ.get("GEOMDL_EMU_BUILD_DIR")
    if env:
        return Path(env)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "geomdl" / "cuda_emulation"


def compiler() -> str | None:
    """The C++ compiler torch would use (``$CXX`` or ``c++``), or None when there is none."""
    return shutil.which(os.environ.get("CXX", "c++"))


def _load_convert():
    spec = importlib.util.spec_from_file_location("geomdl_cuda_emulation_convert", HERE / "convert.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _write_if_changed(path: Path, text: str) -> None:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return  # keep the mtime: no rebuild
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def generate(out_dir: Path) -> list[Path]:
    """Converted translation units (one per .cu), in out_dir/gen; the kernel headers (``kernels/**/*.cuh``,
    which hold device code shared by several .cu files) converted too, at the same paths under out_dir/gen
    (first on the include path, so ``#include "scatter/segment_run.cuh"`` finds the converted header)."""
    convert = _load_convert()
    gen = out_dir / "gen"
    gen.mkdir(parents=True, exist_ok=True)
    headers = set()
    for cuh in sorted(KERNELS.glob("**/*.cuh")):
        dst = gen / cuh.relative_to(KERNELS)
        dst.parent.mkdir(parents=True, exist_ok=True)
        _write_if_changed(dst, convert.convert(cuh.read_text(encoding="utf-8"), str(cuh)))
        headers.add(dst)
    for stale in set(gen.glob("**/*.cuh")) - headers:  # a removed header must not be found first
        stale.unlink()
    files = []
    for cu in cuda_sources():
        text = convert.convert(cu.read_text(encoding="utf-8"), str(cu))
        dst = gen / f"{cu.stem}_emu.cpp"
        _write_if_changed(dst, text)
        files.append(dst)
    return files


def include_dirs() -> list[str]:
    return [str(HERE / "shim"), str(build_dir() / "gen"), str(HERE), str(KERNELS)]


def _ninja_available() -> bool:
    try:
        from torch.utils.cpp_extension import is_ninja_available

        return is_ninja_available()
    except Exception:
        return False


def _digest(sources: list[Path], flags: list[str]) -> str:
    import torch

    h = hashlib.sha256()
    deps = set(sources)
    for pattern in ("**/*.h", "**/*.cuh", "**/*.hpp"):
        deps.update(KERNELS.glob(pattern))
        deps.update(HERE.glob(pattern))
    for p in sorted(deps):
        h.update(str(p).encode())
        h.update(p.read_bytes())
    h.update(" ".join(flags).encode())
    h.update(torch.__version__.encode())
    h.update(str(compiler()).encode())
    return h.hexdigest()[:16]


def _cxx_std() -> str:
    """The C++ standard flag for torch's headers: C++20 where they require it (torch >= 2.14: ATen.h errors out
    below C++20), else C++17."""
    from torch.utils.cpp_extension import include_paths

    for d in include_paths():
        aten = Path(d) / "ATen" / "ATen.h"
        if aten.is_file():
            return "-std=c++20" if "__cplusplus < 202002L" in aten.read_text(encoding="utf-8", errors="replace") else "-std=c++17"
    return "-std=c++17"


def _build_direct(sources: list[Path], out_dir: Path, verbose: bool) -> Path:
    """Compile and link without ninja (parallel compiler processes); cached by a content hash."""
    import torch
    from torch.utils.cpp_extension import include_paths, library_paths

    cxx = compiler()
    flags = [
        f"-DTORCH_EXTENSION_NAME={NAME}",
        "-DTORCH_API_INCLUDE_EXTENSION_H",
        f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}",
        "-fPIC",
        _cxx_std(),
        *[f"-I{d}" for d in include_dirs()],
        *[f"-isystem{d}" for d in include_paths()],
        *CFLAGS,
    ]
    key = _digest(sources, flags)
    obj_dir = out_dir / f"direct-{key}"
    lib = obj_dir / f"{NAME}.so"
    if lib.exists():
        return lib
    obj_dir.mkdir(parents=True, exist_ok=True)

    def compile_one(src: Path) -> Path:
        obj = obj_dir / f"{src.stem}.o"
        cmd = [cxx, *flags, "-c", str(src), "-o", str(obj)]
        if verbose:
            print(" ".join(cmd), file=sys.stderr)
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"compiling {src} failed:\n{res.stdout}{res.stderr}")
        return obj

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        objs = list(pool.map(compile_one, sources))
    libs = [f"-L{d}" for d in library_paths()] + ["-lc10", "-ltorch_cpu", "-ltorch"]
    tmp = obj_dir / f".{NAME}.{os.getpid()}.so"
    cmd = [cxx, *map(str, objs), "-shared", *LDFLAGS, *libs, "-o", str(tmp)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"linking the emulated kernels failed:\n{res.stdout}{res.stderr}")
    os.replace(tmp, lib)
    return lib


def build(verbose: bool = False) -> float:
    """Build (or reuse) the emulator library and load it into torch.ops.geomdl_emu; returns the seconds spent.

    Raises on any failure (conversion, compilation, loading)."""
    import torch

    t0 = time.time()
    out_dir = build_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock  # a dependency of torch

    with FileLock(str(out_dir / "build.lock")):
        sources = generate(out_dir)
        if _ninja_available():
            from torch.utils.cpp_extension import load

            ninja_dir = out_dir / "ninja"
            ninja_dir.mkdir(exist_ok=True)
            # torch's own build lock, a plain file that `load` creates and removes: a process killed while
            # building leaves it behind and every later `load` would wait on it forever. The FileLock held
            # here already serialises the builds, so a `lock` file found now is such a leftover.
            (ninja_dir / "lock").unlink(missing_ok=True)
            load(
                name=NAME,
                sources=[str(s) for s in sources],
                extra_include_paths=include_dirs(),
                extra_cflags=CFLAGS,
                extra_ldflags=LDFLAGS,
                build_directory=str(ninja_dir),
                is_python_module=False,
                verbose=verbose,
            )
        else:
            torch.ops.load_library(str(_build_direct(sources, out_dir, verbose)))
    return time.time() - t0


if __name__ == "__main__":
    seconds = build(verbose="-v" in sys.argv)
    import torch

    print(f"built and loaded in {seconds:.1f} s from {build_dir()}")
    print("ops:", sorted(n for n in dir(torch.ops.geomdl_emu) if not n.startswith("_")))
