import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl.graph.radial import (
    BesselBasis,
    CosineCutoff,
    GaussianBasis,
    PolynomialCutoff,
    bessel_basis,
    cosine_cutoff,
    gaussian_basis,
    polynomial_cutoff,
)


def test_bessel_values_and_limit_at_zero():
    d = torch.tensor([0.0, 0.5, 1.7, 4.9], dtype=torch.float64)
    out = bessel_basis(d, 4, 5.0)
    n = torch.arange(1, 5, dtype=torch.float64)
    expected = math.sqrt(2 / 5.0) * torch.sin(n * math.pi * d[1:, None] / 5.0) / d[1:, None]
    torch.testing.assert_close(out[1:], expected)
    torch.testing.assert_close(out[0], math.sqrt(2 / 5.0) * n * math.pi / 5.0)


def test_bessel_orthonormal_on_interval():
    # int_0^c e_n(d) e_m(d) d^2 dd = delta_nm (the radial Bessel functions are orthonormal with weight d^2)
    c = 3.0
    d = torch.linspace(0, c, 20001, dtype=torch.float64)
    e = bessel_basis(d, 5, c)
    gram = torch.trapezoid(e.unsqueeze(2) * e.unsqueeze(1) * (d**2)[:, None, None], d, dim=0)
    torch.testing.assert_close(gram, torch.eye(5, dtype=torch.float64), atol=1e-6, rtol=0)


def test_gradients_finite_at_zero_second_order():
    d = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    for f in (lambda t: bessel_basis(t, 4, 2.0).sum(), lambda t: polynomial_cutoff(t, 2.0).sum(), lambda t: cosine_cutoff(t, 2.0).sum()):
        (g,) = torch.autograd.grad(f(d), d, create_graph=True)
        (h,) = torch.autograd.grad(g.sum(), d)
        assert torch.isfinite(g).all() and torch.isfinite(h).all()


@settings(max_examples=30, deadline=None)
@given(c=st.floats(0.5, 10.0), p=st.integers(2, 9))
def test_cutoffs_endpoints_property(c, p):
    d = torch.tensor([0.0, c, c * 1.5], dtype=torch.float64, requires_grad=True)
    for f in (polynomial_cutoff(d, c, p), cosine_cutoff(d, c)):
        torch.testing.assert_close(f.detach(), torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64), atol=1e-12, rtol=0)
    # polynomial envelope: first derivative vanishes at the cutoff (smooth)
    (g,) = torch.autograd.grad(polynomial_cutoff(d, c, p).sum(), d)
    assert abs(float(g[1])) < 1e-9


def test_gaussian_peaks_at_centres():
    mu = torch.linspace(0, 4.0, 5, dtype=torch.float64)
    out = gaussian_basis(mu, 5, 4.0)
    torch.testing.assert_close(out.diagonal(), torch.ones(5, dtype=torch.float64))


def test_modules_and_gradcheck():
    d = torch.rand(6, dtype=torch.float64, requires_grad=True) * 3
    for m in (BesselBasis(6, 3.5, trainable=True).double(), GaussianBasis(6, 3.5), CosineCutoff(3.5), PolynomialCutoff(3.5)):
        assert torch.autograd.gradcheck(m, (d,))
    assert isinstance(BesselBasis(3, trainable=True).freq, torch.nn.Parameter)
    assert "freq" in BesselBasis(3).state_dict()


def test_errors():
    with pytest.raises(ValueError, match="cutoff"):
        bessel_basis(torch.ones(2), 3, -1.0)
    with pytest.raises(ValueError, match="num_basis"):
        GaussianBasis(0)
    with pytest.raises(TypeError, match="floating"):
        cosine_cutoff(torch.ones(2, dtype=torch.long), 1.0)
    with pytest.raises(ValueError, match="p must"):
        PolynomialCutoff(2.0, p=0)


@pytest.mark.parametrize("name", ["cosine", "polynomial"])
def test_cutoffs_are_accurate_relative_to_their_value_near_the_cutoff(name):
    """float32 envelopes within 1e-5 of float64 *relative to the value* up to 0.1% from the cutoff (the expanded
    forms cancel there: 1% off at u = 0.99 for the polynomial, 2.5e-3 at u = 0.999 for the cosine), and the
    float64 values equal the textbook formulas."""
    c = 5.0
    d64 = torch.linspace(0.0, 0.999, 2000, dtype=torch.float64) * c
    d32 = d64.float()
    if name == "cosine":
        fn = cosine_cutoff
        textbook = 0.5 * (torch.cos(math.pi * d64 / c) + 1)
    else:
        fn = polynomial_cutoff
        u = d64 / c
        textbook = 1 - 28 * u ** 6 + 48 * u ** 7 - 21 * u ** 8
    exact = fn(d32.double(), c)  # the float32 inputs, evaluated in float64
    rel = ((fn(d32, c).double() - exact).abs() / exact).max().item()
    assert rel < 1e-5, rel
    assert torch.allclose(fn(d64, c), textbook, rtol=0, atol=1e-14)
    for p in (1, 2, 3, 9):  # other orders: still the polynomial of the docstring
        u = d64 / c
        a, b, e = 0.5 * (p + 1) * (p + 2), p * (p + 2), 0.5 * p * (p + 1)
        assert torch.allclose(polynomial_cutoff(d64, c, p), 1 - a * u ** p + b * u ** (p + 1) - e * u ** (p + 2),
                              rtol=0, atol=1e-13)


def test_fixed_bessel_frequencies_are_exact_in_float64_models():
    """The fixed frequencies were built in the default dtype (float32): a float64 model's basis was off by ~1e-7
    relative, even after .double(); a float32 model still computes in float32."""
    d = torch.linspace(0.05, 4.95, 50, dtype=torch.float64)
    basis = BesselBasis(8, 5.0)
    torch.testing.assert_close(basis.double()(d), bessel_basis(d, 8, 5.0), rtol=1e-15, atol=1e-15)
    assert basis.float()(d.float()).dtype == torch.float32 and basis.freq.dtype == torch.float64
