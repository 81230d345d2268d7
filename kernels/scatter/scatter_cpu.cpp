// CPU scatter reductions and segment softmax.
//
// sum / mean of float32 rows: a plain float32 running sum of n rows drifts by up to ~n/2 ulps (hundreds of
// ulps at n = 1e5; what torch's index_add_ / scatter_reduce and torch_scatter give). Here:
// * few segments (row split with S * C <= kDirectElements, the pooling case): summed in float64 directly
//   (per-thread accumulators that stay in cache), rounded once;
// * otherwise in runs: a segment's rows (within one thread's share) are summed in float32 in runs of at most
//   kRun = 16, in row order, and the runs are added in float64; the total (divided by the count for a mean)
//   is rounded once. The worst-case error is that of a 16-row float32 sum relative to the segment's
//   sum |v| (a few ulps when all runs err alike, e.g. constant rows); segments of a few dozen rows are
//   about as precise as a float32 sum, and on random data large segments stay within about an ulp. The float64 sums take memory only for segments with >= kRun rows and are touched once per
//   run, so the float32 accumulators stay the hot, cache-sized working set.
// float64 rows are summed in float64.
//
// sum / mean take one of two deterministic paths (chosen from the shapes, see `use_row_split`):
//
// * Row split (few segments: dim_size * C small next to N * C, the common pooling / node-update
//   case). Thread t sums the contiguous rows [N t/T, N (t+1)/T) in row order into its own
//   [dim_size, C] accumulator (thread 0 straight into `out`), so `src` is streamed once, exactly
//   like a plain read of it; the accumulators are then added in thread order,
//   out = acc_0 + acc_1 + ... + acc_{T-1} (float32: each thread's float64 sum and open run, added in
//   float64 and rounded once; float32 with S * C <= kDirectElements: per-thread float64 accumulators
//   instead, `out` written only by the combine). The result is bit-for-bit the same on every run with the
//   same number of threads T; with another T only the rounding differs. With T = 1 it is the row-order
//   sum (float32: in float64 directly or in runs, rounded once).
// * Ownership (many segments, and max / min always): a histogram of `index` balances the output
//   segments between threads so that each thread owns a contiguous range of segments holding about
//   N/T rows; each thread collects (branch-free) the rows whose segment it owns and reduces them in
//   row order, prefetching rows ahead. Every segment is reduced by one thread in index order:
//   results are bit-for-bit identical for any number of threads and no atomics are needed.
//
// The row loops of both paths (scatter_rows.h) are compiled twice, for the baseline target and for AVX2,
// and chosen at run time (with_rows); the two copies give the same bits (except which NaN a sum of NaNs of
// both signs gives, see scatter_rows.h).
#include "common/parallel.h"
#include <torch/all.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "common/checks.h"
#include "common/cpu_isa.h"
#include "scatter/reduce.h"

