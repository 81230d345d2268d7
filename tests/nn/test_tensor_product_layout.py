"""Channel-column layout conversions: exact permutations with permutation backward (any order)."""
import torch
from e3nn import o3

from geomdl.nn.tensor_products._layout import from_columns, to_columns


def test_to_from_columns_roundtrip_and_gradients(float64):
    irreps = o3.Irreps("3x0e + 3x2e + 3x1o")  # unsorted degrees, degree 3 absent below lmax=3
    x = torch.randn(5, irreps.dim, requires_grad=True)
    cols = to_columns(x, irreps, 3)
    assert cols.shape == (16, 15)
    assert torch.equal(cols[9:16], torch.zeros(7, 15))  # absent degree 3 -> zero rows
    assert torch.equal(cols[0].view(5, 3), x[:, :3])  # column b * C + c
    assert torch.equal(from_columns(cols, irreps, 5), x)
    assert torch.autograd.gradcheck(lambda t: to_columns(t, irreps, 3), (x,))
    assert torch.autograd.gradgradcheck(lambda t: to_columns(t, irreps, 3).pow(2), (x,))
    z = torch.randn(16, 15, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: from_columns(t, irreps, 5), (z,))
    assert torch.autograd.gradgradcheck(lambda t: from_columns(t, irreps, 5).pow(2), (z,))
    g = torch.autograd.grad(from_columns(z, irreps, 5).sum(), z)[0]
    assert torch.equal(g[9:16], torch.zeros(7, 15))  # rows not picked get no gradient
