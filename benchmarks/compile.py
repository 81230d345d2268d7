"""``torch.compile`` against eager: one training step (forward, backward of a fixed loss) of geomdl
layers, compiled with ``fullgraph=True`` and the inductor backend, measured interleaved in the same run.

The graph (random cloud, radius graph) is built once outside the step, except for the layers that
build their own (``DynamicEdgeConv``: kNN in feature space; ``SetAbstraction``: FPS centres and balls
around them; ``Ponita`` with ``radius``). Every compiled
step is first checked against the eager step (outputs and gradients). ``compile_s`` is the wall time
of the first compiled call (tracing + code generation).

    python -m benchmarks compile --threads 2 [--nodes 2000] [--radius 0.35] [--only egnn painn ...]
"""
from __future__ import annotations

import time

import torch

from benchmarks.timing import measure_interleaved, positive_int, positive_float

HELP = "torch.compile(fullgraph=True, inductor) vs eager: training-step time of geomdl layers"
LAYERS = ("egnn", "painn", "point_net_conv", "dynamic_edge_conv", "set_abstraction", "equivariant_conv_cg",
          "gaunt_convolution", "ponita_grid_radius")  # the keys of _cases


def add_arguments(parser) -> None:
    parser.add_argument("--nodes", type=positive_int, default=2000, help="points of the random cloud (default 2000)")
    parser.add_argument("--radius", type=positive_float, default=0.35, help="radius graph in the unit cube (default 0.35)")
    parser.add_argument("--repeats", type=positive_int, default=9)
    parser.add_argument("--only", nargs="+", default=None, choices=LAYERS, metavar="LAYER",
                        help=f"layer names (default all): {', '.join(LAYERS)}")


def _cases(n, pos, edge_index, g):
    from e3nn import o3

    from geomdl.nn import DynamicEdgeConv, EGNNLayer, EquivariantConv, GauntConvolution, PaiNNLayer, PointNetConv
    from geomdl.nn.point_net import SetAbstraction
    from geomdl.nn.ponita import Ponita

    irreps = "16x0e+16x1o+16x2e"
    feats = lambda c: torch.randn(n, c, generator=g)  # noqa: E731
    return {
        "egnn": lambda: (EGNNLayer(64, 64), (feats(64), pos, edge_index)),
        "painn": lambda: (PaiNNLayer(64, num_rbf=16, cutoff=0.35), (feats(64), torch.randn(n, 64, 3, generator=g), pos, edge_index)),
        "point_net_conv": lambda: (PointNetConv(64, 64, hidden_channels=(64,)), (feats(64), pos, edge_index)),
        "dynamic_edge_conv": lambda: (DynamicEdgeConv(64, 64, k=20), (feats(64), None)),
        "set_abstraction": lambda: (SetAbstraction(64, 64, ratio=0.25, r=0.2, hidden_channels=(64,)), (feats(64), pos)),
        "equivariant_conv_cg": lambda: (EquivariantConv(irreps, irreps, product="cg", cutoff=0.35), (feats(o3.Irreps(irreps).dim), pos, edge_index)),
        "gaunt_convolution": lambda: (GauntConvolution(irreps, irreps, cutoff=0.35), (feats(o3.Irreps(irreps).dim), pos, edge_index)),
        "ponita_grid_radius": lambda: (Ponita(1, 1, hidden=32, layers=2, num_ori=8, radius=0.2, task_level="node"),
                                       (pos, feats(1))),
    }


def _step(layer, args):
    def run():
        out = layer(*args)
        out = out[0] if isinstance(out, tuple) else out
        loss = out.float().pow(2).mean()
        loss.backward()
        # an unused parameter: None in eager, zeros from a compiled backward
        return out.detach(), [torch.zeros_like(p) if p.grad is None else p.grad.detach().clone() for p in layer.parameters()]
    return run


def run(args) -> list[dict]:
    from geomdl.ops import radius_graph

    g = torch.Generator().manual_seed(0)
    pos = torch.rand(args.nodes, 3, generator=g)
    edge_index = radius_graph(pos, args.radius, max_num_neighbors=64)
    print(f"{args.nodes} points, {edge_index.shape[1]} edges (radius {args.radius}), threads {torch.get_num_threads()}")
    rows = []
    for name, make in _cases(args.nodes, pos, edge_index, g).items():
        if args.only and name not in args.only:
            continue
        torch.manual_seed(0)
        layer, inputs = make()
        eager = _step(layer, inputs)
        compiled_layer = torch.compile(layer, fullgraph=True)
        compiled = _step(compiled_layer, inputs)
        layer.zero_grad(set_to_none=True)
        out_e, grads_e = eager()
        layer.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        out_c, grads_c = compiled()
        compile_s = time.perf_counter() - t0
        err = max([float((out_c - out_e).abs().max())] + [float((a - b).abs().max()) for a, b in zip(grads_c, grads_e)])
        scale = max([float(out_e.abs().max())] + [float(b.abs().max()) for b in grads_e])
        if len(grads_c) != len(grads_e) or err > 1e-3 * max(scale, 1.0):
            raise AssertionError(f"{name}: compiled step differs from eager (max abs difference {err:.3g}, "
                                 f"{len(grads_c)} vs {len(grads_e)} gradients)")

        def zeroed(fn):
            def call():
                layer.zero_grad(set_to_none=True)
                fn()
            return call

        t = measure_interleaved({"eager": zeroed(eager), "compiled": zeroed(compiled)}, repeats=args.repeats, warmup=1)
        e_ms, c_ms = t["eager"]["median_ms"], t["compiled"]["median_ms"]
        rows.append({"layer": name, "eager_ms": e_ms, "compiled_ms": c_ms, "eager/compiled": e_ms / c_ms,
                     "compile_s": compile_s, "max_abs_diff": err})
        print(f"  {name}: eager {e_ms:.1f} ms, compiled {c_ms:.1f} ms ({e_ms / c_ms:.2f}x), first call {compile_s:.1f} s",
              flush=True)
        torch._dynamo.reset()
    return rows
