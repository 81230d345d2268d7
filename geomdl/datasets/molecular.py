"""Molecular trajectories with energies and forces: MD17/rMD17 (``.npz``), extended XYZ (3BPA and any
ASE-readable trajectory) and ASE databases (``.db``).

Every item is ``Data(z [N] int64, pos [N, 3] float32 (Å), energy [1] float64, forces [N, 3] float32)``
(``energy``/``forces`` only when the source has them; ASE databases may add ``y [1, K]`` for the
requested ``targets``). ``dataset.units`` names the units of ``energy`` and ``forces``; ``energy_unit="eV"``
converts kcal/mol sources (MD17) to eV and eV/Å. Energies are float64: totals of ~1e4 eV need it
(float32 would round them to ~1 meV).

* **MD17** (Chmiela et al., Sci. Adv. 2017; sGDML): npz keys ``R [F, N, 3]`` Å, ``E [F, 1]`` kcal/mol,
  ``F [F, N, 3]`` kcal/mol/Å, ``z [N]``. **rMD17** (Christensen & von Lilienfeld 2020, figshare, CC0):
  ``coords``, ``energies``, ``forces``, ``nuclear_charges`` in the same units. Both key sets are detected.
* **3BPA** (Kovács et al., JCTC 2021; BOTNet datasets, MIT): extended XYZ with ``energy=`` (eV) and
  ``forces`` (eV/Å); files ``train_300K``, ``train_mixedT``, ``test_300K``, ``test_600K``, ``test_1200K``,
  ``test_dihedral`` and ``iso_atoms`` (isolated-atom energies; :func:`atomic_energies`).
* **ExtXYZ**: any file :func:`ase.io.read` understands, with ``energy_key`` / ``forces_key``.
* **ASEDatabase**: ``ase.db`` SQLite files; properties are looked up in ``row.data``, then in the
  key-value pairs, then in the stored calculator results. Units come from ``metadata['_property_unit_dict']``.

Splits: ``split="all"|"train"|"val"|"test"`` with ``split_sizes`` (ints or fractions; default
``(0.8, 0.1, 0.1)``) and ``split_seed`` (see :func:`geomdl.datasets.base.random_split_indices`).
"""
from __future__ import annotations

import math
import pathlib
from collections.abc import Mapping

import numpy as np
import torch

from geomdl.datasets.base import GeometricDataset, check_seed, check_split_sizes, named_split_indices
from geomdl.ops._validation import check_bool

MD17_KEYS = {"R": "pos", "E": "energy", "F": "forces", "z": "z"}
RMD17_KEYS = {"coords": "pos", "energies": "energy", "forces": "forces", "nuclear_charges": "z"}
KCAL_MOL_TO_EV = 0.0433641043  # 1 kcal/mol in eV (4184 J / N_A / e)
THREEBPA_FILES = ("train_300K", "train_mixedT", "test_300K", "test_600K", "test_1200K", "test_dihedral", "iso_atoms")


def molecule_data(z, pos, energy=None, forces=None, where: str | None = None):
    """One ``Data(z, pos, energy, forces)`` with the dtypes documented in the module docstring.

    Raises:
        ValueError: prefixed with ``where`` (the file and frame or row, when given), for atom counts that
            differ between ``z``, ``pos`` and ``forces`` or NaN/infinite positions, energy or forces.
    """
    from torch_geometric.data import Data

    # called once per frame (MD17: up to ~1M): the finiteness checks run in NumPy on the arrays the tensors share
    # (~1 us each; torch.isfinite(t).all() on a small tensor costs ~5 us, a third more time per frame in all)
    prefix = f"{where}: " if where is not None else ""
    z = torch.from_numpy(np.array(z, dtype=np.int64)).reshape(-1)
    pos_np = np.array(pos, dtype=np.float32)
    pos = torch.from_numpy(pos_np).reshape(-1, 3)
    if pos.shape[0] != z.shape[0]:
        raise ValueError(f"{prefix}pos has {pos.shape[0]} atoms but z has {z.shape[0]}")
    if not np.isfinite(pos_np).all():
        raise ValueError(f"{prefix}positions contain NaN or infinite values")
    data = Data(z=z, pos=pos)
    if energy is not None:
        energy = float(energy)
        if not math.isfinite(energy):
            raise ValueError(f"{prefix}energy is {energy} (NaN or infinite)")
        data.energy = torch.tensor([energy], dtype=torch.float64)
    if forces is not None:
        forces_np = np.array(forces, dtype=np.float32)
        forces = torch.from_numpy(forces_np).reshape(-1, 3)
        if forces.shape[0] != z.shape[0]:
            raise ValueError(f"{prefix}forces has {forces.shape[0]} rows but the molecule has {z.shape[0]} atoms")
        if not np.isfinite(forces_np).all():
            raise ValueError(f"{prefix}forces contain NaN or infinite values")
        data.forces = forces
    return data


