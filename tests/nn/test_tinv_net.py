"""TinvNet: invariance of the wrapped network, vectors in the canonical frame, 2-D data, errors."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from tinv_helpers import as_batch, generic_cloud, tiny_tinvnet

from geomdl.models.tiny_pointnet import TinyPointNet
from geomdl.nn.tinv import TinvNet, mds_embedding
from geomdl.testing import assert_equivariant, equivariance_error


def clouds(dtype=torch.float64):
    pos = torch.cat([generic_cloud(30, 11), generic_cloud(24, 12)]).to(dtype)
    batch = torch.repeat_interleave(torch.arange(2), torch.tensor([30, 24]))
    return pos, batch


@pytest.mark.parametrize("degenerate", ["pick", "average"])
def test_tinvnet_output_is_invariant_float64(degenerate):
    pos, batch = clouds()
    assert_equivariant(as_batch(tiny_tinvnet(degenerate)), (pos, batch), ("position", "batch"), "global_scalar",
                       scaling=True, n_samples=4, tol=1e-10)


def test_tinvnet_output_is_invariant_float32():
    pos, batch = clouds(torch.float32)
    errors = equivariance_error(as_batch(tiny_tinvnet()), (pos, batch), ("position", "batch"), "global_scalar",
                                scaling=True, n_samples=4, float64=False)
    assert max(errors.values()) < 1e-4, errors


def test_backbone_alone_is_not_rotation_invariant():
    """Negative control: the same backbone on raw positions changes under rotations."""
    pos, batch = clouds()
    torch.manual_seed(0)
    backbone = TinyPointNet(out_channels=5, hidden_channels=16)
    errors = equivariance_error(as_batch(backbone), (pos, batch), ("position", "batch"), "global_scalar", n_samples=2)
    assert errors["rotation"] > 1e-3


def test_backbone_sees_the_embedding_as_positions():
    seen = {}

    class Spy(torch.nn.Module):
        def forward(self, data):
            seen["pos"] = data.pos
            return data.pos.sum(0, keepdim=True)

    pos = generic_cloud(20, 13)
    TinvNet(Spy())(SimpleNamespace(pos=pos))
    assert torch.equal(seen["pos"], mds_embedding(pos).embedding)


def test_normals_are_rotated_into_the_canonical_frame():
    class UsesNormals(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(6, 3)

        def forward(self, data):
            h = self.lin(torch.cat([data.pos, data.normal], 1)).tanh()
            return h.max(0, keepdim=True).values

    torch.manual_seed(0)
    model = TinvNet(UsesNormals(), vector_keys=("normal",))
    pos = generic_cloud(25, 14)
    normal = torch.nn.functional.normalize(torch.randn(25, 3, dtype=torch.float64), dim=1)
    assert_equivariant(_OnPosAndNormal(model), (pos, normal), ("position", "vector"), "global_scalar", tol=1e-10)


class _OnPosAndNormal(torch.nn.Module):
    """``model(data)`` as a function of ``(pos, normal)`` for :func:`assert_equivariant`."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pos, normal):
        return self.model(SimpleNamespace(pos=pos, normal=normal))


class _SumsNormals(torch.nn.Module):
    """Permutation-invariant backbone that reads ``normal`` (alone and against ``pos``)."""

    def forward(self, data):
        return torch.cat([data.normal, data.normal * data.pos], 1).sum(0, keepdim=True)


@pytest.mark.parametrize("degenerate", ["pick", "average"])
@pytest.mark.parametrize("flat", [(1.0, 1.0, 0.0), (1.0, 0.0, 0.0)], ids=["planar", "collinear"])
def test_normals_of_rank_deficient_clouds_stay_invariant(flat, degenerate):
    """The null axes of a planar/collinear cloud are not fixed by its points (eigh picks them): the normals'
    components along them used to follow eigh's choice, O(1) changes under rotations."""
    model = TinvNet(_SumsNormals(), degenerate=degenerate, vector_keys=("normal",))
    pos = generic_cloud(25, 14) * torch.tensor(flat, dtype=torch.float64)
    normal = torch.nn.functional.normalize(torch.randn(25, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)), dim=1)
    assert_equivariant(_OnPosAndNormal(model), (pos, normal), ("position", "vector"), "global_scalar", tol=1e-10)
    seen = {}
    model.backbone.forward = lambda data: seen.setdefault("normal", data.normal).sum(0, keepdim=True)
    model(SimpleNamespace(pos=pos, normal=normal))
    torch.testing.assert_close(seen["normal"].norm(dim=1), torch.ones(25, dtype=torch.float64))


def test_planar_data_with_dim_2_is_padded_for_a_3d_backbone_and_invariant():
    plane = generic_cloud(40, 15, dim=2)
    pos = torch.cat([plane, torch.zeros(40, 1, dtype=torch.float64)], 1)
    model = tiny_tinvnet(dim=2)
    assert model.pos_dim == 3
    batch = torch.zeros(40, dtype=torch.long)
    assert_equivariant(as_batch(model), (pos, batch), ("position", "batch"), "global_scalar", scaling=True, tol=1e-10)


