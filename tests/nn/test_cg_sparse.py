"""The CG tensor product's sparse kernel path against its per-path einsum path (the reference)."""
import pytest
import torch
from e3nn import o3 as e3o3

from geomdl import ops
from geomdl.nn import ClebschGordanTensorProduct
from geomdl.nn.tensor_products.clebsch_gordan import cg_trilinear_entries
from geomdl.o3 import clebsch_gordan

compiled = pytest.mark.skipif(not ops.has_kernel("sparse_trilinear"), reason="geomdl._C not built (reference mode)")

CASES = [
    ("uvu", "4x0e+4x1o+4x2e", "0e+1o+2e+3o", "4x0e+4x1o+4x1e+4x2e+4x3o"),
    ("uvu", "3x0e+2x1o", "2x0e+2x1o", "3x0e+2x1o+2x1e"),
    ("uuu", "3x0e+3x1o+3x2e", "3x0e+3x1o+3x2e", "3x0e+3x1o+3x1e+3x2e+3x2o+3x3o"),
    ("uvw", "4x0e+3x1o+2x2e", "0e+1o+2e", "2x0e+3x1o+2x2e"),  # sparse: fewer terms than the einsums
    ("uvw", "3x0e+2x1o+2x2e", "3x0e+2x1o+2x1e", "4x0e+3x1o+2x1e+1x2e+1x0o"),  # sparse, with odd paths
    ("uvw", "6x0e+6x1o+6x2e", "6x0e+6x1o+6x2e", "6x0e+6x1o+6x2e"),  # dense einsums: fewer terms
]


def run(tp, *args, backend):
    with ops.use_backend(backend):
        return tp(*args)


def test_uvw_chooses_the_cheaper_execution():
    assert not ClebschGordanTensorProduct(*CASES[5][1:], mode="uvw")._sparse
    assert all(ClebschGordanTensorProduct(*c[1:], mode=c[0])._sparse for c in CASES[:5])


