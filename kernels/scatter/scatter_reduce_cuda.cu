// CUDA scatter reductions (geomdl::scatter_reduce).
//
// Semantics are those of the CPU kernel (kernels/scatter/scatter_cpu.cpp) and of the reference
// geomdl.ops.scatter_reference: src [N, C] contiguous float32/float64,
// index [N] int64 in [0, dim_size); empty segments give 0 (sum, mean, max, min); mean divides the
// sum by the count; max/min return in `arg` the row of the FIRST maximum/minimum in row order (N for
// an empty segment), NaN counting as the extreme (the first NaN row wins), and the output value is
// src[arg] (bit for bit the value of that row, e.g. the sign of a zero). Entries of index outside
// [0, dim_size) raise the ValueError of the CPU kernel (same text).
//
// Design (the run kernel, its policies and the range check: segment_run.cuh)
// ------
// * sum:  one run (float atomics into a zeroed out). mean: + a run counting rows per segment
//   (integer atomics) + a division kernel (divide, not multiply by 1/n, like the reference).
// * max/min: pass 1 runs an integer atomicMax/atomicMin on order-preserving keys of the values
//   (sign-aware bit trick; -0 and +0 share a key; NaN gets the extreme key so that it wins); pass 2
//   runs an atomicMin of the row index over the rows whose key equals their segment's key (first
//   row attaining the extreme, N when none); pass 3 gathers out = src[arg] (0 for arg == N). Only
//   integer atomics: the results are deterministic.
//
// Deterministic mode (torch.use_deterministic_algorithms(True)): sum and mean avoid floating-point
// atomics: one thread per (segment, column vector) reduces the rows of the segment (CSR of the stably
// sorted index, segment_run.cuh) in row order: the plain row-order sum, bit for bit the same on every
// run (float64: the same order and bits as the sequential CPU reference; float32 differs, the CPU kernel and
// the reference accumulate in float64). max/min use only integer atomics,
// already deterministic.
#include <torch/library.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <tuple>

#include "common/cuda_utils.cuh"
#include "scatter/reduce.h"
#include "scatter/segment_run.cuh"
#include "scatter/vector_ops.cuh"

