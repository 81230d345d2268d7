"""``Ponita(checkpoint=True)``: activation checkpointing of the kernel basis (in chunks of edges) and of every
block. Same outputs and gradients as without (float64, tight tolerance), also of second order (forces
trained with ``create_graph``); off without autograd and inside compiled / exported graphs."""
import pytest
import torch
from torch.utils import checkpoint as torch_checkpoint

from geomdl.nn.ponita import Ponita, PonitaPotential
from geomdl.nn.ponita import model as ponita_model
from geomdl.nn.ponita.embedding import PolynomialBasis

MODES = {  # num_ori, in_vectors, radius
    "grid": (6, 1, 0.8),
    "grid_fully_connected": (4, 0, None),
    "position": (0, 0, 0.8),
    "lifted_point_cloud": (-1, 1, None),
}


def _pair(num_ori, in_vectors, radius, **kw):
    torch.manual_seed(0)
    ref = Ponita(2, 2, out_vectors=1, in_vectors=in_vectors, hidden=8, layers=3, num_ori=num_ori, radius=radius,
                 task_level="node", **kw).double()
    ck = Ponita(2, 2, out_vectors=1, in_vectors=in_vectors, hidden=8, layers=3, num_ori=num_ori, radius=radius,
                task_level="node", checkpoint=True, **kw).double()
    ck.load_state_dict(ref.state_dict())
    return ref, ck


def _inputs(n, in_vectors, seed=1):
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(n, 3, generator=g, dtype=torch.float64).requires_grad_(True)
    x = torch.randn(n, 2, generator=g, dtype=torch.float64)
    vec = torch.randn(n, in_vectors, 3, generator=g, dtype=torch.float64) if in_vectors else None
    return pos, x, vec


def _grads(model, pos, x, vec):
    s, v = model(pos, x, vec)
    loss = (s.sin() * torch.arange(1, s.shape[1] + 1, dtype=s.dtype)).sum() + (v * v).sum()
    names = [n for n, p in model.named_parameters()]
    grads = torch.autograd.grad(loss, [pos, *model.parameters()], allow_unused=True)
    return s.detach(), v.detach(), dict(zip(["pos", *names], grads))


