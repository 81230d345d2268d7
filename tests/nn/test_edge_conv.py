import pytest
import torch
from layer_checks import state_dict_roundtrip

from geomdl import ops
from geomdl.nn.edge_conv import DynamicEdgeConv, EdgeConv
from geomdl.testing import assert_equivariant


def _data(n=10, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=g, dtype=torch.float64)


def test_matches_pyg_edgeconv():
    from torch_geometric.nn import EdgeConv as PyGEdgeConv

    x = _data(30, 4)
    edge_index = ops.knn_graph(x, 6)
    conv = EdgeConv(4, 8, (16,)).double()
    peer = PyGEdgeConv(torch.nn.Identity())
    peer.nn = conv.mlp
    torch.testing.assert_close(conv(x, edge_index), peer(x, edge_index))
    conv1 = EdgeConv(4, 5, (), aggr="mean").double()
    peer_mean = PyGEdgeConv(torch.nn.Identity(), aggr="mean")
    peer_mean.nn = conv1.mlp
    torch.testing.assert_close(conv1(x, edge_index), peer_mean(x, edge_index))


def test_dynamic_matches_edgeconv_on_feature_knn():
    x = _data(20, 3)
    batch = torch.repeat_interleave(torch.arange(2), torch.tensor([12, 8]))
    dyn = DynamicEdgeConv(3, 6, k=4, hidden_channels=(8,)).double()
    e = ops.knn_graph(x, 4, batch, loop=True)
    torch.testing.assert_close(dyn(x, batch), EdgeConv.forward(dyn, x, e))
    # neighbourhoods stay inside each cloud: changing cloud 1 does not change cloud 0's output
    x2 = x.clone()
    x2[12:] += 5.0
    torch.testing.assert_close(dyn(x2, batch)[:12], dyn(x, batch)[:12])


def test_permutation_equivariance():
    x = _data(9, 3)
    batch = torch.zeros(9, dtype=torch.long)
    dyn = DynamicEdgeConv(3, 4, k=3, hidden_channels=(5,))
    i, j = torch.meshgrid(torch.arange(9), torch.arange(9), indexing="ij")
    full = torch.stack([j[i != j], i[i != j]])
    conv = EdgeConv(3, 4, (5,))
    for fn, inputs, types in ((conv, (x, full), ("scalar", "edge_index")), (dyn, (x, batch), ("scalar", "batch"))):
        # rotations/reflections act trivially on "scalar" inputs, so only the permutation part is informative here
        assert_equivariant(fn, inputs, types, "scalar", translation=False)


def test_gradcheck_and_roundtrip():
    x = _data(7, 2).requires_grad_()
    e = ops.knn_graph(x.detach(), 3)
    conv = EdgeConv(2, 3, (4,)).double()
    assert torch.autograd.gradcheck(lambda a: conv(a, e), (x,))
    dyn = DynamicEdgeConv(2, 3, k=3, hidden_channels=(4,)).double()
    assert torch.autograd.gradcheck(lambda a: dyn(a), (x,), fast_mode=True)
    state_dict_roundtrip(lambda: DynamicEdgeConv(2, 3, k=3).double(), lambda m: m(x.detach()))


def test_errors():
    with pytest.raises(ValueError, match="k must"):
        DynamicEdgeConv(3, 4, k=0)
    conv = EdgeConv(3, 4)
    with pytest.raises(ValueError, match=r"x must have shape \[N, 3\]"):
        conv(torch.randn(4, 2), torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="batch must be sorted"):
        DynamicEdgeConv(3, 4, k=2)(torch.randn(4, 3), torch.tensor([1, 0, 0, 1]))
