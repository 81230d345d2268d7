// Helpers shared by the CUDA kernels (kernels/**/*_cuda.cu).
//
// Headers: the .cu files include <torch/library.h>, <ATen/core/Tensor.h> / ATen ops and the c10/cuda
// headers below, not <ATen/cuda/CUDAContext.h> (it pulls in cuBLAS/cuSPARSE headers that a plain
// CUDA toolkit install may lack; .ci/cuda_compile_check compiles the sources without them).
#pragma once
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/all.h>

#include <algorithm>
#include <cstdint>

#define GEOMDL_CHECK_CUDA(x) TORCH_CHECK((x).device().is_cuda(), #x " must be a CUDA tensor")
#define GEOMDL_CHECK_SAME_DEVICE(x, y) \
  TORCH_CHECK((x).device() == (y).device(), #x " and " #y " must be on the same device")

namespace geomdl {
namespace cuda {

constexpr int kThreads = 256;

// Number of blocks of `threads` threads covering n items, capped at `max_blocks` (grid-stride loops
// cover the rest). Never 0: callers return early for n == 0 (a launch with 0 blocks is an error).
inline unsigned int blocks_for(int64_t n, int threads = kThreads, int64_t max_blocks = 65535LL * 32) {
  return static_cast<unsigned int>(std::max<int64_t>(1, std::min<int64_t>((n + threads - 1) / threads, max_blocks)));
}

inline cudaStream_t stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

// Lets `kernel` use up to the device's opt-in maximum of dynamic shared memory. The cap is a per-kernel
// attribute shared by all host threads: raise it to the maximum, never lower it to one call's size (which
// could fail a concurrent launch that needs more).
template <typename Kernel>
void allow_optin_shared_memory(Kernel kernel, int device) {
  int smem_optin = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_optin));
}

// Grid of a kernel whose blocks loop over `tiles` tiles: the blocks that can be resident at once (blocks per
// SM x SMs for `threads` threads and `smem_bytes` of dynamic shared memory), at most `tiles`, at least 1.
// Raises, naming `what`, when not even one block fits an SM.
template <typename Kernel>
unsigned int resident_grid(Kernel kernel, int threads, int64_t smem_bytes, int device, int64_t tiles, const char* what) {
  int per_sm = 0, sms = 0;
  C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, static_cast<size_t>(smem_bytes)));
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  TORCH_CHECK(per_sm >= 1, what, ": a block of ", threads, " threads with ", smem_bytes,
              " bytes of shared memory cannot run on this device");
  const int64_t resident = static_cast<int64_t>(per_sm) * std::max(sms, 1);
  return static_cast<unsigned int>(std::max<int64_t>(1, std::min<int64_t>(tiles, resident)));
}

}  // namespace cuda
}  // namespace geomdl
