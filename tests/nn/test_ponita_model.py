"""PONITA model: exact equivariance (float64, rotations, reflections, translations, permutations) in
position-only and point-cloud modes, co-rotated grids, measured grid error, 2D, errors, state."""
import math

import numpy as np
import pytest
import torch

from geomdl.nn.ponita import Ponita
from geomdl.testing import assert_equivariant, equivariance_error

SMALL = dict(hidden=8, layers=2, basis_dim=8)


def _cloud(n=7, dim=3, seed=0, vectors=1):
    gen = torch.Generator().manual_seed(seed)
    pos = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    x = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    vec = torch.randn(n, vectors, dim, generator=gen, dtype=torch.float64)
    ori = torch.nn.functional.normalize(torch.randn(n, dim, generator=gen, dtype=torch.float64), dim=-1)
    return pos, x, vec, ori


def test_position_mode_is_exactly_e3_equivariant():
    pos, x, _, _ = _cloud()
    model = Ponita(2, out_scalars=3, out_vectors=2, num_ori=0, task_level="node", **SMALL)
    # 3D PONITA is reflection-invariant: scalars are O(3) scalars, vectors ordinary vectors
    assert_equivariant(model, (pos, x), ("position", "scalar"), ("scalar", "vector"))


def test_point_cloud_mode_with_given_orientations_is_exact():
    pos, x, vec, ori = _cloud()
    model = Ponita(2, out_scalars=2, out_vectors=2, in_vectors=1, num_ori=-1, task_level="node", **SMALL).double()
    assert_equivariant(lambda p, s, v, o: model(p, s, v, ori=o), (pos, x, vec, ori),
                       ("position", "scalar", "vector", "vector"), ("scalar", "vector"))


def test_lifted_point_cloud_mode_is_exact_on_graph_level_outputs_with_batches():
    pos, x, vec, _ = _cloud(n=8)
    batch = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    model = Ponita(2, out_scalars=2, out_vectors=1, in_vectors=1, num_ori=-1, task_level="graph", **SMALL).double()
    errors = assert_equivariant(lambda p, s, v, b: model(p, s, v, batch=b), (pos, x, vec, batch),
                                ("position", "scalar", "vector", "batch"), ("global_scalar", "global_vector"))
    assert set(errors) >= {"rotation", "reflection", "translation", "permutation"}


def test_grid_mode_is_exact_when_the_grid_rotates_with_the_input():
    pos, x, vec, _ = _cloud()
    for grid in ("fibonacci", "repulsion"):
        model = Ponita(2, out_scalars=2, out_vectors=2, in_vectors=1, num_ori=10, grid=grid, task_level="node", **SMALL).double()
        assert_equivariant(lambda p, s, v, g: model(p, s, v, grid=g), (pos, x, vec, model.grid),
                           ("position", "scalar", "vector", "global_vector"), ("scalar", "vector"), n_samples=2)


def test_grid_mode_error_without_rotating_the_grid_is_measured_and_shrinks_with_more_orientations():
    pos, x, vec, _ = _cloud(n=6)
    errs = {}
    for num in (8, 128):
        torch.manual_seed(0)
        model = Ponita(2, out_scalars=1, out_vectors=1, in_vectors=1, num_ori=num, task_level="node", **SMALL).double()
        e = equivariance_error(model, (pos, x, vec), ("position", "scalar", "vector"), ("scalar", "vector"),
                               translation=False, permutation=False, n_samples=2)
        errs[num] = e["rotation"]
    assert errs[128] < errs[8] and errs[128] > 1e-8  # approximate, not exact, and improving


def test_circle_grid_is_exact_for_rotations_in_its_symmetry_group():
    pos, x, vec, _ = _cloud(dim=2)
    model = Ponita(2, out_scalars=1, out_vectors=1, in_vectors=1, num_ori=6, dim=2, task_level="node", **SMALL).double()
    with torch.no_grad():
        s, v = model(pos, x, vec)
    for k, exact in ((1, True), (0.5, False)):
        a = 2 * math.pi / 6 * k
        rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64)
        with torch.no_grad():
            s2, v2 = model(pos @ rot.T, x, vec @ rot.T)
        err = float((s2 - s).norm() + (v2 - v @ rot.T).norm().detach())
        assert (err < 1e-10) == exact, (k, err)


@pytest.mark.parametrize("num_ori", [0, -1])
def test_2d_modes_rotation_exact_and_reflection_behaviour(num_ori):
    pos, x, vec, ori = _cloud(dim=2)
    in_vec = 1 if num_ori else 0
    model = Ponita(2, out_scalars=2, out_vectors=1, in_vectors=in_vec, num_ori=num_ori, dim=2, task_level="node", **SMALL).double()
    kw = dict(vec=vec, ori=ori) if num_ori else {}
    s, v = model(pos, x, **kw)
    a = 0.731
    rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64)
    perm = torch.randperm(pos.shape[0])
    kw2 = dict(vec=(vec @ rot.T)[perm], ori=(ori @ rot.T)[perm]) if num_ori else {}
    s2, v2 = model((pos @ rot.T + 2.0)[perm], x[perm], **kw2)
    assert torch.allclose(s2, s[perm], atol=1e-10) and torch.allclose(v2, (v @ rot.T)[perm], atol=1e-10)
    flip = torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64))
    kw3 = dict(vec=vec @ flip, ori=ori @ flip) if num_ori else {}
    s3, _ = model(pos @ flip, x, **kw3)
    if num_ori:  # signed SE(2) attribute: mirror images differ
        assert (s3 - s).abs().max() > 1e-6
    else:  # distances cannot see reflections
        assert torch.allclose(s3, s, atol=1e-10)


