import sys
import pathlib

import pytest
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "nn"))
from layer_checks import state_dict_roundtrip  # noqa: E402

from geomdl.models import MODELS  # noqa: E402
from geomdl.models.egnn import EGNN  # noqa: E402
from geomdl.models.painn import PaiNN  # noqa: E402
from geomdl.testing import assert_equivariant  # noqa: E402

SMALL = {
    "egnn": lambda **kw: EGNN(hidden_channels=8, num_layers=2, num_elements=10, **kw),
    "egnn_rbf_coords": lambda **kw: EGNN(hidden_channels=8, num_layers=2, num_elements=10, num_rbf=4, update_coords=True, **kw),
    "painn": lambda **kw: PaiNN(hidden_channels=8, num_layers=2, num_elements=10, num_rbf=6, **kw),
}


def _molecules(seed=0, sizes=(5, 4)):
    g = torch.Generator().manual_seed(seed)
    n = sum(sizes)
    z = torch.randint(1, 10, (n,), generator=g)
    pos = torch.randn(n, 3, generator=g, dtype=torch.float64) * 1.2
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    return z, pos, batch


def test_registered():
    assert MODELS["egnn"] == "geomdl.models.egnn:EGNN" and MODELS["painn"] == "geomdl.models.painn:PaiNN"


@pytest.mark.parametrize("name", list(SMALL))
def test_energy_invariant_forces_equivariant(name):
    z, pos, batch = _molecules()
    model = SMALL[name]().double()
    force_fn = lambda z, p, b: model.energy_and_forces(z, p, b, create_graph=False)  # noqa: E731
    assert_equivariant(force_fn, (z, pos, batch), ("scalar", "position", "batch"), ("global_scalar", "vector"), n_samples=2)


@pytest.mark.parametrize("name", ["egnn", "painn"])
def test_forces_are_gradients_and_trainable(name):
    z, pos, batch = _molecules(1)
    model = SMALL[name]().double().train()
    e, f = model.energy_and_forces(z, pos, batch)
    # finite-difference check of F = -dE/dpos on one coordinate
    eps = 1e-6
    p2 = pos.clone()
    p2[2, 1] += eps
    p3 = pos.clone()
    p3[2, 1] -= eps
    fd = -(model(z, p2, batch).sum() - model(z, p3, batch).sum()) / (2 * eps)
    torch.testing.assert_close(f[2, 1], fd.detach(), rtol=1e-5, atol=1e-7)
    # a force loss back-propagates to the weights (double backward through ops.scatter)
    f.pow(2).sum().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", ["egnn", "painn"])
def test_gradcheck_positions(name):
    z, pos, batch = _molecules(2, sizes=(3, 3))
    model = SMALL[name]().double()
    assert torch.autograd.gradcheck(lambda p: model(z, p, batch), (pos.clone().requires_grad_(),), fast_mode=True)


@pytest.mark.parametrize("name", ["egnn", "painn"])
def test_roundtrip_and_pyg_batch(name):
    from torch_geometric.data import Batch, Data

    z, pos, batch = _molecules(3)
    state_dict_roundtrip(lambda: SMALL[name](atomref=torch.linspace(0, 1, 10)).double(), lambda m: m(z, pos, batch))
    model = SMALL[name]().double()
    data = Batch.from_data_list([Data(z=z[:5], pos=pos[:5]), Data(z=z[5:], pos=pos[5:])])
    torch.testing.assert_close(model(data), model(z, pos, batch))
    e, f = model.energy_and_forces(data)
    assert e.shape == (2,) and f.shape == (9, 3)


