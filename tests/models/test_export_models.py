"""Models and layers under ``torch.export.export`` (non-strict, torch's default), float64, with the number of
nodes (and of edges, where edges are inputs) dynamic: the program is traced on one graph, run on a graph of
another size and compared with eager, also after ``torch.export.save`` / ``torch.export.load`` (in memory here;
in a fresh process, through :func:`geomdl.export.load`, below).

The models build their graphs in ``forward`` (radius graphs, kNN, FPS), which traces only as the compiled
extension's operators, so these need it. Not here: ``PonitaPotential``'s forces (``torch.autograd.grad`` inside
``forward``: torch.export leaves fake tensors in the program) and APEN with inferred parts (EM in Python)."""
import functools
import io
import subprocess
import sys

import pytest
import torch
from torch.export import Dim

from geomdl import ops
from geomdl.models.dgcnn import DGCNN
from geomdl.models.egnn import EGNN
from geomdl.models.nequip import NequIP
from geomdl.models.painn import PaiNN
from geomdl.models.pointnet import PointNet
from geomdl.models.pointnet2 import PointNet2
from geomdl.models.ponita import PonitaGraph
from geomdl.models.tiny_pointnet import TinyPointNet
from geomdl.nn import EGNNLayer, EquivariantConv, GauntConvolution
from geomdl.nn.apen.model import GlobalFrameAveragedNet
from geomdl.nn.ponita import PonitaPotential
from geomdl.testing import assert_exports

pytestmark = pytest.mark.skipif(not ops.has_kernel("knn"), reason="graph building exports only as the compiled "
                                "extension's operators (geomdl._C not loaded)")

PONITA = {"hidden": 8, "layers": 1, "num_ori": 4, "radius": 2.0}
POINTNET2 = {"radii": (1.0, 2.0), "sa_channels": ((8,), (8,)), "global_channels": (8,), "fp_channels": (8, 8, 8),
             "head_channels": (8,), "dropout": 0.0}
NODES = Dim("nodes", min=2)
EDGES = Dim("edges", min=2)


class _Batch:
    """The attributes a torch_geometric batch hands the models; the number of graphs from the data."""

    def __init__(self, z, pos, batch):
        self.z, self.pos, self.batch, self.num_graphs = z, pos, batch, batch.max().item() + 1


