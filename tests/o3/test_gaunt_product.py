import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl.o3 import (
    clebsch_gordan,
    fast_fft_size,
    gaunt_cg_constant,
    gaunt_powers,
    gaunt_product,
    gaunt_product_columns,
    grid_to_sh,
    natural_irreps,
    sh_to_grid,
    sphere_quadrature,
)
from geomdl.testing import assert_equivariant


def _quadrature_product(x1, x2, lmax_out):
    l1, l2 = int(x1.shape[-1] ** 0.5) - 1, int(x2.shape[-1] ** 0.5) - 1
    grid = sphere_quadrature(l1 + l2 + lmax_out)
    return grid_to_sh(sh_to_grid(x1, grid) * sh_to_grid(x2, grid), grid, lmax_out)


CASES = [(1, 1, 2), (2, 3, 4), (4, 4, 4), (6, 2, 3), (3, 1, 7), (8, 8, 8), (12, 12, 12), (12, 5, 12), (0, 0, 0)]


@pytest.mark.parametrize("method", ["dft", "fft"])
@pytest.mark.parametrize("l1,l2,lo", CASES)
def test_equals_quadrature_projection(float64, method, l1, l2, lo):
    x1, x2 = torch.randn(6, (l1 + 1) ** 2), torch.randn(6, (l2 + 1) ** 2)
    ref = _quadrature_product(x1, x2, lo)
    assert (gaunt_product(x1, x2, lo, method=method) - ref).abs().max() < 1e-10 * max(1.0, float(ref.abs().max()))


def _cg_product(x1, x2, lmax1, lmax2, lmax_out, even_only):
    out = torch.zeros(x1.shape[0], (lmax_out + 1) ** 2)
    for a in range(lmax1 + 1):
        for b in range(lmax2 + 1):
            for c in range(abs(a - b), min(a + b, lmax_out) + 1):
                if ((a + b + c) % 2 == 0) != even_only:
                    continue
                const = gaunt_cg_constant(a, b, c) if even_only else 1.0
                out[:, c * c:(c + 1) ** 2] += const * torch.einsum(
                    "ni,nj,ijk->nk", x1[:, a * a:(a + 1) ** 2], x2[:, b * b:(b + 1) ** 2], clebsch_gordan(a, b, c))
    return out


def test_equals_cg_times_constant_on_even_paths(float64):
    x1, x2 = torch.randn(5, 25), torch.randn(5, 16)
    assert (gaunt_product(x1, x2, 5) - _cg_product(x1, x2, 4, 3, 5, even_only=True)).abs().max() < 1e-10


def test_odd_cg_paths_are_orthogonal_to_the_gaunt_product(float64):
    x1, x2 = torch.randn(40, 16), torch.randn(40, 16)
    odd = _cg_product(x1, x2, 3, 3, 3, even_only=False)  # e.g. the cross product 1 x 1 -> 1
    gaunt = gaunt_product(x1, x2, 3)
    # the odd part is antisymmetric under exchange, the Gaunt product symmetric
    assert (_cg_product(x2, x1, 3, 3, 3, even_only=False) + odd).abs().max() < 1e-12
    assert (gaunt_product(x2, x1, 3) - gaunt).abs().max() < 1e-12


@pytest.mark.parametrize("lmax", [3, 12])
def test_equivariant_rotations_reflections_permutations(float64, lmax):
    irreps = str(natural_irreps(lmax))
    x1, x2 = torch.randn(5, (lmax + 1) ** 2), torch.randn(5, (lmax + 1) ** 2)
    errors = assert_equivariant(lambda a, b: gaunt_product(a, b, lmax), (x1, x2), (f"irreps:{irreps}",) * 2,
                                f"irreps:{irreps}", translation=False, n_samples=3)
    assert set(errors) >= {"rotation", "reflection", "permutation"}


def test_negative_control_pseudoscalar_output_is_not_equivariant(float64):
    x1, x2 = torch.randn(4, 4), torch.randn(4, 4)
    with pytest.raises(AssertionError, match="reflection"):
        assert_equivariant(lambda a, b: gaunt_product(a, b, 1), (x1, x2), ("irreps:0e+1o",) * 2, "irreps:0o+1e",
                           translation=False, n_samples=2)


@pytest.mark.parametrize("method", ["dft", "fft"])
def test_gradcheck_and_double_backward(float64, method):
    x1 = torch.randn(3, 9, requires_grad=True)
    x2 = torch.randn(3, 16, requires_grad=True)
    fn = lambda a, b: gaunt_product(a, b, 4, method=method)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x1, x2))
    assert torch.autograd.gradgradcheck(fn, (x1, x2))


