"""Test helpers shipped with geomdl: equivariance, kernel-vs-reference, torch.compile and torch.export assertions."""
from geomdl.testing.compile import assert_compiles
from geomdl.testing.equivariance import (
    GroupElement,
    assert_equivariant,
    assert_invariant,
    equivariance_error,
    random_rotation,
)
from geomdl.testing.export import assert_exports
from geomdl.testing.kernels import assert_kernel_matches_reference

__all__ = ["assert_compiles", "assert_exports", "GroupElement", "assert_equivariant", "assert_invariant", "equivariance_error", "random_rotation",
           "assert_kernel_matches_reference"]
