r"""A TSP edge-scoring network on complete graphs, with or without TinvNN inputs.

Residual gated graph convolution on the complete graph of ``n`` cities (after Joshi, Laurent,
Bresson 2019, "An efficient graph convolutional network technique for the TSP", simplified):

.. math::
    e_{ij}^{l+1} = e_{ij}^l + \mathrm{ReLU}(\mathrm{LN}(A e_{ij}^l + B h_i^l + C h_j^l)),\qquad
    h_i^{l+1} = h_i^l + \mathrm{ReLU}\Big(\mathrm{LN}\big(U h_i^l + \frac{\sum_j \sigma(e_{ij}^{l+1}) \odot V h_j^l}
    {\sum_j \sigma(e_{ij}^{l+1}) + \epsilon}\big)\Big)

and edge logits :math:`s_{ij} = \mathrm{MLP}(e_{ij}^L)`, symmetrised. Inputs per city and per edge:

* ``invariant=True`` (TinvNN): :math:`z_i` = :func:`~geomdl.nn.tinv.mds_embedding` (``dim=2``) of the
  instance and :math:`d_{ij} = \|z_i - z_j\|` (the true distances divided by the instance's RMS radius),
  plus a k-nearest-neighbour flag. Every input is invariant to rotations, reflections, translations and
  scalings of the instance, so the scores are too, and permuting the cities permutes the scores.
* ``invariant=False`` (baseline): the raw coordinates and raw distances (the usual neural TSP input).

Shapes: ``pos [B, n, d]`` (``d = 2``, or 3 for planar instances embedded in space) -> ``[B, n, n]``.
"""
from __future__ import annotations

import torch
from torch import nn

from geomdl.nn.tinv import mds_embedding

PLANAR_TOL = 1e-6
"""Largest ratio of the third to the first principal variance of a ``[B, n, 3]`` instance that counts as planar."""


