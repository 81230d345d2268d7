"""The ``geomdl`` command line: ``geomdl [--version] COMMAND ...``.

Each sub-command lives in its own module of this package, which defines ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Register new ones in ``COMMANDS``. Command modules must be cheap to import: heavy imports
(torch, datasets, models) go inside ``run``.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

import geomdl

# command name -> (module, one-line help); the help is the module's HELP (kept here so that the list needs no imports)
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("geomdl.cli.info", "versions, device, compiled kernels and the active backend"),
    "demo": ("geomdl.cli.demo", "run the main job on built-in data (every capability, small sizes)"),
    "datasets": ("geomdl.cli.datasets", "list datasets, where they live and whether they are present and verified"),
    "train": ("geomdl.cli.train", "train from a YAML config: geomdl train CONFIG [--set key=value ...]"),
    "eval": ("geomdl.cli.evaluate", "evaluate a checkpoint: geomdl eval CHECKPOINT [--data ...]"),
    "register": ("geomdl.cli.register", "align two point clouds: geomdl register SOURCE TARGET [--voxel 0.05] [--method geomdl] "
                                        "[--out pose.txt] [--show out.png]"),
    "register-eval": ("geomdl.cli.register_eval", "evaluate registration on a gt.log folder: "
                                                  "geomdl register-eval BENCHMARK_DIR FRAGMENTS_DIR [--method ...]"),
}


class CommandError(Exception):
    """An error that the CLI reports as one line (no traceback) with a non-zero exit code."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; only ``command``'s module is imported to define its arguments."""
    parser = argparse.ArgumentParser(prog="geomdl", description="Geometric deep learning on point clouds and graphs.")
    parser.add_argument("--version", action="version", version=f"geomdl {geomdl.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_module=module)
        if name == command:
            importlib.import_module(module).add_arguments(p)
    return parser


# arguments that name files or folders: a "~" there is the user's home, as in the shell
PATH_ARGUMENTS = ("config", "checkpoint", "source", "target", "benchmark", "fragments",
                  "out", "data", "root", "manifest", "resume", "show", "gt")


def expand_home(args: argparse.Namespace) -> argparse.Namespace:
    """Expand a leading ``~`` in the path arguments (:data:`PATH_ARGUMENTS`), in place.

    The shell expands ``~`` only at the start of a word, so ``--out=~/runs`` arrived as a literal ``~``
    folder in the working directory.
    """
    for name in PATH_ARGUMENTS:
        value = getattr(args, name, None)
        if isinstance(value, str) and value.startswith("~"):
            setattr(args, name, os.path.expanduser(value))
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = expand_home(parser.parse_args(argv))
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args) or 0)
    except CommandError as exc:
        print(f"geomdl {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"geomdl {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (`geomdl demo | head`): stop quietly, as cat does
        _silence_stdout()
        return 141  # 128 + SIGPIPE, what a shell reports for such a pipeline stage
    except (OSError, ImportError) as exc:
        # a file operation the command did not foresee failed (name too long, read-only or full disk), or an optional
        # dependency it needs is missing (open3d for --method open3d, with its install hint): one line and 2, as for
        # the errors it foresees (1 is register's "ran, but not successful"); GEOMDL_DEBUG=1 shows the traceback
        if os.environ.get("GEOMDL_DEBUG"):
            raise
        print(f"geomdl {args.command}: error: {_os_error_line(exc)}", file=sys.stderr)
        return 2


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush of the broken pipe raises nothing more."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout replaced (tests) or already closed
        pass


def _os_error_line(exc: OSError | ImportError) -> str:
    """``exc`` as one line; an OSError names the file: ``NAME: File name too long`` (not ``[Errno 36] ...``)."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())
