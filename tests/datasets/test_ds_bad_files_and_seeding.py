"""Corrupt/binary files name the file, bad point arrays are
rejected, cache files are readable by others, caches see label-list edits, and seeded per-access
augmentations differ between DataLoader workers."""
import os
import stat

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl.datasets.formats.gtlog import read_gt_log, read_gt_overlap
from geomdl.datasets.formats.points import read_array, read_ply, read_points
from geomdl.datasets.formats.xyz import parse_qm9_xyz, read_qm9_xyz
from geomdl.datasets.modelnet import MODELNET40_CLASSES, ModelNet
from geomdl.datasets.qm9 import read_qm9_csv
from geomdl.datasets.transforms import RandomRotation
from geomdl.utils.io import atomic_torch_save, atomic_write_text

BINARY = bytes(range(128, 256)) * 4  # never valid UTF-8


@pytest.mark.parametrize("reader, name", [(read_gt_log, "gt.log"), (read_gt_overlap, "gt_overlap.log"),
                                          (read_qm9_xyz, "dsgdb9nsd_000001.xyz"), (read_qm9_csv, "qm9_part1.csv")])
def test_binary_text_files_give_an_error_naming_the_file(tmp_path, reader, name):
    path = tmp_path / name
    path.write_bytes(BINARY)
    with pytest.raises(ValueError, match=f"{name}: not a text"):
        reader(path)


def test_qm9_xyz_atom_count_must_be_positive():
    head = "gdb 1 " + " ".join(["1.0"] * 15)
    with pytest.raises(ValueError, match="number of atoms on the first line must be >= 1, got -2"):
        parse_qm9_xyz("\n".join(["-2", head, "", "", "", ""]), name="m.xyz")
    with pytest.raises(ValueError, match="m.xyz: number of atoms .* got 0"):
        parse_qm9_xyz("\n".join(["0", head, "", "", "", ""]), name="m.xyz")


@pytest.mark.parametrize("array, message", [
    (np.array([[0.0, 0.0, 0.0], [np.nan, 1.0, 2.0]]), "1 of 2 points have NaN or infinite coordinates"),
    (np.array([[0.0, np.inf, 0.0]]), "1 of 1 points have NaN"),
    (np.zeros((4, 3), dtype=np.complex128), "expected real numbers .* got dtype complex128"),
    (np.ones((4, 3), dtype=bool), "expected real numbers .* got dtype bool"),
])
def test_read_points_rejects_non_finite_and_non_real_arrays(tmp_path, array, message):
    np.save(tmp_path / "cloud.npy", array)
    with pytest.raises(ValueError, match=f"cloud.npy: {message}"):
        read_points(tmp_path / "cloud.npy")


def test_read_points_accepts_integer_and_float_arrays(tmp_path):
    np.save(tmp_path / "i.npy", np.arange(12, dtype=np.int32).reshape(4, 3))
    out = read_points(tmp_path / "i.npy")
    assert out.dtype == np.float32 and out.shape == (4, 3) and out[3, 2] == 11


def test_missing_point_files_raise_file_not_found(tmp_path):
    for reader, name in ((read_array, "a.npy"), (read_ply, "b.ply"), (read_points, "c.npy")):
        with pytest.raises(FileNotFoundError, match=f"{name}: no such file"):
            reader(tmp_path / name)


