// CPU scatter reductions and segment softmax.
//
// Work is split by *ownership*: a histogram of `index` balances the output segments between
// threads so that each thread owns a contiguous range of segments holding about N/T rows; each
// thread collects (branch-free) the rows whose segment it owns and reduces them in row order,
// prefetching rows ahead. Every
// segment is therefore reduced by one thread, in index order: results are bit-for-bit identical
// for any number of threads, no atomics are needed, and `src` is read exactly once.
#include <omp.h>
#include <torch/all.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common/checks.h"

namespace geomdl {
namespace {

enum class Reduce { Sum, Mean, Max, Min };

Reduce parse_reduce(const std::string& r) {
  if (r == "sum") return Reduce::Sum;
  if (r == "mean") return Reduce::Mean;
  if (r == "max") return Reduce::Max;
  if (r == "min") return Reduce::Min;
  TORCH_CHECK(false, "reduce must be one of sum, mean, max, min; got ", r);
}

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

std::vector<int64_t> histogram(const int64_t* index, int64_t N, int64_t S) {
  std::vector<int64_t> counts(S, 0);
  for (int64_t i = 0; i < N; ++i) counts[index[i]]++;
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

template <typename scalar_t>
void scatter_impl(const scalar_t* src, const int64_t* index, int64_t N, int64_t C, int64_t S, Reduce reduce,
                  scalar_t* out, int64_t* arg) {
  const std::vector<int64_t> counts = histogram(index, N, S);
  const int T = std::max<int>(1, std::min<int64_t>(num_threads_for(N * C), std::max<int64_t>(S, 1)));
  const std::vector<int64_t> bounds = balance_segments(counts, N, T);
  const bool is_minmax = reduce == Reduce::Max || reduce == Reduce::Min;

#pragma omp parallel num_threads(T)
  {
    const int t = omp_get_thread_num();
    const int64_t s0 = bounds[t], s1 = bounds[t + 1];
    std::fill(out + s0 * C, out + s1 * C, scalar_t(0));
    if (is_minmax) std::fill(arg + s0 * C, arg + s1 * C, N);
    if (s1 > s0) {
      const std::vector<int64_t> rows = owned_rows(index, N, s0, s1, counts);
      const int64_t n_rows = static_cast<int64_t>(rows.size()) - 1;
      const bool is_max = reduce == Reduce::Max;
      for (int64_t k = 0; k < n_rows; ++k) {
        const int64_t i = rows[k];
        if (k + kPrefetch < n_rows) prefetch_row(src + rows[k + kPrefetch] * C, C);
        const int64_t s = index[i];
        const scalar_t* row = src + i * C;
        scalar_t* o = out + s * C;
        if (!is_minmax) {
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) o[c] += row[c];
        } else {
          int64_t* a = arg + s * C;
          for (int64_t c = 0; c < C; ++c) {
            const scalar_t v = row[c];
            const bool take = a[c] == N || (is_max ? v > o[c] : v < o[c]) || (std::isnan(v) && !std::isnan(o[c]));
            if (take) {
              o[c] = v;
              a[c] = i;
            }
          }
        }
      }
      if (reduce == Reduce::Mean) {
        for (int64_t s = s0; s < s1; ++s) {
          if (counts[s] == 0) continue;
          const scalar_t cnt = static_cast<scalar_t>(counts[s]);
          scalar_t* o = out + s * C;
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) o[c] /= cnt;  // divide (not *1/n) to match the reference bit for bit
        }
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
  const Reduce reduce = parse_reduce(std::string(reduce_name));
  const int64_t N = src.size(0), C = src.size(1);
  at::Tensor out = at::empty({dim_size, C}, src.options());
  const bool is_minmax = reduce == Reduce::Max || reduce == Reduce::Min;
  at::Tensor arg = is_minmax ? at::empty({dim_size, C}, index.options()) : at::empty({0}, index.options());
  if (dim_size == 0) return {out, arg};
  if (N == 0 || C == 0) {
    out.zero_();
    if (is_minmax) arg.fill_(N);
    return {out, arg};
  }
  AT_DISPATCH_FLOATING_TYPES(src.scalar_type(), "geomdl_scatter_reduce_cpu", [&] {
    scatter_impl<scalar_t>(src.data_ptr<scalar_t>(), index.data_ptr<int64_t>(), N, C, dim_size, reduce,
                           out.data_ptr<scalar_t>(), is_minmax ? arg.data_ptr<int64_t>() : nullptr);
  });
  return {out, arg};
}

template <typename scalar_t>
void segment_softmax_impl(const scalar_t* x, const int64_t* idx, int64_t N, int64_t C, int64_t dim_size, scalar_t* y) {
  const std::vector<int64_t> counts = histogram(idx, N, dim_size);
  const int T = std::max<int>(1, std::min<int64_t>(num_threads_for(N * C), std::max<int64_t>(dim_size, 1)));
  const std::vector<int64_t> bounds = balance_segments(counts, N, T);
  std::vector<scalar_t> mx(dim_size * C), den(dim_size * C);
#pragma omp parallel num_threads(T)
  {
    const int t = omp_get_thread_num();
    const int64_t s0 = bounds[t], s1 = bounds[t + 1];
    std::fill(mx.begin() + s0 * C, mx.begin() + s1 * C, -std::numeric_limits<scalar_t>::infinity());
    std::fill(den.begin() + s0 * C, den.begin() + s1 * C, scalar_t(0));
    if (s1 > s0) {
      const std::vector<int64_t> rows = owned_rows(idx, N, s0, s1, counts);
      const int64_t n_rows = static_cast<int64_t>(rows.size()) - 1;
      for (int64_t k = 0; k < n_rows; ++k) {
        const int64_t i = rows[k];
        scalar_t* m = mx.data() + idx[i] * C;
        for (int64_t c = 0; c < C; ++c) m[c] = std::max(m[c], x[i * C + c]);
      }
      for (int64_t k = 0; k < n_rows; ++k) {
        const int64_t i = rows[k];
        const scalar_t* m = mx.data() + idx[i] * C;
        scalar_t* d = den.data() + idx[i] * C;
        for (int64_t c = 0; c < C; ++c) {
          const scalar_t e = std::exp(x[i * C + c] - m[c]);
          y[i * C + c] = e;
          d[c] += e;
        }
      }
      for (int64_t k = 0; k < n_rows; ++k) {
        const int64_t i = rows[k];
        const scalar_t* d = den.data() + idx[i] * C;
        for (int64_t c = 0; c < C; ++c) y[i * C + c] /= d[c];
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
