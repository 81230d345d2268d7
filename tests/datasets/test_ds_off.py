"""OFF parser: ModelNet header quirk, polygons, comments, errors naming the file; the real ModelNet10 meshes."""
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl.datasets.formats.off import parse_off, read_off, triangulate, write_off

REAL_OFF = {"bathtub_0001.off": (3514, 3546), "bathtub_0002.off": (700, 664), "bathtub_0003.off": (14963, 19985),
            "bathtub_0004.off": (2842, 3519), "bathtub_0005.off": (18472, 30734)}


def test_header_quirk_polygons_and_comments():
    text = "OFF4 2 0\n# a comment\n0 0 0\n1 0 0\n\n1 1 0\n0 1 0\n4 0 1 2 3\n3 0 2 3 255 0 0\n"
    verts, faces = parse_off(text)
    assert verts.shape == (4, 3)
    # the quad becomes two triangles (fan), the coloured triangle stays one
    assert faces.tolist() == [[0, 1, 2], [0, 2, 3], [0, 2, 3]]


def test_standard_header_and_triangulate():
    verts, faces = parse_off("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")
    assert faces.tolist() == [[0, 1, 2]]
    assert triangulate([[0, 1, 2, 3, 4]]).tolist() == [[0, 1, 2], [0, 2, 3], [0, 3, 4]]


@pytest.mark.parametrize("text, message", [
    ("OFF\n3 1 0\n0 0 0\n1 0 0\n", "declares 3 vertices but only 2"),
    ("OFF\n3 1 0\n0 0 0\n1 0 0\n3 0 1 2\n", "only 2 vertex lines come before the faces (too few vertices)"),
    ("OFF\n3 2 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n", "declares 2 faces but only 1"),
    ("OFF\n3 2 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n", "declares 2 faces but only 1"),
    ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n", "out of range"),
    ("OFF\n3 1 0\n0 0 x\n1 0 0\n0 1 0\n3 0 1 2\n", "vertex 0"),
    ("PLY\n3 1 0\n", "not an OFF file"),
    ("OFF\nthree 1 0\n", "bad counts"),
    ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n2 0 1\n", "n >= 3"),
])
def test_bad_off_raises_naming_the_file(tmp_path, text, message):
    path = tmp_path / "broken.off"
    path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*" + re.escape(message)):
        read_off(path)


@pytest.mark.parametrize("tail, lineno, extra", [
    ("3 0 2 1\n", 7, "3 0 2 1"),  # one face more than declared
    ("\n# trailing comment\n0.5 0.5 0\n\n", 9, "0.5 0.5 0"),
])
def test_lines_after_the_declared_faces_raise_naming_the_file(tmp_path, tail, lineno, extra):
    # they were silently ignored: a header that undercounts the faces dropped geometry without a word
    path = tmp_path / "extra.off"
    path.write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n" + tail)
    want = f"{path}: header declares 3 vertices + 1 faces = 4 lines but 5 non-blank, non-comment lines follow " \
           f"the header (line {lineno} after the faces: {extra!r})"
    with pytest.raises(ValueError, match=re.escape(want)):
        read_off(path)


def test_blank_lines_and_comments_still_accepted_everywhere():
    text = ("# leading comment\n\nOFF # header comment\n# between\n3 1 0\n\n0 0 0 # vertex comment\n"
            "# mid\n1 0 0\n\n0 1 0\n3 0 1 2 # face comment\n\n# trailing comment\n   \n\n")
    verts, faces = parse_off(text)
    assert verts.shape == (3, 3) and faces.tolist() == [[0, 1, 2]]


def test_real_off_with_an_extra_face_line_raises(shared_data):
    # the real ModelNet10 files have nothing after their faces (test_every_real_modelnet10_off), so an error
    # rather than a warning; bathtub_0002 declares 700 vertices and 664 faces
    lines = (shared_data / "modelnet10/ModelNet10/bathtub/train/bathtub_0002.off").read_text().splitlines()
    with pytest.raises(ValueError, match=r"b2\.off: header declares 700 vertices \+ 664 faces = 1364 lines but 1365"):
        parse_off("\n".join(lines + ["3 0 1 2"]), name="b2.off")


def test_truncated_real_off_names_file(shared_data, tmp_path):
    lines = (shared_data / "modelnet10/ModelNet10/bathtub/train/bathtub_0002.off").read_text().splitlines()
    path = tmp_path / "bathtub_trunc.off"
    path.write_text("\n".join(lines[:500]))  # 700 vertices declared
    with pytest.raises(ValueError, match="bathtub_trunc.off: header declares 700 vertices but only 498"):
        read_off(path)


@settings(max_examples=40, deadline=None)
@given(
    verts=st.lists(st.tuples(*[st.floats(-1e3, 1e3, allow_nan=False)] * 3), min_size=3, max_size=12),
    polys=st.lists(st.lists(st.integers(0, 2), min_size=3, max_size=6), min_size=0, max_size=6),
    quirk=st.booleans(),
)
def test_off_roundtrip_property(tmp_path_factory, verts, polys, quirk):
    path = tmp_path_factory.mktemp("off") / "m.off"
    write_off(path, verts, polys, quirk=quirk)
    v, f = read_off(path)
    np.testing.assert_array_equal(v, np.asarray(verts, dtype=np.float64).reshape(-1, 3))
    assert f.shape == (sum(len(p) - 2 for p in polys), 3)
    np.testing.assert_array_equal(f, triangulate(polys))


def test_every_real_modelnet10_off(shared_data):
    folder = shared_data / "modelnet10/ModelNet10/bathtub/train"
    assert sorted(p.name for p in folder.glob("*.off")) == sorted(REAL_OFF)
    for name, (nv, nf) in REAL_OFF.items():
        verts, faces = read_off(folder / name)
        assert verts.shape == (nv, 3)
        assert faces.shape[0] >= nf  # polygons are fan-triangulated
        assert faces.min() >= 0 and faces.max() < nv
        assert np.isfinite(verts).all()
