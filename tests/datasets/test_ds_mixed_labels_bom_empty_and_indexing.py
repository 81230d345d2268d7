"""Dataset defects found by an audit: frames with and without labels in one file, byte-order marks, empty
clouds in transforms, per-vertex attributes left on sampled meshes, indexing and split rounding."""
import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from geomdl.datasets import ExtXYZ
from geomdl.datasets import transforms as T
from geomdl.datasets.base import random_split_indices
from geomdl.datasets.formats.off import read_off
from geomdl.datasets.formats.points import read_points
from geomdl.datasets.synthetic import SyntheticShapes

UNLABELLED = '2\nProperties=species:S:1:pos:R:3 pbc="F F F"\nH 0 0 0\nH 0.74 0 0\n'
LABELLED = '2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=-1.0 pbc="F F F"\nH 0 0 0 0.1 0 0\nH 0.74 0 0 -0.1 0 0\n'


@pytest.mark.parametrize("frames, first_bad", [([UNLABELLED, LABELLED, LABELLED], 0), ([LABELLED, UNLABELLED, LABELLED], 1)])
def test_frames_with_and_without_labels_are_an_error_naming_the_frame(tmp_path, frames, first_bad):
    # unlabelled first: the other frames' labels were silently dropped; labelled first: a bare KeyError
    path = tmp_path / "mixed.xyz"
    path.write_text("".join(frames))
    with pytest.raises(ValueError, match=rf"mixed.xyz: frame {first_bad} has no energy but 2 other frame\(s\) have one"):
        ExtXYZ(path, require_labels=False, processed_dir=tmp_path / "cache")
    path.write_text(UNLABELLED * 2)  # all unlabelled: fine
    assert "energy" not in ExtXYZ(path, require_labels=False, processed_dir=tmp_path / "cache2")[0]


def test_a_byte_order_mark_is_ignored_by_the_parsers(tmp_path):
    bom = "\ufeff"
    (tmp_path / "a.txt").write_text(bom + "0.1 0.2 0.3\n0.4 0.5 0.6\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text(bom + "0.1,0.2,0.3\n0.4,0.5,0.6\n", encoding="utf-8")
    for name in ("a.txt", "b.csv"):
        np.testing.assert_allclose(np.asarray(read_points(tmp_path / name)).reshape(2, -1)[:, :3], [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], rtol=1e-6)
    (tmp_path / "t.off").write_text(bom + "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n", encoding="utf-8")
    verts, faces = read_off(tmp_path / "t.off")
    assert np.asarray(verts).shape == (3, 3) and np.asarray(faces).shape == (1, 3)


@pytest.mark.parametrize("transform", [T.VoxelDownsample(0.1), T.RandomCrop(0.5, "plane", seed=0), T.RandomCrop(0.5, "sphere", seed=0)])
def test_transforms_pass_empty_clouds_through(transform):
    out = transform(Data(pos=torch.zeros(0, 3)))  # raised reshape / randint / topk errors
    assert out.pos.shape == (0, 3)


def test_sampling_a_mesh_drops_per_vertex_attributes_and_the_vertex_graph():
    pos = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    face = torch.tensor([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]]).T
    data = Data(pos=pos, face=face, normal=torch.randn(4, 3), seg=torch.arange(4), y=torch.tensor([2]),
                edge_index=torch.tensor([[0, 1], [1, 0]]))
    out = T.SamplePoints(100, include_normals=False, seed=0)(data)
    assert out.pos.shape == (100, 3) and "normal" not in out and "seg" not in out and "edge_index" not in out
    assert out.y.tolist() == [2]  # a per-shape label stays


def test_dataset_indexing_edge_cases():
    ds = SyntheticShapes(num_per_class=1, num_points=8)  # 12 items
    rev = ds[::-1]  # torch refuses negative steps
    assert len(rev) == 12 and torch.equal(rev[0].pos, ds[11].pos)
    with pytest.raises(IndexError, match="index must be 1-D"):
        ds[[[0, 1], [2, 3]]]
    with pytest.raises(TypeError, match="index must be an integer"):
        ds[torch.tensor(2.7)]  # was item 2


def test_fractional_split_sizes_round_down_exactly():
    for fractions, expected in (([0.29, 0.71], [29, 71]), ([0.57, 0.43], [57, 43]), ([0.58, 0.14, 0.28], [58, 14, 28])):
        assert [len(i) for i in random_split_indices(100, fractions)] == expected  # 0.29 * 100 = 28.999...
    assert [len(i) for i in random_split_indices(100, [np.float32(0.5), np.float32(0.5)])] == [50, 50]


def _shift_in_place(data):
    data.pos += 1.0
    return data


def test_an_in_place_transform_changes_the_item_only_not_the_stored_data():
    ds = SyntheticShapes(num_per_class=1, num_points=8)
    before = ds[3].pos.clone()
    shifted = SyntheticShapes(num_per_class=1, num_points=8, transform=_shift_in_place)
    for _ in range(3):  # the store was edited through views: +1, +2, +3
        assert torch.allclose(shifted[3].pos, before + 1.0)
    assert torch.equal(ds[3].pos, before)
