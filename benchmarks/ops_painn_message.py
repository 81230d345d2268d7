"""Part ``painn_message`` of ``python -m benchmarks ops`` (CPU): PaiNN's message block, float32.

``geomdl.ops.painn_message`` (one pass over the edges forward and one backward) against the same maths
written with PyTorch ops as a layer does it (gather the node rows per edge, multiply, concatenate, scatter:
``torch.index_add_``, or ``torch_scatter.scatter`` where installed) and against geomdl's reference. Inputs:
10,000 points uniform in a cube with 16 neighbours per radius ball on average (about 150,000 edges; radius
graph sorted by target), 64 channels. Timed forward alone and forward + backward (gradients of ``phi``, ``w``,
``vectors`` and ``unit`` for fixed output weights). ``agrees``: the largest error against the float64 result,
relative to the largest entry of that result.
"""
from __future__ import annotations

import math

import torch


def _inputs(quick: bool):
    from geomdl import ops

    n, f = (2_000, 32) if quick else (10_000, 64)
    gen = torch.Generator().manual_seed(5)
    side = (n * (4.0 / 3.0) * math.pi / 16.0) ** (1.0 / 3.0)
    pos = torch.rand(n, 3, generator=gen) * side
    edge_index = ops.radius_graph(pos, 1.0, max_num_neighbors=64)
    e = edge_index.shape[1]
    rel = pos[edge_index[0]] - pos[edge_index[1]]
    unit = rel / rel.norm(dim=1, keepdim=True).clamp_min(1e-6)
    phi = torch.randn(n, 3 * f, generator=gen)
    w = torch.randn(e, 3 * f, generator=gen)
    vec = torch.randn(n, 3, f, generator=gen)
    return (phi, w, vec, unit), edge_index, n, f


def _torch_ops(scatter_add, edge_index, n):
    """The message block with PyTorch ops (what the layer computed before the fused op)."""
    def fn(phi, w, vec, unit):
        f = phi.shape[1] // 3
        src, dst = edge_index
        x = phi.index_select(0, src) * w
        ds, dvv, dvs = x[:, :f], x[:, f:2 * f], x[:, 2 * f:]
        dv = dvv.unsqueeze(1) * vec.index_select(0, src) + dvs.unsqueeze(1) * unit.unsqueeze(2)
        out = scatter_add(torch.cat([ds, dv.reshape(-1, 3 * f)], dim=1), dst, n)
        return out[:, :f], out[:, f:].view(n, 3, f)
    return fn


def _rel_err(outs, want) -> float:
    return max(float((o.double() - w).abs().max() / w.abs().max().clamp_min(1e-300)) for o, w in zip(outs, want))


def painn_message_cpu(table, quick: bool, optional) -> None:
    from geomdl import ops

    tensors, edge_index, n, f = _inputs(quick)
    e = edge_index.shape[1]
    op = f"painn_message {n:.0e} nodes, {e:.2e} edges x {f}"
    gen = torch.Generator().manual_seed(6)
    weights = (torch.randn(n, f, generator=gen), torch.randn(n, 3, f, generator=gen))

    def compiled(*t):
        with ops.use_backend("compiled"):
            return ops.painn_message(*t, edge_index, n)

    impls = {"geomdl (compiled)": compiled,
             "torch ops (index_select, mul, cat, index_add_)": _torch_ops(
                 lambda x, i, m: x.new_zeros((m, x.shape[1])).index_add_(0, i, x), edge_index, n)}
    ts = optional("torch_scatter")
    if ts is not None:
        impls["torch ops + torch_scatter.scatter"] = _torch_ops(lambda x, i, m: ts.scatter(x, i, 0, dim_size=m), edge_index, n)
    else:
        table.skip(op, "torch ops + torch_scatter.scatter", "torch_scatter not installed (pip install 'geomdl[bench]')")
    impls["geomdl reference"] = lambda *t: ops.painn_message_reference(*t, edge_index, n)

    # float64 results: forward and the gradients of sum(out * weights)
    leaves64 = [t.double().requires_grad_(True) for t in tensors]
    out64 = ops.painn_message_reference(*leaves64, edge_index, n)
    grads64 = torch.autograd.grad(sum((o * wt.double()).sum() for o, wt in zip(out64, weights)), leaves64)
    out64 = [o.detach() for o in out64]

    def step(fn, leaves):
        outs = fn(*leaves)
        return torch.autograd.grad(sum((o * wt).sum() for o, wt in zip(outs, weights)), leaves)

    for name, fn in impls.items():
        slow = name == "geomdl reference"
        err = _rel_err(fn(*tensors), out64)
        table.time(op + " forward", name, lambda fn=fn: fn(*tensors), agrees=f"rel err {err:.1e}",
                   geomdl=name == "geomdl (compiled)", repeats=3 if slow else None)
    for name, fn in impls.items():
        slow = name == "geomdl reference"
        leaves = [t.clone().requires_grad_(True) for t in tensors]
        err = _rel_err(step(fn, leaves), grads64)
        table.time(op + " forward+backward", name, lambda fn=fn, leaves=leaves: step(fn, leaves),
                   agrees=f"rel err {err:.1e}", geomdl=name == "geomdl (compiled)", repeats=3 if slow else None)
