import math

import pytest
import torch
from e3nn import o3 as e3o3
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl.o3 import gauss_legendre_grid, natural_irreps, spherical_harmonics, wigner_D_from_matrix
from geomdl.o3.spherical_harmonics import lmax_from_dim
from geomdl.testing.equivariance import random_rotation


@pytest.mark.parametrize("normalization", ["integral", "component", "norm"])
@pytest.mark.parametrize("normalize", [True, False])
def test_matches_e3nn_up_to_12(float64, normalization, normalize):
    v = torch.randn(64, 3)
    try:
        ref = e3o3.spherical_harmonics(list(range(13)), v, normalize, normalization)
    except NotImplementedError:  # older e3nn (0.5.0 to 0.5.6 at least; 0.5.0 is the floor) stops at l = 11
        ref = e3o3.spherical_harmonics(list(range(12)), v, normalize, normalization)
    ours = spherical_harmonics(lmax_from_dim(ref.shape[1]), v, normalize, normalization)
    scale = ref.abs().amax(dim=0).clamp_min(1.0)
    assert ((ours - ref).abs() / scale).max() < 1e-10


def test_irreps_and_degree_lists(float64):
    v = torch.randn(5, 3)
    full = spherical_harmonics(3, v)
    assert torch.equal(spherical_harmonics("0e + 2e", v), torch.cat([full[:, :1], full[:, 4:9]], dim=1))
    assert torch.equal(spherical_harmonics([1, 3], v), torch.cat([full[:, 1:4], full[:, 9:16]], dim=1))


@pytest.mark.parametrize("reflection", [False, True])
def test_transforms_with_e3nn_wigner_d_up_to_16(float64, reflection):
    g = torch.Generator().manual_seed(3)
    rot = random_rotation(g, reflection=reflection)
    v = torch.randn(20, 3, generator=g)
    d = wigner_D_from_matrix(16, rot)  # natural parity: det = -1 multiplies degree l by (-1)^l
    lhs = spherical_harmonics(16, v @ rot.T)
    rhs = spherical_harmonics(16, v) @ d.T
    assert (lhs - rhs).abs().max() < 1e-10


def test_orthonormal_on_the_sphere(float64):
    grid = gauss_legendre_grid(18, 36)  # exact for degree 34 >= 2 * 16
    y = spherical_harmonics(16, grid.points)
    gram = (y * grid.weights[:, None]).T @ y
    assert (gram - torch.eye(gram.shape[0])).abs().max() < 1e-12


def test_gradcheck(float64):
    v = torch.randn(4, 3, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: spherical_harmonics(5, t), (v,))


def test_errors():
    with pytest.raises(ValueError, match=r"\[\.\.\., 3\]"):
        spherical_harmonics(2, torch.randn(4, 2))
    with pytest.raises(TypeError, match="floating"):
        spherical_harmonics(2, torch.ones(4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="normalization"):
        spherical_harmonics(2, torch.randn(4, 3), normalization="unit")
    with pytest.raises(ValueError, match="lmax"):
        spherical_harmonics(-1, torch.randn(4, 3))


@pytest.mark.parametrize("degrees", [[True], [0, False], (2, True)])
def test_bool_in_degree_list_is_refused(degrees):
    # a bare bool is refused; inside a list True was read as degree 1 and False as degree 0
    with pytest.raises(TypeError, match="bool"):
        spherical_harmonics(degrees, torch.randn(4, 3))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-10, 10), min_size=3, max_size=3), st.floats(0.1, 10.0))
def test_normalize_is_scale_invariant(xyz, scale):
    v = torch.tensor([xyz], dtype=torch.float64)
    if v.norm() < 1e-3:
        return
    a = spherical_harmonics(6, v)
    b = spherical_harmonics(6, v * scale)
    assert torch.allclose(a, b, atol=1e-12)
    # solid harmonics are homogeneous of degree l
    s = spherical_harmonics(6, v * scale, normalize=False)
    ls = torch.tensor([l for l in range(7) for _ in range(2 * l + 1)], dtype=torch.float64)
    expected = spherical_harmonics(6, v, normalize=False) * scale**ls
    assert (s - expected).abs().max() <= 1e-11 * expected.abs().max()


def test_natural_irreps():
    assert str(natural_irreps(3, 2)) == "2x0e+2x1o+2x2e+2x3o"
    assert math.isclose(float(spherical_harmonics(0, torch.randn(1, 3))[0, 0]), 1 / math.sqrt(4 * math.pi), rel_tol=1e-6)
