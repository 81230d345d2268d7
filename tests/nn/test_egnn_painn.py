import pytest
import torch
from layer_checks import state_dict_roundtrip

from geomdl.nn.egnn import EGNNLayer
from geomdl.nn.painn import PaiNNLayer
from geomdl.testing import assert_equivariant, equivariance_error


def _graph(n=8, c=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(n, 3, generator=g, dtype=torch.float64)
    h = torch.randn(n, c, generator=g, dtype=torch.float64)
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    keep = i != j
    return h, pos, torch.stack([j[keep], i[keep]]), g


@pytest.mark.parametrize("opts", [{}, {"attention": True, "normalize": True, "tanh": True, "coords_agg": "sum"}])
def test_egnn_e3_equivariance(opts):
    h, pos, e, g = _graph()
    layer = EGNNLayer(4, 8, **opts)
    torch.nn.init.normal_(layer.phi_x[-1].weight)  # make the coordinate update non-negligible
    errs = assert_equivariant(layer, (h, pos, e), ("scalar", "position", "edge_index"), ("scalar", "position"))
    assert set(errs) >= {"rotation", "reflection", "translation", "permutation", "combined"}


def test_egnn_edge_attr_and_coordinate_update_nontrivial():
    h, pos, e, g = _graph()
    a = torch.randn(e.shape[1], 2, generator=g, dtype=torch.float64)
    layer = EGNNLayer(4, 8, edge_channels=2).double()
    torch.nn.init.normal_(layer.phi_x[-1].weight)
    h2, pos2 = layer(h, pos, e, a)
    assert (pos2 - pos).abs().max() > 1e-3
    layer_fixed = EGNNLayer(4, 8, update_coords=False).double()
    assert torch.equal(layer_fixed(h, pos, e)[1], pos)


def test_egnn_negative_control_breaking_equivariance_is_detected():
    h, pos, e, _ = _graph()
    layer = EGNNLayer(4, 8).double()
    torch.nn.init.normal_(layer.phi_x[-1].weight)
    errs = equivariance_error(lambda h, p, e: layer(h, p + p[:, :1] ** 2, e), (h, pos, e), ("scalar", "position", "edge_index"), ("scalar", "position"))
    assert errs["rotation"] > 1e-4


def test_egnn_gradcheck_and_roundtrip():
    h, pos, e, _ = _graph(5, 3)
    layer = EGNNLayer(3, 4, attention=True).double()
    torch.nn.init.normal_(layer.phi_x[-1].weight)
    assert torch.autograd.gradcheck(lambda a, b: layer(a, b, e), (h.requires_grad_(), pos.requires_grad_()))
    state_dict_roundtrip(lambda: EGNNLayer(3, 4).double(), lambda m: m(h.detach(), pos.detach(), e))


def test_painn_e3_equivariance_with_vectors():
    h, pos, e, g = _graph(7, 4)
    v = torch.randn(7, 4, 3, generator=g, dtype=torch.float64)
    layer = PaiNNLayer(4, num_rbf=6, cutoff=3.0)
    assert_equivariant(layer, (h, v, pos, e), ("scalar", "vector", "position", "edge_index"), ("scalar", "vector"))
    layer_b = PaiNNLayer(4, num_rbf=6, cutoff=3.0, radial="bessel")
    assert_equivariant(layer_b, (h, torch.zeros_like(v), pos, e), ("scalar", "vector", "position", "edge_index"), ("scalar", "vector"))


def test_painn_vectors_are_polar_not_axial():
    # the layer must *not* be equivariant when the vectors are declared pseudovectors (reflection differs)
    h, pos, e, g = _graph(6, 3)
    v = torch.randn(6, 3, 3, generator=g, dtype=torch.float64)
    errs = equivariance_error(PaiNNLayer(3, 5, 3.0), (h, v, pos, e), ("scalar", "pseudovector", "position", "edge_index"), ("scalar", "pseudovector"))
    assert errs["rotation"] < 1e-10 and errs["reflection"] > 1e-4


def test_painn_gradcheck_second_order_at_zero_vectors_and_roundtrip():
    h, pos, e, _ = _graph(4, 2)
    v = torch.zeros(4, 2, 3, dtype=torch.float64)
    layer = PaiNNLayer(2, num_rbf=4, cutoff=3.0).double()
    f = lambda p: layer(h, v, p, e)[0].sum()  # noqa: E731
    assert torch.autograd.gradcheck(lambda a, b, p: layer(a, b, p, e), (h.clone().requires_grad_(), v.clone().requires_grad_(), pos.clone().requires_grad_()))
    assert torch.autograd.gradgradcheck(f, (pos.clone().requires_grad_(),))
    v1 = torch.randn(4, 2, 3, dtype=torch.float64)
    state_dict_roundtrip(lambda: PaiNNLayer(2, 4, 3.0).double(), lambda m: m(h, v1, pos, e))


def test_errors():
    with pytest.raises(ValueError, match="channels"):
        EGNNLayer(0)
    # edge_channels=-1 used to be accepted (then every call asked for edge_attr [E, -1]); hidden_channels=0
    # was reported by the inner MLP as "channels must be positive ints, got [17, 0, 0]"
    with pytest.raises(ValueError, match="edge_channels must be an int >= 0, got -1"):
        EGNNLayer(4, edge_channels=-1)
    with pytest.raises(ValueError, match="hidden_channels must be an int >= 1, got 0"):
        EGNNLayer(4, hidden_channels=0)
    layer = PaiNNLayer(4)
    with pytest.raises(ValueError, match=r"v must have shape \[3, 4, 3\]"):
        layer(torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 3), torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="edge_attr is required"):
        EGNNLayer(2, edge_channels=3)(torch.randn(3, 2), torch.randn(3, 3), torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="radial"):
        PaiNNLayer(4, radial="fourier")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0.0, -1.0, "15", True])
def test_egnn_coords_range_must_be_positive_finite(bad):
    """``coords_range`` was taken by ``float()``: NaN made every coordinate NaN (with ``tanh=True``), 0 silently
    froze the coordinates, a negative value flipped the update."""
    with pytest.raises(ValueError, match="coords_range must be a finite number > 0"):
        EGNNLayer(4, tanh=True, coords_range=bad)
