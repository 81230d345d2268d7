"""The all-pairs graph of molecular models without a cutoff (``cutoff=None``): the vectorised
:func:`geomdl.models._molecular.full_graph` against the per-graph Python loop it replaced (the peer, kept here
and measured in the same run), alone and inside an EGNN force-training step.

Rows per batch size (``--graphs`` molecules of ``--atoms`` atoms): ``graph`` (building ``edge_index`` only) and
``egnn_step`` (``EGNN(cutoff=None).energy_and_forces``, a loss on both and its backward pass); median ms of each
side over ``--repeats`` interleaved rounds and the median per-round ratio vectorised/loop (below 1: faster).
Both sides give the same edges in the same order (checked).

    python -m benchmarks full_graph --threads 1 [--graphs 8 32 128] [--atoms 9] [--repeats 15]
"""
from __future__ import annotations

import statistics

import torch

from benchmarks.timing import measure_interleaved, positive_int

HELP = "all-pairs molecular graph (cutoff=None): vectorised full_graph vs the per-graph loop, alone and in an EGNN step"


def add_arguments(parser) -> None:
    parser.add_argument("--graphs", type=positive_int, nargs="+", default=[8, 32, 128], help="molecules per batch")
    parser.add_argument("--atoms", type=positive_int, default=9, help="atoms per molecule (default 9)")
    parser.add_argument("--repeats", type=positive_int, default=15, help="timed rounds (default 15)")
    parser.add_argument("--calls", type=positive_int, default=5, help="calls per timed round (default 5)")


def full_graph_loop(batch: torch.Tensor) -> torch.Tensor:
    """The per-graph loop (one ``meshgrid`` per molecule) that ``full_graph`` replaced: the peer."""
    counts = torch.bincount(batch) if batch.numel() else batch.new_zeros(0)
    ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    src, dst = [], []
    for b, n in enumerate(counts.tolist()):
        if n < 2:
            continue
        ar = torch.arange(n, device=batch.device) + int(ptr[b])
        i, j = torch.meshgrid(ar, ar, indexing="ij")
        keep = i != j
        src.append(j[keep])
        dst.append(i[keep])
    if not src:
        return batch.new_zeros((2, 0))
    return torch.stack([torch.cat(src), torch.cat(dst)])


def run(args) -> list[dict]:
    import geomdl.models._molecular as molecular
    from geomdl.models.egnn import EGNN

    vectorised = molecular.full_graph
    rows = []
    try:
        for graphs in args.graphs:
            batch = torch.arange(graphs).repeat_interleave(args.atoms)
            if not torch.equal(vectorised(batch), full_graph_loop(batch)):
                raise AssertionError("full_graph and the per-graph loop disagree")
            torch.manual_seed(0)
            model = EGNN(hidden_channels=32, num_layers=3, num_elements=10, cutoff=None)
            z = torch.randint(1, 9, (batch.numel(),))
            pos = torch.randn(batch.numel(), 3)

            def graph(fn):
                return lambda: [fn(batch) for _ in range(args.calls)]

            def step(fn):
                def go():
                    molecular.full_graph = fn
                    for _ in range(args.calls):
                        e, f = model.energy_and_forces(z, pos, batch)
                        model.zero_grad(set_to_none=True)
                        (e.pow(2).mean() + f.pow(2).mean()).backward()
                return go

            for what, make in (("graph", graph), ("egnn_step", step)):
                t = measure_interleaved({"vectorised": make(vectorised), "loop": make(full_graph_loop)},
                                        repeats=args.repeats, warmup=1)
                ratios = [a / b for a, b in zip(t["vectorised"]["times_ms"], t["loop"]["times_ms"])]
                rows.append({"what": what, "graphs": graphs, "atoms": batch.numel(), "edges": graphs * args.atoms * (args.atoms - 1),
                             "vectorised_ms": t["vectorised"]["median_ms"] / args.calls, "loop_ms": t["loop"]["median_ms"] / args.calls,
                             "vectorised/loop": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios)})
    finally:
        molecular.full_graph = vectorised
    return rows
