"""Tensor-product point convolution (TFN, Thomas et al. 2018; NequIP, Batzner et al. 2022).

.. math::
    x_i' = W_{self}\\, x_i + \\frac{1}{\\sqrt{\\bar n}} \\sum_{j \\in \\mathcal{N}(i)}
           W_{out}\\Big( x_j \\otimes_{R(\\|r_{ij}\\|)} Y(\\hat r_{ij}) \\Big),\\qquad r_{ij} = p_j - p_i

``Y`` are the real spherical harmonics up to ``lmax_sh``; ``R`` is an MLP on a Bessel basis times a
polynomial cutoff that outputs the per-edge weights of the product; ``W_self``, ``W_out`` are
equivariant linear maps (e3nn ``o3.Linear``); ``n_bar`` is ``avg_num_neighbors``.

Two products (``product=``):

``"cg"``
    Clebsch-Gordan tensor product, every allowed path ``(l_in, l_sh) -> l_out`` with one weight per
    input channel and path (:class:`geomdl.nn.tensor_products.ClebschGordanTensorProduct`, mode
    ``uvu``). Any input/output irreps, O(3) with parity.
``"gaunt"``
    Channelwise Gaunt product (Luo et al., ICLR 2024), :class:`geomdl.nn.tensor_products.GauntTensorProduct`:
    ``x_j`` of channel ``u`` is read as a spherical function ``f_u = sum_l x_{u,l} . Y_l``, the filter
    as ``g_u = sum_l R_{u,l}(|r|) Y_l(r_hat)``, the message is the projection of ``f_u g_u`` to degrees
    ``<= lmax_out``. Needs natural-parity irreps (``0e, 1o, 2e, ...``) with one multiplicity; it
    cannot produce pseudo-tensors (``1e, 0o``). O(3) equivariant on those irreps.

Shapes: ``x [N, irreps_in.dim]``, ``pos [N, 3]``, ``edge_index [2, E]`` -> ``[N, irreps_out.dim]``.
"""
from __future__ import annotations

import math

import torch
from e3nn import o3
from torch import nn

from geomdl import ops
from geomdl.graph.radial import BesselBasis, PolynomialCutoff
from geomdl.nn.gate import _irreps
from geomdl.nn.message_passing import check_dtypes, check_edge_index, check_positions
from geomdl.nn.mlp import MLP
from geomdl.nn.tensor_products import ClebschGordanTensorProduct, GauntTensorProduct
from geomdl.o3.spherical_harmonics import unit_vectors
from geomdl.ops._validation import check_bool, check_real

PRODUCTS = ("cg", "gaunt")


def _natural_lmax(irreps: o3.Irreps, name: str) -> tuple[int, int]:
    """``(mul, lmax)`` of natural-parity irreps with one multiplicity; ValueError otherwise."""
    muls = {mul for mul, _ in irreps}
    for _, ir in irreps:
        if ir.p != (-1) ** ir.l:
            raise ValueError(f"product='gaunt' needs natural-parity irreps (0e, 1o, 2e, ...); {name} has {ir}")
    if len(muls) != 1:
        raise ValueError(f"product='gaunt' needs one multiplicity for every degree in {name}, got {irreps}")
    ls = [ir.l for _, ir in irreps]
    if len(set(ls)) != len(ls):
        raise ValueError(f"product='gaunt' needs each degree once in {name} (e.g. '8x0e+8x1o+8x2e'), got {irreps}")
    return muls.pop(), max(ls)


