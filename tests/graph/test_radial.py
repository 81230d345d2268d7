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
