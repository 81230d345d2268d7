"""Helpers for tests of the CUDA kernels: skip without a GPU, fail when a GPU is there but a kernel is not.

A test that needs the CUDA kernel of ``geomdl::<op>`` starts with ``device = require_cuda_kernel("<op>")``.
Without a CUDA device (CI, CPU-only torch) the test is skipped; on a machine with a GPU, a missing
kernel (extension not built with CUDA, op not registered for CUDA) fails the test instead of skipping
it, so that a broken CUDA build can never pass as "skipped".
"""
from __future__ import annotations

import torch

from geomdl.ops._extension import extension_error, extension_loaded, has_kernel


def require_cuda_kernel(op: str) -> torch.device:
    """Return ``torch.device("cuda")`` for a test of the CUDA kernel of ``geomdl::<op>``.

    Skips the calling test (``pytest.skip``) when no CUDA device is present; raises ``AssertionError``
    when a device is present but the compiled CUDA kernel is not.
    """
    import pytest

    if not (torch.cuda.is_available() and torch.cuda.device_count() > 0):
        pytest.skip("no CUDA device")
    if not extension_loaded():
        raise AssertionError(f"a CUDA device is present but geomdl._C is not loaded: {extension_error()}")
    if not has_kernel(op, "cuda"):
        raise AssertionError(f"a CUDA device is present but geomdl::{op} has no CUDA kernel (was geomdl._C built with CUDA?)")
    return torch.device("cuda")
