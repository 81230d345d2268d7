"""PONITA's radius-graph cap: a warning when a node reaches max_num_neighbors, none below it."""
from __future__ import annotations

import warnings

import pytest
import torch

from geomdl.nn.ponita import Ponita, build_edges


def _molecule(n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=gen, dtype=torch.float64), torch.randn(n, 2, generator=gen, dtype=torch.float64)


def test_lifted_mode_warns_when_the_lifted_graph_reaches_the_cap():
    # 12 atoms inside the radius: 132 lifted nodes, each within the radius of all others
    pos, x = _molecule(12)
    model = Ponita(2, 1, num_ori=-1, radius=100.0, hidden=8, layers=1, max_num_neighbors=100).double()
    with pytest.warns(UserWarning, match="max_num_neighbors=100"):
        model(pos, x)
    roomy = Ponita(2, 1, num_ori=-1, radius=100.0, hidden=8, layers=1, max_num_neighbors=1000).double()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        roomy(pos, x)


def test_build_edges_warns_only_when_a_node_is_at_the_cap():
    pos, _ = _molecule(10)
    batch = torch.zeros(10, dtype=torch.long)
    with pytest.warns(UserWarning, match="may have been dropped"):
        capped = build_edges(pos, batch, 100.0, loop=False, max_num_neighbors=5)
    assert torch.bincount(capped[1]).max() == 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        full = build_edges(pos, batch, 100.0, loop=False, max_num_neighbors=10)
        build_edges(pos, batch, None, loop=False, max_num_neighbors=1)  # fully connected: no cap
    assert full.shape[1] == 90


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_max_num_neighbors_is_checked(bad):
    with pytest.raises(ValueError, match="max_num_neighbors"):
        Ponita(2, 1, num_ori=0, radius=1.0, max_num_neighbors=bad)
