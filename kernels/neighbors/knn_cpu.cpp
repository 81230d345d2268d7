// CPU k-nearest-neighbour search: for every query y[i], the k rows x[j] of the same cloud with the
// smallest (|x_j - y_i|^2, j) (squared distance accumulated in double, left to right), sorted in
// that order; fewer when the cloud is smaller; j == i is dropped when ignore_same_index.
// Identical to knn_reference (geomdl/ops/neighbors.py), edge for edge.
//
// Each cloud gets a cell grid with about `occupancy` points per cell. A query visits shells of
// cells at Chebyshev cell distance s = 0, 1, 2, ... around its own cell, skipping cells whose box is
// farther than the current k-th candidate, and stops once the k-th candidate is strictly closer
// than any point outside the visited block can be. Cost: O(N + M) for the grids plus, for clouds of
// bounded density, O(k log k)-ish per query. In feature spaces, where three binned coordinates may
// prune little, the dense search of knn_dense_cpu.cpp runs when dense::prefer_dense() expects it to
// be cheaper (GEOMDL_KNN_SEARCH forces either).
#include "common/parallel.h"
#include <torch/all.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "neighbors/knn_dense.h"
#include "neighbors/search.h"
#include "neighbors/shell.h"

namespace geomdl {
namespace {

using grid::Cand;
using grid::Grid;

constexpr double kInf = std::numeric_limits<double>::infinity();
// Bounds compared with squared distances are shrunk by this relative amount: far more than the
// rounding of a sum of D squares, so pruning stays conservative.
constexpr double kShrink = 1.0 - 1e-10;

// The k best candidates so far, ordered by (distance, index): a sorted array for small k, a
// max-heap for large k.
class Best {
 public:
  explicit Best(std::vector<Cand>& storage) : items_(storage) {}
  void reset(int64_t k) {
    k_ = k;
    items_.clear();
  }
  bool full() const { return static_cast<int64_t>(items_.size()) == k_; }
  // The worst kept candidate (only when full()).
  const Cand& worst() const { return heap_mode() ? items_.front() : items_.back(); }
  void offer(const Cand& c) {
    if (full() && !grid::cand_less(c, worst())) return;
    if (heap_mode()) {
      if (full()) {
        std::pop_heap(items_.begin(), items_.end(), grid::CandLess());
        items_.back() = c;
      } else {
        items_.push_back(c);
      }
      std::push_heap(items_.begin(), items_.end(), grid::CandLess());
      return;
    }
    if (!full()) items_.push_back(c);
    size_t pos = items_.size() - 1;
    while (pos > 0 && grid::cand_less(c, items_[pos - 1])) {
      items_[pos] = items_[pos - 1];
      --pos;
    }
    items_[pos] = c;
  }
  void emit(std::vector<int64_t>& out) {
    if (heap_mode()) std::sort_heap(items_.begin(), items_.end(), grid::CandLess());
    for (const Cand& c : items_) out.push_back(c.j);
  }