class _GatedLayer(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.edge = nn.Linear(hidden, hidden)
        self.src = nn.Linear(hidden, hidden, bias=False)
        self.dst = nn.Linear(hidden, hidden, bias=False)
        self.self_ = nn.Linear(hidden, hidden)
        self.nbr = nn.Linear(hidden, hidden, bias=False)
        self.norm_e = nn.LayerNorm(hidden)
        self.norm_h = nn.LayerNorm(hidden)

    def forward(self, h: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = e + torch.relu(self.norm_e(self.edge(e) + self.src(h)[:, :, None, :] + self.dst(h)[:, None, :, :]))
        gate = torch.sigmoid(e)
        agg = (gate * self.nbr(h)[:, None, :, :]).sum(2) / (gate.sum(2) + 1e-6)
        h = h + torch.relu(self.norm_h(self.self_(h) + agg))
        return h, e


class TSPEdgeNet(nn.Module):
    """Args:
        invariant: feed TinvNN coordinates and normalised distances (True, default) or raw ones (False).
        hidden_channels: width (default 64).
        num_layers: gated layers (default 4).
        knn: the k of the nearest-neighbour edge flag (default 4).
    """

    def __init__(self, invariant: bool = True, hidden_channels: int = 64, num_layers: int = 4, knn: int = 4):
        super().__init__()
        for name, value in (("hidden_channels", hidden_channels), ("num_layers", num_layers), ("knn", knn)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.invariant, self.knn = bool(invariant), knn
        self.node_in = nn.Linear(2, hidden_channels)
        self.edge_in = nn.Linear(2, hidden_channels)
        self.layers = nn.ModuleList([_GatedLayer(hidden_channels) for _ in range(num_layers)])
        self.out = nn.Sequential(nn.Linear(hidden_channels, hidden_channels), nn.ReLU(), nn.Linear(hidden_channels, 1))

    def extra_repr(self) -> str:
        return f"invariant={self.invariant}, knn={self.knn}"

    def features(self, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Node coordinates ``[B, n, 2]`` and distances ``[B, n, n]`` the network sees.

        ``pos [B, n, 2]`` (or ``[B, n, 3]`` planar instances, ``invariant=True`` only) float, ``n >= 3``. With
        ``invariant=True`` the coordinates are the 2-D :func:`geomdl.nn.tinv.mds_embedding` of each instance
        (no gradient); the distances are those between these coordinates. Raises ``ValueError``/``TypeError``
        for other shapes, ``[B, n, 3]`` instances off a plane (:data:`PLANAR_TOL`) or a non-floating ``pos``.
        """
        if not isinstance(pos, torch.Tensor) or pos.dim() != 3 or pos.shape[-1] not in (2, 3) or pos.shape[1] < 3:
            raise ValueError(f"pos must be [B, n, 2] (or [B, n, 3] for planar instances) with n >= 3, "
                             f"got {getattr(pos, 'shape', type(pos))}")
        if not pos.is_floating_point():
            raise TypeError(f"pos must have a floating dtype, got {pos.dtype}")
        num, n, d = pos.shape
        if self.invariant:
            batch = torch.arange(num, device=pos.device).repeat_interleave(n)
            result = mds_embedding(pos.detach().reshape(num * n, d), dim=d, batch=batch)
            if d == 3:  # the third axis is dropped: it must be empty, else the distances below are not the cities'
                flat = result.eigenvalues[:, 2] <= PLANAR_TOL * result.eigenvalues[:, 0]
                if not bool(flat.all()):
                    bad = int(torch.nonzero(~flat)[0])
                    raise ValueError(f"pos[{bad}] is not planar (its third principal variance is "
                                     f"{float(result.eigenvalues[bad, 2] / result.eigenvalues[bad, 0]):.3g} of the "
                                     f"first, over {PLANAR_TOL:g}): [B, n, 3] instances must lie in a plane")
            coords = result.embedding[:, :2].reshape(num, n, 2)
        else:
            if d != 2:
                raise ValueError("the raw-coordinate baseline (invariant=False) needs pos [B, n, 2]")
            coords = pos
        d2 = (coords[:, :, None, :] - coords[:, None, :, :]).pow(2).sum(-1)
        # sqrt has an infinite derivative at 0 (the diagonal, coincident cities): take it only where d2 > 0,
        # so gradients with respect to pos stay finite (0 on those entries) instead of NaN
        pos_d2 = d2 > 0
        dist = torch.where(pos_d2, torch.where(pos_d2, d2, torch.ones_like(d2)).sqrt(), torch.zeros_like(d2))
        return coords, dist

    def forward(self, pos: torch.Tensor) -> torch.Tensor:
        """``pos [B, n, 2|3]`` -> symmetric edge logits ``[B, n, n]`` (diagonal ``-1e4``); see :meth:`features`."""
        return self.forward_features(*self.features(pos))

    def forward_features(self, coords: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        """Edge logits from precomputed :meth:`features` (lets training embed each instance once).

        ``coords [B, n, 2]``, ``dist [B, n, n]`` -> ``[B, n, n]``, symmetrised ``(l + l^T) / 2``, diagonal ``-1e4``.
        """
        n = dist.shape[1]
        k = min(self.knn, n - 1)
        eye = torch.eye(n, dtype=torch.bool, device=dist.device)
        # k-NN flag with ties broken by the distance values only (a stable sort keeps equal rows equal)
        kth = dist.masked_fill(eye, float("inf")).sort(dim=2).values[:, :, k - 1:k]
        near = ((dist <= kth) & ~eye).to(dist.dtype)
        h = self.node_in(coords)
        e = self.edge_in(torch.stack([dist, near], dim=-1))
        for layer in self.layers:
            h, e = layer(h, e)
        logits = self.out(e).squeeze(-1)
        logits = 0.5 * (logits + logits.transpose(1, 2))
        return logits.masked_fill(eye, -1e4)
