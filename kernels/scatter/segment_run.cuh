// The generic segment reduction of the CUDA scatter kernels (scatter_reduce_cuda.cu,
// segment_softmax_cuda.cu) and their shared host helpers.
//
// Design
// ------
// * One generic "run" kernel (segment_run_kernel) does every per-segment reduction. Each warp takes
//   a contiguous chunk of rows and a tile of columns. Its 32 lanes are R row groups x G column lanes
//   (G = the power of two >= C/V capped at 32, R = 32/G; V = 4/2/1 elements per vector load, 16-byte
//   float4/double2 loads when C and the pointer allow): a warp step reads R consecutive rows
//   (coalesced along C). The R values of a step are combined by a segmented warp scan over runs of
//   equal index (head flags, shuffles); the tail of each run flushes it with ONE atomic, except the
//   last run of the step, which is carried in registers into the next step and merged while the
//   index stays the same. For sorted index (edge lists sorted by target) atomics are thus rare; for
//   a random index it degrades to one atomic per element (a 16-byte red.global.add.v4.f32 on sm_90
//   for float with V = 4). Loads of U (default kUnroll) steps are issued before they are combined.
//   Chunk sizes are chosen from N, C and the number of SMs (~128 warps of work per SM by default).
// * Index range: the runs check every entry they read and raise a device flag (the row is then
//   skipped); the flag is read once at the end (one device sync) and, when set, min/max of the index
//   (at::aminmax) give the CPU kernel's error message. No out-of-range address is ever touched.
//
// Deterministic mode (torch.use_deterministic_algorithms(True)) uses no floating-point atomics: the
// index is sorted stably (at::sort(stable=true): rows of a segment keep their order) and build_csr
// gives the CSR pointer of the sorted index (binary search), from which the callers reduce the rows of
// a segment in row order. The range check then uses the sorted index's ends.
//
// Header-only, in an unnamed namespace (one copy per .cu; no relocatable device code).
#pragma once

#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <tuple>
#include <type_traits>

#include "common/cuda_utils.cuh"
#include "scatter/vector_ops.cuh"

