// Schemas of every op in the geomdl library (one place), plus the Python module stub.
//
// Implementations are registered per dispatch key next to their sources:
//   kernels/<op>/<op>_cpu.cpp  -> TORCH_LIBRARY_IMPL(geomdl, CPU, m)
//   kernels/<op>/<op>_cuda.cu  -> TORCH_LIBRARY_IMPL(geomdl, CUDA, m)   (only built with CUDA)
// Autograd formulas and fake (meta) kernels are registered in Python (geomdl/ops/*.py), so that
// torch.compile can trace the ops and the backward is shared by every device.
#include <Python.h>
#include <torch/library.h>

#include <string>

#include "common/cpu_isa.h"
#include "common/parallel.h"

extern "C" {
// Importing geomdl._C only needs to load this shared library: the static TORCH_LIBRARY
// initialisers below register the ops with the dispatcher. The module's attributes (1 or 0): `openmp`,
// whether the CPU kernels were compiled with OpenMP (multi-threaded) or serially; `avx2`, whether the
// AVX2 copies of the CPU kernels (gaunt, trilinear, scatter, fps; kernels/common/cpu_isa.h) run on this CPU.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  PyObject* module = PyModule_Create(&module_def);
  if (module != nullptr && (PyModule_AddIntConstant(module, "openmp", geomdl::kOpenMP ? 1 : 0) != 0 ||
                            PyModule_AddIntConstant(module, "avx2", geomdl::cpu_has_avx2_fma() ? 1 : 0) != 0)) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
}

namespace geomdl {
namespace {
// "avx2", "generic" or "none": the copy of `kernel`'s loops that ran last (cpu_isa.h, for tests).
std::string cpu_copy_used(c10::string_view kernel) {
  static constexpr const char* names[] = {"gaunt", "trilinear", "scatter", "fps"};  // in CopyKernel order
  static_assert(sizeof(names) / sizeof(names[0]) == kCopyKernels, "one name per CopyKernel");
  for (int k = 0; k < kCopyKernels; ++k) {
    if (kernel == names[k]) {
      const int v = g_copy_used[k].load(std::memory_order_relaxed);
      return v == 2 ? "avx2" : v == 1 ? "generic" : "none";
    }
  }
  TORCH_CHECK_VALUE(false, "kernel must be one of gaunt, trilinear, scatter, fps; got '", std::string(kernel), "'");
}
}  // namespace
}  // namespace geomdl

TORCH_LIBRARY(geomdl, m) {
  // For tests: which copy (AVX2 or baseline) of a CPU kernel's loops its last call ran (kernels/common/cpu_isa.h).
  m.def("_cpu_copy_used(str kernel) -> str", &geomdl::cpu_copy_used);
  // src [N, C] contiguous, index [N] int64 in [0, dim_size). reduce in {sum, mean, max, min}.
  // Returns (out [dim_size, C], arg): arg is [dim_size, C] int64 for max/min (row of the first
  // maximum/minimum in index order, N for an empty segment) and an empty tensor otherwise.
  m.def("scatter_reduce(Tensor src, Tensor index, SymInt dim_size, str reduce) -> (Tensor, Tensor)");
  // Softmax of src [N, C] within the segments given by index [N].
  m.def("segment_softmax(Tensor src, Tensor index, SymInt dim_size) -> Tensor");
  // Neighbours of each query y[i] among x within distance r, per batch (ptr_x/ptr_y are CSR
  // pointers of sorted batch vectors). Returns [2, E] int64: row 0 indexes x, row 1 indexes y.
  m.def("radius(Tensor x, Tensor y, float r, Tensor ptr_x, Tensor ptr_y, int max_num_neighbors, bool ignore_same_index) -> Tensor");
  // k nearest neighbours of each y[i] among x, per batch. Returns [2, E] like radius.
  m.def("knn(Tensor x, Tensor y, int k, Tensor ptr_x, Tensor ptr_y, bool ignore_same_index) -> Tensor");
  // Farthest point sampling: num[b] points of cloud b (rows ptr[b]..ptr[b+1]) starting at start[b]
  // (a local index). Returns the global indices [sum(num)] int64.
  m.def("fps(Tensor pos, Tensor ptr, Tensor num, Tensor start) -> Tensor");
  // Gaunt product (geomdl/o3/gaunt_kernel.py): out[i] = Proj_{<=Lo_i}[f_a f_others[i]] per column
  // (node, channel), with the half-torus tables of a and others[i] (theta [L+1, 2, J, L+1], phi
  // [2, K, L+1]) and of the projection (analysis[i] [2, Lo+1, K], proj[i] [2, Lo+1, Lo+1, J]).
  // layouts/node_strides (a, others..., outs...): int64 [(L+1)^2, 2] (offset or -1, channel stride)
  // placing row l^2+l+m of column (b, c) at off + b * node_stride + c * stride (kernels/gaunt/gaunt_task.h);
  // outputs are flat [out_numel[i]]; columns = nodes * channels.
  m.def("gaunt_columns(Tensor a, Tensor a_theta, Tensor a_phi, Tensor[] others, Tensor[] theta, Tensor[] phi, Tensor[] analysis, Tensor[] proj, Tensor[] layouts, int[] node_strides, int[] out_numel, int columns, int channels) -> Tensor[]");
  // Sparse trilinear contraction (geomdl/ops/trilinear.py; the CG tensor product and its gradients):
  // out[r, t] = sum_{g: target_ptr[t] <= g < target_ptr[t+1]} x3[r, group_col[g]]
  //             * sum_{n: group_ptr[g] <= n < group_ptr[g+1]} coef[n] x1[r, pair[n, 0]] x2[r, pair[n, 1]],
  // x1/x2/x3 [R or 1, F_k] (one row: broadcast), int64 tables, out [R, width].
  m.def("sparse_trilinear(Tensor x1, Tensor x2, Tensor x3, Tensor target_ptr, Tensor group_ptr, Tensor group_col, Tensor pair, Tensor coef, int width) -> Tensor");
  // The PaiNN message block in one pass over the edges (geomdl/ops/painn_message.py): phi [N, 3F], w [E, 3F],
  // vec [N, 3F] (a [N, 3, F] tensor), unit [E, 3], src/dst [E] int64 -> out [num_nodes, 4F] (scalar messages,
  // then the vector messages as [3, F]); the backward returns the gradients of (phi, w, vec, unit).
  m.def("painn_message(Tensor phi, Tensor w, Tensor vec, Tensor unit, Tensor src, Tensor dst, SymInt num_nodes) -> Tensor");
  m.def("painn_message_backward(Tensor grad, Tensor phi, Tensor w, Tensor vec, Tensor unit, Tensor src, Tensor dst) -> (Tensor, Tensor, Tensor, Tensor)");
}
