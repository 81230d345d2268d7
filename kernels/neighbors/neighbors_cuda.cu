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
#include "common/cuda_utils.cuh"

#include <math_constants.h>
#include <torch/library.h>

#include <climits>
#include <cmath>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

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

// ------------------------------------------------------------------------------------------------
// Grid construction kernels
// ------------------------------------------------------------------------------------------------

// Bounding box of the first G coordinates of the rows of one tile (begin, end, cloud) of x, merged
// into the cloud's encoded box with atomics. NaN coordinates are ignored (like std::min/max in grid.h).
template <typename scalar_t>
__global__ void __launch_bounds__(kThreads) bbox_kernel(const scalar_t* __restrict__ x, int64_t dim, int G,
                                                         const int64_t* __restrict__ tiles,
                                                         unsigned long long* __restrict__ enc_lo,
                                                         unsigned long long* __restrict__ enc_hi) {
  __shared__ double s_lo[kThreads / 32][kGridDims];
  __shared__ double s_hi[kThreads / 32][kGridDims];
  const int64_t begin = tiles[3 * int64_t(blockIdx.x)], end = tiles[3 * int64_t(blockIdx.x) + 1];
  const int64_t b = tiles[3 * int64_t(blockIdx.x) + 2];
  double lo[kGridDims], hi[kGridDims];
#pragma unroll
  for (int d = 0; d < kGridDims; ++d) {
    lo[d] = CUDART_INF;
    hi[d] = -CUDART_INF;
  }
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
#pragma unroll
    for (int d = 0; d < kGridDims; ++d) {
      if (d < G) {
        const double v = static_cast<double>(x[i * dim + d]);
        if (v < lo[d]) lo[d] = v;
        if (v > hi[d]) hi[d] = v;
      }
    }
  }
#pragma unroll
  for (int d = 0; d < kGridDims; ++d) {
    for (int off = 16; off > 0; off >>= 1) {
      const double a = __shfl_down_sync(0xffffffffu, lo[d], off);
      const double z = __shfl_down_sync(0xffffffffu, hi[d], off);
      if (a < lo[d]) lo[d] = a;
      if (z > hi[d]) hi[d] = z;
    }
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
#pragma unroll
    for (int d = 0; d < kGridDims; ++d) {
      s_lo[warp][d] = lo[d];
      s_hi[warp][d] = hi[d];
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    const int warps = blockDim.x / 32;
    for (int w = 1; w < warps; ++w) {
#pragma unroll
      for (int d = 0; d < kGridDims; ++d) {
        if (s_lo[w][d] < lo[d]) lo[d] = s_lo[w][d];
        if (s_hi[w][d] > hi[d]) hi[d] = s_hi[w][d];
      }
    }
#pragma unroll
    for (int d = 0; d < kGridDims; ++d) {
      if (d < G && lo[d] <= hi[d]) {
        atomicMin(enc_lo + 3 * b + d, encode_ordered(lo[d]));
        atomicMax(enc_hi + 3 * b + d, encode_ordered(hi[d]));
      }
    }
  }
}

