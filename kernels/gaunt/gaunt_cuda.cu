// CUDA Gaunt product on columns: geomdl::gaunt_columns (schema in kernels/registration.cpp).
//
//   out[i] = Proj_{<= Lo_i} [ f_a * f_{other[i]} ]   for every column r (one (node, channel) pair),
//
// the same half-torus algorithm, tables and mirror symmetries as the CPU kernel (kernels/gaunt/
// gaunt_cpu.cpp, gaunt_block.h; maths of geomdl.o3.gaunt_product._gaunt_columns_reference):
//
//   theta  G[v,s,j]  = sum_l theta[v,s,j,l] x[l, s ? -v : v]       (even / odd l, then butterfly j <-> P-j)
//   phi    Ee, Eo, Oe, Oo [k, j] from G (even / odd v, k < K/2 (+ middle)), for a and the other input
//   product S+ S- D- D+ [k, j] (fused with both phi syntheses: only the product is stored)
//   analysis spec[c, v', j] = sum_k an[c, v', k] (S+ | S- | D- | D+)[k, j] (+ fold j <-> P-j)
//   proj   z[l, +-v'] = sum_j proj[c, v', l, j] fold[j]            -> written straight to the output
//
// Per tile: x of a and of the first other input are gathered together, their theta stages run as one
// list of work items, and G of a stays in shared memory for the second other input (fused backward:
// the azimuthal synthesis of a is recomputed inside each product stage instead of being stored).
//
// One CTA = kThreads threads = a tile of T consecutive columns (threadIdx.x = column: coalesced loads
// and stores when the channel stride is 1) x kThreads / T thread rows (threadIdx.y) that split the
// output rows of every small GEMM. Every per-column intermediate lives in shared memory as
// [row][T] (column fastest: conflict-free), and the plan tables are staged once per CTA in shared
// memory, folded by the mirror symmetries, zero-padded to blocks of 4 output rows and transposed so
// that the 4 table values of one inner index are one vector load (a broadcast in the warp). A thread
// computes 4 output rows of one column per work item (register blocking), and CTAs loop over tiles.
//
// Shared memory per CTA: the folded tables + T columns x (G of a [2 (La+1) J] + x of a and other / SD
// [max(2KJ, (La+1)^2 + (Lo+1)^2)] + G of other / spec [2 max(Lo+1, Lz+1) J]) elements, J x K the half
// torus; T = 32, 16 or 8, the largest that fits the device (else a clear error). E.g. L = 6 (J = 14,
// K = 11): 97 KB (float32, T = 32, 2 CTAs per SM), 194 KB (float64, T = 32); L = 8 float64: T = 16.
//
// The layouts arrive as CPU int64 tensors (the dispatcher routes here because the data are CUDA
// tensors): they are read on the host, checked like the CPU kernel checks them, permuted into the
// kernel's row order and copied to the device with the call.
//
// Files: gaunt_params.cuh (constants, index helpers, kernel parameters), gaunt_staging.cuh (tables
// and operand rows into shared memory), gaunt_stages.cuh (the compute stages), this file (the kernel,
// its launch and the op).
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "common/checks.h"
#include "common/cuda_utils.cuh"
#include "gaunt/gaunt_host.h"
#include "gaunt/gaunt_params.cuh"
#include "gaunt/gaunt_staging.cuh"
#include "gaunt/gaunt_stages.cuh"

