"""Atomic file writes (an interrupted run never leaves a half-written file behind), strict JSON output and
text reads whose errors name the file."""
from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import pathlib
import stat
import sys
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
    given = os.fspath(path)
    path = os.path.realpath(given)  # write through symlinks instead of replacing them
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".part" + mode_suffix, dir=folder)
    except FileExistsError:  # a file where a folder of the path should be
        raise NotADirectoryError(errno.ENOTDIR, "a folder of the path is a file", given) from None
    except OSError as exc:  # name the file being written, not the temporary one
        raise type(exc)(exc.errno, exc.strerror, given) from None
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


def file_in_the_way(folder) -> pathlib.Path | None:
    """The file that stops ``folder`` from being (or being created as) a folder: ``folder`` itself or its
    nearest existing parent when that is not a folder; ``None`` when the folder exists or can be made."""
    folder = pathlib.Path(folder)
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    return existing if existing is not None and not existing.is_dir() else None


def atomic_torch_save(obj, path) -> None:
    """``torch.save`` that writes to a temporary file and renames it into place."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()


_JSON_KEY_TYPES = (str, int, float, bool, type(None))


def _as_python_scalar(obj):
    """``obj`` as a Python number when it is a numpy scalar, a 0-d numpy array or a 0-d torch tensor, else ``obj``.

    ``.item()`` keeps the kind: integers stay ``int``, booleans stay ``bool``. numpy and torch are looked up in
    ``sys.modules`` only: an object of a library that was never imported cannot be one of its types.
    """
    np = sys.modules.get("numpy")
    if np is not None and (isinstance(obj, np.generic) or (isinstance(obj, np.ndarray) and obj.ndim == 0)):
        return obj.item()
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.Tensor) and obj.ndim == 0:
        return obj.item()
    return obj


def _json_key(key):
    """A dict key ``json.dumps`` accepts: numpy/torch scalars become Python numbers, other types ``str(key)``.

    A non-finite float key is written as the string ``json.dumps`` used for it (``"NaN"``, ``"Infinity"``,
    ``"-Infinity"``): keys are strings in JSON, so that stays strict JSON.
    """
    key = _as_python_scalar(key)
    if isinstance(key, float) and not math.isfinite(key):
        return "NaN" if math.isnan(key) else ("Infinity" if key > 0 else "-Infinity")
    return key if isinstance(key, _JSON_KEY_TYPES) else str(key)


def to_json_safe(obj, default=None):
    """A copy of ``obj`` that ``json.dumps(..., allow_nan=False)`` accepts: non-finite numbers become ``None``.

    Recursively: a float that is NaN or infinite (Python, numpy or a 0-d tensor) becomes ``None`` (written as
    ``null``); numpy scalars, 0-d numpy arrays and 0-d torch tensors become Python numbers (``int`` stays
    ``int``, ``bool`` stays ``bool``); tuples become lists; dict keys that JSON cannot hold become strings;
    ``pathlib.PurePath`` becomes ``str``. Any other object that JSON cannot hold is passed to ``default``
    (like ``json.dumps``' ``default``: ``float`` turns a one-element tensor or array into a number, ``str``
    writes a description) and the result is converted again; without ``default`` it is a ``TypeError``.
    A container that contains itself is a ``ValueError``, as in ``json.dumps``.
    """
    return _to_json_safe(obj, default, set())


def _to_json_safe(obj, default, active: set):
    """:func:`to_json_safe` with ``active``: ids of the containers being converted (circular references)."""
    obj = _as_python_scalar(obj)
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    if isinstance(obj, int):
        return int(obj)  # an int subclass (IntEnum) is written as its number by json.dumps too
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, pathlib.PurePath):
        return str(obj)
    if id(obj) in active:
        raise ValueError("Circular reference detected")
    active.add(id(obj))
    try:
        if isinstance(obj, dict):
            return {_json_key(k): _to_json_safe(v, default, active) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [_to_json_safe(v, default, active) for v in obj]
        if default is None:
            raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")
        return _to_json_safe(default(obj), default, active)
    finally:
        active.discard(id(obj))


def atomic_write_json(path, obj, indent: int | None = 2, default=None) -> None:
    """Write ``obj`` to ``path`` as strict JSON (RFC 8259) through :func:`atomic_write_text`, with a final newline.

    ``obj`` goes through :func:`to_json_safe` (``default`` as there): non-finite numbers (NaN, infinities) are
    written as ``null``, never as the ``NaN``/``Infinity`` tokens that strict parsers (``jq``,
    ``JSON.parse``) reject; numpy and torch scalars are written as numbers. Nothing is written when ``obj``
    cannot be converted (the ``TypeError``/``ValueError`` comes before the file is touched).
    """
    text = json.dumps(to_json_safe(obj, default=default), indent=indent, allow_nan=False) + "\n"
    atomic_write_text(path, text)


def loads_strict_json(text: str):
    """``json.loads`` that refuses the non-standard ``NaN``, ``Infinity`` and ``-Infinity`` tokens (as ``jq`` and
    ``JSON.parse`` do) with a ``ValueError``: reads what :func:`atomic_write_json` writes."""
    def reject(token):
        raise ValueError(f"non-standard JSON token {token!r}")

    return json.loads(text, parse_constant=reject)


def read_text(path: str | os.PathLike, what: str) -> str:
    """The UTF-8 text of ``path`` (a leading byte-order mark dropped); a binary file gives a ``ValueError`` naming
    the file and ``what`` was expected."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8-sig") as fh:
            return fh.read()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file (binary content); expected {what}") from None
