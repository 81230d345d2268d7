// OpenMP, or its serial stand-in when the compiler has no OpenMP (e.g. Apple clang; setup.py then
// builds without -fopenmp and says so). Every CPU source with OpenMP calls or pragmas includes this
// (instead of <omp.h>).
//
// Without OpenMP the `#pragma omp` lines are ignored: a parallel region runs once, as thread 0 of a
// team of 1, and a work-sharing loop runs every iteration. The kernels size their thread teams and
// per-thread partitions from omp_get_max_threads() (here 1), so thread 0's partition is the whole
// range and the results are those of an OpenMP build run with one thread (OMP_NUM_THREADS=1).
// at::parallel_for (used by the gaunt and trilinear kernels) is serial too in such a build: its
// inline implementation in ATen/ParallelOpenMP.h also depends on _OPENMP.
#pragma once

#ifdef _OPENMP
#include <omp.h>
#elif defined(__clang__)
// clang warns about each ignored `#pragma omp` (-Wsource-uses-openmp); GCC's -Wunknown-pragmas cannot be
// silenced from a header before GCC 13, so setup.py passes -Wno-unknown-pragmas to a build without OpenMP.
#pragma clang diagnostic ignored "-Wsource-uses-openmp"
#endif

namespace geomdl {
#ifndef _OPENMP
// In namespace geomdl (where every kernel lives), so that they cannot clash with the declarations
// of an <omp.h> that some other header might include anyway.
inline int omp_get_thread_num() { return 0; }
inline int omp_get_num_threads() { return 1; }
inline int omp_get_max_threads() { return 1; }
#endif

// True when the kernels were compiled with OpenMP (multi-threaded); reported by geomdl._C.openmp.
constexpr bool kOpenMP =
#ifdef _OPENMP
    true;
#else
    false;
#endif
}  // namespace geomdl
