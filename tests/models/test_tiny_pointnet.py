"""TinyPointNet: invariant to translations and point permutations (exactly), and - by design -
not to rotations (measured, as a negative control of the test itself)."""
import pytest
import torch
from torch_geometric.data import Batch, Data

from geomdl.models.tiny_pointnet import TinyPointNet
from geomdl.testing.equivariance import equivariance_error


def _fn(model):
    def run(pos, x, batch):
        return model(Batch(pos=pos, x=x, batch=batch))

    return run


@pytest.mark.parametrize("pool", ["max", "mean"])
def test_translation_and_permutation_invariant_not_rotation_invariant(float64, pool):
    model = TinyPointNet(out_channels=3, in_channels=2, hidden_channels=8, pool=pool).double()
    pos = torch.randn(20, 3)
    x = torch.randn(20, 2)
    batch = torch.tensor([0] * 12 + [1] * 8)
    errors = equivariance_error(_fn(model), (pos, x, batch), ("position", "scalar", "batch"), "global_scalar", group="O3")
    assert errors["translation"] < 1e-12 and errors["permutation"] < 1e-12
    assert errors["rotation"] > 1e-3 and errors["reflection"] > 1e-3  # a plain PointNet sees orientation


def test_shapes_and_errors():
    model = TinyPointNet(out_channels=4)
    data = Batch.from_data_list([Data(pos=torch.randn(5, 3)), Data(pos=torch.randn(7, 3))])
    assert model(data).shape == (2, 4)
    assert model(Data(pos=torch.randn(5, 3))).shape == (1, 4)  # no batch vector: one cloud
    with pytest.raises(ValueError, match=r"data.pos must have shape \[N, 3\]"):
        model(Data(pos=torch.randn(5, 2)))
    with pytest.raises(ValueError, match=r"data.x must have shape \[5, 2\]"):
        TinyPointNet(in_channels=2)(Data(pos=torch.randn(5, 3)))
    with pytest.raises(ValueError, match="pool must be"):
        TinyPointNet(pool="sum")
    with pytest.raises(ValueError, match="hidden_channels must be an int >= 1"):
        TinyPointNet(hidden_channels=0)


def test_one_step_reduces_the_loss():
    torch.manual_seed(0)
    model = TinyPointNet(out_channels=2, hidden_channels=16)
    data = Batch.from_data_list([Data(pos=torch.randn(16, 3) * (1 + i % 2)) for i in range(8)])
    y = torch.tensor([i % 2 for i in range(8)])
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    losses = []
    for _ in range(2):
        loss = torch.nn.functional.cross_entropy(model(data), y)
        losses.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[1] < losses[0]