def check_uniform_labels(items: list, where: list[str]) -> list:
    """``items`` (``Data``), unless ``energy``/``forces`` are present in some but not all of them: a batch is
    collated by the fields of its first item, which silently dropped (or failed on) the others' labels.
    ``where[i]`` names item ``i`` (file and frame) for the ``ValueError``."""
    for field in ("energy", "forces"):
        has = [field in item for item in items]
        if any(has) and not all(has):
            k = has.index(False)
            raise ValueError(f"{where[k]} has no {field} but {sum(has)} other frame(s) have one: every frame of a "
                             f"dataset needs the same labels (drop or label it; require_labels=True lists such frames)")
    return items


def read_md17_npz(path, require_forces: bool = True) -> dict:
    """Arrays ``z [N]``, ``pos [F, N, 3]``, ``energy [F]``, ``forces [F, N, 3]`` of an MD17 or rMD17 npz.

    With ``require_forces=False`` a file without the forces key is read too, with ``forces`` ``None``."""
    path = pathlib.Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            for mapping in (MD17_KEYS, RMD17_KEYS):
                if {old for old, new in mapping.items() if require_forces or new != "forces"} <= keys:
                    arrays = {new: np.asarray(npz[old]) if old in keys else None for old, new in mapping.items()}
                    break
            else:
                raise ValueError(f"missing keys: expected MD17 {sorted(MD17_KEYS)} or rMD17 {sorted(RMD17_KEYS)}, "
                                 f"found {sorted(keys)}")
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    except Exception as exc:
        raise ValueError(f"{path}: unreadable npz ({type(exc).__name__}: {exc})") from None
    pos, z = arrays["pos"], arrays["z"].reshape(-1)
    frames = pos.shape[0] if pos.ndim == 3 else -1
    energy = arrays["energy"].reshape(-1)
    forces = arrays["forces"]
    if pos.ndim != 3 or pos.shape[1:] != (len(z), 3) or (forces is not None and forces.shape != pos.shape) \
            or energy.shape != (frames,):
        raise ValueError(f"{path}: inconsistent shapes: positions {pos.shape}, forces {getattr(forces, 'shape', None)}, "
                         f"energies {arrays['energy'].shape}, charges {z.shape} (expected [F, N, 3], [F, N, 3], [F], [N])")
    # a string, bool or complex array was cast (or failed to cast) later without the file's name; a fractional
    # charge was truncated to another element; a NaN/infinite value made every loss over the file NaN
    if z.dtype.kind not in "iu" and not (z.dtype.kind == "f" and np.isfinite(z).all() and (z == np.round(z)).all()):
        raise ValueError(f"{path}: nuclear charges must be integers, got dtype {z.dtype} with values {z.tolist()[:8]}")
    if z.size and (z.min() < 1 or z.max() > 118):
        raise ValueError(f"{path}: nuclear charges must be atomic numbers in [1, 118], got min {z.min()}, max {z.max()}")
    for key, value in (("positions", pos), ("energies", energy), ("forces", forces)):
        if value is None:
            continue
        if value.dtype.kind not in "iuf":
            raise ValueError(f"{path}: {key} must be real numbers (integer or float dtype), got dtype {value.dtype}")
        bad = ~np.isfinite(value).all(axis=tuple(range(1, value.ndim)))  # per frame
        if bad.any():
            raise ValueError(f"{path}: {key} contain NaN or infinite values in {int(bad.sum())} of {frames} frames "
                             f"(first: frame {int(np.argmax(bad))})")
    arrays.update(z=z.astype(np.int64), energy=energy)
    return arrays


