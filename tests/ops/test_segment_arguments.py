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