namespace geomdl {
namespace {

// Segment boundaries per thread: bounds[t]..bounds[t+1] is owned by thread t.
std::vector<int64_t> balance_segments(const std::vector<int64_t>& counts, int64_t N, int T) {
  const int64_t S = static_cast<int64_t>(counts.size());
  std::vector<int64_t> bounds(T + 1, S);
  bounds[0] = 0;
  int64_t acc = 0;
  int t = 1;
  for (int64_t s = 0; s < S && t < T; ++s) {
    acc += counts[s];
    while (t < T && acc >= (N * t + T - 1) / T) bounds[t++] = s + 1;
  }
  for (; t < T; ++t) bounds[t] = S;
  return bounds;
}

inline bool out_of_range(int64_t v, int64_t S) { return static_cast<uint64_t>(v) >= static_cast<uint64_t>(S); }

// ValueError (the text of geomdl/ops/_validation.py) unless every entry of index lies in [0, S).
// The kernels check the range inside their own passes over `index` and call this (slow path) only
// to report an entry they found out of range.
void check_index_range(const int64_t* index, int64_t N, int64_t S) {
  if (N == 0) return;
  int64_t lo = index[0], hi = index[0];
  for (int64_t i = 1; i < N; ++i) {
    lo = std::min(lo, index[i]);
    hi = std::max(hi, index[i]);
  }
  TORCH_CHECK_VALUE(lo >= 0, "index has a negative entry (", lo, "); entries must lie in [0, ", S, ")");
  TORCH_CHECK_VALUE(hi < S, "index has an entry ", hi, " out of range: entries must lie in [0, ", S, ")");
}

// counts[s] = #{i : index[i] = s}. With T > 1 threads (and T*S small next to N) each thread counts
// a contiguous part of `index` and the partial counts are added (exact integers: any order).
// Raises the ValueError of check_index_range for an entry outside [0, S).
std::vector<int64_t> histogram(const int64_t* index, int64_t N, int64_t S, int T) {
  std::vector<int64_t> counts(S, 0);
  bool bad = false;
  if (T <= 1 || S * T > N) {
    for (int64_t i = 0; i < N && !bad; ++i) {
      bad = out_of_range(index[i], S);
      if (!bad) counts[index[i]]++;
    }
  } else {
    std::vector<int64_t> part(static_cast<size_t>(S) * (T - 1), 0);
    std::vector<char> bad_t(T, 0);
#pragma omp parallel num_threads(T)
    {
      // The runtime may start fewer than T threads (OMP_DYNAMIC, nested regions): each thread then
      // takes the parts t, t + team, ... (one part per thread in a full team).
      const int team = omp_get_num_threads();
      for (int t = omp_get_thread_num(); t < T; t += team) {
        int64_t a, b;
        split_range(N, T, t, a, b);
        int64_t* c = t == 0 ? counts.data() : part.data() + (t - 1) * S;
        for (int64_t i = a; i < b; ++i) {
          if (out_of_range(index[i], S)) {
            bad_t[t] = 1;
            break;
          }
          c[index[i]]++;
        }
      }
#pragma omp barrier
      for (int t = omp_get_thread_num(); t < T; t += team) {
        int64_t s0, s1;
        split_range(S, T, t, s0, s1);
        for (int u = 1; u < T; ++u)
          for (int64_t s = s0; s < s1; ++s) counts[s] += part[(u - 1) * S + s];
      }
    }
    bad = std::find(bad_t.begin(), bad_t.end(), 1) != bad_t.end();
  }
  if (bad) check_index_range(index, N, S);
  return counts;
}

constexpr int64_t kPrefetch = 8;

template <typename scalar_t>
inline void prefetch_row(const scalar_t* p, int64_t C) {
  const char* b = reinterpret_cast<const char*>(p);
  for (int64_t off = 0; off < C * static_cast<int64_t>(sizeof(scalar_t)); off += 64) __builtin_prefetch(b + off, 0, 1);
}

// Rows i (in increasing order) whose segment index[i] lies in [s0, s1), found by a branch-free
// compaction (a data-dependent branch here would mispredict about half the time). The returned
// vector has one extra slot at the end (scratch for the compaction).
std::vector<int64_t> owned_rows(const int64_t* index, int64_t N, int64_t s0, int64_t s1, const std::vector<int64_t>& counts) {
  int64_t total = 0;
  for (int64_t s = s0; s < s1; ++s) total += counts[s];
  std::vector<int64_t> rows(total + 1);
  const uint64_t width = static_cast<uint64_t>(s1 - s0);
  int64_t n = 0;
  for (int64_t i = 0; i < N; ++i) {
    rows[n] = i;
    n += static_cast<uint64_t>(index[i] - s0) < width;
  }
  return rows;
}

int num_threads_for(int64_t work) {
  // Below ~32k elements threading costs more than it saves.
  return work < (1 << 15) ? 1 : omp_get_max_threads();
}

// Prefetch every cache line of the `bytes` bytes at p. kWrite: the line will be modified;
// kStream: non-temporal (src rows are used once, keep them out of the outer caches where the
// accumulators live).
template <bool kWrite, bool kStream>
inline void prefetch_lines(const void* p, int64_t bytes) {
  const uintptr_t first = reinterpret_cast<uintptr_t>(p) & ~uintptr_t(63);
  const uintptr_t end = reinterpret_cast<uintptr_t>(p) + static_cast<uintptr_t>(bytes);
  for (uintptr_t q = first; q < end; q += 64) __builtin_prefetch(reinterpret_cast<const void*>(q), kWrite ? 1 : 0, kStream ? 0 : 3);
}

// Scratch memory of the calling thread, 64-byte aligned (accumulator rows then start on cache lines
// as in torch tensors) and kept between calls up to kKeepBytes, so that repeated calls do not
// page-fault a fresh buffer in every time. Larger requests get a buffer owned by `once`.
template <typename T>
T* scratch(size_t count, std::unique_ptr<char[]>& once) {
  constexpr size_t kKeepBytes = size_t(16) << 20, kAlign = 64;
  static thread_local std::unique_ptr<char[]> kept;
  static thread_local size_t kept_bytes = 0;
  const size_t bytes = count * sizeof(T) + kAlign;
  char* base;
  if (bytes > kKeepBytes) {
    once.reset(new char[bytes]);
    base = once.get();
  } else {
    if (kept_bytes < bytes) {
      kept.reset(new char[bytes]);
      kept_bytes = bytes;
    }
    base = kept.get();
  }
  const uintptr_t aligned = (reinterpret_cast<uintptr_t>(base) + kAlign - 1) & ~uintptr_t(kAlign - 1);
  return reinterpret_cast<T*>(aligned);
}

inline size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

// The first 64-byte boundary at or after p (the caller allocated a line more than it uses).
template <typename T>
T* align_line(T* p) {
  return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t(63));
}

// Row split with at most this many accumulator entries (S * C) per thread sums float rows in float64 directly.
constexpr int64_t kDirectElements = int64_t(1) << 14;

// Rows of a segment summed in float32 before the run moves into the segment's float64 sum (see the top).
constexpr int64_t kRun = 16;

// Run state of a segment within the calling thread's rows (one byte per segment, so that it stays in cache
// beside the accumulators): 0..kRun-1 rows in the open run and the run never closed; kRun + k: closed
// before, k rows open.
using RunState = uint8_t;
static_assert(2 * kRun <= 256, "RunState holds 2 kRun states");

// float64 sums of the closed runs of one thread's segments, packed: a segment gets its row of `pool` (slot[s])
// when its first run closes, so only segments with >= kRun rows in the thread take memory, and it is touched
// densely (a [S, C] array would page-fault one scattered page per such segment).
struct alignas(64) RunSums {  // (a cache line each: threads update `used`)
  double* pool = nullptr;   // [capacity, C]
  int64_t* slot = nullptr;  // [S], set at a segment's first close (read only when its run state >= kRun)
  int64_t used = 0;
  const double* row(int64_t s, int64_t C) const { return pool + slot[s] * C; }
};

// Segments that can close a run among n rows (at most one per kRun rows, at most S): the pool's capacity.
inline int64_t run_capacity(int64_t n, int64_t S) { return std::min<int64_t>(S, n / kRun); }

// Row split pays off when the T private accumulators (zeroed, then added: ~(2T+1) S C values of
// traffic) are small next to the N C values of src, and when its scratch memory (sum_row_split) fits a
// budget: the T - 1 partial accumulators (float64-direct: T float64 ones), for float rows in runs the T run
// pools (run_capacity rows of C float64 each) with their slots and run states, and the counts of a mean.
bool use_row_split(int64_t N, int64_t C, int64_t S, int T, size_t elem, bool mean) {
  if (T <= 1) return true;  // one thread: the row-order sum (float32: float64-direct or in runs, see the top)
  if ((2 * T + 1) * S > N / 2) return false;
  constexpr int64_t kBudgetBytes = int64_t(64) << 20;
  const bool runs = elem != sizeof(double);
  const bool direct = runs && S * C <= kDirectElements;
  int64_t bytes = direct ? T * S * C * int64_t(sizeof(double)) : (T - 1) * S * C * static_cast<int64_t>(elem);
  if (runs && !direct)
    bytes += T * (run_capacity((N + T - 1) / T, S) * C * int64_t(sizeof(double)) +
                  S * int64_t(sizeof(int64_t) + sizeof(RunState)));
  if (mean) bytes += T * S * int64_t(sizeof(int64_t));
  return bytes <= kBudgetBytes;
}

#if defined(__GNUC__)
#define GEOMDL_ALWAYS_INLINE inline __attribute__((always_inline))
#define GEOMDL_NOINLINE __attribute__((noinline))
#define GEOMDL_LIKELY(x) __builtin_expect(!!(x), 1)
#else
#define GEOMDL_ALWAYS_INLINE inline
#define GEOMDL_NOINLINE
#define GEOMDL_LIKELY(x) (x)
#endif

// Closes the run `o` of segment s (the cold path of add_row, once per kRun rows): it moves into the segment's
// float64 sum (its row of `w`, written, not added, at the first close, so the pool needs no zeroing) and `o`
// restarts at 0.
template <typename scalar_t>
GEOMDL_NOINLINE void close_run(scalar_t* o, RunSums* w, int64_t s, bool first, int64_t C) {
  if (first) {
    w->slot[s] = w->used;
    double* d = w->pool + w->used++ * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) d[c] = static_cast<double>(o[c]);
  } else {
    double* d = w->pool + w->slot[s] * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) d[c] += static_cast<double>(o[c]);
  }
  std::fill(o, o + C, scalar_t(0));
}

