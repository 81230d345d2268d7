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

}  // namespace cuda
}  // namespace geomdl
