"""Device->host synchronisations per forward (and training step) of the models, counted on the CPU.

On a GPU every ``.item()``, ``int(t)``, ``float(t)``, ``bool(t)`` and ``.tolist()`` waits for the device (a
stall of the pipeline). On the CPU the scalar reads show up as calls of ``aten._local_scalar_dense`` under a
``TorchDispatchMode``; ``Tensor.tolist`` reads the data without the dispatcher, so the counter wraps it. The
bounds below are the measured counts (small batch: 3 molecules / clouds); a change that adds a read fails here,
one that removes reads should lower the bound.
"""
from __future__ import annotations

import collections

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from geomdl.models.dgcnn import DGCNN
from geomdl.models.egnn import EGNN
from geomdl.models.nequip import NequIP
from geomdl.models.painn import PaiNN
from geomdl.models.pointnet import PointNet
from geomdl.models.pointnet2 import PointNet2
from geomdl.models.ponita import PonitaEnergy, PonitaGraph
from geomdl.models.tiny_pointnet import TinyPointNet
from geomdl.nn.ponita import PonitaPotential


class HostSyncCounter(TorchDispatchMode):
    """``with HostSyncCounter() as c: ...`` -> ``c.syncs``: ``_local_scalar_dense`` calls plus ``Tensor.tolist``
    calls (each one device->host read on a GPU); ``c.ops``: all counted events by kind."""

    def __init__(self):
        super().__init__()
        self.ops = collections.Counter()

    @property
    def syncs(self) -> int:
        return self.ops["_local_scalar_dense"] + self.ops["tolist"]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.ops["_local_scalar_dense"] += 1
        return func(*args, **(kwargs or {}))

    def __enter__(self):
        self._tolist = original = torch.Tensor.tolist

        def tolist(t):
            self.ops["tolist"] += 1
            return original(t)

        torch.Tensor.tolist = tolist
        return super().__enter__()

    def __exit__(self, *exc):
        torch.Tensor.tolist = self._tolist
        return super().__exit__(*exc)


def test_counter_counts_scalar_reads_and_tolist():
    t = torch.arange(4)

    def two_items():
        return t[0].item() + t[1].item()

    with HostSyncCounter() as c:
        two_items()
    assert c.syncs == 2 and c.ops["_local_scalar_dense"] == 2
    with HostSyncCounter() as c:
        int(t.max()), bool((t > 1).any()), float(t.sum()), t.tolist()
    assert c.syncs == 4 and c.ops["tolist"] == 1
    with HostSyncCounter() as c:
        t * 2 + 1
    assert c.syncs == 0
    assert torch.Tensor.tolist(t) == [0, 1, 2, 3]  # restored


SIZES = (6, 5, 4)


def _inputs():
    g = torch.Generator().manual_seed(0)
    n = sum(SIZES)
    pos = torch.randn(n, 3, generator=g, dtype=torch.float64) * 1.2
    batch = torch.repeat_interleave(torch.arange(len(SIZES)), torch.tensor(SIZES))
    z = torch.tensor([1, 6, 7, 8])[torch.randint(0, 4, (n,), generator=g)]
    return z, pos, batch


def _data(z, pos, batch):
    from torch_geometric.data import Batch, Data

    return Batch.from_data_list([Data(z=z[batch == i], pos=pos[batch == i]) for i in range(len(SIZES))])


def _count(fn) -> int:
    fn()  # warm-up: one-time work (plans, caches) is not per step
    with HostSyncCounter() as c:
        fn()
    return c.syncs


MOLECULAR = {
    "egnn": lambda: EGNN(hidden_channels=8, num_layers=2, num_elements=10, cutoff=2.0),
    "egnn_full_graph": lambda: EGNN(hidden_channels=8, num_layers=2, num_elements=10, cutoff=None),
    "painn": lambda: PaiNN(hidden_channels=8, num_layers=2, num_elements=10, cutoff=2.0),
    "nequip": lambda: NequIP(hidden_channels=8, num_layers=2, lmax=1, num_elements=10, cutoff=2.0),
}
# (forward, energy_and_forces + backward, energy_and_forces(Data) + backward); before: 23 / 23 / 27 (11 / 11 / 15
# for the full graph): z range, batch and edge_index checks with one read per value, inputs checked twice for Data
MOLECULAR_BOUNDS = {"egnn": (7, 7, 7), "egnn_full_graph": (4, 4, 4), "painn": (7, 7, 7), "nequip": (7, 7, 7)}


