"""Build script: declares only the optional compiled extension ``geomdl._C``.

The extension is built from ``kernels/`` with ``torch.utils.cpp_extension``.  It is
optional: with ``GEOMDL_NO_EXT=1``, without a C++ compiler, or when the build fails
for any reason, the install still succeeds and geomdl runs on its pure-PyTorch
reference implementations (``geomdl info`` says which backend is active).

CUDA sources (``kernels/**/*.cu``) are compiled only when torch was built with CUDA
and ``nvcc`` is available (or ``GEOMDL_FORCE_CUDA=1``; ``GEOMDL_NO_CUDA=1`` builds the CPU kernels alone, e.g. where
the local ``nvcc`` is of another CUDA major version than torch's, which torch refuses); ``TORCH_CUDA_ARCH_LIST`` picks the
GPU architectures (default: those of the visible GPUs). ``GEOMDL_STRICT_BUILD=1`` makes a
failing extension build fail the install (used on GPU machines, where a silent fallback
would hide a broken CUDA build).

The CPU kernels are multi-threaded with OpenMP. Before building, the C++ compiler that
``torch.utils.cpp_extension`` uses (``$CXX``, default ``c++``) is probed with a tiny OpenMP
program; a compiler without OpenMP (e.g. Apple clang: ``unsupported option '-fopenmp'``) builds
the extension without ``-fopenmp``, with a warning: the kernels then run single-threaded.
``GEOMDL_NO_OPENMP=1`` forces that serial build. ``geomdl info`` says which one is installed.

The dataset manifest ``datasets/manifest`` (sources and sha256 of the downloadable files) is copied into
built packages as ``geomdl/datasets/manifest``, so ``geomdl datasets --download`` works from a wheel;
a checkout reads the original.

Install without build isolation so that the extension is compiled against the torch
that will import it::

    pip install torch==2.13.0 && pip install --no-build-isolation -e .
"""
import glob
import os
import shlex
import subprocess
import sys
import tempfile

from setuptools import setup
from setuptools.command.build_py import build_py


ROOT = os.path.dirname(os.path.abspath(__file__))


def _warn(msg):
    sys.stderr.write(f"\n[geomdl] WARNING: {msg}\n[geomdl] geomdl will run on its pure-PyTorch reference ops.\n\n")


_OPENMP_FLAG = "-fopenmp"
_OPENMP_PROBE = r"""
#include <omp.h>
int main() {
  int n = 0;
#pragma omp parallel reduction(+ : n)
  n += omp_get_thread_num() >= 0;
  return n > 0 ? 0 : 1;
}
"""


def _accepts_openmp(compiler, timeout=30):
    """Whether the C++ compiler ``compiler`` (a command line: ``"g++"``, ``"ccache c++"``) compiles and
    links a tiny OpenMP program with ``-fopenmp``: True or False; None when the probe cannot tell (no such
    compiler, a compiler that fails without ``-fopenmp`` too, a timeout). Never raises."""
    try:
        with tempfile.TemporaryDirectory(prefix="geomdl-openmp-") as tmp:
            src = os.path.join(tmp, "probe.cpp")
            with open(src, "w") as f:
                f.write(_OPENMP_PROBE)

            def compiles(flags, source):
                cmd = shlex.split(compiler) + flags + [source, "-o", os.path.join(tmp, "probe")]
                return subprocess.run(cmd, cwd=tmp, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, timeout=timeout).returncode == 0

            if compiles([_OPENMP_FLAG], src):
                return True
            plain = os.path.join(tmp, "plain.cpp")
            with open(plain, "w") as f:
                f.write("int main() { return 0; }\n")
            return False if compiles([], plain) else None  # a compiler that builds nothing: not an OpenMP question
    except Exception:  # missing compiler (OSError), timeout, unwritable temp dir, ...
        return None


def _cxx_compiler():
    """The C++ compiler torch.utils.cpp_extension compiles with (``$CXX``, default ``c++``)."""
    try:
        from torch.utils.cpp_extension import get_cxx_compiler

        return get_cxx_compiler()
    except Exception:
        return os.environ.get("CXX", "c++")


def _openmp_disabled_reason():
    """None when the extension is built with OpenMP; otherwise why not (GEOMDL_NO_OPENMP=1 or the probe)."""
    if os.environ.get("GEOMDL_NO_OPENMP", "0") == "1":
        return "GEOMDL_NO_OPENMP=1 is set"
    compiler = _cxx_compiler()
    if _accepts_openmp(compiler) is False:
        return f"the C++ compiler `{compiler}` does not support OpenMP ({_OPENMP_FLAG})"
    return None