def atomic_energies(path, energy_key: str = "energy") -> dict[int, float]:
    """``{atomic number: energy}`` from a file of single-atom frames (3BPA's ``iso_atoms.xyz``)."""
    from geomdl.datasets.formats.xyz import atoms_energy_forces, read_ase

    out = {}
    for k, atoms in enumerate(read_ase(path)):
        if len(atoms) != 1:
            raise ValueError(f"{path}: expected single-atom frames, found one with {len(atoms)} atoms")
        energy, _ = atoms_energy_forces(atoms, energy_key, where=f"{path}: frame {k}")
        if energy is None:
            raise ValueError(f"{path}: a frame has no {energy_key!r}")
        out[int(atoms.numbers[0])] = energy
    return out


def _check_units(units, properties=None) -> dict:
    """``units`` (``{property: unit}``) as a dict; a ``ValueError`` naming the argument and the properties
    (``properties``, when they are fixed) for anything else: ``dict("eV")`` failed without naming either."""
    choices = f" with properties from {', '.join(map(repr, properties))}" if properties else ""
    example = "{'energy': 'eV', 'forces': 'eV/Å'}"
    if not isinstance(units, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in units.items()):
        raise ValueError(f"units must be a dict {{property: unit}}{choices} (e.g. {example}), got {units!r}")
    unknown = sorted(k for k in units if properties and k not in properties)
    if unknown:
        raise ValueError(f"units: unknown propert{'y' if len(unknown) == 1 else 'ies'} {', '.join(map(repr, unknown))}; "
                         f"choose from {', '.join(map(repr, properties))}")
    return dict(units)


class _Molecular(GeometricDataset):
    def _check_split(self, split, split_sizes, split_seed) -> list:
        """Check the split arguments before the (long) reading and processing of the files, which a typo
        made wait for; :meth:`_setup_split` applies them once the dataset's length is known. Returns
        ``split_sizes`` as a list, to be passed on: an iterator (a generator, ``map``) is read only once."""
        if split not in ("all", "train", "val", "test"):
            raise ValueError(f"split must be 'all', 'train', 'val' or 'test', got {split!r}")
        check_seed(split_seed, "split_seed")
        return check_split_sizes(split_sizes if split_sizes is not None else (0.8, 0.1, 0.1), split)

    def _setup_split(self, split, split_sizes, split_seed):
        sizes = self._check_split(split, split_sizes, split_seed)
        self.split, self.split_seed = split, check_seed(split_seed, "split_seed")
        self.split_indices = named_split_indices(self._count, sizes, self.split_seed, split)
        if split != "all":
            self._indices = self.split_indices[split]

    def __repr__(self):
        return f"{type(self).__name__}({len(self)}, split={self.split!r})"


