"""Shared checks for the layer tests (imported by tests/nn/test_*.py and tests/models/test_*.py)."""
from __future__ import annotations

import io

import torch


def state_dict_roundtrip(make, call, atol=0.0):
    """Build a module with ``make()``, save its state_dict to bytes, load it into a second fresh
    ``make()`` (different initial weights) and check ``call(module)`` agrees exactly."""
    torch.manual_seed(1)
    a = make().eval()
    torch.manual_seed(2)
    b = make().eval()
    before = call(b)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b.load_state_dict(torch.load(buf, weights_only=True))
    out_a, out_b = call(a), call(b)
    out_a = out_a if isinstance(out_a, (tuple, list)) else (out_a,)
    out_b = out_b if isinstance(out_b, (tuple, list)) else (out_b,)
    before = before if isinstance(before, (tuple, list)) else (before,)
    assert any(not torch.allclose(x, y) for x, y in zip(before, out_a)), "fresh module already equal: test cannot fail"
    for x, y in zip(out_a, out_b):
        torch.testing.assert_close(x, y, rtol=0, atol=atol)


def random_cloud(n=12, batch_sizes=None, scale=1.0, generator=None, dtype=torch.float64):
    g = generator or torch.Generator().manual_seed(0)
    pos = torch.randn(n, 3, generator=g, dtype=dtype) * scale
    batch = None
    if batch_sizes is not None:
        assert sum(batch_sizes) == n
        batch = torch.repeat_interleave(torch.arange(len(batch_sizes)), torch.tensor(batch_sizes))
    return pos, batch
