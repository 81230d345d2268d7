"""Edge cases and input validation of geomdl.o3 found in an audit: each test failed before its fix."""
import math
import warnings

import pytest
import torch

from geomdl.o3 import (
    SphereGrid,
    clebsch_gordan,
    fourier_convolve,
    fourier_to_sh,
    fourier_to_sh_matrix,
    gauss_legendre_grid,
    gaunt_output_normalization,
    gaunt_paths,
    gaunt_powers,
    gaunt_powers_columns,
    gaunt_product_columns,
    grid_to_sh,
    natural_irreps,
    real_to_complex_basis,
    sh_dim,
    sh_to_fourier,
    sh_to_fourier_matrix,
    sh_to_grid,
    sphere_quadrature,
    spherical_harmonics,
    torus_points,
    wigner_3j_000,
)

# --- spherical_harmonics -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype,scale", [(torch.float32, 1e20), (torch.float32, 1e-25), (torch.float64, 1e200),
                                         (torch.float64, 1e-170), (torch.float64, 1e-13)])
def test_spherical_harmonics_direction_at_any_scale(dtype, scale):
    # |v|^2 overflowed/underflowed (and F.normalize floors |v| at 1e-12): a tiny or huge vector lost its direction
    v = torch.tensor([[1.0, 2.0, -2.0]], dtype=dtype)
    torch.testing.assert_close(spherical_harmonics(3, v * scale), spherical_harmonics(3, v))


def test_spherical_harmonics_zero_vector_has_zero_gradient():
    # the value at 0 is documented (only Y_00); its gradient was ~1/eps = 5e11
    x = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    y = spherical_harmonics(3, x)
    y.sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))
    assert torch.allclose(y[:, 0], torch.full((2,), 0.5 / math.sqrt(math.pi), dtype=torch.float64))
    assert torch.equal(y[:, 1:], torch.zeros_like(y[:, 1:]))


