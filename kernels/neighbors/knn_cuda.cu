// CUDA k-nearest-neighbour search (geomdl::knn): for every query y[i], the k smallest (d2, j) over the
// points x[j] of its cloud, sorted (fewer when the cloud is smaller; j == i dropped when
// ignore_same_index), edge for edge identical to knn_cpu.cpp and geomdl.ops.knn_reference.
// Pipeline and exact distances: search_common.cuh; grids: grid_build.cuh.
#include <torch/library.h>

#include <cstdint>
#include <tuple>

#include "common/cuda_utils.cuh"
#include "neighbors/grid_build.cuh"
#include "neighbors/search_common.cuh"
#include "neighbors/shell.h"

namespace geomdl {
namespace {

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
    const bool covers = shell::visit_shell(c, n, s, visit);
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
  const auto search = [&](const CloudGrid& g, int64_t base, const Query<scalar_t, D>& q, int64_t no_self, auto& best) {
    knn_search<scalar_t, D>(g, base, s.start, s.sidx, s.xs, q, no_self, best);
  };
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < s.M; t += int64_t(gridDim.x) * blockDim.x)
    fill_query<scalar_t, D>(s, s.qorder[t], ignore_same_index, cnt, offsets, E, out, scratch, search);
}

// ------------------------------------------------------------------------------------------------
// Host side
// ------------------------------------------------------------------------------------------------

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

TORCH_LIBRARY_IMPL(geomdl, CUDA, m) { m.impl("knn", &knn_cuda); }

}  // namespace geomdl
