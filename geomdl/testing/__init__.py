"""Test helpers shipped with geomdl: equivariance and kernel-vs-reference assertions."""
from geomdl.testing.equivariance import (
    GroupElement,
    assert_equivariant,
    assert_invariant,
    equivariance_error,
    random_rotation,
)
from geomdl.testing.kernels import assert_kernel_matches_reference

__all__ = ["GroupElement", "assert_equivariant", "assert_invariant", "equivariance_error", "random_rotation",
           "assert_kernel_matches_reference"]