// Grid of every cloud (one thread per cloud), as grid::build (grid.h) with reach 1:
//   h_min > 0: cells of side >= h_min (radius); h_min == 0: about `occupancy` points per cell (knn);
// at most cells_per_point * points + 64 cells (the side grows if needed) and kMaxCellsPerDim cells
// along one dimension. Clouds without points or without queries get no grid (ncells = 0).
__global__ void plan_kernel(const int64_t* __restrict__ ptr_x, const int64_t* __restrict__ ptr_y, int64_t nb, int G,
                            const unsigned long long* __restrict__ enc_lo, const unsigned long long* __restrict__ enc_hi,
                            double h_min, double occupancy, double cells_per_point, CloudGrid* __restrict__ grids,
                            int64_t* __restrict__ ncells) {
  for (int64_t b = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; b < nb; b += int64_t(gridDim.x) * blockDim.x) {
    CloudGrid g;
#pragma unroll
    for (int d = 0; d < kGridDims; ++d) {
      g.lo[d] = 0.0;
      g.n[d] = 1;
      g.stride[d] = 0;
    }
    g.h = 1.0;
    g.ncells = 0;
    const int64_t npts = ptr_x[b + 1] - ptr_x[b], nq = ptr_y[b + 1] - ptr_y[b];
    if (npts > 0 && nq > 0) {
      double ext[kGridDims] = {0.0, 0.0, 0.0};
      int active = 0;
      double volume = 1.0, max_ext = 0.0;
#pragma unroll
      for (int d = 0; d < kGridDims; ++d) {
        if (d < G) {
          const double l = decode_ordered(enc_lo[3 * b + d]), u = decode_ordered(enc_hi[3 * b + d]);
          const double e = u - l;
          if (e > 0.0 && finite_d(e)) ext[d] = e;
          if (finite_d(l)) g.lo[d] = l;
        }
        if (ext[d] > 0.0) {
          ++active;
          volume *= ext[d];
          if (ext[d] > max_ext) max_ext = ext[d];
        }
      }
      double h = h_min;
      if (!(h > 0.0)) {
        h = 1.0;
        if (active > 0) {
          const double target = fmax(1.0, double(npts) / fmax(occupancy, 1e-3));
          h = pow(volume / target, 1.0 / double(active));
          if (!(h > 0.0) || !finite_d(h)) h = max_ext;
        }
      }
      if (max_ext > 0.0 && h < max_ext / kMaxCellsPerDim) h = max_ext / kMaxCellsPerDim;
      const double max_cells = fmax(cells_per_point * double(npts) + 64.0, 1.0);
      double cells[kGridDims];
      for (int iter = 0; iter < 200; ++iter) {
        const double total = cells_for(ext, h, cells);
        if (total <= max_cells) break;
        const double grow = pow(total / max_cells, 1.0 / double(active > 0 ? active : 1));
        h *= grow > 1.0001 ? grow : 1.0001;
      }
      if (!(cells_for(ext, h, cells) <= max_cells)) {
        // Not converged (never expected): one cell per dimension.
        h = fmax(h, 2.0 * max_ext);
        cells_for(ext, h, cells);
      }
      g.h = h;
#pragma unroll
      for (int d = 0; d < kGridDims; ++d) g.n[d] = static_cast<int64_t>(cells[d]);
      g.stride[2] = 1;
      g.stride[1] = g.n[2];
      g.stride[0] = g.n[1] * g.n[2];
      g.ncells = g.n[0] * g.n[1] * g.n[2];
    }
    grids[b] = g;
    ncells[b] = g.ncells;
  }
}

// Global cell of every row of `pts` (clamped into its cloud's grid, like query_cell in grid.h) and its
// rank among the rows of that cell. Rows of clouds without a grid get key `fallback`, or -1 (skipped)
// when fallback < 0.
template <typename scalar_t>
__global__ void __launch_bounds__(kThreads) bin_kernel(const scalar_t* __restrict__ pts, int64_t n, int64_t dim, int G,
                                                        const int64_t* __restrict__ ptr, int64_t nb,
                                                        const CloudGrid* __restrict__ grids,
                                                        const int64_t* __restrict__ base, int64_t fallback,
                                                        int64_t* __restrict__ key, int* __restrict__ rank,
                                                        int* __restrict__ count) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = find_cloud(ptr, nb, i);
    const CloudGrid& g = grids[b];
    int64_t k;
    if (g.ncells == 0) {
      if (fallback < 0) {
        key[i] = -1;
        continue;
      }
      k = fallback;
    } else {
      int64_t c = 0;
#pragma unroll
      for (int d = 0; d < kGridDims; ++d)
        if (d < G) c += grid_cell(g, d, grid_coord(g, d, static_cast<double>(pts[i * dim + d]))) * g.stride[d];
      k = base[b] + c;
    }
    key[i] = k;
    rank[i] = atomicAdd(count + k, 1);
  }
}

// Counting-sort scatter: row i goes to position start[key[i]] + rank[i] (rows with key < 0 are
// skipped); records the row index and, when xs is given, a copy of its coordinates.
template <typename scalar_t>
__global__ void __launch_bounds__(kThreads) scatter_kernel(const scalar_t* __restrict__ pts, int64_t n, int64_t dim,
                                                            const int64_t* __restrict__ key,
                                                            const int* __restrict__ rank,
                                                            const int* __restrict__ start, int* __restrict__ sidx,
                                                            scalar_t* __restrict__ xs) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t k = key[i];
    if (k < 0) continue;
    const int64_t pos = int64_t(start[k]) + rank[i];
    sidx[pos] = static_cast<int>(i);
    if (xs != nullptr)
      for (int64_t d = 0; d < dim; ++d) xs[pos * dim + d] = pts[i * dim + d];
  }
}

