"""The dense per-cloud k-NN path of the reference (small clouds, feature spaces): same pairs and
order as an exhaustive search sorted by (query, exact float64 distance, source)."""
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl.ops import knn, knn_graph
from geomdl.ops import neighbors as nbm


def brute_force(x, y, bx, by, k, ignore_same_index):
    pairs = []
    for i in range(y.shape[0]):
        cands = [(float((y[i].double() - x[j].double()).pow(2).sum()), j) for j in range(x.shape[0])
                 if bx[j] == by[i] and not (ignore_same_index and i == j)]
        pairs += [(j, i) for _, j in sorted(cands)[:k]]
    return torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).T.contiguous()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), dim=st.sampled_from([2, 3, 5, 16]), k=st.integers(1, 12),
       ties=st.booleans(), ignore=st.booleans())
def test_dense_knn_matches_exhaustive_search(seed, dim, k, ties, ignore):
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 40, (1,), generator=g))
    x = torch.randint(0, 3, (n, dim), generator=g).float() if ties else torch.randn(n, dim, generator=g)
    bx = torch.sort(torch.randint(0, 3, (n,), generator=g)).values
    if ignore:
        y, by = x, bx
    else:
        m = int(torch.randint(1, 20, (1,), generator=g))
        y = torch.randn(m, dim, generator=g)
        by = torch.sort(torch.randint(0, 3, (m,), generator=g)).values
    got = nbm._knn_dense_per_cloud(x, y, bx, by, k, ignore)
    assert torch.equal(got, brute_force(x, y, bx, by, k, ignore))


def test_public_knn_uses_it_for_features_and_small_clouds():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(200, 24, generator=g)
    batch = torch.sort(torch.randint(0, 4, (200,), generator=g)).values
    edges = knn_graph(feats, 6, batch, loop=True)
    assert torch.equal(edges, brute_force(feats, feats, batch, batch, 6, False))
    pos = torch.randn(150, 3, generator=g)
    assert torch.equal(knn(pos, pos[:30], 4, torch.zeros(150, dtype=torch.long), torch.zeros(30, dtype=torch.long)),
                       brute_force(pos, pos[:30], torch.zeros(150), torch.zeros(30), 4, False))
