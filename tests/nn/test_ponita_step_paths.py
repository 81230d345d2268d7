"""The rewritten pieces of the PONITA training step equal the straightforward formulas (float64, forward,
backward and double backward): the distinct-monomial basis, the spatial kernels of all layers at once,
the self loop applied per node, and the grid model without self-loop edges against one with them."""
import pytest
import torch

from geomdl.nn.ponita import (FiberBundleConv, PolynomialBasis, Ponita, fiber_bundle_conv, monomial_fold,
                              polynomial_dim, polynomial_features, polynomial_monomials, remove_self_loops)
from geomdl.nn.ponita.conv import shared_linear


@pytest.mark.parametrize("k, degree", [(1, 3), (2, 3), (3, 3), (2, 1), (2, 4), (3, 2)])
def test_monomials_folded_back_are_the_tensor_powers(k, degree):
    gen = torch.Generator().manual_seed(k * 10 + degree)
    a = torch.randn(5, 4, k, generator=gen, dtype=torch.float64)
    m = polynomial_monomials(a, degree)
    fold = monomial_fold(k, degree)
    assert fold.shape == (polynomial_dim(k, degree), m.shape[-1])
    assert torch.equal(fold.sum(1), torch.ones(polynomial_dim(k, degree), dtype=torch.float64))  # one monomial each
    assert torch.allclose(m @ fold.T, polynomial_features(a, degree), rtol=0, atol=1e-14)
    assert m.shape[-1] == len({tuple(sorted(c)) for p in range(1, degree + 1)
                               for c in torch.cartesian_prod(*[torch.arange(k)] * p).reshape(-1, p).tolist()})
    if (k, degree) == (2, 3):
        assert m.shape[-1] == 9  # instead of 14
    with pytest.raises(ValueError, match="degree"):
        polynomial_monomials(a, 0)


def test_polynomial_basis_equals_the_tensor_power_formula_with_gradients():
    torch.manual_seed(0)
    fn = PolynomialBasis(2, 7, 5).double()
    for p in fn.parameters():
        p.data.add_(0.3 * torch.randn_like(p))
    a = torch.randn(6, 3, 2, dtype=torch.float64, requires_grad=True)

    def plain(a_):
        return fn.act(fn.lin2(fn.act(fn.lin1(polynomial_features(a_, 3)))))

    assert torch.allclose(fn(a), plain(a), rtol=0, atol=1e-13)
    g = torch.randn(6, 3, 5, dtype=torch.float64)
    got = torch.autograd.grad((fn(a) * g).sum(), [a, *fn.parameters()])
    want = torch.autograd.grad((plain(a) * g).sum(), [a, *fn.parameters()])
    for x, y in zip(got, want):
        assert torch.allclose(x, y, rtol=0, atol=1e-12)
    assert "fold" not in fn.state_dict()  # a constant, not saved: checkpoints keep their keys
    assert torch.autograd.gradgradcheck(lambda a_: fn(a_), (a,))


