// CPU emulation of the CUDA features used by kernels/**/*_cuda.cu (test harness only; see README.md).
//
// tests/cuda_emulation/convert.py rewrites a .cu file into a C++ translation unit that includes this
// header first: kernel launches k<<<grid, block, smem, stream>>>(args) become
// ::emu::launch("k", ::emu::LaunchCfg(grid, block, smem, stream), k, args); __shared__ declarations
// become references into the running block's shared memory (::emu::shared_variable,
// ::emu::dynamic_shared_memory); __launch_bounds__(n) becomes a check at the top of the kernel; the
// TORCH_LIBRARY_IMPL(<ns>, CUDA, m) blocks register the same functions as ops of the library
// geomdl_emu (the CUDA host code then runs on CPU tensors).
//
// Execution model: the CUDA threads of a block are user-space fibers (ucontext) run by one OS thread
// that switches between them only at barriers; `concurrent_blocks` blocks run at the same time on
// their own OS threads (real concurrency for global atomics). The order of the blocks and the order in
// which runnable threads are resumed after each barrier are ascending, descending or shuffled (seeded):
// results must not depend on them. __syncthreads() is a barrier over the block; warp collectives
// (__shfl*_sync, votes, __syncwarp) are barriers over the lanes named in their mask. As bar.sync and
// shfl.sync on the device, they wait only for threads that have not exited; a value read from an
// exited or non-member lane is undefined (poisoned: all bits set). When no thread can run any more
// (e.g. half a warp waits in a shuffle while the other half waits in __syncthreads) the launch fails
// with a deadlock report instead of hanging. Atomics are real atomics
// (__atomic builtins, compare-and-swap loops for floating point; float atomicAdd on global memory
// flushes subnormals like the device). Shared memory starts filled with 0xFF bytes (NaN for float and
// double, -1 for integers) and is followed by guard bytes checked at the end of the block; the 48 KiB
// / opt-in limits of shared memory, cudaFuncSetAttribute and __launch_bounds__ are enforced like on the
// device. Device-side errors (a C++ exception in a thread, a misaligned __ldg, a deadlock, a
// shared-memory overrun) make the launch raise.
#pragma once

#if defined(__CUDACC__) || defined(__CUDA_ARCH__)
#error "emu.h emulates CUDA on the CPU; it must not be compiled by nvcc"
#endif

#include <torch/all.h>

#include <math.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#define __CUDA_EMULATION__ 1

// ---------------------------------------------------------------------------------------------
// Keywords
// ---------------------------------------------------------------------------------------------

#define __global__
#define __device__
#define __host__
#define __constant__
#define __managed__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __align__(n) alignas(n)
#define __launch_bounds__(...)  // convert.py turns it into ::emu::check_launch_bounds at the top of the kernel
// convert.py rewrites every __shared__ declaration of a .cu file; one left over (e.g. in a header that
// was not converted) must not compile into something with other semantics.
#define __shared__ EMU_UNCONVERTED_SHARED_DECLARATION_see_tests_cuda_emulation_convert_py

// ---------------------------------------------------------------------------------------------
// Runtime types
// ---------------------------------------------------------------------------------------------

struct uint3 {
  unsigned int x, y, z;
};
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};

inline thread_local uint3 threadIdx{0, 0, 0};
inline thread_local uint3 blockIdx{0, 0, 0};
inline thread_local dim3 blockDim{1, 1, 1};
inline thread_local dim3 gridDim{1, 1, 1};
constexpr int warpSize = 32;

