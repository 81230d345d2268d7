"""Property tests of the file readers in geomdl.datasets.formats not covered elsewhere: text/.pth arrays, PLY faces,
gt.info and gt_overlap.log round trips, and damaged OFF / QM9 xyz / gt.info / gt_overlap / array / PLY-face files
(cut anywhere or with a few bytes overwritten): each reads as valid content or raises a ValueError naming the file,
never another exception (IndexError, UnicodeDecodeError, OverflowError, ...)."""
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from geomdl.datasets.formats import (parse_gt_info, parse_gt_overlap, read_array, read_gt_info, read_gt_overlap,
                                     read_off, read_ply_faces, read_points, read_qm9_xyz, triangulate, write_off)

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FINITE = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


def _read_or_named_error(read, path):
    """``read(path)``, or ``None`` after a ValueError that names the file; any other exception fails the test."""
    try:
        return read(path)
    except ValueError as exc:
        assert path.name in str(exc), f"error does not name the file: {exc}"
        return None


# --- text / .pth arrays --------------------------------------------------------------------------------------


@settings(max_examples=40, **SETTINGS)
@given(arr=arrays(np.float64, st.tuples(st.integers(1, 12), st.integers(3, 5)), elements=FINITE),
       suffix=st.sampled_from([".txt", ".csv", ".xyz", ".pth", ".pt"]), comment=st.booleans())
def test_arrays_round_trip(tmp_path, arr, suffix, comment):
    path = tmp_path / ("a" + suffix)
    if suffix in (".pth", ".pt"):
        torch.save(torch.from_numpy(arr), path)
    else:
        sep = "," if suffix == ".csv" else " "
        head = "# x, y, z (a comment with commas)\n" if comment else ""
        path.write_text(head + "".join(sep.join(repr(float(v)) for v in row) + "\n" for row in arr))
    got = read_array(path)
    np.testing.assert_array_equal(got, arr)
    np.testing.assert_array_equal(read_points(path), arr[:, :3].astype(np.float32))


@settings(max_examples=60, **SETTINGS)
@given(data=st.data(), suffix=st.sampled_from([".txt", ".csv", ".pth"]))
def test_damaged_arrays_read_or_name_the_file(tmp_path, damage_bytes, data, suffix):
    arr = np.arange(24, dtype=np.float64).reshape(8, 3) / 7
    good = tmp_path / ("good" + suffix)
    if suffix == ".pth":
        torch.save(torch.from_numpy(arr), good)
    else:
        sep = "," if suffix == ".csv" else " "
        good.write_text("".join(sep.join(repr(float(v)) for v in row) + "\n" for row in arr))
    bad = tmp_path / ("bad" + suffix)
    bad.write_bytes(damage_bytes(data, good.read_bytes()))
    out = _read_or_named_error(read_points, bad)
    if out is not None:
        assert out.ndim == 2 and out.shape[1] == 3 and out.dtype == np.float32 and np.isfinite(out).all()


# --- PLY faces -----------------------------------------------------------------------------------------------


