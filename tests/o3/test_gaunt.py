import math

import pytest
import torch

from geomdl.o3 import (
    clebsch_gordan,
    gaunt_cg_constant,
    gaunt_coefficients,
    gaunt_output_normalization,
    gaunt_paths,
    spherical_harmonics,
    sphere_quadrature,
    wigner_3j_000,
)

TRIPLES = [(a, b, c) for a in range(5) for b in range(5) for c in range(abs(a - b), a + b + 1)] + [(8, 6, 4), (12, 12, 12), (12, 11, 3)]


def _quadrature_gaunt(l1, l2, l3):
    grid = sphere_quadrature(l1 + l2 + l3)
    y1, y2, y3 = (spherical_harmonics([l], grid.points) for l in (l1, l2, l3))
    return torch.einsum("pi,pj,pk,p->ijk", y1, y2, y3, grid.weights)


@pytest.mark.parametrize("l1,l2,l3", TRIPLES)
def test_gaunt_is_the_integral_of_three_sh(float64, l1, l2, l3):
    assert (gaunt_coefficients(l1, l2, l3) - _quadrature_gaunt(l1, l2, l3)).abs().max() < 1e-12


@pytest.mark.parametrize("l1,l2,l3", [(1, 1, 1), (2, 2, 1), (3, 2, 2), (5, 4, 2)])
def test_odd_paths_vanish(float64, l1, l2, l3):
    assert gaunt_cg_constant(l1, l2, l3) == 0.0
    assert _quadrature_gaunt(l1, l2, l3).abs().max() < 1e-13


def test_constants_match_the_spec_values():
    # methods.md 2.2 [verified] values
    for (l1, l2, l3), value in {(0, 0, 0): 0.282095, (1, 1, 0): 0.488603, (1, 1, 2): 0.690988, (2, 2, 2): 0.753930,
                                (3, 2, 1): 0.846284, (3, 3, 2): 0.861814, (4, 2, 2): 1.011503}.items():
        assert gaunt_cg_constant(l1, l2, l3) == pytest.approx(value, abs=1e-6)


@pytest.mark.parametrize("l1,l2,l3", [(2, 2, 2), (4, 3, 1), (6, 4, 4)])
def test_constant_is_frobenius_norm_and_relation_sign(float64, l1, l2, l3):
    g = _quadrature_gaunt(l1, l2, l3)
    assert float(g.norm()) == pytest.approx(gaunt_cg_constant(l1, l2, l3), rel=1e-12)
    # positive sign in e3nn's basis
    assert float((g * clebsch_gordan(l1, l2, l3)).sum()) == pytest.approx(gaunt_cg_constant(l1, l2, l3), rel=1e-12)


def test_wigner_3j_000_against_cg():
    # (l1 l2 l3; 0 0 0) = (-1)^(l1-l2) <l1 0 l2 0|l3 0> / sqrt(2 l3 + 1)
    from geomdl.o3 import su2_clebsch_gordan_coefficient

    for l1, l2, l3 in [(1, 1, 2), (2, 2, 2), (3, 4, 5), (6, 6, 4)]:
        cg = su2_clebsch_gordan_coefficient(l1, 0, l2, 0, l3, 0)
        assert wigner_3j_000(l1, l2, l3) == pytest.approx((-1) ** (l1 - l2) * cg / math.sqrt(2 * l3 + 1), abs=1e-14)
    assert wigner_3j_000(1, 1, 1) == 0.0


def test_paths_and_normalization():
    paths = gaunt_paths(2, 2, 2)
    assert (1, 1, 1) not in paths and (1, 1, 2) in paths and all((a + b + c) % 2 == 0 for a, b, c in paths)
    n = gaunt_output_normalization(3, 3, 3)
    assert n.shape == (4,) and bool((n > 0).all())


def test_gaunt_symmetry(float64):
    g = gaunt_coefficients(3, 2, 1)
    assert torch.allclose(g.permute(1, 0, 2), gaunt_coefficients(2, 3, 1), atol=1e-14)
    assert torch.allclose(g.permute(2, 1, 0), gaunt_coefficients(1, 2, 3), atol=1e-14)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool])
def test_gaunt_coefficients_refuse_integer_dtype(dtype):
    # the coefficients are all below 1 in magnitude: an integer table was silently all zeros
    with pytest.raises(TypeError, match="dtype"):
        gaunt_coefficients(2, 2, 2, dtype=dtype)
