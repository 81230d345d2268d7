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
