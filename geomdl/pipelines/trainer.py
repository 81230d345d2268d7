"""The training loop shared by every pipeline.

``Trainer(config).fit()`` builds the task's datasets and model, then trains with: seeding and
deterministic algorithms on CPU, DDP under torchrun (``DistributedSampler``, gloo on CPU, nccl on
GPU), mixed precision on GPU (bf16, or fp16 with a gradient scaler), gradient clipping, an EMA of
the weights, per-step LR schedules with warm-up, early stopping on a monitored metric, tqdm
progress (only on a TTY), ``metrics.csv`` (+ TensorBoard), PNG plots, and atomic checkpoints
(``last.pt`` every ``checkpoint_every`` epochs, ``best.pt`` on improvement) from which
``fit(resume=...)`` continues the same run bit-for-bit on CPU. Only rank 0 writes files. The final
evaluation of every split uses ``best.pt``'s weights (``train.final_weights: best``, the default) or the
last ones (``last``). Saving, resuming and best-tracking live in :mod:`geomdl.pipelines.trainer_checkpoints`.

With fp16 the gradient scaler skips the optimiser step of a batch whose gradients hold inf/NaN (and lowers
its scale); the LR schedule and the EMA then stay put too. ``state["step"]`` (``step`` in ``metrics.csv``
and ``results.json``) counts applied optimiser steps only; skipped ones are counted in
``state["skipped_steps"]`` (``skipped_steps`` in ``results.json``) and, per epoch, in the
``train/skipped_steps`` column, logged when the scaler is active. The loss of a skipped batch still counts
in ``train/loss``; ``train/grad_norm`` averages over applied steps.

``train.time_budget`` (seconds of wall time, summed over resumes; ``state["elapsed"]``) ends the run after
the optimiser step that spends it, mid-epoch if need be: that epoch is validated and checkpointed, and the
summary says ``time_budget_spent``. The cosine schedule then follows the spent fraction of the budget (the
largest over the DDP ranks, so every rank uses the same learning rate), which makes such a run depend on
the clock: it is not bit-for-bit reproducible. Resuming with a larger budget continues the run.

Run folder (``train.out_dir``)::

    config.yaml  last.pt  best.pt  metrics.csv  learning_curves.png  <split>_metrics.json
    confusion_<split>.png | parity_<split>.png  results.json  tensorboard/
"""
from __future__ import annotations

import itertools
import logging
import math
import pathlib
import sys
import time

import torch

from geomdl.pipelines import checkpoint as ckpt_mod
from geomdl.pipelines.config import ConfigError, ExperimentConfig, check_kwargs, dump_config
from geomdl.pipelines.distributed import DistInfo, all_gather_objects, all_reduce_max, all_reduce_sum, barrier, setup
from geomdl.pipelines.ema import ModelEMA
from geomdl.pipelines.evaluation import autocast_context, eval_loader, evaluate, move_to, report
from geomdl.pipelines.loggers import MetricsLogger, remove_end_of_run_files, remove_run_files
from geomdl.pipelines.optim import build_optimizer, build_scheduler
from geomdl.pipelines.tasks import Task, build_task, get_model_constructor
from geomdl.pipelines.trainer_checkpoints import CheckpointMixin
from geomdl.utils.io import atomic_write_json, atomic_write_text, file_in_the_way

