"""The 3DMatch protocol of ``evaluate_benchmark``: which pairs count in the registration recall, and its threshold."""
from __future__ import annotations

import math

import pytest
import torch

from geomdl.pipelines.registration.evaluate import is_protocol_pair, summarize_pairs
from geomdl.pipelines.registration.metrics import registration_metrics


def _row(i, j, ok, success=None):
    return {"pair": f"{i}-{j}", "consecutive": not is_protocol_pair(i, j), "recall_ok": ok,
            "success": ok if success is None else success, "rre_deg": 1.0 if ok else 40.0, "rte": 0.05 if ok else 2.0,
            "inlier_ratio": 0.2 if ok else 0.01, "time_s": 0.5}


def test_consecutive_pairs_are_left_out_of_the_registration_recall_as_in_the_benchmark_toolbox():
    # mrEvaluateRegistration counts a gt.log record "i j" only when j - i > 1
    assert [is_protocol_pair(i, j) for i, j in [(0, 1), (0, 2), (5, 6), (5, 9), (3, 2), (4, 4)]] == \
        [False, True, False, True, False, False]
    rows = [_row(0, 1, False), _row(0, 2, True), _row(0, 3, False), _row(7, 8, True), _row(2, 9, True)]
    summary = summarize_pairs(rows)
    assert summary["pairs"] == 5 and summary["registration_recall_pairs"] == 3
    assert summary["registration_recall"] == pytest.approx(2 / 3)
    assert summary["registration_recall_all_pairs"] == pytest.approx(3 / 5)
    assert summary["success_rate"] == pytest.approx(3 / 5)
    assert summary["feature_match_recall"] == pytest.approx(3 / 5)


def test_recall_is_nan_when_every_pair_is_consecutive_and_empty_rows_are_refused():
    summary = summarize_pairs([_row(0, 1, True), _row(1, 2, True)])
    assert math.isnan(summary["registration_recall"]) and summary["registration_recall_pairs"] == 0
    assert summary["registration_recall_all_pairs"] == 1.0
    with pytest.raises(ValueError, match="rows"):
        summarize_pairs([])


def test_a_pair_exactly_at_the_rmse_threshold_is_registered():
    # the toolbox accepts p <= err2; with t = 0.25 m and an isotropic information matrix, rmse = 0.25 exactly
    pose = torch.eye(4, dtype=torch.float64)
    pose[0, 3] = 0.25
    info = torch.eye(6, dtype=torch.float64) * 3.0
    m = registration_metrics(pose, torch.eye(4, dtype=torch.float64), info, rmse_max=0.25)
    assert m["rmse"] == 0.25 and m["recall_ok"]
    assert not registration_metrics(pose, torch.eye(4, dtype=torch.float64), info, rmse_max=0.2499)["recall_ok"]
