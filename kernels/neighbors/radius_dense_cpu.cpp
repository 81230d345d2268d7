// CPU radius search for high-dimensional points (feature spaces), where a cell grid over three
// coordinates may prune almost nothing. Same result as radius_cpu.cpp's grid search and as
// radius_reference, edge for edge: the points with |x_j - y_i|^2 <= r^2 (squared distance accumulated
// in double, left to right), sorted by (distance, j) and cut to the max_num_neighbors nearest.
//
// Per cloud and block of queries, one matrix product (BLAS) gives the expansion a_ij of |x_j - y_i|^2
// (dense_blocks.h), off by less than bound_i = rounding_bound(D, |y_i|^2, max_j |x_j|^2). Every point
// with a_ij <= r^2 + bound_i is a candidate (blocks of kLanes values above it are passed over in one
// vector step); candidates get their exact distance and are kept when it is <= r^2. No true neighbour
// is missed, so no query needs a second pass.
// Cost per cloud of n points and m queries: the product (n m D multiply-adds in BLAS), O(n m)
// comparisons and D operations per candidate, against the grid search's n m D scalar operations once
// the grid stops pruning. prefer_dense_radius() estimates which of the two is cheaper (radius_dense.h).
#include "common/no_fma.h"

#include <torch/all.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "neighbors/grid.h"
#include "neighbors/radius_dense.h"

namespace geomdl {
namespace dense {
namespace {

using grid::Cand;
using grid::CandLess;

// One query against one cloud: its neighbours (d, j), j relative to the cloud, in output order.
void query(const double* q, double qn, const double* row, const double* xs, double xn_max, int64_t n, int64_t D,
           int64_t self, double r2, int64_t limit, std::vector<Cand>& hits) {
  const double cut = r2 + rounding_bound(D, qn, xn_max);
  hits.clear();
  for (int64_t j = 0; j < n; j += kLanes) {
    const int64_t stop = std::min(n, j + kLanes);
    if (stop - j == kLanes) {
      double low = kInf;
#pragma omp simd reduction(min : low)
      for (int64_t t = j; t < stop; ++t) low = std::min(low, row[t]);
      if (low > cut) continue;
    }
    for (int64_t t = j; t < stop; ++t) {
      if (row[t] > cut || t == self) continue;
      const double d = sqdist(q, xs + t * D, D);
      if (d <= r2) hits.push_back({d, t});
    }
  }
  if (static_cast<int64_t>(hits.size()) > limit) {
    std::nth_element(hits.begin(), hits.begin() + limit, hits.end(), CandLess());
    hits.resize(limit);
  }
  std::sort(hits.begin(), hits.end(), CandLess());
}

// Fraction of the points that the grid makes a sample of queries scan: those within 1.5 r of the
// query in each of the first three coordinates. Clouds above 1024 points are subsampled with a stride.
template <typename scalar_t>
double scanned_fraction(const scalar_t* xp, const scalar_t* yp, int64_t D, int64_t M, const int64_t* bx,
                        const int64_t* by, int64_t nb, double r) {
  constexpr int64_t kSampleCap = 1024;
  const int64_t samples = std::min(M, std::max<int64_t>(4, std::min<int64_t>(16, M / 256)));
  const double half = 1.5 * r;
  double scanned = 0.0, total = 0.0;
  for (int64_t s = 0; s < samples; ++s) {
    const int64_t i = s * M / samples;
    const int64_t b = std::upper_bound(by, by + nb + 1, i) - by - 1;  // the cloud of query i
    const int64_t x0 = bx[b], n = bx[b + 1] - x0;
    if (n == 0) continue;
    const scalar_t* q = yp + i * D;
    const int64_t stride = std::max<int64_t>(1, n / kSampleCap);
    int64_t inside = 0, seen = 0;
    for (int64_t j = 0; j < n; j += stride, ++seen) {
      const scalar_t* p = xp + (x0 + j) * D;
      inside += (std::fabs(double(p[0]) - double(q[0])) <= half && std::fabs(double(p[1]) - double(q[1])) <= half &&
                 std::fabs(double(p[2]) - double(q[2])) <= half) ? 1 : 0;
    }
    scanned += double(inside) * double(n) / double(seen);
    total += double(n);
  }
  return total > 0.0 ? scanned / total : 0.0;
}

}  // namespace

bool prefer_dense_radius(const at::Tensor& x, const at::Tensor& y, double r, const at::Tensor& ptr_x,
                         const at::Tensor& ptr_y) {
  const int64_t D = x.size(1), M = y.size(0), nb = ptr_x.numel() - 1;
  if (D < 4 || M == 0 || x.size(0) == 0) return false;
  const at::Tensor px = ptr_x.contiguous(), py = ptr_y.contiguous();
  double f = 0.0;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "geomdl_radius_plan", [&] {
    f = scanned_fraction<scalar_t>(x.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), D, M, px.data_ptr<int64_t>(),
                                   py.data_ptr<int64_t>(), nb, r);
  });
  return dense_is_cheaper(D, f);
}

