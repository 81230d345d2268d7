"""geomdl register / register-eval commands and the registration demo stage."""
from __future__ import annotations

import json

import numpy as np
import torch

from geomdl.cli import main
from geomdl.pipelines.registration import random_pose, rotation_error_deg, transform
from geomdl.pipelines.registration.pairs import synthetic_shape


def _pair(tmp_path):
    gen = torch.Generator().manual_seed(0)
    shape = synthetic_shape(3000, generator=gen)
    pose = random_pose(gen)
    np.save(tmp_path / "src.npy", transform(shape, pose).numpy())
    np.savetxt(tmp_path / "tgt.xyz", shape.numpy())
    np.savetxt(tmp_path / "gt.txt", torch.linalg.inv(pose).numpy())
    return torch.linalg.inv(pose)


def test_register_command_writes_pose_and_png(tmp_path, capsys):
    gt = _pair(tmp_path)
    code = main(["register", str(tmp_path / "src.npy"), str(tmp_path / "tgt.xyz"), "--voxel", "0.08",
                 "--out", str(tmp_path / "pose.txt"), "--show", str(tmp_path / "out.png"), "--gt", str(tmp_path / "gt.txt")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "RRE" in out and "RMSE over the source points" in out and "stage times" in out
    pose = torch.from_numpy(np.loadtxt(tmp_path / "pose.txt"))
    assert rotation_error_deg(pose, gt) < 1.0
    assert (tmp_path / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_register_command_reports_a_corrupt_file_in_one_line(tmp_path, capsys):
    (tmp_path / "bad.ply").write_bytes(b"ply\nbroken")
    np.save(tmp_path / "ok.npy", np.random.default_rng(0).random((100, 3)))
    code = main(["register", str(tmp_path / "bad.ply"), str(tmp_path / "ok.npy")])
    err = capsys.readouterr().err
    assert code == 2 and "bad.ply" in err and "Traceback" not in err


def test_register_eval_command_on_a_generated_benchmark(tmp_path, capsys):
    gen = torch.Generator().manual_seed(1)
    shape = synthetic_shape(3000, generator=gen)
    frags = tmp_path / "fragments"
    frags.mkdir()
    poses = {0: torch.eye(4, dtype=torch.float64), 1: random_pose(gen, max_translation=0.5)}
    for k, pose in poses.items():  # cloud_bin_k = shape seen in frame k
        np.save(frags / f"cloud_bin_{k}.npy", transform(shape, torch.linalg.inv(pose)).numpy())
    rel = torch.linalg.inv(poses[0]) @ poses[1]  # maps fragment 1 into fragment 0
    (tmp_path / "gt.log").write_text("0 1 2\n" + "\n".join(" ".join(f"{v:.17g}" for v in row) for row in rel.tolist()) + "\n")
    code = main(["register-eval", str(tmp_path), str(frags), "--voxel", "0.08", "--out", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["pairs"][0]["rre_deg"] < 1.0 and report["pairs"][0]["consecutive"]
    # 0-1 is a consecutive pair: the 3DMatch protocol's recall does not count it
    assert report["summary"]["registration_recall_all_pairs"] == 1.0
    assert report["summary"]["registration_recall_pairs"] == 0
    assert report["summary"]["registration_recall"] is None  # undefined (NaN): strict JSON writes it as null
    assert "non-consecutive" in out


def test_registration_demo_stage(tmp_path, capsys):
    from geomdl.pipelines.registration.demo import run

    out = run(tmp_path, quick=True)
    printed = capsys.readouterr().out
    assert "RRE" in printed and "RTE" in printed
    for name in ("scene", "shape"):
        assert out[name]["success"] and out[name]["rre_deg"] < 1.0
        assert (tmp_path / f"registration_{name}.png").is_file()
