"""Gaunt products under forward-mode AD and torch.func transforms (jvp, grad, vmap, jacrev, jacfwd) equal the
normal (custom autograd.Function) path, and gaunt_features rejects bad block specs and dtypes by name."""
import pytest
import torch
import torch.autograd.forward_ad as fwAD

from geomdl import ops
from geomdl.nn.tensor_products._layout import from_columns, to_columns
from geomdl.o3 import gaunt_product, gaunt_product_columns
from geomdl.o3.gaunt_kernel import gaunt_features
from gaunt_checks import assert_gaunt_close, irreps

F64 = torch.float64
needs_kernel = pytest.mark.skipif(not ops.has_kernel("gaunt_columns"), reason="geomdl._C not built (reference mode)")
IRREPS = [  # (x, y, out): gaps in the degrees, Lo above and below L1 + L2
    ((2, 0), (2, 1), (2, 2)), ((2, 0), (2, 1), (2, 2)), ((2, 0), (2, 1), (2, 2), (2, 3))
], [((3, 0), (3, 2)), ((3, 1), (3, 3)), ((3, 1), (3, 4), (3, 6))]


def _close(got, want):
    assert_gaunt_close(got, want, F64, same_dtype=True)


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _jvp_by_jacobian(f, x, t):
    """``J(x) t`` from the reverse-mode Jacobian of the normal path."""
    jac = torch.autograd.functional.jacobian(f, x)  # [*out, *in]
    return (jac.reshape(-1, x.numel()) @ t.reshape(-1)).reshape(jac.shape[: jac.dim() - x.dim()])


@pytest.mark.parametrize("method", ["dft", "fft"])
@pytest.mark.parametrize("l1,l2,lo", [(2, 2, 4), (1, 3, 2), (0, 2, 5)])
def test_gaunt_product_forward_ad_equals_jacobian(method, l1, l2, lo):
    x1, x2 = _rand(4, (l1 + 1) ** 2, seed=1), _rand(4, (l2 + 1) ** 2, seed=2)
    t1, t2 = _rand(*x1.shape, seed=3), _rand(*x2.shape, seed=4)
    f = lambda a, b: gaunt_product(a, b, lo, method=method)
    want = f(x1, x2)
    want_t = _jvp_by_jacobian(lambda a: f(a, x2), x1, t1) + _jvp_by_jacobian(lambda b: f(x1, b), x2, t2)
    with fwAD.dual_level():
        out = fwAD.unpack_dual(f(fwAD.make_dual(x1, t1), fwAD.make_dual(x2, t2)))
    _close(out.primal, want)
    _close(out.tangent, want_t)
    primal, tangent = torch.func.jvp(f, (x1, x2), (t1, t2))
    _close(primal, want)
    _close(tangent, want_t)


@pytest.mark.parametrize("method", ["dft", "fft"])
def test_gaunt_product_func_grad_vmap_jacobians_equal_normal_path(method):
    x1, x2, w = _rand(3, 5, 9, seed=5), _rand(5, 16, seed=6), _rand(3, 5, 36, seed=7)
    f = lambda a, b: gaunt_product(a, b, method=method)
    want = f(x1, x2)  # broadcasting over the leading 3
    _close(torch.func.vmap(f, in_dims=(0, None))(x1, x2), want)
    _close(torch.func.vmap(torch.func.vmap(f))(x1, x2.expand(3, 5, 16)), want)
    a, b = x1.clone().requires_grad_(), x2.clone().requires_grad_()
    want_g = torch.autograd.grad((f(a, b) * w).sum(), (a, b))
    got_g = torch.func.grad(lambda p, q: (f(p, q) * w).sum(), argnums=(0, 1))(x1, x2)
    for g, h in zip(got_g, want_g):
        _close(g, h)
    jac = torch.autograd.functional.jacobian(lambda p: f(p, x2[0]), x1[0, 0])
    _close(torch.func.jacrev(lambda p: f(p, x2[0]))(x1[0, 0]), jac)
    _close(torch.func.jacfwd(lambda p: f(p, x2[0]))(x1[0, 0]), jac)
    hess = torch.autograd.functional.hessian(lambda p: (f(p, p) * w[0, 0, :25]).sum(), x1[0, 0])  # double backward
    _close(torch.func.hessian(lambda p: (f(p, p) * w[0, 0, :25]).sum())(x1[0, 0]), hess)


