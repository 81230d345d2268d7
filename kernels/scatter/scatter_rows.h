// The row loops of the CPU scatter kernels (kernels/scatter/scatter_cpu.cpp), which includes this file twice
// (common/isa_copies.h): in namespace `generic` (the baseline target) and in namespace `avx2` under
// `#pragma GCC target("avx2")`, so that the build needs no -march flag; scatter_cpu.cpp picks one at run time (AVX2 when the CPU has it,
// GEOMDL_SCATTER_ISA=generic forces the baseline). The AVX2 build runs the channel loops 8 floats wide, and
// the max/min selects as blends (SSE2 has no blend: and/andnot/or).
//
// Both builds give the same values: every channel loop is elementwise (adds, compares, selects; no
// multiply to fuse, no reassociation across channels or rows), so only the vector width differs. (One
// exception: when NaNs of different signs or payloads meet in one sum, which of them comes out depends on
// the operand order the compiler chose for the add, which may differ between the copies.)
//
// Not a standalone header: it uses the helpers scatter_cpu.cpp defines before including it (add_row,
// RunSums, RunState, kRun, prefetch_lines, prefetch_row, kPrefetch, out_of_range, and kAvx2Copy, which says
// which copy this is: note_copy records it for tests).

struct Rows {
  // Sum (float rows in float64) of the rows [a, b) into d [S, C] (zeroed by the caller) and, with kMean,
  // their counts into cnt [S]. Returns the first row whose index lies outside [0, S), or b.
  template <typename scalar_t, bool kMean>
  static int64_t direct(const scalar_t* src, const int64_t* index, int64_t a, int64_t b, int64_t C, int64_t S,
                        double* d, int64_t* cnt) {
    note_copy(kCopyScatter, kAvx2Copy);
    int64_t i = a;
    for (; i < b && !out_of_range(index[i], S); ++i) {
      const scalar_t* row = src + i * C;
      double* o = d + index[i] * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) o[c] += static_cast<double>(row[c]);
      if (kMean) cnt[index[i]]++;
    }
    return i;
  }

  // Sum of the rows [a, b) into acc [S, C] (zeroed by the caller), row by row (float input: in runs with
  // the states r [S] and the float64 sums w, see scatter_cpu.cpp's top comment); with kMean, the counts
  // into cnt [S]. The accumulator rows of the upcoming rows are prefetched for writing, the src rows
  // non-temporally. Returns the first row whose index lies outside [0, S), or b.
  template <typename scalar_t, bool kMean>
  static int64_t runs(const scalar_t* src, const int64_t* index, int64_t a, int64_t b, int64_t C, int64_t S,
                      scalar_t* acc, RunState* r, RunSums* w, int64_t* cnt) {
    note_copy(kCopyScatter, kAvx2Copy);
    constexpr bool kRuns = !std::is_same_v<scalar_t, double>;
    const int64_t row_bytes = C * static_cast<int64_t>(sizeof(scalar_t));
    const int64_t ahead_src = std::max<int64_t>(1, 4096 / row_bytes);  // rows ~4 KiB ahead
    constexpr int64_t ahead_acc = 16;                                    // 16 random rows ahead
    const int64_t ahead = std::max(ahead_src, ahead_acc);
    // Rows of half a cache line or more: the float64 row of an upcoming close is worth a prefetch (with
    // narrower rows the test costs more than the miss it saves).
    const bool wide_rows = row_bytes >= 32;
    int64_t i = a;
    for (; i + ahead < b; ++i) {
      if (out_of_range(index[i], S)) return i;
      const int64_t s_ahead = index[i + ahead_acc];
      // (a wild s_ahead is raised when its row is reached; its address is not even formed: that would be UB)
      if (!out_of_range(s_ahead, S)) prefetch_lines<true, false>(acc + s_ahead * C, row_bytes);
      prefetch_lines<false, true>(src + (i + ahead_src) * C, row_bytes);
      if constexpr (kRuns) {
        // that row will likely close a run that was closed before: its float64 row (random, twice the bytes
        // of the float32 one) is fetched too. s_ahead is not range-checked yet (its row is, when reached): it
        // indexes the run states only when in range (a prefetch of a wild address is harmless, a load is not).
        if (wide_rows && !out_of_range(s_ahead, S)) {
          const unsigned r_ahead = r[s_ahead];
          if (r_ahead >= kRun && (r_ahead + 1u) % kRun == 0) prefetch_lines<true, false>(w->row(s_ahead, C), 2 * row_bytes);
        }
      }
      const int64_t s = index[i];
      add_row(src + i * C, acc + s * C, kRuns ? r + s : nullptr, w, s, C);
      if (kMean) cnt[s]++;
    }
    for (; i < b && !out_of_range(index[i], S); ++i) {
      const int64_t s = index[i];
      add_row(src + i * C, acc + s * C, kRuns ? r + s : nullptr, w, s, C);
      if (kMean) cnt[s]++;
    }
    return i;
  }

  // Sum of the rows rows[0..n_rows) (increasing, all with index in [s0, s0 + #segments)) into out [S, C]
  // (the owned rows zeroed by the caller), each segment in row order (float input: in runs, the run states
  // `runs` and sums w indexed by s - s0).
  template <typename scalar_t>
  static void owned_sum(const scalar_t* src, const int64_t* index, const int64_t* rows, int64_t n_rows, int64_t C,
                        int64_t s0, scalar_t* out, RunState* runs, RunSums* w) {
    note_copy(kCopyScatter, kAvx2Copy);
    constexpr bool kRuns = !std::is_same_v<scalar_t, double>;
    for (int64_t k = 0; k < n_rows; ++k) {
      const int64_t i = rows[k];
      if (k + kPrefetch < n_rows) prefetch_row(src + rows[k + kPrefetch] * C, C);
      const int64_t s = index[i];
      add_row(src + i * C, out + s * C, kRuns ? runs + (s - s0) : nullptr, w, s - s0, C);
    }
  }

  // Max (kMax) or min of the rows rows[0..n_rows) (increasing, all with index in [s0, s0 + #segments)) into
  // out [S, C], with the row attaining it in lanes [#segments, C] (indexed by s - s0; see minmax_owned in
  // scatter_cpu.cpp for the rule); seen[s - s0] is set once a segment has a row (all 0 on entry).
  template <typename scalar_t, typename lane_t, bool kMax>
  static void owned_minmax(const scalar_t* src, const int64_t* index, const int64_t* rows, int64_t n_rows, int64_t C,
                           int64_t s0, scalar_t* out, lane_t* lanes, char* seen) {
    note_copy(kCopyScatter, kAvx2Copy);
    for (int64_t k = 0; k < n_rows; ++k) {
      const int64_t i = rows[k];
      if (k + kPrefetch < n_rows) prefetch_row(src + rows[k + kPrefetch] * C, C);
      const int64_t s = index[i];
      const scalar_t* row = src + i * C;
      scalar_t* o = out + s * C;
      lane_t* l = lanes + (s - s0) * C;
      const lane_t li = static_cast<lane_t>(i);
      if (!seen[s - s0]) {
        seen[s - s0] = 1;
        std::copy(row, row + C, o);
        std::fill(l, l + C, li);
        continue;
      }
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) {
        const scalar_t v = row[c], cur = o[c];
        const bool take = !(kMax ? v <= cur : v >= cur) & (cur == cur);  // greater (smaller), or NaN over a number
        o[c] = take ? v : cur;
        l[c] = take ? li : l[c];
      }
    }
  }
};
