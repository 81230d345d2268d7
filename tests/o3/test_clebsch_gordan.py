import pytest
import torch
from e3nn import o3 as e3o3

from geomdl.o3 import clebsch_gordan, su2_clebsch_gordan_coefficient, wigner_D_from_matrix
from geomdl.testing.equivariance import random_rotation

TRIPLES = [(a, b, c) for a in range(5) for b in range(5) for c in range(abs(a - b), min(a + b, 4) + 1)]


@pytest.mark.parametrize("l1,l2,l3", TRIPLES + [(6, 5, 3), (7, 7, 2)])
def test_matches_e3nn_wigner_3j(float64, l1, l2, l3):
    assert (clebsch_gordan(l1, l2, l3) - e3o3.wigner_3j(l1, l2, l3)).abs().max() < 1e-10


@pytest.mark.parametrize("l1,l2,l3", [(1, 1, 1), (2, 1, 2), (3, 3, 4), (12, 12, 12), (16, 9, 8)])
def test_invariant_and_unit_norm(float64, l1, l2, l3):
    c = clebsch_gordan(l1, l2, l3)
    assert abs(float(c.norm()) - 1.0) < 1e-12
    rot = random_rotation(torch.Generator().manual_seed(l1 + l2 + l3))
    d1, d2, d3 = (wigner_D_from_matrix(f"{l}e", rot) for l in (l1, l2, l3))
    moved = torch.einsum("abc,ai,bj,ck->ijk", c, d1, d2, d3)
    assert (moved - c).abs().max() < 1e-10


def test_su2_known_values():
    assert su2_clebsch_gordan_coefficient(1, 1, 1, -1, 0, 0) == pytest.approx(3**-0.5)
    assert su2_clebsch_gordan_coefficient(1, 0, 1, 0, 2, 0) == pytest.approx((2 / 3) ** 0.5)
    assert su2_clebsch_gordan_coefficient(1, 0, 1, 0, 1, 0) == 0.0
    assert su2_clebsch_gordan_coefficient(1, 1, 1, 1, 1, 1) == 0.0  # m3 out of range


def test_triangle_rule_error():
    with pytest.raises(ValueError, match="triangle"):
        clebsch_gordan(1, 1, 3)
    with pytest.raises(ValueError, match="l2"):
        clebsch_gordan(1, -1, 1)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_integer_dtype_is_refused_not_rounded_to_zeros(dtype):
    # every coefficient has magnitude < 1: an integer table was silently all zeros
    with pytest.raises(TypeError, match="dtype"):
        clebsch_gordan(1, 1, 2, dtype=dtype)
    assert clebsch_gordan(1, 1, 2, dtype=torch.complex128).abs().norm().item() == pytest.approx(1.0)
