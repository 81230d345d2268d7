"""float32 clouds far from the origin: the translation-invariant layers must not lose the offset's precision."""
import copy
import types

import pytest
import torch

from geomdl import ops
from geomdl.models.tiny_pointnet import TinyPointNet
from geomdl.nn.point_net import GlobalSetAbstraction, PointNetConv


def _rel_err(module, call, pos32):
    """Error of the float32 module against its float64 copy on the same (float32-representable) input."""
    m64 = copy.deepcopy(module).double()
    with torch.no_grad():
        out, ref = call(module, pos32), call(m64, pos32.double())
    return float((out.double() - ref).abs().max() / ref.abs().max())


@pytest.mark.parametrize("in_channels", [0, 2])
def test_pointnet_conv_float32_precision_independent_of_offset(in_channels):
    g = torch.Generator().manual_seed(0)
    pos = torch.rand(150, 3, generator=g)
    x = torch.randn(150, in_channels, generator=g) if in_channels else None
    e = ops.radius_graph(pos, 0.25, max_num_neighbors=32)
    torch.manual_seed(0)
    conv = PointNetConv(in_channels, 16, (32,))
    call = lambda m, p: m(None if x is None else x.to(p.dtype), p, e)
    # W_p p_j - W_p p_i cancels catastrophically at |p| ~ 1e3 (about 1e-4 relative error); W_p (p_j - p_i) does not
    assert _rel_err(conv, call, pos + 1000.0) < 5e-6


def test_global_set_abstraction_and_tiny_pointnet_centre_float32_far_from_origin():
    g = torch.Generator().manual_seed(1)
    pos = torch.rand(600, 3, generator=g) + 1000.0
    batch = torch.repeat_interleave(torch.arange(2), torch.tensor([350, 250]))
    torch.manual_seed(0)
    gsa = GlobalSetAbstraction(0, 16, (32,))
    assert _rel_err(gsa, lambda m, p: m(None, p, batch)[0], pos) < 5e-6
    tiny = TinyPointNet(3)
    assert _rel_err(tiny, lambda m, p: m(types.SimpleNamespace(pos=p, batch=batch)), pos) < 5e-6


def test_centres_and_gradients_unchanged_float64():
    g = torch.Generator().manual_seed(2)
    pos = torch.randn(12, 3, generator=g, dtype=torch.float64)
    batch = torch.tensor([0] * 7 + [2] * 5)  # cloud 1 empty
    gsa = GlobalSetAbstraction(0, 4, (5,)).double()
    _, c, _ = gsa(None, pos, batch)
    torch.testing.assert_close(c[0], pos[:7].mean(0))
    torch.testing.assert_close(c[2], pos[7:].mean(0))
    assert torch.autograd.gradcheck(lambda p: gsa(None, p, batch)[0], (pos.clone().requires_grad_(),), fast_mode=True)
