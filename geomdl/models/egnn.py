"""EGNN model for molecules and point sets (Satorras et al., 2021): embedding, ``num_layers``
:class:`~geomdl.nn.egnn.EGNNLayer` blocks, per-atom MLP, sum/mean readout.

.. math::  h^{0} = \\mathrm{Embed}(z),\\quad (h^{t+1}, x^{t+1}) = \\mathrm{EGNN}(h^t, x^t),\\quad
           Y_b = \\sum_{i \\in b} \\mathrm{MLP}(h^T_i)

Invariant outputs under E(3) (rotations, reflections, translations) and permutations. Optional
edge features: a radial basis of the *input* distances (``num_rbf > 0``), as used for QM9.
See :class:`~geomdl.models._molecular.MolecularModel` for the shared arguments and call forms.
"""
from __future__ import annotations

from torch import nn

from geomdl.graph.radial import GaussianBasis, cosine_cutoff
from geomdl.models._molecular import MolecularModel
from geomdl.nn.egnn import EGNNLayer
from geomdl.nn.mlp import MLP
from geomdl.ops._validation import check_int


class EGNN(MolecularModel):
    """Args (besides :class:`MolecularModel`'s):
        num_layers: EGNN layers (default 4).
        num_rbf: Gaussian radial features of the input distances as edge attributes (default 0: only
            the squared distance inside each layer, as in the paper).
        update_coords: let the layers move the positions (default False: the coordinates stay the
            input geometry, which is what invariant property prediction uses).
        attention, normalize, tanh: passed to :class:`~geomdl.nn.egnn.EGNNLayer` (here on by default for attention and
            normalize; the layer itself defaults to off for both).
        act: activation (default ``"silu"``).
    """

    def __init__(self, out_channels: int = 1, hidden_channels: int = 128, num_layers: int = 4, num_elements: int = 100,
                 in_channels: int | None = None, cutoff: float | None = 5.0, max_num_neighbors: int = 32, num_rbf: int = 0,
                 update_coords: bool = False, attention: bool = True, normalize: bool = True, tanh: bool = False,
                 act: str = "silu", task: str = "graph", readout: str = "sum", target_mean: float = 0.0,
                 target_std: float = 1.0, atomref=None):
        super().__init__(out_channels, hidden_channels, num_elements, in_channels, cutoff, max_num_neighbors, task, readout,
                         target_mean, target_std, atomref)
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be an int >= 1, got {num_layers!r}")
        num_rbf = check_int(num_rbf, "num_rbf", minimum=0)
        if num_rbf and cutoff is None:
            raise ValueError("num_rbf > 0 needs a cutoff (the radial basis spans [0, cutoff])")
        self.num_rbf = int(num_rbf)
        self.rbf = GaussianBasis(num_rbf, cutoff) if num_rbf else None
        self.layers = nn.ModuleList(
            EGNNLayer(hidden_channels, hidden_channels, edge_channels=self.num_rbf, act=act, update_coords=update_coords,
                      attention=attention, normalize=normalize, tanh=tanh)
            for _ in range(num_layers))
        self.head = MLP([hidden_channels, hidden_channels, out_channels], act=act)

    def node_outputs(self, h, pos, edge_index):
        edge_attr = None
        if self.rbf is not None:
            d = (pos.index_select(0, edge_index[0]) - pos.index_select(0, edge_index[1])).pow(2).sum(1).add(1e-12).sqrt()
            edge_attr = self.rbf(d) * cosine_cutoff(d, self.cutoff).unsqueeze(1)
        x = pos
        for layer in self.layers:
            h, x = layer(h, x, edge_index, edge_attr)
        return self.head(h)


__all__ = ["EGNN"]
