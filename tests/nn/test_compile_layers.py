"""Layers under torch.compile(fullgraph=True): one graph, the eager outputs and gradients (inputs and
parameters), in float64. ``aot_eager`` traces the forward and backward graphs without generating code;
one inductor case checks the generated kernels."""
import pytest
import torch
from e3nn import o3 as e3o3

from geomdl import ops
from geomdl.nn import (
    ClebschGordanTensorProduct,
    DynamicEdgeConv,
    EdgeConv,
    EGNNLayer,
    EquivariantConv,
    GauntConvolution,
    GauntTensorProduct,
    PaiNNLayer,
    PointNetConv,
)
from geomdl.nn.point_net import SetAbstraction
from geomdl.nn.ponita import Ponita
from geomdl.testing import assert_compiles

N = 10


@pytest.fixture
def graph(float64):
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(N, 3, generator=g)
    i, j = torch.meshgrid(torch.arange(N), torch.arange(N), indexing="ij")
    keep = (i != j) & ((i - j).abs() < 5)
    return pos, torch.stack([j[keep], i[keep]]), g


def _irreps(s, g):
    return torch.randn(N, e3o3.Irreps(s).dim, generator=g)


LAYERS = {
    "egnn": lambda pos, e, g: (EGNNLayer(4, 8, attention=True, normalize=True), (torch.randn(N, 4, generator=g), pos, e)),
    "painn": lambda pos, e, g: (PaiNNLayer(4, num_rbf=6, cutoff=3.0),
                                (torch.randn(N, 4, generator=g), torch.randn(N, 4, 3, generator=g), pos, e)),
    "edge_conv": lambda pos, e, g: (EdgeConv(4, 8), (torch.randn(N, 4, generator=g), e)),
    "point_net_conv": lambda pos, e, g: (PointNetConv(4, 8), (torch.randn(N, 4, generator=g), pos, e)),
    "equivariant_conv_cg": lambda pos, e, g: (EquivariantConv("4x0e+2x1o", "2x0e+2x1o+1x1e", product="cg", cutoff=4.0),
                                              (_irreps("4x0e+2x1o", g), pos, e)),
    "equivariant_conv_gaunt": lambda pos, e, g: (EquivariantConv("3x0e+3x1o+3x2e", "2x0e+2x1o+2x2e", product="gaunt",
                                                                 cutoff=4.0), (_irreps("3x0e+3x1o+3x2e", g), pos, e)),
    "gaunt_convolution": lambda pos, e, g: (GauntConvolution("3x0e+3x1o+3x2e", "3x0e+3x1o+3x2e", cutoff=4.0),
                                            (_irreps("3x0e+3x1o+3x2e", g), pos, e)),
    "cg_tensor_product": lambda pos, e, g: (ClebschGordanTensorProduct("3x0e+2x1o", "0e+1o", "3x0e+2x1o+2x1e", mode="uvu"),
                                            (_irreps("3x0e+2x1o", g), _irreps("0e+1o", g))),
    "gaunt_tensor_product_full_parity": lambda pos, e, g: (
        GauntTensorProduct("2x0e+2x1o+2x1e", "1x0e+1x1o", "2x0e+2x1o+2x1e+2x0o", parity="full"),
        (_irreps("2x0e+2x1o+2x1e", g), _irreps("1x0e+1x1o", g))),
    "ponita_positions": lambda pos, e, g: (Ponita(1, 1, 1, hidden=8, layers=2, num_ori=0, radius=None),
                                           (pos, torch.randn(N, 1, generator=g), None, e)),
    "ponita_grid": lambda pos, e, g: (Ponita(1, 1, hidden=8, layers=2, num_ori=6, radius=None),
                                      (pos, torch.randn(N, 1, generator=g))),
    "ponita_point_cloud": lambda pos, e, g: (
        Ponita(1, 1, hidden=8, layers=2, num_ori=-1, radius=None),
        (pos, torch.randn(N, 1, generator=g), None, e, None, torch.nn.functional.normalize(torch.randn(N, 3, generator=g), dim=1))),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_compiles_to_one_graph_with_eager_results(graph, name):
    pos, e, g = graph
    layer, args = LAYERS[name](pos, e, g)
    counts = assert_compiles(layer, args)
    assert counts["gradients"] > 0


@pytest.mark.parametrize("backend", ["reference", "auto"])
def test_gaunt_tensor_product_on_both_kernel_backends(graph, backend):
    _, _, g = graph
    tp = GauntTensorProduct("3x0e+3x1o+3x2e", "1x0e+1x1o+1x2e", "3x0e+3x1o+3x2e")
    with ops.use_backend(backend):
        assert_compiles(tp, (_irreps("3x0e+3x1o+3x2e", g), _irreps("1x0e+1x1o+1x2e", g)))


def test_inductor_generated_code_matches_eager(graph):
    pos, e, g = graph
    layer, args = LAYERS["egnn"](pos, e, g)
    assert_compiles(layer, args, backend="inductor", atol=1e-9)


@pytest.mark.skipif(not ops.has_kernel("knn"), reason="graph building compiles only as the compiled op")
@pytest.mark.parametrize("name", ["dynamic_edge_conv", "ponita_radius_graph", "set_abstraction"])
def test_layers_that_build_their_graph_inside_the_compiled_graph(graph, name):
    pos, _, g = graph
    batch = torch.tensor([0] * 4 + [1] * (N - 4))
    if name == "dynamic_edge_conv":  # kNN in feature space, E known only at run time
        layer, args = DynamicEdgeConv(4, 8, k=3), (torch.randn(N, 4, generator=g), batch)
    elif name == "ponita_radius_graph":  # radius graph, and num_graphs = batch.max() + 1 from the data
        layer, args = Ponita(1, 1, hidden=8, layers=2, num_ori=4, radius=1.5), (pos, torch.randn(N, 1, generator=g), None, None, batch)
    else:  # fps centres (M known at run time), then balls around them; PointNet2: tests/models
        layer, args = SetAbstraction(4, 8, ratio=0.5, r=1.5), (torch.randn(N, 4, generator=g), pos, batch)
    assert_compiles(layer, args)
