// The PaiNN message block as one pass over the edges (geomdl/ops/painn_message.py), forward and backward.
//
// For node features phi [N, 3F] (phi(s) of the layer: columns [phi_s | phi_vv | phi_vs]), edge filters
// w [E, 3F] (same split), vectors vec [N, 3F] (a [N, 3, F] tensor: component k at columns kF..kF+F) and unit
// vectors unit [E, 3], with edges j = src[e] -> i = dst[e]:
//
//   out[i, c]          = sum_{e: dst[e] = i} phi_s[j, c] w_s[e, c]
//   out[i, F + kF + c] = sum_{e: dst[e] = i} (phi_vv[j, c] w_vv[e, c]) vec[j, k, c] + (phi_vs[j, c] w_vs[e, c]) unit[e, k]
//
// The eager layer materialises the gathered rows, the products and their concatenation ([E, 3F] and [E, 4F]
// tensors) and reads them back for the scatter; here each edge's products go straight into the accumulator of
// its target. Every product is rounded in the input dtype exactly as the elementwise PyTorch ops round it
// (no FMA contraction: common/no_fma.h), and the sums run in float64 in edge order per target and are rounded
// once: the forward gives the bits of the reference (whose scatter also sums in float64, in row order).
// Each target (forward) or source (backward) is reduced by one thread, so the results do not depend on the
// number of threads.
//
// The backward takes the output gradient G [S, 4F] and, per source node j, walks its edges in edge order:
//   gx[e]   = [G_s[i], sum_k G_v[i, k] vec[j, k], sum_k G_v[i, k] unit[e, k]]        ([E, 3F], not stored)
//   g_w[e]  = gx[e] * phi[j]                         g_phi[j] = sum_e gx[e] * w[e]
//   g_vec[j, k] = sum_e (phi_vv[j] w_vv[e]) G_v[i, k]  g_unit[e, k] = sum_c G_v[i, k, c] phi_vs[j, c] w_vs[e, c]
#include "common/no_fma.h"

#include <torch/all.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "common/checks.h"
#include "common/parallel.h"

