// CUDA radius and k-nearest-neighbour search (geomdl::radius, geomdl::knn), edge for edge identical
// to the CPU kernels (radius_cpu.cpp, knn_cpu.cpp) and to the references (geomdl/ops/neighbors.py):
//   * squared distances in double, (((q_0 - p_0)^2 + (q_1 - p_1)^2) + ...) summed left to right with
//     every operation rounded on its own (__dsub_rn / __dmul_rn / __dadd_rn: nvcc never contracts
//     them into FMAs), so ties and points exactly at distance r are decided like the references;
//   * radius: the points x[j] of the query's cloud with d2 <= r * r, sorted by (d2, j) and cut to the
//     max_num_neighbors first; knn: the k smallest (d2, j), sorted (fewer when the cloud is smaller);
//     j == i dropped when ignore_same_index; edges grouped by query in increasing order.
//
// Pipeline (both ops):
//   1. bounding box of the first min(D, 3) coordinates of every cloud's points x (one block per tile
//      of a cloud, order-preserving integer atomics); only clouds that have points and queries;
//   2. one uniform grid per cloud, planned on the device like grid.h (radius: cells of side
//      >= r * (1 + 1e-6), so every neighbour lies in the 3^G cells around the query's cell; knn: about
//      4 points per cell), the number of cells capped (cells grow) at a few per point;
//   3. x counting-sorted by (cloud, cell) into a compact copy (atomics give each point its rank in its
//      cell; the order inside a cell is irrelevant: every result is sorted by (d2, j));
//   4. queries processed in the cell order of their position (neighbouring threads scan the same
//      cells); for radius_graph-like calls (x is y, same batches) the order of step 3 is reused;
//   5. one thread per query: radius counts its hits (pass 1), an exclusive scan gives exact-size
//      output offsets, and pass 2 keeps the min(hits, max_num_neighbors) best; knn counts are known
//      up front (min(k, cloud size - self)) and one pass searches growing shells of cells with the
//      pruning of knn_cpu.cpp. The best candidates of a query are kept sorted in local memory
//      (<= kLocalCap entries) or, for longer lists, in a max-heap in global scratch space (output
//      slots + a double array), heap-sorted at the end.
//
// Files: search_common.cuh (constants, device helpers, host input checks), grid_build.cuh (steps 1-4),
// radius_cuda.cu and knn_cuda.cu (step 5 and the ops). The headers are header-only code in an unnamed
// namespace: every .cu that includes them gets its own copy (no relocatable device code).
#pragma once

#include <math_constants.h>
#include <torch/library.h>

#include <climits>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "common/cuda_utils.cuh"
#include "neighbors/search_checks.h"