@pytest.mark.parametrize("name", sorted(MOLECULAR))
def test_molecular_models(name):
    z, pos, batch = _inputs()
    data = _data(z, pos, batch)
    model = MOLECULAR[name]().double().train()

    def step(*args):
        e, f = model.energy_and_forces(*args)
        (e.pow(2).sum() + f.pow(2).sum()).backward()

    counts = (_count(lambda: model(z, pos, batch)), _count(lambda: step(z, pos, batch)), _count(lambda: step(data)))
    bounds = MOLECULAR_BOUNDS[name]
    assert all(c <= b for c, b in zip(counts, bounds)), f"{name}: syncs {counts}, at most {bounds}"


P2 = dict(ratios=(0.5,), radii=(1.0,), sa_channels=((8, 8),), global_channels=(16,), fp_channels=(8, 8),
          head_channels=(8,), dropout=0.0)
POINTS = {
    "pointnet": (lambda: PointNet(3, local_channels=(8,), global_channels=(16,), head_channels=(8,), dropout=0.0), 2),  # before 3
    "pointnet2_graph": (lambda: PointNet2(3, **P2), 16),  # before 32
    "pointnet2_node": (lambda: PointNet2(3, task="node", **P2), 34),  # before 68
    "dgcnn": (lambda: DGCNN(3, k=4, conv_channels=(8, 8), emb_channels=16, head_channels=(8,), dropout=0.0), 12),  # before 43
}


@pytest.mark.parametrize("name", sorted(POINTS))
def test_point_models(name):
    _, pos, batch = _inputs()
    make, bound = POINTS[name]
    model = make().double().train()
    fwd = _count(lambda: model(pos, None, batch))
    step = _count(lambda: model(pos, None, batch).sum().backward())
    assert fwd <= bound and step <= bound, f"{name}: syncs {fwd} (forward), {step} (training step), at most {bound}"


PONITA = {"hidden": 8, "layers": 2, "num_ori": 4, "radius": 2.0}


def test_tiny_pointnet():
    z, pos, batch = _inputs()
    model = TinyPointNet(3).double()
    data = _data(z, pos, batch)
    assert _count(lambda: model(data)) <= 1 and _count(lambda: model(data).sum().backward()) <= 1


def test_ponita_graph():
    z, pos, batch = _inputs()
    data = _data(z, pos, batch)
    model = PonitaGraph(2, atomic_numbers=(1, 6, 7, 8), **PONITA).double()
    fwd, step = _count(lambda: model(data)), _count(lambda: model(data).sum().backward())
    assert fwd <= 5 and step <= 5, (fwd, step)  # before 18


def test_ponita_energy_and_potential():
    z, pos, batch = _inputs()
    data = _data(z, pos, batch)
    energy = PonitaEnergy((1, 6, 7, 8), **PONITA).double()
    assert _count(lambda: energy(data)) <= 5  # before 20
    pot = PonitaPotential([1, 6, 7, 8], **PONITA).double().train()

    def step():
        out = pot(z, pos, batch, len(SIZES))
        (out["energy"].pow(2).sum() + out["forces"].pow(2).sum()).backward()

    assert _count(lambda: pot(z, pos, batch, len(SIZES))) <= 5  # before 20
    assert _count(lambda: pot(z, pos, batch)) <= 6  # num_graphs from batch.max(): one read more; before 21
    assert _count(step) <= 5  # before 20


