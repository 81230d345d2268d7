// Driver shared by the radius and knn CPU kernels: one grid per cloud, queries processed in cell
// order (neighbouring queries touch the same cells, which stay in cache) by all threads, and the
// per-thread results merged into one [2, E] edge list ordered by query index.
#pragma once
#include "common/parallel.h"
#include <torch/all.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "neighbors/grid.h"
#include "neighbors/search_checks.h"

namespace geomdl {
namespace grid {

struct GridParams {
  double h_min = 0.0;      // > 0: cell side at least h_min (radius)
  double occupancy = 4.0;  // h_min == 0: about this many points per cell (knn)
  double split_occupancy = 0.0;  // h_min > 0: halve the cells above this occupancy (0: never)
  double cells_per_point = 4.0;
};

// Common checks of the neighbour kernels' tensor arguments.
inline void check_search_inputs(const at::Tensor& x, const at::Tensor& y, const at::Tensor& ptr_x,
                                const at::Tensor& ptr_y) {
  TORCH_CHECK(x.device().is_cpu() && y.device().is_cpu(), "x and y must be CPU tensors");
  check_search_shapes(x, y, ptr_x, ptr_y);
  check_ptr(ptr_x, x.size(0), "ptr_x");
  check_ptr(ptr_y, y.size(0), "ptr_y");
}

// Per-thread scratch space of the per-query functions.
struct Scratch {
  std::vector<Cand> cand;
  std::vector<double> dist;
  // Make room for `n` candidates and `len` distances.
  void reserve(int64_t n, int64_t len) {
    if (static_cast<int64_t>(cand.size()) < n) cand.resize(std::max<int64_t>(2 * n, 64));
    if (static_cast<int64_t>(dist.size()) < len) dist.resize(std::max<int64_t>(2 * len, 64));
  }
};

// Runs `per_query(grid, query_index, query_coords_as_double, out_sources, scratch)` for every row of
// y against the grid of its cloud; per_query appends the sources of that query, in output order.
// Returns the [2, E] int64 edge list: row 0 the sources (rows of x), row 1 the queries (rows of y),
// grouped by query in increasing order.
template <typename scalar_t, typename Fn>
at::Tensor run_search(const at::Tensor& x, const at::Tensor& y, const at::Tensor& ptr_x, const at::Tensor& ptr_y,
                      const GridParams& params, Fn per_query) {
  const int64_t D = x.size(1), M = y.size(0);
  const int64_t nb = ptr_x.numel() - 1;
  const at::Tensor px = ptr_x.contiguous(), py = ptr_y.contiguous();
  const int64_t* bx = px.data_ptr<int64_t>();
  const int64_t* by = py.data_ptr<int64_t>();
  const scalar_t* xd = x.data_ptr<scalar_t>();
  const scalar_t* yd = y.data_ptr<scalar_t>();
  const auto options = x.options().dtype(at::kLong);
  if (M == 0 || x.size(0) == 0) return at::empty({2, 0}, options);

  const int max_threads = std::max(1, omp_get_max_threads());
  const int T = (M + x.size(0) < 4096) ? 1 : max_threads;

  // One grid per cloud that has both points and queries.
  std::vector<Grid> grids(nb);
  // (one cloud: no thread team for the O(N) set-up, which would only add a fork and a join)
#pragma omp parallel for schedule(dynamic, 1) num_threads(T) if (nb > 1)
  for (int64_t b = 0; b < nb; ++b) {
    if (bx[b + 1] == bx[b] || by[b + 1] == by[b]) continue;
    const double cap = params.cells_per_point * double(bx[b + 1] - bx[b]) + 64.0;
    build<scalar_t>(grids[b], xd, bx[b], bx[b + 1], D, params.h_min, params.occupancy, params.split_occupancy, cap);
  }

  // Queries in cell order, cloud by cloud (positions [by[b], by[b+1]) hold the queries of cloud b).
  std::vector<int64_t> order(M);
  std::vector<int64_t> cloud(M);
#pragma omp parallel for schedule(dynamic, 1) num_threads(T) if (nb > 1)
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t y0 = by[b], y1 = by[b + 1];
    if (y1 == y0) continue;
    std::fill(cloud.begin() + y0, cloud.begin() + y1, b);
    const Grid& g = grids[b];
    if (g.npts == 0) {
      for (int64_t i = y0; i < y1; ++i) order[i] = i;
      continue;
    }
    std::vector<int64_t> qc(y1 - y0), fill(g.ncells + 1, 0);
    for (int64_t i = y0; i < y1; ++i) {
      qc[i - y0] = query_cell(g, yd + i * D);
      fill[qc[i - y0] + 1]++;
    }
    for (int64_t c = 0; c < g.ncells; ++c) fill[c + 1] += fill[c];
    for (int64_t i = y0; i < y1; ++i) order[y0 + fill[qc[i - y0]]++] = i;
  }

  // Per-thread results: each query's sources stored contiguously in blocks that are never moved.
  struct Buffer {
    std::vector<std::unique_ptr<int64_t[]>> blocks;
    int64_t used = 0, capacity = 0;
    std::vector<int64_t> query;
    std::vector<const int64_t*> where;
    void store(int64_t qi, const int64_t* src, int64_t n) {
      if (capacity - used < n) {
        capacity = std::max<int64_t>(n, int64_t(1) << 16);
        blocks.emplace_back(new int64_t[capacity]);
        used = 0;
      }
      int64_t* dst = blocks.back().get() + used;
      std::memcpy(dst, src, sizeof(int64_t) * n);
      used += n;
      query.push_back(qi);
      where.push_back(dst);
    }
  };
  std::vector<Buffer> buffers(T);
  std::vector<int64_t> counts(M + 1, 0);
#pragma omp parallel num_threads(T)
  {
    Buffer& buf = buffers[omp_get_thread_num()];
    std::vector<double> q(D);
    std::vector<int64_t> found;
    Scratch scratch;
#pragma omp for schedule(dynamic, 64)
    for (int64_t pos = 0; pos < M; ++pos) {
      const int64_t qi = order[pos];
      const Grid& g = grids[cloud[pos]];
      if (g.npts == 0) continue;
      for (int64_t d = 0; d < D; ++d) q[d] = static_cast<double>(yd[qi * D + d]);
      found.clear();
      per_query(g, qi, q.data(), found, scratch);
      const int64_t n = static_cast<int64_t>(found.size());
      if (n > 0) {
        counts[qi + 1] = n;
        buf.store(qi, found.data(), n);
      }
    }
  }
  for (int64_t i = 0; i < M; ++i) counts[i + 1] += counts[i];
  const int64_t E = counts[M];
  at::Tensor out = at::empty({2, E}, options);
  int64_t* row0 = out.data_ptr<int64_t>();
  int64_t* row1 = row0 + E;
#pragma omp parallel num_threads(T)
  {
#pragma omp for schedule(static, 1) nowait
    for (int t = 0; t < T; ++t) {
      const Buffer& buf = buffers[t];
      for (size_t r = 0; r < buf.query.size(); ++r) {
        const int64_t qi = buf.query[r];
        std::memcpy(row0 + counts[qi], buf.where[r], sizeof(int64_t) * (counts[qi + 1] - counts[qi]));
      }
    }
#pragma omp for schedule(static)
    for (int64_t qi = 0; qi < M; ++qi)
      for (int64_t e = counts[qi]; e < counts[qi + 1]; ++e) row1[e] = qi;
  }
  return out;
}

}  // namespace grid
}  // namespace geomdl
