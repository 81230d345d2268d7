"""The test helpers must not pass broken functions: NaN outputs, lost gradients."""
import pytest
import torch

from geomdl.ops import scatter_reference
from geomdl.testing import assert_compiles, assert_equivariant, assert_kernel_matches_reference, equivariance_error


def test_nan_outputs_fail_the_equivariance_check():
    x = torch.randn(5, 3, dtype=torch.float64)
    with pytest.raises(AssertionError, match="nan"):
        assert_equivariant(lambda p: p * float("nan"), x, "position", "position")


def test_nan_only_under_the_transformation_is_reported():
    x = torch.randn(5, 3, dtype=torch.float64)
    base = x.clone()
    errors = equivariance_error(lambda p: p if torch.equal(p, base) else p * float("nan"), x, "position", "position",
                                n_samples=2)
    assert all(v != v for v in errors.values()), errors  # every kind NaN, none silently 0


def test_kernel_helper_rejects_an_op_without_autograd():
    idx = torch.tensor([0, 0, 1])
    src = torch.randn(3, 2, dtype=torch.float64)
    with pytest.raises(AssertionError, match="requires_grad"):
        assert_kernel_matches_reference(lambda s, i: scatter_reference(s, i).detach(), scatter_reference, src, idx)


def test_compile_helper_rejects_a_graph_that_loses_the_gradient():
    def f(x):
        return (x * 2).detach() if torch.compiler.is_compiling() else x * 2

    with pytest.raises(AssertionError, match="gradients"):
        assert_compiles(f, (torch.randn(4, dtype=torch.float64),))


@pytest.mark.parametrize("exact", [False, True])
def test_kernel_helper_accepts_nan_propagated_by_both_and_rejects_a_nan_mismatch(exact):
    from geomdl import ops
    from geomdl.ops import scatter

    if not ops.extension_loaded():  # GEOMDL_NO_EXT=1 or not built: the helper compares against the compiled op
        pytest.skip(f"compiled kernels not loaded: {ops.extension_error()}")

    src = torch.tensor([[1.0, float("nan")], [float("inf"), 2.0], [-1.0, 3.0]], dtype=torch.float64)
    idx = torch.tensor([0, 0, 1])
    for reduce in ("sum", "max"):
        assert_kernel_matches_reference(scatter, scatter_reference, src, idx, reduce=reduce, exact=exact)
    with pytest.raises(AssertionError):
        assert_kernel_matches_reference(lambda s, i: scatter(s, i).nan_to_num(), scatter_reference, src, idx, exact=exact)
