"""Helpers shared by the ``train`` and ``eval`` commands."""
from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import sys


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (not the stream of the first call),
    so a handler added while stderr was redirected (a notebook cell, pytest's capture) never writes to a
    closed stream later."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ assigns it; the current sys.stderr is always used
        pass


def configure_logging(quiet: bool = False) -> None:
    """Per-epoch lines of ``geomdl.train`` on stderr (rank 0 only)."""
    logger = logging.getLogger("geomdl.train")
    if int(os.environ.get("RANK", "0")) != 0 or quiet:
        logger.setLevel(logging.WARNING)
        return
    if not any(getattr(h, "_geomdl", False) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._geomdl = True
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


@contextlib.contextmanager
def user_errors(command_error):
    """Turn user errors (bad config, data path, checkpoint, corrupt data file) into one-line
    CommandErrors; ``GEOMDL_DEBUG=1`` shows the traceback instead."""
    try:
        yield
    except (ValueError, FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError,
            FloatingPointError) as exc:
        if os.environ.get("GEOMDL_DEBUG"):
            raise
        msg = " ".join(str(exc).split()) or type(exc).__name__
        raise command_error(msg) from exc


def check_output_file(option: str, value, command_error) -> None:
    """Fail before any (long) work when the file ``value`` named by ``option`` cannot be written: it is a
    folder (or ends with a path separator), a folder of its path is a file, or the folder it would go in is not
    writable; an empty ``value`` (``--out ""``, e.g. an unset shell variable) is refused, as ``train`` and
    ``demo`` do, not skipped."""
    if value is None:
        return
    if not str(value).strip():
        raise command_error(f"{option}: empty path; give a file name (or leave {option} out)")
    path = pathlib.Path(value)
    if path.is_dir():
        raise command_error(f"{option} {value}: is a folder, expected a file name")
    if str(value).endswith(("/", os.sep)):  # "out/" names a folder; it was written as a file named "out"
        raise command_error(f"{option} {value}: ends with {str(value)[-1]!r}, a folder; expected a file name")
    from geomdl.utils.io import file_in_the_way

    if (blocker := file_in_the_way(path.parent)) is not None:
        raise command_error(f"{option} {value}: {blocker} is a file, expected a folder")
    existing = next((p for p in path.parents if p.exists()), None)  # the folder it goes in, or the one created there
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise command_error(f"{option} {value}: cannot write in the folder {existing} (permission denied)")
