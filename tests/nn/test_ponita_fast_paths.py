"""The optimised PONITA code paths equal a plain implementation of the maths (float64, 1e-10):
energies, forces (create_graph) and the parameter gradients of a force loss (second order), plus
the fused gather-multiply-scatter op and its first and second derivatives."""
import math

import pytest
import torch

from geomdl.nn.ponita import PonitaPotential, fiber_bundle_conv
from geomdl.nn.ponita.conv import gather_mul, gather_mul_scatter


def _gelu(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def _poly(a):
    a2 = (a[..., :, None] * a[..., None, :]).flatten(-2)
    return torch.cat([a, a2, (a2[..., :, None] * a[..., None, :]).flatten(-2)], -1)


def _plain_energy(model, z, pos, batch, edge_index):
    """PONITA fiber-bundle energy written out with plain ops (advanced indexing, index_add, einsum)."""
    net = model.net
    n = pos.shape[0]
    loops = torch.arange(n)
    keep = edge_index[0] != edge_index[1]
    src = torch.cat([edge_index[0][keep], loops])
    dst = torch.cat([edge_index[1][keep], loops])
    grid = net.grid.to(pos.dtype)
    r = pos[src] - pos[dst]
    par = torch.einsum("ed,od->eo", r, grid)
    perp = r[:, None, :] - par[..., None] * grid[None]
    sq = (perp ** 2).sum(-1)
    ok = sq > 0
    second = torch.where(ok, torch.sqrt(torch.where(ok, sq, torch.ones_like(sq))), torch.zeros_like(sq))

    def mlp(fn, a):
        return _gelu(_gelu(_poly(a) @ fn.lin1.weight.T + fn.lin1.bias) @ fn.lin2.weight.T + fn.lin2.bias)

    basis = mlp(net.basis_fn, torch.stack([par, second], -1))
    dsq = (r ** 2).sum(-1)
    dok = dsq > 0
    u = torch.where(dok, torch.sqrt(torch.where(dok, dsq, torch.ones_like(dsq))), torch.zeros_like(dsq)) / net.radius
    w = 1 - 28 * u ** 6 + 48 * u ** 7 - 21 * u ** 8
    basis = basis * torch.where(u < 1, w, torch.zeros_like(w))[:, None, None]
    fiber_basis = mlp(net.fiber_basis_fn, (grid @ grid.T)[..., None])
    x = torch.nn.functional.one_hot(model.type_map[z], len(model.atomic_numbers)).to(pos.dtype)
    f = (x @ net.embed.weight.T)[:, None, :].expand(n, grid.shape[0], -1)
    outs = []
    for block, readout in zip(net.blocks, net.readouts):
        conv = block.conv
        ks = basis @ conv.kernel_spatial.weight.T
        kf = fiber_basis @ conv.kernel_fiber.weight.T
        h = torch.zeros_like(f).index_add(0, dst, ks * f[src])
        y = torch.einsum("noc,opc->npc", h, kf) / grid.shape[0] + conv.bias
        y = torch.nn.functional.layer_norm(y, y.shape[-1:], block.norm.weight, block.norm.bias, block.norm.eps)
        y = _gelu(y @ block.lin1.weight.T + block.lin1.bias) @ block.lin2.weight.T + block.lin2.bias
        f = f + (y if block.gamma is None else block.gamma * y)
        outs.append(f @ readout.weight.T + readout.bias)
    e_atom = torch.stack(outs).mean(0)[..., 0].mean(1)
    e = torch.zeros(int(batch.max()) + 1, dtype=pos.dtype).index_add(0, batch, e_atom)
    shift = torch.zeros_like(e).index_add(0, batch, model.energy_shift[model.type_map[z]])
    return model.energy_scale * e + shift


def _molecules():
    gen = torch.Generator().manual_seed(5)
    z = torch.tensor([6, 1, 1, 8, 1, 6, 6, 1, 8])
    pos = torch.randn(9, 3, generator=gen, dtype=torch.float64) * 1.3
    batch = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1])
    return z, pos, batch


