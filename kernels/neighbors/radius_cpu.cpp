// CPU radius search: for every query y[i], the rows x[j] of the same cloud with
//     |x_j - y_i|^2 <= r^2        (squared distance accumulated in double, left to right),
// sorted by (distance, j) and cut to the max_num_neighbors nearest; j == i is dropped when
// ignore_same_index. Identical to radius_reference (geomdl/ops/neighbors.py), edge for edge.
//
// Each cloud gets a cell grid of side h >= r / reach (reach = 1, or 2..4 when cells of side r would
// be crowded), so every neighbour of a query lies in the (2*reach+1)^G cells around the query's
// cell; the cells of one grid row are contiguous in memory, so a query scans at most
// (2*reach+1)^(G-1) contiguous ranges (for reach > 1 each trimmed to the part the ball reaches).
// Distances of a range are computed in a vectorised pass, hits compacted without branches, and
// sorted by (distance, j) per query (insertion sort: lists are short).
// Cost: O(N + M) for the grids and query ordering, plus per query O(candidates) distances
// (~27 x points per cell for reach 1) and the sort of its hits. In feature spaces, where the grid
// over three coordinates prunes little, the dense search of radius_dense_cpu.cpp runs when
// dense::prefer_dense_radius() expects it to be cheaper (GEOMDL_RADIUS_SEARCH=grid|dense forces one).
#include "common/parallel.h"
#include <torch/all.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "neighbors/radius_dense.h"
#include "neighbors/search.h"

