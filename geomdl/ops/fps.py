"""Farthest point sampling: ``fps`` (compiled or reference) and ``fps_reference``.

Greedy: start at one point of each cloud; repeatedly add the point whose squared distance to the
already chosen set is largest (ties: the lowest index). Distances are accumulated in float64, left to
right over the coordinates (:func:`geomdl.ops.neighbors.squared_distance`), exactly like the kernel.
"""
from __future__ import annotations

import math
import numbers

import torch

from geomdl.ops._extension import extension_loaded, use_compiled
from geomdl.ops._validation import (batch_to_ptr, check_batch, check_bool, check_int, check_tensor, num_batches, rescale_points,
                                    rescale_points_traced)
from geomdl.ops.neighbors import squared_distance


def _check_arguments(pos, ratio, num) -> int | None:
    """Checks of ``pos``, ``ratio`` and ``num``; returns ``num`` as a Python int at most ``2**63 - 1`` (or None)."""
    check_tensor(pos, "pos", dim=2, floating=True)
    if pos.shape[1] < 1:
        raise ValueError(f"pos must have shape [N, D] with D >= 1, got {tuple(pos.shape)}")
    if (ratio is None) == (num is None):
        raise ValueError("give exactly one of ratio (in (0, 1]) or num (>= 1)")
    if ratio is not None and (isinstance(ratio, bool) or not (isinstance(ratio, numbers.Real) and 0 < ratio <= 1)):
        raise ValueError(f"ratio must lie in (0, 1], got {ratio!r}")
    # capped at 2**63 - 1 (every point of a cloud): under torch.compile a larger num is no int64 for the traced clamp
    return None if num is None else min(check_int(num, "num"), 2**63 - 1)


def _plan(pos, batch, ratio, num, random_start, generator, start=None):
    num = _check_arguments(pos, ratio, num)
    random_start = check_bool(random_start, "random_start")
    if pos.numel() and not bool(torch.isfinite(pos).all()):
        raise ValueError("pos contains NaN or infinite coordinates")
    batch = check_batch(batch, "batch", pos.shape[0], pos.device)
    nb = int(batch.max()) + 1 if batch.numel() else 0
    ids = None  # sparse cloud ids (more ids than points, e.g. [0, 10**9]) are renumbered: no huge pointers
    if nb > batch.numel() + 1:
        ids = torch.unique(batch)
        batch = torch.searchsorted(ids, batch)
        ids = ids.cpu()
    ptr = batch_to_ptr(batch, nb if ids is None else ids.numel())
    sizes = (ptr[1:] - ptr[:-1]).tolist()
    if ratio is not None:
        take = [min(n, max(1, math.ceil(float(ratio) * n))) if n else 0 for n in sizes]  # (a NumPy float: as a float)
    else:
        take = [min(n, num) for n in sizes]
    if start is not None:
        if random_start:
            raise ValueError("give either start or random_start=True, not both")
        start = torch.as_tensor(start)
        if start.is_floating_point() or start.is_complex() or start.dtype == torch.bool:
            raise TypeError(f"start must hold integer local indices, got dtype {start.dtype}")
        if start.shape != (nb,):
            raise ValueError(f"start must have one entry per cloud ({nb}), got shape {tuple(start.shape)}")
        start = start.long().cpu() if ids is None else start.long().cpu()[ids]
        bad = [(b, int(s), n) for b, (s, n) in enumerate(zip(start.tolist(), sizes)) if n and not 0 <= s < n]
        if bad:
            b, s, n = bad[0]
            b = b if ids is None else int(ids[b])
            raise ValueError(f"start[{b}]={s} is not a local index of cloud {b} (size {n})")
        start = [int(s) if n else 0 for s, n in zip(start.tolist(), sizes)]
    elif random_start:
        start = [int(torch.randint(n, (1,), generator=generator)) if n else 0 for n in sizes]
    else:
        start = [0] * len(sizes)
    dev = pos.device
    return ptr, torch.tensor(take, dtype=torch.long, device=dev), torch.tensor(start, dtype=torch.long, device=dev)


