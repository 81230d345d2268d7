"""Graph construction used by the PONITA model: fully connected or radius graphs, with self loops."""
from __future__ import annotations

import warnings

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


def remove_self_loops(edge_index: torch.Tensor) -> torch.Tensor:
    """``edge_index`` ``[2, E]`` without its ``i -> i`` edges (``[2, E']``, order kept)."""
    return edge_index[:, edge_index[0] != edge_index[1]]


def add_self_loops(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """Remove existing self loops and append one ``i -> i`` per node (``[2, E' + N]``)."""
    loops = torch.arange(num_nodes, device=edge_index.device).repeat(2, 1)
    return torch.cat([remove_self_loops(edge_index), loops], dim=1)


def build_edges(pos: torch.Tensor, batch: torch.Tensor, radius: float | None, loop: bool,
                max_num_neighbors: int) -> torch.Tensor:
    """Radius graph (``radius`` given) or fully connected graph (``radius=None``) per cloud.

    The radius graph keeps the nearest ``max_num_neighbors`` neighbours of each node; when a node reaches
    the cap, farther neighbours inside ``radius`` may have been dropped and a ``UserWarning`` says so (the
    lifted graph of the point-cloud mode has one node per edge, so dense molecules reach a cap of 1000 at
    about 32 atoms within the radius). The check runs in eager mode only, not under ``torch.compile``.

    ``pos [N, D]`` float (detached for the search), ``batch [N]`` sorted cloud ids, ``loop``: include
    ``i -> i`` edges -> ``edge_index [2, E]`` (row 0 source, row 1 target).
    """
    if radius is None:
        return fully_connected_edges(batch, loop)
    edge_index = radius_graph(pos.detach(), radius, batch, max_num_neighbors=max_num_neighbors, loop=loop)
    # the check reads data-dependent sizes: eager only (under torch.compile the graph stays whole, unchecked)
    if not torch.compiler.is_compiling() and edge_index.shape[1] >= max_num_neighbors:
        degree = torch.bincount(edge_index[1], minlength=pos.shape[0])
        if bool((degree >= max_num_neighbors).any()):  # constant text: shown once per process, not per batch
            warnings.warn(f"PONITA radius graph: some nodes reached max_num_neighbors="
                          f"{max_num_neighbors}; neighbours beyond the nearest {max_num_neighbors} inside radius "
                          f"{radius} may have been dropped (raise max_num_neighbors to keep them)", stacklevel=2)
    return edge_index
