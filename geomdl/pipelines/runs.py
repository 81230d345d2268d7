"""Entry points used by the CLI and notebooks: train from a config file, load a trained model,
evaluate a checkpoint.

>>> from geomdl.pipelines.runs import train, load_trained, evaluate_checkpoint  # doctest: +SKIP
>>> summary = train("toy_classification", ["train.epochs=2"])       # doctest: +SKIP
>>> model, task, ckpt = load_trained("runs/toy_classification/last.pt")         # doctest: +SKIP
"""
from __future__ import annotations

import pathlib

import torch

from geomdl.pipelines import checkpoint as ckpt_mod
from geomdl.pipelines.config import ConfigError, ExperimentConfig, apply_overrides, config_from_dict, load_config
from geomdl.pipelines.distributed import cleanup, setup
from geomdl.pipelines.evaluation import eval_loader, evaluate, report
from geomdl.pipelines.tasks import build_task, is_generated_dataset
from geomdl.pipelines.trainer import Trainer
from geomdl.utils.io import file_in_the_way


def train(config: str | pathlib.Path | ExperimentConfig | None, overrides: list[str] | None = None, resume=None,
          overwrite: bool = False) -> dict:
    """Train from a YAML file (or a config object) with ``key=value`` overrides; returns the
    trainer's summary. Joins/leaves the torchrun process group when launched by torchrun. The overrides apply to a
    config object too (a copy; they were ignored)."""
    if isinstance(config, ExperimentConfig):
        cfg = config_from_dict(apply_overrides(config.to_dict(), overrides)) if overrides else config
    else:
        cfg = load_config(config, overrides)
    info = setup(cfg.train.device)
    try:
        return Trainer(cfg, dist_info=info).fit(resume=resume, overwrite=overwrite)
    finally:
        cleanup(info)


def load_trained(path, device: str | torch.device = "cpu", use_ema: bool = True, data_root: str | None = None,
                 allow_other_version: bool = False):
    """``(model, task, checkpoint)`` from a checkpoint, the model in eval mode on ``device`` with the
    EMA weights when the run kept them (``use_ema``). The task has its fitted state restored."""
    ckpt = ckpt_mod.load_checkpoint(path, allow_other_version=allow_other_version)
    try:
        cfg = config_from_dict(ckpt["config"])
    except ValueError as exc:
        raise ckpt_mod.CheckpointError(f"checkpoint {str(path)!r} holds an invalid config ({exc})") from None
    if data_root is not None:
        cfg.data.root = data_root
    task = build_task(cfg)
    task.load_state_dict(ckpt.get("task_state") or {})
    model = task.build_model(ckpt["model_kwargs"])
    weights = ckpt["ema"]["module"] if use_ema and ckpt.get("ema") else ckpt["model"]
    ckpt_mod.load_module_state(model, weights, path)
    return model.to(device).eval(), task, ckpt


def default_eval_dir(path) -> pathlib.Path:
    """Where ``geomdl eval`` writes when not told: ``<checkpoint folder>/eval/<checkpoint stem>``."""
    path = pathlib.Path(path).resolve()
    return path.parent / "eval" / path.stem


def evaluate_checkpoint(path, data_root: str | None = None, splits: list[str] | None = None, out_dir=None,
                        use_ema: bool = True, plots: bool = True, batch_size: int | None = None) -> dict:
    """Evaluate a checkpoint on ``splits`` (default: val and test when the task provides them).

    Writes ``<split>_metrics.json`` and plots into ``out_dir`` on rank 0; returns ``{split: metrics}``.
    The default ``out_dir`` is ``eval/<checkpoint stem>`` in the checkpoint's folder (``runs/x/eval/best/``
    for ``runs/x/best.pt``), so evaluating ``best.pt`` and ``last.pt`` keeps the results of both.
    """
    out = pathlib.Path(out_dir).expanduser() if out_dir else default_eval_dir(path)
    if (blocker := file_in_the_way(out)) is not None:
        raise NotADirectoryError(f"out_dir: {str(blocker)!r} is a file, expected a folder for the metrics and plots")
    ckpt = ckpt_mod.load_checkpoint(path)
    cfg = config_from_dict(ckpt["config"])
    # data_root replaces the run's data.root; on generated data without one it was silently ignored
    if data_root is not None and cfg.data.root is None and is_generated_dataset(cfg.data.name):
        raise ConfigError(f"--data {data_root}: the run's dataset {cfg.data.name!r} is built-in data generated from a seed, "
                          f"it reads no data folder; leave --data (data_root) out")
    if data_root is None and cfg.data.root is not None and not pathlib.Path(cfg.data.root).exists():
        raise ConfigError(f"data.root: the run's data folder {cfg.data.root!r} (stored in the checkpoint) does not exist; "
                          f"give the data's current location (geomdl eval --data PATH)")
    info = setup(cfg.train.device if cfg.train.device != "cuda" or torch.cuda.is_available() else "cpu")
    try:
        model, task, _ = load_trained(path, info.device, use_ema=use_ema, data_root=data_root)
        wanted = splits or [s for s in ("val", "test")]
        results = {}
        bs = batch_size or cfg.data.eval_batch_size or cfg.train.batch_size
        for split in wanted:
            try:
                dataset = task.dataset_for(split)
            except ConfigError:
                raise
            except ValueError as exc:
                if splits:  # asked for explicitly: report, naming the split (e.g. "all" exists for molecular data)
                    raise ValueError(f"split {split!r}: {exc}") from exc
                continue
            if len(dataset) == 0:
                if splits:  # asked for explicitly: an empty split is not a silent no-op
                    raise ValueError(f"--split {split}: the {split!r} split of {cfg.data.name!r} has no items")
                continue
            metrics, stats, preds = evaluate(task, model, eval_loader(task, dataset, bs, info), info, collect_predictions=plots)
            results[split] = metrics
            if info.is_main:
                report(task, split, metrics, stats, preds, out, plots=plots)
        return results
    finally:
        cleanup(info)
