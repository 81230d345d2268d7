// CPU farthest point sampling. For each cloud b (rows ptr[b] .. ptr[b+1]) and m = num[b]:
//     s_0 = start[b],   s_t = argmax_i min_{u < t} |p_i - p_{s_u}|^2   (t = 1 .. m-1),
// the first (lowest) index on ties, squared distances accumulated in double left to right over the
// coordinates. Identical to fps_reference (geomdl/ops/fps.py), index for index.
//
// The running minimum distance of every point is kept in a double array; one pass per selected
// point updates it and finds the argmax. Points are stored as double, coordinate-major, and
// processed in blocks: the update and the block maximum vectorise, and a block is rescanned for its
// first maximal index only when it beats the running maximum. Large clouds are split between the
// threads (one barrier per selected point, per-thread maxima reduced identically by every thread);
// small clouds are sampled one per thread. The update is compiled for the baseline target and for AVX2
// (fps_update.h; the same indices either way).
#include "common/no_fma.h"  // rounded like fps_reference: no FMA contraction

#include "common/cpu_isa.h"
#include "common/parallel.h"
#include <torch/all.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

namespace geomdl {
namespace {

constexpr int64_t kBlock = 256;
// Clouds at least this large are split between threads. Every selected point costs one barrier,
// so a thread must have enough work per point (here >= 2^17 points, ~0.2 ms) for the split to pay
// off even on a busy machine, where a barrier can wait for a descheduled thread.
constexpr int64_t kParallelPoints = 1 << 18;

// Barrier for the per-point synchronisation of the threads sampling one cloud. Waiting threads
// spin briefly, then yield the core: on a busy machine a spinning waiter would otherwise take the
// core from the very thread it waits for (OpenMP's barrier spins far longer).
class YieldingBarrier {
 public:
  explicit YieldingBarrier(int n) : n_(n) {}
  void wait() {
    const int gen = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
      arrived_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
      return;
    }
    for (int spin = 0; generation_.load(std::memory_order_acquire) == gen; ++spin)
      if (spin > 200) std::this_thread::yield();
  }

 private:
  const int n_;
  std::atomic<int> arrived_{0};
  std::atomic<int> generation_{0};
};

struct Arg {
  double value;
  int64_t index;
};
// Larger value wins; equal values: the lower index.
inline bool arg_better(const Arg& a, const Arg& b) {
  return a.value > b.value || (a.value == b.value && a.index < b.index);
}

// Cloud data: coordinates [dim][n] as double and the running minimum distance [n].
struct Cloud {
  int64_t n = 0, dim = 0;
  std::vector<double> coords, dist;
  const double* col(int64_t d) const { return coords.data() + d * n; }
};

template <typename scalar_t>
void load(Cloud& c, const scalar_t* pos, int64_t n, int64_t dim, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; ++i) {
    for (int64_t d = 0; d < dim; ++d) c.coords[d * n + i] = static_cast<double>(pos[i * dim + d]);
    c.dist[i] = std::numeric_limits<double>::infinity();
  }
}

// The distance update (Update::range), compiled for the baseline target and for AVX2 (see fps_update.h).
#define GEOMDL_ISA_LOOPS "fps/fps_update.h"
#include "common/isa_copies.h"

// Updates dist[i0:i1] with the distances to point `center` (coordinates `cp`) and returns the first
// maximal entry of the updated range: the AVX2 copy when `avx`.
template <int D>
Arg update_range(Cloud& c, const double* cp, int64_t i0, int64_t i1, bool avx) {
  return avx ? avx2::Update::range<D>(c, cp, i0, i1) : generic::Update::range<D>(c, cp, i0, i1);
}

template <int D>
void coords_of(const Cloud& c, int64_t i, double* out) {
  const int64_t dim = D > 0 ? D : c.dim;
  for (int64_t d = 0; d < dim; ++d) out[d] = c.col(d)[i];
}

// Sample `m` points of one cloud with `threads` threads; writes global indices base + local.
template <typename scalar_t, int D>
void sample_cloud(const scalar_t* pos, int64_t n, int64_t dim, int64_t m, int64_t first, int64_t base, int64_t* out,
                  int threads, bool avx) {
  Cloud c;
  c.n = n;
  c.dim = dim;
  c.coords.resize(n * dim);
  c.dist.resize(n);
  if (threads <= 1) {
    load(c, pos, n, dim, 0, n);
    std::vector<double> cp(dim);
    int64_t cur = first;
    for (int64_t t = 0; t < m; ++t) {
      out[t] = base + cur;
      if (t + 1 == m) break;
      coords_of<D>(c, cur, cp.data());
      cur = update_range<D>(c, cp.data(), 0, n, avx).index;
    }
    return;
  }
  std::vector<Arg> slots(2 * threads);
  int team = threads;
  std::unique_ptr<YieldingBarrier> barrier;
#pragma omp parallel num_threads(threads)
  {
    const int tid = omp_get_thread_num();
#pragma omp single
    {
      team = omp_get_num_threads();
      barrier = std::make_unique<YieldingBarrier>(team);
    }  // implicit barrier: every thread sees `team` and `barrier`
    const int T = team;
    // Contiguous chunks aligned to blocks, in index order of the threads.
    const int64_t blocks = (n + kBlock - 1) / kBlock;
    const int64_t i0 = std::min(n, (blocks * tid / T) * kBlock), i1 = std::min(n, (blocks * (tid + 1) / T) * kBlock);
    load(c, pos, n, dim, i0, i1);
    std::vector<double> cp(dim);
#pragma omp barrier
    int64_t cur = first;
    for (int64_t t = 0; t < m; ++t) {
      if (tid == 0) out[t] = base + cur;
      if (t + 1 == m) break;
      coords_of<D>(c, cur, cp.data());
      Arg* slot = slots.data() + (t & 1) * T;
      slot[tid] = i1 > i0 ? update_range<D>(c, cp.data(), i0, i1, avx) : Arg{-1.0, n};
      barrier->wait();
      Arg best = slot[0];
      for (int u = 1; u < T; ++u)
        if (arg_better(slot[u], best)) best = slot[u];
      cur = best.index;
    }
  }
}

