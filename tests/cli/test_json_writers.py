"""The command-line writers of JSON files (``demo``, ``register-eval --out``) write strict JSON: non-finite
metrics as null, never the ``NaN``/``Infinity`` tokens that strict parsers reject."""
import sys
import types

import numpy as np
import torch

from geomdl.cli import main
from geomdl.utils.io import loads_strict_json as strict_loads  # refuses NaN/Infinity tokens


def test_demo_results_are_strict_json(tmp_path, monkeypatch, capsys):
    stage = types.ModuleType("fake_demo_stage")
    stage.run = lambda out_dir, quick, seed: {"loss": float("nan"), "best": -float("inf"), "acc": np.float32(0.5),
                                              "edges": torch.tensor(7), "shape": (2, 3), "folder": out_dir}
    monkeypatch.setitem(sys.modules, "fake_demo_stage", stage)
    monkeypatch.setattr("geomdl.cli.demo.STAGES", [("fake", "fake_demo_stage:run")])
    assert main(["demo", "--out", str(tmp_path)]) == 0
    result = strict_loads((tmp_path / "demo_results.json").read_text())["fake"]
    assert result == {"loss": None, "best": None, "acc": 0.5, "edges": 7, "shape": [2, 3], "folder": str(tmp_path)}
    assert [p.name for p in tmp_path.iterdir()] == ["demo_results.json"]  # no temporary file left behind


def test_register_eval_writes_an_undefined_recall_as_null(tmp_path, monkeypatch, capsys):
    import geomdl.pipelines.registration.evaluate as evaluate

    pair = {"pair": "0-1", "rre_deg": 0.5, "rte": 0.01, "rmse": 0.02, "inlier_ratio": 0.9, "recall_ok": True,
            "time_s": 0.1, "consecutive": True}
    report = {"pairs": [pair], "summary": {"pairs": 1, "registration_recall_pairs": 0,
                                           "registration_recall": float("nan"), "registration_recall_all_pairs": 1.0,
                                           "mean_rre_deg": torch.tensor(0.5, dtype=torch.float64)}}
    monkeypatch.setattr(evaluate, "evaluate_benchmark", lambda *a, **k: report)
    out = tmp_path / "r.json"
    assert main(["register-eval", str(tmp_path), str(tmp_path), "--out", str(out)]) == 0
    written = strict_loads(out.read_text())
    assert written["pairs"] == [pair]
    assert written["summary"] == {"pairs": 1, "registration_recall_pairs": 0, "registration_recall": None,
                                  "registration_recall_all_pairs": 1.0, "mean_rre_deg": 0.5}
    assert "registration_recall nan" in capsys.readouterr().out  # the printed summary is unchanged


def test_an_interrupted_demo_leaves_no_earlier_results(tmp_path, monkeypatch, capsys):
    # demo_results.json of an earlier run stayed beside the partial outputs of an interrupted one
    stage = types.ModuleType("fake_demo_stage")
    stage.run = lambda out_dir, quick, seed: {"value": 1}
    monkeypatch.setitem(sys.modules, "fake_demo_stage", stage)
    monkeypatch.setattr("geomdl.cli.demo.STAGES", [("fake", "fake_demo_stage:run")])
    assert main(["demo", "--out", str(tmp_path)]) == 0 and (tmp_path / "demo_results.json").is_file()

    def interrupted(out_dir, quick, seed):
        raise KeyboardInterrupt

    stage.run = interrupted
    assert main(["demo", "--out", str(tmp_path)]) == 130
    assert not (tmp_path / "demo_results.json").exists()
