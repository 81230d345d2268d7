"""Test helpers shipped with geomdl: equivariance, kernel-vs-reference and torch.compile assertions."""
from geomdl.testing.compile import assert_compiles
from geomdl.testing.equivariance import (
    GroupElement,
    assert_equivariant,
    assert_invariant,
    equivariance_error,
    random_rotation,
)
from geomdl.testing.kernels import assert_kernel_matches_reference

__all__ = ["assert_compiles", "GroupElement", "assert_equivariant", "assert_invariant", "equivariance_error", "random_rotation",
           "assert_kernel_matches_reference"]