template <typename scalar_t, int D>
void fps_dispatch(const at::Tensor& pos, const int64_t* ptr, const int64_t* num, const int64_t* start,
                  const std::vector<int64_t>& offset, int64_t nb, int64_t* out, bool avx) {
  const int64_t dim = pos.size(1);
  const scalar_t* p = pos.data_ptr<scalar_t>();
  const int max_threads = std::max(1, omp_get_max_threads());
  // Small clouds: one thread each.
#pragma omp parallel for schedule(dynamic, 1) num_threads(max_threads)
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t n = ptr[b + 1] - ptr[b];
    if (num[b] == 0 || (n >= kParallelPoints && max_threads > 1)) continue;
    sample_cloud<scalar_t, D>(p + ptr[b] * dim, n, dim, num[b], start[b], ptr[b], out + offset[b], 1, avx);
  }
  // Large clouds: all threads on each.
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t n = ptr[b + 1] - ptr[b];
    if (num[b] == 0 || !(n >= kParallelPoints && max_threads > 1)) continue;
    sample_cloud<scalar_t, D>(p + ptr[b] * dim, n, dim, num[b], start[b], ptr[b], out + offset[b], max_threads, avx);
  }
}

at::Tensor fps_cpu(const at::Tensor& pos, const at::Tensor& ptr, const at::Tensor& num, const at::Tensor& start) {
  TORCH_CHECK(pos.device().is_cpu(), "pos must be a CPU tensor");
  TORCH_CHECK(pos.dim() == 2 && pos.size(1) >= 1, "pos must be 2-D [N, D] with D >= 1");
  TORCH_CHECK(pos.scalar_type() == at::kFloat || pos.scalar_type() == at::kDouble, "pos must be float32 or float64");
  TORCH_CHECK(pos.is_contiguous(), "pos must be contiguous");
  for (const at::Tensor* t : {&ptr, &num, &start})
    TORCH_CHECK(t->device().is_cpu() && t->scalar_type() == at::kLong && t->dim() == 1,
                "ptr, num and start must be 1-D int64 CPU tensors");
  const int64_t nb = num.numel();
  TORCH_CHECK(ptr.numel() == nb + 1 && start.numel() == nb, "ptr must have len(num) + 1 entries and start len(num)");
  const at::Tensor ptr_c = ptr.contiguous(), num_c = num.contiguous(), start_c = start.contiguous();
  const int64_t* pp = ptr_c.data_ptr<int64_t>();
  const int64_t* np = num_c.data_ptr<int64_t>();
  const int64_t* sp = start_c.data_ptr<int64_t>();
  TORCH_CHECK(pp[0] == 0 && pp[nb] == pos.size(0), "ptr must run from 0 to the number of points");
  std::vector<int64_t> offset(nb + 1, 0);
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t n = pp[b + 1] - pp[b];
    TORCH_CHECK(n >= 0, "ptr must be non-decreasing");
    TORCH_CHECK(np[b] >= 0 && np[b] <= n, "num[", b, "] must lie in [0, ", n, "], got ", np[b]);
    TORCH_CHECK(np[b] == 0 || (sp[b] >= 0 && sp[b] < n), "start[", b, "] must lie in [0, ", n, "), got ", sp[b]);
    offset[b + 1] = offset[b] + np[b];
  }
  at::Tensor out = at::empty({offset[nb]}, pos.options().dtype(at::kLong));
  // (read once, outside the parallel regions, and before the early return: a bad value raises on any call)
  const bool avx = use_avx2_fma("GEOMDL_FPS_ISA");
  if (offset[nb] == 0) return out;
  int64_t* o = out.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "geomdl_fps_cpu", [&] {
    switch (pos.size(1)) {
      case 2: fps_dispatch<scalar_t, 2>(pos, pp, np, sp, offset, nb, o, avx); break;
      case 3: fps_dispatch<scalar_t, 3>(pos, pp, np, sp, offset, nb, o, avx); break;
      default: fps_dispatch<scalar_t, 0>(pos, pp, np, sp, offset, nb, o, avx);
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(geomdl, CPU, m) { m.impl("fps", &fps_cpu); }

}  // namespace geomdl
