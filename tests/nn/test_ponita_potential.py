"""Energy + forces: F = -dE/dx against finite differences, second-order autograd, equivariance of
forces, per-element shifts, float64 shifts under casts, unknown elements."""
import pytest
import torch

from geomdl.nn.ponita import PonitaPotential, fit_energy_shifts
from geomdl.testing import assert_equivariant

SMALL = dict(hidden=8, layers=2, basis_dim=8)


def _molecule(n=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    z = torch.tensor([6, 1, 1, 8, 1][:n])
    pos = torch.randn(n, 3, generator=gen, dtype=torch.float64) * 1.2
    return z, pos


@pytest.mark.parametrize("num_ori", [0, -1, 6])
def test_forces_equal_minus_finite_difference_gradient(num_ori):
    z, pos = _molecule(n=4)
    model = PonitaPotential([1, 6, 8], num_ori=num_ori, radius=4.0 if num_ori > 0 else None, **SMALL).double().eval()
    out = model(z, pos)
    eps = 1e-6
    fd = torch.zeros_like(pos)
    for i in range(pos.shape[0]):
        for k in range(3):
            p, m = pos.clone(), pos.clone()
            p[i, k] += eps
            m[i, k] -= eps
            fd[i, k] = -(model.energy(z, p) - model.energy(z, m)) / (2 * eps)
    assert torch.allclose(out["forces"], fd, atol=1e-7, rtol=1e-6)


def test_second_order_autograd_through_forces():
    z, pos = _molecule()
    model = PonitaPotential([1, 6, 8], num_ori=4, **SMALL).double().train()
    out = model(z, pos)
    assert out["forces"].requires_grad  # create_graph in training mode
    loss = out["forces"].pow(2).sum()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    # the Hessian-vector products behind the force loss are exact: gradcheck the forces
    model.eval()
    f = lambda p: model(z[:3], p, create_graph=True)["forces"]  # noqa: E731
    assert torch.autograd.gradcheck(f, (pos[:3].clone().requires_grad_(True),), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("num_ori", [0, -1])
def test_energy_invariant_and_forces_equivariant_exactly(num_ori):
    z, pos = _molecule()
    model = PonitaPotential([1, 6, 8], num_ori=num_ori, **SMALL).double().eval()
    assert_equivariant(lambda p, zz: (lambda o: (o["energy"], o["forces"]))(model(zz, p)), (pos, z),
                       ("position", "scalar"), ("global_scalar", "vector"))


def test_grid_forces_equivariant_with_a_co_rotated_grid():
    z, pos = _molecule()
    model = PonitaPotential([1, 6, 8], num_ori=6, **SMALL).double().eval()
    assert_equivariant(lambda p, zz, g: (lambda o: (o["energy"], o["forces"]))(model(zz, p, grid=g)),
                       (pos, z, model.net.grid), ("position", "scalar", "global_vector"), ("global_scalar", "vector"))


def test_energy_shifts_fit_and_survive_float32_casts():
    counts = torch.tensor([[2.0, 1.0], [1.0, 3.0], [4.0, 0.0]])
    shift = torch.tensor([-1000.123456789, -13.6])
    assert torch.allclose(fit_energy_shifts(counts, counts.double() @ shift.double()), shift.double(), atol=1e-9)
    model = PonitaPotential([1, 6], num_ori=0, **SMALL)
    model.energy_shift.copy_(torch.tensor([-13.6123456789, -1029.4889999855063], dtype=torch.float64))
    model.float()
    assert model.energy_shift.dtype == torch.float64 and model.energy_scale.dtype == torch.float32
    z = torch.tensor([6, 1])
    e = model.energy(z, torch.randn(2, 3))
    assert e.dtype == torch.float64
    with pytest.raises(ValueError, match="counts"):
        fit_energy_shifts(counts, torch.zeros(2))


def test_unknown_elements_and_fixed_options_raise():
    model = PonitaPotential([1, 6], num_ori=0, **SMALL)
    with pytest.raises(ValueError, match=r"elements \[8\]"):
        model(torch.tensor([1, 8]), torch.randn(2, 3))
    with pytest.raises(ValueError, match="task_level"):
        PonitaPotential([1], task_level="node")
    with pytest.raises(ValueError, match="atomic_numbers"):
        PonitaPotential([0, 1])


@pytest.mark.parametrize("num_ori", [0, 4])
def test_forces_under_inference_mode_equal_the_eager_forces(num_ori):
    """methods.md 1.12: forces need autograd at evaluation time, and Lightning evaluates under
    ``torch.inference_mode`` (which ``enable_grad`` cannot undo). Inputs made there are inference tensors."""
    z, pos = _molecule()
    model = PonitaPotential([1, 6, 8], num_ori=num_ori, **SMALL).double().eval()
    ref = model(z, pos)
    with torch.inference_mode():
        zi, pi = z.clone(), pos.clone()
        out = model(zi, pi)
        energy_only = model(zi, pi, forces=False)["energy"]
    torch.testing.assert_close(out["forces"], ref["forces"], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out["energy"], ref["energy"].detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(energy_only, ref["energy"].detach(), rtol=1e-12, atol=1e-12)
    assert ref["forces"].abs().max() > 0


def _energies_across_the_cutoff(num_ori):
    """Energies of a 3-atom molecule whose third atom sits just inside and just outside ``radius = 2``."""
    torch.manual_seed(0)
    model = PonitaPotential([1, 6], num_ori=num_ori, radius=2.0, **SMALL).double()
    z = torch.tensor([6, 1, 1])
    out = []
    for d in (2.0 - 1e-6, 2.0 + 1e-6):
        third = torch.tensor([1.0, 0.3, 0.0], dtype=torch.float64)
        pos = torch.stack([torch.zeros(3, dtype=torch.float64), torch.tensor([1.0, 0, 0], dtype=torch.float64),
                           third / third.norm() * d])
        out.append(float(model(z, pos)["energy"].detach()))
    return out


@pytest.mark.parametrize("num_ori", [0, 8])
def test_energy_is_continuous_at_the_cutoff(num_ori):
    """Position and grid modes damp every message by the cutoff window: an atom crossing the radius moves the energy
    by a vanishing amount (molecular dynamics needs this)."""
    inside, outside = _energies_across_the_cutoff(num_ori)
    assert abs(inside - outside) < 1e-5


def test_lifted_mode_energy_jumps_at_the_cutoff_as_documented():
    """The lifted point-cloud mode (num_ori=-1) adds a lifted point at full weight when a neighbour enters the
    radius (the reference's bond-graph design, mean pooling): README and PonitaPotential say so."""
    inside, outside = _energies_across_the_cutoff(-1)
    assert abs(inside - outside) > 1e-3
