"""PONITA energy/force accuracy on 3BPA (300 K, 500 frames) and time per epoch beside an e3nn
NequIP-style model of similar size, measured in the same run.

Recipe (defaults): shuffle the 500 frames with ``--seed``, hold out ``--holdout`` (50) for testing,
train on the rest; fiber-bundle PONITA (``--num-ori`` orientations, repulsion grid), radius graph
with a smooth window, float32, Adam + warm-up + cosine schedule, EMA, rotation augmentation; test
force MAE/RMSE (meV/A) and energy MAE/RMSE (meV) on the held-out frames, with and without averaging
over ``--test-rotations`` random rotations.

    python -m benchmarks ponita_3bpa --threads 1            # full recipe (1 h of training)
    python -m benchmarks ponita_3bpa --quick                # a smoke run (minutes)

Later phases (warm restarts of the schedule) continue from the saved potential; the reported epochs
and training time then include the earlier phases'. The measured recipe (README, PONITA) is three phases,
514 epochs and 4.0 h of training in all, ending at a held-out force MAE of 14.9 meV/A:

    python -m benchmarks ponita_3bpa --threads 1 --time-budget 5400
    python -m benchmarks ponita_3bpa --threads 1 --no-baseline --init benchmarks/results/ponita_3bpa.pt --lr 1e-3 --time-budget 1200
    python -m benchmarks ponita_3bpa --threads 1 --no-baseline --init benchmarks/results/ponita_3bpa.pt --lr 2e-3 --time-budget 7700
"""
from __future__ import annotations

import os
import pathlib
import pickle
import time

import torch

from benchmarks.timing import nonnegative_float, nonnegative_int, positive_float, positive_int, quick_settings

HELP = "PONITA on 3BPA: held-out force/energy MAE and time per epoch vs an e3nn NequIP-style model"
SHARED_DATA = pathlib.Path(os.environ.get("GEOMDL_SHARED_DATA", pathlib.Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
DEFAULT_DATA = SHARED_DATA / "3bpa" / "dataset_3BPA" / "train_300K.xyz"  # as benchmarks/registration.py finds its data


def add_arguments(parser) -> None:
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="extxyz with energies (eV) and forces (eV/A)")
    parser.add_argument("--holdout", type=positive_int, default=50, help="held-out test frames (default 50)")
    parser.add_argument("--epochs", type=positive_int, default=1000, help="maximum number of epochs (default 1000)")
    parser.add_argument("--time-budget", type=positive_float, default=3600.0,
                        help="training seconds; the cosine schedule follows the elapsed fraction (default 3600)")
    parser.add_argument("--batch-size", type=positive_int, default=4)
    parser.add_argument("--lr", type=positive_float, default=5e-3)
    parser.add_argument("--hidden", type=positive_int, default=64)
    parser.add_argument("--layers", type=positive_int, default=4)
    parser.add_argument("--num-ori", type=positive_int, default=12)
    parser.add_argument("--grid", default="repulsion", choices=["fibonacci", "repulsion"])
    parser.add_argument("--basis-dim", type=positive_int, default=32)
    parser.add_argument("--widening", type=positive_int, default=2)
    parser.add_argument("--radius", type=positive_float, default=5.0)
    parser.add_argument("--forces-weight", type=nonnegative_float, default=100.0)
    parser.add_argument("--test-rotations", type=nonnegative_int, default=8)
    parser.add_argument("--eval-every", type=positive_int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default="benchmarks/results/ponita_3bpa.pt", help="where to save the trained potential")
    parser.add_argument("--no-baseline", action="store_true", help="skip the NequIP-style timing")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--init", default=None,
                        help="continue from a potential saved by --checkpoint (its model settings win over the CLI's)")


def _time_per_epoch(model, frames, batch_size, n_train, repeats=3):
    """Median time of one training step (forces with create_graph) x steps per epoch."""
    from benchmarks.timing import measure
    from geomdl.pipelines.molecular import collate

    batch = collate(frames[:batch_size])
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    model.train()

    def step():
        out = model(batch.z, batch.pos, batch.batch, batch.num_graphs)
        loss = (out["energy"] - batch.energy).pow(2).mean() * 0 + out["forces"].pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    t = measure(step, repeats=repeats, warmup=1)
    return t["median_ms"] / 1000 * (n_train / batch_size)


def _load_init(path: str) -> dict:
    """The potential saved by ``--checkpoint`` at ``path``; a missing, unreadable or foreign file is a one-line
    error naming ``--init`` (it was a traceback)."""
    try:
        saved = torch.load(path, weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise SystemExit(f"--init {path}: cannot read it ({type(exc).__name__}: {exc})") from None
    if not isinstance(saved, dict) or saved.get("kind") != "PonitaPotential" or "config" not in saved:
        raise SystemExit(f"--init {path}: not a PonitaPotential checkpoint saved by this benchmark's --checkpoint")
    return saved


def _read(path: str) -> list:
    """The frames of ``--data``; a missing or unreadable file is a one-line error naming the option."""
    from geomdl.pipelines.molecular import read_frames

    try:
        return read_frames(path)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"--data: {exc}") from None  # read_frames names the file


