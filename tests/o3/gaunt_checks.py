"""Shared inputs, cases and tolerance of the compiled Gaunt kernel tests (CPU: test_gaunt_kernel.py, CUDA:
test_cuda_gaunt.py)."""
from __future__ import annotations

import torch
from e3nn import o3 as e3o3

LAYERS = [  # (irreps_in1, irreps_in2, irreps_out, kwargs) of GauntTensorProduct
    ("8x0e+8x1o+8x2e", "8x0e+8x1o+8x2e", "8x0e+8x1o+8x2e+8x3o", {}),
    ("4x0e+4x2e", "1x0e+1x1o+1x2e", "4x0e+4x1o+4x2e+4x4e", {}),  # shared filter (mul 1), gaps
    ("3x1o+3x3o", "3x0e+3x2e", "3x1o+3x2e", {"weights": None}),
    ("4x0e+4x1o+4x1e", "4x0e+4x1o", "4x0e+4x1o+4x1e", {"parity": "full"}),
]


def irreps(spec):
    """e3nn Irreps of natural parity from [(multiplicity, degree), ...]."""
    return e3o3.Irreps([(m, (l, (-1) ** l)) for m, l in spec])


def gaunt_inputs(l1, l2, lo, cols, dtype, seed, device="cpu"):
    """Random column arrays [(L+1)^2, cols] of degrees l1, l2 and lo (the last one: an output gradient),
    drawn in float64 on the CPU (the same values on every device), then cast."""
    g = torch.Generator().manual_seed(seed)
    make = lambda l: torch.randn((l + 1) ** 2, cols, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
    return make(l1), make(l2), make(lo)


def assert_gaunt_close(got, want, dtype, what="", same_dtype=False):
    """Relative max error (to max |want|), compared in float64 on the CPU: < 1e-12 for dtype float64,
    < 1e-5 for float32; also same shape, finite values and (same_dtype) the same dtype."""
    assert got.shape == want.shape, f"{what}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    if same_dtype:
        assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    got, want = got.detach().cpu().double(), want.detach().cpu().double()
    if want.numel() == 0:
        return
    assert bool(torch.isfinite(got).all()), f"{what}: non-finite values"
    scale = float(want.abs().max()) or 1.0
    err = float((got - want).abs().max()) / scale
    assert err < (1e-12 if dtype == torch.float64 else 1e-5), f"{what}: relative error {err:.3g}"
