"""Channelwise tensor product of two features, Gaunt (geomdl) vs e3nn's ``TensorProduct`` ("uuu").

Problem (methods.md section 2, issue 5): ``C`` channels of degrees ``0..L`` with parity ``(-1)^l`` in both
inputs and the output, ``N`` nodes, float32, the same batch for every peer. Peers:

* ``gaunt``: :class:`geomdl.nn.GauntTensorProduct` (per-degree weights, default ``method="auto"`` = the
  half-torus GEMM execution of the 2D-Fourier algorithm), e3nn ``mul_ir`` layout in and out;
* ``gaunt_fft``: the same layer with ``method="fft"`` (zero-padded ``torch.fft`` 2D transforms);
* ``e3nn``: ``o3.TensorProduct`` with one "uuu" instruction per allowed path (for natural parity these
  are exactly the even ``l1+l2+l3`` paths, the ones the Gaunt product has), one weight per path and channel;
* ``cueq`` (only with ``--second single``): cuEquivariance's ``ChannelWiseTensorProduct`` on the same paths
  (``C x (0..L)`` times ``1 x (0..L)``, outputs filtered to the natural-parity degrees ``0..L``, one weight
  per path; it returns each path's output block unsummed). Its default method: the CUDA kernel where
  ``cuequivariance-ops-torch`` is installed, else its naive PyTorch path.

``--second full`` (default): ``y`` has ``C`` channels like ``x`` (e3nn "uuu"). ``--second single``: ``y`` has
one channel shared by all channels of ``x`` (e3nn "uvu" with ``v = 1``; the usual features-times-spherical-
harmonics product of message passing), the form cuEquivariance's channelwise product computes.
``--device cuda`` runs every peer on the GPU (timings CUDA-synchronised).

Chunking (reported in the ``chunks`` column): cuEquivariance's kernel indexes its output with 32-bit integers
and its channelwise output grows like ``C L^3`` per node (29,440 values per node at ``C = 128, L = 4``: 2.9e9
for 1e5 nodes, an illegal memory access on an H100), so ``cueq`` runs over consecutive chunks of nodes of at
most 2^30 output values each. Any peer that runs out of memory on the whole batch is retried on 2, 4, ...
chunks. A chunked pass does the same work (every chunk's forward, and backward into the same leaves).

Before timing, each ``L`` checks on 4 nodes that the Gaunt layer equals e3nn with path weights
``c(l1,l2,l3) n_l3`` and no normalisation (the CG <-> Gaunt relation). Timings: median of repeats after a
warm-up; slow calls (> 2 s) are timed ``--slow-repeats`` times. Exponents: least squares of
``log t = a + k log L`` per peer and pass.
"""
from __future__ import annotations

import argparse
import math
import time

import torch

from benchmarks.timing import comma_choices, comma_positive_ints, measure, positive_int, quick_settings

HELP = "Gaunt tensor product vs e3nn TensorProduct (uuu), C channels, degrees 0..L, N nodes"
PEERS = ("gaunt", "gaunt_fft", "e3nn", "cueq")


