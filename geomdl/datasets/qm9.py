"""QM9: 134k small organic molecules (C, H, N, O, F; up to 9 heavy atoms) with DFT properties
(B3LYP/6-31G(2df,p); Ramakrishnan, Dral, Rupp, von Lilienfeld, Sci. Data 1, 140022, 2014; CC0).

Sources (``source="auto"`` tries them in this order):

* ``"csv"``: ``qm9_part*.csv`` files in ``root`` (the ``qm9pack`` CSV layout, 25 columns, one molecule a row;
  geometry ``XYZ_Ang`` in Å);
* ``"xyz"``: the standard raw files ``dsgdb9nsd_*.xyz`` in ``root``, ``root/raw`` or ``root/dsgdb9nsd.xyz``
  (molecules listed in an ``uncharacterized.txt`` next to them are excluded);
* ``"qm9pack"``: the CSVs shipped inside the ``qm9pack`` package (all 130,831 characterised molecules, offline).

Targets (``y [1, 19]`` float32, in this order; ``energy_unit="eV"`` converts the Hartree entries to eV):

====  ===========  ===========  ==============================================================
 #    name         unit         meaning (CSV column)
====  ===========  ===========  ==============================================================
 0    mu           D            dipole moment (Dipole_debye)
 1    alpha        a0^3         isotropic polarizability (Polarizability_bohr3)
 2    homo         Ha           HOMO energy (HOMO_au)
 3    lumo         Ha           LUMO energy (LUMO_au)
 4    gap          Ha           HOMO-LUMO gap (HOMO_LUMO_gap_au)
 5    r2           a0^2         electronic spatial extent <R^2> (R2_bohr2)
 6    zpve         Ha           zero-point vibrational energy (ZPVE_au)
 7    U0           Ha           internal energy at 0 K (InternalEnergy_0K_au)
 8    U            Ha           internal energy at 298.15 K (InternalEnergy_298K_au)
 9    H            Ha           enthalpy at 298.15 K (Enthalphy_298K_au)
 10   G            Ha           free energy at 298.15 K (GibbsFreeEnergy_298K_au)
 11   cv           cal/(mol K)  heat capacity at 298.15 K (Heatcapacity_Cv_cal_mol_K)
 12   U0_atom      Ha           atomisation energy at 0 K: U0 - sum of atom references
 13   U_atom       Ha           atomisation internal energy at 298.15 K
 14   H_atom       Ha           atomisation enthalpy at 298.15 K
 15   G_atom       Ha           atomisation free energy at 298.15 K
 16   A            GHz          rotational constant A (RotA_GHz)
 17   B            GHz          rotational constant B (RotB_GHz)
 18   C            GHz          rotational constant C (RotC_GHz)
====  ===========  ===========  ==============================================================

Atom references (QM9 ``atomref``, Ha) are in :data:`ATOMREF`. Items:
``Data(z [N] int64, pos [N, 3] float32 Å, y [1, 19] float32, idx [1] int64 (QM9 index), smiles str)``.
Splits: ``split="train"|"val"|"test"|"all"``; ``split_sizes`` default ``(110000, 10000, None)`` (the
DimeNet/PyG convention) when there are more than 120,000 molecules, else fractions ``(0.8, 0.1, 0.1)``;
the permutation is seeded by ``split_seed``.
"""
from __future__ import annotations

import csv
import importlib.util
import pathlib

import numpy as np
import torch

from geomdl.datasets.base import GeometricDataset, check_seed, check_split_sizes, named_split_indices
from geomdl.datasets.formats.xyz import ELEMENTS
from geomdl.utils.io import read_text

