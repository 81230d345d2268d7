"""Datasets and seeded transforms in DataLoader workers started by "spawn" (the default on macOS and Windows):
they reach the workers by pickling, where a ``torch.Generator`` used to carry its state as a tensor shared
through a file descriptor that was closed before the worker started ("bad value(s) in fds_to_keep" or a
worker that died). The "fork" case (per-worker and per-epoch draws) is in test_ds_bad_files_and_seeding.py."""
import copy
import io
import pickle

import pytest
import torch
from torch_geometric.loader import DataLoader

from geomdl.datasets import SyntheticShapes
from geomdl.datasets import transforms as T
from geomdl.datasets.base import SeededStream

SEEDED = {
    "stream": lambda: SeededStream(3),
    "rotation": lambda: T.RandomRotation("SO3", seed=3),
    "jitter": lambda: T.Jitter(0.1, seed=3),
    "sample_points": lambda: T.SamplePoints(8, seed=3),
    "crop": lambda: T.RandomCrop(0.5, seed=3),
    "compose": lambda: T.Compose([T.RandomRotation("z", seed=3), T.Jitter(seed=4)]),
}


class _NoTensorPickler(pickle.Pickler):
    """Fails on any tensor or storage in the pickled object graph."""

    def persistent_id(self, obj):
        if isinstance(obj, (torch.Tensor, torch.UntypedStorage, torch.TypedStorage)):
            raise AssertionError(f"pickle holds a {type(obj).__name__}")
        return None


def _draw(obj):
    if isinstance(obj, SeededStream):
        return torch.rand(4, generator=obj.get())
    from torch_geometric.data import Data

    return obj(Data(pos=torch.arange(48.0).reshape(16, 3))).pos


@pytest.mark.parametrize("name", sorted(SEEDED))
def test_seeded_transforms_pickle_without_tensors_and_keep_their_stream(name):
    obj = SEEDED[name]()
    _draw(obj)  # advance the stream: a copy continues from here
    _NoTensorPickler(io.BytesIO()).dump(obj)
    expected = _draw(copy.deepcopy(obj))
    for clone in (pickle.loads(pickle.dumps(obj)), copy.deepcopy(obj)):
        torch.testing.assert_close(_draw(clone), expected, rtol=0, atol=0)
    assert not torch.equal(_draw(obj), _draw(SEEDED[name]()))  # the original moved on


@pytest.mark.slow
def test_seeded_transforms_in_spawn_workers():
    tf = T.Compose([T.RandomRotation("SO3", seed=3), T.Jitter(0.01, seed=3)])
    ds = SyntheticShapes(num_per_class=1, num_points=16, transform=tf)[[0, 0, 0, 0]]  # one shape, 4 draws
    loader = DataLoader(ds, batch_size=1, num_workers=2, multiprocessing_context="spawn")
    out = [b.pos for b in loader]
    assert len(out) == 4
    # items 0, 2 come from worker 0 and 1, 3 from worker 1: all four rotations differ
    assert not any(torch.allclose(a, b, atol=1e-5) for k, a in enumerate(out) for b in out[k + 1:])
