// Checks of geomdl::sparse_trilinear's arguments shared by the CPU and CUDA kernels
// (trilinear_cpu.cpp, trilinear_cuda.cu). The Python wrapper (geomdl/ops/trilinear.py) builds valid
// tables; these checks guard the C++ boundary, so that no table makes a kernel read out of bounds.
#pragma once
#include <torch/all.h>

#include <cstdint>

namespace geomdl {
namespace trilinear {

// x is 2-D, contiguous, of x1's dtype and device, with `rows` rows or 1 (broadcast); updates `rows`.
inline void check_operand(const at::Tensor& x, const at::Tensor& x1, int64_t& rows, const char* name) {
  TORCH_CHECK(x.device() == x1.device(), name, " must be on the device of x1");
  TORCH_CHECK(x.is_contiguous(), name, " must be contiguous");
  TORCH_CHECK(x.dim() == 2, name, " must be 2-D [rows, columns], got ", x.sizes());
  TORCH_CHECK(x.scalar_type() == x1.scalar_type(), name, " must have the dtype of x1");
  const int64_t r = x.size(0);
  if (r != 1) {
    TORCH_CHECK(rows == 1 || rows == r, name, " has ", r, " rows; every operand must have the same rows or 1");
    rows = r;
  }
}

// Dtypes, devices and sizes of the tables (on x1's device): target_ptr [width + 1], group_ptr [G + 1],
// group_col [G], pair [n, 2] (int64) and coef [n] (x1's dtype).
inline void check_table_shapes(const at::Tensor& x1, const at::Tensor& target_ptr, const at::Tensor& group_ptr,
                               const at::Tensor& group_col, const at::Tensor& pair, const at::Tensor& coef,
                               int64_t width) {
  TORCH_CHECK(width >= 0, "width must be >= 0");
  const int64_t groups = group_col.numel(), entries = coef.numel();
  const struct {
    const at::Tensor& t;
    int64_t numel;
    const char* name;
  } tables[] = {{target_ptr, width + 1, "target_ptr"}, {group_ptr, groups + 1, "group_ptr"},
                {group_col, groups, "group_col"}, {pair, 2 * entries, "pair"}};
  for (const auto& tb : tables) {
    TORCH_CHECK(tb.t.device() == x1.device(), tb.name, " must be on the device of x1");
    TORCH_CHECK(tb.t.is_contiguous(), tb.name, " must be contiguous");
    TORCH_CHECK(tb.t.scalar_type() == at::kLong, tb.name, " must be int64, got ", tb.t.scalar_type());
    TORCH_CHECK(tb.t.numel() == tb.numel, tb.name, " must have ", tb.numel, " elements, got ", tb.t.numel());
  }
  TORCH_CHECK(coef.device() == x1.device(), "coef must be on the device of x1");
  TORCH_CHECK(coef.is_contiguous(), "coef must be contiguous");
  TORCH_CHECK(coef.scalar_type() == x1.scalar_type(), "coef must have the dtype of x1");
}

// ptr [n + 1] (host) must start at 0, be non-decreasing and end at `total`.
inline void check_ptr_values(const at::Tensor& ptr, int64_t n, int64_t total, const char* name) {
  const int64_t* p = ptr.data_ptr<int64_t>();
  TORCH_CHECK(p[0] == 0 && p[n] == total, name, " must run from 0 to ", total);
  for (int64_t i = 0; i < n; ++i) TORCH_CHECK(p[i] <= p[i + 1], name, " must be non-decreasing");
}

// Every value idx[i * stride + which] (host) lies in [0, F).
inline void check_column_values(const at::Tensor& idx, int64_t stride, int64_t which, int64_t F, const char* name) {
  const int64_t* p = idx.data_ptr<int64_t>();
  const int64_t n = stride ? idx.numel() / stride : 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = p[i * stride + which];
    TORCH_CHECK(v >= 0 && v < F, name, " holds column ", v, " outside [0, ", F, ")");
  }
}

// The values of the tables (host tensors, shapes checked by check_table_shapes): CSR pointers from 0 to
// their ends, columns within the operands' widths F1, F2, F3.
inline void check_table_values(const at::Tensor& target_ptr, const at::Tensor& group_ptr, const at::Tensor& group_col,
                               const at::Tensor& pair, int64_t width, int64_t F1, int64_t F2, int64_t F3) {
  const int64_t groups = group_col.numel(), entries = pair.numel() / 2;
  check_ptr_values(target_ptr, width, groups, "target_ptr");
  check_ptr_values(group_ptr, groups, entries, "group_ptr");
  check_column_values(pair, 2, 0, F1, "pair[:, 0]");
  check_column_values(pair, 2, 1, F2, "pair[:, 1]");
  check_column_values(group_col, 1, 0, F3, "group_col");
}

}  // namespace trilinear
}  // namespace geomdl
