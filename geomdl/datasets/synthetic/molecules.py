"""Built-in molecular trajectories: Langevin molecular dynamics with ASE's EMT potential.

EMT (effective medium theory, :class:`ase.calculators.emt.EMT`) supports H, C, N, O and the
fcc metals Al, Ni, Cu, Pd, Ag, Pt, Au. It is a toy potential for organic molecules, but its forces
are exactly ``-dE/dpos``, which is what tests of energy/force models need. Each trajectory starts
from an ASE geometry (:func:`ase.build.molecule` name, or ``"Cu13"`` / ``"Pt13"`` icosahedral
clusters), draws Maxwell-Boltzmann velocities and runs Langevin dynamics (time step ``timestep_fs``,
``temperature_K``, friction 0.02/fs), recording one frame every ``stride`` steps. Everything is seeded
(``numpy.random.RandomState(seed...)``), so the data are identical on every run.

Items: ``Data(z [N] int64, pos [N, 3] float32 Å, energy [1] float64 eV, forces [N, 3] float32 eV/Å,
traj [1] int64)``; frames of trajectory ``k`` are consecutive.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from geomdl.datasets.molecular import molecule_data
from geomdl.datasets.synthetic.shapes import _SPLIT_OFFSET, SyntheticDataset

DEFAULT_MOLECULES = ("CH3CH2OH", "H2O", "CH4", "NH3")


def build_system(name: str):
    """An ``ase.Atoms`` for a molecule name of :func:`ase.build.molecule` or ``"Cu13"``/``"Pt13"``."""
    from ase.build import molecule
    from ase.calculators.emt import parameters

    if name in ("Cu13", "Pt13"):
        from ase.cluster import Icosahedron

        return Icosahedron(name[:2], 2)
    try:
        atoms = molecule(name)
    except KeyError:
        raise ValueError(f"unknown molecule {name!r} (use a name known to ase.build.molecule, or 'Cu13'/'Pt13')") from None
    bad = sorted(set(atoms.get_chemical_symbols()) - set(parameters))
    if bad:
        raise ValueError(f"molecule {name!r} contains elements {bad} that EMT does not support ({sorted(parameters)})")
    return atoms


class SyntheticMolecules(SyntheticDataset):
    """EMT molecular-dynamics frames with energies and forces (see the module docstring).

    Args:
        molecules: systems to simulate, one trajectory each per repeat (default ethanol, water, methane, ammonia).
        frames_per_trajectory: frames recorded per trajectory.
        trajectories_per_molecule: independent trajectories per system.
        split, seed: disjoint seeded streams per split.
        temperature_K, timestep_fs, stride: MD settings (a frame every ``stride`` steps).
        transform: applied on access.
    """

    units = {"energy": "eV", "forces": "eV/Å", "pos": "Å"}

    def __init__(self, molecules=DEFAULT_MOLECULES, frames_per_trajectory: int = 50, trajectories_per_molecule: int = 1,
                 split: str = "train", seed: int = 0, *, temperature_K: float = 300.0, timestep_fs: float = 0.5,
                 stride: int = 5, transform=None):
        molecules = (molecules,) if isinstance(molecules, str) else tuple(molecules)
        for name in molecules:
            build_system(name)  # validates names and elements early
        for arg, value in (("frames_per_trajectory", frames_per_trajectory), ("trajectories_per_molecule", trajectories_per_molecule), ("stride", stride)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{arg} must be an int >= 1, got {value!r}")
        if not temperature_K > 0 or not timestep_fs > 0:
            raise ValueError(f"temperature_K and timestep_fs must be > 0, got {temperature_K}, {timestep_fs}")
        super().__init__(len(molecules) * trajectories_per_molecule * frames_per_trajectory, split, seed, transform)
        self.molecules, self.frames_per_trajectory, self.trajectories_per_molecule = molecules, frames_per_trajectory, trajectories_per_molecule
        self.temperature_K, self.timestep_fs, self.stride = float(temperature_K), float(timestep_fs), stride
        self.load()

    def load(self):
        from geomdl.datasets.base import collate_list

        data_list = []
        for k in range(len(self.molecules) * self.trajectories_per_molecule):
            data_list.extend(self._trajectory(k))
        self._store, self._slices = collate_list(data_list)
        self._count = len(data_list)

    def _trajectory(self, k: int) -> list:
        from ase import units
        from ase.calculators.emt import EMT
        from ase.md.langevin import Langevin
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

        atoms = build_system(self.molecules[k % len(self.molecules)])
        atoms.calc = EMT()
        rng = np.random.RandomState(((self.seed * 3 + _SPLIT_OFFSET[self.split]) * 10_007 + k) % 2**32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning))
            MaxwellBoltzmannDistribution(atoms, temperature_K=self.temperature_K, rng=rng)
            dyn = Langevin(atoms, self.timestep_fs * units.fs, temperature_K=self.temperature_K, friction=0.02 / units.fs,
                           rng=rng, fixcm=False)
            out = []
            for _ in range(self.frames_per_trajectory):
                dyn.run(self.stride)
                data = molecule_data(atoms.numbers, atoms.positions, atoms.get_potential_energy(), atoms.get_forces())
                data.traj = torch.tensor([k])
                out.append(data)
        return out