def test_state_dict_round_trip_and_repr():
    a, b = tiny_tinvnet(seed=1), tiny_tinvnet(seed=2)
    pos, batch = clouds(torch.float32)
    data = SimpleNamespace(pos=pos, batch=batch)
    assert not torch.allclose(a(data), b(data))
    b.load_state_dict(a.state_dict())
    assert torch.equal(a(data), b(data))
    assert "degenerate='pick'" in repr(a)


def test_one_optimiser_step_reduces_the_loss():
    pos, batch = clouds(torch.float32)
    target = torch.tensor([0, 3])
    model = tiny_tinvnet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    data = SimpleNamespace(pos=pos, batch=batch)
    before = torch.nn.functional.cross_entropy(model(data), target)
    before.backward()
    opt.step()
    after = torch.nn.functional.cross_entropy(model(data), target)
    assert float(after.detach()) < float(before.detach())


def test_tinvnet_works_on_a_pyg_batch():
    from torch_geometric.data import Batch, Data

    data = Batch.from_data_list([Data(pos=generic_cloud(20, 16).float(), y=torch.tensor([1])),
                                 Data(pos=generic_cloud(15, 17).float(), y=torch.tensor([0]))])
    out = tiny_tinvnet()(data)
    assert out.shape == (2, 5)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(backbone="pointnet"), TypeError, "backbone must be a torch.nn.Module"),
    (dict(output="edges"), ValueError, "output must be"),
    (dict(dim=3, pos_dim=2), ValueError, "pos_dim must be"),
    (dict(degenerate="vote"), ValueError, "degenerate must be one of"),
])
def test_bad_arguments_raise(kwargs, error, match):
    backbone = kwargs.pop("backbone", TinyPointNet(out_channels=2))
    with pytest.raises(error, match=match):
        TinvNet(backbone, **kwargs)


def test_missing_normals_raise():
    model = TinvNet(TinyPointNet(out_channels=2), vector_keys="normal")
    with pytest.raises(ValueError, match="data.normal must be a tensor shaped like pos"):
        model(SimpleNamespace(pos=generic_cloud(10, 1).float()))


def _shared_backbone(name):
    from geomdl.models.dgcnn import DGCNN
    from geomdl.models.pointnet import PointNet
    from geomdl.models.pointnet2 import PointNet2

    torch.manual_seed(0)
    if name == "pointnet":
        return PointNet(5, local_channels=(16,), global_channels=(32,), head_channels=(16,), dropout=0.0)
    if name == "pointnet2":
        return PointNet2(5, ratios=(0.5,), radii=(0.8,), sa_channels=((16, 16),), global_channels=(16, 32),
                         head_channels=(16,), dropout=0.0)
    return DGCNN(5, k=6, conv_channels=(16, 16), emb_channels=32, head_channels=(16,), dropout=0.0)


@pytest.mark.parametrize("name", ["pointnet", "pointnet2", "dgcnn"])
def test_tinvnet_makes_every_shared_backbone_invariant(name):
    """PointNet++ starts farthest-point sampling at each cloud's first point, so it (and TinvNet around it)
    depends on the point order; every other transformation is tested for all three backbones."""
    pos, batch = clouds()
    model = TinvNet(_shared_backbone(name)).eval()
    assert_equivariant(as_batch(model), (pos, batch), ("position", "batch"), "global_scalar", scaling=True,
                       permutation=name != "pointnet2", n_samples=2, tol=1e-10)
    raw = equivariance_error(as_batch(_shared_backbone(name).eval()), (pos, batch), ("position", "batch"),
                             "global_scalar", permutation=False, n_samples=2)
    assert raw["rotation"] > 1e-4  # negative control: the backbone alone is not invariant


def test_frame_averaging_works_with_the_shared_pointnet_on_a_cube():
    """(DGCNN is left out on purpose: on an exactly symmetric cloud its k-NN graphs, in feature space too,
    have ties that it breaks by point index, which no input canonicalisation can fix.)"""
    from tinv_helpers import cube_vertices

    name = "pointnet"
    pos = torch.cat([cube_vertices(), generic_cloud(12, 21)])
    batch = torch.repeat_interleave(torch.arange(2), torch.tensor([8, 12]))
    model = TinvNet(_shared_backbone(name), degenerate="average").eval()
    assert_equivariant(as_batch(model), (pos, batch), ("position", "batch"), "global_scalar", scaling=True,
                       n_samples=2, tol=1e-10)


def test_no_gradient_flows_through_the_eigendecomposition_on_a_cube():
    """methods.md 3.7: eigenvector gradients are NaN at repeated eigenvalues (a cube: a triple one).
    TinvNet embeds without gradient, so training on such shapes keeps finite parameter gradients."""
    from tinv_helpers import cube_vertices

    pos = cube_vertices().requires_grad_(True)
    assert mds_embedding(pos).embedding.requires_grad  # the plain function is differentiable (and NaN here)
    model = as_batch(tiny_tinvnet()).double()
    model(pos, torch.zeros(8, dtype=torch.long)).pow(2).sum().backward()
    assert pos.grad is None
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(bool(torch.isfinite(g).all()) for g in grads)
