"""Equivariant point convolution with the Gaunt product (Luo et al. 2024, section 2.9-2; TFN/NequIP-style).

.. math:: x_i' = \\frac{1}{\\sqrt{\\bar n}} \\sum_{j \\in \\mathcal N(i)}
          \\mathrm{GTP}\\big(x_j,\\ Y(\\hat r_{ij});\\ w^{(2)} = R(\\|r_{ij}\\|)\\big),\\qquad r_{ij} = p_j - p_i,

i.e. per channel ``c`` the message is ``Proj[F_{x_j,c} . g_{ij,c}]`` with the zonal filter
``g_{ij,c}(s) = sum_l R_{c,l}(|r_ij|) sum_m Y_lm(r_hat_ij) Y_lm(s)``; ``R`` is an MLP on a Bessel basis of
the distance times a polynomial cutoff (per edge, channel and filter degree). Aggregation uses
``geomdl.ops.scatter``. Natural-parity irreps only (the Gaunt product's class); for pseudo-tensor outputs
use a CG convolution.

Shapes: ``x [N, irreps_in.dim]``, ``pos [N, 3]``, ``edge_index [2, E]`` (row 0 source ``j``, row 1 target
``i``) -> ``[N, irreps_out.dim]``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from geomdl import ops
from geomdl.graph.radial import BesselBasis, edge_length, polynomial_cutoff
from geomdl.nn.message_passing import check_dtypes, check_edge_index, check_positions
from geomdl.nn.mlp import MLP
from geomdl.nn.tensor_products.clebsch_gordan import _irreps
from geomdl.nn.tensor_products.gaunt import GauntTensorProduct
from geomdl.o3.clebsch_gordan import natural_irreps
from geomdl.o3.spherical_harmonics import spherical_harmonics


class GauntConvolution(nn.Module):
    """Gaunt-product point convolution.

    Args:
        irreps_in, irreps_out: natural-parity channelwise irreps with the same multiplicity ``C``.
        lmax_filter: highest degree of the edge filter (default: highest degree of ``irreps_out``).
        num_basis, cutoff: Bessel radial basis size and cutoff radius (edges longer than ``cutoff`` send 0);
            defaults 8 and 5.0.
        radial_hidden: hidden width of the radial MLP (default 32).
        avg_num_neighbors: ``n_bar`` in the normalisation (default 1.0, must be > 0).

    Raises ``ValueError`` for irreps outside the Gaunt product's class, a negative ``lmax_filter`` or
    ``avg_num_neighbors <= 0``.
    """

    def __init__(self, irreps_in, irreps_out, lmax_filter: int | None = None, num_basis: int = 8, cutoff: float = 5.0,
                 radial_hidden: int = 32, avg_num_neighbors: float = 1.0):
        super().__init__()
        self.irreps_in, self.irreps_out = _irreps(irreps_in, "irreps_in"), _irreps(irreps_out, "irreps_out")
        if lmax_filter is None:
            lmax_filter = max(ir.l for _, ir in self.irreps_out)
        if not isinstance(lmax_filter, int) or isinstance(lmax_filter, bool) or lmax_filter < 0:
            raise ValueError(f"lmax_filter must be a non-negative int, got {lmax_filter!r}")
        if not avg_num_neighbors > 0:
            raise ValueError(f"avg_num_neighbors must be > 0, got {avg_num_neighbors!r}")
        self.lmax_filter, self.cutoff, self.avg_num_neighbors = lmax_filter, float(cutoff), float(avg_num_neighbors)
        self._dim_in = self.irreps_in.dim  # plain int for forward (torch.compile cannot guard on e3nn Irreps)
        self.product = GauntTensorProduct(self.irreps_in, natural_irreps(lmax_filter), self.irreps_out, weights="degree")
        self.channels = self.product.channels
        self.basis = BesselBasis(num_basis, cutoff)
        self.radial = MLP([num_basis, radial_hidden, self.channels * (lmax_filter + 1)])

    def forward(self, x: torch.Tensor, pos: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """``x [N, irreps_in.dim]``, ``pos [N, 3]`` float, ``edge_index [2, E]`` (row 0 source ``j``, row 1 target
        ``i``) -> ``[N, irreps_out.dim]`` (module docstring equation).

        The radial MLP runs in the parameters' dtype (``pos`` must match it); the filter is cast to ``x.dtype``.
        Raises ``ValueError`` for a wrong shape of ``x``/``pos`` or out-of-range ``edge_index``, ``TypeError``
        for a ``pos`` whose dtype differs from the parameters'.
        """
        n = x.shape[0] if isinstance(x, torch.Tensor) else None
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self._dim_in:
            raise ValueError(f"x must have shape [N, {self._dim_in}] for irreps {self.irreps_in}, got {getattr(x, 'shape', x)}")
        pos = check_positions(pos, "pos", n)
        check_dtypes(self.radial.first.weight, pos=pos)  # the radial MLP reads pos; x may differ (cast below)
        edge_index = check_edge_index(edge_index, n, n)
        src, dst = edge_index
        vec = pos[src] - pos[dst]
        dist = edge_length(vec)  # finite second derivatives at zero-length edges (self loops)
        sh = spherical_harmonics(self.lmax_filter, vec, normalize=True, normalization="component")
        radial = self.radial.scaled(self.basis(dist), polynomial_cutoff(dist, self.cutoff)[:, None])
        radial = radial.view(-1, self.channels, self.lmax_filter + 1)
        messages = self.product(x[src], sh.to(x.dtype), weight2=radial.to(x.dtype))
        out = ops.scatter(messages, dst, dim=0, dim_size=n, reduce="sum")
        return out / math.sqrt(self.avg_num_neighbors)

    def extra_repr(self) -> str:
        return f"{self.irreps_in} -> {self.irreps_out}, lmax_filter={self.lmax_filter}, cutoff={self.cutoff}"