namespace geomdl {
namespace {

// ---------------------------------------------------------------------------------------------
// Policies of the run kernel (interface: segment_run.cuh)
// ---------------------------------------------------------------------------------------------

template <typename scalar_t_, int V_>
struct SumPolicy {
  using scalar_t = scalar_t_;
  using T = scalar_t_;
  static constexpr int V = V_;
  static constexpr bool kLoadsSrc = true;
  const scalar_t* __restrict__ src;
  scalar_t* __restrict__ out;
  int64_t C;
  __device__ T identity() const { return T(0); }
  __device__ static T combine(T a, T b) { return a + b; }
  __device__ void load_src(int64_t row, int64_t cv, scalar_t (&x)[V]) const {
    load_vec<scalar_t, V, true>(src + row * C + cv * V, x);
  }
  __device__ void value(long long, int64_t, int64_t, const scalar_t (&x)[V], T (&v)[V]) const {
#pragma unroll
    for (int k = 0; k < V; ++k) v[k] = x[k];
  }
  __device__ void flush(long long s, int64_t cv, const T (&v)[V]) const { atomic_add_vec<V>(out + s * C + cv * V, v); }
};

// counts[s] += number of rows of segment s (run with Cv = 1).
struct CountPolicy {
  using scalar_t = float;  // unused (no src)
  using T = unsigned long long;
  static constexpr int V = 1;
  static constexpr bool kLoadsSrc = false;
  unsigned long long* __restrict__ counts;
  __device__ T identity() const { return T(0); }
  __device__ static T combine(T a, T b) { return a + b; }
  __device__ void value(long long, int64_t, int64_t, const scalar_t (&)[V], T (&v)[V]) const { v[0] = 1; }
  __device__ void flush(long long s, int64_t, const T (&v)[V]) const { atomicAdd(counts + s, v[0]); }
};

// starts at N): the first row attaining the extreme.
template <typename scalar_t_, int V_, bool kMax>
struct ArgPolicy {
  using scalar_t = scalar_t_;
  using T = long long;
  using K = typename KeyTraits<scalar_t_>::K;
  static constexpr int V = V_;
  static constexpr bool kLoadsSrc = true;
  const scalar_t* __restrict__ src;
  const K* __restrict__ keys;
  long long* __restrict__ arg;
  int64_t C;
  long long n;
  __device__ T identity() const { return n; }
  __device__ static T combine(T a, T b) { return a < b ? a : b; }
  __device__ void load_src(int64_t row, int64_t cv, scalar_t (&x)[V]) const {
    load_vec<scalar_t, V, false>(src + row * C + cv * V, x);
  }
  __device__ void value(long long s, int64_t row, int64_t cv, const scalar_t (&x)[V], T (&v)[V]) const {
    const K* kp = keys + s * C + cv * V;
#pragma unroll
    for (int k = 0; k < V; ++k) v[k] = key_of<scalar_t, kMax>(x[k]) == kp[k] ? static_cast<long long>(row) : n;
  }
  __device__ void flush(long long s, int64_t cv, const T (&v)[V]) const {
    long long* p = arg + s * C + cv * V;
#pragma unroll
    for (int k = 0; k < V; ++k)
      if (v[k] < n) atomicMin(p + k, v[k]);
  }
};

// ---------------------------------------------------------------------------------------------
// Element-wise kernels
// ---------------------------------------------------------------------------------------------

// out[s, :] /= counts[s] where counts[s] > 0.
template <typename scalar_t>
__global__ void mean_divide_kernel(scalar_t* __restrict__ out, const int64_t* __restrict__ counts, int64_t S, int64_t C) {
  const int64_t total = S * C;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t n = counts[t / C];
    if (n > 0) out[t] = out[t] / static_cast<scalar_t>(n);
  }
}

// out[s, c] = src[arg[s, c], c], or 0 where arg == N (empty segment).
template <typename scalar_t>
__global__ void gather_arg_kernel(const scalar_t* __restrict__ src, const int64_t* __restrict__ arg, int64_t N, int64_t S,
                                  int64_t C, scalar_t* __restrict__ out) {
  const int64_t total = S * C;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t a = arg[t];
    const int64_t c = t - (t / C) * C;
    out[t] = (a >= 0 && a < N) ? src[a * C + c] : scalar_t(0);
  }
}

// Deterministic path (one thread per (segment, column vector)):
// out[s, cv] = sum of the rows of segment s in row order, starting from 0 (divided by the count for
// kMean; 0 for an empty segment).
template <typename scalar_t, int V, bool kMean>
__global__ void csr_sum_kernel(const scalar_t* __restrict__ src, const int64_t* __restrict__ perm,
                               const int64_t* __restrict__ ptr, int64_t S, int64_t C, int64_t Cv,
                               scalar_t* __restrict__ out) {
  const int64_t total = S * Cv;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t s = t / Cv;
    const int64_t cv = t - s * Cv;
    const int64_t k0 = ptr[s], k1 = ptr[s + 1];
    scalar_t acc[V];
#pragma unroll
    for (int j = 0; j < V; ++j) acc[j] = scalar_t(0);
    int64_t k = k0;
    for (; k + kUnroll <= k1; k += kUnroll) {  // loads of kUnroll rows in flight, added in order
      scalar_t x[kUnroll][V];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) load_vec<scalar_t, V, false>(src + perm[k + u] * C + cv * V, x[u]);
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
#pragma unroll
        for (int j = 0; j < V; ++j) acc[j] = acc[j] + x[u][j];
    }
    for (; k < k1; ++k) {
      scalar_t x[V];
      load_vec<scalar_t, V, false>(src + perm[k] * C + cv * V, x);
#pragma unroll
      for (int j = 0; j < V; ++j) acc[j] = acc[j] + x[j];
    }
    if (kMean && k1 > k0) {
      const scalar_t n = static_cast<scalar_t>(k1 - k0);
#pragma unroll
      for (int j = 0; j < V; ++j) acc[j] = acc[j] / n;
    }
    store_vec<scalar_t, V>(out + s * C + cv * V, acc);
  }
}

