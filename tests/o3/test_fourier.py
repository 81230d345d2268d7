import math

import pytest
import torch

from geomdl.o3 import (
    fourier_convolve,
    fourier_to_sh,
    sh_to_fourier,
    sh_to_fourier_matrix,
    spherical_harmonics,
    torus_points,
)


def test_sh2f_evaluates_the_function_on_the_torus(float64):
    lmax = 7
    x = torch.randn(3, (lmax + 1) ** 2)
    f = sh_to_fourier(x)
    n_t, n_p = 11, 13
    theta = torch.arange(n_t) * (2 * math.pi / n_t)
    phi = torch.arange(n_p) * (2 * math.pi / n_p)
    u = torch.arange(-lmax, lmax + 1)
    series = torch.einsum("buv,ju,kv->bjk", f, torch.exp(1j * theta[:, None] * u), torch.exp(1j * phi[:, None] * u))
    direct = x @ spherical_harmonics(lmax, torus_points(n_t, n_p).reshape(-1, 3)).T
    assert (series.real.reshape(3, -1) - direct).abs().max() < 1e-12
    assert series.imag.abs().max() < 1e-12


def test_hermitian_and_sparsity(float64):
    lmax = 6
    s = sh_to_fourier_matrix(lmax)  # [(L+1)^2, u, v]
    assert torch.allclose(s.flip(1, 2), s.conj(), atol=1e-15)
    k = 0
    u = torch.arange(-lmax, lmax + 1)
    for l in range(lmax + 1):
        for m in range(-l, l + 1):
            nz = s[k].abs() > 1e-14
            us, vs = u[nz.nonzero()[:, 0]], u[nz.nonzero()[:, 1]]
            assert bool((vs.abs() == abs(m)).all()) and bool(((us - l) % 2 == 0).all()) and bool((us.abs() <= l).all())
            assert int(nz.sum()) <= 2 * (l + 1)
            k += 1


def test_fft_convolution_matches_brute_force(float64):
    a = torch.randn(5, 5, dtype=torch.complex128)
    b = torch.randn(7, 7, dtype=torch.complex128)
    fast = fourier_convolve(a, b)
    assert fast.shape == (11, 11)  # exactly 2(L1+L2)+1
    slow = torch.zeros(11, 11, dtype=torch.complex128)
    for i in range(5):
        for j in range(5):
            slow[i:i + 7, j:j + 7] += a[i, j] * b
    assert (fast - slow).abs().max() < 1e-12


def test_f2sh_inverts_sh2f(float64):
    x = torch.randn(4, 36)
    assert (fourier_to_sh(sh_to_fourier(x), 5) - x).abs().max() < 1e-12
    # projecting onto lower degrees keeps those coefficients
    assert (fourier_to_sh(sh_to_fourier(x), 3) - x[:, :16]).abs().max() < 1e-12


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, torch.float16, torch.bfloat16, torch.complex64])
def test_sh2f_rejects_non_float32_float64(dtype):
    # integer / half input was silently converted and returned as complex64
    with pytest.raises(TypeError, match=r"x must have dtype float32 or float64, got torch\."):
        sh_to_fourier(torch.ones(4, dtype=dtype))


def test_sh2f_output_dtype_follows_input_and_rejects_scalars():
    assert sh_to_fourier(torch.ones(4, dtype=torch.float32)).dtype == torch.complex64
    assert sh_to_fourier(torch.ones(4, dtype=torch.float64)).dtype == torch.complex128
    with pytest.raises(ValueError, match="x must have shape"):
        sh_to_fourier(torch.tensor(1.0))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        sh_to_fourier([1.0, 0.0, 0.0, 0.0])
