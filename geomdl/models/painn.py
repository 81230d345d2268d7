"""PaiNN model (Schütt et al., 2021): embedding, ``num_layers`` :class:`~geomdl.nn.painn.PaiNNLayer`
interactions on scalar + vector features (vectors start at 0), per-atom MLP on the scalars, readout.

.. math::  s^0 = \\mathrm{Embed}(z),\\ v^0 = 0,\\quad (s^{t+1}, v^{t+1}) = \\mathrm{PaiNN}(s^t, v^t),\\quad
           Y_b = \\sum_{i \\in b} \\mathrm{MLP}(s^T_i)

E(3)-invariant outputs; forces via :meth:`~geomdl.models._molecular.MolecularModel.energy_and_forces`
are equivariant and smooth (cosine cutoff, smoothed norms).
"""
from __future__ import annotations

from torch import nn

from geomdl.models._molecular import MolecularModel, shared_edge_features
from geomdl.nn.mlp import MLP
from geomdl.nn.painn import PaiNNLayer
from geomdl.ops._validation import check_int


class PaiNN(MolecularModel):
    """Args (besides :class:`MolecularModel`'s):
        num_layers: interaction blocks (default 3).
        num_rbf: radial basis functions (default 20); ``radial``: ``"gaussian"`` (default) or ``"bessel"``.
        act: activation (default ``"silu"``).
    """

    def __init__(self, out_channels: int = 1, hidden_channels: int = 128, num_layers: int = 3, num_elements: int = 100,
                 in_channels: int | None = None, cutoff: float = 5.0, max_num_neighbors: int = 32, num_rbf: int = 20,
                 radial: str = "gaussian", act: str = "silu", task: str = "graph", readout: str = "sum",
                 target_mean: float = 0.0, target_std: float = 1.0, atomref=None):
        if cutoff is None:
            raise ValueError("PaiNN needs a finite cutoff (its filters vanish at the cutoff)")
        super().__init__(out_channels, hidden_channels, num_elements, in_channels, cutoff, max_num_neighbors, task, readout,
                         target_mean, target_std, atomref)
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be an int >= 1, got {num_layers!r}")
        num_rbf = check_int(num_rbf, "num_rbf")
        self.layers = nn.ModuleList(PaiNNLayer(hidden_channels, num_rbf, cutoff, radial, act) for _ in range(num_layers))
        self.head = MLP([hidden_channels, hidden_channels // 2 or 1, out_channels], act=act)

    def node_outputs(self, h, pos, edge_index):
        v = h.new_zeros((h.shape[0], h.shape[1], 3))
        shared: dict = {}  # edge geometry and radial basis, once per distinct PaiNNLayer.edge_key (all layers, by default)
        for layer in self.layers:
            h, v = layer(h, v, pos, edge_index, edge_features=shared_edge_features(layer, shared, pos, edge_index))
        return self.head(h)


__all__ = ["PaiNN"]
