"""NequIP-style interatomic potential (Batzner et al., Nat. Commun. 2022) on geomdl's tensor-product
convolution, with either the Clebsch-Gordan or the Gaunt product.

.. math::  h^0 = \\mathrm{Embed}(z)\\ (\\text{scalars}),\\quad
           h^{t+1} = h^t + \\mathrm{Gate}\\big(\\mathrm{Conv}_{CG|Gaunt}(h^t, p)\\big),\\quad
           E_b = \\sum_{i \\in b} \\mathrm{MLP}(h^T_{i,\\,0e})

Hidden features ``C x 0e + C x 1o + ... `` up to ``lmax`` (natural parity, so both products apply);
energies are O(3) invariant, forces (``energy_and_forces``) equivariant. For float64 exactness build
the model with float64 as the default dtype (e3nn stores its constants at construction).
"""
from __future__ import annotations

from e3nn import o3
from torch import nn

from geomdl.models._molecular import MolecularModel, shared_edge_features
from geomdl.nn.equivariant_conv import EquivariantConv
from geomdl.nn.gate import Gate
from geomdl.nn.mlp import MLP


class NequIP(MolecularModel):
    """Args (besides :class:`~geomdl.models._molecular.MolecularModel`'s):
        num_layers: interaction blocks (default 3).
        lmax: highest degree of the hidden features (default 2); also that of the edge harmonics.
        mul: multiplicity of the ``l > 0`` hidden irreps (default ``hidden_channels // 2``; with
            ``product="gaunt"`` it must equal ``hidden_channels``, the default there).
        num_basis: Bessel functions (default 8); radial_hidden: radial MLP width (default 32).
        product: ``"cg"`` (default) or ``"gaunt"``.
        avg_num_neighbors: normaliser of the convolution sums (default 10).
    """

    def __init__(self, out_channels: int = 1, hidden_channels: int = 32, num_layers: int = 3, lmax: int = 2, mul: int | None = None,
                 num_elements: int = 100, in_channels: int | None = None, cutoff: float = 5.0, max_num_neighbors: int = 32,
                 num_basis: int = 8, radial_hidden: int = 32, product: str = "cg", avg_num_neighbors: float = 10.0,
                 task: str = "graph", readout: str = "sum", target_mean: float = 0.0, target_std: float = 1.0, atomref=None):
        if cutoff is None:
            raise ValueError("NequIP needs a finite cutoff")
        super().__init__(out_channels, hidden_channels, num_elements, in_channels, cutoff, max_num_neighbors, task, readout,
                         target_mean, target_std, atomref)
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be an int >= 1, got {num_layers!r}")
        if isinstance(lmax, bool) or not isinstance(lmax, int) or lmax < 0:
            raise ValueError(f"lmax must be an int >= 0, got {lmax!r}")
        c = hidden_channels
        if mul is not None and (isinstance(mul, bool) or not isinstance(mul, int) or mul < 1):
            raise ValueError(f"mul must be None or an int >= 1, got {mul!r}")
        if product == "gaunt" and mul is not None and mul != c and lmax > 0:
            raise ValueError(f"product='gaunt' needs mul == hidden_channels ({c}): the channelwise Gaunt product has one "
                             f"multiplicity for every degree; got mul={mul} (leave mul=None)")
        if mul is None:  # the channelwise Gaunt product needs one multiplicity for every degree
            mul = c if product == "gaunt" else max(c // 2, 1)
        gated = o3.Irreps([(mul, (l, (-1) ** l)) for l in range(1, lmax + 1)])
        self.irreps_hidden = (o3.Irreps(f"{c}x0e") + gated).simplify()
        self.layers = nn.ModuleList()
        self.gates = nn.ModuleList()
        irreps = o3.Irreps(f"{c}x0e")
        for _ in range(num_layers):
            gate = Gate(f"{c}x0e", gated)
            self.layers.append(EquivariantConv(irreps, gate.irreps_in, lmax_sh=lmax, num_basis=num_basis, cutoff=cutoff,
                                               radial_hidden=radial_hidden, product=product, avg_num_neighbors=avg_num_neighbors))
            self.gates.append(gate)
            irreps = gate.irreps_out
        self.product = product
        self.head = MLP([c, c, out_channels], act="silu")
        self._num_scalars = c

    def node_outputs(self, h, pos, edge_index):
        shared: dict = {}  # edge lengths, spherical harmonics and envelope, once per distinct EquivariantConv.edge_key
        for t, (conv, gate) in enumerate(zip(self.layers, self.gates)):
            out = gate(conv(h, pos, edge_index, edge_features=shared_edge_features(conv, shared, pos, edge_index)))
            h = out if t == 0 else h + out
        return self.head(h[:, :self._num_scalars])


__all__ = ["NequIP"]
