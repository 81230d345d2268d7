import pathlib
import sys

import pytest
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "nn"))
from layer_checks import state_dict_roundtrip  # noqa: E402

from geomdl.models import MODELS  # noqa: E402
from geomdl.models.dgcnn import DGCNN  # noqa: E402
from geomdl.models.pointnet import PointNet  # noqa: E402
from geomdl.models.pointnet2 import PointNet2  # noqa: E402
from geomdl.testing import equivariance_error  # noqa: E402

SMALL = {
    "pointnet": lambda **kw: PointNet(local_channels=(8,), global_channels=(16,), head_channels=(8,), dropout=0.0, **kw),
    "pointnet2": lambda **kw: PointNet2(ratios=(0.5,), radii=(1.0,), sa_channels=((8, 8),), global_channels=(16,),
                                        fp_channels=(8, 8), head_channels=(8,), dropout=0.0, **kw),
    "dgcnn": lambda **kw: DGCNN(k=4, conv_channels=(8, 8), emb_channels=16, head_channels=(8,), dropout=0.0, **kw),
}


def _clouds(seed=0, sizes=(12, 9), in_channels=0):
    g = torch.Generator().manual_seed(seed)
    n = sum(sizes)
    pos = torch.randn(n, 3, generator=g, dtype=torch.float64)
    x = torch.randn(n, in_channels, generator=g, dtype=torch.float64) if in_channels else None
    return pos, x, torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))


def test_registered():
    assert {"pointnet", "pointnet2", "dgcnn"} <= set(MODELS)


@pytest.mark.parametrize("name", list(SMALL))
@pytest.mark.parametrize("task", ["graph", "node"])
def test_shapes_features_and_pyg_batch(name, task):
    from torch_geometric.data import Batch, Data

    pos, x, batch = _clouds(in_channels=2)
    model = SMALL[name](out_channels=3, in_channels=2, task=task).double().eval()
    out = model(pos, x, batch)
    assert out.shape == ((2, 3) if task == "graph" else (21, 3))
    data = Batch.from_data_list([Data(pos=pos[:12], x=x[:12]), Data(pos=pos[12:], x=x[12:])])
    torch.testing.assert_close(model(data), out)


@pytest.mark.parametrize("name", ["pointnet", "dgcnn"])
def test_permutation_invariance(name):
    pos, _, batch = _clouds(1)
    model = SMALL[name](out_channels=2).double().eval()
    # only the permutation case is informative (these models are not rotation invariant)
    perm_model = lambda p, b: model(p, None, b)  # noqa: E731
    errs = equivariance_error(perm_model, (pos, batch), ("scalar", "batch"), "global_scalar", translation=False, n_samples=2)
    assert errs["permutation"] < 1e-12
    # node task: permutation equivariant
    node = SMALL[name](out_channels=2, task="node").double().eval()
    errs = equivariance_error(lambda p, b: node(p, None, b), (pos, batch), ("scalar", "batch"), "scalar", translation=False, n_samples=2)
    assert errs["permutation"] < 1e-12


def test_pointnet2_translation_invariant_but_not_rotation():
    pos, _, batch = _clouds(2)
    model = SMALL["pointnet2"](out_channels=2).double().eval()
    errs = equivariance_error(lambda p, b: model(p, None, b), (pos, batch), ("position", "batch"), "global_scalar", permutation=False, n_samples=2)
    assert errs["translation"] < 1e-10
    assert errs["rotation"] > 1e-4


@pytest.mark.parametrize("name", list(SMALL))
def test_gradcheck_and_roundtrip(name):
    pos, _, batch = _clouds(3, sizes=(6, 5))
    model = SMALL[name](out_channels=2).double().eval()
    assert torch.autograd.gradcheck(lambda p: model(p, None, batch), (pos.clone().requires_grad_(),), fast_mode=True)
    state_dict_roundtrip(lambda: SMALL[name](out_channels=2).double(), lambda m: m(pos, None, batch))


def test_other_pos_dim_for_invariant_embeddings():
    g = torch.Generator().manual_seed(4)
    emb = torch.randn(20, 5, generator=g)
    for name in SMALL:
        assert SMALL[name](out_channels=2, pos_dim=5)(emb).shape == (1, 2)


def test_errors():
    with pytest.raises(ValueError, match="task"):
        PointNet(3, task="edge")
    with pytest.raises(ValueError, match=r"x \[N, 2\] is required"):
        PointNet(3, in_channels=2)(torch.randn(5, 3))
    with pytest.raises(ValueError, match="pos must have shape"):
        DGCNN(3)(torch.randn(5, 2))
    with pytest.raises(ValueError, match="one entry per level"):
        PointNet2(3, ratios=(0.5,), radii=(0.2, 0.4))
