"""TinvNN TSP experiment: optimality gap of an invariant neural TSP solver vs a coordinate-based one,
on random Euclidean instances as they are and under random rotation/reflection/translation/scaling.

Exact optima from Held-Karp; references: nearest neighbour and nearest neighbour + 2-opt/or-opt.
Default recipe (n = 12, 2000 training instances, 20 epochs) takes a few minutes on 2 CPU cores.
"""
from __future__ import annotations

from benchmarks.timing import _number_type, positive_int

cities = _number_type(int, lambda v: 3 <= v <= 16, "an integer from 3 to 16", "cities",
                      "argparse ``type``: cities per instance, an integer from 3 (a tour needs three) to 16 (the most "
                      ":func:`~geomdl.pipelines.tsp.solvers.held_karp` solves, O(2^n n^2)).")

HELP = "TinvNN TSP: optimality gaps of invariant vs raw-coordinate edge-scoring networks"


def add_arguments(parser) -> None:
    parser.add_argument("--n", type=cities, default=12, help="cities per instance, 3 to 16 (Held-Karp solves the references; practical up to 14; default 12)")
    parser.add_argument("--num-train", type=positive_int, default=2000, help="training instances (default 2000)")
    parser.add_argument("--num-test", type=positive_int, default=200, help="test instances (default 200)")
    parser.add_argument("--epochs", type=positive_int, default=20, help="training epochs (default 20)")
    parser.add_argument("--hidden", type=positive_int, default=64, help="hidden width (default 64)")
    parser.add_argument("--layers", type=positive_int, default=4, help="gated layers (default 4)")
    parser.add_argument("--seed", type=int, default=0)


def run(args) -> list[dict]:
    from geomdl.pipelines.tsp.experiment import run_experiment

    result = run_experiment(n=args.n, num_train=args.num_train, num_test=args.num_test, epochs=args.epochs, seed=args.seed,
                            hidden_channels=args.hidden, num_layers=args.layers)
    print(f"setup: {result['setup']}")
    print(f"TinvNN invariance: {result['invariance']}")
    print("timings (s): " + ", ".join(f"{k}={v:.1f}" for k, v in result["timings"].items()))
    inv = result["invariance"]
    check = {"solver": "TinvNN original vs transformed", "test_set": "-", "max_abs_logit_change": inv["max_abs_logit_change_float32"],
             "identical_tours_pct": 100 * inv["share_identical_tours"]}
    return [{**row, "n": args.n} for row in result["rows"]] + [check]