HARTREE_TO_EV = 27.211386245988
TARGETS = (
    ("mu", "D"), ("alpha", "a0^3"), ("homo", "Ha"), ("lumo", "Ha"), ("gap", "Ha"), ("r2", "a0^2"), ("zpve", "Ha"),
    ("U0", "Ha"), ("U", "Ha"), ("H", "Ha"), ("G", "Ha"), ("cv", "cal/(mol K)"), ("U0_atom", "Ha"), ("U_atom", "Ha"),
    ("H_atom", "Ha"), ("G_atom", "Ha"), ("A", "GHz"), ("B", "GHz"), ("C", "GHz"),
)
TARGET_NAMES = tuple(t for t, _ in TARGETS)
_CSV_COLUMNS = {"mu": "Dipole_debye", "alpha": "Polarizability_bohr3", "homo": "HOMO_au", "lumo": "LUMO_au",
                "gap": "HOMO_LUMO_gap_au", "r2": "R2_bohr2", "zpve": "ZPVE_au", "U0": "InternalEnergy_0K_au",
                "U": "InternalEnergy_298K_au", "H": "Enthalphy_298K_au", "G": "GibbsFreeEnergy_298K_au",
                "cv": "Heatcapacity_Cv_cal_mol_K", "A": "RotA_GHz", "B": "RotB_GHz", "C": "RotC_GHz"}
# QM9 atomref.txt: (U0, U, H, G) in Ha of the isolated atoms
ATOMREF = {1: (-0.500273, -0.498857, -0.497912, -0.510927), 6: (-37.846772, -37.845355, -37.844411, -37.861317),
           7: (-54.583861, -54.582445, -54.581501, -54.598897), 8: (-75.064579, -75.063163, -75.062219, -75.079532),
           9: (-99.718730, -99.717314, -99.716370, -99.733544)}
_HARTREE_TARGETS = [i for i, (_, unit) in enumerate(TARGETS) if unit == "Ha"]


def qm9pack_csvs() -> list[pathlib.Path]:
    """The ``qm9_part*.csv`` files of the installed ``qm9pack`` (found without importing it)."""
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the qm9pack package is not installed: pip install 'geomdl[data]' (or qm9pack)")
    folder = pathlib.Path(list(spec.submodule_search_locations)[0]) / "data"
    files = sorted(folder.glob("qm9_part*.csv"))
    if not files:
        raise FileNotFoundError(f"qm9pack is installed but {folder} holds no qm9_part*.csv")
    return files


def _check_elements(z: np.ndarray, where) -> None:
    """``ValueError`` naming ``where`` for an element without a QM9 atom reference (the atomisation targets need one)."""
    other = sorted({int(a) for a in z} - ATOMREF.keys())
    if other:
        raise ValueError(f"{where}: atomic number(s) {other} are not QM9 elements (H, C, N, O, F)")


def _targets(values: dict, z: np.ndarray) -> list[float]:
    refs = np.array([ATOMREF[int(a)] for a in z]).sum(axis=0) if len(z) else np.zeros(4)
    derived = {"U0_atom": values["U0"] - refs[0], "U_atom": values["U"] - refs[1],
               "H_atom": values["H"] - refs[2], "G_atom": values["G"] - refs[3]}
    return [values[t] if t in values else derived[t] for t in TARGET_NAMES]


def _numbers(text: str) -> np.ndarray:
    """Floats of a Python-literal list like ``[[0.,1.5],[2,-3e-1]]`` (faster than ``ast.literal_eval``)."""
    return np.array([float(t) for t in text.replace("[", " ").replace("]", " ").replace(",", " ").split()])


def read_qm9_csv(path) -> list[dict]:
    """Rows of a qm9pack CSV as dicts ``index, smiles, z, pos, values``; errors name the file and line."""
    path = pathlib.Path(path)
    try:
        return _read_qm9_csv(path)
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text qm9pack CSV (binary content)") from None
    except csv.Error as exc:
        raise ValueError(f"{path}: malformed CSV ({exc})") from None


