"""The task interface that every pipeline plugs into, and the task registry.

A *task* turns a validated :class:`~geomdl.pipelines.config.ExperimentConfig` into datasets and a
model, and says how to compute the loss and the metrics of a batch. The
:class:`~geomdl.pipelines.trainer.Trainer` owns everything else (devices, DDP, AMP, clipping, EMA,
schedules, checkpoints, logging, plots), so a task stays small and has no training loop.

How to add a task
-----------------
1. Write ``geomdl/pipelines/<your_task>.py`` with a subclass of :class:`Task` (or of
   :class:`~geomdl.pipelines.generic.ClassificationTask` / ``RegressionTask``)::

       class EnergyForceTask(Task):
           kind = "regression"              # "classification" -> confusion-matrix plot,
                                            # "regression" -> parity plot, "generic" -> none
           grad_in_eval = True              # forces = -dE/dpos need autograd during evaluation

           def __init__(self, config):
               super().__init__(config)
               opts = check_kwargs(EnergyForceOptions, config.task.kwargs, "task.kwargs")
               self.options = EnergyForceOptions(**opts)   # free-form task.kwargs, validated

           def dataset_for(self, split):    # one split ("train", "val", "test"); the default reads config.data
               return read_my_frames(split)  # any dataset a DataLoader takes (a DataList, a list of Data)

           def forward(self, model, batch, train):
               batch.pos.requires_grad_(True)
               energy = model(batch)
               forces = -torch.autograd.grad(energy.sum(), batch.pos, create_graph=train)[0]
               return {"energy": energy, "forces": forces}

           def loss(self, batch, output):   # scalar, mean over this process's batch
               return mse(output["energy"], batch.energy) + 100 * mse(output["forces"], batch.force)

           def metric_stats(self, batch, output):   # SUMS over the batch, reduced over ranks
               return {**error_sums(output["energy"], batch.energy, "energy"),
                       **error_sums(output["forces"], batch.force, "forces")}

           def compute_metrics(self, stats):        # from the summed stats of the whole split
               return {**mae_rmse_from_sums(stats, "energy"), **mae_rmse_from_sums(stats, "forces")}

2. Register it in :data:`TASKS` below with one line, ``"energy_forces": "geomdl.pipelines.molecular:EnergyForceTask"``
   (a ``"module:Class"`` string keeps ``import geomdl.pipelines.tasks`` cheap and free of cycles).
3. Register models in ``geomdl.models.MODELS`` (``name -> constructor`` or ``"module:attr"``); a model
   takes its hyper-parameters as keyword arguments (``model.kwargs`` in the config, checked against
   its signature) and returns what your ``forward`` expects from ``model(batch)``.
4. Add ``geomdl/configs/<pipeline>.yaml`` and run ``geomdl train <pipeline>``.

From your own code, without editing geomdl, steps 2-4 are ``TASKS["my_task"] = MyTask`` and
``MODELS["my_net"] = MyNet`` (classes or ``"module:attr"`` strings), then
``geomdl.pipelines.runs.train(config_from_dict({"task": {"name": "my_task"}, "model": {"name": "my_net"}, ...}))``.
A checkpoint stores these names only: register them again (import your module) in a new process before
``load_trained`` / ``evaluate_checkpoint``. Override :meth:`Task.dataset_for` for your own data, not only
:meth:`Task.build_datasets`: training builds its splits through it, and evaluating a checkpoint reads each
split from it (a ``build_datasets`` override alone trains, then evaluation looks ``data.name`` up).

Contract details
----------------
* ``metric_stats`` returns tensors that are **summed** over batches and over DDP ranks (counts,
  sums of errors, confusion matrices), so every metric is exact under any sharding;
  ``compute_metrics`` turns them into floats. The trainer adds ``loss`` itself (a task whose loss mixes
  means over different units, e.g. structures and atoms, returns the exact ``loss`` from its sums instead).
* ``predictions`` (optional) returns per-sample tensors gathered on the final evaluation for plots
  (``plot``); return ``None`` to skip. Keep them small (a few numbers per sample).
* Datasets are anything a ``torch_geometric.loader.DataLoader`` takes (a list of ``Data`` works).
  ``dataset_for(split)`` resolves ``data.name`` through :func:`get_dataset` (built-in toy data, then
  ``geomdl.datasets.get_dataset``) and checks ``data.root``.
* ``model_defaults(datasets)`` may fit task state on the training set (number of classes, target
  mean/std, energy shifts); return it from ``state_dict`` so checkpoints restore it.
* ``batch_size_of(batch)`` gives the number of samples the loss is averaged over (graphs by default;
  override for per-node tasks to weight the logged loss correctly).
"""
from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
from typing import Any

from geomdl.pipelines.config import ConfigError, ExperimentConfig, check_kwargs

