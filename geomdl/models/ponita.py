"""PONITA models for the training engine (``model(batch)`` on a ``torch_geometric`` batch).

* ``ponita`` (:class:`PonitaGraph`): graph-level scalars ``[B, out_channels]`` (e.g. QM9 properties)
  from one-hot atom types (``batch.z``) and/or node features ``batch.x``; any mode of
  :class:`geomdl.nn.ponita.Ponita`.
* ``ponita_energy`` (:class:`PonitaEnergy`): energies ``[B]`` of a :class:`~geomdl.nn.ponita.PonitaPotential`;
  the energy/force task takes ``-dE/dpos`` itself.
"""
from __future__ import annotations

import torch
from torch import nn

from geomdl.nn.ponita import Ponita, PonitaPotential
from geomdl.nn.ponita.potential import check_type_map, one_hot


class PonitaGraph(nn.Module):
    """Graph-level regression with PONITA.

    Args:
        out_channels: number of targets.
        atomic_numbers: elements for a one-hot encoding of ``batch.z`` (``None``: no ``z`` input).
        in_channels: width of ``batch.x`` (0: not used).
        **kwargs: :class:`~geomdl.nn.ponita.Ponita` options (``hidden``, ``layers``, ``num_ori``, ``radius``, ...).
    """

    def __init__(self, out_channels: int = 1, atomic_numbers=(1, 6, 7, 8, 9), in_channels: int = 0, **kwargs):
        super().__init__()
        # one one-hot column per element (a repeated element would get a dead column and a type_map that no longer
        # matches atomic_numbers, so that the model could not reload its own state_dict)
        self.atomic_numbers = sorted({int(z) for z in atomic_numbers}) if atomic_numbers else []
        if self.atomic_numbers and (self.atomic_numbers[0] < 1 or self.atomic_numbers[-1] > 118):
            raise ValueError(f"atomic_numbers must be elements in 1..118 (or None), got {atomic_numbers!r}")
        type_map = torch.full((119,), -1, dtype=torch.long)
        if self.atomic_numbers:
            type_map[torch.tensor(self.atomic_numbers)] = torch.arange(len(self.atomic_numbers))
        self.register_buffer("type_map", type_map)
        self.in_channels = in_channels
        self.net = Ponita(len(self.atomic_numbers) + in_channels, out_scalars=out_channels, task_level="graph", **kwargs)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        check_type_map(self, state_dict, prefix, error_msgs)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)

    def forward(self, batch):
        """``batch``: a PyG batch with ``pos [N, 3]``, ``batch [N]``, ``z [N]`` (when ``atomic_numbers``) and
        ``x [N, in_channels]`` (when ``in_channels > 0``) -> scalars ``[B, out_channels]``. A single ``Data`` (no
        ``batch`` vector, no ``num_graphs``) is one graph: ``[1, out_channels]``.

        Raises ``ValueError`` for an element of ``batch.z`` outside ``atomic_numbers`` (eager mode).
        """
        parts = []
        if self.atomic_numbers:
            z = batch.z.long()
            if torch.compiler.is_compiling():  # value checks are eager only
                t = self.type_map[z]
            else:
                # clamped lookup, then one check: a negative z would index type_map from its end (z = -118 read
                # as hydrogen), one above 118 past it
                t = self.type_map[z.clamp(0, 118)]
                if bool(((t < 0) | (z < 0) | (z > 118)).any()):
                    raise ValueError(f"batch.z: elements outside {self.atomic_numbers}")
            parts.append(one_hot(t, len(self.atomic_numbers), batch.pos.dtype))  # t checked above
        if self.in_channels:
            parts.append(batch.x.to(batch.pos.dtype))
        x = torch.cat(parts, -1) if parts else None  # no atom types and no features: geometry only
        scalars, _ = self.net(batch.pos, x, batch=batch.batch, num_graphs=_num_graphs(batch))
        return scalars


class PonitaEnergy(PonitaPotential):
    """:class:`~geomdl.nn.ponita.PonitaPotential` called as ``model(batch) -> energy [B]``.

    Args:
        atomic_numbers: the elements (default ``(1, 6, 7, 8)``).
        energy_shifts: optional per-element energy shifts, one per element of ``atomic_numbers`` (sorted).
        energy_scale: optional scale of the network's energy (default 1).
        **kwargs: :class:`~geomdl.nn.ponita.Ponita` options.
    """

    def __init__(self, atomic_numbers=(1, 6, 7, 8), energy_shifts=None, energy_scale: float | None = None, **kwargs):
        super().__init__(atomic_numbers, **kwargs)
        if energy_shifts is not None:
            if len(energy_shifts) != len(self.atomic_numbers):
                raise ValueError(f"energy_shifts must have one value per element of {self.atomic_numbers}, got {len(energy_shifts)}")
            self.energy_shift.copy_(torch.tensor(energy_shifts, dtype=torch.float64))
        if energy_scale is not None:
            self.energy_scale.fill_(float(energy_scale))

    def forward(self, batch, *args, **kwargs):
        """``model(batch)`` with a PyG batch (``z [N]``, ``pos [N, 3]``, ``batch [N]``; or a single ``Data``: one
        graph) -> energies ``[B]`` float64;
        ``model(numbers, pos, ...)`` -> the dict of :meth:`PonitaPotential.forward`."""
        if args or kwargs or isinstance(batch, torch.Tensor):  # the PonitaPotential signature
            return super().forward(batch, *args, **kwargs)
        return self.energy(batch.z.long(), batch.pos, batch.batch, _num_graphs(batch))


def _num_graphs(data) -> int | None:
    """A PyG ``Batch``'s ``num_graphs`` (it counts trailing graphs without nodes); ``None`` for a single ``Data``,
    which has no such attribute (its graph count then comes from its batch vector: one graph without one)."""
    return getattr(data, "num_graphs", None)
