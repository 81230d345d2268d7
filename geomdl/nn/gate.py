"""Gated nonlinearity for irreps features (Weiler et al. 2018; e3nn ``Gate``).

Input ``x = [scalars | gates | gated]`` in e3nn's ``mul x ir`` layout (each irrep block
``[mul * (2l+1)]`` with the ``2l+1`` components contiguous per channel):

.. math::  \\mathrm{Gate}(x) = \\big[\\ \\sigma_s(\\text{scalars}),\\ \\ \\sigma_g(g_u)\\, y_u\\ \\big]

one gate scalar ``g_u`` per gated irrep channel ``y_u``. Even scalars (``0e``) take any activation;
odd scalars (``0o``) need an odd activation (``tanh``) to stay equivariant under reflections.
Gates must be even scalars (``0e``), so the gated irreps keep their parity.

Symmetry: O(3) equivariant for any input irreps (checked by the constructor).
"""
from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

_ACTS = {"silu": torch.nn.functional.silu, "relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
         "gelu": torch.nn.functional.gelu, "abs": torch.abs, "identity": lambda t: t}
_ODD = {"tanh", "identity"}


def _irreps(value, name: str) -> o3.Irreps:
    try:
        return o3.Irreps(value)
    except Exception as exc:  # e3nn raises ValueError/AssertionError with little context
        raise ValueError(f"{name} must be an irreps spec such as '16x0e+8x1o', got {value!r} ({exc})") from None


def _act(name: str, what: str):
    if name not in _ACTS:
        raise ValueError(f"{what} must be one of {sorted(_ACTS)}, got {name!r}")
    return _ACTS[name]


class Gate(nn.Module):
    """Gated nonlinearity.

    Args:
        irreps_scalars: scalar irreps activated directly (``0e`` and/or ``0o``), may be empty ``""``.
        irreps_gated: irreps multiplied by gates (any ``l``), may be empty.
        act_scalars: activation of even scalars (default ``"silu"``).
        act_odd: activation of odd scalars, must be odd (default ``"tanh"``).
        act_gates: activation of the gates (default ``"sigmoid"``).

    Attributes: ``irreps_in = scalars + gates + gated`` with ``gates = (num gated channels) x 0e``;
    ``irreps_out = scalars + gated``.

    Shapes: ``[..., irreps_in.dim] -> [..., irreps_out.dim]``.
    """

    def __init__(self, irreps_scalars, irreps_gated, act_scalars: str = "silu", act_odd: str = "tanh", act_gates: str = "sigmoid"):
        super().__init__()
        self.irreps_scalars = _irreps(irreps_scalars, "irreps_scalars")
        self.irreps_gated = _irreps(irreps_gated, "irreps_gated")
        if any(ir.l != 0 for _, ir in self.irreps_scalars):
            raise ValueError(f"irreps_scalars must contain only l=0 irreps, got {self.irreps_scalars}")
        if act_odd not in _ODD:
            raise ValueError(f"act_odd must be an odd function ({sorted(_ODD)}), got {act_odd!r}")
        self.act_scalars, self.act_odd, self.act_gates = _act(act_scalars, "act_scalars"), _act(act_odd, "act_odd"), _act(act_gates, "act_gates")
        self.names = (act_scalars, act_odd, act_gates)
        num_gated = self.irreps_gated.num_irreps
        self.irreps_gates = o3.Irreps(f"{num_gated}x0e") if num_gated else o3.Irreps("")
        self.irreps_in = self.irreps_scalars + self.irreps_gates + self.irreps_gated
        self.irreps_out = self.irreps_scalars + self.irreps_gated
        # index helpers: parity of each scalar channel, and which gate multiplies which component
        parity = torch.cat([torch.full((mul,), float(ir.p)) for mul, ir in self.irreps_scalars]) if self.irreps_scalars.dim else torch.zeros(0)
        self.register_buffer("_odd_mask", parity < 0, persistent=False)
        # plain Python values for forward (torch.compile guards on them, not on Irreps or buffer values)
        self._has_odd = bool((parity < 0).any())
        self._dims = (self.irreps_in.dim, self.irreps_scalars.dim, self.irreps_gates.dim)
        rep = torch.cat([torch.arange(mul).repeat_interleave(ir.dim) + off
                         for off, (mul, ir) in zip(_offsets(self.irreps_gated), self.irreps_gated)]) if num_gated else torch.zeros(0, dtype=torch.long)
        self.register_buffer("_gate_index", rep, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [..., irreps_in.dim]`` float -> ``[..., irreps_out.dim]``: ``[act(scalars), act_gates(gates) * gated]``.

        Raises ``ValueError`` when the last dimension is not ``irreps_in.dim``, ``TypeError`` for a
        non-floating ``x``.
        """
        dim_in, ns, ng = self._dims
        if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.shape[-1] != dim_in:
            raise ValueError(f"x must have shape [..., {dim_in}] (irreps {self.irreps_in}), got {tuple(getattr(x, 'shape', ()))}")
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating tensor (irreps {self.irreps_in}), got {x.dtype}")
        scalars, gates, gated = x[..., :ns], x[..., ns:ns + ng], x[..., ns + ng:]
        out = []
        if ns:
            if self._has_odd:
                scalars = torch.where(self._odd_mask, self.act_odd(scalars), self.act_scalars(scalars))
            else:
                scalars = self.act_scalars(scalars)
            out.append(scalars)
        if ng:
            g = self.act_gates(gates)
            out.append(gated * g.index_select(-1, self._gate_index))
        if not out:
            return x[..., :0]
        return torch.cat(out, dim=-1)

    def extra_repr(self) -> str:
        return f"{self.irreps_in} -> {self.irreps_out}, acts={self.names}"


def _offsets(irreps: o3.Irreps) -> list[int]:
    """Channel offset of each block (counting irreps, not components)."""
    out, k = [], 0
    for mul, _ in irreps:
        out.append(k)
        k += mul
    return out
