"""PONITA small fixes: smooth_cutoff has finite (zero) gradients far beyond the cutoff; int32 edge_index and
batch are accepted (converted to int64) with the same results, non-integer dtypes raise TypeError."""
import pytest
import torch

from geomdl.nn.ponita import Ponita, PonitaPotential, smooth_cutoff

SMALL = dict(hidden=8, layers=2, basis_dim=8)


def _reference_cutoff(dist, cutoff, p=6):
    u = dist / cutoff
    w = 1 - (p + 1) * (p + 2) / 2 * u.pow(p) + p * (p + 2) * u.pow(p + 1) - p * (p + 1) / 2 * u.pow(p + 2)
    return torch.where(u < 1, w, torch.zeros_like(w))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("p", [5, 6])
def test_smooth_cutoff_values_unchanged_and_gradient_zero_far_beyond_cutoff(dtype, p):
    cutoff = 0.5
    inside = torch.linspace(0, 0.999, 50, dtype=dtype) * cutoff
    assert torch.equal(smooth_cutoff(inside, cutoff, p), _reference_cutoff(inside, cutoff, p))
    beyond = torch.tensor([1.0, 1.5, 10.0, 1e6, 1e30], dtype=dtype) * cutoff
    d = torch.cat([inside, beyond]).requires_grad_(True)
    w = smooth_cutoff(d, cutoff, p)
    assert torch.all(w[inside.numel():] == 0)
    (g,) = torch.autograd.grad(w.sum(), d)
    assert torch.isfinite(g).all()
    assert torch.all(g[inside.numel():] == 0)  # far beyond (and at) the cutoff: exactly 0
    (g_ref,) = torch.autograd.grad(_reference_cutoff(d[:inside.numel()], cutoff, p).sum(), d)
    assert torch.equal(g[:inside.numel()], g_ref[:inside.numel()])


def test_ponita_with_radius_and_a_far_user_edge_has_finite_float32_gradients():
    torch.manual_seed(0)
    model = Ponita(2, out_scalars=1, num_ori=0, radius=1.0, task_level="graph", **SMALL)
    pos = torch.randn(4, 3)
    pos[3] += 1e7  # an edge ~1e7 x the cutoff away, given by the user
    pos.requires_grad_(True)
    edge_index = torch.tensor([[0, 1, 3, 0], [1, 0, 0, 3]])
    s, _ = model(pos, torch.randn(4, 2), edge_index=edge_index)
    s.sum().backward()
    assert torch.isfinite(pos.grad).all()
    assert all(torch.isfinite(q.grad).all() for q in model.parameters() if q.grad is not None)


def _cloud(n=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    pos = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    x = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    vec = torch.randn(n, 1, 3, generator=gen, dtype=torch.float64)
    return pos, x, vec


@pytest.mark.parametrize("num_ori", [0, -1, 6])
def test_ponita_int32_edge_index_and_batch_match_int64(num_ori):
    pos, x, vec = _cloud()
    torch.manual_seed(0)
    in_vectors = 0 if num_ori == 0 else 1
    model = Ponita(2, out_scalars=2, out_vectors=1, in_vectors=in_vectors, num_ori=num_ori, task_level="graph",
                   **SMALL).double()
    v = None if num_ori == 0 else vec
    batch = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    src = torch.tensor([0, 1, 2, 3, 1, 4, 5, 6, 7, 5])
    dst = torch.tensor([1, 0, 3, 2, 2, 5, 4, 7, 6, 6])
    edge_index = torch.stack([src, dst])
    ref = model(pos, x, v, edge_index=edge_index, batch=batch)
    for dt in (torch.int32, torch.int16):
        out = model(pos, x, v, edge_index=edge_index.to(dt), batch=batch.to(dt))
        assert all(torch.equal(a, b) for a, b in zip(out, ref))
    out = model(pos, x, v, batch=batch.int())  # default graph, int32 batch
    ref = model(pos, x, v, batch=batch)
    assert all(torch.equal(a, b) for a, b in zip(out, ref))


def test_ponita_potential_accepts_int32_batch():
    torch.manual_seed(0)
    pot = PonitaPotential([1, 6], hidden=8, layers=1, basis_dim=8, num_ori=0).double()
    numbers = torch.tensor([1, 6, 1, 6])
    pos = torch.randn(4, 3, dtype=torch.float64)
    batch = torch.tensor([0, 0, 1, 1])
    ref = pot(numbers, pos, batch=batch)
    out = pot(numbers, pos, batch=batch.int())
    assert torch.equal(out["energy"], ref["energy"]) and torch.equal(out["forces"], ref["forces"])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bool, torch.complex64])
def test_ponita_non_integer_edge_index_or_batch_raises_type_error(dtype):
    pos, x, _ = _cloud()
    model = Ponita(2, out_scalars=1, num_ori=0, task_level="graph", **SMALL).double()
    edge_index = torch.tensor([[0, 1], [1, 0]])
    with pytest.raises(TypeError, match="edge_index"):
        model(pos, x, edge_index=edge_index.to(dtype))
    with pytest.raises(TypeError, match="batch"):
        model(pos, x, batch=torch.zeros(pos.shape[0], dtype=dtype))
