import torch

from geomdl.models.tinv_tsp import TSPEdgeNet


def test_raw_coordinate_scores_have_finite_gradients_wrt_pos():
    torch.manual_seed(0)
    model = TSPEdgeNet(invariant=False, hidden_channels=8, num_layers=2).double()
    pos = torch.rand(2, 6, 2, dtype=torch.float64)
    pos[1, 3] = pos[1, 2]  # two coincident cities as well as the zero diagonal
    pos.requires_grad_(True)
    eye = torch.eye(6, dtype=torch.bool)
    scores = model(pos)
    scores.masked_fill(eye, 0.0).sum().backward()
    assert torch.isfinite(pos.grad).all()
    dist = model.features(pos.detach())[1]
    torch.testing.assert_close(dist, torch.cdist(pos.detach(), pos.detach()))
