// Checks of the tensor arguments of the neighbour searches (radius, knn) shared by the CPU kernels
// (search.h) and the CUDA kernels (search_common.cuh); each adds its device checks.
#pragma once

#include <torch/all.h>

namespace geomdl {
namespace grid {

// x [N, D] and y [M, D]: same dtype (float32/float64), contiguous, D >= 1; batch pointers of one length.
inline void check_search_shapes(const at::Tensor& x, const at::Tensor& y, const at::Tensor& ptr_x,
                                const at::Tensor& ptr_y) {
  TORCH_CHECK(x.dim() == 2 && y.dim() == 2, "x and y must be 2-D [N, D] and [M, D]");
  TORCH_CHECK(x.size(1) == y.size(1), "x and y must have the same number of columns");
  TORCH_CHECK(x.size(1) >= 1, "points must have at least one coordinate");
  TORCH_CHECK(x.scalar_type() == y.scalar_type(), "x and y must have the same dtype");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, "x and y must be float32 or float64");
  TORCH_CHECK(x.is_contiguous() && y.is_contiguous(), "x and y must be contiguous");
  TORCH_CHECK(ptr_x.numel() == ptr_y.numel(), "ptr_x and ptr_y must have the same length (number of clouds + 1)");
}

}  // namespace grid
}  // namespace geomdl
