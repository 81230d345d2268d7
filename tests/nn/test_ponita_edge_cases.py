"""PONITA on degenerate batches and bad inputs: graphs without edges in grid mode, inputs in another
dtype, a too small num_graphs, and PonitaGraph on geometry alone."""
from types import SimpleNamespace

import pytest
import torch

from geomdl.models.ponita import PonitaEnergy, PonitaGraph
from geomdl.nn.ponita import Ponita, PonitaPotential

SMALL = dict(hidden=8, layers=2, basis_dim=6)


@pytest.mark.parametrize("radius", [None, 2.0])
@pytest.mark.parametrize("dim", [2, 3])
def test_grid_mode_handles_graphs_without_edges(radius, dim):
    """A one-atom graph (or a batch of them) has no edges once self loops are applied per node: its output
    must equal the one it gets next to another graph in a batch."""
    torch.manual_seed(0)
    net = Ponita(2, 2, 1, num_ori=5, dim=dim, radius=radius, **SMALL).double()
    gen = torch.Generator().manual_seed(1)
    pos = torch.randn(4, dim, generator=gen, dtype=torch.float64)
    x = torch.randn(4, 2, generator=gen, dtype=torch.float64)
    s1, v1 = net(pos[:1], x[:1])
    s_all, v_all = net(pos, x, batch=torch.tensor([0, 1, 1, 1]))
    assert torch.allclose(s1, s_all[:1], rtol=0, atol=1e-12) and torch.allclose(v1, v_all[:1], rtol=0, atol=1e-12)
    s, v = net(pos[:3], x[:3], batch=torch.tensor([0, 1, 2]))  # three isolated atoms
    assert torch.allclose(s[0], s1[0], rtol=0, atol=1e-12) and s.shape == (3, 2) and v.shape == (3, 1, dim)


def test_potential_single_atom_in_grid_mode_has_zero_forces():
    torch.manual_seed(0)
    model = PonitaPotential([1, 8], num_ori=4, **SMALL).double()
    out = model(torch.tensor([8]), torch.zeros(1, 3, dtype=torch.float64), create_graph=True)
    assert torch.isfinite(out["energy"]).all() and torch.equal(out["forces"], torch.zeros(1, 3, dtype=torch.float64))


@pytest.mark.parametrize("name", ["x", "vec", "ori"])
def test_inputs_in_another_dtype_raise_a_type_error_naming_them(name):
    net = Ponita(2, 1, 1, in_vectors=1, num_ori=-1, **SMALL)  # float32
    args = dict(x=torch.randn(5, 2), vec=torch.randn(5, 1, 3),
                ori=torch.nn.functional.normalize(torch.randn(5, 3), dim=-1))
    args[name] = args[name].double()
    with pytest.raises(TypeError, match=name):
        net(torch.randn(5, 3), **args)


def test_integer_features_raise_a_type_error():
    net = Ponita(2, 1, num_ori=4, **SMALL)
    with pytest.raises(TypeError, match="x has dtype torch.int64"):
        net(torch.randn(5, 3), torch.ones(5, 2, dtype=torch.long))


@pytest.mark.parametrize("num_graphs", [2, -1, 2.0])
def test_bad_num_graphs_is_named(num_graphs):
    net = Ponita(1, 1, num_ori=0, **SMALL)
    with pytest.raises(ValueError, match="num_graphs"):
        net(torch.randn(5, 3), torch.randn(5, 1), batch=torch.tensor([0, 0, 1, 1, 2]), num_graphs=num_graphs)
    out, _ = net(torch.randn(5, 3), torch.randn(5, 1), batch=torch.tensor([0, 0, 1, 1, 2]), num_graphs=4)
    assert out.shape == (4, 1) and torch.equal(out[3], torch.zeros(1))  # more graphs than ids: empty ones are 0


def test_ponita_graph_on_geometry_alone():
    torch.manual_seed(0)
    model = PonitaGraph(2, atomic_numbers=None, num_ori=4, **SMALL)
    batch = SimpleNamespace(pos=torch.randn(6, 3), batch=torch.tensor([0, 0, 0, 1, 1, 1]), num_graphs=2)
    out = model(batch)
    assert out.shape == (2, 2) and torch.isfinite(out).all()


@pytest.mark.parametrize("scale", [0.5, 0.0, float("nan"), 1.01])
def test_orientations_that_are_not_unit_vectors_are_rejected(scale):
    net = Ponita(2, 1, num_ori=-1, **SMALL)
    ori = torch.nn.functional.normalize(torch.randn(5, 3), dim=-1)
    net(torch.randn(5, 3), torch.randn(5, 2), ori=ori * (1 + 5e-4))  # within the tolerance: accepted
    ori[3] = ori[3] * scale
    with pytest.raises(ValueError, match=r"ori must hold unit vectors.*1 of 5 rows.*first row 3"):
        net(torch.randn(5, 3), torch.randn(5, 2), ori=ori)


def test_a_grid_override_that_is_not_unit_is_rejected():
    net = Ponita(2, 1, num_ori=4, **SMALL)
    with pytest.raises(ValueError, match="grid must hold unit vectors"):
        net(torch.randn(5, 3), torch.randn(5, 2), grid=net.grid.float() * 2)


