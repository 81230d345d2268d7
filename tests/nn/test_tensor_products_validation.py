"""Input validation of the tensor-product layers (errors that name the argument)."""
import pytest
import torch

from geomdl.nn.tensor_products import GauntTensorProduct


def test_gaunt_tensor_product_rejects_integer_and_mixed_dtype_inputs():
    tp = GauntTensorProduct("2x0e+2x1o", "2x0e+2x1o", "2x0e+2x1o")
    x = torch.randn(3, 8)
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        tp(x.long(), x)
    with pytest.raises(TypeError, match="y has dtype torch.float64 but x has dtype torch.float32"):
        tp(x, x.double())
    with pytest.raises(TypeError, match="y has dtype torch.float32 but x has dtype torch.float64"):
        tp(x.double(), x)  # was silently accepted (computed in float64), asymmetric with the case above


@pytest.mark.parametrize("irreps", [("1x0e", "1x0e", "1x1o"), ("1x1o", "1x1o", "1x1o"), ("1x0e", "1x0e", "1x2e"),
                                    ("2x1o", "1x1o", "2x3o")])
def test_gaunt_product_without_any_path_is_an_error(irreps):
    """Natural-parity irreps whose every (l1, l2, l3) breaks the triangle rule or has l1 + l2 + l3 odd: the
    product is identically zero, which is a wiring mistake (as for ClebschGordanTensorProduct); it built and
    returned zeros."""
    from geomdl.nn.tensor_products import ClebschGordanTensorProduct

    with pytest.raises(ValueError, match="no path from .* reaches"):
        GauntTensorProduct(*irreps)
    with pytest.raises(ValueError):  # the same rule as the CG product's
        ClebschGordanTensorProduct(*irreps, mode="uvu")
    GauntTensorProduct("2x0e+2x1o", "1x0e+1x1o", "2x1o")  # one reachable output block is enough
