"""Argument checks shared by the ops: clear ValueError/TypeError naming the argument."""
from __future__ import annotations

import math
import numbers

import torch
from numpy import bool_ as np_bool


def check_tensor(x, name: str, *, dim: int | None = None, floating: bool = False) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if dim is not None and x.dim() != dim:
        raise ValueError(f"{name} must be {dim}-D, got shape {tuple(x.shape)}")
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {x.dtype}")
    return x


def check_index(index, name: str, length: int, upper: int | None = None, *, values: bool = True) -> torch.Tensor:
    """Validate an integer index vector of ``length`` entries with values in ``[0, upper)``.

    Returns it as int64. ``upper=None`` checks only for negative values; ``values=False`` checks
    only type, shape and length (for callers whose kernel checks the values in its own pass).
    """
    check_tensor(index, name, dim=1)
    if index.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"{name} must have an integer dtype, got {index.dtype}")
    if index.numel() != length:
        raise ValueError(f"{name} must have {length} entries, got {index.numel()}")
    index = index.long()
    if values:
        check_index_values(index, name, upper)
    return index


def host_list(t: torch.Tensor) -> list:
    """``t.tolist()`` of a 1-D tensor; element by element (``item()``) where ``tolist`` cannot read the tensor: torch
    2.4 inside a ``torch.func`` transform (``jvp``), whose wrapped tensors have no storage for ``tolist``."""
    try:
        return t.tolist()
    except RuntimeError as exc:
        if "storage" not in str(exc):
            raise
        return [v.item() for v in t.unbind(0)]


def check_index_values(index: torch.Tensor, name: str, upper: int | None) -> None:
    """ValueError naming ``name`` unless every entry of the int64 vector lies in ``[0, upper)``.

    Skipped under ``torch.compile`` (a data-dependent branch); the compiled kernels check ranges in their own pass.
    """
    if not torch.compiler.is_compiling() and index.numel():
        lo, hi = host_list(torch.stack(torch.aminmax(index)))  # one pass over the index, one device->host read
        _check_index_range(name, lo, hi, upper)


def _check_index_range(name: str, lo: int, hi: int, upper: int | None) -> None:
    if lo < 0:
        bound = f"[0, {upper})" if upper is not None else "[0, inf)"
        raise ValueError(f"{name} has a negative entry ({lo}); entries must lie in {bound}")
    if upper is not None and hi >= upper:
        raise ValueError(f"{name} has an entry {hi} out of range: entries must lie in [0, {upper})")


def check_batch(batch, name: str, num_points: int, device) -> torch.Tensor:
    """Validate a batch vector: int, 1-D, non-negative, sorted (non-decreasing)."""
    return check_batch_and_count(batch, name, num_points, device)[0]


def check_batch_and_count(batch, name: str, num_points: int, device) -> tuple[torch.Tensor, int | None]:
    """:func:`check_batch` and the number of cloud ids (last id + 1, 0 when empty), read from the device in
    one synchronisation with the checked values (none for ``batch=None``); ``None`` under ``torch.compile``,
    where the values are data (neither checked nor counted) and the point count may be symbolic."""
    if batch is None:
        zeros = torch.zeros(num_points, dtype=torch.long, device=device)
        return zeros, None if torch.compiler.is_compiling() else (1 if num_points else 0)
    batch = check_index(batch, name, num_points, values=False)
    if torch.compiler.is_compiling():
        return batch, None
    if not batch.numel():
        return batch, 0
    return batch, batch_values_count(batch, name)


def batch_values_count(batch: torch.Tensor, name: str) -> int:
    """The value checks of a non-empty int64 batch vector (non-negative, sorted), read from the device in one
    synchronisation, and its number of ids (largest + 1). ValueError naming ``name`` otherwise."""
    lo, hi, unsorted = host_list(torch.stack([*torch.aminmax(batch), (batch[1:] < batch[:-1]).any().long()]))
    _check_index_range(name, lo, hi, None)
    if unsorted:
        raise ValueError(f"{name} must be sorted in non-decreasing order (the points of one cloud or the nodes of "
                         f"one graph contiguous, as torch_geometric's Batch produces)")
    return hi + 1  # sorted: the largest id is the last


def check_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as an ``int >= minimum`` (Python or NumPy integers; ``bool`` is rejected), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _item(value):
    """A 0-dim tensor as its Python number (``torch.tensor(0.5)`` is a number to a user), anything else as is."""
    return value.item() if isinstance(value, torch.Tensor) and value.dim() == 0 else value