// Adds `row` to the open run `o` of its segment s (run state `r`); for float input every kRun-th row closes
// the run (close_run). float64 input has no runs (r and w unused). Inlined into the row loops (a call per row
// cost up to half the time of an in-cache scatter).
template <typename scalar_t>
GEOMDL_ALWAYS_INLINE void add_row(const scalar_t* row, scalar_t* o, RunState* r, RunSums* w, int64_t s, int64_t C) {
#pragma omp simd
  for (int64_t c = 0; c < C; ++c) o[c] += row[c];
  if constexpr (!std::is_same_v<scalar_t, double>) {
    const unsigned v = *r + 1u;
    if (GEOMDL_LIKELY(v % kRun != 0)) {
      *r = static_cast<RunState>(v);
      return;
    }
    close_run(o, w, s, v == kRun, C);
    *r = static_cast<RunState>(kRun);
  }
}

// The row loops (Rows), compiled for the baseline target and for AVX2 (see scatter_rows.h).
#define GEOMDL_ISA_LOOPS "scatter/scatter_rows.h"
#include "common/isa_copies.h"

// Calls f(generic::Rows{}) or, when the CPU has AVX2 (and GEOMDL_SCATTER_ISA is not "generic"),
// f(avx2::Rows{}): f calls the row loops as `rows.template direct<...>(...)`. `avx` is
// use_avx2_fma("GEOMDL_SCATTER_ISA"), read once per call by scatter_reduce_cpu.
template <typename F>
inline decltype(auto) with_rows(bool avx, F&& f) {
  if (avx) return f(avx2::Rows{});
  return f(generic::Rows{});
}

