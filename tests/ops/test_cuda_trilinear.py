"""CUDA kernel of geomdl::sparse_trilinear (kernels/trilinear/trilinear_cuda.cu) == the pure-PyTorch
reference and the CPU kernel: every role (forward and each gradient), tile boundaries of 32 rows,
broadcast operands, double backward, the unstaged path for very wide operands, the CG layer's kernel
path, argument errors and the table check cache.

Every test starts with ``require_cuda_kernel``: skipped without a GPU, failed when a GPU is present but
the CUDA kernel is missing.
"""
import pytest
import torch

from geomdl import ops
from geomdl.ops.trilinear import TrilinearPlan, sparse_trilinear, sparse_trilinear_reference
from geomdl.testing import assert_kernel_matches_reference
from geomdl.testing.cuda import require_cuda_kernel

DTYPES = [torch.float32, torch.float64]


def _tol(dtype):
    return {"atol": 1e-4, "rtol": 1e-4} if dtype == torch.float32 else {"atol": 1e-11, "rtol": 1e-11}


def _plan(seed, widths=(37, 29, 11, 13), n=400):
    g = torch.Generator().manual_seed(seed)
    entries = torch.stack([torch.randint(0, w, (n,), generator=g) for w in widths], 1)
    if n > 3:
        entries[1] = entries[0]  # a duplicate entry adds up
    return TrilinearPlan(entries, torch.randn(n, generator=g, dtype=torch.float64), widths), g


def _operands(plan, g, rows_each, dtype, device):
    return [torch.randn(r, w, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
            for r, w in zip(rows_each, plan.widths[1:])]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", [0, 1, 31, 32, 33, 1000])
def test_matches_reference_forward_and_backward(dtype, rows):
    device = require_cuda_kernel("sparse_trilinear")
    plan, g = _plan(1)
    a, b, w = _operands(plan, g, (rows,) * 3, dtype, device)
    assert_kernel_matches_reference(sparse_trilinear, sparse_trilinear_reference, plan, a, b, w, **_tol(dtype))


@pytest.mark.parametrize("rows_each", [(40, 1, 40), (1, 40, 1), (40, 40, 1), (1, 1, 1)])
def test_broadcast_rows_gradcheck(rows_each):
    device = require_cuda_kernel("sparse_trilinear")
    plan, g = _plan(2, (7, 5, 4, 3), 40)
    a, b, w = _operands(plan, g, rows_each, torch.float64, device)
    assert_kernel_matches_reference(sparse_trilinear, sparse_trilinear_reference, plan, a, b, w, gradcheck=True,
                                    **_tol(torch.float64))


def test_double_backward():
    device = require_cuda_kernel("sparse_trilinear")
    plan, g = _plan(3, (6, 5, 4, 3), 30)
    a, b, w = (x.requires_grad_() for x in _operands(plan, g, (6, 6, 1), torch.float64, device))
    with ops.use_backend("compiled"):
        assert torch.autograd.gradgradcheck(lambda a, b, w: sparse_trilinear(plan, a, b, w) ** 2, (a, b, w))


@pytest.mark.parametrize("dtype", DTYPES)
def test_equals_the_cpu_kernel(dtype):
    """Same tables, same order of the sums per row: float64 agrees to the FMA contraction of nvcc."""
    device = require_cuda_kernel("sparse_trilinear")
    plan, g = _plan(4, (64, 48, 16, 40), 3000)
    a, b, w = _operands(plan, g, (777, 777, 777), dtype, "cpu")
    with ops.use_backend("compiled"):
        cpu = sparse_trilinear(plan, a, b, w)
        gpu = sparse_trilinear(plan, a.to(device), b.to(device), w.to(device)).cpu()
    torch.testing.assert_close(gpu, cpu, **_tol(dtype))


def test_wide_operands_take_the_unstaged_path():
    """Operand rows wider than the shared memory (over 227 KB per row in float64) are read from global memory."""
    device = require_cuda_kernel("sparse_trilinear")
    plan, g = _plan(5, (9000, 12000, 9000, 5), 5000)
    a, b, w = _operands(plan, g, (70, 70, 70), torch.float64, device)
    assert_kernel_matches_reference(sparse_trilinear, sparse_trilinear_reference, plan, a, b, w, backward=False,
                                    **_tol(torch.float64))


def test_cg_layer_kernel_path_matches_einsums():
    from geomdl.nn import ClebschGordanTensorProduct

    device = require_cuda_kernel("sparse_trilinear")
    torch.manual_seed(0)
    tp = ClebschGordanTensorProduct("8x0e+8x1o+8x2e", "0e+1o+2e", "8x0e+8x1o+8x2e", mode="uvu",
                                    internal_weights=False).to(device=device, dtype=torch.float64)
    x = torch.randn(300, tp.irreps_in1.dim, device=device, dtype=torch.float64, requires_grad=True)
    y = torch.randn(300, tp.irreps_in2.dim, device=device, dtype=torch.float64)
    wt = torch.randn(300, tp.weight_numel, device=device, dtype=torch.float64)
    with ops.use_backend("compiled"):
        got = tp._forward_sparse(x, y, wt, x.shape[:-1])
    with ops.use_backend("reference"):
        want = tp(x, y, wt)
    torch.testing.assert_close(got, want, atol=1e-11, rtol=1e-11)
    (gg,) = torch.autograd.grad(got.pow(2).sum(), x)
    (gw,) = torch.autograd.grad(want.pow(2).sum(), x)
    torch.testing.assert_close(gg, gw, atol=1e-10, rtol=1e-10)


def test_errors_and_the_table_check_cache():
    device = require_cuda_kernel("sparse_trilinear")
    x = torch.randn(2, 3, device=device)
    ptr = torch.tensor([0, 1], device=device)
    col = torch.tensor([0], device=device)
    pair = torch.tensor([[0, 0]], device=device)
    one = torch.ones(1, device=device)
    op = torch.ops.geomdl.sparse_trilinear
    with pytest.raises(RuntimeError, match="outside"):
        op(x, x, x, ptr, ptr, col, torch.tensor([[0, 3]], device=device), one, 1)
    with pytest.raises(RuntimeError, match="target_ptr must run from 0 to 1"):
        op(x, x, x, torch.tensor([0, 2], device=device), ptr, col, pair, one, 1)
    with pytest.raises(RuntimeError, match="pair must be on the device of x1"):
        op(x, x, x, ptr, ptr, col, pair.cpu(), one, 1)
    torch.testing.assert_close(op(x, x, x, ptr, ptr, col, pair, one, 1), x[:, :1] ** 3)  # checked, then cached
    pair.copy_(torch.tensor([[0, 3]]))  # in place: a new version, checked again
    with pytest.raises(RuntimeError, match="outside"):
        op(x, x, x, ptr, ptr, col, pair, one, 1)
