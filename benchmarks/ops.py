"""Ops benchmark: geomdl's compiled scatter, radius_graph, knn_graph and fps against their peers, all
measured in ONE run (this VM's memory bandwidth and load swing between runs, so only ratios measured
side by side mean anything).

    python -m benchmarks ops                 # 2 threads: 1e6 x 64 scatter (sum, max; small inputs per call;
                                             # sum / mean precision against float64:
                                             # ops_scatter_cpu.py), segment softmax (ops_softmax_cpu.py),
                                             # 1e5-point graphs, fps 1e5 -> 1e3,
                                             # feature-space knn and radius and their search choice
                                             # (ops_knn_features.py, ops_radius_features.py), PaiNN's
                                             # message block (ops_painn_message.py)
    python -m benchmarks ops --quick         # tiny sizes (smoke run)
    python -m benchmarks ops --device cuda   # the CUDA kernels vs torch / torch_scatter / torch_cluster / PyG
                                             # on the GPU (benchmarks/ops_cuda.py)

Every peer's result is checked against geomdl's BEFORE it is timed (same sums / same edge sets /
same samples); a peer that disagrees is reported as such. ``vs_geomdl`` = peer median / geomdl median
(> 1: geomdl is faster).
"""
from __future__ import annotations

import importlib
import math
import statistics

import numpy as np
import torch

from benchmarks.timing import device_name, measure, measure_interleaved, positive_int, positive_float

HELP = ("scatter-sum, segment softmax, radius_graph, knn_graph (3-D and feature space), fps, PaiNN messages: geomdl vs "
        "torch, torch_scatter, torch_cluster, PyG, scipy, open3d")
PARTS = ["scatter", "scatter_max", "scatter_small", "scatter_sums", "softmax", "radius", "knn", "knn_features", "knn_sweep", "radius_features", "radius_sweep",
         "fps", "painn_message"]


def add_arguments(parser) -> None:
    parser.set_defaults(threads=2)
    parser.add_argument("--quick", action="store_true", help="tiny sizes")
    parser.add_argument("--repeats", type=positive_int, default=7)
    parser.add_argument("--neighbors", type=positive_float, default=32.0, help="mean neighbours per point for radius_graph")
    parser.add_argument("--k", type=positive_int, default=16)
    parser.add_argument("--only", choices=PARTS, nargs="+", help="run only these parts (default: all)")
    parser.add_argument("--device", default="cpu", type=device_name,
                        help="cpu (default), cuda or cuda:N (see benchmarks/ops_cuda.py)")
    parser.add_argument("--radius-points", type=positive_int, default=1_000_000, help="points for radius_graph on CUDA")
    parser.add_argument("--slow", type=positive_float, default=2.0, help="CUDA: peers slower than this (s/call) are timed once")


def _optional(name):
    try:
        return importlib.import_module(name)
    except Exception:  # not installed, or broken build
        return None


def _open3d():
    try:
        from geomdl.utils.optional import import_open3d

        return import_open3d()
    except Exception:
        return None


def _edge_key(edges: torch.Tensor, n: int) -> torch.Tensor:
    """Sorted (target, source) keys of an edge list: equal iff the edge sets are equal."""
    return torch.sort(edges[1].long() * n + edges[0].long()).values


class _Table:
    def __init__(self, repeats):
        self.rows, self.repeats = [], repeats

    def time(self, op, impl, fn, agrees="yes", repeats=None, warmup=1, geomdl=False):
        return self.add(op, impl, measure(fn, repeats=repeats or self.repeats, warmup=warmup), agrees, geomdl)

    def add(self, op, impl, t, agrees="yes", geomdl=False):
        row = {"op": op, "impl": impl, "median_ms": t["median_ms"], "iqr_ms": t["iqr_ms"], "vs_geomdl": None,
               "agrees": agrees}
        if geomdl:
            row["vs_geomdl"] = 1.0
        else:
            base = next((r for r in self.rows if r["op"] == op and r["vs_geomdl"] == 1.0), None)
            if base is not None:
                row["vs_geomdl"] = t["median_ms"] / base["median_ms"]
        self.rows.append(row)
        return row

    def skip(self, op, impl, why):
        self.rows.append({"op": op, "impl": impl, "median_ms": None, "iqr_ms": None, "vs_geomdl": None, "agrees": why})


