"""Peak memory (CPU, resident set) of geomdl calls, each measured in a fresh process.

Every measurement runs in its own subprocess (``sys.executable -c``), so that no allocator cache or
earlier peak of another case is counted. There the inputs are built, a small warm-up call initialises
lazy state (plans, thread pools), the freed memory is handed back to the system (``gc.collect``,
``malloc_trim``), and the peak counter is reset (writing ``5`` to ``/proc/self/clear_refs`` resets
``VmHWM``) just before the one measured call. Reported per row:

* ``peak_extra_mib``: the peak resident memory during the call minus the resident memory before it
  (so it includes the output, which is still held at the end of the call);
* ``in_mib`` / ``out_mib``: bytes of the input / output tensors (model parameters not counted);
* ``peak/(in+out)``: ``peak_extra_mib / (in_mib + out_mib)``;
* ``peer`` / ``peak/peer``: the row compared with, measured in the same invocation, and the ratio of the
  two ``peak_extra_mib``;
* ``counter``: ``VmHWM`` (reset before the call), or ``ru_maxrss`` where ``clear_refs`` is not writable
  (a peak since process start, so ``peak_extra_mib`` is then an upper bound).

Sizes (``--quick`` in brackets): CG 2e4 and 4e4 rows (1.6e4), PONITA 2e4 nodes (1e3; both cases), radius/kNN graph
1e6 points (2e5), scatter 1e7 rows (2e6).

Cases (``--only``):

* ``cg_uvw``: ``ClebschGordanTensorProduct`` ``16x(0e+1o+2e) (x) 16x(0e+1o+2e) -> 16x(0e+1o+2e)``, mode
  ``uvw`` (internal weights; its einsum route), no grad, at 2e4 and 4e4 rows (``--quick``: 1.6e4), chunked (the default ``EINSUM_CHUNK_BYTES``) against unchunked
  (the constant set to 2**62 in that subprocess); the peer of a chunked row is the unchunked row;
* ``ponita_grid``: ``Ponita(num_ori=8, radius=r)``, hidden 16, on uniform nodes with ~12 neighbours
  (radius graph built beforehand and passed in), no grad, 2 layers against 4 (the peer of the 4-layer row);
* ``ponita_train``: the same model and graph (2 and 4 layers) in training: one step, forward, a squared
  loss and the backward pass (no optimiser), without and with ``checkpoint=True`` (activation
  checkpointing; the peer of a checkpointed row is the plain row with as many layers);
* ``radius_graph``: ``geomdl.ops.radius_graph`` on uniform points in the unit cube, ~30 neighbours;
* ``knn_graph``: ``geomdl.ops.knn_graph`` with ``k=30``;
* ``scatter_sum``: ``geomdl.ops.scatter(reduce="sum")`` of ``[N, 16]`` into 1e4 segments.

    python -m benchmarks memory [--quick] [--only cg_uvw ponita_grid ...] [--threads 2]
"""
from __future__ import annotations

import gc
import json
import math
import os
import pathlib
import subprocess
import sys
import time

import torch

from benchmarks.timing import positive_int

HELP = ("peak memory of CG uvw (chunked vs not), PONITA grid (inference; training step with/without checkpointing), "
        "radius/knn graph, scatter: one fresh process per case")
CASES = ("cg_uvw", "ponita_grid", "ponita_train", "radius_graph", "knn_graph", "scatter_sum")
ROOT = pathlib.Path(__file__).resolve().parents[1]
_MARK = "MEMORY_RESULT "
_UNCHUNKED = 1 << 62  # EINSUM_CHUNK_BYTES of the unchunked CG rows
# PONITA's no-grad grid forward took ~5 s per layer per 1e5 edges at hidden 16 on a loaded 2-core machine
# (scatter_add_ dominates, linear in edges x hidden): these keep the default run (2e4 nodes, 2 + 4 layers)
# near a minute of PONITA.
PONITA_HIDDEN, PONITA_NEIGHBOURS = 16, 12


def add_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true", help="smaller sizes (well under a minute)")
    parser.add_argument("--only", nargs="+", default=None, choices=CASES, metavar="CASE",
                        help=f"cases to run (default all): {', '.join(CASES)}")
    parser.add_argument("--timeout", type=positive_int, default=600, help="seconds allowed per subprocess (default 600)")


def _sizes(quick: bool) -> dict:
    if quick:
        return {"cg_rows": (16_000,), "ponita_nodes": 1_000, "graph_points": 200_000, "scatter_rows": 2_000_000}
    return {"cg_rows": (20_000, 40_000), "ponita_nodes": 20_000, "graph_points": 1_000_000, "scatter_rows": 10_000_000}