// tmp += the sum of one thread's rows of a segment: its float64 sum d (when a run was closed, r >= kRun) and
// its open run o.
template <typename scalar_t>
inline void add_total(double* tmp, const scalar_t* o, const double* d, RunState r, int64_t C) {
  if (r >= kRun) {
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) tmp[c] += d[c];
  }
#pragma omp simd
  for (int64_t c = 0; c < C; ++c) tmp[c] += static_cast<double>(o[c]);
}

// out_row = fl(tmp / n) (mean with n > 0 rows) or fl(tmp): the one rounding of float input.
template <typename scalar_t, bool kMean>
inline void round_total(scalar_t* out_row, double* tmp, int64_t n, int64_t C) {
  if (kMean && n > 0) {
    const double cn = static_cast<double>(n);
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) tmp[c] /= cn;
  }
#pragma omp simd
  for (int64_t c = 0; c < C; ++c) out_row[c] = static_cast<scalar_t>(tmp[c]);
}

// out[s] = sum_{i : index[i] = s} src[i] (divided by the count when kMean). Thread t sums the rows
// [N t/T, N (t+1)/T) in row order into acc_t (acc_0 = out); then out = ((acc_0 + acc_1) + ...) +
// acc_{T-1}, segment by segment (float input: in runs, see the top, the float64 totals rounded once).
// One streaming pass over src and index; the accumulator rows of the upcoming rows are prefetched for
// writing, the src rows non-temporally.
// Returns false (having written garbage) when an entry of index lies outside [0, S).
template <typename scalar_t, bool kMean>
bool sum_row_split(const scalar_t* src, const int64_t* index, int64_t N, int64_t C, int64_t S, int T, scalar_t* out,
                   bool avx) {
  constexpr bool kRuns = !std::is_same_v<scalar_t, double>;
  // Few segments (the pooling case: S * C <= kDirectElements): float rows go straight into per-thread float64
  // accumulators, small enough to stay in cache, instead of runs: no per-row run state (which cost more than
  // the row itself for narrow rows), and the sums are exact up to the final rounding.
  const bool direct = kRuns && S * C <= kDirectElements;
  const bool in_runs = kRuns && !direct;
  std::unique_ptr<char[]> own_partial, own_pool;
  const size_t stride = round_up(static_cast<size_t>(S * C), 64 / sizeof(scalar_t));  // whole cache lines
  scalar_t* const partial = T > 1 && !direct ? scratch<scalar_t>((T - 1) * stride, own_partial) : nullptr;
  const size_t direct_stride = round_up(static_cast<size_t>(S * C), 8);
  std::unique_ptr<char[]> own_direct;
  double* const dacc = direct ? scratch<double>(T * direct_stride, own_direct) : nullptr;
  // Per-thread arrays start on their own cache lines (with one segment, threads updating neighbouring
  // entries of one line would serialise on it). float64 sums of the closed runs, packed per thread
  // (RunSums): thread t's pool holds up to run_capacity(its rows, S) rows of C.
  const size_t runs_stride = round_up(static_cast<size_t>(S), 64);
  const size_t counts_stride = round_up(static_cast<size_t>(S), 8);
  std::unique_ptr<char[]> own_slots;
  std::vector<RunSums> sums(in_runs ? T : 0);
  if (in_runs) {  // (not with `direct`: scratch<double> would hand both the same buffer)
    size_t pool_elems = 0;
    std::vector<size_t> first(T, 0);
    for (int t = 0; t < T; ++t) {
      int64_t a, b;
      split_range(N, T, t, a, b);
      first[t] = pool_elems;
      pool_elems += round_up(static_cast<size_t>(run_capacity(b - a, S) * C), 8);
    }
    double* const pool = scratch<double>(std::max<size_t>(pool_elems, 1), own_pool);
    int64_t* const slots = scratch<int64_t>(T * counts_stride, own_slots);
    for (int t = 0; t < T; ++t) {
      sums[t].pool = pool + first[t];
      sums[t].slot = slots + t * counts_stride;
    }
  }
  std::unique_ptr<RunState[]> runs(in_runs ? new RunState[T * runs_stride + 64] : nullptr);
  std::unique_ptr<int64_t[]> counts(kMean ? new int64_t[T * counts_stride + 8] : nullptr);
  // (new[] aligns to 16 bytes: start the per-thread arrays on a line boundary inside the extra line)
  RunState* const runs0 = in_runs ? align_line(runs.get()) : nullptr;
  int64_t* const counts0 = kMean ? align_line(counts.get()) : nullptr;
  std::vector<char> bad_t(T, 0);

#pragma omp parallel num_threads(T)
  {
    // The runtime may start fewer than T threads (OMP_DYNAMIC, nested regions): each thread then takes
    // the parts t, t + team, ... (one part per thread in a full team, as before).
    const int team = omp_get_num_threads();
    for (int t = omp_get_thread_num(); t < T; t += team) {
      int64_t a, b;
      split_range(N, T, t, a, b);
      int64_t* const cnt = kMean ? counts0 + t * counts_stride : nullptr;
      if (direct) {
        double* const d = dacc + t * direct_stride;
        std::fill(d, d + S * C, 0.0);
        if (kMean) std::fill(cnt, cnt + S, int64_t(0));
        const int64_t i =
            with_rows(avx, [&](auto rows) { return rows.template direct<scalar_t, kMean>(src, index, a, b, C, S, d, cnt); });
        bad_t[t] = i < b;
        continue;
      }
      scalar_t* acc = t == 0 ? out : partial + (t - 1) * stride;
      RunSums* const w = kRuns ? &sums[t] : nullptr;
      RunState* const r = kRuns ? runs0 + t * runs_stride : nullptr;
      std::fill(acc, acc + S * C, scalar_t(0));
      if (kRuns) std::fill(r, r + S, RunState(0));
      if (kMean) std::fill(cnt, cnt + S, int64_t(0));
      const int64_t i =
          with_rows(avx, [&](auto rows) { return rows.template runs<scalar_t, kMean>(src, index, a, b, C, S, acc, r, w, cnt); });
      bad_t[t] = i < b;
    }
    if (T > 1 || kMean || kRuns) {
#pragma omp barrier
      std::vector<double> tmp(kRuns ? C : 0);
      for (int t = omp_get_thread_num(); t < T; t += team) {
        int64_t s0, s1;
        split_range(S, T, t, s0, s1);
        for (int64_t s = s0; s < s1; ++s) {
          scalar_t* o = out + s * C;
          int64_t n = 0;  // rows of s (mean)
          if (kMean)
            for (int u = 0; u < T; ++u) n += counts0[u * counts_stride + s];
          if constexpr (kRuns) {
            if (direct) {
              std::fill(tmp.begin(), tmp.end(), 0.0);
              for (int u = 0; u < T; ++u) {
                const double* d = dacc + u * direct_stride + s * C;
#pragma omp simd
                for (int64_t c = 0; c < C; ++c) tmp[c] += d[c];
              }
              round_total<scalar_t, kMean>(o, tmp.data(), n, C);
              continue;
            }
            // One thread, no run closed, a sum: `o` is already the result (fl(o) = o).
            if (T == 1 && !kMean && runs0[s] < kRun) continue;
            std::fill(tmp.begin(), tmp.end(), 0.0);
            for (int u = 0; u < T; ++u) {
              const scalar_t* o_u = u == 0 ? o : partial + (u - 1) * stride + s * C;
              const RunState r_u = runs0[u * runs_stride + s];
              add_total(tmp.data(), o_u, r_u >= kRun ? sums[u].row(s, C) : nullptr, r_u, C);
            }
            round_total<scalar_t, kMean>(o, tmp.data(), n, C);
          } else {
            for (int u = 1; u < T; ++u) {
              const scalar_t* p = partial + (u - 1) * stride + s * C;
#pragma omp simd
              for (int64_t c = 0; c < C; ++c) o[c] += p[c];
            }
            if (kMean && n > 0) {
              const scalar_t cn = static_cast<scalar_t>(n);
#pragma omp simd
              for (int64_t c = 0; c < C; ++c) o[c] /= cn;  // divide (not *1/n), like the reference
            }
          }
        }
      }
    }
  }
  return std::find(bad_t.begin(), bad_t.end(), 1) == bad_t.end();
}

