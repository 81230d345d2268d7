// Uniform cell grid over one cloud of points, shared by the radius and knn CPU kernels.
//
// The first min(D, 3) coordinates are binned into cells of side h; dimensions beyond the third (and
// dimensions in which the cloud is flat) are not binned, so the grid stays small for any D while
// the exact distance always uses every coordinate. Points are counting-sorted by cell (row-major,
// last grid dimension fastest), so the cells of one grid row are contiguous in memory.
//
// Exactness: the squared distance is accumulated in double, left to right over the coordinates,
// in the same order as the pure-PyTorch references (geomdl/ops/neighbors.py), so that ties and
// points exactly at distance r are decided identically. Cell coordinates t = (v - lo) / h carry a
// relative rounding error of a few ulp; every pruning bound below is widened by a slack far larger
// than that error, so rounding can only make the search visit more cells, never miss a point.
#pragma once

// The distance must be rounded like the reference: no fused multiply-add contraction.
#include "common/no_fma.h"
#include "common/parallel.h"

#include <torch/all.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace geomdl {
namespace grid {

constexpr int kGridDims = 3;
constexpr double kMaxCellsPerDim = double(int64_t(1) << 26);

// Squared Euclidean distances in double, summed left to right over the coordinates, from the
// query q to the points k0 .. k0+len-1 of a coordinate-major array cols ([dim][stride]):
//     out[i] = (((q_0 - p_0)^2 + (q_1 - p_1)^2) + ...)   (D > 0: compile-time dimension)
// The loops vectorise over the points.
template <int D>
inline void block_sqdist(const double* q, const double* cols, int64_t stride, int64_t dim, int64_t k0, int64_t len,
                         double* out) {
  const int64_t nd = D > 0 ? D : dim;
  {
    const double v = q[0];
    const double* c = cols + k0;
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) {
      const double t = v - c[i];
      out[i] = t * t;
    }
  }
  for (int64_t d = 1; d < nd; ++d) {
    const double v = q[d];
    const double* c = cols + d * stride + k0;
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) {
      const double t = v - c[i];
      out[i] += t * t;
    }
  }
}

// A neighbour candidate; ordered by (squared distance, index).
struct Cand {
  double d;
  int64_t j;
};
inline bool cand_less(const Cand& a, const Cand& b) { return a.d < b.d || (a.d == b.d && a.j < b.j); }
// Function object (inlined by std::sort, unlike a function pointer).
struct CandLess {
  bool operator()(const Cand& a, const Cand& b) const { return cand_less(a, b); }
};

struct Grid {
  int64_t npts = 0;
  int64_t dim = 0;
  double lo[kGridDims] = {0.0, 0.0, 0.0};
  double h = 1.0;
  int64_t reach = 1;  // radius search: cells of side >= r / reach; a query visits cells within `reach`
  bool active[kGridDims] = {false, false, false};  // binned dimensions (more than one cell)
  int64_t n[kGridDims] = {1, 1, 1};                 // cells per dimension
  int64_t stride[kGridDims] = {0, 0, 0};
  int64_t ncells = 1;
  std::vector<int64_t> start;  // [ncells + 1]: points of cell c are start[c] .. start[c+1]
  std::vector<double> pts;     // [dim][npts] coordinates of the points sorted by cell, as double
  std::vector<int64_t> index;  // [npts] global index of each sorted point

  // Unclamped continuous cell coordinate of value v in grid dimension d (NaN -> -inf).
  double coord(int d, double v) const {
    if (!active[d]) return 0.0;
    const double t = (v - lo[d]) / h;
    return std::isnan(t) ? -std::numeric_limits<double>::infinity() : t;
  }
  // Cell containing the continuous coordinate t, clamped to the grid.
  int64_t cell(int d, double t) const {
    if (!active[d]) return 0;
    if (!(t >= 0.0)) return 0;
    if (t >= double(n[d] - 1)) return n[d] - 1;
    return static_cast<int64_t>(t);
  }
  // floor(t) limited to [-pad, n + pad] (for ranges that may lie partly outside the grid).
  int64_t floor_padded(int d, double t, int64_t pad) const {
    if (!active[d]) return 0;
    const double lim_lo = -double(pad) - 1.0, lim_hi = double(n[d] + pad);
    if (!(t >= lim_lo)) return -pad - 1;
    if (t >= lim_hi) return n[d] + pad;
    return static_cast<int64_t>(std::floor(t));
  }
  // Slack (in cell units) that covers the rounding of cell coordinates near t.
  double slack(int d, double t) const { return 1e-9 * (double(n[d]) + std::fabs(t) + 2.0); }
};

// Cells per dimension for side h (as doubles, at least 1).
inline void cells_for(const double* ext, int G, double h, double* cells) {
  for (int d = 0; d < kGridDims; ++d) {
    double c = 1.0;
    if (d < G && ext[d] > 0.0 && std::isfinite(ext[d]) && std::isfinite(h) && h > 0.0) {
      c = std::floor(ext[d] / h) + 1.0;
      if (!(c <= kMaxCellsPerDim)) c = kMaxCellsPerDim;
    }
    cells[d] = c;
  }
}