def test_a_grid_override_less_precise_than_pos_is_rejected():
    # a float32 grid in a float64 model was silently used: float32-rounded orientations, ~1e-7 equivariance
    net = Ponita(2, 1, num_ori=4, **SMALL).double()
    pos, x = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    net(pos, x, grid=net.grid.clone())
    with pytest.raises(TypeError, match=r"grid has dtype torch.float32, less precise than pos \(torch.float64\)"):
        net(pos, x, grid=net.grid.float())
    # the float64 buffer (e.g. the co-rotated G R^T) in a float32 model is the documented use: rounded to float32
    net32 = Ponita(2, 1, num_ori=4, **SMALL)
    assert net32.grid.dtype == torch.float64
    torch.testing.assert_close(net32(pos.float(), x.float(), grid=net32.grid)[0], net32(pos.float(), x.float())[0])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_unit_orientations_are_accepted(dtype):
    # bfloat16 rounds a unit vector's norm to 0.996 or 1.008: a fixed 1e-3 tolerance refused normalised input
    net = Ponita(2, 1, num_ori=-1, **SMALL).to(dtype)
    ori = torch.nn.functional.normalize(torch.randn(200, 3, generator=torch.Generator().manual_seed(0)), dim=-1).to(dtype)
    net(torch.randn(200, 3).to(dtype), torch.randn(200, 2).to(dtype), ori=ori)
    with pytest.raises(ValueError, match="ori must hold unit vectors"):
        net(torch.randn(200, 3).to(dtype), torch.randn(200, 2).to(dtype), ori=ori * 1.05)


@pytest.mark.parametrize("num_ori", [-1, 0, 6])
def test_a_given_edge_index_is_the_graph_in_every_mode_with_a_radius(num_ori):
    # chain 0 - 1 - 2, all within the radius: with one layer node 0 must not see node 2. The lifted mode
    # (num_ori=-1 without ori) rebuilt its lifted graph from the radius and ignored the given edges.
    pos = torch.tensor([[0.0, 0, 0], [1.0, 0.2, 0], [2.0, -0.1, 0.3]], dtype=torch.float64)
    chain = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    torch.manual_seed(1)
    net = Ponita(2, 1, hidden=8, layers=1, basis_dim=6, num_ori=num_ori, radius=10.0, task_level="node").double()
    x = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(net(pos, x, edge_index=chain)[0][0].sum(), x)
    assert torch.all(g[2] == 0) and g[1].abs().max() > 0
    (g,) = torch.autograd.grad(net(pos, x)[0][0].sum(), x)  # the default graph: every pair within the radius
    assert g[2].abs().max() > 0


@pytest.mark.parametrize("radius", [float("inf"), float("nan"), 0.0, -1.0, "2", True])
def test_bad_radius_is_rejected_at_construction(radius):
    # inf was accepted here and failed in forward with "r must be a positive finite number"
    with pytest.raises(ValueError, match="radius must be a positive finite number"):
        Ponita(2, 1, radius=radius, **SMALL)


def test_potential_numbers_and_pos_of_different_lengths_name_numbers():
    pot = PonitaPotential([1, 6], hidden=8, layers=1, num_ori=4)
    with pytest.raises(ValueError, match=r"numbers must have one entry per atom of pos \(\(5, 3\)\), got shape \(4,\)"):
        pot(torch.tensor([1, 6, 6, 1]), torch.randn(5, 3))


def test_ponita_graph_repeated_elements_get_one_column_and_reload():
    """A repeated element made a dead one-hot column and a type_map that no longer matched atomic_numbers: the
    model could not load its own state_dict."""
    model = PonitaGraph(1, atomic_numbers=(6, 1, 1), **SMALL)
    assert model.atomic_numbers == [1, 6] and model.net.in_scalars == 2
    PonitaGraph(1, atomic_numbers=(1, 1, 6), **SMALL).load_state_dict(model.state_dict())
    for bad in ((0, 1), (-1, 6), (1, 119)):
        with pytest.raises(ValueError, match="atomic_numbers"):
            PonitaGraph(1, atomic_numbers=bad, **SMALL)


@pytest.mark.parametrize("z", [-118, -1, 200])
def test_ponita_graph_rejects_atomic_numbers_out_of_range(z):
    """A negative z indexed type_map from its end: z = -118 was read as hydrogen without an error."""
    model = PonitaGraph(1, atomic_numbers=(1, 6), **SMALL)
    batch = SimpleNamespace(pos=torch.randn(3, 3), batch=torch.zeros(3, dtype=torch.long), num_graphs=1,
                            z=torch.tensor([1, 6, z]))
    with pytest.raises(ValueError, match="batch.z"):
        model(batch)


@pytest.mark.parametrize("which", ["graph", "energy"])
def test_ponita_models_take_a_single_data(which):
    """``model(data)`` on one ``Data`` (no batch vector, no ``num_graphs``) failed with an AttributeError of
    PyG's storage; the other registered models take it as one graph."""
    from torch_geometric.data import Batch, Data

    torch.manual_seed(0)
    model = (PonitaGraph(2, atomic_numbers=(1, 6, 8), num_ori=4, radius=2.0, **SMALL) if which == "graph"
             else PonitaEnergy((1, 6, 8), num_ori=4, radius=2.0, **SMALL))
    data = Data(pos=torch.randn(5, 3), z=torch.tensor([1, 6, 6, 8, 1]))
    out = model(data)
    assert out.shape == ((1, 2) if which == "graph" else (1,))
    torch.testing.assert_close(out, model(Batch.from_data_list([data])), rtol=0, atol=0)
