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
#include <torch/library.h>

#include <cstdint>
#include <vector>

#include "common/checks.h"
#include "common/cuda_utils.cuh"
#include "gaunt/gaunt_host.h"

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

template <typename S>
__device__ __forceinline__ void load4(const S* p, S (&t)[4]);
template <>
__device__ __forceinline__ void load4<float>(const float* p, float (&t)[4]) {
  const float4 q = *reinterpret_cast<const float4*>(p);
  t[0] = q.x;
  t[1] = q.y;
  t[2] = q.z;
  t[3] = q.w;
}
template <>
__device__ __forceinline__ void load4<double>(const double* p, double (&t)[4]) {
  const double2 q0 = *reinterpret_cast<const double2*>(p);
  const double2 q1 = *reinterpret_cast<const double2*>(p + 2);
  t[0] = q0.x;
  t[1] = q0.y;
  t[2] = q1.x;
  t[3] = q1.y;
}

// (hi, lo) = (w / n, w % n) for w = start, start + step, ... without a division per step (n >= 1).
struct Counter {
  int hi, lo, dhi, dlo, n;
  __device__ __forceinline__ Counter(int start, int step, int n_) : n(n_) {
    hi = start / n;
    lo = start - hi * n;
    dhi = step / n;
    dlo = step - dhi * n;
  }
  __device__ __forceinline__ void next() {
    hi += dhi;
    lo += dlo;
    if (lo >= n) {
      lo -= n;
      ++hi;
    }
  }
};

// ----------------------------------------------------------------------------------------------
// Staging of the tables (once per CTA), folded by the mirror symmetries and zero-padded.

// theta [L+1, 2, J, L+1] -> Th[kr * Jp + r] for kernel row kr = base(v,s) + kk: theta[v, s, j = r, l]
// (r < hp + mp for even l - v, r < hp for odd l - v, else 0).
template <typename S>
__device__ void stage_theta(S* dst, const S* __restrict__ theta, int L, int J, int hp, int mp, int Jp, int tid) {
  const int jh = hp + mp;
  for (int g = 0; g < 2 * L + 1; ++g) {
    int v, s;
    group_vs(g, v, s);
    const int base = theta_base(L, v, s), ne = (L - v) / 2 + 1, rows = L + 1 - v;
    for (int e = tid; e < rows * Jp; e += kThreads) {
      const int kk = e / Jp, r = e - kk * Jp;
      const int par = kk >= ne ? 1 : 0;
      const int l = v + par + 2 * (par ? kk - ne : kk);
      S val = S(0);
      if (r < (par ? hp : jh)) val = theta[(static_cast<int64_t>(v * 2 + s) * J + r) * (L + 1) + l];
      dst[(base + kk) * Jp + r] = val;
    }
  }
}

// phi [2, K, L+1] -> Ph[(s * (L+1) + v) * Kp + r] = phi[s, k = r, v] (r < hq + mq, else 0).
template <typename S>
__device__ void stage_phi(S* dst, const S* __restrict__ phi, int L, int K, int kh, int Kp, int tid) {
  const int n = 2 * (L + 1) * Kp;
  for (int e = tid; e < n; e += kThreads) {
    const int row = e / Kp, r = e - row * Kp;
    const int s = row / (L + 1), v = row - s * (L + 1);
    dst[e] = r < kh ? phi[(static_cast<int64_t>(s) * K + r) * (L + 1) + v] : S(0);
  }
}

// analysis [2, Lz+1, K] -> An[(gi * kh + k) * VP + r] = analysis[c, vfirst + 2r, k] (r < n, k < kd).
template <typename S>
__device__ void stage_analysis(S* dst, const S* __restrict__ an, int Lz, int K, int hq, int kh, int tid) {
  const int VP = round4(Lz / 2 + 1);
  const int n = 4 * kh * VP;
  for (int e = tid; e < n; e += kThreads) {
    const int gi = e / (kh * VP), rem = e - gi * kh * VP;
    const int k = rem / VP, r = rem - k * VP;
    const AnalysisGroup ag = analysis_group(gi, Lz, hq, kh);
    S val = S(0);
    if (r < ag.n && k < ag.kd) val = an[(static_cast<int64_t>(ag.c) * (Lz + 1) + ag.vfirst + 2 * r) * K + k];
    dst[e] = val;
  }
}

