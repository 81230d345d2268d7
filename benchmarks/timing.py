"""Timing helpers: warm-up, then the median of repeats (CUDA-synchronised when on a GPU)."""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time

import torch


def _number_type(convert, ok, what: str, name: str, doc: str):
    """An argparse ``type`` converting with ``convert`` and accepting values where ``ok``: anything else is a usage
    error ``expected <what>, got '<text>'`` (exit 2), not a traceback deep inside a benchmark."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    parse.__name__, parse.__doc__ = name, doc
    return parse


positive_float = _number_type(float, lambda v: 0 < v < float("inf"), "a positive finite number", "positive_float",
                              "argparse ``type``: a finite number > 0 (``--radius 0`` is a usage error).")
nonnegative_float = _number_type(float, lambda v: 0 <= v < float("inf"), "a finite number >= 0", "nonnegative_float",
                                 "argparse ``type``: a finite number >= 0 (``--weight-decay -1`` is a usage error).")
nonnegative_int = _number_type(int, lambda v: v >= 0, "an integer >= 0", "nonnegative_int",
                               "argparse ``type``: an integer >= 0 (``--warmup -1`` is a usage error).")
positive_int = _number_type(int, lambda v: v >= 1, "a positive integer", "positive_int",
                            "argparse ``type``: an integer >= 1 (``--repeats 0`` or ``--threads -1`` is a usage error).")


def device_name(text: str) -> str:
    """argparse ``type``: ``cpu``, ``cuda`` or ``cuda:N`` (a typo is a usage error, not "no CUDA device")."""
    if text in ("cpu", "cuda") or text.startswith("cuda:") and text[5:].isdigit():
        return text
    raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:N, got {text!r}")


def comma_choices(choices):
    """argparse ``type``: a comma-separated subset of ``choices``, returned unchanged (a typo is a usage error
    listing the valid names, before anything runs)."""
    def parse(text: str) -> str:
        unknown = [v for v in (v.strip() for v in text.split(",")) if v and v not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {', '.join(map(repr, unknown))} (choose from {', '.join(choices)})")
        return text
    return parse


def comma_positive_ints(text: str) -> list[int]:
    """argparse ``type``: comma-separated ints >= 1 (``6,10``), returned sorted without repeats; anything else is a
    usage error (exit 2) before anything runs."""
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        values = []
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints >= 1 such as 6,10, got {text!r}")
    return values


def check_config(config: str, overrides: list[str]) -> None:
    """Exit with a one-line usage message when ``load_config(config, overrides)`` fails (an unknown ``--config``,
    a ``--set`` item that is not ``key=value`` or names an unknown key), before any training run starts."""
    from geomdl.pipelines.config import ConfigError, load_config

    try:
        load_config(config, overrides)
    except ConfigError as exc:
        raise SystemExit(f"--config/--set: {exc}") from None


def quick_settings(args, **values) -> None:
    """``--quick``'s smaller settings, each applied only where the command line did not set that option itself
    (``args.given``, from ``benchmarks.__main__``): ``--quick --epochs 5`` runs 5 epochs (``--quick`` replaced
    explicit options silently)."""
    given = getattr(args, "given", set())
    for name, value in values.items():
        if name not in given:
            setattr(args, name, value)


def _sync(device):
    if device is not None and str(device).startswith("cuda"):
        torch.cuda.synchronize(torch.device(device))  # that device's queue (not only the current device's)


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
    q = statistics.quantiles(times, n=4, method="inclusive") if len(times) >= 2 else [times[0]] * 3
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
        "cuda_device": torch.cuda.get_device_name(torch.cuda.current_device()) if torch.cuda.is_available() else None,
        "extension": ops.extension_loaded(),
    }


def measure_interleaved(fns: dict, *, repeats: int = 7, warmup: int = 2, device=None, clock=time.perf_counter) -> dict:
    """Time several callables round robin (one call of each per round), so that a machine whose
    load or memory bandwidth drifts during the run slows them alike. Returns, per name, the dict of
    :func:`measure` plus ``"times_ms"`` (the per-round times, in round order). ``clock``: wall time by
    default; ``time.process_time`` counts this process's CPU time instead."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    _sync(device)
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = clock()
            fn()
            _sync(device)
            times[name].append((clock() - t0) * 1e3)
    out = {}
    for name, ts in times.items():
        q = statistics.quantiles(ts, n=4, method="inclusive") if len(ts) >= 2 else [ts[0]] * 3
        out[name] = {"median_ms": statistics.median(ts), "min_ms": min(ts), "iqr_ms": q[2] - q[0], "repeats": len(ts),
                     "times_ms": ts}
    return out


@contextlib.contextmanager
def environment_variable(name: str, value: str):
    """Set ``os.environ[name] = value`` inside the block (a kernel reading it at call time sees it), then restore."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old