at::Tensor radius_dense_cpu(const at::Tensor& x, const at::Tensor& y, double r, const at::Tensor& ptr_x,
                            const at::Tensor& ptr_y, int64_t max_num_neighbors, bool ignore_same_index) {
  const int64_t D = x.size(1), M = y.size(0), nb = ptr_x.numel() - 1;
  const at::Tensor px = ptr_x.contiguous(), py = ptr_y.contiguous();
  const int64_t* bx = px.data_ptr<int64_t>();
  const int64_t* by = py.data_ptr<int64_t>();
  const Operands ops(x, y, bx, nb);
  const double* xp = ops.xd.data_ptr<double>();
  const double* yp = ops.yd.data_ptr<double>();
  const double* ynp = ops.yn.data_ptr<double>();
  const double r2 = r * r;
  int64_t most = 0;
  const std::vector<Block> blocks = make_blocks(bx, by, nb, [](int64_t) { return true; }, &most);
  // Each block's sources, in query order; counts[i + 1] = neighbours of query i.
  std::vector<std::vector<int64_t>> sources(blocks.size());
  std::vector<int64_t> counts(M + 1, 0);
  struct State {
    std::vector<Cand> hits;
  };
  for_each_block<State>(ops, blocks, most, bx, [&](State& st, int64_t w, const Block& bl, const double* dp) {
    const int64_t x0 = bx[bl.cloud], n = bx[bl.cloud + 1] - x0;
    std::vector<int64_t>& src = sources[w];
    for (int64_t i = bl.q0; i < bl.q1; ++i) {
      query(yp + i * D, ynp[i], dp + (i - bl.q0) * n, xp + x0 * D, ops.xn_max[bl.cloud], n, D,
            self_index(i, x0, n, ignore_same_index), r2, max_num_neighbors, st.hits);
      counts[i + 1] = static_cast<int64_t>(st.hits.size());
      for (const Cand& c : st.hits) src.push_back(x0 + c.j);
    }
  });
  for (int64_t i = 0; i < M; ++i) counts[i + 1] += counts[i];
  const int64_t E = counts[M];
  at::Tensor out = at::empty({2, E}, x.options().dtype(at::kLong));
  int64_t* row0 = out.data_ptr<int64_t>();
  int64_t* row1 = row0 + E;
  const int64_t num_blocks = static_cast<int64_t>(blocks.size());
#pragma omp parallel for schedule(static) if (E > 65536)
  for (int64_t w = 0; w < num_blocks; ++w) {
    std::copy(sources[w].begin(), sources[w].end(), row0 + counts[blocks[w].q0]);
    for (int64_t i = blocks[w].q0; i < blocks[w].q1; ++i) std::fill(row1 + counts[i], row1 + counts[i + 1], i);
  }
  return out;
}

}  // namespace dense
}  // namespace geomdl
