"""Conversions between e3nn's ``mul_ir`` feature layout and the per-channel SH coefficient columns.

A channelwise feature with ``C`` channels and one irrep per degree, e.g. ``"C x 0e + C x 1o + C x 2e"``
stored as ``[B, irreps.dim]`` (e3nn), becomes the columns ``[(L+1)^2, B * C]`` used by
:func:`geomdl.o3.gaunt_product_columns` (column ``b * C + c``; rows of absent degrees are zero).
"""
from __future__ import annotations

import torch
from e3nn import o3

from geomdl.o3.gaunt_plain import columns_to_features, features_to_columns
from geomdl.ops._extension import transform_active


def channel_irreps(irreps: o3.Irreps, name: str, channels: int | None = None, unique: bool = True) -> tuple[int, list[int]]:
    """Check ``irreps`` is channelwise (one multiplicity ``C``; each degree at most once when ``unique``)
    and return ``(C, degrees)``; ``channels`` also allows multiplicity 1 (broadcast over the channels).
    Blocks of multiplicity 0 (no components) are ignored, as in e3nn."""
    irreps = [(mul, ir) for mul, ir in irreps if mul > 0]
    if len(irreps) == 0:
        raise ValueError(f"{name} is empty (no block of multiplicity > 0)")
    muls = {mul for mul, _ in irreps}
    ls = [ir.l for _, ir in irreps]
    if len(muls) != 1:
        raise ValueError(f"{name} must have one multiplicity (the channels) for every degree, got {irreps}")
    if unique and len(set(ls)) != len(ls):
        raise ValueError(f"{name} must contain each degree at most once for a channelwise Gaunt product, got {irreps}")
    mul = muls.pop()
    if channels is not None and mul not in (channels, 1):
        raise ValueError(f"{name} must have multiplicity {channels} (the channels of irreps_in1) or 1, got {irreps}")
    return mul, ls


def blocks_of(irreps) -> tuple[tuple[int, int], ...]:
    """``((mul, l), ...)`` of e3nn ``irreps`` as plain ints, blocks of multiplicity 0 (no components) left out
    (a tuple of pairs is returned as is). Layers keep these for their forward: ``torch.compile`` cannot guard
    on e3nn ``Irrep`` objects."""
    if type(irreps) is tuple:
        return irreps
    return tuple((int(mul), int(ir.l)) for mul, ir in irreps if mul > 0)


def to_columns(x: torch.Tensor, irreps, lmax: int) -> torch.Tensor:
    """``x [B, irreps.dim]`` -> ``[(lmax+1)^2, B * C]`` (zero rows for the degrees not in ``irreps``).

    A pure permutation (plus zero rows), so its backward is :func:`from_columns` of the gradient: one
    copy, instead of autograd's zero-filled full-size gradient per sliced degree block. ``irreps``: e3nn
    irreps or :func:`blocks_of` pairs."""
    if transform_active(x):  # torch.func / forward AD / batched grads: out-of-place ops every transform sees through
        blocks = blocks_of(irreps)
        return features_to_columns(x, blocks, lmax, blocks[0][0])
    return _ToColumns.apply(x, blocks_of(irreps), lmax)


def from_columns(z: torch.Tensor, irreps_out, batch: int) -> torch.Tensor:
    """``z [(Lo+1)^2, B * C]`` -> ``[B, irreps_out.dim]`` in e3nn layout (degrees picked from ``z``);
    backward: :func:`to_columns` of the gradient (zero rows for the degrees of ``z`` not picked)."""
    if transform_active(z):
        blocks = blocks_of(irreps_out)
        return columns_to_features(z, blocks, batch, blocks[0][0] if blocks else 0)
    return _FromColumns.apply(z, blocks_of(irreps_out), batch)


class _ToColumns(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, irreps, lmax):
        ctx.irreps = irreps
        return _to_columns(x, irreps, lmax)

    @staticmethod
    def backward(ctx, grad):
        return from_columns(grad, ctx.irreps, grad.shape[1] // ctx.irreps[0][0]), None, None


class _FromColumns(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, irreps_out, batch):
        ctx.irreps, ctx.lmax = irreps_out, int(round(z.shape[0] ** 0.5)) - 1
        return _from_columns(z, irreps_out, batch)

    @staticmethod
    def backward(ctx, grad):
        return to_columns(grad, ctx.irreps, ctx.lmax), None, None


def _to_columns(x: torch.Tensor, blocks: tuple[tuple[int, int], ...], lmax: int) -> torch.Tensor:
    batch = x.shape[0]
    mul = blocks[0][0]
    out = x.new_empty((lmax + 1) ** 2, batch * mul)
    present, start = set(), 0
    for m, l in blocks:  # one strided copy per degree block, straight into place
        d = 2 * l + 1
        block = x[:, start:start + m * d].reshape(batch, m, d)
        out[l * l:(l + 1) ** 2].view(d, batch, m).copy_(block.permute(2, 0, 1))
        present.add(l)
        start += m * d
    for l in range(lmax + 1):
        if l not in present:
            out[l * l:(l + 1) ** 2].zero_()
    return out


def _from_columns(z: torch.Tensor, blocks: tuple[tuple[int, int], ...], batch: int) -> torch.Tensor:
    out = z.new_empty(batch, sum(mul * (2 * l + 1) for mul, l in blocks))
    start = 0
    for mul, l in blocks:
        d = 2 * l + 1
        rows = z[l * l: (l + 1) ** 2]  # [2l+1, B*C]
        out[:, start:start + mul * d].view(batch, mul, d).copy_(rows.reshape(d, batch, mul).permute(1, 2, 0))
        start += mul * d
    return out


def degree_expand(w: torch.Tensor, lmax: int) -> torch.Tensor:
    """Per-degree weights ``[..., lmax+1]`` -> per-coefficient ``[..., (lmax+1)^2]`` (repeat ``2l+1`` times)."""
    reps = torch.tensor([2 * l + 1 for l in range(lmax + 1)], device=w.device)
    return torch.repeat_interleave(w, reps, dim=-1)
