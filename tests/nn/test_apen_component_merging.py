"""APEN's EM merge step: absorbed components hand their weight to the root of their chain."""
from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl.nn.apen.partition import cluster_votes, merge_close_components


def _means(xs):
    mu = torch.zeros(1, len(xs), 3, dtype=torch.float64)
    mu[0, :, 0] = torch.tensor(xs, dtype=torch.float64)
    return mu


def test_a_chain_of_close_components_keeps_the_cloud_weight():
    # A-B and B-C closer than 1, A-C not: C is absorbed into B, B into A; C's weight must reach A
    pi = torch.tensor([[0.5, 0.3, 0.2]], dtype=torch.float64)
    alive = torch.ones(1, 3, dtype=torch.bool)
    new_pi, new_alive = merge_close_components(_means([0.0, 0.8, 1.6]), pi, alive, 1.0)
    assert new_alive.tolist() == [[True, False, False]]
    assert torch.allclose(new_pi, torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64))


def test_far_or_dead_components_are_left_alone():
    pi = torch.tensor([[0.5, 0.3, 0.2]], dtype=torch.float64)
    alive = torch.tensor([[True, False, True]])
    # the dead middle component bridges nothing: 0 and 2 are 1.6 apart
    new_pi, new_alive = merge_close_components(_means([0.0, 0.8, 1.6]), pi, alive, 1.0)
    assert torch.equal(new_pi, pi) and torch.equal(new_alive, alive)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3), st.integers(1, 6), st.integers(0, 10_000), st.floats(0.05, 2.0))
def test_merging_conserves_weight_and_leaves_no_two_survivors_close(clouds, k, seed, distance):
    gen = torch.Generator().manual_seed(seed)
    mu = torch.rand(clouds, k, 3, generator=gen, dtype=torch.float64) * 2
    alive = torch.rand(clouds, k, generator=gen) < 0.8
    pi = torch.where(alive, torch.rand(clouds, k, generator=gen, dtype=torch.float64), torch.zeros(clouds, k, dtype=torch.float64))
    new_pi, new_alive = merge_close_components(mu, pi, alive, distance)
    assert torch.allclose(new_pi.sum(1), pi.sum(1), rtol=1e-12, atol=1e-15)
    assert bool((new_pi[~new_alive] == 0).all()) and bool((new_alive <= alive).all())
    # the lowest live component of a cloud always survives
    for b in range(clouds):
        live = alive[b].nonzero().flatten()
        if live.numel():
            assert bool(new_alive[b, live[0]])


def test_cluster_votes_still_merges_three_collapsed_parts_into_one():
    gen = torch.Generator().manual_seed(0)
    votes = torch.randn(30, 3, generator=gen, dtype=torch.float64) * 0.01
    part = torch.arange(30) // 10
    new_part, count, soft, _ = cluster_votes(votes, part, torch.zeros(30, dtype=torch.long), sigma=0.5)
    assert count == 1 and bool((new_part == 0).all()) and torch.allclose(soft.sum(1), torch.ones(30, dtype=torch.float64))
