"""Tests of the equivariance test kit itself, with negative controls."""
import pytest
import torch
from e3nn import o3

from geomdl.testing import assert_equivariant, assert_invariant, equivariance_error, random_rotation


def test_random_rotation_is_orthogonal_with_the_right_determinant():
    g = torch.Generator().manual_seed(3)
    for reflection in (False, True):
        r = random_rotation(g, reflection=reflection)
        torch.testing.assert_close(r @ r.T, torch.eye(3, dtype=torch.float64))
        assert torch.det(r).item() == pytest.approx(-1.0 if reflection else 1.0)


def test_rotations_are_haar_distributed_in_the_mean():
    # E[R] = 0 for Haar measure on SO(3)
    g = torch.Generator().manual_seed(0)
    mean = torch.stack([random_rotation(g) for _ in range(4000)]).mean(0)
    assert mean.abs().max() < 0.05


def _centered_features(pos, x):
    centred = pos - pos.mean(0)
    return x * centred.norm(dim=1, keepdim=True), centred, pos.mean(0)


def test_passes_on_an_equivariant_function():
    pos, x = torch.randn(30, 3), torch.randn(30, 4)
    errors = assert_equivariant(_centered_features, {"pos": pos, "x": x}, {"pos": "position", "x": "scalar"},
                                ("scalar", "vector", "global_position"))
    assert set(errors) == {"rotation", "reflection", "translation", "permutation", "combined"}
    assert max(errors.values()) < 1e-12


@pytest.mark.parametrize(
    "fn, out_type, failing",
    [
        (lambda pos, x: pos.pow(2).sum(0), "global_vector", {"rotation", "reflection", "translation"}),  # not a vector
        (lambda pos, x: (pos - pos.mean(0))[:, 0:1] * x, "scalar", {"rotation", "reflection"}),  # uses a fixed axis
        (lambda pos, x: x.cumsum(0), "scalar", {"permutation"}),  # depends on node order
        (lambda pos, x: x * pos.norm(dim=1, keepdim=True), "scalar", {"translation"}),  # depends on the origin
    ],
)
def test_fails_on_functions_that_are_not_equivariant(fn, out_type, failing):
    inputs = {"pos": torch.randn(25, 3), "x": torch.randn(25, 2)}
    types = {"pos": "position", "x": "scalar"}
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(fn, inputs, types, out_type)
    errors = equivariance_error(fn, inputs, types, out_type)
    for kind in failing:
        assert errors[kind] > 1e-3, (kind, errors)


def test_pseudovectors_flip_under_reflections_only():
    pos = torch.randn(2, 3)
    cross = lambda p: torch.linalg.cross(p[0], p[1])  # noqa: E731
    assert_equivariant(cross, pos, "vector", "global_pseudovector", permutation=False)
    errors = equivariance_error(cross, pos, "vector", "global_vector", permutation=False)
    assert errors["rotation"] < 1e-12 and errors["reflection"] > 1.0
    # a chiral function passes when only SO(3) is declared
    assert_equivariant(cross, pos, "vector", "global_vector", permutation=False, group="SO3")


def test_irreps_types_use_wigner_d_with_parity():
    irreps = o3.Irreps("2x0e + 1x1o + 1x2e")
    lin = o3.Linear(irreps, irreps)
    x = irreps.randn(10, -1)
    assert_equivariant(lin, x, f"irreps:{irreps}", f"irreps:{irreps}", translation=False)
    # declaring the wrong parity is caught
    with pytest.raises(AssertionError):
        assert_equivariant(lin, x, f"irreps:{irreps}", "irreps:2x0e + 1x1e + 1x2e", translation=False)


def test_scaling_and_batches_keep_clouds_sorted():
    pos = torch.randn(20, 3)
    batch = torch.tensor([0] * 8 + [1] * 12)

    def per_cloud_rms(pos, batch):
        assert bool((batch[1:] >= batch[:-1]).all()), "batch must stay sorted under permutations"
        out = []
        for b in range(2):
            p = pos[batch == b]
            out.append(((p - p.mean(0)).pow(2).sum(1).mean()).sqrt())
        rms = torch.stack(out)
        return (pos - pos.mean(0)).norm(dim=1, keepdim=True) / rms[batch].unsqueeze(1) * 0 + rms[batch].unsqueeze(1) / rms.sum()

    assert_equivariant(per_cloud_rms, {"pos": pos, "batch": batch}, {"pos": "position", "batch": "batch"}, "scalar", scaling=True)


def test_edge_index_is_relabelled_under_permutations():
    pos = torch.randn(6, 3)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 0]])

    def edge_lengths_summed_at_target(pos, edge_index):
        d = (pos[edge_index[0]] - pos[edge_index[1]]).norm(dim=1)
        return torch.zeros(pos.shape[0], dtype=pos.dtype).index_add(0, edge_index[1], d)

    assert_equivariant(edge_lengths_summed_at_target, {"pos": pos, "edge_index": edge_index},
                       {"pos": "position", "edge_index": "edge_index"}, "scalar")


def test_modules_are_checked_in_float64_without_modifying_the_original():
    lin = torch.nn.Linear(3, 3, bias=False)
    pos = torch.randn(5, 3)
    errors = equivariance_error(lin, pos, "vector", "vector")
    assert errors["rotation"] > 1e-3  # a generic linear map is not equivariant
    assert lin.weight.dtype == torch.float32
    assert_invariant(lambda p: (p - p.mean(0)).norm(), pos, "position")


def test_bad_type_declarations_are_reported():
    with pytest.raises(ValueError, match="unknown type"):
        equivariance_error(lambda x: x, torch.randn(3, 3), "spinor", "spinor")
    with pytest.raises(ValueError, match="same keys"):
        equivariance_error(lambda pos: pos, {"pos": torch.randn(3, 3)}, {"x": "position"}, "position")
    with pytest.raises(ValueError, match="group must be"):
        equivariance_error(lambda x: x, torch.randn(3, 3), "vector", "vector", group="SE3")
