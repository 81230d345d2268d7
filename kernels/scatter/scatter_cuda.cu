// CUDA scatter reductions (geomdl::scatter_reduce) and segment softmax (geomdl::segment_softmax).
//
// Semantics are those of the CPU kernel (kernels/scatter/scatter_cpu.cpp) and of the references
// geomdl.ops.scatter_reference / segment_softmax_reference: src [N, C] contiguous float32/float64,
// index [N] int64 in [0, dim_size); empty segments give 0 (sum, mean, max, min); mean divides the
// sum by the count; max/min return in `arg` the row of the FIRST maximum/minimum in row order (N for
// an empty segment), NaN counting as the extreme (the first NaN row wins), and the output value is
// src[arg] (bit for bit the value of that row, e.g. the sign of a zero). Entries of index outside
// [0, dim_size) raise the ValueError of the CPU kernel (same text).
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
//   for float with V = 4). Loads of kUnroll steps are issued before they are combined.
//   Chunk sizes are chosen from N, C and the number of SMs (~128 warps of work per SM).
// * sum:  one run (float atomics into a zeroed out). mean: + a run counting rows per segment
//   (integer atomics) + a division kernel (divide, not multiply by 1/n, like the reference).
// * max/min: pass 1 runs an integer atomicMax/atomicMin on order-preserving keys of the values
//   (sign-aware bit trick; -0 and +0 share a key; NaN gets the extreme key so that it wins); pass 2
//   runs an atomicMin of the row index over the rows whose key equals their segment's key (first
//   row attaining the extreme, N when none); pass 3 gathers out = src[arg] (0 for arg == N). Only
//   integer atomics: the results are deterministic.
// * segment_softmax: pass 1 = the max keys (a NaN gives a NaN max, so the whole segment's channel is
//   NaN, as in the reference and in the CPU kernel, where it spreads through the denominator);
//   pass 2 = den += exp(x - max) with float atomics; pass 3 writes y = exp(x - max) / den
//   (recomputing the exponential instead of storing it). Empty segments have no rows; an all -inf
//   segment gives NaN, like the reference.
// * Index range: the runs check every entry they read and raise a device flag (the row is then
//   skipped); the flag is read once at the end (one device sync) and, when set, min/max of the index
//   (at::aminmax) give the CPU kernel's error message. No out-of-range address is ever touched.
//
// Deterministic mode (torch.use_deterministic_algorithms(True)): sum, mean and segment_softmax avoid
// floating-point atomics: the index is sorted stably (at::sort(stable=true): rows of a segment keep
// their order), a CSR pointer is found by binary search, and one thread per (segment, column
// vector) reduces its rows in row order: sum/mean give the plain row-order sum, bit for bit the same
// on every run (and the same summation order as the sequential CPU reference). max/min use only
// integer atomics, already deterministic. The range check then uses the sorted index's ends.
#include <torch/library.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>

#include "common/cuda_utils.cuh"
#include "scatter/reduce.h"