// proj [2, Lz+1 (v), Lz+1 (l), J] -> per (group g = (v, c), parity par): [j < (par ? hp : hp+mp)][np]
// with entry r = proj[c, v, l = v + par + 2r, j] (r < rows, zero-padded to np = round4(rows)).
// offs[g] = offset of group g (parity 0) in the staged table (ints; the parity-1 part follows it).
template <typename S>
__device__ void stage_proj(S* dst, int* offs, const S* __restrict__ pr, int Lz, int J, int hp, int mp, int tid) {
  const int jh = hp + mp;
  for (int g = tid; g < 2 * Lz + 1; g += kThreads) offs[g] = proj_table_offset(Lz, jh, hp, g, 0);
  int off = 0;
  for (int g = 0; g < 2 * Lz + 1; ++g) {
    int v, c;
    group_vs(g, v, c);
    for (int par = 0; par < 2; ++par) {
      const int n = proj_rows(Lz, v, par), np = round4(n), kd = par ? hp : jh;
      for (int e = tid; e < np * kd; e += kThreads) {
        const int j = e / np, r = e - j * np;
        S val = S(0);
        if (r < n) {
          const int l = v + par + 2 * r;
          val = pr[((static_cast<int64_t>(c) * (Lz + 1) + v) * (Lz + 1) + l) * J + j];
        }
        dst[off + e] = val;
      }
      off += np * kd;
    }
  }
}

// ----------------------------------------------------------------------------------------------
// Stages of one tile. Work items (4 output rows of one GEMM) are split between the thread rows y;
// every thread computes its own column `col` of each item.

// Rows [0, rows) of an operand (layout in the kernel's row order) -> X[k * T + col] (0 when absent).
template <typename S, int T>
__device__ __forceinline__ void load_rows(const S* __restrict__ src, const int64_t* __restrict__ lay, int64_t ns,
                                          int rows, int64_t b, int64_t ch, bool valid, S* X, int col, int y) {
  constexpr int kY = kThreads / T;
  const int64_t base = b * ns;
#pragma unroll 4
  for (int k = y; k < rows; k += kY) {
    const int64_t off = __ldg(lay + 2 * k), cs = __ldg(lay + 2 * k + 1);
    S val = S(0);
    if (valid && off >= 0) val = __ldg(src + off + base + ch * cs);
    X[k * T + col] = val;
  }
}

// One theta work item: group g = (v, s) of a degree-L operand, polar rows j = r0..r0+3 (and their
// mirrors P - j): X (kernel row order) -> G[((s * (L+1) + v) * J + j) * T + col].
template <typename S, int T>
__device__ __forceinline__ void theta_item(const S* Th, int L, int J, int hp, int mp, int Jp, const S* X, S* G, int g,
                                           int r0, int col) {
  const int jh = hp + mp, P = J - 1;
  int v, s;
  group_vs(g, v, s);
  const int base = theta_base(L, v, s), ne = (L - v) / 2 + 1, no = (L - v + 1) / 2;
  const S* th = Th + base * Jp + r0;
  const S* xp = X + base * T + col;
  S ae[4] = {S(0), S(0), S(0), S(0)}, ao[4] = {S(0), S(0), S(0), S(0)};
  for (int k = 0; k < ne; ++k) {
    S t[4];
    load4(th + k * Jp, t);
    const S xv = xp[k * T];
#pragma unroll
    for (int i = 0; i < 4; ++i) ae[i] += t[i] * xv;
  }
  th += ne * Jp;
  xp += ne * T;
  for (int k = 0; k < no; ++k) {
    S t[4];
    load4(th + k * Jp, t);
    const S xv = xp[k * T];
#pragma unroll
    for (int i = 0; i < 4; ++i) ao[i] += t[i] * xv;
  }
  S* gp = G + (s * (L + 1) + v) * J * T + col;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int j = r0 + i;
    if (j < hp) {
      gp[j * T] = ae[i] + ao[i];
      gp[(P - j) * T] = ae[i] - ao[i];
    } else if (j < jh) {  // middle row j = P/2 (J odd): the odd part vanishes there
      gp[j * T] = ae[i];
    }
  }
}

