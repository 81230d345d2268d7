// CUDA sparse trilinear contraction: geomdl::sparse_trilinear (schema in kernels/registration.cpp).
//
//   out[r, t] = sum_{g in groups(t)} x3[r, col(g)] * sum_{n in entries(g)} coef[n] x1[r, i(n)] x2[r, j(n)]
//
// for every row r, with the tables of geomdl/ops/trilinear.py (same maths as the CPU kernel
// trilinear_cpu.cpp and as geomdl.ops.trilinear.sparse_trilinear_reference). An operand with one row
// is broadcast over all rows.
//
// Design
// ------
// * One CTA = 256 threads = a tile of TR consecutive rows (TR = 32 when it fits) x 256 / TR target
//   threads: thread (lane, k) computes out[r0 + lane, t] for t = k, k + 256 / TR, ... With TR = 32 the
//   32 lanes of a warp are 32 rows of the same target column, so the walk over the tables is uniform
//   in the warp (one broadcast load per table value) and each term is one multiply-add per lane.
// * Staged (the default): the tile's rows of x1, x2, x3 are copied to shared memory with coalesced
//   loads (a tile of a row-major operand is one contiguous range), rows padded to an odd stride so that
//   32 lanes reading one column of 32 rows hit 32 banks; a broadcast operand is staged once per CTA.
//   The outputs go to shared memory and leave the CTA as one contiguous, coalesced range.
//   TR is the largest of 32, 16, ..., 1 whose tile fits the device's opt-in shared memory.
// * Unstaged: when even one row does not fit (tens of thousands of columns), the same kernel reads the
//   operands from global memory and writes each output directly (TR = 32).
// * CTAs loop over tiles (grid = resident CTAs, at most the number of tiles).
//
// The tables are checked like the CPU kernel checks them (trilinear_checks.h) on a host copy, once per
// set of tables: a small cache remembers the (device, storage, pointer, size, version counter) of the
// tables and the operand widths it has checked, so that a training loop pays no copy and no
// synchronisation per call. The storages are held by weak references: new tables that the allocator
// places at the address of freed ones (same size, version 0) are new storages, checked again.
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <mutex>
#include <utility>
#include <vector>

#include "common/cuda_utils.cuh"
#include "trilinear/trilinear_checks.h"