def add_arguments(parser) -> None:
    parser.add_argument("--lmax", type=positive_int, default=12, help="largest L (default 12); L runs from 1")
    parser.add_argument("--ls", type=comma_positive_ints, default=None, help="comma-separated degrees to run instead of 1..--lmax (e.g. 6,10)")
    parser.add_argument("--quick", action="store_true", help="L = 1..4, 3 repeats (smoke run)")
    parser.add_argument("--channels", type=positive_int, default=64)
    parser.add_argument("--nodes", type=positive_int, default=1000)
    parser.add_argument("--repeats", type=positive_int, default=5)
    parser.add_argument("--slow-repeats", type=positive_int, default=1, help="repeats for calls slower than 2 s")
    parser.add_argument("--peers", type=comma_choices(PEERS), default="gaunt,gaunt_fft,e3nn", help=f"comma-separated subset of {PEERS}")
    parser.add_argument("--second", choices=("full", "single"), default="full",
                        help="y with C channels (uuu, default) or with one channel (uvu, v=1; needed by cueq)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="cpu (default) or cuda")
    parser.add_argument("--e3nn-lmax", type=positive_int, default=None, help="largest L timed for e3nn (default --lmax)")
    parser.add_argument("--seed", type=int, default=0)


def _irreps(channels: int, lmax: int):
    from e3nn import o3

    return o3.Irreps([(channels, (l, (-1) ** l)) for l in range(lmax + 1)])


def _e3nn_tp(irreps, gaunt_weights: bool, irreps2=None):
    """e3nn ``TensorProduct`` on the Gaunt paths: "uuu" (``irreps2`` None or equal) or "uvu" with ``v = 1``."""
    from e3nn import o3

    from geomdl.nn.tensor_products.gaunt import output_normalization
    from geomdl.o3 import gaunt_cg_constant

    irreps2 = irreps if irreps2 is None else irreps2
    mode = "uuu" if irreps2 == irreps else "uvu"
    ins, weights = [], []
    ls = sorted({ir.l for _, ir in irreps})
    norm = output_normalization(ls, ls, ls)
    for i, (_, a) in enumerate(irreps):
        for j, (_, b) in enumerate(irreps2):
            for k, (mul, c) in enumerate(irreps):
                if c in a * b:
                    ins.append((i, j, k, mode, True))
                    weights.append(torch.full((mul,), gaunt_cg_constant(a.l, b.l, c.l) * float(norm[c.l])))
    if gaunt_weights:
        tp = o3.TensorProduct(irreps, irreps2, irreps, ins, irrep_normalization="none", path_normalization="none")
        with torch.no_grad():
            tp.weight.copy_(torch.cat(weights))
        return tp
    return o3.TensorProduct(irreps, irreps2, irreps, ins)


def _cueq_tp(channels: int, lmax: int, device):
    """cuEquivariance's channelwise product ``C x (0..L)`` times ``1 x (0..L)`` on the natural-parity paths."""
    import cuequivariance as cue
    import cuequivariance_torch as cuet

    ir1 = cue.Irreps("O3", [(channels, (l, (-1) ** l)) for l in range(lmax + 1)])
    ir2 = cue.Irreps("O3", [(1, (l, (-1) ** l)) for l in range(lmax + 1)])
    keep = [cue.O3(l, (-1) ** l) for l in range(lmax + 1)]
    return cuet.ChannelWiseTensorProduct(ir1, ir2, keep, layout=cue.mul_ir, shared_weights=True, internal_weights=True,
                                         device=device)


CHECK_TOL = 1e-6  # relative difference above which a run stops (the e3nn side holds float32-rounded path weights: ~3e-8)


def _check(lmax: int, channels: int, single: bool = False, method: str | None = None) -> float:
    """Relative difference Gaunt layer (``method``: its default or ``"fft"``) vs e3nn (Gaunt path weights) on 4
    nodes, float64."""
    from geomdl.nn import GauntTensorProduct

    irreps = _irreps(channels, lmax)
    irreps2 = _irreps(1, lmax) if single else irreps
    with torch.no_grad():
        ref = _e3nn_tp(irreps, gaunt_weights=True, irreps2=irreps2).double()
        ours = GauntTensorProduct(irreps, irreps2, irreps, **({"method": method} if method else {})).double()
        g = torch.Generator().manual_seed(1)
        x = torch.randn(4, irreps.dim, generator=g, dtype=torch.float64)
        y = torch.randn(4, irreps2.dim, generator=g, dtype=torch.float64)
        a, b = ours(x, y), ref(x, y)
    return float((a - b).norm() / b.norm())


CUEQ_MAX_OUTPUT = 1 << 30  # output values per cuEquivariance call (its kernel indexes with int32)


def _chunked(mod, x, y, chunks: int, backward: bool):
    """A callable running ``mod`` over ``chunks`` consecutive node ranges: forward only (no grad), or forward
    and backward of ``sum(out^2)`` into leaves ``x, y`` (their gradients accumulate over the chunks)."""
    bounds = [round(i * x.shape[0] / chunks) for i in range(chunks + 1)]
    ranges = list(zip(bounds[:-1], bounds[1:]))
    if not backward:
        def fwd():
            with torch.no_grad():
                for a, b in ranges:
                    mod(x[a:b], y[a:b])
        return fwd
    xs, ys = x.clone().requires_grad_(), y.clone().requires_grad_()

    def fwd_bwd():
        for a, b in ranges:
            mod(xs[a:b], ys[a:b]).pow(2).sum().backward()
    return fwd_bwd


def _time_with_chunks(mod, x, y, backward: bool, chunks: int, repeats: int, slow_repeats: int, device):
    """Time one pass, doubling the chunk count after an out-of-memory error. Returns (measure dict, chunks)."""
    while True:
        fn = _chunked(mod, x, y, chunks, backward)
        try:
            return _time(fn, repeats, slow_repeats, device), chunks
        except torch.OutOfMemoryError:
            del fn
            if device is not None and str(device).startswith("cuda"):
                torch.cuda.empty_cache()
            if chunks >= 64:
                raise
            chunks *= 2


def _time(fn, repeats: int, slow_repeats: int, device=None) -> dict:
    def once() -> float:
        t0 = time.perf_counter()
        fn()
        if device is not None and str(device).startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    # Warm-up (plans, codegen and JIT caches). A slow first call may be only compilation (cuEquivariance
    # compiles its kernels on the first call), so a second call decides whether the peer is slow.
    if once() > 2.0 and once() > 2.0:
        return measure(fn, repeats=slow_repeats, warmup=0, device=device)
    return measure(fn, repeats=repeats, warmup=1, device=device)


def _fit(points: list[tuple[int, float]]) -> float | None:
    pts = [(math.log(l), math.log(t)) for l, t in points if t > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    den = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / den if den > 0 else None


def run(args) -> list[dict]:
    from tqdm import tqdm

    from geomdl.nn import GauntTensorProduct

    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        raise SystemExit(f"--peers: unknown {unknown}; choose from {PEERS}")
    if args.quick:  # (options given on the command line stay as given)
        quick_settings(args, lmax=4, repeats=3)
    lmax, repeats = args.lmax, args.repeats
    degrees = list(range(1, lmax + 1))
    if args.ls:  # parsed by comma_positive_ints on the command line; a string from a caller's own namespace too
        try:
            degrees = comma_positive_ints(args.ls) if isinstance(args.ls, str) else sorted(set(args.ls))
        except argparse.ArgumentTypeError as exc:
            raise SystemExit(f"--ls: {exc}") from None
    e3nn_lmax = max(degrees) if args.e3nn_lmax is None else args.e3nn_lmax
    device = torch.device(getattr(args, "device", "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")
    single = getattr(args, "second", "full") == "single"
    if "cueq" in peers and not single:
        raise SystemExit("--peers cueq needs --second single (cuEquivariance's channelwise product takes a "
                         "one-channel second operand)")
    rows, times = [], {}
    for L in tqdm(degrees, desc="tensor_product L", unit="L", disable=None):
        irreps = _irreps(args.channels, L)
        irreps2 = _irreps(1, L) if single else irreps
        # each Gaunt module is checked against e3nn with Gaunt path weights; e3nn's own (CG-weighted) product and
        # cuEquivariance's are other maths: timed for speed, their rows carry no check
        checks = {name: _check(L, 2, single, method) for name, method in (("gaunt", None), ("gaunt_fft", "fft"))
                  if name in peers}
        bad = {name: err for name, err in checks.items() if not err <= CHECK_TOL}
        if bad:
            raise SystemExit(f"L={L}: {bad} relative difference from e3nn's Gaunt-weighted product above {CHECK_TOL:g}")
        g = torch.Generator().manual_seed(args.seed + L)
        x = torch.randn(args.nodes, irreps.dim, generator=g).to(device)
        y = torch.randn(args.nodes, irreps2.dim, generator=g).to(device)
        modules = {}
        if "gaunt" in peers:
            modules["gaunt"] = GauntTensorProduct(irreps, irreps2, irreps)
        if "gaunt_fft" in peers:
            modules["gaunt_fft"] = GauntTensorProduct(irreps, irreps2, irreps, method="fft")
        if "e3nn" in peers and L <= e3nn_lmax:
            modules["e3nn"] = _e3nn_tp(irreps, gaunt_weights=False, irreps2=irreps2)
        if "cueq" in peers:
            try:
                modules["cueq"] = _cueq_tp(args.channels, L, device)
            except ImportError as exc:
                rows.append({"L": L, "peer": "cueq", "pass": "-", "median_ms": None,
                             "note": f"not installed ({exc}); pip install cuequivariance-torch"[:120]})
        modules = {name: mod.to(device) for name, mod in modules.items()}
        found = {}
        for name, mod in modules.items():
            chunks = max(1, math.ceil(args.nodes * mod.irreps_out.dim / CUEQ_MAX_OUTPUT)) if name == "cueq" else 1
            for pass_name in ("forward", "forward+backward"):
                try:
                    m, used = _time_with_chunks(mod, x, y, pass_name != "forward", chunks, repeats, args.slow_repeats,
                                                device)
                except torch.OutOfMemoryError as exc:
                    rows.append({"L": L, "peer": name, "pass": pass_name, "median_ms": None,
                                 "note": f"out of memory even in 64 chunks: {exc}"[:120]})
                    tqdm.write(f"L={L} {name} {pass_name}: out of memory even in 64 chunks")
                    continue
                found[(name, pass_name)] = m["median_ms"]
                times.setdefault((name, pass_name), []).append((L, m["median_ms"]))
                rows.append({"L": L, "peer": name, "pass": pass_name, "median_ms": m["median_ms"], "iqr_ms": m["iqr_ms"],
                             "repeats": m["repeats"], "chunks": used, "check_rel_err": checks.get(name), "device": str(device),
                             "second": "single" if single else "full"})
                tqdm.write(f"L={L} {name} {pass_name}: {m['median_ms']:.1f} ms (iqr {m['iqr_ms']:.1f}, n={m['repeats']}, "
                           f"chunks={used})")
            if device.type == "cuda":
                torch.cuda.empty_cache()
        for r in rows:
            if r["L"] == L and r.get("median_ms"):
                ref = found.get(("e3nn", r["pass"]))
                r["speedup_vs_e3nn"] = ref / r["median_ms"] if ref else None
                ref = found.get(("cueq", r["pass"]))
                if ref:
                    r["speedup_vs_cueq"] = ref / r["median_ms"]
    for (name, pass_name), pts in sorted(times.items()):
        rows.append({"L": "fit L>=1", "peer": name, "pass": pass_name, "exponent": _fit(pts)})
        rows.append({"L": "fit L>=4", "peer": name, "pass": pass_name, "exponent": _fit([p for p in pts if p[0] >= 4])})
    return rows
