// Compute stages of the CUDA Gaunt kernel (gaunt_cuda.cu) for one tile of T columns: theta synthesis,
// the product fused with both azimuthal syntheses, the analysis and the projection (written straight to
// the output). The maths is that of the CPU kernel (gaunt_cpu.cpp, gaunt_block.h).
// Header-only code in an unnamed namespace: every .cu that includes it gets its own copy (the
// extension is built without relocatable device code).
#pragma once

#include <cstdint>

#include "common/cuda_utils.cuh"
#include "gaunt/gaunt_params.cuh"
#include "gaunt/gaunt_staging.cuh"

namespace geomdl {
namespace gaunt {
namespace {

// ----------------------------------------------------------------------------------------------
// Stages of one tile. Work items (4 output rows of one GEMM) are split between the thread rows y;
// every thread computes its own column `col` of each item.

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

}  // namespace
}  // namespace gaunt
}  // namespace geomdl
