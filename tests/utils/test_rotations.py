"""The Haar rotation sampler and the quaternion map shared by datasets, pipelines and tests."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl.datasets.functional import random_rotation_matrix
import geomdl.testing
from geomdl.utils.rotations import quaternion_to_matrix, random_rotation


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-10, 10, allow_nan=False), min_size=4, max_size=4).filter(lambda q: math.hypot(*q) > 1e-3))
def test_quaternion_gives_a_proper_rotation(q):
    rot = quaternion_to_matrix(torch.tensor(q, dtype=torch.float64))
    torch.testing.assert_close(rot @ rot.T, torch.eye(3, dtype=torch.float64), atol=1e-12, rtol=0)
    assert abs(float(torch.det(rot)) - 1) < 1e-12


def test_quaternion_known_values_and_batches():
    # 90 degrees about z: (w, x, y, z) = (cos 45, 0, 0, sin 45); an unnormalised q gives the same matrix
    rot = quaternion_to_matrix(torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(rot, torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64))
    q = torch.randn(5, 2, 4, dtype=torch.float64)
    batched = quaternion_to_matrix(q)
    assert batched.shape == (5, 2, 3, 3)
    torch.testing.assert_close(batched[3, 1], quaternion_to_matrix(q[3, 1]))
    torch.testing.assert_close(quaternion_to_matrix(-q), batched)  # q and -q are the same rotation
    assert quaternion_to_matrix(torch.randn(4)).dtype == torch.float32


@pytest.mark.parametrize("bad, err", [(torch.zeros(3), ValueError), (torch.zeros(4, dtype=torch.long), ValueError),
                                      ([1.0, 0.0, 0.0, 0.0], TypeError)])
def test_quaternion_rejects_bad_input(bad, err):
    with pytest.raises(err, match="q must be"):
        quaternion_to_matrix(bad)


def test_random_rotation_is_haar():
    # E[R] = 0 and E[R_ij^2] = 1/3 under the Haar measure; 4000 samples: standard error about 0.009
    gen = torch.Generator().manual_seed(0)
    rots = torch.stack([random_rotation(gen) for _ in range(4000)])
    assert rots.mean(0).abs().max() < 0.05
    assert (rots.pow(2).mean(0) - 1 / 3).abs().max() < 0.05
    # the trace of a Haar rotation has density proportional to 1 - cos(theta) in theta: E[trace] = 0, E[trace^2] = 1
    trace = rots.diagonal(dim1=1, dim2=2).sum(-1)
    assert abs(float(trace.mean())) < 0.06 and abs(float(trace.pow(2).mean()) - 1) < 0.08


def test_one_sampler_behind_every_entry_point():
    """The testing helper, the dataset function and the pipelines draw the same matrix from the same stream."""
    for seed in range(5):
        a = random_rotation(torch.Generator().manual_seed(seed), reflection=True)
        b = geomdl.testing.random_rotation(torch.Generator().manual_seed(seed), reflection=True)
        c = random_rotation_matrix("SO3", torch.Generator().manual_seed(seed), dtype=torch.float64)
        assert torch.equal(a, b) and torch.equal(a, -c)
        assert float(torch.det(a)) < 0