def _finite(value) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def check_positive_real(value, name: str) -> float:
    """``value`` as a positive finite float (Python or NumPy reals; ``bool`` and tensors are rejected), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (value > 0 and _finite(value)):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def check_real(value, name: str, *, minimum: float | None = None, maximum: float | None = None,
               open_minimum: bool = False, optional: bool = False) -> float | None:
    """``value`` as a finite float in ``[minimum, maximum]`` (``(minimum, maximum]`` with ``open_minimum``; an
    unset bound is unbounded), else ValueError naming ``name`` and the range. Python or NumPy reals and 0-dim
    tensors (``bool``, strings and ``None`` are rejected); ``optional=True`` lets ``None`` through."""
    if optional and value is None:
        return None
    value = _item(value)
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real) and _finite(value)
    if ok and minimum is not None:
        ok = value > minimum if open_minimum else value >= minimum
    if ok and maximum is not None:
        ok = value <= maximum
    if not ok:
        if minimum is not None and maximum is not None:
            bounds = f" in {'(' if open_minimum else '['}{minimum}, {maximum}]"
        elif minimum is not None:
            bounds = f" {'>' if open_minimum else '>='} {minimum}"
        else:
            bounds = f" <= {maximum}" if maximum is not None else ""
        raise ValueError(f"{name} must be a finite number{bounds}{' or None' if optional else ''}, got {value!r}")
    return float(value)


def check_bool(value, name: str) -> bool:
    """``value`` as a ``bool``: Python or NumPy booleans, the integers 0 and 1 and 0-dim tensors of them
    (``"no"``, ``None`` or ``2`` are rejected), else ValueError."""
    value = _item(value)
    if not (isinstance(value, (bool, np_bool)) or (isinstance(value, numbers.Integral) and value in (0, 1))):
        raise ValueError(f"{name} must be a bool (True or False), got {value!r}")
    return bool(value)


def compact_batches(*batches: torch.Tensor, counts=None) -> tuple[list[torch.Tensor], int]:
    """Number of clouds of sorted batch vectors sharing cloud ids, and the vectors themselves.

    The pointers of the kernels (:func:`batch_to_ptr`) have one entry per cloud id up to the largest, so
    sparse ids (e.g. ``[0, 10**9]``) would allocate gigabytes. When there are more ids than points, the ids
    are renumbered ``0, 1, ...`` in order (the same clouds, the same sorted order, the same result).
    """
    if counts is not None:  # the batches' ``last id + 1`` (0 when empty), known from their check: no device read
        nb = max(max(counts, default=0), 1)
    else:
        nb = 1 + max((int(b[-1]) for b in batches if b.numel()), default=0)
    total = sum(b.numel() for b in batches)
    if nb <= total + 1 or torch.compiler.is_compiling():
        return list(batches), nb
    ids = torch.unique(torch.cat(batches))  # sorted
    return [torch.searchsorted(ids, b) for b in batches], ids.numel()


def rescale_points(x: torch.Tensor, y: torch.Tensor | None = None, r: float | None = None):
    """``(x s, y s, r s)`` for a power of two ``s`` that brings the largest coordinate just below ``2**400`` when
    it is beyond that, or near 1 when it is below ``2**-400`` (else ``s = 1``: no copy). Float64 squared
    distances of such coordinates overflow to inf or underflow to 0 (every pair tied); a power of two scales
    every coordinate, difference, square and sum exactly, so the neighbours and samples are those of the exact
    geometry. Large coordinates are scaled down no further than needed: down to 1, the squares of differences
    ``2**-537`` times the largest coordinate (1e30 beside 1e200) would underflow to 0. Finite inputs only."""
    if torch.compiler.is_compiling() or not x.numel() or x.dtype != torch.float64:  # float32: float64 sums are safe
        return x, y, r
    top = [x] if y is None or y is x or not y.numel() else [x, y]
    m = max(float(t.detach().abs().max()) for t in top)  # (detached: positions that require grad, e.g. for forces)
    if m == 0.0 or 2.0**-400 <= m <= 2.0**400:
        return x, y, r
    e = math.frexp(m)[1]  # 2**(e - 1) <= m < 2**e
    s = 2.0 ** (400 - e) if m > 2.0**400 else 2.0 ** min(-e, 1023)  # (subnormal m: 2.0**-e would overflow)
    return x * s, (None if y is None else y * s), (None if r is None else min(max(r * s, 5e-324), 1.7976931348623157e308))


def rescale_points_traced(x: torch.Tensor, y: torch.Tensor | None = None):
    """:func:`rescale_points` without a radius inside a compiled graph (knn, fps): the same power of two ``s``, found
    with tensor ops (no data-dependent branch), and ``(x s, y s)``. A radius is a constant of the graph, which a
    factor known only at run time cannot scale: ``radius`` / ``radius_graph`` stay unscaled there."""
    if x.dtype != torch.float64:
        return x, y
    parts = [x.detach().abs().reshape(-1), x.new_zeros(1)]  # (the zero: no branch on a possibly empty input)
    if y is not None and y is not x:
        parts.append(y.detach().abs().reshape(-1))
    m = torch.cat(parts).amax()
    e = torch.frexp(m).exponent.long()  # 2**(e - 1) <= m < 2**e
    shift = torch.where(m > 2.0**400, 400 - e, torch.where((m < 2.0**-400) & (m > 0), (-e).clamp(max=1023), 0))
    s = torch.ldexp(torch.ones((), dtype=torch.float64, device=x.device), shift)
    return x * s, (None if y is None else x * s if y is x else y * s)


def num_batches(batch: torch.Tensor) -> int:
    """Number of clouds (graphs) of a sorted batch vector: its last entry + 1, 0 when it is empty.

    Inside a compiled graph the length of ``batch`` may be known only at run time (the centres that
    ``fps`` picked), so there it is ``max(batch and -1) + 1``, which needs no branch on the length.
    """
    if torch.compiler.is_compiling():
        return torch.cat([batch, batch.new_full((1,), -1)]).max().item() + 1  # .item(): int() fails under torch.export
    return int(batch[-1]) + 1 if batch.numel() else 0


def batch_to_ptr(batch: torch.Tensor, num_batches: int) -> torch.Tensor:
    """CSR pointer [num_batches + 1] of a sorted batch vector."""
    counts = torch.bincount(batch, minlength=num_batches)
    return torch.nn.functional.pad(torch.cumsum(counts, 0), (1, 0))  # no slicing: traceable with a data-dependent size


def _default_num_segments(index: torch.Tensor) -> int:
    """``index.max() + 1`` (0 when ``index`` is empty): the default number of segments.

    Inside a compiled or exported graph it is ``max(index and -1) + 1`` read with ``.item()``: ``int()`` of a tensor
    fails under ``torch.export`` (a data-dependent guard), and the form needs no branch on the length.
    """
    if torch.compiler.is_compiling():
        return torch.cat([index, index.new_full((1,), -1)]).max().item() + 1
    return int(index.max()) + 1 if index.numel() else 0


def segment_inputs(src, index, dim: int, num_segments, *, floating: bool = False, size_name: str = "dim_size",
                   check_values: bool = True):
    """Shared checks of segment ops (scatter, segment_softmax).

    ``check_values=False`` skips the pass over ``index`` that checks its range when
    ``num_segments`` is given (the caller must check it, e.g. in its kernel's own pass).

    Returns ``(src2 [N, C], index [N] int64, dim (non-negative), num_segments, rest_shape)`` where
    ``src2`` is ``src`` with ``dim`` moved to the front and the other dimensions flattened.
    """
    check_tensor(src, "src", floating=floating)
    if src.dim() == 0:
        raise ValueError("src must have at least one dimension")
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise ValueError(f"dim must be an int, got {dim!r}")
    dim = int(dim)  # a NumPy integer: a Python int from here on
    if not -src.dim() <= dim < src.dim():
        raise ValueError(f"dim={dim} is out of range for src of shape {tuple(src.shape)}")
    dim = dim % src.dim()
    n = src.shape[dim]
    if num_segments is not None:
        if isinstance(num_segments, bool) or not isinstance(num_segments, (numbers.Integral, torch.SymInt)):
            raise ValueError(f"{size_name} must be a non-negative int or None, got {num_segments!r}")
        if not isinstance(num_segments, (int, torch.SymInt)):  # a NumPy integer: a Python int from here on
            num_segments = int(num_segments)
        if torch.compiler.is_compiling():  # may be data-dependent (e.g. batch.max() + 1): a deferred runtime check
            # A constant message: torch 2.11's dynamo cannot trace a message built from a closure.
            torch._check(num_segments >= 0, lambda: "the number of segments (dim_size) must be non-negative")
        elif num_segments < 0:
            raise ValueError(f"{size_name} must be a non-negative int or None, got {num_segments!r}")
    index = check_index(index, "index", n, num_segments, values=check_values or num_segments is None)
    if index.device != src.device:
        raise ValueError(f"index is on {index.device} but src is on {src.device}")
    if num_segments is None:
        num_segments = _default_num_segments(index)
    src2 = src.movedim(dim, 0)
    rest = src2.shape[1:]
    return src2.reshape(n, rest.numel()), index, dim, num_segments, rest
