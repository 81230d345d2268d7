"""Shared plumbing of the molecular models (EGNN, PaiNN, NequIP-style): inputs, graph, readout.

Every molecular model maps atoms to per-atom outputs ``y_i [N, out_channels]`` and reads out

.. math::  Y_b = \\sum_{i \\in b} \\big(\\sigma\\, y_i + \\mu + a_{z_i}\\big)\\qquad(\\texttt{readout="sum"})

with ``mu``/``sigma`` (``target_mean``/``target_std``, per atom) and optional per-element
reference values ``a_z`` (``atomref``). ``task="node"`` returns ``sigma y_i + mu + a_{z_i}``.

Calling conventions (both work)::

    model(z, pos, batch)           # z [N] int atomic numbers (or x [N, in_channels] float), pos [N, 3]
    model(data)                    # a torch_geometric Data/Batch with z (or x), pos, batch

Outputs: ``[B, out_channels]`` (graph task) or ``[N, out_channels]`` (node task).
:meth:`MolecularModel.energy_and_forces` returns ``(E [B], F = -dE/dpos [N, 3])``.
"""
from __future__ import annotations

import torch
from torch import nn

from geomdl import ops
from geomdl.nn.message_passing import (check_batch_vector_and_count, check_dtypes, check_positions, data_num_graphs, is_data,
                                       num_graphs, unpack)
from geomdl.ops._validation import check_positive_real, check_real
from geomdl.ops._validation import host_list
from geomdl.utils.constants import functorch_active
from geomdl.utils.devices import Float64Buffers

TASKS = ("graph", "node")
READOUTS = ("sum", "mean")


def full_graph(batch: torch.Tensor) -> torch.Tensor:
    """All ordered pairs ``j != i`` within each graph of a sorted ``batch`` -> ``edge_index [2, E]``.

    Edges are ordered by target ``i``, then source ``j`` (ascending). Built with a constant number of tensor
    operations (no Python loop over the graphs)."""
    n = batch.shape[0]
    if n == 0:
        return batch.new_zeros((2, 0))
    counts = torch.bincount(batch)
    first = (counts.cumsum(0) - counts)[batch]  # index of the first node of each node's graph  [N]
    deg = counts[batch] - 1  # edges into each node (0 in a one-node graph)  [N]
    dst = torch.repeat_interleave(torch.arange(n, device=batch.device), deg)  # [E]
    # no branch on E == 0 (one-node graphs only): the steps below give [2, 0] then, and a test of the
    # data-dependent E would stop torch.compile(fullgraph=True) and torch.export
    k = torch.arange(dst.shape[0], device=batch.device) - (deg.cumsum(0) - deg)[dst]  # position in dst's run
    local = dst - first[dst]  # the target's index within its graph
    src = first[dst] + k + (k >= local).long()  # the k-th node of the graph other than the target
    return torch.stack([src, dst])


def shared_edge_features(layer, cache: dict, pos: torch.Tensor, edge_index: torch.Tensor):
    """``layer.edge_features(pos, edge_index)``, computed once per distinct ``layer.edge_key()`` in ``cache``
    (a dict living for one forward): the layers of a model that agree on them share one computation."""
    key = layer.edge_key()
    if key not in cache:
        cache[key] = layer.edge_features(pos, edge_index)
    return cache[key]


