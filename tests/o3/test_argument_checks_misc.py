"""Argument validation and cache safety: wigner_D_from_matrix (half precision), grid_to_sh (lmax),
sphere_quadrature / gauss_legendre_grid (cached grids), fourier_to_sh / fourier_convolve (dtypes),
gaunt_cg_constant (degree types)."""
import math

import pytest
import torch

from geomdl.o3 import (fourier_convolve, fourier_to_sh, gauss_legendre_grid, gaunt_cg_constant, grid_to_sh,
                       sh_to_fourier, sphere_quadrature, wigner_D_from_matrix)
from geomdl.utils.rotations import random_rotation

# --- wigner_D_from_matrix: half precision --------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("reflection", [False, True])
def test_wigner_D_from_matrix_half_precision(dtype, reflection):
    rot = random_rotation(torch.Generator().manual_seed(3), reflection=reflection)
    ref = wigner_D_from_matrix(3, rot.to(torch.float32))
    d = wigner_D_from_matrix(3, rot.to(dtype))
    assert d.dtype == dtype and d.shape == ref.shape
    # computed from the rounded matrix in float32: agrees with float32 to the half-precision rounding
    torch.testing.assert_close(d.float(), wigner_D_from_matrix(3, rot.to(dtype).float()).to(dtype).float())
    assert (d.float() - ref).abs().max() < 0.05


def test_wigner_D_from_matrix_float32_unchanged_by_half_path():
    rot = random_rotation(torch.Generator().manual_seed(4)).to(torch.float32)
    d = wigner_D_from_matrix("2x1o+2e", rot)
    assert d.dtype == torch.float32
    torch.testing.assert_close(d @ d.T, torch.eye(d.shape[0]), atol=1e-5, rtol=0)


# --- grid_to_sh: lmax ----------------------------------------------------------------------------------


@pytest.mark.parametrize("lmax", [[2], (0, 1), "1x0e+1x1o", True, -1, 2.0, None])
def test_grid_to_sh_validates_lmax(lmax):
    grid = sphere_quadrature(4)
    values = torch.randn(grid.weights.numel(), dtype=torch.float64)
    with pytest.raises(ValueError, match="lmax must be a non-negative int"):
        grid_to_sh(values, grid, lmax)


def test_grid_to_sh_valid_lmax_shape():
    grid = sphere_quadrature(4)
    out = grid_to_sh(torch.randn(2, grid.weights.numel(), dtype=torch.float64), grid, 2)
    assert out.shape == (2, 9)


# --- sphere_quadrature / gauss_legendre_grid: the cache is not exposed ------------------------------------


def test_sphere_quadrature_cache_not_corrupted_by_caller():
    g = sphere_quadrature(4)
    w_before, p_before = g.weights.clone(), g.points.clone()
    g.weights.mul_(2)
    g.points.zero_()
    try:  # ``*=`` scales the tensor in place, then the frozen dataclass refuses the re-assignment
        g.weights *= 2
    except AttributeError:
        pass
    again = sphere_quadrature(4)
    torch.testing.assert_close(again.weights, w_before, rtol=0, atol=0)
    torch.testing.assert_close(again.points, p_before, rtol=0, atol=0)
    assert float(again.weights.sum()) == pytest.approx(4 * math.pi, rel=1e-13)


def test_gauss_legendre_grid_cache_not_corrupted_by_caller():
    g = gauss_legendre_grid(3, 5)
    g.weights.fill_(0.0)
    assert float(gauss_legendre_grid(3, 5).weights.sum()) == pytest.approx(4 * math.pi, rel=1e-13)


# --- fourier_to_sh / fourier_convolve: dtypes ------------------------------------------------------------

pytestmark = pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental")

BAD_DTYPES = [torch.int64, torch.int32, torch.bool, torch.float16, torch.bfloat16, torch.complex32]


@pytest.mark.parametrize("dtype", BAD_DTYPES)
def test_fourier_to_sh_rejects_dtype(dtype):
    h = torch.ones(5, 5).to(dtype)
    with pytest.raises(TypeError, match=r"h must have dtype float32, float64, complex64 or complex128"):
        fourier_to_sh(h, 2)


@pytest.mark.parametrize("dtype", BAD_DTYPES)
def test_fourier_convolve_rejects_dtype(dtype):
    good = torch.ones(3, 3, dtype=torch.complex64)
    bad = torch.ones(3, 3).to(dtype)
    with pytest.raises(TypeError, match=r"f1 must have dtype float32, float64, complex64 or complex128"):
        fourier_convolve(bad, good)
    with pytest.raises(TypeError, match=r"f2 must have dtype float32, float64, complex64 or complex128"):
        fourier_convolve(good, bad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex64, torch.complex128])
def test_fourier_supported_dtypes_still_work(dtype):
    x = torch.randn(9, dtype=torch.float64)
    f = sh_to_fourier(x).to(dtype) if dtype.is_complex else sh_to_fourier(x).real.to(dtype)
    assert fourier_to_sh(f, 2).shape == (9,)
    assert fourier_convolve(f, f).shape == (9, 9)


# --- gaunt_cg_constant: degree types -----------------------------------------------------------------------


@pytest.mark.parametrize("args,name", [(("1", 1, 2), "l1"), ((1, "1", 2), "l2"), ((1, 1, "2"), "l3"),
                                       ((1, 1, None), "l3"), ((1.0, 1, 5), "l1"), ((1, True, 1), "l2"),
                                       ((1, 1, -1), "l3")])
def test_gaunt_cg_constant_validates_degrees(args, name):
    with pytest.raises(ValueError, match=f"{name} must be a non-negative int"):
        gaunt_cg_constant(*args)


def test_gaunt_cg_constant_valid_values_unchanged():
    assert gaunt_cg_constant(1, 1, 5) == 0.0  # outside the triangle
    assert gaunt_cg_constant(1, 1, 1) == 0.0  # odd path
    assert gaunt_cg_constant(0, 0, 0) == pytest.approx(1 / math.sqrt(4 * math.pi), rel=1e-14)
