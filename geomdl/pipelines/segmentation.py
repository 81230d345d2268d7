"""Part segmentation: one class per point, with APEN's vote loss and partition diagnostics.

The ``part_segmentation`` task trains any per-point model of ``geomdl.models`` on samples with
``pos [N, 3]``, a point label ``y [N]`` and (for APEN's vote loss and the partition metrics) the
rigid part of every point ``part [N]``:

* ``apen`` (:class:`~geomdl.nn.apen.APEN`, piecewise E(3)-equivariant with predicted partitions),
* ``apen_global`` (:class:`~geomdl.nn.apen.GlobalFrameAveragedNet`, the same backbone on the whole
  cloud: the globally E(3)-equivariant baseline),
* ``dgcnn`` with ``task: node`` (no equivariance), or any model returning logits ``[N, C]``.

Loss, with ``Y_l`` the per-point votes of layer ``l`` of models that return them and ``c(i)`` the
centroid of the true part of point ``i``::

    L = CE(logits, y) + vote_weight * sum_l mean_i |Y_l,i - c(i)|_1

Metrics per split: ``miou`` (mean over the classes present in targets or predictions of
``IoU_c = TP_c / (TP_c + FP_c + FN_c)``), ``accuracy``, ``iou_<class>`` per class and, for models
that predict partitions, ``lambda_points_l<l>`` (share of points whose layer-``l`` part mixes two
true parts: lambda-hat) and ``parts_per_cloud_l<l>``. All are exact under batching and DDP (summed
statistics).

Data: ``data.name: part_scenes`` builds :class:`~geomdl.pipelines.segmentation_data.PartScenes`
(``data.kwargs``: ``source`` shapes / modelnet / parts, ``train_arrangement``, ``test_arrangement``,
sizes); any other dataset name goes through the registry (e.g. ``synthetic_parts``).

``task.kwargs``: ``num_classes`` (default: from the dataset), ``vote_weight`` (default 1.0),
``class_names`` (default: from the dataset), ``label_smoothing`` (default 0).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F

from geomdl.pipelines import metrics
from geomdl.pipelines.config import ConfigError, check_kwargs
from geomdl.pipelines.generic import resolve_num_classes
from geomdl.pipelines.tasks import Task

SCENE_DATASETS = ("part_scenes",)


@dataclass
class SegmentationOptions:
    num_classes: Optional[int] = None  # default: the dataset's num_classes, else max label + 1
    vote_weight: float = 1.0  # weight of APEN's vote loss (models that return votes)
    label_smoothing: float = 0.0
    class_names: list[str] = field(default_factory=list)


class PartSegmentationTask(Task):
    """Per-point classification with APEN's vote loss (see the module docstring)."""

    kind = "classification"
    splits = ("train", "val", "test")

    def __init__(self, config):
        super().__init__(config)
        self.options = SegmentationOptions(**check_kwargs(SegmentationOptions, config.task.kwargs, "task.kwargs"))
        if not 0 <= self.options.label_smoothing < 1:
            raise ConfigError(f"task.kwargs.label_smoothing: expected a float in [0, 1), got {self.options.label_smoothing}")
        if not (math.isfinite(self.options.vote_weight) and self.options.vote_weight >= 0):  # NaN: a NaN loss
            raise ConfigError(f"task.kwargs.vote_weight: expected a finite float >= 0, got {self.options.vote_weight}")
        if self.options.num_classes is not None and self.options.num_classes < 1:
            raise ConfigError(f"task.kwargs.num_classes: expected an int >= 1 or null, got {self.options.num_classes}")
        self.num_classes = self.options.num_classes
        self.class_names = list(self.options.class_names)

    # ---- data and model ----------------------------------------------------------------------
    def dataset_for(self, split: str):
        d = self.config.data
        if d.name in SCENE_DATASETS:
            from geomdl.pipelines.segmentation_data import PartScenes

            kwargs = check_kwargs(PartScenes, d.kwargs, "data.kwargs")
            if "split" in kwargs or "root" in kwargs:
                raise ConfigError("data.kwargs: set the split by the trainer and the folder by data.root, not in kwargs")
            try:
                return PartScenes(split=split, root=d.root, **kwargs)
            except (ValueError, FileNotFoundError) as exc:
                raise ConfigError(f"data.kwargs: {d.name}: {exc}") from exc
        return super().dataset_for(split)

    def build_datasets(self):
        datasets = super().build_datasets()
        if not self.class_names:
            self.class_names = list(getattr(datasets["train"], "class_names", ()) or ())
        return datasets

    def model_defaults(self, datasets):
        self.num_classes = resolve_num_classes(self.num_classes, datasets["train"], self.options.class_names)
        return {"num_classes": self.num_classes, "out_channels": self.num_classes}

    def state_dict(self):
        return {"num_classes": self.num_classes, "class_names": list(self.class_names)}

    def load_state_dict(self, state):
        self.num_classes = state.get("num_classes", self.num_classes)
        self.class_names = list(state.get("class_names") or self.class_names)

    # ---- one batch ---------------------------------------------------------------------------
    def forward(self, model, batch, train: bool):
        out = model(batch)
        if isinstance(out, torch.Tensor):
            out = {"logits": out}
        if not isinstance(out, dict) or "logits" not in out:
            raise TypeError(f"{self.config.model.name}: a segmentation model must return logits [N, C] or a dict with 'logits'")
        logits = out["logits"]
        if logits.dim() != 2 or logits.shape[0] != batch.pos.shape[0]:
            raise ValueError(f"{self.config.model.name} returned logits of shape {tuple(logits.shape)}; per-point "
                             f"segmentation needs [{batch.pos.shape[0]}, num_classes] (for dgcnn set model.kwargs.task: node)")
        return out

    def _labels(self, batch):
        return batch.y.reshape(-1).long()

    def batch_size_of(self, batch) -> int:
        """Points, not clouds: the loss is a mean over the points of the batch, so the logged train/val
        loss is the exact per-point mean of the split only when batches are weighted by their points
        (clouds of unequal size otherwise give a batch-size-dependent mean of batch means)."""
        return int(batch.y.numel())

    def loss(self, batch, output):
        loss = F.cross_entropy(output["logits"].float(), self._labels(batch), label_smoothing=self.options.label_smoothing)
        votes = output.get("votes")
        if votes and self.options.vote_weight > 0:
            part = getattr(batch, "part", None)
            if part is None:
                raise ValueError("the vote loss needs the rigid part of every point (data.part); set task.kwargs.vote_weight: 0")
            from geomdl.nn.apen import vote_loss

            loss = loss + self.options.vote_weight * vote_loss([v.float() for v in votes], batch.pos.float(), part)
        return loss

    def metric_stats(self, batch, output):
        labels = self._labels(batch)
        stats = {"confusion": metrics.confusion_matrix(output["logits"].argmax(-1), labels, self.num_classes)}
        part = getattr(batch, "part", None)
        partitions = output.get("partitions")
        if part is not None and partitions and output.get("soft"):  # a model that predicts partitions
            from geomdl.nn.apen import refinement_violation

            nb = int(batch.num_graphs)
            for layer, p in enumerate(partitions):
                lam = refinement_violation(p, part, batch.batch)
                stats[f"bad_points_l{layer}"] = torch.tensor(lam["lambda_points"] * labels.numel(), dtype=torch.float64)
                stats[f"parts_l{layer}"] = torch.tensor(float(int(p.max()) + 1 if p.numel() else 0), dtype=torch.float64)
            stats["points"] = torch.tensor(float(labels.numel()), dtype=torch.float64)
            stats["clouds"] = torch.tensor(float(nb), dtype=torch.float64)
        return stats

    def compute_metrics(self, stats):
        conf = stats["confusion"]
        iou = metrics.iou_from_confusion(conf)
        out = {"miou": metrics.miou_from_confusion(conf), "accuracy": metrics.accuracy_from_confusion(conf),
               "num_points": int(conf.sum())}
        names = self.class_names if len(self.class_names) == len(iou) else [str(c) for c in range(len(iou))]
        for name, value in zip(names, iou.tolist()):
            out[f"iou_{name}"] = value
        layer = 0
        while f"bad_points_l{layer}" in stats:
            out[f"lambda_points_l{layer}"] = float(stats[f"bad_points_l{layer}"] / stats["points"].clamp_min(1))
            out[f"parts_per_cloud_l{layer}"] = float(stats[f"parts_l{layer}"] / stats["clouds"].clamp_min(1))
            layer += 1
        return out

    def plot(self, predictions, stats, out_dir, split):
        from geomdl.pipelines.plots import confusion_matrix_plot

        names = self.class_names if len(self.class_names) == self.num_classes else None
        miou = metrics.miou_from_confusion(stats["confusion"])
        return [confusion_matrix_plot(stats["confusion"], out_dir / f"confusion_{split}.png", names,
                                      title=f"{split}: point confusion, mIoU {miou:.3f}")]


