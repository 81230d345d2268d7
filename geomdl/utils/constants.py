"""Cached constant tensors (tables, plans, index maps) that stay valid after a ``torch.func`` transform.

Inside ``torch.func.grad`` / ``jvp`` / ``vmap`` every tensor an op creates, a factory such as ``torch.arange``
included, is wrapped for the transform's level; the wrapper has no storage of its own and is dead once the
transform returns. A table cached on first use inside a transform would then break every later call
(``Cannot access data pointer of Tensor that doesn't have storage`` from a compiled kernel, wrong or failing
results elsewhere). Likewise under ``torch.inference_mode`` every new tensor is an inference tensor, which
autograd refuses to save: a table cached by a first call under ``inference_mode`` would break every later
training step (``Inference tensors cannot be saved for backward``). :func:`constant_cache` and
:func:`plain_tensors` build such constants with the transforms and inference mode switched off, so they are
plain tensors whoever asks first.
"""
from __future__ import annotations

import contextlib
import functools

import torch


def functorch_active() -> bool:
    """True inside a ``torch.func`` transform (``grad``, ``vmap``, ``jvp``, ...), where ``requires_grad_`` and
    ``torch.autograd.grad`` are refused (private torch state: a torch without it has no such transforms)."""
    try:
        return torch._C._functorch.peek_interpreter_stack() is not None
    except AttributeError:
        return False


def plain_tensors():
    """Context manager: tensors created inside are plain tensors, also inside a ``torch.func`` transform (where
    they would be wrapped for it) and under ``torch.inference_mode`` (where they would be inference tensors).
    For constants only: the block must not read the transformed inputs. A no-op outside transforms and
    inference mode, and while ``torch.compile`` traces."""
    if torch.compiler.is_compiling() or not (functorch_active() or torch.is_inference_mode_enabled()):
        return contextlib.nullcontext()
    return _outside_transforms_and_inference_mode()


@contextlib.contextmanager
def _outside_transforms_and_inference_mode():
    # each a no-op where its mode is not on
    with torch._C._DisableFuncTorch(), torch.inference_mode(False):
        yield


def _cpu_by_default():
    """Context manager: tensors created without a ``device`` are on the CPU, also under ``with torch.device(...)``
    or ``torch.set_default_device`` (a cached constant would otherwise keep the device of whoever asked first,
    e.g. ``meta`` while a model is built there, for every later caller). A no-op while ``torch.compile`` traces.
    Entered on every miss, whatever ``torch.get_default_device()`` says: before torch 2.5 it reports only
    ``torch.set_default_device``, not a ``with torch.device(...)`` block (misses are rare: ~25% on a table build)."""
    if torch.compiler.is_compiling():
        return contextlib.nullcontext()
    return torch.device("cpu")


def constant_cache(maxsize: int | None = 128):
    """``functools.lru_cache(maxsize)`` for functions of plain Python arguments that return constant tensors:
    a miss inside a ``torch.func`` transform or under ``torch.inference_mode`` computes the value with them
    switched off (see the module docstring), and on the CPU wherever a tensor is created without a ``device``,
    whatever the default device. ``torch.compile`` traces the function itself, as it does under ``lru_cache``."""

    def decorate(fn):
        @functools.lru_cache(maxsize=maxsize)
        @functools.wraps(fn)
        def cached(*args, **kwargs):
            with plain_tensors(), _cpu_by_default():
                return fn(*args, **kwargs)

        return cached

    return decorate
