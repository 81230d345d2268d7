"""The Gaunt products as opaque torch operators, for ``torch.compile``.

The eager Gaunt paths (:func:`geomdl.o3.gaunt_product`, :func:`geomdl.o3.gaunt_product_columns`,
:func:`geomdl.o3.gaunt_kernel.gaunt_features`) build cached plan tables, choose a backend and chunk
their work in Python: code the compiler cannot trace into one graph. Under ``torch.compile`` those
functions call the operators below instead. Each runs the eager function on real tensors; the compiler
sees only its output shape (a fake implementation) and its gradient, which is again a Gaunt product
(the Gaunt tensor is symmetric: ``dL/dx = gaunt(grad, y)`` projected to the degrees of ``x``), so
compiled training steps differentiate through them. Second derivatives of compiled graphs are not
supported by ``torch.compile`` itself; the eager functions have them.

Operators (``geomdl::`` namespace):

* ``gaunt_features_op(x [N, dx], y [N, dy], blocks_x, blocks_y, blocks_out) -> [N, d_out]``: the
  channelwise product of e3nn-layout features; ``blocks_*`` are flat ``[mul_0, l_0, mul_1, l_1, ...]``.
* ``gaunt_columns_op(x1t [(L1+1)^2, R], x2t [(L2+1)^2, R], lmax_out, method) -> [(lmax_out+1)^2, R]``:
  the product of SH columns, ``method`` ``"dft"`` or ``"fft"``.
"""
from __future__ import annotations

import torch

from geomdl.o3.spherical_harmonics import lmax_from_dim


def flat_blocks(blocks) -> list[int]:
    """``((mul, l), ...)`` -> ``[mul_0, l_0, mul_1, l_1, ...]``."""
    return [int(v) for pair in blocks for v in pair]


def _pairs(flat: list[int]) -> tuple[tuple[int, int], ...]:
    return tuple((flat[i], flat[i + 1]) for i in range(0, len(flat), 2))


def _dim(flat: list[int]) -> int:
    return sum(mul * (2 * l + 1) for mul, l in _pairs(flat))


# Schemas are written out: torch < 2.5 cannot infer them from the string annotations of
# ``from __future__ import annotations`` (they are the schemas torch >= 2.5 infers).
@torch.library.custom_op("geomdl::gaunt_features_op", mutates_args=(),
                         schema="(Tensor x, Tensor y, SymInt[] blocks_x, SymInt[] blocks_y, SymInt[] blocks_out) -> Tensor")
def gaunt_features_op(x: torch.Tensor, y: torch.Tensor, blocks_x: list[int], blocks_y: list[int],
                      blocks_out: list[int]) -> torch.Tensor:
    from geomdl.o3.gaunt_kernel import gaunt_features

    return gaunt_features(x, y, _pairs(blocks_x), _pairs(blocks_y), _pairs(blocks_out))


@gaunt_features_op.register_fake
def _(x, y, blocks_x, blocks_y, blocks_out):
    return x.new_empty((x.shape[0], _dim(blocks_out)))


def _features_setup(ctx, inputs, output):
    x, y, bx, by, bo = inputs
    ctx.save_for_backward(x, y)
    ctx.blocks = (bx, by, bo)


def _features_backward(ctx, grad):
    x, y = ctx.saved_tensors
    bx, by, bo = ctx.blocks
    grad = grad.contiguous()
    gx = gaunt_features_op(grad, y, bo, by, bx) if ctx.needs_input_grad[0] else None
    gy = gaunt_features_op(grad, x, bo, bx, by) if ctx.needs_input_grad[1] else None
    return gx, gy, None, None, None


gaunt_features_op.register_autograd(_features_backward, setup_context=_features_setup)


@torch.library.custom_op("geomdl::gaunt_columns_op", mutates_args=(),
                         schema="(Tensor x1t, Tensor x2t, SymInt lmax_out, str method) -> Tensor")
def gaunt_columns_op(x1t: torch.Tensor, x2t: torch.Tensor, lmax_out: int, method: str) -> torch.Tensor:
    from geomdl.o3.gaunt_product import gaunt_product, gaunt_product_columns

    if method == "fft":
        return gaunt_product(x1t.T, x2t.T, lmax_out, method="fft").T.contiguous()
    return gaunt_product_columns(x1t, x2t, lmax_out)


@gaunt_columns_op.register_fake
def _(x1t, x2t, lmax_out, method):
    return x1t.new_empty(((lmax_out + 1) ** 2, x1t.shape[1]))


def _columns_setup(ctx, inputs, output):
    x1t, x2t, _, method = inputs
    ctx.save_for_backward(x1t, x2t)
    ctx.method = method


def _columns_backward(ctx, grad):
    x1t, x2t = ctx.saved_tensors
    grad = grad.contiguous()
    g1 = gaunt_columns_op(grad, x2t, lmax_from_dim(x1t.shape[0]), ctx.method) if ctx.needs_input_grad[0] else None
    g2 = gaunt_columns_op(grad, x1t, lmax_from_dim(x2t.shape[0]), ctx.method) if ctx.needs_input_grad[1] else None
    return g1, g2, None, None


gaunt_columns_op.register_autograd(_columns_backward, setup_context=_columns_setup)