// Sum (kMean: mean) of the rows `rows` (increasing, all with index in [s0, s1); one scratch slot at the
// end) into out [S, C], each segment in row order (float input: in runs, see the top, rounded once).
template <typename scalar_t, bool kMean>
void sum_owned(const scalar_t* src, const int64_t* index, const std::vector<int64_t>& rows,
               const std::vector<int64_t>& counts, int64_t C, int64_t s0, int64_t s1, scalar_t* out, bool avx) {
  constexpr bool kRuns = !std::is_same_v<scalar_t, double>;
  std::fill(out + s0 * C, out + s1 * C, scalar_t(0));
  const int64_t n_rows = static_cast<int64_t>(rows.size()) - 1;
  std::unique_ptr<char[]> own_pool, own_slots;
  RunSums w;  // indexed by s - s0
  if (kRuns) {
    w.pool = scratch<double>(static_cast<size_t>(std::max<int64_t>(run_capacity(n_rows, s1 - s0), 1) * C), own_pool);
    w.slot = scratch<int64_t>(static_cast<size_t>(s1 - s0), own_slots);
  }
  std::vector<RunState> runs(kRuns ? s1 - s0 : 0, 0);
  with_rows(avx, [&](auto r) { r.template owned_sum<scalar_t>(src, index, rows.data(), n_rows, C, s0, out, runs.data(), &w); });
  if constexpr (kRuns) {
    std::vector<double> tmp(C);
    for (int64_t s = s0; s < s1; ++s) {
      const RunState r = runs[s - s0];
      if (counts[s] == 0 || (!kMean && r < kRun)) continue;  // no run closed: `o` is already the sum
      std::fill(tmp.begin(), tmp.end(), 0.0);
      add_total(tmp.data(), out + s * C, r >= kRun ? w.row(s - s0, C) : nullptr, r, C);
      round_total<scalar_t, kMean>(out + s * C, tmp.data(), counts[s], C);
    }
  } else if (kMean) {
    for (int64_t s = s0; s < s1; ++s) {
      if (counts[s] == 0) continue;
      const scalar_t cnt_s = static_cast<scalar_t>(counts[s]);
      scalar_t* o = out + s * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) o[c] /= cnt_s;  // divide (not *1/n) to match the reference bit for bit
    }
  }
}

