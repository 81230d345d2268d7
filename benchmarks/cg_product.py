"""Exact Clebsch-Gordan tensor product on the CPU: geomdl's sparse kernel against e3nn's ``TensorProduct``.

Cases (per-row weights from a radial MLP where a convolution would use them; float32):

* ``nequip_conv``: ``C x (0e+1o+2e) (x) (0e+1o+2e) -> C x (0e+1o+2e)``, mode ``uvu``, per-edge weights
  (the message of a NequIP / TFN convolution: node features times edge spherical harmonics);
* ``nequip_conv_l3``: the same with degrees up to 3 in all three (``uvu``);
* ``channelwise``: ``C x (0e+1o+2e) (x) C x (0e+1o+2e)``, mode ``uuu``, shared weights;
* ``fully_connected``: ``C x (0e+1o+2e) (x) (0e+1o+2e)``, mode ``uvw``, per-edge weights.

Passes: forward without gradients, forward+backward (gradients of every input), and the force-training
pass (``d/dx`` of the summed output with ``create_graph=True``, then backward through it: second
derivatives, as in energy/force training). Peers, timed round robin in one run
(:func:`benchmarks.timing.measure_interleaved`): ``e3nn`` (its codegen'd ``TensorProduct`` with the same
instructions), ``einsum`` (geomdl's per-path einsums, the layer's reference path). Each peer's output is
checked against geomdl's before timing. ``x`` = peer time / geomdl time.
"""
from __future__ import annotations

import torch
from e3nn import o3

from benchmarks.timing import measure_interleaved
from geomdl import ops
from geomdl.nn import ClebschGordanTensorProduct

HELP = "exact CG tensor product (uvu/uuu/uvw) vs e3nn TensorProduct on the CPU, forward / backward / double backward"
PASSES = ("forward", "forward+backward", "double_backward")


def _cases(channels: int):
    c = channels
    return {
        "nequip_conv": (f"{c}x0e+{c}x1o+{c}x2e", "0e+1o+2e", f"{c}x0e+{c}x1o+{c}x2e", "uvu", False),
        "nequip_conv_l3": (f"{c}x0e+{c}x1o+{c}x2e+{c}x3o", "0e+1o+2e+3o", f"{c}x0e+{c}x1o+{c}x2e+{c}x3o", "uvu", False),
        "channelwise": (f"{c}x0e+{c}x1o+{c}x2e", f"{c}x0e+{c}x1o+{c}x2e", f"{c}x0e+{c}x1o+{c}x2e", "uuu", True),
        "fully_connected": (f"{c}x0e+{c}x1o+{c}x2e", "0e+1o+2e", f"{c}x0e+{c}x1o+{c}x2e", "uvw", False),
    }


def add_arguments(parser) -> None:
    parser.add_argument("--channels", type=int, default=16, help="multiplicity C of every irrep (default 16)")
    parser.add_argument("--rows", type=int, default=20000, help="rows (edges) per call (default 20000)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cases", default=",".join(_cases(1)), help="comma-separated subset of the cases")
    parser.add_argument("--passes", default=",".join(PASSES), help=f"comma-separated subset of {PASSES}")
    parser.add_argument("--seed", type=int, default=0)


class _Einsum(torch.nn.Module):
    """geomdl's layer forced onto its per-path einsum path (the reference)."""

    def __init__(self, tp):
        super().__init__()
        self.tp = tp

    def forward(self, *args):
        with ops.use_backend("reference"):
            return self.tp(*args)


def _pass(module, args, name):
    x = args[0]

    def forward():
        with torch.no_grad():
            module(*args)

    def forward_backward():
        module(*args).sum().backward()

    def double_backward():
        (gx,) = torch.autograd.grad(module(*args).pow(2).sum(), x, create_graph=True)
        gx.pow(2).sum().backward()

    return {"forward": forward, "forward+backward": forward_backward, "double_backward": double_backward}[name]


def run(args) -> list[dict]:
    if not ops.has_kernel("sparse_trilinear"):
        print("note: geomdl._C is not built; geomdl runs its einsum reference path")
    cases = _cases(args.channels)
    rows_out = []
    for case in args.cases.split(","):
        if case not in cases:
            raise SystemExit(f"unknown case {case!r}; choose from {list(cases)}")
        i1, i2, io, mode, internal = cases[case]
        torch.manual_seed(args.seed)
        tp = ClebschGordanTensorProduct(i1, i2, io, mode=mode, internal_weights=internal)
        ref = o3.TensorProduct(i1, i2, io, [(i, j, k, mode, True) for i, j, k in tp.paths],
                               internal_weights=internal, shared_weights=internal)
        if internal:
            with torch.no_grad():
                ref.weight.copy_(tp.weight)
        x = o3.Irreps(i1).randn(args.rows, -1).requires_grad_()
        y = o3.Irreps(i2).randn(args.rows, -1).requires_grad_()
        call_args = (x, y) if internal else (x, y, torch.randn(args.rows, tp.weight_numel, requires_grad=True))
        peers = {"geomdl": tp, "e3nn": ref, "einsum": _Einsum(tp)}
        with torch.no_grad():
            mine = tp(*call_args)
            for name in ("e3nn", "einsum"):
                err = float((peers[name](*call_args) - mine).abs().max() / mine.abs().max())
                if err > 1e-4:
                    raise SystemExit(f"{case}: {name} differs from geomdl by {err:.2e} (relative)")
        for pass_name in args.passes.split(","):
            fns = {name: _pass(m, call_args, pass_name) for name, m in peers.items()}
            res = measure_interleaved(fns, repeats=args.repeats)
            base = res["geomdl"]["median_ms"]
            row = {"case": case, "mode": mode, "pass": pass_name, "rows": args.rows, "C": args.channels,
                   "sparse": tp._sparse, "geomdl_ms": base}
            for name in ("e3nn", "einsum"):
                row[f"{name}_ms"] = res[name]["median_ms"]
                row[f"{name}_x"] = res[name]["median_ms"] / base
            row["geomdl_iqr_ms"] = res["geomdl"]["iqr_ms"]
            rows_out.append(row)
            print(f"{case:16s} {pass_name:17s} geomdl {base:8.2f} ms  e3nn {row['e3nn_ms']:8.2f} ({row['e3nn_x']:.2f}x)"
                  f"  einsum {row['einsum_ms']:8.2f} ({row['einsum_x']:.2f}x)", flush=True)
    return rows_out
