// The data of one call of geomdl::gaunt_columns, shared by the instruction-set variants of the
// block kernel (kernels/gaunt/gaunt_block.h). Plain pointers and sizes, no torch types.
#pragma once
#include <cstdint>

namespace geomdl {
namespace gaunt {

// Half-torus synthesis tables of a degree-lmax input (geomdl.o3.gaunt_plans.synthesis_tables):
// theta [lmax+1 (v), 2 (m=+v / m=-v), J, lmax+1 (l)], phi [2 (cos/sin), K, lmax+1 (v)].
struct Synthesis {
  const void* theta = nullptr;
  const void* phi = nullptr;
  int64_t lmax = 0;
};

// Projection tables onto degrees <= lmax_out (geomdl.o3.gaunt_plans.projection_tables):
// analysis [2, lmax_out+1 (v), K], proj [2, lmax_out+1 (v), lmax_out+1 (l), J].
struct Projection {
  const void* analysis = nullptr;
  const void* proj = nullptr;
  int64_t lmax_out = 0;
};

constexpr int kMaxOthers = 2;

// Where the coefficients of a degree-L operand live: column r = (node b, channel c) = (r / C, r % C),
// SH row i = l^2 + l + m; element (i, r) at data[off_i + b * node_stride + c * cs_i] with
// (off_i, cs_i) = (table[2i], table[2i+1]), off_i = -1 for an absent row (read as zero, never written). Column arrays [(L+1)^2, R]: C = R, off = i * R, cs = 1;
// e3nn "C x l" features [N, dim]: off = start of degree l + l + m, cs = 2l + 1, node_stride = dim.
struct Operand {
  void* data = nullptr;
  const int64_t* table = nullptr;
  int64_t node_stride = 0;
};

// out[i] = Gaunt product of `a` and `other[i]` projected with pj[i], i < n_other, all of one dtype.
struct Task {
  int64_t J = 0, K = 0, R = 0, C = 1;  // polar rows N_u/2+1, azimuths N_v/2+1, columns, channels
  Operand a;
  Synthesis sa;
  int n_other = 0;
  Operand other[kMaxOthers];
  Synthesis so[kMaxOthers];
  Projection pj[kMaxOthers];
  Operand out[kMaxOthers];
};

// Columns per block: 128 bytes, i.e. 32 float or 16 double columns (4 AVX vectors per row).
template <typename T>
constexpr int64_t block_columns() { return 128 / static_cast<int64_t>(sizeof(T)); }

// Symmetry-folded sizes: the polar rows j and P-j (P = J-1) and the azimuths k and Q-k (Q = K-1)
// are mirror images, so every stage runs on pairs: hp pairs (+ mp middle row), hq pairs (+ mq).
struct Folds {
  int64_t P, hp, mp, Q, hq, mq;
  Folds(int64_t J, int64_t K)
      : P(J - 1), hp(J / 2), mp((J - 1) % 2 == 0 ? 1 : 0), Q(K - 1), hq(K / 2), mq((K - 1) % 2 == 0 ? 1 : 0) {}
};

// Offsets (in elements) of the per-thread scratch of one column block of width B.
struct Scratch {
  int64_t xa, xo, tmp, ga, go, eoa, eoo, spec, fold, z, total;
  Scratch(const Task& t, int64_t B) {
    const Folds f(t.J, t.K);
    const int64_t JB = t.J * B;
    int64_t lo_max = 0, lmax_o = 0;
    for (int i = 0; i < t.n_other; ++i) {
      lo_max = lo_max > t.pj[i].lmax_out ? lo_max : t.pj[i].lmax_out;
      lmax_o = lmax_o > t.so[i].lmax ? lmax_o : t.so[i].lmax;
    }
    const int64_t la = t.sa.lmax;
    const int64_t eo = (4 * f.hq + 2 * f.mq) * JB;  // Ee, Eo, Oe, Oo of one input
    int64_t at = 0;
    auto take = [&at](int64_t n) { const int64_t o = at; at += (n + 15) / 16 * 16; return o; };
    xa = take((la + 1) * (la + 1) * B);
    xo = take((lmax_o + 1) * (lmax_o + 1) * B);
    tmp = take((2 * f.hp + f.mp) * B);
    ga = take(2 * (la + 1) * JB);
    go = take(2 * (lmax_o + 1) * JB);
    eoa = take(eo);
    eoo = take(eo);
    spec = take(2 * (lo_max + 1) * JB);
    fold = take((2 * f.hp + f.mp) * B);
    z = take((lo_max + 1) * (lo_max + 1) * B);
    total = at;
  }
};

}  // namespace gaunt
}  // namespace geomdl
