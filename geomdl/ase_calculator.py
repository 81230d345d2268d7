"""ASE calculator for geomdl potentials: energies (eV) and forces (eV/A) from a trained checkpoint.

    from ase.md.verlet import VelocityVerlet
    from geomdl.ase import Calculator

    atoms.calc = Calculator("ponita_3bpa.pt")
    VelocityVerlet(atoms, timestep=0.5 * ase.units.fs).run(100)

Absolute imports only: this module must never shadow the ``ase`` package.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
try:
    from ase.calculators.calculator import Calculator as _AseCalculator
    from ase.calculators.calculator import all_changes
except ModuleNotFoundError as exc:  # a bare "No module named 'ase'" did not say which extra brings it
    raise ModuleNotFoundError("geomdl.ase needs ASE: pip install 'geomdl[data]' (or pip install ase)",
                              name=exc.name) from exc

from geomdl.models._molecular import MolecularModel
from geomdl.ops._validation import check_int


class Calculator(_AseCalculator):
    """ASE calculator wrapping a :class:`~geomdl.nn.ponita.PonitaPotential` or a molecular energy model
    (:class:`~geomdl.models.egnn.EGNN`, :class:`~geomdl.models.painn.PaiNN`, :class:`~geomdl.models.nequip.NequIP`
    with ``task="graph"``, ``out_channels=1``; forces from its ``energy_and_forces``).

    Args:
        model: a checkpoint path (written by :func:`geomdl.pipelines.molecular.save_potential`) or a
            model instance; an instance is copied (the caller's module keeps its device, dtype and mode).
        device: torch device (default ``"cpu"``).
        dtype: computation dtype (default ``torch.float64``: smooth energies for MD).
        rotations: average predictions over this many fixed random rotations (0: none); reduces the
            grid error of fiber-bundle models, at that many times the cost.
    """

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, model, device: str = "cpu", dtype=torch.float64, rotations: int = 0, **kwargs):
        super().__init__(**kwargs)
        rotations = check_int(rotations, "rotations", minimum=0)
        if isinstance(model, torch.nn.Module):
            check_energy_model(model)
            self.model = copy.deepcopy(model)  # .to()/.eval() below would otherwise change the caller's module
        else:
            from geomdl.pipelines.molecular import load_potential

            self.model = load_potential(model, map_location=device)
        self.model = self.model.to(device=device, dtype=dtype).eval()
        self.device, self.dtype = torch.device(device), dtype
        from geomdl.utils.rotations import random_rotation

        gen = torch.Generator().manual_seed(0)
        self._rotations = [random_rotation(gen).to(device=self.device, dtype=dtype) for _ in range(rotations)]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if self.atoms.pbc.any():
            raise ValueError("atoms: periodic boundary conditions are not supported by this potential")
        z = torch.as_tensor(self.atoms.numbers, dtype=torch.long, device=self.device)
        pos = torch.as_tensor(self.atoms.positions, dtype=self.dtype, device=self.device)
        rots = self._rotations or [None]
        energy, forces = 0.0, torch.zeros_like(pos)
        for rot in rots if len(z) else ():  # no atoms: energy 0, forces [0, 3]
            p = pos if rot is None else pos @ rot.T
            e, f = energy_and_forces(self.model, z, p)
            energy += float(e.detach()[0])
            f = f.detach()
            forces += f if rot is None else f @ rot
        energy /= len(rots)
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        self.results["forces"] = (forces / len(rots)).cpu().numpy().astype(np.float64)


def check_energy_model(model: torch.nn.Module) -> None:
    """A molecular model given to the calculator must predict one energy per molecule."""
    if isinstance(model, MolecularModel) and (model.task != "graph" or model.out_channels != 1):
        raise ValueError(f"model: a molecular model must predict an energy (task='graph', out_channels=1), got "
                         f"{type(model).__name__} with task={model.task!r}, out_channels={model.out_channels}")


def energy_and_forces(model: torch.nn.Module, z: torch.Tensor, pos: torch.Tensor):
    """``(E [1], F [N, 3])`` of one molecule: a :class:`~geomdl.models._molecular.MolecularModel`'s
    ``energy_and_forces``, or the ``{"energy", "forces"}`` of a :class:`~geomdl.nn.ponita.PonitaPotential`."""
    if isinstance(model, MolecularModel):
        return model.energy_and_forces(z, pos, create_graph=False)
    out = model(z, pos, create_graph=False)
    return out["energy"], out["forces"]
