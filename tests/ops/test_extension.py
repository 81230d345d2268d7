"""Loading of the compiled extension (geomdl/ops/_extension.py) seen from several threads."""
import pytest

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
