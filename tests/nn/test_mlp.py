"""geomdl.nn.mlp.MLP.scaled: ``scale * MLP(x)`` with the scale moved before the last Linear."""
import pytest
import torch

from geomdl.nn.mlp import MLP


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("last_act", [False, True])
@pytest.mark.parametrize("out", [40, 4])  # scaled before the last Linear / after it (narrow output)
def test_scaled_equals_scale_times_output_with_gradients(float64, bias, last_act, out):
    torch.manual_seed(0)
    mlp = MLP([5, 7, 6, out], act="silu", bias=bias, last_act=last_act)
    x = torch.randn(30, 5, requires_grad=True)
    s = torch.rand(30, 1, requires_grad=True)
    s.data[3] = 0.0  # a row beyond the cutoff
    got = mlp.scaled(x, s)
    want = mlp(x) * s
    torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-12)
    g = torch.randn_like(want)
    params = [x, s, *mlp.parameters()]
    for a, b in zip(torch.autograd.grad((got * g).sum(), params), torch.autograd.grad((want * g).sum(), params)):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)
    assert not got[3].any()


def test_scaled_leading_dims_and_broadcast_scale(float64):
    mlp = MLP([3, 4, 9])
    x = torch.randn(2, 6, 3)
    torch.testing.assert_close(mlp.scaled(x, torch.full((2, 6, 1), 0.5)), 0.5 * mlp(x), atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(mlp.scaled(x, torch.tensor([2.0])), 2.0 * mlp(x), atol=1e-12, rtol=1e-12)


def test_wide_output_scales_the_hidden_width(monkeypatch):
    """Wide outputs never run the last Linear on unscaled activations (its module is bypassed)."""
    mlp = MLP([3, 4, 50])
    x, s = torch.randn(8, 3), torch.rand(8, 1)
    want = mlp(x) * s

    def fail(*args):
        raise AssertionError("the last Linear ran on unscaled activations")

    monkeypatch.setattr(mlp[-1], "forward", fail)
    torch.testing.assert_close(mlp.scaled(x, s), want)