class MD17(_Molecular):
    """MD17 / rMD17 trajectories from an npz file (see the module docstring).

    Args:
        root: folder with the npz files (default ``<data root>/md17``).
        molecule: e.g. ``"ethanol"``: finds ``md17_<m>.npz``, ``rmd17_<m>.npz``, ``npz_data/rmd17_<m>.npz``, ``<m>.npz`` or the one ``<m>*.npz`` (several: ``ValueError``).
        path: an explicit npz file (instead of ``molecule``).
        energy_unit: ``"kcal/mol"`` (as stored) or ``"eV"``.
        split, split_sizes, split_seed, transform, processed_dir, force_reload: as in the module docstring.
    """

    subdir = "md17"

    def __init__(self, root=None, molecule: str | None = None, *, path=None, energy_unit: str = "kcal/mol", split: str = "all",
                 split_sizes=None, split_seed: int = 0, transform=None, processed_dir=None, force_reload: bool = False):
        super().__init__(root if path is None or root is not None else pathlib.Path(path).parent,
                         transform=transform, processed_dir=processed_dir, force_reload=force_reload)
        if energy_unit not in ("kcal/mol", "eV"):
            raise ValueError(f"energy_unit must be 'kcal/mol' or 'eV', got {energy_unit!r}")
        if (molecule is None) == (path is None):
            raise ValueError("give exactly one of molecule= (a name to look up under root) or path= (an npz file)")
        # a glob character or a folder in the name made a raw error of pathlib's glob (or matched another file)
        if molecule is not None and (not isinstance(molecule, str) or not molecule.strip()
                                     or any(c in molecule for c in "*?[]/\\")):
            raise ValueError(f"molecule must be a molecule name such as 'ethanol' (no wildcards or folders; "
                             f"give a file as path=), got {molecule!r}")
        split_sizes = self._check_split(split, split_sizes, split_seed)  # a list: an iterator is read once
        self.path = pathlib.Path(path) if path is not None else self._find(molecule)
        self.energy_unit = energy_unit
        self.units = {"energy": energy_unit, "forces": f"{energy_unit}/Å", "pos": "Å"}
        self.load()
        self._setup_split(split, split_sizes, split_seed)

    def _find(self, molecule):
        r = self.root
        # an exact <m>.npz is no ambiguous match (beside <m>_dft.npz it was the first in sorted order, and still is)
        for cand in (r / f"md17_{molecule}.npz", r / f"rmd17_{molecule}.npz", r / "npz_data" / f"rmd17_{molecule}.npz",
                     r / f"{molecule}.npz"):
            if cand.is_file():
                return cand
        found = sorted(r.glob(f"{molecule}*.npz"))
        if len(found) > 1:  # was: the first in sorted order, silently (e.g. "benzene" -> benzene2017.npz of two)
            raise ValueError(f"molecule {molecule!r}: several npz files under {r} match {molecule}*.npz "
                             f"({', '.join(p.name for p in found)}); give the file as path=")
        if found:
            return found[0]
        raise FileNotFoundError(f"no npz for molecule {molecule!r} under {r} (md17_{molecule}.npz, rmd17_{molecule}.npz, ...)")

    def options(self):
        return {"path": str(self.path.resolve()), "energy_unit": self.energy_unit}

    def raw_paths(self):
        return [self.path]

    def process(self):
        arr = read_md17_npz(self.path)
        scale = KCAL_MOL_TO_EV if self.energy_unit == "eV" else 1.0
        return [molecule_data(arr["z"], arr["pos"][f], float(arr["energy"][f]) * scale, arr["forces"][f] * scale,
                              where=f"{self.path}: frame {f}") for f in range(arr["pos"].shape[0])]