namespace geomdl {
namespace {

// Edges grouped by `key` (values in [0, S)), stably: ptr [S + 1] and, unless `key` is already sorted, the
// edge order `order` [E]. Raises ValueError naming `name` on an entry outside [0, S).
struct EdgeGroups {
  std::vector<int64_t> ptr, order;
  int64_t edge(int64_t pos) const { return order.empty() ? pos : order[pos]; }
};

EdgeGroups group_edges(const int64_t* key, int64_t E, int64_t S, const char* name) {
  EdgeGroups g;
  g.ptr.assign(S + 1, 0);
  bool sorted = true;
  int64_t prev = 0;
  for (int64_t e = 0; e < E; ++e) {
    const int64_t k = key[e];
    TORCH_CHECK_VALUE(static_cast<uint64_t>(k) < static_cast<uint64_t>(S), name, " has an entry ", k,
                      " out of range: entries must lie in [0, ", S, ")");
    ++g.ptr[k + 1];
    sorted = sorted && k >= prev;
    prev = k;
  }
  for (int64_t s = 0; s < S; ++s) g.ptr[s + 1] += g.ptr[s];
  if (!sorted) {
    g.order.resize(E);
    std::vector<int64_t> next(g.ptr.begin(), g.ptr.end() - 1);
    for (int64_t e = 0; e < E; ++e) g.order[next[key[e]]++] = e;
  }
  return g;
}

// Prefetch the cache lines of [p, p + bytes) (for writing when kWrite).
template <bool kWrite>
inline void prefetch_bytes(const void* p, int64_t bytes) {
  const uintptr_t first = reinterpret_cast<uintptr_t>(p) & ~uintptr_t(63);
  const uintptr_t end = reinterpret_cast<uintptr_t>(p) + static_cast<uintptr_t>(bytes);
  for (uintptr_t q = first; q < end; q += 64) __builtin_prefetch(reinterpret_cast<const void*>(q), kWrite ? 1 : 0, 3);
}

// Edges a grouped pass looks ahead: their rows (random in memory) are prefetched.
constexpr int64_t kAhead = 4;

// Threads for a pass over E edges of width F (one thread below ~64k channel entries: the team costs more).
int threads_for(int64_t E, int64_t F) { return E * F < (1 << 16) ? 1 : std::max(1, omp_get_max_threads()); }

template <typename T>
void forward_impl(const T* phi, const T* w, const T* vec, const T* unit, const int64_t* src, const EdgeGroups& g,
                  int64_t S, int64_t F, T* out, int threads) {
  const int64_t F3 = 3 * F, F4 = 4 * F;
#pragma omp parallel num_threads(threads)
  {
    std::vector<double> acc(F4);
    std::vector<T> dvv(F), dvs(F);
#pragma omp for schedule(dynamic, 32)
    for (int64_t i = 0; i < S; ++i) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t pos = g.ptr[i]; pos < g.ptr[i + 1]; ++pos) {
        const int64_t e = g.edge(pos), j = src[e];
        if (pos + kAhead < g.ptr[S]) {  // the rows of an edge a few ahead (random: grouped by target)
          const int64_t ea = g.edge(pos + kAhead), ja = src[ea];
          prefetch_bytes<false>(phi + ja * F3, F3 * sizeof(T));
          prefetch_bytes<false>(vec + ja * F3, F3 * sizeof(T));
          if (!g.order.empty()) prefetch_bytes<false>(w + ea * F3, F3 * sizeof(T));
        }
        const T* p = phi + j * F3;
        const T* we = w + e * F3;
        const T* vj = vec + j * F3;
        const T* u = unit + e * 3;
        double* a = acc.data();
#pragma omp simd
        for (int64_t c = 0; c < F; ++c) {
          a[c] += static_cast<double>(p[c] * we[c]);
          dvv[c] = p[F + c] * we[F + c];
          dvs[c] = p[2 * F + c] * we[2 * F + c];
        }
        for (int64_t k = 0; k < 3; ++k) {
          const T uk = u[k];
          const T* vk = vj + k * F;
          double* ak = a + F + k * F;
#pragma omp simd
          for (int64_t c = 0; c < F; ++c) {
            const T x = dvv[c] * vk[c];
            const T y = dvs[c] * uk;
            ak[c] += static_cast<double>(x + y);
          }
        }
      }
      T* o = out + i * F4;
      for (int64_t c = 0; c < F4; ++c) o[c] = static_cast<T>(acc[c]);
    }
  }
}

