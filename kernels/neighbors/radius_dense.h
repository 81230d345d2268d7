// Dense radius search (radius_dense_cpu.cpp) and the choice between it and the grid search of
// radius_cpu.cpp.
#pragma once

#include <torch/all.h>

#include "neighbors/dense_blocks.h"

namespace geomdl {
namespace dense {

// True when the dense search is expected to be cheaper than the grid search on these inputs. The grid
// bins at most three coordinates in cells of side >= r and scans the 3 x 3 x 3 cells around a query:
// every point whose binned coordinates lie within about 1.5 r of the query's. A sample of 4 to 16
// queries measures that fraction f; the cost per (query, point) pair is then modelled as for knn
// (knn_dense.h), with the constants checked by `python -m benchmarks ops --only radius_features`:
//     grid  ~ 0.3 D f          dense ~ 0.08 D + 1
// Below four coordinates the grid bins them all and is always chosen.
bool prefer_dense_radius(const at::Tensor& x, const at::Tensor& y, double r, const at::Tensor& ptr_x,
                         const at::Tensor& ptr_y);

// Same arguments and result as the radius op (inputs already checked).
at::Tensor radius_dense_cpu(const at::Tensor& x, const at::Tensor& y, double r, const at::Tensor& ptr_x,
                            const at::Tensor& ptr_y, int64_t max_num_neighbors, bool ignore_same_index);

}  // namespace dense
}  // namespace geomdl
