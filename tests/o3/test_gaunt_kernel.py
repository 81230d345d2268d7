"""Compiled Gaunt kernel (geomdl::gaunt_columns) == the pure-PyTorch reference: column arrays and e3nn
features, forward and fused backward, both instruction-set variants, float64 and float32, edge sizes,
gradcheck, the layer in both backends, equivariance on the compiled path, and argument errors."""
import pytest
import torch
from e3nn import o3 as e3o3
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl import ops
from geomdl.nn import GauntTensorProduct
from geomdl.nn.tensor_products._layout import from_columns, to_columns
from geomdl.o3 import gaunt_product_columns
from geomdl.o3.gaunt_kernel import feature_layout, gaunt_columns_backward_compiled, gaunt_columns_compiled, gaunt_features
from geomdl.o3.gaunt_plans import dft_plan
from geomdl.o3.gaunt_product import _gaunt_columns_backward_reference, _gaunt_columns_reference
from geomdl.testing import assert_equivariant
from gaunt_checks import LAYERS, assert_gaunt_close, gaunt_inputs, irreps

pytestmark = pytest.mark.skipif(not ops.has_kernel("gaunt_columns"), reason="geomdl._C not built (reference mode)")

# (L1, L2, Lo): L = 0, Lo < L1 + L2, Lo > L1 + L2, unequal degrees, odd/even torus halves
DEGREES = [(0, 0, 0), (0, 3, 5), (4, 0, 4), (1, 1, 2), (3, 5, 2), (2, 2, 7), (6, 6, 6), (5, 2, 9), (10, 10, 10)]
COLUMNS = [0, 1, 5, 37]  # 37: not a multiple of the 16/32-column block


@pytest.fixture(params=["avx2", "generic"])
def isa(request, monkeypatch):
    if request.param == "generic":
        monkeypatch.setenv("GEOMDL_GAUNT_ISA", "generic")
    return request.param


def _close(got, want, dtype):
    assert_gaunt_close(got, want, dtype, same_dtype=True)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("l1,l2,lo", DEGREES)
def test_columns_forward_and_fused_backward_equal_reference(isa, dtype, l1, l2, lo):
    for cols in COLUMNS:
        x1, x2, grad = gaunt_inputs(l1, l2, lo, cols, dtype, seed=l1 * 100 + l2 * 10 + lo + cols)
        _close(gaunt_columns_compiled(x1, x2, lo), _gaunt_columns_reference(x1, x2, lo), dtype)
        got = gaunt_columns_backward_compiled(grad, x1, x2)
        want = _gaunt_columns_backward_reference(grad, x1, x2)
        for a, b in zip(got, want):
            _close(a, b, dtype)
    only1 = gaunt_columns_backward_compiled(grad, x1, x2, need1=True, need2=False)
    only2 = gaunt_columns_backward_compiled(grad, x1, x2, need1=False, need2=True)
    assert only1[1] is None and only2[0] is None
    assert torch.equal(only1[0], got[0]) and torch.equal(only2[1], got[1])


@settings(max_examples=15, deadline=None)
@given(l1=st.integers(0, 6), l2=st.integers(0, 6), lo=st.integers(0, 9), cols=st.integers(0, 70), seed=st.integers(0, 2**16),
       double=st.booleans())
def test_columns_property_compiled_equals_reference(l1, l2, lo, cols, seed, double):
    dtype = torch.float64 if double else torch.float32
    x1, x2, grad = gaunt_inputs(l1, l2, lo, cols, dtype, seed)
    _close(gaunt_columns_compiled(x1, x2, lo), _gaunt_columns_reference(x1, x2, lo), dtype)
    for a, b in zip(gaunt_columns_backward_compiled(grad, x1, x2), _gaunt_columns_backward_reference(grad, x1, x2)):
        _close(a, b, dtype)


