"""Exact Clebsch-Gordan tensor product: geomdl's sparse kernel against e3nn's ``TensorProduct`` (CPU or CUDA).

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
instructions), ``einsum`` (geomdl's per-path einsums, the layer's reference path), and with ``--device cuda``
``kernel`` (the CUDA ``sparse_trilinear`` kernel, which the layer does not use on CUDA until these numbers say
it should: there ``geomdl`` is the layer as users get it). Each peer's output is checked against geomdl's
before timing. ``x`` = peer time / geomdl time.
"""
from __future__ import annotations

import torch
from e3nn import o3

from benchmarks.timing import comma_choices, measure_interleaved, positive_int
from geomdl import ops
from geomdl.nn import ClebschGordanTensorProduct

HELP = "exact CG tensor product (uvu/uuu/uvw) vs e3nn TensorProduct (CPU or CUDA), forward / backward / double backward"
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
    parser.add_argument("--channels", type=positive_int, default=16, help="multiplicity C of every irrep (default 16)")
    parser.add_argument("--rows", type=positive_int, default=20000, help="rows (edges) per call (default 20000)")
    parser.add_argument("--repeats", type=positive_int, default=7)
    parser.add_argument("--cases", type=comma_choices(tuple(_cases(1))), default=",".join(_cases(1)), help="comma-separated subset of the cases")
    parser.add_argument("--passes", type=comma_choices(PASSES), default=",".join(PASSES), help=f"comma-separated subset of {PASSES}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))


class _Kernel(torch.nn.Module):
    """geomdl's layer forced onto the sparse kernel (whatever its device routing says)."""

    def __init__(self, tp):
        super().__init__()
        self.tp = tp

    def forward(self, *args):
        x, y, w = (*args, self.tp.weight) if len(args) == 2 else args
        batch = torch.broadcast_shapes(x.shape[:-1], y.shape[:-1], w.shape[:-1])
        with ops.use_backend("compiled"):
            return self.tp._forward_sparse(x, y, w, batch)


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
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device")
    if not ops.has_kernel("sparse_trilinear", device.type):
        print(f"note: geomdl._C has no sparse_trilinear kernel for {device.type}; geomdl runs its einsum reference path")
    kernel_peer = device.type not in ClebschGordanTensorProduct.KERNEL_DEVICES and ops.has_kernel("sparse_trilinear",
                                                                                                   device.type)
    others = ("e3nn", "einsum") + (("kernel",) if kernel_peer else ())
    cases = _cases(args.channels)
    rows_out = []
    for case in args.cases.split(","):
        if case not in cases:
            raise SystemExit(f"unknown case {case!r}; choose from {list(cases)}")
        i1, i2, io, mode, internal = cases[case]
        torch.manual_seed(args.seed)
        tp = ClebschGordanTensorProduct(i1, i2, io, mode=mode, internal_weights=internal).to(device)
        ref = o3.TensorProduct(i1, i2, io, [(i, j, k, mode, True) for i, j, k in tp.paths],
                               internal_weights=internal, shared_weights=internal).to(device)
        if internal:
            with torch.no_grad():
                ref.weight.copy_(tp.weight)
        x = o3.Irreps(i1).randn(args.rows, -1).to(device).requires_grad_()
        y = o3.Irreps(i2).randn(args.rows, -1).to(device).requires_grad_()
        w = torch.randn(args.rows, tp.weight_numel, device=device, requires_grad=True)
        call_args = (x, y) if internal else (x, y, w)
        peers = {"geomdl": tp, "e3nn": ref, "einsum": _Einsum(tp)}
        if kernel_peer:
            peers["kernel"] = _Kernel(tp)
        with torch.no_grad():
            mine = tp(*call_args)
            for name in others:
                err = float((peers[name](*call_args) - mine).abs().max() / mine.abs().max())
                if err > 1e-4:
                    raise SystemExit(f"{case}: {name} differs from geomdl by {err:.2e} (relative)")
        for pass_name in args.passes.split(","):
            fns = {name: _pass(m, call_args, pass_name) for name, m in peers.items()}
            res = measure_interleaved(fns, repeats=args.repeats, device=device)
            base = res["geomdl"]["median_ms"]
            row = {"case": case, "mode": mode, "pass": pass_name, "rows": args.rows, "C": args.channels,
                   "device": device.type, "sparse": tp._sparse, "geomdl_ms": base}
            for name in others:
                row[f"{name}_ms"] = res[name]["median_ms"]
                row[f"{name}_x"] = res[name]["median_ms"] / base
            row["geomdl_iqr_ms"] = res["geomdl"]["iqr_ms"]
            rows_out.append(row)
            print(f"{case:16s} {pass_name:17s} geomdl {base:8.2f} ms" + "".join(
                f"  {name} {row[name + '_ms']:8.2f} ({row[name + '_x']:.2f}x)" for name in others), flush=True)
    return rows_out
