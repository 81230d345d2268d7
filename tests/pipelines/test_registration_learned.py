"""Learned registration descriptor: exact SO(3) invariance, shipped weights, loading errors, training, method="learned"."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl.pipelines.registration import estimate_normals, random_pose, register, rotation_error_deg, transform
from geomdl.pipelines.registration.descriptors import orient_normals
from geomdl.pipelines.registration.learned import WEIGHTS, PatchDescriptor, load_descriptor, save_descriptor, tangent_powers
from geomdl.pipelines.registration.neighbors import knn_search
from geomdl.pipelines.registration.pairs import synthetic_shape
from geomdl.pipelines.registration.patches import NUM_SCALARS, patch_features
from geomdl.pipelines.registration.training import info_nce, make_training_pairs, match_statistics, train_descriptor
from geomdl.testing import assert_equivariant


def _oriented(points):
    nbr = knn_search(points, points, 16)[0]
    return orient_normals(points, estimate_normals(points, neighbors=nbr), nbr)


def _describe_all(model, voxel=0.15):
    def fn(points):
        return model.describe(points, _oriented(points), torch.arange(points.shape[0]), voxel)
    return fn


@pytest.fixture(scope="module")
def cloud():
    return synthetic_shape(240, generator=torch.Generator().manual_seed(0))


def test_patch_scalars_are_invariant_and_sign_free(cloud):
    def scalars(points):
        return patch_features(points, estimate_normals(points), torch.arange(points.shape[0]), 0.6, 24)[..., :NUM_SCALARS].flatten(1)

    assert_equivariant(scalars, [cloud], ["position"], "scalar", group="SO3", tol=1e-9)
    normals = estimate_normals(cloud)
    flips = torch.where(torch.rand(cloud.shape[0]) < 0.5, -1.0, 1.0).double()[:, None]
    keys = torch.arange(cloud.shape[0])
    assert torch.allclose(patch_features(cloud, normals, keys, 0.6), patch_features(cloud, normals * flips, keys, 0.6))


@pytest.mark.parametrize("source", ["random", "shipped"])
def test_descriptor_is_exactly_so3_invariant_and_sees_reflections(cloud, source):
    torch.manual_seed(1)
    model = (PatchDescriptor(width=16) if source == "random" else load_descriptor()).double()
    fn = _describe_all(model)
    out = fn(cloud)
    assert out.shape == (cloud.shape[0], model.config["dim"]) and out.dtype == torch.float64
    assert torch.allclose(out.norm(dim=1), torch.ones(cloud.shape[0], dtype=torch.float64))
    assert_equivariant(fn, [cloud], ["position"], "scalar", group="SO3", tol=1e-8)
    with pytest.raises(AssertionError, match="reflection"):  # chiral by design: mirror images differ
        assert_equivariant(fn, [cloud], ["position"], "scalar", group="O3", tol=1e-8)


def test_equivariance_check_catches_a_frame_dependent_variant(cloud):
    model = PatchDescriptor(width=16).double()

    def broken(points):  # keeps one tangent-basis-dependent coordinate: must be caught
        feats = patch_features(points, _oriented(points), torch.arange(points.shape[0]), 0.6, 48)
        return torch.cat([_describe_all(model)(points), feats[:, 1:, NUM_SCALARS]], 1)

    with pytest.raises(AssertionError):
        assert_equivariant(broken, [cloud], ["position"], "scalar", group="SO3", tol=1e-8)


@settings(max_examples=20, deadline=None)
@given(st.floats(-3.0, 3.0), st.floats(0.1, 2.0), st.integers(1, 5))
def test_tangent_powers_are_complex_powers(phase, modulus, degree):
    t = modulus * complex(math.cos(phase), math.sin(phase))
    re, im = tangent_powers(torch.tensor([t.real], dtype=torch.float64), torch.tensor([t.imag], dtype=torch.float64), degree)
    for m in range(1, degree + 1):
        assert complex(float(re[0, m - 1]), float(im[0, m - 1])) == pytest.approx(t**m, rel=1e-9, abs=1e-12)


def test_shipped_weights_are_small_and_load_with_weights_only():
    assert WEIGHTS.is_file() and WEIGHTS.stat().st_size < 2 * 1024 * 1024
    ckpt = torch.load(WEIGHTS, weights_only=True)
    assert ckpt["meta"]["recipe"].startswith("python -m benchmarks registration_train_descriptor")
    model = load_descriptor()
    assert not model.training and model.config["dim"] == ckpt["config"]["dim"]


def test_loading_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_descriptor(tmp_path / "missing.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt"):
        load_descriptor(tmp_path / "bad.pt")
    torch.save({"format": "other"}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="foreign.pt.*not a geomdl registration descriptor"):
        load_descriptor(tmp_path / "foreign.pt")
    model = PatchDescriptor(width=8, dim=4)
    save_descriptor(model, tmp_path / "ok.pt", {"note": "test"})
    back = load_descriptor(tmp_path / "ok.pt")
    feats, ppf = torch.rand(3, 5, 10), torch.rand(3, 75)
    assert torch.equal(back(feats, ppf), model.eval()(feats, ppf))
    with pytest.raises(ValueError, match="PPF histograms"):
        back(feats)
    with pytest.raises(ValueError, match=r"features must have shape \[M, K, 10\]"):
        back(torch.rand(3, 5, 9), torch.rand(3, 75))


def test_info_nce_is_log_batch_for_uninformative_descriptors_and_masks_near_negatives():
    a = torch.nn.functional.normalize(torch.ones(6, 4), dim=1)
    pos = torch.arange(6.0)[:, None].repeat(1, 3)
    group = torch.zeros(6, dtype=torch.long)
    assert float(info_nce(a, a, pos, group, min_distance=0.5)) == pytest.approx(math.log(6), rel=1e-6)
    assert float(info_nce(a, a, pos, group, min_distance=100.0)) == pytest.approx(0.0, abs=1e-6)  # all negatives masked
    assert float(info_nce(a, a, pos, torch.arange(6), min_distance=100.0)) == pytest.approx(math.log(6), rel=1e-6)


def test_info_nce_masks_near_negatives_of_pairs_far_from_the_origin_and_from_each_other():
    """Each pair's frame moved by its own large offset (+1e4 / -1e4 in float32): only distances within a
    pair matter, so the loss equals the loss near the origin (a shared mean left both pairs far from it)."""
    gen = torch.Generator().manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(400, 8, generator=gen), dim=1)
    b = torch.nn.functional.normalize(a + 0.3 * torch.randn(400, 8, generator=gen), dim=1)
    near = torch.randint(0, 64, (400, 3), generator=gen) / 64.0  # exact in float32 after the offsets
    group = torch.arange(400) // 200
    far = near + torch.where(group[:, None] == 0, 1e4, -1e4)
    expected = info_nce(a, b, near, group, min_distance=0.1)
    assert float(info_nce(a, b, far, group, min_distance=0.1)) == pytest.approx(float(expected), rel=1e-5)
    # groups need not be 0..G-1 nor sorted
    assert float(info_nce(a, b, far, 7 - 5 * group, min_distance=0.1)) == pytest.approx(float(expected), rel=1e-5)


def test_training_lowers_the_loss_and_improves_matching_on_training_pairs():
    pairs = make_training_pairs(2, 0, seed=3)
    model = PatchDescriptor(width=16, dim=16)
    def describe(points, normals, keys):
        return model.describe(points, normals, keys, 0.05)

    before = match_statistics(describe, pairs[0], 0.05, 0.1)["inliers"]
    losses = train_descriptor(model, pairs, steps=40, per_pair=64, pairs_per_step=2, lr=3e-3, seed=0)
    assert sum(losses[-10:]) / 10 < sum(losses[:10]) / 10 - 0.2
    after = match_statistics(describe, pairs[0], 0.05, 0.1)["inliers"]
    assert after > before
    with pytest.raises(ValueError, match="pairs is empty"):
        train_descriptor(model, [], steps=1)


def test_register_with_the_learned_descriptor():
    gen = torch.Generator().manual_seed(5)
    shape = synthetic_shape(4000, generator=gen)
    pose = random_pose(gen, max_translation=2.0)
    result = register(transform(shape, pose), shape, method="learned", voxel_size=0.08)
    assert result.method == "learned" and result.success, result.summary()
    assert rotation_error_deg(result.pose, torch.linalg.inv(pose)) < 1.0