def _assert_same(ref, ck):
    s0, v0, g0 = ref
    s1, v1, g1 = ck
    torch.testing.assert_close(s1, s0, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(v1, v0, rtol=1e-12, atol=1e-12)
    assert g0.keys() == g1.keys()
    for name in g0:
        if g0[name] is None:
            assert g1[name] is None, name
        else:
            torch.testing.assert_close(g1[name], g0[name], rtol=1e-10, atol=1e-12, msg=name)


@pytest.mark.parametrize("mode", list(MODES))
def test_checkpointed_gradients_match(monkeypatch, mode):
    num_ori, in_vectors, radius = MODES[mode]
    ref, ck = _pair(num_ori, in_vectors, radius)
    pos, x, vec = _inputs(14, in_vectors)
    expected = _grads(ref, pos, x, vec)
    calls = []
    original = torch_checkpoint.checkpoint
    monkeypatch.setattr(ponita_model, "activation_checkpoint", lambda *a, **k: calls.append(k) or original(*a, **k))
    monkeypatch.setattr(PolynomialBasis, "CHUNK_ROWS", 16)  # the basis in several chunks of edges
    _assert_same(expected, _grads(ck, pos, x, vec))
    # the basis in more than one chunk, plus one per block; never the reentrant variant
    assert len(calls) > 3 + 1 and all(k == {"use_reentrant": False} for k in calls)


def test_checkpoint_default_off_and_validated():
    assert Ponita(1, 1, hidden=4, layers=1, num_ori=4).checkpoint is False
    with pytest.raises(ValueError, match="checkpoint must be a bool"):
        Ponita(1, 1, hidden=4, layers=1, num_ori=4, checkpoint="yes")


@pytest.mark.parametrize("n", [0, 1])
def test_checkpoint_on_degenerate_graphs(n):
    ref, ck = _pair(6, 0, 0.8)
    pos, x, _ = _inputs(n, 0)
    _assert_same(_grads(ref, pos, x, None), _grads(ck, pos, x, None))


def test_no_checkpoint_without_autograd(monkeypatch):
    _, ck = _pair(6, 1, 0.8)
    monkeypatch.setattr(ponita_model, "activation_checkpoint", lambda *a, **k: pytest.fail("checkpointed under no_grad"))
    pos, x, vec = _inputs(10, 1)
    with torch.no_grad():
        ck(pos, x, vec)


def test_second_order_forces_match():
    """Force training: ``-dE/dpos`` with ``create_graph`` through the checkpointed blocks, then a loss on the
    forces differentiated to the weights (double backward through the recomputation)."""
    torch.manual_seed(0)
    kw = dict(hidden=8, layers=2, num_ori=4, radius=1.5)
    ref = PonitaPotential([1, 6, 8], **kw).double().train()
    ck = PonitaPotential([1, 6, 8], checkpoint=True, **kw).double().train()
    ck.load_state_dict(ref.state_dict())
    g = torch.Generator().manual_seed(2)
    z = torch.tensor([1, 6, 8, 1, 6, 1, 8])
    pos = torch.rand(7, 3, generator=g, dtype=torch.float64) * 2
    batch = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    out = []
    for m in (ref, ck):
        res = m(z, pos, batch)
        loss = res["energy"].square().sum() + res["forces"].square().sum()
        out.append((res["energy"].detach(), res["forces"].detach(), torch.autograd.grad(loss, list(m.parameters()))))
    torch.testing.assert_close(out[1][0], out[0][0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out[1][1], out[0][1], rtol=1e-11, atol=1e-12)
    for a, b in zip(out[1][2], out[0][2]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_checkpointed_model_is_equivariant_with_rotated_grid():
    """Exact SE(3) equivariance in grid mode (rotated input, co-rotated grid), with checkpointing on."""
    _, ck = _pair(6, 1, 0.8)
    pos, x, vec = _inputs(12, 1)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64))
    rot = q * torch.sign(torch.linalg.det(q))
    t = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)
    s, v = ck(pos, x, vec)
    s_r, v_r = ck(pos @ rot.T + t, x, vec @ rot.T, grid=ck.grid @ rot.T)
    torch.testing.assert_close(s_r, s, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(v_r, v @ rot.T, rtol=1e-9, atol=1e-10)
    # and the gradients of a rotated input, rotated back, equal those of the input
    pos_r = (pos.detach() @ rot.T + t).requires_grad_(True)
    (g,) = torch.autograd.grad(ck(pos, x, vec)[0].sum(), pos)
    (g_r,) = torch.autograd.grad(ck(pos_r, x, vec @ rot.T, grid=ck.grid @ rot.T)[0].sum(), pos_r)
    torch.testing.assert_close(g_r, g @ rot.T, rtol=1e-8, atol=1e-9)


def test_checkpoint_off_inside_compile(monkeypatch):
    """Inside a compiled graph the plain path is traced (no checkpoint call); same outputs as eager."""
    _, ck = _pair(4, 0, None)
    pos, x, _ = _inputs(9, 0)
    pos = pos.detach()
    eager = ck(pos, x)
    traced = []
    original = ponita_model.Ponita._checkpointing
    monkeypatch.setattr(ponita_model.Ponita, "_checkpointing",
                        lambda self: traced.append(torch.compiler.is_compiling()) or original(self))
    compiled = torch.compile(ck, backend="eager", fullgraph=False)
    out = compiled(pos, x)
    torch.testing.assert_close(out[0], eager[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out[1], eager[1], rtol=1e-12, atol=1e-12)
    assert traced and all(traced)  # asked while tracing, and answered False there


@pytest.mark.parametrize("name", ["ponita", "ponita_energy"])
def test_checkpoint_reaches_the_network_from_model_kwargs(name):
    """``model.kwargs: {checkpoint: true}`` of a pipeline config (``geomdl train ponita_* --set
    model.kwargs.checkpoint=true``) is passed through to :class:`Ponita`."""
    from geomdl.pipelines.config import check_kwargs
    from geomdl.pipelines.tasks import get_model_constructor

    ctor = get_model_constructor(name)
    kwargs = check_kwargs(ctor, {"checkpoint": True, "hidden": 4, "layers": 1, "num_ori": 4}, "model.kwargs")
    assert ctor(**kwargs).net.checkpoint is True


def test_repr_shows_the_mode_and_options():
    text = repr(Ponita(2, 1, hidden=4, layers=1, num_ori=6, radius=1.5, checkpoint=True))
    assert "in_scalars=2" in text and "num_ori=6" in text and "radius=1.5" in text and "checkpoint=True" in text


def test_potential_energy_of_no_atoms_is_empty():
    from geomdl.nn.ponita import PonitaPotential

    pot = PonitaPotential([1, 6], hidden=8, layers=1, num_ori=4, radius=2.0).double()
    energy = pot.energy(torch.zeros(0, dtype=torch.long), torch.zeros(0, 3, dtype=torch.float64))
    assert energy.shape == (0,)