@compiled
@pytest.mark.parametrize("mode,i1,i2,io", CASES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_kernel_path_matches_einsum_path(mode, i1, i2, io, dtype):
    torch.manual_seed(0)
    for internal in (True, False):
        # built in float32 and moved: the CG tensors stay exact (float64 buffers), so both paths agree to 1e-12
        tp = ClebschGordanTensorProduct(i1, i2, io, mode=mode, internal_weights=internal).to(dtype)
        x = e3o3.Irreps(i1).randn(7, -1, dtype=dtype).requires_grad_()
        y = e3o3.Irreps(i2).randn(7, -1, dtype=dtype).requires_grad_()
        args = (x, y) if internal else (x, y, torch.randn(7, tp.weight_numel, dtype=dtype, requires_grad=True))
        out = run(tp, *args, backend="auto")
        ref = run(tp, *args, backend="reference")
        tol = 1e-12 if dtype == torch.float64 else 2e-5
        torch.testing.assert_close(out, ref, atol=tol, rtol=tol)
        g = torch.randn_like(out)
        leaves = list(args) + ([tp.weight] if internal else [])
        ga = torch.autograd.grad(out, leaves, g)
        gb = torch.autograd.grad(ref, leaves, g)
        for a, b in zip(ga, gb):
            torch.testing.assert_close(a, b, atol=tol, rtol=tol)


@compiled
def test_broadcast_leading_dims_and_empty_batches(float64):
    tp = ClebschGordanTensorProduct(*CASES[0][1:], mode="uvu", internal_weights=False)
    x = e3o3.Irreps(CASES[0][1]).randn(2, 1, 5, -1)
    y = e3o3.Irreps(CASES[0][2]).randn(3, 1, -1)
    w = torch.randn(tp.weight_numel)  # shared by every sample
    out = run(tp, x, y, w, backend="auto")
    assert out.shape == (2, 3, 5, tp.irreps_out.dim)
    torch.testing.assert_close(out, run(tp, x, y, w, backend="reference"), atol=1e-12, rtol=1e-12)
    for shape_x, shape_y in [((0, tp.irreps_in1.dim), (1, tp.irreps_in2.dim)), ((tp.irreps_in1.dim,), (tp.irreps_in2.dim,))]:
        x, y = torch.randn(shape_x), torch.randn(shape_y)
        out = run(tp, x, y, w, backend="auto")
        torch.testing.assert_close(out, run(tp, x, y, w, backend="reference"))


@compiled
def test_double_backward_for_force_training(float64):
    """Forces are -dE/dpos and their loss needs second derivatives through the product."""
    tp = ClebschGordanTensorProduct("3x0e+3x1o", "0e+1o+2e", "3x0e+3x1o", mode="uvu", internal_weights=False)
    x = e3o3.Irreps("3x0e+3x1o").randn(4, -1).requires_grad_()
    y = e3o3.Irreps("0e+1o+2e").randn(4, -1).requires_grad_()
    w = torch.randn(4, tp.weight_numel, requires_grad=True)
    with ops.use_backend("compiled"):
        assert torch.autograd.gradgradcheck(lambda x, y, w: tp(x, y, w), (x, y, w))


def test_entries_rebuild_the_dense_product(float64):
    """The sparse entries of each mode, summed into a dense tensor, give the same product as the einsums."""
    for mode, i1, i2, io in CASES:
        tp = ClebschGordanTensorProduct(i1, i2, io, mode=mode, internal_weights=False)
        cgs = [clebsch_gordan(tp.irreps_in1[i].ir.l, tp.irreps_in2[j].ir.l, tp.irreps_out[k].ir.l) * tp.alphas[n]
               for n, (i, j, k) in enumerate(tp.paths)]
        entries, coef = cg_trilinear_entries(tp._blocks1, tp._blocks2, tp._blocks_out, tp.paths, cgs, mode)
        dense = torch.zeros(tp.irreps_out.dim, tp.irreps_in1.dim, tp.irreps_in2.dim, tp.weight_numel)
        dense.index_put_(tuple(entries.T), coef, accumulate=True)
        x, y, w = torch.randn(3, tp.irreps_in1.dim), torch.randn(3, tp.irreps_in2.dim), torch.randn(3, tp.weight_numel)
        expected = run(tp, x, y, w, backend="reference")
        torch.testing.assert_close(torch.einsum("tijk,ri,rj,rk->rt", dense, x, y, w), expected, atol=1e-12, rtol=1e-12)
        assert (coef != 0).all()  # only the non-zero CG coefficients


def test_mixed_dtypes_name_the_argument():
    tp = ClebschGordanTensorProduct("2x0e+2x1o", "0e+1o", "2x0e+2x1o", mode="uvu", internal_weights=False)
    x, y = torch.randn(3, tp.irreps_in1.dim), torch.randn(3, tp.irreps_in2.dim)
    w = torch.randn(3, tp.weight_numel)
    with pytest.raises(ValueError, match=r"y must have the dtype and device of x"):
        tp(x, y.double(), w)
    with pytest.raises(ValueError, match=r"weight must have the dtype and device of x"):
        tp(x, y, w.double())


@compiled
def test_missing_kernel_warns_and_runs_the_einsums(monkeypatch):
    """A device without the kernel (a build without it) falls back to the einsum path, with one warning, never silently."""
    from geomdl.ops import _extension

    tp = ClebschGordanTensorProduct("2x0e+2x1o", "0e+1o", "2x0e+2x1o", mode="uvu", internal_weights=False)
    x, y = torch.randn(3, tp.irreps_in1.dim), torch.randn(3, tp.irreps_in2.dim)
    w = torch.randn(3, tp.weight_numel)
    expected = run(tp, x, y, w, backend="reference")
    monkeypatch.setitem(_extension._kernels, ("sparse_trilinear", "CPU"), False)
    monkeypatch.setattr(_extension, "_warned", set())
    calls = []
    monkeypatch.setattr(tp, "_forward_sparse", lambda *a: calls.append(a))
    with pytest.warns(ops.GeomdlKernelWarning, match="sparse_trilinear has no compiled kernel for device 'cpu'"):
        out = tp(x, y, w)
    assert not calls
    torch.testing.assert_close(out, expected, atol=0, rtol=0)


# ---- inside torch.compile: the kernel as the opaque operator geomdl::sparse_trilinear_plan_op ----


def _graph_ops(tp, *args):
    """Compile ``tp`` (fullgraph) with a backend that records the call targets of the traced graph."""
    seen = []

    def backend(gm, example_inputs):
        seen.extend(str(n.target) for n in gm.graph.nodes if n.op == "call_function")
        return gm.forward

    torch._dynamo.reset()
    out = torch.compile(tp, backend=backend, fullgraph=True)(*args)
    return out, seen


@compiled
@pytest.mark.parametrize("internal", [False, True])
def test_compiled_graph_calls_the_kernel_operator(float64, internal):
    from geomdl.testing import assert_compiles

    tp = ClebschGordanTensorProduct("3x0e+2x1o+2x2e", "0e+1o+2e", "3x0e+2x1o+2x2e", mode="uvu", internal_weights=internal)
    args = [torch.randn(7, tp.irreps_in1.dim), torch.randn(7, tp.irreps_in2.dim)]
    if not internal:
        args.append(torch.randn(7, tp.weight_numel))
    out, seen = _graph_ops(tp, *args)
    assert any("sparse_trilinear_plan_op" in t for t in seen), seen
    assert not any("einsum" in t for t in seen)
    torch.testing.assert_close(out, run(tp, *args, backend="reference"), atol=1e-12, rtol=1e-12)
    assert_compiles(tp, args)  # outputs and gradients (inputs and weights) equal eager, aot_eager backward graph
    with ops.use_backend("reference"):  # the reference backend traces the einsums
        _, seen = _graph_ops(tp, *args)
    assert not any("sparse_trilinear_plan_op" in t for t in seen)


@compiled
def test_compiled_broadcast_leading_dims_and_inductor(float64):
    from geomdl.testing import assert_compiles

    tp = ClebschGordanTensorProduct("2x0e+2x1o", "0e+1o", "2x0e+2x1o+2x1e", mode="uvu", internal_weights=False)
    x = torch.randn(3, 4, tp.irreps_in1.dim)
    y = torch.randn(1, 4, tp.irreps_in2.dim)  # broadcast over the first dim: expanded to all rows
    w = torch.randn(tp.weight_numel)  # one shared weight row: the operator's broadcast row
    assert_compiles(tp, (x, y, w))
    assert_compiles(tp, (x, y, w), backend="inductor", atol=1e-9)


@compiled
def test_plan_operator_opcheck_and_double_backward(float64):
    from geomdl.ops.trilinear import plan_op_id, sparse_trilinear_plan_op, sparse_trilinear_rows

    tp = ClebschGordanTensorProduct("2x0e+2x1o", "0e+1o", "2x0e+2x1o", mode="uvu", internal_weights=False)
    pid = plan_op_id(tp.plan())
    assert plan_op_id(tp.plan()) == pid
    x, y = torch.randn(5, tp.irreps_in1.dim), torch.randn(5, tp.irreps_in2.dim)
    w = torch.randn(1, tp.weight_numel)
    torch.library.opcheck(sparse_trilinear_plan_op, (x, y, w, 5, pid, 0, 4))
    x, y, w = (t.requires_grad_() for t in (x, y, w))
    assert torch.autograd.gradgradcheck(
        lambda x, y, w: sparse_trilinear_rows(pid, x, y, w, 5, (False, False, True)).pow(2), (x, y, w))
    want = run(tp, x, y, w.reshape(-1), backend="reference")
    torch.testing.assert_close(sparse_trilinear_rows(pid, x, y, w, 5, (False, False, True)), want)


def test_plan_operator_names_a_deleted_plan():
    from geomdl.ops.trilinear import plan_op_id, sparse_trilinear_plan_op

    tp = ClebschGordanTensorProduct("2x0e", "0e", "2x0e", mode="uvu", internal_weights=False)
    pid = plan_op_id(tp.plan())
    del tp
    import gc

    gc.collect()
    x = torch.randn(2, 2)
    with pytest.raises(RuntimeError, match=f"plan {pid} no longer exists"):
        sparse_trilinear_plan_op(x, x[:, :1], x, 2, pid, 0, 0)