@pytest.mark.parametrize("layer_scale", [None, 0.3])
def test_potential_equals_plain_implementation_to_second_order(layer_scale):
    from geomdl.nn.ponita.edges import build_edges

    torch.manual_seed(0)
    model = PonitaPotential([1, 6, 8], hidden=8, layers=2, basis_dim=6, num_ori=5, radius=2.5, widening=2,
                            layer_scale=layer_scale).double().train()
    for p in model.parameters():  # non-trivial weights everywhere (biases included)
        p.data.add_(0.2 * torch.randn_like(p))
    model.energy_shift.copy_(torch.tensor([-13.6, -1029.5, -2041.3], dtype=torch.float64))
    model.energy_scale.fill_(0.7)
    z, pos, batch = _molecules()
    edges = build_edges(pos, batch, 2.5, loop=False, max_num_neighbors=1000)
    assert 0 < edges.shape[1] < 9 * 8  # the radius cuts some pairs

    def loss_and_grads(fn):
        p = pos.clone().requires_grad_(True)
        e = fn(p)
        (g,) = torch.autograd.grad(e.sum(), p, create_graph=True)
        loss = (e ** 2).sum() * 1e-6 + (g * torch.linspace(-1, 1, g.numel(), dtype=g.dtype).view_as(g)).pow(2).sum()
        grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
        return e.detach(), -g.detach(), grads

    e1, f1, g1 = loss_and_grads(lambda p: model(z, p, batch, 2, create_graph=True)["energy"])
    e2, f2, g2 = loss_and_grads(lambda p: _plain_energy(model, z, p, batch, edges))
    assert torch.allclose(e1, e2, rtol=0, atol=1e-9)  # energies ~1e4 eV: 1e-13 relative
    assert torch.allclose(f1, f2, rtol=0, atol=1e-10)
    assert f1.abs().max() > 1e-3
    for (name, _), a, b in zip(model.named_parameters(), g1, g2):
        assert (a is None) == (b is None), name
        if a is not None:
            assert torch.allclose(a, b, rtol=1e-10, atol=1e-10), name


def _gms_plain(k, x, src, dst, n):
    return torch.zeros((n,) + x.shape[1:], dtype=x.dtype).index_add(0, dst, k * x[src])


def test_gather_mul_scatter_equals_plain_ops_with_second_derivatives():
    gen = torch.Generator().manual_seed(1)
    n, e = 6, 17
    src = torch.randint(0, n, (e,), generator=gen)
    dst = torch.randint(0, n, (e,), generator=gen)
    k = torch.randn(e, 3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    x = torch.randn(n, 3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    y = gather_mul_scatter(k, x, src, dst, n)
    assert torch.allclose(y, _gms_plain(k, x, src, dst, n), rtol=0, atol=1e-13)
    a = torch.randn(n, 3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.allclose(gather_mul(a, x, dst, src), a[dst] * x[src], rtol=0, atol=0)
    assert torch.autograd.gradcheck(lambda k_, x_: gather_mul_scatter(k_, x_, src, dst, n), (k, x))
    assert torch.autograd.gradgradcheck(lambda k_, x_: gather_mul_scatter(k_, x_, src, dst, n), (k, x))
    assert torch.autograd.gradcheck(lambda a_, x_: gather_mul(a_, x_, dst, src), (a, x))
    assert torch.autograd.gradgradcheck(lambda a_, x_: gather_mul(a_, x_, dst, src), (a, x))
    # empty edge sets: zeros of the right shape
    none = torch.zeros(0, dtype=torch.long)
    assert torch.equal(gather_mul_scatter(k[:0], x, none, none, n), torch.zeros(n, 3, 4, dtype=torch.float64))


def test_fiber_bundle_conv_equals_plain_einsum():
    gen = torch.Generator().manual_seed(2)
    n, e, o, c = 5, 12, 4, 3
    src = torch.randint(0, n, (e,), generator=gen)
    dst = torch.randint(0, n, (e,), generator=gen)
    x = torch.randn(n, o, c, generator=gen, dtype=torch.float64)
    ks = torch.randn(e, o, c, generator=gen, dtype=torch.float64)
    kf = torch.randn(o, o, c, generator=gen, dtype=torch.float64)
    want = torch.einsum("noc,opc->npc", _gms_plain(ks, x, src, dst, n), kf) / o
    assert torch.allclose(fiber_bundle_conv(x, ks, kf, torch.stack([src, dst])), want, rtol=0, atol=1e-13)
