"""Generic tasks score the data's test split at the end of a run (never during it), and say so when the
data has none."""
from __future__ import annotations

import logging

from geomdl.pipelines.generic import ClassificationTask
from geomdl.pipelines.trainer import Trainer


def test_the_final_evaluation_scores_the_test_split(tmp_path, tiny_config):
    summary = Trainer(tiny_config(tmp_path / "run", "train.epochs=1", "train.plots=false")).fit()
    assert set(summary["metrics"]) == {"val", "test"} and summary["eval_sizes"]["test"] == 16
    assert [k for k in summary["metrics"]["test"]] == [k for k in summary["metrics"]["val"]]


def test_data_without_a_test_split_is_logged_and_left_out(tmp_path, tiny_config, monkeypatch, caplog):
    dataset_for = ClassificationTask.dataset_for

    def no_test(self, split):
        if split == "test":
            raise ValueError("split must be 'train' or 'val', got 'test'")
        return dataset_for(self, split)

    monkeypatch.setattr(ClassificationTask, "dataset_for", no_test)
    with caplog.at_level(logging.INFO, logger="geomdl.train"):
        summary = Trainer(tiny_config(tmp_path / "run", "train.epochs=1", "train.plots=false")).fit()
    assert set(summary["metrics"]) == {"val"}
    assert any("no test split in 'toy_shapes'" in r.getMessage() for r in caplog.records)