namespace geomdl {
namespace {

using cuda::kThreads;

constexpr int kGridDims = 3;
// Longest neighbour list kept in local memory (sorted array); longer lists use a heap in global memory.
constexpr int kLocalCap = 64;
// Points per block of the bounding-box kernel.
constexpr int64_t kTile = 8192;
// Bounds compared with squared distances are shrunk by this relative amount (as in knn_cpu.cpp).
constexpr double kShrink = 1.0 - 1e-10;
// At most this many cells along one dimension: cell coordinates stay below 2^24, where their
// rounding error (~2^-28 cells) is far below the 1e-6 margin of the radius cells.
constexpr double kMaxCellsPerDim = 16777216.0;

// ------------------------------------------------------------------------------------------------
// Device helpers
// ------------------------------------------------------------------------------------------------

struct CloudGrid {
  double lo[kGridDims];        // origin of the grid
  double h;                    // cell side
  int64_t n[kGridDims];        // cells per dimension (1: not binned)
  int64_t stride[kGridDims];   // row-major, last dimension fastest
  int64_t ncells;              // 0: no grid (the cloud has no points or no queries)
};

__device__ __forceinline__ bool finite_d(double v) { return fabs(v) <= 1.7976931348623157e308; }

// Order-preserving map of doubles (not NaN) to unsigned integers, for atomicMin / atomicMax.
__device__ __forceinline__ unsigned long long encode_ordered(double v) {
  const unsigned long long u = static_cast<unsigned long long>(__double_as_longlong(v));
  return (u >> 63) ? ~u : (u | 0x8000000000000000ULL);
}
__device__ __forceinline__ double decode_ordered(unsigned long long u) {
  return __longlong_as_double(static_cast<long long>((u >> 63) ? (u & 0x7FFFFFFFFFFFFFFFULL) : ~u));
}

// Cloud of row i given CSR pointers ptr[0..nb] (ptr[0] = 0 <= i < ptr[nb]): ptr[b] <= i < ptr[b+1].
__device__ __forceinline__ int64_t find_cloud(const int64_t* __restrict__ ptr, int64_t nb, int64_t i) {
  int64_t lo = 0, hi = nb;
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (ptr[mid] <= i) lo = mid;
    else hi = mid;
  }
  return lo;
}

// The methods of grid::Grid (grid.h) on a CloudGrid.
__device__ __forceinline__ double grid_coord(const CloudGrid& g, int d, double v) {
  if (g.n[d] <= 1) return 0.0;
  const double t = (v - g.lo[d]) / g.h;
  return t != t ? -CUDART_INF : t;
}
__device__ __forceinline__ int64_t grid_cell(const CloudGrid& g, int d, double t) {
  if (g.n[d] <= 1) return 0;
  if (!(t >= 0.0)) return 0;
  if (t >= double(g.n[d] - 1)) return g.n[d] - 1;
  return static_cast<int64_t>(t);
}
__device__ __forceinline__ int64_t grid_floor_padded(const CloudGrid& g, int d, double t, int64_t pad) {
  if (g.n[d] <= 1) return 0;
  const double lim_lo = -double(pad) - 1.0, lim_hi = double(g.n[d] + pad);
  if (!(t >= lim_lo)) return -pad - 1;
  if (t >= lim_hi) return g.n[d] + pad;
  return static_cast<int64_t>(floor(t));
}
__device__ __forceinline__ double grid_slack(const CloudGrid& g, int d, double t) {
  return 1e-9 * (double(g.n[d]) + fabs(t) + 2.0);
}

// Cells per dimension for side h (at least 1) and their product.
__device__ __forceinline__ double cells_for(const double* ext, double h, double* cells) {
  double total = 1.0;
#pragma unroll
  for (int d = 0; d < kGridDims; ++d) {
    double c = 1.0;
    if (ext[d] > 0.0) c = floor(ext[d] / h) + 1.0;
    cells[d] = c;
    total *= c;
  }
  return total;
}

// A query point: its coordinates as double (in registers for D = 1, 2, 3) and the exact squared
// distance to a point, summed left to right without FMA contraction.
template <typename scalar_t, int D>
struct Query {
  static constexpr int kD = D > 0 ? D : 1;
  double c[kD];
  const scalar_t* p;
  int64_t dim;

