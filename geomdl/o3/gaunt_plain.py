"""The Gaunt products in plain differentiable PyTorch ops, for forward-mode AD and ``torch.func`` transforms.

The eager Gaunt paths (:func:`geomdl.o3.gaunt_product`, :func:`geomdl.o3.gaunt_product_columns`,
:func:`geomdl.o3.gaunt_kernel.gaunt_features`) run the compiled kernel or a reference that writes into
reused buffers, inside ``torch.autograd.Function`` classes with a backward formula only: no tangents
(``torch.autograd.forward_ad``, ``torch.func.jvp``) and no ``torch.func`` transforms (``grad``, ``vmap``,
``jacrev``, ...). When :func:`geomdl.ops._extension.transform_active` is true they call the functions below instead: the same
half-torus (``"dft"``) or zero-padded FFT (``"fft"``) algorithm as the references, one chunk of columns at
a time, made of out-of-place torch ops only, so autograd, forward AD and ``vmap`` see through them. They
give the numbers of the normal path to rounding (same plans, same maths), just without fused buffers.
Not used while ``torch.compile`` traces (the opaque operators of :mod:`geomdl.o3.gaunt_ops` run there).
"""
from __future__ import annotations

import torch

from geomdl.o3.gaunt_plans import dft_plan, fft_plan
from geomdl.o3.spherical_harmonics import lmax_from_dim

_CHUNK_ELEMENTS = 1 << 18  # torus values per chunk (columns x grid points), as in geomdl.o3.gaunt_product


def _chunked(fn, x1: torch.Tensor, x2: torch.Tensor, dim: int, chunk: int) -> torch.Tensor:
    """``fn`` on slices of ``chunk`` along ``dim`` of both operands, concatenated (one call when it fits)."""
    size = x1.shape[dim]
    if size <= chunk:
        return fn(x1, x2)
    return torch.cat([fn(x1.narrow(dim, s, min(chunk, size - s)), x2.narrow(dim, s, min(chunk, size - s)))
                      for s in range(0, size, chunk)], dim=dim)


def gaunt_columns_plain(x1t: torch.Tensor, x2t: torch.Tensor, lmax_out: int) -> torch.Tensor:
    """Columns ``x1t [(L1+1)^2, R] x x2t [(L2+1)^2, R] -> [(lmax_out+1)^2, R]`` on the half torus (the
    ``"dft"`` method of :func:`geomdl.o3.gaunt_product._gaunt_columns_reference`), plain torch ops."""
    from geomdl.o3.gaunt_product import half_grid, project_half_grid  # gaunt_product imports this module

    p = dft_plan(lmax_from_dim(x1t.shape[0], "x1t"), lmax_from_dim(x2t.shape[0], "x2t"), lmax_out, x1t.dtype, x1t.device)

    def product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        e1, o1 = half_grid(a, p.synth1)
        e2, o2 = half_grid(b, p.synth2)
        parts = torch.stack([e1 * e2 + o1 * o2, e1 * o2 + o1 * e2])  # [2, K, J * R]: even / odd in phi
        return project_half_grid(parts, p.proj, a.shape[1])

    return _chunked(product, x1t, x2t, 1, max(1, _CHUNK_ELEMENTS // (p.n_theta * p.n_v)))


def gaunt_fft_plain(x1: torch.Tensor, x2: torch.Tensor, lmax_out: int) -> torch.Tensor:
    """Rows ``x1 [R, (L1+1)^2] x x2 [R, (L2+1)^2] -> [R, (lmax_out+1)^2]`` by zero-padded ``irfftn``/``rfftn``
    (the ``"fft"`` method of :func:`geomdl.o3.gaunt_product._gaunt_fft`), plain torch ops."""
    from geomdl.o3.gaunt_product import _fft_to_grid

    p = fft_plan(lmax_from_dim(x1.shape[-1], "x1"), lmax_from_dim(x2.shape[-1], "x2"), lmax_out, x1.dtype, x1.device)

    def product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        h = _fft_to_grid(a, p.idx1, p.t1, p.n_u, p.n_v) * _fft_to_grid(b, p.idx2, p.t2, p.n_u, p.n_v)
        spec = torch.fft.rfftn(h, dim=(2, 0), norm="forward")[: lmax_out + 1]  # H[v, r, u]
        spec = torch.view_as_real(spec).reshape(lmax_out + 1, h.shape[1], 2 * p.n_u)
        z = torch.bmm(spec, p.b)  # [Lo+1, r, 2(Lo+1)]
        return z.permute(1, 0, 2).reshape(h.shape[1], -1).index_select(1, p.gather)

    return _chunked(product, x1, x2, 0, max(1, _CHUNK_ELEMENTS // (p.n_u * p.n_v)))


def features_to_columns(x: torch.Tensor, blocks, lmax: int, channels: int) -> torch.Tensor:
    """e3nn features ``x [N, dim]`` (blocks ``((channels, l), ...)``, each degree once) -> columns
    ``[(lmax+1)^2, N * channels]`` (column ``n * channels + c``; rows of absent degrees are zero)."""
    n, starts, start = x.shape[0], {}, 0
    for mul, l in blocks:
        starts[l] = start
        start += mul * (2 * l + 1)
    rows = []
    for l in range(lmax + 1):
        d = 2 * l + 1
        if l in starts:
            block = x[:, starts[l]:starts[l] + channels * d].reshape(n, channels, d)
            rows.append(block.permute(2, 0, 1).reshape(d, n * channels))
        else:
            rows.append(x.new_zeros(d, n * channels))
    return torch.cat(rows)


def columns_to_features(z: torch.Tensor, blocks, n: int, channels: int) -> torch.Tensor:
    """Columns ``z [(L+1)^2, n * channels]`` -> e3nn features ``[n, dim]`` of ``blocks ((channels, l), ...)``."""
    out = [z[l * l:(l + 1) ** 2].reshape(2 * l + 1, n, channels).permute(1, 2, 0).reshape(n, channels * (2 * l + 1))
           for _, l in blocks]
    return torch.cat(out, dim=1) if out else z.new_zeros(n, 0)


def gaunt_features_plain(x: torch.Tensor, y: torch.Tensor, irreps_x, irreps_y, irreps_out, channels: int) -> torch.Tensor:
    """:func:`geomdl.o3.gaunt_kernel.gaunt_features` (``x [N, dim_x]``, ``y [N, dim_y]`` -> ``[N, dim_out]``) through
    columns and :func:`gaunt_columns_plain` (validated arguments)."""
    n = x.shape[0]
    lx, ly, lo = (max(l for _, l in b) for b in (irreps_x, irreps_y, irreps_out))
    z = gaunt_columns_plain(features_to_columns(x, irreps_x, lx, channels), features_to_columns(y, irreps_y, ly, channels), lo)
    return columns_to_features(z, irreps_out, n, channels)