def segmentation_plot(pos: torch.Tensor, panels: dict, path, class_names=None, title: str = ""):
    """3-D scatter PNG of one cloud coloured by several per-point labelings side by side.

    Args:
        pos: ``[N, 3]`` positions.
        panels: ``{panel title: int labels [N]}`` (classes, predicted classes, predicted parts...).
        path: PNG file (written atomically).
        class_names: names shown in the legend of panels whose title contains "class".
    """
    import numpy as np
    from matplotlib import colormaps

    from geomdl.pipelines.plots import _figure, _save

    if pos.dim() != 2 or pos.shape[1] != 3:
        raise ValueError(f"pos must have shape [N, 3], got {tuple(pos.shape)}")
    p = pos.detach().double().cpu().numpy()
    fig = _figure(4.2 * len(panels), 4.4)
    cmap = colormaps["tab20"]
    for k, (name, labels) in enumerate(panels.items()):
        labels = torch.as_tensor(labels).reshape(-1)
        if labels.numel() != p.shape[0]:
            raise ValueError(f"panel {name!r}: expected {p.shape[0]} labels, got {labels.numel()}")
        lab = labels.cpu().numpy()
        ax = fig.add_subplot(1, len(panels), k + 1, projection="3d")
        ax.scatter(p[:, 0], p[:, 1], p[:, 2], c=cmap(np.mod(lab, 20)), s=4, depthshade=False)
        ax.set_title(name, fontsize=9)
        ax.set_box_aspect(tuple(np.ptp(p, axis=0).clip(1e-3)))
        ax.set_axis_off()
        if class_names is not None and "class" in name:
            from matplotlib.lines import Line2D

            present = sorted(set(lab.tolist()))
            ax.legend(handles=[Line2D([], [], marker="o", ls="", color=cmap(c % 20), label=class_names[c]) for c in present],
                      fontsize=7, loc="lower left")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)