def _scatter(table, quick):
    from geomdl import ops

    n, c, s = (100_000, 64, 1_000) if quick else (1_000_000, 64, 10_000)
    op = f"scatter_sum {n:.0e}x{c}->{s:.0e}"
    gen = torch.Generator().manual_seed(0)
    src = torch.randn(n, c, generator=gen)
    index = torch.randint(0, s, (n,), generator=gen)
    with ops.use_backend("compiled"):
        want = ops.scatter(src, index, dim_size=s)

    def agree(out):
        return "yes" if torch.allclose(out, want, atol=1e-3, rtol=1e-4) else "NO"

    def geomdl_compiled():
        with ops.use_backend("compiled"):
            return ops.scatter(src, index, dim_size=s)

    # Memory-bandwidth bound. Model: a scatter-sum must read src once (n*c*4 bytes) and index
    # (n*8 bytes); its output (s*c*4 bytes) is small. Two floors, timed round robin with geomdl (one
    # call of each per round) so that load or bandwidth drifting during the run affects them alike:
    # (a) a full read of src (torch.sum), (b) copy_ of a buffer whose read + write bytes equal the
    # bytes of src + index (the two halves each moved once).
    dst = torch.empty(n * c // 2 + n)
    half = torch.randn(n * c // 2 + n, generator=gen)
    # (and the kernel's baseline SSE2 copy of its row loops in the same rounds, where the AVX2 copy runs)
    from benchmarks.ops_scatter_cpu import BASELINE, baseline_copy, same_bits, why_no_baseline

    baseline = baseline_copy(geomdl_compiled)
    fns = {"geomdl": geomdl_compiled, "read": lambda: src.sum(), "copy": lambda: dst.copy_(half)}
    if baseline is not None:
        fns["baseline"] = baseline
    t = measure_interleaved(fns, repeats=table.repeats)

    def add_with_floor(impl, key, **kwargs):
        row = table.add(op, impl, t[key], **kwargs)
        ratios = sorted(a / b for a, b in zip(t[key]["times_ms"], t["read"]["times_ms"]))
        q = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) >= 2 else ratios * 3
        row["vs_read_floor_per_round"] = f"{statistics.median(ratios):.2f} ({q[0]:.2f}-{q[2]:.2f})"

    add_with_floor("geomdl (compiled)", "geomdl", geomdl=True)
    if baseline is None:
        table.skip(op, BASELINE, why_no_baseline())
    else:
        add_with_floor(BASELINE, "baseline", agrees="same bits" if same_bits(baseline(), want) else "NO")
    table.add(op, "bound: read src (src.sum())", t["read"], agrees="-")
    table.add(op, "bound: copy_ of the same bytes", t["copy"], agrees="-")
    idx2 = index.unsqueeze(1).expand(-1, c)
    peers = {
        "geomdl reference": lambda: ops.scatter_reference(src, index, dim_size=s),
        "torch index_add_": lambda: torch.zeros(s, c).index_add_(0, index, src),
        "torch scatter_reduce": lambda: torch.zeros(s, c).scatter_reduce_(0, idx2, src, "sum", include_self=True),
    }
    ts = _optional("torch_scatter")
    if ts is not None:
        peers["torch_scatter"] = lambda: ts.scatter(src, index, dim=0, dim_size=s, reduce="sum")
    else:
        table.skip(op, "torch_scatter", "not installed (pip install 'geomdl[bench]')")
    for name, fn in peers.items():
        table.time(op, name, fn, agrees=agree(fn()))


def _radius(table, quick, neighbors, threads):
    from scipy.spatial import cKDTree

    from geomdl import ops

    n = 10_000 if quick else 100_000
    r = (neighbors / (n * 4.0 / 3.0 * math.pi)) ** (1.0 / 3.0)
    gen = torch.Generator().manual_seed(1)
    pos = torch.rand(n, 3, generator=gen)
    pnp = pos.numpy()
    op = f"radius_graph {n:.0e} pts r={r:.4f}"
    with ops.use_backend("compiled"):
        want = ops.radius_graph(pos, r, max_num_neighbors=10**6)
    deg = int(torch.bincount(want[1], minlength=n).max())
    op += f" ({want.shape[1] / n:.1f} nbrs, max {deg})"
    key = _edge_key(want, n)

    def agree(edges):
        e = torch.as_tensor(edges)
        return "yes" if e.shape == want.shape and torch.equal(_edge_key(e, n), key) else "NO"

    def geomdl_compiled():
        with ops.use_backend("compiled"):
            return ops.radius_graph(pos, r, max_num_neighbors=deg)

    table.time(op, "geomdl (compiled, sorted by target+distance)", geomdl_compiled, geomdl=True)
    reference = lambda: ops.radius_graph_reference(pos, r, max_num_neighbors=deg)  # noqa: E731
    table.time(op, "geomdl reference (pure PyTorch)", reference, agrees=agree(reference()), repeats=2, warmup=0)

    def ckdtree_pairs():  # unordered pairs -> both directions; no ordering (cheaper than geomdl's output)
        pairs = cKDTree(pnp).query_pairs(r, output_type="ndarray")
        return torch.from_numpy(np.concatenate([pairs, pairs[:, ::-1]]).T.copy())

    def ckdtree_ball():  # per query lists (grouped by target, unsorted within)
        lists = cKDTree(pnp).query_ball_point(pnp, r, workers=threads)
        counts = np.fromiter((len(x) for x in lists), dtype=np.int64, count=n)
        src = np.concatenate(lists).astype(np.int64)
        dst = np.repeat(np.arange(n), counts)
        keep = src != dst
        return torch.from_numpy(np.stack([src[keep], dst[keep]]))

    table.time(op, "scipy cKDTree.query_pairs (+reverse)", ckdtree_pairs, agrees=agree(ckdtree_pairs()))
    table.time(op, f"scipy cKDTree.query_ball_point (workers={threads})", ckdtree_ball,
               agrees=agree(ckdtree_ball()), repeats=3)
    o3d = _open3d()
    if o3d is not None:
        def open3d_radius():
            nns = o3d.core.nns.NearestNeighborSearch(o3d.core.Tensor(pnp))
            nns.fixed_radius_index(r)
            idx, _, splits = nns.fixed_radius_search(o3d.core.Tensor(pnp), r)
            src = idx.numpy().astype(np.int64)
            dst = np.repeat(np.arange(n), np.diff(splits.numpy()))
            keep = src != dst
            return torch.from_numpy(np.stack([src[keep], dst[keep]]))
        try:
            table.time(op, "open3d core.nns fixed_radius_search", open3d_radius, agrees=agree(open3d_radius()))
        except Exception as exc:  # API differences between open3d versions
            table.skip(op, "open3d", f"failed: {type(exc).__name__}: {exc}"[:80])
    else:
        table.skip(op, "open3d", "not importable")
    tc = _optional("torch_cluster")
    if tc is not None:
        fn = lambda: tc.radius_graph(pos, r, max_num_neighbors=deg, loop=False, num_workers=threads)  # noqa: E731
        table.time(op, f"torch_cluster.radius_graph (num_workers={threads})", fn, agrees=agree(fn()))
        pyg = _optional("torch_geometric.nn")
        try:
            fn = lambda: pyg.radius_graph(pos, r, max_num_neighbors=deg, loop=False, num_workers=threads)  # noqa: E731
            table.time(op, "PyG torch_geometric.nn.radius_graph", fn, agrees=agree(fn()))
        except Exception as exc:
            table.skip(op, "PyG", f"failed: {type(exc).__name__}"[:80])
    else:
        table.skip(op, "torch_cluster / PyG", "torch_cluster not installed (pip install 'geomdl[bench]')")


def _knn(table, quick, k, threads):
    from scipy.spatial import cKDTree

    from geomdl import ops

    n = 10_000 if quick else 100_000
    gen = torch.Generator().manual_seed(2)
    pos = torch.rand(n, 3, generator=gen)
    pnp = pos.numpy()
    op = f"knn_graph {n:.0e} pts k={k}"
    with ops.use_backend("compiled"):
        want = ops.knn_graph(pos, k)
    key = _edge_key(want, n)

    def agree(edges):
        e = torch.as_tensor(edges)
        return "yes" if e.shape == want.shape and torch.equal(_edge_key(e, n), key) else "NO"

    def from_rows(idx):  # [n, k+1] neighbour rows that include the point itself
        idx = np.asarray(idx, dtype=np.int64)
        dst = np.repeat(np.arange(n), idx.shape[1])
        src = idx.reshape(-1)
        keep = src != dst
        return torch.from_numpy(np.stack([src[keep], dst[keep]]))

    def geomdl_compiled():
        with ops.use_backend("compiled"):
            return ops.knn_graph(pos, k)

    table.time(op, "geomdl (compiled, sorted by target+distance)", geomdl_compiled, geomdl=True)
    reference = lambda: ops.knn_graph_reference(pos, k)  # noqa: E731
    table.time(op, "geomdl reference (pure PyTorch)", reference, agrees=agree(reference()), repeats=2, warmup=0)

    def ckdtree():
        _, idx = cKDTree(pnp).query(pnp, k=k + 1, workers=threads)
        return from_rows(idx)

    table.time(op, f"scipy cKDTree.query (workers={threads})", ckdtree, agrees=agree(ckdtree()))
    o3d = _open3d()
    if o3d is not None:
        def open3d_knn():
            nns = o3d.core.nns.NearestNeighborSearch(o3d.core.Tensor(pnp))
            nns.knn_index()
            idx, _ = nns.knn_search(o3d.core.Tensor(pnp), k + 1)
            return from_rows(idx.numpy())
        try:
            table.time(op, "open3d core.nns knn_search", open3d_knn, agrees=agree(open3d_knn()))
        except Exception as exc:
            table.skip(op, "open3d", f"failed: {type(exc).__name__}: {exc}"[:80])
    else:
        table.skip(op, "open3d", "not importable")
    tc = _optional("torch_cluster")
    if tc is not None:
        fn = lambda: tc.knn_graph(pos, k, loop=False, num_workers=threads)  # noqa: E731
        table.time(op, f"torch_cluster.knn_graph (num_workers={threads})", fn, agrees=agree(fn()))
    else:
        table.skip(op, "torch_cluster", "not installed (pip install 'geomdl[bench]')")


def _fps(table, quick):
    from geomdl import ops

    n, m = (10_000, 100) if quick else (100_000, 1_000)
    gen = torch.Generator().manual_seed(3)
    pos = torch.rand(n, 3, generator=gen)
    op = f"fps {n:.0e} -> {m}"
    with ops.use_backend("compiled"):
        want = ops.fps(pos, num=m)

    def geomdl_compiled():
        with ops.use_backend("compiled"):
            return ops.fps(pos, num=m)

    table.time(op, "geomdl (compiled)", geomdl_compiled, geomdl=True)
    from benchmarks.ops_scatter_cpu import add_baseline

    add_baseline(table, op, geomdl_compiled, want, env="GEOMDL_FPS_ISA",
                 label="geomdl, baseline copy (GEOMDL_FPS_ISA=generic)")
    ref = ops.fps_reference(pos, num=m)
    table.time(op, "geomdl reference", lambda: ops.fps_reference(pos, num=m),
               agrees="yes" if torch.equal(ref, want) else "NO", repeats=1, warmup=0)
    tc = _optional("torch_cluster")
    if tc is not None:
        fn = lambda: tc.fps(pos, ratio=m / n, random_start=False)  # noqa: E731
        got = fn()
        same = got.shape == want.shape and torch.equal(got, want)
        note = "yes" if same else "NO (torch_cluster sums float32 distances: near-ties can pick differently)"
        table.time(op, "torch_cluster.fps", fn, agrees=note, repeats=3)
    else:
        table.skip(op, "torch_cluster", "not installed (pip install 'geomdl[bench]')")


def run(args) -> list[dict]:
    from geomdl import ops

    if getattr(args, "device", "cpu") != "cpu":
        from benchmarks.ops_cuda import PARTS as CUDA_PARTS
        from benchmarks.ops_cuda import run_cuda

        cpu_only = [p for p in args.only or [] if p not in CUDA_PARTS]
        if cpu_only:  # would be silently skipped
            raise SystemExit(f"--only {' '.join(cpu_only)}: CPU only; with --device cuda choose from {', '.join(CUDA_PARTS)}")
        return run_cuda(args)

    if not (ops.has_kernel("radius") and ops.has_kernel("scatter_reduce")):
        raise SystemExit(f"the compiled kernels are not loaded: {ops.extension_error()}")
    threads = torch.get_num_threads()
    table = _Table(args.repeats)
    parts = args.only or PARTS
    if "scatter" in parts:
        _scatter(table, args.quick)
    if "scatter_max" in parts or "scatter_small" in parts or "scatter_sums" in parts:
        from benchmarks.ops_scatter_cpu import scatter_max, scatter_small, scatter_sums

        if "scatter_max" in parts:
            scatter_max(table, args.quick, _optional)
        if "scatter_small" in parts:
            scatter_small(table, args.quick, _optional)
        if "scatter_sums" in parts:
            scatter_sums(table, args.quick, _optional)
    if "softmax" in parts:
        from benchmarks.ops_softmax_cpu import segment_softmax_cpu

        segment_softmax_cpu(table, args.quick, _optional)
    if "radius" in parts:
        _radius(table, args.quick, args.neighbors, threads)
    if "knn" in parts:
        _knn(table, args.quick, args.k, threads)
    if "knn_features" in parts:
        from benchmarks.ops_knn_features import knn_features

        knn_features(table, args.quick, threads, _optional, _edge_key)
    if "knn_sweep" in parts:
        from benchmarks.ops_knn_features import knn_search_sweep

        knn_search_sweep(table, args.quick)
    if "radius_features" in parts:
        from benchmarks.ops_radius_features import radius_features

        radius_features(table, args.quick, threads, _optional, _edge_key)
    if "radius_sweep" in parts:
        from benchmarks.ops_radius_features import radius_search_sweep

        radius_search_sweep(table, args.quick)
    if "fps" in parts:
        _fps(table, args.quick)
    if "painn_message" in parts:
        from benchmarks.ops_painn_message import painn_message_cpu

        painn_message_cpu(table, args.quick, _optional)
    return table.rows