namespace geomdl {
namespace {

using grid::Cand;
using grid::Grid;

// Bounds compared with squared distances are shrunk by this relative amount: far more than the
// rounding of a sum of D squares, so pruning stays conservative.
constexpr double kShrink = 1.0 - 1e-10;

// Sorts a short neighbour list by (distance, index). Up to 64 entries: an insertion sort of 64-bit
// keys (distance rounded to float32 -- a monotone rounding -- above the list position), then an
// insertion pass with the exact comparison, which only has to reorder runs of equal float32 keys.
// Longer lists: std::sort.
inline void sort_candidates(Cand* a, int64_t n, Cand* tmp) {
  if (n <= 1) return;  // sorted already (and a may be null when n == 0: no memcpy from or to it)
  if (n > 64) {
    std::sort(a, a + n, grid::CandLess());
    return;
  }
  uint64_t keys[64];
  for (int64_t i = 0; i < n; ++i) {
    const float f = static_cast<float>(a[i].d);
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof(bits));
    uint64_t key = (static_cast<uint64_t>(bits) << 32) | static_cast<uint64_t>(i);
    int64_t k = i;
    while (k > 0 && key < keys[k - 1]) {
      keys[k] = keys[k - 1];
      --k;
    }
    keys[k] = key;
  }
  for (int64_t i = 0; i < n; ++i) tmp[i] = a[keys[i] & 0xffffffffu];
  for (int64_t i = 0; i < n; ++i) {
    const Cand c = tmp[i];
    int64_t k = i;
    while (k > 0 && grid::cand_less(c, tmp[k - 1])) {
      tmp[k] = tmp[k - 1];
      --k;
    }
    tmp[k] = c;
  }
  std::memcpy(a, tmp, sizeof(Cand) * n);
}

// Gap (in cell units, >= 0, shrunk by the slack) between coordinate t and cell c.
inline double cell_gap(double t, int64_t c, double slack) {
  const double g = std::max(double(c) - t, t - double(c + 1)) - slack;
  return g > 0.0 ? g : 0.0;
}

template <int D>
void radius_query(const Grid& g, int64_t qi, const double* q, std::vector<int64_t>& out, grid::Scratch& scratch,
                  double r2, int64_t limit, bool ignore_same_index) {
  double t[grid::kGridDims], slack[grid::kGridDims];
  int64_t lo[grid::kGridDims], hi[grid::kGridDims];
  for (int d = 0; d < grid::kGridDims; ++d) {
    t[d] = slack[d] = 0.0;
    lo[d] = hi[d] = 0;
    if (!g.active[d]) continue;
    t[d] = g.coord(d, q[d]);
    slack[d] = g.slack(d, t[d]);
    const int64_t c = g.floor_padded(d, t[d], g.reach);
    lo[d] = std::max<int64_t>(c - g.reach, 0);
    hi[d] = std::min<int64_t>(c + g.reach, g.n[d] - 1);
    if (lo[d] > hi[d]) return;
  }
  // With reach > 1 every row of cells is trimmed to the part the ball can reach.
  const bool trim = g.reach > 1;
  const double h = g.h, h2 = h * h, inv_h = 1.0 / h;
  const int64_t* index = g.index.data();
  const int64_t* start = g.start.data();
  const int64_t no_self = ignore_same_index ? qi : -1;
  int64_t n = 0;
  for (int64_t a = lo[0]; a <= hi[0]; ++a) {
    const double ga = trim && g.active[0] ? cell_gap(t[0], a, slack[0]) : 0.0;
    for (int64_t b = lo[1]; b <= hi[1]; ++b) {
      int64_t c0 = lo[2], c1 = hi[2];
      if (trim) {
        const double gb = g.active[1] ? cell_gap(t[1], b, slack[1]) : 0.0;
        // Squared distance from the query to the row of cells (a, b, *), underestimated.
        const double row2 = (ga * ga + gb * gb) * h2 * kShrink;
        if (row2 > r2) continue;
        if (g.active[2]) {
          const double w = std::sqrt(r2 - row2) * inv_h * (1.0 + 1e-9) + slack[2];
          c0 = std::max(c0, g.floor_padded(2, t[2] - w, 0));
          c1 = std::min(c1, g.floor_padded(2, t[2] + w, 0));
          if (c0 > c1) continue;
        }
      }
      const int64_t row = a * g.stride[0] + b * g.stride[1];
      const int64_t k0 = start[row + c0], len = start[row + c1 + 1] - k0;
      if (len == 0) continue;
      scratch.reserve(n + len, len);
      double* dist = scratch.dist.data();
      grid::block_sqdist<D>(q, g.pts.data(), g.npts, g.dim, k0, len, dist);
      // Branch-free compaction of the hits.
      Cand* hits = scratch.cand.data();
      const int64_t* idx = index + k0;
      for (int64_t i = 0; i < len; ++i) {
        hits[n] = {dist[i], idx[i]};
        n += (dist[i] <= r2) & (idx[i] != no_self);
      }
    }
  }
  Cand* hits = scratch.cand.data();
  if (n > limit) {
    std::nth_element(hits, hits + limit, hits + n, grid::CandLess());
    n = limit;
  }
  Cand tmp[64];
  sort_candidates(hits, n, tmp);
  for (int64_t i = 0; i < n; ++i) out.push_back(hits[i].j);
}

template <typename scalar_t, int D>
at::Tensor radius_dispatch(const at::Tensor& x, const at::Tensor& y, double r, const at::Tensor& ptr_x,
                           const at::Tensor& ptr_y, int64_t limit, bool ignore_same_index) {
  grid::GridParams params;
  // Cells slightly wider than r: a neighbour's cell differs by at most `reach` per dimension even
  // after the rounding of cell coordinates (see grid.h).
  params.h_min = r * (1.0 + 1e-6);
  // Finer cells (reach 2+) only pay off for dense balls (~200 neighbours and more).
  params.split_occupancy = 6.0;
  params.cells_per_point = 4.0;
  const double r2 = r * r;
  return grid::run_search<scalar_t>(x, y, ptr_x, ptr_y, params,
                                    [&](const Grid& g, int64_t qi, const double* q, std::vector<int64_t>& out,
                                        grid::Scratch& scratch) {
                                      radius_query<D>(g, qi, q, out, scratch, r2, limit, ignore_same_index);
                                    });
}

at::Tensor radius_cpu(const at::Tensor& x, const at::Tensor& y, double r, const at::Tensor& ptr_x,
                      const at::Tensor& ptr_y, int64_t max_num_neighbors, bool ignore_same_index) {
  grid::check_search_inputs(x, y, ptr_x, ptr_y);
  TORCH_CHECK(r > 0.0 && std::isfinite(r), "r must be a positive finite number, got ", r);
  TORCH_CHECK(max_num_neighbors >= 1, "max_num_neighbors must be >= 1, got ", max_num_neighbors);
  if (x.size(0) > 0 && y.size(0) > 0) {
    const dense::Search search = dense::search_from_env("GEOMDL_RADIUS_SEARCH");
    if (search == dense::Search::kDense ||
        (search == dense::Search::kAuto && dense::prefer_dense_radius(x, y, r, ptr_x, ptr_y)))
      return dense::radius_dense_cpu(x, y, r, ptr_x, ptr_y, max_num_neighbors, ignore_same_index);
  }
  at::Tensor out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "geomdl_radius_cpu", [&] {
    switch (x.size(1)) {
      case 1: out = radius_dispatch<scalar_t, 1>(x, y, r, ptr_x, ptr_y, max_num_neighbors, ignore_same_index); break;
      case 2: out = radius_dispatch<scalar_t, 2>(x, y, r, ptr_x, ptr_y, max_num_neighbors, ignore_same_index); break;
      case 3: out = radius_dispatch<scalar_t, 3>(x, y, r, ptr_x, ptr_y, max_num_neighbors, ignore_same_index); break;
      default: out = radius_dispatch<scalar_t, 0>(x, y, r, ptr_x, ptr_y, max_num_neighbors, ignore_same_index);
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(geomdl, CPU, m) { m.impl("radius", &radius_cpu); }

}  // namespace geomdl
