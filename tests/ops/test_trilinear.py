"""geomdl.ops.trilinear: the compiled sparse trilinear contraction against its reference and a dense einsum."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl import ops
from geomdl.ops import trilinear
from geomdl.ops.trilinear import TrilinearPlan, sparse_trilinear, sparse_trilinear_reference
from geomdl.testing import assert_kernel_matches_reference

compiled = pytest.mark.skipif(not ops.has_kernel("sparse_trilinear"), reason="geomdl._C not built (reference mode)")


def random_plan(gen, widths=(7, 5, 4, 3), n=40, duplicates=True):
    entries = torch.stack([torch.randint(0, w, (n,), generator=gen) for w in widths], 1)
    if duplicates and n > 3:
        entries[1] = entries[0]  # a repeated entry adds up
    coef = torch.randn(n, generator=gen, dtype=torch.float64)
    return TrilinearPlan(entries, coef, widths), entries, coef


def dense(entries, coef, widths, dtype):
    t = torch.zeros(widths, dtype=torch.float64)
    t.index_put_(tuple(entries.T), coef, accumulate=True)
    return t.to(dtype)


def operands(gen, rows, widths, dtype, rows_each=None):
    rows_each = rows_each or (rows, rows, rows)
    return [torch.randn(r, w, generator=gen, dtype=torch.float64).to(dtype) for r, w in zip(rows_each, widths[1:])]


def test_reference_equals_dense_einsum():
    gen = torch.Generator().manual_seed(0)
    plan, entries, coef = random_plan(gen)
    a, b, w = operands(gen, 9, plan.widths, torch.float64)
    expected = torch.einsum("tijk,ri,rj,rk->rt", dense(entries, coef, plan.widths, torch.float64), a, b, w)
    torch.testing.assert_close(sparse_trilinear_reference(plan, a, b, w), expected, atol=1e-12, rtol=1e-12)


def test_reference_chunks_give_the_same_result(monkeypatch):
    gen = torch.Generator().manual_seed(1)
    plan, _, _ = random_plan(gen)
    a, b, w = operands(gen, 50, plan.widths, torch.float64, rows_each=(50, 1, 50))
    whole = sparse_trilinear_reference(plan, a, b, w)
    monkeypatch.setattr(trilinear, "_CHUNK_ELEMENTS", 100)  # 2 rows per chunk
    torch.testing.assert_close(sparse_trilinear_reference(plan, a, b, w), whole, atol=1e-14, rtol=0)


@compiled
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("isa", ["auto", "generic"])
def test_compiled_matches_reference(dtype, isa, monkeypatch):
    if isa == "generic":
        monkeypatch.setenv("GEOMDL_TRILINEAR_ISA", "generic")
    gen = torch.Generator().manual_seed(2)
    plan, _, _ = random_plan(gen, widths=(37, 29, 11, 13), n=400)
    tol = {} if dtype == torch.float64 else {"atol": 1e-5, "rtol": 1e-5}
    for rows in (1, 31, 32, 33, 63, 64, 65, 150):  # around the blocks of 64 float / 32 double rows
        a, b, w = operands(gen, rows, plan.widths, dtype)
        assert_kernel_matches_reference(sparse_trilinear, sparse_trilinear_reference, plan, a, b, w, **tol)


@compiled
def test_compiled_broadcast_rows_and_gradients():
    gen = torch.Generator().manual_seed(3)
    plan, _, _ = random_plan(gen)
    for rows_each in [(20, 1, 20), (1, 20, 1), (20, 20, 1), (1, 1, 1)]:
        a, b, w = operands(gen, 20, plan.widths, torch.float64, rows_each)
        assert_kernel_matches_reference(sparse_trilinear, sparse_trilinear_reference, plan, a, b, w, gradcheck=True)


@compiled
def test_double_backward():
    gen = torch.Generator().manual_seed(4)
    plan, _, _ = random_plan(gen, n=25)
    a, b, w = (x.requires_grad_() for x in operands(gen, 6, plan.widths, torch.float64, (6, 6, 1)))
    with ops.use_backend("compiled"):
        assert torch.autograd.gradgradcheck(lambda a, b, w: sparse_trilinear(plan, a, b, w) ** 2, (a, b, w))


@compiled
def test_edge_cases_empty_single_duplicates():
    gen = torch.Generator().manual_seed(5)
    plan, _, _ = random_plan(gen)
    widths = plan.widths
    empty_plan = TrilinearPlan(torch.zeros(0, 4, dtype=torch.long), torch.zeros(0), widths)
    one = TrilinearPlan(torch.tensor([[2, 1, 0, 2]]), torch.tensor([1.5]), widths)
    dup = TrilinearPlan(torch.tensor([[2, 1, 0, 2]] * 3), torch.tensor([1.0, -2.0, 0.5]), widths)
    zero_width = TrilinearPlan(torch.zeros(0, 4, dtype=torch.long), torch.zeros(0), (0, 5, 4, 3))
    cases = [(plan, (0, 0, 0)), (plan, (0, 1, 1)), (empty_plan, (4, 4, 4)), (one, (3, 3, 3)), (dup, (3, 1, 3)),
             (zero_width, (4, 4, 4))]
    for p, rows_each in cases:
        a, b, w = operands(gen, 0, widths, torch.float64, rows_each)
        assert_kernel_matches_reference(sparse_trilinear, sparse_trilinear_reference, p, a, b, w)
    a, b, w = operands(gen, 3, widths, torch.float64)
    with ops.use_backend("compiled"):
        torch.testing.assert_close(sparse_trilinear(dup, a, b, w)[:, 2], -0.5 * a[:, 1] * b[:, 0] * w[:, 2])
        assert torch.equal(sparse_trilinear(empty_plan, a, b, w), torch.zeros(3, widths[0], dtype=torch.float64))


@compiled
def test_threads_give_identical_results():
    gen = torch.Generator().manual_seed(6)
    plan, _, _ = random_plan(gen, widths=(40, 30, 20, 10), n=500)
    a, b, w = operands(gen, 5000, plan.widths, torch.float32)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = sparse_trilinear(plan, a, b, w)
        torch.set_num_threads(2)
        two = sparse_trilinear(plan, a, b, w)
    finally:
        torch.set_num_threads(old)
    assert torch.equal(one, two)


@compiled
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), rows=st.integers(0, 70), n=st.integers(0, 60),
       widths=st.tuples(*[st.integers(1, 9)] * 4), bcast=st.tuples(*[st.booleans()] * 3),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_property_compiled_matches_dense(seed, rows, n, widths, bcast, dtype):
    gen = torch.Generator().manual_seed(seed)
    plan, entries, coef = random_plan(gen, widths, n)
    rows_each = tuple(1 if bc else rows for bc in bcast)
    a, b, w = operands(gen, rows, widths, dtype, rows_each)
    with ops.use_backend("compiled"):
        out = sparse_trilinear(plan, a, b, w)
    r = max(rows_each) if min(rows_each) != 0 else 0
    assert out.shape == (r, widths[0])
    expected = torch.einsum("tijk,ri,rj,rk->rt", dense(entries, coef, widths, torch.float64), a.double(), b.double(), w.double())
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(out.double(), expected, atol=tol, rtol=tol)


def test_bad_input_errors():
    gen = torch.Generator().manual_seed(7)
    plan, _, _ = random_plan(gen)
    a, b, w = operands(gen, 4, plan.widths, torch.float64)
    with pytest.raises(ValueError, match=r"a must have shape \[rows, 5\]"):
        sparse_trilinear(plan, a[:, :3], b, w)
    with pytest.raises(ValueError, match="same number of rows"):
        sparse_trilinear(plan, a, b[:3], w)
    with pytest.raises(ValueError, match="dtype and device"):
        sparse_trilinear(plan, a, b.float(), w)
    with pytest.raises(TypeError, match="floating"):
        sparse_trilinear(plan, a.long(), b, w)
    with pytest.raises(TypeError, match="plan must be a TrilinearPlan"):
        sparse_trilinear(None, a, b, w)
    with pytest.raises(ValueError, match=r"entries\[:, 2\] must lie in \[0, 4\)"):
        TrilinearPlan(torch.tensor([[0, 0, 4, 0]]), torch.tensor([1.0]), plan.widths)
    with pytest.raises(ValueError, match=r"entries must have shape \[n, 4\]"):
        TrilinearPlan(torch.zeros(2, 2, dtype=torch.long), torch.ones(1), plan.widths)  # not reshaped to [1, 4]
    with pytest.raises(ValueError, match="one value per entry"):
        TrilinearPlan(torch.tensor([[0, 0, 0, 0]]), torch.tensor([1.0, 2.0]), plan.widths)


@compiled
def test_kernel_checks_its_tables():
    x = torch.randn(2, 3)
    ptr = torch.tensor([0, 1])
    with pytest.raises(RuntimeError, match="outside"):
        torch.ops.geomdl.sparse_trilinear(x, x, x, ptr, ptr, torch.tensor([0]), torch.tensor([[0, 3]]), torch.ones(1), 1)
    with pytest.raises(RuntimeError, match="target_ptr must run from 0 to 1"):
        torch.ops.geomdl.sparse_trilinear(x, x, x, torch.tensor([0, 2]), ptr, torch.tensor([0]), torch.tensor([[0, 0]]), torch.ones(1), 1)