# --- in the subprocess ------------------------------------------------------------------------------

def _status_mib(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise OSError(f"no {field} in /proc/self/status")


def _maxrss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _reset_peak() -> str:
    """Reset the peak counter; returns the counter that :func:`_peak_mib` will read."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        if _status_mib("VmHWM") <= _status_mib("VmRSS") + 1.0:  # the reset took effect
            return "VmHWM"
    except OSError:
        pass
    return "ru_maxrss"


def _peak_mib(counter: str) -> float:
    return _status_mib("VmHWM") if counter == "VmHWM" else _maxrss_mib()


def _rss_mib() -> float:
    try:
        return _status_mib("VmRSS")
    except OSError:
        return _maxrss_mib()


def _release_freed_memory() -> None:
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _nbytes(obj) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(o) for o in obj)
    if isinstance(obj, dict):
        return sum(_nbytes(o) for o in obj.values())
    return 0


def _uniform(n: int, d: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed))


def _radius_for(neighbours: float, n: int) -> float:
    """Radius with ``neighbours`` expected points in its ball, for ``n`` uniform points in the unit cube."""
    return (neighbours / n / (4 / 3 * math.pi)) ** (1 / 3)


def _build(spec: dict, size: int):
    """``(fn, inputs, extra)`` of one measurement: the call ``fn(*inputs)`` and a function of its output
    giving extra row fields."""
    case = spec["case"]
    if case == "cg_uvw":
        from geomdl.nn.tensor_products import clebsch_gordan

        if spec["variant"] == "unchunked":
            clebsch_gordan.EINSUM_CHUNK_BYTES = _UNCHUNKED
        irreps = "16x0e+16x1o+16x2e"
        torch.manual_seed(0)
        tp = clebsch_gordan.ClebschGordanTensorProduct(irreps, irreps, irreps, mode="uvw")
        g = torch.Generator().manual_seed(0)
        inputs = (torch.randn(size, tp.irreps_in1.dim, generator=g), torch.randn(size, tp.irreps_in2.dim, generator=g))

        def fn(x, y):
            with torch.no_grad():
                return tp(x, y)
        return fn, inputs, lambda out: {"path": "sparse" if tp._sparse else "einsum"}
    if case in ("ponita_grid", "ponita_train"):
        from geomdl.nn.ponita import Ponita
        from geomdl.ops import radius_graph

        r = _radius_for(PONITA_NEIGHBOURS, size)
        torch.manual_seed(0)
        train = case == "ponita_train"
        model = Ponita(1, 1, hidden=PONITA_HIDDEN, layers=spec["layers"], num_ori=8, radius=r,
                       checkpoint=train and spec["variant"].endswith("checkpoint")).train(train)
        pos = _uniform(size)
        edge_index = radius_graph(pos, r, max_num_neighbors=1000)

        def fn(pos, x, edge_index):
            if train:  # one training step without the optimiser: forward, loss, backward
                model.zero_grad(set_to_none=True)
                loss = model(pos, x, edge_index=edge_index)[0].square().sum()
                loss.backward()
                return loss.detach()
            with torch.no_grad():
                return model(pos, x, edge_index=edge_index)
        return fn, (pos, torch.ones(size, 1), edge_index), lambda out: {"edges": edge_index.shape[1]}
    if case == "radius_graph":
        from geomdl.ops import radius_graph

        r = _radius_for(30, size)
        return (lambda p: radius_graph(p, r, max_num_neighbors=64)), (_uniform(size),), \
            lambda out: {"edges": out.shape[1]}
    if case == "knn_graph":
        from geomdl.ops import knn_graph

        return (lambda p: knn_graph(p, 30)), (_uniform(size),), lambda out: {"edges": out.shape[1]}
    if case == "scatter_sum":
        from geomdl.ops import scatter

        seg = 10_000
        g = torch.Generator().manual_seed(0)
        inputs = (torch.randn(size, 16, generator=g), torch.randint(0, seg, (size,), generator=g))
        return (lambda s, i: scatter(s, i, dim_size=seg, reduce="sum")), inputs, lambda out: {"segments": seg}
    raise ValueError(f"unknown case {case!r}")


def _child(spec_json: str) -> None:
    """Entry point of the subprocess: measure one case, print one ``MEMORY_RESULT {json}`` line."""
    spec = json.loads(spec_json)
    torch.set_num_threads(spec["threads"])
    warm_fn, warm_inputs, _ = _build(spec, spec["warmup_size"])
    warm_fn(*warm_inputs)  # lazy state (plans, thread pools, kernels) is not part of the call's peak
    del warm_fn, warm_inputs
    fn, inputs, extra = _build(spec, spec["size"])
    _release_freed_memory()
    base = _rss_mib()
    counter = _reset_peak()
    t0 = time.perf_counter()
    out = fn(*inputs)
    seconds = time.perf_counter() - t0
    peak = _peak_mib(counter)
    result = {"in_mib": _nbytes(inputs) / 2**20, "out_mib": _nbytes(out) / 2**20, "base_mib": base,
              "peak_extra_mib": peak - base, "time_s": seconds, "counter": counter, **extra(out)}
    print(_MARK + json.dumps(result), flush=True)


# --- in the benchmark process -----------------------------------------------------------------------

def _measure(spec: dict, timeout: int) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    code = "import sys; from benchmarks.memory import _child; _child(sys.argv[1])"
    try:
        proc = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_MARK):
            return json.loads(line[len(_MARK):])
    tail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
    return {"error": tail[:200]}


def _row(case: str, variant: str, size: int, res: dict, peer: str | None = None, peer_res: dict | None = None) -> dict:
    row = {"case": case, "variant": variant, "size": size}
    if "error" in res:
        row["error"] = res["error"]
        return row
    both = res["in_mib"] + res["out_mib"]
    row.update({"in_mib": res["in_mib"], "out_mib": res["out_mib"], "base_mib": res["base_mib"],
                "peak_extra_mib": res["peak_extra_mib"], "peak/(in+out)": res["peak_extra_mib"] / both if both else None})
    if peer is not None:
        row["peer"] = peer
        ok = peer_res is not None and "error" not in peer_res and peer_res["peak_extra_mib"] > 0
        row["peak/peer"] = res["peak_extra_mib"] / peer_res["peak_extra_mib"] if ok else None
    row["time_s"] = res["time_s"]
    row["counter"] = res["counter"]
    for key in ("edges", "path", "segments"):
        if key in res:
            row[key] = res[key]
    return row


def run(args) -> list[dict]:
    if not sys.platform.startswith("linux"):
        print("note: not Linux: no /proc/self/status; the peaks are ru_maxrss (upper bounds)")
    sizes = _sizes(args.quick)
    threads = torch.get_num_threads()  # --threads was applied by benchmarks.__main__
    cases = args.only or CASES
    rows = []

    def measure(spec, size, warmup_size):
        res = _measure({**spec, "size": size, "warmup_size": warmup_size, "threads": threads}, args.timeout)
        shown = res.get("error") or f"peak +{res['peak_extra_mib']:.1f} MiB ({res['time_s']:.2f} s)"
        print(f"{spec['case']:13s} {spec.get('variant', spec.get('layers', '')) or '':>10} {size:>10}  {shown}", flush=True)
        return res

    for case in CASES:
        if case not in cases:
            continue
        if case == "cg_uvw":
            for n in sizes["cg_rows"]:
                unchunked = measure({"case": case, "variant": "unchunked"}, n, 64)
                chunked = measure({"case": case, "variant": "chunked"}, n, 64)
                rows.append(_row(case, "chunked", n, chunked, "unchunked", unchunked))
                rows.append(_row(case, "unchunked", n, unchunked))
        elif case == "ponita_grid":
            n = sizes["ponita_nodes"]
            two = measure({"case": case, "layers": 2}, n, 200)
            four = measure({"case": case, "layers": 4}, n, 200)
            rows.append(_row(case, "2 layers", n, two))
            rows.append(_row(case, "4 layers", n, four, "2 layers", two))
        elif case == "ponita_train":
            n = sizes["ponita_nodes"]
            for layers in (2, 4):
                plain, ckpt = f"{layers}L plain", f"{layers}L checkpoint"
                res_plain = measure({"case": case, "layers": layers, "variant": plain}, n, 200)
                res_ckpt = measure({"case": case, "layers": layers, "variant": ckpt}, n, 200)
                rows.append(_row(case, plain, n, res_plain))
                rows.append(_row(case, ckpt, n, res_ckpt, plain, res_plain))
        elif case in ("radius_graph", "knn_graph"):
            n = sizes["graph_points"]
            rows.append(_row(case, "~30 nbrs" if case == "radius_graph" else "k=30", n,
                             measure({"case": case}, n, 1000)))
        elif case == "scatter_sum":
            n = sizes["scatter_rows"]
            rows.append(_row(case, "16 ch -> 1e4", n, measure({"case": case}, n, 10_000)))
    return rows