// Max (kMax) or min of the rows `rows` (increasing, all with index in [s0, s1); one scratch slot at the
// end) into out/arg [S, C]. A segment's first row initialises its output row (arg = that row); a later
// row replaces the channels where it is strictly greater (smaller), or where it is NaN and the output is
// not yet NaN, so ties and NaN keep the first row attaining them. The channel loop is branch-free
// (selects) and tracks the row numbers in lanes of the value's width, `lane_t` (int32 beside float,
// double beside double: exact below 2^53), because SSE2 cannot select between float and int64 lanes;
// the lanes (the calling thread's scratch) are widened into `arg` at the end. Segments without rows get
// 0 and arg N.
template <typename scalar_t, typename lane_t, bool kMax>
void minmax_owned(const scalar_t* src, const int64_t* index, const std::vector<int64_t>& rows, int64_t C, int64_t s0,
                  int64_t s1, int64_t N, scalar_t* out, int64_t* arg, bool avx) {
  std::vector<char> seen(s1 - s0, 0);
  std::unique_ptr<char[]> own_lanes;
  lane_t* const lanes = scratch<lane_t>(static_cast<size_t>((s1 - s0) * C), own_lanes);
  const int64_t n_rows = static_cast<int64_t>(rows.size()) - 1;
  with_rows(avx, [&](auto r) {
    r.template owned_minmax<scalar_t, lane_t, kMax>(src, index, rows.data(), n_rows, C, s0, out, lanes, seen.data());
  });
  for (int64_t s = s0; s < s1; ++s) {
    int64_t* a = arg + s * C;
    if (!seen[s - s0]) {
      std::fill(out + s * C, out + (s + 1) * C, scalar_t(0));
      std::fill(a, a + C, N);
      continue;
    }
    const lane_t* l = lanes + (s - s0) * C;
    for (int64_t c = 0; c < C; ++c) a[c] = static_cast<int64_t>(l[c]);
  }
}

template <typename scalar_t, bool kMax>
void minmax_owned_any(const scalar_t* src, const int64_t* index, const std::vector<int64_t>& rows, int64_t C, int64_t s0,
                      int64_t s1, int64_t N, scalar_t* out, int64_t* arg, bool avx) {
  if constexpr (std::is_same_v<scalar_t, double>) {
    if (N < (int64_t(1) << 53)) return minmax_owned<double, double, kMax>(src, index, rows, C, s0, s1, N, out, arg, avx);
  } else {
    if (N <= std::numeric_limits<int32_t>::max())
      return minmax_owned<scalar_t, int32_t, kMax>(src, index, rows, C, s0, s1, N, out, arg, avx);
  }
  minmax_owned<scalar_t, int64_t, kMax>(src, index, rows, C, s0, s1, N, out, arg, avx);  // scalar, any N
}

