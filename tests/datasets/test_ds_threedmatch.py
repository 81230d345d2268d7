"""3DMatch: real fragments + redkitchen gt.log (pair 0-4 aligns), GeoTransformer demo pair, layouts, bad PLY."""
import numpy as np
import pytest
import torch

from geomdl.datasets.formats.gtlog import format_gt_log, read_gt_log
from geomdl.datasets.formats.points import read_ply, read_points
from geomdl.datasets.functional import overlap_ratio, random_rotation_matrix, rigid_matrix
from geomdl.datasets.threedmatch import ThreeDMatch, load_pair

FRAG = "3dmatch/fragments/7-scenes-redkitchen"


def test_real_fragments_and_pair_0_4_aligns(shared_data, tmp_path):
    assert read_ply(shared_data / FRAG / "cloud_bin_0.ply").shape == (258342, 3)  # README counts
    assert read_ply(shared_data / FRAG / "cloud_bin_4.ply").shape == (313395, 3)
    ds = ThreeDMatch(shared_data / "3dmatch", missing="skip", voxel_size=0.025, processed_dir=tmp_path)
    assert len(ds) == 1  # only fragments 0 and 4 are in the sample
    pair = ds[0]
    assert (pair.ref_id, pair.src_id, pair.scene) == (0, 4, "7-scenes-redkitchen")
    assert float(pair.overlap) == pytest.approx(0.5422)
    assert pair.info.shape == (1, 6, 6) and float(pair.info.abs().sum()) > 0
    ratio = overlap_ratio(pair.pos_ref, pair.pos_src, pair.transform[0], radius=0.0375)
    assert ratio >= 0.45  # README: 51 %
    assert overlap_ratio(pair.pos_ref, pair.pos_src, None, radius=0.0375) < 0.2  # without the pose they do not align
    # the inverse convention (T mapping i into j) would not align either
    assert overlap_ratio(pair.pos_ref, pair.pos_src, torch.linalg.inv(pair.transform[0]), radius=0.0375) < 0.2
    again = ThreeDMatch(shared_data / "3dmatch", missing="skip", voxel_size=0.025, processed_dir=tmp_path)
    assert again.from_cache
    with pytest.raises(FileNotFoundError, match="505 pair\\(s\\) need fragments that are missing"):
        ThreeDMatch(shared_data / "3dmatch", processed_dir=tmp_path)


def test_geotransformer_demo_pair(shared_data):
    folder = shared_data / "3dmatch/geotransformer_demo"
    pair = load_pair(folder / "ref.npy", folder / "src.npy", folder / "gt.npy")
    assert pair.pos_ref.shape == (18977, 3) and pair.pos_src.shape == (15953, 3)
    records = {(i, j): mat for i, j, _, mat in read_gt_log(shared_data / "3dmatch/benchmarks/3DMatch/7-scenes-redkitchen/gt.log")}
    np.testing.assert_array_equal(pair.transform[0].numpy(), records[(0, 6)])  # README: gt.npy == record "0 6"
    assert overlap_ratio(pair.pos_ref, pair.pos_src, pair.transform[0], 0.0375) > 0.3


def _scene(tmp_path, ext):
    """A two-scene layout with fragments in .npy/.pth and a known pose per pair."""
    gen = torch.Generator().manual_seed(0)
    base = torch.rand(400, 3, generator=gen, dtype=torch.float64)
    poses = {}
    for scene in ("s1", "s2"):
        frag = tmp_path / "fragments" / scene
        frag.mkdir(parents=True)
        clouds = []
        for k in range(3):
            rot = random_rotation_matrix("SO3", gen, torch.float64)
            t = torch.randn(3, generator=gen, dtype=torch.float64)
            clouds.append((rot, t))
            local = (base - t) @ rot  # fragment k sees the scene in its own frame
            if ext == ".npy":
                np.save(frag / f"cloud_bin_{k}.npy", local.numpy())
            else:
                torch.save(local.numpy(), frag / f"cloud_bin_{k}.pth")
        records = []
        for i, j in ((0, 1), (0, 2), (1, 2)):
            ri, ti = clouds[i]
            rj, tj = clouds[j]
            mat = torch.linalg.inv(rigid_matrix(ri, ti)) @ rigid_matrix(rj, tj)  # j -> i
            records.append((i, j, 3, mat.numpy()))
            poses[(scene, i, j)] = mat
        bench = tmp_path / "benchmarks" / "3DMatch" / scene
        bench.mkdir(parents=True)
        (bench / "gt.log").write_text(format_gt_log(records))
        (bench / "gt_overlap.log").write_text("0,1,0.9\n0,2,0.25\n1,2,0.05\n")
    return poses


