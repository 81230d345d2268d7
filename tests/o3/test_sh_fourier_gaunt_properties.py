"""Property tests of the SH <-> 2D-Fourier change of basis, the sphere quadrature round trip and the Gaunt
product (the SH projection of the pointwise product: truncation, equivariance, powers) on random degrees and
coefficients."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from e3nn.o3 import angles_to_matrix

from geomdl.o3 import (fourier_convolve, fourier_to_sh, gaunt_powers, gaunt_product, grid_to_sh, sh_to_fourier,
                       sh_to_grid, sphere_quadrature, spherical_harmonics, wigner_D_from_matrix)

ANGLE = st.floats(0, 2 * math.pi, allow_nan=False)
SEED = st.integers(0, 2**31 - 1)
F64 = dict(dtype=torch.float64)

pytestmark = pytest.mark.usefixtures("float64_module")  # e3nn builds its Wigner D in the default dtype


def _block_d(lmax, alpha, beta, gamma, reflect):
    """D of 0e + 1o + 2e + ... for the rotation with these Euler angles (times -1: a reflection), from the matrix
    (exact to rounding; e3nn's angle route is only ~2e-10 exact)."""
    r = angles_to_matrix(*(torch.tensor(v, **F64) for v in (alpha, beta, gamma)))
    return wigner_D_from_matrix(lmax, -r if reflect else r)


def _s(theta, phi):
    """The torus parametrisation of geomdl.o3.fourier: s(theta, phi) = (sin t sin p, cos t, sin t cos p)."""
    return torch.stack([torch.sin(theta) * torch.sin(phi), torch.cos(theta), torch.sin(theta) * torch.cos(phi)], -1)


def _evaluate_series(f, theta, phi):
    """sum_{uv} F_uv exp(i(u theta + v phi)) for F [..., 2L+1, 2L+1] at angles [P] -> [..., P]."""
    lmax = (f.shape[-1] - 1) // 2
    freq = torch.arange(-lmax, lmax + 1, **F64)
    eu, ev = torch.exp(1j * freq[:, None] * theta), torch.exp(1j * freq[:, None] * phi)  # [2L+1, P]
    return torch.einsum("...uv,up,vp->...p", f.to(torch.complex128), eu, ev)


@settings(max_examples=25, deadline=None)
@given(lmax=st.integers(0, 8), lmax_out=st.integers(0, 10), seed=SEED, float32=st.booleans())
def test_sh_to_fourier_evaluates_the_function_and_fourier_to_sh_inverts_it(lmax, lmax_out, seed, float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, (lmax + 1) ** 2, generator=g, **F64)
    f = sh_to_fourier(x.float() if float32 else x)
    assert f.shape == (3, 2 * lmax + 1, 2 * lmax + 1) and f.dtype == (torch.complex64 if float32 else torch.complex128)
    f = f.to(torch.complex128)
    tol = dict(atol=1e-4, rtol=1e-4) if float32 else dict(atol=1e-10, rtol=1e-10)
    # Hermitian: the series is real
    torch.testing.assert_close(f.flip(-1, -2).conj(), f, **tol)
    # the series equals the SH expansion at random (theta, phi), not only on the FFT grid
    theta, phi = torch.rand(2, 11, generator=g, **F64) * 2 * math.pi
    series = _evaluate_series(f, theta, phi)
    torch.testing.assert_close(series.imag, torch.zeros_like(series.imag), **tol)
    torch.testing.assert_close(series.real, x @ spherical_harmonics(lmax, _s(theta, phi)).T, **tol)
    # projecting back: the first (lmax_out+1)^2 coefficients, zeros above lmax
    back = fourier_to_sh(f, lmax_out)
    want = torch.cat([x, x.new_zeros(3, max(0, (lmax_out + 1) ** 2 - x.shape[1]))], 1)[:, :(lmax_out + 1) ** 2]
    torch.testing.assert_close(back, want, **tol)


@settings(max_examples=15, deadline=None)
@given(l1=st.integers(0, 4), l2=st.integers(0, 4), seed=SEED)
def test_fourier_convolution_is_the_product_and_projects_to_the_gaunt_product(l1, l2, seed):
    g = torch.Generator().manual_seed(seed)
    x1, x2 = torch.randn(2, (l1 + 1) ** 2, generator=g, **F64), torch.randn(2, (l2 + 1) ** 2, generator=g, **F64)
    h = fourier_convolve(sh_to_fourier(x1), sh_to_fourier(x2))
    assert h.shape == (2, 2 * (l1 + l2) + 1, 2 * (l1 + l2) + 1)
    theta, phi = torch.rand(2, 9, generator=g, **F64) * 2 * math.pi
    prod = _evaluate_series(sh_to_fourier(x1), theta, phi) * _evaluate_series(sh_to_fourier(x2), theta, phi)
    torch.testing.assert_close(_evaluate_series(h, theta, phi), prod, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(fourier_to_sh(h, l1 + l2), gaunt_product(x1, x2), atol=1e-10, rtol=1e-10)


@settings(max_examples=25, deadline=None)
@given(lmax=st.integers(0, 8), extra=st.integers(0, 3), seed=SEED)
def test_sphere_grid_round_trip(lmax, extra, seed):
    """grid_to_sh(sh_to_grid(x)) = x on a quadrature exact for degree 2 lmax (or finer)."""
    x = torch.randn(4, (lmax + 1) ** 2, generator=torch.Generator().manual_seed(seed), **F64)
    grid = sphere_quadrature(2 * lmax + extra)
    torch.testing.assert_close(grid_to_sh(sh_to_grid(x, grid), grid, lmax), x, atol=1e-10, rtol=1e-10)


@settings(max_examples=20, deadline=None)
@given(l1=st.integers(0, 5), l2=st.integers(0, 5), lo=st.integers(0, 12), seed=SEED,
       method=st.sampled_from(["dft", "fft"]))
def test_gaunt_product_is_the_projected_pointwise_product(l1, l2, lo, seed, method):
    g = torch.Generator().manual_seed(seed)
    x1, x2 = torch.randn(3, (l1 + 1) ** 2, generator=g, **F64), torch.randn(3, (l2 + 1) ** 2, generator=g, **F64)
    full = gaunt_product(x1, x2, method=method)
    grid = sphere_quadrature(2 * (l1 + l2))
    # the full product (lmax_out = l1 + l2) is exactly f1 * f2 on the sphere
    torch.testing.assert_close(sh_to_grid(full, grid), sh_to_grid(x1, grid) * sh_to_grid(x2, grid), atol=1e-9, rtol=1e-9)
    # a smaller lmax_out truncates it, a larger one pads it with zeros
    want = torch.cat([full, full.new_zeros(3, max(0, (lo + 1) ** 2 - full.shape[1]))], 1)[:, :(lo + 1) ** 2]
    torch.testing.assert_close(gaunt_product(x1, x2, lo, method=method), want, atol=1e-10, rtol=1e-10)


@settings(max_examples=20, deadline=None)
@given(l1=st.integers(0, 5), l2=st.integers(0, 5), lo=st.integers(0, 6), a=ANGLE, b=ANGLE, c=ANGLE,
       reflect=st.booleans(), seed=SEED)
def test_gaunt_product_is_equivariant(l1, l2, lo, a, b, c, reflect, seed):
    """gaunt(D x1, D x2) = D gaunt(x1, x2) for random degrees and (improper) rotations."""
    g = torch.Generator().manual_seed(seed)
    x1, x2 = torch.randn(2, (l1 + 1) ** 2, generator=g, **F64), torch.randn(2, (l2 + 1) ** 2, generator=g, **F64)
    d1, d2, do = (_block_d(l, a, b, c, reflect) for l in (l1, l2, lo))
    torch.testing.assert_close(gaunt_product(x1 @ d1.T, x2 @ d2.T, lo), gaunt_product(x1, x2, lo) @ do.T,
                               atol=1e-10, rtol=1e-10)


@settings(max_examples=20, deadline=None)
@given(lmax=st.integers(0, 3), order=st.integers(2, 4), lo=st.integers(0, 6), seed=SEED)
def test_gaunt_powers_are_projected_powers(lmax, order, lo, seed):
    """B^(nu) = int f^nu Y: compared with the powers of f sampled on an exact quadrature."""
    x = torch.randn(2, (lmax + 1) ** 2, generator=torch.Generator().manual_seed(seed), **F64)
    powers = gaunt_powers(x, order, lo)
    assert len(powers) == order - 1
    grid = sphere_quadrature(order * lmax + lo)
    f = sh_to_grid(x, grid)
    for nu, b in enumerate(powers, start=2):
        torch.testing.assert_close(b, grid_to_sh(f**nu, grid, lo), atol=1e-9, rtol=1e-9)
