"""Forward+backward time of geomdl's message-passing layers on a radius graph, against the closest
PyG layer measured in the same run (same weights, same ``edge_index``; outputs checked first).

The graph is built once with ``geomdl.ops.radius_graph`` (PyG 2.8's ``radius_graph``/``knn_graph``
need pyg-lib) and passed to both. ``ratio = geomdl / peer`` of the median wall times (< 1: geomdl
faster); ``cpu_ratio`` the same for the process CPU time per call (use ``--threads 1``: then CPU time
is the work done, unaffected by other jobs on a shared machine). Layers without a
PyG counterpart (EGNN, the tensor-product convolution) are timed alone; PaiNN is timed against itself with
its message block written in PyTorch ops instead of the fused ``geomdl.ops.painn_message``.

    python -m benchmarks layers [--nodes 10000] [--channels 64] [--degree 16] [--threads 2]
"""
from __future__ import annotations

import math
import statistics
import time

import torch

from benchmarks.timing import measure, positive_int, positive_float

HELP = "forward+backward time of geomdl layers vs PyG layers on a 1e4-node radius graph"
LAYERS = ("PointNetConv", "EdgeConv", "DynamicEdgeConv", "EGNNLayer", "PaiNNLayer", "EquivariantConv",
          "EquivariantConv[cg]", "EquivariantConv[gaunt]")


def add_arguments(parser) -> None:
    parser.add_argument("--nodes", type=positive_int, default=10000, help="number of points (default 10000)")
    parser.add_argument("--channels", type=positive_int, default=64, help="feature channels (default 64)")
    parser.add_argument("--degree", type=positive_float, default=16.0, help="mean neighbours within the radius (default 16)")
    parser.add_argument("--radius", type=positive_float, default=1.0, help="graph radius (default 1.0)")
    parser.add_argument("--k", type=positive_int, default=16, help="k of the dynamic EdgeConv (default 16)")
    parser.add_argument("--dynamic-nodes", type=positive_int, default=2000, help="points of the dynamic EdgeConv row (default 2000)")
    parser.add_argument("--dynamic-features", type=positive_int, default=64,
                        help="input features of the dynamic EdgeConv row, the space of its kNN (default 64, as in DGCNN)")
    parser.add_argument("--tp-mul", type=positive_int, default=8, help="multiplicity of 0e+1o+2e in the EquivariantConv rows (default 8)")
    parser.add_argument("--repeats", type=positive_int, default=7,
                        help="timed calls per layer, in interleaved rounds of 3 (rounded up to a multiple of 3; "
                             "default 7: 9 calls); the row records the count")
    parser.add_argument("--only", nargs="+", default=None, choices=LAYERS, metavar="LAYER",
                        help=f"layer names to run (default all): {', '.join(LAYERS)}")
    parser.add_argument("--seed", type=int, default=0)


def _fwd_bwd(fn, params, inputs, cpu_times):
    """One forward+backward; appends the process CPU time of the call to ``cpu_times`` (robust on a
    loaded shared machine, where wall time also counts waiting for a core)."""
    def step():
        t0 = time.process_time()
        for p in params:
            p.grad = None
        for t in inputs:
            t.grad = None
        out = fn()
        out = out if isinstance(out, (tuple, list)) else (out,)
        sum(o.sum() for o in out).backward()
        cpu_times.append((time.process_time() - t0) * 1e3)
    return step


