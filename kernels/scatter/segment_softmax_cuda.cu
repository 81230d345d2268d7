// CUDA segment softmax (geomdl::segment_softmax): per channel,
//   y_i = exp(x_i - max_s) / sum_{j in s} exp(x_j - max_s)   over the rows i of segment s,
// with the semantics of the CPU kernel (kernels/scatter/scatter_cpu.cpp) and of the reference
// geomdl.ops.segment_softmax_reference: src [N, C] contiguous float32/float64, index [N] int64 in
// [0, dim_size) (else the CPU kernel's ValueError).
//
// Design (the run kernel and the range check: segment_run.cuh)
// ------
// * segment_softmax: pass 1 = the max keys (a NaN gives a NaN max, so the whole segment's channel is
//   NaN, as in the reference and in the CPU kernel, where it spreads through the denominator);
//   pass 2 = den += exp(x - max) with double atomics; pass 3 writes y = exp(x - max) / fl(den)
//   (recomputing the exponential instead of storing it). Empty segments have no rows; an all -inf
//   segment gives NaN, like the reference.
// * Precision: den is accumulated in double (SoftmaxAcc) for float and double inputs, as in the CPU
//   kernel and the reference, and rounded once to the input's type before the division. A float
//   running sum of a segment of n rows errs by up to ~n/2 ulps (1e-4 relative at n = 1e5); the double
//   one stays within about one float ulp for any n < 2^29. Double atomicAdd is native since sm_60 and
//   the run kernel flushes one atomic per run of equal index (rare for a sorted index), so the cost
//   is mostly the wider den buffer and the loss of the 16-byte red.global.add.v4.f32 on random
//   indices; a compensated float sum would need two floats per atomic (not one atomic operation).
//
// Deterministic mode (torch.use_deterministic_algorithms(True)): no floating-point atomics: one thread
// per (segment, column vector) takes the rows of its segment in row order (CSR of the stably sorted
// index): max, sum of exponentials (in double), then the outputs.
#include <torch/library.h>

#include <cstdint>

#include "common/cuda_utils.cuh"
#include "scatter/segment_run.cuh"
#include "scatter/vector_ops.cuh"

