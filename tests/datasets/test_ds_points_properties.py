"""Property tests of the point-file readers (PLY, .npy): random clouds round-trip, and truncated or
byte-corrupted files either read as a valid cloud or raise an error that names the file."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from geomdl.datasets.formats.points import read_ply, read_points

plyfile = pytest.importorskip("plyfile")

COORDS = st.floats(-1e6, 1e6, allow_nan=False, width=32)


def _write_ply(path, pos, normals, text, dtype):
    fields = [(k, dtype) for k in ("x", "y", "z")] + ([(k, dtype) for k in ("nx", "ny", "nz")] if normals is not None else [])
    vertex = np.empty(pos.shape[0], dtype=fields)
    for i, k in enumerate("xyz"):
        vertex[k] = pos[:, i]
        if normals is not None:
            vertex["n" + k] = normals[:, i]
    plyfile.PlyData([plyfile.PlyElement.describe(vertex, "vertex")], text=text).write(str(path))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pos=arrays(np.float32, st.tuples(st.integers(0, 30), st.just(3)), elements=COORDS),
       with_normals=st.booleans(), text=st.booleans(), dtype=st.sampled_from(["f4", "f8"]))
def test_ply_round_trip(tmp_path, pos, with_normals, text, dtype):
    normals = -pos if with_normals else None
    path = tmp_path / "cloud.ply"
    _write_ply(path, pos, normals, text, dtype)
    got, got_normals = read_ply(path, with_normals=True)
    assert got.dtype == np.float32 and got.shape == pos.shape
    np.testing.assert_array_equal(got, pos)
    if with_normals:
        np.testing.assert_array_equal(got_normals, normals)
    else:
        assert got_normals is None
    np.testing.assert_array_equal(read_points(path), pos)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), text=st.booleans(), suffix=st.sampled_from([".ply", ".npy"]))
def test_damaged_files_read_or_name_the_file(tmp_path, damage_bytes, data, text, suffix):
    """Cut the file anywhere, or overwrite a few bytes anywhere (header included): the reader returns a
    finite float cloud [N, 3] or raises ValueError naming the file, never another exception."""
    pos = np.arange(30, dtype=np.float32).reshape(10, 3) / 7
    good = tmp_path / ("good" + suffix)
    if suffix == ".ply":
        _write_ply(good, pos, None, text, "f4")
    else:
        np.save(good, pos)
    bad = tmp_path / ("bad" + suffix)
    bad.write_bytes(damage_bytes(data, good.read_bytes()))
    try:
        out = read_points(bad)
    except ValueError as exc:
        assert "bad" + suffix in str(exc)
        return
    assert out.ndim == 2 and out.shape[1] == 3 and np.isfinite(out).all()


@pytest.mark.parametrize("text", [True, False])
@pytest.mark.parametrize("reader", [read_ply, read_points])
def test_ply_with_more_rows_than_its_header_declares_names_the_file(tmp_path, text, reader):
    """Regression: a vertex count too small in the header read the first rows and silently dropped the rest."""
    path = tmp_path / "short_count.ply"
    _write_ply(path, np.arange(12, dtype=np.float32).reshape(4, 3), None, text, "f4")
    data = path.read_bytes()
    path.write_bytes(data.replace(b"element vertex 4", b"element vertex 3", 1))
    with pytest.raises(ValueError, match=r"short_count\.ply: .*element count in the header is too small"):
        reader(path)
    path.write_bytes(data + b"\n")  # a final newline after the data is no extra row
    assert reader(path).shape == (4, 3)
