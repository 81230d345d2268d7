"""Input handling shared by the point-cloud models (PointNet, PointNet++, DGCNN).

Call forms: ``model(pos, x=None, batch=None)`` or ``model(data)`` with ``data.pos``, optional
``data.x`` and ``data.batch`` (a torch_geometric ``Data``/``Batch``). ``pos [N, pos_dim]`` may be
any coordinates (e.g. TinvNN's invariant embedding); ``x [N, in_channels]`` extra point features.
"""
from __future__ import annotations

import torch

from geomdl.nn.message_passing import (check_batch_vector, check_dtypes, check_features, check_positions, data_num_graphs, is_data,
                                       unpack)
from geomdl.ops._validation import num_batches

TASKS = ("graph", "node")


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"task must be 'graph' (one output per cloud) or 'node' (one per point), got {task!r}")
    return task


def check_int(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


def check_widths(name: str, values, empty: bool = True) -> list[int]:
    """``values`` as a list of layer widths (ints >= 1; at least one unless ``empty``), else ValueError."""
    if isinstance(values, (int, str)) or not hasattr(values, "__iter__"):
        raise ValueError(f"{name} must be a sequence of ints >= 1, got {values!r}")
    values = list(values)
    if (not empty and not values) or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        need = "a non-empty sequence" if not empty else "a sequence"
        raise ValueError(f"{name} must be {need} of ints >= 1, got {values!r}")
    return values


def point_inputs(model, pos, x, batch):
    """Validated ``(pos, x, batch, num_clouds)`` for ``model`` (which has ``in_channels`` and ``pos_dim``).

    ``num_clouds`` is the number of cloud ids in ``batch``, or a PyG ``Batch``'s ``num_graphs`` when larger (its
    last clouds may be empty: they still get one output row each)."""
    data_graphs = None
    if is_data(pos):
        data_graphs = data_num_graphs(pos)
        pos, x, batch = unpack(pos, "pos", "x", "batch")
        if pos is None:
            raise ValueError("data.pos is required")
    pos = check_positions(pos, "pos", dim=model.pos_dim)
    check_dtypes(next(model.parameters(), None), pos=pos)  # x is cast to pos's dtype below
    if model.in_channels:
        if x is None:
            raise ValueError(f"x [N, {model.in_channels}] is required (in_channels={model.in_channels})")
        x = check_features(x, "x", pos.shape[0], model.in_channels).to(pos.dtype)
    else:
        x = None  # features present in the data but not configured are ignored (in_channels=0)
    batch = check_batch_vector(batch, pos.shape[0], pos.device)
    count = num_clouds(batch)
    return pos, x, batch, count if data_graphs is None else max(count, data_graphs)


def num_clouds(batch: torch.Tensor) -> int:
    """Clouds in a sorted ``batch`` vector (0 when empty); see :func:`geomdl.ops._validation.num_batches`."""
    return num_batches(batch)


def dropout_head(in_channels: int, hidden_channels, out_channels: int, act: str, dropout: float) -> torch.nn.Sequential:
    """``[Linear -> act -> Dropout] * len(hidden_channels) -> Linear`` (the classifier/segmentation head)."""
    from geomdl.nn.mlp import activation

    layers: list[torch.nn.Module] = []
    widths = [in_channels, *hidden_channels]
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [torch.nn.Linear(a, b), activation(act), torch.nn.Dropout(dropout)]
    layers.append(torch.nn.Linear(widths[-1], out_channels))
    return torch.nn.Sequential(*layers)
