"""sparse_trilinear: a plan built inline stays alive for the backward; plans reject non-integer entries."""
import gc

import pytest
import torch

from geomdl import ops
from geomdl.ops.trilinear import TrilinearPlan, sparse_trilinear, sparse_trilinear_reference

BACKENDS = ["reference"] + (["compiled"] if ops.has_kernel("sparse_trilinear") else [])
WIDTHS = (3, 2, 3, 2)
ENTRIES = [[0, 1, 2, 0], [1, 0, 0, 1], [2, 1, 1, 1], [0, 0, 2, 1]]
COEF = [1.0, -2.0, 0.5, 3.0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_backward_of_a_plan_that_was_not_kept(backend):
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(5, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(1, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    with ops.use_backend(backend):
        out = sparse_trilinear(TrilinearPlan(torch.tensor(ENTRIES), torch.tensor(COEF), WIDTHS), a, b, w)
        gc.collect()
        grads = torch.autograd.grad(out.pow(2).sum(), (a, b, w), create_graph=True)
        gc.collect()
        second = torch.autograd.grad(sum(g.sum() for g in grads), (a, b, w))
    plan = TrilinearPlan(torch.tensor(ENTRIES), torch.tensor(COEF), WIDTHS)
    ref = sparse_trilinear_reference(plan, a, b, w)
    ref_grads = torch.autograd.grad(ref.pow(2).sum(), (a, b, w), create_graph=True)
    ref_second = torch.autograd.grad(sum(g.sum() for g in ref_grads), (a, b, w))
    for got, want in zip(grads + second, ref_grads + ref_second):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("entries", [torch.tensor(ENTRIES, dtype=torch.float64) + 0.5, torch.tensor(ENTRIES) > 0])
def test_plan_rejects_non_integer_entries(entries):
    with pytest.raises(TypeError, match="entries must hold integer column indices"):
        TrilinearPlan(entries, torch.tensor(COEF), WIDTHS)


def test_plan_accepts_integer_lists_and_empty_float_entries():
    assert TrilinearPlan(ENTRIES, COEF, WIDTHS).num_entries == 4
    assert TrilinearPlan(torch.zeros(0, 4), torch.zeros(0), WIDTHS).num_entries == 0


@pytest.mark.parametrize("widths", [None, "abcd", (3, 2, 3.5, 2), (3, 2, 3)])
def test_plan_widths_that_are_not_four_ints_raise_the_widths_error(widths):
    # None / a string failed in len() / int() (TypeError, "invalid literal for int()"); 3.5 was truncated to 3
    with pytest.raises(ValueError, match="widths must be 4 non-negative ints"):
        TrilinearPlan(torch.tensor(ENTRIES), torch.tensor(COEF), widths)
    assert TrilinearPlan(torch.tensor(ENTRIES), torch.tensor(COEF), (3, 2, 3.0, 2)).widths == WIDTHS


@pytest.mark.parametrize("backend", BACKENDS)
def test_plan_with_widths_whose_product_passes_int64(backend):
    # the role tables were sorted by one packed int64 key (t, k, i, j): with widths 2**16 it overflowed and
    # entries of one target landed in another's range (some terms lost, silently), in every role
    big = 1 << 16
    entries = torch.tensor([[5, 3, 7, 1], [5, 3, 7, 2], [big - 1, 0, 0, 0], [2, big - 1, big - 1, big - 1], [5, 2, 7, 1]])
    coef = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=torch.float64)
    plan = TrilinearPlan(entries, coef, (big,) * 4)
    gen = torch.Generator().manual_seed(0)
    a, b, w = (torch.randn(2, big, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(3))
    t, i, j, k = entries.unbind(1)
    want = torch.zeros(2, big, dtype=torch.float64).index_add(1, t, coef * a[:, i] * b[:, j] * w[:, k])
    with ops.use_backend(backend):
        got = sparse_trilinear(plan, a, b, w)
        grads = torch.autograd.grad(got, (a, b, w), torch.ones_like(got))
    torch.testing.assert_close(got, want)
    for g, ref in zip(grads, torch.autograd.grad(want, (a, b, w), torch.ones_like(want))):
        torch.testing.assert_close(g, ref)
