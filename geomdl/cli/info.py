"""``geomdl info``: versions, device, compiled kernels and the active backend."""
from __future__ import annotations

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
        "backend": ops.get_backend(),
        "kernels": {op: [d for d in ("cpu", "cuda") if ops.has_kernel(op, d)] for op in OPS},
    }
    for mod in ("torch_geometric", "e3nn", "open3d", "ase", "rdkit", "torch_scatter", "torch_cluster"):
        info[mod] = _version(mod)
    return info


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