// ---------------------------------------------------------------------------------------------
// Host side
// ---------------------------------------------------------------------------------------------

template <typename scalar_t, bool kMax>
void scatter_minmax(const at::Tensor& src, const at::Tensor& index, int64_t N, int64_t S, int64_t C, at::Tensor& out,
                    at::Tensor& arg) {
  using K = typename KeyTraits<scalar_t>::K;
  static_assert(sizeof(K) == 4 || sizeof(K) == 8, "key size");
  const auto key_dtype = sizeof(K) == 4 ? at::kInt : at::kLong;
  // Identity keys: 0 for max, all ones (-1) for min.
  at::Tensor keys = at::full({S, C}, kMax ? 0 : -1, src.options().dtype(key_dtype));
  at::Tensor bad = at::zeros({1}, src.options().dtype(at::kInt));
  arg.fill_(N);
  K* keys_ptr = reinterpret_cast<K*>(keys.data_ptr());
  with_vector_width<scalar_t>(C, src.data_ptr(), [&](auto vt) {
    constexpr int V = decltype(vt)::value;
    const int64_t Cv = C / V;
    launch_run(KeyPolicy<scalar_t, V, kMax>{src.data_ptr<scalar_t>(), keys_ptr, C}, index, N, S, Cv, bad);
    launch_run(ArgPolicy<scalar_t, V, kMax>{src.data_ptr<scalar_t>(), keys_ptr,
                                            reinterpret_cast<long long*>(arg.data_ptr<int64_t>()), C,
                                            static_cast<long long>(N)},
               index, N, S, Cv, bad);
  });
  gather_arg_kernel<scalar_t><<<cuda::blocks_for(S * C), cuda::kThreads, 0, cuda::stream()>>>(
      src.data_ptr<scalar_t>(), arg.data_ptr<int64_t>(), N, S, C, out.data_ptr<scalar_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  check_range_flag(bad, index, S);
}

// The scatter-sum tuning: defaults, or GEOMDL_SCATTER_TUNING="U,W" (U in {4, 8}, W in [8, 4096]) for
// measuring other launch geometries (benchmarks/ops_cuda.py times several in one run).
RunTuning scatter_sum_tuning() {
  RunTuning t;
  const char* env = std::getenv("GEOMDL_SCATTER_TUNING");
  if (env == nullptr || *env == '\0') return t;
  int u = 0;
  long long w = 0;
  char tail = 0;
  const int got = std::sscanf(env, "%d,%lld%c", &u, &w, &tail);
  TORCH_CHECK_VALUE(got == 2 && (u == 4 || u == 8) && w >= 8 && w <= 4096,
                    "GEOMDL_SCATTER_TUNING must be 'U,W' with U in {4, 8} and W in [8, 4096], got '", env, "'");
  t.unroll = u;
  t.warps_per_sm = w;
  return t;
}

template <typename scalar_t>
void scatter_sum_mean(const at::Tensor& src, const at::Tensor& index, int64_t N, int64_t S, int64_t C, bool mean,
                      at::Tensor& out) {
  if (at::globalContext().deterministicAlgorithms()) {
    const Csr csr = build_csr(index, S);  // raises for an out-of-range entry
    with_vector_width<scalar_t>(C, src.data_ptr(), [&](auto vt) {
      constexpr int V = decltype(vt)::value;
      const int64_t Cv = C / V;
      const unsigned int blocks = cuda::blocks_for(S * Cv);
      if (mean) {
        csr_sum_kernel<scalar_t, V, true><<<blocks, cuda::kThreads, 0, cuda::stream()>>>(
            src.data_ptr<scalar_t>(), csr.perm.data_ptr<int64_t>(), csr.ptr.data_ptr<int64_t>(), S, C, Cv,
            out.data_ptr<scalar_t>());
      } else {
        csr_sum_kernel<scalar_t, V, false><<<blocks, cuda::kThreads, 0, cuda::stream()>>>(
            src.data_ptr<scalar_t>(), csr.perm.data_ptr<int64_t>(), csr.ptr.data_ptr<int64_t>(), S, C, Cv,
            out.data_ptr<scalar_t>());
      }
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
    return;
  }
  out.zero_();
  at::Tensor bad = at::zeros({1}, src.options().dtype(at::kInt));
  const RunTuning tune = scatter_sum_tuning();
  with_vector_width<scalar_t>(C, src.data_ptr(), [&](auto vt) {
    constexpr int V = decltype(vt)::value;
    const SumPolicy<scalar_t, V> policy{src.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), C};
    if (tune.unroll == 8) {
      launch_run<SumPolicy<scalar_t, V>, 8>(policy, index, N, S, C / V, bad, tune.warps_per_sm);
    } else {
      launch_run(policy, index, N, S, C / V, bad, tune.warps_per_sm);
    }
  });
  if (mean) {
    at::Tensor counts = at::zeros({S}, index.options());
    launch_run(CountPolicy{reinterpret_cast<unsigned long long*>(counts.data_ptr<int64_t>())}, index, N, S, 1, bad);
    mean_divide_kernel<scalar_t><<<cuda::blocks_for(S * C), cuda::kThreads, 0, cuda::stream()>>>(
        out.data_ptr<scalar_t>(), counts.data_ptr<int64_t>(), S, C);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  check_range_flag(bad, index, S);
}

std::tuple<at::Tensor, at::Tensor> scatter_reduce_cuda(const at::Tensor& src, const at::Tensor& index, int64_t dim_size,
                                                       c10::string_view reduce_name) {
  check_inputs(src, index, dim_size);
  const Reduce reduce = parse_reduce(std::string(reduce_name));
  const c10::cuda::CUDAGuard guard(src.device());
  const int64_t N = src.size(0), C = src.size(1), S = dim_size;
  const bool is_minmax = reduce == Reduce::Max || reduce == Reduce::Min;
  at::Tensor out = at::empty({S, C}, src.options());
  at::Tensor arg = is_minmax ? at::empty({S, C}, index.options()) : at::empty({0}, index.options());
  if (N > 0 && (S == 0 || C == 0)) check_index_range(index, S);  // no run below reads index
  if (S == 0) return {out, arg};
  if (N == 0 || C == 0) {
    out.zero_();
    if (is_minmax) arg.fill_(N);
    return {out, arg};
  }
  AT_DISPATCH_FLOATING_TYPES(src.scalar_type(), "geomdl_scatter_reduce_cuda", [&] {
    switch (reduce) {
      case Reduce::Sum:
        scatter_sum_mean<scalar_t>(src, index, N, S, C, false, out);
        break;
      case Reduce::Mean:
        scatter_sum_mean<scalar_t>(src, index, N, S, C, true, out);
        break;
      case Reduce::Max:
        scatter_minmax<scalar_t, true>(src, index, N, S, C, out, arg);
        break;
      case Reduce::Min:
        scatter_minmax<scalar_t, false>(src, index, N, S, C, out, arg);
        break;
    }
  });
  return {out, arg};
}
}  // namespace

TORCH_LIBRARY_IMPL(geomdl, CUDA, m) { m.impl("scatter_reduce", &scatter_reduce_cuda); }

}  // namespace geomdl