class _CGProduct(nn.Module):
    """``x [E, in] (x) Y [E, sh] -> [E, mid]``, one radial weight per input channel and path (``uvu``),
    on :class:`geomdl.nn.tensor_products.ClebschGordanTensorProduct`."""

    def __init__(self, irreps_in: o3.Irreps, irreps_sh: o3.Irreps, irreps_out: o3.Irreps):
        super().__init__()
        wanted = {ir for _, ir in irreps_out}
        blocks = []  # uvu keeps the input multiplicity: one output block per (input block, sh block, l_out)
        for mul, ir_in in irreps_in:
            for _, ir_sh in irreps_sh:
                blocks += [(mul, ir) for ir in ir_in * ir_sh if ir in wanted]
        if not blocks:
            raise ValueError(f"no tensor-product path from {irreps_in} x {irreps_sh} reaches irreps_out {irreps_out}")
        self.irreps_mid = o3.Irreps(blocks)
        self.tp = ClebschGordanTensorProduct(irreps_in, irreps_sh, self.irreps_mid, mode="uvu", internal_weights=False)
        self.weight_numel = self.tp.weight_numel

    def forward(self, x, y, w):
        # under autocast the radial weights come out of a Linear in bf16/fp16 while x and Y are float32: compute
        # in the widest of the dtypes (as the Gaunt path does; the tensor product requires one dtype)
        dtype = torch.promote_types(torch.promote_types(x.dtype, y.dtype), w.dtype)
        return self.tp(x.to(dtype), y.to(dtype), w.to(dtype))


class _GauntProduct(nn.Module):
    """Channelwise Gaunt product of ``x_j`` with the edge filter ``sum_l R_{u,l}(r) Y_l``, on
    :class:`geomdl.nn.tensor_products.GauntTensorProduct` (``weight2`` = the radial weights)."""

    def __init__(self, irreps_in: o3.Irreps, irreps_sh: o3.Irreps, lmax_out: int):
        super().__init__()
        self.mul, _ = _natural_lmax(irreps_in, "irreps_in")
        self.lmax_sh = irreps_sh.lmax
        self.irreps_mid = o3.Irreps([(self.mul, (l, (-1) ** l)) for l in range(lmax_out + 1)])
        self.tp = GauntTensorProduct(irreps_in, irreps_sh, self.irreps_mid, weights="degree")
        self.weight_numel = self.mul * (self.lmax_sh + 1)

    def forward(self, x, y, w):
        return self.tp(x, y, weight2=w.reshape(w.shape[0], self.mul, self.lmax_sh + 1))


