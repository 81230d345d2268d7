"""Gaunt products under torch.compile(fullgraph=True): opaque operators (geomdl.o3.gaunt_ops) with the
eager results and gradients."""
import pytest
import torch

from geomdl import ops
from geomdl.o3 import gaunt_product, gaunt_product_columns
from geomdl.testing import assert_compiles


@pytest.mark.parametrize("method", ["dft", "fft"])
def test_gaunt_product(method):
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(2, 5, 9, generator=g, dtype=torch.float64)
    x2 = torch.randn(5, 16, generator=g, dtype=torch.float64)
    assert_compiles(lambda a, b: gaunt_product(a, b, 3, method=method), (x1, x2))


@pytest.mark.parametrize("backend", ["auto", "reference"])
def test_gaunt_product_columns(backend):
    g = torch.Generator().manual_seed(1)
    x1t, x2t = torch.randn(9, 12, generator=g, dtype=torch.float64), torch.randn(4, 12, generator=g, dtype=torch.float64)
    with ops.use_backend(backend):
        assert_compiles(lambda a, b: gaunt_product_columns(a, b, 2), (x1t, x2t))
