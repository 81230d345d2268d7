"""ModelNet: every real text and OFF file, HDF5 (written here), rotation protocols, cache, bad input."""
import numpy as np
import pytest
import torch

from geomdl.datasets.modelnet import MODELNET40_CLASSES, ModelNet, read_modelnet_txt

NR = "modelnet40/modelnet40_normal_resampled"


def test_every_normal_resampled_file(shared_data):
    folder = shared_data / NR
    names = (folder / "modelnet40_shape_names.txt").read_text().split()
    assert tuple(names) == MODELNET40_CLASSES  # label = line number, 40 classes
    files = sorted(folder.glob("*/*.txt"))
    assert len(files) == 72  # README: 72 shapes, 39 classes (no door)
    assert len({f.parent.name for f in files}) == 39 and not (folder / "door").exists()
    for f in files:
        arr = read_modelnet_txt(f)
        assert arr.shape == (10000, 6), f
        assert abs(np.linalg.norm(arr[:, 3:], axis=1).mean() - 1) < 5e-3, f  # README: |n| mean 1.000 (a few are not unit)
        assert np.linalg.norm(arr[:, :3], axis=1).max() <= 1.0 + 1e-3, f  # unit sphere


def test_modelnet40_dataset_splits_and_labels(shared_data, tmp_path):
    train = ModelNet(shared_data / "modelnet40", split="train", processed_dir=tmp_path)
    test = ModelNet(shared_data / "modelnet40", split="test", processed_dir=tmp_path)
    assert (len(train), len(test)) == (52, 20) and train.format == "normal_resampled"
    d = train[0]
    assert d.pos.shape == (1024, 3) and d.normal.shape == (1024, 3) and d.pos.dtype == torch.float32
    assert MODELNET40_CLASSES[int(d.y)] == d.shape_id.rsplit("_", 1)[0]
    assert {MODELNET40_CLASSES[int(x.y)] for x in test} <= set(MODELNET40_CLASSES)
    # up="z": the file's y-up axis becomes z (a proper rotation), so z = file y
    t0 = test[0]
    raw = read_modelnet_txt(shared_data / NR / t0.shape_id.rsplit("_", 1)[0] / f"{t0.shape_id}.txt", max_rows=1024)
    kept = ModelNet(shared_data / "modelnet40", split="test", normalize=False, processed_dir=tmp_path)[0]
    np.testing.assert_allclose(kept.pos[:, 2].numpy(), raw[:, 1], atol=1e-6)
    np.testing.assert_allclose(kept.pos[:, 1].numpy(), -raw[:, 2], atol=1e-6)
    # processing twice reuses the cache; another option reprocesses
    again = ModelNet(shared_data / "modelnet40", split="test", processed_dir=tmp_path)
    other = ModelNet(shared_data / "modelnet40", split="test", num_points=512, processed_dir=tmp_path)
    assert again.from_cache and not other.from_cache and other[0].pos.shape == (512, 3)


def test_rotation_protocols(shared_data, tmp_path):
    plain = ModelNet(shared_data / "modelnet40", split="test", processed_dir=tmp_path)
    zz = ModelNet(shared_data / "modelnet40", split="test", rotation="z/z", processed_dir=tmp_path)
    zso3 = ModelNet(shared_data / "modelnet40", split="test", rotation="z/SO3", seed=1, processed_dir=tmp_path)
    a, b = plain[3], zz[3]
    torch.testing.assert_close(b.pos[:, 2], a.pos[:, 2])  # about z only
    assert not torch.allclose(b.pos, a.pos)
    torch.testing.assert_close(zz[3].pos, b.pos)  # the test split is fixed per shape
    r = torch.linalg.lstsq(a.pos.double(), zso3[3].pos.double()).solution
    assert torch.allclose(r.T @ r, torch.eye(3, dtype=torch.float64), atol=1e-4) and not torch.allclose(zso3[3].pos[:, 2], a.pos[:, 2])
    torch.testing.assert_close(zso3[3].normal, a.normal @ r.float(), atol=1e-4, rtol=0)
    train = ModelNet(shared_data / "modelnet40", split="train", rotation="z/SO3", processed_dir=tmp_path)
    first, second = train[0], train[0]  # the train split draws a fresh z rotation each time
    assert not torch.allclose(first.pos, second.pos)
    torch.testing.assert_close(first.pos[:, 2], second.pos[:, 2])
    with pytest.raises(ValueError, match="rotation must be None or one of"):
        ModelNet(shared_data / "modelnet40", rotation="SO3/z", processed_dir=tmp_path)


