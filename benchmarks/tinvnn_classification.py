"""TinvNN rotated classification recipe: the same backbone with and without TinvNN on built-in shapes,
trained with z rotations (evaluated z/z and z/SO3) and with SO3 rotations (evaluated SO3/SO3).

Three training runs (four with ``--raw-so3``) of the bundled config ``tinvnn_shapes`` through the training engine (``geomdl train``);
accuracies are read from the test split. Binomial standard errors ``sqrt(p (1 - p) / n_test)`` are
reported as the noise level. Default recipe: about 10-15 minutes on 2 CPU cores.
"""
from __future__ import annotations

import math
import pathlib
import time

from benchmarks.timing import check_config

HELP = "TinvNN: z/z, z/SO3, SO3/SO3 accuracy of a backbone with and without TinvNN on built-in shapes"


def add_arguments(parser) -> None:
    parser.add_argument("--config", default="tinvnn_shapes", help="base config: a YAML file or a bundled name (default tinvnn_shapes)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra config overrides for every run")
    parser.add_argument("--out-dir", default="runs/bench_tinvnn_classification", help="run folders (default runs/bench_tinvnn_classification)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run, not a measurement)")
    parser.add_argument("--raw-so3", action="store_true", help="also train the raw backbone with SO3 rotations (SO3/SO3 baseline)")


def _runs(raw_so3: bool):
    runs = [("TinvNN", True, "z"), ("TinvNN", True, "so3"), ("raw", False, "z")]
    return runs + ([("raw", False, "so3")] if raw_so3 else [])


def run(args) -> list[dict]:
    from geomdl.pipelines.runs import train

    out = pathlib.Path(args.out_dir)
    extra = ["train.final_weights=last"]  # end-of-training weights, as for the README's numbers
    if args.quick:  # before --set, which wins (--quick --set train.epochs=3 trains 3 epochs)
        extra += ["train.epochs=2", "data.kwargs.num_per_class=4", "train.eval_every=1"]
    extra += args.set
    runs = {(name, train_rot): [f"task.kwargs.tinvnn={str(tinvnn).lower()}", f"task.kwargs.train_rotation={train_rot}",
                                f"train.out_dir={out / f'{name}_{train_rot}'}", "train.tensorboard=false",
                                "train.progress=off", *extra]
            for name, tinvnn, train_rot in _runs(args.raw_so3)}
    for overrides in runs.values():  # a bad --set is a one-line usage error, not a traceback
        check_config(args.config, overrides)
    results = {}
    for (name, train_rot), overrides in runs.items():
        t0 = time.perf_counter()
        summary = train(args.config, overrides, overwrite=True)
        results[(name, train_rot)] = (summary["metrics"]["test"], time.perf_counter() - t0, summary)
        print(f"{name} trained with {train_rot}: {time.perf_counter() - t0:.0f} s, test {summary['metrics']['test']}", flush=True)
    rows = []
    for name in ("TinvNN", "raw"):
        for protocol, train_rot, key in (("z/z", "z", "z"), ("z/SO3", "z", "so3"), ("SO3/SO3", "so3", "so3")):
            if (name, train_rot) not in results:
                continue
            test, seconds, _ = results[(name, train_rot)]
            acc = test[f"accuracy_{key}"]
            n_test = int(test["num_samples"])
            rows.append({"model": name, "protocol": protocol, "accuracy": acc,
                         "class_mean_accuracy": test[f"class_mean_accuracy_{key}"],
                         "std_err": math.sqrt(acc * (1 - acc) / n_test) if n_test else None,
                         "n_test": n_test, "train_s": seconds})
    raw_time = results[("raw", "z")][1]
    for row in rows:
        row["train_time_vs_raw_z"] = row["train_s"] / raw_time
    return rows
