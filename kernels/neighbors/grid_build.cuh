// Steps 1-4 of the CUDA neighbour search (pipeline: search_common.cuh): bounding boxes, one uniform
// grid per cloud, the points counting-sorted by (cloud, cell), and the processing order of the
// queries. Used by radius_cuda.cu and knn_cuda.cu (header-only, unnamed namespace).
#pragma once

#include <torch/library.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <vector>

#include "common/cuda_utils.cuh"
#include "neighbors/search_common.cuh"

namespace geomdl {
namespace {

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
// Host side
// ------------------------------------------------------------------------------------------------

// [K] int32 counts -> [K + 1] int32 exclusive prefix sums (the last entry is the total).
at::Tensor exclusive_scan(const at::Tensor& count) {
  at::Tensor start = at::zeros({count.numel() + 1}, count.options());
  if (count.numel() > 0) start.narrow(0, 1, count.numel()).copy_(at::cumsum(count, 0, at::kInt));
  return start;
}

// The sorted grids of x and the processing order of y (steps 1-4).
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

}  // namespace
}  // namespace geomdl
