"""The raw -> processed contract shared by every geomdl dataset.

A dataset reads *raw* files (the formats people already have) once, turns them into a list of
:class:`torch_geometric.data.Data` and stores that list in a *processed cache*: one ``.pt`` file in
``processed_dir`` whose name carries a hash of everything that changes the result (the dataset
class, its processing ``version`` and the processing options) and whose content records the size,
modification and status-change time of every raw file read. Loading again with the same options reuses the
cache; another option, an edited raw file or ``force_reload=True`` reprocesses. Caches are written
atomically (:func:`geomdl.utils.io.atomic_torch_save`), so an interrupted or failed run never
leaves a half-written cache behind.

Data roots: ``root`` argument > ``$GEOMDL_DATA/<subdir>`` > ``<repository>/datasets/<subdir>``
(the ``datasets/`` folder of a checkout) > ``./datasets/<subdir>``. ``processed_dir`` defaults to
``<root>/processed``.

Random-access and splits: ``ds[i]`` returns one ``Data`` (after ``transform``), ``ds[a:b]``,
``ds[[...]]`` or ``ds[tensor]`` return a view. :func:`random_split_indices` implements seeded
random splits.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import numbers
import os
import pathlib
from collections.abc import Callable, Sequence

import numpy as np
import torch

from geomdl.utils.io import atomic_torch_save

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
_REPO = pathlib.Path(__file__).resolve().parents[2]


def data_root() -> pathlib.Path:
    """The folder holding all datasets: ``$GEOMDL_DATA``, else the checkout's ``datasets/``, else ``./datasets``."""
    env = os.environ.get("GEOMDL_DATA")
    if env:
        return pathlib.Path(env).expanduser()
    if (_REPO / "datasets" / "manifest").is_file():
        return _REPO / "datasets"
    return pathlib.Path.cwd() / "datasets"


def resolve_root(root, subdir: str) -> pathlib.Path:
    """``root`` when given (``str``/``PathLike``), else ``data_root() / subdir``."""
    if root is None:
        return data_root() / subdir
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path (str or os.PathLike) or None, got {type(root).__name__}")
    return pathlib.Path(root).expanduser()


