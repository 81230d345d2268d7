"""The einsum route of ClebschGordanTensorProduct runs large inputs in chunks of rows without autograd
(EINSUM_CHUNK_BYTES): same results as one call, bounded intermediates."""
import pytest
import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from geomdl.nn.tensor_products import clebsch_gordan as cgmod
from geomdl.nn.tensor_products.clebsch_gordan import ClebschGordanTensorProduct

IRREPS = "3x0e+2x1o+2x2e"


def _tp(mode, internal_weights=True):
    torch.manual_seed(0)
    tp = ClebschGordanTensorProduct(IRREPS, IRREPS, IRREPS, mode=mode, internal_weights=internal_weights).double()
    tp._sparse = False  # the einsum route, whatever the kernel choice
    return tp


def _inputs(tp, rows, row_weights):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(rows, tp.irreps_in1.dim, generator=g, dtype=torch.float64)
    y = torch.randn(rows, tp.irreps_in2.dim, generator=g, dtype=torch.float64)
    w = torch.randn(rows, tp.weight_numel, generator=g, dtype=torch.float64) if row_weights else None
    return x, y, w


@pytest.mark.parametrize("mode", ["uuu", "uvu", "uvw"])
@pytest.mark.parametrize("rows", [0, 1, 7, 50])
@pytest.mark.parametrize("row_weights", [False, True])
def test_chunked_einsum_matches_one_call(monkeypatch, mode, rows, row_weights):
    tp = _tp(mode, internal_weights=not row_weights)
    x, y, w = _inputs(tp, rows, row_weights)
    with torch.no_grad():
        full = tp(x, y, w)
        calls = []
        original = tp._forward_einsum
        monkeypatch.setattr(tp, "_forward_einsum", lambda *a: calls.append(a[0].shape[0]) or original(*a))
        monkeypatch.setattr(cgmod, "EINSUM_CHUNK_BYTES", 1)  # one row per chunk
        chunked = tp(x, y, w)
    assert chunked.shape == full.shape == (rows, tp.irreps_out.dim)
    torch.testing.assert_close(chunked, full, rtol=1e-12, atol=1e-12)
    assert calls == ([1] * rows if rows > 1 else [rows])


def test_chunked_broadcast_rows(monkeypatch):
    tp = _tp("uvw")
    x, y, _ = _inputs(tp, 12, False)
    x = x.view(3, 4, -1)
    y1 = y[:1]  # one row broadcast against [3, 4]
    with torch.no_grad():
        full = tp(x, y1)
        monkeypatch.setattr(cgmod, "EINSUM_CHUNK_BYTES", 1)
        chunked = tp(x, y1)
    assert chunked.shape == (3, 4, tp.irreps_out.dim)
    torch.testing.assert_close(chunked, full, rtol=1e-12, atol=1e-12)


def test_autograd_keeps_one_call(monkeypatch):
    tp = _tp("uvw")
    x, y, _ = _inputs(tp, 5, False)
    x.requires_grad_()
    monkeypatch.setattr(cgmod, "EINSUM_CHUNK_BYTES", 1)
    monkeypatch.setattr(tp, "_forward_einsum_chunked", lambda *a: pytest.fail("chunked under autograd"))
    tp(x, y).sum().backward()
    assert x.grad.shape == x.shape


def test_large_input_chunks_by_default():
    tp = _tp("uvw")
    per_row = tp._einsum_row_elements() * 8
    assert cgmod.EINSUM_CHUNK_BYTES // per_row < 10 ** 6  # a million rows would run in chunks


class _LiveBytes(TorchDispatchMode):
    """Peak bytes of the tensor storages that the ops run under it allocate and are still referenced (a
    deterministic count of what torch allocates; allocator caches and kernel workspaces not included)."""

    def __init__(self):
        super().__init__()
        self.live, self.now, self.peak = {}, 0, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        for key, (ref, nbytes) in list(self.live.items()):  # storages freed since the last op
            if ref.expired():
                del self.live[key]
                self.now -= nbytes
        out = func(*args, **(kwargs or {}))
        seen = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)}
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.untyped_storage().nbytes():
                storage = t.untyped_storage()
                if storage.data_ptr() not in seen and storage.data_ptr() not in self.live:
                    self.live[storage.data_ptr()] = (StorageWeakRef(storage), storage.nbytes())
                    self.now += storage.nbytes()
        self.peak = max(self.peak, self.now)
        return out


@pytest.mark.parametrize("irreps,mode,row_weights", [("16x0e+16x1o+16x2e", "uvw", False), (IRREPS, "uvw", True),
                                                     ("4x0e+4x1o+4x2e+4x3o", "uvu", False)])
def test_row_estimate_bounds_allocated_intermediates(monkeypatch, irreps, mode, row_weights):
    """The per-row estimate that sizes the chunks is at least what a chunk really allocates per row (and not
    far above it), so the intermediates of a chunk stay within EINSUM_CHUNK_BYTES."""
    torch.manual_seed(0)
    tp = ClebschGordanTensorProduct(irreps, irreps, irreps, mode=mode, internal_weights=not row_weights)
    tp._sparse = False
    per_row = tp._einsum_row_elements(row_weights=row_weights) * 4
    rows = 256  # two chunks of 128
    monkeypatch.setattr(cgmod, "EINSUM_CHUNK_BYTES", per_row * rows // 2)
    x, y, w = (t if t is None else t.float() for t in _inputs(tp, rows, row_weights))
    with torch.no_grad(), _LiveBytes() as counter:
        out = tp(x, y, w)
    allocated = (counter.peak - out.numel() * out.element_size()) / (rows // 2)  # the output is not an intermediate
    assert allocated <= per_row <= 1.25 * allocated