log = logging.getLogger("geomdl.train")


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (``KeyboardInterrupt``) during :meth:`Trainer.fit`, with where the run stands.

    Attributes: ``epoch`` (the 1-based epoch that was running; ``None`` in the final evaluation, ``0`` while the run
    was being prepared: data, model, checkpoint), ``saved_epoch`` (the epoch ``last.pt`` holds
    from this process, or ``None`` when none was written here), ``last_checkpoint`` (``out_dir/last.pt`` when it
    exists, else ``None``), ``out_dir``. ``last.pt`` is written atomically, so an interrupt never corrupts it.
    """

    def __init__(self, epoch: int, saved_epoch: int | None, last_checkpoint, out_dir):
        self.epoch, self.saved_epoch, self.last_checkpoint, self.out_dir = epoch, saved_epoch, last_checkpoint, out_dir
        held = ("no checkpoint" if last_checkpoint is None else
                f"{last_checkpoint} holds epoch {saved_epoch}" if saved_epoch is not None else
                f"{last_checkpoint} is from before this process")
        where = ("during the final evaluation" if epoch is None else "while preparing the run" if epoch == 0 else
                 f"in epoch {epoch}")
        super().__init__(f"training interrupted {where}; {held}")

    def __reduce__(self):  # picklable (e.g. across multiprocessing), with its attributes
        return type(self), (self.epoch, self.saved_epoch, self.last_checkpoint, self.out_dir)


def amp_dtype_for(setting: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``train.amp`` on ``device`` (None: full precision)."""
    if setting == "off":
        return None
    if setting == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float16 if device.type == "cuda" else None
    if setting == "fp16" and device.type != "cuda":
        raise ConfigError("train.amp: 'fp16' needs a GPU (use 'bf16' or 'off' on CPU)")
    return torch.bfloat16 if setting == "bf16" else torch.float16


def iterate_batches(loader):
    """``iter(loader)`` without advancing the global torch RNG (a resumed run continues the same random stream).

    Making a DataLoader iterator draws its workers' base seed from that RNG: every epoch without workers, but
    once per process with persistent workers (``data.num_workers > 0``), so a resumed run drew where the
    uninterrupted one did not, and its dropout masks and weights differed from the first resumed epoch on.
    """
    with torch.random.fork_rng(devices=[]):
        return iter(loader)