def options_key(options: dict) -> str:
    """A short stable hash of JSON-serialisable processing options."""
    text = json.dumps(options, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _same_options(stored, options: dict) -> bool:
    """Whether a cache's stored options are ``options``, compared as canonical JSON text (so that a NaN option,
    which never equals itself as a float, still matches its own cache)."""
    return json.dumps(stored, sort_keys=True, default=str) == json.dumps(options, sort_keys=True, default=str)


def fingerprint(paths: Sequence[os.PathLike]) -> list[list]:
    """``[name, size, mtime_ns, ctime_ns]`` of every file: detects raw files changed after processing.

    The status-change time is in it because the modification time can be set: a file replaced by ``cp -p``,
    ``rsync -t`` or ``tar x`` with another of the same size and modification time (MD17 files of two molecules
    of the same shape) reused the stale cache. No tool can set the change time.
    """
    out = []
    for p in sorted(map(str, paths)):
        st = os.stat(p)
        out.append([p, st.st_size, st.st_mtime_ns, st.st_ctime_ns])
    return out


def random_split_indices(n: int, sizes, seed: int = 0) -> list[torch.Tensor]:
    """Seeded random partition of ``range(n)`` into consecutive chunks of a permutation.

    Args:
        n: number of items.
        sizes: sequence of ints (counts; one entry may be ``None`` = the rest) or of floats summing
            to <= 1 (fractions; rounded down, the last chunk takes the remainder when the fractions sum to 1).
        seed: seed of the permutation (``torch.randperm`` with its own generator).

    Returns:
        one ``int64`` index tensor per chunk.
    """
    counts = _split_counts(n, sizes)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    out, start = [], 0
    for c in counts:
        out.append(perm[start:start + c].sort().values)
        start += c
    return out


def _split_counts(n: int | None, sizes) -> list[int] | None:
    """The chunk sizes of :func:`random_split_indices`; with ``n=None`` only the form of ``sizes`` is checked
    (what can be checked before the dataset's length is known), and ``None`` is returned."""
    if not isinstance(sizes, (list, tuple)) or not sizes:
        raise ValueError(f"sizes must be a non-empty list/tuple, got {sizes!r}")
    if all(isinstance(s, (float, np.floating)) for s in sizes):
        sizes = [float(s) for s in sizes]
        if not all(s >= 0 for s in sizes) or not sum(sizes) <= 1 + 1e-9:  # also rejects NaN
            raise ValueError(f"fractional sizes must be >= 0 and sum to <= 1, got {sizes}")
        if n is None:
            return None
        # rounded down, but not below a count the float product misses by rounding (0.29 * 100 = 28.999...)
        counts = [int(math.floor(s * n + 1e-9 * max(1, n))) for s in sizes]
        if abs(sum(sizes) - 1) < 1e-9:
            counts[-1] = n - sum(counts[:-1])
    else:
        # numpy integers count as ints; True/False do not
        is_count = [isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in sizes]
        if any(s is not None and (not ok or s < 0) for s, ok in zip(sizes, is_count)) or sum(s is None for s in sizes) > 1:
            raise ValueError(f"sizes must be ints >= 0 with at most one None (the rest), or fractions; got {sizes}")
        sizes = [None if s is None else int(s) for s in sizes]
        if n is None:
            return None
        fixed = sum(s for s in sizes if s is not None)
        counts = [n - fixed if s is None else s for s in sizes]
    if sum(counts) > n or min(counts) < 0:
        raise ValueError(f"split sizes {sizes} need {sum(c for c in counts if c > 0)} items but the dataset has {n}")
    return counts


SPLIT_NAMES = ("train", "val", "test")


def check_seed(seed, name: str = "seed") -> int:
    """``seed`` as a Python ``int`` (Python or NumPy integers); a ``TypeError`` naming ``name`` otherwise: ``int()``
    truncated ``1.7`` to ``1`` and failed on a string or ``None`` without naming the argument."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {seed!r}")
    return int(seed)


def named_split_indices(n: int, split_sizes, seed: int, split: str) -> dict[str, torch.Tensor]:
    """``{"train": ..., "val": ..., "test": ...}`` from :func:`random_split_indices` of ``split_sizes``
    (given in that order; fewer entries are allowed only when ``split`` does not need the missing ones).

    Raises:
        TypeError: naming ``split_sizes`` when it is not a list/tuple of sizes (a number, a string).
        ValueError: naming ``split_sizes`` when it has more than 3 entries or none for ``split``.
    """
    sizes = check_split_sizes(split_sizes, split)
    return dict(zip(SPLIT_NAMES, random_split_indices(n, sizes, seed)))


def check_split_sizes(split_sizes, split: str) -> list:
    """``split_sizes`` as a list, checked as far as it can be without the dataset's length (its form, and a
    size for ``split``): the errors of :func:`named_split_indices`, before a dataset is read and processed."""
    if isinstance(split_sizes, (str, bytes)) or not hasattr(split_sizes, "__iter__"):
        raise TypeError(f"split_sizes must be a sequence of (train, val, test) sizes, got {split_sizes!r}")
    sizes = list(split_sizes)
    if len(sizes) > len(SPLIT_NAMES):
        raise ValueError(f"split_sizes gives {len(sizes)} sizes {sizes}; expected at most 3: (train, val, test)")
    _split_counts(None, sizes)
    if split != "all" and split not in SPLIT_NAMES[:len(sizes)]:
        raise ValueError(f"split={split!r} needs a size in split_sizes, which gives only {len(sizes)} size(s) {sizes} "
                         f"for {SPLIT_NAMES[:len(sizes)]}; give (train, val, test)")
    return sizes


class SeededStream:
    """A ``torch.Generator`` seeded with ``seed`` for augmentations drawn at every access.

    In the main process :meth:`get` returns one generator, so a run is reproducible. A
    ``DataLoader`` worker holds a *copy* of the dataset/transform (and so of the generator state):
    without care every worker, and every epoch's new workers, would replay the same draws. Inside a
    worker :meth:`get` therefore re-seeds once per worker from ``seed`` and the worker's own seed
    (``get_worker_info().seed``: distinct per worker and per epoch, and fixed by ``torch.manual_seed``).
    """

    def __init__(self, seed: int):
        self.seed = int(seed)
        self.generator = torch.Generator().manual_seed(self.seed)
        self._worker_seed = None

    def get(self) -> torch.Generator:
        info = torch.utils.data.get_worker_info()
        if info is not None and info.seed != self._worker_seed:
            self._worker_seed = info.seed
            self.generator = torch.Generator().manual_seed((self.seed * 1_000_003 + int(info.seed)) % (2**63 - 1))
        return self.generator

    def __getstate__(self):
        # the generator state as plain bytes: a pickled torch.Generator carries a state tensor, which a "spawn"
        # DataLoader worker receives through a shared-memory file descriptor closed before the worker starts
        state = self.__dict__.copy()
        state["generator"] = self.generator.get_state().numpy().tobytes()
        return state

    def __setstate__(self, state):
        gen = torch.Generator()
        gen.set_state(torch.frombuffer(bytearray(state["generator"]), dtype=torch.uint8))
        self.__dict__.update(state, generator=gen)


def collate_list(data_list: list, cls=None):
    """Collate ``Data`` objects into one storage ``(dict, slices)`` pair (PyG's InMemoryDataset layout)."""
    from torch_geometric.data import Data
    from torch_geometric.data.collate import collate

    cls = cls or (type(data_list[0]) if data_list else Data)
    if not data_list:
        return {}, {}
    data, slices, _ = collate(cls, data_list, increment=False, add_batch=False)
    return data.to_dict(), slices


def scalar_index(idx) -> int | None:
    """``idx`` as an int when it picks one item (a Python or NumPy integer, a 0-d integer tensor or array); ``None``
    when it selects a view (see :func:`view_positions`).

    A bool, or a 0-d bool, float or complex tensor/array, is a ``TypeError``: ``int()`` of it silently picked
    item 1 or 0 (NumPy integers from ``np.random`` / ``np.argsort`` are single indices, as they should be).
    """
    if isinstance(idx, (bool, np.bool_)):
        raise TypeError(f"index must be an integer, got a bool scalar {idx!r}")
    if isinstance(idx, (torch.Tensor, np.ndarray)) and idx.ndim == 0:
        integer = (not (idx.dtype.is_floating_point or idx.dtype.is_complex or idx.dtype == torch.bool)
                   if isinstance(idx, torch.Tensor) else idx.dtype.kind in "iu")
        if not integer:
            raise TypeError(f"index must be an integer, got a {idx.dtype} scalar {idx.item()!r}")
        return int(idx)
    return int(idx) if isinstance(idx, numbers.Integral) else None


def view_positions(idx, n: int, owner: str) -> torch.Tensor:
    """int64 positions in ``[0, n)`` picked by a view index of a dataset of ``n`` items: a slice (negative steps
    too), a sequence of ints or an int32/int64 tensor (negative entries count from the end), or a bool mask of
    ``n`` entries. ``IndexError``/``TypeError`` otherwise, naming ``owner`` (the dataset) where it helps."""
    if isinstance(idx, slice):
        return torch.tensor(range(n)[idx], dtype=torch.long)
    try:
        t = torch.as_tensor(idx)
    except (TypeError, ValueError, RuntimeError):  # a str, None, a list of str...: not an index
        raise TypeError(f"index must be int, slice, sequence of ints or a bool/int64 tensor, "
                        f"got {type(idx).__name__}") from None
    if t.dim() > 1:
        raise IndexError(f"index must be 1-D (a sequence of ints or a mask), got shape {tuple(t.shape)}")
    if t.dtype == torch.bool:
        if t.numel() != n:
            raise IndexError(f"boolean mask has {t.numel()} entries, dataset has {n}")
        return t.nonzero().reshape(-1)
    if t.dtype in (torch.int64, torch.int32) or t.numel() == 0:
        t = t.long().reshape(-1)
        if t.numel() and (t.max() >= n or t.min() < -n):
            raise IndexError(f"index out of range for {owner} of length {n}")
        return t % n if n else t
    raise TypeError(f"index must be int, slice, sequence of ints or a bool/int64 tensor, got {type(idx).__name__}")


class GeometricDataset(torch.utils.data.Dataset):
    """Base class: subclasses set ``subdir`` and implement :meth:`raw_paths`, :meth:`options`, :meth:`process`.

    Args:
        root: folder with the raw files (default ``data_root() / subdir``).
        transform: callable applied to every ``Data`` on access (not cached).
        processed_dir: where the processed cache lives (default ``<root>/processed``).
        force_reload: ignore an existing cache and reprocess.

    Attributes:
        from_cache: ``True`` when the last load reused an existing processed cache.
        cache_path: the processed cache file.

    The cache is keyed by :meth:`raw_paths` (their sizes, modification and change times) and :meth:`options` alone:
    a subclass that processes data held in memory (arrays passed to its constructor) must put a digest of
    them into :meth:`options`, or it keeps returning the first cache it wrote after the data change. For
    clouds in memory a plain list of ``Data`` is simpler (the README's "Your own clouds").
    """

    subdir: str = ""
    version: int = 1
    data_cls = None  # torch_geometric Data subclass stored in the cache (default Data)

    def __init__(self, root=None, *, transform: Callable | None = None, processed_dir=None, force_reload: bool = False):
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable or None, got {type(transform).__name__}")
        self.root = resolve_root(root, self.subdir)
        # "~" expanded as in root: it was a folder literally named "~" under the working directory
        self.processed_dir = pathlib.Path(processed_dir).expanduser() if processed_dir is not None else self.root / "processed"
        self.transform = transform
        self.force_reload = bool(force_reload)
        self.from_cache = False
        self.cache_path: pathlib.Path | None = None
        self._store: dict = {}
        self._slices: dict = {}
        self._count = 0
        self._indices: torch.Tensor | None = None

    # ---- subclass API -------------------------------------------------------------------------
    def raw_paths(self) -> list[pathlib.Path]:
        """Raw files read by :meth:`process` (their sizes/mtimes are recorded in the cache)."""
        raise NotImplementedError

    def options(self) -> dict:
        """JSON-serialisable options that change the processed result (keyed into the cache name)."""
        return {}

    def process(self) -> list:
        """Read the raw files and return a list of ``Data``."""
        raise NotImplementedError

    # ---- cache --------------------------------------------------------------------------------
    def _cache_name(self, tag: str, options: dict) -> pathlib.Path:
        key = options_key({"class": type(self).__name__, "version": self.version, "format": CACHE_FORMAT, **options})
        return self.processed_dir / f"{tag}-{key}.pt"

    def cached(self, tag: str, options: dict, raw_paths, build: Callable[[], list]):
        """Return ``(store, slices, count)`` for ``build()``'s data list, from the cache when valid."""
        path = self._cache_name(tag, options)
        raw_fp = fingerprint(raw_paths)
        if path.is_file() and not self.force_reload:
            try:
                blob = torch.load(path, weights_only=True)
            except Exception as exc:  # corrupt cache: rebuild it
                log.warning("ignoring unreadable cache %s (%s)", path, exc)
                blob = None
            if blob is not None and not (isinstance(blob, dict) and {"data", "slices", "count"} <= blob.keys()):
                # another object under the cache's name (a list, a tensor, a dict of another layout): rebuild it
                log.warning("ignoring cache %s: not a processed dataset cache (holds a %s)", path, type(blob).__name__)
                blob = None
            if blob is not None and blob.get("fingerprint") == raw_fp and _same_options(blob.get("options"), options):
                self.from_cache = True
                self.cache_path = path
                return blob["data"], blob["slices"], blob["count"]
        data_list = build()
        store, slices = collate_list(data_list, self.data_cls)
        blob = {"format": CACHE_FORMAT, "options": json.loads(json.dumps(options, default=str)), "fingerprint": raw_fp,
                "data": store, "slices": slices, "count": len(data_list)}
        atomic_torch_save(blob, path)
        self.from_cache = False
        self.cache_path = path
        return store, slices, len(data_list)

    def load(self) -> None:
        """Process (or load from cache) the data; subclasses call this at the end of ``__init__``."""
        self._store, self._slices, self._count = self.cached(self.subdir.replace("/", "_") or "data", self.options(), self.raw_paths(), self.process)

    # ---- access -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._indices) if self._indices is not None else self._count

    def get(self, idx: int):
        """The stored ``Data`` number ``idx`` (before ``transform``, ignoring views).

        Its tensors are copies, not views of the in-memory store: a transform that edits an item in
        place (``data.pos += 1``) changes that item only, never what the next ``ds[idx]`` returns.
        """
        from torch_geometric.data import Data
        from torch_geometric.data.separate import separate

        cls = self.data_cls or Data
        batch = cls.from_dict(self._store)
        data = separate(cls=cls, batch=batch, idx=idx, slice_dict=self._slices, decrement=False)
        return data.apply(torch.Tensor.clone)

    def _raw_index(self, idx: int) -> int:
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} out of range for {type(self).__name__} of length {n}")
        idx = idx % n
        return int(self._indices[idx]) if self._indices is not None else idx

    def __getitem__(self, idx):
        i = scalar_index(idx)
        if i is not None:
            raw = self._raw_index(i)
            return self.apply_transform(self.get(raw), raw)
        return self.index_select(idx)

    def apply_transform(self, data, raw_index: int):
        """Hook for per-item processing before the user transform (e.g. rotation protocols)."""
        return self.transform(data) if self.transform is not None else data

    def index_select(self, idx):
        """A view of the items ``idx`` (slice, sequence of ints, int64 or bool tensor)."""
        base = self._indices if self._indices is not None else torch.arange(self._count)
        sel = base[view_positions(idx, len(base), type(self).__name__)]
        view = copy.copy(self)
        view._indices = sel
        return view

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)})"
