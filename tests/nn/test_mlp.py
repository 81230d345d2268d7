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


@pytest.mark.parametrize("channels", [[3, 4], [3, 5, 4]])  # no hidden layer (act never used) and one
@pytest.mark.parametrize("kwargs, error, message", [
    (dict(act="nope"), ValueError, r"^act must be one of \['gelu', 'identity', 'leaky_relu', 'relu', 'sigmoid', 'silu', "
                                    r"'softplus', 'tanh'\], got 'nope'$"),
    (dict(act=None), TypeError, "^act must be a name, an nn.Module class or instance, got None$"),
    (dict(act=3), TypeError, "^act must be a name, an nn.Module class or instance, got 3$"),
    (dict(act=int), TypeError, "^act must be a name, an nn.Module class or instance, got <class 'int'>$"),
    (dict(norm="nope"), ValueError, "^norm must be None, 'batch' or 'layer', got 'nope'$"),
    (dict(last_act="no"), ValueError, r"^last_act must be a bool \(True or False\), got 'no'$"),
    (dict(bias="no"), ValueError, r"^bias must be a bool \(True or False\), got 'no'$"),
])
def test_bad_options_are_rejected_whatever_the_depth(channels, kwargs, error, message):
    with pytest.raises(error, match=message):
        MLP(channels, **kwargs)


def test_an_activation_instance_or_class_is_accepted_without_hidden_layer():
    assert len(MLP([3, 4], act=torch.nn.ReLU())) == 1 and len(MLP([3, 4], act=torch.nn.ReLU)) == 1
    assert isinstance(MLP([3, 4], act="relu", last_act=True)[-1], torch.nn.ReLU)


def test_integer_flags_are_accepted():
    """``bias=0`` / ``last_act=1`` worked before the flags were checked (EdgeConv and PointNetConv pass
    ``last_act`` through) and still do."""
    m = MLP([3, 4, 5], bias=0, last_act=1)
    assert m[0].bias is None and isinstance(m[-1], torch.nn.SiLU)


@pytest.mark.parametrize("train", [True, False])
def test_batch_norm_normalises_the_channels_of_leading_dim_inputs(float64, train):
    """``norm="batch"`` on ``[B, N, C]`` normalises the channels (the last dimension), as on ``[B * N, C]``;
    ``nn.BatchNorm1d`` alone reads dimension 1 as the channels (wrong, silently so when ``N`` is a width)."""
    torch.manual_seed(0)
    mlp = MLP([4, 5, 3], norm="batch").train(train)
    with torch.no_grad():
        mlp[1].running_mean.normal_()
        mlp[1].running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 5, 4)  # N == 5 == the hidden width
    flat = MLP([4, 5, 3], norm="batch").train(train)
    flat.load_state_dict(mlp.state_dict())
    torch.testing.assert_close(mlp(x), flat(x.reshape(10, 4)).reshape(2, 5, 3), atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(mlp[1].running_mean, flat[1].running_mean)