def _read_qm9_csv(path: pathlib.Path) -> list[dict]:
    out = []
    with open(path, newline="", encoding="utf-8-sig") as fh:  # (a byte-order mark dropped)
        reader = csv.reader(fh)
        header = next(reader, None)
        needed = ["Index", "SMILES", "N_atoms", "Elements", "XYZ_Ang", *_CSV_COLUMNS.values()]
        if header is None or any(c not in header for c in needed):
            raise ValueError(f"{path}: not a qm9pack CSV (missing columns {[c for c in needed if c not in (header or [])]})")
        col = {c: header.index(c) for c in needed}
        for row in reader:
            line = reader.line_num
            if len(row) != len(header):
                raise ValueError(f"{path}:{line}: expected {len(header)} fields, got {len(row)} (malformed row)")
            try:
                n = int(row[col["N_atoms"]])
                symbols = [s.strip(" '\"") for s in row[col["Elements"]].strip("[]").split(",")]
                z = np.array([ELEMENTS[s] for s in symbols], dtype=np.int64)
                pos = _numbers(row[col["XYZ_Ang"]]).reshape(n, 3)
                values = {k: float(row[col[c]]) for k, c in _CSV_COLUMNS.items()}
                index = int(row[col["Index"]])
            except (ValueError, KeyError) as exc:
                raise ValueError(f"{path}:{line}: malformed row ({type(exc).__name__}: {exc})") from None
            if len(z) != n:
                raise ValueError(f"{path}:{line}: N_atoms={n} but {len(z)} elements")
            _check_elements(z, f"{path}:{line}")  # was a bare KeyError in QM9.process
            if not np.isfinite(pos).all():  # as read_qm9_xyz: a 'nan' coordinate parses as a float
                raise ValueError(f"{path}:{line}: atom coordinates (XYZ_Ang) contain NaN or infinite values")
            bad = [_CSV_COLUMNS[k] for k, v in values.items() if not np.isfinite(v)]
            if bad:  # as read_qm9_xyz: a 'nan' target parses as a float
                raise ValueError(f"{path}:{line}: columns {bad} are NaN or infinite")
            out.append({"index": index, "smiles": row[col["SMILES"]], "z": z, "pos": pos, "values": values})
    return out


