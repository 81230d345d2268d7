"""Mixed dtypes give a TypeError that names the argument and both dtypes (not an opaque matmul error).

Inputs of one call must share one floating dtype, that of the layer's parameters (``module.double()``
for float64). Under autocast the check is skipped (activations are bf16/fp16 there by design).
"""
import pytest
import torch

from geomdl.models.egnn import EGNN
from geomdl.models.nequip import NequIP
from geomdl.models.painn import PaiNN
from geomdl.nn import DynamicEdgeConv, EdgeConv, EGNNLayer, EquivariantConv, GauntConvolution, PaiNNLayer, PointNetConv
from geomdl.nn.message_passing import check_dtypes
from geomdl.nn.ponita import Ponita

N = 5
EDGES = torch.tensor([[0, 1, 2, 3], [1, 2, 0, 4]])
F32, F64 = torch.float32, torch.float64


def _t(*shape, dtype=F32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0), dtype=dtype)


CASES = {
    "egnn": (lambda: EGNNLayer(4), lambda d1, d2: (_t(N, 4, dtype=d1), _t(N, 3, dtype=d2), EDGES)),
    "painn": (lambda: PaiNNLayer(4), lambda d1, d2: (_t(N, 4, dtype=d1), _t(N, 4, 3, dtype=d1), _t(N, 3, dtype=d2), EDGES)),
    "edge_conv": (lambda: EdgeConv(4, 6), lambda d1, d2: (_t(N, 4, dtype=d1), EDGES)),
    "dynamic_edge_conv": (lambda: DynamicEdgeConv(4, 6, k=2), lambda d1, d2: (_t(N, 4, dtype=d1),)),
    "point_net_conv": (lambda: PointNetConv(4, 6), lambda d1, d2: (_t(N, 4, dtype=d1), _t(N, 3, dtype=d2), EDGES)),
    "equivariant_conv": (lambda: EquivariantConv("2x0e+2x1o", "2x0e+2x1o"), lambda d1, d2: (_t(N, 8, dtype=d1), _t(N, 3, dtype=d2), EDGES)),
    "gaunt_conv": (lambda: GauntConvolution("2x0e+2x1o", "2x0e+2x1o", cutoff=3.0), lambda d1, d2: (_t(N, 8, dtype=d2), _t(N, 3, dtype=d2), EDGES)),
    "ponita": (lambda: Ponita(2, hidden=8, layers=1, num_ori=4), lambda d1, d2: (_t(N, 3, dtype=d2), _t(N, 2, dtype=d2))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_module_in_float64_with_float32_inputs_names_the_dtypes(name):
    make, inputs = CASES[name]
    layer = make().double()
    layer(*inputs(F64, F64))  # consistent dtypes work
    with pytest.raises(TypeError, match=r"float32 but the layer's parameters are torch\.float64"):
        layer(*inputs(F32, F32))


@pytest.mark.parametrize("name", ["egnn", "painn", "point_net_conv", "equivariant_conv"])
def test_inputs_of_different_dtypes_name_both_arguments(name):
    make, inputs = CASES[name]
    with pytest.raises(TypeError, match=r"(pos|x|h|s) has dtype torch\.float(32|64) but (pos|x|h|s) has dtype torch\.float(32|64): the inputs"):
        make()(*inputs(F32, F64))


@pytest.mark.parametrize("model", [EGNN, PaiNN, NequIP])
def test_molecular_model_in_float64_with_float32_positions(model):
    m = (model(hidden_channels=8, num_layers=1) if model is not NequIP else model()).double()
    z = torch.tensor([1, 6, 8])
    assert m(z, _t(3, 3, dtype=F64)).dtype == F64
    with pytest.raises(TypeError, match=r"pos has dtype torch\.float32 but the layer's parameters are torch\.float64"):
        m(z, _t(3, 3))


def test_check_is_skipped_under_autocast():
    w = torch.zeros(2, 2)
    with pytest.raises(TypeError):
        check_dtypes(w, h=torch.zeros(2, dtype=torch.bfloat16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        check_dtypes(w, h=torch.zeros(2, dtype=torch.bfloat16), pos=torch.zeros(2))
        h, pos = EGNNLayer(4)(_t(N, 4).bfloat16(), _t(N, 3), EDGES)
    assert pos.dtype == F32


@pytest.mark.parametrize("name", ["pointnet", "pointnet2", "dgcnn"])
def test_point_model_in_float64_with_float32_positions(name):
    from geomdl.models.dgcnn import DGCNN
    from geomdl.models.pointnet import PointNet
    from geomdl.models.pointnet2 import PointNet2
    make = {"pointnet": lambda: PointNet(3, local_channels=(8,), global_channels=(8,), head_channels=(8,)),
            "pointnet2": lambda: PointNet2(3), "dgcnn": lambda: DGCNN(3, k=4)}[name]
    m = make().double().eval()
    pos = _t(16, 3, dtype=F64)
    assert m(pos).dtype == F64
    with pytest.raises(TypeError, match=r"pos has dtype torch\.float32 but the layer's parameters are torch\.float64"):
        m(pos.float())
