"""Graph construction used by the PONITA model: fully connected or radius graphs, with self loops."""
from __future__ import annotations

import torch

from geomdl.ops import radius_graph


def fully_connected_edges(batch: torch.Tensor, loop: bool = True) -> torch.Tensor:
    """All ordered pairs ``j -> i`` inside each cloud of the sorted ``batch`` ``[N]``; ``[2, E]``
    sorted by target then source (``E = sum_b n_b^2``, minus ``N`` without loops)."""
    n = batch.numel()
    counts = torch.bincount(batch)
    ptr = torch.cumsum(counts, 0) - counts
    per_node = counts[batch]  # neighbours of each target, loops included
    dst = torch.repeat_interleave(torch.arange(n, device=batch.device), per_node)
    first = torch.cumsum(per_node, 0) - per_node
    src = ptr[batch][dst] + torch.arange(dst.numel(), device=batch.device) - first[dst]
    edge_index = torch.stack([src, dst])
    if not loop:
        edge_index = edge_index[:, src != dst]
    return edge_index


def add_self_loops(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """Remove existing self loops and append one ``i -> i`` per node (``[2, E' + N]``)."""
    keep = edge_index[0] != edge_index[1]
    loops = torch.arange(num_nodes, device=edge_index.device).repeat(2, 1)
    return torch.cat([edge_index[:, keep], loops], dim=1)


def build_edges(pos: torch.Tensor, batch: torch.Tensor, radius: float | None, loop: bool,
                max_num_neighbors: int) -> torch.Tensor:
    """Radius graph (``radius`` given) or fully connected graph (``radius=None``) per cloud."""
    if radius is None:
        return fully_connected_edges(batch, loop)
    return radius_graph(pos.detach(), radius, batch, max_num_neighbors=max_num_neighbors, loop=loop)