def test_ponita_types_one_read_and_same_errors():
    pot = PonitaPotential([1, 6, 8], hidden=8, layers=1, num_ori=4, radius=2.0)
    numbers = torch.tensor([1, 6, 8, 8, 1])
    with HostSyncCounter() as c:
        t = pot.types(numbers)
    assert c.syncs == 1 and t.tolist() == [0, 1, 2, 2, 0]  # before 3
    with pytest.raises(ValueError, match=r"elements \[7\] were not in the training set \[1, 6, 8\]"):
        pot.types(torch.tensor([1, 7]))
    for bad in ([1, 119], [-1, 1], [-200, 1]):
        with pytest.raises(ValueError, match=r"atomic numbers must lie in 0\.\.118"):
            pot.types(torch.tensor(bad))
    assert pot.types(torch.zeros(0, dtype=torch.long)).shape == (0,)


# --- the compiled/exported paths, where the value checks are skipped, and the counts of Data batches ----------


def test_compiled_ponita_energy_still_rejects_an_unknown_element():
    """Compiled, the eager element check is skipped: ``F.one_hot`` must still reject the ``-1`` type of an
    unknown element (a comparison-based one-hot would give a zero row and a silently wrong energy)."""
    torch._dynamo.reset()
    pot = PonitaPotential([1, 6, 7, 8], hidden=8, layers=1, num_ori=4, radius=2.0).double()
    pos = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    fn = torch.compile(lambda z, pos, batch: pot.energy(z, pos, batch, 1), backend="aot_eager", fullgraph=True)
    batch = torch.zeros(5, dtype=torch.long)
    fn(torch.tensor([1, 6, 7, 8, 7]), pos, batch)  # known elements: fine
    with pytest.raises(RuntimeError, match="non-negative"):
        fn(torch.tensor([1, 6, 2, 8, 7]), pos, batch)  # 2 (He) is not one of them


class _NoBatch(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, z, pos):
        return self.model(z, pos)


def test_exported_egnn_without_batch_has_no_phantom_graph_on_zero_nodes():
    """``batch=None`` inside an exported graph: the graph count follows the (dynamic) node count, not a
    constant 1 baked in at tracing time."""
    from torch.export import Dim

    torch.manual_seed(0)
    model = _NoBatch(EGNN(1, 8, 2, cutoff=2.0).double().eval())
    z, pos = torch.tensor([1, 6, 7, 8] * 5), torch.randn(20, 3, dtype=torch.float64)
    program = torch.export.export(model, (z, pos), dynamic_shapes=({0: Dim("n")}, {0: Dim("n")})).module()
    assert program(z[:0], pos[:0]).shape == model(z[:0], pos[:0]).shape == (0, 1)
    assert torch.allclose(program(z[:7], pos[:7]), model(z[:7], pos[:7]))


def test_a_batch_whose_last_graph_has_no_nodes_keeps_its_row():
    """A PyG Batch of 3 graphs, the last without atoms: 3 energies (the empty graph's is 0), not 2."""
    from torch_geometric.data import Batch, Data

    torch.manual_seed(0)
    graphs = [Data(z=torch.tensor([1, 6, 8]), pos=torch.randn(3, 3)), Data(z=torch.tensor([1, 1]), pos=torch.randn(2, 3)),
              Data(z=torch.zeros(0, dtype=torch.long), pos=torch.zeros(0, 3))]
    batch = Batch.from_data_list(graphs)
    model = EGNN(1, 8, 2, cutoff=3.0)
    out = model(batch)
    assert out.shape == (3, 1) and out[2].abs().max() == 0
    energy, forces = model.energy_and_forces(batch)
    assert energy.shape == (3,) and forces.shape == (5, 3)
    assert torch.allclose(out[:2], model(Batch.from_data_list(graphs[:2])))


def test_energy_and_forces_goes_through_a_subclass_forward():
    calls = []

    class Logged(EGNN):
        def forward(self, z, pos=None, batch=None):
            calls.append(1)
            return super().forward(z, pos, batch)

    from torch_geometric.data import Batch, Data

    torch.manual_seed(0)
    batch = Batch.from_data_list([Data(z=torch.tensor([1, 6, 8]), pos=torch.randn(3, 3))])
    Logged(1, 8, 2, cutoff=3.0).energy_and_forces(batch)
    assert calls == [1]
