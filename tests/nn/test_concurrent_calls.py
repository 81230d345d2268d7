"""Serving: several threads call the same freshly built layer or model at once (its lazy caches, the trilinear
plan registry and the kernels' per-dtype tables are filled during those first calls). Every thread's outputs
and input gradients equal those of serial calls on a copy made before any call."""
import copy
import threading

import pytest
import torch

from geomdl.nn.ponita import Ponita
from geomdl.nn.tensor_products.clebsch_gordan import ClebschGordanTensorProduct
from geomdl.nn.tensor_products.gaunt import GauntTensorProduct
from geomdl.ops._extension import use_backend

THREADS = 4


def _run_threads(fn, inputs):
    """``fn(*inputs[t])`` in ``THREADS`` threads released together; the results in input order."""
    start = threading.Barrier(len(inputs))
    results, errors = [None] * len(inputs), []

    def work(t):
        try:
            start.wait()
            for _ in range(3):  # several rounds, so that calls overlap at many points
                results[t] = fn(*inputs[t])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(len(inputs))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors
    return results


def _with_grads(model):
    def call(*args):
        args = [a.clone().requires_grad_(a.is_floating_point()) for a in args]
        out = model(*args)
        outs = out if isinstance(out, tuple) else (out,)
        grads = torch.autograd.grad(sum(o.square().sum() for o in outs if o is not None),
                                    [a for a in args if a.requires_grad])
        return tuple(o.detach() for o in outs if o is not None) + tuple(grads)

    return call


def _check(model, inputs):
    reference = copy.deepcopy(model)  # before any call: its caches fill separately
    serial = [_with_grads(reference)(*args) for args in inputs]
    threaded = _run_threads(_with_grads(model), inputs)
    for got, want in zip(threaded, serial):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)


def _operands(shapes, seed):
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(*s, generator=gen, dtype=torch.float64) for s in shapes)


class _Reference(torch.nn.Module):
    """``inner`` on the pure-PyTorch reference ops (``use_backend`` is thread-local: set in each call)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, *args):
        with use_backend("reference"):
            return self.inner(*args)


@pytest.mark.parametrize("backend", ["auto", "reference"])
@pytest.mark.parametrize("mode", ["uvu", "uvw"])
def test_clebsch_gordan_product_from_threads(backend, mode):
    tp = ClebschGordanTensorProduct("4x0e+4x1o+2x2e", "0e+1o+2e", "4x0e+4x1o+2x2e", mode=mode).double()
    tp.plan()  # built before the threads start: the cold race of plan() is the test below
    inputs = [_operands([(5 + t, tp.irreps_in1.dim), (5 + t, tp.irreps_in2.dim)], t) for t in range(THREADS)]
    _check(_Reference(tp) if backend == "reference" else tp, inputs)


def test_first_calls_of_a_cold_clebsch_gordan_layer_from_two_threads(monkeypatch):
    """Forced interleaving of the first sparse calls of one layer in two threads A and B: both find no plan and
    build one; A takes the registry id of its plan, then B stores its own plan on the layer before A runs the
    operator. A's plan, now referenced by nothing (the registry holds weak references), is gone when A's
    operator looks its id up. Publishing the plan once (build, then under a lock keep the first one stored and
    return it) makes both threads use one plan that the layer keeps alive."""
    from geomdl.nn.tensor_products import clebsch_gordan as cg

    tp = ClebschGordanTensorProduct("2x0e+2x1o", "0e+1o", "2x0e+2x1o", mode="uvu").double()
    assert tp._sparse
    both_building, a_has_id, b_has_plan = threading.Barrier(2, timeout=2), threading.Event(), threading.Event()
    real_plan, real_id = cg.TrilinearPlan, cg.plan_op_id

    def build(*args):
        plan = real_plan(*args)
        try:
            both_building.wait()  # both threads found no plan (times out when building is serialised)
        except threading.BrokenBarrierError:
            pass
        if threading.current_thread().name == "B":
            a_has_id.wait(2)  # B stores its plan only after A took the id of its own
        return plan

    def plan_op_id(plan):
        if threading.current_thread().name == "B":
            b_has_plan.set()  # B's plan() has returned: whatever it stored is on the layer now
            return real_id(plan)
        pid = real_id(plan)
        a_has_id.set()
        b_has_plan.wait(2)
        return pid

    monkeypatch.setattr(cg, "TrilinearPlan", build)
    monkeypatch.setattr(cg, "plan_op_id", plan_op_id)
    x, y = _operands([(3, tp.irreps_in1.dim), (3, tp.irreps_in2.dim)], 0)
    errors = {}

    def call():
        try:
            tp(x, y)
        except BaseException as exc:
            errors[threading.current_thread().name] = exc

    threads = [threading.Thread(target=call, name=name) for name in "AB"]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    if errors:
        raise next(iter(errors.values()))


@pytest.mark.parametrize("method", ["dft", "fft"])
def test_gaunt_product_from_threads(method):
    irreps = "4x0e+4x1o+4x2e"
    g = GauntTensorProduct(irreps, irreps, irreps, method=method).double()
    inputs = [_operands([(6 + t, g.irreps_in1.dim), (6 + t, g.irreps_in2.dim)], 10 + t) for t in range(THREADS)]
    _check(g, inputs)


def test_ponita_from_threads():
    model = Ponita(2, out_scalars=2, out_vectors=1, num_ori=0, task_level="node", hidden=8, layers=2, basis_dim=8).double()
    inputs = [_operands([(6 + t, 3), (6 + t, 2)], 20 + t) for t in range(THREADS)]
    _check(model, inputs)
