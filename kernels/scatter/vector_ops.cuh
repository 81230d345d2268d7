// Device helpers of the CUDA scatter kernels (segment_run.cuh, scatter_reduce_cuda.cu,
// segment_softmax_cuda.cu): vector loads and stores, vector atomic adds and the order-preserving keys of
// floating values used by max / min (integer atomics only).
//
// Header-only, in an unnamed namespace: every .cu that includes it gets its own copy of these inline
// device functions (the extension is built without relocatable device code).
#pragma once

#include <cstdint>
#include <type_traits>

#include "common/cuda_utils.cuh"

namespace geomdl {
namespace {

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

}  // namespace
}  // namespace geomdl
