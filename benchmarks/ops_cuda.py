"""GPU part of the ops benchmark (``python -m benchmarks ops --device cuda``): geomdl's CUDA kernels against
torch native ops, torch_scatter, torch_cluster and PyG, all measured in ONE run on one GPU.

    python -m benchmarks ops --device cuda            # full sizes (an H100 takes about 2 min)
    python -m benchmarks ops --device cuda --quick    # small sizes (smoke run)

Parts (``--only``):

* ``scatter``: scatter-sum of ``src [N, C]`` float32 into ``S`` segments, index sorted and random; the achieved
  memory bandwidth ``(N*C*4 + N*8 + S*C*4) / t`` (read src and index, write out) is reported as a fraction of a
  device-to-device ``copy_`` measured in the same run (bytes read + written) -- issue 11 asks for >= 70 %;
  besides the op's wall time per call (its Python checks, launches and the one device sync of its index range
  check included), a row gives the device time of its kernels alone (``torch.profiler``), and rows time the run
  kernel's other launch geometries (``GEOMDL_SCATTER_TUNING``: loads in flight, warps of work per SM);
  also scatter-max and segment softmax;
* ``radius``: ``radius_graph`` on ``--radius-points`` uniform points (default 1e6, ~``--neighbors`` each);
* ``knn``: ``knn_graph`` on 1e5 points, ``k = --k``;
* ``fps``: farthest point sampling, 16 clouds of 1e4 points, ratio 0.1.

Every peer's result is checked against geomdl's before it is timed (``agrees``); ``vs_geomdl`` = peer median /
geomdl median (> 1: geomdl is faster). Peers that take longer than ``--slow`` seconds per call are timed once.
"""
from __future__ import annotations

import math

import torch

from benchmarks.ops import _edge_key, _optional
from benchmarks.timing import environment_variable, measure


PARTS = ("scatter", "radius", "knn", "fps")  # the parts of ``--only`` that have a CUDA version


class _Table:
    def __init__(self, repeats: int, slow: float, device):
        self.rows, self.repeats, self.slow, self.device = [], repeats, slow, device

    def time(self, op, impl, fn, agrees="yes", geomdl=False, extra=None):
        first = measure(fn, repeats=1, warmup=1, device=self.device)
        t = first if first["median_ms"] > self.slow * 1e3 else measure(fn, repeats=self.repeats, warmup=1,
                                                                        device=self.device, min_time=0.2)
        row = {"op": op, "impl": impl, "median_ms": t["median_ms"], "iqr_ms": t["iqr_ms"], "repeats": t["repeats"],
               "vs_geomdl": 1.0 if geomdl else None, "agrees": agrees}
        if not geomdl:
            base = next((r for r in self.rows if r["op"] == op and r["vs_geomdl"] == 1.0), None)
            if base is not None:
                row["vs_geomdl"] = t["median_ms"] / base["median_ms"]
        row.update(extra or {})
        self.rows.append(row)
        return row

    def kernels(self, op, impl, fn):
        """A row with the profiler's device time of ``fn``'s kernels per call (``None`` if the profiler fails)."""
        try:
            k = kernel_times(fn)
        except Exception as exc:  # no CUPTI on this machine, ...
            self.skip(op, impl, f"profiler failed: {type(exc).__name__}: {exc}"[:120])
            return None
        if not k["kernels"]:
            self.skip(op, impl, "profiler saw no CUDA kernel")
            return None
        row = {"op": op, "impl": impl, "median_ms": k["total_ms"], "iqr_ms": None, "repeats": 20, "vs_geomdl": None,
               "agrees": "-",
               "kernels_ms": "; ".join(f"{name[:32]} {ms:.3f}" for name, ms in
                                       sorted(k["kernels"].items(), key=lambda kv: -kv[1])[:3])}
        self.rows.append(row)
        return row

    def skip(self, op, impl, why):
        self.rows.append({"op": op, "impl": impl, "median_ms": None, "vs_geomdl": None, "agrees": why})

    def attempt(self, op, impl, fn, check):
        """Time a peer after checking its result with ``check(result) -> "yes"/"NO ..."``; a peer that raises
        is reported as failed rather than ending the benchmark."""
        try:
            agrees = check(fn())
        except Exception as exc:  # API differences between peer versions, out of memory, ...
            self.skip(op, impl, f"failed: {type(exc).__name__}: {exc}"[:120])
            torch.cuda.empty_cache()
            return
        self.time(op, impl, fn, agrees=agrees)


