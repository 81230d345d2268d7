"""``evaluate_benchmark`` says where each pair's RMSE comes from and warns when gt.info lacks pairs (the point
RMSE it falls back to is not comparable with the benchmark's information-matrix RMSE)."""
from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from geomdl.datasets.formats.gtlog import format_gt_log
from geomdl.pipelines.registration import pipeline
from geomdl.pipelines.registration.evaluate import evaluate_benchmark


def _fake_register(source, target, method, voxel_size):
    return types.SimpleNamespace(pose=torch.eye(4, dtype=torch.float64), correspondences=torch.zeros(0, 2, dtype=torch.long),
                                 source_down=source, target_down=target, success=True, timings={"total": 0.0})


def _benchmark(tmp_path, info_pairs):
    rng = np.random.default_rng(0)
    for k in range(4):
        np.save(tmp_path / f"cloud_bin_{k}.npy", rng.normal(size=(50, 3)))
    pairs = [(0, 2), (0, 3), (1, 3)]
    (tmp_path / "gt.log").write_text(format_gt_log([(i, j, 4, np.eye(4)) for i, j in pairs]))
    if info_pairs is not None:
        text = "".join(f"{i} {j} 4\n" + "\n".join(" ".join("1" if r == c else "0" for c in range(6)) for r in range(6)) + "\n"
                       for i, j in info_pairs)
        (tmp_path / "gt.info").write_text(text)
    return tmp_path


def test_pairs_without_a_gt_info_record_are_marked_and_warned_about(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "register", _fake_register)
    bench = _benchmark(tmp_path, info_pairs=[(0, 2), (1, 3)])
    with pytest.warns(UserWarning, match=r"gt.info: no record of 1 of 3 evaluated pairs \(0-3\)"):
        out = evaluate_benchmark(bench, bench, progress=False)
    assert [r["rmse_from"] for r in out["pairs"]] == ["gt.info", "points", "gt.info"]


def test_no_gt_info_uses_the_point_rmse_without_a_warning(tmp_path, monkeypatch, recwarn):
    monkeypatch.setattr(pipeline, "register", _fake_register)
    bench = _benchmark(tmp_path, info_pairs=None)
    out = evaluate_benchmark(bench, bench, progress=False)
    assert {r["rmse_from"] for r in out["pairs"]} == {"points"}
    assert not [w for w in recwarn if "gt.info" in str(w.message)]
