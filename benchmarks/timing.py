"""Timing helpers: warm-up, then the median of repeats (CUDA-synchronised when on a GPU)."""
from __future__ import annotations

import statistics
import time

import torch


def _sync(device):
    if device is not None and str(device).startswith("cuda"):
        torch.cuda.synchronize()


def measure(fn, *, repeats: int = 7, warmup: int = 2, device=None, min_time: float = 0.0) -> dict:
    """Time ``fn()``: ``warmup`` untimed calls, then ``repeats`` timed calls (more while the total
    stays under ``min_time`` seconds). Returns ``{"median_ms", "min_ms", "iqr_ms", "repeats"}``."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    start = time.perf_counter()
    while len(times) < repeats or (time.perf_counter() - start < min_time and len(times) < 100):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    q = statistics.quantiles(times, n=4) if len(times) >= 2 else [times[0]] * 3
    return {"median_ms": statistics.median(times), "min_ms": min(times), "iqr_ms": q[2] - q[0], "repeats": len(times)}


def environment() -> dict:
    """Facts recorded with every result: versions, device, threads."""
    import platform

    import geomdl
    from geomdl import ops

    return {
        "geomdl": geomdl.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "extension": ops.extension_loaded(),
    }
