"""Point-cloud classification under rotation protocols (z/z, z/SO3, SO3/SO3), with or without TinvNN.

The task trains ``model.name`` (any point network of ``geomdl.models``, e.g. ``pointnet``, ``pointnet2``,
``dgcnn``) on aligned shapes, optionally wrapped in :class:`~geomdl.nn.tinv.TinvNet`, and evaluates every
validation/test cloud several times: unrotated and under each protocol of ``eval_rotations``.

``task.kwargs`` (besides ``num_classes``, ``label_smoothing``, ``class_names`` of ``classification``):

* ``tinvnn`` (default True): wrap the backbone in ``TinvNet``; ``tinvnn_dim`` (3), ``tinvnn_degenerate``
  (``"pick"``/``"average"``), ``tinvnn_scale`` (``"rms"``/``"max"``) are passed to it.
* ``train_rotation``: ``"none"``, ``"z"`` (default; random rotation about the up axis per cloud and step)
  or ``"so3"`` (Haar-random rotation).
* ``eval_rotations`` (default ``["z", "so3"]``): protocols evaluated on val/test; each cloud gets a fixed
  rotation per protocol drawn from ``rotation_seed`` and its index, so evaluations are reproducible.
* ``normalize`` (default True): centre every cloud and scale it into the unit sphere first.
* ``val_split`` / ``test_split`` (default ``"val"`` / ``"test"``): the dataset splits evaluated as val and
  test (ModelNet has no validation split: set ``val_split: test`` and say so when reporting).

Metrics per split: ``accuracy`` / ``class_mean_accuracy`` under the training protocol (``none`` when
training is unrotated) and ``accuracy_<p>`` / ``class_mean_accuracy_<p>`` for ``p`` in ``none`` and the
``eval_rotations``. A run trained with ``z`` gives z/z as ``accuracy_z`` and z/SO3 as ``accuracy_so3``;
a run trained with ``so3`` gives SO3/SO3 as ``accuracy_so3``.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F

from geomdl.pipelines import metrics
from geomdl.pipelines.config import ConfigError, check_kwargs
from geomdl.pipelines.generic import ClassificationOptions, ClassificationTask

PROTOCOLS = ("none", "z", "so3")


@dataclass
class RotatedClassificationOptions(ClassificationOptions):
    tinvnn: bool = True
    tinvnn_dim: int = 3
    tinvnn_degenerate: Literal["pick", "average"] = "pick"
    tinvnn_scale: Literal["rms", "max"] = "rms"
    train_rotation: Literal["none", "z", "so3"] = "z"
    eval_rotations: list[str] = field(default_factory=lambda: ["z", "so3"])
    rotation_seed: int = 1234
    normalize: bool = True
    val_split: str = "val"  # dataset split used for validation ("test" for ModelNet, which has no val split)
    test_split: str = "test"


class _Indexed(torch.utils.data.Dataset):
    """A dataset whose samples also carry ``sample_id [1]`` (their index), for fixed eval rotations."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        data = copy.copy(self.dataset[index])
        data.sample_id = torch.tensor([index])
        return data


def rotation_batch(kind: str, count: int, generator: torch.Generator | None = None, dtype=torch.float32) -> torch.Tensor:
    """``[count, 3, 3]`` random rotations of ``kind`` (``none``: identities; ``z``; ``so3``)."""
    from geomdl.datasets.functional import random_rotation_matrix

    if kind == "none":
        return torch.eye(3, dtype=dtype).expand(count, 3, 3).clone()
    group = {"z": "z", "so3": "SO3"}[kind]
    return torch.stack([random_rotation_matrix(group, generator=generator, dtype=dtype) for _ in range(count)]) \
        if count else torch.zeros(0, 3, 3, dtype=dtype)


def normalize_clouds(pos: torch.Tensor, batch: torch.Tensor, num: int) -> torch.Tensor:
    """Centre every cloud on its centroid and scale it into the unit sphere."""
    from geomdl.ops import scatter

    centred = pos - scatter(pos, batch, dim_size=num, reduce="mean")[batch]
    # second pass: the first centroid is only known to ~ulp of the offset (1e-3 at 1e4 in float32)
    centred = centred - scatter(centred, batch, dim_size=num, reduce="mean")[batch]
    radius = scatter(centred.norm(dim=1), batch, dim_size=num, reduce="max").clamp(min=1e-12)
    return centred / radius[batch, None]


