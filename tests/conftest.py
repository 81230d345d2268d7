import os
import pathlib

import pytest
import torch

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


@pytest.fixture
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)
