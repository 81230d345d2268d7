"""TinvNet on batches holding empty graphs (0 points, e.g. after a crop transform)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from tinv_helpers import AsBatch, cube_vertices, generic_cloud, tiny_tinvnet

from geomdl.testing import assert_equivariant

pyg = pytest.importorskip("torch_geometric.data")


def pyg_batch(clouds, labels):
    return pyg.Batch.from_data_list([pyg.Data(pos=c, y=torch.tensor([y])) for c, y in zip(clouds, labels)])


def empty_cloud():
    return torch.zeros(0, 3, dtype=torch.float64)


@pytest.mark.parametrize("position", ["middle", "first", "last"])
@pytest.mark.parametrize("degenerate", ["pick", "average"])
def test_empty_graph_in_pyg_batch_matches_batch_without_it(position, degenerate):
    a, b = generic_cloud(30, 21), generic_cloud(24, 22)
    model = tiny_tinvnet(degenerate).double()
    clouds = {"middle": [a, empty_cloud(), b], "first": [empty_cloud(), a, b], "last": [a, b, empty_cloud()]}[position]
    empty = {"middle": 1, "first": 0, "last": 2}[position]
    with_empty = model(pyg_batch(clouds, [0, 1, 2]))
    assert model.last_embedding.num_clouds == 3
    assert int(model.last_embedding.num_frames[empty]) == 0
    without = model(pyg_batch([a, b], [0, 2]))
    assert with_empty.shape == (3, 5)
    others = [i for i in range(3) if i != empty]
    assert torch.equal(with_empty[others], without)
    # the pooled value of no points/frames: a zero row
    assert torch.equal(with_empty[empty], torch.zeros(5, dtype=torch.float64))


def test_empty_graph_with_frame_averaging_over_a_symmetric_cloud():
    """A cube needs several frames (degenerate='average'); the empty graph still gets no frame and zeros."""
    a, cube = generic_cloud(30, 23), cube_vertices()
    model = tiny_tinvnet("average").double()
    with_empty = model(pyg_batch([cube, empty_cloud(), a], [0, 1, 2]))
    assert int(model.last_embedding.num_frames[0]) > 1
    without = model(pyg_batch([cube, a], [0, 2]))
    assert torch.equal(with_empty[[0, 2]], without)
    assert torch.equal(with_empty[1], torch.zeros(5, dtype=torch.float64))


def test_empty_graph_node_output_and_plain_batch():
    class PerPoint(torch.nn.Module):
        def forward(self, data):
            assert int(data.batch.max()) + 1 == 2  # the backbone never sees the empty graph
            return data.pos * (1.0 + data.batch[:, None])

    from geomdl.nn.tinv import TinvNet

    a, b = generic_cloud(12, 24), generic_cloud(9, 25)
    model = TinvNet(PerPoint(), output="node")
    pos = torch.cat([a, b])
    out = model(SimpleNamespace(pos=pos, batch=torch.repeat_interleave(torch.tensor([0, 2]), torch.tensor([12, 9]))))
    ref = model(SimpleNamespace(pos=pos, batch=torch.repeat_interleave(torch.tensor([0, 1]), torch.tensor([12, 9]))))
    assert torch.equal(out, ref)


def test_output_with_empty_graph_stays_invariant():
    a, b = generic_cloud(30, 26), generic_cloud(24, 27)
    pos = torch.cat([a, b])
    batch = torch.repeat_interleave(torch.tensor([0, 2]), torch.tensor([30, 24]))  # cloud 1 is empty
    out = AsBatch(tiny_tinvnet().double())(pos, batch)
    assert out.shape == (3, 5) and torch.equal(out[1], torch.zeros(5, dtype=out.dtype))
    assert_equivariant(AsBatch(tiny_tinvnet()), (pos, batch), ("position", "batch"), "global_scalar",
                       scaling=True, n_samples=3, tol=1e-10, atol=1e-12)