// ------------------------------------------------------------------------------------------------
// Radius
// ------------------------------------------------------------------------------------------------

// Calls f(d2, j) for every point j of the grid within r of the query (d2 <= r2), j != no_self.
template <typename scalar_t, int D, typename F>
__device__ __forceinline__ void radius_scan(const CloudGrid& g, int64_t base, const int* __restrict__ start,
                                            const int* __restrict__ sidx, const scalar_t* __restrict__ xs,
                                            const Query<scalar_t, D>& q, double r2, int64_t no_self, F&& f) {
  constexpr int G = D == 0 ? kGridDims : D;
  int64_t lo[kGridDims] = {0, 0, 0}, hi[kGridDims] = {0, 0, 0};
#pragma unroll
  for (int d = 0; d < G; ++d) {
    if (g.n[d] <= 1) continue;
    const int64_t c = grid_floor_padded(g, d, grid_coord(g, d, q.coord(d)), 1);
    lo[d] = c - 1 > 0 ? c - 1 : 0;
    hi[d] = c + 1 < g.n[d] - 1 ? c + 1 : g.n[d] - 1;
    if (lo[d] > hi[d]) return;
  }
  const int64_t dim = q.dim;
  for (int64_t a = lo[0]; a <= hi[0]; ++a) {
    for (int64_t b = lo[1]; b <= hi[1]; ++b) {
      // The cells lo[2] .. hi[2] of row (a, b) are contiguous in the sorted points.
      const int64_t row = base + a * g.stride[0] + b * g.stride[1];
      const int k0 = start[row + lo[2]], k1 = start[row + hi[2] + 1];
      for (int k = k0; k < k1; ++k) {
        const double d2 = q.sqdist(xs + int64_t(k) * dim);
        const int j = sidx[k];
        if (d2 <= r2 && j != no_self) f(d2, j);
      }
    }
  }
}

// Pass 1: cnt[i] = min(number of neighbours of query i, limit).
template <typename scalar_t, int D>
__global__ void __launch_bounds__(kThreads) radius_count_kernel(Search<scalar_t> s, double r2, int64_t limit,
                                                                 bool ignore_same_index, int64_t* __restrict__ cnt) {
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < s.M; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t qi = s.qorder[t];
    const int64_t b = find_cloud(s.ptr_y, s.nb, qi);
    const CloudGrid g = s.grids[b];
    int64_t hits = 0;
    if (g.ncells > 0) {
      Query<scalar_t, D> q;
      q.load(s.y, qi, s.dim);
      radius_scan<scalar_t, D>(g, s.base[b], s.start, s.sidx, s.xs, q, r2, ignore_same_index ? qi : -1,
                               [&](double, int) { ++hits; });
    }
    cnt[qi] = hits < limit ? hits : limit;
  }
}

// Pass 2: the cnt[i] nearest neighbours of query i, sorted by (d2, j), at out[:, offsets[i] ...].
// scratch: [E] doubles (heap distances), needed only when some cnt[i] > kLocalCap.
template <typename scalar_t, int D>
__global__ void __launch_bounds__(kThreads) radius_fill_kernel(Search<scalar_t> s, double r2, bool ignore_same_index,
                                                                const int64_t* __restrict__ cnt,
                                                                const int64_t* __restrict__ offsets, int64_t E,
                                                                int64_t* __restrict__ out, double* __restrict__ scratch) {
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < s.M; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t qi = s.qorder[t];
    const int64_t c = cnt[qi];
    if (c == 0) continue;
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
      radius_scan<scalar_t, D>(g, s.base[b], s.start, s.sidx, s.xs, q, r2, no_self,
                               [&](double d2, int j) { best.offer(d2, j); });
      for (int e = 0; e < best.size; ++e) row0[e] = best.j[e];
    } else {
      HeapBest best;
      best.reset(scratch + off, row0, c);
      radius_scan<scalar_t, D>(g, s.base[b], s.start, s.sidx, s.xs, q, r2, no_self,
                               [&](double d2, int j) { best.offer(d2, j); });
      best.finish();
    }
  }
}