def test_node_task_mean_std_atomref_and_full_graph():
    z, pos, batch = _molecules(4)
    m = EGNN(hidden_channels=8, num_layers=1, num_elements=10, task="node", cutoff=None).double()
    y = m(z, pos, batch)
    assert y.shape == (9, 1)
    m2 = EGNN(hidden_channels=8, num_layers=1, num_elements=10, cutoff=None, target_mean=2.0, target_std=3.0,
              atomref=torch.arange(10.0)).double()
    m2.load_state_dict({**m.state_dict(), "target_mean": torch.tensor(2.0), "target_std": torch.tensor(3.0),
                        "atomref": torch.arange(10.0).reshape(10, 1)})
    expected = torch.zeros(2, 1, dtype=torch.float64).index_add(0, batch, 3.0 * y + 2.0 + z.double().unsqueeze(1))
    torch.testing.assert_close(m2(z, pos, batch), expected)


def test_features_instead_of_atomic_numbers():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(6, 4, generator=g, dtype=torch.float64)
    pos = torch.randn(6, 3, generator=g, dtype=torch.float64)
    m = PaiNN(out_channels=2, hidden_channels=8, num_layers=1, in_channels=4).double()
    assert m(x, pos).shape == (1, 2)


def test_errors():
    m = PaiNN(hidden_channels=8, num_layers=1, num_elements=10)
    with pytest.raises(ValueError, match=r"z must lie in \[0, 10\)"):
        m(torch.tensor([1, 12]), torch.randn(2, 3))
    with pytest.raises(TypeError, match="atomic numbers"):
        m(torch.randn(2), torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"pos must have shape \[2, 3\]"):
        m(torch.tensor([1, 2]), torch.randn(3, 3))
    with pytest.raises(ValueError, match="task"):
        EGNN(task="edge")
    with pytest.raises(ValueError, match="cutoff"):
        PaiNN(cutoff=None)
    with pytest.raises(ValueError, match="energy_and_forces"):
        EGNN(out_channels=2).energy_and_forces(torch.tensor([1]), torch.randn(1, 3))


def test_atomic_numbers_of_any_integer_dtype():
    """z as uint8/int8/int16 (compact storage) passes the int check and gives the int64 result (the embedding
    itself takes only int32/int64 indices: was a RuntimeError from inside nn.Embedding)."""
    m = PaiNN(hidden_channels=8, num_layers=1, num_elements=10, atomref=torch.arange(10.0)).double()
    z, pos = torch.tensor([1, 6, 1, 8]), torch.randn(4, 3, dtype=torch.float64)
    expected = m(z, pos)
    for dtype in (torch.uint8, torch.int8, torch.int16, torch.int32):
        torch.testing.assert_close(m(z.to(dtype), pos), expected)


@pytest.mark.parametrize("name", list(SMALL))
def test_readout_constants_stay_float64_when_built_in_float32(name):
    """target_mean, target_std and atomref were buffers in the default dtype: built under float32 and moved with
    ``.double()`` (or saved and loaded into a float64 model) they stayed float32-rounded (atomrefs of ~1e3 eV
    off by ~1e-4 per atom), and ``.float().double()`` could not give them back."""
    kwargs = {"target_mean": -5.123456789, "target_std": 0.3, "atomref": torch.linspace(-0.5, -1029.123456789, 10, dtype=torch.float64)}
    torch.manual_seed(0)
    built32 = SMALL[name](**kwargs).double()
    torch.set_default_dtype(torch.float64)
    try:
        built64 = SMALL[name](**kwargs)
    finally:
        torch.set_default_dtype(torch.float32)
    for name_, buf in built64.named_buffers():
        assert built32.get_buffer(name_).dtype == torch.float64
        torch.testing.assert_close(built32.get_buffer(name_), buf, rtol=0, atol=0)
    built64.load_state_dict(built32.state_dict())
    z, pos, batch = _molecules()
    torch.testing.assert_close(built32(z, pos, batch), built64(z, pos, batch), rtol=1e-14, atol=1e-12)
    back = built32.float()
    assert back.target_mean.dtype == torch.float64 and back(z, pos.float(), batch).dtype == torch.float32
    torch.testing.assert_close(back.double().atomref, built64.atomref, rtol=0, atol=0)
