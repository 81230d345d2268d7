"""scatter / segment_softmax: bools are not dimensions or sizes, and index errors state the allowed range."""
import pytest
import torch

from geomdl.ops import scatter, scatter_reference, segment_softmax, segment_softmax_reference

SRC, INDEX = torch.randn(5, 3), torch.tensor([0, 1, 1, 2, 0])


@pytest.mark.parametrize("fn", [scatter, scatter_reference])
def test_bool_dim_and_dim_size_are_rejected(fn):
    # True == 1 would silently reduce the other axis or give one segment
    with pytest.raises(ValueError, match="dim must be an int, got True"):
        fn(SRC, torch.tensor([0, 1, 0]), dim=True)
    with pytest.raises(ValueError, match="dim_size must be a non-negative int or None, got True"):
        fn(SRC, torch.zeros(5, dtype=torch.long), dim_size=True)
    with pytest.raises(ValueError, match="dim_size must be a non-negative int or None, got False"):
        fn(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), dim_size=False)


@pytest.mark.parametrize("fn", [segment_softmax, segment_softmax_reference])
def test_bool_num_segments_and_dim_are_rejected(fn):
    with pytest.raises(ValueError, match="num_segments must be a non-negative int or None, got True"):
        fn(SRC, torch.zeros(5, dtype=torch.long), num_segments=True)
    with pytest.raises(ValueError, match="dim must be an int, got True"):
        fn(SRC, torch.tensor([0, 1, 0]), dim=True)


@pytest.mark.parametrize("fn", [scatter, scatter_reference])
def test_negative_index_message_states_the_range(fn):
    with pytest.raises(ValueError, match=r"index has a negative entry \(-1\); entries must lie in \[0, inf\)"):
        fn(SRC, torch.tensor([0, -1, 1, 2, 0]))
    with pytest.raises(ValueError, match=r"index has a negative entry \(-3\); entries must lie in \[0, 4\)"):
        fn(SRC, torch.tensor([0, -3, 1, 2, 0]), dim_size=4)


@pytest.mark.parametrize("fn", [scatter, scatter_reference, segment_softmax, segment_softmax_reference])
@pytest.mark.parametrize("shape", [(5, 0), (5, 0, 3), (5, 2, 0)])
def test_out_of_range_index_raises_without_channels(fn, shape):
    # no channel: no pass of the kernels over the values, but the index is still checked (segment_softmax's kernel
    # once returned the empty result without looking at it)
    size = "dim_size" if fn in (scatter, scatter_reference) else "num_segments"
    src = torch.randn(shape)
    with pytest.raises(ValueError, match=r"index has an entry 9 out of range: entries must lie in \[0, 3\)"):
        fn(src, torch.tensor([0, 1, 9, 2, 0]), **{size: 3})
    with pytest.raises(ValueError, match=r"index has a negative entry \(-1\); entries must lie in \[0, 3\)"):
        fn(src.double(), torch.tensor([0, 1, -1, 2, 0]), **{size: 3})
    with pytest.raises(ValueError, match=r"index has an entry 2 out of range: entries must lie in \[0, 0\)"):
        fn(src, torch.tensor([0, 1, 1, 2, 0]), **{size: 0})
    assert fn(src, torch.tensor([0, 1, 1, 2, 0]), **{size: 3}).numel() == 0
