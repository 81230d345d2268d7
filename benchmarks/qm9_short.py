"""Short CPU training runs on QM9: every model in ``MODELS`` gets the same data, target, optimiser
and compute budget; the table reports the validation MAE along the way and the test MAE reached.

Target (default ``U0``, eV): the per-element linear reference ``sum_i a_{z_i}`` (least squares on the
training molecules) is subtracted and the residual standardised; models regress the residual with an
L1 loss, and the reported MAE is that of the full target (the reference is exact, so the two MAEs are
equal). ``ref_only_mae_meV`` is the MAE of the reference alone: a model that learned nothing scores that.

Budget: ``--budget`` seconds per model of *process CPU time* (``time.process_time``), so that runs
on a shared machine get the same compute whatever the load (``--budget-clock wall`` for wall time).
The learning rate follows a cosine over the budget.

Add a model with one line in ``MODELS``: ``name: ("module:Class", {kwargs})``; the model is called as
``model(batch)`` on a ``torch_geometric`` batch with ``z, pos, batch`` and returns ``[B]`` or ``[B, 1]``.

    python -m benchmarks qm9_short [--budget 180] [--train 10000] [--target U0] [--threads 1]
"""
from __future__ import annotations

from benchmarks.timing import positive_float, positive_int

import importlib
import math
import time

import torch

HELP = "short CPU training runs on QM9 (qm9pack): MAE reached per model after a fixed budget"

# name -> (constructor "module:attr", kwargs); one line per model
MODELS = {
    "egnn": ("geomdl.models.egnn:EGNN", {"hidden_channels": 64, "num_layers": 4, "cutoff": 5.0, "num_rbf": 16}),
    "painn": ("geomdl.models.painn:PaiNN", {"hidden_channels": 64, "num_layers": 3, "cutoff": 5.0, "num_rbf": 20}),
    "ponita": ("geomdl.models.ponita:PonitaGraph", {"hidden": 64, "layers": 3, "num_ori": 8, "radius": 5.0}),
    "nequip": ("geomdl.models.nequip:NequIP", {"hidden_channels": 32, "num_layers": 3, "lmax": 2, "cutoff": 5.0}),
}


def add_arguments(parser) -> None:
    from geomdl.datasets.qm9 import TARGET_NAMES

    parser.add_argument("--models", nargs="+", default=None, choices=list(MODELS), metavar="MODEL",
                        help=f"models to train (default all: {', '.join(MODELS)})")
    parser.add_argument("--target", default="U0", choices=TARGET_NAMES, metavar="TARGET",
                        help="QM9 target name (default U0; see geomdl.datasets.qm9.TARGET_NAMES)")
    parser.add_argument("--budget", type=positive_float, default=180.0, help="seconds of training per model (default 180)")
    parser.add_argument("--budget-clock", choices=("cpu", "wall"), default="cpu", help="budget clock (default cpu: process CPU time)")
    parser.add_argument("--train", type=positive_int, default=10000, help="training molecules (default 10000)")
    parser.add_argument("--val", type=positive_int, default=1000, help="validation molecules for the curve (default 1000)")
    parser.add_argument("--test", type=positive_int, default=2000, help="test molecules for the final MAE (default 2000)")
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--lr", type=positive_float, default=5e-4)
    parser.add_argument("--evals", type=positive_int, default=6, help="validation points on the curve (default 6)")
    parser.add_argument("--root", default=None, help="QM9 root folder (default: the datasets default; qm9pack CSVs when absent)")
    parser.add_argument("--seed", type=int, default=0)


def load_qm9(args):
    """``(train, val, test)`` lists of ``Data(z, pos, y [1])`` for ``args.target`` (eV for energies)."""
    from torch_geometric.data import Data

    from geomdl.datasets.qm9 import QM9, TARGET_NAMES

    if args.target not in TARGET_NAMES:
        raise ValueError(f"--target must be one of {TARGET_NAMES}, got {args.target!r}")
    col = TARGET_NAMES.index(args.target)
    t0 = time.perf_counter()
    splits = {}
    for split, n in (("train", args.train), ("val", args.val), ("test", args.test)):
        ds = QM9(args.root, split=split, energy_unit="eV")
        g = torch.Generator().manual_seed(args.seed + {"train": 0, "val": 1, "test": 2}[split])
        idx = torch.randperm(len(ds), generator=g)[:n].tolist()
        splits[split] = [Data(z=ds[i].z, pos=ds[i].pos, y=ds[i].y[:, col]) for i in idx]
    print(f"QM9 target {args.target}: {len(splits['train'])} train / {len(splits['val'])} val / {len(splits['test'])} test "
          f"molecules ({time.perf_counter() - t0:.1f} s to load)", flush=True)
    return splits["train"], splits["val"], splits["test"]