namespace geomdl {
namespace trilinear {
namespace {

constexpr int kThreads = 256;

template <typename T>
struct Params {
  const T* x1;
  const T* x2;
  const T* x3;
  bool b1, b2, b3;       // broadcast operand (one row)
  int F1, F2, F3, W;     // columns
  int ld1, ld2, ld3, ldo;  // shared-memory row strides (odd)
  int TR;                // rows per tile
  int64_t R, tiles;
  const int64_t* target_ptr;
  const int64_t* group_ptr;
  const int64_t* group_col;
  const int64_t* pair;
  const T* coef;
  T* out;
};

// Rows [r0, r0 + nb) of the row-major x [R, F] into s [nb][ld] (one contiguous source range).
template <typename T>
__device__ void stage_rows(const T* __restrict__ x, int F, int ld, int64_t r0, int nb, T* s) {
  const T* src = x + r0 * F;
  const int n = nb * F;
  for (int e = threadIdx.x; e < n; e += blockDim.x) {
    const int row = e / F;
    s[row * ld + (e - row * F)] = src[e];
  }
}

template <typename T>
__device__ void stage_once(const T* __restrict__ x, int F, T* s) {
  for (int f = threadIdx.x; f < F; f += blockDim.x) s[f] = x[f];
}

// out[t] for the targets t = first, first + step, ... of one row (operand rows a1, a2, a3).
template <typename T>
__device__ void contract_row(const Params<T>& p, const T* a1, const T* a2, const T* a3, T* o, int first, int step) {
  for (int t = first; t < p.W; t += step) {
    T acc = T(0);
    const int64_t g1 = __ldg(p.target_ptr + t + 1);
    for (int64_t g = __ldg(p.target_ptr + t); g < g1; ++g) {
      T inner = T(0);
      const int64_t n1 = __ldg(p.group_ptr + g + 1);
      for (int64_t n = __ldg(p.group_ptr + g); n < n1; ++n) {
        const int64_t i = __ldg(p.pair + 2 * n), j = __ldg(p.pair + 2 * n + 1);
        inner += __ldg(p.coef + n) * a1[i] * a2[j];
      }
      acc += inner * a3[__ldg(p.group_col + g)];
    }
    o[t] = acc;
  }
}

template <typename T, bool kStaged>
__global__ void __launch_bounds__(kThreads) sparse_trilinear_kernel(const Params<T> p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* s1 = reinterpret_cast<T*>(smem_raw);
  T* s2 = s1 + (p.b1 ? p.F1 : p.TR * p.ld1);
  T* s3 = s2 + (p.b2 ? p.F2 : p.TR * p.ld2);
  T* so = s3 + (p.b3 ? p.F3 : p.TR * p.ld3);
  const int lane = threadIdx.x % p.TR, first = threadIdx.x / p.TR, step = blockDim.x / p.TR;
  if (kStaged) {
    if (p.b1) stage_once(p.x1, p.F1, s1);
    if (p.b2) stage_once(p.x2, p.F2, s2);
    if (p.b3) stage_once(p.x3, p.F3, s3);
  }
  for (int64_t tile = blockIdx.x; tile < p.tiles; tile += gridDim.x) {
    const int64_t r0 = tile * p.TR;
    const int nb = p.R - r0 < p.TR ? static_cast<int>(p.R - r0) : p.TR;
    if (kStaged) {
      // No barrier needed here: the previous tile's store reads only `so`, which is written again only
      // after the barrier below.
      if (!p.b1) stage_rows(p.x1, p.F1, p.ld1, r0, nb, s1);
      if (!p.b2) stage_rows(p.x2, p.F2, p.ld2, r0, nb, s2);
      if (!p.b3) stage_rows(p.x3, p.F3, p.ld3, r0, nb, s3);
      __syncthreads();
      if (lane < nb)
        contract_row(p, s1 + (p.b1 ? 0 : lane * p.ld1), s2 + (p.b2 ? 0 : lane * p.ld2), s3 + (p.b3 ? 0 : lane * p.ld3),
                     so + lane * p.ldo, first, step);
      __syncthreads();
      T* dst = p.out + r0 * p.W;
      const int n = nb * p.W;
      for (int e = threadIdx.x; e < n; e += blockDim.x) {
        const int row = e / p.W;
        dst[e] = so[row * p.ldo + (e - row * p.W)];
      }
    } else if (lane < nb) {
      const int64_t r = r0 + lane;
      contract_row(p, p.x1 + (p.b1 ? 0 : r * p.F1), p.x2 + (p.b2 ? 0 : r * p.F2), p.x3 + (p.b3 ? 0 : r * p.F3),
                   p.out + r * p.W, first, step);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Host side
// ---------------------------------------------------------------------------------------------

// The tables and operand widths whose values were checked (see the header comment).
struct TableKey {
  int64_t device;
  const void* ptr[4];
  int64_t numel[4];
  int64_t version[4];
  int64_t width, F1, F2, F3;
  bool operator==(const TableKey& o) const {
    for (int i = 0; i < 4; ++i)
      if (ptr[i] != o.ptr[i] || numel[i] != o.numel[i] || version[i] != o.version[i]) return false;
    return device == o.device && width == o.width && F1 == o.F1 && F2 == o.F2 && F3 == o.F3;
  }
};

// A checked key and the storages of its tables, held weakly: a StorageImpl stays allocated while a weak
// reference to it exists, so no other tensor's storage can take its address while the entry is cached.
struct CheckedTables {
  TableKey key;
  std::vector<c10::weak_intrusive_ptr<c10::StorageImpl>> storages;
  // Same key, and every table still in the storage that was checked.
  bool matches(const TableKey& k, const at::Tensor* const (&t)[4]) const {
    if (!(key == k)) return false;
    for (int i = 0; i < 4; ++i)
      if (storages[i].expired() || storages[i]._unsafe_get_target() != t[i]->storage().unsafeGetStorageImpl())
        return false;
    return true;
  }
};

void check_table_values_once(const at::Tensor& target_ptr, const at::Tensor& group_ptr, const at::Tensor& group_col,
                             const at::Tensor& pair, int64_t width, int64_t F1, int64_t F2, int64_t F3) {
  static std::mutex mutex;
  static std::deque<CheckedTables> checked;  // most recent first, at most kKeep
  constexpr size_t kKeep = 64;
  const at::Tensor* t[4] = {&target_ptr, &group_ptr, &group_col, &pair};
  TableKey key{};
  key.device = target_ptr.device().index();
  for (int i = 0; i < 4; ++i) {
    key.ptr[i] = t[i]->data_ptr();
    key.numel[i] = t[i]->numel();
    key.version[i] = static_cast<int64_t>(t[i]->_version());
  }
  key.width = width;
  key.F1 = F1;
  key.F2 = F2;
  key.F3 = F3;
  {
    const std::lock_guard<std::mutex> lock(mutex);
    for (const CheckedTables& c : checked)
      if (c.matches(key, t)) return;
  }
  check_table_values(target_ptr.cpu(), group_ptr.cpu(), group_col.cpu(), pair.cpu(), width, F1, F2, F3);
  CheckedTables entry{key, {}};
  for (int i = 0; i < 4; ++i) entry.storages.push_back(t[i]->storage().getWeakStorageImpl());
  const std::lock_guard<std::mutex> lock(mutex);
  checked.push_front(std::move(entry));
  if (checked.size() > kKeep) checked.pop_back();
}

int odd(int64_t n) { return static_cast<int>(n | 1); }

template <typename T, bool kStaged>
void launch(Params<T> p, int64_t smem_bytes, int device) {
  auto kernel = sparse_trilinear_kernel<T, kStaged>;
  if (kStaged) cuda::allow_optin_shared_memory(kernel, device);
  const unsigned int grid = cuda::resident_grid(kernel, kThreads, smem_bytes, device, p.tiles, "sparse_trilinear (CUDA)");
  kernel<<<grid, kThreads, static_cast<size_t>(smem_bytes), geomdl::cuda::stream()>>>(p);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

at::Tensor sparse_trilinear_cuda(const at::Tensor& x1, const at::Tensor& x2, const at::Tensor& x3,
                                 const at::Tensor& target_ptr, const at::Tensor& group_ptr,
                                 const at::Tensor& group_col, const at::Tensor& pair, const at::Tensor& coef,
                                 int64_t width) {
  GEOMDL_CHECK_CUDA(x1);
  TORCH_CHECK(x1.scalar_type() == at::kFloat || x1.scalar_type() == at::kDouble,
              "sparse_trilinear supports float32 and float64, got ", x1.scalar_type());
  int64_t rows = 1;
  check_operand(x1, x1, rows, "x1");
  check_operand(x2, x1, rows, "x2");
  check_operand(x3, x1, rows, "x3");
  check_table_shapes(x1, target_ptr, group_ptr, group_col, pair, coef, width);
  const int64_t F1 = x1.size(1), F2 = x2.size(1), F3 = x3.size(1);
  TORCH_CHECK(std::max({F1, F2, F3, width}) < (int64_t(1) << 30), "sparse_trilinear (CUDA): at most 2^30 columns");
  const c10::cuda::CUDAGuard guard(x1.device());
  check_table_values_once(target_ptr, group_ptr, group_col, pair, width, F1, F2, F3);
  at::Tensor out = at::empty({rows, width}, x1.options());
  if (rows == 0 || width == 0) return out;

  const int device = x1.get_device();
  int smem_optin = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  const bool b1 = x1.size(0) == 1, b2 = x2.size(0) == 1, b3 = x3.size(0) == 1;
  const int64_t elem = static_cast<int64_t>(x1.element_size());
  auto tile_bytes = [&](int64_t tr) {
    return ((b1 ? F1 : tr * odd(F1)) + (b2 ? F2 : tr * odd(F2)) + (b3 ? F3 : tr * odd(F3)) + tr * odd(width)) * elem;
  };
  int TR = 0;
  for (int tr = 32; tr >= 1 && TR == 0; tr /= 2)
    if (tile_bytes(tr) <= smem_optin) TR = tr;
  AT_DISPATCH_FLOATING_TYPES(x1.scalar_type(), "sparse_trilinear_cuda", [&] {
    using T = scalar_t;
    Params<T> p{};
    p.x1 = x1.data_ptr<T>();
    p.x2 = x2.data_ptr<T>();
    p.x3 = x3.data_ptr<T>();
    p.b1 = b1;
    p.b2 = b2;
    p.b3 = b3;
    p.F1 = static_cast<int>(F1);
    p.F2 = static_cast<int>(F2);
    p.F3 = static_cast<int>(F3);
    p.W = static_cast<int>(width);
    p.ld1 = odd(F1);
    p.ld2 = odd(F2);
    p.ld3 = odd(F3);
    p.ldo = odd(width);
    p.TR = TR > 0 ? TR : 32;
    p.R = rows;
    p.tiles = (rows + p.TR - 1) / p.TR;
    p.target_ptr = target_ptr.data_ptr<int64_t>();
    p.group_ptr = group_ptr.data_ptr<int64_t>();
    p.group_col = group_col.data_ptr<int64_t>();
    p.pair = pair.data_ptr<int64_t>();
    p.coef = coef.data_ptr<T>();
    p.out = out.data_ptr<T>();
    if (TR > 0)
      launch<T, true>(p, tile_bytes(TR), device);
    else
      launch<T, false>(p, 0, device);
  });
  return out;
}

}  // namespace
}  // namespace trilinear

TORCH_LIBRARY_IMPL(geomdl, CUDA, m) { m.impl("sparse_trilinear", &trilinear::sparse_trilinear_cuda); }

}  // namespace geomdl