class _CalledOnBatch(torch.nn.Module):
    """``model(batch)`` for models that take a batch object, called with tensors."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, z, pos, batch):
        return self.model(_Batch(z, pos, batch))


class _Energy(torch.nn.Module):
    """``PonitaPotential.energy``: the number of graphs from ``batch`` (``batch.max() + 1``, data-dependent)."""

    def __init__(self, potential):
        super().__init__()
        self.potential = potential

    def forward(self, z, pos, batch):
        return self.potential.energy(z, pos, batch)


def _molecules(n, seed, clouds=2):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(n, 3, generator=g, dtype=torch.float64)
    batch = torch.arange(clouds).repeat_interleave(torch.tensor([n // clouds] * (clouds - 1) + [n - n // clouds * (clouds - 1)]))
    z = torch.tensor([1, 6, 7, 8])[torch.randint(0, 4, (n,), generator=g)]
    return z, pos, batch


MODELS = {  # name -> (model, which of (z, pos, batch) it takes)
    "egnn": lambda: (EGNN(1, 8, 2, cutoff=2.0), "zpb"),
    "egnn_full_graph": lambda: (EGNN(1, 8, 2, cutoff=None), "zpb"),  # all pairs: no radius op, a data-dependent E
    "painn": lambda: (PaiNN(1, 8, 1, cutoff=2.0), "zpb"),
    "nequip": lambda: (NequIP(1, 4, 1, cutoff=2.0), "zpb"),  # CG products: the einsum chain under export
    "pointnet": lambda: (PointNet(3), "p_b"),
    "pointnet2_node": lambda: (PointNet2(3, task="node", **POINTNET2), "p_b"),  # FPS, balls, kNN interpolation
    "dgcnn": lambda: (DGCNN(3, k=4, conv_channels=(8, 8), emb_channels=16, head_channels=(8,), dropout=0.0), "p_b"),
    "tiny_pointnet": lambda: (_CalledOnBatch(TinyPointNet(3)), "zpb"),
    "ponita_graph": lambda: (_CalledOnBatch(PonitaGraph(2, atomic_numbers=(1, 6, 7, 8), **PONITA)), "zpb"),
    "ponita_potential_energy": lambda: (_Energy(PonitaPotential([1, 6, 7, 8], **PONITA)), "zpb"),
    # activation checkpointing asked for: off inside the traced graph (the plain path is exported)
    "ponita_graph_checkpoint": lambda: (_CalledOnBatch(PonitaGraph(2, atomic_numbers=(1, 6, 7, 8), checkpoint=True,
                                                                   **PONITA)), "zpb"),
    "apen_global": lambda: (GlobalFrameAveragedNet(3, hidden=8, num_layers=2), "pb"),
}


def _args(spec, z, pos, batch):
    return tuple({"z": z, "p": pos, "b": batch, "_": None}[c] for c in spec)


@functools.lru_cache(maxsize=None)  # the fresh-process test reuses programs
def _export_model(name):
    torch.manual_seed(0)
    model, spec = MODELS[name]()
    args = _args(spec, *_molecules(30, 0))
    dynamic = tuple(None if a is None else {0: NODES} for a in args)
    other = [_args(spec, *_molecules(47, 1)), _args(spec, *_molecules(9, 2, clouds=3))]  # other N, E and clouds
    model = model.double().eval()
    return model, assert_exports(model, args, dynamic, other), other


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_exports_with_a_dynamic_node_count(name):
    _, program, _ = _export_model(name)
    if name == "nequip":  # the sparse CG operator names its plan by a process-local id: not in saved programs
        targets = {str(node.target) for node in program.graph.nodes}
        assert not any("sparse_trilinear" in t for t in targets)


def test_forces_of_an_exported_ponita_energy_equal_the_potential_forces():
    """The potential's forces do not export (autograd.grad in forward), but the exported energy, saved and loaded,
    is differentiable: ``-dE/dpos`` of the loaded program equals ``PonitaPotential(...)(z, pos)["forces"]``."""
    model, program, other = _export_model("ponita_potential_energy")
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    buffer.seek(0)
    loaded = torch.export.load(buffer).module()
    z, pos, batch = other[0]
    pos = pos.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loaded(z, pos, batch).sum(), pos)
    expected = model.potential(z, pos.detach(), batch)["forces"]
    torch.testing.assert_close(-grad, expected, atol=1e-10, rtol=1e-8)


def _graph(n, seed, channels):
    g = torch.Generator().manual_seed(seed)
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    keep = (i != j) & ((i - j).abs() < 4)
    x = torch.randn(n, channels, generator=g, dtype=torch.float64)
    return x, torch.randn(n, 3, generator=g, dtype=torch.float64), torch.stack([j[keep], i[keep]])


LAYERS = {  # name -> (layer, feature width); called as layer(x, pos, edge_index)
    "egnn_layer": lambda: (EGNNLayer(4, 8, attention=True, normalize=True), 4),
    "equivariant_conv_cg": lambda: (EquivariantConv("4x0e+2x1o", "2x0e+2x1o+1x1e", product="cg", cutoff=4.0), 10),
    "gaunt_convolution": lambda: (GauntConvolution("2x0e+2x1o+2x2e", "2x0e+2x1o+2x2e", cutoff=4.0), 18),
}


@functools.lru_cache(maxsize=None)
def _export_layer(name):
    torch.manual_seed(0)
    layer, c = LAYERS[name]()
    layer = layer.double().eval()
    return layer, assert_exports(layer, _graph(10, 0, c), ({0: NODES}, {0: NODES}, {1: EDGES}), [_graph(17, 1, c)])


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_exports_with_dynamic_node_and_edge_counts(name):
    _export_layer(name)


def test_saved_programs_load_in_a_fresh_process_after_registering_geomdl_operators(tmp_path):
    """A new interpreter: ``import geomdl`` alone does not register the operators (torch.export.load fails);
    :func:`geomdl.export.load` registers them (compiled kernels, Python-defined Gaunt operators) and loads."""
    model, program, other = _export_model("egnn")
    layer, layer_program = _export_layer("gaunt_convolution")
    layer_args = _graph(13, 3, 18)
    for stem, prog, module, args in (("egnn", program, model, other[0]), ("gaunt", layer_program, layer, layer_args)):
        torch.export.save(prog, tmp_path / f"{stem}.pt2")
        with torch.no_grad():
            torch.save((args, module(*args)), tmp_path / f"{stem}.io")
    code = f"""
import torch, geomdl
try:
    torch.export.load({str(tmp_path / 'egnn.pt2')!r})
except RuntimeError:
    print("plain load fails")
import geomdl.export
for stem in ("egnn", "gaunt"):
    program = geomdl.export.load({str(tmp_path)!r} + "/" + stem + ".pt2")
    args, expected = torch.load({str(tmp_path)!r} + "/" + stem + ".io")
    torch.testing.assert_close(program.module()(*args), expected, atol=1e-10, rtol=1e-8)
    print(stem, "ok")
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split() == ["plain", "load", "fails", "egnn", "ok", "gaunt", "ok"]


def test_load_names_a_missing_extension(monkeypatch, tmp_path):
    import geomdl.export

    monkeypatch.setattr(ops, "extension_loaded", lambda: False)
    monkeypatch.setattr(ops, "extension_error", lambda: "the compiled extension geomdl._C is not built")
    with pytest.raises(RuntimeError, match="geomdl._C is not built"):
        geomdl.export.load(tmp_path / "model.pt2")


def test_load_names_an_operator_that_is_not_registered(tmp_path):
    """A program calling an operator this process does not know (another library's, or one geomdl no longer
    has): geomdl.export.load says which, instead of torch's "check the warnings above"."""
    save = f"""
import torch

@torch.library.custom_op("geomdl_test_gone::twice", mutates_args=())
def twice(x: torch.Tensor) -> torch.Tensor:
    return 2 * x

@twice.register_fake
def _(x):
    return torch.empty_like(x)

class M(torch.nn.Module):
    def forward(self, x):
        return twice(x) + 1

torch.export.save(torch.export.export(M(), (torch.ones(3),)), {str(tmp_path / 'gone.pt2')!r})
"""
    load = f"""
import geomdl.export
try:
    geomdl.export.load({str(tmp_path / 'gone.pt2')!r})
except RuntimeError as exc:
    print(exc)
"""
    for code in (save, load):
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-3000:]
    assert "gone.pt2: the program calls torch.ops.geomdl_test_gone.twice" in run.stdout, run.stdout
    assert "not registered" in run.stdout
