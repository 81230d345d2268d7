"""Lifting inputs to position-orientation space and reading outputs back (pure functions).

Fiber-bundle mode (shared grid ``G`` ``[O, D]``):
    scalar ``s`` -> ``f(o) = s`` (copied);  vector ``v`` -> ``f(o) = v . o``;
    read-out: scalar ``= (1/O) sum_o f(o)``, vector ``= (1/O) sum_o f(o) o``.
Point-cloud mode (one orientation ``o_i`` per point): vector input ``v . o_i``; vector output ``f_i o_i``.
Lifting a graph (``num_ori = -1``): every directed edge ``s -> t`` (``s != t``) becomes a point at
``x_t`` with orientation ``(x_s - x_t) / |x_s - x_t|``; outputs are averaged back onto the atoms.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from geomdl.ops import scatter


def lift_to_grid(scalars: torch.Tensor | None, vectors: torch.Tensor | None, grid: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """``scalars`` ``[N, Cs]``, ``vectors`` ``[N, Cv, D]``, ``grid`` ``[O, D]`` -> ``[N, O, Cs + Cv]``.

    ``f(o) = s`` for scalars, ``f(o) = v . o`` for vectors; either may be None. With both None the
    signal is ones ``[num_nodes, O, 1]`` (``num_nodes = N``).
    """
    parts = []
    if scalars is not None:
        parts.append(scalars[:, None, :].expand(num_nodes, grid.shape[0], scalars.shape[1]))
    if vectors is not None:
        parts.append(torch.einsum("ncd,od->noc", vectors, grid))
    if not parts:
        return grid.new_ones(num_nodes, grid.shape[0], 1)
    return torch.cat(parts, dim=-1)


def read_out_grid(f: torch.Tensor, grid: torch.Tensor, num_scalars: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``f`` ``[N, O, S + V]`` -> scalars ``[N, S]`` (mean over ``o``), vectors ``[N, V, D]`` (``(1/O) sum_o f(o) o``).

    ``grid [O, D]`` is the grid ``f`` lives on; the first ``num_scalars = S`` channels are read as scalars.
    """
    scalars = f[..., :num_scalars].mean(dim=1)
    vectors = torch.einsum("nov,od->nvd", f[..., num_scalars:], grid) / grid.shape[0]
    return scalars, vectors


def lift_oriented(scalars: torch.Tensor | None, vectors: torch.Tensor | None, ori: torch.Tensor) -> torch.Tensor:
    """Point-cloud mode: ``[scalars, vectors . o_i]``, shape ``[N, Cs + Cv]`` (ones ``[N, 1]`` if both absent)."""
    parts = []
    if scalars is not None:
        parts.append(scalars)
    if vectors is not None:
        parts.append(torch.einsum("ncd,nd->nc", vectors, ori))
    if not parts:
        return ori.new_ones(ori.shape[0], 1)
    return torch.cat(parts, dim=-1)


def read_out_oriented(f: torch.Tensor, ori: torch.Tensor, num_scalars: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``f`` ``[N, S + V]`` -> scalars ``[N, S]``, vectors ``f[:, S:, None] * o_i`` ``[N, V, D]``."""
    return f[:, :num_scalars], f[:, num_scalars:, None] * ori[:, None, :]


class LiftedGraph(NamedTuple):
    """Directed edges of a base graph turned into oriented points (see :func:`lift_graph`)."""

    base: torch.Tensor        # [L] base node of each lifted point (the edge's target)
    ori: torch.Tensor         # [L, D] unit orientation (x_source - x_target) / |.|
    edge_index: torch.Tensor  # [2, E_L] lifted edges (src, dst)


def lift_graph(pos: torch.Tensor, edge_index: torch.Tensor) -> LiftedGraph:
    """Lift the directed edges of a graph to oriented points and connect them.

    Each edge ``s -> t`` with ``s != t`` becomes lifted point ``a`` at ``x_t`` with orientation
    ``(x_s - x_t)/|x_s - x_t|``. Lifted ``a`` (base ``t_a``) receives from lifted ``b`` (base ``t_b``)
    iff ``t_b -> t_a`` is a base edge or ``t_a = t_b`` (self loops added): all orientations at a
    neighbouring atom talk to all orientations at the receiving atom (about ``E^2 / N`` edges).
    Atoms without incoming edges have no lifted points. Coincident atoms (``x_s = x_t``) raise.

    ``pos [N, D]`` float, ``edge_index [2, E]`` int64 (row 0 source ``s``, row 1 target ``t``) ->
    :class:`LiftedGraph` with ``base [L]``, ``ori [L, D]``, ``edge_index [2, E_L]`` (``L`` = edges with ``s != t``).

    Raises ``ValueError`` when two connected atoms coincide.
    """
    n = pos.shape[0]
    src, dst = edge_index[0], edge_index[1]
    keep = src != dst
    src, dst = src[keep], dst[keep]
    order = torch.argsort(dst * n + src)  # group lifted points by base node
    src, dst = src[order], dst[order]
    rel = pos[src] - pos[dst]
    length = rel.norm(dim=-1, keepdim=True)
    if bool((length == 0).any()):
        raise ValueError("pos: two connected atoms coincide; their edge has no orientation")
    ori = rel / length
    count = torch.bincount(dst, minlength=n)
    ptr = torch.cumsum(count, 0) - count
    # base edges with self loops: u -> v
    loops = torch.arange(n, device=pos.device)
    u = torch.cat([src, loops])
    v = torch.cat([dst, loops])
    pairs = count[u] * count[v]
    total = int(pairs.sum())
    eid = torch.repeat_interleave(torch.arange(u.numel(), device=pos.device), pairs)
    offset = torch.arange(total, device=pos.device) - (torch.cumsum(pairs, 0) - pairs)[eid]
    cv = count[v][eid]
    lifted_src = ptr[u][eid] + torch.div(offset, cv, rounding_mode="floor")
    lifted_dst = ptr[v][eid] + offset % cv
    return LiftedGraph(dst, ori, torch.stack([lifted_src, lifted_dst]))


def pool_to_base(values: torch.Tensor, base: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """Mean of lifted values ``[L, ...]`` over the lifted points of each base node -> ``[N, ...]``."""
    return scatter(values, base, dim=0, dim_size=num_nodes, reduce="mean")