class ExtXYZ(_Molecular):
    """Frames of one or more ASE-readable files (extended XYZ, ...), with energies and forces.

    Args:
        path: a file or a list of files (read with :func:`ase.io.read`, all frames).
        energy_key / forces_key: where the labels are (``atoms.info`` / ``atoms.arrays`` or the calculator).
        require_labels: raise when a frame lacks energy or forces (default ``True``).
        units: ``{"energy": ..., "forces": ...}`` recorded on the dataset (default eV, eV/Å).
        root: folder for the default processed cache (default: the first file's folder).
        split, split_sizes, split_seed, transform, processed_dir, force_reload: as in the module docstring.
    """

    subdir = "extxyz"

    def __init__(self, path, *, energy_key: str = "energy", forces_key: str = "forces", require_labels: bool = True,
                 units=None, root=None, split: str = "all", split_sizes=None, split_seed: int = 0, transform=None,
                 processed_dir=None, force_reload: bool = False):
        paths = [pathlib.Path(p) for p in (path if isinstance(path, (list, tuple)) else [path])]
        if not paths:
            raise ValueError("path must name at least one file")
        super().__init__(root if root is not None else paths[0].parent, transform=transform, processed_dir=processed_dir,
                         force_reload=force_reload)
        for p in paths:
            if not p.is_file():
                raise FileNotFoundError(f"{p}: no such file")
        self.paths, self.energy_key, self.forces_key, self.require_labels = (paths, energy_key, forces_key,
                                                                             check_bool(require_labels, "require_labels"))
        self.units = (_check_units(units, ("energy", "forces", "pos")) if units is not None
                      else {"energy": "eV", "forces": "eV/Å", "pos": "Å"})
        split_sizes = self._check_split(split, split_sizes, split_seed)  # a list: an iterator is read once
        self.load()
        self._setup_split(split, split_sizes, split_seed)

    def options(self):
        return {"paths": [str(p.resolve()) for p in self.paths], "energy_key": self.energy_key, "forces_key": self.forces_key,
                "require_labels": self.require_labels}

    def raw_paths(self):
        return self.paths

    def process(self):
        from geomdl.datasets.formats.xyz import atoms_energy_forces, read_ase

        out, where = [], []
        for p in self.paths:
            for k, atoms in enumerate(read_ase(p)):
                energy, forces = atoms_energy_forces(atoms, self.energy_key, self.forces_key, where=f"{p}: frame {k}")
                if self.require_labels and (energy is None or forces is None):
                    missing = [n for n, v in ((self.energy_key, energy), (self.forces_key, forces)) if v is None]
                    raise ValueError(f"{p}: frame {k} has no {missing} (pass require_labels=False to allow unlabelled frames)")
                where.append(f"{p}: frame {k}")
                out.append(molecule_data(atoms.numbers, atoms.positions, energy, forces, where=where[-1]))
        return check_uniform_labels(out, where)


class ThreeBPA(ExtXYZ):
    """The 3BPA benchmark (C12H12N2O, 27 atoms): ``file`` is one of :data:`THREEBPA_FILES`,
    read from ``<root>/dataset_3BPA/<file>.xyz`` (or ``<root>/<file>.xyz``); default root ``<data root>/3bpa``."""

    subdir = "3bpa"

    def __init__(self, root=None, file: str = "train_300K", **kwargs):
        if file not in THREEBPA_FILES:
            raise ValueError(f"file must be one of {THREEBPA_FILES}, got {file!r}")
        from geomdl.datasets.base import resolve_root

        base = resolve_root(root, self.subdir)
        path = base / "dataset_3BPA" / f"{file}.xyz"
        path = path if path.is_file() or not (base / f"{file}.xyz").is_file() else base / f"{file}.xyz"
        kwargs.setdefault("require_labels", file != "iso_atoms")
        super().__init__(path, root=base, **kwargs)


