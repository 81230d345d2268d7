"""A short, explicit message-passing base: gather -> message -> ``geomdl.ops.scatter`` -> update.

.. math::  x_i' = \\gamma\\Big(x_i,\\ \\bigoplus_{j \\in \\mathcal{N}(i)} \\phi(x_i, x_j, e_{ji})\\Big)

Conventions (PyG's): ``edge_index [2, E]`` int64, row 0 = source ``j`` (neighbour), row 1 = target
``i`` (centre); messages flow ``j -> i``. Keyword inputs of :meth:`MessagePassing.propagate` ending in
``_j`` are gathered at the sources, those ending in ``_i`` at the targets; all others are passed to
:meth:`MessagePassing.message` unchanged. No signature introspection: what is gathered is what the
caller names.

Interoperability with PyG: layers take plain tensors (``x, pos, edge_index, batch``) as PyG's do;
:func:`unpack` reads them from a ``torch_geometric.data.Data`` / ``Batch``.
"""
from __future__ import annotations

import numbers

import torch
from torch import nn

from geomdl import ops
from geomdl.ops._validation import check_batch_and_count, host_list, num_batches

AGGREGATIONS = ("sum", "mean", "max", "min")


def check_edge_index(edge_index, num_src: int | None = None, num_dst: int | None = None) -> torch.Tensor:
    """Validate ``edge_index [2, E]`` (integer, non-negative, within the node counts); returns int64.

    Under ``torch.compile`` only the shape and dtype are checked (the entries are data the compiler
    cannot branch on); the compiled scatter kernels still reject out-of-range targets.
    """
    if not isinstance(edge_index, torch.Tensor):
        raise TypeError(f"edge_index must be a torch.Tensor [2, E], got {type(edge_index).__name__}")
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must have shape [2, E], got {tuple(edge_index.shape)}")
    if edge_index.dtype.is_floating_point or edge_index.dtype == torch.bool or edge_index.is_complex():
        raise TypeError(f"edge_index must have an integer dtype, got {edge_index.dtype}")
    edge_index = edge_index.long()
    if not torch.compiler.is_compiling() and edge_index.numel():
        # one device->host read for the three values (min, largest source, largest target)
        lo, *his = host_list(torch.stack([edge_index.min(), *edge_index.amax(1).unbind()]))
        if lo < 0:
            raise ValueError(f"edge_index has a negative entry ({lo})")
        for row, n, what in ((0, num_src, "source"), (1, num_dst, "target")):
            if n is not None:
                hi = his[row]
                if hi >= n:
                    raise ValueError(f"edge_index[{row}] ({what}) has entry {hi}, but there are only {n} {what} nodes")
    return edge_index


