"""Overhead of the training engine: one epoch through ``Trainer`` against a bare PyTorch loop
(same model, data, batches and optimiser), measured in the same run.

``python -m benchmarks trainer [--samples 256] [--points 64] [--hidden 64] [--batch 32]``
"""
from __future__ import annotations

import copy
import statistics
import tempfile

import torch
import torch.nn.functional as F

from benchmarks.timing import measure, positive_int

HELP = "training-engine overhead: Trainer epoch vs a bare PyTorch loop"


def add_arguments(parser) -> None:
    parser.add_argument("--samples", type=positive_int, default=256)
    parser.add_argument("--points", type=positive_int, default=64)
    parser.add_argument("--hidden", type=positive_int, default=64)
    parser.add_argument("--batch", type=positive_int, default=32)
    parser.add_argument("--repeats", type=positive_int, default=7)


def _bare_epoch(model, optimizer, loader, device):
    model.train()
    for batch in loader:
        batch = batch.to(device)
        loss = F.cross_entropy(model(batch), batch.y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def run(args) -> list[dict]:
    from geomdl.pipelines.config import load_config
    from geomdl.pipelines.trainer import Trainer

    rows = []
    variants = {"plain": [], "clip+ema+cosine": ["optim.grad_clip=1.0", "train.ema_decay=0.99", "optim.schedule=cosine"]}
    for name, extra in variants.items():
        with tempfile.TemporaryDirectory() as tmp:
            cfg = load_config(None, [f"data.kwargs.num_samples={args.samples}", f"data.kwargs.num_points={args.points}",
                                     f"model.kwargs.hidden_channels={args.hidden}", f"train.batch_size={args.batch}",
                                     "train.progress=off", "train.tensorboard=false", f"train.out_dir={tmp}", *extra])
            trainer = Trainer(cfg)
            trainer._build(None, None)
            model = copy.deepcopy(trainer.raw_model)
            optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr)
            device = trainer.info.device
            # interleaved single repeats, so both sides see the same machine load
            bare, engine = [], []
            for _ in range(args.repeats):
                # device: on a GPU each epoch is timed up to its last kernel (synchronised), not to its last launch
                bare.append(measure(lambda: _bare_epoch(model, optimizer, trainer.train_loader, device), repeats=1, warmup=1,
                                    device=device)["median_ms"])
                engine.append(measure(lambda: trainer._train_epoch(0), repeats=1, warmup=1, device=device)["median_ms"])
        ratios = sorted(e / b for e, b in zip(engine, bare))
        rows.append({"variant": name, "steps": trainer.steps_per_epoch, "bare_ms": statistics.median(bare),
                     "engine_ms": statistics.median(engine), "engine/bare": statistics.median(ratios),
                     "ratio_min": ratios[0], "ratio_max": ratios[-1], "device": str(device)})
    return rows
