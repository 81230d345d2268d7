"""Corrupt inputs that used to be accepted silently or failed without naming the file (a QM9 xyz whose
atom count is too small, NaN rows in ModelNet text files, NaN coordinates, a face index beyond int64,
a comment line holding a comma in a whitespace table), and split sizes that did not name a split."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl.datasets.base import named_split_indices, random_split_indices
from geomdl.datasets.formats.off import parse_off
from geomdl.datasets.formats.points import read_points
from geomdl.datasets.formats.xyz import parse_qm9_xyz
from geomdl.datasets.modelnet import read_modelnet_txt
from geomdl.datasets.molecular import MD17

HEAD = "gdb 7 " + " ".join(["1.5"] * 15)


def _qm9(declared: int, atoms: list[str], tail=("1341.3 1562.7", "C C", "InChI=1S/CH4 InChI=1S/CH4")) -> str:
    lines = [str(declared), HEAD] + [f"{a} {k}.0 0.5 -0.25 0.1" for k, a in enumerate(atoms)] + list(tail)
    return "\n".join(lines) + "\n"


@settings(max_examples=30, deadline=None)
@given(atoms=st.lists(st.sampled_from(["H", "C", "N", "O", "F"]), min_size=2, max_size=12), data=st.data())
def test_qm9_xyz_with_a_wrong_atom_count_is_rejected(atoms, data):
    declared = data.draw(st.integers(1, len(atoms) - 1))
    with pytest.raises(ValueError, match=r"^m\.xyz: .*atom count"):
        parse_qm9_xyz(_qm9(declared, atoms), name="m.xyz")
    rec = parse_qm9_xyz(_qm9(len(atoms), atoms), name="m.xyz")  # the right count still parses
    assert len(rec["z"]) == len(atoms) and rec["smiles"] == "C"


def test_qm9_xyz_trailing_lines_and_non_finite_coordinates():
    good = _qm9(2, ["C", "H"])
    assert parse_qm9_xyz(good + "\n  \n", name="m.xyz")["index"] == 7  # trailing blank lines are fine
    with pytest.raises(ValueError, match=r"m\.xyz: 2 atoms need 7 lines but line 8 follows the InChI line"):
        parse_qm9_xyz(good + "junk\n", name="m.xyz")
    with pytest.raises(ValueError, match=r"m\.xyz: atom coordinates contain NaN"):
        parse_qm9_xyz(good.replace("C 0.0 0.5", "C nan 0.5"), name="m.xyz")


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_modelnet_txt_rejects_non_finite_rows(tmp_path, bad):
    path = tmp_path / "chair_0001.txt"
    path.write_text("0.1,0.2,0.3,0,0,1\n" f"0.1,{bad},0.3,0,0,1\n" "0.1,0.2,0.3,0,1,0\n")
    with pytest.raises(ValueError, match=r"chair_0001\.txt: 1 of 3 rows have NaN or infinite values \(first at data row 1\)"):
        read_modelnet_txt(path)


def test_off_face_index_beyond_int64_names_the_file():
    text = "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 99999999999999999999999\n"
    with pytest.raises(ValueError, match=r"^x\.off: face vertex index out of range"):
        parse_off(text, name="x.off")


def test_whitespace_table_with_a_comma_in_a_leading_comment(tmp_path):
    path = tmp_path / "cloud.txt"
    path.write_text("# x, y, z in metres\n1 2 3\n4 5 6\n")
    np.testing.assert_array_equal(read_points(path), [[1, 2, 3], [4, 5, 6]])
    path.write_text("# x y z\n1,2,3\n4,5,6\n")
    np.testing.assert_array_equal(read_points(path), [[1, 2, 3], [4, 5, 6]])


def test_random_split_sizes_nan_numpy_ints_and_bools():
    with pytest.raises(ValueError, match="fractional sizes must be >= 0"):
        random_split_indices(10, [float("nan"), 0.5])
    parts = random_split_indices(10, [np.int64(3), None])
    assert [len(p) for p in parts] == [3, 7]
    with pytest.raises(ValueError, match="sizes must be ints"):
        random_split_indices(10, [True, None])


def test_split_sizes_without_an_entry_for_the_requested_split():
    with pytest.raises(ValueError, match=r"split='test' needs a size in split_sizes"):
        named_split_indices(10, (0.9, 0.1), 0, "test")
    with pytest.raises(ValueError, match="split_sizes gives 4 sizes"):
        named_split_indices(10, (0.5, 0.2, 0.2, 0.1), 0, "train")
    assert set(named_split_indices(10, (1.0,), 0, "all")) == {"train"}


def test_md17_split_sizes_errors_name_the_argument(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "md17_x.npz", R=rng.normal(size=(6, 2, 3)), E=rng.normal(size=(6, 1)), F=rng.normal(size=(6, 2, 3)),
             z=np.array([1, 8]))
    with pytest.raises(ValueError, match="split_sizes"):
        MD17(tmp_path, "x", split="test", split_sizes=(0.5, 0.5), processed_dir=tmp_path / "p")
    ds = MD17(tmp_path, "x", split="val", split_sizes=(3, 2, None), processed_dir=tmp_path / "p")
    assert len(ds) == 2 and torch.equal(ds.split_indices["val"], ds._indices)


def test_qm9_split_sizes_errors_name_the_argument(tmp_path):
    from geomdl.datasets.qm9 import QM9

    for k in range(1, 5):
        (tmp_path / f"dsgdb9nsd_{k:06d}.xyz").write_text(_qm9(2, ["C", "H"]).replace("gdb 7", f"gdb {k}"))
    with pytest.raises(ValueError, match="split_sizes"):
        QM9(tmp_path, split="val", split_sizes=(1.0,), processed_dir=tmp_path / "p")
    assert len(QM9(tmp_path, split="all", split_sizes=(1.0,), processed_dir=tmp_path / "p")) == 4


def test_qm9_split_sizes_are_checked_before_processing(tmp_path, monkeypatch):
    from geomdl.datasets.qm9 import QM9

    for k in range(1, 5):
        (tmp_path / f"dsgdb9nsd_{k:06d}.xyz").write_text(_qm9(2, ["C", "H"]).replace("gdb 7", f"gdb {k}"))
    monkeypatch.setattr(QM9, "process", lambda self: pytest.fail("processed before the split_sizes check"))
    for sizes in ((0.8, 0.1), (5, None, None), "0.8"):  # no test size; two rests; not a sequence
        with pytest.raises((TypeError, ValueError), match="sizes"):
            QM9(tmp_path, split="test", split_sizes=sizes, processed_dir=tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_numpy_integer_index_returns_one_item(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "md17_y.npz", R=rng.normal(size=(5, 2, 3)), E=rng.normal(size=(5, 1)), F=rng.normal(size=(5, 2, 3)),
             z=np.array([1, 8]))
    ds = MD17(tmp_path, "y", processed_dir=tmp_path / "p")
    for idx in (np.int64(3), np.int32(-1), np.array(2)):
        item = ds[idx]
        assert torch.equal(item.pos, ds[int(idx)].pos) and item.pos.shape == (2, 3)


def test_ase_db_single_target_name_is_one_target(shared_data, tmp_path):
    from geomdl.datasets.molecular import ASEDatabase

    db = shared_data / "qm9/test_qm9.db"
    one = ASEDatabase(db, targets="homo", processed_dir=tmp_path)
    assert one.targets == ["homo"] and one[0].y.shape == (1, 1)
    assert float(one[0].y[0, 0]) == pytest.approx(-0.3877, abs=1e-4)  # CH4 HOMO in Ha
    with pytest.raises(TypeError, match="targets must be a property name"):
        ASEDatabase(db, targets=[1, 2], processed_dir=tmp_path)


def test_modelnet_lists_saved_with_a_byte_order_mark(shared_data, tmp_path):
    from geomdl.datasets.modelnet import MODELNET40_CLASSES, ModelNet

    src = shared_data / "modelnet40/modelnet40_normal_resampled"
    root = tmp_path / "modelnet40_normal_resampled"
    (root / "airplane").mkdir(parents=True)
    (root / "airplane/airplane_0126.txt").write_bytes((src / "airplane/airplane_0126.txt").read_bytes())
    bom = "\ufeff"  # Notepad's "UTF-8 with BOM", CRLF line ends
    (root / "modelnet40_shape_names.txt").write_text(bom + "\r\n".join(MODELNET40_CLASSES) + "\r\n", encoding="utf-8")
    (root / "modelnet40_train.txt").write_text(bom + "airplane_0126\r\n", encoding="utf-8")
    ds = ModelNet(tmp_path, split="train", num_points=64, processed_dir=tmp_path / "p")
    assert len(ds) == 1 and int(ds[0].y) == 0 and ds[0].shape_id == "airplane_0126"
