// The shell traversal of the knn search, shared by the CPU kernel (knn_cpu.cpp) and the CUDA kernel
// (knn_cuda.cu): the cells at Chebyshev cell distance s = 0, 1, ... around the query's cell, visited
// shell by shell (each cell once), so that both visit candidates in the same order.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define GEOMDL_HOST_DEVICE __host__ __device__ __forceinline__
// visit may be a device-only lambda: no host instantiation of the template is ever called.
#define GEOMDL_EXEC_CHECK_DISABLE _Pragma("nv_exec_check_disable")
#else
#define GEOMDL_HOST_DEVICE inline
#define GEOMDL_EXEC_CHECK_DISABLE
#endif

namespace geomdl {
namespace shell {

// Calls visit(a, b, e) for every cell (a, b, e) of a 3-D grid of n[0] x n[1] x n[2] cells at Chebyshev
// distance exactly s from cell c (cells outside the grid skipped; rows of the last dimension in
// increasing order). Returns whether the cells within distance s of c cover the whole grid.
GEOMDL_EXEC_CHECK_DISABLE
template <typename Visit>
GEOMDL_HOST_DEVICE bool visit_shell(const int64_t (&c)[3], const int64_t (&n)[3], int64_t s, Visit&& visit) {
  int64_t lo[3], hi[3];
  bool covers = true;
  for (int d = 0; d < 3; ++d) {
    lo[d] = c[d] - s > 0 ? c[d] - s : 0;
    hi[d] = c[d] + s < n[d] - 1 ? c[d] + s : n[d] - 1;
    covers = covers && c[d] - s <= 0 && c[d] + s >= n[d] - 1;
  }
  for (int64_t a = lo[0]; a <= hi[0]; ++a) {
    const bool face_a = a == c[0] - s || a == c[0] + s;
    for (int64_t b = lo[1]; b <= hi[1]; ++b) {
      if (face_a || b == c[1] - s || b == c[1] + s) {
        for (int64_t e = lo[2]; e <= hi[2]; ++e) visit(a, b, e);
      } else {
        if (c[2] - s >= 0) visit(a, b, c[2] - s);
        if (s > 0 && c[2] + s <= n[2] - 1) visit(a, b, c[2] + s);
      }
    }
  }
  return covers;
}

}  // namespace shell
}  // namespace geomdl
