// Run-time choice between a kernel's AVX2 build and its baseline build (kernels compiled twice, the AVX2
// copy under `#pragma GCC target("avx2,fma")`, or "avx2" alone where results must not change with the
// copy (scatter, fps: common/isa_copies.h), so the build needs no -march flag).
//
// GCC only: clang does not implement `#pragma GCC target` (it would compile the "AVX2" copies for the
// baseline target, or fail on their intrinsics), so clang builds have the baseline copies alone.
#pragma once
#include <c10/util/Exception.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(__i386__))
#define GEOMDL_CPU_X86 1
#include <immintrin.h>
#endif
#define GEOMDL_CPU_ISA_INCLUDED 1

namespace geomdl {
// True when this is an x86 GCC build (which has the AVX2 copies) and the CPU has AVX2 and FMA; reported by
// geomdl._C.avx2.
inline bool cpu_has_avx2_fma() {
#ifdef GEOMDL_CPU_X86
  static const bool cpu = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return cpu;
#else
  return false;
#endif
}

// True when cpu_has_avx2_fma() and the environment variable `isa_env` (GEOMDL_GAUNT_ISA,
// GEOMDL_TRILINEAR_ISA, GEOMDL_SCATTER_ISA, GEOMDL_FPS_ISA) is not "generic" (tests use it to run the baseline build).
// Any other value than unset, "", "generic" or "avx2" (the default where the CPU has it) raises
// ValueError: a misspelt setting is not silently ignored. Reads the environment: call it once per op
// call, outside parallel regions.
inline bool use_avx2_fma(const char* isa_env) {
  const char* isa = std::getenv(isa_env);
  const bool generic = isa && std::strcmp(isa, "generic") == 0;
  TORCH_CHECK_VALUE(!isa || generic || isa[0] == '\0' || std::strcmp(isa, "avx2") == 0, isa_env,
                    " must be 'generic' (the baseline copy of the kernel) or 'avx2' (the default where the CPU has "
                    "AVX2 and FMA), not '", isa, "'");
  return cpu_has_avx2_fma() && !generic;
}

// Which copy of each kernel's vectorised loops ran last (0: none yet, 1: baseline, 2: AVX2), recorded by
// the copies themselves (each inclusion of a loop header defines kAvx2Copy in its namespace), so that tests
// can see the dispatch: torch.ops.geomdl._cpu_copy_used("scatter") (kernels/registration.cpp).
enum CopyKernel : int { kCopyGaunt, kCopyTrilinear, kCopyScatter, kCopyFps, kCopyKernels };
inline std::atomic<int> g_copy_used[kCopyKernels];
inline void note_copy(CopyKernel k, bool avx2_copy) {
  const int v = avx2_copy ? 2 : 1;
  if (g_copy_used[k].load(std::memory_order_relaxed) != v) g_copy_used[k].store(v, std::memory_order_relaxed);
}
}  // namespace geomdl