def run(args) -> list[dict]:
    from geomdl.nn.ponita import PonitaPotential, count_parameters
    from geomdl.pipelines.molecular import evaluate_potential, train_potential
    from geomdl.utils.allocator import keep_freed_memory
    from geomdl.utils.io import atomic_torch_save

    saved = _load_init(args.init) if args.init else None  # a bad --init fails before the data are read
    keep_freed_memory()  # as train_potential does: the timings below and the training see the same allocator
    torch.manual_seed(args.seed)
    frames = _read(args.data)
    if args.holdout >= len(frames):
        raise SystemExit(f"--holdout {args.holdout}: leaves no training frame ({len(frames)} frames in --data {args.data})")
    perm = torch.randperm(len(frames), generator=torch.Generator().manual_seed(args.seed)).tolist()
    test = [frames[i] for i in perm[:args.holdout]]
    train = [frames[i] for i in perm[args.holdout:]]
    if args.quick:  # 20 training and 10 test frames; options given on the command line stay as given
        train, test = train[:20], test[:10]
        quick_settings(args, epochs=2, test_rotations=2, time_budget=None, checkpoint="")  # (an explicit --checkpoint saves)
    numbers = sorted({int(z) for f in frames for z in f.z.tolist()})
    kwargs = dict(hidden=args.hidden, layers=args.layers, num_ori=args.num_ori, grid=args.grid, basis_dim=args.basis_dim,
                  widening=args.widening, radius=args.radius)
    previous = {"epochs": 0, "train_s": 0.0}
    if args.init:
        config = dict(saved["config"])
        if sorted(config.pop("atomic_numbers")) != numbers:
            raise SystemExit(f"--init {args.init}: trained on other elements than {numbers}")
        kwargs = config
        previous = {k: saved.get(k, previous[k]) for k in previous}
    model = PonitaPotential(numbers, **kwargs)
    if args.init:
        model.load_state_dict(saved["state_dict"])
    print(f"3BPA: {len(train)} train / {len(test)} held-out frames; PONITA {kwargs}, {count_parameters(model)} parameters")
    rows = []
    if not args.no_baseline:
        from benchmarks.nequip_baseline import NequIPStyle

        class Peer(torch.nn.Module):  # adapt the call signature
            def __init__(self):
                super().__init__()
                self.net = NequIPStyle(num_types=len(numbers), channels=32, layers=3, lmax=2, cutoff=args.radius)
                self.register_buffer("type_map", torch.zeros(119, dtype=torch.long))
                self.type_map[torch.tensor(numbers)] = torch.arange(len(numbers))

            def forward(self, z, pos, batch, num_graphs):
                return self.net(self.type_map[z], pos, batch, num_graphs)

        peer = Peer()
        t_ponita = _time_per_epoch(PonitaPotential(numbers, **kwargs), train, args.batch_size, len(train))
        t_peer = _time_per_epoch(peer, train, args.batch_size, len(train))
        rows.append({"model": "ponita", "params": count_parameters(model), "epoch_s": t_ponita, "ratio_vs_nequip": t_ponita / t_peer})
        rows.append({"model": "nequip_style_e3nn", "params": count_parameters(peer), "epoch_s": t_peer, "ratio_vs_nequip": 1.0})
        print(f"time per epoch (estimated from median step): PONITA {t_ponita:.1f} s, NequIP-style {t_peer:.1f} s")
    t0 = time.perf_counter()
    result = train_potential(model, train, test, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                             forces_weight=args.forces_weight, eval_every=args.eval_every, seed=args.seed,
                             time_budget=args.time_budget)
    train_s = time.perf_counter() - t0
    final = result["model"]
    if args.checkpoint:
        atomic_torch_save({"kind": "PonitaPotential", "config": final.config, "state_dict": final.state_dict(),
                           "epochs": previous["epochs"] + len(result["epoch_times"]), "train_s": previous["train_s"] + train_s},
                          args.checkpoint)
    plain = evaluate_potential(final, test)
    rotated = evaluate_potential(final, test, rotations=args.test_rotations)
    epochs_done = len(result["epoch_times"])
    for name, m in (("held-out", plain), (f"held-out, {args.test_rotations} rotations averaged", rotated)):
        rows.append({"model": "ponita", "eval": name, "epochs": epochs_done, "train_s": train_s, "init": args.init,
                     "previous_epochs": previous["epochs"], "previous_train_s": previous["train_s"],
                     "measured_epoch_s": sum(result["epoch_times"]) / epochs_done,
                     "forces_mae_meV_A": m["forces_mae"], "forces_rmse_meV_A": m["forces_rmse"],
                     "energy_mae_meV": m["energy_mae"], "energy_rmse_meV": m["energy_rmse"],
                     "stopped_early": result["stopped_early"]})
    return rows
