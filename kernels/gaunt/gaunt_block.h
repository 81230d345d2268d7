// Block kernel of the Gaunt product on columns, included once per instruction set by gaunt_cpu.cpp
// (inside its own namespace, after <cstdint>, <cstring> and gaunt_task.h; no includes here).
//
// One block = B contiguous columns (B * sizeof(T) = 128 bytes). Every stage is a small dense matrix
// times a [k, n] panel whose rows are contiguous runs of columns, so the inner loop is a broadcast-FMA
// over whole vectors (micro-tile of MR rows x NV vectors held in registers). The four stages of
// geomdl.o3.gaunt_product._gaunt_columns_reference, each halved by a mirror symmetry of its table:
//
//   theta  G[v,s,j]  = sum_l theta[v,s,j,l] x[l, s ? -v : v]   theta[., P-j, l] = (-1)^(l+v) theta[., j, l]
//   phi    E[k] = sum_v phi[0,k,v] G[v,0],  O[k] = sum_v phi[1,k,v] G[v,1]
//                                           phi[0, Q-k, v] = (-1)^v phi[0,k,v], phi[1, Q-k, v] = -(-1)^v phi[1,k,v]
//   product S = E1 E2 + O1 O2,  D = E1 O2 + O1 E2 (values at +-phi_k are E +- O)
//   analysis A[v'] = sum_k an[0,v',k] S[k],  B[v'] = sum_k an[1,v',k] D[k]   (same k <-> Q-k rule)
//   proj   z[l, +-v'] = sum_j proj[c,v',l,j] spec[c,v',j]   proj[., l, P-j] = (-1)^(l+v') proj[., l, j]
//
// so each GEMM runs on the even and the odd half separately (l, v or v' of one parity) over half of
// the rows j or k, followed (theta, phi) or preceded (analysis, proj) by a butterfly.

template <typename T>
struct Simd;
template <>
struct Simd<float> {
  typedef float V __attribute__((vector_size(32)));
  static constexpr int W = 8;
};
template <>
struct Simd<double> {
  typedef double V __attribute__((vector_size(32)));
  static constexpr int W = 4;
};

template <typename T>
struct Block {
  typedef typename Simd<T>::V V;
  static constexpr int W = Simd<T>::W;
  static constexpr int NV = 2;  // vectors per micro-tile row
  static constexpr int MR = 6;  // rows per micro-tile (6 x 2 accumulators + 2 loads + 1 broadcast)
  static constexpr int64_t B = block_columns<T>();

  static inline __attribute__((always_inline)) V load(const T* p) {
    V v;
    __builtin_memcpy(&v, p, sizeof(V));
    return v;
  }
  static inline __attribute__((always_inline)) void store(T* p, V v) { __builtin_memcpy(p, &v, sizeof(V)); }

