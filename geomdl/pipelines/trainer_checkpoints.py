"""Checkpoints of a :class:`~geomdl.pipelines.trainer.Trainer` run: saving (``last.pt``, ``best.pt``),
resuming, tracking the best monitored value, and putting the final evaluation's weights in place.

:class:`CheckpointMixin` holds the trainer's methods for these; it works on the trainer's attributes
(``config``, ``info``, ``task``, ``out_dir``, ``state``, ``raw_model``, ``ema``, ``optimizer``,
``scheduler``, ``scaler``, ``model_kwargs``) and is not meant to be used on its own.
"""
from __future__ import annotations

import logging
import math
import shutil

from geomdl.pipelines import checkpoint as ckpt_mod
from geomdl.pipelines.config import ConfigError
from geomdl.pipelines.distributed import all_gather_objects, barrier
from geomdl.utils.io import atomic_path

log = logging.getLogger("geomdl.train")

# config keys that may differ between a checkpoint and the config that resumes it
RESUMABLE_CHANGES = {"train.epochs", "train.stop_after_epochs", "train.time_budget", "train.progress", "train.out_dir",
                     "train.tensorboard", "train.plots", "train.early_stopping_patience", "train.final_weights", "data.num_workers", "data.root", "data.eval_batch_size",
                     "train.checkpoint_every", "train.prepare_timeout"}  # (neither changes what is trained)


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


