import pytest
import torch
from e3nn import o3 as e3o3

from geomdl.nn import (
    ClebschGordanTensorProduct,
    GauntConvolution,
    GauntManyBody,
    GauntSelfInteraction,
    GauntTensorProduct,
)
from geomdl.o3 import gaunt_cg_constant
from geomdl.testing import assert_equivariant

NAT = "3x0e + 3x1o + 3x2e"


@pytest.mark.parametrize("mode,i1,i2,io", [
    ("uvw", "3x0e+2x1o+2x2e", "2x0e+1x1o+1x1e", "2x0e+3x1o+2x1e+1x2e+1x0o"),
    ("uvu", "4x0e+4x1o+4x2e", "0e+1o+2e+3o", "4x0e+4x1o+4x1e+4x2e+4x3o"),
    ("uuu", "3x0e+3x1o+3x2e", "3x0e+3x1o+3x2e", "3x0e+3x1o+3x1e+3x2e+3x2o+3x3o"),
])
def test_cg_matches_e3nn_tensor_product(float64, mode, i1, i2, io):
    tp = ClebschGordanTensorProduct(i1, i2, io, mode=mode)
    ref = e3o3.TensorProduct(i1, i2, io, [(i, j, k, mode, True) for i, j, k in tp.paths])
    with torch.no_grad():
        ref.weight.copy_(tp.weight)
    x, y = e3o3.Irreps(i1).randn(5, -1), e3o3.Irreps(i2).randn(5, -1)
    assert (tp(x, y) - ref(x, y)).abs().max() < 1e-12
    # odd paths are included (e.g. 1o x 1o -> 1e)
    assert any((tp.irreps_in1[i].ir.l + tp.irreps_in2[j].ir.l + tp.irreps_out[k].ir.l) % 2 for i, j, k in tp.paths)


def test_cg_external_weights_and_equivariance(float64):
    tp = ClebschGordanTensorProduct("4x0e+4x1o", "0e+1o+1e", "4x0e+4x1o+4x1e", mode="uvu", internal_weights=False)
    x, y = e3o3.Irreps("4x0e+4x1o").randn(6, -1), e3o3.Irreps("0e+1o+1e").randn(6, -1)
    w = torch.randn(6, tp.weight_numel)
    assert_equivariant(tp, (x, y, w), ("irreps:4x0e+4x1o", "irreps:0e+1o+1e", "scalar"), "irreps:4x0e+4x1o+4x1e",
                       translation=False)
    with pytest.raises(ValueError, match="weight"):
        tp(x, y)


def test_gaunt_layer_equals_weighted_cg_with_path_constants(float64):
    i1, i2, io = NAT, "3x0e+3x1o+3x2e+3x3o", "3x0e+3x1o+3x2e+3x3o"
    g = GauntTensorProduct(i1, i2, io)
    with torch.no_grad():
        for w in (g.weight1, g.weight2, g.weight3):
            w.copy_(torch.randn_like(w))
    cg = ClebschGordanTensorProduct(i1, i2, io, mode="uuu", irrep_normalization="none", path_normalization="none",
                                    filter_paths=lambda a, b, c: (a.l + b.l + c.l) % 2 == 0)
    ws = []
    for i, j, k in cg.paths:
        l1, l2, l3 = cg.irreps_in1[i].ir.l, cg.irreps_in2[j].ir.l, cg.irreps_out[k].ir.l
        ws.append(gaunt_cg_constant(l1, l2, l3) * g.weight1[:, l1] * g.weight2[:, l2] * g.weight3[:, l3] * g.out_scale[l3])
    with torch.no_grad():
        cg.weight.copy_(torch.cat(ws))
    x, y = e3o3.Irreps(i1).randn(7, -1), e3o3.Irreps(i2).randn(7, -1)
    assert (g(x, y) - cg(x, y)).abs().max() < 1e-10
    assert (GauntTensorProduct(i1, i2, io, method="fft").double()(x, y) - GauntTensorProduct(i1, i2, io)(x, y)).abs().max() < 1e-12


def test_gaunt_layer_equivariance_and_gradcheck(float64):
    g = GauntTensorProduct(NAT, NAT, NAT)
    x, y = e3o3.Irreps(NAT).randn(5, -1), e3o3.Irreps(NAT).randn(5, -1)
    assert_equivariant(g, (x, y), (f"irreps:{NAT}",) * 2, f"irreps:{NAT}", translation=False)
    xs, ys = x[:2].clone().requires_grad_(), y[:2].clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: g(a, b), (xs, ys))


