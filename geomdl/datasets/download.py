"""Verified, resumable downloads driven by the manifest (``datasets/manifest``).

Manifest format: one file per line, whitespace-separated, ``#`` starts a comment::

    DATASET  PATH  SIZE  SHA256  URL

``PATH`` is relative to the data root (:func:`geomdl.datasets.base.data_root`), ``SIZE`` in bytes.
:func:`fetch` streams ``URL`` into ``PATH.part`` (continuing a previous partial download with an
HTTP ``Range`` request, or by offset for ``file://`` URLs), checks the size and the sha256 and only
then renames it onto ``PATH``. A mismatch deletes the partial file and raises
:class:`ChecksumError`. Files already present with the right checksum are not fetched again, so
datasets work offline once their files are placed (downloaded or copied by hand). Processes and threads
fetching the same file at once take turns (an ``flock`` on ``.NAME.lock`` beside it, where the platform has
``fcntl``): the later ones find the file in place and only verify it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import pathlib
import urllib.parse
import urllib.request

from geomdl.datasets.base import _REPO, data_root
from geomdl.utils.io import read_text

CHUNK = 1 << 20
PROGRESS_MIN_BYTES = 64 << 20  # hashing a smaller file takes well under a second: no bar


class ChecksumError(ValueError):
    """A downloaded or placed file does not have the size/sha256 listed in the manifest."""


@dataclasses.dataclass(frozen=True)
class ManifestEntry:
    dataset: str
    path: str
    size: int
    sha256: str
    url: str


PACKAGED_MANIFEST = pathlib.Path(__file__).resolve().parent / "manifest"  # written by setup.py into built packages


def default_manifest() -> pathlib.Path:
    """``<data root>/manifest`` when it exists, else the copy shipped in the installed package, else the
    checkout's ``datasets/manifest``."""
    for path in (data_root() / "manifest", PACKAGED_MANIFEST):
        if path.is_file():
            return path
    return _REPO / "datasets" / "manifest"


def read_manifest(path=None) -> list[ManifestEntry]:
    """Parse a manifest file; raises ``ValueError`` naming the file and line on a malformed line."""
    path = pathlib.Path(path) if path is not None else default_manifest()
    if path.is_dir():
        raise IsADirectoryError(f"manifest {path} is a folder, expected the manifest file")
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    text = read_text(path, "a dataset manifest")
    entries = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 5:
            raise ValueError(f"{path}:{lineno}: expected 5 fields 'DATASET PATH SIZE SHA256 URL', got {len(parts)}")
        dataset, rel, size, sha, url = parts
        if not (size.isascii() and size.isdigit()):  # str.isdigit() accepts '²', which int() then refused unnamed
            raise ValueError(f"{path}:{lineno}: SIZE must be a byte count, got {size!r}")
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha.lower()):
            raise ValueError(f"{path}:{lineno}: SHA256 must be 64 hex digits, got {sha!r}")
        if rel.startswith("/") or ".." in pathlib.PurePosixPath(rel).parts:
            raise ValueError(f"{path}:{lineno}: PATH must be relative and stay inside the data root, got {rel!r}")
        entries.append(ManifestEntry(dataset, rel, int(size), sha.lower(), url))
    return entries


def sha256_file(path, *, progress: bool = False) -> str:
    """Hex sha256 of a file, read in blocks of ``CHUNK`` bytes.

    ``progress``: a byte progress bar (on a terminal only) for files of at least ``PROGRESS_MIN_BYTES``.
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        bar = _progress(size, 0, f"sha256 {pathlib.Path(path).name}", progress and size >= PROGRESS_MIN_BYTES, tty_only=True)
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
            bar.update(len(block))
        bar.close()
    return h.hexdigest()


def verify_file(path, size: int, sha256: str, *, progress: bool = False) -> None:
    """Raise :class:`ChecksumError` unless ``path`` has ``size`` bytes and the sha256 ``sha256``."""
    path = pathlib.Path(path)
    actual_size = path.stat().st_size
    if actual_size != size:
        raise ChecksumError(f"{path}: expected {size} bytes, found {actual_size}")
    actual = sha256_file(path, progress=progress)
    if actual != sha256:
        raise ChecksumError(f"{path}: sha256 mismatch: expected {sha256}, got {actual}")


def _open(url: str, offset: int, timeout: float):
    """Return ``(stream, resumed)``; ``resumed`` is True when the stream starts at ``offset``."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        fh = open(urllib.request.url2pathname(parsed.path), "rb")
        fh.seek(offset)
        return fh, True
    if parsed.scheme not in ("http", "https"):
        raise ValueError(f"unsupported URL scheme {parsed.scheme!r} in {url!r} (use https://, http:// or file://)")
    req = urllib.request.Request(url, headers={"User-Agent": "geomdl"})
    if offset:
        req.add_header("Range", f"bytes={offset}-")
    resp = urllib.request.urlopen(req, timeout=timeout)  # verified TLS (default context)
    return resp, offset > 0 and getattr(resp, "status", 200) == 206