// Theta stage of the other input (degree Lo: XO -> GO) and, when with_a, of a (degree La: XA -> GA)
// in the same pass (one list of work items).
template <typename S, int T>
__device__ __forceinline__ void theta_stage(bool with_a, const S* ThA, int La, const S* XA, S* GA, const S* ThO, int Lo,
                                            const S* XO, S* GO, int J, int hp, int mp, int Jp, int col, int y) {
  constexpr int kY = kThreads / T;
  const int nb = (hp + mp + 3) / 4;  // blocks of 4 polar rows
  const int ga = with_a ? 2 * La + 1 : 0;  // groups of a first, then those of the other input
  const int nitems = (ga + 2 * Lo + 1) * nb;
  Counter it(y, kY, nb);  // (group, block of rows)
  for (int w = y; w < nitems; w += kY, it.next()) {
    if (it.hi < ga)
      theta_item<S, T>(ThA, La, J, hp, mp, Jp, XA, GA, it.hi, 4 * it.lo, col);
    else
      theta_item<S, T>(ThO, Lo, J, hp, mp, Jp, XO, GO, it.hi - ga, 4 * it.lo, col);
  }
}

// Azimuthal synthesis of one column of a degree-L operand at azimuth rows k0..k0+3 (k < hq + mq) and
// polar row j: Ee, Oo (every k < hq + mq) and Eo, Oe (k < hq; the values at k = hq are unused):
// E[k] = Ee + Eo, E[Q-k] = Ee - Eo, O[k] = Oe + Oo, O[Q-k] = Oo - Oe.
template <typename S, int T>
__device__ __forceinline__ void phi_gemm(const S* Ph, int L, int J, int Kp, const S* G, int k0, int j, int col,
                                         S (&ee)[4], S (&eo)[4], S (&oe)[4], S (&oo)[4]) {
  const int JT = J * T;
  const S* g0 = G + j * T + col;                  // s = 0 (cos), + v * JT
  const S* g1 = G + ((L + 1) * J + j) * T + col;  // s = 1 (sin), + v * JT (v >= 1; v = 0 is never written)
  const S* p0 = Ph + k0;                          // + v * Kp
  const S* p1 = Ph + (L + 1) * Kp + k0;           // + v * Kp
  {
    S t[4];
    load4(p0, t);
    const S gv = g0[0];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      ee[i] = t[i] * gv;
      eo[i] = S(0);
      oe[i] = S(0);
      oo[i] = S(0);
    }
  }
  for (int v = 1; v <= L; v += 2) {
    {  // odd v
      S t0[4], t1[4];
      load4(p0 + v * Kp, t0);
      load4(p1 + v * Kp, t1);
      const S c0 = g0[v * JT], c1 = g1[v * JT];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        eo[i] += t0[i] * c0;
        oo[i] += t1[i] * c1;
      }
    }
    if (v + 1 <= L) {  // even v + 1 >= 2
      S t0[4], t1[4];
      load4(p0 + (v + 1) * Kp, t0);
      load4(p1 + (v + 1) * Kp, t1);
      const S c0 = g0[(v + 1) * JT], c1 = g1[(v + 1) * JT];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        ee[i] += t0[i] * c0;
        oe[i] += t1[i] * c1;
      }
    }
  }
}

