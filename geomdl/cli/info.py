"""``geomdl info``: versions, device, compiled kernels and the active backend."""
from __future__ import annotations

import os
import platform

HELP = "versions, device, compiled kernels and the active backend"


def add_arguments(parser) -> None:
    pass


def collect() -> dict:
    import torch

    import geomdl
    from geomdl import ops
    from geomdl.ops._extension import OPS

    info = {
        "geomdl": geomdl.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)",
        "extension": "loaded" if ops.extension_loaded() else f"not loaded: {ops.extension_error()}",
        "openmp": _openmp(ops.extension_loaded()),
        "cpu kernels": _cpu_isa(ops.extension_loaded()),
        "backend": ops.get_backend(),
        "kernels": {op: [d for d in ("cpu", "cuda") if ops.has_kernel(op, d)] for op in OPS},
    }
    for mod in ("torch_geometric", "e3nn", "open3d", "ase", "rdkit", "torch_scatter", "torch_cluster"):
        info[mod] = _version(mod)
    return info


def _openmp(loaded: bool) -> str:
    """Whether the compiled CPU kernels are multi-threaded: ``geomdl._C.openmp`` (kernels/registration.cpp) says
    whether they were compiled with OpenMP (setup.py builds without it when the compiler has none)."""
    if not loaded:
        return "n/a (extension not loaded)"
    import sys

    flag = getattr(sys.modules.get("geomdl._C"), "openmp", None)
    if flag is None:
        return "unknown (extension built before geomdl reported it; rebuild it)"
    if flag:
        return "yes (multi-threaded CPU kernels)"
    return "no: built without OpenMP, the CPU kernels run single-threaded (see setup.py)"


def _cpu_isa(loaded: bool) -> str:
    """Which copies of the vectorised CPU kernels run: ``geomdl._C.avx2`` (kernels/registration.cpp) is 1 when
    the CPU has AVX2 and FMA (x86 builds compile the gaunt, trilinear, scatter and fps loops twice and choose at
    run time; GEOMDL_{GAUNT,TRILINEAR,SCATTER,FPS}_ISA=generic forces the baseline copy of one of them)."""
    if not loaded:
        return "n/a (extension not loaded)"
    import sys

    flag = getattr(sys.modules.get("geomdl._C"), "avx2", None)
    if flag is None:
        return "unknown (extension built before geomdl reported it; rebuild it)"
    if not flag:
        return "baseline (no AVX2+FMA on this CPU, or not an x86 GCC build)"
    overrides = [f"{k}={os.environ[k]}" for k in ("GEOMDL_GAUNT_ISA", "GEOMDL_TRILINEAR_ISA", "GEOMDL_SCATTER_ISA",
                                                 "GEOMDL_FPS_ISA") if os.environ.get(k, "avx2") not in ("", "avx2")]
    if overrides:
        return f"avx2, except where set: {', '.join(overrides)} ('generic': the baseline copy; other values but avx2 raise)"
    return "avx2"


def _version(mod: str) -> str:
    import importlib

    try:
        if mod == "open3d":
            from geomdl.utils.optional import import_open3d

            m = import_open3d()
        else:
            m = importlib.import_module(mod)
        return getattr(m, "__version__", "installed")
    except Exception:
        return "not installed"


def run(args) -> int:
    info = collect()
    kernels = info.pop("kernels")
    width = max(len(k) for k in info)
    for key, value in info.items():
        print(f"{key:<{width}}  {value}")
    print("compiled kernels:")
    for op, devices in kernels.items():
        print(f"  {op:<16} {', '.join(devices) if devices else 'none (reference)'}")
    return 0
