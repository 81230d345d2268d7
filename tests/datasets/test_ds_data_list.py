"""DataList: clouds held in memory as a dataset (copies per access, views, checks, loaders)."""
import pickle

import numpy as np
import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from geomdl.datasets import DataList
from geomdl.datasets import transforms as T


def _clouds(sizes=(5, 7, 9), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, 3)) for n in sizes]


def _shift(data):
    data.pos += 1.0
    return data


def test_from_arrays_builds_one_data_per_cloud_in_the_default_dtype():
    clouds = _clouds()
    ds = DataList.from_arrays(clouds, y=[2, 0, 1], x=[np.ones((n, 4), dtype=np.float64) for n in (5, 7, 9)])
    assert len(ds) == 3 and repr(ds) == "DataList(3)"
    item = ds[1]
    assert item.pos.dtype == torch.float32 and item.x.dtype == torch.float32 and item.y.dtype == torch.int64
    np.testing.assert_allclose(item.pos.numpy(), clouds[1], rtol=1e-6)
    assert item.y.tolist() == [0] and item.x.shape == (7, 4)
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch.y.tolist() == [2, 0, 1] and batch.pos.shape == (21, 3)


def test_each_access_is_a_fresh_copy_through_the_transform():
    clouds = _clouds()
    ds = DataList.from_arrays(clouds, transform=_shift)
    for _ in range(3):  # an in-place transform must not accumulate in the stored items
        np.testing.assert_allclose(ds[0].pos.numpy(), clouds[0] + 1.0, rtol=1e-6)
    rotated = DataList.from_arrays(clouds, transform=T.RandomRotation("SO3", seed=0))
    first, second = rotated[0].pos, rotated[0].pos
    assert not torch.allclose(first, second)  # drawn anew at every access
    torch.testing.assert_close(first.norm(dim=1), second.norm(dim=1))


def test_views_share_the_items_and_the_transform():
    items = [Data(pos=torch.full((2, 3), float(i))) for i in range(5)]
    ds = DataList(items, transform=_shift)
    assert [float(d.pos[0, 0]) for d in ds[1:4]] == [2.0, 3.0, 4.0]
    assert [float(d.pos[0, 0]) for d in ds[::-2]] == [5.0, 3.0, 1.0]
    assert [float(d.pos[0, 0]) for d in ds[[4, -5]]] == [5.0, 1.0]
    mask = torch.tensor([True, False, False, False, True])
    assert [float(d.pos[0, 0]) for d in ds[mask]] == [1.0, 5.0]
    assert float(ds[np.int64(2)].pos[0, 0]) == 3.0 and float(ds[torch.tensor(-1)].pos[0, 0]) == 5.0
    assert float(items[0].pos[0, 0]) == 0.0


@pytest.mark.parametrize("index, error, message", [
    (5, IndexError, "out of range"), ([0, 7], IndexError, "out of range"), (True, TypeError, "bool"),
    # a 0-d bool tensor was read as the integer 1 (item 1, silently), though ds[True] is refused
    (torch.tensor(True), TypeError, "bool scalar True"), (torch.tensor(False), TypeError, "bool scalar False"),
    (np.array(True), TypeError, "bool scalar True"),
    (torch.tensor([True]), IndexError, "boolean mask has 1 entries"), ([[0, 1]], IndexError, "1-D"),
    ([0.5], TypeError, "index must be int"), ("a", TypeError, "index must be"),
])
def test_bad_indices_name_what_was_wrong(index, error, message):
    ds = DataList.from_arrays(_clouds((3, 3, 3, 3, 3)))
    with pytest.raises(error, match=message):
        ds[index]


def test_bad_items_and_arrays_are_errors_naming_them():
    with pytest.raises(TypeError, match=r"items\[1\] must be a torch_geometric Data"):
        DataList([Data(pos=torch.zeros(2, 3)), torch.zeros(2, 3)])
    with pytest.raises(TypeError, match="items must be a sequence"):
        DataList(Data(pos=torch.zeros(2, 3)))
    with pytest.raises(TypeError, match="transform must be callable"):
        DataList([], transform=3)
    with pytest.raises(ValueError, match=r"pos\[1\] must have shape \[N, 3\]"):
        DataList.from_arrays([np.zeros((2, 3)), np.zeros((2, 2))])
    with pytest.raises(ValueError, match="one array of shape"):
        DataList.from_arrays(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="y has 1 entries but pos has 2 clouds"):
        DataList.from_arrays(_clouds((2, 2)), y=[0])
    with pytest.raises(TypeError, match=r"y\[0\] must hold real numbers"):
        DataList.from_arrays(_clouds((2,)), y=[1j])


def test_pickles_and_loads_in_worker_processes():
    ds = DataList.from_arrays(_clouds((4, 4, 4, 4)), y=[0, 1, 2, 3], transform=T.Jitter(0.01, seed=0))
    again = pickle.loads(pickle.dumps(ds))
    assert len(again) == 4 and again[3].y.tolist() == [3]
    labels = sorted(int(y) for b in DataLoader(ds, batch_size=2, num_workers=2) for y in b.y)
    assert labels == [0, 1, 2, 3]
