"""PONITA maths and layers: grids, invariants, polynomial basis, cutoff, graph helpers, lifting."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl.nn.ponita import (circle_grid, fiber_bundle_conv, fibonacci_sphere, fully_connected_edges, grid_moment_error,
                              invariant_fiber, invariant_fiber_spatial, invariant_point_cloud, invariant_rn, lift_graph,
                              orientation_grid, point_conv, polynomial_dim, polynomial_features, repulsion_sphere,
                              safe_norm, smooth_cutoff)
from geomdl.testing import random_rotation


def test_fibonacci_grid_is_deterministic_unit_and_spread():
    g = fibonacci_sphere(20)
    assert g.shape == (20, 3)
    assert torch.allclose(g.norm(dim=-1), torch.ones(20, dtype=g.dtype))
    assert torch.equal(g, fibonacci_sphere(20))
    assert grid_moment_error(g) < 1e-2
    assert (g @ g.T - 2 * torch.eye(20, dtype=g.dtype)).max() < 0.95  # no two points nearly equal


def test_repulsion_grid_is_seeded_and_near_a_2_design():
    a, b, c = repulsion_sphere(12, seed=3), repulsion_sphere(12, seed=3), repulsion_sphere(12, seed=4)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert torch.allclose(a.norm(dim=-1), torch.ones(12, dtype=a.dtype))
    assert grid_moment_error(a) < 1e-4  # 12 repelling points settle on the icosahedron (a 5-design)
    assert grid_moment_error(repulsion_sphere(6)) < 1e-4  # the octahedron
    with torch.no_grad():  # grids can be built inside no_grad (e.g. models constructed for inference)
        assert torch.equal(repulsion_sphere(12, seed=3), a)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_grid_moment_error_of_a_grid_on_the_gpu():
    g = fibonacci_sphere(20)
    assert grid_moment_error(g.cuda()) == pytest.approx(grid_moment_error(g), abs=1e-15)


def test_circle_grid_and_bad_sizes():
    g = circle_grid(4)
    assert torch.allclose(g, torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]], dtype=g.dtype), atol=1e-15)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="orientations"):
            fibonacci_sphere(bad)
    with pytest.raises(ValueError, match="method"):
        orientation_grid(3, 8, "random")
    with pytest.raises(ValueError, match="method"):  # 2D uses the circle, but a misspelt name is still an error
        orientation_grid(2, 8, "random")
    with pytest.raises(ValueError, match="dim"):
        orientation_grid(4, 8)


def test_polynomial_features_are_tensor_powers():
    a = torch.tensor([[2.0, 3.0]])
    f = polynomial_features(a, 3)
    assert f.shape == (1, polynomial_dim(2, 3)) == (1, 14)
    assert f[0, :6].tolist() == [2.0, 3.0, 4.0, 6.0, 6.0, 9.0]
    assert f[0, 6:].tolist() == [8.0, 12.0, 12.0, 18.0, 12.0, 18.0, 18.0, 27.0]
    assert polynomial_dim(1, 3) == 3 and polynomial_dim(3, 3) == 39
    with pytest.raises(ValueError, match="degree"):
        polynomial_features(a, 0)


def test_smooth_cutoff_is_one_at_zero_and_vanishes_smoothly():
    d = torch.tensor([0.0, 0.999999, 1.0, 1.5], dtype=torch.float64, requires_grad=True)
    w = smooth_cutoff(d, 1.0)
    (g,) = torch.autograd.grad(w.sum(), d)
    w = w.detach()
    assert w[0] == 1 and w[2] == 0 and w[3] == 0 and abs(float(w[1])) < 1e-10
    assert abs(float(g[1])) < 1e-6 and float(g[2]) == 0


def test_safe_norm_has_finite_gradients_of_all_orders_at_zero():
    x = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    n = safe_norm(x)
    (g,) = torch.autograd.grad(n.sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), x)
    assert torch.isfinite(g).all() and torch.isfinite(gg).all()
    y = torch.tensor([3.0, 4.0], dtype=torch.float64)
    assert float(safe_norm(y)) == 5.0


def _rand_o3(seed):
    gen = torch.Generator().manual_seed(seed)
    return random_rotation(gen, reflection=bool(seed % 2))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 7))
def test_3d_attributes_are_o3_invariant(seed, n):
    gen = torch.Generator().manual_seed(seed)
    pos = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    ori = torch.nn.functional.normalize(torch.randn(n, 3, generator=gen, dtype=torch.float64), dim=-1)
    grid = fibonacci_sphere(10)
    ei = fully_connected_edges(torch.zeros(n, dtype=torch.long))
    rot, t = _rand_o3(seed), torch.randn(3, generator=gen, dtype=torch.float64)
    moved, ori2 = pos @ rot.T + t, ori @ rot.T
    assert torch.allclose(invariant_rn(pos, ei), invariant_rn(moved, ei), atol=1e-12)
    assert torch.allclose(invariant_point_cloud(pos, ori, ei), invariant_point_cloud(moved, ori2, ei), atol=1e-12)
    assert torch.allclose(invariant_fiber_spatial(pos, ei, grid), invariant_fiber_spatial(moved, ei, grid @ rot.T), atol=1e-12)
    assert torch.allclose(invariant_fiber(grid), invariant_fiber(grid @ rot.T), atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(angle=st.floats(0, 2 * math.pi), seed=st.integers(0, 1000))
def test_2d_attributes_are_se2_invariant_and_signed(angle, seed):
    gen = torch.Generator().manual_seed(seed)
    pos = torch.randn(5, 2, generator=gen, dtype=torch.float64)
    ori = torch.nn.functional.normalize(torch.randn(5, 2, generator=gen, dtype=torch.float64), dim=-1)
    ei = fully_connected_edges(torch.zeros(5, dtype=torch.long), loop=False)
    c, s = math.cos(angle), math.sin(angle)
    rot = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    a = invariant_point_cloud(pos, ori, ei)
    assert torch.allclose(a, invariant_point_cloud(pos @ rot.T + 1.5, ori @ rot.T, ei), atol=1e-12)
    flip = torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64))
    b = invariant_point_cloud(pos @ flip.T, ori @ flip.T, ei)
    assert torch.allclose(b[:, 1], -a[:, 1], atol=1e-12)  # signed perpendicular component
    assert torch.allclose(b[:, [0, 2]], a[:, [0, 2]], atol=1e-12)


def test_fully_connected_edges_match_brute_force():
    batch = torch.tensor([0, 0, 0, 1, 1, 2])
    ei = fully_connected_edges(batch, loop=True)
    expected = {(j, i) for i in range(6) for j in range(6) if batch[i] == batch[j]}
    assert set(map(tuple, ei.T.tolist())) == expected and ei.shape[1] == len(expected)
    assert (fully_connected_edges(batch, loop=False)[0] != fully_connected_edges(batch, loop=False)[1]).all()


def test_lift_graph_connectivity():
    pos = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [0, 2.0, 0]], dtype=torch.float64)
    ei = torch.tensor([[1, 2, 0], [0, 0, 1]])  # 1->0, 2->0, 0->1 (node 2 receives nothing)
    lifted = lift_graph(pos, ei)
    assert lifted.base.tolist() == [0, 0, 1]
    assert torch.allclose(lifted.ori, torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [-1.0, 0, 0]], dtype=torch.float64))
    # base edges with loops: 1->0 (1x2 pairs), 2->0 (0 pairs), 0->1 (2x1), loops 0 (2x2), 1 (1x1), 2 (0)
    pairs = set(map(tuple, lifted.edge_index.T.tolist()))
    assert pairs == {(2, 0), (2, 1), (0, 2), (1, 2), (0, 0), (0, 1), (1, 0), (1, 1), (2, 2)}
    with pytest.raises(ValueError, match="coincide"):
        lift_graph(torch.zeros(2, 3), torch.tensor([[0], [1]]))


def test_convolutions_match_explicit_sums():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 2, generator=gen, dtype=torch.float64)
    ei = torch.tensor([[0, 1, 2, 3, 3], [1, 1, 0, 0, 2]])
    ks = torch.randn(5, 3, 2, generator=gen, dtype=torch.float64)
    kf = torch.randn(3, 3, 2, generator=gen, dtype=torch.float64)
    out = fiber_bundle_conv(x, ks, kf, ei)
    expected = torch.zeros_like(x)
    for e in range(5):
        j, i = ei[:, e].tolist()
        for p in range(3):
            for o in range(3):
                expected[i, p] += kf[o, p] * ks[e, o] * x[j, o] / 3
    assert torch.allclose(out, expected, atol=1e-13)
    y = point_conv(x[:, 0], ks[:, 0], ei)
    assert torch.allclose(y[0], ks[2, 0] * x[2, 0] + ks[3, 0] * x[3, 0])


def test_attributes_use_sender_minus_receiver_and_the_receivers_orientation():
    """Concrete values for one edge ``1 -> 0`` (methods.md 1.12: a swapped sender/receiver flips ``o.r``).

    The invariance tests cannot see this convention (a swapped attribute is invariant too)."""
    pos = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 0.0]], dtype=torch.float64)  # receiver 0, sender 1
    ori = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    ei = torch.tensor([[1], [0]])
    # r = x_1 - x_0 = (1, 2, 0); o_i = ori[0]: [o_i.r, |r - (o_i.r) o_i|, o_i.o_j] = [1, 2, 0]
    assert invariant_point_cloud(pos, ori, ei).tolist() == [[1.0, 2.0, 0.0]]
    grid = torch.tensor([[0.0, -1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    expected = torch.tensor([[[-2.0, 1.0], [0.0, math.sqrt(5.0)]]], dtype=torch.float64)
    assert torch.allclose(invariant_fiber_spatial(pos, ei, grid), expected, atol=1e-15)
    # 2D: relative position in the receiver's frame (o_i, o_i^perp) with o_i = (0, 1), o_i^perp = (-1, 0)
    pos2 = torch.tensor([[0.0, 0.0], [1.0, 2.0]], dtype=torch.float64)
    ori2 = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    assert invariant_point_cloud(pos2, ori2, ei).tolist() == [[2.0, -1.0, 0.0]]
    assert torch.allclose(invariant_fiber_spatial(pos2, ei, ori2), torch.tensor([[[2.0, -1.0], [1.0, 2.0]]], dtype=torch.float64))
