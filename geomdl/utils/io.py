"""Atomic file writes (an interrupted run never leaves a half-written file behind) and text reads whose
errors name the file."""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile


def _umask() -> int:
    """The process umask: from ``/proc/self/status`` on Linux (thread-safe), else by setting and restoring it."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_file(path: str) -> None:
    """Flush ``path``'s data to disk (file-level ``fsync``; directories are never synced here)."""
    fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))  # writable: Windows' fsync (_commit) needs it
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _target_mode(path: str) -> int:
    """Permission bits for the new file: those of the existing ``path``, else ``0o666`` minus the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, mode_suffix: str = ""):
    """Yield a temporary path in the target's folder; on success fsync it and rename it onto ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched. The temporary file is
    ``fsync``-ed before the rename, so that a power loss cannot leave an empty file behind the final name.
    A new file gets the permissions of a plain ``open(path, "w")`` (``0o666`` minus the umask), not the
    ``0o600`` of :func:`tempfile.mkstemp`, so caches and results in shared folders stay readable by others;
    an existing file keeps its permission bits. When ``path`` is a symbolic link, the file it points to is
    replaced and the link is kept.
    """
    path = os.path.realpath(os.fspath(path))  # write through symlinks instead of replacing them
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".part" + mode_suffix, dir=folder)
    os.close(fd)
    try:
        yield tmp
        _fsync_file(tmp)
        os.chmod(tmp, _target_mode(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def atomic_torch_save(obj, path) -> None:
    """``torch.save`` that writes to a temporary file and renames it into place."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def atomic_write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()


def read_text(path: str | os.PathLike, what: str) -> str:
    """The UTF-8 text of ``path``; a binary file gives a ``ValueError`` naming the file and ``what`` was expected."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file (binary content); expected {what}") from None