def test_backends_dispatch_and_gradcheck():
    g = torch.Generator().manual_seed(1)
    x1 = torch.randn(9, 7, generator=g, dtype=torch.float64, requires_grad=True)
    x2 = torch.randn(16, 7, generator=g, dtype=torch.float64, requires_grad=True)
    with ops.use_backend("reference"):
        ref = gaunt_product_columns(x1, x2, 4)
    assert torch.equal(ref, _gaunt_columns_reference(x1.detach(), x2.detach(), 4))  # reference really ran
    with ops.use_backend("compiled"):
        got = gaunt_product_columns(x1, x2, 4)
        assert torch.equal(got, gaunt_columns_compiled(x1.detach(), x2.detach(), 4))  # kernel really ran
        assert torch.autograd.gradcheck(lambda a, b: gaunt_product_columns(a, b, 4), (x1, x2))
        assert torch.autograd.gradgradcheck(lambda a, b: gaunt_product_columns(a, b, 3), (x1, x2))
    _close(got, ref, torch.float64)


IRREPS = [  # (x, y, out): gaps in the degrees, Lo above and below L1 + L2
    ([(3, 0), (3, 1), (3, 2)], [(3, 0), (3, 1), (3, 2)], [(3, 0), (3, 1), (3, 2), (3, 3)]),
    ([(2, 0), (2, 2)], [(2, 1), (2, 3)], [(2, 1), (2, 4), (2, 6)]),
    ([(4, 3)], [(4, 0), (4, 2)], [(4, 1), (4, 2), (4, 5)]),
]


@pytest.mark.parametrize("ix,iy,iz", IRREPS)
def test_features_equal_column_products_and_gradcheck(ix, iy, iz):
    g = torch.Generator().manual_seed(2)
    n = 11
    rx, ry, rz = irreps(ix), irreps(iy), irreps(iz)
    x = torch.randn(n, rx.dim, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(n, ry.dim, generator=g, dtype=torch.float64, requires_grad=True)
    lx, ly, lz = (max(l for _, l in s) for s in (ix, iy, iz))
    with ops.use_backend("reference"):  # columns through the reference product
        want = from_columns(gaunt_product_columns(to_columns(x, rx, lx), to_columns(y, ry, ly), lz), rz, n)
    got = gaunt_features(x, y, ix, iy, iz)
    _close(got, want, torch.float64)
    w = torch.randn(got.shape, generator=g, dtype=torch.float64)
    ga = torch.autograd.grad((got * w).sum(), (x, y))
    gb = torch.autograd.grad((want * w).sum(), (x, y))
    for a, b in zip(ga, gb):
        _close(a, b, torch.float64)
    xs, ys = x[:3].detach().requires_grad_(), y[:3].detach().requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: gaunt_features(a, b, ix, iy, iz), (xs, ys))
    assert torch.autograd.gradgradcheck(lambda a, b: gaunt_features(a, b, ix, iy, iz), (xs, ys))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("i1,i2,io,kw", LAYERS)
def test_layer_compiled_equals_reference_with_all_gradients(i1, i2, io, kw, dtype):
    torch.manual_seed(3)
    m = GauntTensorProduct(i1, i2, io, **kw).to(dtype)
    if m.weights == "degree":
        with torch.no_grad():
            for w in (m.weight1, m.weight2, m.weight3):
                w.copy_(torch.randn_like(w))
    x = torch.randn(5, e3o3.Irreps(i1).dim, dtype=dtype)
    y = torch.randn(5, e3o3.Irreps(i2).dim, dtype=dtype)
    ext = [torch.randn(5, m.channels, l + 1, dtype=dtype) for l in (m.lmax1, m.lmax2, m.lmax_out)]
    res = {}
    for backend in ("compiled", "reference"):
        with ops.use_backend(backend):
            xs, ys = x.clone().requires_grad_(), y.clone().requires_grad_()
            es = [e.clone().requires_grad_() for e in ext]
            m.zero_grad()
            out = m(xs, ys, *es)
            (out * torch.cos(torch.arange(out.numel(), dtype=dtype)).view_as(out)).sum().backward()
            params = [p.grad.clone() for p in (m.weight1, m.weight2, m.weight3)] if m.weights else []
            res[backend] = [out.detach(), xs.grad, ys.grad] + [e.grad for e in es] + params
    for a, b in zip(res["compiled"], res["reference"]):
        torch.testing.assert_close(a, b, rtol=1e-10 if dtype == torch.float64 else 2e-5,
                                   atol=1e-12 if dtype == torch.float64 else 2e-5)


