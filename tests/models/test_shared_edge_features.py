"""PaiNN and NequIP compute the parameter-free edge inputs of their layers (geometry, radial basis / spherical
harmonics, cutoff) once per forward and share them between layers with equal ``edge_key``: the results equal
those of every layer computing its own (up to float summation order in the gradients)."""
from __future__ import annotations

import pytest
import torch

from benchmarks.edge_features import _per_layer  # the peer of the benchmark: every layer its own features
from benchmarks.full_graph import full_graph_loop  # the per-graph loop full_graph replaced
from geomdl.models.nequip import NequIP
from geomdl.models.painn import PaiNN


def _inputs():
    g = torch.Generator().manual_seed(0)
    z = torch.randint(1, 9, (14,), generator=g)
    pos = torch.randn(14, 3, generator=g, dtype=torch.float64) * 1.2
    return z, pos, torch.tensor([0] * 6 + [1] * 8)


def _energy_forces_grads(model, z, pos, batch):
    model.zero_grad(set_to_none=True)
    e, f = model.energy_and_forces(z, pos, batch, create_graph=True)
    (e.pow(2).sum() + f.pow(2).sum()).backward()
    return e.detach(), f.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]


def _compare(model):
    z, pos, batch = _inputs()
    shared = _energy_forces_grads(model, z, pos, batch)
    model.node_outputs = _per_layer(model)
    try:
        own = _energy_forces_grads(model, z, pos, batch)
    finally:
        del model.node_outputs
    torch.testing.assert_close(shared[0], own[0], rtol=0, atol=0)  # the forward is the same arithmetic
    torch.testing.assert_close(shared[1], own[1], rtol=1e-12, atol=1e-12)
    assert len(shared[2]) == len(own[2])
    for a, b in zip(shared[2], own[2]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("radial", ["gaussian", "bessel"])
def test_painn_shared_edge_features_equal_per_layer(radial):
    torch.manual_seed(0)
    _compare(PaiNN(hidden_channels=8, num_layers=3, num_elements=10, cutoff=4.0, radial=radial).double())


@pytest.mark.parametrize("product", ["cg", "gaunt"])
def test_nequip_shared_edge_features_equal_per_layer(product):
    torch.manual_seed(0)
    _compare(NequIP(hidden_channels=8, num_layers=3, lmax=2, num_elements=10, cutoff=4.0, product=product).double())


def test_painn_layers_with_own_buffers_are_not_shared():
    """A Bessel basis has a frequency buffer per layer, which a state_dict may set differently per layer:
    such layers compute their own features (and the result follows the loaded frequencies)."""
    torch.manual_seed(0)
    model = PaiNN(hidden_channels=8, num_layers=2, num_elements=10, cutoff=4.0, radial="bessel").double()
    keys = {layer.edge_key() for layer in model.layers}
    assert len(keys) == 2
    state = model.state_dict()
    state["layers.1.rbf.freq"] = state["layers.1.rbf.freq"] * 1.5
    model.load_state_dict(state)
    _compare(model)
    gauss = PaiNN(hidden_channels=8, num_layers=3, num_elements=10, cutoff=4.0)
    assert len({layer.edge_key() for layer in gauss.layers}) == 1  # parameter-free basis: computed once


def test_nequip_radial_basis_stays_per_layer():
    """NequIP's layers share lengths, harmonics and envelope; each applies its own Bessel frequencies."""
    torch.manual_seed(0)
    model = NequIP(hidden_channels=8, num_layers=2, lmax=1, num_elements=10, cutoff=4.0).double()
    assert len({conv.edge_key() for conv in model.layers}) == 1
    state = model.state_dict()
    state["layers.1.basis.freq"] = state["layers.1.basis.freq"] * 0.7
    model.load_state_dict(state)
    _compare(model)


def test_layer_edge_features_argument_equals_default():
    from geomdl.nn import PaiNNLayer

    g = torch.Generator().manual_seed(1)
    layer = PaiNNLayer(8, num_rbf=6, cutoff=4.0).double()
    pos = torch.randn(7, 3, generator=g, dtype=torch.float64)
    edge_index = torch.combinations(torch.arange(7), 2).T
    edge_index = torch.cat([edge_index, edge_index.flip(0)], 1)
    s, v = torch.randn(7, 8, generator=g, dtype=torch.float64), torch.randn(7, 8, 3, generator=g, dtype=torch.float64)
    a = layer(s, v, pos, edge_index)
    b = layer(s, v, pos, edge_index, edge_features=layer.edge_features(pos, edge_index))
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_full_graph_equals_the_per_graph_loop():
    from geomdl.models._molecular import full_graph

    g = torch.Generator().manual_seed(0)
    cases = [torch.tensor([], dtype=torch.long), torch.tensor([0]), torch.tensor([0, 0]), torch.tensor([0, 1, 1, 1]),
             torch.tensor([0, 0, 2, 2, 2]), torch.tensor([1, 1, 1]), torch.tensor([0, 1, 2])]
    for _ in range(100):  # graphs of 0 (skipped ids) to 6 nodes
        sizes = torch.randint(0, 7, (int(torch.randint(1, 10, (1,), generator=g)),), generator=g)
        cases.append(torch.repeat_interleave(torch.arange(len(sizes)), sizes))
    for batch in cases:
        expected, got = full_graph_loop(batch), full_graph(batch)
        assert got.dtype == expected.dtype and torch.equal(got, expected), batch