def test_gaunt_natural_parity_error_and_full_routing(float64):
    with pytest.raises(ValueError, match="natural-parity.*1e.*parity='full'"):
        GauntTensorProduct("2x0e + 2x1e", "2x0e", "2x1e")
    i1, i2, io = "2x0e+2x1o+2x1e+2x2e", "2x0e+2x1o+2x0o", "2x0e+2x1o+2x1e+2x2e+2x0o"
    g = GauntTensorProduct(i1, i2, io, parity="full")
    assert g.cg is not None and g.use_gaunt
    x, y = e3o3.Irreps(i1).randn(5, -1), e3o3.Irreps(i2).randn(5, -1)
    assert_equivariant(g, (x, y), (f"irreps:{i1}", f"irreps:{i2}"), f"irreps:{io}", translation=False)
    # the cross product 1o x 1o -> 1e is reached only through the CG route
    cross = GauntTensorProduct("1x1o", "1x1o", "1x1e", parity="full", weights=None)
    a, b = torch.randn(3, 3), torch.randn(3, 3)
    assert cross(a, b).abs().max() > 1e-3 and cross(a, a).abs().max() < 1e-12


def test_gaunt_shared_filter_and_external_degree_weights(float64):
    g = GauntTensorProduct("4x0e+4x1o+4x2e", "0e+1o+2e", "4x0e+4x1o+4x2e")
    x, y, w2 = e3o3.Irreps("4x0e+4x1o+4x2e").randn(6, -1), e3o3.Irreps("0e+1o+2e").randn(6, -1), torch.randn(6, 4, 3)
    assert_equivariant(lambda a, b, c: g(a, b, weight2=c), (x, y, w2), ("irreps:4x0e+4x1o+4x2e", "irreps:0e+1o+2e", "scalar"),
                       "irreps:4x0e+4x1o+4x2e", translation=False)
    with pytest.raises(ValueError, match="weight2"):
        g(x, y, weight2=torch.randn(6, 4, 2))
    with pytest.raises(ValueError, match="multiplicity"):
        GauntTensorProduct("4x0e+4x1o", "2x0e", "4x0e")


def test_self_interaction_equivariant(float64):
    m = GauntSelfInteraction(NAT)
    assert_equivariant(m, e3o3.Irreps(NAT).randn(6, -1), f"irreps:{NAT}", f"irreps:{NAT}", translation=False)


def test_many_body_equivariant_and_matches_products(float64):
    m = GauntManyBody(NAT, correlation=3, num_elements=2)
    x, el = e3o3.Irreps(NAT).randn(6, -1), torch.tensor([0, 1, 0, 1, 1, 0])
    assert_equivariant(m, (x, el), (f"irreps:{NAT}", "scalar"), f"irreps:{NAT}", translation=False)
    # correlation 2 with unit weights and one channel: A + Proj[(F_A/sigma)^2]
    from geomdl.o3 import gaunt_product

    m2 = GauntManyBody("0e+1o+2e", correlation=2)
    with torch.no_grad():
        m2.weights.fill_(1.0)
    a = torch.randn(3, 9)
    expected = a + gaunt_product(a / m2.sigma, a / m2.sigma, 2)
    assert (m2(a) - expected).abs().max() < 1e-12
    with pytest.raises(ValueError, match="element"):
        m(x)
    xs = a[:2].clone().requires_grad_()
    assert torch.autograd.gradcheck(m2, (xs,))


def test_convolution_equivariant_and_aggregates(float64):
    conv = GauntConvolution("4x0e+4x1o+4x2e", "4x0e+4x1o+4x2e+4x3o", cutoff=3.0, avg_num_neighbors=2.0)
    pos = torch.randn(6, 3) * 0.4  # all pairs well inside the cutoff
    ei = torch.tensor([[0, 1, 2, 3, 4, 5, 1, 2], [1, 0, 3, 2, 5, 4, 3, 0]])
    x = e3o3.Irreps("4x0e+4x1o+4x2e").randn(6, -1)
    assert_equivariant(conv, (x, pos, ei), ("irreps:4x0e+4x1o+4x2e", "position", "edge_index"), "irreps:4x0e+4x1o+4x2e+4x3o")
    out = conv(x, pos, ei[:, :1])  # one edge 0 -> 1: only node 1 receives
    assert out[1].abs().max() > 0 and out[[0, 2, 3, 4, 5]].abs().max() == 0
    with pytest.raises(ValueError, match="edge_index|source|target"):
        conv(x, pos, torch.tensor([[0], [9]]))