namespace geomdl {
namespace {

constexpr int kBlock = 256;    // threads per block of the run kernels (8 warps)
constexpr int kUnroll = 4;     // warp steps whose loads are issued together
constexpr unsigned kFull = 0xffffffffu;

// ---------------------------------------------------------------------------------------------
// Policies of the run kernel. Each defines
//   T, scalar_t, V, kLoadsSrc;
//   identity()                       value of "no row";
//   combine(a, b)                    associative reduction (a from earlier rows);
//   load_src(row, cv, x)             the V src values of (row, column vector cv) (if kLoadsSrc);
//   value(s, row, cv, x, v)          the V values to reduce of a row of segment s;
//   flush(s, cv, v)                  atomically reduce v into the output of segment s.
// ---------------------------------------------------------------------------------------------

// keys[s, c] = max (kMax) or min of key_of<kMax>(src[i, c]) over the rows i of segment s.
template <typename scalar_t_, int V_, bool kMax>
struct KeyPolicy {
  using scalar_t = scalar_t_;
  using T = typename KeyTraits<scalar_t_>::K;
  static constexpr int V = V_;
  static constexpr bool kLoadsSrc = true;
  const scalar_t* __restrict__ src;
  T* __restrict__ keys;
  int64_t C;
  __device__ T identity() const { return key_identity<scalar_t, kMax>(); }
  __device__ static T combine(T a, T b) { return kMax ? key_max(a, b) : key_min(a, b); }
  __device__ void load_src(int64_t row, int64_t cv, scalar_t (&x)[V]) const {
    load_vec<scalar_t, V, false>(src + row * C + cv * V, x);
  }
  __device__ void value(long long, int64_t, int64_t, const scalar_t (&x)[V], T (&v)[V]) const {
#pragma unroll
    for (int k = 0; k < V; ++k) v[k] = key_of<scalar_t, kMax>(x[k]);
  }
  __device__ void flush(long long s, int64_t cv, const T (&v)[V]) const {
    T* p = keys + s * C + cv * V;
#pragma unroll
    for (int k = 0; k < V; ++k) {
      if (v[k] == identity()) continue;  // nothing to reduce (no number has this key)
      if (kMax) {
        atomicMax(p + k, v[k]);
      } else {
        atomicMin(p + k, v[k]);
      }
    }
  }
};

// arg[s, c] = min over the rows i of segment s with key_of(src[i, c]) == keys[s, c] of i (arg

// ---------------------------------------------------------------------------------------------
// The run kernel (see the header comment). Work units: (row chunk, column tile), one per warp at a
// time (grid-stride over units). All branches around the shuffles are warp-uniform.
// ---------------------------------------------------------------------------------------------

template <class P, int U = kUnroll>
__global__ void __launch_bounds__(kBlock) segment_run_kernel(const P p, const int64_t* __restrict__ index, const int64_t N,
                                                             const int64_t S, const int64_t Cv, const int g_log2,
                                                             const int64_t tiles, const int64_t rows_per_chunk,
                                                             const int64_t units, int* __restrict__ bad) {
  using T = typename P::T;
  using scalar_t = typename P::scalar_t;
  constexpr int V = P::V;
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const int G = 1 << g_log2;   // lanes along the columns
  const int R = 32 >> g_log2;  // row groups (rows per warp step)
  const int rg = lane >> g_log2;
  const int cg = lane & (G - 1);
  const int last_lane = ((R - 1) << g_log2) | cg;  // same column lane, last row group
  const int64_t warps_per_block = static_cast<int64_t>(blockDim.x >> 5);
  const int64_t warp = static_cast<int64_t>(blockIdx.x) * warps_per_block + static_cast<int64_t>(threadIdx.x >> 5);
  const int64_t warp_stride = static_cast<int64_t>(gridDim.x) * warps_per_block;
  const int64_t step = static_cast<int64_t>(R) * U;

  for (int64_t unit = warp; unit < units; unit += warp_stride) {
    const int64_t chunk = unit / tiles;
    const int64_t cv = (unit - chunk * tiles) * G + cg;
    const bool col_ok = cv < Cv;
    const int64_t r0 = chunk * rows_per_chunk;
    const int64_t r1 = r0 + rows_per_chunk < N ? r0 + rows_per_chunk : N;

    // Carry: the run that ended the previous step (same in every row group of a column lane).
    long long cidx = -1;
    T cacc[V];
#pragma unroll
    for (int k = 0; k < V; ++k) cacc[k] = p.identity();

    for (int64_t base = r0; base < r1; base += step) {
      long long idx[U];
      scalar_t x[U][V];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int64_t row = base + static_cast<int64_t>(u) * R + rg;
        idx[u] = -1;  // -1: no row (past the chunk) or an index out of range; never flushed
#pragma unroll
        for (int k = 0; k < V; ++k) x[u][k] = scalar_t(0);
        if (row < r1) {
          const long long s = static_cast<long long>(index[row]);
          if (s >= 0 && s < S) {
            idx[u] = s;
          } else {
            *bad = 1;
          }
          if constexpr (P::kLoadsSrc) {
            if (col_ok) p.load_src(row, cv, x[u]);  // address valid whatever index says
          }
        }
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int64_t row = base + static_cast<int64_t>(u) * R + rg;
        const long long my = idx[u];
        T v[V];
#pragma unroll
        for (int k = 0; k < V; ++k) v[k] = p.identity();
        if (my >= 0 && col_ok) p.value(my, row, cv, x[u], v);

        // The carry joins the first run of this step when it has the same index; else it is done.
        if (rg == 0) {
          if (my == cidx) {
#pragma unroll
            for (int k = 0; k < V; ++k) v[k] = P::combine(cacc[k], v[k]);
          } else if (cidx >= 0 && col_ok) {
            p.flush(cidx, cv, cacc);
          }
        }

        if (R == 1) {  // (warp-uniform) one row per column lane: its run is the carry
          cidx = my;
#pragma unroll
          for (int k = 0; k < V; ++k) cacc[k] = v[k];
          continue;
        }

        // Segmented inclusive scan over the R row groups (runs of equal index; head flags). Skipped
        // when every row group starts a run (a random index): it would change nothing.
        const long long prev = __shfl_up_sync(kFull, my, static_cast<unsigned>(G));
        int head = (rg == 0 || prev != my) ? 1 : 0;
        if (__any_sync(kFull, head == 0)) {
          for (int d = 1; d < R; d <<= 1) {
            const unsigned delta = static_cast<unsigned>(d) << g_log2;
            T up[V];
#pragma unroll
            for (int k = 0; k < V; ++k) up[k] = __shfl_up_sync(kFull, v[k], delta);
            const int head_up = __shfl_up_sync(kFull, head, delta);
            if (rg >= d) {
              if (!head) {
#pragma unroll
                for (int k = 0; k < V; ++k) v[k] = P::combine(up[k], v[k]);
              }
              head |= head_up;
            }
          }
        }

        // Tails of runs flush, except the last row group's run: it becomes the carry.
        const long long next = __shfl_down_sync(kFull, my, static_cast<unsigned>(G));
        if (rg != R - 1 && next != my && my >= 0 && col_ok) p.flush(my, cv, v);
        cidx = __shfl_sync(kFull, my, last_lane);
#pragma unroll
        for (int k = 0; k < V; ++k) cacc[k] = __shfl_sync(kFull, v[k], last_lane);
      }
    }
    if (rg == 0 && cidx >= 0 && col_ok) p.flush(cidx, cv, cacc);
  }
}

// ptr[s] = first position of the sorted index with a value >= s, for s in [0, S].
__global__ void csr_ptr_kernel(const int64_t* __restrict__ sorted, int64_t N, int64_t S, int64_t* __restrict__ ptr) {
  for (int64_t s = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; s <= S;
       s += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t lo = 0, hi = N;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (sorted[mid] < s) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    ptr[s] = lo;
  }
}

// ---------------------------------------------------------------------------------------------
// Host side
// ---------------------------------------------------------------------------------------------

int num_sms() {
  int device = 0;
  C10_CUDA_CHECK(cudaGetDevice(&device));
  int sms = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  return sms > 0 ? sms : 1;
}

// The CPU kernel's ValueError for an entry of index outside [0, S), from min and max of index.
void raise_for_range(int64_t lo, int64_t hi, int64_t S) {
  TORCH_CHECK_VALUE(lo >= 0, "index has a negative entry (", lo, "); entries must lie in [0, ", S, ")");
  TORCH_CHECK_VALUE(hi < S, "index has an entry ", hi, " out of range: entries must lie in [0, ", S, ")");
}

// Raises unless every entry of index (on the GPU) lies in [0, S). One device sync.
void check_index_range(const at::Tensor& index, int64_t S) {
  if (index.numel() == 0) return;
  const auto mm = at::aminmax(index);
  const at::Tensor both = at::stack({std::get<0>(mm), std::get<1>(mm)}).to(at::kCPU);
  const int64_t* v = both.data_ptr<int64_t>();
  raise_for_range(v[0], v[1], S);
}

// After the runs: raises the range error when a run found an entry out of range. One device sync.
void check_range_flag(const at::Tensor& bad, const at::Tensor& index, int64_t S) {
  if (bad.item<int>() != 0) {
    check_index_range(index, S);
    TORCH_CHECK(false, "geomdl scatter (CUDA): an index entry was flagged out of range but min/max lie in [0, ", S, ")");
  }
}

// Launch geometry of the run kernel: U warp steps of loads in flight (a template argument of the kernel)
// and about `warps_per_sm` warps of work per SM.
struct RunTuning {
  int unroll = kUnroll;
  int64_t warps_per_sm = 128;
};

template <class P, int U = kUnroll>
void launch_run(const P& p, const at::Tensor& index, int64_t N, int64_t S, int64_t Cv, const at::Tensor& bad,
                int64_t warps_per_sm = 128) {
  // N > 0, Cv > 0 (callers return early otherwise).
  int g_log2 = 0;
  while ((int64_t(1) << g_log2) < Cv && g_log2 < 5) ++g_log2;
  const int64_t G = int64_t(1) << g_log2;
  const int64_t R = 32 / G;
  const int64_t tiles = (Cv + G - 1) / G;
  const int64_t step = R * U;
  const int64_t target_units = static_cast<int64_t>(num_sms()) * warps_per_sm;
  int64_t rows = (N / target_units + 1) * tiles;  // rows per chunk ~ N * tiles / target_units (no overflow)
  rows = std::max<int64_t>(rows, step);
  rows = (rows + step - 1) / step * step;
  const int64_t chunks = (N + rows - 1) / rows;
  const int64_t units = chunks * tiles;
  const int64_t warps_per_block = kBlock / 32;
  const int64_t blocks = std::min<int64_t>((units + warps_per_block - 1) / warps_per_block, int64_t(1) << 22);
  segment_run_kernel<P, U><<<static_cast<unsigned int>(std::max<int64_t>(blocks, 1)), kBlock, 0, cuda::stream()>>>(
      p, index.data_ptr<int64_t>(), N, S, Cv, g_log2, tiles, rows, units, bad.data_ptr<int>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// Calls f(std::integral_constant<int, V>()) with the widest vector width V that divides C and the
// alignment of p (float: 4, 2, 1; double: 2, 1).
template <typename scalar_t, typename F>
void with_vector_width(int64_t C, const void* p, F&& f) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if constexpr (std::is_same<scalar_t, float>::value) {
    if (C % 4 == 0 && a % (4 * sizeof(scalar_t)) == 0) {
      f(std::integral_constant<int, 4>());
      return;
    }
  }
  if (C % 2 == 0 && a % (2 * sizeof(scalar_t)) == 0) {
    f(std::integral_constant<int, 2>());
    return;
  }
  f(std::integral_constant<int, 1>());
}

struct Csr {
  at::Tensor perm;  // [N] rows in (segment, row) order
  at::Tensor ptr;   // [S + 1]
};

// CSR of index by a stable sort; raises the range error (the sorted ends give min and max). N > 0.
Csr build_csr(const at::Tensor& index, int64_t S) {
  const int64_t N = index.numel();
  auto sorted = at::sort(index, /*stable=*/std::optional<bool>(true), /*dim=*/0, /*descending=*/false);
  const at::Tensor vals = std::get<0>(sorted).contiguous();
  const at::Tensor perm = std::get<1>(sorted).contiguous();
  const at::Tensor ends = at::cat({vals.slice(0, 0, 1), vals.slice(0, N - 1, N)}).to(at::kCPU);
  const int64_t* e = ends.data_ptr<int64_t>();
  raise_for_range(e[0], e[1], S);
  at::Tensor ptr = at::empty({S + 1}, index.options());
  csr_ptr_kernel<<<cuda::blocks_for(S + 1), cuda::kThreads, 0, cuda::stream()>>>(vals.data_ptr<int64_t>(), N, S,
                                                                                   ptr.data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {perm, ptr};
}

void check_inputs(const at::Tensor& src, const at::Tensor& index, int64_t dim_size) {
  GEOMDL_CHECK_CUDA(src);
  GEOMDL_CHECK_CUDA(index);
  GEOMDL_CHECK_SAME_DEVICE(src, index);
  TORCH_CHECK(src.is_contiguous(), "src must be contiguous");
  TORCH_CHECK(index.is_contiguous(), "index must be contiguous");
  TORCH_CHECK(index.scalar_type() == at::kLong, "index has the wrong dtype");
  TORCH_CHECK(src.scalar_type() == at::kFloat || src.scalar_type() == at::kDouble, "src must be float32 or float64, got ",
              src.scalar_type());
  TORCH_CHECK(src.dim() == 2, "src must be 2-D [N, C]");
  TORCH_CHECK(index.dim() == 1 && index.size(0) == src.size(0), "index must be 1-D with src.size(0) entries");
  TORCH_CHECK(dim_size >= 0, "dim_size must be >= 0");
}

}  // namespace
}  // namespace geomdl
