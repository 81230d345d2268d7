// CPU Gaunt product on columns: geomdl::gaunt_columns (schema in kernels/registration.cpp).
//
//   out[i] = Proj_{<= Lo_i} [ f_a * f_{other[i]} ]   for every column r (one (node, channel) pair),
//
// with the half-torus plan tables of geomdl/o3/gaunt_plans.py passed in as tensors (built once per
// degrees in Python). Same maths as geomdl.o3.gaunt_product._gaunt_columns_reference; the columns are
// processed in blocks of 128 bytes with every intermediate in per-thread scratch (kernels/gaunt/
// gaunt_block.h), blocks split between threads with at::parallel_for. With one `other` this is the
// forward product; with two it is the fused first-order backward (a = the output gradient, shared).
//
// The block kernel is compiled twice: for AVX2+FMA (used when the CPU has them) and for the baseline
// x86-64/other target, so the build needs no -march flag. GEOMDL_GAUNT_ISA=generic forces the
// baseline variant (tests compare both).
#include <ATen/Parallel.h>
#include <torch/all.h>
#include <torch/library.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "common/checks.h"
#include "common/cpu_isa.h"
#include "gaunt/gaunt_host.h"
#include "gaunt/gaunt_task.h"

namespace geomdl {
namespace gaunt {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"  // 32-byte vectors only inside always-inline helpers
namespace generic {
constexpr bool kAvx2Copy = false;
#include "gaunt/gaunt_block.h"
}  // namespace generic
#pragma GCC diagnostic pop

#ifdef GEOMDL_CPU_X86
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
constexpr bool kAvx2Copy = true;
#include "gaunt/gaunt_block.h"
}  // namespace avx2
#pragma GCC pop_options
#endif

namespace {

void check_synthesis(const at::Tensor& theta, const at::Tensor& phi, int64_t L, int64_t J, int64_t K,
                     const at::Tensor& like, const char* name) {
  GEOMDL_CHECK_CPU(theta);
  GEOMDL_CHECK_CPU(phi);
  check_table_shapes(theta, phi, L, J, K, like, name);
}

// Checks the layout [rows, 2] (offset, channel stride) of an operand with `numel` elements and fills op.
void set_operand(Operand& op, const at::Tensor& layout, int64_t node_stride, int64_t rows, int64_t numel,
                 int64_t nodes, int64_t C, const char* name) {
  GEOMDL_CHECK_CPU(layout);
  GEOMDL_CHECK_CONTIGUOUS(layout);
  check_layout(layout, node_stride, rows, numel, nodes, C, name);
  op.node_stride = node_stride;
}

std::vector<at::Tensor> gaunt_columns_cpu(const at::Tensor& a, const at::Tensor& a_theta, const at::Tensor& a_phi,
                                          at::TensorList others, at::TensorList theta, at::TensorList phi,
                                          at::TensorList analysis, at::TensorList proj, at::TensorList layouts,
                                          at::IntArrayRef node_strides, at::IntArrayRef out_numel, int64_t columns,
                                          int64_t channels) {
  GEOMDL_CHECK_CPU(a);
  check_call(a, a_theta, a_phi, others, theta, phi, analysis, proj, layouts, node_strides, out_numel, columns, channels,
             kMaxOthers);
  const int64_t n = static_cast<int64_t>(others.size());
  Task t;
  t.J = a_theta.size(2);
  t.K = a_phi.size(1);
  t.R = columns;
  t.C = channels;
  const int64_t nodes = columns / channels;
  t.sa.lmax = a_theta.size(0) - 1;
  check_synthesis(a_theta, a_phi, t.sa.lmax, t.J, t.K, a, "a");
  t.sa.theta = a_theta.data_ptr();
  t.sa.phi = a_phi.data_ptr();
  const int64_t rows_a = (t.sa.lmax + 1) * (t.sa.lmax + 1);
  set_operand(t.a, layouts[0], node_strides[0], rows_a, a.numel(), nodes, t.C, "a");
  t.a.data = const_cast<void*>(a.data_ptr());
  t.a.table = layouts[0].data_ptr<int64_t>();
  t.n_other = static_cast<int>(n);
  std::vector<at::Tensor> outs;
  std::vector<std::vector<int64_t>> orders_o, orders_z;
  for (int64_t i = 0; i < n; ++i) {
    const at::Tensor& o = others[i];
    GEOMDL_CHECK_CPU(o);
    GEOMDL_CHECK_CONTIGUOUS(o);
    TORCH_CHECK(o.scalar_type() == a.scalar_type(), "others[", i, "] must have the dtype of a");
    t.so[i].lmax = theta[i].dim() == 4 ? theta[i].size(0) - 1 : -1;
    check_synthesis(theta[i], phi[i], t.so[i].lmax, t.J, t.K, a, "others[i]");
    t.so[i].theta = theta[i].data_ptr();
    t.so[i].phi = phi[i].data_ptr();
    const int64_t rows_o = (t.so[i].lmax + 1) * (t.so[i].lmax + 1);
    set_operand(t.other[i], layouts[1 + i], node_strides[1 + i], rows_o, o.numel(), nodes, t.C, "others[i]");
    t.other[i].data = const_cast<void*>(o.data_ptr());
    t.other[i].table = layouts[1 + i].data_ptr<int64_t>();
    const at::Tensor& an = analysis[i];
    const at::Tensor& pr = proj[i];
    GEOMDL_CHECK_CPU(an);
    GEOMDL_CHECK_CPU(pr);
    GEOMDL_CHECK_CONTIGUOUS(an);
    GEOMDL_CHECK_CONTIGUOUS(pr);
    TORCH_CHECK(an.dim() == 3 && an.size(0) == 2 && an.size(1) >= 1 && an.size(2) == t.K &&
                    an.scalar_type() == a.scalar_type(),
                "analysis[i] must be [2, Lo+1, K] with K = ", t.K, ", got ", an.sizes());
    const int64_t lo = an.size(1) - 1;
    TORCH_CHECK(pr.dim() == 4 && pr.size(0) == 2 && pr.size(1) == lo + 1 && pr.size(2) == lo + 1 &&
                    pr.size(3) == t.J && pr.scalar_type() == a.scalar_type(),
                "proj[i] must be [2, Lo+1, Lo+1, J] = [2, ", lo + 1, ", ", lo + 1, ", ", t.J, "], got ", pr.sizes());
    t.pj[i].analysis = an.data_ptr();
    t.pj[i].proj = pr.data_ptr();
    t.pj[i].lmax_out = lo;
    const at::Tensor& lz = layouts[1 + n + i];
    TORCH_CHECK(out_numel[i] >= 0, "out_numel must be >= 0");
    set_operand(t.out[i], lz, node_strides[1 + n + i], (lo + 1) * (lo + 1), out_numel[i], nodes, t.C, "out[i]");
    const int64_t* lzp = lz.data_ptr<int64_t>();
    bool complete = true;  // every output element written? (else start from zeros)
    for (int64_t r = 0; r < (lo + 1) * (lo + 1); ++r) complete = complete && lzp[2 * r] >= 0;
    complete = complete && (lo + 1) * (lo + 1) * columns == out_numel[i];
    outs.push_back(complete ? at::empty({out_numel[i]}, a.options()) : at::zeros({out_numel[i]}, a.options()));
    t.out[i].data = outs.back().data_ptr();
    t.out[i].table = lzp;
    orders_o.push_back(row_order(t.so[i].lmax));
    orders_z.push_back(row_order(lo));
  }
  const bool avx = use_avx2_fma("GEOMDL_GAUNT_ISA");  // (before the early return: a bad value raises on any call)
  if (t.R == 0) return outs;
  const std::vector<int64_t> order_a = row_order(t.sa.lmax);
  const int64_t* po[kMaxOthers] = {orders_o[0].data(), n > 1 ? orders_o[1].data() : nullptr};
  const int64_t* pz[kMaxOthers] = {orders_z[0].data(), n > 1 ? orders_z[1].data() : nullptr};
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "gaunt_columns", [&] {
    constexpr int64_t B = block_columns<scalar_t>();
    const int64_t blocks = (t.R + B - 1) / B;
    const size_t bytes = static_cast<size_t>(Scratch(t, B).total) * sizeof(scalar_t);
    at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
      const AlignedBuffer buf = aligned_buffer(bytes, "gaunt_columns");
      scalar_t* scratch = static_cast<scalar_t*>(buf.get());
#ifdef GEOMDL_CPU_X86
      if (avx) {
        avx2::Block<scalar_t>::run(t, b0, b1, scratch, order_a.data(), po, pz);
        return;
      }
#endif
      (void)avx;
      generic::Block<scalar_t>::run(t, b0, b1, scratch, order_a.data(), po, pz);
    });
  });
  return outs;
}

}  // namespace
}  // namespace gaunt

TORCH_LIBRARY_IMPL(geomdl, CPU, m) { m.impl("gaunt_columns", &gaunt::gaunt_columns_cpu); }

}  // namespace geomdl