class QM9(GeometricDataset):
    """QM9 molecules with 19 targets (see the module docstring for sources, units and splits).

    Args:
        root: folder with ``qm9_part*.csv`` or raw ``dsgdb9nsd_*.xyz`` files (default ``<data root>/qm9``;
            only the processed cache is written there when the qm9pack source is used).
        split: ``"all"``, ``"train"``, ``"val"`` or ``"test"``.
        source: ``"auto"``, ``"csv"``, ``"xyz"`` or ``"qm9pack"``.
        split_sizes: ints (one may be ``None`` = the rest) or fractions for (train, val, test).
        split_seed: seed of the random split.
        energy_unit: ``"Ha"`` (as in the files) or ``"eV"`` for targets 2-4, 6-10 and 12-15.
        transform, processed_dir, force_reload: see :class:`~geomdl.datasets.base.GeometricDataset`.
    """

    subdir = "qm9"
    version = 1

    def __init__(self, root=None, split: str = "all", *, source: str = "auto", split_sizes=None, split_seed: int = 0,
                 energy_unit: str = "Ha", transform=None, processed_dir=None, force_reload: bool = False):
        super().__init__(root, transform=transform, processed_dir=processed_dir, force_reload=force_reload)
        if split not in ("all", "train", "val", "test"):
            raise ValueError(f"split must be 'all', 'train', 'val' or 'test', got {split!r}")
        if source not in ("auto", "csv", "xyz", "qm9pack"):
            raise ValueError(f"source must be 'auto', 'csv', 'xyz' or 'qm9pack', got {source!r}")
        if energy_unit not in ("Ha", "eV"):
            raise ValueError(f"energy_unit must be 'Ha' or 'eV', got {energy_unit!r}")
        self.split, self.energy_unit, self.split_seed = split, energy_unit, check_seed(split_seed, "split_seed")
        self.source, self.files = self._find(source)
        self.units = {name: ("eV" if unit == "Ha" and energy_unit == "eV" else unit) for name, unit in TARGETS}
        if split_sizes is not None:  # checked before the files are read and processed (130k molecules), as in MD17
            split_sizes = check_split_sizes(split_sizes, split)
        self.load()
        sizes = split_sizes if split_sizes is not None else ((110_000, 10_000, None) if self._count > 120_000 else (0.8, 0.1, 0.1))
        self.split_indices = named_split_indices(self._count, sizes, self.split_seed, split)
        if split != "all":
            self._indices = self.split_indices[split]

    def _xyz_files(self):
        for d in (self.root, self.root / "raw", self.root / "dsgdb9nsd.xyz"):
            files = sorted(d.glob("dsgdb9nsd_*.xyz")) if d.is_dir() else []
            if files:
                return files
        return []

    def _find(self, source):
        if source in ("auto", "csv"):
            files = sorted(self.root.glob("qm9_part*.csv")) if self.root.is_dir() else []
            if files:
                return "csv", files
            if source == "csv":
                raise FileNotFoundError(f"no qm9_part*.csv in {self.root}")
        if source in ("auto", "xyz"):
            files = self._xyz_files()
            if files:
                return "xyz", files
            if source == "xyz":
                raise FileNotFoundError(f"no dsgdb9nsd_*.xyz in {self.root}, {self.root / 'raw'} or {self.root / 'dsgdb9nsd.xyz'}")
        return "qm9pack", qm9pack_csvs()

    def options(self):
        return {"source": self.source, "files": [str(f) for f in self.files], "energy_unit": self.energy_unit}

    def raw_paths(self):
        unc = self.files[0].parent / "uncharacterized.txt"  # excluded molecules: editing it changes the data
        return list(self.files) + ([unc] if self.source == "xyz" and unc.is_file() else [])

    def _records(self):
        from tqdm import tqdm

        if self.source != "xyz":
            for f in self.files:
                yield from read_qm9_csv(f)
            return
        from geomdl.datasets.formats.xyz import read_qm9_xyz

        skip = set()
        unc = self.files[0].parent / "uncharacterized.txt"
        if unc.is_file():
            for lineno, ln in enumerate(read_text(unc, "the QM9 list of uncharacterized molecules").splitlines(), 1):
                if ln.strip()[:1].isdigit():  # a molecule's line (header and footer lines are text)
                    try:
                        skip.add(int(ln.split()[0]))
                    except ValueError:
                        raise ValueError(f"{unc}: line {lineno}: expected a molecule index first, got {ln.strip()!r}") from None
        for f in tqdm(self.files, desc="QM9 xyz", leave=False, disable=True if len(self.files) < 1000 else None):
            rec = read_qm9_xyz(f)
            _check_elements(rec["z"], f)
            if rec["index"] in skip:
                continue
            values = {k: rec["properties"]["Cv" if k == "cv" else k] for k in _CSV_COLUMNS}
            yield {"index": rec["index"], "smiles": rec["smiles"], "z": rec["z"], "pos": rec["pos"], "values": values}

    def process(self):
        from torch_geometric.data import Data

        scale = np.ones(len(TARGETS))
        if self.energy_unit == "eV":
            scale[_HARTREE_TARGETS] = HARTREE_TO_EV
        out = []
        for rec in self._records():
            y = np.asarray(_targets(rec["values"], rec["z"])) * scale
            out.append(Data(z=torch.from_numpy(rec["z"]), pos=torch.from_numpy(rec["pos"]).float(),
                            y=torch.from_numpy(y).float().unsqueeze(0), idx=torch.tensor([rec["index"]]), smiles=rec["smiles"]))
        if not out:
            raise ValueError(f"no molecules read from {self.files[0].parent}")
        return out

    def __repr__(self):
        return f"QM9({len(self)}, split={self.split!r}, source={self.source!r})"
