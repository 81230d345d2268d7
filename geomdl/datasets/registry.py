"""``get_dataset(name, root=None, **options)``: every geomdl dataset by name.

Names are case-insensitive; ``-`` and ``_`` are interchangeable. ``root`` is the dataset folder (default
``<data root>/<subdir>``); for ``extxyz`` and ``ase_db`` it is the file to read (or pass ``path=``);
the synthetic datasets take no root.
"""
from __future__ import annotations

import dataclasses
import importlib


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    name: str
    target: str          # "module:Class"
    description: str
    subdir: str | None   # folder under the data root (None: generated or given by path)
    defaults: tuple = ()  # default keyword options

    def cls(self):
        module, attr = self.target.split(":")
        return getattr(importlib.import_module(module), attr)


DATASETS: dict[str, DatasetInfo] = {d.name: d for d in (
    DatasetInfo("modelnet40", "geomdl.datasets.modelnet:ModelNet", "ModelNet40 shapes (normal_resampled txt, HDF5 or OFF meshes), 40 classes", "modelnet40", (("name", "40"),)),
    DatasetInfo("modelnet10", "geomdl.datasets.modelnet:ModelNet", "ModelNet10 shapes (normal_resampled txt, HDF5 or OFF meshes), 10 classes", "modelnet10", (("name", "10"),)),
    DatasetInfo("3dmatch", "geomdl.datasets.threedmatch:ThreeDMatch", "3DMatch / 3DLoMatch fragment pairs with ground-truth poses and overlaps", "3dmatch"),
    DatasetInfo("qm9", "geomdl.datasets.qm9:QM9", "QM9 molecules with 19 targets (qm9pack CSV or raw xyz)", "qm9"),
    DatasetInfo("md17", "geomdl.datasets.molecular:MD17", "MD17 / rMD17 trajectories (npz), energies and forces in kcal/mol", "md17"),
    DatasetInfo("3bpa", "geomdl.datasets.molecular:ThreeBPA", "3BPA extended-XYZ frames with energies and forces (eV)", "3bpa"),
    DatasetInfo("extxyz", "geomdl.datasets.molecular:ExtXYZ", "any ASE-readable trajectory with energies and forces (path=...)", None),
    DatasetInfo("ase_db", "geomdl.datasets.molecular:ASEDatabase", "an ASE SQLite database (path=...)", None),
    DatasetInfo("synthetic_shapes", "geomdl.datasets.synthetic:SyntheticShapes", "built-in: 12 shape classes for classification", None),
    DatasetInfo("synthetic_parts", "geomdl.datasets.synthetic:SyntheticParts", "built-in: articulated objects / scenes with rigid parts and part labels", None),
    DatasetInfo("synthetic_registration", "geomdl.datasets.synthetic:SyntheticRegistrationPairs", "built-in: partial-overlap registration pairs with known pose", None),
    DatasetInfo("synthetic_molecules", "geomdl.datasets.synthetic:SyntheticMolecules", "built-in: EMT molecular dynamics with energies and forces", None),
)}
_ALIASES = {"rmd17": "md17", "threedmatch": "3dmatch", "3dlomatch": "3dmatch", "ase": "ase_db", "asedatabase": "ase_db",
            "shapes": "synthetic_shapes", "parts": "synthetic_parts", "registration": "synthetic_registration",
            "molecules": "synthetic_molecules", "three_bpa": "3bpa"}


def canonical_name(name: str) -> str:
    """Registry key for ``name`` (case-insensitive, aliases resolved); ``ValueError`` listing the names otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(DATASETS)}")
    return key


def get_dataset(name: str, root=None, **options):
    """Build dataset ``name`` (see :data:`DATASETS`) with ``root`` and keyword ``options``.

    Example: ``get_dataset("modelnet40", split="test", rotation="z/SO3")``,
    ``get_dataset("synthetic_shapes", num_per_class=4)``, ``get_dataset("extxyz", "frames.xyz")``.
    """
    key = canonical_name(name)
    info = DATASETS[key]
    kwargs = {**dict(info.defaults), **options}
    if name.strip().lower() == "3dlomatch":
        kwargs.setdefault("benchmark", "3DLoMatch")
    if key.startswith("synthetic_"):
        if root is not None:
            raise ValueError(f"{key} is generated from a seed and takes no root (got root={root!r})")
        return info.cls()(**kwargs)
    if key in ("extxyz", "ase_db"):
        if root is not None:
            if "path" in kwargs:
                raise ValueError(f"{key}: give the file as root or as path=, not both")
            kwargs["path"] = root
        if "path" not in kwargs:
            raise ValueError(f"{key} needs the file to read: get_dataset({key!r}, 'file') or path='file'")
        return info.cls()(**kwargs)
    return info.cls()(root, **kwargs)
