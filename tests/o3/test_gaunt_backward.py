"""The fused first-order backward of the column Gaunt product (one shared synthesis of the gradient)."""
import types

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl.o3 import gaunt_product, gaunt_product_columns
from geomdl.o3.gaunt_product import _gaunt_columns, _gaunt_columns_backward


@settings(max_examples=12, deadline=None)
@given(l1=st.integers(0, 5), l2=st.integers(0, 5), lo=st.integers(0, 7), cols=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_fused_backward_equals_two_products(l1, l2, lo, cols, seed):
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randn((l1 + 1) ** 2, cols, generator=g, dtype=torch.float64)
    x2 = torch.randn((l2 + 1) ** 2, cols, generator=g, dtype=torch.float64)
    grad = torch.randn((lo + 1) ** 2, cols, generator=g, dtype=torch.float64)
    g1, g2 = _gaunt_columns_backward(grad, x1, x2)
    assert torch.allclose(g1, _gaunt_columns(grad, x2, l1), atol=1e-12, rtol=0)
    assert torch.allclose(g2, _gaunt_columns(grad, x1, l2), atol=1e-12, rtol=0)
    only1, none2 = _gaunt_columns_backward(grad, x1, x2, need1=True, need2=False)
    assert none2 is None and torch.equal(only1, g1)


def test_fused_backward_matches_row_path_and_vjp_identity():
    """Autograd through the columns (fused backward) equals autograd through the row API and <dz, z(x1+dx)>."""
    g = torch.Generator().manual_seed(3)
    x1 = torch.randn(16, 50, generator=g, dtype=torch.float64, requires_grad=True)
    x2 = torch.randn(9, 50, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(25, 50, generator=g, dtype=torch.float64)
    (gaunt_product_columns(x1, x2, 4) * w).sum().backward()
    a1, a2 = x1.grad.clone(), x2.grad.clone()
    r1, r2 = (x.detach().T.clone().requires_grad_() for x in (x1, x2))
    (gaunt_product(r1, r2, 4, method="fft") * w.T).sum().backward()
    assert torch.allclose(a1, r1.grad.T, atol=1e-12) and torch.allclose(a2, r2.grad.T, atol=1e-12)
    # bilinearity: <w, z(x1, x2)> = <dL/dx1, x1> for the product linear in x1
    assert torch.allclose((gaunt_product_columns(x1, x2, 4) * w).sum(), (a1 * x1).sum(), atol=1e-10)


def test_double_backward_still_differentiable():
    g = torch.Generator().manual_seed(5)
    x1 = torch.randn(9, 4, generator=g, dtype=torch.float64, requires_grad=True)
    x2 = torch.randn(9, 4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda a, b: gaunt_product_columns(a, b, 2), (x1, x2))


def test_float32_fused_backward_close_to_float64():
    g = torch.Generator().manual_seed(7)
    x1, x2, grad = (torch.randn(49, 300, generator=g, dtype=torch.float64) for _ in range(3))
    ref = _gaunt_columns_backward(grad, x1, x2)
    got = _gaunt_columns_backward(grad.float(), x1.float(), x2.float())
    for r, o in zip(ref, got):
        assert o.dtype == torch.float32
        assert float((o.double() - r).norm() / r.norm()) < 1e-5


def test_benchmark_degree_list_option():
    from benchmarks import tensor_product as bench

    args = types.SimpleNamespace(lmax=12, quick=False, channels=2, nodes=4, repeats=1, slow_repeats=1,
                                 peers="gaunt", e3nn_lmax=None, seed=0, ls="2,1")
    rows = bench.run(args)
    assert sorted({r["L"] for r in rows if isinstance(r["L"], int)}) == [1, 2]
    with pytest.raises(SystemExit, match="--ls"):
        bench.run(types.SimpleNamespace(**{**vars(args), "ls": "0,x"}))
