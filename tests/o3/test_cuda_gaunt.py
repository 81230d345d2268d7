"""CUDA kernel of geomdl::gaunt_columns (kernels/gaunt/gaunt_cuda.cu) == the pure-PyTorch reference and
the CPU kernel: column arrays and e3nn features, forward and fused backward, float32 and float64, degrees
0..8 (and 10) including unequal ones, tile boundaries (0, 1, 31, 33, 1000 columns), gradcheck, the layer
in both backends, equivariance on the compiled CUDA path, streams, argument errors.

Every test starts with ``require_cuda_kernel``: skipped without a GPU, failed when a GPU is present but
the CUDA kernel is missing. Oracles: the reference (``_gaunt_columns_reference`` and its fused
backward) in float64 on the CPU from the same inputs, and the CPU compiled kernel.
"""
import pytest
import torch
from e3nn import o3 as e3o3

from geomdl import ops
from geomdl.nn import GauntTensorProduct
from geomdl.nn.tensor_products._layout import from_columns, to_columns
from geomdl.o3 import gaunt_product, gaunt_product_columns
from geomdl.o3.gaunt_kernel import (
    column_layout,
    feature_layout,
    gaunt_columns_backward_compiled,
    gaunt_columns_compiled,
    gaunt_features,
)
from geomdl.o3.gaunt_plans import dft_plan
from geomdl.o3.gaunt_product import _gaunt_columns_backward_reference, _gaunt_columns_reference
from geomdl.testing import assert_equivariant
from geomdl.testing.cuda import require_cuda_kernel
from gaunt_checks import LAYERS, assert_gaunt_close, gaunt_inputs, irreps

DTYPES = [torch.float64, torch.float32]
# (L1, L2, Lo): L = 0, Lo below / above L1 + L2, unequal degrees, odd/even torus halves, up to 8
DEGREES = [(0, 0, 0), (0, 3, 5), (4, 0, 4), (1, 1, 2), (3, 5, 2), (2, 2, 7), (6, 6, 6), (5, 2, 9), (8, 8, 8),
           (8, 3, 6), (2, 8, 8), (7, 7, 0), (0, 8, 1), (4, 6, 5)]
COLUMNS = [0, 1, 31, 33, 1000]  # tile boundaries of the 32-column blocks (16/8 for large degrees in float64)


def _cpu64(*xs):
    return [x.detach().cpu().double() for x in xs]


