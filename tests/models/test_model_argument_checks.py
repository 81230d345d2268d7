"""Inputs and arguments of the models and point layers that used to give wrong row counts, raw torch errors
or silently odd models (audit): trailing empty clouds of a PyG Batch, forces under no_grad/inference_mode,
unchecked widths, flags and constants."""
import pytest
import torch

from geomdl.models.dgcnn import DGCNN
from geomdl.models.egnn import EGNN
from geomdl.models.nequip import NequIP
from geomdl.models.painn import PaiNN
from geomdl.models.pointnet import PointNet
from geomdl.models.pointnet2 import PointNet2
from geomdl.models.tiny_pointnet import TinyPointNet
from geomdl.nn import DynamicEdgeConv, EGNNLayer, EquivariantLayerNorm, MessagePassing
from geomdl.nn.point_net import FeaturePropagation, GlobalSetAbstraction

POINT_MODELS = {
    "dgcnn": lambda: DGCNN(2, k=4, conv_channels=(8, 8), emb_channels=16, head_channels=(8,)),
    "pointnet": lambda: PointNet(2, local_channels=(8,), global_channels=(16,), head_channels=(8,)),
    "pointnet2": lambda: PointNet2(2, sa_channels=((8,), (8,)), global_channels=(16,), head_channels=(8,)),
    "tiny_pointnet": lambda: TinyPointNet(2, hidden_channels=8),
}


@pytest.mark.parametrize("name", sorted(POINT_MODELS))
def test_point_models_keep_a_row_for_trailing_empty_clouds_of_a_batch(name):
    data = pytest.importorskip("torch_geometric.data")
    torch.manual_seed(0)
    full = data.Data(pos=torch.rand(16, 3), y=torch.tensor([0]))
    empty = data.Data(pos=torch.zeros(0, 3), y=torch.tensor([1]))
    model = POINT_MODELS[name]().eval()
    out = model(data.Batch.from_data_list([full, empty, empty]))
    assert out.shape == (3, 2)  # was 1 row: cross_entropy against y [3] failed
    torch.testing.assert_close(out[:1], model(data.Batch.from_data_list([full])))
    assert torch.isfinite(out).all()


MOLECULAR = {"egnn": EGNN, "painn": PaiNN, "nequip": NequIP}


@pytest.mark.parametrize("name", sorted(MOLECULAR))
@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
def test_energy_and_forces_under_no_grad_and_inference_mode(name, mode):
    torch.manual_seed(0)
    kwargs = {"hidden_channels": 8, "num_layers": 1} if name != "nequip" else {"num_layers": 1}
    model = MOLECULAR[name](**kwargs).double().eval()
    z, pos = torch.tensor([1, 6, 8]), torch.randn(3, 3, dtype=torch.float64)
    energy, forces = model.energy_and_forces(z, pos)
    context = torch.no_grad() if mode == "no_grad" else torch.inference_mode()
    with context:  # a validation loop: raised "element 0 of tensors does not require grad"
        e2, f2 = model.energy_and_forces(z, pos)
    torch.testing.assert_close(e2, energy.detach())
    torch.testing.assert_close(f2, forces.detach())


def test_global_set_abstraction_and_feature_propagation_check_their_inputs():
    gsa = GlobalSetAbstraction(4, 8, (8,))
    pos = torch.rand(4, 3)
    with pytest.raises(ValueError, match=r"x must have shape \[4, 4\], got \(4, 5\)"):
        gsa(torch.rand(4, 5), pos)
    with pytest.raises(ValueError, match="x is required: this layer has in_channels=4"):
        gsa(None, pos)
    with pytest.raises(TypeError, match="x has dtype torch.float64"):
        gsa(torch.rand(4, 4, dtype=torch.float64), pos)
    with pytest.raises(ValueError, match="in_channels must be an int >= 0"):
        GlobalSetAbstraction(-1, 8)
    assert gsa(torch.rand(4, 4), pos, torch.tensor([0, 0, 1, 1]), num_clouds=4)[0].shape == (4, 8)
    fp = FeaturePropagation(4, 2, 8)
    with pytest.raises(ValueError, match=r"x must have shape \[N, 4\], got \(2, 5\)"):
        fp(torch.rand(2, 5), torch.rand(2, 3), None, torch.rand(6, 2), torch.rand(6, 3), None)
    with pytest.raises(ValueError, match="skip_channels must be an int >= 0"):
        FeaturePropagation(4, -1, 8)


@pytest.mark.parametrize("build, message", [
    (lambda: EGNN(hidden_channels=8, num_layers=1, target_mean=float("nan")), "target_mean must be a finite number"),
    (lambda: EGNN(hidden_channels=8, num_layers=1, target_std=float("inf")), "target_std must be a finite number > 0"),
    (lambda: EGNN(hidden_channels=8, num_layers=1, cutoff=float("inf")), "cutoff must be a positive finite number"),
    (lambda: EGNN(num_elements=10, atomref=list(range(7))), r"atomref must have shape \[10\]"),
    # NaN/inf reference energies made every output of a molecule with that element NaN/inf, silently
    (lambda: EGNN(num_elements=4, atomref=[0.0, float("nan"), 1.0, float("inf")]), r"atomref must be finite.*\[1, 3\]"),
    # named as the model's argument (was "num_basis", the radial basis's)
    (lambda: EGNN(hidden_channels=8, num_layers=1, num_rbf=-1), "num_rbf must be an int >= 0"),
    (lambda: PaiNN(hidden_channels=8, num_layers=1, num_rbf=0), "num_rbf must be an int >= 1"),
    (lambda: DynamicEdgeConv(4, 4, loop="no"), "loop must be a bool"),
    (lambda: EGNNLayer(4, update_coords="no"), "update_coords must be a bool"),
    (lambda: PointNet(3, head_channels=(0,)), "head_channels must be a sequence of ints >= 1"),
    (lambda: DGCNN(3, head_channels=(0,)), "head_channels must be a sequence of ints >= 1"),
    (lambda: PointNet2(3, global_channels=()), "global_channels must be a non-empty sequence"),
    (lambda: PointNet2(3, sa_channels=((), (8,))), r"sa_channels\[0\] must be a non-empty sequence"),
])
def test_bad_constructor_arguments_are_named(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_bad_forward_inputs_are_named():
    with pytest.raises(TypeError, match="z must be an int tensor"):
        EGNN(hidden_channels=8, num_layers=1)(torch.tensor([True, False]), torch.randn(2, 3))
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        EquivariantLayerNorm("4x0e")(torch.zeros(2, 4, dtype=torch.long))
    data = pytest.importorskip("torch_geometric.data")
    with pytest.raises(TypeError, match="pos has dtype torch.float64 but the layer's parameters are torch.float32"):
        TinyPointNet(3)(data.Data(pos=torch.randn(4, 3, dtype=torch.float64)))
    with pytest.raises(TypeError, match="data.batch must be an integer tensor"):
        TinyPointNet(3)(data.Data(pos=torch.randn(4, 3), batch=torch.tensor([0.0, 0, 1, 1])))

    class Identity(MessagePassing):
        def message(self, x_j):
            return x_j

    with pytest.raises(ValueError, match="size must be an int or a pair"):
        Identity().propagate(torch.tensor([[0], [3]]), size=(4.5, 4), x_j=torch.ones(4, 1))
