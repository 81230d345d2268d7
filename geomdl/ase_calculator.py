"""ASE calculator for geomdl potentials: energies (eV) and forces (eV/A) from a trained checkpoint.

    from ase.md.verlet import VelocityVerlet
    from geomdl.ase import Calculator

    atoms.calc = Calculator("ponita_3bpa.pt")
    VelocityVerlet(atoms, timestep=0.5 * ase.units.fs).run(100)

Absolute imports only: this module must never shadow the ``ase`` package.
"""
from __future__ import annotations

import numpy as np
import torch
from ase.calculators.calculator import Calculator as _AseCalculator
from ase.calculators.calculator import all_changes


class Calculator(_AseCalculator):
    """ASE calculator wrapping a :class:`~geomdl.nn.ponita.PonitaPotential`.

    Args:
        model: a checkpoint path (written by :func:`geomdl.pipelines.molecular.save_potential`) or a
            model instance.
        device: torch device (default ``"cpu"``).
        dtype: computation dtype (default ``torch.float64``: smooth energies for MD).
        rotations: average predictions over this many fixed random rotations (0: none); reduces the
            grid error of fiber-bundle models, at that many times the cost.
    """

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, model, device: str = "cpu", dtype=torch.float64, rotations: int = 0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(model, torch.nn.Module):
            self.model = model
        else:
            from geomdl.pipelines.molecular import load_potential

            self.model = load_potential(model, map_location=device)
        self.model = self.model.to(device=device, dtype=dtype).eval()
        self.device, self.dtype = torch.device(device), dtype
        if not isinstance(rotations, int) or rotations < 0:
            raise ValueError(f"rotations must be a non-negative int, got {rotations!r}")
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
        for rot in rots:
            p = pos if rot is None else pos @ rot.T
            out = self.model(z, p, create_graph=False)
            f = out["forces"].detach()
            energy += float(out["energy"].detach()[0])
            forces += f if rot is None else f @ rot
        energy /= len(rots)
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        self.results["forces"] = (forces / len(rots)).cpu().numpy().astype(np.float64)
