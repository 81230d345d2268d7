// CPU k-nearest-neighbour search for high-dimensional points (feature-space graphs such as DGCNN's),
// where a cell grid over three coordinates may prune almost nothing. Same result as knn_cpu.cpp's
// grid search and as knn_reference, edge for edge: the k smallest (|x_j - y_i|^2, j), the squared
// distance accumulated in double, left to right over the coordinates.
//
// Per cloud and block of queries, one matrix product of augmented rows (BLAS) gives the expansion a_ij
// of |x_j - y_i|^2 (dense_blocks.h). A single pass over a_i. keeps the c = k + kExtra smallest in a
// max-heap and the smallest value it rejected or evicted (m_i); blocks whose minimum cannot enter the
// heap are skipped in one vector step. The c candidates get their exact distances and are sorted by
// (exact, j); the first k are final when no excluded point can reach the k-th:
//     exact_k + bound_i < m_i - bound_i,
// bound_i = rounding_bound(D, |y_i|^2, max_j |x_j|^2) > |a_ij - exact_ij|.
// A query that fails the test is redone by an exact scan of its cloud.
// Cost per cloud of n points and m queries: the product (n m D multiply-adds in BLAS) plus O(n m)
// comparisons, against the grid search's n m D scalar operations once the grid stops pruning.
// prefer_dense() estimates which of the two is cheaper (knn_dense.h).
#include "common/no_fma.h"

#include <torch/all.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "neighbors/dense_blocks.h"
#include "neighbors/grid.h"
#include "neighbors/knn_dense.h"

namespace geomdl {
namespace dense {
namespace {

using grid::Cand;
using grid::CandLess;

constexpr int64_t kExtra = 8;  // candidates kept beyond k

// Every point of the cloud except `self`, exactly; the kk smallest (d, j) in order into `best`.
void exact_scan(const double* q, const double* xs, int64_t n, int64_t D, int64_t self, int64_t kk,
                std::vector<Cand>& best) {
  best.clear();
  for (int64_t j = 0; j < n; ++j)
    if (j != self) best.push_back({sqdist(q, xs + j * D, D), j});
  std::partial_sort(best.begin(), best.begin() + kk, best.end(), CandLess());
  best.resize(kk);
}

// One query against one cloud: fills `best` with its kk nearest (d, j), j relative to the cloud.
void query(const double* q, double qn, const double* row, const double* xs, double xn_max, int64_t n, int64_t D,
           int64_t self, int64_t kk, std::vector<Cand>& heap, std::vector<Cand>& best) {
  const int64_t cap = kk + kExtra;
  if (cap >= n - (self >= 0 ? 1 : 0)) {
    exact_scan(q, xs, n, D, self, kk, best);
    return;
  }
  // The cap smallest approximations (max-heap on the value), and the smallest value left out. A block
  // of kLanes values whose minimum is not below the heap's top is left out whole (one vector pass);
  // counting the query itself (j == self) among the left out would only make the test stricter.
  auto less_approx = [](const Cand& a, const Cand& b) { return a.d < b.d; };
  heap.clear();
  int64_t j = 0;
  for (; static_cast<int64_t>(heap.size()) < cap; ++j)
    if (j != self) heap.push_back({row[j], j});
  std::make_heap(heap.begin(), heap.end(), less_approx);
  double top = heap.front().d, left_out = kInf;
  while (j < n) {
    if (j + kLanes <= n) {
      double low = kInf;
#pragma omp simd reduction(min : low)
      for (int64_t t = j; t < j + kLanes; ++t) low = std::min(low, row[t]);
      if (low >= top) {
        left_out = std::min(left_out, low);
        j += kLanes;
        continue;
      }
    }
    for (const int64_t stop = std::min(n, j + kLanes); j < stop; ++j) {
      if (j == self) continue;
      const double a = row[j];
      if (a < top) {
        left_out = std::min(left_out, top);
        std::pop_heap(heap.begin(), heap.end(), less_approx);
        heap.back() = {a, j};
        std::push_heap(heap.begin(), heap.end(), less_approx);
        top = heap.front().d;
      } else {
        left_out = std::min(left_out, a);
      }
    }
  }
  best.clear();
  for (const Cand& c : heap) best.push_back({sqdist(q, xs + c.j * D, D), c.j});
  std::sort(best.begin(), best.end(), CandLess());
  best.resize(kk);
  const double bound = rounding_bound(D, qn, xn_max);
  if (!(best.back().d + bound < left_out - bound)) exact_scan(q, xs, n, D, self, kk, best);
}

}  // namespace

Search search_from_env(const char* variable) {
  const char* s = std::getenv(variable);
  if (s == nullptr || *s == 0 || std::strcmp(s, "auto") == 0) return Search::kAuto;
  if (std::strcmp(s, "grid") == 0) return Search::kGrid;
  if (std::strcmp(s, "dense") == 0) return Search::kDense;
  TORCH_CHECK_VALUE(false, variable, " must be 'auto', 'grid' or 'dense', got '", s, "'");
}

namespace {

// Fraction f of the points that a grid over the first three coordinates makes a sample of queries
// scan: the points within the query's k-th neighbour distance in each of those coordinates. Clouds
// above kSampleCap points are subsampled with a stride (the k-th neighbour then becomes the
// ceil(k / stride)-th), which keeps the estimate at O(16 kSampleCap D).
template <typename scalar_t>
double scanned_fraction(const scalar_t* xp, const scalar_t* yp, int64_t D, int64_t M, const int64_t* bx,
                        const int64_t* by, int64_t nb, int64_t k, bool ignore_same_index) {
  // 16 queries, fewer (down to 4) below 4096 queries so that the estimate stays a small part of the search.
  constexpr int64_t kSampleCap = 1024;
  const int64_t samples = std::min(M, std::max<int64_t>(4, std::min<int64_t>(16, M / 256)));
  double scanned = 0.0, total = 0.0;
  std::vector<double> q(D), dist;
  for (int64_t s = 0; s < samples; ++s) {
    const int64_t i = s * M / samples;
    const int64_t b = std::upper_bound(by, by + nb + 1, i) - by - 1;  // the cloud of query i
    const int64_t x0 = bx[b], n = bx[b + 1] - x0;
    const int64_t self = self_index(i, x0, n, ignore_same_index);
    const int64_t kk = std::min(k, n - (self >= 0 ? 1 : 0));
    if (kk <= 0) continue;
    for (int64_t d = 0; d < D; ++d) q[d] = double(yp[i * D + d]);
    const int64_t stride = std::max<int64_t>(1, n / kSampleCap);
    dist.clear();
    for (int64_t j = 0; j < n; j += stride) {
      if (j != self) dist.push_back(sqdist(q.data(), xp + (x0 + j) * D, D));
    }
    if (dist.empty()) continue;
    const int64_t rank = std::min<int64_t>(static_cast<int64_t>(dist.size()), (kk + stride - 1) / stride) - 1;
    std::nth_element(dist.begin(), dist.begin() + rank, dist.end());
    const double r = std::sqrt(dist[rank]);
    int64_t inside = 0, seen = 0;
    for (int64_t j = 0; j < n; j += stride, ++seen) {
      const scalar_t* p = xp + (x0 + j) * D;
      inside += (std::fabs(double(p[0]) - q[0]) <= r && std::fabs(double(p[1]) - q[1]) <= r &&
                 std::fabs(double(p[2]) - q[2]) <= r) ? 1 : 0;
    }
    scanned += double(inside) * double(n) / double(seen);
    total += double(n);
  }
  return total > 0.0 ? scanned / total : 0.0;
}

}  // namespace

bool prefer_dense(const at::Tensor& x, const at::Tensor& y, int64_t k, const at::Tensor& ptr_x,
                  const at::Tensor& ptr_y, bool ignore_same_index) {
  const int64_t D = x.size(1), M = y.size(0), nb = ptr_x.numel() - 1;
  if (D < 4 || M == 0 || x.size(0) == 0) return false;
  const at::Tensor px = ptr_x.contiguous(), py = ptr_y.contiguous();
  double f = 0.0;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "geomdl_knn_plan", [&] {
    f = scanned_fraction<scalar_t>(x.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), D, M, px.data_ptr<int64_t>(),
                                   py.data_ptr<int64_t>(), nb, k, ignore_same_index);
  });
  return dense_is_cheaper(D, f);
}

