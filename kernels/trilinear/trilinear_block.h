// Block kernel of geomdl::sparse_trilinear (included twice by trilinear_cpu.cpp: once for AVX2+FMA,
// once for the baseline target). No include guard on purpose.
//
// Rows are processed in blocks of B (256 bytes of each column: 64 float / 32 double). The block's
// columns of x1, x2, x3 are transposed into scratch [F][B] so that every step of the sum is a
// B-wide multiply-add the compiler vectorises; the output block is accumulated in registers per
// target column and transposed back at the end. The transposes go by K x K tiles (Tile<T>, defined
// by the includer: 8x8 float / 4x4 double shuffles in the AVX2 build, plain loops otherwise).
template <typename T>
struct TrilinearBlock {
  static constexpr int64_t B = 256 / sizeof(T);

  // Copies rows [r0, r0 + nb) of x [R or 1, F] (row stride `rs`: F, or 0 for a broadcast row) into
  // s [F][B], zero-padding lanes >= nb. Full K x K tiles go through Tile<T> (SIMD in the AVX2 build).
  static void load(const T* x, int64_t rs, int64_t F, int64_t r0, int64_t nb, T* s) {
    if (rs == 0) {
      for (int64_t f = 0; f < F; ++f) {
        const T v = x[f];
        for (int64_t l = 0; l < B; ++l) s[f * B + l] = l < nb ? v : T(0);
      }
      return;
    }
    constexpr int64_t K = Tile<T>::K;
    const T* base = x + r0 * rs;
    const int64_t lf = nb - nb % K, ff = F - F % K;
    for (int64_t l = 0; l < lf; l += K)
      for (int64_t f = 0; f < ff; f += K) Tile<T>::run(base + l * rs + f, rs, s + f * B + l, B);
    for (int64_t f = ff; f < F; ++f)
      for (int64_t l = 0; l < lf; ++l) s[f * B + l] = base[l * rs + f];
    for (int64_t f = 0; f < F; ++f)
      for (int64_t l = lf; l < B; ++l) s[f * B + l] = l < nb ? base[l * rs + f] : T(0);
  }

  // Writes the output block so [W][B] to rows [r0, r0 + nb) of out [R, W].
  static void store(const T* so, int64_t W, int64_t r0, int64_t nb, T* out) {
    constexpr int64_t K = Tile<T>::K;
    T* base = out + r0 * W;
    const int64_t lf = nb - nb % K, tf = W - W % K;
    for (int64_t l = 0; l < lf; l += K)
      for (int64_t t = 0; t < tf; t += K) Tile<T>::run(so + t * B + l, B, base + l * W + t, W);
    for (int64_t l = 0; l < nb; ++l)
      for (int64_t t = l < lf ? tf : 0; t < W; ++t) base[l * W + t] = so[t * B + l];
  }

  static void run(const Trilinear<T>& k, int64_t b0, int64_t b1, T* scratch) {
    note_copy(kCopyTrilinear, kAvx2Copy);  // (kAvx2Copy: defined by the includer, which copy this is)
    T* s1 = scratch;
    T* s2 = s1 + k.F1 * B;
    T* s3 = s2 + k.F2 * B;
    T* so = s3 + k.F3 * B;
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t r0 = blk * B, nb = std::min<int64_t>(B, k.R - r0);
      load(k.x1, k.rs1, k.F1, r0, nb, s1);
      load(k.x2, k.rs2, k.F2, r0, nb, s2);
      load(k.x3, k.rs3, k.F3, r0, nb, s3);
      for (int64_t t = 0; t < k.W; ++t) {
        T acc[B];
        for (int64_t l = 0; l < B; ++l) acc[l] = T(0);
        for (int64_t g = k.target_ptr[t]; g < k.target_ptr[t + 1]; ++g) {
          T inner[B];
          for (int64_t l = 0; l < B; ++l) inner[l] = T(0);
          for (int64_t n = k.group_ptr[g]; n < k.group_ptr[g + 1]; ++n) {
            const T c = k.coef[n];
            const T* p1 = s1 + k.pair[2 * n] * B;
            const T* p2 = s2 + k.pair[2 * n + 1] * B;
            for (int64_t l = 0; l < B; ++l) inner[l] += c * p1[l] * p2[l];
          }
          const T* p3 = s3 + k.group_col[g] * B;
          for (int64_t l = 0; l < B; ++l) acc[l] += inner[l] * p3[l];
        }
        for (int64_t l = 0; l < B; ++l) so[t * B + l] = acc[l];
      }
      store(so, k.W, r0, nb, k.out);
    }
  }
};