def fetch(url: str, dest, size: int, sha256: str, *, timeout: float = 60.0, progress: bool = True) -> pathlib.Path:
    """Download ``url`` to ``dest`` (resumable through ``dest.part``) and verify size and sha256.

    Returns ``dest``. Already-present, verified files are not downloaded again. On a mismatch the
    partial file is deleted and :class:`ChecksumError` raised; on a network error the partial file
    is kept, so calling again resumes.
    """
    dest = pathlib.Path(dest)
    if dest.is_file():
        verify_file(dest, size, sha256, progress=progress)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(dest.with_name("." + dest.name + ".lock")):  # one writer of dest.part at a time
        if dest.is_file():  # placed by the process or thread that held the lock before this one
            verify_file(dest, size, sha256, progress=progress)
            return dest
        return _fetch_locked(url, dest, size, sha256, timeout=timeout, progress=progress)


@contextlib.contextmanager
def _exclusive(lock_path: pathlib.Path):
    """Hold an exclusive ``flock`` on ``lock_path`` (created when missing, left in place) while the block runs.

    Processes (DDP ranks, jobs of a sweep) and threads that fetch the same file share ``dest.part``: without
    the lock one would append to or truncate the other's partial file, or find it renamed away mid-way. A
    ``flock`` is held per open file, so it also excludes threads of one process. Where there is no ``fcntl``
    (Windows) or the file system refuses locks, the block runs unlocked (the behaviour without the lock)."""
    try:
        import fcntl
    except ImportError:
        fcntl = None
    fd = None
    if fcntl is not None:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a file system without locks (some network/FUSE mounts): go on unlocked
            if fd is not None:
                os.close(fd)
            fd = None
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


def _fetch_locked(url: str, dest: pathlib.Path, size: int, sha256: str, *, timeout: float, progress: bool) -> pathlib.Path:
    """:func:`fetch` once ``dest`` is known to be missing and its lock is held."""
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    if offset > size:
        part.unlink()
        offset = 0
    if offset < size:
        stream, resumed = _open(url, offset, timeout)
        with contextlib.closing(stream):
            mode = "ab" if resumed else "wb"
            bar = _progress(size, offset if resumed else 0, dest.name, progress)
            with open(part, mode) as out:
                for block in iter(lambda: stream.read(CHUNK), b""):
                    out.write(block)
                    bar.update(len(block))
                    if out.tell() > size:
                        break
            bar.close()
    try:
        verify_file(part, size, sha256, progress=progress)
    except ChecksumError as exc:
        part.unlink(missing_ok=True)
        raise ChecksumError(f"download of {url} failed verification, partial file deleted: {exc}") from None
    os.replace(part, dest)
    return dest


def _progress(total, initial, name, enabled, tty_only: bool = False):
    """A tqdm byte bar; ``tty_only``: shown only when stderr is a terminal (tqdm's ``disable=None``)."""
    from tqdm import tqdm

    disable = (None if tty_only else False) if enabled else True
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, desc=name, disable=disable, leave=False)


def status(entry: ManifestEntry, root=None, *, check_hash: bool = False, progress: bool = False) -> str:
    """``"missing"``, ``"partial"``, ``"present"`` (size matches), ``"verified"`` or ``"corrupt"``.

    ``progress``: a progress bar while hashing a large file (``check_hash``; terminals only)."""
    path = pathlib.Path(root or data_root()) / entry.path
    if not path.is_file():
        return "partial" if path.with_name(path.name + ".part").is_file() else "missing"
    if path.stat().st_size != entry.size:
        return "corrupt"
    if not check_hash:
        return "present"
    return "verified" if sha256_file(path, progress=progress) == entry.sha256 else "corrupt"


def download(dataset: str, root=None, *, manifest=None, progress: bool = True) -> list[pathlib.Path]:
    """Fetch (or verify in place) every manifest file of ``dataset`` under ``root`` (default data root)."""
    entries = [e for e in read_manifest(manifest) if e.dataset == dataset]
    if not entries:
        names = sorted({e.dataset for e in read_manifest(manifest)})
        raise ValueError(f"dataset {dataset!r} has no files in the manifest; datasets with files: {names}")
    root = pathlib.Path(root) if root is not None else data_root()
    return [fetch(e.url, root / e.path, e.size, e.sha256, progress=progress) for e in entries]
