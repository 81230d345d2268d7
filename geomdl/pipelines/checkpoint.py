"""Checkpoints: everything needed to continue a run bit-for-bit, written atomically.

A checkpoint is a dict saved with ``torch.save`` (loaded back with ``weights_only=True``: no code
runs on load)::

    format, format_version, geomdl_version, torch_version,
    config (the validated config as a dict), task_name, task_state,
    model_name, model_kwargs, model (state dict), ema (state dict or None),
    optimizer, scheduler, scaler (AMP, or None),
    rng (one dict per rank: torch, cuda, numpy, python), world_size,
    epoch (completed epochs), step (applied optimiser steps), skipped_steps (steps the fp16 gradient
    scaler skipped), best, bad_evals, history, finished

:func:`load_checkpoint` turns every way a file can be wrong into one :class:`CheckpointError`
line naming the file: missing, truncated/corrupt, not a geomdl checkpoint, written by another
geomdl version, or (:func:`check_model`) for another model.
"""
from __future__ import annotations

import codecs
import os
import pickle
import random
import zipfile

import numpy as np
import torch

import geomdl
from geomdl.utils.io import atomic_torch_save

FORMAT = "geomdl-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file."""


# ---- RNG states -----------------------------------------------------------------------------


def rng_state() -> dict:
    """The states of every RNG a run consumes (torch CPU, CUDA, numpy, python ``random``)."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": random.getstate(),
    }


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and python ``random``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ---- save / load ----------------------------------------------------------------------------


def save_checkpoint(state: dict, path) -> None:
    """Write ``state`` (see the module docstring) atomically: an interruption leaves the previous
    file intact."""
    full = {"format": FORMAT, "format_version": FORMAT_VERSION, "geomdl_version": geomdl.__version__,
            "torch_version": str(torch.__version__), **state}
    atomic_torch_save(full, path)


def _what_else(path) -> str | None:
    """What a file that torch cannot load is, from its first 256 bytes: a text file (e.g. a YAML config given
    where a checkpoint is expected), a NumPy array or another binary file; ``None`` when it starts like a
    checkpoint (``torch.save`` writes a zip archive, ``PK..``, or a legacy pickle, ``0x80``), so that a
    truncated one keeps torch's own reason."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(256)
    except OSError:
        return None
    if not head or head.startswith(b"PK") or head[:1] == b"\x80":
        return None
    if head.startswith(b"\x93NUMPY"):
        return "a NumPy .npy file, not a PyTorch checkpoint"
    try:  # not final: a multi-byte character cut at byte 256 is held back instead of failing
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False).strip()
    except UnicodeDecodeError:
        text = ""
    line = text.splitlines()[0][:40] if text else ""
    if line and line.isprintable():
        return f"a text file, not a PyTorch checkpoint: it starts with {line!r}"
    return f"not a PyTorch checkpoint: it starts with the bytes {head[:4]!r}"


def load_checkpoint(path, map_location="cpu", allow_other_version: bool = False) -> dict:
    """Read and check a checkpoint.

    Raises:
        CheckpointError: the file is missing, corrupt, not a geomdl checkpoint, or was written by
            another geomdl version (unless ``allow_other_version``).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint {path!r} not found")
    if os.path.isdir(path):
        raise CheckpointError(f"checkpoint {path!r} is a folder, expected a .pt file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except PermissionError as exc:
        raise CheckpointError(f"checkpoint {path!r} cannot be read ({exc.strerror})") from None
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError,
            IndexError, TypeError, AttributeError) as exc:
        text = str(exc)
        if "Unsupported global" in text:
            raise CheckpointError(f"{path!r} is not a geomdl checkpoint (it holds Python objects that are not "
                                  f"tensors or plain values; geomdl loads checkpoints with weights_only=True)") from None
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and "weights_only" not in ln and "Weights only" not in ln]
        reason = (lines or [type(exc).__name__])[0]
        reason = _what_else(path) or reason
        raise CheckpointError(f"checkpoint {path!r} is corrupt or truncated ({reason[:160]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path!r} is not a geomdl checkpoint (no '{FORMAT}' header)")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path!r} has format version {ckpt.get('format_version')}, "
                              f"this geomdl reads version {FORMAT_VERSION}")
    version = ckpt.get("geomdl_version")
    if version != geomdl.__version__ and not allow_other_version:
        raise CheckpointError(f"checkpoint {path!r} was written by geomdl {version}; this is geomdl "
                              f"{geomdl.__version__} (retrain, or load with allow_other_version=True at your own risk)")
    missing = [k for k in ("config", "model", "model_name", "model_kwargs", "epoch") if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {path!r} lacks {', '.join(missing)}")
    return ckpt


def check_model(ckpt: dict, model_name: str, model_kwargs: dict, path) -> None:
    """Raise CheckpointError when ``ckpt`` was trained for another model than (name, kwargs)."""
    if ckpt["model_name"] != model_name:
        raise CheckpointError(f"checkpoint {os.fspath(path)!r} holds model {ckpt['model_name']!r}, "
                              f"but the config builds {model_name!r}")
    if ckpt["model_kwargs"] != model_kwargs:
        diff = sorted(k for k in set(ckpt["model_kwargs"]) | set(model_kwargs)
                      if ckpt["model_kwargs"].get(k) != model_kwargs.get(k))
        detail = ", ".join(f"{k}: {ckpt['model_kwargs'].get(k)!r} vs {model_kwargs.get(k)!r}" for k in diff[:4])
        raise CheckpointError(f"checkpoint {os.fspath(path)!r} holds a {model_name!r} with other settings ({detail})")


def load_module_state(module: torch.nn.Module, state: dict, path, what: str = "model") -> None:
    """``module.load_state_dict(state)`` with a one-line CheckpointError on any mismatch."""
    try:
        result = module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise CheckpointError(f"checkpoint {os.fspath(path)!r}: {what} weights do not fit this {type(module).__name__} "
                              f"({'; '.join(lines[1:3])[:240]})") from None
    return result
