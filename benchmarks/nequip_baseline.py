"""A compact e3nn-based NequIP-style potential, used only as the timing peer of PONITA benchmarks.

Interaction block (Batzner et al. 2022): ``h_i' = Gate(Lin(h_i) + sum_j TP(h_j, Y(r_ij); R(|r_ij|)))``
with spherical harmonics ``Y`` up to ``lmax``, a radial MLP on a Bessel basis times a polynomial cutoff
producing the per-edge weights of a ``uvu`` tensor product, and a self-interaction. Energy = sum of
per-atom scalars; forces by autograd. Not a geomdl model (issue 6 owns those); kept here so the
benchmark has a peer of similar size measured in the same script.
"""
from __future__ import annotations

import math

import torch
from e3nn import nn as enn
from e3nn import o3
from torch import nn

from geomdl.nn.ponita.edges import build_edges
from geomdl.nn.ponita.embedding import smooth_cutoff
from geomdl.ops import scatter


def bessel(d, cutoff, num):
    n = torch.arange(1, num + 1, dtype=d.dtype, device=d.device)
    return math.sqrt(2 / cutoff) * torch.sin(n * math.pi * d[:, None] / cutoff) / d[:, None].clamp(min=1e-9)


class Interaction(nn.Module):
    def __init__(self, irreps_in, irreps_hidden, lmax, num_basis):
        super().__init__()
        irreps_sh = o3.Irreps.spherical_harmonics(lmax)
        scalars = o3.Irreps([(m, ir) for m, ir in irreps_hidden if ir.l == 0])
        gated = o3.Irreps([(m, ir) for m, ir in irreps_hidden if ir.l > 0]).simplify()
        gates = o3.Irreps(f"{gated.num_irreps}x0e")
        self.gate = enn.Gate(scalars, [torch.nn.functional.silu], gates, [torch.sigmoid], gated)
        irreps_mid, instr = [], []
        for i, (mul, ir_in) in enumerate(irreps_in):
            for j, (_, ir_sh) in enumerate(irreps_sh):
                for ir_out in ir_in * ir_sh:
                    if ir_out in self.gate.irreps_in:
                        k = len(irreps_mid)
                        irreps_mid.append((mul, ir_out))
                        instr.append((i, j, k, "uvu", True))
        self.tp = o3.TensorProduct(irreps_in, irreps_sh, o3.Irreps(irreps_mid), instr, shared_weights=False, internal_weights=False)
        self.radial = nn.Sequential(nn.Linear(num_basis, 32), nn.SiLU(), nn.Linear(32, self.tp.weight_numel))
        self.lin_msg = o3.Linear(self.tp.irreps_out, self.gate.irreps_in)
        self.lin_self = o3.Linear(irreps_in, self.gate.irreps_in)
        self.irreps_out = self.gate.irreps_out

    def forward(self, h, sh, basis, edge_index):
        src, dst = edge_index
        msg = self.tp(h[src], sh, self.radial(basis))
        agg = scatter(msg, dst, dim=0, dim_size=h.shape[0])
        return self.gate(self.lin_self(h) + self.lin_msg(agg))


class NequIPStyle(nn.Module):
    """Energy model ``E = sum_i w . h_i^{(L)}[0e]``; ``forward`` returns ``{"energy", "forces"}``."""

    def __init__(self, num_types=4, channels=32, layers=3, lmax=2, cutoff=5.0, num_basis=8):
        super().__init__()
        self.cutoff, self.num_basis, self.lmax = cutoff, num_basis, lmax
        hidden = o3.Irreps(" + ".join(f"{channels}x{l}{'eo'[l % 2]}" for l in range(lmax + 1)))  # 0e + 1o + 2e
        self.embed = nn.Linear(num_types, channels)
        irreps = o3.Irreps(f"{channels}x0e")
        blocks = []
        for _ in range(layers):
            blocks.append(Interaction(irreps, hidden, lmax, num_basis))
            irreps = blocks[-1].irreps_out
        self.blocks = nn.ModuleList(blocks)
        self.out = o3.Linear(irreps, "1x0e")

    def forward(self, types, pos, batch, num_graphs):
        pos = pos.detach().requires_grad_(True) if not pos.requires_grad else pos
        with torch.enable_grad():
            edge_index = build_edges(pos, batch, self.cutoff, loop=False, max_num_neighbors=1000)
            rel = pos[edge_index[0]] - pos[edge_index[1]]
            d = rel.norm(dim=-1)
            sh = o3.spherical_harmonics(list(range(self.lmax + 1)), rel, normalize=True, normalization="component")
            basis = bessel(d, self.cutoff, self.num_basis) * smooth_cutoff(d, self.cutoff)[:, None]
            h = self.embed(nn.functional.one_hot(types, self.embed.in_features).to(pos.dtype))
            for block in self.blocks:
                h = block(h, sh, basis, edge_index)
            energy = scatter(self.out(h)[:, 0], batch, dim=0, dim_size=num_graphs)
            (grad,) = torch.autograd.grad(energy.sum(), pos, create_graph=self.training)
        return {"energy": energy, "forces": -grad}