def test_columns_layout_and_its_gradient(float64):
    x1 = torch.randn(16, 4, requires_grad=True)
    x2 = torch.randn(9, 4, requires_grad=True)
    assert torch.allclose(gaunt_product_columns(x1, x2, 3), gaunt_product(x1.T, x2.T, 3).T, atol=1e-13)
    assert torch.autograd.gradcheck(lambda a, b: gaunt_product_columns(a, b, 3), (x1, x2))


def test_broadcasting_and_shapes(float64):
    x1 = torch.randn(2, 1, 9)
    x2 = torch.randn(3, 4)
    out = gaunt_product(x1, x2)
    assert out.shape == (2, 3, 16)  # default lmax_out = L1 + L2 = 3
    assert torch.allclose(out[1, 2], gaunt_product(x1[1, 0], x2[2]), atol=1e-13)
    assert gaunt_product(torch.randn(0, 4), torch.randn(0, 4), 2).shape == (0, 9)


def test_errors():
    with pytest.raises(ValueError, match="x1.*\\(L\\+1\\)\\^2"):
        gaunt_product(torch.randn(3, 5), torch.randn(3, 4))
    with pytest.raises(TypeError, match="dtype"):
        gaunt_product(torch.randn(3, 4), torch.randn(3, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="lmax_out"):
        gaunt_product(torch.randn(3, 4), torch.randn(3, 4), -1)
    with pytest.raises(ValueError, match="method"):
        gaunt_product(torch.randn(3, 4), torch.randn(3, 4), method="grid")
    with pytest.raises(TypeError, match="float32 or float64"):
        gaunt_product(torch.ones(3, 4, dtype=torch.long), torch.ones(3, 4, dtype=torch.long))


def test_float32_error_is_small():
    x1, x2 = torch.randn(8, 169, dtype=torch.float64), torch.randn(8, 169, dtype=torch.float64)
    ref = gaunt_product(x1, x2, 12)
    err = (gaunt_product(x1.float(), x2.float(), 12).double() - ref).abs().max() / ref.abs().max()
    assert err < 1e-5  # measured ~1e-7 at L = 12


def test_powers_equal_repeated_products_and_are_associative(float64):
    x = torch.randn(3, 16)
    b2, b3 = gaunt_powers(x, 3, 4)
    p2 = gaunt_product(x, x)
    assert (b2 - p2[:, :25]).abs().max() < 1e-12
    assert (b3 - gaunt_product(p2, x, 4)).abs().max() < 1e-12
    assert (b3 - gaunt_product(x, p2, 4)).abs().max() < 1e-12


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 4), st.integers(0, 4), st.integers(0, 6), st.floats(-3, 3), st.integers(0, 10**6))
def test_bilinear_and_commutative(l1, l2, lo, alpha, seed):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(2, (l1 + 1) ** 2, generator=g, dtype=torch.float64), torch.randn(2, (l1 + 1) ** 2, generator=g, dtype=torch.float64)
    z = torch.randn(2, (l2 + 1) ** 2, generator=g, dtype=torch.float64)
    lhs = gaunt_product(x + alpha * y, z, lo)
    rhs = gaunt_product(x, z, lo) + alpha * gaunt_product(y, z, lo)
    assert torch.allclose(lhs, rhs, atol=1e-10)
    assert torch.allclose(gaunt_product(z, x, lo), gaunt_product(x, z, lo), atol=1e-12)


@pytest.mark.parametrize("kw1,kw2", [({"dtype": torch.float64}, {"dtype": torch.float32}),
                                     ({"device": "meta"}, {"device": "cpu"}),
                                     ({"device": "cpu"}, {"device": "meta"})])
def test_columns_require_one_dtype_and_device(kw1, kw2):
    # a device mismatch ended in torch's opaque "cross-device copies are not allowed" RuntimeError
    x1 = torch.randn(4, 3, **kw1)
    x2 = torch.randn(9, 3, **kw2)
    with pytest.raises(TypeError, match=r"x1t and x2t must share dtype and device, got .+ and .+"):
        gaunt_product_columns(x1, x2, 2)


@pytest.mark.filterwarnings("ignore:geomdl.ops.gaunt_product has no compiled kernel")
def test_columns_run_on_one_non_cpu_device():
    z = gaunt_product_columns(torch.randn(4, 3, device="meta"), torch.randn(9, 3, device="meta"), 2)
    assert z.shape == (9, 3) and z.device.type == "meta"


@pytest.mark.parametrize("n,even,expected", [(7, False, 8), (11, False, 12), (9, True, 10), (2.5, False, 3),
                                             (7.2, False, 8), (4.5, True, 6), (0, False, 1)])
def test_fast_fft_size_is_the_smallest_235_size_at_least_n(n, even, expected):
    # a fractional n was truncated first: fast_fft_size(2.5) gave 2 < 2.5
    assert fast_fft_size(n, even=even) == expected
