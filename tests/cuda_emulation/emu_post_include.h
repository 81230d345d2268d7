// Included by the converted sources right after kernels/common/cuda_utils.cuh: the emulated "device"
// tensors are CPU tensors, so the CUDA-device checks accept CPU tensors (and reject CUDA ones).
#pragma once
#ifdef GEOMDL_CHECK_CUDA
#undef GEOMDL_CHECK_CUDA
#define GEOMDL_CHECK_CUDA(x) \
  TORCH_CHECK((x).device().is_cpu(), #x " must be a CUDA tensor (CPU emulation: a CPU tensor)")
#endif