namespace geomdl {
namespace {

constexpr int kBlock = 256;    // threads per block of the run kernels (8 warps)
constexpr int kUnroll = 4;     // warp steps whose loads are issued together
constexpr unsigned kFull = 0xffffffffu;

// ---------------------------------------------------------------------------------------------
// Device helpers
// ---------------------------------------------------------------------------------------------

__device__ __forceinline__ float exp_of(float x) { return expf(x); }
__device__ __forceinline__ double exp_of(double x) { return exp(x); }

// V consecutive elements at p (aligned to V elements). kStream: read once (evict first).
template <typename scalar_t, int V, bool kStream>
__device__ __forceinline__ void load_vec(const scalar_t* __restrict__ p, scalar_t (&x)[V]) {
  if constexpr (V == 1) {
    x[0] = kStream ? __ldcs(p) : __ldg(p);
  } else if constexpr (std::is_same<scalar_t, float>::value && V == 4) {
    const float4* q = reinterpret_cast<const float4*>(p);
    const float4 t = kStream ? __ldcs(q) : __ldg(q);
    x[0] = t.x;
    x[1] = t.y;
    x[2] = t.z;
    x[3] = t.w;
  } else if constexpr (std::is_same<scalar_t, float>::value && V == 2) {
    const float2* q = reinterpret_cast<const float2*>(p);
    const float2 t = kStream ? __ldcs(q) : __ldg(q);
    x[0] = t.x;
    x[1] = t.y;
  } else if constexpr (std::is_same<scalar_t, double>::value && V == 2) {
    const double2* q = reinterpret_cast<const double2*>(p);
    const double2 t = kStream ? __ldcs(q) : __ldg(q);
    x[0] = t.x;
    x[1] = t.y;
  } else {
    static_assert(V == 1, "unsupported vector width");
  }
}

template <typename scalar_t, int V>
__device__ __forceinline__ void store_vec(scalar_t* __restrict__ p, const scalar_t (&x)[V]) {
  if constexpr (V == 1) {
    p[0] = x[0];
  } else if constexpr (std::is_same<scalar_t, float>::value && V == 4) {
    *reinterpret_cast<float4*>(p) = make_float4(x[0], x[1], x[2], x[3]);
  } else if constexpr (std::is_same<scalar_t, float>::value && V == 2) {
    *reinterpret_cast<float2*>(p) = make_float2(x[0], x[1]);
  } else if constexpr (std::is_same<scalar_t, double>::value && V == 2) {
    *reinterpret_cast<double2*>(p) = make_double2(x[0], x[1]);
  } else {
    static_assert(V == 1, "unsupported vector width");
  }
}

// p[k] += v[k] atomically (per element), p aligned to V elements.
template <int V>
__device__ __forceinline__ void atomic_add_vec(float* p, const float (&v)[V]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if constexpr (V == 4) {
    asm volatile("red.global.add.v4.f32 [%0], {%1, %2, %3, %4};" ::"l"(__cvta_generic_to_global(p)), "f"(v[0]), "f"(v[1]),
                 "f"(v[2]), "f"(v[3])
                 : "memory");
  } else if constexpr (V == 2) {
    asm volatile("red.global.add.v2.f32 [%0], {%1, %2};" ::"l"(__cvta_generic_to_global(p)), "f"(v[0]), "f"(v[1]) : "memory");
  } else {
#pragma unroll
    for (int k = 0; k < V; ++k) atomicAdd(p + k, v[k]);
  }
#else
#pragma unroll
  for (int k = 0; k < V; ++k) atomicAdd(p + k, v[k]);
#endif
}

template <int V>
__device__ __forceinline__ void atomic_add_vec(double* p, const double (&v)[V]) {
#pragma unroll
  for (int k = 0; k < V; ++k) atomicAdd(p + k, v[k]);
}

// Order-preserving unsigned keys of floating values: key(a) < key(b) <=> a < b for non-NaN a, b;
// -0 and +0 get the key of +0 (they compare equal); NaN gets the extreme key (the largest for max,
// the smallest for min), which no number has. key(a) == key(b) <=> a == b or both NaN.
template <typename scalar_t>
struct KeyTraits;

template <>
struct KeyTraits<float> {
  using K = unsigned int;
  static constexpr K kSign = 0x80000000u;
  __device__ static K bits(float x) { return __float_as_uint(x); }
  __device__ static float from_bits(K b) { return __uint_as_float(b); }
};

template <>
struct KeyTraits<double> {
  using K = unsigned long long;
  static constexpr K kSign = 0x8000000000000000ull;
  __device__ static K bits(double x) { return static_cast<K>(__double_as_longlong(x)); }
  __device__ static double from_bits(K b) { return __longlong_as_double(static_cast<long long>(b)); }
};

// The key no number has that a reduction starts from (and an empty segment keeps): 0 for max,
// all ones for min. NaN gets the opposite one.
template <typename scalar_t, bool kMax>
__device__ __forceinline__ typename KeyTraits<scalar_t>::K key_identity() {
  using K = typename KeyTraits<scalar_t>::K;
  return kMax ? K(0) : ~K(0);
}

template <typename scalar_t, bool kMax>
__device__ __forceinline__ typename KeyTraits<scalar_t>::K key_of(scalar_t x) {
  using Tr = KeyTraits<scalar_t>;
  using K = typename Tr::K;
  if (isnan(x)) return kMax ? ~K(0) : K(0);
  const K b = x == scalar_t(0) ? K(0) : Tr::bits(x);  // -0 -> +0
  return (b & Tr::kSign) ? ~b : (b | Tr::kSign);
}

// Inverse of key_of (the all-ones max key decodes to a NaN).
template <typename scalar_t>
__device__ __forceinline__ scalar_t key_value(typename KeyTraits<scalar_t>::K k) {
  using Tr = KeyTraits<scalar_t>;
  return Tr::from_bits((k & Tr::kSign) ? (k & ~Tr::kSign) : ~k);
}

__device__ __forceinline__ unsigned int key_max(unsigned int a, unsigned int b) { return a > b ? a : b; }
__device__ __forceinline__ unsigned int key_min(unsigned int a, unsigned int b) { return a < b ? a : b; }
__device__ __forceinline__ unsigned long long key_max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
__device__ __forceinline__ unsigned long long key_min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }

// ---------------------------------------------------------------------------------------------
// Policies of the run kernel. Each defines
//   T, scalar_t, V, kLoadsSrc;
//   identity()                       value of "no row";
//   combine(a, b)                    associative reduction (a from earlier rows);
//   load_src(row, cv, x)             the V src values of (row, column vector cv) (if kLoadsSrc);
//   value(s, row, cv, x, v)          the V values to reduce of a row of segment s;
//   flush(s, cv, v)                  atomically reduce v into the output of segment s.
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

// den[s, c] += exp(src[i, c] - max_s) with max_s = key_value(keys[s, c]).
template <typename scalar_t_, int V_>
struct SoftmaxDenPolicy {
  using scalar_t = scalar_t_;
  using T = scalar_t_;
  using K = typename KeyTraits<scalar_t_>::K;
  static constexpr int V = V_;
  static constexpr bool kLoadsSrc = true;
  const scalar_t* __restrict__ src;
  const K* __restrict__ keys;
  scalar_t* __restrict__ den;
  int64_t C;
  __device__ T identity() const { return T(0); }
  __device__ static T combine(T a, T b) { return a + b; }
  __device__ void load_src(int64_t row, int64_t cv, scalar_t (&x)[V]) const {
    load_vec<scalar_t, V, false>(src + row * C + cv * V, x);
  }
  __device__ void value(long long s, int64_t, int64_t cv, const scalar_t (&x)[V], T (&v)[V]) const {
    const K* kp = keys + s * C + cv * V;
#pragma unroll
    for (int k = 0; k < V; ++k) v[k] = exp_of(x[k] - key_value<scalar_t>(kp[k]));
  }
  __device__ void flush(long long s, int64_t cv, const T (&v)[V]) const { atomic_add_vec<V>(den + s * C + cv * V, v); }
};

// ---------------------------------------------------------------------------------------------
// The run kernel (see the header comment). Work units: (row chunk, column tile), one per warp at a
// time (grid-stride over units). All branches around the shuffles are warp-uniform.
// ---------------------------------------------------------------------------------------------

template <class P>
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
  const int64_t step = static_cast<int64_t>(R) * kUnroll;

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
      long long idx[kUnroll];
      scalar_t x[kUnroll][V];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
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
      for (int u = 0; u < kUnroll; ++u) {
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

// y[i, c] = exp(x[i, c] - max_s) / den[s, c], s = index[i] (0 for an out-of-range entry: the op
// then raises anyway).
template <typename scalar_t, int V>
__global__ void softmax_out_kernel(const scalar_t* __restrict__ src, const int64_t* __restrict__ index,
                                   const typename KeyTraits<scalar_t>::K* __restrict__ keys,
                                   const scalar_t* __restrict__ den, int64_t N, int64_t S, int64_t C, int64_t Cv,
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
      for (int k = 0; k < V; ++k) x[k] = exp_of(x[k] - key_value<scalar_t>(keys[o + k])) / den[o + k];
    } else {
#pragma unroll
      for (int k = 0; k < V; ++k) x[k] = scalar_t(0);
    }
    store_vec<scalar_t, V>(y + row * C + cv * V, x);
  }
}

