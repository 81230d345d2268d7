// The CUDA Gaunt kernel (gaunt_cuda.cu): its constants, the index helpers shared by the host
// (shared-memory sizes) and the device (staging and compute), and the kernel parameters.
// Header-only code in an unnamed namespace: every .cu that includes it gets its own copy (the
// extension is built without relocatable device code).
#pragma once

#include <cstdint>

#include "common/cuda_utils.cuh"

namespace geomdl {
namespace gaunt {
namespace {

constexpr int kThreads = 256;  // threads per CTA (T columns x kThreads / T rows)
constexpr int kMaxOther = 2;

// ----------------------------------------------------------------------------------------------
// Index helpers shared by the host (shared-memory sizes) and the device (staging and compute).

__host__ __device__ inline int round4(int n) { return (n + 3) & ~3; }

// Group g of the (v, s) pairs in the kernel's row order: g = 0 -> (0, +), then (1, +), (1, -), (2, +), ...
__host__ __device__ inline void group_vs(int g, int& v, int& s) {
  v = (g + 1) / 2;
  s = g == 0 ? 0 : ((g + 1) & 1);
}

// First row of group (v, s) in the kernel's row order (v, s, parity of l - v, l) of a degree-L
// operand: the v = 0 group has L+1 rows, every other group L+1-v rows.
__host__ __device__ inline int theta_base(int L, int v, int s) {
  return v == 0 ? 0 : (L + 1) + (v - 1) * (2 * L + 2 - v) + s * (L + 1 - v);
}

// Output rows l = v + par, v + par + 2, ... <= Lz of projection group (v, par).
__host__ __device__ inline int proj_rows(int Lz, int v, int par) {
  return par ? (Lz - v + 1) / 2 : (Lz - v) / 2 + 1;
}

// Offset of the folded projection table of (group g, parity par) in the staged table of degree Lz:
// group g holds [jh][round4(rows even)] then [hp][round4(rows odd)].
__host__ __device__ inline int proj_table_offset(int Lz, int jh, int hp, int g, int par) {
  int off = 0;
  for (int gg = 0; gg < g; ++gg) {
    int v, s;
    group_vs(gg, v, s);
    off += round4(proj_rows(Lz, v, 0)) * jh + round4(proj_rows(Lz, v, 1)) * hp;
  }
  if (par) {
    int v, s;
    group_vs(g, v, s);
    off += round4(proj_rows(Lz, v, 0)) * jh;
  }
  return off;
}

// Analysis group gi = 2c + par: c = 0 (cos: S), c = 1 (sin: D); output rows v' = vfirst + 2r (r < n)
// from kd folded azimuths of the rows starting at xrow * J of the SD array (S+ | S- | D- | D+).
struct AnalysisGroup {
  int c, vfirst, n, kd, xrow;
};
__host__ __device__ inline AnalysisGroup analysis_group(int gi, int Lz, int hq, int kh) {
  AnalysisGroup a;
  a.c = gi >> 1;
  const int par = gi & 1;
  a.vfirst = a.c == 0 ? par : (par ? 1 : 2);
  a.n = Lz >= a.vfirst ? (Lz - a.vfirst) / 2 + 1 : 0;
  a.kd = (a.c == par) ? kh : hq;
  a.xrow = gi == 0 ? 0 : (gi == 1 ? kh : (gi == 2 ? kh + hq : kh + 2 * hq));
  return a;
}

// ----------------------------------------------------------------------------------------------
// Kernel parameters (by value).

template <typename S>
struct Params {
  const S* a;
  const int64_t* lay_a;  // [(La+1)^2, 2] in the kernel's row order
  int64_t ns_a;
  const S* th_a;
  const S* ph_a;
  int La;
  int n_other;
  const S* other[kMaxOther];
  const int64_t* lay_o[kMaxOther];  // kernel's row order
  int64_t ns_o[kMaxOther];
  const S* th_o[kMaxOther];
  const S* ph_o[kMaxOther];
  int Lo[kMaxOther];
  const S* an[kMaxOther];
  const S* pr[kMaxOther];
  int Lz[kMaxOther];
  S* out[kMaxOther];
  const int64_t* lay_z[kMaxOther];  // natural row order l^2 + l + m
  int64_t ns_z[kMaxOther];
  int J, K, hp, mp, hq, mq, Jp, Kp;
  int64_t R, C, tiles;
  // shared-memory offsets (elements): staged tables, then the per-column regions
  int s_th_a, s_ph_a, s_th_o[kMaxOther], s_ph_o[kMaxOther], s_an[kMaxOther], s_pr[kMaxOther];
  int s_po[kMaxOther];  // int offsets of the projection groups (stored in S-sized slots)
  int s_ra, s_r2, s_r4;
};

}  // namespace
}  // namespace gaunt
}  // namespace geomdl