class MolecularModel(Float64Buffers):
    """Base class: validates inputs, builds the graph, embeds atoms, reads out.

    Subclasses implement ``node_outputs(h [N, C], pos [N, 3], edge_index) -> [N, out_channels]``.

    ``target_mean``, ``target_std`` and ``atomref`` are float64 buffers whatever the default dtype or a later cast
    (:class:`~geomdl.utils.devices.Float64Buffers`), used in the outputs' dtype: a model built in float32 and moved
    with ``.double()`` reads out with the exact values, not float32-rounded ones.

    Args (shared by all molecular models):
        out_channels: outputs per graph/atom (default 1: an energy).
        hidden_channels: width ``C`` of the atom embedding.
        num_elements: atomic numbers ``z`` must be in ``[0, num_elements)`` (default 100); ignored when
            ``in_channels`` is given.
        in_channels: if given, the first input is a float feature matrix ``x [N, in_channels]``
            (linearly embedded) instead of atomic numbers.
        cutoff: radius of the neighbour graph (default 5.0, units of ``pos``); ``None``: all pairs
            within each molecule.
        max_num_neighbors: nearest neighbours kept per atom (default 32).
        task: ``"graph"`` (default) or ``"node"``.
        readout: ``"sum"`` (default, extensive targets like energies) or ``"mean"``.
        target_mean, target_std: per-atom output shift and scale (defaults 0 and 1).
        atomref: optional per-element reference values ``[num_elements]`` added per atom (needs ``z``).
    """

    def __init__(self, out_channels: int = 1, hidden_channels: int = 128, num_elements: int = 100, in_channels: int | None = None,
                 cutoff: float | None = 5.0, max_num_neighbors: int = 32, task: str = "graph", readout: str = "sum",
                 target_mean: float = 0.0, target_std: float = 1.0, atomref=None):
        super().__init__()
        for name, value in (("out_channels", out_channels), ("hidden_channels", hidden_channels), ("num_elements", num_elements),
                            ("max_num_neighbors", max_num_neighbors)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if in_channels is not None and (isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1):
            raise ValueError(f"in_channels must be None (atomic numbers) or an int >= 1, got {in_channels!r}")
        if cutoff is not None:  # None: all pairs
            cutoff = check_positive_real(cutoff, "cutoff")
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        target_mean = check_real(target_mean, "target_mean")
        target_std = check_real(target_std, "target_std", minimum=0, open_minimum=True)
        self.out_channels, self.hidden_channels, self.num_elements, self.in_channels = out_channels, hidden_channels, num_elements, in_channels
        self.cutoff = None if cutoff is None else float(cutoff)
        self.max_num_neighbors, self.task, self.readout = max_num_neighbors, task, readout
        self.embedding = nn.Linear(in_channels, hidden_channels) if in_channels else nn.Embedding(num_elements, hidden_channels)
        self.register_buffer("target_mean", torch.tensor(float(target_mean), dtype=torch.float64))
        self.register_buffer("target_std", torch.tensor(float(target_std), dtype=torch.float64))
        if atomref is not None:
            if in_channels:
                raise ValueError("atomref needs atomic numbers z; it cannot be used with in_channels")
            ref = torch.as_tensor(atomref, dtype=torch.float64)
            if ref.dim() not in (1, 2) or ref.shape[0] != num_elements or (ref.dim() == 2 and ref.shape[1] not in (1, out_channels)):
                raise ValueError(f"atomref must have shape [{num_elements}] or [{num_elements}, {out_channels}], got {tuple(ref.shape)}")
            if not torch.isfinite(ref).all():  # else every output of a molecule with such an element is NaN/inf
                bad = torch.nonzero(~torch.isfinite(ref).reshape(num_elements, -1).all(1)).flatten().tolist()
                raise ValueError(f"atomref must be finite, got NaN or infinite values for the elements {bad}")
            ref = ref.reshape(num_elements, -1)
            self.register_buffer("atomref", ref)
        else:
            self.atomref = None

    def float64_buffers(self) -> list[str]:
        return ["target_mean", "target_std", "atomref"]

    # ------------------------------------------------------------------ inputs
    def _inputs(self, z, pos, batch):
        data = None
        if is_data(z):
            data = z
            zz, xx, pos, batch = unpack(data, "z", "x", "pos", "batch")
            z = xx if self.in_channels else zz
            if z is None:
                raise ValueError(f"data must carry {'x' if self.in_channels else 'z'} (atomic numbers z, or features x with in_channels)")
        if not isinstance(z, torch.Tensor):
            raise TypeError(f"z must be a torch.Tensor (or pass a torch_geometric Data), got {type(z).__name__}")
        if pos is None:
            raise ValueError("pos [N, 3] is required")
        pos = check_positions(pos, "pos", z.shape[0])
        check_dtypes(self.embedding.weight, pos=pos)  # x (in_channels) is cast to pos's dtype in forward
        if self.in_channels:
            if not z.is_floating_point() or z.dim() != 2 or z.shape[1] != self.in_channels:
                raise ValueError(f"x must be a float tensor [N, {self.in_channels}] (in_channels={self.in_channels}), got {z.dtype} {tuple(z.shape)}")
        else:
            if z.is_floating_point() or z.is_complex() or z.dtype == torch.bool or z.dim() != 1:
                raise TypeError(f"z must be an int tensor [N] of atomic numbers, got {z.dtype} {tuple(z.shape)}")
            # a value check: skipped inside a compiled graph (the embedding still rejects out-of-range z there)
            if not torch.compiler.is_compiling() and z.numel():
                lo, hi = host_list(torch.stack(torch.aminmax(z)))  # one device->host read
                if lo < 0 or hi >= self.num_elements:
                    raise ValueError(f"z must lie in [0, {self.num_elements}) (num_elements), got range [{lo}, {hi}]")
            if z.dtype not in (torch.int32, torch.int64):  # uint8/int8/int16: nn.Embedding takes int32/int64 only
                z = z.long()
        batch, count = check_batch_vector_and_count(batch, z.shape[0], pos.device)
        if count is not None and data_num_graphs(data) is not None:
            count = max(count, data_num_graphs(data))  # a Batch whose last graphs have no nodes: one row each still
        return z, pos, batch, count

    def build_graph(self, pos: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        if self.cutoff is None:
            return full_graph(batch)
        return ops.radius_graph(pos.detach(), self.cutoff, batch, max_num_neighbors=self.max_num_neighbors)

    # ------------------------------------------------------------------ forward
    def node_outputs(self, h, pos, edge_index):  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, z, pos: torch.Tensor | None = None, batch: torch.Tensor | None = None) -> torch.Tensor:
        return self._forward(*self._inputs(z, pos, batch))

    def _forward(self, z, pos, batch, count) -> torch.Tensor:
        """:meth:`forward` on checked inputs (``count``: the number of graphs, from the check of ``batch``)."""
        edge_index = self.build_graph(pos, batch)
        h = self.embedding(z.to(pos.dtype) if self.in_channels else z)
        y = self.node_outputs(h, pos, edge_index)
        y = y * self.target_std.to(y.dtype) + self.target_mean.to(y.dtype)
        if self.atomref is not None:
            y = y + self.atomref.to(y.dtype).index_select(0, z)
        if self.task == "node":
            return y
        return ops.scatter(y, batch, 0, num_graphs(batch) if count is None else count, self.readout)  # None: compiling

    def energy_and_forces(self, z, pos: torch.Tensor | None = None, batch: torch.Tensor | None = None, create_graph: bool | None = None):
        """``(E [B], F [N, 3])`` with ``F = -dE/dpos``; ``create_graph`` defaults to ``self.training``
        (so a force loss can be back-propagated). Works under ``torch.no_grad`` and ``torch.inference_mode``
        (e.g. a validation loop): the forces are computed with autograd locally re-enabled. Inside a
        ``torch.func`` transform they come from a nested ``torch.func.grad`` (always differentiable)."""
        if self.task != "graph" or self.out_channels != 1:
            raise ValueError("energy_and_forces needs task='graph' and out_channels=1")
        if torch.is_inference_mode_enabled():
            # enable_grad cannot undo inference mode: leave it, on normal copies of the inputs (inference
            # tensors cannot be saved for backward)
            with torch.inference_mode(False):
                copy = lambda t: t.clone() if isinstance(t, torch.Tensor) else t  # noqa: E731
                if is_data(z):
                    z = z.clone() if hasattr(z, "clone") else z  # a Data/Batch: clones its tensors
                    return self.energy_and_forces(z, None, None, create_graph)
                return self.energy_and_forces(copy(z), copy(pos), copy(batch), create_graph)
        with torch.enable_grad():
            return self._energy_and_forces(z, pos, batch, create_graph)

    def _energy_and_forces(self, z, pos, batch, create_graph):
        # inputs from a Data object are checked here, not a second time (nor a second device read) in forward;
        # a subclass with its own forward is still called through it
        direct = is_data(z) and type(self).forward is MolecularModel.forward
        if is_data(z):
            z, pos, batch, count = self._inputs(z, None, None)
        if pos is None:
            raise ValueError("pos [N, 3] is required")

        def energy_of(p):
            return (self._forward(z, p, batch, count) if direct else self.forward(z, p, batch))[:, 0]

        if not torch.compiler.is_compiling() and functorch_active():
            # inside torch.func (jacrev of the forces: the Hessian; jvp): a nested torch.func.grad, which
            # composes with the caller's transform (a detached leaf would cut it off: a zero Hessian)
            def total(p):
                e = energy_of(p)
                return e.sum(), e

            grad, (_, energy) = torch.func.grad_and_value(total, has_aux=True)(pos)
            return energy, -grad
        if not pos.requires_grad:
            pos = pos.detach().requires_grad_(True)
        energy = energy_of(pos)
        create = self.training if create_graph is None else bool(create_graph)
        (grad,) = torch.autograd.grad(energy.sum(), pos, create_graph=create)
        return energy, -grad

    def extra_repr(self) -> str:
        return f"cutoff={self.cutoff}, task={self.task!r}, readout={self.readout!r}"
