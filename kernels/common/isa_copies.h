// Compiles the loop header named by GEOMDL_ISA_LOOPS twice, at the point of inclusion: in namespace `generic`
// (the baseline target) and, in x86 GCC builds, in namespace `avx2` under `#pragma GCC target("avx2")`.
// Elsewhere `avx2` is an alias of `generic`. The target must stay "avx2" without "fma": that is what keeps
// the copies' products unfused, so that results do not depend on the copy (g++ contracts a*b+c into an FMA
// by default wherever the target has one; common/no_fma.h acts only in builds given -mfma). Each copy gets `constexpr bool kAvx2Copy` (which copy it is, for note_copy in cpu_isa.h).
// Usage, inside the namespace that holds the helpers the loop header uses:
//     #define GEOMDL_ISA_LOOPS "fps/fps_update.h"
//     #include "common/isa_copies.h"
// then call `avx ? avx2::X(...) : generic::X(...)` with avx = use_avx2_fma("GEOMDL_<KERNEL>_ISA").
// No include guard on purpose; cpu_isa.h must be included first (it defines GEOMDL_CPU_X86).
#ifndef GEOMDL_ISA_LOOPS
#error "define GEOMDL_ISA_LOOPS (the loop header to compile twice) before including common/isa_copies.h"
#endif
#ifndef GEOMDL_CPU_ISA_INCLUDED
#error "include common/cpu_isa.h (GEOMDL_CPU_X86, note_copy) before common/isa_copies.h"
#endif

namespace generic {
constexpr bool kAvx2Copy = false;
#include GEOMDL_ISA_LOOPS
}  // namespace generic

#ifdef GEOMDL_CPU_X86
#pragma GCC push_options
#pragma GCC target("avx2")
namespace avx2 {
constexpr bool kAvx2Copy = true;
#include GEOMDL_ISA_LOOPS
}  // namespace avx2
#pragma GCC pop_options
#else
namespace avx2 = generic;  // (use_avx2_fma is false off x86)
#endif

#undef GEOMDL_ISA_LOOPS