// Build the grid over rows [begin, end) of x ([*, dim], row-major).
//   h_min > 0: cells of side at least h_min / reach (radius search), where reach in 1..4 is the
//     largest integer with about `split_occupancy` points or more per cell (0: reach 1); a query
//     then scans the cells within `reach` of its own (finer cells fit the ball more tightly);
//   h_min == 0: side chosen for about `occupancy` points per cell of the bounding box (knn).
// The number of cells never exceeds max(max_cells, 1): the side grows if needed.
template <typename scalar_t>
void build(Grid& g, const scalar_t* x, int64_t begin, int64_t end, int64_t dim, double h_min, double occupancy,
           double split_occupancy, double max_cells) {
  g.npts = end - begin;
  g.dim = dim;
  const int G = static_cast<int>(std::min<int64_t>(dim, kGridDims));
  double hi[kGridDims], ext[kGridDims] = {0.0, 0.0, 0.0};
  for (int d = 0; d < kGridDims; ++d) {
    g.lo[d] = std::numeric_limits<double>::infinity();
    hi[d] = -std::numeric_limits<double>::infinity();
  }
  for (int64_t i = begin; i < end; ++i)
    for (int d = 0; d < G; ++d) {
      const double v = static_cast<double>(x[i * dim + d]);
      g.lo[d] = std::min(g.lo[d], v);
      hi[d] = std::max(hi[d], v);
    }
  int active_dims = 0;
  double volume = 1.0, max_ext = 0.0;
  for (int d = 0; d < kGridDims; ++d) {
    if (d < G && g.npts > 0) ext[d] = hi[d] - g.lo[d];
    if (!(ext[d] > 0.0 && std::isfinite(ext[d]))) ext[d] = 0.0;
    if (ext[d] > 0.0) {
      ++active_dims;
      volume *= ext[d];
      max_ext = std::max(max_ext, ext[d]);
    }
    if (!std::isfinite(g.lo[d])) g.lo[d] = 0.0;
  }
  double h = h_min;
  double cells[kGridDims];
  g.reach = 1;
  if (h > 0.0 && split_occupancy > 0.0 && g.npts > 0) {
    // Cells of side h / reach keep about split_occupancy points or more.
    cells_for(ext, G, h, cells);
    const double occ = double(g.npts) / (cells[0] * cells[1] * cells[2]);
    const int64_t reach = static_cast<int64_t>(std::cbrt(occ / split_occupancy));
    g.reach = std::clamp<int64_t>(reach, 1, 4);
    h /= double(g.reach);
  }
  if (!(h > 0.0)) {
    h = 1.0;
    if (active_dims > 0) {
      const double target = std::max(1.0, double(g.npts) / std::max(occupancy, 1e-3));
      h = std::pow(volume / target, 1.0 / active_dims);
      if (!(h > 0.0) || !std::isfinite(h)) h = max_ext;
    }
  }
  max_cells = std::max(max_cells, 1.0);
  for (int iter = 0; iter < 200; ++iter) {
    cells_for(ext, G, h, cells);
    const double total = cells[0] * cells[1] * cells[2];
    if (total <= max_cells) break;
    const double grow = std::isfinite(total) ? std::pow(total / max_cells, 1.0 / std::max(active_dims, 1)) : 2.0;
    h *= std::max(grow, 1.0001);
    if (!std::isfinite(h)) {
      h = std::numeric_limits<double>::max();
      cells_for(ext, G, h, cells);
      break;
    }
  }
  g.h = h;
  for (int d = 0; d < kGridDims; ++d) {
    g.n[d] = static_cast<int64_t>(cells[d]);
    g.active[d] = g.n[d] > 1;
  }
  g.stride[2] = 1;
  g.stride[1] = g.n[2];
  g.stride[0] = g.n[1] * g.n[2];
  g.ncells = g.n[0] * g.n[1] * g.n[2];

  // Counting sort of the points by cell.
  std::vector<int64_t> cid(g.npts);
  g.start.assign(g.ncells + 1, 0);
  for (int64_t i = 0; i < g.npts; ++i) {
    const scalar_t* p = x + (begin + i) * dim;
    int64_t c = 0;
    for (int d = 0; d < G; ++d) c += g.cell(d, g.coord(d, static_cast<double>(p[d]))) * g.stride[d];
    cid[i] = c;
    g.start[c + 1]++;
  }
  for (int64_t c = 0; c < g.ncells; ++c) g.start[c + 1] += g.start[c];
  std::vector<int64_t> fill(g.start.begin(), g.start.end() - 1);
  g.pts.resize(g.npts * dim);
  g.index.resize(g.npts);
  for (int64_t i = 0; i < g.npts; ++i) {
    const int64_t k = fill[cid[i]]++;
    const scalar_t* p = x + (begin + i) * dim;
    for (int64_t d = 0; d < dim; ++d) g.pts[d * g.npts + k] = static_cast<double>(p[d]);
    g.index[k] = begin + i;
  }
}

// Linear cell of a query (clamped into the grid), used to process queries in cell order.
template <typename scalar_t>
inline int64_t query_cell(const Grid& g, const scalar_t* q) {
  const int G = static_cast<int>(std::min<int64_t>(g.dim, kGridDims));
  int64_t c = 0;
  for (int d = 0; d < G; ++d) c += g.cell(d, g.coord(d, static_cast<double>(q[d]))) * g.stride[d];
  return c;
}

// Validation of CSR batch pointers at the C++ boundary (the Python wrappers check user input).
inline void check_ptr(const at::Tensor& ptr, int64_t total, const char* name) {
  TORCH_CHECK(ptr.device().is_cpu() && ptr.scalar_type() == at::kLong && ptr.dim() == 1 && ptr.numel() >= 1,
              name, " must be a 1-D int64 CPU tensor with at least one entry");
  const at::Tensor p = ptr.contiguous();
  const int64_t* v = p.data_ptr<int64_t>();
  TORCH_CHECK(v[0] == 0, name, "[0] must be 0");
  for (int64_t b = 0; b + 1 < p.numel(); ++b) TORCH_CHECK(v[b + 1] >= v[b], name, " must be non-decreasing");
  TORCH_CHECK(v[p.numel() - 1] == total, name, "[-1] must equal the number of points (", total, ")");
}

}  // namespace grid
}  // namespace geomdl
