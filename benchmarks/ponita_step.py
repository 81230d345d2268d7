"""CPU cost of one PONITA training step against EGNN, on the same QM9 batches.

The models are the ``qm9_short`` ones (:data:`benchmarks.qm9_short.MODELS`: PONITA with 64 channels,
3 layers, 8 orientations, radius 5 A; EGNN with 64 channels, 4 layers). A step is the forward pass,
an L1 loss against the standardised target and the backward pass (no optimiser step); every round
runs each model once over the same ``--batches`` batches, the models taking turns (interleaved), so
that a shared machine's load slows them alike. Reported per step: the median over ``--repeats`` rounds
of the process CPU time (``time.process_time``, the ``qm9_short`` budget clock; through
:func:`benchmarks.timing.measure_interleaved`) and the CPU-time ratio to EGNN.

    python -m benchmarks ponita_step --threads 1 [--batches 8] [--batch-size 32] [--repeats 7]
"""
from __future__ import annotations

import argparse
import functools
import statistics
import time

import torch

from benchmarks.timing import measure_interleaved, positive_int, nonnegative_int

HELP = "one qm9_short training step (forward + backward) of PONITA against EGNN: CPU ms per step and ratio"


def add_arguments(parser) -> None:
    from benchmarks.qm9_short import MODELS

    parser.add_argument("--models", nargs="+", default=["ponita", "egnn"], choices=list(MODELS), metavar="MODEL",
                        help=f"models (default ponita egnn; ratios are to egnn): {', '.join(MODELS)}")
    parser.add_argument("--batches", type=positive_int, default=8, help="QM9 batches per round (default 8)")
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--repeats", type=positive_int, default=7, help="timed rounds (default 7)")
    parser.add_argument("--warmup", type=nonnegative_int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--seed", type=int, default=0)


def _batches(args):
    from torch_geometric.loader import DataLoader

    from benchmarks.qm9_short import load_qm9

    ns = argparse.Namespace(target="U0", train=args.batches * args.batch_size, val=1, test=1, root=None, seed=args.seed)
    train, _, _ = load_qm9(ns)
    batches = list(DataLoader(train, batch_size=args.batch_size, shuffle=False))
    y = torch.cat([b.y for b in batches])
    mean, std = float(y.mean()), float(y.std())
    return [(b, ((b.y - mean) / std).float()) for b in batches]


def _step(model, batches):
    """One forward + backward per batch; returns the last loss."""
    for batch, target in batches:
        loss = (model(batch).reshape(-1) - target).abs().mean()
        model.zero_grad(set_to_none=True)
        loss.backward()
    return float(loss.detach())


def run(args) -> list[dict]:
    from benchmarks.qm9_short import _build

    batches = _batches(args)
    models = {}
    for name in args.models:
        torch.manual_seed(args.seed)
        models[name] = _build(name)
    timed = measure_interleaved({name: functools.partial(_step, model, batches) for name, model in models.items()},
                                repeats=args.repeats, warmup=args.warmup, clock=time.process_time)
    per_step = {name: t["median_ms"] / len(batches) for name, t in timed.items()}
    nodes = statistics.mean(b.num_nodes for b, _ in batches)
    base = per_step.get("egnn")
    return [{"model": name, "params": sum(p.numel() for p in model.parameters()), "atoms_per_batch": nodes,
             "cpu_ms_per_step": per_step[name], "cpu_iqr_ms": timed[name]["iqr_ms"] / len(batches),
             "cpu_ratio_vs_egnn": None if base is None else per_step[name] / base, "threads": torch.get_num_threads()}
            for name, model in models.items()]
