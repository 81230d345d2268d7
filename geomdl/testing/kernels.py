"""``assert_kernel_matches_reference``: a compiled op against its pure-PyTorch reference."""
from __future__ import annotations

import torch

from geomdl.ops._extension import use_backend


def _flat(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def assert_kernel_matches_reference(op, reference, *args, atol: float | None = None, rtol: float | None = None,
                                    backward: bool = True, gradcheck: bool = False, exact: bool = False, **kwargs) -> None:
    """Compare ``op(*args, **kwargs)`` (run with ``GEOMDL_KERNELS=compiled``) with ``reference``.

    Checks: equal output structure, shapes and dtypes; values equal (``exact``) or close; with
    ``backward``, equal gradients (each backward run under its side's backend: ``compiled`` for ``op``,
    ``reference`` for ``reference``) of a random projection of the outputs w.r.t. every floating input;
    with ``gradcheck``, ``torch.autograd.gradcheck`` of the compiled op in float64.
    Raises ``AssertionError`` naming what differs.
    """
    def grads(fn):
        leaves = [a.detach().clone().requires_grad_(backward and a.is_floating_point()) if isinstance(a, torch.Tensor) else a for a in args]
        outs = _flat(fn(*leaves, **kwargs))
        return leaves, outs

    with use_backend("compiled"):
        la, oa = grads(op)
    with use_backend("reference"):
        lb, ob = grads(reference)
    if len(oa) != len(ob):
        raise AssertionError(f"kernel returns {len(oa)} outputs, reference {len(ob)}")
    for i, (a, b) in enumerate(zip(oa, ob)):
        if a.shape != b.shape or a.dtype != b.dtype:
            raise AssertionError(f"output {i}: kernel {tuple(a.shape)} {a.dtype} vs reference {tuple(b.shape)} {b.dtype}")
        if exact or not a.is_floating_point():
            nan_a, nan_b = a.isnan(), b.isnan()  # NaN at the same entries matches (the ops propagate NaN)
            if not (torch.equal(nan_a, nan_b) and torch.equal(a.masked_fill(nan_a, 0), b.masked_fill(nan_b, 0))):
                raise AssertionError(f"output {i} differs from the reference (max abs diff {float((a.double() - b.double()).abs().max()) if a.numel() else 0:.3g})")
        else:
            torch.testing.assert_close(a, b, atol=atol, rtol=rtol, equal_nan=True, msg=lambda m: f"output {i} differs from the reference: {m}")
    if backward:
        for i, (a, b) in enumerate(zip(oa, ob)):
            if a.requires_grad != b.requires_grad:  # else a kernel without autograd would skip the gradient check
                raise AssertionError(f"output {i}: kernel requires_grad={a.requires_grad}, reference {b.requires_grad}")
        floats = [i for i, (a, b) in enumerate(zip(oa, ob)) if a.is_floating_point() and a.requires_grad]
        if floats:
            gen = torch.Generator().manual_seed(0)
            weights = [torch.randn(oa[i].shape, generator=gen, dtype=oa[i].dtype).to(oa[i].device) for i in floats]
            ins = [i for i, a in enumerate(la) if isinstance(a, torch.Tensor) and a.requires_grad]
            # each backward under its own backend: ops that choose their backward kernel when the backward runs
            # would otherwise run the reference's backward for both under GEOMDL_KERNELS=reference
            with use_backend("compiled"):
                ga = torch.autograd.grad(sum((oa[i] * w).sum() for i, w in zip(floats, weights)), [la[i] for i in ins], allow_unused=True)
            with use_backend("reference"):
                gb = torch.autograd.grad(sum((ob[i] * w).sum() for i, w in zip(floats, weights)), [lb[i] for i in ins], allow_unused=True)
            for j, (x, y) in enumerate(zip(ga, gb)):
                x = torch.zeros_like(la[ins[j]]) if x is None else x
                y = torch.zeros_like(lb[ins[j]]) if y is None else y
                torch.testing.assert_close(x, y, atol=atol, rtol=rtol, equal_nan=True, msg=lambda m: f"gradient of input {ins[j]} differs from the reference: {m}")
    if gradcheck:
        d_args = [a.detach().double().requires_grad_(True) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]
        with use_backend("compiled"):
            ok = torch.autograd.gradcheck(lambda *xs: op(*xs, **kwargs), tuple(d_args), raise_exception=False)
        if not ok:
            raise AssertionError("gradcheck failed for the compiled op")