// Azimuthal synthesis of a (GA, degree La) and of the other input (GO, degree Lo) and their product on
// the folded azimuths (the CPU kernel's `multiply`): SD = S+ [hq+mq][J], S- [hq][J], D- [hq][J],
// D+ [hq+mq][J] (rows of T columns), S+-[k] = S[k] +- S[Q-k] (S at the middle azimuth), same for D.
template <typename S, int T>
__device__ __forceinline__ void product_stage(const S* PhA, int La, const S* GA, const S* PhO, int Lo, const S* GO,
                                              int J, int hq, int mq, int Kp, S* SD, int col, int y) {
  constexpr int kY = kThreads / T;
  const int kh = hq + mq, JT = J * T;
  const int nkb = (kh + 3) / 4;
  const int nitems = nkb * J;
  Counter it(y, kY, J);  // (block of azimuth rows, polar row)
  for (int w = y; w < nitems; w += kY, it.next()) {
    const int j = it.lo, k0 = 4 * it.hi;
    S ee1[4], eo1[4], oe1[4], oo1[4], ee2[4], eo2[4], oe2[4], oo2[4];
    phi_gemm<S, T>(PhA, La, J, Kp, GA, k0, j, col, ee1, eo1, oe1, oo1);
    phi_gemm<S, T>(PhO, Lo, J, Kp, GO, k0, j, col, ee2, eo2, oe2, oo2);
    S* sp = SD + j * T + col;                   // S+ (+ k * JT)
    S* sm = SD + (kh * J + j) * T + col;        // S-
    S* dm = SD + ((kh + hq) * J + j) * T + col;  // D-
    S* dp = SD + ((kh + 2 * hq) * J + j) * T + col;  // D+
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int k = k0 + i;
      const int rk = k * JT;
      if (k < hq) {  // pair of azimuths (k, Q - k)
        const S e1 = ee1[i] + eo1[i], e1m = ee1[i] - eo1[i], o1 = oe1[i] + oo1[i], o1m = oo1[i] - oe1[i];
        const S e2 = ee2[i] + eo2[i], e2m = ee2[i] - eo2[i], o2 = oe2[i] + oo2[i], o2m = oo2[i] - oe2[i];
        const S s = e1 * e2 + o1 * o2, smi = e1m * e2m + o1m * o2m;
        const S d = e1 * o2 + o1 * e2, dmi = e1m * o2m + o1m * e2m;
        sp[rk] = s + smi;
        sm[rk] = s - smi;
        dm[rk] = d - dmi;
        dp[rk] = d + dmi;
      } else if (k < kh) {  // middle azimuth k = Q/2: E = Ee, O = Oo
        sp[rk] = ee1[i] * ee2[i] + oo1[i] * oo2[i];
        dp[rk] = ee1[i] * oo2[i] + oo1[i] * ee2[i];
      }
    }
  }
}

// SD -> spec[((c * (Lz+1) + v') * J + j) * T + col], folded: slot j < hp+mp holds spec[j] + spec[P-j]
// (spec[j] in the middle row), slot P-j (j < hp) holds spec[j] - spec[P-j].
template <typename S, int T>
__device__ __forceinline__ void analysis_stage(const S* An, int Lz, int J, int hp, int mp, int hq, int mq, const S* SD,
                                               S* spec, int col, int y) {
  constexpr int kY = kThreads / T;
  const int kh = hq + mq, jh = hp + mp, P = J - 1, JT = J * T;
  const int VP = round4(Lz / 2 + 1), nrb = VP / 4;
  const int nitems = 4 * nrb * jh;
  Counter it(y, kY, jh);  // (group * nrb + block of rows, polar pair)
  for (int w = y; w < nitems; w += kY, it.next()) {
    const int gi = nrb == 1 ? it.hi : it.hi / nrb, rb = it.hi - gi * nrb, jp = it.lo;
    const AnalysisGroup ag = analysis_group(gi, Lz, hq, kh);
    const int r0 = 4 * rb;
    if (r0 >= ag.n) continue;
    const S* tab = An + gi * kh * VP + r0;  // + k * VP
    const S* xs = SD + ag.xrow * JT + col;   // + k * JT + j * T
    const int jlo = jp, jhi = P - jp;
    const bool pair = jp < hp;
    S lo[4] = {S(0), S(0), S(0), S(0)}, hi[4] = {S(0), S(0), S(0), S(0)};
    if (pair) {
      for (int k = 0; k < ag.kd; ++k) {
        S t[4];
        load4(tab + k * VP, t);
        const S a = xs[k * JT + jlo * T], b = xs[k * JT + jhi * T];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          lo[i] += t[i] * a;
          hi[i] += t[i] * b;
        }
      }
    } else {
      for (int k = 0; k < ag.kd; ++k) {
        S t[4];
        load4(tab + k * VP, t);
        const S a = xs[k * JT + jlo * T];
#pragma unroll
        for (int i = 0; i < 4; ++i) lo[i] += t[i] * a;
      }
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int r = r0 + i;
      if (r >= ag.n) continue;
      S* sp = spec + (ag.c * (Lz + 1) + ag.vfirst + 2 * r) * JT + col;
      if (pair) {
        sp[jlo * T] = lo[i] + hi[i];
        sp[jhi * T] = lo[i] - hi[i];
      } else {
        sp[jlo * T] = lo[i];
      }
    }
  }
}