// ---------------------------------------------------------------------------------------------
// Deterministic path: CSR of the stably sorted index, one thread per (segment, column vector).
// ---------------------------------------------------------------------------------------------

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
    scalar_t m[V], den[V];
#pragma unroll
    for (int j = 0; j < V; ++j) {
      m[j] = key_value<scalar_t>(mk[j]);
      den[j] = scalar_t(0);
    }
    for (int64_t k = k0; k < k1; ++k) {
      scalar_t x[V];
      load_vec<scalar_t, V, false>(src + perm[k] * C + cv * V, x);
#pragma unroll
      for (int j = 0; j < V; ++j) den[j] = den[j] + exp_of(x[j] - m[j]);
    }
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

template <class P>
void launch_run(const P& p, const at::Tensor& index, int64_t N, int64_t S, int64_t Cv, const at::Tensor& bad) {
  // N > 0, Cv > 0 (callers return early otherwise).
  int g_log2 = 0;
  while ((int64_t(1) << g_log2) < Cv && g_log2 < 5) ++g_log2;
  const int64_t G = int64_t(1) << g_log2;
  const int64_t R = 32 / G;
  const int64_t tiles = (Cv + G - 1) / G;
  const int64_t step = R * kUnroll;
  const int64_t target_units = static_cast<int64_t>(num_sms()) * 128;
  int64_t rows = (N / target_units + 1) * tiles;  // rows per chunk ~ N * tiles / target_units (no overflow)
  rows = std::max<int64_t>(rows, step);
  rows = (rows + step - 1) / step * step;
  const int64_t chunks = (N + rows - 1) / rows;
  const int64_t units = chunks * tiles;
  const int64_t warps_per_block = kBlock / 32;
  const int64_t blocks = std::min<int64_t>((units + warps_per_block - 1) / warps_per_block, int64_t(1) << 22);
  segment_run_kernel<P><<<static_cast<unsigned int>(std::max<int64_t>(blocks, 1)), kBlock, 0, cuda::stream()>>>(
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
  with_vector_width<scalar_t>(C, src.data_ptr(), [&](auto vt) {
    constexpr int V = decltype(vt)::value;
    launch_run(SumPolicy<scalar_t, V>{src.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), C}, index, N, S, C / V, bad);
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
  at::Tensor den = at::zeros({S, C}, src.options());
  at::Tensor bad = at::zeros({1}, src.options().dtype(at::kInt));
  K* keys_ptr = reinterpret_cast<K*>(keys.data_ptr());
  with_vector_width<scalar_t>(C, src.data_ptr(), [&](auto vt) {
    constexpr int V = decltype(vt)::value;
    const int64_t Cv = C / V;
    launch_run(KeyPolicy<scalar_t, V, true>{src.data_ptr<scalar_t>(), keys_ptr, C}, index, N, S, Cv, bad);
    launch_run(SoftmaxDenPolicy<scalar_t, V>{src.data_ptr<scalar_t>(), keys_ptr, den.data_ptr<scalar_t>(), C}, index, N, S,
               Cv, bad);
    softmax_out_kernel<scalar_t, V><<<cuda::blocks_for(N * Cv), cuda::kThreads, 0, cuda::stream()>>>(
        src.data_ptr<scalar_t>(), index.data_ptr<int64_t>(), keys_ptr, den.data_ptr<scalar_t>(), N, S, C, Cv,
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
  if (N == 0 || C == 0) return y;
  if (S == 0) {
    check_index_range(index, S);  // raises: no entry lies in [0, 0)
    return y;
  }
  AT_DISPATCH_FLOATING_TYPES(src.scalar_type(), "geomdl_segment_softmax_cuda",
                             [&] { segment_softmax_impl<scalar_t>(src, index, N, S, C, y); });
  return y;
}

}  // namespace

TORCH_LIBRARY_IMPL(geomdl, CUDA, m) {
  m.impl("scatter_reduce", &scatter_reduce_cuda);
  m.impl("segment_softmax", &segment_softmax_cuda);
}

}  // namespace geomdl
