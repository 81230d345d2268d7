import contextlib
import os
import pathlib

import pytest
import torch
from hypothesis import settings

# Property tests explore new random examples on every local run; CI (.ci/run sets GEOMDL_HYPOTHESIS=ci) runs a
# fixed, derandomized set so that a red CI always reproduces. A failure found locally is kept in .hypothesis/.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("GEOMDL_HYPOTHESIS") == "ci":
    settings.load_profile("ci")

SHARED_DATA = pathlib.Path(os.environ.get("GEOMDL_SHARED_DATA", pathlib.Path(__file__).resolve().parents[1] / ".." / "shared" / "data")).resolve()


@pytest.fixture
def shared_data() -> pathlib.Path:
    """Path of ../shared/data (real dataset samples); skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real-data samples not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@contextlib.contextmanager
def _default_dtype(dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


@pytest.fixture
def float64():
    """float64 default dtype for one test."""
    with _default_dtype(torch.float64):
        yield


@pytest.fixture(scope="module")
def float64_module():
    """float64 default dtype for a whole module (``pytestmark = pytest.mark.usefixtures("float64_module")``):
    e3nn builds its Wigner D in the default dtype, and hypothesis tests cannot take function-scoped fixtures."""
    with _default_dtype(torch.float64):
        yield


@pytest.fixture(scope="session")
def damage_bytes():
    """``damage(data, raw) -> bytes``: ``raw`` cut anywhere, or with 1-4 bytes overwritten by arbitrary ones, as
    drawn by hypothesis ``data`` (``st.data()``); for "a damaged file reads or its error names the file" tests."""
    import hypothesis.strategies as st

    def damage(data, raw: bytes) -> bytes:
        raw = bytearray(raw)
        if data.draw(st.booleans(), label="truncate"):
            return bytes(raw[: data.draw(st.integers(0, max(0, len(raw) - 1)), label="cut")])
        for _ in range(data.draw(st.integers(1, 4), label="flips")):
            raw[data.draw(st.integers(0, len(raw) - 1), label="at")] = data.draw(st.integers(0, 255), label="byte")
        return bytes(raw)

    return damage
