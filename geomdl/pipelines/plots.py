"""PNG plots of a run: learning curves, confusion matrix, parity plot.

Uses matplotlib's object API (``Figure`` + Agg canvas): no pyplot global state, no display needed,
safe inside notebooks. Files are written atomically.
"""
from __future__ import annotations

import math
import pathlib

import torch

from geomdl.utils.io import atomic_path


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> pathlib.Path:
    path = pathlib.Path(path)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def learning_curves(history: list[dict], path) -> pathlib.Path:
    """Loss (train and val) and every other validation metric against the epoch.

    Args:
        history: one dict per epoch with ``epoch`` and keys such as ``train/loss``, ``val/loss``,
            ``val/accuracy`` (missing or non-finite values are skipped).
        path: PNG file to write.
    """
    if not history:
        raise ValueError("history is empty: nothing to plot")
    keys = []
    for row in history:
        for k, v in row.items():
            if "/" in k and isinstance(v, (int, float)) and k not in keys:
                keys.append(k)
    metrics = sorted({k.split("/", 1)[1] for k in keys if k.split("/", 1)[1] != "loss"})
    panels = ["loss"] + metrics
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = _figure(4.2 * cols, 3.2 * rows)
    for i, name in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        for split in ("train", "val", "test"):
            key = f"{split}/{name}"
            pts = [(r["epoch"], r[key]) for r in history if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
            if pts:
                ax.plot(*zip(*pts), marker="o", markersize=3, label=split)
        ax.set_xlabel("epoch")
        ax.set_title(name)
        if name == "loss" and all(v > 0 for r in history for k, v in r.items() if k.endswith("/loss") and isinstance(v, float)):
            ax.set_yscale("log")
        if ax.get_legend_handles_labels()[0]:  # no curves yet (e.g. a 1-epoch run): no empty legend
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return _save(fig, path)


def confusion_matrix_plot(conf: torch.Tensor, path, class_names: list[str] | None = None, title: str = "") -> pathlib.Path:
    """Row-normalised confusion matrix ``conf [C, C]`` (rows: true class) with the counts written in."""
    conf = torch.as_tensor(conf).detach().cpu().double()
    if conf.dim() != 2 or conf.shape[0] != conf.shape[1]:
        raise ValueError(f"conf must be a square [C, C] matrix, got {tuple(conf.shape)}")
    num = conf.shape[0]
    names = class_names or [str(i) for i in range(num)]
    if len(names) != num:
        raise ValueError(f"class_names has {len(names)} names for {num} classes")
    rates = conf / conf.sum(1, keepdim=True).clamp_min(1)
    size = min(3 + 0.45 * num, 14)
    fig = _figure(size + 1, size)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046)
    if num <= 30:
        ax.set_xticks(range(num), names, rotation=90, fontsize=7)
        ax.set_yticks(range(num), names, fontsize=7)
        for t in range(num):
            for p in range(num):
                if conf[t, p]:
                    ax.text(p, t, f"{int(conf[t, p])}", ha="center", va="center", fontsize=6,
                            color="white" if rates[t, p] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix")
    return _save(fig, path)


def parity_plot(pred: torch.Tensor, target: torch.Tensor, path, names: list[str] | None = None, title: str = "") -> pathlib.Path:
    """Predicted against true values, one panel per target column, with the y = x line.

    Args:
        pred, target: ``[N]`` or ``[N, T]`` (same shape).
    """
    pred, target = torch.as_tensor(pred).detach().cpu().double(), torch.as_tensor(target).detach().cpu().double()
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    if pred.dim() == 1:
        pred, target = pred[:, None], target[:, None]
    pred, target = pred.flatten(1), target.flatten(1)  # [N, T] (reshape(N, -1) is ambiguous for N = 0)
    num = pred.shape[1]
    names = names or [f"target {i}" for i in range(num)]
    cols = min(num, 4)
    rows = math.ceil(num / cols)
    fig = _figure(3.6 * cols, 3.4 * rows)
    for i in range(num):
        _parity_panel(fig.add_subplot(rows, cols, i + 1), pred[:, i], target[:, i], names[i] if i < len(names) else str(i))
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def _parity_panel(ax, pred: torch.Tensor, target: torch.Tensor, name: str, max_points: int | None = None) -> None:
    """One parity panel: ``pred`` against ``target`` ``[N]`` (float64), the y = x line, MAE and RMSE of all
    ``N`` points in the title; at most ``max_points`` of them drawn (a seeded random subset, said in the title)."""
    err = pred - target
    label = name
    if len(target):
        label += f"\nMAE {float(err.abs().mean()):.3g}, RMSE {float(err.pow(2).mean().sqrt()):.3g}"
    if max_points is not None and len(target) > max_points:
        keep = torch.randperm(len(target), generator=torch.Generator().manual_seed(0))[:max_points]
        pred, target = pred[keep], target[keep]
        label += f" ({max_points} of {len(err)} drawn)"
    p, t = pred.numpy(), target.numpy()
    ax.scatter(t, p, s=6, alpha=0.6)
    if len(t):
        lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
        ax.plot([lo, hi], [lo, hi], color="black", lw=0.8)
    ax.set_title(label, fontsize=9)
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.grid(alpha=0.3)


def energy_force_parity_plot(energy_pred, energy_true, forces_pred, forces_true, path, unit: str = "",
                             title: str = "", max_points: int = 50_000) -> pathlib.Path:
    """Two parity panels in one PNG: energies per structure (``[B]``) and force components (``[K]``, e.g.
    ``3N`` flattened); errors over all points, at most ``max_points`` of each drawn."""
    pairs = {"energy": (energy_pred, energy_true), "forces": (forces_pred, forces_true)}
    fig = _figure(7.2, 3.4)
    for i, (name, (pred, target)) in enumerate(pairs.items()):
        pred = torch.as_tensor(pred).detach().cpu().double().reshape(-1)
        target = torch.as_tensor(target).detach().cpu().double().reshape(-1)
        if pred.shape != target.shape:
            raise ValueError(f"{name}: predictions and targets must have the same size, got {pred.numel()} and {target.numel()}")
        _parity_panel(fig.add_subplot(1, 2, i + 1), pred, target, f"{name} ({unit})" if unit else name, max_points)
    if title:
        fig.suptitle(title)
    return _save(fig, path)