def test_gaunt_product_columns_under_transforms():
    x1t, x2t, t = _rand(9, 6, seed=8), _rand(16, 6, seed=9), _rand(9, 6, seed=10)
    f = lambda a: gaunt_product_columns(a, x2t, 5)
    want = f(x1t)
    primal, tangent = torch.func.jvp(f, (x1t,), (t,))
    _close(primal, want)
    _close(tangent, _jvp_by_jacobian(f, x1t, t))
    _close(torch.func.vmap(lambda a, b: gaunt_product_columns(a, b, 5), in_dims=2, out_dims=2)(
        torch.stack([x1t, -x1t], 2), torch.stack([x2t, x2t], 2)), torch.stack([want, -want], 2))
    a = x1t.clone().requires_grad_()
    _close(torch.func.grad(lambda p: f(p).square().sum())(x1t), torch.autograd.grad(f(a).square().sum(), a)[0])


@needs_kernel
@pytest.mark.parametrize("ix,iy,iz", [IRREPS[0], IRREPS[1]])
def test_gaunt_features_under_transforms(ix, iy, iz):
    rx, ry = irreps(ix), irreps(iy)
    x, y = _rand(5, rx.dim, seed=11), _rand(5, ry.dim, seed=12)
    tx, ty = _rand(5, rx.dim, seed=13), _rand(5, ry.dim, seed=14)
    f = lambda a, b: gaunt_features(a, b, ix, iy, iz)
    want = f(x, y)  # the compiled kernel
    want_t = _jvp_by_jacobian(lambda a: f(a, y), x, tx) + _jvp_by_jacobian(lambda b: f(x, b), y, ty)
    primal, tangent = torch.func.jvp(f, (x, y), (tx, ty))
    _close(primal, want)
    _close(tangent, want_t)
    with fwAD.dual_level():
        out = fwAD.unpack_dual(f(fwAD.make_dual(x, tx), y))
    _close(out.tangent, _jvp_by_jacobian(lambda a: f(a, y), x, tx))
    _close(torch.func.vmap(f)(x[:, None], y[:, None]).squeeze(1), want)  # N = 1 per vmapped row
    _close(torch.func.vmap(f, in_dims=(0, None))(torch.stack([x, 2 * x]), y), torch.stack([want, 2 * want]))
    w = _rand(*want.shape, seed=15)
    a, b = x.clone().requires_grad_(), y.clone().requires_grad_()
    want_g = torch.autograd.grad((f(a, b) * w).sum(), (a, b))
    for g, h in zip(torch.func.grad(lambda p, q: (f(p, q) * w).sum(), argnums=(0, 1))(x, y), want_g):
        _close(g, h)


@needs_kernel
def test_gaunt_features_valid_call_unchanged():
    ix, iy, iz = IRREPS[1]
    rx, ry, rz = irreps(ix), irreps(iy), irreps(iz)
    x, y = _rand(7, rx.dim, seed=16), _rand(7, ry.dim, seed=17)
    with ops.use_backend("reference"):
        want = from_columns(gaunt_product_columns(to_columns(x, rx, 2), to_columns(y, ry, 3), 6), rz, 7)
    got = gaunt_features(x, y, ix, iy, iz)
    _close(got, want)
    assert_gaunt_close(gaunt_features(x.float(), y.float(), ix, iy, iz), got, torch.float32)  # float32 accepted too


@needs_kernel
def test_gaunt_features_accepts_lists_of_pairs():
    ix, iy, iz = IRREPS[0]
    x, y = _rand(3, irreps(ix).dim, seed=18), _rand(3, irreps(iy).dim, seed=19)
    assert torch.equal(gaunt_features(x, y, list(ix), list(iy), [list(b) for b in iz]), gaunt_features(x, y, ix, iy, iz))