at::Tensor knn_dense_cpu(const at::Tensor& x, const at::Tensor& y, int64_t k, const at::Tensor& ptr_x,
                         const at::Tensor& ptr_y, bool ignore_same_index) {
  const int64_t D = x.size(1), M = y.size(0), nb = ptr_x.numel() - 1;
  const at::Tensor px = ptr_x.contiguous(), py = ptr_y.contiguous();
  const int64_t* bx = px.data_ptr<int64_t>();
  const int64_t* by = py.data_ptr<int64_t>();
  // Neighbours per query: min(k, cloud size, less the query itself when it is one of the cloud's points).
  std::vector<int64_t> offsets(M + 1, 0);
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t n = bx[b + 1] - bx[b];
    for (int64_t i = by[b]; i < by[b + 1]; ++i)
      offsets[i + 1] = std::min(k, n - (self_index(i, bx[b], n, ignore_same_index) >= 0 ? 1 : 0));
  }
  for (int64_t i = 0; i < M; ++i) offsets[i + 1] += offsets[i];
  const int64_t E = offsets[M];
  at::Tensor out = at::empty({2, E}, x.options().dtype(at::kLong));
  if (E == 0) return out;
  int64_t* row0 = out.data_ptr<int64_t>();
  int64_t* row1 = row0 + E;
  const Operands ops(x, y, bx, nb);
  const double* xp = ops.xd.data_ptr<double>();
  const double* yp = ops.yd.data_ptr<double>();
  const double* ynp = ops.yn.data_ptr<double>();
  int64_t most = 0;
  const std::vector<Block> blocks =
      make_blocks(bx, by, nb, [&](int64_t b) { return offsets[by[b + 1]] > offsets[by[b]]; }, &most);
  struct State {
    std::vector<Cand> heap, best;
  };
  for_each_block<State>(ops, blocks, most, bx, [&](State& st, int64_t, const Block& bl, const double* dp) {
    const int64_t x0 = bx[bl.cloud], n = bx[bl.cloud + 1] - x0;
    for (int64_t i = bl.q0; i < bl.q1; ++i) {
      const int64_t kk = offsets[i + 1] - offsets[i];
      if (kk == 0) continue;
      const int64_t self = self_index(i, x0, n, ignore_same_index);
      query(yp + i * D, ynp[i], dp + (i - bl.q0) * n, xp + x0 * D, ops.xn_max[bl.cloud], n, D, self, kk, st.heap,
            st.best);
      for (int64_t e = 0; e < kk; ++e) {
        row0[offsets[i] + e] = x0 + st.best[e].j;
        row1[offsets[i] + e] = i;
      }
    }
  });
  return out;
}

}  // namespace dense
}  // namespace geomdl
