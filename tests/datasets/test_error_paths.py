"""Error paths of the dataset helpers that must raise their own error, not a secondary one from torch."""
import pytest
import torch

from geomdl.datasets import get_dataset
from geomdl.datasets.functional import apply_rigid


@pytest.mark.parametrize("idx", ["abc", None, ["a", "b"]])
def test_dataset_index_of_a_non_index_type_is_the_documented_type_error(idx):
    # torch.as_tensor raised its own TypeError/ValueError/RuntimeError ("Could not infer dtype of NoneType")
    ds = get_dataset("synthetic_shapes", num_per_class=1)
    with pytest.raises(TypeError, match="index must be int, slice, sequence of ints"):
        ds[idx]
    assert len(ds[[]]) == 0 and len(ds[[0, 1]]) == 2  # the valid sequences still work


def test_apply_rigid_rejects_a_batch_of_transforms_with_its_value_error():
    pos = torch.randn(5, 3)
    with pytest.raises(ValueError, match=r"transform must have shape \[4, 4\], got \(2, 4, 4\)"):
        apply_rigid(pos, torch.eye(4).expand(2, 4, 4))  # was a RuntimeError from reshape(4, 4)
    torch.testing.assert_close(apply_rigid(pos, torch.eye(4)[None]), pos)  # one transform as [1, 4, 4]
