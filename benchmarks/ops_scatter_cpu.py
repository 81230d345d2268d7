"""Parts ``scatter_max`` and ``scatter_small`` of ``python -m benchmarks ops`` (CPU).

* ``scatter_max``: scatter-max of 1e6 x 64 float32 rows into 1e4 segments (sorted and random index),
  forward alone and forward + backward, against torch's ``scatter_reduce_(..., "amax")``, torch_scatter
  and PyG's ``utils.scatter``. Every peer's output is compared with geomdl's before it is timed.
* ``scatter_sums``: scatter sum / mean of float32 rows where a float32 running sum is least precise
  (pooling: few, large segments) and where it is most common (message aggregation: ~10 rows per
  segment), against torch's ``index_add_`` / ``scatter_reduce_``, torch_scatter and PyG's
  ``utils.scatter``. The ``agrees`` column gives each output's largest error against the float64 sum of the
  same float32 rows, in units of ``eps |out64|`` ("ulp": within 2x of the true ulp); rows are uniform in
  [0, 1), so no sum cancels.
* ``scatter_small``: the time of one call on small inputs, where the per-call overhead (argument checks,
  dispatch) is most of it: 100 x 16 rows into 10 segments, and 10,000 x 64 rows into 600 (a batch of
  about 32 QM9 molecules' edges). Each timing is a loop of many calls, reported per call.

Where the CPU has AVX2, every part also times the kernel's baseline (SSE2) copy of its row loops
(``GEOMDL_SCATTER_ISA=generic``, kernels/scatter/scatter_rows.h) in the same run: the row "geomdl, baseline
copy". Its output must equal the default copy's bit for bit (any NaN equal to any NaN).
"""
from __future__ import annotations

import os
import sys

import torch

from benchmarks.ops_softmax_cpu import float32_ulps
from benchmarks.timing import measure


BASELINE = "geomdl, baseline copy (GEOMDL_SCATTER_ISA=generic)"


def why_no_baseline(env: str = "GEOMDL_SCATTER_ISA") -> str | None:
    """Why the baseline copy cannot be timed beside the default one here, or None when it can."""
    c = sys.modules.get("geomdl._C")
    if c is None:
        return "geomdl._C not loaded"
    if not getattr(c, "avx2", 0):
        return "the AVX2 copy does not run on this CPU"
    if os.environ.get(env) == "generic":
        return f"{env}=generic is set: the geomdl rows already run the baseline copy"
    return None


def baseline_copy(fn, env: str = "GEOMDL_SCATTER_ISA"):
    """fn run on the kernel's baseline (SSE2) loops, or None when that cannot be compared here (why_no_baseline;
    the kernels read GEOMDL_<KERNEL>_ISA on every call)."""
    if why_no_baseline(env) is not None:
        return None

    def run(*args, **kwargs):
        old = os.environ.get(env)
        os.environ[env] = "generic"
        try:
            return fn(*args, **kwargs)
        finally:
            if old is None:
                del os.environ[env]
            else:
                os.environ[env] = old
    return run


def add_baseline(table, op, fn, want, env: str = "GEOMDL_SCATTER_ISA", label: str = BASELINE, **time_kwargs):
    """Times the baseline copy of geomdl's `fn` (a row of `op`), its output checked bit for bit against `want`."""
    base = baseline_copy(fn, env)
    if base is None:
        table.skip(op, label, why_no_baseline(env))
        return
    table.time(op, label, base, agrees="same bits" if same_bits(base(), want) else "NO", **time_kwargs)