// ------------------------------------------------------------------------------------------------
// knn
// ------------------------------------------------------------------------------------------------

// cnt[i] = min(k, points of the cloud of query i, less itself when ignore_same_index).
__global__ void knn_count_kernel(int64_t M, const int64_t* __restrict__ ptr_x, const int64_t* __restrict__ ptr_y,
                                 int64_t nb, int64_t k, bool ignore_same_index, int64_t* __restrict__ cnt) {
  for (int64_t qi = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; qi < M; qi += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = find_cloud(ptr_y, nb, qi);
    const int64_t x0 = ptr_x[b], x1 = ptr_x[b + 1];
    const int64_t avail = (x1 - x0) - ((ignore_same_index && qi >= x0 && qi < x1) ? 1 : 0);
    cnt[qi] = avail < k ? avail : k;
  }
}

// The best.cap nearest points of the query (knn_query in knn_cpu.cpp): shells of cells at Chebyshev
// cell distance s = 0, 1, ... around the query's (clamped) cell, cells farther than the current worst
// candidate skipped, stopping once the worst candidate is strictly closer than any unvisited point.
template <typename scalar_t, int D, typename Best>
__device__ __forceinline__ void knn_search(const CloudGrid& g, int64_t base, const int* __restrict__ start,
                                           const int* __restrict__ sidx, const scalar_t* __restrict__ xs,
                                           const Query<scalar_t, D>& q, int64_t no_self, Best& best) {
  constexpr int G = D == 0 ? kGridDims : D;
  double t[kGridDims], slack[kGridDims];
  int64_t c[kGridDims], n[kGridDims];
#pragma unroll
  for (int d = 0; d < kGridDims; ++d) {
    n[d] = g.n[d];
    t[d] = 0.0;
    slack[d] = 0.0;
    c[d] = 0;
    if (d < G && n[d] > 1) {
      t[d] = grid_coord(g, d, q.coord(d));
      c[d] = grid_cell(g, d, t[d]);
      slack[d] = grid_slack(g, d, t[d]);
    }
  }
  const double h = g.h;
  const int64_t s0 = g.stride[0], s1 = g.stride[1];
  const int64_t dim = q.dim;
  auto visit = [&](int64_t a, int64_t b, int64_t e) {
    const int64_t cell = base + a * s0 + b * s1 + e;
    const int k0 = start[cell], k1 = start[cell + 1];
    if (k0 == k1) return;
    if (best.full()) {
      // Squared distance from the query to the box of the cell, shrunk for safety.
      const int64_t cc[kGridDims] = {a, b, e};
      double acc = 0.0;
#pragma unroll
      for (int d = 0; d < kGridDims; ++d) {
        if (n[d] <= 1) continue;
        double gap = fmax(double(cc[d]) - t[d], t[d] - double(cc[d] + 1)) - slack[d];
        if (gap > 0.0) {
          gap *= h;
          acc += gap * gap;
        }
      }
      if (acc * kShrink > best.worst()) return;
    }
    for (int k = k0; k < k1; ++k) {
      const double d2 = q.sqdist(xs + int64_t(k) * dim);
      if (best.full() && d2 > best.worst()) continue;
      const int j = sidx[k];
      if (j == no_self) continue;
      best.offer(d2, j);
    }
  };
  for (int64_t s = 0;; ++s) {
    int64_t lo[kGridDims], hi[kGridDims];
    bool covers = true;
#pragma unroll
    for (int d = 0; d < kGridDims; ++d) {
      lo[d] = c[d] - s > 0 ? c[d] - s : 0;
      hi[d] = c[d] + s < n[d] - 1 ? c[d] + s : n[d] - 1;
      covers = covers && c[d] - s <= 0 && c[d] + s >= n[d] - 1;
    }
    for (int64_t a = lo[0]; a <= hi[0]; ++a) {
      const bool face_a = a == c[0] - s || a == c[0] + s;
      for (int64_t b = lo[1]; b <= hi[1]; ++b) {
        if (face_a || b == c[1] - s || b == c[1] + s) {
          for (int64_t e = lo[2]; e <= hi[2]; ++e) visit(a, b, e);
        } else {
          if (c[2] - s >= 0) visit(a, b, c[2] - s);
          if (s > 0 && c[2] + s <= n[2] - 1) visit(a, b, c[2] + s);
        }
      }
    }
    if (covers) break;
    if (best.full()) {
      // Every unvisited point lies beyond one face of the visited block.
      double margin = CUDART_INF;
#pragma unroll
      for (int d = 0; d < kGridDims; ++d) {
        if (n[d] <= 1) continue;
        if (c[d] - s > 0) margin = fmin(margin, t[d] - double(c[d] - s) - slack[d]);
        if (c[d] + s < n[d] - 1) margin = fmin(margin, double(c[d] + s + 1) - t[d] - slack[d]);
      }
      if (margin > 0.0) {
        const double m = margin * h;
        if (best.worst() < m * m * kShrink) break;
      }
    }
  }
}