class ASEDatabase(_Molecular):
    """Rows of an ASE SQLite database (``.db``) as molecules.

    Args:
        path: the ``.db`` file.
        energy_key / forces_key: property names of the labels (skipped when absent unless ``require_labels``).
        targets: further property names stacked into ``y [1, K]`` (e.g. QM9's ``["energy_U0", "homo"]``).
        selection: an ``ase.db`` query string (e.g. ``"natoms<10"``).
        units: ``{property: unit}`` overriding/adding to the database metadata (e.g. SchNetPack's MD17
            ethanol test db stores kcal/mol without saying so).
        root, split, split_sizes, split_seed, transform, processed_dir, force_reload: as for :class:`ExtXYZ`.
    """

    subdir = "ase_db"

    def __init__(self, path, *, energy_key: str = "energy", forces_key: str = "forces", targets=(), selection=None,
                 require_labels: bool = False, units=None, root=None, split: str = "all", split_sizes=None, split_seed: int = 0,
                 transform=None, processed_dir=None, force_reload: bool = False):
        self.path = pathlib.Path(path)
        super().__init__(root if root is not None else self.path.parent, transform=transform, processed_dir=processed_dir,
                         force_reload=force_reload)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such file")
        # one name given as a string (targets="homo" or ("homo")) is one target, not its letters
        self.energy_key, self.forces_key = energy_key, forces_key
        self.targets = [targets] if isinstance(targets, str) else list(targets)
        if not all(isinstance(t, str) for t in self.targets):
            raise TypeError(f"targets must be a property name or a sequence of names, got {targets!r}")
        self.selection, self.require_labels = selection, check_bool(require_labels, "require_labels")
        self.metadata = self._connect().metadata
        self.units = {**self.metadata.get("_property_unit_dict", {}), **_check_units(units or {})}
        split_sizes = self._check_split(split, split_sizes, split_seed)  # a list: an iterator is read once
        self.load()
        self._setup_split(split, split_sizes, split_seed)

    def _connect(self):
        import ase.db

        try:
            db = ase.db.connect(str(self.path), type="db")
            db.count()
        except Exception as exc:
            raise ValueError(f"{self.path}: not a readable ASE database ({type(exc).__name__}: {exc})") from None
        return db

    def options(self):
        return {"path": str(self.path.resolve()), "energy_key": self.energy_key, "forces_key": self.forces_key,
                "targets": self.targets, "selection": self.selection, "require_labels": self.require_labels}

    def raw_paths(self):
        return [self.path]

    @staticmethod
    def _lookup(row, key):
        if key in row.data:
            return np.asarray(row.data[key])
        if key in row.key_value_pairs:
            return np.asarray(row.key_value_pairs[key])
        value = row.get(key)
        return None if value is None else np.asarray(value)

    @staticmethod
    def _number(value: np.ndarray, key: str, where: str) -> float:
        """``value`` as one finite real number; a ``ValueError`` naming ``where`` and ``key`` otherwise (the first
        value of a vector was taken, a string failed without naming the file, a boolean became 0 or 1)."""
        if value.size != 1 or value.dtype.kind not in "iuf":
            raise ValueError(f"{where}: {key!r} must be one real number, got {value.tolist()!r} (dtype {value.dtype})")
        number = float(value.reshape(-1)[0])
        if not math.isfinite(number):
            raise ValueError(f"{where}: {key!r} is {number} (NaN or infinite)")
        return number

    def process(self):
        out, where = [], []
        for row in self._connect().select(self.selection):
            here = f"{self.path}: row {row.id}"
            try:  # row.data is decoded on first use: ase raises a bare TypeError/KeyError for data it cannot decode
                energy, forces = self._lookup(row, self.energy_key), self._lookup(row, self.forces_key)
            except Exception as exc:
                raise ValueError(f"{here}: unreadable row data ({type(exc).__name__}: {exc})") from None
            if self.require_labels and (energy is None or forces is None):
                raise ValueError(f"{self.path}: row {row.id} lacks {self.energy_key!r} or {self.forces_key!r}")
            # forces [3, N] or flat [3N] were reshaped to [N, 3] without an error
            if forces is not None and (forces.dtype.kind not in "iuf" or forces.shape != (len(row.numbers), 3)):
                raise ValueError(f"{here}: {self.forces_key!r} must be real numbers of shape [{len(row.numbers)}, 3] "
                                 f"(one row per atom), got {forces.shape} {forces.dtype}")
            data = molecule_data(row.numbers, row.positions,
                                 None if energy is None else self._number(energy, self.energy_key, here), forces, where=here)
            if self.targets:
                values = []
                for key in self.targets:
                    v = self._lookup(row, key)
                    if v is None or v.size != 1:
                        raise ValueError(f"{self.path}: row {row.id} has no scalar property {key!r}")
                    values.append(self._number(v, key, here))
                data.y = torch.tensor([values], dtype=torch.float32)
            out.append(data)
            where.append(here)
        if not out:
            raise ValueError(f"{self.path}: no rows (selection={self.selection!r})")
        return check_uniform_labels(out, where)
