"""The fast path of scatter / segment_softmax (geomdl/ops/_fast_path.py): taken for the common eager
call, the same results and gradients as the general path, and never taken where it must not be."""
import contextlib
import importlib

import pytest
import torch

from geomdl import ops
from geomdl.ops import scatter, scatter_reference, segment_softmax, segment_softmax_reference

compiled = pytest.mark.skipif(not ops.has_kernel("scatter_reduce"), reason="geomdl._C not built (reference mode)")
scatter_module = importlib.import_module("geomdl.ops.scatter")  # (geomdl.ops.scatter is the function)
softmax_module = importlib.import_module("geomdl.ops.softmax")


@contextlib.contextmanager
def general_path_forbidden():
    """Make the general path's argument handling raise, so a call that succeeds took the fast path."""

    def forbidden(*args, **kwargs):
        raise AssertionError("general path taken")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scatter_module, "segment_inputs", forbidden)
        mp.setattr(softmax_module, "segment_inputs", forbidden)
        yield


def _cases():
    g = torch.Generator().manual_seed(0)
    index = torch.randint(0, 6, (40,), generator=g)
    for dtype in (torch.float32, torch.float64):
        src = torch.randn(40, 5, generator=g, dtype=dtype)
        yield src, index, 0
        yield src, index, -2
        yield src.t().contiguous().t(), index, 0  # a non-contiguous [40, 5] view
        yield src[:, 0], index, 0
        yield src[:, 0], index, -1


@compiled
@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_fast_path_is_taken_and_equals_the_general_path(reduce):
    for src, index, dim in _cases():
        with general_path_forbidden():
            out = scatter(src, index, dim=dim, dim_size=7, reduce=reduce)
        # the general path on the same kernel ([N, C, 1] is not eligible for the fast path): the same bits
        general = scatter(src.reshape(len(src), -1, 1), index, dim=0, dim_size=7, reduce=reduce).reshape(out.shape)
        assert torch.equal(out, general)
        assert out.shape == ((7,) if src.dim() == 1 else (7, 5)) and out.dtype == src.dtype
        assert out.grad_fn is None
        ref = scatter_reference(src, index, dim=dim, dim_size=7, reduce=reduce)
        torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)


@compiled
def test_fast_path_softmax_is_taken_and_matches_reference():
    for src, index, dim in _cases():
        with general_path_forbidden():
            out = segment_softmax(src, index, 7, dim=dim)
        assert torch.equal(out, segment_softmax(src.reshape(len(src), -1, 1), index, 7).reshape(src.shape))
        assert out.shape == src.shape and out.grad_fn is None
        torch.testing.assert_close(out, segment_softmax_reference(src, index, 7, dim=dim), rtol=1e-6, atol=1e-6)


@compiled
@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min", "softmax"])
def test_fast_path_gradients_equal_the_general_path(reduce):
    g = torch.Generator().manual_seed(1)
    index = torch.randint(0, 5, (30,), generator=g)
    for shape in ((30, 4), (30,)):
        src = torch.randn(*shape, generator=g, dtype=torch.float64)
        weight = torch.randn((30 if reduce == "softmax" else 6,) + shape[1:], generator=g, dtype=torch.float64)
        grads = []
        for fast in (True, False):
            leaf = src.clone().requires_grad_(True)
            x = leaf if fast else leaf.reshape(30, -1, 1)  # 3-D: the general path
            out = segment_softmax(x, index, 6) if reduce == "softmax" else scatter(x, index, dim_size=6, reduce=reduce)
            out = out if fast else out.reshape(out.shape[0], *shape[1:])
            assert out.grad_fn is not None
            (out * weight).sum().backward()
            grads.append(leaf.grad)
        torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=0)
        leaf = src.clone().requires_grad_(True)
        with torch.no_grad():  # no gradient can flow: below the autograd layer, no grad_fn
            out = segment_softmax(leaf, index, 6) if reduce == "softmax" else scatter(leaf, index, dim_size=6, reduce=reduce)
        assert out.grad_fn is None


@compiled
def test_double_backward_through_the_fast_path():
    src = torch.randn(12, 3, dtype=torch.float64, requires_grad=True)
    index = torch.tensor([0, 1, 1, 2, 2, 2, 0, 3, 3, 1, 0, 2])
    assert torch.autograd.gradgradcheck(lambda s: scatter(s, index, dim_size=4, reduce="max") ** 2, (src,))
    assert torch.autograd.gradgradcheck(lambda s: segment_softmax(s, index, 4) ** 2, (src,))


@compiled
def test_fast_path_reports_an_index_out_of_range():
    src = torch.randn(4, 2)
    with general_path_forbidden(), pytest.raises(ValueError, match=r"index has an entry 5 out of range: entries must lie in \[0, 3\)"):
        scatter(src, torch.tensor([0, 1, 5, 2]), dim_size=3)
    with general_path_forbidden(), pytest.raises(ValueError, match=r"index has a negative entry \(-1\)"):
        segment_softmax(src, torch.tensor([0, -1, 1, 2]), 3)


@compiled
@pytest.mark.parametrize("call", [
    lambda s, i: scatter(s, i.int(), dim_size=3),  # int32 index: converted on the general path
    lambda s, i: scatter(s, i),  # dim_size not given
    lambda s, i: scatter(s, i, dim_size=torch.tensor(3)),  # not an int: the general path rejects it
    lambda s, i: scatter(s.unsqueeze(-1), i, dim_size=3),  # 3-D
    lambda s, i: scatter(s.t(), i, dim=1, dim_size=3),  # reduced along another dim
    lambda s, i: scatter(torch.nn.Parameter(s), i, dim_size=3),  # a subclass of Tensor
    lambda s, i: scatter(s.long(), i, dim_size=3),  # not floating: the reference
    lambda s, i: segment_softmax(s, i),  # num_segments not given
])
def test_other_calls_take_the_general_path(call):
    src, index = torch.randn(4, 2), torch.tensor([0, 1, 1, 2])
    with general_path_forbidden(), pytest.raises(AssertionError, match="general path taken"):
        call(src, index)


@compiled
def test_reference_backend_never_takes_the_fast_path():
    src, index = torch.randn(4, 2), torch.tensor([0, 1, 1, 2])
    with general_path_forbidden(), ops.use_backend("reference"), pytest.raises(AssertionError, match="general path taken"):
        scatter(src, index, dim_size=3)
    with general_path_forbidden(), ops.use_backend("reference"), pytest.raises(AssertionError, match="general path taken"):
        segment_softmax(src, index, 3)
