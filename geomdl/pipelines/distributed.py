"""Multi-process training with torch's own engine (``torchrun`` + DDP).

Launch ``torchrun --nproc_per_node N -m geomdl train CONFIG`` (or
``python -m torch.distributed.run ...``): torchrun sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`setup` then joins the process group with ``nccl`` on
GPUs and ``gloo`` on CPU. Without those variables everything runs as a single process and the
helpers below are no-ops, so the same code path serves both cases.
"""
from __future__ import annotations

import atexit
import datetime
import gc
import math
import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None  # None: not distributed

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.backend is not None


def choose_device(preference: str, local_rank: int = 0) -> torch.device:
    """``preference`` in auto/cpu/cuda -> the device of this process (``cuda:LOCAL_RANK``)."""
    if preference not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {preference!r}")
    if preference == "cuda" and not torch.cuda.is_available():
        raise ValueError("train.device: 'cuda' requested but no CUDA device is available")
    if preference == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


_LEAVE_AT_EXIT = False


def setup(device_preference: str = "auto") -> DistInfo:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1), else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = choose_device(device_preference, local_rank)
    if world <= 1:
        return DistInfo(device=device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, **({"device_id": device} if device.type == "cuda" else {}))
    info = DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=device, backend=backend)
    global _LEAVE_AT_EXIT
    if not _LEAVE_AT_EXIT:  # scripts that never call cleanup() still leave the group before shutdown
        atexit.register(cleanup, info)
        _LEAVE_AT_EXIT = True
    return info


def cleanup(info: DistInfo) -> None:
    """Leave the process group. Objects that hold it (a DDP wrapper's reducer, kept alive by a reference
    cycle such as a scheduler callback bound to its trainer) are collected first, while the group still
    works: left to interpreter shutdown, gloo's threads were torn down in arbitrary order and the process
    aborted after its results were written ("terminate called without an active exception")."""
    if info.distributed and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def all_reduce_max(value: float, info: DistInfo) -> float:
    """The largest ``value`` over the ranks (the same float on every rank); single process: ``value``."""
    if not info.distributed:
        return value
    t = torch.tensor([float(value)], dtype=torch.float64, device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.cpu())


def all_reduce_sum(stats: dict, info: DistInfo) -> dict:
    """Sum every tensor of ``stats`` over the ranks (in place on copies); single process: unchanged."""
    if not info.distributed:
        return stats
    specs = {}
    for rank_specs in all_gather_objects({k: (tuple(v.shape), v.dtype) for k, v in stats.items()}, info):
        specs.update(rank_specs)
    stats = {k: stats[k] if k in stats else torch.zeros(shape, dtype=dtype) for k, (shape, dtype) in specs.items()}
    out = {}
    for key in sorted(stats):
        t = stats[key].detach().clone().to(info.device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        out[key] = t.cpu()
    return out


def all_gather_objects(obj, info: DistInfo) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` (picklable objects)."""
    if not info.distributed:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj, info: DistInfo, src: int = 0):
    """Rank ``src``'s ``obj`` on every rank."""
    if not info.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def barrier(info: DistInfo, timeout: float | None = None) -> None:
    """Wait until every rank has reached this call; single process: no-op.

    ``timeout`` (seconds): how long to wait. ``None`` waits under the process group's own timeout (30 minutes
    for gloo, 10 for nccl, whose watchdog then ends the process). Otherwise the wait runs in a gloo group
    made for it with that timeout, so a long wait (ranks idle while another processes a dataset) trips
    neither; every rank must pass the same ``timeout`` (a collective call)."""
    if not info.distributed:
        return
    if timeout is None:
        dist.barrier()
        return
    if isinstance(timeout, bool) or not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"barrier: timeout must be seconds > 0 or None, got {timeout!r}")
    group, error = None, None
    try:
        group = dist.new_group(backend="gloo", timeout=datetime.timedelta(seconds=float(timeout)))
    except (RuntimeError, ValueError, OSError) as exc:  # e.g. gloo cannot connect where only nccl was set up
        error = exc
    # The ranks agree (on the default group) whether every one made the group: a rank that falls back alone
    # would wait on the default group while the others wait on the new one, and neither wait would end.
    made = torch.tensor([0.0 if group is None else 1.0], device=info.device)
    dist.all_reduce(made, op=dist.ReduceOp.MIN)
    if float(made.cpu()) < 1.0:
        warnings.warn(f"barrier: no gloo group for a wait of {timeout} s on every rank "
                      f"({error if error is not None else 'another rank failed'}); waiting under the process "
                      f"group's own timeout instead (GLOO_SOCKET_IFNAME may help)", RuntimeWarning, stacklevel=2)
        if group is not None:
            dist.destroy_process_group(group)
        dist.barrier()
        return
    try:
        dist.barrier(group=group)
    finally:
        dist.destroy_process_group(group)


class ShardSampler(torch.utils.data.Sampler):
    """Evaluation sampler: rank r gets indices ``r, r + W, r + 2W, ...`` with **no padding**, so
    summed metrics count every sample exactly once (``DistributedSampler`` repeats samples to
    even out the shards, which would bias evaluation)."""

    def __init__(self, length: int, info: DistInfo):
        self.indices = list(range(info.rank, length, info.world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self):
        return len(self.indices)
