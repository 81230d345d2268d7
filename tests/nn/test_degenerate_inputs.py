"""Degenerate geometry: zero-length edge vectors (self loops, coincident atoms) must give finite first AND
second derivatives (Hessians, force training with ``create_graph=True``), and equivariance must still hold."""
from __future__ import annotations

import pytest
import torch

from geomdl.graph.radial import edge_length
from geomdl.nn.equivariant_conv import EquivariantConv
from geomdl.nn.tensor_products import GauntConvolution
from geomdl.o3.spherical_harmonics import spherical_harmonics
from geomdl.testing import assert_equivariant

F64 = torch.float64


def _cloud_with_duplicate(n: int = 5) -> torch.Tensor:
    pos = torch.randn(n, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    pos[1] = pos[0]  # two atoms at the same position: a zero-length edge between them
    return pos


def _all_pairs(n: int, loops: bool) -> torch.Tensor:
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    e = torch.stack([i.flatten(), j.flatten()])
    return e if loops else e[:, e[0] != e[1]]


def _hessian_vector(fn, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dE/dpos, d|dE/dpos|^2/dpos)`` of ``E = <fn(pos), w>`` for fixed random ``w``."""
    pos = pos.clone().requires_grad_(True)
    out = fn(pos)
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
    (grad,) = torch.autograd.grad((out * w).sum(), pos, create_graph=True)
    (hv,) = torch.autograd.grad(grad.pow(2).sum(), pos)
    return grad, hv


def test_edge_length_matches_norm_with_finite_second_derivative_at_zero():
    vec = torch.tensor([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0], [1e-200, 0.0, 0.0]], dtype=F64, requires_grad=True)
    d = edge_length(vec)
    assert torch.equal(d.detach(), vec.detach().norm(dim=-1))
    (g,) = torch.autograd.grad(d.sum(), vec, create_graph=True)
    (h,) = torch.autograd.grad(g.pow(2).sum() + g.sum(), vec)
    assert torch.isfinite(g).all() and torch.isfinite(h).all()
    assert torch.equal(g[0].detach(), torch.zeros(3, dtype=F64)) and torch.equal(h[0], torch.zeros(3, dtype=F64))


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_spherical_harmonics_second_derivative_is_finite_at_the_zero_vector(dtype):
    vec = torch.tensor([[0.0, 0.0, 0.0], [0.3, -0.2, 0.9]], dtype=dtype)
    grad, hv = _hessian_vector(lambda v: spherical_harmonics(3, v, normalize=True), vec)
    assert torch.isfinite(grad).all() and torch.isfinite(hv).all()
    assert torch.equal(hv[0], torch.zeros(3, dtype=dtype))  # the zero vector's value is constant (only Y_00)


@pytest.mark.parametrize("loops", [False, True])
def test_gaunt_convolution_hessian_is_finite_on_zero_length_edges(loops):
    torch.manual_seed(0)
    irreps = "4x0e+4x1o+4x2e"
    conv = GauntConvolution(irreps, irreps).to(F64)
    pos = _cloud_with_duplicate()
    edges = _all_pairs(pos.shape[0], loops)
    x = torch.randn(pos.shape[0], conv.irreps_in.dim, dtype=F64)
    grad, hv = _hessian_vector(lambda p: conv(x, p, edges), pos)
    assert torch.isfinite(grad).all() and torch.isfinite(hv).all()
    assert_equivariant(lambda h, p, e: conv(h, p, e), (x, pos, edges), (f"irreps:{irreps}", "position", "edge_index"),
                       f"irreps:{irreps}", tol=1e-10)


@pytest.mark.parametrize("product", ["cg", "gaunt"])
def test_equivariant_conv_hessian_is_finite_on_zero_length_edges(product):
    torch.manual_seed(0)
    irreps = "4x0e+4x1o+4x2e"
    conv = EquivariantConv(irreps, irreps, lmax_sh=2, product=product).to(F64)
    pos = _cloud_with_duplicate()
    edges = _all_pairs(pos.shape[0], loops=True)
    x = torch.randn(pos.shape[0], conv.irreps_in.dim, dtype=F64)
    grad, hv = _hessian_vector(lambda p: conv(x, p, edges), pos)
    assert torch.isfinite(grad).all() and torch.isfinite(hv).all()
    assert_equivariant(lambda h, p, e: conv(h, p, e), (x, pos, edges), (f"irreps:{irreps}", "position", "edge_index"),
                       f"irreps:{irreps}", tol=1e-10)


def test_nequip_force_training_on_coincident_atoms_has_finite_position_hessian():
    from geomdl.models.nequip import NequIP

    torch.manual_seed(0)
    model = NequIP(hidden_channels=8, num_layers=2, lmax=2).to(F64).train()
    z = torch.tensor([1, 6, 8, 1, 6])
    pos = _cloud_with_duplicate().requires_grad_(True)
    energy, forces = model.energy_and_forces(z, pos, create_graph=True)
    grads = torch.autograd.grad(energy.pow(2).sum() + forces.pow(2).sum(), [pos, *model.parameters()], allow_unused=True)
    assert all(torch.isfinite(g).all() for g in grads if g is not None)


@pytest.mark.parametrize("num_ori", [0, 6])
def test_ponita_hessian_is_finite_on_coincident_atoms(num_ori):
    """PONITA (positions and grid mode) already guards its norms (``safe_norm``, the clamped cutoff): the
    position Hessian stays finite with two atoms at one place, and the model stays invariant there."""
    from geomdl.nn.ponita import Ponita

    torch.manual_seed(0)
    model = Ponita(2, out_scalars=2, hidden=8, layers=2, num_ori=num_ori, radius=3.0, basis_dim=6).to(F64)
    pos = _cloud_with_duplicate()
    x = torch.randn(pos.shape[0], 2, dtype=F64)
    grad, hv = _hessian_vector(lambda p: model(p, x)[0], pos)
    assert torch.isfinite(grad).all() and torch.isfinite(hv).all()
    if num_ori == 0:  # (a fixed grid is equivariant only up to its resolution: tested in the grid-mode tests)
        assert_equivariant(lambda p, h: model(p, h)[0], (pos, x), ("position", "scalar"), "global_scalar", tol=1e-10)