class CheckpointMixin:
    """The checkpoint, resume and best-tracking methods of :class:`~geomdl.pipelines.trainer.Trainer`."""

    def _restore(self, ckpt: dict, path) -> None:
        ckpt_mod.load_module_state(self.raw_model, ckpt["model"], path)
        if self.ema is not None:
            if ckpt.get("ema") is None:
                raise ckpt_mod.CheckpointError(f"checkpoint {str(path)!r} has no EMA weights but train.ema_decay is set")
            self.ema.load_state_dict(ckpt["ema"])
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
            if self.scaler is not None and ckpt.get("scaler"):
                self.scaler.load_state_dict(ckpt["scaler"])
        except (KeyError, ValueError, RuntimeError) as exc:
            raise ckpt_mod.CheckpointError(f"checkpoint {str(path)!r}: optimiser state does not fit ({exc})") from None
        for key in self.state:
            if key in ckpt:
                self.state[key] = ckpt[key]
        stopped_early, budget_spent = self._end_reasons()
        self.state["finished"] = self.state["epoch"] >= self.config.train.epochs or stopped_early or budget_spent
        self._synced_elapsed = self.state["elapsed"]
        rngs = ckpt.get("rng") or []
        if len(rngs) != self.info.world_size:
            log.warning("checkpoint was written by %d process(es), resuming with %d: RNG streams are not continued exactly",
                        len(rngs), self.info.world_size)
        if rngs:
            ckpt_mod.set_rng_state(rngs[self.info.rank] if self.info.rank < len(rngs) else rngs[0])

    def _check_resume_config(self, ckpt: dict, path) -> None:
        old, new = _flatten(ckpt["config"]), _flatten(self.config.to_dict())
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k) and k not in RESUMABLE_CHANGES)
        if diff:
            detail = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:4])
            raise ckpt_mod.CheckpointError(f"checkpoint {str(path)!r} belongs to another experiment ({detail})")

    def _checkpoint_state(self) -> dict:
        return {
            "config": self.config.to_dict(), "task_name": self.config.task.name, "task_state": self.task.state_dict(),
            "model_name": self.config.model.name, "model_kwargs": self.model_kwargs,
            "model": self.raw_model.state_dict(), "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "world_size": self.info.world_size, **self.state,
        }

    def _save(self, improved: bool) -> None:
        rngs = all_gather_objects(ckpt_mod.rng_state(), self.info)  # every rank takes part
        if self.info.is_main:
            state = {**self._checkpoint_state(), "rng": rngs}
            if improved:
                # best.pt first: an interrupt between the two writes leaves last.pt at an earlier epoch, whose resume
                # redoes this one (last.pt first left a last.pt whose best epoch best.pt did not hold)
                ckpt_mod.save_checkpoint(state, self.out_dir / "best.pt")
                with atomic_path(self.out_dir / "last.pt") as tmp:
                    shutil.copyfile(self.out_dir / "best.pt", tmp)
            else:
                ckpt_mod.save_checkpoint(state, self.out_dir / "last.pt")
        barrier(self.info)
        self._saved_epoch = self.state["epoch"]

    def _carry_best_checkpoint(self) -> None:
        """A run resumed into another ``out_dir``: copy the best checkpoint so far (``best.pt`` beside the resumed
        checkpoint) into it, so that the final evaluation finds the best weights (the new folder gets its own
        ``best.pt`` only when the monitored value improves again)."""
        source = getattr(self, "_carried_best", None)
        target = self.out_dir / "best.pt"
        if source is None or self.state["best_epoch"] is None or not source.is_file():
            return
        if target.exists() and target.resolve() == source.resolve():
            return
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)

    def _track(self, row: dict) -> tuple[bool, bool]:
        cfg, state = self.config.train, self.state
        if cfg.monitor not in row:
            raise ConfigError(f"train.monitor: {cfg.monitor!r} is not a logged metric (available: "
                              f"{', '.join(k for k in row if k.startswith('val/'))})")
        value = row[cfg.monitor]
        best = state["best"]
        improved = math.isfinite(value) and (best is None or (value < best if cfg.monitor_mode == "min" else value > best))
        if improved:
            state["best"], state["best_epoch"], state["bad_evals"] = value, row["epoch"], 0
        else:
            state["bad_evals"] += 1
        patience = cfg.early_stopping_patience
        stop = patience is not None and state["bad_evals"] >= patience
        if stop:  # best is None when no finite value was ever logged (all NaN)
            log.info("early stopping: %s did not improve for %d evaluation(s) (best %s at epoch %s)", cfg.monitor,
                     state["bad_evals"], "none" if state["best"] is None else f"{state['best']:.4g}", state["best_epoch"])
        return improved, stop

    def _end_reasons(self) -> tuple[bool, bool]:
        """``(stopped early, time budget spent)`` from the saved counters (early-stopping evaluations, elapsed time)."""
        patience, budget = self.config.train.early_stopping_patience, self.config.train.time_budget
        return (patience is not None and self.state["bad_evals"] >= patience,
                budget is not None and self.state["elapsed"] >= budget)

    def _load_final_weights(self) -> tuple[str, int]:
        """Put the weights of the final evaluation in place (``train.final_weights``); returns which
        (``"best"`` or ``"last"``) and their epoch. ``best.pt`` is reloaded only when the best
        validation came before the last epoch; without any finite monitored value the last weights stay."""
        state = self.state
        if self.config.train.final_weights == "last":
            return "last", state["epoch"]
        if state["best_epoch"] is None:
            log.warning("train.final_weights: no finite %s was logged, so there is no best checkpoint; the final "
                        "evaluation uses the last weights", self.config.train.monitor)
            return "last", state["epoch"]
        if state["best_epoch"] != state["epoch"] and not (self.out_dir / "best.pt").is_file():
            log.warning("train.final_weights: %s holds no best.pt (a run resumed from a checkpoint without its best.pt "
                        "beside it), so the final evaluation uses the last weights (epoch %d)", self.out_dir, state["epoch"])
            return "last", state["epoch"]
        if state["best_epoch"] == state["epoch"]:
            return "best", state["best_epoch"]
        best = ckpt_mod.load_checkpoint(self.out_dir / "best.pt")
        self.raw_model.load_state_dict(best["model"])
        if self.ema is not None:
            self.ema.load_state_dict(best["ema"])
        held = best.get("epoch", state["best_epoch"])
        if held != state["best_epoch"]:
            # an interrupt after best.pt's write and before last.pt's; the resumed run redid that epoch and did
            # not reach the same value (non-deterministic training), so best.pt holds the interrupted epoch
            log.warning("train.final_weights: best.pt holds the weights of epoch %d, written before an interrupt "
                        "(%s=%s there) and not reproduced when the run was resumed; the final evaluation uses them "
                        "(this run's record names epoch %d as the best)", held, self.config.train.monitor,
                        best.get("best"), state["best_epoch"])
        log.debug("final evaluation with best.pt (epoch %d); last.pt holds epoch %d", held, state["epoch"])
        return "best", held
