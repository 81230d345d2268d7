"""geomdl.datasets: loaders for the files people already have, built-in synthetic data and transforms.

Every dataset yields torch_geometric ``Data`` objects and works with ``torch_geometric.loader.DataLoader``.

==============================  ==================================================================
``get_dataset(name, root, **o)``  any dataset below by name (:data:`DATASETS`)
``ModelNet``                    ModelNet10/40 (OFF meshes, normal_resampled txt, HDF5); rotation protocols
``ThreeDMatch``                 3DMatch/3DLoMatch pairs (``PairData``: ``pos_ref``, ``pos_src``, ``transform``)
``QM9``                         134k molecules, 19 targets (qm9pack CSV or raw xyz)
``MD17``                        MD17 / rMD17 npz trajectories
``ExtXYZ`` / ``ThreeBPA``       extended XYZ (any ASE-readable file) / the 3BPA benchmark
``ASEDatabase``                 ASE ``.db`` files
``DataList``                    clouds / molecules held in memory (a list of ``Data``, or arrays)
``SyntheticShapes``             built-in classification shapes (12 classes)
``SyntheticParts``              built-in articulated objects / scenes (``PartData``: ``part``, ``part_rot``, ...)
``SyntheticRegistrationPairs``  built-in registration pairs (``PairData``)
``SyntheticMolecules``          built-in EMT trajectories (energies, forces)
``transforms``                  seeded, copying transforms (sampling, rotation, crop, voxels, graphs)
``functional``                  the plain maths (surface sampling, voxel grid, rotations, overlap)
``download``                    manifest, verified resumable downloads (``download.download(name)``)
==============================  ==================================================================

Data root: ``root`` argument > ``$GEOMDL_DATA`` > the repository's ``datasets/`` folder. Names are
imported lazily, so ``import geomdl.datasets`` stays cheap.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "get_dataset": "geomdl.datasets.registry", "DATASETS": "geomdl.datasets.registry", "canonical_name": "geomdl.datasets.registry",
    "GeometricDataset": "geomdl.datasets.base", "data_root": "geomdl.datasets.base", "random_split_indices": "geomdl.datasets.base",
    "PairData": "geomdl.datasets.data", "PartData": "geomdl.datasets.data",
    "ModelNet": "geomdl.datasets.modelnet", "ThreeDMatch": "geomdl.datasets.threedmatch", "load_pair": "geomdl.datasets.threedmatch",
    "QM9": "geomdl.datasets.qm9", "MD17": "geomdl.datasets.molecular", "ExtXYZ": "geomdl.datasets.molecular",
    "ThreeBPA": "geomdl.datasets.molecular", "ASEDatabase": "geomdl.datasets.molecular",
    "SyntheticShapes": "geomdl.datasets.synthetic", "SyntheticParts": "geomdl.datasets.synthetic",
    "SyntheticRegistrationPairs": "geomdl.datasets.synthetic", "SyntheticMolecules": "geomdl.datasets.synthetic",
    "ChecksumError": "geomdl.datasets.download", "DataList": "geomdl.datasets.data_list",
}
_SUBMODULES = ("transforms", "functional", "formats", "synthetic", "base", "registry", "download")

__all__ = sorted(_EXPORTS) + list(_SUBMODULES)


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(_EXPORTS[name])
        return getattr(module, name)
    if name in _SUBMODULES:
        return importlib.import_module(f"geomdl.datasets.{name}")
    raise AttributeError(f"module 'geomdl.datasets' has no attribute {name!r}")
