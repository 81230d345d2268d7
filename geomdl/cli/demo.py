"""``geomdl demo``: the main job on built-in data, one stage per capability.

Every stage is a function ``run(out_dir: pathlib.Path, quick: bool, seed: int = 0) -> dict`` that does real
work on built-in (generated) data, prints what it measured and returns it; ``seed`` (``--seed``) seeds its
data, models and training (its generators use ``seed``, ``seed + 1``, ...). Stages are listed in
``STAGES`` as ``(name, "module:function")`` and run in order; ``--only`` picks some.
"""
from __future__ import annotations

import importlib
import pathlib
import sys
import time

HELP = "run the main job on built-in data (every capability, small sizes)"

STAGES: list[tuple[str, str]] = [
    ("ops", "geomdl.pipelines.demo_ops:run"),
    ("datasets", "geomdl.pipelines.demo_datasets:run"),
    ("train", "geomdl.pipelines.demo_train:run"),
    ("classification", "geomdl.pipelines.demo_tinvnn:run"),
    ("layers", "geomdl.pipelines.demo_layers:run"),
    ("molecular", "geomdl.pipelines.demo_molecular:run"),
    ("segmentation", "geomdl.pipelines.demo_segmentation:run"),
    ("registration", "geomdl.pipelines.registration.demo:run"),
]


def add_arguments(parser) -> None:
    parser.add_argument("--out", default="demo_out", help="folder for the demo's outputs (default: demo_out)")
    parser.add_argument("--only", nargs="+", metavar="STAGE", help=f"run only these stages ({', '.join(n for n, _ in STAGES)})")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (used by the tests)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every stage's generated data, models and training, "
                        "an int in [0, 2**31) (default 0); the real-data samples of the datasets stage are read as they are")


def run(args) -> int:
    import torch

    from geomdl.cli import CommandError

    names = [n for n, _ in STAGES]
    selected = args.only or names
    unknown = [s for s in selected if s not in names]
    if unknown:
        raise CommandError(f"unknown stage(s) {unknown}; choose from {names}")
    if not 0 <= args.seed < 2 ** 31:  # the stages derive their seeds from it (seed + 1, NumPy's 32-bit seeds, ...)
        raise CommandError(f"--seed must be an int in [0, 2**31), got {args.seed}")
    if not str(args.out).strip():
        raise CommandError("--out: empty path; give a folder for the demo's outputs (default demo_out)")
    out_dir = pathlib.Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise CommandError(f"--out {args.out}: is a file, expected a folder for the demo's outputs")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"--out {args.out}: cannot create the folder ({exc.strerror or exc})") from None
    # the file holds the stages of the last run that finished: an earlier run's goes first, so that a run that
    # fails or is interrupted never leaves it beside this run's partial outputs
    (out_dir / "demo_results.json").unlink(missing_ok=True)
    results = {}
    for name, target in STAGES:
        if name not in selected:
            continue
        torch.manual_seed(args.seed)
        module, func = target.split(":")
        print(f"== demo stage: {name}", flush=True)
        t0 = time.perf_counter()
        results[name] = getattr(importlib.import_module(module), func)(out_dir, args.quick, seed=args.seed)
        print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)
        sys.stdout.flush()
    from geomdl.utils.io import atomic_write_json

    try:  # strict JSON: a non-finite measurement is written as null
        atomic_write_json(out_dir / "demo_results.json", results, indent=2, default=str)
    except OSError as exc:
        raise CommandError(f"cannot write {exc.filename or out_dir / 'demo_results.json'}: {exc.strerror or exc}") from exc
    print(f"results written to {out_dir / 'demo_results.json'}")
    return 0
