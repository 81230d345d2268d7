import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl import ops
from geomdl.nn.message_passing import MessagePassing, check_edge_index, unpack


class SumNeighbours(MessagePassing):
    def forward(self, x, edge_index):
        return self.propagate(edge_index, x.shape[0], x_j=x)

    def message(self, x_j):
        return x_j


class Diff(MessagePassing):
    def forward(self, x, edge_index, scale):
        return self.propagate(edge_index, x_j=x, x_i=x, scale=scale)

    def message(self, x_j, x_i, scale):
        return scale * (x_j - x_i)


def test_propagate_matches_dense_sum():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, generator=g, dtype=torch.float64)
    edge_index = torch.tensor([[0, 1, 2, 3, 5, 5], [1, 1, 0, 4, 4, 0]])
    out = SumNeighbours("sum")(x, edge_index)
    adj = torch.zeros(6, 6, dtype=torch.float64)
    adj[edge_index[1], edge_index[0]] = 1.0
    torch.testing.assert_close(out, adj @ x)


@pytest.mark.parametrize("aggr", ["sum", "mean", "max", "min"])
def test_aggregations_agree_with_scatter_reference(aggr):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(7, 2, generator=g, dtype=torch.float64)
    edge_index = torch.randint(0, 7, (2, 20), generator=g)
    out = Diff(aggr)(x, edge_index, 2.0)
    msg = 2.0 * (x[edge_index[0]] - x[edge_index[1]])
    torch.testing.assert_close(out, ops.scatter_reference(msg, edge_index[1], 0, 7, aggr))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 8), e=st.integers(0, 20), seed=st.integers(0, 2**16))
def test_sum_is_adjacency_product_property(n, e, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g, dtype=torch.float64)
    edge_index = torch.randint(0, n, (2, e), generator=g)
    out = SumNeighbours()(x, edge_index)
    adj = torch.zeros(n, n, dtype=torch.float64).index_put_((edge_index[1], edge_index[0]), torch.ones(e, dtype=torch.float64), accumulate=True)
    torch.testing.assert_close(out, adj @ x)


def test_bipartite_size():
    x = torch.arange(4.0).unsqueeze(1)
    edge_index = torch.tensor([[0, 1, 3], [0, 0, 1]])
    out = SumNeighbours().propagate(edge_index, (4, 2), x_j=x)
    torch.testing.assert_close(out, torch.tensor([[1.0], [3.0]]))


def test_errors_name_the_argument():
    layer = SumNeighbours()
    x = torch.randn(3, 2)
    with pytest.raises(ValueError, match="edge_index"):
        layer(x, torch.tensor([[0, 5], [1, 1]]))
    with pytest.raises(ValueError, match=r"shape \[2, E\]"):
        layer(x, torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="integer"):
        layer(x, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="aggr"):
        SumNeighbours("median")
    with pytest.raises(ValueError, match="negative"):
        check_edge_index(torch.tensor([[-1], [0]]))


def test_unpack_reads_pyg_data():
    from torch_geometric.data import Batch, Data

    d = Batch.from_data_list([Data(pos=torch.zeros(2, 3)), Data(pos=torch.ones(3, 3))])
    pos, batch, x = unpack(d, "pos", "batch", "x")
    assert pos.shape == (5, 3) and batch.tolist() == [0, 0, 1, 1, 1] and x is None


def test_size_and_input_rows_must_agree():
    """``size=5`` with a 3-row ``x_j`` failed in the gather (bare ``IndexError``), ``size=(3, 2)`` with a 3-row
    ``x_i`` dropped the last target silently, ``size=True`` read as 1 and ``size=-1`` failed in the scatter."""
    x = torch.randn(3, 2)
    edge_index = torch.tensor([[0, 1], [1, 0]])
    layer = Diff()
    with pytest.raises(ValueError, match=r"x_j must have 5 rows \(one per source node\), got shape \(3, 2\)"):
        SumNeighbours().propagate(edge_index, 5, x_j=x)
    with pytest.raises(ValueError, match=r"x_i must have 2 rows \(one per target node\), got shape \(3, 2\)"):
        layer.propagate(edge_index, (3, 2), x_j=x, x_i=x, scale=1.0)
    with pytest.raises(ValueError, match=r"y_j must have 3 rows"):
        SumNeighbours().propagate(edge_index, x_j=x, y_j=torch.randn(4, 2))
    with pytest.raises(TypeError, match="size must be an int, a pair or None, got bool"):
        SumNeighbours().propagate(edge_index, True, x_j=x)
    with pytest.raises(ValueError, match="size must be an int >= 0"):
        SumNeighbours().propagate(torch.zeros(2, 0, dtype=torch.long), -1, x_j=x)
    import numpy as np
    torch.testing.assert_close(SumNeighbours().propagate(edge_index, np.int64(3), x_j=x), SumNeighbours()(x, edge_index))
