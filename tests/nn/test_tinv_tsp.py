"""TinvNN TSP experiment: exact solver, heuristics, decoding, and the invariance of the TSP model."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl.models.tinv_tsp import TSPEdgeNet
from geomdl.pipelines.tsp.experiment import random_similarity, run_experiment, tour_adjacency
from geomdl.pipelines.tsp.solvers import (
    brute_force,
    distance_matrix,
    greedy_edge_decode,
    held_karp,
    local_search,
    nearest_neighbour,
    tour_length,
)
from geomdl.testing import assert_equivariant


def is_tour(tour, n):
    return sorted(np.asarray(tour).tolist()) == list(range(n))


@settings(max_examples=25, deadline=None)
@given(st.integers(3, 7), st.integers(0, 2**31 - 1))
def test_held_karp_matches_brute_force(n, seed):
    dist = distance_matrix(np.random.default_rng(seed).random((n, 2)))
    length, tour = held_karp(dist)
    best, _ = brute_force(dist)
    assert is_tour(tour, n) and tour[0] == 0
    assert abs(length - best) < 1e-12 and abs(tour_length(dist, tour) - best) < 1e-12


def test_held_karp_batched_equals_one_by_one():
    dist = distance_matrix(np.random.default_rng(1).random((6, 9, 2)))
    lengths, tours = held_karp(dist)
    for b in range(6):
        single, _ = held_karp(dist[b])
        assert abs(single - lengths[b]) < 1e-12 and abs(tour_length(dist[b], tours[b]) - lengths[b]) < 1e-12


@settings(max_examples=20, deadline=None)
@given(st.integers(4, 9), st.integers(0, 2**31 - 1))
def test_heuristics_return_valid_tours_no_shorter_than_the_optimum(n, seed):
    dist = distance_matrix(np.random.default_rng(seed).random((n, 2)))
    optimum, _ = held_karp(dist)
    nn_tour = nearest_neighbour(dist)
    ls_tour = local_search(dist, nn_tour)
    assert is_tour(nn_tour, n) and is_tour(ls_tour, n)
    assert optimum - 1e-12 <= tour_length(dist, ls_tour) <= tour_length(dist, nn_tour) + 1e-12


@settings(max_examples=20, deadline=None)
@given(st.integers(3, 12), st.integers(0, 2**31 - 1))
def test_greedy_decoding_always_gives_a_tour_and_recovers_a_given_cycle(n, seed):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(n, n))
    scores = scores + scores.T
    assert is_tour(greedy_edge_decode(scores), n)
    cycle = rng.permutation(n)
    adj = tour_adjacency(cycle[None])[0]
    decoded = greedy_edge_decode(adj + 0.01 * rng.random((n, n)))
    dist = distance_matrix(rng.random((n, 2)))
    assert abs(tour_length(dist, decoded) - tour_length(dist, cycle)) < 1e-12


def test_held_karp_rejects_bad_input():
    with pytest.raises(ValueError, match="square"):
        held_karp(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="max_cities"):
        held_karp(np.zeros((20, 20)))


def test_tsp_model_scores_are_invariant_for_planar_instances_in_space():
    """Cities in the plane z = 0 of R^3: the dim-2 embedding is exact, so O(3) covers O(2)."""
    torch.manual_seed(0)
    model = TSPEdgeNet(invariant=True, hidden_channels=16, num_layers=2)
    cities = torch.cat([torch.rand(10, 2, dtype=torch.float64), torch.zeros(10, 1, dtype=torch.float64)], 1)

    class Fn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, pos):
            return self.model(pos[None])[0]

    assert_equivariant(Fn(), cities, "position", "global_scalar", scaling=True, permutation=False, tol=1e-10)


def test_tsp_model_refuses_3d_instances_off_a_plane():
    """[B, n, 3] cities off a plane were cut to their two main axes silently (distances no longer the cities')."""
    model = TSPEdgeNet(invariant=True, hidden_channels=8, num_layers=1)
    gen = torch.Generator().manual_seed(0)
    flat = torch.rand(2, 9, 2, generator=gen)
    planar = torch.cat([flat, torch.zeros(2, 9, 1)], 2) @ torch.linalg.qr(torch.randn(3, 3, generator=gen))[0].T
    torch.testing.assert_close(model.features(planar)[0], model.features(flat)[0], atol=1e-5, rtol=0)
    bumpy = planar.clone()
    bumpy[1, :, 2] += 0.1 * torch.rand(9, generator=gen)
    with pytest.raises(ValueError, match=r"pos\[1\] is not planar"):
        model.features(bumpy)


def test_tsp_model_is_permutation_equivariant_and_2d_invariant():
    torch.manual_seed(0)
    model = TSPEdgeNet(invariant=True, hidden_channels=16, num_layers=2).double()
    pos = np.random.default_rng(3).random((4, 11, 2))
    moved = random_similarity(pos, 5)
    with torch.no_grad():
        a = model(torch.tensor(pos))
        b = model(torch.tensor(moved))
        perm = torch.randperm(11)
        c = model(torch.tensor(pos)[:, perm])
    assert torch.allclose(a, b, atol=1e-10, rtol=0)
    assert torch.allclose(c, a[:, perm][:, :, perm], atol=1e-10, rtol=0)


def test_raw_baseline_is_not_invariant():
    torch.manual_seed(0)
    model = TSPEdgeNet(invariant=False, hidden_channels=16, num_layers=2).double()
    pos = np.random.default_rng(3).random((2, 8, 2))
    with torch.no_grad():
        diff = (model(torch.tensor(pos)) - model(torch.tensor(random_similarity(pos, 1)))).abs().max()
    assert float(diff) > 1e-3


def test_small_experiment_runs_and_the_tinvnn_model_is_unchanged_by_transformations():
    result = run_experiment(n=8, num_train=96, num_test=16, epochs=2, progress=False, hidden_channels=16, num_layers=2)
    rows = {(r["solver"], r["test_set"]): r for r in result["rows"]}
    tinv_orig = rows[("TinvNN model (greedy)", "original")]
    tinv_moved = rows[("TinvNN model (greedy)", "transformed")]
    assert abs(tinv_orig["gap_mean_pct"] - tinv_moved["gap_mean_pct"]) < 1e-6
    assert result["invariance"]["share_identical_tours"] == 1.0
    assert result["invariance"]["optimum_scale_check"] < 1e-10
    assert all(r["gap_mean_pct"] >= -1e-9 for r in result["rows"])  # nothing beats the exact optimum
