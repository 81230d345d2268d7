"""Polarizable atom interaction layer (PaiNN, Schütt, Unke, Gastegger, ICML 2021).

Scalar features ``s [N, F]`` and vector features ``v [N, F, 3]``; edges ``r_ij = p_j - p_i``.

Message (continuous filter ``W(r) = Linear(rbf(|r|)) f_cut(|r|)``, ``phi = MLP`` on scalars):

.. math::
    [\\Delta s^{s}, \\Delta^{vv}, \\Delta^{vs}]_{ij} &= \\phi(s_j) \\odot W(\\|r_{ij}\\|) \\\\
    s_i &\\mathrel{+}= \\textstyle\\sum_j \\Delta s^s_{ij},\\qquad
    v_i \\mathrel{+}= \\textstyle\\sum_j \\Delta^{vv}_{ij}\\, v_j + \\Delta^{vs}_{ij}\\, \\hat r_{ij}

Update (``U, V``: channel mixing without bias, equivariant):

.. math::
    [a^{vv}, a^{sv}, a^{ss}]_i &= \\mathrm{MLP}\\big(s_i,\\ \\|V v_i\\|\\big) \\\\
    v_i &\\mathrel{+}= a^{vv}_i\\, U v_i,\\qquad s_i \\mathrel{+}= a^{sv}_i \\langle U v_i, V v_i\\rangle + a^{ss}_i

Symmetry: E(3) incl. reflections (``s`` invariant, ``v`` polar vectors), permutations. Norms are
smoothed, ``|u| = sqrt(|u|^2 + eps)``, so gradients stay finite at ``v = 0`` (PaiNN starts from
``v = 0``), including second derivatives (forces training).
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from geomdl import ops
from geomdl.graph.radial import RADIAL_BASES, CosineCutoff
from geomdl.nn.message_passing import check_dtypes, check_edge_index, check_features, check_positions
from geomdl.nn.mlp import MLP

_EPS = 1e-8


def safe_norm(u: torch.Tensor, dim: int = -1, keepdim: bool = False, eps: float = _EPS) -> torch.Tensor:
    """``sqrt(sum(u^2) + eps)`` over ``dim``: smooth everywhere (finite gradients at ``u = 0``).

    ``u [..., D, ...]`` -> the shape of ``u`` without ``dim`` (kept as size 1 when ``keepdim=True``).
    """
    return torch.sqrt(u.pow(2).sum(dim, keepdim=keepdim) + eps)


class PaiNNLayer(nn.Module):
    """One PaiNN interaction: message block followed by update block.

    Args:
        channels: ``F`` (scalar and vector channels).
        num_rbf: radial basis size (default 20).
        cutoff: cutoff radius (default 5.0, in the units of ``pos``).
        radial: ``"gaussian"`` (default) or ``"bessel"``.
        act: activation (default ``"silu"``).

    ``forward(s [N, F], v [N, F, 3], pos [N, 3], edge_index [2, E]) -> (s', v')``.
    """

    def __init__(self, channels: int, num_rbf: int = 20, cutoff: float = 5.0, radial: str = "gaussian", act="silu"):
        super().__init__()
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be an int >= 1, got {channels!r}")
        if radial not in RADIAL_BASES:
            raise ValueError(f"radial must be one of {sorted(RADIAL_BASES)}, got {radial!r}")
        self.channels, self.cutoff_value = channels, float(cutoff)
        f = channels
        self.rbf = RADIAL_BASES[radial](num_rbf, cutoff)
        self.cutoff = CosineCutoff(cutoff)
        self.phi = MLP([f, f, 3 * f], act=act)
        self.filter = nn.Linear(num_rbf, 3 * f)
        self.mix = nn.Linear(f, 2 * f, bias=False)          # U and V stacked (channel mixing: equivariant)
        self.update_mlp = MLP([2 * f, f, 3 * f], act=act)

    def edge_key(self):
        """Hashable key of what :meth:`edge_features` depends on besides ``pos`` and ``edge_index``: layers with
        equal keys compute equal features (so a model can compute them once for all its layers). A radial basis
        with parameters or buffers (e.g. Bessel frequencies, which a state_dict may set per layer) makes the key
        this layer's own."""
        if any(True for _ in self.rbf.parameters()) or any(True for _ in self.rbf.buffers()):
            return ("layer", id(self))
        return (type(self.rbf).__name__, self.rbf.extra_repr(), type(self.cutoff).__name__, self.cutoff.extra_repr())

    def edge_features(self, pos: torch.Tensor, edge_index: torch.Tensor):
        """The parameter-free edge inputs of :meth:`forward`: unit vectors ``r_ij / |r_ij|`` ``[E, 3]``, radial
        basis ``rbf(|r_ij|)`` ``[E, num_rbf]`` and cutoff ``f_cut(|r_ij|)`` ``[E, 1]`` (``edge_index`` unchecked)."""
        src, dst = edge_index[0], edge_index[1]
        rel = pos.index_select(0, src) - pos.index_select(0, dst)      # r_ij = p_j - p_i  [E, 3]
        d = safe_norm(rel)                                              # [E]
        return rel / d.unsqueeze(1), self.rbf(d), self.cutoff(d).unsqueeze(1)

    def forward(self, s: torch.Tensor, v: torch.Tensor, pos: torch.Tensor, edge_index: torch.Tensor, edge_features=None):
        """One interaction: ``s [N, F]``, ``v [N, F, 3]``, ``pos [N, 3]`` (float, one dtype),
        ``edge_index [2, E]`` (row 0 source ``j``, row 1 target ``i``) -> ``(s' [N, F], v' [N, F, 3])``.

        ``edge_features``: optional :meth:`edge_features` of ``(pos, edge_index)`` made by a layer with the same
        :meth:`edge_key` (a model computes them once for all its layers); default: computed here.

        Raises ``TypeError``/``ValueError`` for wrong shapes or dtypes and ``edge_index`` entries out of range.
        """
        f = self.channels
        check_features(s, "s", None, f)
        n = s.shape[0]
        check_features(v, "v", n, f, trailing=(3,))
        check_positions(pos, "pos", n)
        check_dtypes(self.filter.weight, s=s, v=v, pos=pos)
        edge_index = check_edge_index(edge_index, n, n)
        # vectors are processed as [N, 3, F] (channels contiguous: fast broadcasting and channel mixing)
        vt = v.transpose(1, 2).contiguous()
        # --- message
        unit, radial, cut = self.edge_features(pos, edge_index) if edge_features is None else edge_features
        w = self.filter(radial) * cut                                   # [E, 3F]
        phi = self.phi(s)
        msg_in = (phi, w, vt, unit)
        dtype = functools.reduce(torch.promote_types, (t.dtype for t in msg_in))
        if any(t.dtype != dtype for t in msg_in):  # autocast: half phi(s) beside float32 filters (as `*` promotes)
            msg_in = tuple(t.to(dtype) for t in msg_in)
        m_s, m_v = ops.painn_message(*msg_in, edge_index, n)            # gather-multiply-scatter, one pass
        s = s + m_s
        vt = vt + m_v
        # --- update
        uv = self.mix(vt)                                               # [N, 3, 2F]
        u, vv = uv[..., :f], uv[..., f:]
        a = self.update_mlp(torch.cat([s, safe_norm(vv, dim=1)], dim=1))
        a_vv, a_sv, a_ss = torch.split(a, f, dim=1)
        vt = vt + a_vv.unsqueeze(1) * u
        s = s + a_sv * (u * vv).sum(1) + a_ss
        return s, vt.transpose(1, 2)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, cutoff={self.cutoff_value}"


__all__ = ["PaiNNLayer", "safe_norm"]
