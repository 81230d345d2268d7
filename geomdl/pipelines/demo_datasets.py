"""Demo stage ``datasets``: generate the built-in data, run the transforms, and read the real samples
in ``../shared/data`` (or ``$GEOMDL_SHARED_DATA``) when they are present."""
from __future__ import annotations

import os
import pathlib
import time

import numpy as np
import torch

_SHARED = pathlib.Path(os.environ.get("GEOMDL_SHARED_DATA", pathlib.Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))


def _shape(data, keys):
    return ", ".join(f"{k} {list(data[k].shape)}" for k in keys if k in data)


def _builtin(quick: bool, seed: int = 0) -> dict:
    from geomdl.datasets import SyntheticMolecules, SyntheticParts, SyntheticRegistrationPairs, SyntheticShapes
    from geomdl.datasets import transforms as T

    out = {}
    t0 = time.perf_counter()
    shapes = SyntheticShapes(num_per_class=2 if quick else 10, num_points=512 if quick else 1024, seed=seed)
    labels = torch.cat([shapes[i].y for i in range(len(shapes))])
    print(f"   SyntheticShapes: {len(shapes)} clouds, {len(shapes.classes)} classes, {_shape(shapes[0], ['pos', 'normal'])}, "
          f"per-class counts {torch.bincount(labels).tolist()} ({time.perf_counter() - t0:.1f} s)")
    out["shapes"] = {"count": len(shapes), "classes": len(shapes.classes)}

    parts = SyntheticParts(num_samples=3 if quick else 30, num_points=1024, seed=seed)
    err = 0.0
    for d in parts:
        moved = torch.einsum("nij,nj->ni", d.part_rot[d.part], d.pos_rest) + d.part_trans[d.part]
        err = max(err, float((moved - d.pos).abs().max()))
    print(f"   SyntheticParts: {len(parts)} objects, parts per object {[int(d.part_rot.shape[0]) for d in parts][:6]}, "
          f"max |R_p x_rest + t_p - x| = {err:.2e}")
    out["parts"] = {"count": len(parts), "rigid_motion_error": err}

    pairs = SyntheticRegistrationPairs(num_samples=3 if quick else 20, num_points=512, seed=seed)
    overlaps = [float(d.overlap) for d in pairs]
    print(f"   SyntheticRegistrationPairs: {len(pairs)} pairs, overlaps {[round(o, 2) for o in overlaps]}, "
          f"correspondences {[int(d.correspondences.shape[1]) for d in pairs]}")
    out["registration"] = {"count": len(pairs), "mean_overlap": sum(overlaps) / len(overlaps)}

    mols = SyntheticMolecules(frames_per_trajectory=5 if quick else 50, seed=seed)
    energies = torch.cat([d.energy for d in mols])
    print(f"   SyntheticMolecules (EMT MD): {len(mols)} frames, energy range [{energies.min():.3f}, {energies.max():.3f}] eV")
    out["molecules"] = {"count": len(mols)}

    pipeline = T.Compose([T.RandomRotation("SO3", seed=seed), T.Jitter(0.01, seed=seed), T.RandomCrop(0.7, seed=seed),
                          T.VoxelDownsample(0.05), T.SamplePoints(256, seed=seed), T.KNNGraph(8)])
    d = pipeline(shapes[0])
    print(f"   transforms {[type(t).__name__ for t in pipeline.transforms]}: {_shape(d, ['pos', 'normal', 'edge_index'])}")
    out["transformed"] = {"points": int(d.pos.shape[0]), "edges": int(d.edge_index.shape[1])}

    # clouds held in memory (NumPy arrays) as a dataset, the same augmentation drawn anew at every access
    from geomdl.datasets import DataList

    gen = np.random.default_rng(seed)
    clouds = DataList.from_arrays([gen.normal(size=(n, 3)) for n in (100, 150, 200)], y=[0, 1, 0],
                                  transform=T.RandomRotation("SO3", seed=seed))
    moved = float((clouds[0].pos - clouds[0].pos).abs().max())
    print(f"   DataList.from_arrays: {len(clouds)} clouds of {[int(c.pos.shape[0]) for c in clouds]} points, labels "
          f"{[int(c.y) for c in clouds]}; two reads of cloud 0 differ by up to {moved:.2f} (a rotation drawn per access)")
    out["data_list"] = {"count": len(clouds)}
    return out


def _modelnet40(root: pathlib.Path, cache: pathlib.Path) -> dict:
    from geomdl.datasets import ModelNet

    mn = ModelNet(root, split="test", num_points=1024, rotation="z/SO3", processed_dir=cache)
    print(f"   ModelNet40 sample: {len(mn)} test shapes ({mn.format}), {_shape(mn[0], ['pos', 'normal'])}, label {int(mn[0].y)}")
    return {"modelnet40_test": len(mn)}


def _threedmatch(root: pathlib.Path, cache: pathlib.Path) -> dict:
    from geomdl.datasets import ThreeDMatch
    from geomdl.datasets.functional import overlap_ratio

    tdm = ThreeDMatch(root, missing="skip", voxel_size=0.025, processed_dir=cache)
    pair = tdm[0]
    ratio = overlap_ratio(pair.pos_ref, pair.pos_src, pair.transform[0], 0.0375)
    print(f"   3DMatch {pair.scene} pair {pair.ref_id}-{pair.src_id}: {pair.pos_ref.shape[0]} / {pair.pos_src.shape[0]} points "
          f"(2.5 cm voxels); after the gt pose {100 * ratio:.1f}% of src lies within 3.75 cm of ref (gt_overlap {float(pair.overlap):.4f})")
    return {"3dmatch_overlap": ratio}


def _qm9(root: pathlib.Path, cache: pathlib.Path) -> dict:
    from geomdl.datasets import QM9

    qm9 = QM9(root, processed_dir=cache)
    print(f"   QM9 sample: {len(qm9)} molecules, U0 of {qm9[0].smiles} = {float(qm9[0].y[0, 7]):.5f} Ha")
    return {"qm9": len(qm9)}


def _threebpa(root: pathlib.Path, cache: pathlib.Path) -> dict:
    from geomdl.datasets import ThreeBPA

    bpa = ThreeBPA(root, processed_dir=cache)
    print(f"   3BPA train_300K: {len(bpa)} frames of {bpa[0].z.numel()} atoms, energy {float(bpa[0].energy):.2f} eV")
    return {"3bpa": len(bpa)}


# the real samples the stage reads: (folder under the shared data, reader)
_REAL = (("modelnet40", _modelnet40), ("3dmatch", _threedmatch), ("qm9", _qm9), ("3bpa", _threebpa))


def _real(out_dir: pathlib.Path, quick: bool) -> dict:
    """Read the real samples whose folders are present; a missing one is skipped (it stopped the whole demo)."""
    cache = out_dir / "datasets_cache"
    out, missing = {}, []
    for folder, read in _REAL:
        if (_SHARED / folder).is_dir():
            out.update(read(_SHARED / folder, cache))
        else:
            missing.append(folder)
    if missing:
        print(f"   (real-data samples not found under {_SHARED}: {', '.join(missing)}; skipped reading them)")
    return out


def run(out_dir, quick: bool, seed: int = 0) -> dict:
    """``seed`` seeds the built-in data and the transforms; the real samples are read as they are."""
    out_dir = pathlib.Path(out_dir)
    result = {"builtin": _builtin(quick, seed)}
    if _SHARED.is_dir():
        result["real"] = _real(out_dir, quick)
    else:
        print(f"   (real-data samples not found at {_SHARED}; skipped reading them)")
    return result