def weights_fingerprint(model: torch.nn.Module) -> str:
    """sha256 of the bytes of every parameter and buffer (equal iff the weights are bit-identical)."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class Trainer(CheckpointMixin):
    """Train ``config.task`` (see the module docstring).

    Args:
        config: a validated :class:`ExperimentConfig`.
        task: a Task instance (default: built from ``config.task.name``).
        dist_info: process-group info (default: :func:`geomdl.pipelines.distributed.setup`).
    """

    def __init__(self, config: ExperimentConfig, task: Task | None = None, dist_info: DistInfo | None = None):
        self.config = config
        self.info = dist_info or setup(config.train.device)
        self.task = task or build_task(config)
        self.out_dir = pathlib.Path(config.train.out_dir).expanduser()  # "~/runs" in a config is the home folder
        self.model = self.ema = None
        self.clock = time.perf_counter  # the time budget's clock (tests replace it)
        self._elapsed_base, self._clock_start, self._synced_elapsed, self._budget_spent = 0.0, None, 0.0, False
        self._saved_epoch = None  # the epoch of the last last.pt this process wrote (TrainingInterrupted)
        self._running_epoch = None  # the 1-based epoch in progress (None: before the first, or in the final evaluation)

    # ---- set-up ------------------------------------------------------------------------------
    def _build(self, resume_ckpt: dict | None, resume_path):
        cfg, info, task = self.config, self.info, self.task
        ckpt_mod.seed_everything(cfg.seed)
        datasets = self._build_datasets()
        for split in ("train", "val"):
            if split not in datasets or len(datasets[split]) == 0:
                raise ConfigError(f"data: the task built no {split!r} samples (data.name={cfg.data.name!r})")
        self.datasets = datasets
        if resume_ckpt is not None:
            task.load_state_dict(resume_ckpt.get("task_state") or {})
        self.model_kwargs = task.model_kwargs(datasets)
        if resume_ckpt is not None:
            ckpt_mod.check_model(resume_ckpt, cfg.model.name, self.model_kwargs, resume_path)
        model = task.build_model(self.model_kwargs).to(info.device)
        self.raw_model = model
        self.ema = ModelEMA(model, cfg.train.ema_decay) if cfg.train.ema_decay else None
        if info.distributed:
            from torch.nn.parallel import DistributedDataParallel

            model = DistributedDataParallel(model, device_ids=[info.device] if info.device.type == "cuda" else None,
                                            find_unused_parameters=cfg.train.find_unused_parameters)
        self.model = model
        if cfg.train.batch_size % info.world_size:
            raise ConfigError(f"train.batch_size: {cfg.train.batch_size} is not divisible by the {info.world_size} processes")
        self.sampler = torch.utils.data.DistributedSampler(datasets["train"], num_replicas=info.world_size, rank=info.rank,
                                                           shuffle=True, seed=cfg.seed, drop_last=False)
        self.train_loader = task.make_loader(datasets["train"], cfg.train.batch_size // info.world_size, sampler=self.sampler)
        eval_bs = cfg.data.eval_batch_size or cfg.train.batch_size
        self.eval_loaders = {s: eval_loader(task, ds, eval_bs, info) for s, ds in datasets.items() if s != "train" and len(ds)}
        self.eval_sizes = {s: len(ds) for s, ds in datasets.items() if s in self.eval_loaders}
        self.steps_per_epoch = len(self.train_loader)
        self.optimizer = build_optimizer([p for p in self.raw_model.parameters() if p.requires_grad], cfg.optim)
        self.scheduler = build_scheduler(self.optimizer, cfg.optim, cfg.train.epochs * self.steps_per_epoch,
                                         progress=self._budget_fraction if cfg.train.time_budget else None)
        self.amp_dtype = amp_dtype_for(cfg.train.amp, info.device)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.state = {"epoch": 0, "step": 0, "skipped_steps": 0, "best": None, "best_epoch": None, "bad_evals": 0,
                      "history": [], "finished": False, "elapsed": 0.0}
        if info.rank:
            ckpt_mod.seed_everything(cfg.seed + 1_000_003 * info.rank)  # distinct dropout/augmentation streams

    def _build_datasets(self) -> dict:
        """``task.build_datasets()``; under DDP the processes of local rank 0 build first (writing the processed
        caches) while the others wait at a barrier and then load those caches, instead of every rank processing
        the raw files at once (N times the CPU and memory; the atomic cache writes keep that safe, only
        wasteful). Rank 0 reaches the barrier also when building fails, so the others never wait for it: they
        build themselves and report the same error. The wait has its own timeout, ``train.prepare_timeout``
        (default 4 hours), not the process group's (30 minutes for gloo, 10 for nccl)."""
        info = self.info
        if not info.distributed:
            return self.task.build_datasets()
        timeout = self.config.train.prepare_timeout
        if info.local_rank != 0:
            barrier(info, timeout=timeout)
            return self.task.build_datasets()
        try:
            return self.task.build_datasets()
        finally:
            barrier(info, timeout=timeout)

    # ---- time budget -------------------------------------------------------------------------
    def _elapsed(self) -> float:
        """Wall seconds of this run so far, summed over resumes."""
        return self._elapsed_base + (self.clock() - self._clock_start)

    def _budget_fraction(self) -> float:
        """Spent fraction of ``train.time_budget`` (the cosine's position), as agreed by the ranks."""
        return min(1.0, self._synced_elapsed / self.config.train.time_budget)

    # ---- one epoch ---------------------------------------------------------------------------
    def _progress(self, iterable, desc: str, total: int | None = None):
        mode = self.config.train.progress
        show = self.info.is_main and (mode == "on" or (mode == "auto" and sys.stderr.isatty()))
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=desc, total=total, disable=not show, leave=False, dynamic_ncols=True)

    def _train_epoch(self, epoch: int) -> dict:
        cfg, task, info = self.config, self.task, self.info
        self.model.train()
        self.sampler.set_epoch(epoch)
        # sums kept on the device: no host sync per step (the progress bar reads them every 10 steps when shown)
        loss_sum = torch.zeros((), dtype=torch.float64, device=info.device)
        count = torch.zeros((), dtype=torch.float64)
        grad_norm_sum = torch.zeros((), dtype=torch.float64, device=info.device)
        budget, steps, skipped = cfg.train.time_budget, 0, 0
        self._scale = self.scaler.get_scale() if self.scaler is not None else None
        batches = iterate_batches(self.train_loader)
        bar = self._progress(batches, f"epoch {epoch + 1}/{cfg.train.epochs}", self.steps_per_epoch)
        for i, batch in enumerate(bar):
            batch = move_to(batch, info.device)
            with autocast_context(info.device, self.amp_dtype):
                output = task.forward(self.model, batch, train=True)
                loss = task.loss(batch, output)
            applied, norm = self._step(loss)
            if budget is not None:  # before the scheduler, which reads the spent fraction
                self._synced_elapsed = all_reduce_max(self._elapsed(), info)
            if applied:
                self.scheduler.step()
                if self.ema is not None:
                    self.ema.update(self.raw_model)
                if norm is not None:
                    grad_norm_sum += norm.detach().double()
                self.state["step"] += 1
                steps += 1
            else:
                self.state["skipped_steps"] += 1
                skipped += 1
            n = task.batch_size_of(batch)
            loss_sum += loss.detach().double() * n
            count += n
            if bar.disable is False and (i % 10 == 0 or i == self.steps_per_epoch - 1):
                bar.set_postfix(loss=f"{float(loss_sum / count):.4g}", lr=f"{self.scheduler.get_last_lr()[0]:.3g}")
            if budget is not None and self._synced_elapsed >= budget:  # every rank sees the same value
                self._budget_spent = True
                break
        bar.close()
        totals = all_reduce_sum({"loss_sum": loss_sum.cpu(), "count": count}, info)
        train_loss = float(totals["loss_sum"] / totals["count"])
        if not math.isfinite(train_loss):
            raise FloatingPointError(f"training loss became {train_loss} in epoch {epoch + 1}: lower optim.lr or set optim.grad_clip")
        row = {"train/loss": train_loss, "lr": self.scheduler.get_last_lr()[0]}
        if cfg.optim.grad_clip is not None:
            row["train/grad_norm"] = float(grad_norm_sum.cpu()) / max(1, steps)
        if self.scaler is not None:
            row["train/skipped_steps"] = skipped
        return row

    def _step(self, loss: torch.Tensor) -> tuple[bool, torch.Tensor | None]:
        """Backward pass, gradient clipping and optimiser step; returns ``(applied, gradient norm or None)``.

        ``applied`` is False when the fp16 gradient scaler found inf/NaN gradients and skipped the optimiser
        step. Its scale drops in ``update()`` on such a step only (and never on an applied one), so the scale
        after the update is compared with the one after the previous update (``self._scale``, read at the start
        of each epoch): reading it costs one host sync per step, on the fp16 path only.
        """
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        norm = None
        if self.config.optim.grad_clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), self.config.optim.grad_clip)
        if self.scaler is None:
            self.optimizer.step()
            return True, norm
        self.scaler.step(self.optimizer)
        self.scaler.update()
        scale, previous = self.scaler.get_scale(), self._scale
        self._scale = scale
        return scale >= previous, norm

    @property
    def eval_model(self):
        return self.ema.module if self.ema is not None else self.raw_model

    # ---- the run -----------------------------------------------------------------------------
    def fit(self, resume=None, overwrite: bool = False) -> dict:
        """Train; returns a summary (final metrics per split, paths). ``resume``: a checkpoint path,
        or True for ``<out_dir>/last.pt``. ``overwrite`` allows starting afresh in a folder that
        already holds a run, or resuming a checkpoint of another folder into it (otherwise an error, so
        earlier checkpoints are never clobbered)."""
        cfg, info = self.config, self.info
        check_kwargs(get_model_constructor(cfg.model.name), cfg.model.kwargs, "model.kwargs")  # fail before any I/O
        if cfg.data.root is not None and not pathlib.Path(cfg.data.root).exists():
            raise ConfigError(f"data.root: path {cfg.data.root!r} does not exist")
        if (blocker := file_in_the_way(self.out_dir)) is not None:
            raise ConfigError(f"train.out_dir: {str(blocker)!r} is a file, expected a folder for the run")
        resume_path = ckpt = None
        if resume:
            resume_path = self.out_dir / "last.pt" if resume is True else pathlib.Path(resume).expanduser()
            ckpt = ckpt_mod.load_checkpoint(resume_path)
            self._check_resume_config(ckpt, resume_path)
        elif (self.out_dir / "last.pt").exists() and not overwrite:
            raise ConfigError(f"train.out_dir: {str(self.out_dir)!r} already holds a run (last.pt); resume it with "
                              f"--resume or choose another out_dir (or --overwrite)")
        # torch's global setting, restored when fit returns: both the mode and warn_only (restoring the mode alone
        # turned a caller's use_deterministic_algorithms(True, warn_only=True) into errors after the run)
        previous = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
        if cfg.train.deterministic and info.device.type == "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            try:
                self._prepare(ckpt, resume_path, overwrite)
            except KeyboardInterrupt as exc:  # building the datasets can take minutes: Ctrl-C there reports too
                last = self.out_dir / "last.pt"
                raise TrainingInterrupted(0, None, last if last.exists() else None, self.out_dir) from exc
            # a fresh run, or a run resumed over another one (overwrite), replaces the earlier run's files
            return self._run(clear_folder=bool(overwrite) and (not resume or self._holds_another_run(resume_path)))
        finally:
            torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])

    def _prepare(self, ckpt, resume_path, overwrite: bool) -> None:
        """Build the data, model and optimiser, restore ``ckpt`` (when resuming) and check ``train.monitor``."""
        self._build(ckpt, resume_path)  # (checks that the checkpoint holds this config's model)
        if ckpt is not None and self._holds_another_run(resume_path) and not overwrite:
            raise ConfigError(f"train.out_dir: {str(self.out_dir)!r} already holds another run (last.pt), which resuming "
                              f"{str(resume_path)!r} there would overwrite; continue that run with --resume, or choose "
                              f"another out_dir")
        if ckpt is not None:
            self._restore(ckpt, resume_path)
            if resume_path.resolve() == (self.out_dir / "last.pt").resolve():
                self._saved_epoch = self.state["epoch"]
            # resumed into another folder: the best checkpoint so far lies next to the resumed one
            self._carried_best = resume_path.parent / "best.pt"
        self._check_monitor()

    def _holds_another_run(self, resume_path) -> bool:
        """Whether ``out_dir`` holds a run (``last.pt``) other than the one of ``resume_path`` (a checkpoint in another
        folder): resuming there would overwrite that run's checkpoints and results."""
        return ((self.out_dir / "last.pt").exists()
                and pathlib.Path(resume_path).resolve().parent != self.out_dir.resolve())

    def _check_monitor(self) -> None:
        """Fail before the first epoch when ``train.monitor`` names no logged metric: the validation metric
        names come from one validation batch (under a forked RNG, so the run's random stream is unchanged)."""
        cfg = self.config.train
        known = ({"train/loss", "lr", "val/loss"} | ({"train/grad_norm"} if self.config.optim.grad_clip is not None else set())
                 | ({"train/skipped_steps"} if self.scaler is not None else set()))
        if cfg.monitor in known or self.state["epoch"] > 0:
            return
        with torch.random.fork_rng(devices=[self.info.device] if self.info.device.type == "cuda" else []):
            val, _, _ = evaluate(self.task, self.eval_model, itertools.islice(self.eval_loaders["val"], 1), self.info,
                                 self.amp_dtype)
        names = sorted(known | {f"val/{k}" for k in val})
        if cfg.monitor not in names:
            raise ConfigError(f"train.monitor: {cfg.monitor!r} is not a logged metric (available: {', '.join(names)})")

    def _run(self, clear_folder: bool) -> dict:
        """The training loop; ``clear_folder`` (a fresh run with ``overwrite``) removes the earlier run's files
        once the config checks have passed."""
        cfg, info, state = self.config, self.info, self.state
        logger = None
        if info.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            if clear_folder:
                remove_run_files(self.out_dir)
            elif 0 < state["epoch"] < cfg.train.epochs and not state["finished"] and remove_end_of_run_files(self.out_dir):
                log.info("continuing a finished run: its results.json and final metrics are removed until it ends again")
            atomic_write_text(self.out_dir / "config.yaml", dump_config(cfg))
            self._carry_best_checkpoint()
            logger = MetricsLogger(self.out_dir, state["history"], tensorboard=cfg.train.tensorboard)
        epochs_here = 0
        stopped_early = False
        budget = cfg.train.time_budget
        self._elapsed_base, self._clock_start = state["elapsed"], self.clock()
        try:
            while state["epoch"] < cfg.train.epochs and not state["finished"]:
                t0 = time.perf_counter()
                epoch = state["epoch"]
                self._running_epoch = epoch + 1  # what an interrupt reports, also while logging and saving it
                row = {"epoch": epoch + 1, **self._train_epoch(epoch)}
                improved = False
                if (epoch + 1) % cfg.train.eval_every == 0 or epoch + 1 == cfg.train.epochs or self._budget_spent:
                    val, _, _ = evaluate(self.task, self.eval_model, iterate_batches(self.eval_loaders["val"]), info,
                                         self.amp_dtype)
                    row.update({f"val/{k}": v for k, v in val.items()})
                    improved, stopped_early = self._track(row)
                row.update({"step": state["step"], "time_s": round(time.perf_counter() - t0, 3)})
                state["elapsed"] = self._synced_elapsed = all_reduce_max(self._elapsed(), info)
                if budget is not None and state["elapsed"] >= budget and not self._budget_spent:
                    self._budget_spent = True  # spent while validating
                if self._budget_spent:
                    log.info("time budget of %g s spent after %d step(s), in epoch %d (train.time_budget)",
                             budget, state["step"], epoch + 1)
                state["epoch"] = epoch + 1
                state["history"] = state["history"] + [row]
                if logger is not None:
                    logger.log(row)
                    log.info("epoch %d/%d  %s", epoch + 1, cfg.train.epochs,
                             "  ".join(f"{k}={v:.4g}" for k, v in row.items() if isinstance(v, float) and k != "time_s"))
                state["finished"] = stopped_early or self._budget_spent or state["epoch"] >= cfg.train.epochs
                if state["finished"] or state["epoch"] % cfg.train.checkpoint_every == 0 or improved:
                    self._save(improved)
                epochs_here += 1
                if not state["finished"] and cfg.train.stop_after_epochs and epochs_here >= cfg.train.stop_after_epochs:
                    if self._saved_epoch != state["epoch"]:  # a planned stop: last.pt holds the epoch it reports
                        self._save(False)
                    log.info("stopping after %d epoch(s) (train.stop_after_epochs); resume with --resume", epochs_here)
                    return {"finished": False, "epoch": state["epoch"], "out_dir": str(self.out_dir)}
            if epochs_here == 0:  # resumed after it had ended: report why it ended, as the run that ended it did
                stopped_early, self._budget_spent = self._end_reasons()
            self._running_epoch = None  # the final evaluation
            return self._final(logger, stopped_early)
        except TrainingInterrupted:
            raise
        except KeyboardInterrupt as exc:
            last = self.out_dir / "last.pt"
            raise TrainingInterrupted(self._running_epoch, self._saved_epoch, last if last.exists() else None,
                                      self.out_dir) from exc
        finally:
            if logger is not None:
                logger.close()

    def _final(self, logger, stopped_early: bool) -> dict:
        info = self.info
        results = {"finished": True, "epoch": self.state["epoch"], "step": self.state["step"],
                   "skipped_steps": self.state["skipped_steps"], "stopped_early": stopped_early,
                   "time_budget_spent": self._budget_spent, "elapsed_s": self.state["elapsed"],
                   "best": self.state["best"], "best_epoch": self.state["best_epoch"], "out_dir": str(self.out_dir),
                   "metrics": {}, "eval_sizes": self.eval_sizes, "plots": []}
        # every rank's weights must be identical after DDP training: record a fingerprint of each
        prints = all_gather_objects(weights_fingerprint(self.raw_model), info)
        results["weights_sha256_per_rank"] = prints
        if len(set(prints)) > 1:
            log.warning("the processes ended with different weights: %s", prints)
        results["final_weights"], results["final_weights_epoch"] = self._load_final_weights()
        for split, loader in self.eval_loaders.items():
            metrics, stats, preds = evaluate(self.task, self.eval_model, loader, info, self.amp_dtype,
                                             collect_predictions=self.config.train.plots)  # only the plots use them
            results["metrics"][split] = metrics
            if info.is_main:
                results["plots"] += [str(p) for p in report(self.task, split, metrics, stats, preds, self.out_dir,
                                                            plots=self.config.train.plots)]
        if info.is_main:
            if self.config.train.plots and logger is not None and logger.history:
                from geomdl.pipelines.plots import learning_curves

                results["plots"].append(str(learning_curves(logger.history, self.out_dir / "learning_curves.png")))
            atomic_write_json(self.out_dir / "results.json", results, indent=2, default=float)  # NaN/inf as null
        barrier(info)
        return results
