"""``python -m benchmarks edge_features`` runs on tiny sizes and reports both sides of every model."""
from __future__ import annotations

import json

from benchmarks.__main__ import main


def test_edge_features_benchmark_runs(tmp_path, capsys):
    out = tmp_path / "edge_features.json"
    assert main(["edge_features", "--molecules", "1", "--layers", "2", "--repeats", "1", "--steps", "1",
                 "--models", "painn", "nequip_cg", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["model"] for r in rows] == ["painn", "nequip_cg"]
    for r in rows:
        assert r["ops_shared"] < r["ops_per_layer"]  # two layers: the second one's edge features are not recomputed
        assert r["max_abs_energy_diff"] == 0.0
        assert r["shared/per_layer"] > 0


def test_full_graph_benchmark_runs(tmp_path):
    import geomdl.models._molecular as molecular

    before = molecular.full_graph
    out = tmp_path / "full_graph.json"
    assert main(["full_graph", "--graphs", "2", "--atoms", "3", "--repeats", "1", "--calls", "1", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["what"] for r in rows] == ["graph", "egnn_step"]
    assert rows[0]["edges"] == 12 and all(r["vectorised/loop"] > 0 for r in rows)
    assert molecular.full_graph is before  # the benchmark puts the library's function back