namespace geomdl {
namespace {

// Accumulator of the denominators (see the header comment).
using SoftmaxAcc = double;

// den[s, c] += exp(src[i, c] - max_s) with max_s = key_value(keys[s, c]), summed in SoftmaxAcc.
template <typename scalar_t_, int V_>
struct SoftmaxDenPolicy {
  using scalar_t = scalar_t_;
  using T = SoftmaxAcc;
  using K = typename KeyTraits<scalar_t_>::K;
  static constexpr int V = V_;
  static constexpr bool kLoadsSrc = true;
  const scalar_t* __restrict__ src;
  const K* __restrict__ keys;
  T* __restrict__ den;
  int64_t C;
  __device__ T identity() const { return T(0); }
  __device__ static T combine(T a, T b) { return a + b; }
  __device__ void load_src(int64_t row, int64_t cv, scalar_t (&x)[V]) const {
    load_vec<scalar_t, V, false>(src + row * C + cv * V, x);
  }
  __device__ void value(long long s, int64_t, int64_t cv, const scalar_t (&x)[V], T (&v)[V]) const {
    const K* kp = keys + s * C + cv * V;
#pragma unroll
    for (int k = 0; k < V; ++k) v[k] = static_cast<T>(exp_of(x[k] - key_value<scalar_t>(kp[k])));
  }
  __device__ void flush(long long s, int64_t cv, const T (&v)[V]) const { atomic_add_vec<V>(den + s * C + cv * V, v); }
};

// y[i, c] = exp(x[i, c] - max_s) / fl(den[s, c]), s = index[i] (0 for an out-of-range entry: the op
// then raises anyway); fl rounds the double sum to scalar_t.
template <typename scalar_t, int V>
__global__ void softmax_out_kernel(const scalar_t* __restrict__ src, const int64_t* __restrict__ index,
                                   const typename KeyTraits<scalar_t>::K* __restrict__ keys,
                                   const SoftmaxAcc* __restrict__ den, int64_t N, int64_t S, int64_t C, int64_t Cv,
                                   scalar_t* __restrict__ y) {
  const int64_t total = N * Cv;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = t / Cv;
    const int64_t cv = t - row * Cv;
    const int64_t s = index[row];
    scalar_t x[V];
    load_vec<scalar_t, V, true>(src + row * C + cv * V, x);
    if (s >= 0 && s < S) {
      const int64_t o = s * C + cv * V;
#pragma unroll
      for (int k = 0; k < V; ++k)
        x[k] = exp_of(x[k] - key_value<scalar_t>(keys[o + k])) / static_cast<scalar_t>(den[o + k]);
    } else {
#pragma unroll
      for (int k = 0; k < V; ++k) x[k] = scalar_t(0);
    }
    store_vec<scalar_t, V>(y + row * C + cv * V, x);
  }
}
// Segment softmax of segment s, column vector cv, its rows in row order: max, sum of exponentials,
// then the outputs.
template <typename scalar_t, int V>
__global__ void csr_softmax_kernel(const scalar_t* __restrict__ src, const int64_t* __restrict__ perm,
                                   const int64_t* __restrict__ ptr, int64_t S, int64_t C, int64_t Cv,
                                   scalar_t* __restrict__ y) {
  using K = typename KeyTraits<scalar_t>::K;
  const int64_t total = S * Cv;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t s = t / Cv;
    const int64_t cv = t - s * Cv;
    const int64_t k0 = ptr[s], k1 = ptr[s + 1];
    if (k0 == k1) continue;
    K mk[V];
#pragma unroll
    for (int j = 0; j < V; ++j) mk[j] = key_identity<scalar_t, true>();
    for (int64_t k = k0; k < k1; ++k) {
      scalar_t x[V];
      load_vec<scalar_t, V, false>(src + perm[k] * C + cv * V, x);
#pragma unroll
      for (int j = 0; j < V; ++j) mk[j] = key_max(mk[j], key_of<scalar_t, true>(x[j]));
    }
    scalar_t m[V];
    SoftmaxAcc acc[V];
#pragma unroll
    for (int j = 0; j < V; ++j) {
      m[j] = key_value<scalar_t>(mk[j]);
      acc[j] = SoftmaxAcc(0);
    }
    for (int64_t k = k0; k < k1; ++k) {
      scalar_t x[V];
      load_vec<scalar_t, V, false>(src + perm[k] * C + cv * V, x);
#pragma unroll
      for (int j = 0; j < V; ++j) acc[j] = acc[j] + static_cast<SoftmaxAcc>(exp_of(x[j] - m[j]));
    }
    scalar_t den[V];
#pragma unroll
    for (int j = 0; j < V; ++j) den[j] = static_cast<scalar_t>(acc[j]);
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t row = perm[k];
      scalar_t x[V];
      load_vec<scalar_t, V, false>(src + row * C + cv * V, x);
#pragma unroll
      for (int j = 0; j < V; ++j) x[j] = exp_of(x[j] - m[j]) / den[j];
      store_vec<scalar_t, V>(y + row * C + cv * V, x);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Host side
// ---------------------------------------------------------------------------------------------

template <typename scalar_t>
void segment_softmax_impl(const at::Tensor& src, const at::Tensor& index, int64_t N, int64_t S, int64_t C, at::Tensor& y) {
  if (at::globalContext().deterministicAlgorithms()) {
    const Csr csr = build_csr(index, S);  // raises for an out-of-range entry
    with_vector_width<scalar_t>(C, src.data_ptr(), [&](auto vt) {
      constexpr int V = decltype(vt)::value;
      const int64_t Cv = C / V;
      csr_softmax_kernel<scalar_t, V><<<cuda::blocks_for(S * Cv), cuda::kThreads, 0, cuda::stream()>>>(
          src.data_ptr<scalar_t>(), csr.perm.data_ptr<int64_t>(), csr.ptr.data_ptr<int64_t>(), S, C, Cv,
          y.data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
    return;
  }
  using K = typename KeyTraits<scalar_t>::K;
  const auto key_dtype = sizeof(K) == 4 ? at::kInt : at::kLong;
  at::Tensor keys = at::zeros({S, C}, src.options().dtype(key_dtype));  // the identity of max keys
  at::Tensor den = at::zeros({S, C}, src.options().dtype(at::kDouble));  // SoftmaxAcc
  at::Tensor bad = at::zeros({1}, src.options().dtype(at::kInt));
  K* keys_ptr = reinterpret_cast<K*>(keys.data_ptr());
  with_vector_width<scalar_t>(C, src.data_ptr(), [&](auto vt) {
    constexpr int V = decltype(vt)::value;
    const int64_t Cv = C / V;
    launch_run(KeyPolicy<scalar_t, V, true>{src.data_ptr<scalar_t>(), keys_ptr, C}, index, N, S, Cv, bad);
    launch_run(SoftmaxDenPolicy<scalar_t, V>{src.data_ptr<scalar_t>(), keys_ptr, den.data_ptr<SoftmaxAcc>(), C}, index, N,
               S, Cv, bad);
    softmax_out_kernel<scalar_t, V><<<cuda::blocks_for(N * Cv), cuda::kThreads, 0, cuda::stream()>>>(
        src.data_ptr<scalar_t>(), index.data_ptr<int64_t>(), keys_ptr, den.data_ptr<SoftmaxAcc>(), N, S, C, Cv,
        y.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  check_range_flag(bad, index, S);
}

// softmax within segments: y_i = exp(x_i - max_s) / sum_{j in s} exp(x_j - max_s), per channel.
at::Tensor segment_softmax_cuda(const at::Tensor& src, const at::Tensor& index, int64_t dim_size) {
  check_inputs(src, index, dim_size);
  const c10::cuda::CUDAGuard guard(src.device());
  const int64_t N = src.size(0), C = src.size(1), S = dim_size;
  at::Tensor y = at::empty_like(src);  // src is contiguous
  if (N > 0 && (S == 0 || C == 0)) check_index_range(index, S);  // no run below reads index (S == 0: always raises)
  if (N == 0 || C == 0 || S == 0) return y;
  AT_DISPATCH_FLOATING_TYPES(src.scalar_type(), "geomdl_segment_softmax_cuda",
                             [&] { segment_softmax_impl<scalar_t>(src, index, N, S, C, y); });
  return y;
}

}  // namespace

TORCH_LIBRARY_IMPL(geomdl, CUDA, m) { m.impl("segment_softmax", &segment_softmax_cuda); }

}  // namespace geomdl