class RotatedClassificationTask(ClassificationTask):
    """Classification with rotation protocols and an optional TinvNN front end (see the module docstring)."""

    splits = ("train", "val", "test")

    def __init__(self, config):
        super(ClassificationTask, self).__init__(config)
        opts = check_kwargs(RotatedClassificationOptions, config.task.kwargs, "task.kwargs")
        self.options = RotatedClassificationOptions(**opts)
        if not 0 <= self.options.label_smoothing < 1:
            raise ConfigError(f"task.kwargs.label_smoothing: expected a float in [0, 1), got {self.options.label_smoothing}")
        bad = [p for p in self.options.eval_rotations if p not in PROTOCOLS]
        if bad:
            raise ConfigError(f"task.kwargs.eval_rotations: unknown protocol(s) {bad}; choose from {list(PROTOCOLS)}")
        if not -(2 ** 40) < self.options.rotation_seed < 2 ** 40:  # x 1_000_003 (+ index) must fit a 64-bit torch seed
            raise ConfigError(f"task.kwargs.rotation_seed: expected an int in (-2**40, 2**40), got {self.options.rotation_seed}")
        self.protocols = list(dict.fromkeys(["none", self.options.train_rotation, *self.options.eval_rotations]))
        self.num_classes = self.options.num_classes

    # ---- data and model ----------------------------------------------------------------------
    def dataset_for(self, split: str):
        """The dataset of ``split`` (``val``/``test`` mapped through ``val_split``/``test_split``), its samples
        numbered (``sample_id``) so that evaluation rotations are fixed per sample."""
        name = {"val": self.options.val_split, "test": self.options.test_split}.get(split, split)
        return _Indexed(super().dataset_for(name))

    def build_datasets(self):
        names = {"train": "train", "val": self.options.val_split, "test": self.options.test_split}
        built: dict = {}
        for split, name in names.items():
            if name not in built:
                built[name] = self.dataset_for(split)
        return {split: built[name] for split, name in names.items()}

    def build_model(self, model_kwargs: dict):
        backbone = super().build_model(model_kwargs)
        if not self.options.tinvnn:
            return backbone
        from geomdl.nn.tinv import TinvNet

        try:
            return TinvNet(backbone, dim=self.options.tinvnn_dim, degenerate=self.options.tinvnn_degenerate,
                           scale=self.options.tinvnn_scale)
        except ValueError as exc:
            raise ConfigError(f"task.kwargs: TinvNN: {exc}") from exc

    # ---- one batch ---------------------------------------------------------------------------
    def _rotated(self, batch, kind: str, train: bool):
        num = int(batch.num_graphs)
        pos = batch.pos
        if self.options.normalize:
            pos = normalize_clouds(pos, batch.batch, num)
        if kind != "none":
            if train:
                rots = rotation_batch(kind, num, dtype=pos.dtype)
            else:  # fixed per sample: seeded by (rotation_seed, protocol, sample index)
                ids = getattr(batch, "sample_id", None)
                # without sample ids (a loader not built by this task) the rotation follows the position in the batch
                ids = ids.reshape(-1).tolist() if isinstance(ids, torch.Tensor) else list(range(num))
                rots = torch.stack([rotation_batch(kind, 1, torch.Generator().manual_seed(
                    self.options.rotation_seed * 1_000_003 + PROTOCOLS.index(kind) * 7919 + int(i)), pos.dtype)[0] for i in ids])
            pos = torch.einsum("nij,nj->ni", rots.to(pos.device)[batch.batch], pos)
        moved = copy.copy(batch)
        moved.pos = pos
        return moved

    def forward(self, model, batch, train: bool):
        if train:
            return model(self._rotated(batch, self.options.train_rotation, True))
        return {kind: model(self._rotated(batch, kind, False)) for kind in self.protocols}

    def _primary(self, output):
        return output[self.options.train_rotation] if isinstance(output, dict) else output

    def loss(self, batch, output):
        return F.cross_entropy(self._primary(output), self._labels(batch), label_smoothing=self.options.label_smoothing)

    def metric_stats(self, batch, output):
        labels = self._labels(batch)
        stats = {"confusion": metrics.confusion_matrix(self._primary(output).argmax(-1), labels, self.num_classes)}
        if isinstance(output, dict):
            for kind, logits in output.items():
                stats[f"confusion_{kind}"] = metrics.confusion_matrix(logits.argmax(-1), labels, self.num_classes)
        return stats

    def compute_metrics(self, stats):
        out = super().compute_metrics(stats)
        out["num_samples"] = int(stats["confusion"].sum())
        for kind in self.protocols:
            conf = stats.get(f"confusion_{kind}")
            if conf is not None:
                out[f"accuracy_{kind}"] = metrics.accuracy_from_confusion(conf)
                out[f"class_mean_accuracy_{kind}"] = metrics.class_mean_accuracy_from_confusion(conf)
        return out