def test_spherical_harmonics_gradcheck_with_tied_components():
    x = torch.tensor([[1.0, 1.0, 0.5], [2.0, -2.0, 1.0], [0.3, -0.1, 0.7]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: spherical_harmonics(4, t), (x,))
    assert torch.autograd.gradgradcheck(lambda t: spherical_harmonics(2, t), (x,))


@pytest.mark.parametrize("degrees", [[], ""])
def test_spherical_harmonics_no_degrees_gives_empty_last_dim(degrees):
    # torch.cat of an empty list raised "expected a non-empty list of Tensors"
    out = spherical_harmonics(degrees, torch.randn(4, 3))
    assert out.shape == (4, 0)


@pytest.mark.parametrize("bad", [-1, 2.5, True, "2"])
def test_sh_dim_rejects_non_degrees(bad):
    with pytest.raises(ValueError, match="lmax"):
        sh_dim(bad)


# --- fourier ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lmax_out", [-1, 1.5, True])
def test_fourier_to_sh_validates_lmax_out(lmax_out):
    h = sh_to_fourier(torch.randn(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="lmax_out"):
        fourier_to_sh(h, lmax_out)


@pytest.mark.parametrize("shape", [(3,), (3, 5), (4, 4)])
def test_fourier_to_sh_validates_shape(shape):
    with pytest.raises(ValueError, match=r"h must have shape \[\.\.\., 2L\+1, 2L\+1\]"):
        fourier_to_sh(torch.zeros(shape, dtype=torch.complex128), 1)


def test_fourier_to_sh_real_array_no_warning():
    h = torch.randn(2, 5, 5, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = fourier_to_sh(h, 2)
    torch.testing.assert_close(out, fourier_to_sh(h.to(torch.complex128), 2))


def test_fourier_convolve_rejects_non_square_arrays():
    # a [5, 3] * [5, 3] convolution was silently computed on a 5 x 5 torus: the u axis (9 needed) aliased
    a, b = torch.randn(5, 3, dtype=torch.complex128), torch.randn(5, 3, dtype=torch.complex128)
    with pytest.raises(ValueError, match="f1 must have shape"):
        fourier_convolve(a, b)
    with pytest.raises(ValueError, match="f2 must have shape"):
        fourier_convolve(torch.randn(3, 3), torch.randn(4, 4))


@pytest.mark.parametrize("args,name", [((0, 3), "n_theta"), ((3, -1), "n_phi"), ((2.0, 3), "n_theta")])
def test_torus_points_validates_sizes(args, name):
    with pytest.raises(ValueError, match=name):
        torus_points(*args)


def test_fourier_matrices_reject_bool_degrees():
    with pytest.raises(ValueError, match="lmax"):
        sh_to_fourier_matrix(True)
    with pytest.raises(ValueError, match="lmax_in"):
        fourier_to_sh_matrix(True, 1)


# --- sphere grids ----------------------------------------------------------------------------------------


def test_integer_samples_are_rejected_not_truncated():
    # the float64 weights / SH basis were cast to int64 (to 0): integrate(ones) returned 0 instead of 4 pi
    grid = sphere_quadrature(4)
    with pytest.raises(TypeError, match="values must be floating point"):
        grid.integrate(torch.ones(grid.weights.numel(), dtype=torch.long))
    with pytest.raises(TypeError, match="coefficients must be floating point"):
        sh_to_grid(torch.ones(4, dtype=torch.long), grid)
    with pytest.raises(TypeError, match="values must be floating point"):
        grid_to_sh(torch.ones(grid.weights.numel(), dtype=torch.long), grid, 1)


def test_scalar_samples_raise_value_error():
    grid = sphere_quadrature(2)
    with pytest.raises(ValueError, match="values"):
        grid.integrate(torch.tensor(1.0))
    with pytest.raises(ValueError, match="coefficients"):
        sh_to_grid(torch.tensor(1.0), grid)
    with pytest.raises(TypeError, match="values must be a torch.Tensor"):
        grid_to_sh([1.0], grid, 0)


def test_gauss_legendre_grid_validates_even_when_cached():
    grid = gauss_legendre_grid(1, 2)  # cached (1, 2); True == 1 used to hit that entry and skip validation
    assert isinstance(grid, SphereGrid)
    with pytest.raises(ValueError, match="n_theta"):
        gauss_legendre_grid(True, 2)
    gauss_legendre_grid(2, 3)
    with pytest.raises(ValueError, match="n_phi"):
        gauss_legendre_grid(2, 3.0)


# --- clebsch_gordan / gaunt ------------------------------------------------------------------------------


def test_real_to_complex_basis_returns_a_copy():
    # it returned the lru_cache'd tensor: modifying it corrupted every later Clebsch-Gordan tensor
    q = real_to_complex_basis(2)
    reference = q.clone()
    q.zero_()
    try:
        torch.testing.assert_close(real_to_complex_basis(2), reference)
    finally:  # keep the rest of the session sane if the cache was shared
        q.copy_(reference)
    assert clebsch_gordan(2, 2, 2, dtype=torch.float64).norm().item() == pytest.approx(1.0)


def test_real_to_complex_basis_validates_degree():
    with pytest.raises(ValueError, match="l must be a non-negative int"):
        real_to_complex_basis(-1)


def test_natural_irreps_validation():
    with pytest.raises(ValueError, match="lmax"):
        natural_irreps(True)
    with pytest.raises(ValueError, match="multiplicity"):
        natural_irreps(2, -1)


@pytest.mark.parametrize("args,name", [((-1, 2, 2), "lmax1"), ((1.5, 2, 2), "lmax1"), ((1, 1, -1), "lmax_out")])
def test_gaunt_paths_and_normalization_validate_degrees(args, name):
    # gaunt_paths(-1, 2, 2) returned [], gaunt_output_normalization(1, 1, -1) an empty tensor
    with pytest.raises(ValueError, match=name):
        gaunt_paths(*args)
    with pytest.raises(ValueError, match=name):
        gaunt_output_normalization(*args)


# --- gaunt products: non-tensor / integer / scalar inputs -----------------------------------------------


def test_gaunt_product_columns_rejects_non_tensor():
    with pytest.raises(TypeError, match="x1t must be a torch.Tensor"):
        gaunt_product_columns([1.0, 2.0, 3.0, 4.0], torch.randn(4, 1), 1)


def test_gaunt_powers_validation():
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        gaunt_powers([1.0, 2.0, 3.0, 4.0], 2)
    with pytest.raises(ValueError, match="scalar"):
        gaunt_powers(torch.tensor(1.0), 2)
    with pytest.raises(TypeError, match="floating point"):
        gaunt_powers(torch.ones(2, 4, dtype=torch.long), 2)
    with pytest.raises(TypeError, match="xt must be a torch.Tensor"):
        gaunt_powers_columns([[1.0]], 2, 0)


def test_complex_samples_still_accepted():
    grid = sphere_quadrature(4)
    x = torch.randn(3, 4, dtype=torch.float64)
    z = torch.complex(x, 2 * x)
    torch.testing.assert_close(grid_to_sh(sh_to_grid(z, grid), grid, 1), z)
    torch.testing.assert_close(grid.integrate(sh_to_grid(z, grid)), z[:, 0] * 2 * math.sqrt(math.pi))


@pytest.mark.parametrize("l1,l2,l3", [(300, 300, 300), (450, 450, 450), (500, 300, 400)])
def test_wigner_3j_000_high_degree(l1, l2, l3):
    # sqrt(num / den) underflowed to 0 at l = 300 and the multinomial overflowed float at l = 450
    big_j = l1 + l2 + l3
    g = big_j // 2
    lg = math.lgamma
    log_abs = 0.5 * (lg(big_j - 2 * l1 + 1) + lg(big_j - 2 * l2 + 1) + lg(big_j - 2 * l3 + 1) - lg(big_j + 2))
    log_abs += lg(g + 1) - lg(g - l1 + 1) - lg(g - l2 + 1) - lg(g - l3 + 1)
    assert wigner_3j_000(l1, l2, l3) == pytest.approx((-1) ** g * math.exp(log_abs), rel=1e-9)
