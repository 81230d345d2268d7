"""assert_kernel_matches_reference must catch kernels that disagree with their reference."""
import pytest
import torch

from geomdl.ops import has_kernel, scatter, scatter_reference
from geomdl.testing import assert_kernel_matches_reference


def test_detects_a_wrong_forward():
    def broken(src, index, **kw):
        return scatter_reference(src, index, **kw) + 1e-3

    with pytest.raises(AssertionError, match="output 0 differs"):
        assert_kernel_matches_reference(broken, scatter_reference, torch.randn(10, 2), torch.randint(0, 3, (10,)))


def test_detects_a_wrong_backward():
    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, g):
            return 2 * g

    def broken(src, index, **kw):
        return scatter_reference(Wrong.apply(src), index, **kw)

    with pytest.raises(AssertionError, match="gradient of input 0 differs"):
        assert_kernel_matches_reference(broken, scatter_reference, torch.randn(10, 2), torch.randint(0, 3, (10,)))


def test_detects_a_wrong_shape():
    with pytest.raises(AssertionError, match="kernel"):
        assert_kernel_matches_reference(lambda s, i: scatter_reference(s, i, dim_size=5), scatter_reference,
                                        torch.randn(4, 2), torch.tensor([0, 1, 2, 3]))


@pytest.mark.skipif(not has_kernel("scatter_reduce"), reason="geomdl._C not built (reference mode)")
def test_passes_on_the_real_op():
    assert_kernel_matches_reference(scatter, scatter_reference, torch.randn(50, 3, dtype=torch.float64), torch.randint(0, 7, (50,)))
