"""Part ``softmax`` of ``python -m benchmarks ops`` (CPU): ``segment_softmax`` in float32.

Two inputs: 1e6 x 16 logits into 1e4 segments (random index), and one segment of 1e5 x 4 nearly equal
logits, where a float32 running sum of the denominator is least precise. Each is timed forward alone and
forward + backward (gradient of ``(y * g).sum()`` with a fixed ``g`` of mean 1) for geomdl's compiled op,
its reference and PyG's ``utils.softmax``. The ``agrees`` column gives each output's largest error against
the float64 result, in float32 ulps of the entry (``max |y - y64| / ulp(y64)``); for gradients, whose
entries cancel to near zero, in float32 epsilons of the largest gradient entry (``max |dx - dx64| / (eps max |dx64|)``).
"""
from __future__ import annotations

import torch


def float32_ulps(out: torch.Tensor, want64: torch.Tensor) -> float:
    """Largest error of float32 `out` against `want64`, in units of eps |want64| (within 2x of the true ulp)."""
    ulp = torch.finfo(torch.float32).eps * want64.abs().clamp_min(torch.finfo(torch.float32).tiny)
    return float(((out.double() - want64).abs() / ulp).max())


def _grad_eps(out: torch.Tensor, want64: torch.Tensor) -> float:
    return float((out.double() - want64).abs().max() / (torch.finfo(torch.float32).eps * want64.abs().max()))


def _cases(quick: bool):
    gen = torch.Generator().manual_seed(3)
    n, c, s = (100_000, 16, 1_000) if quick else (1_000_000, 16, 10_000)
    yield f"segment_softmax {n:.0e}x{c}->{s:.0e} random", torch.randn(n, c, generator=gen), \
        torch.randint(0, s, (n,), generator=gen), s
    n = 20_000 if quick else 100_000
    yield f"segment_softmax {n:.0e}x4 one segment", 1e-3 * torch.randn(n, 4, generator=gen), \
        torch.zeros(n, dtype=torch.long), 1


def segment_softmax_cpu(table, quick: bool, optional) -> None:
    from geomdl import ops

    pyg = optional("torch_geometric.utils")
    for op, src, index, s in _cases(quick):
        g = 1.0 + torch.randn(src.shape, generator=torch.Generator().manual_seed(4))
        x64 = src.double().requires_grad_(True)
        want = ops.segment_softmax_reference(x64, index, s)
        (grad_want,) = torch.autograd.grad((want * g.double()).sum(), x64)
        want = want.detach()

        def compiled(x):
            with ops.use_backend("compiled"):
                return ops.segment_softmax(x, index, s)

        impls = {"geomdl (compiled)": compiled,
                 "geomdl reference": lambda x: ops.segment_softmax_reference(x, index, s)}
        if pyg is not None:
            impls["PyG utils.softmax"] = lambda x: pyg.softmax(x, index, num_nodes=s)
        for name, fn in impls.items():
            table.time(op, name, lambda fn=fn: fn(src), agrees=f"max err {float32_ulps(fn(src), want):.1f} ulp",
                       geomdl=name == "geomdl (compiled)")
        for name, fn in impls.items():
            leaf = src.clone().requires_grad_(True)

            def step(fn=fn, leaf=leaf):
                leaf.grad = None
                (fn(leaf) * g).sum().backward()
                return leaf.grad

            table.time(op + " fwd+bwd", name, step, agrees=f"grad err {_grad_eps(step(), grad_want):.2f} eps",
                       geomdl=name == "geomdl (compiled)")
