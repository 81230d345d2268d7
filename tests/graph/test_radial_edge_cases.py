"""Large distances and parameter validation of geomdl.graph.radial found in an audit: each failed before its fix."""
import numpy as np
import pytest
import torch

from geomdl.graph.radial import GaussianBasis, bessel_basis, cosine_cutoff, gaussian_basis, polynomial_cutoff


@pytest.mark.parametrize("dtype,d", [(torch.float32, 1e7), (torch.float64, 1e60)])
def test_polynomial_cutoff_finite_gradient_far_beyond_cutoff(dtype, d):
    # u^(p+2) overflowed in the unused branch of torch.where: 0 * inf = NaN gradient
    x = torch.tensor([d, 1.0], dtype=dtype, requires_grad=True)
    y = polynomial_cutoff(x, 5.0, p=6)
    y.sum().backward()
    assert y[0].item() == 0.0
    assert torch.isfinite(x.grad).all() and x.grad[0].item() == 0.0


@pytest.mark.parametrize("dtype,d", [(torch.float32, 1e20), (torch.float64, 1e160)])
def test_bessel_basis_finite_gradient_at_large_distance(dtype, d):
    # the Taylor branch of sinc squared the unused large argument (x^2 = inf): NaN gradient through torch.where
    x = torch.tensor([d, 0.0, 1.0], dtype=dtype, requires_grad=True)
    bessel_basis(x, 4, 5.0).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_bessel_basis_still_smooth_at_zero():
    x = torch.tensor([0.0, 1e-4, 0.3, 2.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: bessel_basis(t, 5, 5.0), (x,))
    assert torch.autograd.gradgradcheck(lambda t: bessel_basis(t, 5, 5.0), (x,))


def test_polynomial_cutoff_gradcheck_inside_and_outside():
    x = torch.tensor([0.0, 1.0, 4.9, 6.0, 50.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: polynomial_cutoff(t, 5.0, p=5), (x,))


@pytest.mark.parametrize("start", [float("-inf"), float("nan"), "0", None, True])
def test_gaussian_start_must_be_a_finite_number(start):
    # start=-inf silently gave NaN features; a string raised an opaque TypeError from '<'
    with pytest.raises(ValueError, match="start must be a finite number"):
        gaussian_basis(torch.tensor([1.0]), 3, 5.0, start=start)
    with pytest.raises(ValueError, match="start must be a finite number"):
        GaussianBasis(3, 5.0, start=start)


def test_gaussian_start_accepts_numpy_and_tensor_scalars():
    d = torch.tensor([0.5, 2.0])
    ref = gaussian_basis(d, 4, 5.0, start=0.5)
    torch.testing.assert_close(gaussian_basis(d, 4, 5.0, start=np.float32(0.5)), ref)
    torch.testing.assert_close(gaussian_basis(d, 4, 5.0, start=torch.tensor(0.5)), ref)


def test_bessel_freq_must_be_a_tensor():
    with pytest.raises(TypeError, match="freq must be a torch.Tensor"):
        bessel_basis(torch.tensor([1.0]), 3, 5.0, freq=[1.0, 2.0, 3.0])


@pytest.mark.parametrize("p", [2, 3, 6])
def test_polynomial_cutoff_smoothness_at_cutoff_matches_docstring(p):
    # the module docstring claimed "p - 1 continuous derivatives at d = c" (5 for the default p = 6);
    # f, f', f'' vanish there for every p and f''' jumps by p(p+1)(p+2)/c^3
    from geomdl.graph import radial

    c = 5.0
    d = torch.tensor([c - 1e-9], dtype=torch.float64, requires_grad=True)
    g = polynomial_cutoff(d, c, p)
    derivatives = [g.item()]
    for _ in range(3):
        (g,) = torch.autograd.grad(g.sum(), d, create_graph=True)
        derivatives.append(g.item())
    assert derivatives[:3] == pytest.approx([0.0, 0.0, 0.0], abs=1e-7)
    assert derivatives[3] == pytest.approx(-p * (p + 1) * (p + 2) / c**3, rel=1e-6)
    assert "p - 1`` continuous derivatives" not in radial.__doc__
    assert "third derivative jumps by ``p(p+1)(p+2)/c^3``" in radial.__doc__


_AT_INF = {
    "bessel": lambda t: bessel_basis(t, 4, 5.0),
    "gaussian": lambda t: gaussian_basis(t, 4, 5.0),
    "polynomial": lambda t: polynomial_cutoff(t, 5.0),
    "cosine": lambda t: cosine_cutoff(t, 5.0),
}


@pytest.mark.parametrize("name", sorted(_AT_INF))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_radial_functions_at_infinity_are_zero_with_zero_gradient(name, dtype):
    # bessel_basis(inf) was NaN (sin(inf)/inf); gaussian_basis and cosine_cutoff had NaN gradients at inf.
    # Every function tends to 0 as d grows (bessel like 1/d), so +inf gives that limit, like large finite d.
    f = _AT_INF[name]
    x = torch.tensor([float("inf"), 1e30, 1.0], dtype=dtype, requires_grad=True)
    y = f(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    assert (y[0] == 0).all() and y[1].abs().max() < 1e-20
    assert torch.isfinite(g).all() and g[0] == 0 and g[2] != 0


def test_bessel_basis_not_truncated_at_cutoff_and_zero_at_infinity():
    # beyond the cutoff the raw Bessel functions are not zero (callers multiply by an envelope);
    # inf must agree with their limit, not with some other convention
    d = torch.tensor([7.0, 1e12, float("inf")], dtype=torch.float64)
    e = bessel_basis(d, 3, 5.0)
    assert e[0].abs().min() > 1e-3 and e[1].abs().max() < 1e-11 and (e[2] == 0).all()


@pytest.mark.parametrize("name", sorted(_AT_INF))
def test_radial_functions_keep_nan(name):
    # the cutoffs returned 0 for NaN (NaN < c is False): a NaN distance was hidden
    y = _AT_INF[name](torch.tensor([float("nan"), 1.0]))
    assert torch.isnan(y[0]).all() and torch.isfinite(y[1]).all()


def test_bessel_trainable_frequency_gradient_finite_at_infinity():
    freq = (torch.arange(1, 4, dtype=torch.float64) * 0.5).requires_grad_()
    bessel_basis(torch.tensor([float("inf"), 2.0], dtype=torch.float64), 3, 5.0, freq=freq).sum().backward()
    assert torch.isfinite(freq.grad).all()
