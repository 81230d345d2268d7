// CUDA farthest point sampling (geomdl::fps), index for index identical to fps_cpu.cpp and to
// fps_reference (geomdl/ops/fps.py). For each cloud b (rows ptr[b] .. ptr[b+1]) and m = num[b]:
//     s_0 = start[b],   s_t = argmax_i min_{u < t} |p_i - p_{s_u}|^2   (t = 1 .. m-1),
// the lowest index on ties; squared distances in double, summed left to right over the coordinates,
// every operation rounded on its own (__dsub_rn / __dmul_rn / __dadd_rn: never contracted into FMAs).
//
// One thread block per cloud (with num[b] > 0). Every selected point costs one pass over the cloud:
// thread `tid` updates the running minimum distance of its points i = tid, tid + B, ... and keeps its
// first maximum; a block-wide argmax (warp shuffles, then one warp over the per-warp winners, ties to
// the lower index) picks the next point. The running minima are kept in shared memory when the
// largest cloud fits (opt-in dynamic shared memory), otherwise in a global double array.
#include "common/cuda_utils.cuh"

#include <torch/library.h>

#include <climits>
#include <type_traits>
#include <vector>

namespace geomdl {
namespace {

// Per-cloud job: first row, number of rows, number of samples, local start index, output offset.
constexpr int kJobFields = 5;

__device__ __forceinline__ bool arg_better(double va, int ia, double vb, int ib) {
  return va > vb || (va == vb && ia < ib);
}

// Lane 0 ends with the best (value, index) of the warp.
__device__ __forceinline__ void warp_argmax(double& v, int& i) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const double ov = __shfl_down_sync(0xffffffffu, v, off);
    const int oi = __shfl_down_sync(0xffffffffu, i, off);
    if (arg_better(ov, oi, v, i)) {
      v = ov;
      i = oi;
    }
  }
}

template <typename scalar_t, int D, int kBlock>
__global__ void __launch_bounds__(kBlock) fps_kernel(const scalar_t* __restrict__ pos, int64_t dim,
                                                      const int64_t* __restrict__ jobs, double* __restrict__ gdist,
                                                      bool use_smem, int64_t* __restrict__ out) {
  extern __shared__ double smem_dist[];
  constexpr int kWarps = kBlock / 32;
  static_assert(kBlock % 32 == 0 && kWarps <= 32, "block size");
  __shared__ double s_v[kWarps];
  __shared__ int s_i[kWarps];
  __shared__ int s_cur;

  const int64_t* job = jobs + kJobFields * int64_t(blockIdx.x);
  const int64_t base = job[0];
  const int n = static_cast<int>(job[1]);
  const int64_t m = job[2];
  const int first = static_cast<int>(job[3]);
  int64_t* o = out + job[4];
  const int64_t ndim = D > 0 ? D : dim;
  const scalar_t* p = pos + base * ndim;
  double* dist = use_smem ? smem_dist : gdist + base;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

  if (tid == 0) o[0] = base + first;
  int cur = first;
  for (int64_t t = 1; t < m; ++t) {
    const scalar_t* cp = p + int64_t(cur) * ndim;
    double c[D > 0 ? D : 1];
#pragma unroll
    for (int d = 0; d < (D > 0 ? D : 1); ++d) c[d] = D > 0 ? static_cast<double>(cp[d]) : 0.0;
    double bv = -1.0;
    int bi = INT_MAX;
    for (int i = tid; i < n; i += kBlock) {
      const scalar_t* pi = p + int64_t(i) * ndim;
      double acc = 0.0;
      if (D > 0) {
#pragma unroll
        for (int d = 0; d < (D > 0 ? D : 1); ++d) {
          const double u = __dsub_rn(c[d], static_cast<double>(pi[d]));
          acc = __dadd_rn(acc, __dmul_rn(u, u));
        }
      } else {
        for (int64_t d = 0; d < ndim; ++d) {
          const double u = __dsub_rn(static_cast<double>(cp[d]), static_cast<double>(pi[d]));
          acc = __dadd_rn(acc, __dmul_rn(u, u));
        }
      }
      // Running minimum (the first update replaces the initial +inf, as in fps_cpu.cpp).
      double mn = acc;
      if (t > 1) {
        const double prev = dist[i];
        mn = acc < prev ? acc : prev;
      }
      dist[i] = mn;
      if (mn > bv) {  // strictly greater: the first maximum of this thread's (increasing) indices
        bv = mn;
        bi = i;
      }
    }
    warp_argmax(bv, bi);
    if (lane == 0) {
      s_v[warp] = bv;
      s_i[warp] = bi;
    }
    __syncthreads();
    if (warp == 0) {
      bv = lane < kWarps ? s_v[lane] : -1.0;
      bi = lane < kWarps ? s_i[lane] : INT_MAX;
      warp_argmax(bv, bi);
      if (lane == 0) {
        if (bi >= n) bi = cur;  // every distance NaN (non-finite input; the Python wrapper rejects it): stay in bounds
        s_cur = bi;
        o[t] = base + bi;
      }
    }
    __syncthreads();
    cur = s_cur;
  }
}