namespace geomdl {
namespace gaunt {
namespace {

// ----------------------------------------------------------------------------------------------
// The kernel: stage the tables, then loop over tiles of T columns.

template <typename S, int T>
__global__ void __launch_bounds__(kThreads) gaunt_columns_kernel(const Params<S> p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  S* sm = reinterpret_cast<S*>(smem_raw);
  const int col = threadIdx.x, y = threadIdx.y, tid = y * T + col;
  const int J = p.J, hp = p.hp, mp = p.mp, hq = p.hq, mq = p.mq, Jp = p.Jp, Kp = p.Kp;

  stage_theta(sm + p.s_th_a, p.th_a, p.La, J, hp, mp, Jp, tid);
  stage_phi(sm + p.s_ph_a, p.ph_a, p.La, p.K, hq + mq, Kp, tid);
#pragma unroll
  for (int i = 0; i < kMaxOther; ++i) {
    if (i < p.n_other) {
      stage_theta(sm + p.s_th_o[i], p.th_o[i], p.Lo[i], J, hp, mp, Jp, tid);
      stage_phi(sm + p.s_ph_o[i], p.ph_o[i], p.Lo[i], p.K, hq + mq, Kp, tid);
      stage_analysis(sm + p.s_an[i], p.an[i], p.Lz[i], p.K, hq, hq + mq, tid);
      stage_proj(sm + p.s_pr[i], reinterpret_cast<int*>(sm + p.s_po[i]), p.pr[i], p.Lz[i], J, hp, mp, tid);
    }
  }
  __syncthreads();

  S* RA = sm + p.s_ra;  // G of a (kept for every other input)
  S* R2 = sm + p.s_r2;  // gathered x (a, then the other), then SD
  S* R4 = sm + p.s_r4;  // G of the other, then the folded spec
  const int rows_a = (p.La + 1) * (p.La + 1);
  S* XO = R2 + rows_a * T;  // x of the other input, after that of a
  for (int64_t tile = blockIdx.x; tile < p.tiles; tile += gridDim.x) {
    const int64_t r = tile * T + col;
    const bool valid = r < p.R;
    int64_t b = 0, ch = 0;
    if (valid) {
      b = r / p.C;
      ch = r - b * p.C;
    }
    // R2 was last read by the previous tile's analysis (synchronised since)
    load_rows<S, T>(p.a, p.lay_a, p.ns_a, rows_a, b, ch, valid, R2, col, y);
#pragma unroll
    for (int i = 0; i < kMaxOther; ++i) {
      if (i < p.n_other) {  // uniform in the CTA
        // R2: x of the previous other consumed by theta, its SD by its analysis (synchronised since)
        load_rows<S, T>(p.other[i], p.lay_o[i], p.ns_o[i], (p.Lo[i] + 1) * (p.Lo[i] + 1), b, ch, valid, XO, col, y);
        __syncthreads();  // x ready; the previous proj has finished reading R4 (and the previous product RA)
        theta_stage<S, T>(i == 0, sm + p.s_th_a, p.La, R2, RA, sm + p.s_th_o[i], p.Lo[i], XO, R4, J, hp, mp, Jp, col,
                          y);
        __syncthreads();
        product_stage<S, T>(sm + p.s_ph_a, p.La, RA, sm + p.s_ph_o[i], p.Lo[i], R4, J, hq, mq, Kp, R2, col, y);
        __syncthreads();
        analysis_stage<S, T>(sm + p.s_an[i], p.Lz[i], J, hp, mp, hq, mq, R2, R4, col, y);
        __syncthreads();
        proj_stage<S, T>(sm + p.s_pr[i], reinterpret_cast<const int*>(sm + p.s_po[i]), p.Lz[i], J, hp, mp, R4,
                         p.out[i], p.lay_z[i], p.ns_z[i], b, ch, valid, col, y);
      }
    }
  }
}

// ----------------------------------------------------------------------------------------------
// Host side.

void check_synthesis(const at::Tensor& theta, const at::Tensor& phi, int64_t L, int64_t J, int64_t K,
                     const at::Tensor& like, const char* name) {
  TORCH_CHECK(theta.device() == like.device() && phi.device() == like.device(), name,
              ": tables must be on the device of the columns (", like.device(), ")");
  check_table_shapes(theta, phi, L, J, K, like, name);
}

// The layout [rows, 2] (offset, channel stride) of an operand with `numel` elements, as a contiguous
// CPU int64 tensor (the layouts are built on the CPU; a device copy is brought back), checked like
// the CPU kernel checks it.
at::Tensor host_layout(const at::Tensor& layout, int64_t node_stride, int64_t rows, int64_t numel, int64_t nodes,
                       int64_t C, const char* name) {
  at::Tensor h = layout.cpu().contiguous();
  check_layout(h, node_stride, rows, numel, nodes, C, name);
  return h;
}

template <typename S, int T>
void launch(const Params<S>& p, int64_t smem_bytes, int device) {
  auto kernel = gaunt_columns_kernel<S, T>;
  geomdl::cuda::allow_optin_shared_memory(kernel, device);
  const unsigned int grid = geomdl::cuda::resident_grid(kernel, kThreads, smem_bytes, device, p.tiles, "gaunt_columns (CUDA)");
  kernel<<<grid, dim3(T, kThreads / T), static_cast<size_t>(smem_bytes), geomdl::cuda::stream()>>>(p);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

std::vector<at::Tensor> gaunt_columns_cuda(const at::Tensor& a, const at::Tensor& a_theta, const at::Tensor& a_phi,
                                           at::TensorList others, at::TensorList theta, at::TensorList phi,
                                           at::TensorList analysis, at::TensorList proj, at::TensorList layouts,
                                           at::IntArrayRef node_strides, at::IntArrayRef out_numel, int64_t columns,
                                           int64_t channels) {
  GEOMDL_CHECK_CUDA(a);
  check_call(a, a_theta, a_phi, others, theta, phi, analysis, proj, layouts, node_strides, out_numel, columns, channels,
             kMaxOther);
  const int64_t n = static_cast<int64_t>(others.size());
  c10::cuda::CUDAGuard guard(a.device());
  const int64_t J = a_theta.size(2), K = a_phi.size(1), R = columns, C = channels, nodes = columns / channels;
  TORCH_CHECK(J <= 4096 && K <= 4096, "gaunt_columns (CUDA): torus too large (J = ", J, ", K = ", K, ")");
  const int64_t La = a_theta.size(0) - 1;
  check_synthesis(a_theta, a_phi, La, J, K, a, "a");
  const at::Tensor lay_a = host_layout(layouts[0], node_strides[0], (La + 1) * (La + 1), a.numel(), nodes, C, "a");

  std::vector<at::Tensor> outs, lay_o, lay_z;
  int64_t Lo[kMaxOther] = {0, 0}, Lz[kMaxOther] = {0, 0};
  for (int64_t i = 0; i < n; ++i) {
    const at::Tensor& o = others[i];
    TORCH_CHECK(o.device() == a.device(), "others[", i, "] must be on the device of a (", a.device(), ")");
    GEOMDL_CHECK_CONTIGUOUS(o);
    TORCH_CHECK(o.scalar_type() == a.scalar_type(), "others[", i, "] must have the dtype of a");
    Lo[i] = theta[i].dim() == 4 ? theta[i].size(0) - 1 : -1;
    check_synthesis(theta[i], phi[i], Lo[i], J, K, a, "others[i]");
    lay_o.push_back(host_layout(layouts[1 + i], node_strides[1 + i], (Lo[i] + 1) * (Lo[i] + 1), o.numel(), nodes, C,
                                "others[i]"));
    const at::Tensor& an = analysis[i];
    const at::Tensor& pr = proj[i];
    TORCH_CHECK(an.device() == a.device() && pr.device() == a.device(),
                "analysis[i] and proj[i] must be on the device of a (", a.device(), ")");
    GEOMDL_CHECK_CONTIGUOUS(an);
    GEOMDL_CHECK_CONTIGUOUS(pr);
    TORCH_CHECK(an.dim() == 3 && an.size(0) == 2 && an.size(1) >= 1 && an.size(2) == K &&
                    an.scalar_type() == a.scalar_type(),
                "analysis[i] must be [2, Lo+1, K] with K = ", K, ", got ", an.sizes());
    const int64_t lo = an.size(1) - 1;
    TORCH_CHECK(pr.dim() == 4 && pr.size(0) == 2 && pr.size(1) == lo + 1 && pr.size(2) == lo + 1 &&
                    pr.size(3) == J && pr.scalar_type() == a.scalar_type(),
                "proj[i] must be [2, Lo+1, Lo+1, J] = [2, ", lo + 1, ", ", lo + 1, ", ", J, "], got ", pr.sizes());
    Lz[i] = lo;
    TORCH_CHECK(out_numel[i] >= 0, "out_numel must be >= 0");
    lay_z.push_back(host_layout(layouts[1 + n + i], node_strides[1 + n + i], (lo + 1) * (lo + 1), out_numel[i], nodes, C,
                                "out[i]"));
    const int64_t* lzp = lay_z.back().data_ptr<int64_t>();
    bool complete = true;  // every output element written? (else start from zeros)
    for (int64_t r = 0; r < (lo + 1) * (lo + 1); ++r) complete = complete && lzp[2 * r] >= 0;
    complete = complete && (lo + 1) * (lo + 1) * columns == out_numel[i];
    outs.push_back(complete ? at::empty({out_numel[i]}, a.options()) : at::zeros({out_numel[i]}, a.options()));
  }
  if (R == 0) return outs;

  // Layouts of a and the others in the kernel's row order, of the outputs in the natural order:
  // one int64 buffer copied to the device with the call (pinned memory, stream-ordered).
  std::vector<int64_t> meta;
  auto append_ordered = [&meta](const at::Tensor& lay, int64_t L) {
    const int64_t* t = lay.data_ptr<int64_t>();
    for (int64_t row : row_order(L)) {
      meta.push_back(t[2 * row]);
      meta.push_back(t[2 * row + 1]);
    }
  };
  int64_t m_a = 0, m_o[kMaxOther] = {0, 0}, m_z[kMaxOther] = {0, 0};
  append_ordered(lay_a, La);
  for (int64_t i = 0; i < n; ++i) {
    m_o[i] = static_cast<int64_t>(meta.size());
    append_ordered(lay_o[i], Lo[i]);
  }
  for (int64_t i = 0; i < n; ++i) {
    m_z[i] = static_cast<int64_t>(meta.size());
    const int64_t* t = lay_z[i].data_ptr<int64_t>();
    meta.insert(meta.end(), t, t + 2 * (Lz[i] + 1) * (Lz[i] + 1));
  }
  const auto pinned = at::TensorOptions().dtype(at::kLong).pinned_memory(true);
  at::Tensor meta_host = at::empty({static_cast<int64_t>(meta.size())}, pinned);
  std::copy(meta.begin(), meta.end(), meta_host.data_ptr<int64_t>());
  const at::Tensor meta_dev = meta_host.to(a.device(), at::kLong, /*non_blocking=*/true);
  const int64_t* md = meta_dev.data_ptr<int64_t>();

  // Shared memory: folded tables, then T columns of the per-column regions.
  const int64_t hp = J / 2, mp = (J - 1) % 2 == 0 ? 1 : 0, hq = K / 2, mq = (K - 1) % 2 == 0 ? 1 : 0;
  const int64_t jh = hp + mp, kh = hq + mq, Jp = (jh + 3) / 4 * 4, Kp = (kh + 3) / 4 * 4;
  int64_t Lin = La, Lzmax = 0;
  for (int64_t i = 0; i < n; ++i) {
    Lin = std::max(Lin, Lo[i]);
    Lzmax = std::max(Lzmax, Lz[i]);
  }
  TORCH_CHECK(Lin <= 256 && Lzmax <= 256, "gaunt_columns (CUDA): degrees above 256 are not supported");
  auto theta_elems = [&](int64_t L) { return (L + 1) * (L + 1) * Jp; };
  auto phi_elems = [&](int64_t L) { return 2 * (L + 1) * Kp; };
  auto an_elems = [&](int64_t L) { return 4 * kh * ((L / 2 + 1 + 3) / 4 * 4); };
  auto proj_elems = [&](int64_t L) {
    return static_cast<int64_t>(proj_table_offset(static_cast<int>(L), static_cast<int>(jh), static_cast<int>(hp),
                                                  static_cast<int>(2 * L + 1), 0));
  };
  int64_t tables = 0;
  auto take = [&tables](int64_t elems) {
    const int64_t at = tables;
    tables += (elems + 3) / 4 * 4;
    return at;
  };
  const int64_t s_th_a = take(theta_elems(La)), s_ph_a = take(phi_elems(La));
  int64_t s_th_o[kMaxOther] = {0, 0}, s_ph_o[kMaxOther] = {0, 0}, s_an[kMaxOther] = {0, 0}, s_pr[kMaxOther] = {0, 0},
          s_po[kMaxOther] = {0, 0};
  for (int64_t i = 0; i < n; ++i) {
    s_th_o[i] = take(theta_elems(Lo[i]));
    s_ph_o[i] = take(phi_elems(Lo[i]));
    s_an[i] = take(an_elems(Lz[i]));
    s_pr[i] = take(proj_elems(Lz[i]));
    s_po[i] = take(2 * Lz[i] + 1);  // ints, one S-sized slot each
  }
  int64_t Lomax = 0;
  for (int64_t i = 0; i < n; ++i) Lomax = std::max(Lomax, Lo[i]);
  const int64_t ra = 2 * (La + 1) * J;                                            // G of a
  const int64_t r2 = std::max(2 * K * J, (La + 1) * (La + 1) + (Lomax + 1) * (Lomax + 1));  // x of a and other, SD
  const int64_t r4 = std::max(2 * (Lomax + 1) * J, 2 * (Lzmax + 1) * J);          // G of the other, spec
  const int64_t per_column = ra + r2 + r4;

  int device = a.get_device();
  int smem_optin = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  const int64_t elem = static_cast<int64_t>(a.element_size());
  int tile = 0;
  int64_t smem_bytes = 0;
  for (int t : {32, 16, 8}) {
    const int64_t bytes = (tables + per_column * t) * elem;
    if (bytes <= smem_optin) {
      tile = t;
      smem_bytes = bytes;
      break;
    }
  }
  TORCH_CHECK(tile > 0, "gaunt_columns (CUDA): degrees (a: ", La, ", others up to ", Lin, ", outputs up to ", Lzmax,
              ") on a ", J, " x ", K, " half torus need ", (tables + per_column * 8) * elem,
              " bytes of shared memory per block of 8 columns in ", a.scalar_type(), ", the device allows ", smem_optin);

  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "gaunt_columns_cuda", [&] {
    using S = scalar_t;
    Params<S> p{};
    p.a = a.data_ptr<S>();
    p.lay_a = md + m_a;
    p.ns_a = node_strides[0];
    p.th_a = a_theta.data_ptr<S>();
    p.ph_a = a_phi.data_ptr<S>();
    p.La = static_cast<int>(La);
    p.n_other = static_cast<int>(n);
    for (int64_t i = 0; i < n; ++i) {
      p.other[i] = others[i].data_ptr<S>();
      p.lay_o[i] = md + m_o[i];
      p.ns_o[i] = node_strides[1 + i];
      p.th_o[i] = theta[i].data_ptr<S>();
      p.ph_o[i] = phi[i].data_ptr<S>();
      p.Lo[i] = static_cast<int>(Lo[i]);
      p.an[i] = analysis[i].data_ptr<S>();
      p.pr[i] = proj[i].data_ptr<S>();
      p.Lz[i] = static_cast<int>(Lz[i]);
      p.out[i] = outs[i].data_ptr<S>();
      p.lay_z[i] = md + m_z[i];
      p.ns_z[i] = node_strides[1 + n + i];
      p.s_th_o[i] = static_cast<int>(s_th_o[i]);
      p.s_ph_o[i] = static_cast<int>(s_ph_o[i]);
      p.s_an[i] = static_cast<int>(s_an[i]);
      p.s_pr[i] = static_cast<int>(s_pr[i]);
      p.s_po[i] = static_cast<int>(s_po[i]);
    }
    p.J = static_cast<int>(J);
    p.K = static_cast<int>(K);
    p.hp = static_cast<int>(hp);
    p.mp = static_cast<int>(mp);
    p.hq = static_cast<int>(hq);
    p.mq = static_cast<int>(mq);
    p.Jp = static_cast<int>(Jp);
    p.Kp = static_cast<int>(Kp);
    p.R = R;
    p.C = C;
    p.tiles = (R + tile - 1) / tile;
    p.s_th_a = static_cast<int>(s_th_a);
    p.s_ph_a = static_cast<int>(s_ph_a);
    p.s_ra = static_cast<int>(tables);
    p.s_r2 = static_cast<int>(tables + ra * tile);
    p.s_r4 = static_cast<int>(tables + (ra + r2) * tile);
    switch (tile) {
      case 32: launch<S, 32>(p, smem_bytes, device); break;
      case 16: launch<S, 16>(p, smem_bytes, device); break;
      default: launch<S, 8>(p, smem_bytes, device); break;
    }
  });
  return outs;
}

}  // namespace
}  // namespace gaunt

TORCH_LIBRARY_IMPL(geomdl, CUDA, m) { m.impl("gaunt_columns", &gaunt::gaunt_columns_cuda); }

}  // namespace geomdl