# task name -> Task subclass or "module:Class" (resolved lazily by get_task)
TASKS: dict[str, Any] = {
    "classification": "geomdl.pipelines.generic:ClassificationTask",
    "regression": "geomdl.pipelines.generic:RegressionTask",
    "energy_forces": "geomdl.pipelines.energy_forces:EnergyForceTask",
    "rotated_classification": "geomdl.pipelines.rotated_classification:RotatedClassificationTask",
    "part_segmentation": "geomdl.pipelines.segmentation:PartSegmentationTask",
}


def _resolve(target, what: str):
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"{what}: cannot load {target!r}: {exc}") from exc
    return target


def get_task(name: str):
    """The Task class registered as ``name`` (``task.name`` in a config)."""
    if name not in TASKS:
        raise ConfigError(f"task.name: unknown task {name!r} (registered: {', '.join(sorted(TASKS))}; a task of your own "
                          f"must be registered, TASKS[{name!r}] = YourTask, in this process)")
    return _resolve(TASKS[name], f"task.name={name!r}")


def build_task(config: ExperimentConfig) -> Task:
    return get_task(config.task.name)(config)


def get_model_constructor(name: str):
    """The constructor registered as ``name`` in ``geomdl.models.MODELS``."""
    from geomdl.models import MODELS

    if name not in MODELS:
        raise ConfigError(f"model.name: unknown model {name!r} (registered: {', '.join(sorted(MODELS)) or 'none'}; a model of "
                          f"your own must be registered, geomdl.models.MODELS[{name!r}] = YourModel, in this process)")
    return _resolve(MODELS[name], f"model.name={name!r}")


def get_dataset(name: str, split: str, root: str | None = None, **kwargs):
    """Built-in toy data (``toy_shapes``, ``toy_regression``) or ``geomdl.datasets.get_dataset``.

    Raises ConfigError when ``root`` is given but missing, or the dataset is unknown.
    """
    if root is not None and not os.path.exists(root):
        raise ConfigError(f"data.root: path {root!r} does not exist")
    from geomdl.pipelines import toy_data

    if name in toy_data.TOY_DATASETS:
        fn = toy_data.TOY_DATASETS[name]
        kwargs = check_kwargs(fn, kwargs, "data.kwargs")
        with _naming_data_kwargs(kwargs):
            return fn(split=split, **kwargs)
    try:
        from geomdl.datasets.registry import DATASETS, canonical_name
        from geomdl.datasets.registry import get_dataset as datasets_get
    except ImportError:
        raise ConfigError(f"data.name: unknown dataset {name!r} (built-in: {', '.join(toy_data.TOY_DATASETS)})") from None
    try:
        canonical_name(name)
    except (ValueError, TypeError):
        names = sorted(set(toy_data.TOY_DATASETS) | set(DATASETS))
        raise ConfigError(f"data.name: unknown dataset {name!r} (choose from {', '.join(names)})") from None
    kwargs = check_kwargs(DATASETS[canonical_name(name)].cls(), kwargs, "data.kwargs")  # a typo names the key
    with _naming_data_kwargs(kwargs):
        return datasets_get(name, root=root, split=split, **kwargs)


def is_generated_dataset(name) -> bool:
    """Whether ``data.name`` is built-in data generated from a seed (toy data, ``synthetic_*``): it reads no
    files, so a data root does not apply to it."""
    from geomdl.pipelines import toy_data

    if name in toy_data.TOY_DATASETS:
        return True
    try:
        from geomdl.datasets.registry import canonical_name

        return canonical_name(name).startswith("synthetic_")
    except (ImportError, ValueError, TypeError):
        return False


@contextlib.contextmanager
def _naming_data_kwargs(kwargs: dict):
    """Prefix a dataset constructor's ValueError/TypeError whose subject names entries of ``data.kwargs``
    (``"num_points must be an int >= 1, got 0"``) with ``data.kwargs.<name>: ``, keeping the error's type and
    chaining the original. An error naming none of them (the split, the files) is left as it is."""
    try:
        yield
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        if isinstance(exc, ConfigError) or msg.startswith("data.kwargs") or type(exc).__str__ is not BaseException.__str__:
            raise
        subject = re.split(r" must | should |: ", msg, maxsplit=1)[0]  # "noise and nonuniform" of "... must be >= 0"
        named = [k for k in kwargs if re.search(rf"(?<![\w./-]){re.escape(str(k))}(?![\w./-])", subject)]
        if not named:
            raise
        prefix = ", ".join(f"data.kwargs.{k}" for k in named)
        try:
            new = type(exc)(f"{prefix}: {msg}")
        except Exception:  # an exception class whose constructor takes other arguments: left as it is
            new = None
        if new is None:
            raise
        raise new from exc