  // C[M, NV*W] = A[M, kd] X[kd, NV*W] with A(r, k) = A[r*rs + k*cs].
  template <int M>
  static inline __attribute__((always_inline)) void tile(const T* A, int64_t rs, int64_t cs, int64_t kd, const T* X,
                                                         int64_t ldx, T* C, int64_t ldc) {
    V acc[M][NV];
#pragma GCC unroll 8
    for (int r = 0; r < M; ++r)
#pragma GCC unroll 4
      for (int n = 0; n < NV; ++n) acc[r][n] = V{};
    for (int64_t k = 0; k < kd; ++k) {
      V x[NV];
#pragma GCC unroll 4
      for (int n = 0; n < NV; ++n) x[n] = load(X + k * ldx + n * W);
#pragma GCC unroll 8
      for (int r = 0; r < M; ++r) {
        const V a = V{} + A[r * rs + k * cs];
#pragma GCC unroll 4
        for (int n = 0; n < NV; ++n) acc[r][n] += a * x[n];
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < M; ++r)
#pragma GCC unroll 4
      for (int n = 0; n < NV; ++n) store(C + r * ldc + n * W, acc[r][n]);
  }

  // C[m, n] = A[m, kd] X[kd, n] (n a multiple of NV*W; kd = 0 writes zeros).
  static void gemm(int64_t m, int64_t kd, const T* A, int64_t rs, int64_t cs, const T* X, int64_t ldx, T* C,
                   int64_t ldc, int64_t n) {
    for (int64_t c0 = 0; c0 < n; c0 += NV * W) {
      int64_t r = 0;
      for (; r + MR <= m; r += MR) tile<MR>(A + r * rs, rs, cs, kd, X + c0, ldx, C + r * ldc + c0, ldc);
      const T* Ar = A + r * rs;
      T* Cr = C + r * ldc + c0;
      switch (m - r) {
        case 5: tile<5>(Ar, rs, cs, kd, X + c0, ldx, Cr, ldc); break;
        case 4: tile<4>(Ar, rs, cs, kd, X + c0, ldx, Cr, ldc); break;
        case 3: tile<3>(Ar, rs, cs, kd, X + c0, ldx, Cr, ldc); break;
        case 2: tile<2>(Ar, rs, cs, kd, X + c0, ldx, Cr, ldc); break;
        case 1: tile<1>(Ar, rs, cs, kd, X + c0, ldx, Cr, ldc); break;
        default: break;
      }
    }
  }

  // Rows (v, s, parity of l + v, l) of a degree-L operand (`order` lists the SH rows in that order),
  // block columns [c0, c0 + nb) -> X [rows, B], zero-padded; absent rows are zero.
  static void gather(const Operand& op, const int64_t* order, int64_t rows, int64_t C, int64_t c0, int64_t nb, T* X) {
    const T* src = static_cast<const T*>(op.data);
    const int64_t b0 = c0 / C, ch0 = c0 % C;
    const bool one_node = ch0 + nb <= C;
    for (int64_t i = 0; i < rows; ++i) {
      T* dst = X + i * B;
      const int64_t off = op.table[2 * order[i]], cs = op.table[2 * order[i] + 1];
      int64_t j = 0;
      if (off >= 0 && one_node && cs == 1) {
        __builtin_memcpy(dst, src + off + b0 * op.node_stride + ch0, nb * sizeof(T));
        j = nb;
      } else if (off >= 0) {
        const T* p = src + off + b0 * op.node_stride;
        for (int64_t c = ch0; j < nb; ++j) {
          dst[j] = p[c * cs];
          if (++c == C) {
            c = 0;
            p += op.node_stride;
          }
        }
      }
      for (; j < B; ++j) dst[j] = T(0);
    }
  }

  static void scatter(const T* Z, const int64_t* order, int64_t rows, const Operand& op, int64_t C, int64_t c0, int64_t nb) {
    T* dst = static_cast<T*>(op.data);
    const int64_t b0 = c0 / C, ch0 = c0 % C;
    const bool one_node = ch0 + nb <= C;
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t off = op.table[2 * order[i]], cs = op.table[2 * order[i] + 1];
      const T* z = Z + i * B;
      if (off < 0) continue;
      if (one_node && cs == 1) {
        __builtin_memcpy(dst + off + b0 * op.node_stride + ch0, z, nb * sizeof(T));
        continue;
      }
      T* p = dst + off + b0 * op.node_stride;
      for (int64_t j = 0, c = ch0; j < nb; ++j) {
        p[c * cs] = z[j];
        if (++c == C) {
          c = 0;
          p += op.node_stride;
        }
      }
    }
  }

