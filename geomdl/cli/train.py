"""``geomdl train CONFIG [--set key=value ...]``: train from a YAML config.

Multi-process: ``torchrun --nproc_per_node N -m geomdl train CONFIG`` (DDP; gloo on CPU, nccl on GPU).
"""
from __future__ import annotations

HELP = "train from a YAML config: geomdl train CONFIG [--set key=value ...]"


def add_arguments(parser) -> None:
    from geomdl import configs

    parser.add_argument("config", help="YAML experiment config: a file, or the name of a config bundled with geomdl "
                                       f"({', '.join(configs.names())})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set optim.lr=3e-4 --set model.kwargs.hidden_channels=64")
    parser.add_argument("--out", help="run folder (same as --set train.out_dir=...)")
    parser.add_argument("--resume", nargs="?", const=True, default=None, metavar="CHECKPOINT",
                        help="continue a run: from CHECKPOINT, or from <out_dir>/last.pt when no path is given")
    parser.add_argument("--overwrite", action="store_true", help="start afresh even if the run folder holds a run")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")


def run(args) -> int:
    import json
    import os
    import sys

    from geomdl.cli import CommandError
    from geomdl.cli._common import configure_logging, user_errors

    if args.out is not None and not args.out.strip():
        raise CommandError("--out: empty path; give the run folder (or leave --out out for train.out_dir)")
    if isinstance(args.resume, str) and not args.resume.strip():  # e.g. --resume "$CKPT" with CKPT unset
        raise CommandError("--resume: empty path; give the checkpoint, or --resume alone for <out_dir>/last.pt")
    if args.resume and args.overwrite:
        raise CommandError("--resume and --overwrite exclude each other (continue the run, or start it afresh)")
    # --out is a path taken verbatim: quoted, so that YAML reads `2024-05-01`, `123` or `runs/a #1` as that string
    overrides = list(args.overrides) + ([f"train.out_dir={json.dumps(args.out)}"] if args.out else [])
    configure_logging(quiet=args.quiet)
    from geomdl.pipelines.trainer import TrainingInterrupted

    try:
        with user_errors(CommandError):
            from geomdl.pipelines.runs import train

            summary = train(args.config, overrides, resume=args.resume, overwrite=args.overwrite)
    except TrainingInterrupted as exc:
        if int(os.environ.get("RANK", "0")) == 0:
            how = (f"continue with: {_resume_command(args)}" if exc.last_checkpoint is not None else
                   "nothing to resume: run the same command again")
            print(f"geomdl train: {exc}; {how}", file=sys.stderr)
        return 130
    if int(os.environ.get("RANK", "0")) == 0:
        if summary.get("finished"):
            if "final_weights" in summary:
                # (the trainer's own log line says the same at DEBUG level: one line, also under --quiet)
                print(f"final evaluation with the {summary['final_weights']} weights (epoch {summary['final_weights_epoch']} "
                      f"of {summary['epoch']})")
            sizes = summary.get("eval_sizes", {})
            for split, metrics in summary["metrics"].items():
                n = f" ({sizes[split]} items)" if split in sizes else ""
                print(f"{split}{n}: " + "  ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
            print(f"run folder: {summary['out_dir']}")
        else:
            print(f"stopped after epoch {summary['epoch']}; continue with: {_resume_command(args)}")
    return 0


def _resume_command(args) -> str:
    """The ``geomdl train ... --resume`` command that continues this run, with the same ``--set`` overrides
    (a resume whose config differs from the checkpoint's is refused) and ``--out``."""
    import shlex

    again = [args.config, *(x for o in args.overrides for x in ("--set", o))] + (["--out", args.out] if args.out else [])
    return f"geomdl train {' '.join(shlex.quote(str(a)) for a in again)} --resume"
