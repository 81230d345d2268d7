"""The raw -> processed cache: reuse, option changes, raw-file changes, atomicity, views and splits."""
import os
import shutil
import time

import pytest
import torch
from torch_geometric.data import Data

from geomdl.datasets.base import GeometricDataset, data_root, random_split_indices


class Toy(GeometricDataset):
    subdir = "toy"
    calls = 0

    def __init__(self, root, scale=1.0, fail=False, **kw):
        super().__init__(root, **kw)
        self.scale, self.fail = scale, fail
        self.load()

    def raw_paths(self):
        return [self.root / "raw.txt"]

    def options(self):
        return {"scale": self.scale}

    def process(self):
        type(self).calls += 1
        values = [float(v) for v in (self.root / "raw.txt").read_text().split()]
        out = []
        for k, v in enumerate(values):
            if self.fail and k == len(values) - 1:
                raise ValueError("boom while processing")
            out.append(Data(pos=torch.full((k + 1, 3), v * self.scale), y=torch.tensor([k])))
        return out


@pytest.fixture
def root(tmp_path):
    (tmp_path / "raw.txt").write_text("1 2 3 4")
    Toy.calls = 0
    return tmp_path


def test_cache_reused_and_invalidated(root):
    a = Toy(root)
    assert (a.from_cache, Toy.calls, len(a)) == (False, 1, 4)
    assert a[2].pos.shape == (3, 3) and float(a[2].pos[0, 0]) == 3.0
    b = Toy(root)
    assert b.from_cache and Toy.calls == 1 and b.cache_path == a.cache_path
    assert torch.equal(b[3].pos, a[3].pos)
    c = Toy(root, scale=2.0)  # another option: another cache file
    assert not c.from_cache and Toy.calls == 2 and c.cache_path != a.cache_path and float(c[0].pos[0, 0]) == 2.0
    (root / "raw.txt").write_text("5 6")  # raw file changed: reprocess
    d = Toy(root)
    assert not d.from_cache and len(d) == 2 and Toy.calls == 3
    Toy(root, force_reload=True)
    assert Toy.calls == 4


def _wait_for_a_later_change_time(path, probe) -> None:
    """Wait until a file written now (``probe``) gets a later change time than ``path``: file times come from a
    coarse clock (a 1-10 ms tick before Linux 6.13, 1-2 s on some filesystems), so a replacement within the same
    tick as the cache kept its change time and the test failed at random."""
    before, deadline = os.stat(path).st_ctime_ns, time.monotonic() + 5.0
    while True:
        probe.write_text("x")
        if os.stat(probe).st_ctime_ns > before or time.monotonic() > deadline:
            return
        time.sleep(0.001)


def test_cache_invalidated_by_a_raw_file_replaced_with_its_modification_time(root, tmp_path_factory):
    """Regression: a raw file replaced by another of the same size and modification time (``cp -p``, ``rsync -t``,
    ``tar x``) kept the stale cache: the fingerprint held only the size and the modification time."""
    a = Toy(root)
    assert float(a[0].pos[0, 0]) == 1.0
    other = tmp_path_factory.mktemp("other") / "raw.txt"
    _wait_for_a_later_change_time(root / "raw.txt", other)
    other.write_text("9 8 7 6")  # the same size as "1 2 3 4"
    st = os.stat(root / "raw.txt")
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    shutil.copy2(other, root / "raw.txt")  # copies the modification time too
    assert os.stat(root / "raw.txt").st_mtime_ns == st.st_mtime_ns and os.stat(root / "raw.txt").st_size == st.st_size
    b = Toy(root)
    assert not b.from_cache and Toy.calls == 2 and float(b[0].pos[0, 0]) == 9.0


def test_failed_processing_leaves_no_cache_file(root):
    with pytest.raises(ValueError, match="boom"):
        Toy(root, fail=True)
    processed = root / "processed"
    assert not processed.exists() or list(processed.iterdir()) == []


def test_corrupt_cache_is_rebuilt(root):
    a = Toy(root)
    a.cache_path.write_bytes(b"not a torch file")
    b = Toy(root)
    assert not b.from_cache and len(b) == 4


def test_views_transform_and_index_errors(root):
    ds = Toy(root, transform=lambda d: Data(pos=d.pos * 10, y=d.y))
    assert float(ds[1].pos[0, 0]) == 20.0
    view = ds[1:3]
    assert len(view) == 2 and int(view[0].y) == 1 and int(view[-1].y) == 2
    assert [int(d.y) for d in ds[[3, 0]]] == [3, 0]
    assert [int(d.y) for d in ds[torch.tensor([True, False, False, True])]] == [0, 3]
    with pytest.raises(IndexError):
        ds[4]
    with pytest.raises(TypeError, match="transform must be callable"):
        Toy(root, transform=3)
    from torch_geometric.loader import DataLoader

    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch.num_graphs == 4 and batch.pos.shape == (10, 3)


def test_processed_dir_expands_the_home_folder(root, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    ds = Toy(root, processed_dir="~/cache")
    assert ds.cache_path.parent == tmp_path / "home" / "cache"
    assert not (tmp_path / "~").exists()  # was a folder literally named "~" under the working directory


def test_random_split_indices():
    parts = random_split_indices(10, [6, 2, None], seed=3)
    assert [len(p) for p in parts] == [6, 2, 2]
    assert sorted(torch.cat(parts).tolist()) == list(range(10))
    assert all(torch.equal(a, b) for a, b in zip(parts, random_split_indices(10, [6, 2, None], seed=3)))
    assert not torch.equal(parts[0], random_split_indices(10, [6, 2, None], seed=4)[0])
    assert [len(p) for p in random_split_indices(10, [0.8, 0.1, 0.1])] == [8, 1, 1]
    with pytest.raises(ValueError, match="need 12 items but the dataset has 10"):
        random_split_indices(10, [6, 6])
    with pytest.raises(ValueError):
        random_split_indices(10, [None, None])


def test_data_root_env(monkeypatch, tmp_path):
    monkeypatch.setenv("GEOMDL_DATA", str(tmp_path))
    assert data_root() == tmp_path
    assert Toy.__mro__[1].__init__ is GeometricDataset.__init__
    monkeypatch.delenv("GEOMDL_DATA")
    assert data_root().name == "datasets"
