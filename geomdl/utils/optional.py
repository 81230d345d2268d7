"""Imports of optional dependencies with clear errors."""
from __future__ import annotations

import ctypes
import importlib


def import_open3d():
    """Import open3d, loading the libusb shipped by ``libusb-package`` first when the system lacks it.

    open3d >= 0.18 links against ``libusb-1.0.so.0``, which minimal systems do not have.
    """
    try:
        return importlib.import_module("open3d")
    except ImportError as exc:
        if "libusb" not in str(exc):
            raise ImportError("open3d is not installed: pip install 'geomdl[data]' (or open3d-cpu)") from exc
    try:
        import libusb_package

        ctypes.CDLL(str(libusb_package.get_library_path()), mode=ctypes.RTLD_GLOBAL)
    except Exception as exc:  # pragma: no cover - depends on the system
        raise ImportError("open3d needs libusb-1.0: pip install libusb-package, or apt-get install libusb-1.0-0") from exc
    return importlib.import_module("open3d")


def require(module: str, extra: str = "data"):
    """Import ``module`` or raise ImportError naming the pip extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{module} is required for this feature: pip install 'geomdl[{extra}]'") from exc
