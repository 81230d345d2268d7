"""Generic graph-level tasks: classification and regression of one label/target vector per graph.

Any dataset whose samples carry ``y`` works: an integer class ``y [1]`` (classification) or a
float target ``y [1, T]`` / ``y [T]`` (regression). Pipelines with extra needs (rotation
protocols, per-point labels, forces) subclass these or :class:`~geomdl.pipelines.tasks.Task`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

import torch
import torch.nn.functional as F

from geomdl.pipelines import metrics
from geomdl.pipelines.config import ConfigError, check_kwargs
from geomdl.pipelines.tasks import Task


@dataclass
class ClassificationOptions:
    num_classes: Optional[int] = None  # default: max label of the training set + 1
    label_smoothing: float = 0.0
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self):
        n = self.num_classes
        if n is not None and n < 1:
            raise ConfigError(f"task.kwargs.num_classes: expected an int >= 1 or null, got {n}")


def check_labels_fit(num_classes: int, dataset, key: str = "task.kwargs.num_classes") -> None:
    """Raise ConfigError naming ``key`` when a label ``y`` of ``dataset`` is not below ``num_classes`` (the loss
    would fail on an out-of-range target with an IndexError, or a device-side assert on a GPU). A dataset that
    states at most ``num_classes`` classes (a ``num_classes`` count or a ``classes`` list of names, as ModelNet)
    is not read item by item."""
    stated = getattr(dataset, "num_classes", None)
    if not isinstance(stated, int) or isinstance(stated, bool):
        names = getattr(dataset, "classes", None)
        stated = len(names) if isinstance(names, (list, tuple)) else None
    if stated is not None and stated <= num_classes:
        return
    top = -1
    for k in range(len(dataset)):
        y = torch.as_tensor(dataset[k].y)
        if y.numel():
            top = max(top, int(y.max()))
    if top >= num_classes:
        raise ConfigError(f"{key}: {num_classes} classes, but the training set has label {top} "
                          f"(labels must lie in [0, {num_classes}); omit num_classes to infer it)")


def resolve_num_classes(num_classes: int | None, train, class_names) -> int:
    """The number of classes of a classification/segmentation task: ``num_classes`` when given (checked against the
    training labels), else the training set's ``num_classes`` or its largest label + 1; ``class_names`` (when given)
    must name each class."""
    if num_classes is None and isinstance(getattr(train, "num_classes", None), int):
        num_classes = train.num_classes
    elif num_classes is None:
        labels = torch.cat([torch.as_tensor(d.y).reshape(-1) for d in train])
        num_classes = int(labels.max()) + 1
    else:  # given (or restored): the training labels must fit
        check_labels_fit(num_classes, train)
    check_class_names(class_names, num_classes)
    return num_classes


def check_names(names, count: int, key: str, one: str, many: str) -> None:
    """ConfigError naming ``key`` when ``names`` are given but not one per item (``one``/``many``: "class"/"classes",
    "target"/"targets"): they were silently dropped from the plots and metrics."""
    if names and len(names) != count:
        raise ConfigError(f"{key}: {len(names)} names for {count} {many}; give one per {one} (or none)")


def check_class_names(names, num_classes: int, key: str = "task.kwargs.class_names") -> None:
    """:func:`check_names` of the class names."""
    check_names(names, num_classes, key, "class", "classes")


class ClassificationTask(Task):
    """Cross-entropy on logits ``[B, C]``; metrics ``accuracy`` (overall) and ``class_mean_accuracy``.

    ``task.kwargs``: ``num_classes``, ``label_smoothing``, ``class_names`` (for the plot).
    """

    kind = "classification"

    def __init__(self, config):
        super().__init__(config)
        self.options = ClassificationOptions(**check_kwargs(ClassificationOptions, config.task.kwargs, "task.kwargs"))
        if not 0 <= self.options.label_smoothing < 1:
            raise ConfigError(f"task.kwargs.label_smoothing: expected a float in [0, 1), got {self.options.label_smoothing}")
        self.num_classes = self.options.num_classes

    def model_defaults(self, datasets):
        self.num_classes = resolve_num_classes(self.num_classes, datasets["train"], self.options.class_names)
        return {"out_channels": self.num_classes}

    def state_dict(self):
        return {"num_classes": self.num_classes}

    def load_state_dict(self, state):
        self.num_classes = state["num_classes"]

    def _labels(self, batch):
        return batch.y.reshape(-1).long()

    def loss(self, batch, output):
        return F.cross_entropy(output, self._labels(batch), label_smoothing=self.options.label_smoothing)

    def metric_stats(self, batch, output):
        return {"confusion": metrics.confusion_matrix(output.argmax(-1), self._labels(batch), self.num_classes)}

    def compute_metrics(self, stats):
        conf = stats["confusion"]
        return {"accuracy": metrics.accuracy_from_confusion(conf),
                "class_mean_accuracy": metrics.class_mean_accuracy_from_confusion(conf)}

    def plot(self, predictions, stats, out_dir, split):
        from geomdl.pipelines.plots import confusion_matrix_plot

        names = self.options.class_names if len(self.options.class_names) == self.num_classes else None
        acc = metrics.accuracy_from_confusion(stats["confusion"])
        return [confusion_matrix_plot(stats["confusion"], out_dir / f"confusion_{split}.png", names,
                                      title=f"{split}: accuracy {acc:.3f}")]


@dataclass
class RegressionOptions:
    loss: Literal["mse", "l1", "huber"] = "mse"
    normalize: bool = True  # standardise targets with the training set's mean and std
    target_names: list[str] = field(default_factory=list)


class RegressionTask(Task):
    """Regression of ``y [B, T]``: the model predicts standardised targets, ``forward`` returns
    them in the data's units. Metrics: ``mae``, ``rmse`` (all targets, in their mixed units) and per
    target ``<name>_mae``, ``<name>_rmse``, and ``normalized_mae = (1/T) sum_t mae_t / std_t`` (``std_t``
    of the training targets; 1 with ``normalize=False``): unit-free, so every target counts alike when
    it is the monitored metric (QM9's 19 targets span Hartree to bohr^2). ``task.kwargs``: ``loss``,
    ``normalize``, ``target_names``.
    """

    kind = "regression"

    def __init__(self, config):
        super().__init__(config)
        self.options = RegressionOptions(**check_kwargs(RegressionOptions, config.task.kwargs, "task.kwargs"))
        self.mean = self.std = None

    def model_defaults(self, datasets):
        ys = torch.cat([torch.as_tensor(d.y, dtype=torch.float64).reshape(1, -1) for d in datasets["train"]])
        check_names(self.options.target_names, ys.shape[1], "task.kwargs.target_names", "target", "targets")
        if self.mean is None:
            if self.options.normalize:
                self.mean, self.std = ys.mean(0), ys.std(0, unbiased=False).clamp_min(1e-12)
            else:
                self.mean, self.std = torch.zeros(ys.shape[1], dtype=torch.float64), torch.ones(ys.shape[1], dtype=torch.float64)
        return {"out_channels": ys.shape[1]}

    def state_dict(self):
        return {"mean": self.mean, "std": self.std}

    def load_state_dict(self, state):
        self.mean, self.std = state["mean"], state["std"]

    def names(self, num):
        given = self.options.target_names
        return given if len(given) == num else [f"y{i}" for i in range(num)]

    def _target(self, batch, like):
        return batch.y.reshape(like.shape[0], -1).to(like.dtype)

    def forward(self, model, batch, train):
        out = model(batch)
        return out * self.std.to(out) + self.mean.to(out)

    def loss(self, batch, output):
        std = self.std.to(output)
        pred, target = output / std, self._target(batch, output) / std
        if self.options.loss == "l1":
            return F.l1_loss(pred, target)
        if self.options.loss == "huber":
            return F.huber_loss(pred, target)
        return F.mse_loss(pred, target)

    def metric_stats(self, batch, output):
        target = self._target(batch, output)
        stats = metrics.error_sums(output, target)
        for i, name in enumerate(self.names(output.shape[1])):
            stats.update(metrics.error_sums(output[:, i], target[:, i], name))
        return stats

    def compute_metrics(self, stats):
        out = metrics.mae_rmse_from_sums(stats)
        names = self.names(len(self.mean))
        for name in names:
            out.update(metrics.mae_rmse_from_sums(stats, name))
        out["normalized_mae"] = sum(out[f"{name}_mae"] / float(std) for name, std in zip(names, self.std)) / len(names)
        return out

    def predictions(self, batch, output):
        return {"pred": output.detach().double().cpu(), "target": self._target(batch, output).detach().double().cpu()}

    def plot(self, predictions, stats, out_dir, split):
        from geomdl.pipelines.plots import parity_plot

        if not predictions:
            return []
        return [parity_plot(predictions["pred"], predictions["target"], out_dir / f"parity_{split}.png",
                            self.names(predictions["pred"].shape[1]), title=split)]
