import numpy as np
import pytest
import torch
from layer_checks import state_dict_roundtrip

from geomdl import ops
from geomdl.nn.point_net import FeaturePropagation, GlobalSetAbstraction, PointNetConv, SetAbstraction, knn_interpolate
from geomdl.testing import equivariance_error


def _cloud(n=10, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g, dtype=torch.float64), torch.randn(n, c, generator=g, dtype=torch.float64)


def _full_graph(n):
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    keep = i != j
    return torch.stack([j[keep], i[keep]])


def test_matches_pyg_pointnetconv():
    from torch_geometric.nn import PointNetConv as PyGPointNetConv

    pos, x = _cloud(30, 4)
    edge_index = ops.radius_graph(pos, 1.2)
    conv = PointNetConv(4, 8, (16, 16)).double()
    peer = PyGPointNetConv(local_nn=torch.nn.Linear(1, 1), add_self_loops=False).double()
    peer.local_nn = conv.mlp  # PyG's constructor would re-initialise the MLP; assign afterwards
    torch.testing.assert_close(conv(x, pos, edge_index), peer(x, pos, edge_index))
    # positions only, bipartite
    conv0 = PointNetConv(0, 5, 7).double()
    peer.local_nn = conv0.mlp
    centres = pos[:7]
    e = ops.radius(pos, centres, 1.5)
    torch.testing.assert_close(conv0(None, pos, e, pos_dst=centres), peer((None, None), (pos, centres), e))


def test_translation_permutation_invariance_and_not_rotation():
    pos, x = _cloud(9, 3)
    conv = PointNetConv(3, 6, (8,))
    errs = equivariance_error(conv, (x, pos, _full_graph(9)), ("scalar", "position", "edge_index"), "scalar")
    assert errs["translation"] < 1e-12 and errs["permutation"] < 1e-12
    assert errs["rotation"] > 1e-3  # declared group: translations and permutations only


def test_gradcheck():
    pos, x = _cloud(6, 2)
    conv = PointNetConv(2, 3, (4,), aggr="mean").double()
    e = _full_graph(6)
    assert torch.autograd.gradcheck(lambda a, b: conv(a, b, e), (x.requires_grad_(), pos.requires_grad_()))
    convm = PointNetConv(2, 3, (4,)).double()
    assert torch.autograd.gradcheck(lambda a, b: convm(a, b, e), (x, pos))


def test_state_dict_roundtrip():
    pos, x = _cloud(8, 3)
    e = _full_graph(8)
    state_dict_roundtrip(lambda: PointNetConv(3, 4, (5,)).double(), lambda m: m(x, pos, e))


def test_set_abstraction_and_feature_propagation():
    g = torch.Generator().manual_seed(3)
    pos = torch.randn(40, 3, generator=g, dtype=torch.float64)
    x = torch.randn(40, 2, generator=g, dtype=torch.float64)
    batch = torch.repeat_interleave(torch.arange(2), torch.tensor([25, 15]))
    sa = SetAbstraction(2, 8, ratio=0.5, r=1.0, hidden_channels=(16,)).double()
    xc, pc, bc = sa(x, pos, batch)
    assert xc.shape == (13 + 8, 8) and pc.shape == (21, 3) and bc.tolist() == [0] * 13 + [1] * 8
    # translation invariance of the features (FPS and radius are translation invariant)
    xt, pt, _ = sa(x, pos + torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64), batch)
    torch.testing.assert_close(xt, xc)
    # permutation of the non-start points permutes nothing in the output (FPS starts at each cloud's first point)
    perm = torch.cat([torch.tensor([0]), 1 + torch.randperm(24, generator=g), torch.tensor([25]), 26 + torch.randperm(14, generator=g)])
    xp, pp, _ = sa(x[perm], pos[perm], batch)
    torch.testing.assert_close(xp, xc)
    torch.testing.assert_close(pp, pc)
    gsa = GlobalSetAbstraction(8, 12, (16,)).double()
    xg, pg, bg = gsa(xc, pc, bc)
    assert xg.shape == (2, 12) and bg.tolist() == [0, 1]
    fp = FeaturePropagation(8, 2, 6, hidden_channels=(10,), k=3).double()
    xf, pf, bf = fp(xc, pc, bc, x, pos, batch)
    assert xf.shape == (40, 6) and torch.equal(pf, pos)
    state_dict_roundtrip(lambda: SetAbstraction(2, 8, 0.5, 1.0, (16,)).double(), lambda m: m(x, pos, batch)[0])
    assert torch.autograd.gradcheck(lambda a: fp(xc, pc, bc, a, pos, batch)[0], (x.clone().requires_grad_(),), fast_mode=True)


def test_knn_interpolate_exact_at_sources_and_weights():
    pos, x = _cloud(12, 3)
    out = knn_interpolate(x, pos, pos, k=3)
    torch.testing.assert_close(out, x)
    # one target, two sources at distances 1 and 2 -> weights 1 and 1/4
    src = torch.tensor([[1.0, 0, 0], [0, 2.0, 0]], dtype=torch.float64)
    val = torch.tensor([[1.0], [0.0]], dtype=torch.float64)
    out = knn_interpolate(val, src, torch.zeros(1, 3, dtype=torch.float64), k=2)
    torch.testing.assert_close(out, torch.tensor([[0.8]], dtype=torch.float64))


