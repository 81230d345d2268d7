"""torch APIs that releases after the oldest supported torch (2.4) added, with their 2.4 equivalents.

* :func:`is_exporting`: ``torch.compiler.is_exporting`` (torch >= 2.7); before, whether ``torch.export``
  is tracing (its ``torch.export._trace._EXPORT_FLAGS`` is set from entry to exit of an export).
* :func:`safe_globals`: the context manager ``torch.serialization.safe_globals`` (torch >= 2.5); on 2.4,
  ``add_safe_globals`` for the block, then the allowlist as it was.
"""
from __future__ import annotations

import contextlib

import torch


def _is_exporting_flag() -> bool:
    """``torch.compiler.is_exporting`` for torch 2.4 to 2.6 (also correct on later releases that keep the flag)."""
    from torch.export import _trace

    return getattr(_trace, "_EXPORT_FLAGS", None) is not None


is_exporting = getattr(torch.compiler, "is_exporting", None) or _is_exporting_flag


@contextlib.contextmanager
def _safe_globals_torch24(globs: list):
    """``torch.serialization.safe_globals(globs)`` for torch 2.4: allow ``globs`` in ``torch.load(weights_only=True)``
    inside the block; the allowlist is restored on exit."""
    ser = torch.serialization
    before = list(ser.get_safe_globals())  # a copy: torch 2.4 returns its own list, which add extends
    ser.add_safe_globals(list(globs))
    try:
        yield
    finally:
        ser.clear_safe_globals()
        ser.add_safe_globals(before)


def safe_globals(globs: list):
    """Context manager: ``globs`` (classes, functions) may be unpickled by ``torch.load(weights_only=True)``
    inside the block."""
    native = getattr(torch.serialization, "safe_globals", None)
    return native(globs) if native is not None else _safe_globals_torch24(globs)
