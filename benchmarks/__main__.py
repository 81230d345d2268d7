"""``python -m benchmarks NAME [options]``: run one benchmark, print a table, write JSON.

Each benchmark is a module ``benchmarks/<name>.py`` with ``HELP``, ``add_arguments(parser)`` and
``run(args) -> list[dict]`` (one row per measurement). Results go to
``benchmarks/results/<name>.json`` (or ``--out``) with the environment they were measured in.
"""
from __future__ import annotations

import argparse
import importlib
import pathlib
import sys
import time

BENCHMARKS = {
    "tinvnn_tsp": "benchmarks.tinvnn_tsp",
    "tinvnn_classification": "benchmarks.tinvnn_classification",
    "tinvnn_embedding": "benchmarks.tinvnn_embedding",
    "ops": "benchmarks.ops",
    "registration": "benchmarks.registration",
    "registration_train_descriptor": "benchmarks.registration_train_descriptor",
    "registration_refine": "benchmarks.registration_refine",
    "ponita_3bpa": "benchmarks.ponita_3bpa",
    "nbody": "benchmarks.nbody",
    "ponita_grid": "benchmarks.ponita_grid",
    "layers": "benchmarks.layers",
    "qm9_short": "benchmarks.qm9_short",
    "ponita_step": "benchmarks.ponita_step",
    "trainer": "benchmarks.trainer",
    "tensor_product": "benchmarks.tensor_product",
    "cg_product": "benchmarks.cg_product",
    "apen_segmentation": "benchmarks.apen_segmentation",
    "compile": "benchmarks.compile",
    "memory": "benchmarks.memory",
    "edge_features": "benchmarks.edge_features",
    "full_graph": "benchmarks.full_graph",
}

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def write_json(path: pathlib.Path, payload: dict) -> None:
    """Write ``payload`` to ``path`` atomically (:func:`geomdl.utils.io.atomic_write_json`: a temporary file
    next to it, then a rename), so an interrupted run leaves the previous results file, never a half-written one.

    The file is strict JSON: a non-finite measurement (a failed or skipped row's NaN) is written as ``null``;
    numpy and torch scalars as numbers, other objects as ``str(obj)``."""
    from geomdl.utils.io import atomic_write_json

    atomic_write_json(path, payload, indent=2, default=str)


def print_table(rows: list[dict]) -> None:
    if not rows:
        print("(no rows)")
        return
    cols = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return "" if v is None else str(v)

    cells = [[fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))


def given_options(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The ``dest`` of every option of ``parser`` that ``argv`` (a benchmark's own arguments) sets explicitly.

    Parsed again into a namespace holding a sentinel for each option: argparse applies a default only where the
    namespace has no value, so what still holds the sentinel was not given (abbreviations such as ``--epoch 3``
    for ``--epochs`` count as given, as argparse reads them)."""
    unset = object()
    # append/extend/count options add to what the namespace holds: None for them (an empty list, a zero count)
    accumulating = {a.dest for a in parser._actions
                    if isinstance(a, (argparse._AppendAction, argparse._ExtendAction, argparse._CountAction))}
    namespace = argparse.Namespace(**{a.dest: None if a.dest in accumulating else unset
                                      for a in parser._actions if a.dest != argparse.SUPPRESS})
    parser.parse_known_args(argv, namespace=namespace)
    return {k for k, v in vars(namespace).items() if v is not unset and not (k in accumulating and v is None)}


def main(argv=None) -> int:
    from benchmarks.timing import positive_int

    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="name", metavar="NAME", required=True)
    unavailable, subparsers = {}, {}
    for name, module in BENCHMARKS.items():
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:  # one missing/broken benchmark must not disable the others
            unavailable[name] = exc
            sub.add_parser(name, help=f"(unavailable: {exc})")
            continue
        p = subparsers[name] = sub.add_parser(name, help=getattr(mod, "HELP", ""))
        p.add_argument("--out", help=f"JSON output path (default benchmarks/results/{name}.json)")
        threads = p.add_argument("--threads", type=positive_int, default=None)
        mod.add_arguments(p)  # may set its own default (ops: 2)
        default_threads = p.get_default("threads")
        threads.help = "torch threads (default: " + (f"{default_threads})" if default_threads else "torch's default)")
    args, extra = parser.parse_known_args(argv)
    if args.name in unavailable:  # its options are unknown: say why rather than "unrecognized arguments"
        raise SystemExit(f"benchmark {args.name} is unavailable: {unavailable[args.name]}")
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    given = list(sys.argv[1:] if argv is None else argv)
    args.given = given_options(subparsers[args.name], given[given.index(args.name) + 1:])  # see timing.quick_settings
    import torch

    from benchmarks.timing import environment

    if args.threads:
        torch.set_num_threads(args.threads)
    out = pathlib.Path(args.out) if args.out else RESULTS / f"{args.name}.json"
    _check_out(out)  # before the run: a long run must not end in a traceback that loses its results
    mod = importlib.import_module(BENCHMARKS[args.name])
    t0 = time.time()
    rows = mod.run(args)
    print_table(rows)
    payload = {"benchmark": args.name, "argv": sys.argv[1:] if argv is None else argv, "environment": environment(),
               "wall_s": time.time() - t0, "rows": rows}
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_json(out, payload)
    except OSError as exc:
        raise SystemExit(f"--out {out}: cannot write the results ({exc}); the table above is all that remains") from None
    print(f"\nwrote {out}")
    return 0


def _check_out(out: pathlib.Path) -> None:
    """Exit with a usage message when ``out`` cannot become the results file (a folder, or below a file)."""
    from geomdl.utils.io import file_in_the_way

    if out.is_dir():
        raise SystemExit(f"--out {out} is a folder; give a file name, e.g. {out / 'results.json'}")
    blocker = file_in_the_way(out.parent)
    if blocker is not None:
        raise SystemExit(f"--out {out}: {blocker} is a file, so the folder {out.parent} cannot be made")


if __name__ == "__main__":
    raise SystemExit(main())