def _write_ply_mesh(path, n_vertices, polygons, text):
    plyfile = pytest.importorskip("plyfile")
    vertex = np.zeros(n_vertices, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    vertex["x"] = np.arange(n_vertices)
    face = np.empty(len(polygons), dtype=[("vertex_indices", object)])
    for k, p in enumerate(polygons):
        face[k] = (np.asarray(p, dtype=np.int32),)
    elements = [plyfile.PlyElement.describe(vertex, "vertex"),
                plyfile.PlyElement.describe(face, "face", val_types={"vertex_indices": "int32"})]
    plyfile.PlyData(elements, text=text).write(str(path))


@settings(max_examples=30, **SETTINGS)
@given(polys=st.lists(st.lists(st.integers(0, 9), min_size=3, max_size=7), max_size=8), text=st.booleans())
def test_ply_faces_round_trip(tmp_path, polys, text):
    path = tmp_path / "mesh.ply"
    _write_ply_mesh(path, 10, polys, text)
    faces = read_ply_faces(path)
    assert faces.dtype == np.int64 and faces.shape == (sum(len(p) - 2 for p in polys), 3)
    np.testing.assert_array_equal(faces, triangulate(polys))


@settings(max_examples=40, **SETTINGS)
@given(data=st.data(), text=st.booleans())
def test_damaged_ply_faces_read_or_name_the_file(tmp_path, damage_bytes, data, text):
    good = tmp_path / "good.ply"
    _write_ply_mesh(good, 6, [[0, 1, 2], [2, 3, 4, 5], [5, 4, 0]], text)
    bad = tmp_path / "bad.ply"
    bad.write_bytes(damage_bytes(data, good.read_bytes()))
    faces = _read_or_named_error(read_ply_faces, bad)
    if faces is not None:
        assert faces.dtype == np.int64 and faces.ndim == 2 and faces.shape[1] == 3
        assert faces.size == 0 or (faces.min() >= 0 and faces.max() < 6)


@pytest.mark.parametrize("polys", [[[0, 1, 7]], [[0, -1, 2]], [[3, 0, 1, 2]]])
def test_ply_face_indices_out_of_range_name_the_file(tmp_path, polys):
    """Regression: read_ply_faces returned indices >= the vertex count and negative ones (which wrap around
    in numpy indexing) instead of an error, unlike read_off."""
    path = tmp_path / "mesh.ply"
    _write_ply_mesh(path, 3, polys, True)
    with pytest.raises(ValueError, match=r"mesh\.ply: face vertex index out of range \[0, 3\)"):
        read_ply_faces(path)


@pytest.mark.parametrize("polys", [[[0, 1, 2], [1, 2]], [[0]], [[]]])
def test_ply_faces_of_fewer_than_three_vertices_name_the_file(tmp_path, polys):
    """Like read_off: a face of 0-2 vertices is an error naming the file and the face (it was dropped silently)."""
    path = tmp_path / "mesh.ply"
    _write_ply_mesh(path, 3, polys, True)
    with pytest.raises(ValueError, match=r"mesh\.ply: face \d+ has [0-2] vertices, a face needs at least 3"):
        read_ply_faces(path)


# --- OFF and QM9 xyz: damaged files (their round trips are in test_ds_off.py / test_ds_xyz.py) -------------------


@settings(max_examples=60, **SETTINGS)
@given(data=st.data(), quirk=st.booleans())
def test_damaged_off_reads_or_names_the_file(tmp_path, damage_bytes, data, quirk):
    good = tmp_path / "good.off"
    write_off(good, [[0, 0, 0], [1.5, 0, 0], [0, 2.25, 0], [0, 0, -3]], [[0, 1, 2], [0, 1, 2, 3], [3, 2, 1]], quirk=quirk)
    bad = tmp_path / "bad.off"
    bad.write_bytes(damage_bytes(data, good.read_bytes()))
    out = _read_or_named_error(read_off, bad)
    if out is not None:
        verts, faces = out
        assert verts.ndim == 2 and verts.shape[1] == 3 and np.isfinite(verts).all()
        assert faces.dtype == np.int64 and faces.shape[1] == 3
        assert faces.size == 0 or (faces.min() >= 0 and faces.max() < len(verts))


_QM9 = """3
gdb 17 157.7118 157.70997 157.70699 0. 13.21 -0.3877 0.1171 0.5048 35.3641 0.044749 -40.47893 -40.476062 -40.475117 -40.498597 6.469
C\t-0.0126981359\t 1.0858041578\t 0.0080009958\t-0.535689
H\t 0.002150416\t-0.0060313176\t 0.0019761204\t 0.133921
H\t 1.0117308433\t 1.4637511618\t 0.0002765748\t 0.133922
1341.307\t1341.3284\t3151.7078
C\tC\t
InChI=1S/CH4/h1H4\tInChI=1S/CH4/h1H4
"""


@settings(max_examples=60, **SETTINGS)
@given(data=st.data())
def test_damaged_qm9_xyz_reads_or_names_the_file(tmp_path, damage_bytes, data):
    good = tmp_path / "good.xyz"
    good.write_text(_QM9)
    assert read_qm9_xyz(good)["z"].tolist() == [6, 1, 1]
    bad = tmp_path / "bad.xyz"
    bad.write_bytes(damage_bytes(data, good.read_bytes()))
    rec = _read_or_named_error(read_qm9_xyz, bad)
    if rec is not None:
        assert rec["pos"].shape == (len(rec["z"]), 3) and np.isfinite(rec["pos"]).all()
        assert len(rec["charges"]) == len(rec["z"]) and len(rec["properties"]) == 15


# --- 3DMatch gt.info and gt_overlap.log ----------------------------------------------------------------------


def _format_records(records, size):
    return "".join(f"{i} {j} {n}\n" + "".join(" ".join(repr(float(v)) for v in row) + "\n" for row in mat)
                   for i, j, n, mat in records)


_PAIRS = st.lists(st.tuples(st.integers(0, 99), st.integers(0, 99)), max_size=6, unique=True)


@settings(max_examples=40, **SETTINGS)
@given(pairs=_PAIRS, n=st.integers(1, 100), seed=st.integers(0, 2**31 - 1),
       overlaps=st.lists(st.floats(0, 1), min_size=6, max_size=6), sep=st.sampled_from([",", " ", "\t", ", "]))
def test_gt_info_and_overlap_round_trip(tmp_path, pairs, n, seed, overlaps, sep):
    rng = np.random.default_rng(seed)
    records = [(i, j, n, rng.normal(size=(6, 6)) * 10.0 ** rng.integers(-5, 5)) for i, j in pairs]
    got = parse_gt_info(_format_records(records, 6))
    assert [(i, j, k) for i, j, k, _ in got] == [(i, j, k) for i, j, k, _ in records]
    for (_, _, _, a), (_, _, _, b) in zip(got, records):
        np.testing.assert_array_equal(a, b)
    want = {p: v for p, v in zip(pairs, overlaps)}
    path = tmp_path / "gt_overlap.log"
    path.write_text("".join(f"{i}{sep}{j}{sep}{v!r}\n" for (i, j), v in want.items()))
    assert read_gt_overlap(path) == want
    assert parse_gt_overlap("\n" + path.read_text() + "\n\n") == want  # blank lines are ignored


@settings(max_examples=60, **SETTINGS)
@given(data=st.data(), which=st.sampled_from(["gt.info", "gt_overlap.log"]))
def test_damaged_gt_info_and_overlap_read_or_name_the_file(tmp_path, damage_bytes, data, which):
    good = tmp_path / which
    if which == "gt.info":
        good.write_text(_format_records([(0, 1, 3, np.eye(6) * 2.5), (1, 2, 3, np.full((6, 6), -0.125))], 6))
        read = read_gt_info
    else:
        good.write_text("0,1,0.25\n0,2,0.5\n1,2,1.0\n")
        read = read_gt_overlap
    bad = tmp_path / ("bad_" + which)
    bad.write_bytes(damage_bytes(data, good.read_bytes()))
    out = _read_or_named_error(read, bad)
    if out is not None and which == "gt.info":
        assert all(m.shape == (6, 6) and np.isfinite(m).all() for _, _, _, m in out)
    elif out is not None:
        assert all(0.0 <= v <= 1.0 for v in out.values())


# --- extended XYZ through ase.io (round trip in test_ds_xyz.py) -----------------------------------------------

_EXTXYZ = """2
Properties=species:S:1:pos:R:3:forces:R:3 energy=-1.25 pbc="F F F"
H 0.0 0.0 0.0 0.1 0.0 0.0
O 0.0 0.0 0.96 -0.1 0.0 0.0
1
Properties=species:S:1:pos:R:3:forces:R:3 energy=-0.5 pbc="F F F"
C 1.0 2.0 3.0 0.0 0.0 0.0
"""


@settings(max_examples=30, **SETTINGS)
@given(data=st.data())
def test_damaged_extxyz_reads_or_names_the_file(tmp_path, damage_bytes, data):
    from geomdl.datasets.formats import read_ase

    good = tmp_path / "good.extxyz"
    good.write_text(_EXTXYZ)
    assert [len(a) for a in read_ase(good)] == [2, 1]
    bad = tmp_path / "bad.extxyz"
    bad.write_bytes(damage_bytes(data, good.read_bytes()))
    frames = _read_or_named_error(read_ase, bad)
    if frames is not None:
        assert frames and all(a.positions.shape == (len(a), 3) for a in frames)


def test_ply_faces_of_a_missing_file_is_file_not_found(tmp_path):
    # read_ply raised FileNotFoundError but read_ply_faces a ValueError "unreadable PLY file (FileNotFoundError ...)"
    with pytest.raises(FileNotFoundError, match="nothere.ply: no such file"):
        read_ply_faces(tmp_path / "nothere.ply")


@pytest.mark.parametrize("props, row, message", [
    ("property uchar flags\nproperty list uchar int vertex_index\n", "7 3 0 1 2", None),
    ("property list uchar float vertex_indices\n", "3 0.5 1.7 2.2", "must list integer vertex indices, got 'f4'"),
    ("property int flags\n", "7", "face element has no list property 'vertex_indices'"),
])
def test_ply_face_index_property_is_the_integer_list(tmp_path, props, row, message):
    """Regression: read_ply_faces took the face element's first property: a scalar one written first failed with a
    bare TypeError, and a list of floats was truncated to other vertex indices."""
    path = tmp_path / "faces.ply"
    path.write_text("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
                    f"element face 1\n{props}end_header\n0 0 0\n1 0 0\n0 1 0\n{row}\n")
    if message is None:
        np.testing.assert_array_equal(read_ply_faces(path), [[0, 1, 2]])
    else:
        with pytest.raises(ValueError, match=rf"faces\.ply: .*{message}"):
            read_ply_faces(path)