 private:
  bool heap_mode() const { return k_ > 32; }
  int64_t k_ = 0;
  std::vector<Cand>& items_;
};

template <int D>
void knn_query(const Grid& g, int64_t qi, const double* q, std::vector<int64_t>& out, grid::Scratch& scratch,
               int64_t k, bool ignore_same_index) {
  Best best(scratch.cand);
  const int64_t dim = g.dim;
  const int64_t* index = g.index.data();
  const int64_t* start = g.start.data();
  // k >= cloud size: every point is a neighbour; sort them all.
  if (k >= g.npts) {
    std::vector<Cand>& all = scratch.cand;
    all.clear();
    scratch.reserve(0, g.npts);
    double* dist = scratch.dist.data();
    grid::block_sqdist<D>(q, g.pts.data(), g.npts, dim, 0, g.npts, dist);
    for (int64_t p = 0; p < g.npts; ++p) {
      if (ignore_same_index && index[p] == qi) continue;
      all.push_back({dist[p], index[p]});
    }
    std::sort(all.begin(), all.end(), grid::CandLess());
    for (const Cand& c : all) out.push_back(c.j);
    return;
  }
  best.reset(k);
  double t[grid::kGridDims], slack[grid::kGridDims];
  int64_t c[grid::kGridDims];
  for (int d = 0; d < grid::kGridDims; ++d) {
    t[d] = g.active[d] ? g.coord(d, q[d]) : 0.0;
    c[d] = g.cell(d, t[d]);
    slack[d] = g.active[d] ? g.slack(d, t[d]) : 0.0;
  }
  const double h = g.h;
  // Squared distance from the query to the box of cell (a, b, e), shrunk for safety.
  auto box_dist2 = [&](const int64_t* cell) {
    double acc = 0.0;
    for (int d = 0; d < grid::kGridDims; ++d) {
      if (!g.active[d]) continue;
      double gap = std::max(double(cell[d]) - t[d], t[d] - double(cell[d] + 1)) - slack[d];
      if (gap > 0.0) {
        gap *= h;
        acc += gap * gap;
      }
    }
    return acc * kShrink;
  };
  auto visit = [&](int64_t a, int64_t b, int64_t e) {
    const int64_t cell = a * g.stride[0] + b * g.stride[1] + e;
    const int64_t k0 = start[cell], k1 = start[cell + 1];
    if (k0 == k1) return;
    if (best.full()) {
      const int64_t cc[grid::kGridDims] = {a, b, e};
      if (box_dist2(cc) > best.worst().d) return;
    }
    scratch.reserve(0, k1 - k0);
    double* dist = scratch.dist.data();
    grid::block_sqdist<D>(q, g.pts.data(), g.npts, dim, k0, k1 - k0, dist);
    for (int64_t p = k0; p < k1; ++p) {
      const double d2 = dist[p - k0];
      if (best.full() && d2 > best.worst().d) continue;
      const int64_t j = index[p];
      if (ignore_same_index && j == qi) continue;
      best.offer({d2, j});
    }
  };
  for (int64_t s = 0;; ++s) {
    const bool covers = shell::visit_shell(c, g.n, s, visit);
    if (covers) break;
    if (best.full()) {
      // Every unvisited point lies beyond one face of the visited block.
      double margin = kInf;
      for (int d = 0; d < grid::kGridDims; ++d) {
        if (!g.active[d]) continue;
        if (c[d] - s > 0) margin = std::min(margin, t[d] - double(c[d] - s) - slack[d]);
        if (c[d] + s < g.n[d] - 1) margin = std::min(margin, double(c[d] + s + 1) - t[d] - slack[d]);
      }
      if (margin > 0.0) {
        const double m = margin * h;
        if (best.worst().d < m * m * kShrink) break;
      }
    }
  }
  best.emit(out);
}

template <typename scalar_t, int D>
at::Tensor knn_dispatch(const at::Tensor& x, const at::Tensor& y, int64_t k, const at::Tensor& ptr_x,
                        const at::Tensor& ptr_y, bool ignore_same_index) {
  grid::GridParams params;
  params.h_min = 0.0;
  params.occupancy = 4.0;
  params.cells_per_point = 2.0;
  return grid::run_search<scalar_t>(x, y, ptr_x, ptr_y, params,
                                    [&](const Grid& g, int64_t qi, const double* q, std::vector<int64_t>& out,
                                        grid::Scratch& scratch) {
                                      knn_query<D>(g, qi, q, out, scratch, k, ignore_same_index);
                                    });
}

at::Tensor knn_cpu(const at::Tensor& x, const at::Tensor& y, int64_t k, const at::Tensor& ptr_x,
                   const at::Tensor& ptr_y, bool ignore_same_index) {
  grid::check_search_inputs(x, y, ptr_x, ptr_y);
  TORCH_CHECK(k >= 1, "k must be >= 1, got ", k);
  if (x.size(0) > 0 && y.size(0) > 0) {
    const dense::Search search = dense::search_from_env("GEOMDL_KNN_SEARCH");
    if (search == dense::Search::kDense ||
        (search == dense::Search::kAuto && dense::prefer_dense(x, y, k, ptr_x, ptr_y, ignore_same_index)))
      return dense::knn_dense_cpu(x, y, k, ptr_x, ptr_y, ignore_same_index);
  }
  at::Tensor out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "geomdl_knn_cpu", [&] {
    switch (x.size(1)) {
      case 1: out = knn_dispatch<scalar_t, 1>(x, y, k, ptr_x, ptr_y, ignore_same_index); break;
      case 2: out = knn_dispatch<scalar_t, 2>(x, y, k, ptr_x, ptr_y, ignore_same_index); break;
      case 3: out = knn_dispatch<scalar_t, 3>(x, y, k, ptr_x, ptr_y, ignore_same_index); break;
      default: out = knn_dispatch<scalar_t, 0>(x, y, k, ptr_x, ptr_y, ignore_same_index);
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(geomdl, CPU, m) { m.impl("knn", &knn_cpu); }

}  // namespace geomdl