def fps(pos: torch.Tensor, batch: torch.Tensor | None = None, ratio: float | None = None, num: int | None = None,
        random_start: bool = False, generator: torch.Generator | None = None, start: torch.Tensor | None = None) -> torch.Tensor:
    """Indices of farthest-point samples of each cloud.

    Args:
        pos: ``[N, D]`` float positions.
        batch: sorted cloud ids ``[N]`` (default: one cloud).
        ratio: fraction of each cloud to keep, ``ceil(ratio * n)`` points (exclusive with ``num``).
        num: number of points to keep per cloud (all when the cloud is smaller).
        random_start: start at a random point of each cloud instead of its first point.
        generator: torch generator for ``random_start``.
        start: optional int ``[num_clouds]``, the local index (within its cloud) of each cloud's first sample.

    Returns:
        int64 ``[M]`` global indices into ``pos``, cloud by cloud, in selection order. Samples are distinct
        points while the cloud has that many distinct positions; beyond that (duplicate points) every remaining
        distance is 0 and the tie goes to the lowest index, an already selected one (``fps(zeros(4, 3), num=4)``
        is ``[0, 0, 0, 0]``): deduplicate the cloud first for distinct samples.
    """
    if torch.compiler.is_compiling():
        return _fps_traced(pos, batch, ratio, num, random_start, start)
    ptr, take, start = _plan(pos, batch, ratio, num, random_start, generator, start)
    pos = rescale_points(pos)[0]  # float64 beyond 2**400 or below 2**-400: squares neither overflow nor vanish
    if use_compiled("fps", pos, tangents=False):  # indices: no tangents, compiled inside forward-mode AD too
        return torch.ops.geomdl.fps(pos.detach().contiguous(), ptr, take, start)
    return _fps_reference(pos, ptr, take, start)


def _fps_traced(pos, batch, ratio, num, random_start, start):
    """:func:`fps` inside a compiled graph: the plan of :func:`_plan` in tensor operations (no Python
    lists), the compiled operator (whose output length is only known at run time). The same samples as
    eager: ``ceil(ratio * n)`` is the same float64 product. Checks of values (start in range) are skipped."""
    num = _check_arguments(pos, ratio, num)
    if check_bool(random_start, "random_start"):
        raise ValueError("fps(random_start=True) does not compile (it draws in Python); pass start= instead")
    if not use_compiled("fps", pos, tangents=False):
        raise ValueError("fps compiles only as the compiled operator (geomdl._C), not as the reference")
    batch = check_batch(batch, "batch", pos.shape[0], pos.device)
    nb = num_batches(batch)
    sizes = torch.bincount(batch, minlength=nb)
    ptr = torch.nn.functional.pad(torch.cumsum(sizes, 0), (1, 0))
    if ratio is not None:
        take = torch.minimum(sizes, torch.ceil(sizes.double() * float(ratio)).long().clamp(min=1)) * (sizes > 0)
    else:
        take = sizes.clamp(max=num)
    if start is None:
        start = torch.zeros_like(sizes)
    else:
        start = torch.as_tensor(start, dtype=torch.long, device=pos.device).reshape(-1) * (sizes > 0)
    return torch.ops.geomdl.fps(rescale_points_traced(pos)[0].detach().contiguous(), ptr, take, start)


def fps_reference(pos, batch=None, ratio=None, num=None, random_start=False, generator=None, start=None):
    """Pure-PyTorch specification of :func:`fps`."""
    ptr, take, start = _plan(pos, batch, ratio, num, random_start, generator, start)
    return _fps_reference(rescale_points(pos)[0], ptr, take, start)


def _fps_reference(pos, ptr, take, start):
    out = []
    for b in range(take.numel()):
        lo, hi, m = int(ptr[b]), int(ptr[b + 1]), int(take[b])
        if m == 0:
            continue
        p = pos[lo:hi].double()
        chosen = [int(start[b])]
        dist = squared_distance(p, p[chosen[0]])
        for _ in range(m - 1):
            nxt = int(torch.argmax(dist))  # first maximum = lowest index on ties
            chosen.append(nxt)
            dist = torch.minimum(dist, squared_distance(p, p[nxt]))
        out.append(torch.tensor(chosen, dtype=torch.long, device=pos.device) + lo)
    if not out:
        return torch.zeros(0, dtype=torch.long, device=pos.device)
    return torch.cat(out)


def _register() -> None:
    if not extension_loaded():
        return

    @torch.library.register_fake("geomdl::fps")
    def _fps_fake(pos, ptr, num, start):  # [M] with M = sum(num), known only at run time
        return pos.new_empty((torch.library.get_ctx().new_dynamic_size(),), dtype=torch.long)


_register()