# ---- column arrays: forward and fused backward against the reference and the CPU kernel ----

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("l1,l2,lo", DEGREES)
def test_columns_forward_and_fused_backward(dtype, l1, l2, lo):
    device = require_cuda_kernel("gaunt_columns")
    for cols in COLUMNS:
        x1, x2, grad = gaunt_inputs(l1, l2, lo, cols, dtype, l1 * 100 + l2 * 10 + lo + cols, device)
        what = f"L=({l1},{l2},{lo}) cols={cols} {dtype}"
        z = gaunt_columns_compiled(x1, x2, lo)
        assert z.device.type == "cuda" and z.dtype == dtype and z.shape == ((lo + 1) ** 2, cols)
        a, b, gr = _cpu64(x1, x2, grad)
        assert_gaunt_close(z, _gaunt_columns_reference(a, b, lo), dtype, "forward vs float64 reference " + what)
        assert_gaunt_close(z, gaunt_columns_compiled(x1.cpu(), x2.cpu(), lo), dtype, "forward vs CPU kernel " + what)
        got = gaunt_columns_backward_compiled(grad, x1, x2)
        want = _gaunt_columns_backward_reference(gr, a, b)
        cpu = gaunt_columns_backward_compiled(grad.cpu(), x1.cpu(), x2.cpu())
        for name, g, w, c in zip(("dx1", "dx2"), got, want, cpu):
            assert g.device.type == "cuda" and g.dtype == dtype
            assert_gaunt_close(g, w, dtype, f"backward {name} vs float64 reference " + what)
            assert_gaunt_close(g, c, dtype, f"backward {name} vs CPU kernel " + what)
    only1 = gaunt_columns_backward_compiled(grad, x1, x2, need1=True, need2=False)
    only2 = gaunt_columns_backward_compiled(grad, x1, x2, need1=False, need2=True)
    assert only1[1] is None and only2[0] is None
    assert torch.equal(only1[0], got[0]) and torch.equal(only2[1], got[1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_columns_degree_10_and_random_degrees(dtype):
    device = require_cuda_kernel("gaunt_columns")
    g = torch.Generator().manual_seed(5)
    cases = [(10, 10, 10, 70)] + [tuple(int(v) for v in torch.randint(0, 9, (3,), generator=g)) + (int(c),)
                                  for c in torch.randint(0, 80, (12,), generator=g)]
    for l1, l2, lo, cols in cases:
        x1, x2, grad = gaunt_inputs(l1, l2, lo, cols, dtype, l1 + l2 + lo + cols, device)
        a, b, gr = _cpu64(x1, x2, grad)
        what = f"L=({l1},{l2},{lo}) cols={cols} {dtype}"
        assert_gaunt_close(gaunt_columns_compiled(x1, x2, lo), _gaunt_columns_reference(a, b, lo), dtype, what)
        for got, want in zip(gaunt_columns_backward_compiled(grad, x1, x2), _gaunt_columns_backward_reference(gr, a, b)):
            assert_gaunt_close(got, want, dtype, "backward " + what)


@pytest.mark.parametrize("dtype", DTYPES)
def test_many_columns_and_bitwise_repeatable(dtype):
    device = require_cuda_kernel("gaunt_columns")
    x1, x2, grad = gaunt_inputs(6, 6, 6, 40_000, dtype, 11, device)  # many tiles per block (grid-stride loop)
    z = gaunt_columns_compiled(x1, x2, 6)
    assert torch.equal(z, gaunt_columns_compiled(x1, x2, 6))  # no atomics: bitwise repeatable
    assert_gaunt_close(z, _gaunt_columns_reference(x1, x2, 6), dtype, "vs reference on the GPU")
    sl = slice(12_345, 12_345 + 333)
    a, b = _cpu64(x1[:, sl], x2[:, sl])
    assert_gaunt_close(z[:, sl], _gaunt_columns_reference(a, b, 6), dtype, "vs float64 reference on a slice")
    g1, g2 = gaunt_columns_backward_compiled(grad, x1, x2)
    r1, r2 = _gaunt_columns_backward_reference(grad, x1, x2)
    assert_gaunt_close(g1, r1, dtype, "dx1")
    assert_gaunt_close(g2, r2, dtype, "dx2")


def test_columns_on_a_side_stream_and_non_contiguous_inputs():
    device = require_cuda_kernel("gaunt_columns")
    x1, x2, _ = gaunt_inputs(3, 4, 5, 300, torch.float64, 3, device)
    want = gaunt_columns_compiled(x1, x2, 5)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        got = gaunt_columns_compiled(x1, x2, 5)
    torch.cuda.current_stream().wait_stream(stream)
    torch.cuda.synchronize()
    assert torch.equal(got, want)
    wide = torch.randn(16, 600, dtype=torch.float64, device=device)
    with ops.use_backend("compiled"):  # the public function makes the inputs contiguous
        z = gaunt_product_columns(wide[:, ::2], x2, 5)
    assert_gaunt_close(z, _gaunt_columns_reference(wide[:, ::2].contiguous().cpu(), x2.cpu(), 5), torch.float64)


def test_backends_dispatch_and_gradcheck():
    device = require_cuda_kernel("gaunt_columns")
    g = torch.Generator().manual_seed(1)
    x1 = torch.randn(9, 7, generator=g, dtype=torch.float64).to(device).requires_grad_()
    x2 = torch.randn(16, 7, generator=g, dtype=torch.float64).to(device).requires_grad_()
    with ops.use_backend("reference"):
        ref = gaunt_product_columns(x1, x2, 4)
    assert torch.equal(ref, _gaunt_columns_reference(x1.detach(), x2.detach(), 4))  # reference really ran
    with ops.use_backend("compiled"):
        got = gaunt_product_columns(x1, x2, 4)
        assert got.device.type == "cuda"
        assert torch.equal(got, gaunt_columns_compiled(x1.detach(), x2.detach(), 4))  # kernel really ran
        assert torch.autograd.gradcheck(lambda a, b: gaunt_product_columns(a, b, 4), (x1, x2))
        assert torch.autograd.gradgradcheck(lambda a, b: gaunt_product_columns(a, b, 3), (x1, x2))
    assert_gaunt_close(got, ref, torch.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gaunt_product_rows_compiled_equals_reference(dtype):
    device = require_cuda_kernel("gaunt_columns")
    g = torch.Generator().manual_seed(4)
    x1 = torch.randn(2, 37, 25, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
    x2 = torch.randn(37, 16, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
    with ops.use_backend("compiled"):
        got = gaunt_product(x1, x2, 6, method="dft")
    want = gaunt_product(x1.cpu().double(), x2.cpu().double(), 6, method="fft")
    assert_gaunt_close(got, want, dtype)


# ---- e3nn features in place ----

IRREPS = [  # (x, y, out): gaps in the degrees, Lo above and below L1 + L2, unsorted blocks, several channels
    ([(3, 0), (3, 1), (3, 2)], [(3, 0), (3, 1), (3, 2)], [(3, 0), (3, 1), (3, 2), (3, 3)]),
    ([(2, 0), (2, 2)], [(2, 1), (2, 3)], [(2, 1), (2, 4), (2, 6)]),
    ([(4, 3)], [(4, 0), (4, 2)], [(4, 1), (4, 2), (4, 5)]),
    ([(5, 2), (5, 0)], [(5, 1), (5, 0)], [(5, 3), (5, 0), (5, 1)]),
    ([(32, l) for l in range(7)], [(32, l) for l in range(7)], [(32, l) for l in range(7)]),
    ([(40, l) for l in range(5)], [(40, l) for l in range(3)], [(40, l) for l in range(5)]),
    ([(7, l) for l in range(9)], [(7, l) for l in (0, 2, 8)], [(7, l) for l in range(0, 9, 2)]),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ix,iy,iz", IRREPS)
def test_features_equal_reference_and_cpu_kernel_with_gradients(ix, iy, iz, dtype):
    device = require_cuda_kernel("gaunt_columns")
    g = torch.Generator().manual_seed(2)
    rx, ry, rz = irreps(ix), irreps(iy), irreps(iz)
    lx, ly, lz = (max(l for _, l in s) for s in (ix, iy, iz))
    for n in (1, 13, 300):
        x = torch.randn(n, rx.dim, generator=g, dtype=torch.float64)
        y = torch.randn(n, ry.dim, generator=g, dtype=torch.float64)
        w = torch.randn(n, rz.dim, generator=g, dtype=torch.float64)
        xs, ys = x.to(device, dtype).requires_grad_(), y.to(device, dtype).requires_grad_()
        got = gaunt_features(xs, ys, ix, iy, iz)
        assert got.device.type == "cuda" and got.dtype == dtype and got.shape == (n, rz.dim)
        gx, gy = torch.autograd.grad((got * w.to(device, dtype)).sum(), (xs, ys))
        # float64 reference: columns through the reference product, on the CPU
        xr, yr = x.clone().requires_grad_(), y.clone().requires_grad_()
        with ops.use_backend("reference"):
            want = from_columns(gaunt_product_columns(to_columns(xr, rx, lx), to_columns(yr, ry, ly), lz), rz, n)
        wx, wy = torch.autograd.grad((want * w).sum(), (xr, yr))
        what = f"{ix} n={n} {dtype}"
        assert_gaunt_close(got, want, dtype, "features " + what)
        assert_gaunt_close(gx, wx, dtype, "d/dx " + what)
        assert_gaunt_close(gy, wy, dtype, "d/dy " + what)
        # the CPU kernel on the same inputs
        xc, yc = x.to(dtype).requires_grad_(), y.to(dtype).requires_grad_()
        zc = gaunt_features(xc, yc, ix, iy, iz)
        cx, cy = torch.autograd.grad((zc * w.to(dtype)).sum(), (xc, yc))
        assert_gaunt_close(got, zc, dtype, "features vs CPU kernel " + what)
        assert_gaunt_close(gx, cx, dtype, "d/dx vs CPU kernel " + what)
        assert_gaunt_close(gy, cy, dtype, "d/dy vs CPU kernel " + what)


@pytest.mark.parametrize("ix,iy,iz", IRREPS[:3])
def test_features_gradcheck(ix, iy, iz):
    device = require_cuda_kernel("gaunt_columns")
    g = torch.Generator().manual_seed(6)
    x = torch.randn(3, irreps(ix).dim, generator=g, dtype=torch.float64).to(device).requires_grad_()
    y = torch.randn(3, irreps(iy).dim, generator=g, dtype=torch.float64).to(device).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: gaunt_features(a, b, ix, iy, iz), (x, y))
    assert torch.autograd.gradgradcheck(lambda a, b: gaunt_features(a, b, ix, iy, iz), (x, y))


# ---- the layer on the compiled CUDA path ----

CUDA_LAYERS = LAYERS + [  # and a wide one (several tiles of channels)
    ("32x0e+32x1o+32x2e+32x3o+32x4e", "32x0e+32x1o+32x2e+32x3o+32x4e", "32x0e+32x1o+32x2e+32x3o+32x4e", {}),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("i1,i2,io,kw", CUDA_LAYERS)
def test_layer_compiled_equals_reference_with_all_gradients(i1, i2, io, kw, dtype):
    device = require_cuda_kernel("gaunt_columns")
    torch.manual_seed(3)
    m = GauntTensorProduct(i1, i2, io, **kw).to(device=device, dtype=dtype)
    if m.weights == "degree":
        with torch.no_grad():
            for w in (m.weight1, m.weight2, m.weight3):
                w.copy_(torch.randn_like(w))
    n = 45
    x = torch.randn(n, e3o3.Irreps(i1).dim, dtype=dtype, device=device)
    y = torch.randn(n, e3o3.Irreps(i2).dim, dtype=dtype, device=device)
    ext = [torch.randn(n, m.channels, l + 1, dtype=dtype, device=device) for l in (m.lmax1, m.lmax2, m.lmax_out)]
    res = {}
    for backend in ("compiled", "reference"):
        with ops.use_backend(backend):
            xs, ys = x.clone().requires_grad_(), y.clone().requires_grad_()
            es = [e.clone().requires_grad_() for e in ext]
            m.zero_grad()
            out = m(xs, ys, *es)
            assert out.device.type == "cuda"
            weight = torch.cos(torch.arange(out.numel(), dtype=dtype, device=device)).view_as(out)
            (out * weight).sum().backward()
            params = [p.grad.clone() for p in (m.weight1, m.weight2, m.weight3)] if m.weights else []
            res[backend] = [out.detach(), xs.grad, ys.grad] + [e.grad for e in es] + params
    for a, b in zip(res["compiled"], res["reference"]):
        torch.testing.assert_close(a, b, rtol=1e-10 if dtype == torch.float64 else 2e-4,
                                   atol=1e-12 if dtype == torch.float64 else 2e-4)


def test_layer_compiled_cuda_path_equivariant(float64):
    device = require_cuda_kernel("gaunt_columns")
    nat = "4x0e+4x1o+4x2e+4x3o"
    g = GauntTensorProduct(nat, "1x0e+1x1o+1x2e", nat).to(device)
    x, y = e3o3.Irreps(nat).randn(6, -1), e3o3.Irreps("0e+1o+2e").randn(6, -1)
    on_gpu = lambda fn: (lambda a, b: fn(a.to(device), b.to(device)).cpu())  # noqa: E731
    with ops.use_backend("compiled"):
        assert_equivariant(on_gpu(g), (x, y), (f"irreps:{nat}", "irreps:0e+1o+2e"), f"irreps:{nat}", translation=False)
        errors = assert_equivariant(on_gpu(lambda a, b: gaunt_product_columns(a.T.contiguous(), b.T.contiguous(), 4).T),
                                    (torch.randn(5, 16), torch.randn(5, 9)), ("irreps:0e+1o+2e+3o", "irreps:0e+1o+2e"),
                                    "irreps:0e+1o+2e+3o+4e", translation=False, n_samples=2)
    assert {"rotation", "reflection", "permutation"} <= set(errors)


# ---- the op itself: absent output rows, errors, schema ----

def _op_args(device, dtype=torch.float32, cols=4):
    x = torch.randn(9, cols, dtype=dtype, device=device)
    p = dft_plan(2, 2, 2, dtype, device)
    (_, t1, f1), (_, t2, f2), (an, pr, _) = p.synth1, p.synth2, p.proj
    lay = column_layout(2, cols).table
    return x, t1, f1, t2, f2, an, pr, lay


def test_absent_output_rows_are_zero():
    device = require_cuda_kernel("gaunt_columns")
    for dtype in DTYPES:
        x, t1, f1, t2, f2, an, pr, lay = _op_args(device, dtype, cols=37)
        lay_out = lay.clone()
        lay_out[[1, 5, 6], 0] = -1  # three rows not written
        args = ([x], [t2], [f2], [an], [pr], [lay, lay, lay_out], [0, 0, 0], [9 * 37], 37, 37)
        got = torch.ops.geomdl.gaunt_columns(x, t1, f1, *args)[0].view(9, 37)
        assert got.device.type == "cuda"
        want = _gaunt_columns_reference(x.double().cpu(), x.double().cpu(), 2)
        want[[1, 5, 6]] = 0
        assert torch.equal(got[[1, 5, 6]].cpu(), torch.zeros(3, 37, dtype=dtype))
        assert_gaunt_close(got, want, dtype)


def test_errors():
    device = require_cuda_kernel("gaunt_columns")
    x, t1, f1, t2, f2, an, pr, lay = _op_args(device)
    ok = dict(layouts=[lay, lay, lay], node_strides=[0, 0, 0], out_numel=[36], columns=4, channels=4)

    def call(**kw):
        args = {**ok, **kw}
        return torch.ops.geomdl.gaunt_columns(args.get("x", x), t1, f1, [args.get("other", x)], [args.get("t2", t2)], [f2],
                                              [an], [pr], args["layouts"], args["node_strides"], args["out_numel"],
                                              args["columns"], args["channels"])

    assert torch.allclose(call()[0].view(9, 4).cpu(), _gaunt_columns_reference(x.cpu(), x.cpu(), 2), atol=1e-5)
    bad = lay.clone()
    bad[8, 0] = 33  # row 8 would read past the 36 elements
    with pytest.raises(RuntimeError, match="addresses past"):
        call(layouts=[bad, lay, lay])
    with pytest.raises(RuntimeError, match="multiple of channels"):
        call(columns=5)
    with pytest.raises(RuntimeError, match="layout must be int64"):
        call(layouts=[lay[:4], lay, lay])
    with pytest.raises(RuntimeError, match="dtype"):
        call(t2=t2.double())
    with pytest.raises(RuntimeError, match="device"):
        call(t2=t2.cpu())  # a table on the CPU, the columns on the GPU
    with pytest.raises(RuntimeError, match="device"):
        call(other=x.cpu())
    assert call(columns=0, out_numel=[0], x=x[:, :0], other=x[:, :0])[0].shape == (0,)


def test_opcheck_schema_and_fake_kernel():
    device = require_cuda_kernel("gaunt_columns")
    x1 = torch.randn(9, 40, dtype=torch.float64, device=device)
    x2 = torch.randn(16, 40, dtype=torch.float64, device=device)
    p = dft_plan(2, 3, 4, torch.float64, device)
    (_, t1, f1), (_, t2, f2), (an, pr, _) = p.synth1, p.synth2, p.proj
    lays = [column_layout(l, 40).table for l in (2, 3, 4)]
    args = (x1, t1, f1, [x2], [t2], [f2], [an], [pr], lays, [0, 0, 0], [25 * 40], 40, 40)
    res = torch.library.opcheck(torch.ops.geomdl.gaunt_columns.default, args, test_utils=("test_schema", "test_faketensor"))
    assert set(res.values()) == {"SUCCESS"}


def test_feature_layout_with_absent_degree_on_cuda():
    device = require_cuda_kernel("gaunt_columns")
    table = feature_layout(((2, 0), (2, 2)), 2, 3).table
    assert table.device.type == "cpu" and table[1:4, 0].tolist() == [-1, -1, -1]
    x = torch.randn(3, 12, dtype=torch.float64, device=device)
    z = gaunt_features(x, x, [(2, 0), (2, 2)], [(2, 0), (2, 2)], [(2, 0), (2, 1), (2, 2)])
    zc = gaunt_features(x.cpu(), x.cpu(), [(2, 0), (2, 2)], [(2, 0), (2, 2)], [(2, 0), (2, 1), (2, 2)])
    assert_gaunt_close(z, zc, torch.float64)