template <typename scalar_t, int D>
__global__ void __launch_bounds__(kThreads) knn_fill_kernel(Search<scalar_t> s, bool ignore_same_index,
                                                             const int64_t* __restrict__ cnt,
                                                             const int64_t* __restrict__ offsets, int64_t E,
                                                             int64_t* __restrict__ out, double* __restrict__ scratch) {
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < s.M; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t qi = s.qorder[t];
    const int64_t c = cnt[qi];
    if (c == 0) continue;
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
      knn_search<scalar_t, D>(g, s.base[b], s.start, s.sidx, s.xs, q, no_self, best);
      for (int e = 0; e < best.size; ++e) row0[e] = best.j[e];
    } else {
      HeapBest best;
      best.reset(scratch + off, row0, c);
      knn_search<scalar_t, D>(g, s.base[b], s.start, s.sidx, s.xs, q, no_self, best);
      best.finish();
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Host side
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
  TORCH_CHECK(x.dim() == 2 && y.dim() == 2, "x and y must be 2-D [N, D] and [M, D]");
  TORCH_CHECK(x.size(1) == y.size(1), "x and y must have the same number of columns");
  TORCH_CHECK(x.size(1) >= 1, "points must have at least one coordinate");
  TORCH_CHECK(x.scalar_type() == y.scalar_type(), "x and y must have the same dtype");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, "x and y must be float32 or float64");
  TORCH_CHECK(x.is_contiguous() && y.is_contiguous(), "x and y must be contiguous");
  TORCH_CHECK(x.size(0) < INT_MAX && y.size(0) < INT_MAX, "the CUDA neighbour search supports fewer than 2^31 points");
  TORCH_CHECK(ptr_x.numel() == ptr_y.numel(), "ptr_x and ptr_y must have the same length (number of clouds + 1)");
}

