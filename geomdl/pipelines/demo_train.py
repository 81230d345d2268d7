"""``geomdl demo`` stage ``train``: the training engine end to end on built-in data.

Trains TinyPointNet on the built-in toy shapes (upright: a plain PointNet is not rotation invariant) for a few epochs (cosine schedule with warm-up, EMA,
gradient clipping), interrupts the run after the first epoch and resumes it, then evaluates the
checkpoint like ``geomdl eval`` would. Writes ``<out>/train/``: ``last.pt``, ``best.pt``,
``metrics.csv``, ``learning_curves.png``, ``confusion_val.png``, ``results.json`` and ``eval/``.
"""
from __future__ import annotations


def run(out_dir, quick: bool, seed: int = 0) -> dict:
    from geomdl.pipelines.config import load_config
    from geomdl.pipelines.runs import evaluate_checkpoint
    from geomdl.pipelines.trainer import Trainer

    run_dir = out_dir / "train"
    samples, epochs = (48, 4) if quick else (192, 12)
    overrides = [
        f"seed={seed}", f"data.kwargs.seed={seed}",
        f"data.kwargs.num_samples={samples}", "data.kwargs.num_points=64", "data.kwargs.num_classes=4", "data.kwargs.rotate=false",
        "model.kwargs.hidden_channels=32", f"train.epochs={epochs}", "train.batch_size=16", "train.ema_decay=0.9",
        "optim.lr=0.005", "optim.schedule=cosine", "optim.warmup_steps=3", "optim.grad_clip=1.0",
        "train.monitor=val/accuracy", "train.monitor_mode=max", f"train.out_dir={run_dir}", "train.progress=off",
    ]
    cfg = load_config(None, overrides + ["train.stop_after_epochs=1"])
    # overwrite: an earlier demo's run files go, other files in the folder stay (it was removed whole)
    first = Trainer(cfg).fit(overwrite=True)
    print(f"   interrupted after epoch {first['epoch']} (checkpoint {run_dir / 'last.pt'}), resuming")
    summary = Trainer(load_config(None, overrides)).fit(resume=True)
    val = summary["metrics"]["val"]
    history = summary.get("epoch")
    print(f"   trained {history} epochs ({summary['step']} steps); {summary['final_weights']} weights "
          f"(epoch {summary['final_weights_epoch']}): val loss {val['loss']:.3f}, "
          f"accuracy {val['accuracy']:.3f}, class-mean accuracy {val['class_mean_accuracy']:.3f} "
          f"(chance 0.25); best val accuracy {summary['best']:.3f} at epoch {summary['best_epoch']}")
    evaluated = evaluate_checkpoint(run_dir / "best.pt", splits=["test"], out_dir=run_dir / "eval")
    test = evaluated["test"]
    print(f"   best.pt on the test split: accuracy {test['accuracy']:.3f}, loss {test['loss']:.3f}")
    print(f"   wrote {', '.join(p.name for p in sorted(run_dir.iterdir()) if p.is_file())}")
    return {"epochs": summary["epoch"], "steps": summary["step"], "val": val, "test": test,
            "best_val_accuracy": summary["best"], "run_dir": str(run_dir)}
