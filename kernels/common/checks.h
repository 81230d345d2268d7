// Input checks shared by the CPU kernels. The Python wrappers in geomdl/ops validate user input
// and raise ValueError/TypeError with the argument name; these checks only guard the C++ boundary.
#pragma once
#include <torch/all.h>

#include <cstdlib>
#include <memory>

#define GEOMDL_CHECK_CPU(x) TORCH_CHECK(x.device().is_cpu(), #x " must be a CPU tensor")
#define GEOMDL_CHECK_CONTIGUOUS(x) TORCH_CHECK(x.is_contiguous(), #x " must be contiguous")
#define GEOMDL_CHECK_DTYPE(x, dt) TORCH_CHECK(x.scalar_type() == dt, #x " has the wrong dtype")

namespace geomdl {
// A 64-byte-aligned scratch buffer of at least `bytes` bytes (per thread of a blocked CPU kernel); raises,
// naming `what`, when the allocation fails.
using AlignedBuffer = std::unique_ptr<void, void (*)(void*)>;
inline AlignedBuffer aligned_buffer(size_t bytes, const char* what) {
  AlignedBuffer buf(std::aligned_alloc(64, (bytes + 63) / 64 * 64), std::free);
  TORCH_CHECK(buf, what, ": out of memory for ", bytes, " bytes of scratch");
  return buf;
}

// Split [0, n) into `parts` contiguous ranges; range p is [begin, end).
inline void split_range(int64_t n, int64_t parts, int64_t p, int64_t& begin, int64_t& end) {
  const int64_t base = n / parts, rem = n % parts;
  begin = p * base + std::min(p, rem);
  end = begin + base + (p < rem ? 1 : 0);
}
}  // namespace geomdl
