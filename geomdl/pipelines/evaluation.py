"""Evaluation loop (shared by training and ``geomdl eval``): exact metrics under any sharding.

Each process evaluates its shard (:class:`~geomdl.pipelines.distributed.ShardSampler`, no padding);
the task's summed statistics are all-reduced, then turned into metrics, so a 1-process and an
N-process evaluation give the same numbers up to float summation order.
"""
from __future__ import annotations

import contextlib
import math
import pathlib

import torch

from geomdl.pipelines.distributed import DistInfo, ShardSampler, all_gather_objects, all_reduce_sum
from geomdl.utils.io import atomic_write_json


def autocast_context(device: torch.device, amp_dtype: torch.dtype | None):
    if amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp_dtype)


def move_to(batch, device: torch.device):
    """``batch`` with every tensor (or object with ``.to``) moved to ``device``, through dicts, lists, tuples and
    named tuples (rebuilt field by field)."""
    if hasattr(batch, "to"):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a named tuple takes its fields as arguments
        return type(batch)(*(move_to(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device) for v in batch)
    return batch


def add_stats(total: dict, new: dict) -> dict:
    """Add the statistics ``new`` (tensors or Python numbers) into ``total``, on the CPU; floating-point values
    are summed in float64 (a Python float is taken as float64, not rounded to float32 first)."""
    for key, value in new.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
        else:
            value = torch.tensor(value, dtype=torch.float64 if isinstance(value, float) else None)
        if value.dtype.is_floating_point:
            value = value.double()
        total[key] = total[key] + value if key in total else value.clone()
    return total


def eval_loader(task, dataset, batch_size: int, info: DistInfo):
    return task.make_loader(dataset, batch_size, sampler=ShardSampler(len(dataset), info), shuffle=False)


def evaluate(task, model, loader, info: DistInfo, amp_dtype=None, collect_predictions: bool = False):
    """Run ``model`` over ``loader`` (this rank's shard) and return ``(metrics, stats, predictions)``.

    ``metrics`` holds ``loss`` (the mean of the batch losses weighted by ``task.batch_size_of``, or the
    ``loss`` that ``task.compute_metrics`` returns from its summed statistics, which takes precedence:
    exact for losses that mix per-structure and per-atom means) plus ``task.compute_metrics`` of the
    all-reduced statistics;
    ``predictions`` (when requested and the task provides them) are gathered from every rank and
    concatenated per key, else None.
    """
    was_training = model.training
    model.eval()
    stats: dict = {}
    preds: dict = {}
    grad = torch.enable_grad() if task.grad_in_eval else torch.no_grad()
    with grad:
        for batch in loader:
            batch = move_to(batch, info.device)
            with autocast_context(info.device, amp_dtype):
                output = task.forward(model, batch, train=False)
                loss = task.loss(batch, output)
            n = task.batch_size_of(batch)
            add_stats(stats, {"loss/sum": loss.detach().double() * n, "loss/count": torch.tensor(float(n), dtype=torch.float64)})
            add_stats(stats, task.metric_stats(batch, output))
            if collect_predictions:
                p = task.predictions(batch, output)
                for k, v in (p or {}).items():
                    preds.setdefault(k, []).append(v.detach().cpu())
    model.train(was_training)
    stats = all_reduce_sum(_pad_keys(stats), info)
    count = float(stats.pop("loss/count"))
    loss_sum = float(stats.pop("loss/sum"))
    metrics = {"loss": loss_sum / count if count else math.nan, **task.compute_metrics(stats)}
    predictions = None
    if collect_predictions:
        local = {k: torch.cat(v) for k, v in preds.items()}
        gathered = all_gather_objects(local, info)
        keys = sorted({k for g in gathered for k in g})
        predictions = {k: torch.cat([g[k] for g in gathered if k in g]) for k in keys} if keys else None
    return metrics, stats, predictions


def _pad_keys(stats: dict) -> dict:
    """A rank whose shard is empty still takes part in the all-reduce with zero loss counts."""
    stats.setdefault("loss/sum", torch.zeros((), dtype=torch.float64))
    stats.setdefault("loss/count", torch.zeros((), dtype=torch.float64))
    return stats


def report(task, split: str, metrics: dict, stats: dict, predictions, out_dir: pathlib.Path, plots: bool = True) -> list:
    """Write ``<split>_metrics.json`` and the task's plots for one split; return the plot paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / f"{split}_metrics.json", metrics, indent=2, default=float)  # NaN/inf as null
    if not plots:
        return []
    return list(task.plot(predictions, stats, out_dir, split) or [])
