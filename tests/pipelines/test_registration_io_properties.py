"""Property tests of the registration point-cloud reader (geomdl.pipelines.registration.io.read_point_cloud):
random clouds written as .ply (ASCII/binary), .npy, .txt/.xyz read back exactly, and damaged files (cut anywhere
or a few bytes overwritten) read as a float64 [N, 3] cloud or raise a ValueError naming the file. (.pcd needs
Open3D, whose reading is tested in test_registration_parts.py.) The .xyz text round trip is in
test_registration_parts.py::test_xyz_parser_reads_what_was_written."""
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from geomdl.pipelines.registration.io import read_point_cloud

plyfile = pytest.importorskip("plyfile")

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FINITE = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


def _write(path, pts, text=True, extra_columns=0):
    suffix = path.suffix
    if suffix == ".ply":
        names = ["x", "y", "z"] + [f"s{k}" for k in range(extra_columns)]
        vertex = np.empty(len(pts), dtype=[(k, "f8") for k in names])
        for k, name in enumerate(names):
            vertex[name] = pts[:, k % 3]
        plyfile.PlyData([plyfile.PlyElement.describe(vertex, "vertex")], text=text).write(str(path))
    elif suffix == ".npy":
        np.save(path, np.concatenate([pts, pts[:, :extra_columns]], 1))
    else:
        rows = np.concatenate([pts, pts[:, :extra_columns]], 1)
        path.write_text("# x y z\n" + "".join(" ".join(repr(float(v)) for v in r) + "\n" for r in rows))


@settings(max_examples=40, **SETTINGS)
@given(pts=arrays(np.float64, st.tuples(st.integers(1, 25), st.just(3)), elements=FINITE),
       suffix=st.sampled_from([".ply", ".npy", ".txt"]), text=st.booleans(), extra=st.integers(0, 2))
def test_point_clouds_round_trip(tmp_path, pts, suffix, text, extra):
    path = tmp_path / ("cloud" + suffix)
    _write(path, pts, text, extra)
    got = read_point_cloud(path)
    assert got.dtype == torch.float64 and got.shape == pts.shape
    assert torch.equal(got, torch.from_numpy(pts))


@settings(max_examples=60, **SETTINGS)
@given(data=st.data(), suffix=st.sampled_from([".ply", ".npy", ".xyz"]), text=st.booleans())
def test_damaged_point_clouds_read_or_name_the_file(tmp_path, damage_bytes, data, suffix, text):
    good = tmp_path / ("good" + suffix)
    _write(good, np.arange(30, dtype=np.float64).reshape(10, 3) / 7, text)
    bad = tmp_path / ("bad" + suffix)
    bad.write_bytes(damage_bytes(data, good.read_bytes()))
    try:
        out = read_point_cloud(bad)
    except ValueError as exc:
        assert bad.name in str(exc)
        return
    assert out.dtype == torch.float64 and out.ndim == 2 and out.shape[1] == 3