def _strip_openmp(ext):
    """Remove -fopenmp from the compile and link arguments of ``ext`` (in place); the C++ compiler gets
    -Wno-unknown-pragmas instead (GCC would warn about every ignored ``#pragma omp``)."""
    def strip(args):
        return [a if a != _OPENMP_FLAG else "-Wno-unknown-pragmas" for a in args]

    args = ext.extra_compile_args
    ext.extra_compile_args = {k: strip(v) if k == "cxx" else v for k, v in args.items()} if isinstance(args, dict) else strip(args)
    ext.extra_link_args = [a for a in ext.extra_link_args if a != _OPENMP_FLAG]


def _extension_config():
    if os.environ.get("GEOMDL_NO_EXT", "0") == "1":
        _warn("GEOMDL_NO_EXT=1: the compiled extension geomdl._C is not built.")
        return [], {}
    try:
        import torch
        from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension
    except Exception as exc:  # torch missing in an isolated build environment
        _warn(f"torch is not importable at build time ({exc}); install torch first and use --no-build-isolation.")
        return [], {}

    sources = sorted(glob.glob(os.path.join("kernels", "**", "*.cpp"), recursive=True))
    cuda_sources = sorted(glob.glob(os.path.join("kernels", "**", "*.cu"), recursive=True))
    with_cuda = (torch.version.cuda is not None and CUDA_HOME is not None) or os.environ.get("GEOMDL_FORCE_CUDA") == "1"
    if os.environ.get("GEOMDL_NO_CUDA", "0") == "1":  # CPU kernels only (e.g. an nvcc whose CUDA major differs from torch's)
        with_cuda = False
    extra_cxx = ["-O3", _OPENMP_FLAG, "-DPy_LIMITED_API=0x030A0000"]  # Python 3.10 (requires-python): the value recent torch adds itself, so no redefinition warning
    define_macros = []
    if with_cuda:
        define_macros.append(("WITH_CUDA", None))
        ext = CUDAExtension(
            "geomdl._C",
            sources + cuda_sources,
            include_dirs=[os.path.join(ROOT, "kernels")],
            define_macros=define_macros,
            extra_compile_args={"cxx": extra_cxx, "nvcc": ["-O3"]},
            extra_link_args=[_OPENMP_FLAG],
            py_limited_api=True,
        )
    else:
        ext = CppExtension(
            "geomdl._C",
            sources,
            include_dirs=[os.path.join(ROOT, "kernels")],
            define_macros=define_macros,
            extra_compile_args={"cxx": extra_cxx},
            extra_link_args=[_OPENMP_FLAG],
            py_limited_api=True,
        )

    strict = os.environ.get("GEOMDL_STRICT_BUILD", "0") == "1"
    cuda_hint = " (with CUDA sources: GEOMDL_NO_CUDA=1 builds the CPU kernels alone)" if with_cuda else ""

    class TolerantBuildExt(BuildExtension):
        """Build the extension, but never fail the install because of it (unless GEOMDL_STRICT_BUILD=1)."""

        def run(self):
            try:
                super().run()
            except Exception as exc:  # compiler missing or failing
                if strict:
                    raise
                _warn(f"building geomdl._C failed{cuda_hint}: {exc}")

        def build_extension(self, ext):
            reason = _openmp_disabled_reason()
            if reason is not None:
                _strip_openmp(ext)
                sys.stderr.write(
                    f"\n[geomdl] WARNING: {reason}: geomdl._C is built without OpenMP and its CPU kernels run "
                    "single-threaded (slower on multi-core machines).\n[geomdl] For "
                    "multi-threaded kernels, build with a compiler that supports OpenMP (GCC, or LLVM clang with "
                    "libomp; on macOS: `brew install llvm libomp` and CXX=$(brew --prefix llvm)/bin/clang++), "
                    "then reinstall.\n\n")
            try:
                super().build_extension(ext)
            except Exception as exc:
                if strict:
                    raise
                _warn(f"building {ext.name} failed{cuda_hint}: {exc}")

    return [ext], {"build_ext": TolerantBuildExt.with_options(use_ninja=True)}


class BuildPyWithManifest(build_py):
    """build_py that also ships ``datasets/manifest`` inside the package (``geomdl/datasets/manifest``)."""

    def run(self):
        super().run()
        if not self.editable_mode:  # an editable install reads the checkout's datasets/manifest
            target = os.path.join(self.build_lib, "geomdl", "datasets", "manifest")
            self.mkpath(os.path.dirname(target))
            self.copy_file(os.path.join(ROOT, "datasets", "manifest"), target)


ext_modules, cmdclass = _extension_config()
cmdclass = {**cmdclass, "build_py": BuildPyWithManifest}
setup(ext_modules=ext_modules, cmdclass=cmdclass, options={"bdist_wheel": {"py_limited_api": "cp310"}} if ext_modules else {})
