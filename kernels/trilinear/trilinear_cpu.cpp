// CPU sparse trilinear contraction: geomdl::sparse_trilinear (schema in kernels/registration.cpp).
//
//   out[r, t] = sum_{g in groups(t)} x3[r, col(g)] * sum_{n in entries(g)} coef[n] x1[r, i(n)] x2[r, j(n)]
//
// for every row r (an edge or a node). It is the exact Clebsch-Gordan tensor product of
// geomdl/ops/trilinear.py with its tables (one entry per non-zero CG coefficient and channel, grouped
// by the column of the third operand: the path weight), and every gradient of it, which is the same
// contraction with the roles of the four columns exchanged. Rows are split between threads with
// at::parallel_for in blocks of 256 bytes of each column (kernels/trilinear/trilinear_block.h);
// an operand with one row is broadcast over all rows. Same maths as
// geomdl.ops.trilinear.sparse_trilinear_reference.
//
// The block kernel is compiled twice, for AVX2+FMA (used when the CPU has them) and for the baseline
// target; GEOMDL_TRILINEAR_ISA=generic forces the baseline (tests compare both).
#include <ATen/Parallel.h>
#include <torch/all.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "common/checks.h"
#include "common/cpu_isa.h"
#include "trilinear/trilinear_checks.h"

namespace geomdl {
namespace trilinear {

template <typename T>
struct Trilinear {
  const T *x1, *x2, *x3;
  int64_t rs1, rs2, rs3;  // row strides (0: broadcast row)
  int64_t F1, F2, F3, R, W;
  const int64_t *target_ptr, *group_ptr, *group_col, *pair;
  const T* coef;
  T* out;
};

namespace generic {
constexpr bool kAvx2Copy = false;
// dst[j * ds + i] = src[i * ss + j] for i, j < K.
template <typename T>
struct Tile {
  static constexpr int64_t K = 8;
  static void run(const T* src, int64_t ss, T* dst, int64_t ds) {
    for (int64_t i = 0; i < K; ++i)
      for (int64_t j = 0; j < K; ++j) dst[j * ds + i] = src[i * ss + j];
  }
};
#include "trilinear/trilinear_block.h"
}  // namespace generic

#ifdef GEOMDL_CPU_X86
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
constexpr bool kAvx2Copy = true;
template <typename T>
struct Tile;

template <>
struct Tile<float> {  // 8x8 transpose: unpack, shuffle, swap 128-bit lanes
  static constexpr int64_t K = 8;
  static void run(const float* src, int64_t ss, float* dst, int64_t ds) {
    __m256 r[8], t[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ss);
    for (int i = 0; i < 8; i += 2) {
      t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
      r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
      r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
      r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
      r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; ++i) {
      _mm256_storeu_ps(dst + i * ds, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
      _mm256_storeu_ps(dst + (i + 4) * ds, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
    }
  }
};

template <>
struct Tile<double> {  // 4x4 transpose
  static constexpr int64_t K = 4;
  static void run(const double* src, int64_t ss, double* dst, int64_t ds) {
    const __m256d r0 = _mm256_loadu_pd(src), r1 = _mm256_loadu_pd(src + ss);
    const __m256d r2 = _mm256_loadu_pd(src + 2 * ss), r3 = _mm256_loadu_pd(src + 3 * ss);
    const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
    const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
    _mm256_storeu_pd(dst, _mm256_permute2f128_pd(t0, t2, 0x20));
    _mm256_storeu_pd(dst + ds, _mm256_permute2f128_pd(t1, t3, 0x20));
    _mm256_storeu_pd(dst + 2 * ds, _mm256_permute2f128_pd(t0, t2, 0x31));
    _mm256_storeu_pd(dst + 3 * ds, _mm256_permute2f128_pd(t1, t3, 0x31));
  }
};
#include "trilinear/trilinear_block.h"
}  // namespace avx2
#pragma GCC pop_options
#endif

namespace {

at::Tensor sparse_trilinear_cpu(const at::Tensor& x1, const at::Tensor& x2, const at::Tensor& x3,
                                const at::Tensor& target_ptr, const at::Tensor& group_ptr,
                                const at::Tensor& group_col, const at::Tensor& pair, const at::Tensor& coef,
                                int64_t width) {
  TORCH_CHECK(x1.scalar_type() == at::kFloat || x1.scalar_type() == at::kDouble,
              "sparse_trilinear supports float32 and float64, got ", x1.scalar_type());
  GEOMDL_CHECK_CPU(x1);
  int64_t rows = 1;
  check_operand(x1, x1, rows, "x1");
  check_operand(x2, x1, rows, "x2");
  check_operand(x3, x1, rows, "x3");
  check_table_shapes(x1, target_ptr, group_ptr, group_col, pair, coef, width);
  check_table_values(target_ptr, group_ptr, group_col, pair, width, x1.size(1), x2.size(1), x3.size(1));
  at::Tensor out = at::empty({rows, width}, x1.options());
  const bool avx = use_avx2_fma("GEOMDL_TRILINEAR_ISA");  // (before the early return: a bad value raises on any call)
  if (rows == 0 || width == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(x1.scalar_type(), "sparse_trilinear", [&] {
    using T = scalar_t;
    Trilinear<T> k{x1.data_ptr<T>(), x2.data_ptr<T>(), x3.data_ptr<T>(),
                   x1.size(0) == 1 ? 0 : x1.size(1), x2.size(0) == 1 ? 0 : x2.size(1), x3.size(0) == 1 ? 0 : x3.size(1),
                   x1.size(1), x2.size(1), x3.size(1), rows, width,
                   target_ptr.data_ptr<int64_t>(), group_ptr.data_ptr<int64_t>(), group_col.data_ptr<int64_t>(),
                   pair.data_ptr<int64_t>(), coef.data_ptr<T>(), out.data_ptr<T>()};
    constexpr int64_t B = generic::TrilinearBlock<T>::B;
    const int64_t blocks = (rows + B - 1) / B;
    const size_t bytes = static_cast<size_t>(k.F1 + k.F2 + k.F3 + width) * B * sizeof(T);
    // Grain: enough blocks per task that the scratch allocation is amortised.
    at::parallel_for(0, blocks, 4, [&](int64_t b0, int64_t b1) {
      const AlignedBuffer buf = aligned_buffer(bytes, "sparse_trilinear");
      T* scratch = static_cast<T*>(buf.get());
#ifdef GEOMDL_CPU_X86
      if (avx) {
        avx2::TrilinearBlock<T>::run(k, b0, b1, scratch);
        return;
      }
#endif
      (void)avx;
      generic::TrilinearBlock<T>::run(k, b0, b1, scratch);
    });
  });
  return out;
}

}  // namespace
}  // namespace trilinear

TORCH_LIBRARY_IMPL(geomdl, CPU, m) { m.impl("sparse_trilinear", &trilinear::sparse_trilinear_cpu); }

}  // namespace geomdl
