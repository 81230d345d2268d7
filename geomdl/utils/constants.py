"""Cached constant tensors (tables, plans, index maps) that stay valid after a ``torch.func`` transform.

Inside ``torch.func.grad`` / ``jvp`` / ``vmap`` every tensor an op creates, a factory such as ``torch.arange``
included, is wrapped for the transform's level; the wrapper has no storage of its own and is dead once the
transform returns. A table cached on first use inside a transform would then break every later call
(``Cannot access data pointer of Tensor that doesn't have storage`` from a compiled kernel, wrong or failing
results elsewhere). :func:`constant_cache` and :func:`plain_tensors` build such constants with the transforms
switched off, so they are plain tensors whoever asks first.
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
    they would be wrapped for it). For constants only: the block must not read the transformed inputs.
    A no-op outside transforms and while ``torch.compile`` traces."""
    if torch.compiler.is_compiling() or not functorch_active():
        return contextlib.nullcontext()
    return torch._C._DisableFuncTorch()


def constant_cache(maxsize: int | None = 128):
    """``functools.lru_cache(maxsize)`` for functions of plain Python arguments that return constant tensors:
    a miss inside a ``torch.func`` transform computes the value with the transforms switched off (see the
    module docstring). ``torch.compile`` traces the function itself, as it does under ``lru_cache``."""

    def decorate(fn):
        @functools.lru_cache(maxsize=maxsize)
        @functools.wraps(fn)
        def cached(*args, **kwargs):
            if torch.compiler.is_compiling() or not functorch_active():
                return fn(*args, **kwargs)
            with torch._C._DisableFuncTorch():
                return fn(*args, **kwargs)

        return cached

    return decorate
