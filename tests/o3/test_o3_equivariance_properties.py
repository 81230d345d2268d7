"""Property tests of the o3 equivariance identities on random degrees and (improper) rotations: spherical
harmonics, Wigner D and Clebsch-Gordan (e3nn's Wigner D is the slow part: degrees are kept <= 6)."""
import math

import pytest
import torch
from e3nn.o3 import angles_to_matrix
from hypothesis import example, given, settings
from hypothesis import strategies as st

from geomdl.o3 import clebsch_gordan, spherical_harmonics, wigner_D, wigner_D_from_matrix

ANGLE = st.floats(0, 2 * math.pi, allow_nan=False)
SEED = st.integers(0, 2**31 - 1)
F64 = dict(dtype=torch.float64)

pytestmark = pytest.mark.usefixtures("float64_module")  # e3nn builds its Wigner D in the default dtype


def _rotation(alpha, beta, gamma, reflect):
    r = angles_to_matrix(torch.tensor(alpha, **F64), torch.tensor(beta, **F64), torch.tensor(gamma, **F64))
    return -r if reflect else r


def _block_d(lmax, alpha, beta, gamma, reflect):
    """D of 0e + 1o + 2e + ... from the Euler angles themselves (e3nn's wigner_D): a reference independent of
    wigner_D_from_matrix, which builds D from the matrix by the CG recursion."""
    angles = [torch.tensor(v, **F64) for v in (alpha, beta, gamma)]
    return torch.block_diag(*[wigner_D(l, *angles) * (-1) ** (l * reflect) for l in range(lmax + 1)])


@settings(max_examples=25, deadline=None)
@given(lmax=st.integers(0, 6), a=ANGLE, b=ANGLE, c=ANGLE, reflect=st.booleans(), seed=SEED,
       normalization=st.sampled_from(["integral", "component", "norm"]), normalize=st.booleans())
@example(lmax=2, a=0.0, b=1e-9, c=0.0, reflect=False, seed=0, normalization="integral", normalize=False)
def test_spherical_harmonics_are_equivariant(lmax, a, b, c, reflect, seed, normalization, normalize):
    """Y(R x) = D(R) Y(x) with D of 0e + 1o + 2e + ... (improper R included: parity (-1)^l)."""
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(seed), **F64)
    r = _rotation(a, b, c, reflect)
    d = wigner_D_from_matrix(lmax, r)  # exact to rounding (e3nn's angle route is only ~2e-10 exact)
    lhs = spherical_harmonics(lmax, x @ r.T, normalize=normalize, normalization=normalization)
    rhs = spherical_harmonics(lmax, x, normalize=normalize, normalization=normalization) @ d.T
    torch.testing.assert_close(lhs, rhs, atol=1e-10 * max(1.0, float(rhs.abs().max())), rtol=1e-10)


@settings(max_examples=30, deadline=None)
@given(lmax=st.integers(0, 12), seed=SEED, normalization=st.sampled_from(["integral", "component", "norm"]))
def test_addition_theorem(lmax, seed, normalization):
    """sum_m Y_lm(s)^2 does not depend on the direction: (2l+1)/(4 pi), 2l+1 or 1 by normalization."""
    x = torch.randn(9, 3, generator=torch.Generator().manual_seed(seed), **F64)
    y = spherical_harmonics(lmax, x, normalization=normalization)
    for l in range(lmax + 1):
        want = {"integral": (2 * l + 1) / (4 * math.pi), "component": 2 * l + 1, "norm": 1.0}[normalization]
        got = (y[:, l * l:(l + 1) ** 2] ** 2).sum(-1)
        torch.testing.assert_close(got, torch.full_like(got, want), atol=1e-10, rtol=1e-10)


@settings(max_examples=20, deadline=None)
@given(l=st.integers(0, 8), a1=ANGLE, b1=ANGLE, c1=ANGLE, a2=ANGLE, b2=ANGLE, c2=ANGLE, reflect=st.booleans())
@example(l=4, a1=0.3, b1=1e-9, c1=0.2, a2=0.0, b2=math.pi - 1e-9, c2=1.0, reflect=False)  # both poles
@example(l=1, a1=0.0, b1=0.0, c1=0.0, a2=0.0, b2=0.0, c2=0.03125, reflect=False)  # e3nn's D 2.4e-11 off
def test_wigner_d_is_an_orthogonal_representation(l, a1, b1, c1, a2, b2, c2, reflect):
    """D(R1) D(R2) = D(R1 R2), D orthogonal, and wigner_D(angles) = wigner_D_from_matrix(R(angles)) to e3nn's
    accuracy (1e-9), also at the poles: D is built from the matrix itself (e3nn's D_from_matrix recovers the Euler angles with an
    arccos, ~1e-8 off for beta ~ 1e-9)."""
    r1, r2 = _rotation(a1, b1, c1, reflect), _rotation(a2, b2, c2, False)
    d1, d2, d12 = (wigner_D_from_matrix(l, r) for r in (r1, r2, r1 @ r2))
    torch.testing.assert_close(d1 @ d2, d12, atol=1e-12, rtol=0)
    torch.testing.assert_close(d1 @ d1.T, torch.eye(d1.shape[0], **F64), atol=1e-12, rtol=0)
    # e3nn's wigner_D(angles) is itself only ~2e-10 exact (e.g. 2.4e-11 at l=1, gamma=0.03125, where
    # wigner_D_from_matrix returns R exactly): 1e-9 still catches the ~1e-8 pole error of an Euler-angle route
    torch.testing.assert_close(_block_d(l, a1, b1, c1, reflect), d1, atol=1e-9, rtol=0)
    torch.testing.assert_close(_block_d(l, a2, b2, c2, False), d2, atol=1e-9, rtol=0)


@st.composite
def _triples(draw, lmax=3):
    l1, l2 = draw(st.integers(0, lmax)), draw(st.integers(0, lmax))
    return l1, l2, draw(st.integers(abs(l1 - l2), l1 + l2))


@settings(max_examples=40, deadline=None)
@given(triple=_triples(), a=ANGLE, b=ANGLE, c=ANGLE)
def test_clebsch_gordan_is_invariant_normalised_and_swap_symmetric(triple, a, b, c):
    l1, l2, l3 = triple
    cg = clebsch_gordan(l1, l2, l3, dtype=torch.float64)
    assert cg.shape == (2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1)
    torch.testing.assert_close(cg.norm(), torch.tensor(1.0, **F64))
    r = _rotation(a, b, c, False)
    d1, d2, d3 = (wigner_D_from_matrix(f"{l}e", r) for l in (l1, l2, l3))  # exact to rounding
    torch.testing.assert_close(torch.einsum("abc,ai,bj,ck->ijk", cg, d1, d2, d3), cg, atol=1e-10, rtol=0)
    swapped = clebsch_gordan(l2, l1, l3, dtype=torch.float64).permute(1, 0, 2)
    torch.testing.assert_close(swapped, (-1) ** (l1 + l2 + l3) * cg, atol=1e-12, rtol=0)