def test_shared_linear_equals_separate_linears_to_second_order():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(11, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    ws = [torch.randn(c, 4, generator=gen, dtype=torch.float64, requires_grad=True) for c in (3, 5, 3)]
    got = shared_linear(x, ws)
    for y, w in zip(got, ws):
        assert torch.allclose(y, x @ w.T, rtol=0, atol=1e-14)
    gs = [torch.randn_like(y) for y in got]
    want = torch.autograd.grad(sum((x @ w.T * g).sum() for w, g in zip(ws, gs)), [x, *ws])
    have = torch.autograd.grad(sum((y * g).sum() for y, g in zip(got, gs)), [x, *ws])
    for a, b in zip(have, want):
        assert torch.allclose(a, b, rtol=0, atol=1e-13)
    # an unused output, an input without gradient
    (gx,) = torch.autograd.grad(shared_linear(x, ws)[1].sum(), [x])
    assert torch.allclose(gx, ws[1].sum(0).expand_as(x), rtol=0, atol=1e-14)
    (gw,) = torch.autograd.grad(shared_linear(x.detach(), ws)[0].sum(), [ws[0]])
    assert torch.allclose(gw, x.detach().sum(0).expand(3, 4), rtol=0, atol=1e-13)
    f = lambda x_, *w_: shared_linear(x_, list(w_))  # noqa: E731
    assert torch.autograd.gradcheck(f, (x, *ws))
    assert torch.autograd.gradgradcheck(f, (x, *ws))
    with pytest.raises(ValueError, match="shared_linear"):
        shared_linear(x, [torch.randn(3, 5, dtype=torch.float64)])


def test_self_loop_kernel_equals_self_loop_edges():
    gen = torch.Generator().manual_seed(4)
    n, e, o, c = 6, 14, 5, 3
    src = torch.randint(0, n, (e,), generator=gen)
    dst = torch.randint(0, n, (e,), generator=gen)
    edges = remove_self_loops(torch.stack([src, dst]))
    assert bool((edges[0] != edges[1]).all())
    x = torch.randn(n, o, c, generator=gen, dtype=torch.float64, requires_grad=True)
    ks = torch.randn(edges.shape[1], o, c, generator=gen, dtype=torch.float64, requires_grad=True)
    kf = torch.randn(o, o, c, generator=gen, dtype=torch.float64, requires_grad=True)
    kl = torch.randn(o, c, generator=gen, dtype=torch.float64, requires_grad=True)
    loops = torch.arange(n).repeat(2, 1)
    with_edges = lambda x_, ks_, kf_, kl_: fiber_bundle_conv(  # noqa: E731
        x_, torch.cat([ks_, kl_.expand(n, o, c)]), kf_, torch.cat([edges, loops], 1))
    per_node = lambda x_, ks_, kf_, kl_: fiber_bundle_conv(x_, ks_, kf_, edges, kl_)  # noqa: E731
    assert torch.allclose(per_node(x, ks, kf, kl), with_edges(x, ks, kf, kl), rtol=0, atol=1e-13)
    assert torch.autograd.gradcheck(per_node, (x, ks, kf, kl))
    assert torch.autograd.gradgradcheck(per_node, (x, ks, kf, kl))
    # FiberBundleConv: a precomputed spatial kernel equals its own product with the basis
    conv = FiberBundleConv(c, 4).double()
    bs = torch.randn(edges.shape[1], o, 4, generator=gen, dtype=torch.float64)
    bf = torch.randn(o, o, 4, generator=gen, dtype=torch.float64)
    bl = torch.randn(o, 4, generator=gen, dtype=torch.float64)
    y = conv(x, edges, bs, bf, bl)
    assert torch.allclose(conv(x, edges, None, bf, bl, conv.kernel_spatial(bs)), y, rtol=0, atol=0)
    assert torch.allclose(conv(x, torch.cat([edges, loops], 1), torch.cat([bs, bl.expand(n, o, 4)]), bf), y,
                          rtol=0, atol=1e-13)


@pytest.mark.parametrize("dim, radius", [(3, 2.0), (3, None), (2, 1.5)])
def test_grid_model_equals_the_model_with_self_loop_edges(monkeypatch, dim, radius):
    """The whole grid-mode forward and parameter gradients against the straightforward path: self loops as
    edges (``add_self_loops``), one ``kernel_spatial`` per layer, ``lin1`` on the tensor powers."""
    import geomdl.nn.ponita.model as model_module
    from geomdl.nn.ponita.edges import add_self_loops

    torch.manual_seed(1)
    net = Ponita(3, 2, 1, in_vectors=1, hidden=8, layers=3, num_ori=6, dim=dim, radius=radius, basis_dim=5,
                 layer_scale=0.5).double()
    for p in net.parameters():
        p.data.add_(0.2 * torch.randn_like(p))
    gen = torch.Generator().manual_seed(2)
    pos = torch.randn(9, dim, generator=gen, dtype=torch.float64)
    x = torch.randn(9, 3, generator=gen, dtype=torch.float64)
    vec = torch.randn(9, 1, dim, generator=gen, dtype=torch.float64)
    batch = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1])

    def loss(p):
        s, v = net(p, x, vec, batch=batch)
        return (s * torch.linspace(-1, 1, s.numel(), dtype=s.dtype).view_as(s)).sum() + v.pow(2).sum()

    def plain_grid(pos_, x_, vec_, edge_index, grid):
        n = pos_.shape[0]
        edge_index = add_self_loops(edge_index, n)
        grid = grid.to(pos_.dtype)
        basis = net.basis_fn.act(net.basis_fn.lin2(net.basis_fn.act(net.basis_fn.lin1(
            polynomial_features(model_module.invariant_fiber_spatial(pos_, edge_index, grid), 3)))))
        window = net._window(pos_, edge_index)
        if window is not None:
            basis = basis * window[:, :, None]
        fiber_basis = net.fiber_basis_fn(model_module.invariant_fiber(grid))
        f = net.embed(model_module.lift_to_grid(x_, vec_, grid, n))
        outs = []
        for block, readout in zip(net.blocks, net.readouts):
            f = block(f, edge_index, basis, fiber_basis)
            outs.append(readout(f))
        return model_module.read_out_grid(torch.stack(outs).mean(0), grid, net.out_scalars)

    p = pos.clone().requires_grad_(True)
    out_fast = net(p, x, vec, batch=batch)
    got = torch.autograd.grad(loss(p), [p, *net.parameters()], allow_unused=True)
    monkeypatch.setattr(model_module, "remove_self_loops", lambda ei: ei)
    monkeypatch.setattr(net, "_forward_grid", plain_grid)
    out_plain = net(p, x, vec, batch=batch)
    want = torch.autograd.grad(loss(p), [p, *net.parameters()], allow_unused=True)
    for a, b in zip(out_fast, out_plain):
        assert torch.allclose(a, b, rtol=0, atol=1e-12)
    for (name, _), a, b in zip([("pos", None), *net.named_parameters()], got, want):
        assert (a is None) == (b is None), name
        if a is not None:
            assert torch.allclose(a, b, rtol=1e-10, atol=1e-11), name


def test_fiber_bundle_conv_needs_a_basis_or_a_kernel():
    conv = FiberBundleConv(4, 6)
    x = torch.randn(3, 5, 4)
    with pytest.raises(ValueError, match="basis_spatial .* or kernel_spatial"):
        conv(x, torch.zeros(2, 0, dtype=torch.long), None, torch.randn(5, 5, 6))
