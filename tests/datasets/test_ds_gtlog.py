"""gt.log / gt.info / gt_overlap.log parsers: property round trip, errors, the real redkitchen files."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl.datasets.formats.gtlog import (
    format_gt_log,
    parse_gt_log,
    parse_gt_overlap,
    read_gt_info,
    read_gt_log,
    read_gt_overlap,
)

BENCH = "3dmatch/benchmarks/3DMatch/7-scenes-redkitchen"

matrices = st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=16, max_size=16)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 500), st.integers(0, 500), st.integers(1, 500), matrices), max_size=5,
                unique_by=lambda r: (r[0], r[1])))  # one record per pair (a second one is an error)
def test_gt_log_roundtrip_property(records):
    records = [(i, j, n, np.asarray(m).reshape(4, 4)) for i, j, n, m in records]
    parsed = parse_gt_log(format_gt_log(records))
    assert [(i, j, n) for i, j, n, _ in parsed] == [(i, j, n) for i, j, n, _ in records]
    for (_, _, _, a), (_, _, _, b) in zip(parsed, records):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-300)


@pytest.mark.parametrize("text, message", [
    ("0 1 60\n1 0 0 0\n0 1 0 0\n0 0 1 0\n", "not a multiple of 5"),
    ("0 1\n1 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n", "expected 'i j n'"),
    ("0 1 60\n1 0 0 0\n0 1 0\n0 0 1 0\n0 0 0 1\n", "4 numbers each"),
    ("0 1 60\n1 0 0 0\n0 1 0 a\n0 0 1 0\n0 0 0 1\n", "4 numbers"),
])
def test_bad_gt_log_names_file(tmp_path, text, message):
    path = tmp_path / "gt.log"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"{path}.*{message}"):
        read_gt_log(path)


def test_gt_overlap_errors():
    assert parse_gt_overlap("0,1,0.5\n\n2 3 0.25\n") == {(0, 1): 0.5, (2, 3): 0.25}
    with pytest.raises(ValueError, match="x.log: line 1: overlap 1.5 outside"):
        parse_gt_overlap("0,1,1.5\n", name="x.log")
    with pytest.raises(ValueError, match="line 2: expected 'i,j,overlap'"):
        parse_gt_overlap("0,1,0.5\n0,1\n")


def test_real_redkitchen_ground_truth(shared_data):
    records = read_gt_log(shared_data / BENCH / "gt.log")
    assert len(records) == 506  # README: 506 pairs
    assert {n for _, _, n, _ in records} == {60}
    for _, _, _, mat in records:
        rot = mat[:3, :3]
        np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-3)  # the official poses are orthonormal to ~1e-4
        assert np.linalg.det(rot) == pytest.approx(1.0, abs=1e-3)
        np.testing.assert_array_equal(mat[3], [0, 0, 0, 1])
    info = read_gt_info(shared_data / BENCH / "gt.info")
    assert [(i, j) for i, j, _, _ in info] == [(i, j) for i, j, _, _ in records]
    assert all(np.allclose(m, m.T) for _, _, _, m in info)
    overlap = read_gt_overlap(shared_data / BENCH / "gt_overlap.log")
    assert len(overlap) == 1770 == 60 * 59 // 2
    assert overlap[(0, 4)] == pytest.approx(0.5422)


def test_a_pair_recorded_twice_is_an_error_naming_the_file_and_lines(tmp_path):
    # a second record of one pair replaced the first (registration) or was evaluated twice (ThreeDMatch)
    from geomdl.datasets.formats.gtlog import format_gt_log, read_gt_log, read_gt_overlap
    from geomdl.pipelines.registration.io import read_gt_log as read_poses

    eye = np.eye(4)
    path = tmp_path / "gt.log"
    path.write_text(format_gt_log([(0, 2, 5, eye), (1, 3, 5, eye), (0, 2, 5, 2 * eye)]))
    for reader in (read_gt_log, read_poses):
        with pytest.raises(ValueError, match=r"gt.log: line 11: a second record of the pair 0 2 \(first at line 1\)"):
            reader(path)
    overlap = tmp_path / "gt_overlap.log"
    overlap.write_text("0,2,0.5\n1,3,0.4\n0,2,0.6\n")
    with pytest.raises(ValueError, match=r"gt_overlap.log: line 3: a second overlap of the pair 0 2"):
        read_gt_overlap(overlap)


def test_errors_name_the_line_of_the_file_when_blank_lines_separate_records(tmp_path):
    # the line number counted only non-empty lines: with a blank line after each record, line 11 was reported as 6
    from geomdl.datasets.formats.gtlog import format_gt_log, read_gt_log

    eye = np.eye(4)
    path = tmp_path / "gt.log"
    path.write_text(format_gt_log([(0, 2, 5, eye)]) + "\n\n" + format_gt_log([(0, 2, 5, eye)]))
    with pytest.raises(ValueError, match=r"gt.log: line 8: a second record of the pair 0 2 \(first at line 1\)"):
        read_gt_log(path)
    path.write_text(format_gt_log([(0, 2, 5, eye)]) + "\n\n" + format_gt_log([(1, 2, 5, eye)]).replace("0.00000000e+00", "x", 1))
    with pytest.raises(ValueError, match=r"gt.log: record at line 8: matrix rows must be 4 numbers"):
        read_gt_log(path)
