"""How much memory a new tensor can take: the machine's, the container's (cgroup) limit, or the GPU's.

Used by guards that refuse work before it runs out of memory (TinvNN's dense ``n x n`` route). Every reader
returns ``None`` where the number cannot be read cheaply, and callers then fall back to their own constant.
"""
from __future__ import annotations

import os

import torch

CGROUP_ROOT = "/sys/fs/cgroup"
_UNLIMITED = 2**60  # cgroup v1 writes "no limit" as a number near 2**63


def meminfo_available(path: str = "/proc/meminfo") -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes (Linux), else None."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    if text == "max":  # cgroup v2: no limit
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return None if value >= _UNLIMITED else value


def _stat_sum(path: str, keys: tuple[str, ...]) -> int:
    """The sum of the ``keys`` lines of a cgroup ``memory.stat`` file (absent or unreadable ones count 0)."""
    total = 0
    try:
        with open(path) as f:
            for line in f:
                name, _, value = line.partition(" ")
                if name in keys:
                    total += int(value)
    except (OSError, ValueError):
        pass
    return total


def _own_cgroup_dirs(root: str, proc_cgroup: str) -> list[tuple[str, int]]:
    """``(directory, version)`` of this process's memory cgroup and its ancestors, innermost first.

    The path in ``/proc/self/cgroup`` is relative to the cgroup namespace's root; inside a container the
    mount at ``root`` often shows only the container's own group, so the mount's top directory (the
    container's limit) is always included too."""
    try:
        with open(proc_cgroup) as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, rel = parts
        if controllers == "":  # cgroup v2 (unified)
            base, version = root, 2
        elif "memory" in controllers.split(","):
            base, version = os.path.join(root, "memory"), 1
        else:
            continue
        rel = rel.strip("/")
        while True:
            path = os.path.join(base, rel) if rel else base
            if os.path.isdir(path) and (path, version) not in found:
                found.append((path, version))
            if not rel:
                break
            rel = os.path.dirname(rel)
    return found


def cgroup_available(root: str = CGROUP_ROOT, proc_cgroup: str = "/proc/self/cgroup") -> int | None:
    """Bytes this process's memory cgroups still allow, ``min(limit - used)`` over the group and its ancestors,
    where used = usage minus the clean file page cache (active and inactive, less dirty and writeback pages),
    which the kernel drops for new allocations (shared memory is on the anonymous lists, so it stays used);
    None when no group sets a limit or nothing can be read. Like ``MemAvailable`` an estimate: the kernel keeps
    a little of the cache back."""
    best = None
    for path, version in _own_cgroup_dirs(root, proc_cgroup):
        if version == 2:
            limit, usage = _read_int(os.path.join(path, "memory.max")), _read_int(os.path.join(path, "memory.current"))
            stat = os.path.join(path, "memory.stat")
            cache = _stat_sum(stat, ("inactive_file", "active_file")) - _stat_sum(stat, ("file_dirty", "file_writeback"))
        else:
            limit = _read_int(os.path.join(path, "memory.limit_in_bytes"))
            usage = _read_int(os.path.join(path, "memory.usage_in_bytes"))
            stat = os.path.join(path, "memory.stat")
            cache = (_stat_sum(stat, ("total_inactive_file", "total_active_file"))
                     - _stat_sum(stat, ("total_dirty", "total_writeback")))
        if limit is None:
            continue
        working_set = max(0, (usage or 0) - max(0, cache))
        free = max(0, limit - working_set)
        best = free if best is None else min(best, free)
    return best


def available_bytes(device: torch.device | str = "cpu") -> int | None:
    """Memory free for new tensors on ``device`` in bytes, or None where it cannot be read cheaply.

    CPU: the smaller of ``MemAvailable`` and what the process's cgroups (a container's memory limit) allow.
    CUDA: the driver's free memory plus what torch's caching allocator holds unused."""
    device = torch.device(device)
    if device.type == "cpu":
        readings = [v for v in (meminfo_available(), cgroup_available()) if v is not None]
        return min(readings) if readings else None
    if device.type == "cuda":
        try:
            free, _ = torch.cuda.mem_get_info(device)
            return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
        except (RuntimeError, AttributeError, ValueError):
            return None
    return None
