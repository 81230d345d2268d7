// Host-side helpers shared by the CPU and CUDA Gaunt kernels (gaunt_cpu.cpp, gaunt_cuda.cu): the row
// order of the block algorithm and the checks of the plan tables and layouts (same messages on both).
#pragma once
#include <torch/all.h>

#include <vector>

namespace geomdl {
namespace gaunt {

// Source rows of a degree-L column array in the block kernel's order: (v, m=+v / m=-v, parity of
// l + v, l) -- l = v, v+2, ... then l = v+1, v+3, ... -- i.e. a permutation of the (L+1)^2 rows.
inline std::vector<int64_t> row_order(int64_t L) {
  std::vector<int64_t> order;
  order.reserve((L + 1) * (L + 1));
  for (int64_t v = 0; v <= L; ++v)
    for (int64_t s = 0; s < (v > 0 ? 2 : 1); ++s)
      for (int64_t par = 0; par < 2; ++par)
        for (int64_t l = v + par; l <= L; l += 2) order.push_back(l * l + l + (s ? -v : v));
  return order;
}

// dtype and shapes of the synthesis tables theta [L+1, 2, J, L+1] and phi [2, K, L+1] (devices are
// checked by the caller).
inline void check_table_shapes(const at::Tensor& theta, const at::Tensor& phi, int64_t L, int64_t J, int64_t K,
                               const at::Tensor& like, const char* name) {
  TORCH_CHECK(theta.is_contiguous() && phi.is_contiguous(), name, ": tables must be contiguous");
  TORCH_CHECK(theta.scalar_type() == like.scalar_type() && phi.scalar_type() == like.scalar_type(),
              name, ": tables must have the dtype of the columns");
  TORCH_CHECK(theta.dim() == 4 && theta.size(0) == L + 1 && theta.size(1) == 2 && theta.size(2) == J &&
                  theta.size(3) == L + 1,
              name, ": theta must be [L+1, 2, J, L+1] = [", L + 1, ", 2, ", J, ", ", L + 1, "], got ", theta.sizes());
  TORCH_CHECK(phi.dim() == 3 && phi.size(0) == 2 && phi.size(1) == K && phi.size(2) == L + 1, name,
              ": phi must be [2, K, L+1] = [2, ", K, ", ", L + 1, "], got ", phi.sizes());
}

// The layout [rows, 2] (offset or -1, channel stride) of an operand with `numel` elements, given as a
// contiguous CPU int64 tensor `host`: every present row must address inside the tensor.
inline void check_layout(const at::Tensor& host, int64_t node_stride, int64_t rows, int64_t numel, int64_t nodes,
                         int64_t C, const char* name) {
  TORCH_CHECK(host.scalar_type() == at::kLong && host.dim() == 2 && host.size(0) == rows && host.size(1) == 2,
              name, ": layout must be int64 [", rows, ", 2], got ", host.sizes());
  TORCH_CHECK(node_stride >= 0, name, ": node stride must be >= 0");
  const int64_t* l = host.data_ptr<int64_t>();
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t off = l[2 * i], cs = l[2 * i + 1];
    TORCH_CHECK(off >= -1 && cs >= 0, name, ": layout row ", i, " has offset ", off, " and channel stride ", cs);
    TORCH_CHECK(off < 0 || nodes == 0 || off + (nodes - 1) * node_stride + (C - 1) * cs < numel, name, ": layout row ", i,
                " addresses past the ", numel, " elements of the tensor");
  }
}

// Argument counts and sizes of geomdl::gaunt_columns (schema in kernels/registration.cpp), with
// `max_others` other inputs at most.
inline void check_call(const at::Tensor& a, const at::Tensor& a_theta, const at::Tensor& a_phi, at::TensorList others,
                       at::TensorList theta, at::TensorList phi, at::TensorList analysis, at::TensorList proj,
                       at::TensorList layouts, at::IntArrayRef node_strides, at::IntArrayRef out_numel,
                       int64_t columns, int64_t channels, int64_t max_others) {
  TORCH_CHECK(a.is_contiguous(), "a must be contiguous");
  TORCH_CHECK(a.scalar_type() == at::kFloat || a.scalar_type() == at::kDouble, "a must be float32 or float64");
  const int64_t n = static_cast<int64_t>(others.size());
  TORCH_CHECK(n >= 1 && n <= max_others, "gaunt_columns takes 1 or 2 other inputs, got ", n);
  TORCH_CHECK(static_cast<int64_t>(theta.size()) == n && static_cast<int64_t>(phi.size()) == n &&
                  static_cast<int64_t>(analysis.size()) == n && static_cast<int64_t>(proj.size()) == n &&
                  static_cast<int64_t>(out_numel.size()) == n,
              "gaunt_columns: one theta, phi, analysis, proj table and output size per other input");
  TORCH_CHECK(static_cast<int64_t>(layouts.size()) == 1 + 2 * n && static_cast<int64_t>(node_strides.size()) == 1 + 2 * n,
              "gaunt_columns: one layout and node stride for a, each other input and each output");
  TORCH_CHECK(columns >= 0 && channels >= 1 && columns % channels == 0,
              "columns must be a multiple of channels >= 1, got ", columns, " and ", channels);
  TORCH_CHECK(a_theta.dim() == 4 && a_phi.dim() == 3, "a_theta must be 4-D and a_phi 3-D");
  TORCH_CHECK(a_theta.size(2) >= 2 && a_phi.size(1) >= 2, "torus tables must have J >= 2 polar rows and K >= 2 azimuths");
}

}  // namespace gaunt
}  // namespace geomdl
