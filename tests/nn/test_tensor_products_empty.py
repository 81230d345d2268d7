"""Gaunt layers on empty inputs: no edges (a graph of isolated nodes) and no nodes.

The compiled Gaunt kernel and the half-grid projection once reshaped with ``-1`` on a zero-size result,
which raised "cannot reshape tensor of 0 elements" for every zero-row call.
"""
import pytest
import torch

from geomdl import ops
from geomdl.nn import EquivariantConv, GauntConvolution, GauntManyBody, GauntSelfInteraction, GauntTensorProduct
from geomdl.o3 import gaunt_powers

BACKENDS = ["auto", "reference"]
NO_EDGES = torch.zeros(2, 0, dtype=torch.long)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("parity,i1,i2,io", [
    ("natural", "4x0e+4x1o+4x2e", "1x0e+1x1o", "4x0e+4x1o+4x2e"),
    ("full", "4x0e+4x1o", "4x0e+4x1o", "4x0e+4x1o+4x1e"),
])
def test_gaunt_tensor_product_zero_rows_forward_backward(backend, parity, i1, i2, io):
    with ops.use_backend(backend):
        tp = GauntTensorProduct(i1, i2, io, parity=parity).double()
        x = torch.zeros(0, tp.irreps_in1.dim, dtype=torch.float64, requires_grad=True)
        y = torch.zeros(0, tp.irreps_in2.dim, dtype=torch.float64)
        out = tp(x, y)
        assert out.shape == (0, tp.irreps_out.dim)
        out.sum().backward()
        assert x.grad.shape == x.shape
        assert tp.weight1.grad is not None and not tp.weight1.grad.any()


@pytest.mark.parametrize("backend", BACKENDS)
def test_gaunt_self_interaction_and_many_body_zero_nodes(backend):
    with ops.use_backend(backend):
        irreps = "4x0e+4x1o+4x2e"
        assert GauntSelfInteraction(irreps)(torch.zeros(0, 36)).shape == (0, 36)
        mb = GauntManyBody(irreps, correlation=3, num_elements=2)
        assert mb(torch.zeros(0, 36), torch.zeros(0, dtype=torch.long)).shape == (0, 36)
        assert [tuple(b.shape) for b in gaunt_powers(torch.zeros(0, 9), 3)] == [(0, 9), (0, 9)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_gaunt_convolutions_without_edges_equal_their_self_part(backend):
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(3, 3, generator=g, dtype=torch.float64)
    with ops.use_backend(backend):
        conv = EquivariantConv("4x0e+4x1o", "4x0e+4x1o+4x2e", product="gaunt").double()
        x = torch.randn(3, 16, generator=g, dtype=torch.float64)
        torch.testing.assert_close(conv(x, pos, NO_EDGES), conv.lin_self(x), rtol=0, atol=0)
        assert conv(x[:0], pos[:0], NO_EDGES).shape == (0, 36)
        gconv = GauntConvolution("4x0e+4x1o", "4x0e+4x1o", lmax_filter=2, cutoff=2.0).double()
        out = gconv(x, pos, NO_EDGES)
        assert out.shape == (3, 16) and torch.isfinite(out).all()