@pytest.mark.parametrize("ext", [".npy", ".pth"])
def test_array_fragments_pose_convention_and_selection(tmp_path, ext):
    poses = _scene(tmp_path, ext)
    ds = ThreeDMatch(tmp_path, voxel_size=None, processed_dir=tmp_path / "cache")
    assert len(ds) == 6 and ds.scenes == ["s1", "s2"]
    for pair in ds:
        torch.testing.assert_close(pair.transform[0], poses[(pair.scene, pair.ref_id, pair.src_id)], atol=1e-7, rtol=0)
        assert overlap_ratio(pair.pos_ref, pair.pos_src, pair.transform[0], 1e-4) == 1.0
    assert float(ds[0].info.abs().sum()) == 0  # no gt.info in this layout: zeros
    first = ds[0]
    expected = first.transform.clone(), first.pos_ref.clone()
    first.transform += 1.0
    first.pos_ref += 1.0  # in-place edits of an item do not reach the dataset's poses or fragments
    assert torch.equal(ds[0].transform, expected[0]) and torch.equal(ds[0].pos_ref, expected[1])
    with pytest.warns(UserWarning, match="no 3DLoMatch/gt.log; selecting pairs with overlap"):
        lo = ThreeDMatch(tmp_path, benchmark="3DLoMatch", voxel_size=None, processed_dir=tmp_path / "cache")
    assert [(p.ref_id, p.src_id) for p in lo] == [(0, 2), (0, 2)]  # 0.1 < overlap <= 0.3, derived from 3DMatch's gt.log
    some = ThreeDMatch(tmp_path, scenes=["s2"], overlap_range=(0.5, 1.0), voxel_size=None, processed_dir=tmp_path / "cache")
    assert [(p.scene, p.ref_id, p.src_id) for p in some] == [("s2", 0, 1)]


def test_overlap_range_warns_about_pairs_of_unknown_overlap(tmp_path):
    _scene(tmp_path, ".npy")
    (tmp_path / "benchmarks" / "3DMatch" / "s1" / "gt_overlap.log").write_text("0,1,0.9\n")  # 0-2, 1-2 unknown
    with pytest.warns(UserWarning, match="scene 's1': 2 gt.log pair"):
        some = ThreeDMatch(tmp_path, scenes=["s1"], overlap_range=(0.5, 1.0), voxel_size=None, processed_dir=tmp_path / "cache")
    assert [(p.ref_id, p.src_id) for p in some] == [(0, 1)]


def test_bad_fragment_files(tmp_path):
    from plyfile import PlyData, PlyElement

    vertex = np.zeros(100, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    PlyData([PlyElement.describe(vertex, "vertex")]).write(str(tmp_path / "full.ply"))
    raw = (tmp_path / "full.ply").read_bytes()
    (tmp_path / "short.ply").write_bytes(raw[: len(raw) - 200])  # short body
    with pytest.raises(ValueError, match="short.ply: unreadable PLY file"):
        read_ply(tmp_path / "short.ply")
    np.save(tmp_path / "flat.npy", np.zeros((5, 2)))
    with pytest.raises(ValueError, match="flat.npy: expected a point array of shape"):
        read_points(tmp_path / "flat.npy")
    nopos = np.zeros(3, dtype=[("a", "f4")])
    PlyData([PlyElement.describe(nopos, "vertex")]).write(str(tmp_path / "nopos.ply"))
    with pytest.raises(ValueError, match="lacks properties"):
        read_ply(tmp_path / "nopos.ply")


@pytest.mark.parametrize("row, col", [(0, 3), (1, 1)])
def test_load_pair_transform_with_nan_names_the_file(tmp_path, row, col):
    """Regression: only the last row of the pose file was checked: a NaN translation or rotation entry passed."""
    np.save(tmp_path / "ref.npy", np.random.default_rng(0).random((10, 3)))
    pose = np.eye(4)
    pose[row, col] = np.nan
    np.save(tmp_path / "gt.npy", pose)
    with pytest.raises(ValueError, match=r"gt\.npy: the 4x4 transform contains NaN or infinite values"):
        load_pair(tmp_path / "ref.npy", tmp_path / "ref.npy", tmp_path / "gt.npy")
