"""assert_equivariant: clear errors for values whose last dimension does not match the declared type, and
validation of ``tol``."""
import re

import pytest
import torch

from geomdl.testing.equivariance import assert_equivariant


def _identity(x):
    return x


@pytest.mark.parametrize("kind,expected", [("irreps:1o+1o", 6), ("vector", 3), ("pseudovector", 3),
                                           ("position", 3), ("global_vector", 3), ("irreps:2x0e", 2)])
def test_input_with_wrong_last_dim(kind, expected):
    x = torch.randn(5, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match=re.escape(f"input 0 of type '{kind}' must have last dimension {expected}, got shape (5, 4)")):
        assert_equivariant(_identity, x, kind, kind)


def test_output_with_wrong_last_dim():
    v = torch.randn(5, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"output 'f' of type 'vector' must have last dimension 3, got shape \(5, 2\)"):
        assert_equivariant(lambda x: {"f": x[:, :2]}, v, "vector", {"f": "vector"})


def test_named_input_with_wrong_last_dim():
    inputs = {"pos": torch.randn(5, 3, dtype=torch.float64), "feat": torch.randn(5, 4, dtype=torch.float64)}
    with pytest.raises(ValueError, match=r"input 'feat' of type 'irreps:1o\+1o' must have last dimension 6"):
        assert_equivariant(lambda pos, feat: pos, inputs, {"pos": "position", "feat": "irreps:1o+1o"}, "position")


def test_integer_geometric_values_are_refused_not_rotated_to_zeros():
    # an integer position was "rotated" by R cast to int64 (all entries 0): both sides became 0, so this
    # elementwise square, which is not rotation-equivariant, passed every rotation and reflection test
    ipos = torch.randint(-5, 5, (6, 3))
    with pytest.raises(ValueError, match="input 0 of type 'position' must be a floating-point tensor .* torch.int64"):
        assert_equivariant(lambda p: p * p, ipos, "position", "position", translation=False)
    with pytest.raises(ValueError, match="output 0 of type 'irreps:1o' must be a floating-point tensor"):
        assert_equivariant(lambda p: p.round().long(), torch.randn(6, 3), "vector", "irreps:1o")


def test_zero_dim_node_level_value_is_a_clear_error():
    pos = torch.randn(5, 3)
    for inputs, types in (((torch.tensor(2.0), pos), ("scalar", "position")), ((pos, torch.tensor(2.0)), ("position", "scalar"))):
        with pytest.raises(ValueError, match="of type 'scalar' is node-level .* 0-d tensor; declare .* 'global_scalar'"):
            assert_equivariant(lambda a, b: a * b, inputs, types, "position")


def test_zero_dim_scalar_output_still_passes_without_permutations():
    """Only permutations need a node dimension: with permutation=False a 0-d invariant declared "scalar" (e.g. an
    energy) passed before the 0-d check and must still pass."""
    pos = torch.randn(6, 3, dtype=torch.float64)
    assert_equivariant(lambda p: (p - p.mean(0)).norm(), pos, "position", "scalar", permutation=False)


def test_matching_shapes_still_pass():
    x = torch.randn(5, 6, dtype=torch.float64)
    errors = assert_equivariant(_identity, x, "irreps:1o+1o", "irreps:1o+1o")
    assert max(errors.values()) < 1e-12


@pytest.mark.parametrize("tol", [0.0, 0, -1, -1e-6, "1e-6", None, float("nan"), float("inf"), True])
def test_tol_validated(tol):
    v = torch.randn(5, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="tol must be a positive finite number"):
        assert_equivariant(_identity, v, "vector", "vector", tol=tol)


def test_tol_zero_with_atol_is_a_value_error():
    v = torch.randn(5, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="tol must be a positive finite number"):
        assert_equivariant(_identity, v, "vector", "vector", tol=0.0, atol=1e-12)


def test_valid_tol_still_works():
    v = torch.randn(5, 3, dtype=torch.float64)
    assert_equivariant(_identity, v, "vector", "vector", tol=1)
    assert_equivariant(_identity, v, "vector", "vector", tol=1e-8, atol=1e-12)


def test_tol_accepts_numpy_scalars_and_zero_dim_tensors():
    import numpy as np

    pos = torch.randn(5, 3, dtype=torch.float64)
    for tol in (np.float32(1e-6), np.float64(1e-6), torch.tensor(1e-6), 1):
        assert_equivariant(lambda p: p - p.mean(0), pos, "position", "vector", tol=tol)


def test_atol_accepts_numpy_scalars_and_zero_dim_tensors():
    import numpy as np

    pos = torch.randn(5, 3, dtype=torch.float64)
    for atol in (np.float32(1e-9), torch.tensor(1e-9)):
        assert_equivariant(lambda p: p - p.mean(0), pos, "position", "vector", tol=1e-6, atol=atol)


def test_one_output_typed_with_a_tuple_names_what_to_pass():
    # ("global_scalar",) for a model returning one tensor: the message said "a single tensor" without the fix
    x = torch.randn(5, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=re.escape("out_types: a single Tensor needs a single type string (e.g. \"global_scalar\"), "
                                                   "got ('global_scalar',)")):
        assert_equivariant(lambda p: p.norm(dim=1).sum(0, keepdim=True), x, "position", ("global_scalar",))
