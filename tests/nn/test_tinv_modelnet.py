"""TinvNN on every real ModelNet40 shape of ../shared/data (72 shapes, 1024 fixed points each)."""
from __future__ import annotations

import functools
import pathlib

import numpy as np
import pytest
import torch
from tinv_helpers import as_batch, tiny_tinvnet

from geomdl.nn.tinv import mds_embedding
from geomdl.testing import assert_equivariant, equivariance_error, random_rotation

NUM_POINTS = 1024


@pytest.fixture
def modelnet(shared_data):
    return _load(str(shared_data / "modelnet40" / "modelnet40_normal_resampled"))


@functools.lru_cache(maxsize=1)
def _load(root: str):
    files = sorted(pathlib.Path(root).glob("*/*.txt"))
    assert len(files) == 72, f"expected the 72 shapes described in shared/data/README.md, found {len(files)}"
    idx = np.linspace(0, 9999, NUM_POINTS).astype(int)  # fixed indices: deterministic and fast
    clouds = [np.loadtxt(f, delimiter=",", usecols=(0, 1, 2), max_rows=10000)[idx] for f in files]
    pos = torch.tensor(np.concatenate(clouds), dtype=torch.float64)
    batch = torch.arange(len(files)).repeat_interleave(NUM_POINTS)
    return pos, batch, [f.stem for f in files]


def _moved(pos, batch, gen, reflection):
    rot = random_rotation(gen, reflection=reflection)
    scale = float(torch.empty(1, dtype=torch.float64).uniform_(0.1, 10.0, generator=gen))
    shift = 5 * torch.randn(3, generator=gen, dtype=torch.float64)
    key = torch.rand(pos.shape[0], generator=gen, dtype=torch.float64) + 2.0 * batch
    perm = torch.argsort(key)  # a permutation inside every cloud
    return (scale * pos @ rot.T + shift)[perm], perm


def test_embedding_of_every_modelnet_shape_is_invariant_float64(modelnet):
    pos, batch, names = modelnet
    fn = lambda p, b: mds_embedding(p, batch=b).embedding  # noqa: E731
    assert_equivariant(fn, (pos, batch), ("position", "batch"), "scalar", scaling=True, n_samples=2, tol=1e-10)
    # the test kit's error is relative to all 72 clouds together: also check every cloud on its own
    ref = mds_embedding(pos, batch=batch).embedding
    gen = torch.Generator().manual_seed(1)
    for reflection in (False, True):
        moved, perm = _moved(pos, batch, gen, reflection)
        err = (mds_embedding(moved, batch=batch).embedding - ref[perm]).abs().amax(dim=1)
        per_cloud = torch.zeros(len(names), dtype=torch.float64).scatter_reduce(0, batch, err, "amax")
        worst = int(per_cloud.argmax())
        assert float(per_cloud.max()) < 1e-10, f"{names[worst]}: {float(per_cloud.max()):.3g}"


def test_embedding_of_every_modelnet_shape_is_invariant_float32(modelnet):
    pos, batch, _ = modelnet
    fn = lambda p, b: mds_embedding(p, batch=b).embedding  # noqa: E731
    errors = equivariance_error(fn, (pos.float(), batch), ("position", "batch"), "scalar", scaling=True,
                                n_samples=2, float64=False)
    assert max(errors.values()) < 1e-4, errors


def test_pairwise_distances_are_preserved_and_invariant_on_modelnet(modelnet):
    pos, batch, names = modelnet
    result = mds_embedding(pos, batch=batch)
    moved, perm = _moved(pos, batch, torch.Generator().manual_seed(2), True)
    moved_z = mds_embedding(moved, batch=batch).embedding
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(perm.numel())
    for b in range(0, len(names), 7):  # every 7th shape: 11 dense 1024 x 1024 checks
        rows = batch == b
        x, z = pos[rows], result.embedding[rows]
        dz = (z[:, None] - z[None]).norm(dim=-1)
        assert torch.allclose(dz, (x[:, None] - x[None]).norm(dim=-1) / result.scale[b], atol=1e-12, rtol=0), names[b]
        zm = moved_z[inverse][rows]
        assert torch.allclose((zm[:, None] - zm[None]).norm(dim=-1), dz, atol=1e-10, rtol=0), names[b]


def test_tinvnet_is_invariant_on_every_modelnet_shape(modelnet):
    pos, batch, _ = modelnet
    model = tiny_tinvnet()
    assert_equivariant(as_batch(model), (pos, batch), ("position", "batch"), "global_scalar", scaling=True,
                       n_samples=2, tol=1e-10)
    errors = equivariance_error(as_batch(model), (pos.float(), batch), ("position", "batch"), "global_scalar",
                                scaling=True, n_samples=2, float64=False)
    assert max(errors.values()) < 1e-4, errors


def test_modelnet_near_degenerate_shapes_are_reported(modelnet):
    """Measured, not assumed: how many real shapes sit near a degenerate case (gap or margin < 1e-2)."""
    pos, batch, names = modelnet
    r = mds_embedding(pos, batch=batch)
    flagged = [n for n, f in zip(names, r.degenerate.tolist()) if f]
    assert 0 < len(flagged) < len(names)  # real data has both
    assert float(r.gaps[:, :2].min()) > 1e-4 and float(r.sign_margins.min()) > 1e-4  # still clear of float noise