def test_atomic_writes_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        atomic_torch_save({"a": torch.zeros(2)}, tmp_path / "b.pt")
        os.umask(0o002)
        atomic_write_text(tmp_path / "c.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644  # not mkstemp's 0o600
    assert stat.S_IMODE((tmp_path / "b.pt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "c.txt").stat().st_mode) == 0o664


def _resampled_folder(root, n_shapes=4, points=16):
    (root / "cone").mkdir(parents=True)
    (root / "cup").mkdir()
    (root / "modelnet40_shape_names.txt").write_text("\n".join(MODELNET40_CLASSES) + "\n")
    ids = [f"cone_{k:04d}" for k in range(1, n_shapes + 1)]
    (root / "modelnet40_train.txt").write_text("\n".join(ids) + "\n")
    pts = np.random.default_rng(0).normal(size=(points, 3))
    for sid in ids:
        np.savetxt(root / "cone" / f"{sid}.txt", np.hstack([pts, pts]), delimiter=",")
    return ids


def test_modelnet_cache_follows_an_edited_shape_name_list(tmp_path):
    root = tmp_path / "nr"
    _resampled_folder(root, n_shapes=2)
    first = ModelNet(root, num_points=8, processed_dir=tmp_path / "c")
    assert int(first[0].y) == MODELNET40_CLASSES.index("cone") == 9
    names = list(MODELNET40_CLASSES)
    names.remove("cone")
    names.insert(0, "cone")  # a different class order: cone is label 0 now
    (root / "modelnet40_shape_names.txt").write_text("\n".join(names) + "\n")
    again = ModelNet(root, num_points=8, processed_dir=tmp_path / "c")
    assert not again.from_cache and int(again[0].y) == 0


def _identity_collate(batch):
    return batch[0]


def test_modelnet_train_rotations_differ_between_workers_and_epochs(tmp_path):
    root = tmp_path / "nr"
    _resampled_folder(root, n_shapes=4)
    ds = ModelNet(root, num_points=16, rotation="SO3/SO3", normalize=False, processed_dir=tmp_path / "c")
    loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=2, collate_fn=_identity_collate)
    torch.manual_seed(0)
    epoch1 = [d.pos for d in loader]
    epoch2 = [d.pos for d in loader]
    # every shape holds the same points: equal outputs mean equal rotations
    pairs = [(a, b) for k, a in enumerate(epoch1) for b in epoch1[k + 1:]] + list(zip(epoch1, epoch2))
    assert not any(torch.allclose(a, b, atol=1e-5) for a, b in pairs)
    torch.manual_seed(0)  # and the whole stream is fixed by the seed
    replay = [d.pos for d in loader]
    for a, b in zip(epoch1, replay):
        torch.testing.assert_close(a, b)


class _Same(torch.utils.data.Dataset):
    def __init__(self, transform):
        self.transform = transform

    def __len__(self):
        return 4

    def __getitem__(self, idx):
        from torch_geometric.data import Data

        return self.transform(Data(pos=torch.eye(3)))


def test_seeded_transform_differs_between_workers(tmp_path):
    loader = torch.utils.data.DataLoader(_Same(RandomRotation("SO3", seed=3)), batch_size=1, num_workers=2,
                                         collate_fn=_identity_collate)
    out = [d.pos for d in loader]
    assert not torch.allclose(out[0], out[1], atol=1e-5)  # item 0 in worker 0, item 1 in worker 1


@settings(max_examples=80, deadline=None)
@given(st.lists(st.text(alphabet="0123456789 .-\n\t,eE", max_size=30), max_size=12), st.binary(max_size=8))
def test_gt_log_parser_fails_only_with_value_errors_naming_the_file(tmp_path_factory, lines, tail):
    path = tmp_path_factory.mktemp("gt") / "gt.log"
    path.write_bytes("\n".join(lines).encode() + tail)  # text, possibly ending in bytes that are not UTF-8
    try:
        records = read_gt_log(path)
    except ValueError as exc:
        assert str(path) in str(exc)
    else:
        assert all(mat.shape == (4, 4) and np.isfinite(mat).all() for _, _, _, mat in records)


def _qm9_xyz(index: int) -> str:
    props = " ".join(["1.0"] * 12 + ["-40.0", "-40.0", "-40.0", "-40.0", "6.0"][:3])
    return "\n".join(["1", f"gdb {index} {props}", "C 0.0 0.0 0.0 -0.1", "100.0", "C C", "InChI=1S/C InChI=1S/C"]) + "\n"


def test_qm9_xyz_cache_follows_an_edited_uncharacterized_list(tmp_path):
    from geomdl.datasets.qm9 import QM9

    for k in (1, 2, 3):
        (tmp_path / f"dsgdb9nsd_{k:06d}.xyz").write_text(_qm9_xyz(k))
    (tmp_path / "uncharacterized.txt").write_text("header\n")
    first = QM9(tmp_path, source="xyz", split_sizes=(1, 1, 1))
    assert sorted(int(first.get(i).idx) for i in range(3)) == [1, 2, 3]
    (tmp_path / "uncharacterized.txt").write_text("header\n2 C 1 2\n")  # molecule 2 is excluded now
    again = QM9(tmp_path, source="xyz", split_sizes=(1, 1, 0))
    assert not again.from_cache and sorted(int(again.get(i).idx) for i in range(2)) == [1, 3]


def test_a_cache_whose_options_hold_nan_is_reused(tmp_path):
    from torch_geometric.data import Data

    from geomdl.datasets.base import GeometricDataset

    raw = tmp_path / "raw.txt"
    raw.write_text("1 2 3\n")

    class Tiny(GeometricDataset):
        builds = 0

        def __init__(self, **kw):
            super().__init__(tmp_path, processed_dir=tmp_path / "cache", **kw)
            self.load()

        def raw_paths(self):
            return [raw]

        def options(self):
            return {"scale": float("nan"), "k": 3}

        def process(self):
            Tiny.builds += 1
            return [Data(pos=torch.zeros(1, 3))]

    Tiny()
    again = Tiny()
    assert again.from_cache and Tiny.builds == 1  # NaN != NaN as floats: the cache was rebuilt on every load


def test_modelnet_class_listed_twice_names_the_file(tmp_path):
    # labels are positions in the list: a repeated name shifted every later label by one
    root = tmp_path / "nr"
    _resampled_folder(root, n_shapes=2)
    names = list(MODELNET40_CLASSES)
    names.insert(3, "cone")
    (root / "modelnet40_shape_names.txt").write_text("\n".join(names) + "\n")
    with pytest.raises(ValueError, match=r"modelnet40_shape_names.txt: class 'cone' is listed twice \(names 4 and 11\)"):
        ModelNet(root, num_points=8, processed_dir=tmp_path / "c")
