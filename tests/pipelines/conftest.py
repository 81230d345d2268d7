"""Fixtures of the engine tests: tiny configs (data and model small enough for ~1 s runs)."""
import pytest

from geomdl.pipelines.config import load_config

TINY = [
    "data.kwargs.num_samples=16", "data.kwargs.num_points=16", "model.kwargs.hidden_channels=16",
    "train.epochs=3", "train.batch_size=8", "train.progress=off", "train.tensorboard=false", "optim.lr=0.01",
]


@pytest.fixture
def tiny_config():
    """``tiny_config(out_dir, "key=value", ...)`` -> a validated small ExperimentConfig."""

    def make(out_dir, *overrides):
        return load_config(None, TINY + [f"train.out_dir={out_dir}", *overrides])

    return make
