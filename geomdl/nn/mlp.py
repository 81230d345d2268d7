"""A plain multilayer perceptron ``Linear -> act -> ... -> Linear`` used inside the layers.

.. math::  \\mathrm{MLP}(x) = W_L\\, \\sigma(\\cdots \\sigma(W_1 x + b_1) \\cdots) + b_L
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from geomdl.ops._validation import check_bool

ACTIVATIONS = {
    "relu": nn.ReLU, "silu": nn.SiLU, "gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
    "leaky_relu": lambda: nn.LeakyReLU(0.2), "softplus": nn.Softplus, "identity": nn.Identity,
}


def check_activation(act):
    """``act`` unchanged when :func:`activation` accepts it (a name of ``ACTIVATIONS``, an ``nn.Module`` class
    or instance), else ValueError (unknown name, listing the names) or TypeError; builds no module."""
    if isinstance(act, str):
        if act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {sorted(ACTIVATIONS)}, got {act!r}")
    elif not (isinstance(act, nn.Module) or (isinstance(act, type) and issubclass(act, nn.Module))):
        raise TypeError(f"act must be a name, an nn.Module class or instance, got {act!r}")
    return act


def activation(act) -> nn.Module:
    """An activation module from a name (see ``ACTIVATIONS``), a module class or an instance."""
    check_activation(act)
    if isinstance(act, nn.Module):
        return act
    return ACTIVATIONS[act]() if isinstance(act, str) else act()


class _ChannelBatchNorm(nn.BatchNorm1d):
    """``BatchNorm1d`` over the last dimension of ``[..., C]`` (statistics over all leading dimensions).

    ``nn.BatchNorm1d`` reads a 3-d input as ``[B, C, L]``: on the MLP's ``[B, N, C]`` it would normalise over
    the wrong axis (an error, or silently wrong when ``N == C``). Same parameters and state_dict keys."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return super().forward(x)
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)


def _check_channels(channels) -> list[int]:
    if isinstance(channels, int) or not isinstance(channels, Sequence) or len(channels) < 2:
        raise ValueError(f"channels must be a sequence of >= 2 ints (in, hidden..., out), got {channels!r}")
    for c in channels:
        if isinstance(c, bool) or not isinstance(c, int) or c < 1:
            raise ValueError(f"channels must be positive ints, got {channels!r}")
    return list(channels)


class MLP(nn.Sequential):
    """``MLP([in, h1, ..., out], act="silu", last_act=False, norm=None)``.

    Args:
        channels: sizes, first the input, last the output.
        act: activation between layers (name, class or module).
        last_act: also apply the activation after the last layer.
        norm: ``None``, ``"batch"`` or ``"layer"`` normalisation after each hidden Linear (and after
            the last one when ``last_act=True``), before the activation; both over the channels (the last
            dimension), batch statistics over all leading dimensions.
        bias: biases in the Linear layers.

    Shapes: ``[..., in] -> [..., out]``.
    """

    def __init__(self, channels: Sequence[int], act="silu", last_act: bool = False, norm: str | None = None, bias: bool = True):
        channels = _check_channels(channels)
        check_activation(act)  # also when there is no hidden layer (and so no activation) to build
        last_act, bias = check_bool(last_act, "last_act"), check_bool(bias, "bias")
        if norm not in (None, "batch", "layer"):
            raise ValueError(f"norm must be None, 'batch' or 'layer', got {norm!r}")
        layers: list[nn.Module] = []
        for k, (a, b) in enumerate(zip(channels[:-1], channels[1:])):
            layers.append(nn.Linear(a, b, bias=bias))
            last = k == len(channels) - 2
            if not last or last_act:
                if norm == "batch":
                    layers.append(_ChannelBatchNorm(b))
                elif norm == "layer":
                    layers.append(nn.LayerNorm(b))
                layers.append(activation(act))
        super().__init__(*layers)
        self.channels = channels

    @property
    def first(self) -> nn.Linear:
        return self[0]

    def rest(self, h: torch.Tensor) -> torch.Tensor:
        """Everything after the first Linear (used by layers that fuse the first Linear with a gather).

        ``h [..., channels[1]]`` (the first Linear's output) -> ``[..., channels[-1]]``.
        """
        for module in list(self)[1:]:
            h = module(h)
        return h

    def scaled(self, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """``scale * self(x)`` for a per-row ``scale [..., 1]`` (e.g. a cutoff envelope).

        When the last module is a Linear ``W_L h + b_L`` wider out than in, the scale is applied before it:
        ``[scale * h, scale] @ [W_L, b_L]^T``, so the elementwise product (and its gradient) runs on the last
        hidden width instead of the output width; the radial MLPs of tensor-product convolutions map a few
        dozen hidden units to hundreds of path weights. Otherwise ``scale * self(x)``.
        """
        last = self[-1]
        if not isinstance(last, nn.Linear) or last.out_features <= last.in_features + 1:
            return self(x) * scale
        h = x
        for module in list(self)[:-1]:
            h = module(h)
        h = h * scale
        if last.bias is None:
            return nn.functional.linear(h, last.weight)
        return nn.functional.linear(torch.cat([h, scale.expand(*h.shape[:-1], 1)], -1),
                                    torch.cat([last.weight, last.bias.unsqueeze(1)], 1))

    def reset_parameters(self) -> None:
        for m in self:
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
