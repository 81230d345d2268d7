"""Whole models under torch.compile(fullgraph=True), float64: one graph, the eager outputs and gradients.

The models build their graphs in ``forward`` (radius graphs, kNN in feature space, FPS centres), so
these need the compiled extension (the pure-PyTorch neighbour references do not trace).

The EGNN model is here since its layer writes the distance term as ``[E, 3] x [3, H]`` (an ``[E, 1] x [1, H]``
product's backward guarded on ``E == 1``, undecidable for an edge count known only at run time); it also
runs under inductor below. Not here: APEN, which infers its parts by EM in Python."""
import pytest
import torch

from geomdl import ops
from geomdl.models.dgcnn import DGCNN
from geomdl.models.egnn import EGNN
from geomdl.models.nequip import NequIP
from geomdl.models.painn import PaiNN
from geomdl.models.pointnet import PointNet
from geomdl.models.pointnet2 import PointNet2
from geomdl.models.ponita import PonitaEnergy, PonitaGraph
from geomdl.models.tiny_pointnet import TinyPointNet
from geomdl.nn.apen.model import GlobalFrameAveragedNet
from geomdl.nn.ponita import PonitaPotential
from geomdl.testing import assert_compiles

pytestmark = pytest.mark.skipif(not ops.has_kernel("knn"), reason="graph building compiles only as the compiled op")

N = 30
PONITA = {"hidden": 8, "layers": 2, "num_ori": 4, "radius": 2.0}
POINTNET2 = {"radii": (1.0, 2.0), "sa_channels": ((8,), (8,)), "global_channels": (8,), "fp_channels": (8, 8, 8),
             "head_channels": (8,), "dropout": 0.0}


class _Batch:
    """The attributes a torch_geometric batch hands the models (dynamo traces a plain class)."""

    def __init__(self, z, pos, batch):
        self.z, self.pos, self.batch, self.num_graphs = z, pos, batch, 2


class _CalledOnBatch(torch.nn.Module):
    """``model(batch)`` for models that take a batch object, called with tensors."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, z, pos, batch):
        return self.model(_Batch(z, pos, batch))


def _inputs():
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(N, 3, generator=g, dtype=torch.float64)
    batch = torch.tensor([0] * 12 + [1] * (N - 12))
    z = torch.tensor([1, 6, 7, 8])[torch.randint(0, 4, (N,), generator=g)]
    return z, pos, batch


MODELS = {
    "egnn": lambda z, p, b: (EGNN(1, 16, 2, cutoff=2.0), (z, p, b)),
    "egnn_rbf_coords": lambda z, p, b: (EGNN(1, 16, 2, cutoff=2.0, num_rbf=4, update_coords=True, tanh=True), (z, p, b)),
    # all pairs (cutoff=None): full_graph's edge count is data-dependent and must not be branched on
    "egnn_full_graph": lambda z, p, b: (EGNN(1, 16, 2, cutoff=None), (z, p, b)),
    "painn": lambda z, p, b: (PaiNN(1, 16, 2, cutoff=2.0), (z, p, b)),
    "nequip": lambda z, p, b: (NequIP(1, 8, 2, cutoff=2.0), (z, p, b)),
    "pointnet": lambda z, p, b: (PointNet(3), (p, None, b)),
    "pointnet2_graph": lambda z, p, b: (PointNet2(3, task="graph", **POINTNET2), (p, None, b)),
    "pointnet2_node": lambda z, p, b: (PointNet2(3, task="node", **POINTNET2), (p, None, b)),  # + kNN interpolation
    "dgcnn": lambda z, p, b: (DGCNN(3, k=4, conv_channels=(8, 8), emb_channels=16, head_channels=(8,), dropout=0.0), (p, None, b)),
    "tiny_pointnet": lambda z, p, b: (_CalledOnBatch(TinyPointNet(3)), (z, p, b)),
    "ponita_graph": lambda z, p, b: (_CalledOnBatch(PonitaGraph(2, atomic_numbers=(1, 6, 7, 8), **PONITA)), (z, p, b)),
    "ponita_energy": lambda z, p, b: (_CalledOnBatch(PonitaEnergy((1, 6, 7, 8), **PONITA)), (z, p, b)),
    "apen_global": lambda z, p, b: (GlobalFrameAveragedNet(3, hidden=8, num_layers=2), (p, b)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_compiles_to_one_graph_with_eager_results_and_gradients(name):
    torch.manual_seed(0)
    model, args = MODELS[name](*_inputs())
    assert_compiles(model.double().eval(), args)


def test_egnn_compiles_with_inductor():
    """Generated code, not only traced graphs: the rewritten distance term's backward under inductor."""
    torch.manual_seed(0)
    model, args = MODELS["egnn_rbf_coords"](*_inputs())
    assert_compiles(model.double().eval(), args, backend="inductor")


def test_ponita_force_inference_compiles_with_breaks_around_autograd_grad():
    """Forces are ``-dE/dpos`` by ``torch.autograd.grad``, which dynamo does not put in a graph: the
    default ``torch.compile`` (no ``fullgraph``) splits there and gives the eager forces."""
    z, pos, batch = _inputs()
    torch.manual_seed(0)
    pot = PonitaPotential([1, 6, 7, 8], **PONITA).double().eval()
    eager = pot(z, pos, batch, 2)
    torch._dynamo.reset()
    try:
        compiled = torch.compile(lambda *a: pot(*a), backend="aot_eager")(z, pos, batch, 2)
    finally:
        torch._dynamo.reset()
    for key in ("energy", "forces"):
        torch.testing.assert_close(compiled[key], eager[key], atol=1e-10, rtol=1e-8)
    assert eager["forces"].abs().max() > 0