template <typename T>
void backward_impl(const T* G, const T* phi, const T* w, const T* vec, const T* unit, const int64_t* dst,
                   const EdgeGroups& g, int64_t N, int64_t F, T* g_phi, T* g_w, T* g_vec, T* g_unit, int threads) {
  const int64_t F3 = 3 * F, F4 = 4 * F;
#pragma omp parallel num_threads(threads)
  {
    std::vector<double> acc_phi(F3), acc_vec(F3);
#pragma omp for schedule(dynamic, 32)
    for (int64_t j = 0; j < N; ++j) {
      std::fill(acc_phi.begin(), acc_phi.end(), 0.0);
      std::fill(acc_vec.begin(), acc_vec.end(), 0.0);
      const T* p = phi + j * F3;
      const T* vj = vec + j * F3;
      for (int64_t pos = g.ptr[j]; pos < g.ptr[j + 1]; ++pos) {
        const int64_t e = g.edge(pos), i = dst[e];
        if (pos + kAhead < g.ptr[N]) {  // the rows of an edge a few ahead (random: grouped by source)
          const int64_t ea = g.edge(pos + kAhead);
          prefetch_bytes<false>(G + dst[ea] * F4, F4 * sizeof(T));
          prefetch_bytes<false>(w + ea * F3, F3 * sizeof(T));
          prefetch_bytes<true>(g_w + ea * F3, F3 * sizeof(T));
          prefetch_bytes<false>(unit + ea * 3, 3 * sizeof(T));
        }
        const T* gs = G + i * F4;
        const T* gv = gs + F;
        const T* we = w + e * F3;
        const T* u = unit + e * 3;
        T* gw = g_w + e * F3;
        double* ap = acc_phi.data();
        double* av = acc_vec.data();
        double gu0 = 0.0, gu1 = 0.0, gu2 = 0.0;
#pragma omp simd reduction(+ : gu0, gu1, gu2)
        for (int64_t c = 0; c < F; ++c) {
          const T g0 = gv[c], g1 = gv[F + c], g2 = gv[2 * F + c];
          const T gvv = g0 * vj[c] + g1 * vj[F + c] + g2 * vj[2 * F + c];
          const T gvs = g0 * u[0] + g1 * u[1] + g2 * u[2];
          const T dvv = p[F + c] * we[F + c];
          const T dvs = p[2 * F + c] * we[2 * F + c];
          gw[c] = gs[c] * p[c];
          gw[F + c] = gvv * p[F + c];
          gw[2 * F + c] = gvs * p[2 * F + c];
          ap[c] += static_cast<double>(gs[c] * we[c]);
          ap[F + c] += static_cast<double>(gvv * we[F + c]);
          ap[2 * F + c] += static_cast<double>(gvs * we[2 * F + c]);
          av[c] += static_cast<double>(dvv * g0);
          av[F + c] += static_cast<double>(dvv * g1);
          av[2 * F + c] += static_cast<double>(dvv * g2);
          gu0 += static_cast<double>(g0 * dvs);
          gu1 += static_cast<double>(g1 * dvs);
          gu2 += static_cast<double>(g2 * dvs);
        }
        T* gu = g_unit + e * 3;
        gu[0] = static_cast<T>(gu0);
        gu[1] = static_cast<T>(gu1);
        gu[2] = static_cast<T>(gu2);
      }
      T* op = g_phi + j * F3;
      T* ov = g_vec + j * F3;
      for (int64_t c = 0; c < F3; ++c) {
        op[c] = static_cast<T>(acc_phi[c]);
        ov[c] = static_cast<T>(acc_vec[c]);
      }
    }
  }
}

void check_inputs(const at::Tensor& phi, const at::Tensor& w, const at::Tensor& vec, const at::Tensor& unit,
                  const at::Tensor& src, const at::Tensor& dst) {
  for (const at::Tensor* t : {&phi, &w, &vec, &unit, &src, &dst}) {
    GEOMDL_CHECK_CPU((*t));
    GEOMDL_CHECK_CONTIGUOUS((*t));
  }
  GEOMDL_CHECK_DTYPE(src, at::kLong);
  GEOMDL_CHECK_DTYPE(dst, at::kLong);
  TORCH_CHECK(phi.dim() == 2 && phi.size(1) % 3 == 0, "phi must be [N, 3F]");
  const int64_t N = phi.size(0), E = src.size(0), F3 = phi.size(1);
  TORCH_CHECK(w.dim() == 2 && w.size(0) == E && w.size(1) == F3, "w must be [E, 3F]");
  TORCH_CHECK(vec.dim() == 2 && vec.size(0) == N && vec.size(1) == F3, "vec must be [N, 3F]");
  TORCH_CHECK(unit.dim() == 2 && unit.size(0) == E && unit.size(1) == 3, "unit must be [E, 3]");
  TORCH_CHECK(src.dim() == 1 && dst.dim() == 1 && dst.size(0) == E, "src and dst must be [E]");
  for (const at::Tensor* t : {&w, &vec, &unit}) TORCH_CHECK(t->scalar_type() == phi.scalar_type(), "dtypes differ");
}

