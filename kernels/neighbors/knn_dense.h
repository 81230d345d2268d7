// Dense k-nearest-neighbour search (knn_dense_cpu.cpp) and the choice between it and the grid search
// of knn_cpu.cpp.
#pragma once

#include <torch/all.h>

#include "neighbors/dense_blocks.h"

namespace geomdl {
namespace dense {

// True when the dense search is expected to be cheaper than the grid search on these inputs. The grid
// bins at most three coordinates, so a query scans every point whose binned coordinates lie within
// its k-th neighbour distance r_k of its own; a sample of 4 to 16 queries measures that fraction f
// exactly (r_k by an exhaustive search). Cost per (query, point) pair, in ns, fitted on this project's
// 2-core VM (`python -m benchmarks ops --only knn_features knn_sweep` measures the choice):
//     grid  ~ 0.3 D f          dense ~ 0.08 D + 1
// Below four coordinates the grid bins them all and is always chosen.
bool prefer_dense(const at::Tensor& x, const at::Tensor& y, int64_t k, const at::Tensor& ptr_x,
                  const at::Tensor& ptr_y, bool ignore_same_index);

// Same arguments and result as the knn op (inputs already checked).
at::Tensor knn_dense_cpu(const at::Tensor& x, const at::Tensor& y, int64_t k, const at::Tensor& ptr_x,
                         const at::Tensor& ptr_y, bool ignore_same_index);

}  // namespace dense
}  // namespace geomdl