def same_bits(a, b) -> bool:
    """Equal bit for bit (the sign of zero included), any NaN equal to any NaN (where NaNs of both signs meet,
    which comes out depends on the add's operand order: scatter_rows.h). Integer tensors: equal."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if not a.is_floating_point():
        return torch.equal(a, b)
    as_int = {torch.float32: torch.int32, torch.float64: torch.int64}
    keep = ~a.isnan()
    return torch.equal(a.isnan(), b.isnan()) and torch.equal(a[keep].view(as_int[a.dtype]), b[keep].view(as_int[b.dtype]))


def _agree(out, want) -> str:
    return "yes" if torch.equal(out, want) else "NO"


def _peers_max(src, index, s, optional):
    """Forward-only max callables of the peers: name -> fn() returning [s, C]."""
    c = src.shape[1]
    expanded = index.unsqueeze(1).expand(-1, c)
    peers = {"torch scatter_reduce_ amax": lambda: src.new_zeros(s, c).scatter_reduce_(0, expanded, src, "amax", include_self=False)}
    ts = optional("torch_scatter")
    if ts is not None:
        peers["torch_scatter"] = lambda: ts.scatter(src, index, dim=0, dim_size=s, reduce="max")
    pyg = optional("torch_geometric.utils")
    if pyg is not None:
        peers["PyG utils.scatter"] = lambda: pyg.scatter(src, index, dim=0, dim_size=s, reduce="max")
    return peers


def scatter_max(table, quick: bool, optional) -> None:
    from geomdl import ops

    n, c, s = (100_000, 64, 1_000) if quick else (1_000_000, 64, 10_000)
    gen = torch.Generator().manual_seed(0)
    src = torch.randn(n, c, generator=gen)
    for order in ("sorted", "random"):
        index = torch.randint(0, s, (n,), generator=gen)
        if order == "sorted":
            index = index.sort().values
        op = f"scatter_max {n:.0e}x{c}->{s:.0e} {order}"

        def geomdl_max(x=src, index=index):
            with ops.use_backend("compiled"):
                return ops.scatter(x, index, dim_size=s, reduce="max")

        want = geomdl_max()
        table.time(op, "geomdl (compiled)", geomdl_max, geomdl=True)
        add_baseline(table, op, geomdl_max, want)
        peers = {"geomdl reference": lambda index=index: ops.scatter_reference(src, index, dim_size=s, reduce="max")}
        peers.update(_peers_max(src, index, s, optional))
        if optional("torch_scatter") is None:
            table.skip(op, "torch_scatter", "not installed (pip install 'geomdl[bench]')")
        for name, fn in peers.items():
            table.time(op, name, fn, agrees=_agree(fn(), want))

        # forward + backward (gradient of the sum of the outputs)
        op_b = op + " fwd+bwd"
        leaf = src.clone().requires_grad_(True)

        def backward(fn):
            def run():
                leaf.grad = None
                fn(leaf).sum().backward()
                return leaf.grad
            return run

        grad_want = backward(lambda x: geomdl_max(x))()
        table.time(op_b, "geomdl (compiled)", backward(lambda x: geomdl_max(x)), geomdl=True)
        expanded = index.unsqueeze(1).expand(-1, c)
        peers_b = {"torch scatter_reduce_ amax": lambda x: x.new_zeros(s, c).scatter_reduce(0, expanded, x, "amax", include_self=False)}
        ts = optional("torch_scatter")
        if ts is not None:
            peers_b["torch_scatter"] = lambda x: ts.scatter(x, index, dim=0, dim_size=s, reduce="max")
        else:
            table.skip(op_b, "torch_scatter", "not installed (pip install 'geomdl[bench]')")
        for name, fn in peers_b.items():
            run = backward(fn)
            table.time(op_b, name, run, agrees=_agree_up_to_ties(run(), grad_want, src, index, want))


def _agree_up_to_ties(grad, grad_want, src, index, out) -> str:
    """Gradients of a max agree, except where rows tie for a segment's maximum: geomdl gives the whole
    gradient to the first such row, torch splits it (random float32 rows tie rarely, but they do)."""
    if torch.equal(grad, grad_want):
        return "yes"
    rows, cols = (grad != grad_want).nonzero(as_tuple=True)
    tied = src[rows, cols] == out[index[rows], cols]
    return f"yes, up to {len(rows)} tied rows" if bool(tied.all()) else "NO"


def scatter_small(table, quick: bool, optional) -> None:
    from geomdl import ops

    calls = 200 if quick else 2_000
    gen = torch.Generator().manual_seed(1)
    for n, c, s in ((100, 16, 10), (10_000, 64, 600)):
        src = torch.randn(n, c, generator=gen)
        index = torch.randint(0, s, (n,), generator=gen).sort().values
        for reduce in ("sum", "max"):
            op = f"scatter_{reduce} {n}x{c}->{s}, per call"
            with ops.use_backend("compiled"):
                want = ops.scatter(src, index, dim_size=s, reduce=reduce)

            def compiled(run):
                # the geomdl rows time the compiled op whatever GEOMDL_KERNELS says (set once per loop, not per call)
                def under_compiled():
                    with ops.use_backend("compiled"):
                        return run()
                return under_compiled

            def loop(fn):
                def run():
                    for _ in range(calls):
                        fn()
                return run

            def add(name, fn, geomdl=False, wrap=lambda run: run):
                # wrap: applied to the whole loop (the baseline copy sets its environment variable once per loop)
                out = wrap(fn)()
                agrees = "yes" if torch.allclose(out, want, rtol=1e-5, atol=1e-5) else "NO"
                if name == BASELINE:
                    agrees = "same bits" if same_bits(out, want) else "NO"
                t = measure(wrap(loop(fn)), repeats=table.repeats, warmup=1)
                per_call = {**t, **{key: t[key] / calls for key in ("median_ms", "min_ms", "iqr_ms")}}
                table.add(op, name, per_call, agrees=agrees, geomdl=geomdl)

            add("geomdl (compiled)", lambda: ops.scatter(src, index, dim_size=s, reduce=reduce), geomdl=True,
                wrap=compiled)
            if why_no_baseline() is not None:
                table.skip(op, BASELINE, why_no_baseline())
            else:
                add(BASELINE, lambda: ops.scatter(src, index, dim_size=s, reduce=reduce),
                    wrap=lambda run: baseline_copy(compiled(run)))
            add("torch.ops.geomdl op called directly", lambda: torch.ops.geomdl.scatter_reduce(src, index, s, reduce)[0])
            if reduce == "sum":
                add("torch index_add_", lambda: src.new_zeros(s, c).index_add_(0, index, src))
            else:
                expanded = index.unsqueeze(1).expand(-1, c)
                add("torch scatter_reduce_ amax",
                    lambda: src.new_zeros(s, c).scatter_reduce_(0, expanded, src, "amax", include_self=False))
            ts = optional("torch_scatter")
            if ts is not None:
                add("torch_scatter", lambda: ts.scatter(src, index, dim=0, dim_size=s, reduce=reduce))
            else:
                table.skip(op, "torch_scatter", "not installed (pip install 'geomdl[bench]')")
            pyg = optional("torch_geometric.utils")
            if pyg is not None:
                add("PyG utils.scatter", lambda: pyg.scatter(src, index, dim=0, dim_size=s, reduce=reduce))


def _sum_cases(quick: bool):
    """(op name, n, c, segments, reduce) of part ``scatter_sums``."""
    scale = 10 if quick else 1
    return [(f"{2_000_000 // scale:.0e}x8->16 (pooling)", 2_000_000 // scale, 8, 16, "sum"),
            (f"{2_000_000 // scale:.0e}x8->16 (pooling)", 2_000_000 // scale, 8, 16, "mean"),
            (f"{1_000_000 // scale:.0e}x64->{100_000 // scale:.0e} (edges)", 1_000_000 // scale, 64, 100_000 // scale, "sum")]


def scatter_sums(table, quick: bool, optional) -> None:
    from geomdl import ops

    gen = torch.Generator().manual_seed(6)
    ts = optional("torch_scatter")
    pyg = optional("torch_geometric.utils")
    for shape, n, c, s, reduce in _sum_cases(quick):
        op = f"scatter_{reduce} {shape}"
        src = torch.rand(n, c, generator=gen)
        index = torch.randint(0, s, (n,), generator=gen)
        want = ops.scatter_reference(src.double(), index, dim_size=s, reduce=reduce)  # float64 sums
        expanded = index.unsqueeze(1).expand(-1, c)

        def compiled():
            with ops.use_backend("compiled"):
                return ops.scatter(src, index, dim_size=s, reduce=reduce)

        impls = {"geomdl (compiled)": compiled,
                 "geomdl reference": lambda: ops.scatter_reference(src, index, dim_size=s, reduce=reduce),
                 f"torch scatter_reduce_ {reduce}": lambda: src.new_zeros(s, c).scatter_reduce_(
                     0, expanded, src, reduce, include_self=False)}
        if reduce == "sum":
            impls["torch index_add_"] = lambda: src.new_zeros(s, c).index_add_(0, index, src)
        if ts is not None:
            impls["torch_scatter"] = lambda: ts.scatter(src, index, dim=0, dim_size=s, reduce=reduce)
        else:
            table.skip(op, "torch_scatter", "not installed (pip install 'geomdl[bench]')")
        if pyg is not None:
            impls["PyG utils.scatter"] = lambda: pyg.scatter(src, index, dim=0, dim_size=s, reduce=reduce)
        for name, fn in impls.items():
            table.time(op, name, fn, agrees=f"max err {float32_ulps(fn(), want):.1f} ulp", geomdl=name == "geomdl (compiled)")
            if name == "geomdl (compiled)":
                add_baseline(table, op, fn, fn())
