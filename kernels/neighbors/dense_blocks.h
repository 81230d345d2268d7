// Building blocks of the dense neighbour searches (knn_dense_cpu.cpp, radius_dense_cpu.cpp): exact
// squared distances rounded as the references round them, the bound on the error of the expanded
// distances, and a parallel driver that hands each thread whole blocks of queries together with the
// matrix product that gives their expanded squared distances to every point of their cloud:
//     a_ij = [y_i, 1, |y_i|^2] . [-2 x_j, |x_j|^2, 1] = |y_i|^2 + |x_j|^2 - 2 y_i . x_j    (double)
// |a_ij - exact_ij| < rounding_bound(D, |y_i|^2, max_j |x_j|^2) = 8 (D + 6) u (|y_i|^2 + max_j |x_j|^2)
// (u = 2^-53): the product of D + 2 terms errs by at most (D + 2) u times the sum of their magnitudes,
// itself at most 2 (|y_i|^2 + |x_j|^2), and the norms and the exact sum by at most (D + 1) u of their
// values.
#pragma once

#include "common/parallel.h"

#include <torch/all.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

namespace geomdl {
namespace dense {

// Which search a CPU neighbour kernel runs. The environment variable (GEOMDL_KNN_SEARCH for knn,
// GEOMDL_RADIUS_SEARCH for radius) = "grid" or "dense" forces one (benchmarks compare both with it;
// tests run each outside its usual range); "auto" (default, also when unset) lets the kernel decide.
enum class Search { kAuto, kGrid, kDense };
Search search_from_env(const char* variable);

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kUnit = 1.1102230246251565e-16;     // 2^-53
constexpr int64_t kBlockEntries = int64_t(1) << 17;  // expanded distances per block (1 MB per thread)
constexpr int64_t kLanes = 16;                       // values per block of a selection pass

// Exact squared distance as the references round it: ((q_0 - p_0)^2 + (q_1 - p_1)^2) + ..., with the
// point's coordinates converted to double.
template <typename T>
inline double sqdist(const double* q, const T* p, int64_t D) {
  double t = q[0] - double(p[0]);
  double acc = t * t;
  for (int64_t d = 1; d < D; ++d) {
    t = q[d] - double(p[d]);
    acc += t * t;
  }
  return acc;
}

// The position of query i among the points [x0, x0 + n) of its cloud when ignore_same_index drops the
// pair (i, i), else -1.
inline int64_t self_index(int64_t i, int64_t x0, int64_t n, bool ignore_same_index) {
  return (ignore_same_index && i >= x0 && i < x0 + n) ? i - x0 : -1;
}

// The planners' cost model (fitted on a 2-core x86 VM, ns per query-point pair): the grid search costs about
// 0.3 D per point it scans, a fraction f of the cloud; the dense search 0.08 D + 1 per point of the cloud.
inline bool dense_is_cheaper(int64_t D, double f) { return 0.3 * double(D) * f > 0.08 * double(D) + 1.0; }

// Bound on |a_ij - exact_ij| for a query of squared norm qn in a cloud whose largest squared norm is
// xn_max (see the header comment); never zero.
inline double rounding_bound(int64_t D, double qn, double xn_max) {
  return 8.0 * double(D + 6) * kUnit * (qn + xn_max) + 1e-300;
}

// The operands of the expansion, in double: points, queries, their squared norms and augmented rows,
// and the largest squared norm of each cloud.
struct Operands {
  at::Tensor xd, yd, xn, yn, xa, ya;
  std::vector<double> xn_max;
  Operands(const at::Tensor& x, const at::Tensor& y, const int64_t* bx, int64_t nb)
      : xd(x.to(at::kDouble).contiguous()), yd(y.to(at::kDouble).contiguous()),
        xn(xd.pow(2).sum(1, true)), yn(yd.pow(2).sum(1, true)),
        xa(at::cat({xd * -2.0, xn, at::ones_like(xn)}, 1)), ya(at::cat({yd, at::ones_like(yn), yn}, 1)),
        xn_max(nb, 0.0) {
    const double* norms = xn.data_ptr<double>();  // [N, 1], contiguous: one pass, no tensor op per cloud
    for (int64_t b = 0; b < nb; ++b)
      for (int64_t j = bx[b]; j < bx[b + 1]; ++j) xn_max[b] = std::max(xn_max[b], norms[j]);
  }
};

// Queries [q0, q1) of one cloud.
struct Block {
  int64_t cloud, q0, q1;
};

// Blocks of at most kBlockEntries / n queries over the clouds that have points and queries for which
// wanted(cloud) holds; *most receives the largest block's number of entries.
template <typename Wanted>
std::vector<Block> make_blocks(const int64_t* bx, const int64_t* by, int64_t nb, Wanted wanted, int64_t* most) {
  std::vector<Block> blocks;
  *most = 0;
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t n = bx[b + 1] - bx[b], y0 = by[b], y1 = by[b + 1];
    if (n == 0 || y1 == y0 || !wanted(b)) continue;
    const int64_t rows = std::max<int64_t>(1, std::min<int64_t>(y1 - y0, kBlockEntries / n));
    for (int64_t q0 = y0; q0 < y1; q0 += rows) blocks.push_back({b, q0, std::min(y1, q0 + rows)});
    *most = std::max(*most, rows * n);
  }
  return blocks;
}

// Runs fn(state, block_index, block, dots) for every block, in parallel: dots [q1 - q0, n] holds the
// block's expanded distances, row i - q0 for query i. Each thread takes whole blocks (its own product
// into its own reused buffer: no fork and join per block, and the expansion is read while it is still
// in cache) and keeps one State (default-constructed) for all of them.
template <typename State, typename Fn>
void for_each_block(const Operands& ops, const std::vector<Block>& blocks, int64_t most, const int64_t* bx, Fn fn) {
  const int64_t num_blocks = static_cast<int64_t>(blocks.size());
#pragma omp parallel if (num_blocks > 1)
  {
    at::Tensor buffer = at::empty({most}, ops.xd.options());
    State state;
#pragma omp for schedule(dynamic, 1)
    for (int64_t w = 0; w < num_blocks; ++w) {
      const Block bl = blocks[w];
      const int64_t x0 = bx[bl.cloud], n = bx[bl.cloud + 1] - x0;
      at::Tensor dots = buffer.narrow(0, 0, (bl.q1 - bl.q0) * n).view({bl.q1 - bl.q0, n});
      at::mm_out(dots, ops.ya.narrow(0, bl.q0, bl.q1 - bl.q0), ops.xa.narrow(0, x0, n).t());
      fn(state, w, bl, dots.data_ptr<double>());
    }
  }
}

}  // namespace dense
}  // namespace geomdl
