// CPU k-nearest-neighbour search for high-dimensional points (feature-space graphs such as DGCNN's),
// where a cell grid over three coordinates prunes almost nothing. Same result as knn_cpu.cpp's grid
// search and as knn_reference, edge for edge: the k smallest (|x_j - y_i|^2, j), the squared distance
// accumulated in double, left to right over the coordinates.
//
// Per cloud and block of queries, one matrix product (BLAS, torch's threads) gives the expansion
//     a_ij = |y_i|^2 + |x_j|^2 - 2 y_i . x_j            (double)
// A single pass over a_i. keeps the c = k + kExtra smallest in a max-heap and the smallest value it
// rejected or evicted (m_i); blocks whose minimum cannot enter the heap are skipped in one vector step. The c candidates get their exact distances and are sorted by
// (exact, j); the first k are final when no excluded point can reach the k-th:
//     exact_k + bound_i < m_i - bound_i,   bound_i = 8 (D + 4) u (|y_i|^2 + max_j |x_j|^2)
// (u = 2^-53; |a_ij - exact_ij| is below bound_i: the dot product's error is at most D u |y||x|,
// the norms' and the exact sum's at most (D + 1) u of their values). A query that fails the test is
// redone by an exact scan of its cloud.
// Cost per cloud of n points and m queries: the product (n m D multiply-adds in BLAS) plus O(n m)
// comparisons, against the grid search's n m D scalar operations once the grid stops pruning.
#include "common/no_fma.h"

#include <omp.h>
#include <torch/all.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "neighbors/grid.h"
#include "neighbors/knn_dense.h"

namespace geomdl {
namespace dense {
namespace {

using grid::Cand;
using grid::CandLess;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kUnit = 1.1102230246251565e-16;  // 2^-53
constexpr int64_t kExtra = 8;                     // candidates kept beyond k
constexpr int64_t kBlockEntries = int64_t(1) << 18;  // approximate distances per block (2 MB)
constexpr int64_t kLanes = 16;                       // values per block of the selection pass

// Exact squared distance as the references round it: ((a_0 - b_0)^2 + (a_1 - b_1)^2) + ...
inline double sqdist(const double* a, const double* b, int64_t D) {
  double t = a[0] - b[0];
  double acc = t * t;
  for (int64_t d = 1; d < D; ++d) {
    t = a[d] - b[d];
    acc += t * t;
  }
  return acc;
}

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
  auto approx = [&](int64_t j) { return row[j]; };
  auto less_approx = [](const Cand& a, const Cand& b) { return a.d < b.d; };
  heap.clear();
  int64_t j = 0;
  for (; static_cast<int64_t>(heap.size()) < cap; ++j)
    if (j != self) heap.push_back({approx(j), j});
  std::make_heap(heap.begin(), heap.end(), less_approx);
  double top = heap.front().d, left_out = kInf;
  while (j < n) {
    if (j + kLanes <= n) {
      double low = kInf;
#pragma omp simd reduction(min : low)
      for (int64_t t = j; t < j + kLanes; ++t) low = std::min(low, approx(t));
      if (low >= top) {
        left_out = std::min(left_out, low);
        j += kLanes;
        continue;
      }
    }
    for (const int64_t stop = std::min(n, j + kLanes); j < stop; ++j) {
      if (j == self) continue;
      const double a = approx(j);
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
  const double bound = 8.0 * double(D + 6) * kUnit * (qn + xn_max) + 1e-300;
  if (!(best.back().d + bound < left_out - bound)) exact_scan(q, xs, n, D, self, kk, best);
}

}  // namespace

at::Tensor knn_dense_cpu(const at::Tensor& x, const at::Tensor& y, int64_t k, const at::Tensor& ptr_x,
                         const at::Tensor& ptr_y, bool ignore_same_index) {
  const int64_t D = x.size(1), M = y.size(0), nb = ptr_x.numel() - 1;
  const at::Tensor px = ptr_x.contiguous(), py = ptr_y.contiguous();
  const int64_t* bx = px.data_ptr<int64_t>();
  const int64_t* by = py.data_ptr<int64_t>();
  // Neighbours per query: min(k, cloud size, less the query itself when it is one of the cloud's points).
  std::vector<int64_t> offsets(M + 1, 0);
  for (int64_t b = 0; b < nb; ++b)
    for (int64_t i = by[b]; i < by[b + 1]; ++i) {
      const int64_t n = bx[b + 1] - bx[b] - ((ignore_same_index && i >= bx[b] && i < bx[b + 1]) ? 1 : 0);
      offsets[i + 1] = std::min(k, n);
    }
  for (int64_t i = 0; i < M; ++i) offsets[i + 1] += offsets[i];
  const int64_t E = offsets[M];
  at::Tensor out = at::empty({2, E}, x.options().dtype(at::kLong));
  if (E == 0) return out;
  int64_t* row0 = out.data_ptr<int64_t>();
  int64_t* row1 = row0 + E;
  // Augmented rows: ya_i . xa_j = |y_i|^2 + |x_j|^2 - 2 y_i . x_j, one product gives the expansion.
  const at::Tensor xd = x.to(at::kDouble).contiguous(), yd = y.to(at::kDouble).contiguous();
  const at::Tensor xn_all = xd.pow(2).sum(1, true), yn_all = yd.pow(2).sum(1, true);
  const at::Tensor xa = at::cat({xd * -2.0, xn_all, at::ones_like(xn_all)}, 1);
  const at::Tensor ya = at::cat({yd, at::ones_like(yn_all), yn_all}, 1);
  const double* xp = xd.data_ptr<double>();
  const double* yp = yd.data_ptr<double>();
  const double* ynp = yn_all.data_ptr<double>();
  // One buffer for every block's expansion (a fresh allocation per block would be page-faulted in).
  at::Tensor buffer = at::empty({kBlockEntries}, xd.options());
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t x0 = bx[b], n = bx[b + 1] - x0, y0 = by[b], y1 = by[b + 1];
    if (n == 0 || y1 == y0 || offsets[y1] == offsets[y0]) continue;
    const double xn_max = xn_all.narrow(0, x0, n).max().item<double>();
    const int64_t rows = std::max<int64_t>(1, std::min<int64_t>(y1 - y0, kBlockEntries / n));
    if (rows * n > buffer.numel()) buffer = at::empty({rows * n}, xd.options());
    const at::Tensor xt = xa.narrow(0, x0, n).t();
    for (int64_t q0 = y0; q0 < y1; q0 += rows) {
      const int64_t q1 = std::min(y1, q0 + rows);
      at::Tensor dots = buffer.narrow(0, 0, (q1 - q0) * n).view({q1 - q0, n});
      at::mm_out(dots, ya.narrow(0, q0, q1 - q0), xt);
      const double* dp = dots.data_ptr<double>();
#pragma omp parallel if (q1 - q0 > 8)
      {
        std::vector<Cand> heap, best;
#pragma omp for schedule(dynamic, 8)
        for (int64_t i = q0; i < q1; ++i) {
          const int64_t kk = offsets[i + 1] - offsets[i];
          if (kk == 0) continue;
          const int64_t self = (ignore_same_index && i >= x0 && i < x0 + n) ? i - x0 : -1;
          query(yp + i * D, ynp[i], dp + (i - q0) * n, xp + x0 * D, xn_max, n, D, self, kk, heap, best);
          for (int64_t e = 0; e < kk; ++e) {
            row0[offsets[i] + e] = x0 + best[e].j;
            row1[offsets[i] + e] = i;
          }
        }
      }
    }
  }
  return out;
}

}  // namespace dense
}  // namespace geomdl
