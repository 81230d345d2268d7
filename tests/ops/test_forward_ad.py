"""Forward-mode AD (jvp) through the ops: the compiled kernels have no forward formula, so the ops must
take the references there instead of returning a zero or missing tangent."""
import pytest
import torch
import torch.autograd.forward_ad as fwAD

from geomdl.ops import TrilinearPlan, scatter, segment_softmax, sparse_trilinear, use_backend


def _finite_difference(f, x, t, eps=1e-6):
    return (f(x + eps * t) - f(x - eps * t)) / (2 * eps)


def _cases():
    idx = torch.tensor([0, 0, 1, 1, 1, 3])
    plan = TrilinearPlan(torch.tensor([[0, 0, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0]]), torch.tensor([1.0, 2.0, -0.5]), (2, 2, 2, 1))
    w = torch.randn(6, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    b = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    return {
        "scatter_fast": lambda s: scatter(s, idx, 0, 4),
        "scatter_general": lambda s: scatter(s, idx.int(), 0, None, "max"),
        "softmax": lambda s: segment_softmax(s, idx, 4),
        "trilinear": lambda s: sparse_trilinear(plan, s, b, w),
    }


@pytest.mark.parametrize("name", ["scatter_fast", "scatter_general", "softmax", "trilinear"])
def test_jvp_matches_finite_differences(name):
    f = _cases()[name]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 2, dtype=torch.float64, generator=gen)
    t = torch.randn(6, 2, dtype=torch.float64, generator=gen)
    expected = _finite_difference(f, x, t)
    _, tangent = torch.func.jvp(f, (x,), (t,))
    torch.testing.assert_close(tangent, expected, atol=1e-6, rtol=1e-6)
    with fwAD.dual_level():
        out = f(fwAD.make_dual(x, t))
        tangent = fwAD.unpack_dual(out).tangent
    assert tangent is not None
    torch.testing.assert_close(tangent, expected, atol=1e-6, rtol=1e-6)


def test_jvp_with_compiled_backend_raises_instead_of_a_wrong_tangent():
    pytest.importorskip("geomdl._C")
    x = torch.randn(6, 2, dtype=torch.float64)
    with use_backend("compiled"), pytest.raises(RuntimeError, match="forward-mode"):
        torch.func.jvp(_cases()["scatter_general"], (x,), (torch.ones_like(x),))


@pytest.mark.parametrize("backend", ["auto", "compiled"])
def test_index_ops_stay_compiled_inside_forward_ad(backend, monkeypatch):
    """knn / radius / fps return indices (nothing to differentiate): inside forward-mode AD they keep their
    compiled kernels on detached inputs (the references took 50-300x longer there, and "compiled" raised)."""
    import sys

    from geomdl import ops

    if not all(ops.has_kernel(k) for k in ("knn", "radius", "fps")):
        pytest.skip("geomdl._C not built or not loaded (reference mode)")

    fps_module, neighbors_module = sys.modules["geomdl.ops.fps"], sys.modules["geomdl.ops.neighbors"]  # (ops.fps: the function)

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(200, 3, dtype=torch.float64, generator=gen)
    t = torch.randn(200, 3, dtype=torch.float64, generator=gen)
    expected = (ops.knn_graph(x, 4), ops.radius_graph(x, 0.2), ops.fps(x, num=20))

    def no_reference(*args, **kwargs):
        raise AssertionError("a reference ran inside forward-mode AD")

    monkeypatch.setattr(neighbors_module, "_select_neighbors_reference", no_reference)
    monkeypatch.setattr(fps_module, "_fps_reference", no_reference)
    with use_backend(backend), fwAD.dual_level():
        dual = fwAD.make_dual(x, t)
        got = (ops.knn_graph(dual, 4), ops.radius_graph(dual, 0.2), ops.fps(dual, num=20))
        src, dst = got[0]
        rel_tangent = fwAD.unpack_dual(dual[src] - dual[dst]).tangent  # positions keep their tangents downstream
    for a, b in zip(expected, got):
        assert torch.equal(a, b)
    torch.testing.assert_close(rel_tangent, t[src] - t[dst])
