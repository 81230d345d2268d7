"""TinvNN and APEN inputs that gave wrong numbers or raw errors (audit): duplicate graph edges, empty or
tiny-scale distance input, NaN gradients of tiny clouds, trailing empty clouds, half precision, gapped ids."""
import pytest
import torch

from geomdl.nn.apen import APEN, GlobalFrameAveragedNet, assignment_uncertainty, cluster_votes, fps_partition, refinement_violation
from geomdl.nn.tinv import TinvNet, geodesic_distances, mds_embedding


def test_geodesic_distances_take_a_duplicate_edge_once_at_its_shortest_length():
    path = torch.tensor([[0, 1, 2], [1, 2, 3]])
    dup = torch.cat([path, torch.tensor([[0], [1]])], dim=1)  # (0, 1) twice: a sparse matrix summed them
    assert geodesic_distances(dup, 4)[0].tolist() == [0.0, 1.0, 2.0, 3.0]
    weights = torch.tensor([0.5, 1.0, 1.0, 0.7], dtype=torch.float64)
    assert geodesic_distances(dup, 4, weights)[0].tolist() == [0.0, 0.5, 1.5, 2.5]
    with pytest.raises(ValueError, match="edge_weight must be finite and > 0"):
        geodesic_distances(path, 4, torch.tensor([1.0, float("nan"), 1.0]))


def test_geodesic_distances_refuse_float_node_ids_and_a_bool_node_count():
    """A float edge_index was truncated by .long() (node 2.7 read as node 2), num_nodes=True read as 1."""
    with pytest.raises(TypeError, match="edge_index must have an integer dtype"):
        geodesic_distances(torch.tensor([[0.5, 1.0], [1.0, 2.7]]), 3)
    with pytest.raises(ValueError, match="num_nodes must be an int >= 1"):
        geodesic_distances(torch.tensor([[0], [0]]), True)


def test_distances_input_checks_are_scale_free_and_name_an_empty_batch():
    with pytest.raises(ValueError, match=r"distances holds no matrix \(shape \(0, 5, 5\)\)"):
        mds_embedding(distances=torch.zeros(0, 5, 5, dtype=torch.float64))
    pos = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    d = torch.cdist(pos, pos)
    d[0, 1] *= 3  # asymmetric: eigh would read one triangle only
    for scale in (1.0, 1e-9, 1e9):
        with pytest.raises(ValueError, match="must be symmetric"):
            mds_embedding(distances=d * scale)


@pytest.mark.parametrize("scale", [1e-155, 1e-170])
@pytest.mark.parametrize("norm", ["rms", "max"])
def test_embedding_gradients_stay_finite_for_tiny_clouds(scale, norm):
    pos = (torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * scale).requires_grad_(True)
    z = mds_embedding(pos, 3, scale=norm).embedding
    (grad,) = torch.autograd.grad((z * torch.arange(24, dtype=torch.float64).view(8, 3)).sum(), pos)
    assert torch.isfinite(grad).all()  # s**2 underflowed in the backward: NaN below ~1e-154


def test_tinv_net_names_a_bad_dim():
    with pytest.raises(ValueError, match="dim must be an int >= 1, got '3'"):
        TinvNet(torch.nn.Identity(), dim="3")


@pytest.mark.parametrize("model_cls", [APEN, GlobalFrameAveragedNet])
def test_apen_classification_keeps_rows_for_trailing_empty_clouds(model_cls):
    data = pytest.importorskip("torch_geometric.data")
    torch.manual_seed(0)
    model = model_cls(3, hidden=8, num_layers=2, task="classification").eval()
    clouds = [data.Data(pos=torch.randn(20, 3)), data.Data(pos=torch.randn(15, 3)), data.Data(pos=torch.zeros(0, 3))]
    out = model(data.Batch.from_data_list(clouds))["logits"]
    assert out.shape == (3, 3)  # was 2 rows
    torch.testing.assert_close(out[:2], model(data.Batch.from_data_list(clouds[:2]))["logits"])


def test_apen_half_precision_and_bad_sigmas_are_named():
    model = APEN(2, hidden=8, num_layers=2).bfloat16()
    with pytest.raises(TypeError, match="pos has dtype torch.bfloat16: APEN's PCA frames need float32 or float64"):
        model(torch.randn(10, 3, dtype=torch.bfloat16))
    with pytest.raises(ValueError, match="sigmas must be a sequence"):
        APEN(2, num_layers=2, sigmas=0.1)


def test_partition_helpers_reject_unsorted_batches_and_measures_skip_missing_clouds():
    pos = torch.randn(8, 3)
    unsorted = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1])
    with pytest.raises(ValueError, match="batch must be sorted"):
        fps_partition(pos, unsorted, 2)
    with pytest.raises(ValueError, match="batch must be sorted"):
        cluster_votes(pos, torch.arange(8), unsorted, 0.1)
    gap = torch.ones(4, dtype=torch.long)  # cloud 0 absent: the only cloud present is cloud 1
    assert refinement_violation(torch.zeros(4, dtype=torch.long), torch.tensor([0, 0, 1, 1]), gap)["lambda_clouds"] == 1.0
    soft = torch.full((4, 2), 0.5)
    assert assignment_uncertainty(soft, gap)["delta_clouds"] == pytest.approx(1 - 0.5 ** 4)


def test_apen_half_inputs_run_under_autocast_and_num_clouds_below_an_id_is_refused():
    model = APEN(3, hidden=8, num_layers=2, task="classification")
    pos = torch.randn(20, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(pos.bfloat16())["logits"].shape == (1, 3)  # the half check applies outside autocast only
    with pytest.raises(ValueError, match="num_clouds must be larger than every cloud id"):
        model(pos, torch.tensor([0] * 10 + [1] * 10), num_clouds=1)


def test_float32_distances_of_a_small_cloud_off_the_origin_are_accepted():
    # float32 cdist's rounding grows with the coordinates' offset: a relative 1e-6 tolerance refused these
    x = torch.rand(60, 3, generator=torch.Generator().manual_seed(0)) * 0.1 + 1.0
    r = mds_embedding(distances=torch.cdist(x, x) ** 2, squared=True)
    assert torch.isfinite(r.embedding).all()


def test_refinement_violation_takes_part_ids_that_restart_in_every_cloud():
    """APEN accepts part ids 0..K_b-1 per cloud; refinement_violation merged equal ids of two clouds into one
    'impure' part and reported lambda = 1 for a partition that refines the truth exactly."""
    batch = torch.tensor([0, 0, 1, 1])
    gt = torch.tensor([0, 0, 1, 1])
    assert refinement_violation(torch.zeros(4, dtype=torch.long), gt, batch) == {"lambda_clouds": 0.0, "lambda_points": 0.0}
    mixed = refinement_violation(torch.zeros(4, dtype=torch.long), torch.tensor([0, 1, 2, 2]), batch)
    assert mixed == {"lambda_clouds": 0.5, "lambda_points": 0.5}
    with pytest.raises(ValueError, match="pred_part, gt_part and batch must share one shape"):
        refinement_violation(gt, gt, batch[:3])