def test_grid_is_a_buffer_and_survives_a_checkpoint(tmp_path):
    model = Ponita(2, out_scalars=1, num_ori=8, grid="repulsion", grid_seed=5, **SMALL)
    assert "grid" in model.state_dict()
    torch.save(model.state_dict(), tmp_path / "m.pt")
    other = Ponita(2, out_scalars=1, num_ori=8, grid="repulsion", grid_seed=6, **SMALL)
    assert not torch.equal(other.grid, model.grid)
    other.load_state_dict(torch.load(tmp_path / "m.pt"))
    pos, x, _, _ = _cloud()
    assert torch.equal(other(pos.float(), x.float())[0], model(pos.float(), x.float())[0])


def test_radius_window_makes_distant_atoms_irrelevant():
    pos, x, _, _ = _cloud(n=5)
    model = Ponita(2, out_scalars=1, num_ori=0, radius=1.5, task_level="node", **SMALL).double()
    far = torch.cat([pos, torch.tensor([[50.0, 0, 0]], dtype=torch.float64)])
    s, _ = model(pos, x)
    s_far, _ = model(far, torch.cat([x, x[:1]]))
    assert torch.allclose(s_far[:5], s, atol=1e-12)


def test_bad_inputs_raise_clear_errors():
    model = Ponita(2, out_scalars=1, num_ori=4, **SMALL)
    pos = torch.randn(5, 3)
    with pytest.raises(ValueError, match=r"pos must be a float tensor \[N, 3\]"):
        model(torch.randn(5, 2), torch.randn(5, 2))
    with pytest.raises(ValueError, match=r"x must have shape \[N, 2\]"):
        model(pos, torch.randn(5, 3))
    with pytest.raises(ValueError, match="vec was given"):
        model(pos, torch.randn(5, 2), vec=torch.randn(5, 1, 3))
    with pytest.raises(ValueError, match="edge_index"):
        model(pos, torch.randn(5, 2), edge_index=torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="ori"):
        model(pos, torch.randn(5, 2), ori=torch.randn(5, 3))
    with pytest.raises(ValueError, match="in_vectors"):
        Ponita(2, in_vectors=1, num_ori=0)
    with pytest.raises(ValueError, match="num_ori"):
        Ponita(2, num_ori=-2)
    with pytest.raises(ValueError, match="dim"):
        Ponita(2, dim=4)
    with pytest.raises(ValueError, match="at least one output"):
        Ponita(2, out_scalars=0)


@pytest.mark.parametrize("kwargs, name", [
    (dict(num_ori=False), "num_ori"),  # a bool is an int to Python: it picked the position mode silently
    (dict(degree=True), "degree"), (dict(layers=True), "layers"), (dict(widening=True), "widening"),
    (dict(dim=3.0), "dim"),
    (dict(num_ori=-1, grid="fibonaci"), "grid"), (dict(num_ori=4, dim=2, grid="bogus"), "grid"),  # ignored before
    (dict(num_ori=4, grid="repulsion", grid_seed=1.7), "grid_seed"),
    (dict(basis_dim=0), "basis_dim"),  # read as "hidden" before
    (dict(layer_scale=float("nan")), "layer_scale"),  # every output NaN before
    (dict(multiple_readouts="no"), "multiple_readouts"),
])
def test_bad_constructor_arguments_are_rejected_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Ponita(2, **{**SMALL, **kwargs})


def test_numpy_integer_dim_grid_seed_and_basis_dim_are_accepted():
    """dim, grid_seed and basis_dim took NumPy integers before their bool checks; they must still (as Python ints)."""
    ref = Ponita(2, **{**SMALL, "num_ori": 4, "grid": "repulsion", "grid_seed": 1, "basis_dim": 6, "dim": 3})
    model = Ponita(2, **{**SMALL, "num_ori": 4, "grid": "repulsion", "grid_seed": np.int64(1), "basis_dim": np.int64(6),
                         "dim": np.int64(3)})
    assert type(model.dim) is int and torch.equal(model.grid, ref.grid)
    assert model.state_dict().keys() == ref.state_dict().keys()


@pytest.mark.parametrize("num_ori", [0, 4])
def test_unsorted_batch_and_out_of_range_edges_are_rejected(num_ori):
    # the per-cloud graph builder assumes a sorted batch: an unsorted one used to connect points of
    # different clouds silently (node 0 of cloud 1 got the neighbours 3..6, node 3 being in cloud 0)
    pos, x, _, _ = _cloud()
    model = Ponita(2, out_scalars=1, num_ori=num_ori, **SMALL).double()
    with pytest.raises(ValueError, match="batch must be sorted"):
        model(pos, x, batch=torch.tensor([1, 0, 0, 0, 1, 1, 1]))
    with pytest.raises(ValueError, match=r"edge_index\[0\] \(source\) has entry 9"):
        model(pos, x, edge_index=torch.tensor([[0, 9], [1, 2]]))
    sorted_out = model(pos, x, batch=torch.tensor([0, 0, 0, 1, 1, 1, 1]))[0]
    assert sorted_out.shape == (2, 1)