  __device__ __forceinline__ void load(const scalar_t* __restrict__ y, int64_t qi, int64_t dim_) {
    dim = D > 0 ? D : dim_;
    p = y + qi * dim;
#pragma unroll
    for (int d = 0; d < kD; ++d) c[d] = D > 0 ? static_cast<double>(p[d]) : 0.0;
  }
  // Coordinate d (d < min(dim, 3)).
  __device__ __forceinline__ double coord(int d) const {
    if (D > 0) {
      double v = 0.0;
#pragma unroll
      for (int e = 0; e < kD; ++e)
        if (e == d) v = c[e];
      return v;
    }
    return static_cast<double>(p[d]);
  }
  __device__ __forceinline__ double sqdist(const scalar_t* __restrict__ x) const {
    double acc = 0.0;
    if (D > 0) {
#pragma unroll
      for (int d = 0; d < kD; ++d) {
        const double t = __dsub_rn(c[d], static_cast<double>(x[d]));
        acc = __dadd_rn(acc, __dmul_rn(t, t));
      }
    } else {
      for (int64_t d = 0; d < dim; ++d) {
        const double t = __dsub_rn(static_cast<double>(p[d]), static_cast<double>(x[d]));
        acc = __dadd_rn(acc, __dmul_rn(t, t));
      }
    }
    return acc;
  }
};

// (d, j) order of candidates: distance, then index.
__device__ __forceinline__ bool cand_less(double da, int64_t ja, double db, int64_t jb) {
  return da < db || (da == db && ja < jb);
}

// The `cap` best candidates so far, as a sorted array in local memory (cap <= kLocalCap).
struct LocalBest {
  double d[kLocalCap];
  int j[kLocalCap];
  int size;
  int cap;
  __device__ __forceinline__ void reset(int capacity) {
    size = 0;
    cap = capacity;
  }
  __device__ __forceinline__ bool full() const { return size == cap; }
  __device__ __forceinline__ double worst() const { return d[size - 1]; }  // only when full()
  __device__ __forceinline__ void offer(double dd, int jj) {
    int pos;
    if (size == cap) {
      if (!cand_less(dd, jj, d[cap - 1], j[cap - 1])) return;
      pos = cap - 1;  // the worst one is dropped
    } else {
      pos = size++;
    }
    while (pos > 0 && cand_less(dd, jj, d[pos - 1], j[pos - 1])) {
      d[pos] = d[pos - 1];
      j[pos] = j[pos - 1];
      --pos;
    }
    d[pos] = dd;
    j[pos] = jj;
  }
};

// The `cap` best candidates so far, as a max-heap in global memory (distances hd[0..cap), indices
// hj[0..cap): the query's output slots); finish() sorts them in increasing order.
struct HeapBest {
  double* hd;
  int64_t* hj;
  int64_t size;
  int64_t cap;
  __device__ __forceinline__ void reset(double* d, int64_t* j, int64_t capacity) {
    hd = d;
    hj = j;
    size = 0;
    cap = capacity;
  }
  __device__ __forceinline__ bool full() const { return size == cap; }
  __device__ __forceinline__ double worst() const { return hd[0]; }  // only when full()
  // Moves (dd, jj) down from the root position i of the heap of n entries.
  __device__ __forceinline__ void sift_down(int64_t i, double dd, int64_t jj, int64_t n) {
    while (true) {
      const int64_t l = 2 * i + 1;
      if (l >= n) break;
      int64_t m = l;
      if (l + 1 < n && cand_less(hd[l], hj[l], hd[l + 1], hj[l + 1])) m = l + 1;
      if (!cand_less(dd, jj, hd[m], hj[m])) break;
      hd[i] = hd[m];
      hj[i] = hj[m];
      i = m;
    }
    hd[i] = dd;
    hj[i] = jj;
  }
  __device__ __forceinline__ void offer(double dd, int jj) {
    if (size < cap) {
      int64_t i = size++;
      while (i > 0) {
        const int64_t parent = (i - 1) / 2;
        if (!cand_less(hd[parent], hj[parent], dd, jj)) break;
        hd[i] = hd[parent];
        hj[i] = hj[parent];
        i = parent;
      }
      hd[i] = dd;
      hj[i] = jj;
      return;
    }
    if (!cand_less(dd, jj, hd[0], hj[0])) return;
    sift_down(0, dd, jj, size);
  }
  __device__ __forceinline__ void finish() {
    for (int64_t end = size - 1; end > 0; --end) {
      const double ld = hd[end];
      const int64_t lj = hj[end];
      hd[end] = hd[0];
      hj[end] = hj[0];
      sift_down(0, ld, lj, end);
    }
  }
};

// Everything a per-query kernel needs (passed by value).
template <typename scalar_t>
struct Search {
  const scalar_t* y;        // [M, dim] queries
  int64_t dim;
  int64_t M;
  const int* qorder;        // [M] queries in processing order
  const int64_t* ptr_x;     // [nb + 1]
  const int64_t* ptr_y;     // [nb + 1]
  int64_t nb;
  const CloudGrid* grids;   // [nb]
  const int64_t* base;      // [nb] first global cell of each cloud
  const int* start;         // [C + 1] sorted points of global cell c: start[c] .. start[c+1]
  const int* sidx;          // [*] row of x of each sorted point
  const scalar_t* xs;       // [*, dim] coordinates of the sorted points
};

// Pass 2 of both ops for one query qi (one thread): its cnt[qi] best neighbours, sorted by (d2, j), at
// out[0, offsets[qi] ...] (and qi at out[1, ...]). search(g, base, q, no_self, best) offers the
// candidates of the query's cloud to `best`: a sorted array in local memory for up to kLocalCap of them,
// else a heap over the query's output slots and scratch[offsets[qi] ...] ([E] doubles).
template <typename scalar_t, int D, typename SearchFn>
__device__ __forceinline__ void fill_query(const Search<scalar_t>& s, int64_t qi, bool ignore_same_index,
                                           const int64_t* __restrict__ cnt, const int64_t* __restrict__ offsets,
                                           int64_t E, int64_t* __restrict__ out, double* __restrict__ scratch,
                                           SearchFn&& search) {
  const int64_t c = cnt[qi];
  if (c == 0) return;
  const int64_t off = offsets[qi];
  int64_t* row0 = out + off;
  int64_t* row1 = out + E + off;
  for (int64_t e = 0; e < c; ++e) row1[e] = qi;
  const int64_t b = find_cloud(s.ptr_y, s.nb, qi);
  const CloudGrid g = s.grids[b];
  Query<scalar_t, D> q;
  q.load(s.y, qi, s.dim);
  const int64_t no_self = ignore_same_index ? qi : -1;
  if (c <= kLocalCap) {
    LocalBest best;
    best.reset(static_cast<int>(c));
    search(g, s.base[b], q, no_self, best);
    for (int e = 0; e < best.size; ++e) row0[e] = best.j[e];
  } else {
    HeapBest best;
    best.reset(scratch + off, row0, c);
    search(g, s.base[b], q, no_self, best);
    best.finish();
  }
}


// ------------------------------------------------------------------------------------------------
// Host side: input checks and helpers shared by radius and knn
// ------------------------------------------------------------------------------------------------

// Host copy of a CSR batch pointer (CPU or on the device of x), validated like grid::check_ptr.
at::Tensor host_ptr(const at::Tensor& ptr, int64_t total, const char* name, const at::Device& device) {
  TORCH_CHECK(ptr.scalar_type() == at::kLong && ptr.dim() == 1 && ptr.numel() >= 1, name,
              " must be a 1-D int64 tensor with at least one entry");
  TORCH_CHECK(ptr.device().is_cpu() || ptr.device() == device, name, " must be a CPU tensor or on the device of x");
  at::Tensor h = ptr.to(at::kCPU).contiguous();
  const int64_t* v = h.data_ptr<int64_t>();
  TORCH_CHECK(v[0] == 0, name, "[0] must be 0");
  for (int64_t b = 0; b + 1 < h.numel(); ++b) TORCH_CHECK(v[b + 1] >= v[b], name, " must be non-decreasing");
  TORCH_CHECK(v[h.numel() - 1] == total, name, "[-1] must equal the number of points (", total, ")");
  return h;
}

// Device copy of a validated pointer.
at::Tensor device_ptr(const at::Tensor& ptr, const at::Tensor& host, const at::Device& device) {
  if (ptr.device() == device) return ptr.contiguous();
  return host.to(device);
}

void check_search_inputs(const at::Tensor& x, const at::Tensor& y, const at::Tensor& ptr_x, const at::Tensor& ptr_y) {
  GEOMDL_CHECK_CUDA(x);
  GEOMDL_CHECK_CUDA(y);
  GEOMDL_CHECK_SAME_DEVICE(x, y);
  grid::check_search_shapes(x, y, ptr_x, ptr_y);
  TORCH_CHECK(x.size(0) < INT_MAX && y.size(0) < INT_MAX, "the CUDA neighbour search supports fewer than 2^31 points");
}

// [M] int64 counts -> ([M] int64 exclusive offsets, total).
std::pair<at::Tensor, int64_t> offsets_of(const at::Tensor& cnt) {
  const at::Tensor incl = at::cumsum(cnt, 0);
  const int64_t total = incl[cnt.numel() - 1].item<int64_t>();
  return {incl - cnt, total};
}

template <typename Fn>
void dispatch_dim(int64_t dim, Fn&& fn) {
  switch (dim) {
    case 1: fn(std::integral_constant<int, 1>()); break;
    case 2: fn(std::integral_constant<int, 2>()); break;
    case 3: fn(std::integral_constant<int, 3>()); break;
    default: fn(std::integral_constant<int, 0>());
  }
}

}  // namespace
}  // namespace geomdl
