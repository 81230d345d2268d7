"""``geomdl eval CHECKPOINT [--data PATH] [--split S ...]``: evaluate a trained checkpoint."""
from __future__ import annotations

HELP = "evaluate a checkpoint: geomdl eval CHECKPOINT [--data ...]"


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", help="a checkpoint written by geomdl train (last.pt / best.pt)")
    parser.add_argument("--data", metavar="PATH", help="data root to evaluate on (default: the run's data.root)")
    parser.add_argument("--split", nargs="+", action="extend", metavar="SPLIT",
                        help="splits to evaluate, repeatable (--split val test == --split val --split test; "
                             "default: val and test)")
    parser.add_argument("--out", help="folder for metrics JSON and plots "
                                      "(default: <checkpoint folder>/eval/<checkpoint stem>, e.g. runs/x/eval/best)")
    parser.add_argument("--no-ema", action="store_true", help="use the raw weights even when the run kept an EMA")
    parser.add_argument("--no-plots", action="store_true", help="write metrics only")
    parser.add_argument("--batch-size", type=int, help="evaluation batch size per process")


def run(args) -> int:
    import os

    from geomdl.cli import CommandError
    from geomdl.cli._common import configure_logging, user_errors

    if args.out is not None and not args.out.strip():  # was: the default folder, silently
        raise CommandError("--out: empty path; give a folder for the metrics and plots "
                           "(or leave --out out for <checkpoint folder>/eval/<checkpoint stem>)")
    if args.data is not None and not args.data.strip():  # was: "data.root: path '' does not exist"
        raise CommandError("--data: empty path; give the data root (or leave --data out for the run's data.root)")
    if args.batch_size is not None and args.batch_size < 1:
        raise CommandError(f"--batch-size must be >= 1, got {args.batch_size}")
    configure_logging(quiet=False)
    with user_errors(CommandError):
        from geomdl.pipelines.runs import evaluate_checkpoint

        splits = list(dict.fromkeys(args.split)) if args.split else None  # repeats once, in the order given
        results = evaluate_checkpoint(args.checkpoint, data_root=args.data, splits=splits, out_dir=args.out,
                                      use_ema=not args.no_ema, plots=not args.no_plots, batch_size=args.batch_size)
    if int(os.environ.get("RANK", "0")) == 0:
        for split, metrics in results.items():
            print(f"{split}: " + "  ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    return 0