def test_layer_compiled_path_equivariant(float64):
    nat = "4x0e+4x1o+4x2e+4x3o"
    g = GauntTensorProduct(nat, "1x0e+1x1o+1x2e", nat)
    x, y = e3o3.Irreps(nat).randn(6, -1), e3o3.Irreps("0e+1o+2e").randn(6, -1)
    with ops.use_backend("compiled"):
        assert_equivariant(g, (x, y), (f"irreps:{nat}", "irreps:0e+1o+2e"), f"irreps:{nat}", translation=False)
        errors = assert_equivariant(lambda a, b: gaunt_product_columns(a.T.contiguous(), b.T.contiguous(), 4).T,
                                    (torch.randn(5, 16), torch.randn(5, 9)), ("irreps:0e+1o+2e+3o", "irreps:0e+1o+2e"),
                                    "irreps:0e+1o+2e+3o+4e", translation=False, n_samples=2)
    assert {"rotation", "reflection", "permutation"} <= set(errors)


def test_errors():
    x = torch.randn(9, 4)
    p = dft_plan(2, 2, 2, torch.float32, torch.device("cpu"))
    (_, t1, f1), (_, t2, f2), (an, pr, _) = p.synth1, p.synth2, p.proj
    lay = torch.stack([torch.arange(9) * 4, torch.ones(9, dtype=torch.long)], 1)
    ok = dict(layouts=[lay, lay, lay], node_strides=[0, 0, 0], out_numel=[36], columns=4, channels=4)

    def call(**kw):
        args = {**ok, **kw}
        return torch.ops.geomdl.gaunt_columns(x, t1, f1, [x], [t2], [f2], [an], [pr], args["layouts"], args["node_strides"],
                                              args["out_numel"], args["columns"], args["channels"])

    assert torch.allclose(call()[0].view(9, 4), _gaunt_columns_reference(x, x, 2), atol=1e-5)
    bad = lay.clone()
    bad[8, 0] = 33  # row 8 would read past the 36 elements
    with pytest.raises(RuntimeError, match="addresses past"):
        call(layouts=[bad, lay, lay])
    with pytest.raises(RuntimeError, match="multiple of channels"):
        call(columns=5)
    with pytest.raises(RuntimeError, match="layout must be int64"):
        call(layouts=[lay[:4], lay, lay])
    with pytest.raises(RuntimeError, match="dtype"):
        torch.ops.geomdl.gaunt_columns(x, t1.double(), f1, [x], [t2], [f2], [an], [pr], [lay] * 3, [0] * 3, [36], 4, 4)
    with pytest.raises(ValueError, match="one multiplicity"):
        gaunt_features(torch.randn(2, 4), torch.randn(2, 4), [(1, 0), (1, 1)], [(2, 0)], [(1, 0)])
    with pytest.raises(ValueError, match=r"x must be \[N, 6\]"):
        gaunt_features(torch.randn(2, 4), torch.randn(2, 6), [(2, 1)], [(2, 1)], [(2, 0)])
    with pytest.raises(ValueError, match="x and y must share N, dtype and device"):  # (a meta y: garbage, no error)
        gaunt_features(torch.randn(2, 4), torch.randn(2, 4, device="meta"), [(1, 0), (1, 1)], [(1, 0), (1, 1)], [(1, 0)])
    assert feature_layout(((2, 0), (2, 2)), 2, 3).table[1:4, 0].tolist() == [-1, -1, -1]  # absent degree 1


def test_opcheck_schema_and_fake_kernel():
    from geomdl.o3.gaunt_kernel import column_layout

    x1, x2 = torch.randn(9, 40, dtype=torch.float64), torch.randn(16, 40, dtype=torch.float64)
    p = dft_plan(2, 3, 4, torch.float64, torch.device("cpu"))
    (_, t1, f1), (_, t2, f2), (an, pr, _) = p.synth1, p.synth2, p.proj
    lays = [column_layout(l, 40).table for l in (2, 3, 4)]
    args = (x1, t1, f1, [x2], [t2], [f2], [an], [pr], lays, [0, 0, 0], [25 * 40], 40, 40)
    res = torch.library.opcheck(torch.ops.geomdl.gaunt_columns.default, args, test_utils=("test_schema", "test_faketensor"))
    assert set(res.values()) == {"SUCCESS"}