class EquivariantConv(nn.Module):
    """TFN/NequIP-style convolution (see the module docstring).

    Args:
        irreps_in: input irreps, e.g. ``"16x0e+8x1o"``.
        irreps_out: output irreps.
        lmax_sh: degree of the edge spherical harmonics (default 2).
        num_basis: Bessel functions of the radial MLP (default 8).
        cutoff: radius where the filters vanish (default 5.0).
        radial_hidden: width of the radial MLP (default 32).
        product: ``"cg"`` (default) or ``"gaunt"``.
        avg_num_neighbors: normaliser ``n_bar`` of the sum (default 10).
        self_connection: add ``W_self x_i`` (default True).

    Shapes: ``x [N, irreps_in.dim]``, ``pos [N, 3]``, ``edge_index [2, E]`` -> ``[N, irreps_out.dim]``.
    Raises ``ValueError`` for a negative ``lmax_sh``, an unknown ``product``, ``avg_num_neighbors`` not positive finite,
    no path to ``irreps_out`` (``"cg"``) or irreps outside the Gaunt product's class (``"gaunt"``).
    """

    def __init__(self, irreps_in, irreps_out, lmax_sh: int = 2, num_basis: int = 8, cutoff: float = 5.0, radial_hidden: int = 32,
                 product: str = "cg", avg_num_neighbors: float = 10.0, self_connection: bool = True):
        super().__init__()
        self.irreps_in, self.irreps_out = _irreps(irreps_in, "irreps_in"), _irreps(irreps_out, "irreps_out")
        if isinstance(lmax_sh, bool) or not isinstance(lmax_sh, int) or lmax_sh < 0:
            raise ValueError(f"lmax_sh must be an int >= 0, got {lmax_sh!r}")
        if product not in PRODUCTS:
            raise ValueError(f"product must be one of {PRODUCTS}, got {product!r}")
        # inf divided every message away; a string failed in a bare comparison
        self.product_name, self.lmax_sh = product, lmax_sh
        self.avg_num_neighbors = check_real(avg_num_neighbors, "avg_num_neighbors", minimum=0, open_minimum=True)
        self_connection = check_bool(self_connection, "self_connection")
        self.irreps_sh = o3.Irreps.spherical_harmonics(lmax_sh)
        self._dim_in = self.irreps_in.dim  # plain int for forward (torch.compile cannot guard on e3nn Irreps)
        if product == "cg":
            self.product = _CGProduct(self.irreps_in, self.irreps_sh, self.irreps_out)
        else:
            for _, ir in self.irreps_out:
                if ir.p != (-1) ** ir.l:
                    raise ValueError(f"product='gaunt' only produces natural-parity irreps; irreps_out has {ir}")
            lmax_out = max(ir.l for _, ir in self.irreps_out)
            self.product = _GauntProduct(self.irreps_in, self.irreps_sh, lmax_out)
        self.basis = BesselBasis(num_basis, cutoff)
        self.envelope = PolynomialCutoff(cutoff)
        self.radial = MLP([num_basis, radial_hidden, radial_hidden, self.product.weight_numel], act="silu")
        self.lin_out = o3.Linear(self.product.irreps_mid, self.irreps_out)
        self.lin_self = o3.Linear(self.irreps_in, self.irreps_out) if self_connection else None

    def edge_key(self):
        """Hashable key of what :meth:`edge_features` depends on besides ``pos`` and ``edge_index``: layers with
        equal keys compute equal features, so a model can compute them once for all its layers."""
        return (self.lmax_sh, type(self.envelope).__name__, self.envelope.extra_repr())

    def edge_features(self, pos: torch.Tensor, edge_index: torch.Tensor):
        """The parameter-free edge inputs of :meth:`forward`: lengths ``|r_ij|`` ``[E]``, spherical harmonics of
        ``r_ij / |r_ij|`` ``[E, sh]`` and envelope ``[E, 1]`` (``edge_index`` unchecked). The radial basis is not
        among them: its frequencies are a buffer of each layer."""
        src, dst = edge_index[0], edge_index[1]
        rel = pos.index_select(0, src) - pos.index_select(0, dst)               # [E, 3]
        d = torch.sqrt(rel.pow(2).sum(1) + 1e-12)
        # unit vectors first: e3nn's normalize=True has a NaN second derivative at zero-length edges (self loops,
        # coincident atoms); unit_vectors maps 0 to 0 with finite derivatives of every order
        y = o3.spherical_harmonics(list(range(self.lmax_sh + 1)), unit_vectors(rel), normalize=False,
                                   normalization="component")  # [E, sh]
        return d, y, self.envelope(d).unsqueeze(1)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, edge_index: torch.Tensor, edge_features=None) -> torch.Tensor:
        """``x [N, irreps_in.dim]``, ``pos [N, 3]`` float (one dtype), ``edge_index [2, E]`` (row 0 source ``j``,
        row 1 target ``i``) -> ``[N, irreps_out.dim]`` (module docstring equation). Raises ``ValueError`` /
        ``TypeError`` for wrong shapes, dtypes or out-of-range ``edge_index``.

        ``edge_features``: optional :meth:`edge_features` of ``(pos, edge_index)`` made by a layer with the same
        :meth:`edge_key` (a model computes them once for all its layers); default: computed here."""
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self._dim_in:
            raise ValueError(f"x must have shape [N, {self._dim_in}] (irreps {self.irreps_in}), got {tuple(getattr(x, 'shape', ()))}")
        n = x.shape[0]
        check_positions(pos, "pos", n)
        check_dtypes(self.radial.first.weight, x=x, pos=pos)
        edge_index = check_edge_index(edge_index, n, n)
        src, dst = edge_index[0], edge_index[1]
        d, y, envelope = self.edge_features(pos, edge_index) if edge_features is None else edge_features
        w = self.radial.scaled(self.basis(d), envelope)                         # [E, weight_numel], envelope * MLP
        msg = self.product(x.index_select(0, src), y, w)                        # [E, mid]
        agg = ops.scatter(msg, dst, 0, n) / math.sqrt(self.avg_num_neighbors)
        out = self.lin_out(agg)
        if self.lin_self is not None:
            out = out + self.lin_self(x)
        return out

    def extra_repr(self) -> str:
        return f"{self.irreps_in} -> {self.irreps_out}, lmax_sh={self.lmax_sh}, product={self.product_name!r}"
