// CUDA radius search (geomdl::radius): for every query y[i], the points x[j] of its cloud with
// d2 <= r * r, sorted by (d2, j) and cut to the max_num_neighbors first (j == i dropped when
// ignore_same_index), edge for edge identical to radius_cpu.cpp and geomdl.ops.radius_reference.
// Pipeline and exact distances: search_common.cuh; grids: grid_build.cuh.
#include <torch/library.h>

#include <cmath>
#include <cstdint>
#include <tuple>

#include "common/cuda_utils.cuh"
#include "neighbors/grid_build.cuh"
#include "neighbors/search_common.cuh"

namespace geomdl {
namespace {

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
  const auto search = [&](const CloudGrid& g, int64_t base, const Query<scalar_t, D>& q, int64_t no_self, auto& best) {
    radius_scan<scalar_t, D>(g, base, s.start, s.sidx, s.xs, q, r2, no_self, [&](double d2, int j) { best.offer(d2, j); });
  };
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < s.M; t += int64_t(gridDim.x) * blockDim.x)
    fill_query<scalar_t, D>(s, s.qorder[t], ignore_same_index, cnt, offsets, E, out, scratch, search);
}

// ------------------------------------------------------------------------------------------------
// Host side
// ------------------------------------------------------------------------------------------------

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

}  // namespace

TORCH_LIBRARY_IMPL(geomdl, CUDA, m) { m.impl("radius", &radius_cuda); }

}  // namespace geomdl
