// The distance update of the CPU farthest point sampling (kernels/fps/fps_cpu.cpp), which includes this file
// twice (common/isa_copies.h): in namespace `generic` (the baseline target) and in namespace `avx2` under
// `#pragma GCC target("avx2")`,
// so that the build needs no -march flag; fps_cpu.cpp picks one at run time (AVX2 when the CPU has it,
// GEOMDL_FPS_ISA=generic forces the baseline). Both give the same indices bit for bit: the loops are
// elementwise (subtract, multiply, add, in the same order per point, never fused: the AVX2 copy's target
// has no FMA, see isa_copies.h) and a maximum does not depend on the order it is taken in (dist holds no
// NaN: a NaN distance keeps the previous minimum).
//
// Not a standalone header: it uses Cloud, Arg and kBlock, defined before its inclusion, and kAvx2Copy (which
// copy this is: note_copy records it for tests).

struct Update {
  // Updates dist[i0:i1] with the distances to point `center` (coordinates `cp`) and returns the first
  // maximal entry of the updated range.
  template <int D>
  static Arg range(Cloud& c, const double* cp, int64_t i0, int64_t i1) {
    note_copy(kCopyFps, kAvx2Copy);
    const int64_t dim = D > 0 ? D : c.dim;
    double* dist = c.dist.data();
    Arg best{-1.0, i1};
    double tmp[kBlock];
    for (int64_t b0 = i0; b0 < i1; b0 += kBlock) {
      const int64_t len = std::min(kBlock, i1 - b0);
      for (int64_t i = 0; i < len; ++i) tmp[i] = 0.0;
      for (int64_t d = 0; d < dim; ++d) {
        const double* x = c.col(d) + b0;
        const double v = cp[d];
#pragma omp simd
        for (int64_t i = 0; i < len; ++i) {
          const double t = v - x[i];
          tmp[i] += t * t;
        }
      }
      double bmax = -1.0;
      double* dd = dist + b0;
#pragma omp simd reduction(max : bmax)
      for (int64_t i = 0; i < len; ++i) {
        const double m = tmp[i] < dd[i] ? tmp[i] : dd[i];
        dd[i] = m;
        bmax = m > bmax ? m : bmax;
      }
      if (bmax > best.value) {
        int64_t i = 0;
        while (dd[i] != bmax) ++i;
        best = {bmax, b0 + i};
      }
    }
    return best;
  }
};
