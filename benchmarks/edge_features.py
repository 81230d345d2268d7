"""PaiNN and NequIP force-training steps with the edge features shared between layers, against every layer
computing its own (the peer, measured in the same run).

The molecular models compute the parameter-free edge inputs of their layers (edge vectors and lengths; PaiNN's
radial basis and cosine cutoff, NequIP's spherical harmonics and envelope) once per forward and pass them to
every layer with the same ``edge_key`` (:meth:`geomdl.nn.PaiNNLayer.edge_features`,
:meth:`geomdl.nn.EquivariantConv.edge_features`). The peer runs the same model with each layer computing them
itself (the layers' default without ``edge_features``), which is what the models did before. A step is
``energy_and_forces`` (forces with ``create_graph``), a loss on both and its backward pass, on ``--molecules``
9-atom molecules. Reported per model: aten operators per step (counted with a dispatch mode, forward, force
and backward passes), median ms per step of each side over ``--repeats`` interleaved rounds, and the median
per-round ratio shared/per-layer (below 1: sharing is faster).

    python -m benchmarks edge_features --threads 1 [--molecules 8] [--layers 3] [--repeats 15]
"""
from __future__ import annotations

import collections
import statistics

import torch

from benchmarks.timing import measure_interleaved, positive_int

HELP = "PaiNN / NequIP training step: edge features shared between layers vs computed per layer (ratio)"
MODELS = ("painn", "nequip_cg", "nequip_gaunt")


def add_arguments(parser) -> None:
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS, metavar="MODEL",
                        help=f"models (default all): {', '.join(MODELS)}")
    parser.add_argument("--molecules", type=positive_int, default=8, help="9-atom molecules per batch (default 8)")
    parser.add_argument("--layers", type=positive_int, default=3, help="interaction layers (default 3)")
    parser.add_argument("--repeats", type=positive_int, default=15, help="timed rounds (default 15)")
    parser.add_argument("--steps", type=positive_int, default=3, help="steps per timed call (default 3)")


def _model(name: str, layers: int):
    from geomdl.models.nequip import NequIP
    from geomdl.models.painn import PaiNN

    if name == "painn":
        return PaiNN(hidden_channels=32, num_layers=layers, num_elements=10, cutoff=4.0)
    return NequIP(hidden_channels=16, num_layers=layers, lmax=2, num_elements=10, cutoff=4.0, product=name.split("_")[1])


def _per_layer(model):
    """``node_outputs`` with every layer computing its own edge features (the peer)."""
    from geomdl.models.painn import PaiNN

    def node_outputs(h, pos, edge_index):
        if isinstance(model, PaiNN):
            v = h.new_zeros((h.shape[0], h.shape[1], 3))
            for layer in model.layers:
                h, v = layer(h, v, pos, edge_index)
            return model.head(h)
        for t, (conv, gate) in enumerate(zip(model.layers, model.gates)):
            out = gate(conv(h, pos, edge_index))
            h = out if t == 0 else h + out
        return model.head(h[:, :model._num_scalars])
    return node_outputs


def _count_ops(fn) -> int:
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.n = collections.Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.n[func] += 1
            return func(*args, **(kwargs or {}))

    with Count() as c:
        fn()
    return sum(c.n.values())


def run(args) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    n = args.molecules
    z = torch.tensor([6, 6, 8, 1, 1, 1, 1, 1, 1]).repeat(n)
    pos = torch.randn(9 * n, 3, generator=g) * 1.2
    batch = torch.arange(n).repeat_interleave(9)
    rows = []
    for name in args.models:
        torch.manual_seed(0)
        shared = _model(name, args.layers)
        own = _model(name, args.layers)
        own.load_state_dict(shared.state_dict())
        own.node_outputs = _per_layer(own)

        def step(model):
            def fn():
                for _ in range(args.steps):
                    e, f = model.energy_and_forces(z, pos, batch)
                    model.zero_grad(set_to_none=True)
                    (e.pow(2).mean() + f.pow(2).mean()).backward()
            return fn

        step(shared)(), step(own)()  # one-time work (product plans, caches) is not counted below
        with torch.no_grad():
            diff = float((shared(z, pos, batch) - own(z, pos, batch)).abs().max())
        ops = {side: _count_ops(lambda m=m: (lambda e_f: (e_f[0].pow(2).mean() + e_f[1].pow(2).mean()).backward())(
            m.energy_and_forces(z, pos, batch))) for side, m in (("shared", shared), ("per_layer", own))}
        t = measure_interleaved({"shared": step(shared), "per_layer": step(own)}, repeats=args.repeats, warmup=1)
        ratios = [a / b for a, b in zip(t["shared"]["times_ms"], t["per_layer"]["times_ms"])]
        rows.append({"model": name, "atoms": 9 * n, "layers": args.layers, "ops_shared": ops["shared"],
                     "ops_per_layer": ops["per_layer"], "shared_ms": t["shared"]["median_ms"] / args.steps,
                     "per_layer_ms": t["per_layer"]["median_ms"] / args.steps, "shared/per_layer": statistics.median(ratios),
                     "ratio_min": min(ratios), "ratio_max": max(ratios), "max_abs_energy_diff": diff})
    return rows