// Vector types (alignment as in CUDA's vector_types.h).
struct alignas(8) float2 { float x, y; };
struct float3 { float x, y, z; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) double2 { double x, y; };
struct alignas(8) int2 { int x, y; };
struct int3 { int x, y, z; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(8) uint2 { unsigned int x, y; };
struct alignas(16) uint4 { unsigned int x, y, z, w; };
struct alignas(16) longlong2 { long long x, y; };
struct alignas(16) ulonglong2 { unsigned long long x, y; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float3 make_float3(float x, float y, float z) { return {x, y, z}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline double2 make_double2(double x, double y) { return {x, y}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int3 make_int3(int x, int y, int z) { return {x, y, z}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return {x, y, z}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
inline longlong2 make_longlong2(long long x, long long y) { return {x, y}; }
inline ulonglong2 make_ulonglong2(unsigned long long x, unsigned long long y) { return {x, y}; }

// Errors, streams, device attributes.
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevice = 101,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorLaunchFailure = 719,
  cudaErrorNotSupported = 801,
};
using cudaError = cudaError_t;
struct CUstream_st;
using cudaStream_t = CUstream_st*;
enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxBlockDimX = 2,
  cudaDevAttrMaxBlockDimY = 3,
  cudaDevAttrMaxBlockDimZ = 4,
  cudaDevAttrMaxGridDimX = 5,
  cudaDevAttrMaxGridDimY = 6,
  cudaDevAttrMaxGridDimZ = 7,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerMultiprocessor = 81,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
  cudaDevAttrMaxThreadsPerMultiProcessor = 39,
  cudaDevAttrL2CacheSize = 38,
};
enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9,
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};
#define cudaHostAllocDefault 0u
#define cudaHostAllocPortable 1u
#define cudaHostAllocMapped 2u
#define cudaHostAllocWriteCombined 4u

namespace emu {

// ---------------------------------------------------------------------------------------------
// Emulated device (set from Python with torch.ops.geomdl_emu.emu_configure)
// ---------------------------------------------------------------------------------------------

struct DeviceConfig {
  int sms = 132;                        // multiprocessors (H100 SXM)
  int smem_optin = 232448;              // opt-in shared memory per block (227 KiB)
  int smem_per_sm = 233472;             // shared memory per multiprocessor (228 KiB)
  int smem_default = 48 * 1024;         // without cudaFuncSetAttribute
  int max_threads_per_sm = 2048;
  int max_blocks_per_sm = 32;
  int order = 2;                        // blocks and resumed threads: 0 ascending, 1 descending, 2 shuffled
  int concurrent_blocks = 2;            // blocks running at the same time (one OS thread each)
  int64_t seed = 0;
  double watchdog_s = 300.0;            // a launch running longer aborts the process (no hang in CI)
  size_t stack_bytes = 256 * 1024;      // per CUDA thread (a guard page below it)
};
inline DeviceConfig& config() {
  static DeviceConfig c;
  return c;
}

struct LaunchRecord {
  std::string name;
  dim3 grid, block;
  size_t dynamic_smem = 0, static_smem = 0;
};
inline std::mutex& log_mutex() {
  static std::mutex m;
  return m;
}
inline std::vector<LaunchRecord>& launch_log() {
  static std::vector<LaunchRecord> l;
  return l;
}
inline std::map<const void*, int>& func_dynamic_smem_attr() {
  static std::map<const void*, int> m;
  return m;
}
inline std::map<const void*, size_t>& func_static_smem() {
  static std::map<const void*, size_t> m;
  return m;
}
inline thread_local cudaError_t last_error = cudaSuccess;

// ---------------------------------------------------------------------------------------------
// Blocks: fibers, barriers, shared memory
// ---------------------------------------------------------------------------------------------

struct Abort {};  // unwinds the threads of an aborted block

constexpr unsigned char kSmemFill = 0xFF;   // NaN for float/double, -1 for integers
constexpr unsigned char kGuardFill = 0xA5;
constexpr size_t kGuardBytes = 64;

struct Barrier {
  int warp = -1;          // -1: __syncthreads (all live threads of the block); else the warp of `mask`
  unsigned mask = 0;      // member lanes of a warp collective
  int count = 0;
  unsigned long long gen = 0;
  std::vector<int> waiters;
  // Data of the collective, double-buffered by the parity of the generation: a lane writes slot
  // [gen & 1] before it arrives and reads the buffer after every lane arrived; it can be
  // overwritten only two collectives later, when every lane has passed the one in between.
  uint64_t slot[2][32] = {};
  unsigned present[2] = {0, 0};  // lanes that arrived (exited members did not: reading them is undefined)
  long long acc[2] = {0, 0};
};

struct SharedAlloc {
  std::unique_ptr<unsigned char[]> raw;
  unsigned char* data = nullptr;
  size_t bytes = 0;
  const char* type = "";
};

// Stacks of the fibers (mmap'ed, a PROT_NONE guard page below each), reused across launches.
struct StackPool {
  std::mutex m;
  std::vector<void*> free;
  size_t bytes = 0;
  ~StackPool() {
    for (void* p : free) munmap(static_cast<char*>(p) - page(), bytes + page());
  }
  static size_t page() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }
  void* get(size_t want) {
    std::lock_guard<std::mutex> lk(m);
    if (want != bytes) {
      for (void* p : free) munmap(static_cast<char*>(p) - page(), bytes + page());
      free.clear();
      bytes = want;
    }
    if (!free.empty()) {
      void* p = free.back();
      free.pop_back();
      return p;
    }
    void* base = mmap(nullptr, bytes + page(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    TORCH_CHECK(base != MAP_FAILED, "cuda emulation: cannot map a fiber stack");
    mprotect(base, page(), PROT_NONE);
    return static_cast<char*>(base) + page();
  }
  void put(void* p) {
    std::lock_guard<std::mutex> lk(m);
    if (free.size() < 4096) free.push_back(p);
    else munmap(static_cast<char*>(p) - page(), bytes + page());
  }
};
inline StackPool& stack_pool() {
  static StackPool p;
  return p;
}

struct Fiber {
  ucontext_t ctx;
  void* stack = nullptr;
  uint3 idx{0, 0, 0};
  bool done = false;
};

struct Block {
  int nthreads = 0, live = 0;
  bool aborted = false;
  std::string error;
  uint3 block_idx{0, 0, 0};
  dim3 grid, block;
  std::function<void()>* body = nullptr;
  std::vector<Fiber> fibers;
  std::vector<int> runnable;
  int current = -1;
  ucontext_t scheduler;
  std::mt19937_64 rng;
  int order = 0;
  Barrier bar;                                                    // __syncthreads
  std::vector<std::map<unsigned, std::unique_ptr<Barrier>>> warp;  // per warp, keyed by member mask
  std::vector<unsigned> exists, exited;  // per warp: lane masks (lanes past the block size count as exited)
  unsigned char* dyn = nullptr;
  size_t dyn_bytes = 0;
  std::map<const void*, SharedAlloc> statics;                      // keyed by declaration (and instantiation)
  size_t static_bytes = 0;

  void fail(const std::string& msg) {
    if (!aborted) {
      aborted = true;
      error = msg;
    }
  }
  std::string waiting_summary() const {
    std::ostringstream s;
    s << bar.count << " of " << live << " live threads wait in __syncthreads()";
    for (size_t w = 0; w < warp.size(); ++w)
      for (const auto& kv : warp[w])
        if (kv.second->count > 0)
          s << "; warp " << w << ": " << kv.second->count << " of " << needed(*kv.second)
            << " live lanes wait in a collective with mask 0x" << std::hex << kv.first << std::dec;
    s << "; " << (nthreads - live) << " threads have exited";
    return s.str();
  }
  // Arrivals that complete `b`: like bar.sync and shfl.sync on the device, a barrier waits only for the
  // threads (lanes of the mask) that have not exited.
  int needed(const Barrier& b) const {
    return b.warp < 0 ? live : __builtin_popcount(b.mask & ~exited[static_cast<size_t>(b.warp)]);
  }
  void complete(Barrier& b) {
    b.count = 0;
    ++b.gen;
    b.acc[b.gen & 1] = 0;  // the next generation's buffers (every reader of their last use has arrived here)
    b.present[b.gen & 1] = 0;
    runnable.insert(runnable.end(), b.waiters.begin(), b.waiters.end());
    b.waiters.clear();
  }
  // Thread t exits: barriers that only waited for it complete.
  void on_exit(int t) {
    --live;
    exited[static_cast<size_t>(t / 32)] |= 1u << (t % 32);
    if (bar.count > 0 && bar.count >= needed(bar)) complete(bar);
    for (auto& kv : warp[static_cast<size_t>(t / 32)])
      if (kv.second->count > 0 && kv.second->count >= needed(*kv.second)) complete(*kv.second);
  }
  // Back to the scheduler; returns when this thread is resumed.
  void suspend() { swapcontext(&fibers[current].ctx, &scheduler); }
  // Arrive at `b` and wait for its completion.
  void arrive(Barrier& b) {
    if (aborted) throw Abort{};
    if (++b.count >= needed(b)) {
      complete(b);
      return;
    }
    const unsigned long long g = b.gen;
    b.waiters.push_back(current);
    suspend();
    if (b.gen == g) throw Abort{};  // resumed by the deadlock handler
  }
};

// Per OS thread: the block it runs and the fiber it is running.
struct ThreadCtx {
  Block* block = nullptr;
  unsigned linear = 0, warp = 0, lane = 0;
};
inline thread_local ThreadCtx tctx;

[[noreturn]] inline void device_fault(const std::string& msg) { throw std::runtime_error("device fault: " + msg); }

inline Block& current_block() {
  if (tctx.block == nullptr) device_fault("a device function was called outside of an emulated kernel launch");
  return *tctx.block;
}

// Static __shared__ variable (one per block, per declaration and instantiation: Tag is a lambda type
// unique to the declaration site of the instantiating function).
template <typename T, typename Tag>
T& shared_variable(Tag) {
  static const char key = 0;
  Block& b = current_block();
  auto it = b.statics.find(&key);
  if (it == b.statics.end()) {
    SharedAlloc a;
    a.bytes = sizeof(T);
    a.raw.reset(new unsigned char[a.bytes + kGuardBytes + 64]);
    const uintptr_t p = (reinterpret_cast<uintptr_t>(a.raw.get()) + 63) & ~uintptr_t(63);
    a.data = reinterpret_cast<unsigned char*>(p);
    std::memset(a.data, kSmemFill, a.bytes);
    std::memset(a.data + a.bytes, kGuardFill, kGuardBytes);
    a.type = typeid(T).name();
    b.static_bytes += (a.bytes + 15) / 16 * 16;
    it = b.statics.emplace(&key, std::move(a)).first;
  }
  return *reinterpret_cast<T*>(it->second.data);
}

// extern __shared__ T name[]: the dynamic shared memory of the launch (64-byte aligned).
inline void* dynamic_shared_memory() { return current_block().dyn; }

inline void check_launch_bounds(long long max_threads, long long = 0, long long = 0) {
  const long long n = static_cast<long long>(blockDim.x) * blockDim.y * blockDim.z;
  if (n > max_threads)
    device_fault("a block of " + std::to_string(n) + " threads launched for a kernel with __launch_bounds__(" +
                 std::to_string(max_threads) + ") (cudaErrorLaunchOutOfResources on the device)");
}

// ---------------------------------------------------------------------------------------------
// Warp collectives
// ---------------------------------------------------------------------------------------------

inline Barrier& warp_barrier(Block& b, unsigned mask, const char* what) {
  const unsigned me = 1u << tctx.lane;
  const unsigned w = tctx.warp;
  if (!(mask & me))
    device_fault(std::string(what) + ": the calling lane " + std::to_string(tctx.lane) + " of warp " + std::to_string(w) +
                 " is not in the member mask (undefined behaviour)");
  auto& slot = b.warp[w][mask];
  if (!slot) {
    slot.reset(new Barrier());
    slot->warp = static_cast<int>(w);
    slot->mask = mask;
  }
  return *slot;
}

// Every live lane of `mask` contributes `bits`; returns the 32 slots and the lanes that contributed.
struct WarpView {
  uint64_t v[32];
  unsigned present;
};
inline void warp_exchange(unsigned mask, uint64_t bits, WarpView& out, const char* what) {
  Block& b = current_block();
  Barrier& bar = warp_barrier(b, mask, what);
  const int par = static_cast<int>(bar.gen & 1);
  bar.slot[par][tctx.lane] = bits;
  bar.present[par] |= 1u << tctx.lane;
  b.arrive(bar);
  std::memcpy(out.v, bar.slot[par], sizeof(out.v));
  out.present = bar.present[par] & mask;
}

template <typename T>
inline uint64_t to_bits(T v) {
  static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 8, "warp shuffles move at most 8 bytes");
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <typename T>
inline T from_bits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}

enum class Shfl { Idx, Up, Down, Xor };

// PTX shfl.sync semantics: c = ((32 - width) << 8) | clamp; source lane j; out-of-range -> own value.
template <typename T>
inline T shuffle(unsigned mask, T var, int b, int width, Shfl mode, const char* what) {
  if (width <= 0 || width > 32 || (width & (width - 1)) != 0)
    device_fault(std::string(what) + ": width must be a power of 2 in [1, 32], got " + std::to_string(width));
  WarpView view;
  warp_exchange(mask, to_bits(var), view, what);
  const int lane = static_cast<int>(tctx.lane);
  const int segmask = 32 - width;  // bits of the lane index fixed within a segment: ~(width-1) & 31
  const int min_lane = lane & segmask;
  int j = lane;
  bool valid = true;
  switch (mode) {
    case Shfl::Idx: {
      const int max_lane = min_lane | ((width - 1) & ~segmask);
      j = min_lane | (b & (width - 1));
      valid = j <= max_lane;
      break;
    }
    case Shfl::Up:
      j = lane - b;
      valid = j >= min_lane;
      break;
    case Shfl::Down: {
      const int max_lane = min_lane | (width - 1);
      j = lane + b;
      valid = j <= max_lane;
      break;
    }
    case Shfl::Xor: {
      const int max_lane = min_lane | (width - 1);
      j = lane ^ b;
      valid = j <= max_lane;
      break;
    }
  }
  if (!valid || j < 0 || j > 31) j = lane;
  if (!((view.present >> j) & 1u)) {
    // The source lane is not a member or has exited: undefined value on the device. Poison it.
    return from_bits<T>(~uint64_t(0));
  }
  return from_bits<T>(view.v[j]);
}

}  // namespace emu

template <typename T>
inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize) {
  return emu::shuffle(mask, var, src_lane, width, emu::Shfl::Idx, "__shfl_sync");
}
template <typename T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned int delta, int width = warpSize) {
  return emu::shuffle(mask, var, static_cast<int>(delta), width, emu::Shfl::Up, "__shfl_up_sync");
}
template <typename T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned int delta, int width = warpSize) {
  return emu::shuffle(mask, var, static_cast<int>(delta), width, emu::Shfl::Down, "__shfl_down_sync");
}
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize) {
  return emu::shuffle(mask, var, lane_mask, width, emu::Shfl::Xor, "__shfl_xor_sync");
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
  emu::WarpView v;
  emu::warp_exchange(mask, pred ? 1 : 0, v, "__ballot_sync");
  unsigned r = 0;
  for (int l = 0; l < 32; ++l)
    if (((v.present >> l) & 1u) && v.v[l]) r |= 1u << l;
  return r;
}
inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(unsigned mask, int pred) {
  emu::WarpView v;
  emu::warp_exchange(mask, pred ? 1 : 0, v, "__all_sync");
  for (int l = 0; l < 32; ++l)
    if (((v.present >> l) & 1u) && !v.v[l]) return 0;
  return 1;
}
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  emu::WarpView v;
  emu::warp_exchange(mask, 0, v, "__syncwarp");
}
// Lanes of the warp that have not exited (the emulator does not track divergence).
inline unsigned __activemask() {
  emu::Block& b = emu::current_block();
  return b.exists[emu::tctx.warp] & ~b.exited[emu::tctx.warp];
}
#define EMU_WARP_REDUCE(NAME, T, OP)                                          \
  inline T NAME(unsigned mask, T value) {                                     \
    emu::WarpView v;                                                          \
    emu::warp_exchange(mask, emu::to_bits(value), v, #NAME);                  \
    bool first = true;                                                        \
    T r{};                                                                    \
    for (int l = 0; l < 32; ++l) {                                            \
      if (!((v.present >> l) & 1u)) continue;                                 \
      const T x = emu::from_bits<T>(v.v[l]);                                  \
      r = first ? x : OP;                                                     \
      first = false;                                                          \
    }                                                                         \
    return r;                                                                 \
  }
EMU_WARP_REDUCE(__reduce_add_sync, unsigned, r + x)
EMU_WARP_REDUCE(__reduce_add_sync, int, r + x)
EMU_WARP_REDUCE(__reduce_min_sync, unsigned, (x < r ? x : r))
EMU_WARP_REDUCE(__reduce_min_sync, int, (x < r ? x : r))
EMU_WARP_REDUCE(__reduce_max_sync, unsigned, (x > r ? x : r))
EMU_WARP_REDUCE(__reduce_max_sync, int, (x > r ? x : r))
EMU_WARP_REDUCE(__reduce_and_sync, unsigned, (r & x))
EMU_WARP_REDUCE(__reduce_or_sync, unsigned, (r | x))
EMU_WARP_REDUCE(__reduce_xor_sync, unsigned, (r ^ x))
#undef EMU_WARP_REDUCE

// ---------------------------------------------------------------------------------------------
// Block barriers and fences
// ---------------------------------------------------------------------------------------------

namespace emu {
// Block barrier; returns the sum of `pred` over the block (for __syncthreads_count/and/or).
inline long long block_barrier(int pred) {
  Block& b = current_block();
  const int par = static_cast<int>(b.bar.gen & 1);
  b.bar.acc[par] += pred ? 1 : 0;
  b.arrive(b.bar);
  return b.bar.acc[par];
}
}  // namespace emu
inline void __syncthreads() { emu::block_barrier(0); }
inline int __syncthreads_count(int pred) { return static_cast<int>(emu::block_barrier(pred)); }
inline int __syncthreads_and(int pred) {
  return emu::block_barrier(pred) == emu::current_block().nthreads;
}
inline int __syncthreads_or(int pred) { return emu::block_barrier(pred) != 0; }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_system() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __nanosleep(unsigned) { std::this_thread::yield(); }
inline long long clock64() { return std::chrono::steady_clock::now().time_since_epoch().count(); }

// ---------------------------------------------------------------------------------------------
// Atomics: exactly the overloads CUDA declares (a call CUDA would reject does not compile here).
// ---------------------------------------------------------------------------------------------

namespace emu {
template <typename T>
inline T atomic_rmw_int(T* p, T v, int op) {
  switch (op) {
    case 0: return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
    case 1: return __atomic_fetch_sub(p, v, __ATOMIC_SEQ_CST);
    case 2: return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);
    case 3: return __atomic_fetch_and(p, v, __ATOMIC_SEQ_CST);
    case 4: return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST);
    case 5: return __atomic_fetch_xor(p, v, __ATOMIC_SEQ_CST);
    default: break;
  }
  T old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
  while (true) {
    const T nw = op == 6 ? (v < old ? v : old) : (v > old ? v : old);  // 6: min, 7: max
    if (nw == old || __atomic_compare_exchange_n(p, &old, nw, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) return old;
  }
}
// Is p inside the shared memory of the running block (atomics there do not flush subnormals)?
inline bool in_shared(const void* p) {
  if (tctx.block == nullptr) return false;
  Block& b = *tctx.block;
  const auto* c = static_cast<const unsigned char*>(p);
  if (b.dyn != nullptr && c >= b.dyn && c < b.dyn + b.dyn_bytes) return true;
  for (const auto& kv : b.statics)
    if (c >= kv.second.data && c < kv.second.data + kv.second.bytes) return true;
  return false;
}
// atom.add.f32 on global memory flushes subnormal inputs and results to sign-preserving zero (PTX ISA).
inline float ftz(float x) { return std::fpclassify(x) == FP_SUBNORMAL ? std::copysign(0.0f, x) : x; }
template <typename F, typename U>
inline F atomic_add_float(F* p, F v) {
  static_assert(sizeof(F) == sizeof(U), "bits");
  const bool flush = std::is_same<F, float>::value && !in_shared(p);
  U* u = reinterpret_cast<U*>(p);
  U old = __atomic_load_n(u, __ATOMIC_SEQ_CST);
  while (true) {
    F f;
    std::memcpy(&f, &old, sizeof(F));
    F r = flush ? static_cast<F>(ftz(static_cast<float>(ftz(static_cast<float>(f)) + ftz(static_cast<float>(v)))))
                : f + v;
    U nw;
    std::memcpy(&nw, &r, sizeof(F));
    if (__atomic_compare_exchange_n(u, &old, nw, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) return f;
  }
}
}  // namespace emu

inline int atomicAdd(int* p, int v) { return emu::atomic_rmw_int(p, v, 0); }
inline unsigned int atomicAdd(unsigned int* p, unsigned int v) { return emu::atomic_rmw_int(p, v, 0); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) { return emu::atomic_rmw_int(p, v, 0); }
inline float atomicAdd(float* p, float v) { return emu::atomic_add_float<float, uint32_t>(p, v); }
inline double atomicAdd(double* p, double v) { return emu::atomic_add_float<double, uint64_t>(p, v); }
inline int atomicSub(int* p, int v) { return emu::atomic_rmw_int(p, v, 1); }
inline unsigned int atomicSub(unsigned int* p, unsigned int v) { return emu::atomic_rmw_int(p, v, 1); }
inline int atomicExch(int* p, int v) { return emu::atomic_rmw_int(p, v, 2); }
inline unsigned int atomicExch(unsigned int* p, unsigned int v) { return emu::atomic_rmw_int(p, v, 2); }
inline unsigned long long atomicExch(unsigned long long* p, unsigned long long v) { return emu::atomic_rmw_int(p, v, 2); }
inline float atomicExch(float* p, float v) {
  uint32_t b = emu::atomic_rmw_int(reinterpret_cast<uint32_t*>(p), emu::from_bits<uint32_t>(emu::to_bits(v)), 2);
  return emu::from_bits<float>(b);
}
inline int atomicMin(int* p, int v) { return emu::atomic_rmw_int(p, v, 6); }
inline unsigned int atomicMin(unsigned int* p, unsigned int v) { return emu::atomic_rmw_int(p, v, 6); }
inline long long atomicMin(long long* p, long long v) { return emu::atomic_rmw_int(p, v, 6); }
inline unsigned long long atomicMin(unsigned long long* p, unsigned long long v) { return emu::atomic_rmw_int(p, v, 6); }
inline int atomicMax(int* p, int v) { return emu::atomic_rmw_int(p, v, 7); }
inline unsigned int atomicMax(unsigned int* p, unsigned int v) { return emu::atomic_rmw_int(p, v, 7); }
inline long long atomicMax(long long* p, long long v) { return emu::atomic_rmw_int(p, v, 7); }
inline unsigned long long atomicMax(unsigned long long* p, unsigned long long v) { return emu::atomic_rmw_int(p, v, 7); }
inline int atomicAnd(int* p, int v) { return emu::atomic_rmw_int(p, v, 3); }
inline unsigned int atomicAnd(unsigned int* p, unsigned int v) { return emu::atomic_rmw_int(p, v, 3); }
inline unsigned long long atomicAnd(unsigned long long* p, unsigned long long v) { return emu::atomic_rmw_int(p, v, 3); }
inline int atomicOr(int* p, int v) { return emu::atomic_rmw_int(p, v, 4); }
inline unsigned int atomicOr(unsigned int* p, unsigned int v) { return emu::atomic_rmw_int(p, v, 4); }
inline unsigned long long atomicOr(unsigned long long* p, unsigned long long v) { return emu::atomic_rmw_int(p, v, 4); }
inline int atomicXor(int* p, int v) { return emu::atomic_rmw_int(p, v, 5); }
inline unsigned int atomicXor(unsigned int* p, unsigned int v) { return emu::atomic_rmw_int(p, v, 5); }
inline unsigned long long atomicXor(unsigned long long* p, unsigned long long v) { return emu::atomic_rmw_int(p, v, 5); }
inline int atomicCAS(int* p, int cmp, int v) {
  __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return cmp;
}
inline unsigned int atomicCAS(unsigned int* p, unsigned int cmp, unsigned int v) {
  __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return cmp;
}
inline unsigned long long atomicCAS(unsigned long long* p, unsigned long long cmp, unsigned long long v) {
  __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return cmp;
}
inline unsigned int atomicInc(unsigned int* p, unsigned int limit) {
  unsigned int old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
  while (!__atomic_compare_exchange_n(p, &old, old >= limit ? 0u : old + 1u, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
  }
  return old;
}
inline unsigned int atomicDec(unsigned int* p, unsigned int limit) {
  unsigned int old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
  while (!__atomic_compare_exchange_n(p, &old, (old == 0u || old > limit) ? limit : old - 1u, false, __ATOMIC_SEQ_CST,
                                      __ATOMIC_SEQ_CST)) {
  }
  return old;
}

// ---------------------------------------------------------------------------------------------
// Loads and stores with cache hints (a misaligned vector access is a device fault, as on the GPU)
// ---------------------------------------------------------------------------------------------

namespace emu {
template <typename T>
inline void check_aligned(const T* p, const char* what) {
  if (reinterpret_cast<uintptr_t>(p) % alignof(T) != 0)
    device_fault(std::string(what) + ": misaligned address for a " + std::to_string(sizeof(T)) + "-byte access");
}
}  // namespace emu
#define EMU_LOAD(NAME)                          \
  template <typename T>                         \
  inline T NAME(const T* p) {                   \
    emu::check_aligned(p, #NAME);               \
    return *p;                                  \
  }
EMU_LOAD(__ldg)
EMU_LOAD(__ldcs)
EMU_LOAD(__ldca)
EMU_LOAD(__ldcg)
EMU_LOAD(__ldlu)
EMU_LOAD(__ldcv)
#undef EMU_LOAD
#define EMU_STORE(NAME)                         \
  template <typename T>                         \
  inline void NAME(T* p, T v) {                 \
    emu::check_aligned(p, #NAME);               \
    *p = v;                                     \
  }
EMU_STORE(__stcs)
EMU_STORE(__stcg)
EMU_STORE(__stwb)
EMU_STORE(__stwt)
#undef EMU_STORE

// ---------------------------------------------------------------------------------------------
// Intrinsics
// ---------------------------------------------------------------------------------------------

inline unsigned int __float_as_uint(float x) { return emu::from_bits<unsigned int>(emu::to_bits(x)); }
inline float __uint_as_float(unsigned int x) { return emu::from_bits<float>(emu::to_bits(x)); }
inline int __float_as_int(float x) { return emu::from_bits<int>(emu::to_bits(x)); }
inline float __int_as_float(int x) { return emu::from_bits<float>(emu::to_bits(x)); }
inline long long __double_as_longlong(double x) { return emu::from_bits<long long>(emu::to_bits(x)); }
inline double __longlong_as_double(long long x) { return emu::from_bits<double>(emu::to_bits(x)); }
inline int __double2hiint(double x) { return static_cast<int>(static_cast<uint64_t>(__double_as_longlong(x)) >> 32); }
inline int __double2loint(double x) { return static_cast<int>(static_cast<uint64_t>(__double_as_longlong(x)) & 0xffffffffu); }
inline double __hiloint2double(int hi, int lo) {
  return __longlong_as_double(static_cast<long long>((static_cast<uint64_t>(static_cast<uint32_t>(hi)) << 32) |
                                                     static_cast<uint32_t>(lo)));
}
// Correctly rounded operations (the build uses -ffp-contract=off: nothing is fused).
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __drcp_rn(double a) { return 1.0 / a; }
inline double __dsqrt_rn(double a) { return std::sqrt(a); }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __frcp_rn(float a) { return 1.0f / a; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __powf(float a, float b) { return std::pow(a, b); }
inline float __saturatef(float x) { return x != x ? 0.0f : (x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x)); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float exp10f(float x) { return std::pow(10.0f, x); }
inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned int __brev(unsigned int x) {
  unsigned int r = 0;
  for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}
inline unsigned int __umulhi(unsigned int a, unsigned int b) {
  return static_cast<unsigned int>((static_cast<unsigned long long>(a) * b) >> 32);
}
inline int __mulhi(int a, int b) { return static_cast<int>((static_cast<long long>(a) * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return static_cast<unsigned long long>((static_cast<unsigned __int128>(a) * b) >> 64);
}
inline long long __mul64hi(long long a, long long b) { return static_cast<long long>((static_cast<__int128>(a) * b) >> 64); }
inline int __mul24(int a, int b) { return a * b; }

// ---------------------------------------------------------------------------------------------
// Host runtime API
// ---------------------------------------------------------------------------------------------

inline const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    default: return "unknown error";
  }
}
inline const char* cudaGetErrorName(cudaError_t e) { return cudaGetErrorString(e); }
inline cudaError_t cudaGetLastError() {
  const cudaError_t e = emu::last_error;
  emu::last_error = cudaSuccess;
  return e;
}
inline cudaError_t cudaPeekAtLastError() { return emu::last_error; }
inline cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int) { return cudaSuccess; }
inline cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
// The device argument is not checked: the emulated "device" tensors are CPU tensors (get_device() = -1).
inline cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr attr, int /*device*/) {
  const emu::DeviceConfig& c = emu::config();
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *v = 1024; break;
    case cudaDevAttrMaxBlockDimX: *v = 1024; break;
    case cudaDevAttrMaxBlockDimY: *v = 1024; break;
    case cudaDevAttrMaxBlockDimZ: *v = 64; break;
    case cudaDevAttrMaxGridDimX: *v = INT_MAX; break;
    case cudaDevAttrMaxGridDimY: *v = 65535; break;
    case cudaDevAttrMaxGridDimZ: *v = 65535; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *v = c.smem_default; break;
    case cudaDevAttrWarpSize: *v = 32; break;
    case cudaDevAttrMultiProcessorCount: *v = c.sms; break;
    case cudaDevAttrComputeCapabilityMajor: *v = 9; break;
    case cudaDevAttrComputeCapabilityMinor: *v = 0; break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *v = c.smem_per_sm; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *v = c.smem_optin; break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *v = c.max_threads_per_sm; break;
    case cudaDevAttrL2CacheSize: *v = 50 * 1024 * 1024; break;
    default: return cudaErrorInvalidValue;
  }
  return cudaSuccess;
}
struct cudaDeviceProp {
  int multiProcessorCount, maxThreadsPerBlock, maxThreadsPerMultiProcessor, warpSize, major, minor;
  size_t sharedMemPerBlock, sharedMemPerBlockOptin, sharedMemPerMultiprocessor;
};
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int) {
  const emu::DeviceConfig& c = emu::config();
  *p = cudaDeviceProp{c.sms, 1024, c.max_threads_per_sm, 32, 9, 0, size_t(c.smem_default), size_t(c.smem_optin),
                      size_t(c.smem_per_sm)};
  return cudaSuccess;
}
template <typename F>
inline cudaError_t cudaFuncSetAttribute(F* func, cudaFuncAttribute attr, int value) {
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    size_t st = 0;
    {
      std::lock_guard<std::mutex> lk(emu::log_mutex());
      auto it = emu::func_static_smem().find(reinterpret_cast<const void*>(func));
      if (it != emu::func_static_smem().end()) st = it->second;
    }
    if (value < 0 || static_cast<size_t>(value) + st > static_cast<size_t>(emu::config().smem_optin))
      return emu::last_error = cudaErrorInvalidValue;
    std::lock_guard<std::mutex> lk(emu::log_mutex());
    emu::func_dynamic_smem_attr()[reinterpret_cast<const void*>(func)] = value;
  }
  return cudaSuccess;
}
// Blocks per SM limited by threads, the block count and shared memory (registers are not modelled).
template <typename F>
inline cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* n, F* func, int block_size, size_t dynamic_smem) {
  const emu::DeviceConfig& c = emu::config();
  if (block_size <= 0 || block_size > 1024) return emu::last_error = cudaErrorInvalidValue;
  size_t st = 0;
  {
    std::lock_guard<std::mutex> lk(emu::log_mutex());
    auto it = emu::func_static_smem().find(reinterpret_cast<const void*>(func));
    if (it != emu::func_static_smem().end()) st = it->second;
  }
  const size_t smem = dynamic_smem + st;
  int by_threads = c.max_threads_per_sm / ((block_size + 31) / 32 * 32);
  int by_smem = smem == 0 ? c.max_blocks_per_sm
                          : (smem > static_cast<size_t>(c.smem_optin) ? 0 : static_cast<int>(c.smem_per_sm / (smem + 1024)));
  *n = std::max(0, std::min({by_threads, by_smem, c.max_blocks_per_sm}));
  return cudaSuccess;
}
inline cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = std::aligned_alloc(256, (bytes + 255) / 256 * 256 + 256);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
template <typename T>
inline cudaError_t cudaMalloc(T** p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
inline cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
inline cudaError_t cudaMallocHost(void** p, size_t bytes) { return cudaMalloc(p, bytes); }
inline cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned int) { return cudaMalloc(p, bytes); }
inline cudaError_t cudaFreeHost(void* p) { return cudaFree(p); }
inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind) {
  if (n) std::memmove(dst, src, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind k, cudaStream_t = nullptr) {
  return cudaMemcpy(dst, src, n, k);
}
inline cudaError_t cudaMemset(void* dst, int v, size_t n) {
  if (n) std::memset(dst, v, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* dst, int v, size_t n, cudaStream_t = nullptr) { return cudaMemset(dst, v, n); }
template <typename T>
inline cudaError_t cudaMemcpyToSymbol(T& symbol, const void* src, size_t n, size_t offset = 0,
                                      cudaMemcpyKind = cudaMemcpyHostToDevice) {
  std::memcpy(reinterpret_cast<unsigned char*>(&symbol) + offset, src, n);
  return cudaSuccess;
}
template <typename T>
inline cudaError_t cudaMemcpyToSymbolAsync(T& symbol, const void* src, size_t n, size_t offset = 0,
                                           cudaMemcpyKind k = cudaMemcpyHostToDevice, cudaStream_t = nullptr) {
  return cudaMemcpyToSymbol(symbol, src, n, offset, k);
}
template <typename T>
inline cudaError_t cudaMemcpyFromSymbol(void* dst, const T& symbol, size_t n, size_t offset = 0,
                                        cudaMemcpyKind = cudaMemcpyDeviceToHost) {
  std::memcpy(dst, reinterpret_cast<const unsigned char*>(&symbol) + offset, n);
  return cudaSuccess;
}

// c10 / ATen CUDA helpers (the shim headers c10/cuda/*.h and ATen/cuda/CUDAContext.h include this file).
namespace c10 {
namespace cuda {
struct CUDAStream {
  cudaStream_t stream() const { return nullptr; }
  operator cudaStream_t() const { return nullptr; }
  c10::Device device() const { return c10::Device(c10::kCPU); }
  c10::DeviceIndex device_index() const { return 0; }
  void synchronize() const {}
  bool query() const { return true; }
};
inline CUDAStream getCurrentCUDAStream(c10::DeviceIndex = -1) { return {}; }
inline CUDAStream getDefaultCUDAStream(c10::DeviceIndex = -1) { return {}; }
inline CUDAStream getStreamFromPool(bool = false, c10::DeviceIndex = -1) { return {}; }
inline void setCurrentCUDAStream(CUDAStream) {}
inline c10::DeviceIndex current_device() { return 0; }
inline c10::DeviceIndex device_count() noexcept { return 1; }
struct CUDAGuard {
  explicit CUDAGuard(c10::Device) {}
  explicit CUDAGuard(c10::DeviceIndex) {}
  void set_device(c10::Device) {}
  void set_index(c10::DeviceIndex) {}
};
struct OptionalCUDAGuard {
  OptionalCUDAGuard() = default;
  explicit OptionalCUDAGuard(std::optional<c10::Device>) {}
  explicit OptionalCUDAGuard(c10::Device) {}
  void set_device(c10::Device) {}
  void set_index(c10::DeviceIndex) {}
  void reset() {}
};
struct CUDAStreamGuard {
  explicit CUDAStreamGuard(CUDAStream) {}
};
}  // namespace cuda
}  // namespace c10
namespace at {
namespace cuda {
using c10::cuda::CUDAStream;
using c10::cuda::getCurrentCUDAStream;
using c10::cuda::getDefaultCUDAStream;
using c10::cuda::getStreamFromPool;
using c10::cuda::OptionalCUDAGuard;
inline cudaDeviceProp* getCurrentDeviceProperties() {
  static thread_local cudaDeviceProp p;
  cudaGetDeviceProperties(&p, 0);
  return &p;
}
inline cudaDeviceProp* getDeviceProperties(c10::DeviceIndex) { return getCurrentDeviceProperties(); }
}  // namespace cuda
}  // namespace at

#define C10_CUDA_CHECK(EXPR)                                                                         \
  do {                                                                                               \
    const cudaError_t emu_err_ = (EXPR);                                                             \
    TORCH_CHECK(emu_err_ == cudaSuccess, "CUDA error: ", cudaGetErrorString(emu_err_), " (emulated)"); \
  } while (0)
#define C10_CUDA_CHECK_WARN(EXPR) \
  do {                            \
    (void)(EXPR);                 \
  } while (0)
#define C10_CUDA_KERNEL_LAUNCH_CHECK() C10_CUDA_CHECK(cudaGetLastError())
#define AT_CUDA_CHECK(EXPR) C10_CUDA_CHECK(EXPR)

// ---------------------------------------------------------------------------------------------
// Kernel launch
// ---------------------------------------------------------------------------------------------

namespace emu {

// Pinned host memory does not exist without an accelerator: .pinned_memory(x) becomes
// .pinned_memory(::emu::host_pinned(x)) (convert.py), plain pageable memory.
inline bool host_pinned(bool) { return false; }

struct LaunchCfg {
  dim3 grid, block;
  size_t smem;
  LaunchCfg(dim3 g, dim3 b, size_t s = 0, cudaStream_t = nullptr) : grid(g), block(b), smem(s) {}
};

[[noreturn]] inline void launch_error(const std::string& name, cudaError_t e, const std::string& why) {
  TORCH_CHECK(false, "CUDA error: ", cudaGetErrorString(e), " (emulated launch of ", name, ": ", why, ")");
}

inline std::string dims(dim3 d) {
  return "(" + std::to_string(d.x) + ", " + std::to_string(d.y) + ", " + std::to_string(d.z) + ")";
}

inline void set_thread_registers(Block& b, int f) {
  const unsigned t = static_cast<unsigned>(f);
  threadIdx = b.fibers[f].idx;
  blockIdx = b.block_idx;
  blockDim = b.block;
  gridDim = b.grid;
  tctx.block = &b;
  tctx.linear = t;
  tctx.warp = t / 32;
  tctx.lane = t % 32;
}

// Entry of every fiber: runs the kernel, records a device error, returns to the scheduler.
inline void fiber_main() {
  Block& b = *tctx.block;
  const int f = b.current;
  try {
    (*b.body)();
  } catch (const Abort&) {
  } catch (const c10::Error& e) {
    b.fail("thread " + dims(b.fibers[f].idx) + ": " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    b.fail("thread " + dims(b.fibers[f].idx) + ": " + e.what());
  } catch (...) {
    b.fail("thread " + dims(b.fibers[f].idx) + ": an exception of unknown type");
  }
  b.fibers[f].done = true;
  b.on_exit(f);
  swapcontext(&b.fibers[f].ctx, &b.scheduler);  // never resumed
}

// Runs one block to completion on the calling OS thread; returns its error ("" when none).
inline std::string run_block(Block& b) {
  const size_t stack = config().stack_bytes;
  const int nt = b.nthreads;
  b.fibers.resize(static_cast<size_t>(nt));
  for (int t = 0; t < nt; ++t) {
    Fiber& f = b.fibers[t];
    f.idx = uint3{t % b.block.x, (t / b.block.x) % b.block.y, t / (b.block.x * b.block.y)};
    f.stack = stack_pool().get(stack);
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack;
    f.ctx.uc_stack.ss_size = stack;
    f.ctx.uc_link = &b.scheduler;
    makecontext(&f.ctx, fiber_main, 0);
  }
  b.runnable.resize(static_cast<size_t>(nt));
  for (int t = 0; t < nt; ++t) b.runnable[t] = t;
  bool deadlock_reported = false;
  while (true) {
    if (b.runnable.empty()) {
      if (b.live == 0) break;
      // Every live thread waits at a barrier that cannot complete.
      if (!deadlock_reported) {
        b.fail("deadlock: every live thread of the block waits at a barrier that cannot complete, i.e. a "
               "__syncthreads() or warp collective is not reached by every thread it names (a thread exited or "
               "took another branch): " + b.waiting_summary());
        deadlock_reported = true;
      }
      b.aborted = true;
      for (int t = 0; t < nt; ++t)
        if (!b.fibers[t].done) b.runnable.push_back(t);  // resumed: they throw Abort and unwind
      b.bar.waiters.clear();
      for (auto& w : b.warp)
        for (auto& kv : w) kv.second->waiters.clear();
      continue;
    }
    // The next thread: ascending / descending / random among the runnable ones.
    size_t k = 0;
    if (b.order == 1) k = b.runnable.size() - 1;
    if (b.order == 2) k = static_cast<size_t>(b.rng() % b.runnable.size());
    const int f = b.runnable[k];
    if (b.order == 2) {
      b.runnable[k] = b.runnable.back();
      b.runnable.pop_back();
    } else {
      b.runnable.erase(b.runnable.begin() + static_cast<long>(k));
    }
    b.current = f;
    set_thread_registers(b, f);
    swapcontext(&b.scheduler, &b.fibers[f].ctx);
  }
  tctx = ThreadCtx{};
  for (auto& f : b.fibers) stack_pool().put(f.stack);
  std::string err = b.error;
  if (err.empty()) {
    for (size_t q = 0; q < kGuardBytes; ++q)
      if (b.dyn[b.dyn_bytes + q] != kGuardFill) {
        err = "wrote past the end of its " + std::to_string(b.dyn_bytes) + " bytes of dynamic shared memory";
        break;
      }
    for (const auto& kv : b.statics)
      for (size_t q = 0; q < kGuardBytes && err.empty(); ++q)
        if (kv.second.data[kv.second.bytes + q] != kGuardFill)
          err = std::string("wrote past the end of a static __shared__ variable of type ") + kv.second.type;
  }
  return err;
}

template <typename... KArgs, typename... Args>
void launch(const char* name, const LaunchCfg& c, void (*kernel)(KArgs...), Args&&... args) {
  const DeviceConfig cfg = config();
  const unsigned long long nt = static_cast<unsigned long long>(c.block.x) * c.block.y * c.block.z;
  const unsigned long long nb = static_cast<unsigned long long>(c.grid.x) * c.grid.y * c.grid.z;
  if (c.grid.x == 0 || c.grid.y == 0 || c.grid.z == 0 || c.grid.x > static_cast<unsigned>(INT_MAX) || c.grid.y > 65535 ||
      c.grid.z > 65535 || c.block.x == 0 || c.block.y == 0 || c.block.z == 0 || c.block.x > 1024 || c.block.y > 1024 ||
      c.block.z > 64 || nt > 1024)
    launch_error(name, cudaErrorInvalidConfiguration, "grid " + dims(c.grid) + ", block " + dims(c.block));
  const void* key = reinterpret_cast<const void*>(kernel);
  int attr = cfg.smem_default;
  size_t known_static = 0;
  {
    std::lock_guard<std::mutex> lk(log_mutex());
    auto it = func_dynamic_smem_attr().find(key);
    if (it != func_dynamic_smem_attr().end()) attr = std::max(attr, it->second);
    auto st = func_static_smem().find(key);
    if (st != func_static_smem().end()) known_static = st->second;
  }
  if (c.smem > static_cast<size_t>(attr))
    launch_error(name, cudaErrorInvalidValue,
                 std::to_string(c.smem) + " bytes of dynamic shared memory but the kernel allows " + std::to_string(attr) +
                     " (cudaFuncSetAttribute(cudaFuncAttributeMaxDynamicSharedMemorySize) missing or too small)");
  if (c.smem + known_static > static_cast<size_t>(cfg.smem_optin))
    launch_error(name, cudaErrorInvalidValue, "shared memory above the opt-in limit");
  // Arguments are converted to the parameter types once, at the launch, like the CUDA runtime does.
  std::tuple<std::decay_t<KArgs>...> params(std::forward<Args>(args)...);
  std::function<void()> body = [&] { std::apply(kernel, params); };
  std::vector<unsigned long long> ids(nb);
  for (unsigned long long i = 0; i < nb; ++i) ids[i] = i;
  static std::atomic<unsigned long long> launches{0};
  const unsigned long long serial = launches++;
  const uint64_t seed = static_cast<uint64_t>(cfg.seed) * 1000003ull + serial;
  if (cfg.order == 1) {
    std::reverse(ids.begin(), ids.end());
  } else if (cfg.order == 2) {
    std::mt19937_64 rng(seed);
    std::shuffle(ids.begin(), ids.end(), rng);
  }
  const unsigned nwarps = static_cast<unsigned>((nt + 31) / 32);
  // Workers (one OS thread per concurrently running block) take the blocks in order.
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex m;
  std::condition_variable cv;
  size_t finished_workers = 0, static_bytes = 0;
  unsigned long long first_bad = 0;
  std::string first_error;
  const size_t nworkers = std::min<size_t>(std::max(1, cfg.concurrent_blocks), ids.size());
  auto worker = [&] {
    while (!failed.load()) {
      const size_t k = next++;
      if (k >= ids.size()) break;
      const unsigned long long id = ids[k];
      Block b;
      b.nthreads = static_cast<int>(nt);
      b.live = static_cast<int>(nt);
      b.grid = c.grid;
      b.block = c.block;
      b.block_idx = uint3{static_cast<unsigned>(id % c.grid.x), static_cast<unsigned>((id / c.grid.x) % c.grid.y),
                          static_cast<unsigned>(id / (static_cast<unsigned long long>(c.grid.x) * c.grid.y))};
      b.body = &body;
      b.order = cfg.order;
      b.rng.seed(seed ^ (id * 0x9E3779B97F4A7C15ull));
      b.warp.resize(nwarps);
      b.exists.assign(nwarps, 0u);
      b.exited.assign(nwarps, 0u);
      for (unsigned t = 0; t < nt; ++t) b.exists[t / 32] |= 1u << (t % 32);
      for (unsigned w = 0; w < nwarps; ++w) b.exited[w] = ~b.exists[w];
      std::vector<unsigned char> dyn(c.smem + kGuardBytes + 64, kGuardFill);
      b.dyn = reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(dyn.data()) + 63) & ~uintptr_t(63));
      b.dyn_bytes = c.smem;
      std::memset(b.dyn, kSmemFill, c.smem);
      const std::string err = run_block(b);
      std::lock_guard<std::mutex> lk(m);
      static_bytes = std::max(static_bytes, b.static_bytes);
      if (!err.empty() && !failed.exchange(true)) {
        first_bad = id;
        first_error = err;
      }
    }
    std::lock_guard<std::mutex> lk(m);
    ++finished_workers;
    cv.notify_all();
  };
  std::vector<std::thread> workers;
  for (size_t w = 0; w < nworkers; ++w) workers.emplace_back(worker);
  {
    std::unique_lock<std::mutex> lk(m);
    if (!cv.wait_for(lk, std::chrono::duration<double>(cfg.watchdog_s), [&] { return finished_workers == nworkers; })) {
      std::fprintf(stderr, "\n[cuda emulation] %s: still running after %.0f s (an endless loop in a kernel?); aborting\n",
                   name, cfg.watchdog_s);
      std::fflush(stderr);
      std::abort();
    }
  }
  for (auto& w : workers) w.join();
  if (failed.load())
    launch_error(name, cudaErrorLaunchFailure, "block " + std::to_string(first_bad) + ": " + first_error);
  if (static_bytes > static_cast<size_t>(cfg.smem_default))
    launch_error(name, cudaErrorInvalidValue,
                 std::to_string(static_bytes) + " bytes of static shared memory (the limit is 48 KiB)");
  if (static_bytes + c.smem > static_cast<size_t>(cfg.smem_optin))
    launch_error(name, cudaErrorInvalidValue,
                 std::to_string(static_bytes) + " bytes of static and " + std::to_string(c.smem) +
                     " bytes of dynamic shared memory exceed the opt-in limit " + std::to_string(cfg.smem_optin));
  std::lock_guard<std::mutex> lk(log_mutex());
  func_static_smem()[key] = static_bytes;
  launch_log().push_back(LaunchRecord{name, c.grid, c.block, c.smem, static_bytes});
}

}  // namespace emu