class Task:
    """Base class of a training task (see the module docstring for how to write one).

    Args:
        config: the validated experiment config; ``config.task.kwargs`` holds task options.
    """

    kind = "generic"  # "classification" | "regression" | "generic": which plots are drawn
    grad_in_eval = False  # True when forward needs autograd in evaluation (forces = -dE/dpos)
    splits = ("train", "val")  # splits build_datasets must return (plus optional "test")

    def __init__(self, config: ExperimentConfig):
        self.config = config

    # ---- data --------------------------------------------------------------------------------
    def dataset_for(self, split: str):
        """The dataset of one split from ``config.data`` (``split`` in train/val/test)."""
        d = self.config.data
        for key in ("split", "root"):
            if key in d.kwargs:
                raise ConfigError(f"data.kwargs.{key}: set by the trainer (split) or by data.root (root), not in data.kwargs")
        return get_dataset(d.name, split=split, root=d.root, **d.kwargs)

    def build_datasets(self) -> dict:
        """``{"train": ds, "val": ds}`` (+ ``"test"``); default: :meth:`dataset_for` per split in :attr:`splits`,
        plus :meth:`final_test_split` when :attr:`splits` has no ``"test"`` and it returns one."""
        out = {split: self.dataset_for(split) for split in self.splits}
        if "test" not in out and (test := self.final_test_split()) is not None:
            out["test"] = test
        return out

    def final_test_split(self):
        """The data's ``"test"`` split when it has one with items, else ``None``: scored at the end of a run, never
        during it. A dataset without a test split (its constructor raises ``ValueError`` for ``split="test"``) is
        logged at INFO level. Tasks override this to cap or skip it (``energy_forces``: ``final_test_frames``)."""
        try:
            test = self.dataset_for("test")
        except ConfigError:
            raise
        except ValueError as exc:
            logging.getLogger("geomdl.train").info("no test split in %r (%s): the final evaluation scores val only",
                                                   self.config.data.name, exc)
            return None
        return test if len(test) else None

    def make_loader(self, dataset, batch_size: int, sampler=None, shuffle: bool = False):
        """A loader yielding batches (default: ``torch_geometric.loader.DataLoader``). With ``data.num_workers > 0``
        the workers persist across epochs, for the training and the evaluation loaders alike (a ``spawn`` start,
        the default on macOS and Windows, would otherwise start new processes, and re-import torch, every
        epoch); one set of workers per split stays alive during a run."""
        from torch_geometric.loader import DataLoader

        workers = self.config.data.num_workers
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=shuffle and sampler is None,
                          num_workers=workers, persistent_workers=workers > 0)

    # ---- model -------------------------------------------------------------------------------
    def model_defaults(self, datasets: dict) -> dict:
        """Model kwargs implied by the data (e.g. ``out_channels`` = number of classes); the
        config's ``model.kwargs`` win. Only names the constructor accepts are passed."""
        return {}

    def model_kwargs(self, datasets: dict) -> dict:
        """The final, checked kwargs of the model (stored in checkpoints to identify the model)."""
        ctor = get_model_constructor(self.config.model.name)
        given = check_kwargs(ctor, self.config.model.kwargs, "model.kwargs")
        defaults = self.model_defaults(datasets)
        try:
            accepted = check_kwargs(ctor, defaults, "model.kwargs")
        except ConfigError:  # the model does not take some default: drop those
            import inspect

            names = set(inspect.signature(ctor).parameters)
            accepted = {k: v for k, v in defaults.items() if k in names}
        return {**accepted, **given}

    def build_model(self, model_kwargs: dict):
        """Instantiate ``model.name`` with ``model_kwargs`` (from :meth:`model_kwargs`)."""
        ctor = get_model_constructor(self.config.model.name)
        try:
            return ctor(**model_kwargs)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"model.kwargs: {self.config.model.name}: {exc}") from exc

    # ---- one batch ---------------------------------------------------------------------------
    def forward(self, model, batch, train: bool):
        """The model's output for ``batch`` (any structure ``loss``/``metric_stats`` understand)."""
        return model(batch)

    def loss(self, batch, output):
        """Scalar loss, averaged over the samples of ``batch``."""
        raise NotImplementedError(f"{type(self).__name__}.loss")

    def batch_size_of(self, batch) -> int:
        return int(getattr(batch, "num_graphs", None) or len(batch))

    def metric_stats(self, batch, output) -> dict:
        """Tensors summed over batches and ranks (counts, error sums, confusion matrices)."""
        return {}

    def compute_metrics(self, stats: dict) -> dict:
        """Floats from the summed ``stats`` of a split."""
        return {}

    # ---- state fitted on the data (saved in checkpoints) ---------------------------------------
    def state_dict(self) -> dict:
        """Task state derived from the training data (class count, target mean/std, per-atom
        energy shifts...): tensors and plain values, stored in checkpoints and restored by
        :meth:`load_state_dict` before evaluation or resume."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    # ---- plots -------------------------------------------------------------------------------
    def predictions(self, batch, output) -> dict | None:
        """Small per-sample tensors kept for the final plots (``None``: no plots)."""
        return None

    def plot(self, predictions: dict, stats: dict, out_dir, split: str) -> list:
        """Write PNGs for one evaluated split into ``out_dir``; return their paths."""
        return []