def test_errors():
    conv = PointNetConv(3, 4)
    pos = torch.randn(5, 3)
    with pytest.raises(ValueError, match="x is required"):
        conv(None, pos, _full_graph(5))
    with pytest.raises(ValueError, match=r"x must have shape \[5, 3\]"):
        conv(torch.randn(5, 2), pos, _full_graph(5))
    with pytest.raises(ValueError, match="pos must have shape"):
        conv(torch.randn(5, 3), torch.randn(5, 2), _full_graph(5))
    with pytest.raises(ValueError, match="ratio"):
        SetAbstraction(0, 4, ratio=1.5, r=1.0)
    with pytest.raises(ValueError, match="in_channels"):
        PointNetConv(-1, 3)


def test_global_sa_and_fp_symmetries_gradcheck_roundtrip():
    g = torch.Generator().manual_seed(5)
    pos_f = torch.randn(14, 3, generator=g, dtype=torch.float64)
    x_f = torch.randn(14, 2, generator=g, dtype=torch.float64)
    batch_f = torch.tensor([0] * 8 + [1] * 6)
    pos_c, x_c, batch_c = pos_f[[0, 3, 5, 8, 11]], torch.randn(5, 4, generator=g, dtype=torch.float64), torch.tensor([0, 0, 0, 1, 1])
    t = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    gsa = GlobalSetAbstraction(2, 6, (8,)).double()
    out, centre, _ = gsa(x_f, pos_f, batch_f)
    torch.testing.assert_close(gsa(x_f, pos_f + t, batch_f)[0], out)             # translation invariant (centred)
    perm = torch.cat([torch.randperm(8, generator=g), 8 + torch.randperm(6, generator=g)])
    torch.testing.assert_close(gsa(x_f[perm], pos_f[perm], batch_f)[0], out)     # permutation invariant
    torch.testing.assert_close(centre[0], pos_f[:8].mean(0))
    fp = FeaturePropagation(4, 2, 5, hidden_channels=(6,), k=2).double()
    y = fp(x_c, pos_c, batch_c, x_f, pos_f, batch_f)[0]
    torch.testing.assert_close(fp(x_c, pos_c + t, batch_c, x_f, pos_f + t, batch_f)[0], y)
    torch.testing.assert_close(fp(x_c, pos_c, batch_c, x_f[perm], pos_f[perm], batch_f)[0], y[perm])
    assert torch.autograd.gradcheck(lambda a, p: gsa(a, p, batch_f)[0], (x_f.clone().requires_grad_(), pos_f.clone().requires_grad_()),
                                    fast_mode=True)
    assert torch.autograd.gradcheck(lambda a: fp(a, pos_c, batch_c, x_f, pos_f, batch_f)[0], (x_c.clone().requires_grad_(),), fast_mode=True)
    state_dict_roundtrip(lambda: GlobalSetAbstraction(2, 6, (8,)).double(), lambda m: m(x_f, pos_f, batch_f)[0])
    state_dict_roundtrip(lambda: FeaturePropagation(4, 2, 5, (6,), k=2).double(), lambda m: m(x_c, pos_c, batch_c, x_f, pos_f, batch_f)[0])


def test_set_abstraction_gradcheck():
    g = torch.Generator().manual_seed(6)
    pos = torch.randn(10, 3, generator=g, dtype=torch.float64)
    x = torch.randn(10, 2, generator=g, dtype=torch.float64)
    sa = SetAbstraction(2, 3, ratio=0.5, r=1.5, hidden_channels=(4,)).double()
    assert torch.autograd.gradcheck(lambda a, p: sa(a, p)[0], (x.requires_grad_(), pos.requires_grad_()), fast_mode=True)


@pytest.mark.parametrize("make, message", [
    (lambda: SetAbstraction(0, 4, ratio=0.5, r=1.0, max_num_neighbors=2.7), r"max_num_neighbors must be an int >= 1, got 2.7"),
    (lambda: SetAbstraction(0, 4, ratio=0.5, r=1.0, max_num_neighbors=0), r"max_num_neighbors must be an int >= 1, got 0"),
    (lambda: SetAbstraction(0, 4, ratio=0.5, r=float("inf")), r"r must be a positive finite number, got inf"),
    (lambda: SetAbstraction(0, 4, ratio=True, r=1.0), r"ratio must lie in \(0, 1\], got True"),
    (lambda: GlobalSetAbstraction(3, 4, pos_dim=-1), r"pos_dim must be an int >= 1, got -1"),
    (lambda: GlobalSetAbstraction(3, 4, pos_dim=0), r"pos_dim must be an int >= 1, got 0"),
])
def test_bad_constructor_arguments_are_rejected_when_built(make, message):
    """Were accepted: a float neighbour count truncated (2.7 -> 2), a bad count or radius failing only at the first
    forward, ``pos_dim=-1`` building an MLP one input too narrow (``in_channels + pos_dim``)."""
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("eps", [0.0, -1.0, float("nan")])
def test_knn_interpolate_rejects_a_non_positive_eps(eps):
    """``eps <= 0`` was accepted: a target on a source then got the weight ``1 / 0`` and a NaN output."""
    pos, x = _cloud(6, 2)
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        knn_interpolate(x, pos, pos, k=3, eps=eps)


def test_knn_interpolate_takes_numpy_and_0d_tensor_eps():
    """The eps check refused a 0-d tensor (and is to take NumPy reals), which the clamp had always taken."""
    pos, x = _cloud(6, 2)
    ref = knn_interpolate(x, pos, pos + 0.1, k=3, eps=1e-12)
    for eps in (torch.tensor(1e-12), np.float64(1e-12)):
        torch.testing.assert_close(knn_interpolate(x, pos, pos + 0.1, k=3, eps=eps), ref)


def test_set_abstraction_takes_a_numpy_ratio():
    """``ratio=np.float32(0.5)`` (a real number) was refused as out of (0, 1]."""
    layer = SetAbstraction(0, 4, ratio=np.float32(0.5), r=1.0)
    assert layer.ratio == 0.5