def test_modelnet10_off_meshes(shared_data, tmp_path):
    ds = ModelNet(shared_data / "modelnet10", name="10", split="train", num_points=256, processed_dir=tmp_path)
    assert ds.format == "off" and len(ds) == 5
    for d in ds:
        assert d.pos.shape == (256, 3) and int(d.y) == 0  # bathtub
        assert float(d.pos.norm(dim=1).max()) == pytest.approx(1.0, abs=1e-5)
        torch.testing.assert_close(d.normal.norm(dim=1), torch.ones(256))
    with pytest.raises(FileNotFoundError, match="no ModelNet10 files"):
        ModelNet(shared_data / "modelnet10", name="10", split="test", processed_dir=tmp_path)


def test_hdf5_format(tmp_path):
    h5py = pytest.importorskip("h5py")
    folder = tmp_path / "modelnet40" / "modelnet40_ply_hdf5_2048"
    folder.mkdir(parents=True)
    (folder / "shape_names.txt").write_text("\n".join(MODELNET40_CLASSES) + "\n")
    rng = np.random.default_rng(0)
    data = rng.normal(size=(3, 2048, 3)).astype(np.float32)
    with h5py.File(folder / "ply_data_test0.h5", "w") as fh:
        fh["data"], fh["label"] = data, np.array([[5], [0], [39]], dtype=np.uint8)
    (folder / "test_files.txt").write_text("data/modelnet40_ply_hdf5_2048/ply_data_test0.h5\n")
    ds = ModelNet(tmp_path / "modelnet40", split="test", num_points=100, normalize=False, up="file", processed_dir=tmp_path / "c")
    assert ds.format == "hdf5" and [int(d.y) for d in ds] == [5, 0, 39]
    np.testing.assert_array_equal(ds[2].pos.numpy(), data[2, :100])
    with h5py.File(folder / "ply_data_test0.h5", "w") as fh:
        fh["data"] = data
    with pytest.raises(ValueError, match="ply_data_test0.h5: bad ModelNet HDF5 file: missing dataset.*label"):
        ModelNet(tmp_path / "modelnet40", split="test", processed_dir=tmp_path / "c")


def test_corrupt_files_leave_no_cache(tmp_path):
    off = tmp_path / "ModelNet10" / "chair" / "train"
    off.mkdir(parents=True)
    (off / "chair_0001.off").write_text("OFF\n4 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")  # declares 4 vertices
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="chair_0001.off: header declares 4 vertices"):
        ModelNet(tmp_path, name="10", processed_dir=cache)
    assert not cache.exists() or not any(cache.iterdir())
    txt = tmp_path / "nr" / "cone"
    txt.mkdir(parents=True)
    (tmp_path / "nr" / "modelnet40_shape_names.txt").write_text("\n".join(MODELNET40_CLASSES))
    (tmp_path / "nr" / "modelnet40_train.txt").write_text("cone_0001\n")
    (txt / "cone_0001.txt").write_text("0,0,0,1,0,0\n0,0,oops,1,0,0\n")
    with pytest.raises(ValueError, match="cone_0001.txt: malformed ModelNet text file"):
        ModelNet(tmp_path / "nr", num_points=2, processed_dir=cache)
    assert not any(cache.iterdir()) if cache.exists() else True