template <typename scalar_t, int D, int kBlock>
void launch_fps(const at::Tensor& pos, const at::Tensor& jobs, int64_t njobs, int64_t max_n, int64_t* out) {
  auto kernel = fps_kernel<scalar_t, D, kBlock>;
  int optin = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, pos.get_device()));
  const int64_t bytes = max_n * static_cast<int64_t>(sizeof(double));
  const bool use_smem = bytes + 2048 <= static_cast<int64_t>(optin);  // 2 KiB left for the static arrays
  at::Tensor gdist;
  double* gptr = nullptr;
  size_t smem = 0;
  if (use_smem) {
    smem = static_cast<size_t>(bytes);
    // Per-kernel attribute shared by all host threads: set the cap to the largest size any call uses
    // (opt-in maximum less the 2 KiB kept for the static arrays), never to this call's size.
    if (smem > 48 * 1024)
      C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, optin - 2048));
  } else {
    gdist = at::empty({pos.size(0)}, pos.options().dtype(at::kDouble));
    gptr = gdist.data_ptr<double>();
  }
  kernel<<<static_cast<unsigned int>(njobs), kBlock, smem, cuda::stream()>>>(
      pos.data_ptr<scalar_t>(), pos.size(1), jobs.data_ptr<int64_t>(), gptr, use_smem, out);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename scalar_t, int D>
void launch_fps_dim(const at::Tensor& pos, const at::Tensor& jobs, int64_t njobs, int64_t max_n, int64_t* out) {
  if (max_n > 2048) launch_fps<scalar_t, D, 1024>(pos, jobs, njobs, max_n, out);
  else launch_fps<scalar_t, D, 256>(pos, jobs, njobs, max_n, out);
}

at::Tensor fps_cuda(const at::Tensor& pos, const at::Tensor& ptr, const at::Tensor& num, const at::Tensor& start) {
  GEOMDL_CHECK_CUDA(pos);
  TORCH_CHECK(pos.dim() == 2 && pos.size(1) >= 1, "pos must be 2-D [N, D] with D >= 1");
  TORCH_CHECK(pos.scalar_type() == at::kFloat || pos.scalar_type() == at::kDouble, "pos must be float32 or float64");
  TORCH_CHECK(pos.is_contiguous(), "pos must be contiguous");
  for (const at::Tensor* t : {&ptr, &num, &start})
    TORCH_CHECK(t->scalar_type() == at::kLong && t->dim() == 1 && (t->device().is_cpu() || t->device() == pos.device()),
                "ptr, num and start must be 1-D int64 tensors (on the CPU or on the device of pos)");
  const int64_t nb = num.numel();
  TORCH_CHECK(ptr.numel() == nb + 1 && start.numel() == nb, "ptr must have len(num) + 1 entries and start len(num)");
  // (int indices: i + blockDim must not overflow)
  TORCH_CHECK(pos.size(0) <= INT_MAX - 4096, "the CUDA fps supports fewer than 2^31 - 4096 points");
  c10::cuda::CUDAGuard guard(pos.device());
  const at::Tensor ptr_c = ptr.to(at::kCPU).contiguous(), num_c = num.to(at::kCPU).contiguous(),
                   start_c = start.to(at::kCPU).contiguous();
  const int64_t* pp = ptr_c.data_ptr<int64_t>();
  const int64_t* np = num_c.data_ptr<int64_t>();
  const int64_t* sp = start_c.data_ptr<int64_t>();
  TORCH_CHECK(pp[0] == 0 && pp[nb] == pos.size(0), "ptr must run from 0 to the number of points");
  std::vector<int64_t> jobs;
  int64_t total = 0, max_n = 0;
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t n = pp[b + 1] - pp[b];
    TORCH_CHECK(n >= 0, "ptr must be non-decreasing");
    TORCH_CHECK(np[b] >= 0 && np[b] <= n, "num[", b, "] must lie in [0, ", n, "], got ", np[b]);
    TORCH_CHECK(np[b] == 0 || (sp[b] >= 0 && sp[b] < n), "start[", b, "] must lie in [0, ", n, "), got ", sp[b]);
    if (np[b] > 0) {
      jobs.insert(jobs.end(), {pp[b], n, np[b], sp[b], total});
      max_n = std::max(max_n, n);
    }
    total += np[b];
  }
  at::Tensor out = at::empty({total}, pos.options().dtype(at::kLong));
  if (total == 0) return out;
  const int64_t njobs = static_cast<int64_t>(jobs.size()) / kJobFields;
  TORCH_CHECK(njobs < INT_MAX, "too many clouds");
  const at::Tensor jobs_d =
      at::from_blob(jobs.data(), {njobs * kJobFields}, at::TensorOptions().dtype(at::kLong)).to(pos.device());
  int64_t* o = out.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(pos.scalar_type(), "geomdl_fps_cuda", [&] {
    switch (pos.size(1)) {
      case 1: launch_fps_dim<scalar_t, 1>(pos, jobs_d, njobs, max_n, o); break;
      case 2: launch_fps_dim<scalar_t, 2>(pos, jobs_d, njobs, max_n, o); break;
      case 3: launch_fps_dim<scalar_t, 3>(pos, jobs_d, njobs, max_n, o); break;
      default: launch_fps_dim<scalar_t, 0>(pos, jobs_d, njobs, max_n, o);
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(geomdl, CUDA, m) { m.impl("fps", &fps_cuda); }

}  // namespace geomdl