def _row(name, peer, fn_g, fn_p, params_g, params_p, inputs, repeats, check):
    row = {"layer": name, "peer": peer or "-"}
    if fn_p is not None and check is not None:
        row["max_abs_diff"] = float(check)
    # interleave geomdl and peer rounds so that load changes on a shared machine hit both alike
    cpu_g, cpu_p = [], []
    step_g = _fwd_bwd(fn_g, params_g, inputs, cpu_g)
    step_p = _fwd_bwd(fn_p, params_p, inputs, cpu_p) if fn_p is not None else None
    times_g, times_p = [], []
    rounds = max(1, (repeats + 2) // 3)
    for r in range(rounds):
        times_g.append(measure(step_g, repeats=3, warmup=2 if r == 0 else 0)["median_ms"])
        if step_p is not None:
            times_p.append(measure(step_p, repeats=3, warmup=2 if r == 0 else 0)["median_ms"])
    row["timed_calls"] = 3 * rounds  # per side: the median of the rounds' medians
    row["geomdl_ms"] = statistics.median(times_g)
    row["geomdl_cpu_ms"] = statistics.median(cpu_g[2:])
    if step_p is not None:
        row["peer_ms"] = statistics.median(times_p)
        row["peer_cpu_ms"] = statistics.median(cpu_p[2:])
        row["ratio"] = row["geomdl_ms"] / row["peer_ms"]
        row["cpu_ratio"] = row["geomdl_cpu_ms"] / row["peer_cpu_ms"]
    print(f"  {name:<24} geomdl {row['geomdl_ms']:.1f} ms (cpu {row['geomdl_cpu_ms']:.1f})"
          + (f"  {peer} {row['peer_ms']:.1f} ms (cpu {row['peer_cpu_ms']:.1f})  ratio {row['ratio']:.2f} cpu ratio {row['cpu_ratio']:.2f}"
             if fn_p else ""), flush=True)
    return row


def run(args) -> list[dict]:
    import torch_geometric.nn as pyg

    from geomdl import ops
    from geomdl.nn.edge_conv import DynamicEdgeConv, EdgeConv
    from geomdl.nn.egnn import EGNNLayer
    from geomdl.nn.painn import PaiNNLayer
    from geomdl.nn.point_net import PointNetConv

    g = torch.Generator().manual_seed(args.seed)
    n, c = args.nodes, args.channels
    # uniform points in a cube; density such that a ball of the radius holds `degree` points on average
    side = (n * (4.0 / 3.0) * math.pi * args.radius**3 / args.degree) ** (1.0 / 3.0)
    pos = torch.rand(n, 3, generator=g) * side
    x = torch.randn(n, c, generator=g)
    edge_index = ops.radius_graph(pos, args.radius, max_num_neighbors=64)
    print(f"graph: {n} nodes, {edge_index.shape[1]} edges (mean degree {edge_index.shape[1] / n:.1f}), {c} channels, "
          f"{torch.get_num_threads()} threads, kernels {'compiled' if ops.extension_loaded() else 'reference'}", flush=True)
    x.requires_grad_(True)
    posg = pos.clone().requires_grad_(True)
    rows = []
    want = lambda name: args.only is None or name in args.only  # noqa: E731

    if want("PointNetConv"):
        torch.manual_seed(args.seed)
        conv = PointNetConv(c, c, (c,))
        peer = pyg.PointNetConv(local_nn=torch.nn.Identity(), add_self_loops=False)
        peer.local_nn = conv.mlp  # same weights (assigned after PyG's constructor, which resets its nn)
        with torch.no_grad():
            diff = (conv(x, posg, edge_index) - peer(x, posg, edge_index)).abs().max()
        rows.append(_row("PointNetConv", "pyg.PointNetConv", lambda: conv(x, posg, edge_index), lambda: peer(x, posg, edge_index),
                         list(conv.parameters()), list(conv.parameters()), [x, posg], args.repeats, diff))

    if want("EdgeConv"):
        torch.manual_seed(args.seed)
        conv = EdgeConv(c, c, (c,))
        peer = pyg.EdgeConv(torch.nn.Identity())
        peer.nn = conv.mlp
        with torch.no_grad():
            diff = (conv(x, edge_index) - peer(x, edge_index)).abs().max()
        rows.append(_row("EdgeConv", "pyg.EdgeConv", lambda: conv(x, edge_index), lambda: peer(x, edge_index),
                         list(conv.parameters()), list(conv.parameters()), [x], args.repeats, diff))

    if want("DynamicEdgeConv"):
        torch.manual_seed(args.seed)
        xd = torch.randn(args.dynamic_nodes, args.dynamic_features, generator=g).requires_grad_(True)
        conv = DynamicEdgeConv(args.dynamic_features, c, k=args.k, hidden_channels=(c,))
        peer = pyg.EdgeConv(torch.nn.Identity())
        peer.nn = conv.mlp
        try:  # pyg.DynamicEdgeConv is knn_graph + EdgeConv but needs pyg-lib; its kNN on CPU is torch_cluster's
            import torch_cluster

            knn_peer, peer_name = torch_cluster.knn_graph, "torch_cluster.knn_graph+pyg.EdgeConv"
        except ImportError:
            knn_peer, peer_name = ops.knn_graph, "geomdl.knn+pyg.EdgeConv"

        def peer_fn():
            return peer(xd, knn_peer(xd.detach(), args.k, loop=True))

        with torch.no_grad():
            diff = (conv(xd) - peer_fn()).abs().max()
        rows.append(_row(f"DynamicEdgeConv(N={args.dynamic_nodes}, D={args.dynamic_features})", peer_name, lambda: conv(xd), peer_fn,
                         list(conv.parameters()), list(conv.parameters()), [xd], args.repeats, diff))

    if want("EGNNLayer"):
        torch.manual_seed(args.seed)
        layer = EGNNLayer(c, c)
        rows.append(_row("EGNNLayer", None, lambda: layer(x, posg, edge_index), None, list(layer.parameters()), None,
                         [x, posg], args.repeats, None))

    if want("PaiNNLayer"):
        torch.manual_seed(args.seed)
        layer = PaiNNLayer(c, cutoff=args.radius)
        v = torch.randn(n, c, 3, generator=g).requires_grad_(True)
        # peer: the same layer with its message block written in PyTorch ops (gather, multiply, concatenate,
        # geomdl's compiled scatter), as the layer computed it before ops.painn_message
        from benchmarks.ops_painn_message import _torch_ops

        fused = ops.painn_message

        def unfused(phi, w, vt, unit, ei, num):
            return _torch_ops(lambda t, i, m: ops.scatter(t, i, 0, m), ei, num)(phi, w, vt, unit)

        def peer_fn():
            ops.painn_message = unfused
            try:
                return layer(x, v, posg, edge_index)
            finally:
                ops.painn_message = fused

        with torch.no_grad():
            diff = max(float((a - b).abs().max()) for a, b in zip(layer(x, v, posg, edge_index), peer_fn()))
        rows.append(_row("PaiNNLayer", "PaiNNLayer, messages in PyTorch ops", lambda: layer(x, v, posg, edge_index),
                         peer_fn, list(layer.parameters()), list(layer.parameters()), [x, v, posg], args.repeats, diff))

    try:
        from geomdl.nn.equivariant_conv import EquivariantConv
    except ImportError:
        EquivariantConv = None
    if EquivariantConv is not None:
        for product in ("cg", "gaunt"):
            name = f"EquivariantConv[{product}]"
            if not want(name) and not want("EquivariantConv"):
                continue
            torch.manual_seed(args.seed)
            mul = args.tp_mul
            irreps = f"{mul}x0e+{mul}x1o+{mul}x2e"
            layer = EquivariantConv(irreps, irreps, lmax_sh=2, cutoff=args.radius, product=product)
            h = torch.randn(n, layer.irreps_in.dim, generator=g).requires_grad_(True)
            rows.append(_row(name, None, lambda: layer(h, posg, edge_index), None, list(layer.parameters()), None,
                             [h, posg], args.repeats, None))
    return rows