// [K] int32 counts -> [K + 1] int32 exclusive prefix sums (the last entry is the total).
at::Tensor exclusive_scan(const at::Tensor& count) {
  at::Tensor start = at::zeros({count.numel() + 1}, count.options());
  if (count.numel() > 0) start.narrow(0, 1, count.numel()).copy_(at::cumsum(count, 0, at::kInt));
  return start;
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

// The sorted grids of x and the processing order of y (steps 1-4 above).
struct Prepared {
  at::Tensor grids, base, start, sidx, xs, qorder;
};

// Returns false when no cloud has both points and queries (no edges at all).
template <typename scalar_t>
bool prepare(const at::Tensor& x, const at::Tensor& y, const at::Tensor& px_h, const at::Tensor& py_h,
             const at::Tensor& px_d, const at::Tensor& py_d, double h_min, double occupancy, double cells_per_point,
             Prepared& p) {
  const int64_t N = x.size(0), M = y.size(0), dim = x.size(1);
  const int G = static_cast<int>(std::min<int64_t>(dim, kGridDims));
  const int64_t nb = px_h.numel() - 1;
  const int64_t* bx = px_h.data_ptr<int64_t>();
  const int64_t* by = py_h.data_ptr<int64_t>();
  const cudaStream_t stream = cuda::stream();
  const auto long_opts = x.options().dtype(at::kLong);
  const auto int_opts = x.options().dtype(at::kInt);

  // 1. Bounding boxes, over tiles of the clouds that have points and queries.
  std::vector<int64_t> tiles;
  for (int64_t b = 0; b < nb; ++b) {
    if (bx[b + 1] == bx[b] || by[b + 1] == by[b]) continue;
    for (int64_t i = bx[b]; i < bx[b + 1]; i += kTile) {
      tiles.push_back(i);
      tiles.push_back(std::min(bx[b + 1], i + kTile));
      tiles.push_back(b);
    }
  }
  if (tiles.empty()) return false;
  const int64_t ntiles = static_cast<int64_t>(tiles.size()) / 3;
  TORCH_CHECK(ntiles < INT_MAX, "too many clouds");
  const at::Tensor tiles_d = at::from_blob(tiles.data(), {ntiles * 3}, at::TensorOptions().dtype(at::kLong)).to(x.device());
  at::Tensor enc_lo = at::full({nb * kGridDims}, -1, long_opts);  // all bits set: above every encoded value
  at::Tensor enc_hi = at::zeros({nb * kGridDims}, long_opts);
  auto* lo_ptr = reinterpret_cast<unsigned long long*>(enc_lo.data_ptr<int64_t>());
  auto* hi_ptr = reinterpret_cast<unsigned long long*>(enc_hi.data_ptr<int64_t>());
  bbox_kernel<scalar_t><<<static_cast<unsigned int>(ntiles), kThreads, 0, stream>>>(
      x.data_ptr<scalar_t>(), dim, G, tiles_d.data_ptr<int64_t>(), lo_ptr, hi_ptr);
  C10_CUDA_KERNEL_LAUNCH_CHECK();

  // 2. Grids.
  p.grids = at::empty({nb * static_cast<int64_t>(sizeof(CloudGrid))}, x.options().dtype(at::kByte));
  CloudGrid* grids = reinterpret_cast<CloudGrid*>(p.grids.data_ptr<uint8_t>());
  at::Tensor ncells = at::empty({nb}, long_opts);
  plan_kernel<<<cuda::blocks_for(nb), kThreads, 0, stream>>>(px_d.data_ptr<int64_t>(), py_d.data_ptr<int64_t>(), nb,
                                                               G, lo_ptr, hi_ptr, h_min, occupancy, cells_per_point,
                                                               grids, ncells.data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  const at::Tensor incl = at::cumsum(ncells, 0);
  const int64_t C = incl[nb - 1].item<int64_t>();
  TORCH_CHECK(C >= 1 && C < INT_MAX - 2, "radius/knn: the cell grids need ", C, " cells (at most 2^31 - 3 supported)");
  p.base = incl - ncells;

  // 3. Points sorted by (cloud, cell).
  at::Tensor count = at::zeros({C}, int_opts);
  at::Tensor key = at::empty({N}, long_opts);
  at::Tensor rank = at::empty({N}, int_opts);
  bin_kernel<scalar_t><<<cuda::blocks_for(N), kThreads, 0, stream>>>(
      x.data_ptr<scalar_t>(), N, dim, G, px_d.data_ptr<int64_t>(), nb, grids, p.base.data_ptr<int64_t>(), -1,
      key.data_ptr<int64_t>(), rank.data_ptr<int>(), count.data_ptr<int>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  p.start = exclusive_scan(count);
  p.sidx = at::empty({N}, int_opts);
  p.xs = at::empty({N, dim}, x.options());
  scatter_kernel<scalar_t><<<cuda::blocks_for(N), kThreads, 0, stream>>>(
      x.data_ptr<scalar_t>(), N, dim, key.data_ptr<int64_t>(), rank.data_ptr<int>(), p.start.data_ptr<int>(),
      p.sidx.data_ptr<int>(), p.xs.data_ptr<scalar_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();

  // 4. Processing order of the queries: by cell (queries of clouds without a grid last).
  const bool same = x.data_ptr() == y.data_ptr() && N == M && std::equal(bx, bx + nb + 1, by);
  if (same) {
    p.qorder = p.sidx;  // every cloud with points has queries: all N rows were sorted
  } else {
    at::Tensor count_y = at::zeros({C + 1}, int_opts);
    at::Tensor key_y = at::empty({M}, long_opts);
    at::Tensor rank_y = at::empty({M}, int_opts);
    bin_kernel<scalar_t><<<cuda::blocks_for(M), kThreads, 0, stream>>>(
        y.data_ptr<scalar_t>(), M, dim, G, py_d.data_ptr<int64_t>(), nb, grids, p.base.data_ptr<int64_t>(), C,
        key_y.data_ptr<int64_t>(), rank_y.data_ptr<int>(), count_y.data_ptr<int>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    const at::Tensor start_y = exclusive_scan(count_y);
    p.qorder = at::empty({M}, int_opts);
    scatter_kernel<scalar_t><<<cuda::blocks_for(M), kThreads, 0, stream>>>(
        y.data_ptr<scalar_t>(), M, dim, key_y.data_ptr<int64_t>(), rank_y.data_ptr<int>(), start_y.data_ptr<int>(),
        p.qorder.data_ptr<int>(), static_cast<scalar_t*>(nullptr));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return true;
}

template <typename scalar_t>
Search<scalar_t> make_search(const Prepared& p, const at::Tensor& y, const at::Tensor& px_d, const at::Tensor& py_d) {
  Search<scalar_t> s;
  s.y = y.data_ptr<scalar_t>();
  s.dim = y.size(1);
  s.M = y.size(0);
  s.qorder = p.qorder.data_ptr<int>();
  s.ptr_x = px_d.data_ptr<int64_t>();
  s.ptr_y = py_d.data_ptr<int64_t>();
  s.nb = px_d.numel() - 1;
  s.grids = reinterpret_cast<const CloudGrid*>(p.grids.data_ptr<uint8_t>());
  s.base = p.base.data_ptr<int64_t>();
  s.start = p.start.data_ptr<int>();
  s.sidx = p.sidx.data_ptr<int>();
  s.xs = p.xs.data_ptr<scalar_t>();
  return s;
}

template <typename scalar_t>
at::Tensor radius_impl(const at::Tensor& x, const at::Tensor& y, double r, const at::Tensor& px_h,
                       const at::Tensor& py_h, const at::Tensor& px_d, const at::Tensor& py_d, int64_t limit,
                       bool ignore_same_index) {
  const auto long_opts = x.options().dtype(at::kLong);
  const int64_t M = y.size(0);
  Prepared p;
  // Cells slightly wider than r (as radius_cpu.cpp): a neighbour's cell differs by at most one per
  // dimension even after the rounding of cell coordinates.
  if (!prepare<scalar_t>(x, y, px_h, py_h, px_d, py_d, r * (1.0 + 1e-6), 4.0, 4.0, p)) return at::empty({2, 0}, long_opts);
  const Search<scalar_t> s = make_search<scalar_t>(p, y, px_d, py_d);
  const double r2 = r * r;
  const cudaStream_t stream = cuda::stream();
  at::Tensor cnt = at::empty({M}, long_opts);
  dispatch_dim(s.dim, [&](auto tag) {
    constexpr int D = decltype(tag)::value;
    radius_count_kernel<scalar_t, D><<<cuda::blocks_for(M), kThreads, 0, stream>>>(s, r2, limit, ignore_same_index,
                                                                                   cnt.data_ptr<int64_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  at::Tensor offsets;
  int64_t E = 0;
  std::tie(offsets, E) = offsets_of(cnt);
  at::Tensor out = at::empty({2, E}, long_opts);
  if (E == 0) return out;
  at::Tensor scratch;
  if (limit > kLocalCap) scratch = at::empty({E}, x.options().dtype(at::kDouble));
  double* scratch_ptr = scratch.defined() ? scratch.data_ptr<double>() : nullptr;
  dispatch_dim(s.dim, [&](auto tag) {
    constexpr int D = decltype(tag)::value;
    radius_fill_kernel<scalar_t, D><<<cuda::blocks_for(M), kThreads, 0, stream>>>(
        s, r2, ignore_same_index, cnt.data_ptr<int64_t>(), offsets.data_ptr<int64_t>(), E, out.data_ptr<int64_t>(),
        scratch_ptr);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

template <typename scalar_t>
at::Tensor knn_impl(const at::Tensor& x, const at::Tensor& y, int64_t k, const at::Tensor& px_h, const at::Tensor& py_h,
                    const at::Tensor& px_d, const at::Tensor& py_d, bool ignore_same_index) {
  const auto long_opts = x.options().dtype(at::kLong);
  const int64_t M = y.size(0);
  const int64_t nb = px_h.numel() - 1;
  const cudaStream_t stream = cuda::stream();
  at::Tensor cnt = at::empty({M}, long_opts);
  knn_count_kernel<<<cuda::blocks_for(M), kThreads, 0, stream>>>(M, px_d.data_ptr<int64_t>(), py_d.data_ptr<int64_t>(),
                                                                   nb, k, ignore_same_index, cnt.data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  at::Tensor offsets;
  int64_t E = 0;
  std::tie(offsets, E) = offsets_of(cnt);
  at::Tensor out = at::empty({2, E}, long_opts);
  if (E == 0) return out;
  Prepared p;
  // About 4 points per cell (as knn_cpu.cpp). E > 0: some cloud has points and queries.
  TORCH_CHECK(prepare<scalar_t>(x, y, px_h, py_h, px_d, py_d, 0.0, 4.0, 2.0, p), "knn: inconsistent batch pointers");
  const Search<scalar_t> s = make_search<scalar_t>(p, y, px_d, py_d);
  at::Tensor scratch;
  if (k > kLocalCap) scratch = at::empty({E}, x.options().dtype(at::kDouble));
  double* scratch_ptr = scratch.defined() ? scratch.data_ptr<double>() : nullptr;
  dispatch_dim(s.dim, [&](auto tag) {
    constexpr int D = decltype(tag)::value;
    knn_fill_kernel<scalar_t, D><<<cuda::blocks_for(M), kThreads, 0, stream>>>(
        s, ignore_same_index, cnt.data_ptr<int64_t>(), offsets.data_ptr<int64_t>(), E, out.data_ptr<int64_t>(),
        scratch_ptr);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

at::Tensor radius_cuda(const at::Tensor& x, const at::Tensor& y, double r, const at::Tensor& ptr_x,
                       const at::Tensor& ptr_y, int64_t max_num_neighbors, bool ignore_same_index) {
  check_search_inputs(x, y, ptr_x, ptr_y);
  c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor px_h = host_ptr(ptr_x, x.size(0), "ptr_x", x.device());
  const at::Tensor py_h = host_ptr(ptr_y, y.size(0), "ptr_y", x.device());
  TORCH_CHECK(r > 0.0 && std::isfinite(r), "r must be a positive finite number, got ", r);
  TORCH_CHECK(max_num_neighbors >= 1, "max_num_neighbors must be >= 1, got ", max_num_neighbors);
  if (x.size(0) == 0 || y.size(0) == 0) return at::empty({2, 0}, x.options().dtype(at::kLong));
  const at::Tensor px_d = device_ptr(ptr_x, px_h, x.device());
  const at::Tensor py_d = device_ptr(ptr_y, py_h, x.device());
  at::Tensor out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "geomdl_radius_cuda", [&] {
    out = radius_impl<scalar_t>(x, y, r, px_h, py_h, px_d, py_d, max_num_neighbors, ignore_same_index);
  });
  return out;
}

at::Tensor knn_cuda(const at::Tensor& x, const at::Tensor& y, int64_t k, const at::Tensor& ptr_x,
                    const at::Tensor& ptr_y, bool ignore_same_index) {
  check_search_inputs(x, y, ptr_x, ptr_y);
  c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor px_h = host_ptr(ptr_x, x.size(0), "ptr_x", x.device());
  const at::Tensor py_h = host_ptr(ptr_y, y.size(0), "ptr_y", x.device());
  TORCH_CHECK(k >= 1, "k must be >= 1, got ", k);
  if (x.size(0) == 0 || y.size(0) == 0) return at::empty({2, 0}, x.options().dtype(at::kLong));
  const at::Tensor px_d = device_ptr(ptr_x, px_h, x.device());
  const at::Tensor py_d = device_ptr(ptr_y, py_h, x.device());
  at::Tensor out;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "geomdl_knn_cuda", [&] {
    out = knn_impl<scalar_t>(x, y, k, px_h, py_h, px_d, py_d, ignore_same_index);
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(geomdl, CUDA, m) {
  m.impl("radius", &radius_cuda);
  m.impl("knn", &knn_cuda);
}

}  // namespace geomdl
