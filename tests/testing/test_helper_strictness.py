"""Failures the testing helpers must not let through (each test fails on the helper's earlier behaviour)."""
import pytest
import torch

from geomdl import ops
from geomdl.testing import assert_equivariant, assert_kernel_matches_reference
from geomdl.testing.compile import _run


def test_a_nan_in_one_sample_fails_even_when_later_samples_are_finite():
    calls = {"n": 0}

    def centred(pos):
        calls["n"] += 1
        out = pos - pos.mean(0)
        return out * float("nan") if calls["n"] == 2 else out  # only the first transformed call is NaN

    pos = torch.randn(5, 3, dtype=torch.float64)
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(centred, pos, "position", "vector")


def test_a_large_invariant_output_does_not_hide_a_broken_small_one():
    def energy_and_forces(pos):
        c = pos - pos.mean(0)
        return 1e6 * (c ** 2).sum(), 1e-6 * c[:, [1, 0, 2]]  # forces with x and y swapped: not equivariant

    pos = torch.randn(6, 3, dtype=torch.float64)
    with pytest.raises(AssertionError, match="rotation"):
        assert_equivariant(energy_and_forces, (pos,), ("position",), ("global_scalar", "vector"))
    # the correct pair still passes
    assert_equivariant(lambda p: (1e6 * ((p - p.mean(0)) ** 2).sum(), 1e-6 * (p - p.mean(0))), (pos,), ("position",),
                       ("global_scalar", "vector"))


class _BackendBackward(torch.autograd.Function):
    """Doubles x; its backward picks the compiled or reference formula when it runs (as ops that choose their
    backward kernel at backward time do), and the compiled formula is wrong."""

    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, g):
        return (4 if ops.get_backend() == "compiled" else 2) * g


def test_the_kernel_backward_runs_under_the_compiled_backend():
    x = torch.randn(5, dtype=torch.float64)
    before = ops.get_backend()
    for backend in ("auto", "reference"):
        ops.set_backend(backend)
        try:
            with pytest.raises(AssertionError, match="gradient of input 0"):
                assert_kernel_matches_reference(_BackendBackward.apply, lambda t: 2 * t, x)
        finally:
            ops.set_backend(None if before == "auto" else before)


def test_compile_helper_weights_live_on_the_output_device():
    outs, grads = _run(lambda a: a * 2, [torch.randn(4, 3, device="meta")], [0], [])
    assert outs[0].device.type == "meta" and grads[0].device.type == "meta"
