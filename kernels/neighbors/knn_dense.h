// Dense k-nearest-neighbour search for high-dimensional points (knn_dense_cpu.cpp), used by the CPU
// knn kernel (knn_cpu.cpp) from dense_min_dim() coordinates on.
#pragma once

#include <torch/all.h>

#include <cstdlib>

namespace geomdl {
namespace dense {

// From this many coordinates on, the CPU knn uses the dense search: a grid over three of them no
// longer prunes enough (on random points the two break even at 8-9 coordinates; measured by
// `python -m benchmarks ops --only knn_features`).
constexpr int64_t kDenseMinDim = 9;

// kDenseMinDim, or the environment variable GEOMDL_KNN_DENSE_MIN_DIM (a positive integer) when set: the
// benchmark compares both searches with it, and tests run each search outside its usual range.
inline int64_t dense_min_dim() {
  const char* s = std::getenv("GEOMDL_KNN_DENSE_MIN_DIM");
  if (s == nullptr || *s == 0) return kDenseMinDim;
  char* end = nullptr;
  const long long v = std::strtoll(s, &end, 10);
  TORCH_CHECK(end != nullptr && *end == 0 && v >= 1, "GEOMDL_KNN_DENSE_MIN_DIM must be a positive integer, got '", s, "'");
  return v;
}

// Same arguments and result as the knn op (inputs already checked).
at::Tensor knn_dense_cpu(const at::Tensor& x, const at::Tensor& y, int64_t k, const at::Tensor& ptr_x,
                         const at::Tensor& ptr_y, bool ignore_same_index);

}  // namespace dense
}  // namespace geomdl
