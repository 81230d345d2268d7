// Run-time choice between a kernel's AVX2+FMA build and its baseline build (kernels compiled twice,
// the AVX2 copy under `#pragma GCC target("avx2,fma")`, so the build needs no -march flag).
#pragma once
#include <cstdlib>
#include <cstring>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define GEOMDL_CPU_X86 1
#include <immintrin.h>
#endif

namespace geomdl {
// True when the CPU has AVX2 and FMA and the environment variable `isa_env` (e.g.
// GEOMDL_GAUNT_ISA) is not "generic" (tests use it to run the baseline build).
inline bool use_avx2_fma(const char* isa_env) {
#ifdef GEOMDL_CPU_X86
  static const bool cpu = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const char* isa = std::getenv(isa_env);
  return cpu && !(isa && std::strcmp(isa, "generic") == 0);
#else
  (void)isa_env;
  return false;
#endif
}
}  // namespace geomdl
