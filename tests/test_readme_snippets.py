"""The README's Python examples run as written, on small made-up inputs for the names they take as given.

Each ```python block of README.md is executed in a namespace holding the inputs its text assumes (``pos``,
``batch``, ``model``...). The dataset example would read the real datasets, so there ``get_dataset`` is
replaced by a check that the dataset name is registered and that every keyword binds to its constructor.
A README block this file does not know fails the test: a new example must be given its inputs here.
"""
from __future__ import annotations

import inspect
import pathlib
import re

import numpy as np
import pytest
import torch

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def _cloud(n=24, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=gen)


def _batch_vector(n, clouds=2):
    return torch.arange(clouds).repeat_interleave(n // clouds)


def _ops(tmp_path):
    return {}


def _testing(tmp_path):
    from geomdl.nn.ponita import Ponita

    pos = _cloud().double()
    model = Ponita(2, 1, out_vectors=1, num_ori=0, hidden=8, layers=1, task_level="node")
    return {"model": model, "pos": pos, "x": torch.randn(24, 2, dtype=torch.float64), "batch": _batch_vector(24)}


def _checked_get_dataset(name, root=None, **options):
    from geomdl.datasets.registry import DATASETS, canonical_name

    info = DATASETS[canonical_name(name)]
    inspect.signature(info.cls()).bind(*([] if canonical_name(name).startswith("synthetic_") else [root]),
                                       **{**dict(info.defaults), **options})
    return name


def _datasets(tmp_path):
    import geomdl.datasets

    return {"__patch__": (geomdl.datasets, "get_dataset", _checked_get_dataset)}


def _molecules(n=9, clouds=3):
    from torch_geometric.data import Batch, Data

    gen = torch.Generator().manual_seed(1)
    data = [Data(z=torch.randint(1, 9, (n,), generator=gen), pos=2 * torch.randn(n, 3, generator=gen)) for _ in range(clouds)]
    return Batch.from_data_list(data)


def _painn(tmp_path):
    return {"batch": _molecules()}


def _export(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the example saves egnn.pt2 in the working folder
    mol = _molecules()
    return {"z": mol.z, "pos": mol.pos, "batch": mol.batch}


def _ponita(tmp_path):
    mol = _molecules()
    z = torch.tensor([1, 6, 7, 8])[torch.arange(mol.num_nodes) % 4]
    return {"pos": mol.pos, "x": torch.randn(mol.num_nodes, 5), "vec": torch.randn(mol.num_nodes, 1, 3),
            "batch": mol.batch, "z": z}


def _tinv(tmp_path):
    import geomdl
    import geomdl.models.pointnet  # noqa: F401  (the example names geomdl.models.pointnet)

    pos = _cloud(20)
    d1 = torch.cdist(_cloud(6, 1), _cloud(6, 1))
    d2 = torch.cdist(_cloud(8, 2), _cloud(8, 2))
    ring = torch.arange(10)
    edge_index = torch.stack([torch.cat([ring, (ring + 1) % 10]), torch.cat([(ring + 1) % 10, ring])])
    return {"geomdl": geomdl, "pos": pos, "batch": _batch_vector(20), "D1": d1, "D2": d2,
            "edge_index": edge_index, "n": 10}


def _apen(tmp_path):
    from torch_geometric.data import Batch, Data

    pos = _cloud(32)
    data = Batch.from_data_list([Data(pos=pos[:16]), Data(pos=pos[16:])])
    return {"data": data, "pos": pos, "batch": data.batch, "gt_part": (torch.arange(32) // 8)}


def _registration(tmp_path, monkeypatch):
    from geomdl.pipelines.registration.geometry import transform
    from geomdl.pipelines.registration.pairs import random_pose, synthetic_shape

    gen = torch.Generator().manual_seed(3)
    shape = synthetic_shape(2000, generator=gen)
    np.save(tmp_path / "cloud_bin_0.npy", shape.numpy())
    np.save(tmp_path / "cloud_bin_4.npy", transform(shape, random_pose(gen)).numpy())
    monkeypatch.chdir(tmp_path)
    return {"__rename__": (".ply", ".npy")}


# first import line of each README block -> the inputs it assumes
INPUTS = {
    "from geomdl import ops": _ops,
    "from geomdl.testing import assert_equivariant": _testing,
    "from geomdl.datasets import get_dataset, transforms as T": _datasets,
    "from geomdl.export import load": _export,
    "from geomdl.models.painn import PaiNN": _painn,
    "from geomdl.nn.ponita import Ponita, PonitaPotential": _ponita,
    "from geomdl.nn.tinv import mds_embedding, TinvNet, geodesic_distances": _tinv,
    "from geomdl.nn.apen import APEN, GlobalFrameAveragedNet, piecewise_equivariance_error": _apen,
    "from geomdl.pipelines.registration import read_point_cloud, register": _registration,
}


def _key(block: str) -> str:
    return next(line for line in block.splitlines() if line.startswith("from geomdl"))


def test_every_readme_example_has_inputs_here():
    keys = [_key(b) if any(line.startswith("from geomdl") for line in b.splitlines()) else b.splitlines()[0]
            for b in python_blocks()]
    assert keys and all(k in INPUTS for k in keys), [k for k in keys if k not in INPUTS]


@pytest.mark.parametrize("key", list(INPUTS))
def test_readme_example_runs(key, tmp_path, monkeypatch):
    blocks = [b for b in python_blocks() if any(line.startswith("from geomdl") for line in b.splitlines()) and _key(b) == key]
    assert len(blocks) == 1, f"README has {len(blocks)} examples starting with {key!r}"
    code = blocks[0]
    builder = INPUTS[key]
    namespace = builder(tmp_path, monkeypatch) if "monkeypatch" in inspect.signature(builder).parameters else builder(tmp_path)
    if "__patch__" in namespace:
        module, name, value = namespace.pop("__patch__")
        monkeypatch.setattr(module, name, value)
    if "__rename__" in namespace:
        old, new = namespace.pop("__rename__")
        code = code.replace(old, new)
    torch.manual_seed(0)
    exec(compile(code, f"README.md example {key!r}", "exec"), namespace)


def test_commands_and_benchmarks_named_in_the_readme_exist():
    from benchmarks.__main__ import BENCHMARKS
    from geomdl.cli import COMMANDS

    text = README.read_text(encoding="utf-8")
    commands = set(re.findall(r"(?:^|`)geomdl ([a-z][a-z0-9-]*)", text, flags=re.M))
    assert commands and commands <= set(COMMANDS), commands - set(COMMANDS)
    benchmarks = set(re.findall(r"python -m benchmarks ([a-z_0-9]+)", text))
    assert benchmarks and benchmarks <= set(BENCHMARKS), benchmarks - set(BENCHMARKS)
    configs = pathlib.Path(__file__).resolve().parents[1] / "geomdl" / "configs"
    experiments = set(re.findall(r"geomdl train ([a-z_0-9]+)\b(?!\.yaml)", text))
    assert experiments and all((configs / f"{e}.yaml").is_file() for e in experiments), experiments
