"""PONITA grid mode without autograd makes one layer's [E, O, C] spatial kernel at a time instead of all
layers' at once (shared_linear): the same numbers, a peak independent of the number of layers."""
import pytest
import torch

from geomdl.nn.ponita import Ponita
from geomdl.nn.ponita import model as ponita_model


def _model():
    torch.manual_seed(0)
    return Ponita(2, 1, out_vectors=1, hidden=8, layers=3, num_ori=6, radius=0.7, task_level="node").double()


@pytest.mark.parametrize("n", [0, 1, 2, 25])
def test_per_layer_kernels_match_shared(monkeypatch, n):
    m = _model()
    g = torch.Generator().manual_seed(1)
    pos = torch.rand(n, 3, generator=g, dtype=torch.float64)
    x = torch.randn(n, 2, generator=g, dtype=torch.float64)
    with torch.enable_grad():
        s_ref, v_ref = m(pos, x)  # all kernels at once by shared_linear
    calls = []
    original = ponita_model.shared_linear
    monkeypatch.setattr(ponita_model, "shared_linear", lambda *a: calls.append(1) or original(*a))
    with torch.no_grad():
        s, v = m(pos, x)
    assert not calls  # the per-layer path
    assert torch.equal(s, s_ref.detach()) and torch.equal(v, v_ref.detach())


def test_training_still_uses_shared_kernels(monkeypatch):
    m = _model()
    pos = torch.rand(10, 3, dtype=torch.float64)
    calls = []
    original = ponita_model.shared_linear
    monkeypatch.setattr(ponita_model, "shared_linear", lambda *a: calls.append(1) or original(*a))
    s, v = m(pos, torch.ones(10, 2, dtype=torch.float64))
    (s.sum() + v.sum()).backward()
    assert calls == [1]
    assert all(b.conv.kernel_spatial.weight.grad is not None for b in m.blocks)


@pytest.mark.parametrize("shape", [(0, 3), (1, 3), (7, 5, 3), (25, 3)])
def test_polynomial_basis_chunks_rows_without_autograd(monkeypatch, shape):
    """Without autograd the basis MLP runs in chunks of CHUNK_ROWS rows (its monomials and hidden activations are
    transient): the same values as one pass, for empty, one-row and batched inputs; with autograd, one pass."""
    from geomdl.nn.ponita.embedding import PolynomialBasis

    torch.manual_seed(0)
    basis = PolynomialBasis(3, 16, 6).double()
    a = torch.randn(*shape, dtype=torch.float64)
    whole = basis(a)  # grad enabled: one pass
    calls = []
    rows = basis._rows
    monkeypatch.setattr(basis, "_rows", lambda r, w: calls.append(r.shape[0]) or rows(r, w))
    monkeypatch.setattr(PolynomialBasis, "CHUNK_ROWS", 2)
    with torch.no_grad():
        chunked = basis(a)
    assert chunked.shape == (*shape[:-1], 6)
    torch.testing.assert_close(chunked, whole.detach(), rtol=1e-14, atol=1e-14)
    n = a.numel() // 3
    assert calls == ([n] if n <= 2 else [2] * (n // 2) + ([n % 2] if n % 2 else []))
