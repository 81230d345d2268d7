"""Molecular datasets: split_sizes given as an iterator is read once (it was consumed by the early
argument check, leaving the later checks an empty list)."""
import numpy as np
import pytest
import torch

from geomdl.datasets.molecular import MD17, ExtXYZ


def _npz(path, frames=20, **replace):
    rng = np.random.default_rng(0)
    arrays = dict(R=rng.normal(size=(frames, 3, 3)), E=rng.normal(size=(frames, 1)), F=rng.normal(size=(frames, 3, 3)),
                  z=np.array([6, 1, 1]))
    arrays.update(replace)
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("make", [lambda: (s for s in [10, 5, 5]), lambda: map(int, ["10", "5", "5"]), lambda: iter([10, 5, 5])])
def test_md17_split_sizes_may_be_an_iterator(tmp_path, make):
    p = _npz(tmp_path / "m.npz")
    listed = MD17(path=p, split="val", split_sizes=[10, 5, 5], processed_dir=tmp_path / "p")
    ds = MD17(path=p, split="val", split_sizes=make(), processed_dir=tmp_path / "p")
    assert len(ds) == 5 and torch.equal(ds.split_indices["val"], listed.split_indices["val"])


def test_extxyz_split_sizes_may_be_an_iterator(tmp_path):
    frame = "3\nenergy=-1.5 Properties=species:S:1:pos:R:3:forces:R:3\nC 0 0 0 0 0 0\nH 1 0 0 0 0 0\nH 0 1 0 0 0 0\n"
    (tmp_path / "f.xyz").write_text(frame * 4)
    ds = ExtXYZ(tmp_path / "f.xyz", split="train", split_sizes=(s for s in [2, 1, 1]), processed_dir=tmp_path / "p")
    assert len(ds) == 2
