"""geomdl.ops.painn_message: the fused PaiNN message kernel against its reference, forward and backward."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl import ops
from geomdl.ops import painn_message, painn_message_reference
from geomdl.testing import assert_compiles, assert_kernel_matches_reference

compiled = pytest.mark.skipif(not ops.has_kernel("painn_message"), reason="geomdl._C not built (reference mode)")


def inputs(n, e, f, dtype=torch.float64, seed=0, targets=None, sort=False):
    g = torch.Generator().manual_seed(seed)
    phi = torch.randn(n, 3 * f, generator=g, dtype=torch.float64).to(dtype)
    w = torch.randn(e, 3 * f, generator=g, dtype=torch.float64).to(dtype)
    vec = torch.randn(n, 3, f, generator=g, dtype=torch.float64).to(dtype)
    unit = torch.nn.functional.normalize(torch.randn(e, 3, generator=g, dtype=torch.float64), dim=1).to(dtype)
    src = torch.randint(0, max(n, 1), (e,), generator=g)
    dst = torch.randint(0, max(targets or n, 1), (e,), generator=g)
    if sort:
        dst = dst.sort().values
    return phi, w, vec, unit, torch.stack([src, dst])


def dense_messages(phi, w, vec, unit, edge_index, num_nodes):
    """The definition, edge by edge in float64 (independent of both implementations)."""
    f = phi.shape[1] // 3
    m_s = torch.zeros(num_nodes, f, dtype=torch.float64)
    m_v = torch.zeros(num_nodes, 3, f, dtype=torch.float64)
    for e, (j, i) in enumerate(edge_index.T.tolist()):
        p, we = phi[j].double(), w[e].double()
        m_s[i] += p[:f] * we[:f]
        m_v[i] += (p[f:2 * f] * we[f:2 * f]) * vec[j].double() + (p[2 * f:] * we[2 * f:]) * unit[e].double()[:, None]
    return m_s, m_v


def test_reference_matches_the_definition():
    phi, w, vec, unit, ei = inputs(9, 30, 4, targets=11)
    m_s, m_v = painn_message_reference(phi, w, vec, unit, ei, 11)
    e_s, e_v = dense_messages(phi, w, vec, unit, ei, 11)
    torch.testing.assert_close(m_s, e_s, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(m_v, e_v, atol=1e-12, rtol=1e-12)


@compiled
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", ["random", "sorted", "empty", "one_edge", "duplicates", "no_nodes", "zero_channels",
                                  "more_targets", "one_node_many_edges"])
def test_compiled_matches_reference(case, dtype):
    n, e, f, targets, sort = {"random": (40, 300, 5, None, False), "sorted": (40, 300, 5, None, True),
                              "empty": (6, 0, 3, None, False), "one_edge": (1, 1, 1, None, False),
                              "duplicates": (5, 60, 2, None, False), "no_nodes": (0, 0, 2, None, False),
                              "zero_channels": (4, 10, 0, None, False), "more_targets": (7, 50, 3, 20, False),
                              "one_node_many_edges": (1, 200, 4, None, False)}[case]
    phi, w, vec, unit, ei = inputs(n, e, f, dtype, targets=targets, sort=sort)
    if case == "duplicates":
        ei[:, 30:] = ei[:, :30]  # every edge twice
    num = targets or n
    tol = {"atol": 1e-12, "rtol": 1e-12} if dtype == torch.float64 else {"atol": 2e-5, "rtol": 2e-5}
    # forward: the same bits (products rounded alike, float64 sums in edge order); backward: to rounding
    assert_kernel_matches_reference(painn_message, painn_message_reference, phi, w, vec, unit, ei, num, exact=True,
                                    backward=False)
    assert_kernel_matches_reference(painn_message, painn_message_reference, phi, w, vec, unit, ei, num, **tol)


@compiled
def test_gradients_of_first_second_and_third_order():
    phi, w, vec, unit, ei = inputs(6, 25, 2, seed=3)
    with ops.use_backend("compiled"):
        x = _leaves(phi, w, vec, unit)
        assert torch.autograd.gradcheck(lambda *x: painn_message(*x, ei), x)
        assert torch.autograd.gradgradcheck(lambda *x: painn_message(*x, ei), x)

    def third(impl, backend):
        with ops.use_backend(backend):
            x = _leaves(phi, w, vec, unit)
            m_s, m_v = impl(*x, ei)
            y = (m_s.pow(2).sum() + m_v.pow(2).sum())
            g1 = torch.autograd.grad(y, x[0], create_graph=True)[0]
            g2 = torch.autograd.grad(g1.pow(2).sum(), x[1], create_graph=True)[0]
            return torch.autograd.grad(g2.pow(2).sum(), x[3])[0]

    torch.testing.assert_close(third(painn_message, "compiled"), third(painn_message_reference, "reference"),
                               atol=1e-10, rtol=1e-10)


def _leaves(*xs):
    return tuple(x.detach().clone().requires_grad_() for x in xs)


@compiled
def test_results_do_not_depend_on_the_number_of_threads():
    phi, w, vec, unit, ei = inputs(500, 6000, 16, torch.float32, seed=4)  # E * F above the single-thread limit
    x = _leaves(phi, w, vec, unit)
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            outs = painn_message(*x, ei)
            grads = torch.autograd.grad(outs, x, [torch.ones_like(o) for o in outs])
            results.append([o.detach() for o in outs] + list(grads))
    finally:
        torch.set_num_threads(before)
    for other in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(results[0], other))


@pytest.mark.parametrize("backend", ["auto", "reference"])
@pytest.mark.parametrize("row, bad", [(0, -1), (0, 6), (1, 9)])
def test_out_of_range_edges_name_the_row(backend, row, bad):
    phi, w, vec, unit, ei = inputs(6, 10, 2, targets=9)
    ei[row, 4] = bad
    with ops.use_backend(backend), pytest.raises(ValueError, match=rf"edge_index\[{row}\]"):
        painn_message(phi, w, vec, unit, ei, 9)


@pytest.mark.parametrize("change, error, match", [
    (lambda a: {**a, "phi": a["phi"][:, :-1]}, ValueError, r"phi must have shape \[N, 3F\]"),
    (lambda a: {**a, "w": a["w"][:-1]}, ValueError, r"w must have shape \[10, 6\]"),
    (lambda a: {**a, "vectors": a["vectors"].transpose(1, 2)}, ValueError, r"vectors must have shape \[6, 3, 2\]"),
    (lambda a: {**a, "unit": a["unit"][:, :2]}, ValueError, r"unit must have shape \[10, 3\]"),
    (lambda a: {**a, "w": a["w"].float()}, ValueError, "w must have phi's dtype"),
    (lambda a: {**a, "edge_index": a["edge_index"].int()}, TypeError, "edge_index must be an int64"),
    (lambda a: {**a, "edge_index": a["edge_index"][:1]}, ValueError, r"edge_index must have shape \[2, E\]"),
    (lambda a: {**a, "phi": a["phi"].long()}, TypeError, "phi must be a floating tensor"),
    (lambda a: {**a, "unit": a["unit"].tolist()}, TypeError, "unit must be a torch.Tensor"),
    (lambda a: {**a, "num_nodes": -1}, ValueError, "num_nodes must be an int >= 0"),
    (lambda a: {**a, "num_nodes": 2.0}, ValueError, "num_nodes must be an int >= 0"),
])
@pytest.mark.parametrize("fn", [painn_message, painn_message_reference])
def test_bad_arguments_are_named(fn, change, error, match):
    phi, w, vec, unit, ei = inputs(6, 10, 2)
    args = change({"phi": phi, "w": w, "vectors": vec, "unit": unit, "edge_index": ei, "num_nodes": None})
    with pytest.raises(error, match=match):
        fn(**args)


def test_forward_mode_ad_gives_the_reference_tangents():
    phi, w, vec, unit, ei = inputs(7, 30, 3, seed=5)
    tangents = tuple(torch.randn_like(x) for x in (phi, w, vec, unit))
    out, jvp = torch.func.jvp(lambda *x: painn_message(*x, ei), (phi, w, vec, unit), tangents)
    ref_out, ref_jvp = torch.func.jvp(lambda *x: painn_message_reference(*x, ei), (phi, w, vec, unit), tangents)
    for a, b in zip(out + jvp, ref_out + ref_jvp):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("backend", ["auto", "reference"])
def test_compiles_to_one_graph(backend):
    phi, w, vec, unit, ei = inputs(8, 40, 2, seed=6)
    with ops.use_backend(backend):
        assert_compiles(lambda p, ww, v, u, e: painn_message(p, ww, v, u, e, 8), (phi, w, vec, unit, ei))


@compiled
@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 6), e=st.integers(0, 25), f=st.integers(0, 3), extra=st.integers(0, 3),
       seed=st.integers(0, 2**31 - 1), double=st.booleans())
def test_property_compiled_matches_reference(n, e, f, extra, seed, double):
    if n == 0:
        e = 0
    dtype = torch.float64 if double else torch.float32
    phi, w, vec, unit, ei = inputs(n, e, f, dtype, seed=seed, targets=n + extra)
    tol = {"atol": 1e-12, "rtol": 1e-12} if double else {"atol": 2e-5, "rtol": 2e-5}
    assert_kernel_matches_reference(painn_message, painn_message_reference, phi, w, vec, unit, ei, n + extra, **tol)


def test_painn_trains_under_autocast():
    """phi(s) is bf16 under autocast beside float32 filters: the layer promotes them (as `*` did), not raise."""
    from geomdl.models.painn import PaiNN

    torch.manual_seed(0)
    model = PaiNN(hidden_channels=16, num_layers=2)
    z, pos = torch.randint(1, 10, (12,)), torch.randn(12, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        energy = model(z, pos)
    energy.sum().backward()
    assert torch.isfinite(energy).all()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_a_device_without_the_kernel_runs_the_torch_ops_quietly(monkeypatch):
    """No kernel for the tensors' device (CUDA here): the PyTorch ops with the compiled scatter, no warning and no
    error under GEOMDL_KERNELS=compiled (simulated on the CPU by hiding the CPU kernel)."""
    import sys
    import warnings

    if not ops.has_kernel("scatter_reduce"):
        pytest.skip("geomdl._C not built (reference mode)")
    module = sys.modules["geomdl.ops.painn_message"]
    monkeypatch.setattr(module, "has_kernel", lambda op, device="cpu": op != "painn_message")
    phi, w, vec, unit, ei = inputs(7, 40, 3, seed=7)
    want = painn_message_reference(phi, w, vec, unit, ei)
    for backend in ("auto", "compiled"):
        with ops.use_backend(backend), warnings.catch_warnings():
            warnings.simplefilter("error")
            got = painn_message(phi, w, vec, unit, ei)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)
    ei[0, 3] = 7
    with pytest.raises(ValueError, match=r"edge_index\[0\]"):
        painn_message(phi, w, vec, unit, ei)


def test_a_device_without_the_kernel_reads_the_destinations_once(monkeypatch):
    """No kernel for the device (CUDA): edge_index[1] is range-checked by the compiled scatter's own pass only, not
    by one more aminmax and device->host read per call (every PaiNN layer on the GPU); out-of-range entries still
    raise (simulated on the CPU by hiding the CPU kernel)."""
    import sys

    if not ops.has_kernel("scatter_reduce"):
        pytest.skip("geomdl._C not built (reference mode)")
    module = sys.modules["geomdl.ops.painn_message"]
    monkeypatch.setattr(module, "has_kernel", lambda op, device="cpu": op != "painn_message")
    checked = []
    real = module.check_index_values
    monkeypatch.setattr(module, "check_index_values", lambda index, name, upper: (checked.append(name), real(index, name, upper)))
    phi, w, vec, unit, ei = inputs(7, 40, 3, seed=8)
    painn_message(phi, w, vec, unit, ei)
    assert checked == ["edge_index[0]"]
    ei[1, 5] = 7
    with pytest.raises(ValueError, match="out of range"):
        painn_message(phi, w, vec, unit, ei)
