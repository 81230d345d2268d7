"""Edge cases of the equivariance kit: outputs that are not tensors, and sample counts that test nothing."""
import numpy as np
import pytest
import torch

from geomdl.testing import assert_equivariant, assert_invariant, equivariance_error


@pytest.mark.parametrize("to_number", [float, lambda t: t.item(), lambda t: t.numpy()])
def test_non_invariant_number_outputs_are_caught(to_number):
    pos = torch.randn(12, 3)
    first_x = lambda p: to_number(p[0, 0])  # noqa: E731  (a coordinate: changes under every transformation)
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_invariant(first_x, pos, "position")
    errors = equivariance_error(first_x, pos, "position", "global_scalar")
    assert min(errors.values()) > 1e-3


def test_invariant_number_outputs_pass():
    pos = torch.randn(12, 3)
    assert_invariant(lambda p: float((p - p.mean(0)).pow(2).sum()), pos, "position")
    assert_invariant(lambda p: np.float64((p - p.mean(0)).pow(2).sum()), pos, "position")
    assert_equivariant(lambda p: (1.5, p - p.mean(0)), pos, "position", ("global_scalar", "vector"))


def test_other_non_tensor_outputs_are_a_type_error_unless_fixed():
    pos = torch.randn(5, 3)
    with pytest.raises(TypeError, match="output 0 of type 'global_scalar' must be a tensor or a number, got str"):
        equivariance_error(lambda p: "x", pos, "position", "global_scalar")
    assert_equivariant(lambda p: ("tag", p.norm(dim=1)), pos, "vector", ("fixed", "scalar"))
    with pytest.raises(AssertionError, match="not equivariant"):  # a fixed output that changes is reported
        assert_equivariant(lambda p: (str(float(p[0, 0])), p.norm(dim=1)), pos, "vector", ("fixed", "scalar"))


@pytest.mark.parametrize("n_samples", [0, -1, True, 2.0])
def test_n_samples_must_be_a_positive_int(n_samples):
    not_equivariant = lambda p: p[:, :1]  # noqa: E731
    with pytest.raises(ValueError, match="n_samples must be an int >= 1"):
        assert_equivariant(not_equivariant, torch.randn(5, 3), "position", "scalar", n_samples=n_samples)


def test_atol_accepts_rounding_noise_of_outputs_that_are_zero_in_theory():
    """The centred sum is exactly 0 in theory; its rounding noise is O(1) relative to its own norm, so only
    an absolute tolerance can pass it, and that tolerance must not hide a real violation."""
    pos = torch.randn(50, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    centred_sum = lambda p: (p - p.mean(0)).sum(0)  # noqa: E731
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(centred_sum, pos, "position", "global_vector")
    errors = assert_equivariant(centred_sum, pos, "position", "global_vector", atol=1e-12)
    assert max(errors.values()) > 0
    with pytest.raises(AssertionError, match="atol 1e-12"):  # the plain sum moves with translations: still caught
        assert_equivariant(lambda p: p.sum(0), pos, "position", "global_vector", atol=1e-12)


@pytest.mark.parametrize("kwargs, message", [({"atol": 0.0}, "atol"), ({"atol": True}, "atol"),
                                             ({"atol": 1e-12, "norm_floor": 1.0}, "not both"),
                                             ({"norm_floor": -1.0}, "norm_floor")])
def test_bad_tolerances_are_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        assert_equivariant(lambda p: p, torch.randn(4, 3, dtype=torch.float64), "position", "position", **kwargs)


def test_irreps_are_rotated_in_float64_under_a_float32_default_dtype():
    """e3nn's D(R) follows the default dtype; the kit must not report its float32 rounding as an error."""
    from e3nn import o3

    def centred_with_l2(p):  # float64 maths on exactly rotated positions, as irreps 1x1o+1x2e
        return o3.spherical_harmonics([1, 2], p - p.mean(0), normalize=False)

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        pos = torch.randn(6, 3, dtype=torch.float64)
        errors = assert_equivariant(centred_with_l2, pos, "position", "irreps:1x1o+1x2e", tol=1e-12)
        assert torch.get_default_dtype() == torch.float32  # restored
    finally:
        torch.set_default_dtype(previous)
    assert max(errors.values()) < 1e-12