# Launch geometries of the scatter-sum run kernel timed besides the default ("4,128": 4 warp steps of loads in
# flight, ~128 warps of work per SM); see kernels/scatter/segment_run.cuh.
TUNINGS = ("8,128", "4,64", "8,64", "4,256", "8,32")


def _add_bandwidth(row, moved: int, bw: float) -> None:
    if row is not None and row.get("median_ms"):
        row["GB_per_s"] = moved / (row["median_ms"] * 1e-3) / 1e9
        row["fraction_of_copy_bw"] = moved / (row["median_ms"] * 1e-3) / bw


def kernel_times(fn, calls: int = 20) -> dict:
    """Device time per call of the CUDA kernels (and memsets) that ``calls`` calls of ``fn`` launch, from
    ``torch.profiler``: ``{"total_ms": ..., "kernels": {name: ms per call}}``."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()

    def device_us(e):
        us = getattr(e, "self_device_time_total", None)
        return getattr(e, "self_cuda_time_total", 0.0) if us is None else us

    averages = prof.key_averages()
    kernels = {e.key[:60]: device_us(e) / 1e3 / calls for e in averages
               if getattr(e, "device_type", None) == DeviceType.CUDA and device_us(e) > 0}
    if not kernels:  # a profiler that lists no kernel entries: the device time of the ops that launched them
        kernels = {f"[op] {e.key[:55]}": device_us(e) / 1e3 / calls for e in averages if device_us(e) > 0}
    return {"total_ms": sum(kernels.values()), "kernels": kernels}


def _bandwidth(device, nbytes: int = 1 << 30) -> float:
    """Device-to-device copy bandwidth in bytes/s (bytes read + bytes written)."""
    a = torch.empty(nbytes // 4, device=device)
    b = torch.empty_like(a)
    t = measure(lambda: b.copy_(a), repeats=20, warmup=3, device=device)
    return 2 * nbytes / (t["median_ms"] * 1e-3)


def _compiled(fn):
    from geomdl import ops

    def run():
        with ops.use_backend("compiled"):
            return fn()
    return run


def _scatter(table, device, quick, bw):
    from geomdl import ops

    ts = _optional("torch_scatter")
    pyg_utils = _optional("torch_geometric.utils")
    n, c, s = (400_000, 64, 10_000) if quick else (4_000_000, 64, 100_000)
    gen = torch.Generator(device=device).manual_seed(0)
    src = torch.randn(n, c, device=device, generator=gen)
    for order in ("sorted", "random"):
        index = torch.randint(0, s, (n,), device=device, generator=gen)
        if order == "sorted":
            index = index.sort().values
        op = f"scatter_sum {n:.0e}x{c}->{s:.0e} ({order} index)"
        want = _compiled(lambda: ops.scatter(src, index, dim_size=s))()

        def agree(out, want=want):
            return "yes" if torch.allclose(out, want, atol=1e-3, rtol=1e-4) else "NO"

        geomdl_fn = _compiled(lambda index=index: ops.scatter(src, index, dim_size=s))
        row = table.time(op, "geomdl (CUDA)", geomdl_fn, geomdl=True)
        moved = n * c * 4 + n * 8 + s * c * 4
        _add_bandwidth(row, moved, bw)
        # The same calls seen by the profiler: the device time of their kernels alone (the op's wall time
        # above also holds its Python checks, launches and the one device sync of the index range check).
        _add_bandwidth(table.kernels(op, "geomdl (CUDA) kernels only, profiler", geomdl_fn), moved, bw)
        if order == "sorted":  # a floor: torch reading src once (a full reduction, no index)
            _add_bandwidth(table.time(op, "bound: torch src.sum() (reads src once)", lambda: src.sum()), n * c * 4, bw)
        for tuning in (TUNINGS if not quick else ()):
            impl = f"geomdl (CUDA) GEOMDL_SCATTER_TUNING={tuning}"
            with environment_variable("GEOMDL_SCATTER_TUNING", tuning):
                _add_bandwidth(table.time(op, impl, geomdl_fn), moved, bw)
                _add_bandwidth(table.kernels(op, impl + " kernels only, profiler", geomdl_fn), moved, bw)
        idx2 = index.unsqueeze(1).expand(-1, c)
        table.attempt(op, "torch index_add_", lambda index=index: torch.zeros(s, c, device=device).index_add_(0, index, src), agree)
        table.attempt(op, "torch scatter_reduce_", lambda idx2=idx2: torch.zeros(s, c, device=device).scatter_reduce_(
            0, idx2, src, "sum", include_self=True), agree)
        if ts is not None:
            table.attempt(op, "torch_scatter.scatter", lambda index=index: ts.scatter(src, index, dim=0, dim_size=s), agree)
            if order == "sorted":
                table.attempt(op, "torch_scatter.segment_coo", lambda index=index: ts.segment_coo(src, index, dim_size=s), agree)
        else:
            table.skip(op, "torch_scatter", "not installed")
        if pyg_utils is not None:
            table.attempt(op, "PyG utils.scatter", lambda index=index: pyg_utils.scatter(src, index, 0, dim_size=s), agree)

    index = torch.randint(0, s, (n,), device=device, generator=gen)
    op = f"scatter_max {n:.0e}x{c}->{s:.0e} (random index)"
    want = _compiled(lambda: ops.scatter(src, index, dim_size=s, reduce="max"))()
    table.time(op, "geomdl (CUDA)", _compiled(lambda: ops.scatter(src, index, dim_size=s, reduce="max")), geomdl=True)

    def agree_max(out):
        return "yes" if torch.equal(out, want) else "NO"

    idx2 = index.unsqueeze(1).expand(-1, c)
    table.attempt(op, "torch scatter_reduce_ amax", lambda: torch.zeros(s, c, device=device).scatter_reduce_(
        0, idx2, src, "amax", include_self=False), agree_max)
    if ts is not None:
        table.attempt(op, "torch_scatter.scatter_max", lambda: ts.scatter_max(src, index, dim=0, dim_size=s)[0], agree_max)

    op = f"segment_softmax {n:.0e}x{c}, {s:.0e} segments"
    want = _compiled(lambda: ops.segment_softmax(src, index, s))()
    table.time(op, "geomdl (CUDA)", _compiled(lambda: ops.segment_softmax(src, index, s)), geomdl=True)
    if pyg_utils is not None:
        table.attempt(op, "PyG utils.softmax", lambda: pyg_utils.softmax(src, index, num_nodes=s),
                      lambda out: "yes" if torch.allclose(out, want, atol=1e-5, rtol=1e-4) else "NO")


def _radius(table, device, n, neighbors, max_num):
    from geomdl import ops

    tc = _optional("torch_cluster")
    r = (neighbors / (n * 4.0 / 3.0 * math.pi)) ** (1.0 / 3.0)
    gen = torch.Generator(device=device).manual_seed(1)
    pos = torch.rand(n, 3, device=device, generator=gen)
    want = _compiled(lambda: ops.radius_graph(pos, r, max_num_neighbors=max_num))()
    deg = int(torch.bincount(want[1], minlength=n).max())
    op = f"radius_graph {n:.0e} pts r={r:.4f} ({want.shape[1] / n:.1f} nbrs, max {deg})"
    key = _edge_key(want, n)

    def agree(e):
        return "yes" if e.shape == want.shape and torch.equal(_edge_key(e, n), key) else "NO"

    table.time(op, "geomdl (CUDA)", _compiled(lambda: ops.radius_graph(pos, r, max_num_neighbors=deg)), geomdl=True)
    if tc is not None:
        table.attempt(op, "torch_cluster.radius_graph", lambda: tc.radius_graph(pos, r, max_num_neighbors=deg, loop=False), agree)
    else:
        table.skip(op, "torch_cluster", "not installed")
    pyg_pool = _optional("torch_geometric.pool")
    if pyg_pool is not None and hasattr(pyg_pool, "radius_graph"):
        table.attempt(op, "PyG pool.radius_graph", lambda: pyg_pool.radius_graph(pos, r, max_num_neighbors=deg), agree)


def _knn(table, device, n, k):
    from geomdl import ops

    tc = _optional("torch_cluster")
    gen = torch.Generator(device=device).manual_seed(2)
    pos = torch.rand(n, 3, device=device, generator=gen)
    op = f"knn_graph {n:.0e} pts k={k}"
    want = _compiled(lambda: ops.knn_graph(pos, k))()
    key = _edge_key(want, n)

    def agree(e):
        return "yes" if e.shape == want.shape and torch.equal(_edge_key(e, n), key) else "NO (ties or a different set)"

    table.time(op, "geomdl (CUDA)", _compiled(lambda: ops.knn_graph(pos, k)), geomdl=True)
    if tc is not None:
        table.attempt(op, "torch_cluster.knn_graph", lambda: tc.knn_graph(pos, k, loop=False), agree)
    else:
        table.skip(op, "torch_cluster", "not installed")


def _fps(table, device, clouds, points, ratio):
    from geomdl import ops

    tc = _optional("torch_cluster")
    gen = torch.Generator(device=device).manual_seed(3)
    pos = torch.rand(clouds * points, 3, device=device, generator=gen)
    batch = torch.arange(clouds, device=device).repeat_interleave(points)
    op = f"fps {clouds} clouds x {points:.0e} pts, ratio {ratio}"
    want = _compiled(lambda: ops.fps(pos, batch, ratio=ratio))()
    table.time(op, "geomdl (CUDA)", _compiled(lambda: ops.fps(pos, batch, ratio=ratio)), geomdl=True)
    if tc is not None:
        table.attempt(op, "torch_cluster.fps", lambda: tc.fps(pos, batch, ratio=ratio, random_start=False),
                      lambda got: "yes" if torch.equal(got, want) else "NO (near-ties in float32 can pick differently)")
    else:
        table.skip(op, "torch_cluster", "not installed")


def run_cuda(args) -> list[dict]:
    from geomdl import ops

    if not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")
    device = torch.device(args.device)
    if device.index is not None:  # the current device: what kernel_times and _bandwidth synchronise and name
        torch.cuda.set_device(device)
    missing = [op for op in ("scatter_reduce", "segment_softmax", "radius", "knn", "fps") if not ops.has_kernel(op, "cuda")]
    if missing:
        raise SystemExit(f"geomdl has no CUDA kernel for {missing}: {ops.extension_error() or 'built without CUDA'}")
    table = _Table(args.repeats, args.slow, device)
    bw = _bandwidth(device)
    table.rows.append({"op": "device copy_ 1 GiB", "impl": torch.cuda.get_device_name(device), "GB_per_s": bw / 1e9,
                       "agrees": "-"})
    parts = args.only or PARTS
    if "scatter" in parts:
        _scatter(table, device, args.quick, bw)
    if "radius" in parts:
        _radius(table, device, 100_000 if args.quick else args.radius_points, args.neighbors, 10**4)
    if "knn" in parts:
        _knn(table, device, 20_000 if args.quick else 100_000, args.k)
    if "fps" in parts:
        _fps(table, device, 4 if args.quick else 16, 2_000 if args.quick else 10_000, 0.1)
    return table.rows
