import pathlib
import sys

import pytest
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "nn"))
from layer_checks import state_dict_roundtrip  # noqa: E402

from geomdl.models import MODELS  # noqa: E402
from geomdl.models.nequip import NequIP  # noqa: E402
from geomdl.testing import assert_equivariant  # noqa: E402


def _molecules(seed=0, sizes=(5, 4)):
    g = torch.Generator().manual_seed(seed)
    n = sum(sizes)
    z = torch.randint(1, 10, (n,), generator=g)
    pos = torch.randn(n, 3, generator=g, dtype=torch.float64) * 1.2
    return z, pos, torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))


@pytest.mark.parametrize("product", ["cg", "gaunt"])
def test_energy_invariant_forces_equivariant(float64, product):
    z, pos, batch = _molecules()
    model = NequIP(hidden_channels=4, num_layers=2, lmax=2, product=product, num_elements=10)
    assert MODELS["nequip"] == "geomdl.models.nequip:NequIP"
    assert_equivariant(lambda z, p, b: model.energy_and_forces(z, p, b, create_graph=False), (z, pos, batch),
                       ("scalar", "position", "batch"), ("global_scalar", "vector"), n_samples=2)


@pytest.mark.parametrize("product", ["cg", "gaunt"])
def test_force_training_step_and_roundtrip(float64, product):
    z, pos, batch = _molecules(1)
    model = NequIP(hidden_channels=4, num_layers=1, lmax=1, product=product, num_elements=10).train()
    e, f = model.energy_and_forces(z, pos, batch)
    (e.pow(2).sum() + f.pow(2).sum()).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    state_dict_roundtrip(lambda: NequIP(hidden_channels=4, num_layers=1, lmax=1, product=product, num_elements=10),
                         lambda m: m(z, pos, batch))


def test_gradcheck(float64):
    z, pos, batch = _molecules(2, sizes=(3, 3))
    model = NequIP(hidden_channels=4, num_layers=1, lmax=1, num_elements=10)
    assert torch.autograd.gradcheck(lambda p: model(z, p, batch), (pos.clone().requires_grad_(),), fast_mode=True)


def test_errors():
    with pytest.raises(ValueError, match="cutoff"):
        NequIP(cutoff=None)
    with pytest.raises(ValueError, match="lmax"):
        NequIP(lmax=-1)


def test_gaunt_rejects_an_explicit_mul_it_cannot_honour():
    # an explicit mul was silently replaced by hidden_channels for product="gaunt"
    with pytest.raises(ValueError, match="mul == hidden_channels"):
        NequIP(hidden_channels=8, mul=4, product="gaunt")
    with pytest.raises(ValueError, match="mul must be None or an int"):
        NequIP(hidden_channels=8, mul=0)
    assert str(NequIP(hidden_channels=8, lmax=1, product="gaunt").irreps_hidden) == "8x0e+8x1o"
    assert str(NequIP(hidden_channels=8, lmax=1, mul=2).irreps_hidden) == "8x0e+2x1o"
    assert str(NequIP(hidden_channels=8, lmax=1, mul=8, product="gaunt").irreps_hidden) == "8x0e+8x1o"
