"""PONITA on the charged 5-particle N-body forecasting task (data simulated by geomdl, EGNN setting):
test MSE of positions 1000 steps ahead, beside the linear baselines measured on the same data.

    python -m benchmarks nbody --threads 1                  # 3000/2000/2000 systems, O=16, 35 min of training
    python -m benchmarks nbody --quick                      # smoke run
"""
from __future__ import annotations

import pathlib
import time

import torch

from benchmarks.timing import _number_type, nonnegative_float, nonnegative_int, positive_float, positive_int, quick_settings

decay = _number_type(float, lambda v: 0 <= v < 1, "a number in [0, 1)", "decay",
                     "argparse ``type``: an EMA decay in [0, 1) (0: off; ``--ema 1`` would never move the weights).")

HELP = "PONITA N-body (charged, 5 particles): test position MSE vs linear baselines"
CACHE = pathlib.Path(__file__).resolve().parent / "results" / "nbody_cache"


def add_arguments(parser) -> None:
    parser.add_argument("--train", type=positive_int, default=3000)
    parser.add_argument("--val", type=positive_int, default=2000, help="validation systems (default 2000, as EGNN)")
    parser.add_argument("--test", type=positive_int, default=2000)
    parser.add_argument("--epochs", type=positive_int, default=10000)
    parser.add_argument("--time-budget", type=positive_float, default=2100.0, help="training seconds (cosine schedule over it)")
    parser.add_argument("--batch-size", type=positive_int, default=100)
    parser.add_argument("--lr", type=positive_float, default=3e-3)
    parser.add_argument("--hidden", type=positive_int, default=64)
    parser.add_argument("--layers", type=positive_int, default=4)
    parser.add_argument("--num-ori", type=positive_int, default=16, help="orientations of the repulsion grid (default 16)")
    parser.add_argument("--basis-dim", type=positive_int, default=32)
    parser.add_argument("--widening", type=positive_int, default=2)
    parser.add_argument("--eval-every", type=positive_int, default=10)
    parser.add_argument("--weight-decay", type=nonnegative_float, default=1e-10, help="AdamW decoupled weight decay (default 1e-10, PONITA's)")
    parser.add_argument("--no-flip-charges", action="store_true",
                        help="train without the charge-flip augmentation (q -> -q of whole systems, an exact symmetry)")
    parser.add_argument("--ema", type=decay, default=0.999, help="validate and keep an EMA of the weights with this decay (0: off)")
    parser.add_argument("--test-rotations", type=nonnegative_int, default=8,
                        help="also report the test MSE of predictions averaged over this many random rotations (0: off)")
    parser.add_argument("--checkpoint", default="benchmarks/results/nbody.pt", help="where to save the trained model ('' = don't)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=str(CACHE), help="folder for the simulated data")
    parser.add_argument("--quick", action="store_true")


def run(args) -> list[dict]:
    from geomdl.datasets.nbody import nbody_split
    from geomdl.nn.ponita import Ponita, count_parameters
    from geomdl.pipelines.nbody import evaluate_nbody, train_nbody

    if args.quick:  # (options given on the command line stay as given: --cache, --checkpoint too)
        quick_settings(args, train=100, val=50, test=50, epochs=2, time_budget=None, cache=None, checkpoint="")
    torch.manual_seed(args.seed)
    cache = args.cache
    data = {s: nbody_split(s, n, cache) for s, n in (("train", args.train), ("val", args.val), ("test", args.test))}
    test = data["test"]
    rows = []
    static = float((test["pos"] - test["target"]).pow(2).mean())
    tr = data["train"]
    a = float(((tr["target"] - tr["pos"]) * tr["vel"]).sum() / tr["vel"].pow(2).sum())
    linear = float((test["pos"] + a * test["vel"] - test["target"]).pow(2).mean())
    rows.append({"model": "static x(t) = x(0)", "test_mse": static})
    rows.append({"model": f"linear x + a v (a={a:.3f} fitted on train)", "test_mse": linear})
    model = Ponita(2, out_scalars=0, out_vectors=1, in_vectors=1, hidden=args.hidden, layers=args.layers, num_ori=args.num_ori,
                   basis_dim=args.basis_dim, widening=args.widening, task_level="node", layer_scale=1e-6)
    print(f"N-body: {args.train}/{args.val}/{args.test} systems; PONITA num_ori={args.num_ori} hidden={args.hidden} "
          f"layers={args.layers}, {count_parameters(model)} parameters")
    t0 = time.perf_counter()
    result = train_nbody(model, data["train"], data["val"], epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         weight_decay=args.weight_decay, flip_charges=not args.no_flip_charges, ema_decay=args.ema or None,
                         time_budget=args.time_budget, eval_every=args.eval_every, seed=args.seed)
    train_s = time.perf_counter() - t0
    if args.checkpoint:
        from geomdl.utils.io import atomic_torch_save

        atomic_torch_save({"kind": "Ponita", "args": vars(args), "state_dict": result["model"].state_dict()}, args.checkpoint)
    epochs = len(result["epoch_times"])
    common = {"params": count_parameters(model), "epochs": epochs, "train_s": train_s,
              "epoch_s": sum(result["epoch_times"]) / epochs,
              "best_val_mse": min((h["val_mse"] for h in result["history"] if "val_mse" in h), default=None)}
    rows.append({"model": "ponita", "test_mse": evaluate_nbody(result["model"], test), **common})
    if args.test_rotations:
        mse = evaluate_nbody(result["model"], test, rotations=args.test_rotations, seed=args.seed)
        rows.append({"model": f"ponita, {args.test_rotations} rotations averaged", "test_mse": mse, **common})
    return rows