template <typename scalar_t>
void scatter_impl(const scalar_t* src, const int64_t* index, int64_t N, int64_t C, int64_t S, Reduce reduce,
                  scalar_t* out, int64_t* arg, bool avx) {
  if (reduce == Reduce::Sum || reduce == Reduce::Mean) {
    const int Tr = num_threads_for(N * C);
    if (use_row_split(N, C, S, Tr, sizeof(scalar_t), reduce == Reduce::Mean)) {
      const bool ok = reduce == Reduce::Sum ? sum_row_split<scalar_t, false>(src, index, N, C, S, Tr, out, avx)
                                            : sum_row_split<scalar_t, true>(src, index, N, C, S, Tr, out, avx);
      if (!ok) check_index_range(index, N, S);  // raises
      return;
    }
  }
  const int T = std::max<int>(1, std::min<int64_t>(num_threads_for(N * C), std::max<int64_t>(S, 1)));
  const std::vector<int64_t> counts = histogram(index, N, S, T);
  const std::vector<int64_t> bounds = balance_segments(counts, N, T);
  const bool is_minmax = reduce == Reduce::Max || reduce == Reduce::Min;

#pragma omp parallel num_threads(T)
  {
    // Each thread takes the parts t, t + team, ... < T (the runtime may start fewer than T threads).
    const int team = omp_get_num_threads();
    for (int t = omp_get_thread_num(); t < T; t += team) {
      const int64_t s0 = bounds[t], s1 = bounds[t + 1];
      if (is_minmax) {
        if (s1 > s0) {
          const std::vector<int64_t> rows = owned_rows(index, N, s0, s1, counts);
          if (reduce == Reduce::Max)
            minmax_owned_any<scalar_t, true>(src, index, rows, C, s0, s1, N, out, arg, avx);
          else
            minmax_owned_any<scalar_t, false>(src, index, rows, C, s0, s1, N, out, arg, avx);
        }
      } else if (s1 > s0) {
        const std::vector<int64_t> rows = owned_rows(index, N, s0, s1, counts);
        if (reduce == Reduce::Mean)
          sum_owned<scalar_t, true>(src, index, rows, counts, C, s0, s1, out, avx);
        else
          sum_owned<scalar_t, false>(src, index, rows, counts, C, s0, s1, out, avx);
      }
    }
  }
}

std::tuple<at::Tensor, at::Tensor> scatter_reduce_cpu(const at::Tensor& src, const at::Tensor& index, int64_t dim_size,
                                                      c10::string_view reduce_name) {
  GEOMDL_CHECK_CPU(src);
  GEOMDL_CHECK_CPU(index);
  GEOMDL_CHECK_CONTIGUOUS(src);
  GEOMDL_CHECK_CONTIGUOUS(index);
  GEOMDL_CHECK_DTYPE(index, at::kLong);
  TORCH_CHECK(src.dim() == 2, "src must be 2-D [N, C]");
  TORCH_CHECK(index.dim() == 1 && index.size(0) == src.size(0), "index must be 1-D with src.size(0) entries");
  TORCH_CHECK(dim_size >= 0, "dim_size must be >= 0");
  // Entries of index outside [0, dim_size) raise ValueError (checked within the kernel's passes).
  const Reduce reduce = parse_reduce(std::string(reduce_name));
  // which copy of the row loops runs (read once, outside the parallel regions, and before the early returns:
  // a bad GEOMDL_SCATTER_ISA raises on any call)
  const bool avx = use_avx2_fma("GEOMDL_SCATTER_ISA");
  const int64_t N = src.size(0), C = src.size(1);
  at::Tensor out = at::empty({dim_size, C}, src.options());
  const bool is_minmax = reduce == Reduce::Max || reduce == Reduce::Min;
  at::Tensor arg = is_minmax ? at::empty({dim_size, C}, index.options()) : at::empty({0}, index.options());
  if (dim_size == 0 || C == 0) check_index_range(index.data_ptr<int64_t>(), N, dim_size);  // no pass below
  if (dim_size == 0) return {out, arg};
  if (N == 0 || C == 0) {
    out.zero_();
    if (is_minmax) arg.fill_(N);
    return {out, arg};
  }
  AT_DISPATCH_FLOATING_TYPES(src.scalar_type(), "geomdl_scatter_reduce_cpu", [&] {
    scatter_impl<scalar_t>(src.data_ptr<scalar_t>(), index.data_ptr<int64_t>(), N, C, dim_size, reduce,
                           out.data_ptr<scalar_t>(), is_minmax ? arg.data_ptr<int64_t>() : nullptr, avx);
  });
  return {out, arg};
}

// Accumulator of the softmax denominators: double for float and double inputs. A float32 running sum
// of n terms of a segment errs by up to ~n/2 ulps (1e-4 relative at n = 1e5); in double the sum stays
// within ~1 float32 ulp of the exact one for any n < 2^29.
using SoftmaxAcc = double;

