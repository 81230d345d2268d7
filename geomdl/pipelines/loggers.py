"""Metric logging of a run: ``metrics.csv`` (always) and TensorBoard (when installed)."""
from __future__ import annotations

import csv
import importlib.util
import io
import logging
import math
import pathlib

from geomdl.utils.io import atomic_write_text

log = logging.getLogger("geomdl.train")


# what a run writes into its folder (besides config.yaml): removed when a fresh run replaces an earlier one
RUN_FILES = ("last.pt", "best.pt", "results.json", "metrics.csv", "learning_curves.png", "*_metrics.json",
             "confusion_*.png", "parity_*.png", "tensorboard/events.out.tfevents.*",
             # what `geomdl eval` wrote into the run (<run>/eval/<checkpoint stem>/)
             "eval/*/*_metrics.json", "eval/*/confusion_*.png", "eval/*/parity_*.png")


def remove_files(out_dir, patterns) -> list[pathlib.Path]:
    """Delete the files of ``out_dir`` matching the glob ``patterns`` (folders stay); returns them."""
    removed = [f for pattern in patterns for f in sorted(pathlib.Path(out_dir).glob(pattern)) if f.is_file()]
    for f in removed:
        f.unlink()
    return removed


def remove_run_files(out_dir) -> list[pathlib.Path]:
    """Delete the files an earlier run left in ``out_dir`` (:data:`RUN_FILES`; other files stay), so that a
    run started afresh over it (``--overwrite``) never shows the earlier run's checkpoints, results or curves."""
    return remove_files(out_dir, RUN_FILES)


# what the end of a run writes (its results, final metrics and plots): they describe the run as it ended
END_OF_RUN_FILES = ("results.json", "*_metrics.json", "confusion_*.png", "parity_*.png")


def remove_end_of_run_files(out_dir) -> list[pathlib.Path]:
    """Delete a finished run's :data:`END_OF_RUN_FILES` from ``out_dir`` (not its checkpoints, ``metrics.csv``
    or what ``geomdl eval`` wrote): called when the run is continued for more epochs, so that a continuation
    stopped before its end (``stop_after_epochs``, Ctrl-C) never leaves ``results.json`` saying the run finished
    at its earlier last epoch beside a ``last.pt`` of a later one."""
    return remove_files(out_dir, END_OF_RUN_FILES)


def write_csv(history: list[dict], path) -> None:
    """Rewrite ``path`` atomically with one row per history entry (columns: union of the keys). Floats (numpy's
    ``float64`` included, whose ``repr`` is ``np.float64(...)`` since numpy 2) are written with full precision."""
    cols: list[str] = []
    for row in history:
        for k in row:
            if k not in cols:
                cols.append(k)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, restval="")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (repr(float(v)) if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(path, buf.getvalue())


def read_csv(path) -> list[dict]:
    """Rows of a metrics CSV with numbers parsed (empty cells dropped)."""
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out = {}
            for k, v in row.items():
                if v == "":
                    continue
                try:
                    out[k] = int(v)
                except ValueError:
                    try:
                        out[k] = float(v)
                    except ValueError:
                        out[k] = v
            rows.append(out)
    return rows


class MetricsLogger:
    """Keeps the run's history, rewrites ``metrics.csv`` and mirrors scalars to TensorBoard.

    Args:
        out_dir: the run folder.
        history: rows restored from a checkpoint (resume), or None.
        tensorboard: use ``torch.utils.tensorboard`` when the ``tensorboard`` package is installed.
    """

    def __init__(self, out_dir, history: list[dict] | None = None, tensorboard: bool = True):
        self.out_dir = pathlib.Path(out_dir)
        self.history = list(history or [])
        self.csv_path = self.out_dir / "metrics.csv"
        self.tb = None
        if tensorboard and importlib.util.find_spec("tensorboard") is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(log_dir=str(self.out_dir / "tensorboard"), purge_step=self._last_step())

    def _last_step(self):
        return (self.history[-1].get("step", 0) + 1) if self.history else None

    def log(self, row: dict) -> None:
        self.history.append(row)
        write_csv(self.history, self.csv_path)
        if self.tb is not None:
            for k, v in row.items():
                if "/" in k and isinstance(v, (int, float)) and math.isfinite(v):
                    self.tb.add_scalar(k, v, global_step=row.get("step", row.get("epoch")))
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
            self.tb = None