def check_features(x, name: str, num_nodes: int | None = None, channels: int | None = None, trailing: tuple = ()) -> torch.Tensor:
    """Validate a floating feature tensor ``[N, C, *trailing]``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {x.dtype}")
    shape = ("N" if num_nodes is None else num_nodes, "C" if channels is None else channels) + tuple(trailing)
    expect_dim = 2 + len(trailing)
    if (x.dim() != expect_dim or (num_nodes is not None and x.shape[0] != num_nodes)
            or (channels is not None and x.shape[1] != channels) or tuple(x.shape[2:]) != tuple(trailing)):
        raise ValueError(f"{name} must have shape [{', '.join(map(str, shape))}], got {tuple(x.shape)}")
    return x


def check_positions(pos, name: str = "pos", num_nodes: int | None = None, dim: int | None = 3) -> torch.Tensor:
    """Validate positions ``[N, D]`` (float)."""
    if not isinstance(pos, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor [N, {dim or 'D'}], got {type(pos).__name__}")
    if not pos.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {pos.dtype}")
    if pos.dim() != 2 or (dim is not None and pos.shape[1] != dim) or (num_nodes is not None and pos.shape[0] != num_nodes):
        raise ValueError(f"{name} must have shape [{num_nodes if num_nodes is not None else 'N'}, {dim or 'D'}], got {tuple(pos.shape)}")
    return pos


def check_optional_features(t, name: str, rows: int | None, channels: int, option: str) -> None:
    """``t [rows, channels]`` when the layer was built with ``option=channels > 0`` (then required), else ``None``."""
    if channels:
        if t is None:
            raise ValueError(f"{name} is required: this layer has {option}={channels}")
        check_features(t, name, rows, channels)
    elif t is not None:
        raise ValueError(f"{name} given but the layer was built with {option}=0")


def check_dtypes(weight: torch.Tensor | None, **tensors) -> None:
    """Floating inputs (``name=tensor``, ``None`` skipped) share one dtype, that of the layer's ``weight``.

    Raises a ``TypeError`` naming the arguments instead of the opaque ``mat1 and mat2 must have the same
    dtype`` of a matmul deep inside the layer (convert the inputs, or the module with ``.double()``/``.float()``).
    Skipped under autocast, where the matmuls cast their operands themselves.
    """
    items = [(name, t) for name, t in tensors.items() if t is not None]
    if not items or torch.is_autocast_enabled(items[0][1].device.type):
        return  # under autocast, activations (bf16/fp16) and float32 parameters legitimately differ
    first, ref = items[0]
    for name, t in items[1:]:
        if t.dtype != ref.dtype:
            raise TypeError(f"{name} has dtype {t.dtype} but {first} has dtype {ref.dtype}: the inputs must share one floating dtype")
    if weight is not None and weight.dtype != ref.dtype:
        raise TypeError(f"{first} has dtype {ref.dtype} but the layer's parameters are {weight.dtype}: convert the inputs, "
                        f"or the module with module.to({ref.dtype})")


def check_batch_vector(batch, num_nodes: int, device, name: str = "batch") -> torch.Tensor:
    """``batch [N]`` int (sorted graph ids); ``None`` -> all zeros. See :func:`check_batch_vector_and_count`."""
    return check_batch_and_count(batch, name, num_nodes, device)[0]


def check_batch_vector_and_count(batch, num_nodes: int, device, name: str = "batch") -> tuple[torch.Tensor, int | None]:
    """:func:`check_batch_vector` and the number of graphs (:func:`num_graphs`), read from the device together
    with the checked values: one device->host synchronisation (none for ``batch=None``); the count is ``None``
    under ``torch.compile`` (use :func:`num_graphs` there). The layers' name for
    :func:`geomdl.ops._validation.check_batch_and_count` (one check, one set of messages, for ops and layers)."""
    return check_batch_and_count(batch, name, num_nodes, device)


def num_graphs(batch: torch.Tensor) -> int:
    """Graphs in a sorted ``batch`` vector (0 when empty); see :func:`geomdl.ops._validation.num_batches`."""
    return num_batches(batch)


def unpack(data, *names: str):
    """Read attributes from a PyG ``Data``/``Batch`` (or any object/dict): ``unpack(data, "x", "pos")``.

    Missing attributes give ``None``.
    """
    if isinstance(data, dict):
        return tuple(data.get(n) for n in names)
    return tuple(getattr(data, n, None) for n in names)


def data_num_graphs(data) -> int | None:
    """A PyG ``Batch``'s ``num_graphs``, which counts trailing graphs without nodes (no batch id names them, so
    a count read from the batch vector misses their output rows); ``None`` for other inputs and while
    compiling."""
    n = getattr(data, "num_graphs", None)
    return n if isinstance(n, int) and not isinstance(n, bool) and not torch.compiler.is_compiling() else None


def is_data(obj) -> bool:
    """True for a PyG ``Data``/``Batch`` (anything with a ``pos`` or ``x`` attribute that is no tensor)."""
    return not isinstance(obj, torch.Tensor) and (hasattr(obj, "pos") or hasattr(obj, "x"))


def _check_rows(inputs: dict, num_src: int, num_dst: int) -> None:
    """Every ``*_j`` input tensor has ``num_src`` rows and every ``*_i`` one ``num_dst`` (ValueError naming it):
    a ``size`` above an input's rows failed in the gather as a bare ``index out of range``, one below silently
    dropped the last nodes. Not checked while compiling (the counts may be symbolic)."""
    if torch.compiler.is_compiling():
        return
    for name, value in inputs.items():
        if isinstance(value, torch.Tensor) and name.endswith(("_j", "_i")):
            n, what = (num_src, "source") if name.endswith("_j") else (num_dst, "target")
            if value.dim() == 0 or value.shape[0] != n:
                raise ValueError(f"{name} must have {n} rows (one per {what} node), got shape {tuple(value.shape)}")


class MessagePassing(nn.Module):
    """Base class: ``propagate`` gathers ``*_j``/``*_i`` inputs along ``edge_index``, calls
    :meth:`message` (per edge), reduces with ``geomdl.ops.scatter`` at the targets and calls
    :meth:`update`.

    Args:
        aggr: ``"sum"`` (default), ``"mean"``, ``"max"`` or ``"min"``.

    Subclasses implement ``message(**gathered) -> [E, ...]`` and optionally ``update(out) -> out``.
    """

    def __init__(self, aggr: str = "sum"):
        super().__init__()
        if aggr not in AGGREGATIONS:
            raise ValueError(f"aggr must be one of {AGGREGATIONS}, got {aggr!r}")
        self.aggr = aggr

    def propagate(self, edge_index: torch.Tensor, size: int | tuple[int, int] | None = None, **inputs) -> torch.Tensor:
        """Run one round of message passing.

        Args:
            edge_index: ``[2, E]`` (row 0 source ``j``, row 1 target ``i``).
            size: number of nodes, or ``(num_sources, num_targets)`` for bipartite graphs; default:
                inferred from the first ``*_j``/``*_i`` input.
            **inputs: ``name_j=tensor [N_src, ...]`` gathered by source, ``name_i=tensor [N_dst, ...]``
                gathered by target, anything else passed through.

        Returns:
            ``[N_dst, ...]``: ``update(aggregate(message(...)))``.
        """
        num_src, num_dst = self._size(size, inputs)
        _check_rows(inputs, num_src, num_dst)
        return self._propagate_checked(check_edge_index(edge_index, num_src, num_dst), num_dst, inputs)

    def _propagate_checked(self, edge_index: torch.Tensor, num_dst: int, inputs: dict) -> torch.Tensor:
        """:meth:`propagate` for an ``edge_index`` the caller has already passed through :func:`check_edge_index`
        with these node counts (a layer that checks it itself: no second pass over it, no second device sync)."""
        src, dst = edge_index[0], edge_index[1]
        gathered = {}
        for name, value in inputs.items():
            if name.endswith("_j") and isinstance(value, torch.Tensor):
                gathered[name] = value.index_select(0, src)
            elif name.endswith("_i") and isinstance(value, torch.Tensor):
                gathered[name] = value.index_select(0, dst)
            else:
                gathered[name] = value
        messages = self.message(**gathered)
        return self.update(self.aggregate(messages, dst, num_dst))

    def message(self, **gathered) -> torch.Tensor:  # pragma: no cover - abstract
        """Per-edge messages ``[E, ...]`` from the gathered ``*_j [E, ...]`` / ``*_i [E, ...]`` inputs
        and the passed-through ones; subclasses must implement it (the base raises ``NotImplementedError``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement message()")

    def aggregate(self, messages: torch.Tensor, index: torch.Tensor, num_nodes: int) -> torch.Tensor:
        """``scatter(messages, index, dim=0, dim_size=num_nodes, reduce=self.aggr)`` (0 for no edges).

        ``messages [E, ...]``, ``index [E]`` int (the targets) -> ``[num_nodes, ...]``.
        """
        return ops.scatter(messages, index, 0, num_nodes, self.aggr)

    def update(self, out: torch.Tensor) -> torch.Tensor:
        """Post-aggregation hook, ``out [N_dst, ...] -> [N_dst, ...]``; the identity unless overridden."""
        return out

    @staticmethod
    def _size(size, inputs):
        if isinstance(size, torch.SymInt):  # a node count traced by torch.export
            return size, size
        if isinstance(size, numbers.Integral) and not isinstance(size, bool):
            if size < 0:
                raise ValueError(f"size must be an int >= 0 or a pair (num_sources, num_targets), got {size!r}")
            return int(size), int(size)
        if isinstance(size, (tuple, list)):
            if len(size) != 2:
                raise ValueError(f"size must be an int or a pair (num_sources, num_targets), got {size!r}")
            for s in size:
                if isinstance(s, bool) or not isinstance(s, (numbers.Integral, torch.SymInt)) or (isinstance(s, numbers.Integral) and s < 0):
                    raise ValueError(f"size must be an int or a pair (num_sources, num_targets) of ints >= 0, got {size!r}")
            return tuple(s if isinstance(s, torch.SymInt) else int(s) for s in size)  # SymInt: under torch.export
        if size is not None:
            raise TypeError(f"size must be an int, a pair or None, got {type(size).__name__}")
        n_src = next((v.shape[0] for k, v in inputs.items() if k.endswith("_j") and isinstance(v, torch.Tensor)), None)
        n_dst = next((v.shape[0] for k, v in inputs.items() if k.endswith("_i") and isinstance(v, torch.Tensor)), None)
        if n_src is None and n_dst is None:
            raise ValueError("give size= when no *_i / *_j input fixes the number of nodes")
        return (n_src if n_src is not None else n_dst), (n_dst if n_dst is not None else n_src)

    def extra_repr(self) -> str:
        return f"aggr={self.aggr!r}"