// The segments [s0, s1) owned by one thread (rows: their n_rows rows, in order), per channel:
//   m_s = max_{i in s} x_i,  e_i = exp(x_i - m_s) (stored in y),  den_s = sum_{i in s} e_i (in SoftmaxAcc),
//   y_i = e_i / fl(den_s)  (den_s rounded once to scalar_t, as in the reference).
template <typename scalar_t>
void softmax_owned(const scalar_t* x, const int64_t* idx, const int64_t* rows, int64_t n_rows, int64_t s0, int64_t s1,
                   int64_t C, scalar_t* mx, SoftmaxAcc* den, scalar_t* y) {
  for (int64_t k = 0; k < n_rows; ++k) {
    const int64_t i = rows[k];
    scalar_t* m = mx + idx[i] * C;
    for (int64_t c = 0; c < C; ++c) m[c] = std::max(m[c], x[i * C + c]);
  }
  for (int64_t k = 0; k < n_rows; ++k) {
    const int64_t i = rows[k];
    const scalar_t* m = mx + idx[i] * C;
    SoftmaxAcc* d = den + idx[i] * C;
    for (int64_t c = 0; c < C; ++c) {
      const scalar_t e = std::exp(x[i * C + c] - m[c]);
      y[i * C + c] = e;
      d[c] += static_cast<SoftmaxAcc>(e);
    }
  }
  // The maxima are no longer needed: mx now holds fl(den_s), the divisor of the rows of s.
  for (int64_t j = s0 * C; j < s1 * C; ++j) mx[j] = static_cast<scalar_t>(den[j]);
  for (int64_t k = 0; k < n_rows; ++k) {
    const int64_t i = rows[k];
    const scalar_t* d = mx + idx[i] * C;
    for (int64_t c = 0; c < C; ++c) y[i * C + c] /= d[c];
  }
}

template <typename scalar_t>
void segment_softmax_impl(const scalar_t* x, const int64_t* idx, int64_t N, int64_t C, int64_t dim_size, scalar_t* y) {
  const int T = std::max<int>(1, std::min<int64_t>(num_threads_for(N * C), std::max<int64_t>(dim_size, 1)));
  const std::vector<int64_t> counts = histogram(idx, N, dim_size, T);
  const std::vector<int64_t> bounds = balance_segments(counts, N, T);
  std::vector<scalar_t> mx(dim_size * C);
  std::vector<SoftmaxAcc> den(dim_size * C);
#pragma omp parallel num_threads(T)
  {
    // Each thread takes the parts t, t + team, ... < T (the runtime may start fewer than T threads).
    const int team = omp_get_num_threads();
    for (int t = omp_get_thread_num(); t < T; t += team) {
      const int64_t s0 = bounds[t], s1 = bounds[t + 1];
      std::fill(mx.begin() + s0 * C, mx.begin() + s1 * C, -std::numeric_limits<scalar_t>::infinity());
      std::fill(den.begin() + s0 * C, den.begin() + s1 * C, SoftmaxAcc(0));
      if (s1 > s0) {
        const std::vector<int64_t> rows = owned_rows(idx, N, s0, s1, counts);
        softmax_owned(x, idx, rows.data(), static_cast<int64_t>(rows.size()) - 1, s0, s1, C, mx.data(), den.data(), y);
      }
    }
  }
}

// softmax within segments: y_i = exp(x_i - max_s) / sum_{j in s} exp(x_j - max_s), per channel.
at::Tensor segment_softmax_cpu(const at::Tensor& src, const at::Tensor& index, int64_t dim_size) {
  GEOMDL_CHECK_CPU(src);
  GEOMDL_CHECK_CONTIGUOUS(src);
  GEOMDL_CHECK_CONTIGUOUS(index);
  GEOMDL_CHECK_DTYPE(index, at::kLong);
  TORCH_CHECK(src.dim() == 2, "src must be 2-D [N, C]");
  TORCH_CHECK(index.dim() == 1 && index.size(0) == src.size(0), "index must be 1-D with src.size(0) entries");
  const int64_t N = src.size(0), C = src.size(1);
  at::Tensor out = at::empty_like(src);
  if (C == 0) check_index_range(index.data_ptr<int64_t>(), N, dim_size);  // no pass below reads index
  if (N == 0 || C == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(src.scalar_type(), "geomdl_segment_softmax_cpu", [&] {
    segment_softmax_impl<scalar_t>(src.data_ptr<scalar_t>(), index.data_ptr<int64_t>(), N, C, dim_size, out.data_ptr<scalar_t>());
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(geomdl, CPU, m) {
  m.impl("scatter_reduce", &scatter_reduce_cpu);
  m.impl("segment_softmax", &segment_softmax_cpu);
}

}  // namespace geomdl
