"""Loading of the compiled extension (geomdl/ops/_extension.py) seen from several threads."""
import pytest
import torch

from geomdl.ops import _extension as ext


def test_loaded_flag_is_published_after_the_kernel_table(monkeypatch):
    """``_load`` answers without the lock once ``_loaded`` is set, and ``has_kernel`` then reads the table it
    filled. The flag is set last: while the table is being filled, another thread sees ``_loaded is None`` and
    waits on the lock, instead of finding a half-filled table and querying the dispatcher itself (which the
    table exists to avoid under torch.compile). Before, the flag was set first."""
    if not ext.extension_loaded():
        pytest.skip(f"extension not loaded: {ext.extension_error()}")
    seen = []
    real = ext._query_kernel

    def query(op, key):
        seen.append(ext._loaded)  # what a thread that does not take the lock would see now
        return real(op, key)

    monkeypatch.setattr(ext, "_loaded", None)
    monkeypatch.setattr(ext, "_load_error", None)
    monkeypatch.setattr(ext, "_kernels", {})
    monkeypatch.setattr(ext, "_query_kernel", query)
    assert ext._load() is True
    assert len(seen) == 2 * len(ext.OPS) and set(seen) == {None}
    assert set(ext._kernels) == {(op, key) for op in ext.OPS for key in ("CPU", "CUDA")}


def test_legacy_batched_detection_is_cheap_and_exact(monkeypatch):
    """transform_active(*tensors) runs on every eager call of the fused ops (gather_mul_scatter, to_columns, the
    Gaunt products): the legacy-vmap test uses torch's own per-tensor check, not a parsed string of the dispatch key
    set (~1.5 us a tensor), and agrees with the key set on plain, empty, meta and legacy-batched tensors."""
    _extension = ext

    if not hasattr(getattr(torch._C, "_functorch", None), "is_legacy_batchedtensor"):
        pytest.skip("this torch has no is_legacy_batchedtensor")
    batched = torch._add_batch_dim(torch.zeros(2, 3), 0, 0)
    cases = [torch.randn(4, 3), torch.zeros(0, 5), torch.empty(2, 2, device="meta"), torch.nn.Parameter(torch.ones(2)), batched]
    want = [False, False, False, False, True]
    assert [_extension.legacy_batched(t) for t in cases] == want

    def no_key_parsing(t):
        raise AssertionError("legacy_batched parsed the dispatch key set")

    monkeypatch.setattr(torch._C, "_dispatch_keys", no_key_parsing)
    assert [_extension.legacy_batched(t) for t in cases] == want
    assert _extension.legacy_batched(cases[0], 3, None, batched) and not _extension.legacy_batched(*cases[:4])
    assert not _extension.transform_active(*cases[:4]) and _extension.transform_active(cases[0], batched)