  // Software prefetch of the rows of block columns [c0, c0 + nb) stored as contiguous runs (column
  // arrays): every row is its own 128-byte stream, too many for the hardware prefetchers, so the
  // next block is fetched while this one computes. Strided (e3nn) rows are left to the hardware.
  static void prefetch(const Operand& op, int64_t rows, int64_t C, int64_t c0, int64_t nb, bool write) {
    const int64_t b0 = c0 / C, ch0 = c0 % C;
    if (ch0 + nb > C) return;
    const char* base = static_cast<const char*>(op.data);
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t off = op.table[2 * i], cs = op.table[2 * i + 1];
      if (off < 0 || cs != 1) continue;
      const char* p = base + (off + b0 * op.node_stride + ch0) * static_cast<int64_t>(sizeof(T));
      const char* end = p + nb * static_cast<int64_t>(sizeof(T));
      for (; p < end; p += 64) {
        if (write)
          __builtin_prefetch(p, 1, 3);
        else
          __builtin_prefetch(p, 0, 3);
      }
      if (write)
        __builtin_prefetch(end - 1, 1, 3);
      else
        __builtin_prefetch(end - 1, 0, 3);
    }
  }

  // theta + phi stages: X (gathered) -> G [2 (s), L+1 (v), J*B] -> EO = Ee [hq+mq], Eo [hq], Oe [hq], Oo [hq+mq]
  // (rows of J*B): E[k] = Ee + Eo, E[Q-k] = Ee - Eo, O[k] = Oe + Oo, O[Q-k] = Oo - Oe.
  static void synthesise(const T* X, const Synthesis& s, const Folds& f, int64_t J, int64_t K, T* tmp, T* G, T* EO) {
    const int64_t L = s.lmax, JB = J * B;
    const T* theta = static_cast<const T*>(s.theta);
    const T* phi = static_cast<const T*>(s.phi);
    T* ge = tmp;
    T* go = tmp + (f.hp + f.mp) * B;
    for (int64_t v = 0; v <= L; ++v) {
      for (int64_t sg = 0; sg < (v > 0 ? 2 : 1); ++sg) {
        const int64_t ne = (L - v) / 2 + 1, no = (L - v + 1) / 2;
        const T* th = theta + (v * 2 + sg) * J * (L + 1);
        gemm(f.hp + f.mp, ne, th + v, L + 1, 2, X, B, ge, B, B);
        gemm(f.hp, no, th + v + 1, L + 1, 2, X + ne * B, B, go, B, B);
        X += (ne + no) * B;
        T* g = G + (sg * (L + 1) + v) * JB;
        for (int64_t j = 0; j < f.hp; ++j) {
          T* lo = g + j * B;
          T* hi = g + (f.P - j) * B;
          for (int64_t c = 0; c < B; c += W) {
            const V e = load(ge + j * B + c), o = load(go + j * B + c);
            store(lo + c, e + o);
            store(hi + c, e - o);
          }
        }
        if (f.mp) __builtin_memcpy(g + f.hp * B, ge + f.hp * B, B * sizeof(T));
      }
    }
    T* Ee = EO;
    T* Eo = Ee + (f.hq + f.mq) * JB;
    T* Oe = Eo + f.hq * JB;
    T* Oo = Oe + f.hq * JB;
    const T* phi1 = phi + K * (L + 1);
    const T* G1 = G + (L + 1) * JB;  // s = 1 (sin); its v = 0 row is never written nor read
    gemm(f.hq + f.mq, L / 2 + 1, phi, L + 1, 2, G, 2 * JB, Ee, JB, JB);
    gemm(f.hq, (L + 1) / 2, phi + 1, L + 1, 2, G + JB, 2 * JB, Eo, JB, JB);
    gemm(f.hq, L / 2, phi1 + 2, L + 1, 2, G1 + 2 * JB, 2 * JB, Oe, JB, JB);
    gemm(f.hq + f.mq, (L + 1) / 2, phi1 + 1, L + 1, 2, G1 + JB, 2 * JB, Oo, JB, JB);
  }

  // Pointwise products of the two functions on the folded azimuths. Reads EOa and EOb, overwrites EOb
  // with S+ [hq+mq], S- [hq], D- [hq], D+ [hq+mq] (S+-[k] = S[k] +- S[Q-k], same for D).
  static void multiply(const T* EOa, T* EOb, const Folds& f, int64_t JB) {
    const int64_t n0 = (f.hq + f.mq) * JB, n1 = f.hq * JB;
    const T *ae = EOa, *ao = EOa + n0, *be_ = EOa + n0 + n1, *bo = EOa + n0 + 2 * n1;  // Ee, Eo, Oe, Oo of a
    T *ce = EOb, *co = EOb + n0, *de = EOb + n0 + n1, *dodd = EOb + n0 + 2 * n1;        // the same of b
    const int64_t n = f.hq * JB;
    for (int64_t i = 0; i < n; i += W) {
      const V ee1 = load(ae + i), eo1 = load(ao + i), oe1 = load(be_ + i), oo1 = load(bo + i);
      const V ee2 = load(ce + i), eo2 = load(co + i), oe2 = load(de + i), oo2 = load(dodd + i);
      const V e1 = ee1 + eo1, e1m = ee1 - eo1, o1 = oe1 + oo1, o1m = oo1 - oe1;
      const V e2 = ee2 + eo2, e2m = ee2 - eo2, o2 = oe2 + oo2, o2m = oo2 - oe2;
      const V s = e1 * e2 + o1 * o2, sm = e1m * e2m + o1m * o2m;
      const V d = e1 * o2 + o1 * e2, dm = e1m * o2m + o1m * e2m;
      store(ce + i, s + sm);
      store(co + i, s - sm);
      store(de + i, d - dm);
      store(dodd + i, d + dm);
    }
    if (f.mq) {  // middle azimuth k = Q/2: E = Ee, O = Oo
      for (int64_t i = n; i < n + JB; i += W) {
        const V e1 = load(ae + i), o1 = load(bo + i), e2 = load(ce + i), o2 = load(dodd + i);
        store(ce + i, e1 * e2 + o1 * o2);
        store(dodd + i, e1 * o2 + o1 * e2);
      }
    }
  }

  // Azimuthal analysis: SD (from multiply) -> spec [2 (c), Lo+1 (v'), J*B] (row c=1, v'=0 unused).
  static void analyse(const T* SD, const Projection& p, const Folds& f, int64_t J, int64_t K, T* spec) {
    const int64_t Lo = p.lmax_out, JB = J * B;
    const T* an = static_cast<const T*>(p.analysis);
    const T* an1 = an + (Lo + 1) * K;
    const T* sp = SD;
    const T* sm = sp + (f.hq + f.mq) * JB;
    const T* dm = sm + f.hq * JB;
    const T* dp = dm + f.hq * JB;
    T* spec1 = spec + (Lo + 1) * JB;
    gemm(Lo / 2 + 1, f.hq + f.mq, an, 2 * K, 1, sp, JB, spec, 2 * JB, JB);
    gemm((Lo + 1) / 2, f.hq, an + K, 2 * K, 1, sm, JB, spec + JB, 2 * JB, JB);
    gemm(Lo / 2, f.hq, an1 + 2 * K, 2 * K, 1, dm, JB, spec1 + 2 * JB, 2 * JB, JB);
    gemm((Lo + 1) / 2, f.hq + f.mq, an1 + K, 2 * K, 1, dp, JB, spec1 + JB, 2 * JB, JB);
  }

  // Polar projection: spec -> Z, rows in the (v', c, parity, l) order of `gather`.
  static void project(const T* spec, const Projection& p, const Folds& f, int64_t J, T* fold, T* Z) {
    const int64_t Lo = p.lmax_out, JB = J * B;
    const T* proj = static_cast<const T*>(p.proj);
    T* fp = fold;
    T* fm = fold + (f.hp + f.mp) * B;
    for (int64_t v = 0; v <= Lo; ++v) {
      for (int64_t c = 0; c < (v > 0 ? 2 : 1); ++c) {
        const T* s = spec + (c * (Lo + 1) + v) * JB;
        for (int64_t j = 0; j < f.hp; ++j) {
          const T* lo = s + j * B;
          const T* hi = s + (f.P - j) * B;
          for (int64_t i = 0; i < B; i += W) {
            const V a = load(lo + i), b = load(hi + i);
            store(fp + j * B + i, a + b);
            store(fm + j * B + i, a - b);
          }
        }
        if (f.mp) __builtin_memcpy(fp + f.hp * B, s + f.hp * B, B * sizeof(T));
        const T* pr = proj + (c * (Lo + 1) + v) * (Lo + 1) * J;
        const int64_t ne = (Lo - v) / 2 + 1, no = (Lo - v + 1) / 2;
        gemm(ne, f.hp + f.mp, pr + v * J, 2 * J, 1, fp, B, Z, B, B);
        gemm(no, f.hp, pr + (v + 1) * J, 2 * J, 1, fm, B, Z + ne * B, B, B);
        Z += (ne + no) * B;
      }
    }
  }

  // Blocks [b0, b1) of the task; `scratch` holds Scratch(t, B).total elements (64-byte aligned);
  // order_a/order_o[i]/order_z[i] are the gather orders of a, other[i] and out[i].
  static void run(const Task& t, int64_t b0, int64_t b1, T* scratch, const int64_t* order_a,
                  const int64_t* const* order_o, const int64_t* const* order_z) {
    note_copy(kCopyGaunt, kAvx2Copy);  // (kAvx2Copy: defined by the includer, which copy this is)
    const Scratch lay(t, B);
    const Folds f(t.J, t.K);
    const int64_t JB = t.J * B, la = t.sa.lmax;
    T* xa = scratch + lay.xa;
    T* xo = scratch + lay.xo;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t c0 = b * B, nb = t.R - c0 < B ? t.R - c0 : B;
      if (b + 1 < b1) {  // next block
        const int64_t c1 = c0 + B, n1 = t.R - c1 < B ? t.R - c1 : B;
        prefetch(t.a, (la + 1) * (la + 1), t.C, c1, n1, false);
        for (int i = 0; i < t.n_other; ++i) {
          prefetch(t.other[i], (t.so[i].lmax + 1) * (t.so[i].lmax + 1), t.C, c1, n1, false);
          prefetch(t.out[i], (t.pj[i].lmax_out + 1) * (t.pj[i].lmax_out + 1), t.C, c1, n1, true);
        }
      }
      gather(t.a, order_a, (la + 1) * (la + 1), t.C, c0, nb, xa);
      synthesise(xa, t.sa, f, t.J, t.K, scratch + lay.tmp, scratch + lay.ga, scratch + lay.eoa);
      for (int i = 0; i < t.n_other; ++i) {
        const int64_t lo = t.so[i].lmax, lz = t.pj[i].lmax_out;
        gather(t.other[i], order_o[i], (lo + 1) * (lo + 1), t.C, c0, nb, xo);
        synthesise(xo, t.so[i], f, t.J, t.K, scratch + lay.tmp, scratch + lay.go, scratch + lay.eoo);
        multiply(scratch + lay.eoa, scratch + lay.eoo, f, JB);
        analyse(scratch + lay.eoo, t.pj[i], f, t.J, t.K, scratch + lay.spec);
        project(scratch + lay.spec, t.pj[i], f, t.J, scratch + lay.fold, scratch + lay.z);
        scatter(scratch + lay.z, order_z[i], (lz + 1) * (lz + 1), t.out[i], t.C, c0, nb);
      }
    }
  }
};
