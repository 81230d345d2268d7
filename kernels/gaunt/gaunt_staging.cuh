// Loads of the CUDA Gaunt kernel (gaunt_cuda.cu): the plan tables staged once per CTA in shared
// memory (folded by the mirror symmetries, zero-padded to blocks of 4 rows, transposed for vector
// loads) and the operand rows of a tile of columns.
// Header-only code in an unnamed namespace: every .cu that includes it gets its own copy (the
// extension is built without relocatable device code).
#pragma once

#include <cstdint>

#include "common/cuda_utils.cuh"
#include "gaunt/gaunt_params.cuh"

namespace geomdl {
namespace gaunt {
namespace {

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
// Operand rows of one tile.

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

}  // namespace
}  // namespace gaunt
}  // namespace geomdl