// Folded spec -> z[l, +-v'] written to the output (natural row l^2 + l + m of layout `lay`).
template <typename S, int T>
__device__ __forceinline__ void proj_stage(const S* Pr, const int* offs, int Lz, int J, int hp, int mp, const S* spec,
                                           S* __restrict__ dst,
                                           const int64_t* __restrict__ lay, int64_t ns, int64_t b, int64_t ch,
                                           bool valid, int col, int y) {
  constexpr int kY = kThreads / T;
  const int jh = hp + mp, P = J - 1;
  const int nrb = (Lz / 2 + 1 + 3) / 4;  // row blocks of the largest group
  const int per_group = 2 * nrb;
  const int nitems = (2 * Lz + 1) * per_group;
  const int64_t base = b * ns;
  Counter it(y, kY, per_group);  // (group, parity * nrb + block of rows)
  for (int w = y; w < nitems; w += kY, it.next()) {
    const int g = it.hi, par = nrb == 1 ? it.lo : it.lo / nrb, r0 = 4 * (it.lo - par * nrb);
    int v, c;
    group_vs(g, v, c);
    const int n = proj_rows(Lz, v, par);
    if (r0 >= n) continue;
    const int np = round4(n);
    const S* tab = Pr + offs[g] + (par ? round4(proj_rows(Lz, v, 0)) * jh : 0) + r0;  // + j * np
    const S* xs = spec + (c * (Lz + 1) + v) * J * T + col;
    S acc[4] = {S(0), S(0), S(0), S(0)};
    if (!par) {
      for (int j = 0; j < jh; ++j) {
        S t[4];
        load4(tab + j * np, t);
        const S a = xs[j * T];
#pragma unroll
        for (int i = 0; i < 4; ++i) acc[i] += t[i] * a;
      }
    } else {
      for (int j = 0; j < hp; ++j) {
        S t[4];
        load4(tab + j * np, t);
        const S a = xs[(P - j) * T];
#pragma unroll
        for (int i = 0; i < 4; ++i) acc[i] += t[i] * a;
      }
    }
    if (!valid) continue;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int r = r0 + i;
      if (r >= n) continue;
      const int l = v + par + 2 * r;
      const int row = l * l + l + (c ? -v : v);
      const int64_t off = __ldg(lay + 2 * row);
      if (off >= 0) dst[off + base + ch * __ldg(lay + 2 * row + 1)] = acc[i];
    }
  }
}

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
  // The cap is a per-kernel attribute shared by all host threads: raise it to the device's opt-in maximum
  // (never lower it to this call's size, which could fail a concurrent launch needing more).
  int smem_optin = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_optin));
  int per_sm = 0, sms = 0;
  C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, static_cast<size_t>(smem_bytes)));
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  TORCH_CHECK(per_sm >= 1, "gaunt_columns (CUDA): a block of ", kThreads, " threads with ", smem_bytes,
              " bytes of shared memory cannot run on this device");
  const int64_t max_blocks = static_cast<int64_t>(per_sm) * std::max(sms, 1);
  const unsigned int grid = static_cast<unsigned int>(std::max<int64_t>(1, std::min<int64_t>(p.tiles, max_blocks)));
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
