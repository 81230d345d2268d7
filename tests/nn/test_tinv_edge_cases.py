"""TinvNN edge cases: vectors under frame averaging, extreme coordinate scales."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from tinv_helpers import cube_vertices, generic_cloud, mirror_symmetric

from geomdl.nn.tinv import TinvNet, mds_embedding
from geomdl.ops import scatter
from geomdl.testing import assert_equivariant


class _NormalNet(torch.nn.Module):
    """Per-cloud max-pooled MLP of ``[pos, normal]`` (one output row per cloud of ``data.batch``)."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(6, 4)
        self.seen = None

    def forward(self, data):
        self.seen = (data.pos, data.normal, data.batch)
        h = self.lin(torch.cat([data.pos, data.normal], 1)).tanh()
        return scatter(h, data.batch, reduce="max")


class _WithNormals(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pos, normal, batch):
        return self.model(SimpleNamespace(pos=pos, normal=normal, batch=batch))


def test_vector_keys_turn_with_every_averaged_frame():
    """Used to crash (a [M, F, k, k] stack of all of a cloud's frames was broadcast against the rows)."""
    torch.manual_seed(0)
    cube, other = cube_vertices(), mirror_symmetric(10)
    pos = torch.cat([cube, other])
    batch = torch.repeat_interleave(torch.arange(2), torch.tensor([8, 20]))
    # radial unit normals: in every frame the canonical normal must stay the direction of the canonical position
    center = scatter(pos, batch, reduce="mean")[batch]
    normal = torch.nn.functional.normalize(pos - center, dim=1)
    net = _NormalNet()
    model = TinvNet(net, degenerate="average", vector_keys=("normal",)).double()
    out = model(SimpleNamespace(pos=pos, normal=normal, batch=batch))
    assert out.shape == (2, 4) and int(model.last_embedding.num_frames[0]) > 1
    seen_pos, seen_normal, _ = net.seen
    torch.testing.assert_close(seen_normal, torch.nn.functional.normalize(seen_pos, dim=1), atol=1e-12, rtol=0)
    # (normals are directions: a scaled shape keeps unit normals, so scaling is checked by hand)
    assert_equivariant(_WithNormals(model), (pos, normal, batch), ("position", "vector", "batch"), "global_scalar",
                       n_samples=3, tol=1e-10)
    torch.testing.assert_close(model(SimpleNamespace(pos=7.5 * pos, normal=normal, batch=batch)), out,
                               atol=1e-12, rtol=0)


@pytest.mark.parametrize("factor", [1e-170, 1e-160, 1e155, 1e170])
def test_extreme_coordinate_scales_give_the_same_embedding_float64(factor):
    """Squared coordinates under/overflow float64 there: used to raise 'zero extent' (tiny clouds) or make
    the eigensolver fail on inf (huge ones), although z does not depend on the scale."""
    pos = torch.cat([generic_cloud(30, 1), generic_cloud(20, 2) * 1e-3])
    batch = torch.repeat_interleave(torch.arange(2), torch.tensor([30, 20]))
    ref = mds_embedding(pos, batch=batch)
    for scale in ("rms", "max"):
        ref = mds_embedding(pos, batch=batch, scale=scale)
        r = mds_embedding(pos * factor, batch=batch, scale=scale)
        torch.testing.assert_close(r.embedding, ref.embedding, atol=1e-12, rtol=0)
        torch.testing.assert_close(r.scale, ref.scale * factor, rtol=1e-12, atol=0)
        torch.testing.assert_close(r.eigenvalues, ref.eigenvalues, atol=1e-12, rtol=0)
        # z = (x - center) @ rotation still holds
        z = torch.einsum("nd,ndk->nk", pos * factor - r.center[batch], r.rotation[batch])
        torch.testing.assert_close(z, r.embedding, atol=1e-12, rtol=0)
    x = generic_cloud(25, 3)
    d = (x[:, None] - x[None]).pow(2).sum(-1).sqrt()
    r = mds_embedding(distances=d * factor)
    torch.testing.assert_close(r.embedding, mds_embedding(distances=d).embedding, atol=1e-10, rtol=0)
    # scale=None keeps the size: z scales with the input
    r = mds_embedding(pos * factor, batch=batch, scale=None)
    torch.testing.assert_close(r.embedding / factor, mds_embedding(pos, batch=batch, scale=None).embedding,
                               atol=1e-12, rtol=1e-12)


def test_num_clouds_of_the_wrong_type_names_the_argument():
    """Used to fail inside torch.bincount with an opaque 'invalid combination of arguments'."""
    with pytest.raises(TypeError, match="num_clouds must be an int or None"):
        mds_embedding(generic_cloud(10, 1), num_clouds=1.0)


@pytest.mark.parametrize("option", ["max_frames", "chunk_size"])
def test_bool_counts_are_refused_by_name(option):
    """True passed the int checks and was read as 1 (one frame, chunks of one row), as dim=True already is not."""
    with pytest.raises(ValueError, match=f"{option} must be an int >= 1"):
        mds_embedding(generic_cloud(10, 1), **{option: True})