@needs_kernel
@pytest.mark.parametrize("which", ["irreps_x", "irreps_y", "irreps_out"])
@pytest.mark.parametrize("blocks,match", [
    (((2, 0), (2, 1), (2, 1)), "each degree at most once"),
    ((), "at least one"),
    (((2, 0), (2, -1)), "non-negative"),
    (((2, 0), (2, 1.0)), "int pairs"),
    (((2, 0), (2, True)), "int pairs"),
    (((2, 0, 1),), "int pairs"),
    (3, "sequence"),
])
def test_gaunt_features_rejects_bad_block_specs(which, blocks, match):
    ok = ((2, 0), (2, 1))
    spec = {"irreps_x": ok, "irreps_y": ok, "irreps_out": ok, which: blocks}
    x, y = torch.randn(3, 8, dtype=F64), torch.randn(3, 8, dtype=F64)
    with pytest.raises(ValueError, match=f"{which} .*{match}"):
        gaunt_features(x, y, spec["irreps_x"], spec["irreps_y"], spec["irreps_out"])


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int64, torch.complex64])
@pytest.mark.parametrize("which", ["x", "y"])
def test_gaunt_features_rejects_bad_dtypes(dtype, which):
    ok = ((2, 0), (2, 1))
    t = {"x": torch.randn(3, 8, dtype=F64), "y": torch.randn(3, 8, dtype=F64)}
    t[which] = t[which].to(dtype)
    with pytest.raises(TypeError, match=rf"^{which} must be float32 or float64, got {dtype}"):
        gaunt_features(t["x"], t["y"], ok, ok, ok)
    t[which] = [[1.0]]
    with pytest.raises(TypeError, match=f"^{which} must be a torch.Tensor"):
        gaunt_features(t["x"], t["y"], ok, ok, ok)


def test_gaunt_features_block_specs_of_numpy_ints_and_zero_multiplicity():
    import numpy as np

    from geomdl.o3.gaunt_kernel import gaunt_features

    x = torch.randn(2, 6, dtype=torch.float64)
    plain = gaunt_features(x, x, ((2, 1),), ((2, 1),), ((2, 1),))
    numpy_spec = ((np.int64(2), np.int32(1)),)
    torch.testing.assert_close(gaunt_features(x, x, numpy_spec, numpy_spec, numpy_spec), plain)
    with pytest.raises(ValueError, match=r"irreps_x needs non-negative degrees l and multiplicities >= 1"):
        gaunt_features(torch.randn(2, 0, dtype=torch.float64), x, ((0, 1),), ((2, 1),), ((2, 1),))


def _batched_vjps_equal_loop(f, inputs, seed):
    """``torch.autograd.grad(..., is_grads_batched=True)`` (torch's legacy vmap over the gradients, what
    ``jacobian`` / ``hessian(vectorize=True)`` run) equals the loop over them, first and second order."""
    leaves = [t.clone().requires_grad_(True) for t in inputs]
    out = f(*leaves)
    vs = _rand(3, *out.shape, seed=seed)
    got = torch.autograd.grad(out, leaves, vs, is_grads_batched=True, retain_graph=True)
    want = [torch.stack(g) for g in zip(*[torch.autograd.grad(out, leaves, v, retain_graph=True) for v in vs])]
    for g, h in zip(got, want):
        _close(g, h)
    g = torch.autograd.grad(out.square().sum(), leaves[0], create_graph=True)[0]
    us = _rand(3, *g.shape, seed=seed + 1)
    got = torch.autograd.grad(g, leaves, us, is_grads_batched=True, retain_graph=True)
    want = [torch.stack(g) for g in zip(*[torch.autograd.grad(g, leaves, u, retain_graph=True) for u in us])]
    for g, h in zip(got, want):
        _close(g, h)


@pytest.mark.parametrize("entry", ["features", "columns", "dft", "fft", "layer"])
def test_gaunt_products_under_batched_gradients(entry):
    """The kernels have no batching rule for the legacy vmap: the Functions' backward passes take plain ops."""
    from e3nn import o3

    from geomdl.nn import GauntTensorProduct

    if entry == "features":
        if not ops.has_kernel("gaunt_columns"):
            pytest.skip("geomdl._C not built (reference mode)")
        ix, iy, iz = IRREPS[1]
        _batched_vjps_equal_loop(lambda a, b: gaunt_features(a, b, ix, iy, iz),
                                 (_rand(4, irreps(ix).dim, seed=20), _rand(4, irreps(iy).dim, seed=21)), 22)
    elif entry == "columns":
        _batched_vjps_equal_loop(lambda a, b: gaunt_product_columns(a, b, 4), (_rand(9, 5, seed=23),
                                                                                _rand(16, 5, seed=24)), 25)
    elif entry in ("dft", "fft"):
        _batched_vjps_equal_loop(lambda a, b: gaunt_product(a, b, 4, method=entry), (_rand(5, 9, seed=26),
                                                                                      _rand(5, 16, seed=27)), 28)
    else:
        rep = o3.Irreps("4x0e+4x1o+4x2e")
        torch.manual_seed(0)
        layer = GauntTensorProduct(rep, rep, rep).double()
        _batched_vjps_equal_loop(layer, (_rand(5, rep.dim, seed=29), _rand(5, rep.dim, seed=30)), 31)