def fit_reference(train, num_elements=10):
    """Least-squares per-element reference ``a [num_elements]``: ``y ~ sum_i a_{z_i}``."""
    counts = torch.stack([torch.bincount(d.z, minlength=num_elements).double() for d in train])
    y = torch.cat([d.y for d in train]).double()
    sol = torch.linalg.lstsq(counts, y.unsqueeze(1), driver="gelsd").solution[:, 0]
    return sol


def _reference_of(batch, ref):
    from geomdl.ops import scatter

    return scatter(ref.index_select(0, batch.z).unsqueeze(1), batch.batch, 0, batch.num_graphs)[:, 0]


def _build(name):
    target, kwargs = MODELS[name]
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)(**kwargs)


def evaluate(model, loader, ref, mean, std):
    model.eval()
    err, n = 0.0, 0
    with torch.no_grad():
        for batch in loader:
            pred = model(batch).reshape(-1).double() * std + mean + _reference_of(batch, ref)
            err += float((pred - batch.y.double()).abs().sum())
            n += batch.num_graphs
    model.train()
    return 1000.0 * err / max(n, 1)  # meV (for eV targets)


def train_one(name, data, args, ref, mean, std):
    from torch_geometric.loader import DataLoader

    train, val, test = data
    torch.manual_seed(args.seed)
    model = _build(name)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True)
    val_loader = DataLoader(val, batch_size=128)
    clock = time.process_time if args.budget_clock == "cpu" else time.perf_counter
    start, wall0 = clock(), time.perf_counter()
    marks = [args.budget * (k + 1) / args.evals for k in range(args.evals)]
    curve, steps, epoch, done = [], 0, 0, False
    while not done:
        epoch += 1
        for batch in loader:
            used = clock() - start
            if used >= args.budget:
                done = True
                break
            for group in opt.param_groups:
                group["lr"] = args.lr * 0.5 * (1.0 + math.cos(math.pi * used / args.budget))
            target = ((batch.y.double() - _reference_of(batch, ref) - mean) / std).float()
            loss = (model(batch).reshape(-1) - target).abs().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
            if marks and clock() - start >= marks[0]:
                marks.pop(0)
                mae = evaluate(model, val_loader, ref, mean, std)
                curve.append((round(clock() - start), epoch, steps, mae))
                print(f"  {name}: {clock() - start:6.0f} s  epoch {epoch:3d}  step {steps:6d}  train L1 {loss.item() * std:.4f}  "
                      f"val MAE {mae:8.1f} meV", flush=True)
    test_mae = evaluate(model, DataLoader(test, batch_size=128), ref, mean, std)
    print(f"  {name}: test MAE {test_mae:.1f} meV after {steps} steps ({epoch} epochs started), "
          f"{time.perf_counter() - wall0:.0f} s wall", flush=True)
    return {"model": name, "params": params, "budget_s": args.budget, "clock": args.budget_clock, "steps": steps,
            "epochs": epoch, "val_curve_meV": " ".join(f"{m:.0f}" for *_, m in curve), "test_mae_meV": test_mae}


def run(args) -> list[dict]:
    names = args.models or list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    data = load_qm9(args)
    ref = fit_reference(data[0])
    resid = torch.cat([d.y.double() for d in data[0]]) - torch.stack([ref[d.z].sum() for d in data[0]])
    mean, std = float(resid.mean()), float(resid.std())
    ref_only = {}
    for split, d in zip(("val", "test"), data[1:]):
        pred = torch.stack([ref[x.z].sum() for x in d]) + mean
        ref_only[split] = 1000.0 * float((pred - torch.cat([x.y.double() for x in d])).abs().mean())
    print(f"per-element reference + mean: test MAE {ref_only['test']:.1f} meV (the no-learning baseline); residual std {std * 1000:.1f} meV",
          flush=True)
    rows = [{"model": "reference_only", "params": 0, "test_mae_meV": ref_only["test"]}]
    for name in names:
        rows.append(train_one(name, data, args, ref, mean, std))
    for r in rows:
        r["ref_only_mae_meV"] = ref_only["test"]
    return rows