// out [num_nodes, 4F]: see the top of this file.
at::Tensor painn_message_cpu(const at::Tensor& phi, const at::Tensor& w, const at::Tensor& vec, const at::Tensor& unit,
                             const at::Tensor& src, const at::Tensor& dst, int64_t num_nodes) {
  check_inputs(phi, w, vec, unit, src, dst);
  TORCH_CHECK(num_nodes >= 0, "num_nodes must be >= 0");
  const int64_t N = phi.size(0), E = src.size(0), F = phi.size(1) / 3;
  // ranges first (src is only read through the groups of dst): every bad entry raises, also with F = 0
  const int64_t* s = src.data_ptr<int64_t>();
  for (int64_t e = 0; e < E; ++e)
    TORCH_CHECK_VALUE(static_cast<uint64_t>(s[e]) < static_cast<uint64_t>(N), "edge_index[0] has an entry ", s[e],
                      " out of range: entries must lie in [0, ", N, ")");
  const EdgeGroups g = group_edges(dst.data_ptr<int64_t>(), E, num_nodes, "edge_index[1]");
  at::Tensor out = at::empty({num_nodes, 4 * F}, phi.options());
  if (F == 0 || num_nodes == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(phi.scalar_type(), "geomdl_painn_message_cpu", [&] {
    forward_impl<scalar_t>(phi.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(), vec.data_ptr<scalar_t>(),
                           unit.data_ptr<scalar_t>(), s, g, num_nodes, F, out.data_ptr<scalar_t>(), threads_for(E, F));
  });
  return out;
}

// (g_phi [N, 3F], g_w [E, 3F], g_vec [N, 3F], g_unit [E, 3]) for the output gradient grad [S, 4F].
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> painn_message_backward_cpu(
    const at::Tensor& grad, const at::Tensor& phi, const at::Tensor& w, const at::Tensor& vec, const at::Tensor& unit,
    const at::Tensor& src, const at::Tensor& dst) {
  check_inputs(phi, w, vec, unit, src, dst);
  GEOMDL_CHECK_CPU(grad);
  GEOMDL_CHECK_CONTIGUOUS(grad);
  const int64_t N = phi.size(0), E = src.size(0), F = phi.size(1) / 3;
  TORCH_CHECK(grad.dim() == 2 && grad.size(1) == 4 * F && grad.scalar_type() == phi.scalar_type(),
              "grad must be [S, 4F] of phi's dtype");
  const int64_t S = grad.size(0);
  const int64_t* d = dst.data_ptr<int64_t>();
  for (int64_t e = 0; e < E; ++e)
    TORCH_CHECK_VALUE(static_cast<uint64_t>(d[e]) < static_cast<uint64_t>(S), "edge_index[1] has an entry ", d[e],
                      " out of range: entries must lie in [0, ", S, ")");
  const EdgeGroups g = group_edges(src.data_ptr<int64_t>(), E, N, "edge_index[0]");
  at::Tensor g_phi = at::empty_like(phi), g_w = at::empty_like(w), g_vec = at::empty_like(vec);
  at::Tensor g_unit = at::zeros_like(unit);  // stays 0 when F = 0
  if (F == 0) {
    g_phi.zero_(), g_w.zero_(), g_vec.zero_();
    return {g_phi, g_w, g_vec, g_unit};
  }
  AT_DISPATCH_FLOATING_TYPES(phi.scalar_type(), "geomdl_painn_message_backward_cpu", [&] {
    backward_impl<scalar_t>(grad.data_ptr<scalar_t>(), phi.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(),
                            vec.data_ptr<scalar_t>(), unit.data_ptr<scalar_t>(), d, g, N, F,
                            g_phi.data_ptr<scalar_t>(), g_w.data_ptr<scalar_t>(), g_vec.data_ptr<scalar_t>(),
                            g_unit.data_ptr<scalar_t>(), threads_for(E, F));
  });
  return {g_phi, g_w, g_vec, g_unit};
}

}  // namespace

TORCH_LIBRARY_IMPL(geomdl, CPU, m) {
  m.impl("painn_message", &painn_message_cpu);
  m.impl("painn_message_backward", &painn_message_backward_cpu);
}

}  // namespace geomdl
