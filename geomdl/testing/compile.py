"""``assert_compiles``: a function or layer runs under ``torch.compile(fullgraph=True)`` and gives the
eager results, forward and backward.

``fullgraph=True`` turns every graph break (Python the compiler cannot trace: a data-dependent branch,
an untraceable call) into an error, so a passing check means one graph with no eager fallback.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def _flat_tensors(out) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in _flat_tensors(item)]
    if isinstance(out, dict):
        return [t for key in sorted(out) for t in _flat_tensors(out[key])]
    return []


def _run(fn, args, grad_args, params):
    leaves = [a.detach().clone().requires_grad_(True) if i in grad_args else a for i, a in enumerate(args)]
    outs = _flat_tensors(fn(*leaves))
    if not outs:
        raise TypeError("assert_compiles: the function returned no tensors")
    wrt = [leaves[i] for i in grad_args] + list(params)
    grads = []
    if wrt:
        loss = sum((o.double() * torch.linspace(0.5, 1.5, o.numel(), dtype=torch.float64, device=o.device).view(o.shape)).sum()
                   for o in outs if o.is_floating_point() and o.requires_grad)
        if isinstance(loss, torch.Tensor):
            grads = torch.autograd.grad(loss, wrt, allow_unused=True)
    return [o.detach() for o in outs], [None if g is None else g.detach() for g in grads]


def assert_compiles(fn: Callable, args: Sequence, *, backend: str = "aot_eager", grad: bool = True,
                    atol: float = 1e-10, rtol: float = 1e-8, dynamic: bool | None = None) -> dict:
    """Compile ``fn`` with ``torch.compile(fullgraph=True)`` and compare it with the eager ``fn``.

    Args:
        fn: a function or ``nn.Module`` called as ``fn(*args)``; returns a tensor or a (nested)
            tuple/list/dict of tensors.
        args: the inputs; floating tensors among them are differentiated when ``grad``.
        backend: ``torch.compile`` backend: ``"aot_eager"`` (default: traces forward and backward
            graphs, no code generation, fast) or ``"inductor"`` (generated kernels).
        grad: also compare the gradients of a fixed weighted sum of the outputs with respect to the
            floating inputs and to the parameters of ``fn`` (when it is a module).
        atol, rtol: tolerances of :func:`torch.testing.assert_close` (defaults suit float64).
        dynamic: passed to ``torch.compile``.

    Returns:
        ``{"outputs": n, "gradients": m}``, the numbers of tensors compared.

    Raises:
        AssertionError: the compiler hit a graph break or failed (the message names the cause),
            or outputs / gradients differ from eager.
    """
    grad_args = [i for i, a in enumerate(args) if grad and isinstance(a, torch.Tensor) and a.is_floating_point()]
    params = [p for p in fn.parameters() if p.requires_grad] if grad and isinstance(fn, torch.nn.Module) else []
    eager_out, eager_grads = _run(fn, args, grad_args, params)
    torch._dynamo.reset()
    compiled = torch.compile(fn, backend=backend, fullgraph=True, dynamic=dynamic)
    try:
        out, grads = _run(compiled, args, grad_args, params)
    except Exception as exc:  # a graph break under fullgraph=True, or a compiler failure
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise AssertionError(f"torch.compile(fullgraph=True, backend={backend!r}) failed: {type(exc).__name__}: "
                             f"{first}") from exc
    finally:
        torch._dynamo.reset()
    if len(out) != len(eager_out):
        raise AssertionError(f"compiled function returned {len(out)} tensors, eager {len(eager_out)}")
    for k, (a, b) in enumerate(zip(out, eager_out)):
        torch.testing.assert_close(a, b, atol=atol, rtol=rtol, msg=lambda m, k=k: f"output {k}: {m}")
    if len(grads) != len(eager_grads):  # the compiled outputs carry no gradient (e.g. detached in the graph)
        raise AssertionError(f"compiled function gave {len(grads)} gradients, eager {len(eager_grads)}: its outputs "
                             "do not require grad")
    for k, (a, b) in enumerate(zip(grads, eager_grads)):
        if (a is None) != (b is None):
            raise AssertionError(f"gradient {k}: compiled {'None' if a is None else 'tensor'}, eager "
                                 f"{'None' if b is None else 'tensor'}")
        if a is not None:
            torch.testing.assert_close(a, b, atol=atol, rtol=rtol, msg=lambda m, k=k: f"gradient {k}: {m}")
    return {"outputs": len(out), "gradients": sum(g is not None for g in grads)}
