"""``python -m benchmarks`` writes strict JSON: a row whose measurement failed (NaN, infinity) is written as
null, numpy and torch scalars as numbers. No real benchmark runs here."""
import pathlib
import sys
import types

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # benchmarks/ is not installed with the package
    sys.path.insert(0, str(ROOT))

from benchmarks.__main__ import main  # noqa: E402
from geomdl.utils.io import loads_strict_json as strict_loads  # noqa: E402 (refuses NaN/Infinity tokens)


def test_a_failed_row_is_written_as_null(tmp_path, monkeypatch, capsys):
    fake = types.ModuleType("fake_nan_benchmark")
    fake.HELP, fake.add_arguments = "fake", lambda parser: None
    fake.run = lambda args: [
        {"op": "ok", "median_ms": np.float64(1.5), "calls": np.int64(3), "speedup": torch.tensor(2.0)},
        {"op": "failed", "median_ms": float("nan"), "calls": 0, "speedup": float("inf"), "note": "skipped"},
    ]
    monkeypatch.setitem(sys.modules, "fake_nan_benchmark", fake)
    monkeypatch.setattr("benchmarks.__main__.BENCHMARKS", {"fake": "fake_nan_benchmark"})
    out = tmp_path / "fake.json"
    assert main(["fake", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.endswith("\n")
    payload = strict_loads(text)
    assert payload["rows"] == [
        {"op": "ok", "median_ms": 1.5, "calls": 3, "speedup": 2.0},
        {"op": "failed", "median_ms": None, "calls": 0, "speedup": None, "note": "skipped"},
    ]
    assert type(payload["rows"][0]["calls"]) is int  # numpy integers stay integers
    assert payload["benchmark"] == "fake" and payload["argv"] == ["fake", "--out", str(out)]
    assert "nan" in capsys.readouterr().out  # the printed table still shows the measurement as it was
