"""Energy + forces head: a graph-level PONITA energy with forces ``F = -dE/dx`` (autograd).

``E(graph) = scale * sum_i e_i + sum_i shift[Z_i]`` where ``e_i`` are PONITA's per-atom outputs on
one-hot atom types, ``shift`` are per-element reference energies (fitted on the training set by the
pipeline) and ``scale`` is a fixed target scale (e.g. the RMS of the training forces). Both are buffers,
saved in checkpoints.
"""
from __future__ import annotations

import torch
from torch import nn

from geomdl.nn.ponita.model import Ponita
from geomdl.ops._validation import host_list, num_batches
from geomdl.utils.constants import functorch_active
from geomdl.utils.devices import Float64Buffers


def one_hot(t: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """``one_hot(t, num_classes).to(dtype)`` for type indices already known to lie in ``[0, num_classes)``,
    without ``one_hot``'s own range check (two device->host reads). Inside a compiled graph, where the eager
    value checks are skipped, ``F.one_hot`` itself, which rejects the ``-1`` of an unknown element."""
    if torch.compiler.is_compiling():
        return nn.functional.one_hot(t, num_classes).to(dtype)
    return (t.unsqueeze(-1) == torch.arange(num_classes, device=t.device)).to(dtype)


def check_type_map(module: nn.Module, state_dict, prefix: str, error_msgs: list) -> None:
    """For ``_load_from_state_dict``: a ``type_map`` of other elements than ``module.atomic_numbers`` (same
    shape, so ``load_state_dict`` would take it silently and map atoms to the wrong one-hot types) is an error."""
    saved = state_dict.get(prefix + "type_map")
    # compared with atomic_numbers, not with the buffer: a failed load_state_dict still copies what fits
    if isinstance(saved, torch.Tensor) and saved.dim() == 1 and (
            torch.nonzero(saved.cpu() >= 0).flatten().tolist() != list(module.atomic_numbers)):
        elements = torch.nonzero(saved.cpu() >= 0).flatten().tolist()
        error_msgs.append(f"atomic_numbers: the state_dict is of a model for the elements {elements}, this one was built "
                          f"for {list(module.atomic_numbers)}; build it with atomic_numbers={elements}")


class PonitaPotential(Float64Buffers):
    """Interatomic potential on PONITA.

    Args:
        atomic_numbers: the elements the model knows (e.g. ``[1, 6, 7, 8]``).
        **ponita_kwargs: passed to :class:`Ponita` (``hidden``, ``layers``, ``num_ori``, ``radius``, ...);
            ``in_scalars``/``out_scalars``/``task_level`` are set here.

    The position (``num_ori=0``) and grid (``num_ori > 0``) modes give energies that are smooth at the cutoff;
    the lifted point-cloud mode (``num_ori=-1``) does not (a neighbour entering the radius adds a lifted point
    at full weight), so it is no choice for molecular dynamics.
    """

    def __init__(self, atomic_numbers, **ponita_kwargs):
        super().__init__()
        numbers = sorted({int(z) for z in atomic_numbers})
        if not numbers or numbers[0] < 1 or numbers[-1] > 118:
            raise ValueError(f"atomic_numbers must be a non-empty list of elements in 1..118, got {atomic_numbers!r}")
        for key in ("in_scalars", "out_scalars", "out_vectors", "in_vectors", "task_level"):
            if key in ponita_kwargs:
                raise ValueError(f"{key} is fixed by PonitaPotential; do not pass it")
        self.config = {"atomic_numbers": numbers, **ponita_kwargs}
        type_map = torch.full((119,), -1, dtype=torch.long)
        type_map[torch.tensor(numbers)] = torch.arange(len(numbers))
        self.register_buffer("type_map", type_map)
        self.register_buffer("energy_shift", torch.zeros(len(numbers), dtype=torch.float64))
        self.register_buffer("energy_scale", torch.ones(()))
        self.net = Ponita(len(numbers), out_scalars=1, out_vectors=0, task_level="graph", pool="sum", **ponita_kwargs)

    def float64_buffers(self) -> list[str]:
        return ["energy_shift"]  # per-element shifts in float64 also when the model is cast (``model.float()``)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        check_type_map(self, state_dict, prefix, error_msgs)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)

    @property
    def atomic_numbers(self) -> list[int]:
        return list(self.config["atomic_numbers"])

    def types(self, numbers: torch.Tensor) -> torch.Tensor:
        """Atomic numbers ``[N]`` -> type indices ``[N]``; unknown elements raise ValueError."""
        if numbers.dtype != torch.long or numbers.dim() != 1:
            raise ValueError(f"numbers must be an int64 tensor [N], got {numbers.dtype} {tuple(numbers.shape)}")
        if torch.compiler.is_compiling():  # value checks are eager only (indexing still rejects numbers > 118)
            return self.type_map[numbers]
        if not numbers.numel():
            return self.type_map[numbers]
        # range and known-element checks in one device->host read (the clamp only keeps the lookup in bounds;
        # out-of-range numbers raise below before t is used)
        t = self.type_map[numbers.clamp(0, 118)]
        lo, hi, bad = host_list(torch.stack([*torch.aminmax(numbers), (t < 0).any().long()]))
        if lo < 0 or hi > 118:
            raise ValueError("numbers: atomic numbers must lie in 0..118")
        if bad:
            unknown = sorted(set(numbers[t < 0].tolist()))
            raise ValueError(f"numbers: elements {unknown} were not in the training set {self.atomic_numbers}")
        return t

    def energy(self, numbers: torch.Tensor, pos: torch.Tensor, batch: torch.Tensor | None = None,
               num_graphs: int | None = None, grid: torch.Tensor | None = None) -> torch.Tensor:
        """Energies ``[B]`` (float64) of the graphs in ``batch`` (atomic numbers ``[N]``, positions ``[N, 3]``).

        ``E_b = energy_scale * Ponita(pos, onehot(types))_b + sum_{i in b} energy_shift[type_i]``.
        ``numbers [N]`` int64, ``pos [N, 3]`` float, ``batch [N]`` graph ids (default: one graph),
        ``num_graphs`` = ``B`` (default ``batch.max() + 1``), ``grid``: optional rotated orientation grid
        (see :class:`Ponita`). Raises ``ValueError`` for elements outside ``atomic_numbers``.
        """
        if isinstance(numbers, torch.Tensor) and isinstance(pos, torch.Tensor) and numbers.shape[:1] != pos.shape[:1]:
            raise ValueError(f"numbers must have one entry per atom of pos ({tuple(pos.shape)}), got shape {tuple(numbers.shape)}")
        t = self.types(numbers)
        x = one_hot(t, len(self.atomic_numbers), pos.dtype)
        if batch is None:
            batch = torch.zeros(pos.shape[0], dtype=torch.long, device=pos.device)
        b = num_graphs if num_graphs is not None else num_batches(batch)  # (0 when there are no atoms)
        e, _ = self.net(pos, x, batch=batch, num_graphs=b, grid=grid)
        # shifts are summed in float64: molecular energies (~1e4 eV) exceed float32's resolution
        shift = torch.zeros(b, dtype=torch.float64, device=pos.device).index_add(0, batch, self.energy_shift.double()[t])
        return (self.energy_scale.to(pos.dtype) * e[:, 0]).double() + shift

    def forward(self, numbers: torch.Tensor, pos: torch.Tensor, batch: torch.Tensor | None = None,
                num_graphs: int | None = None, forces: bool = True, create_graph: bool | None = None,
                grid: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Returns ``{"energy": [B], "forces": [N, 3]}`` with ``forces = -dE/dpos``.

        Arguments as :meth:`energy`; ``energy`` is float64, ``forces`` has the dtype of ``pos``. With
        ``forces=False`` only ``{"energy": [B]}`` is returned (no autograd).

        ``create_graph`` (default: ``self.training``) keeps the graph of the forces for training on
        them (second-order autograd). Works under ``torch.no_grad`` and ``torch.inference_mode`` (e.g. a
        Lightning validation loop): the forces are computed with autograd locally re-enabled. Inside a
        ``torch.func`` transform (e.g. ``jacrev`` of the forces: the Hessian) they come from a nested
        ``torch.func.grad`` (always differentiable).
        """
        if forces and torch.is_inference_mode_enabled():
            # enable_grad cannot undo inference mode: leave it here, on normal copies of the inputs
            # (inference tensors cannot be saved for backward)
            with torch.inference_mode(False):
                copy = lambda t: None if t is None else t.clone()  # noqa: E731
                return self.forward(copy(numbers), copy(pos), copy(batch), num_graphs, forces, create_graph, copy(grid))
        if not forces:
            return {"energy": self.energy(numbers, pos, batch, num_graphs, grid)}
        create_graph = self.training if create_graph is None else create_graph
        if not torch.compiler.is_compiling() and functorch_active():
            # inside torch.func (grad, jacrev, vmap, ...): the forces by a nested torch.func.grad, which composes
            # with the caller's transform (autograd.grad and requires_grad_ are not allowed there)
            def total(p):
                e = self.energy(numbers, p, batch, num_graphs, grid)
                return e.sum(), e

            grad, (_, energy) = torch.func.grad_and_value(total, has_aux=True)(pos)
            return {"energy": energy, "forces": -grad}
        with torch.enable_grad():
            pos_ = pos if pos.requires_grad else pos.detach().requires_grad_(True)
            energy = self.energy(numbers, pos_, batch, num_graphs, grid)
            (grad,) = torch.autograd.grad(energy.sum(), pos_, create_graph=create_graph)
        return {"energy": energy, "forces": -grad}


def fit_energy_shifts(counts: torch.Tensor, energies: torch.Tensor) -> torch.Tensor:
    """Least-squares per-element energies: ``argmin_s |counts @ s - energies|^2``.

    ``counts`` ``[B, T]`` (atoms of each type per structure), ``energies`` ``[B]`` -> ``[T]`` (minimum-norm
    solution when the compositions do not determine all shifts, e.g. a single molecule). Solved on the CPU
    (LAPACK's ``gelsd``; CUDA has only ``gels``, which needs full rank) and returned on the device of ``counts``.
    """
    if counts.dim() != 2 or energies.shape != (counts.shape[0],):
        raise ValueError(f"counts must be [B, T] and energies [B], got {tuple(counts.shape)} and {tuple(energies.shape)}")
    a, b = counts.cpu().double(), energies.cpu().double()[:, None]
    return torch.linalg.lstsq(a, b, driver="gelsd").solution[:, 0].to(counts.device)
