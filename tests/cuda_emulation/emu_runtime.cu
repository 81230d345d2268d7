// Runtime ops of the CUDA emulator (torch.ops.geomdl_emu.emu_*) and its self-test kernels
// (torch.ops.geomdl_emu.emu_selftest), written as CUDA and converted by convert.py like the kernels.
// This file is never compiled by nvcc: it exists only for the emulation (tests/cuda_emulation).
#include "common/cuda_utils.cuh"

#include <torch/library.h>

#include <string>
#include <vector>

namespace {

// ---------------------------------------------------------------------------------------------
// Control of the emulated device
// ---------------------------------------------------------------------------------------------

// Sets the emulated device; a negative value keeps the current setting.
void emu_configure(int64_t sms, int64_t smem_optin, int64_t order, int64_t concurrent_blocks, int64_t seed) {
  emu::DeviceConfig& c = emu::config();
  if (sms >= 0) c.sms = static_cast<int>(sms);
  if (smem_optin >= 0) c.smem_optin = static_cast<int>(smem_optin);
  if (order >= 0) c.order = static_cast<int>(order);
  if (concurrent_blocks >= 0) c.concurrent_blocks = static_cast<int>(concurrent_blocks);
  if (seed >= 0) c.seed = seed;
}

std::vector<int64_t> emu_get_config() {
  const emu::DeviceConfig& c = emu::config();
  return {c.sms, c.smem_optin, c.order, c.concurrent_blocks, c.seed};
}

// One line per launch since the last call: "name grid.x grid.y grid.z block.x block.y block.z
// dynamic_smem static_smem" (name: the launched expression, without spaces).
std::vector<std::string> emu_take_launch_log() {
  std::lock_guard<std::mutex> lk(emu::log_mutex());
  std::vector<std::string> out;
  for (const auto& r : emu::launch_log()) {
    std::string name = r.name;
    name.erase(std::remove(name.begin(), name.end(), ' '), name.end());
    std::ostringstream s;
    s << name << ' ' << r.grid.x << ' ' << r.grid.y << ' ' << r.grid.z << ' ' << r.block.x << ' ' << r.block.y << ' '
      << r.block.z << ' ' << r.dynamic_smem << ' ' << r.static_smem;
    out.push_back(s.str());
  }
  emu::launch_log().clear();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Self-test kernels: the semantics the kernels rely on, and the errors the emulator must report
// ---------------------------------------------------------------------------------------------

constexpr unsigned kFull = 0xffffffffu;
constexpr int kCols = 16;

// out[t, c]: warp collectives of thread t (two warps), checked against the CUDA definitions in Python.
template <typename T, int kWidth>
__global__ void __launch_bounds__(64) collectives_kernel(int64_t* __restrict__ out) {
  const int t = threadIdx.x, lane = t & 31, warp = t >> 5;
  const T v = static_cast<T>(lane * 10 + warp);
  int64_t* o = out + t * kCols;
  o[0] = static_cast<int64_t>(__shfl_sync(kFull, v, (lane * 7) % 32));
  o[1] = static_cast<int64_t>(__shfl_sync(kFull, v, lane + 3, kWidth));
  o[2] = static_cast<int64_t>(__shfl_up_sync(kFull, v, 3));
  o[3] = static_cast<int64_t>(__shfl_up_sync(kFull, v, 2, kWidth));
  o[4] = static_cast<int64_t>(__shfl_down_sync(kFull, v, 5));
  o[5] = static_cast<int64_t>(__shfl_down_sync(kFull, v, 1, kWidth));
  o[6] = static_cast<int64_t>(__shfl_xor_sync(kFull, v, 6));
  o[7] = static_cast<int64_t>(__shfl_xor_sync(kFull, v, 1, kWidth));
  o[8] = static_cast<int64_t>(__ballot_sync(kFull, lane % 3 == 0));
  o[9] = __any_sync(kFull, lane == 31 && warp == 1);
  o[10] = __all_sync(kFull, lane < 31);
  const double d = __shfl_down_sync(kFull, static_cast<double>(lane) + 0.5, 16);
  o[11] = static_cast<int64_t>(2.0 * d);
  // Disjoint masks in one warp: the halves shuffle independently.
  if (lane < 16) {
    o[12] = static_cast<int64_t>(__shfl_sync(0x0000ffffu, v, 15));
  } else {
    o[12] = static_cast<int64_t>(__shfl_sync(0xffff0000u, v, 16));
  }
  o[13] = __syncthreads_count(lane % 2);
  o[14] = __reduce_add_sync(kFull, static_cast<unsigned>(lane));
  __shared__ __align__(16) int s_rev[2][32];
  s_rev[warp][31 - lane] = lane;
  __syncthreads();
  o[15] = s_rev[warp][lane];
}

// Every thread but `skip` reaches the barrier: it completes (exited threads do not hold up bar.sync).
__global__ void exit_before_barrier_kernel(int skip, int* __restrict__ out) {
  if (static_cast<int>(threadIdx.x) == skip) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

// Lane `skip` exits before a full-mask shuffle: the other lanes complete it; reading the exited lane is undefined.
__global__ void exit_before_shuffle_kernel(int skip, int* __restrict__ out, int* __restrict__ from_exited) {
  const int lane = threadIdx.x & 31;
  if (lane == skip) return;
  out[threadIdx.x] = __shfl_sync(kFull, lane + 100, 0);
  from_exited[threadIdx.x] = __shfl_sync(kFull, lane + 100, skip);
}

// Warp 0 calls __syncthreads twice, warp 1 once, then exits: on the device the barriers are not matched by
// source line; the exit of warp 1 releases warp 0's second barrier.
__global__ void unmatched_barriers_kernel(int* __restrict__ out) {
  if (threadIdx.x < 32) {
    __syncthreads();
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

// Lanes 0-15 wait in a shuffle for lanes 16-31, which wait in __syncthreads for lanes 0-15: a deadlock.
__global__ void deadlock_kernel(int* __restrict__ out) {
  const int lane = threadIdx.x & 31;
  int v = lane;
  if (lane < 16) v = __shfl_sync(kFull, v, 0);
  __syncthreads();
  if (lane >= 16) v = __shfl_sync(kFull, v, 0);
  out[threadIdx.x] = v;
}

// A lane calls a collective whose mask does not name it (undefined behaviour).
__global__ void lane_not_in_mask_kernel(int* __restrict__ out) {
  out[threadIdx.x] = __shfl_sync(0x1u, static_cast<int>(threadIdx.x), 0);
}

// Writes element `index` of the dynamic shared memory (floats).
__global__ void dynamic_smem_write_kernel(int index, float* __restrict__ out) {
  extern __shared__ __align__(16) float buf[];
  if (threadIdx.x == 0) buf[index] = 1.0f;
  __syncthreads();
  if (threadIdx.x == 0) out[0] = buf[index];
}

// Writes element `index` of a static __shared__ int[8].
__global__ void static_smem_write_kernel(int index, int* __restrict__ out) {
  __shared__ int s[8];
  if (threadIdx.x == 0) s[index] = 7;
  __syncthreads();
  if (threadIdx.x == 0) out[0] = s[index];
}

// Reads shared memory nobody wrote: the emulator fills it with 0xFF bytes.
__global__ void uninitialised_smem_kernel(float* __restrict__ out) {
  __shared__ float s[64];
  out[threadIdx.x] = s[threadIdx.x];
}

template <int N>
__global__ void __launch_bounds__(N) bounded_kernel(int* __restrict__ out) {
  out[threadIdx.x] = N;
}

// out[blockIdx.x] = rank of the block in the execution order; atomics of every type the kernels use.
__global__ void atomics_kernel(int* __restrict__ order, int* __restrict__ counter, unsigned long long* __restrict__ umax,
                               long long* __restrict__ lmin, unsigned int* __restrict__ umin,
                               unsigned long long* __restrict__ usum, float* __restrict__ fglobal,
                               double* __restrict__ dglobal, float* __restrict__ fshared_out) {
  __shared__ float fs;
  if (threadIdx.x == 0) {
    order[blockIdx.x] = atomicAdd(counter, 1);
    fs = 0.0f;
  }
  __syncthreads();
  const unsigned g = blockIdx.x * blockDim.x + threadIdx.x;
  atomicMax(umax, static_cast<unsigned long long>(g) * 3ull);
  atomicMin(lmin, -static_cast<long long>(g));
  atomicMin(umin, 1000000u - g);
  atomicAdd(usum, static_cast<unsigned long long>(g));
  atomicAdd(fglobal, 1e-40f);   // subnormal: flushed to zero by global float atomics
  atomicAdd(dglobal, 0.25);
  atomicAdd(&fs, 1e-40f);       // shared float atomics keep subnormals
  __syncthreads();
  if (threadIdx.x == 0) fshared_out[blockIdx.x] = fs;
}

__global__ void misaligned_ldg_kernel(const float* __restrict__ p, float* __restrict__ out) {
  const float4 v = __ldg(reinterpret_cast<const float4*>(p + 1));
  out[threadIdx.x] = v.x;
}

__global__ void big_smem_kernel(float* __restrict__ out) {
  extern __shared__ float big[];
  big[threadIdx.x] = static_cast<float>(threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = big[blockDim.x - 1 - threadIdx.x];
}

// __constant__ memory (filled with cudaMemcpyToSymbol) and a __device__ global variable.
__constant__ float c_table[4];
__device__ int d_calls;

__global__ void constant_memory_kernel(float* __restrict__ out) {
  out[threadIdx.x] = c_table[threadIdx.x % 4] * 2.0f;
  atomicAdd(&d_calls, 1);
}

std::vector<at::Tensor> emu_selftest(const at::Tensor& like, c10::string_view name_view) {
  const std::string name(name_view);
  const auto i32 = like.options().dtype(at::kInt), i64 = like.options().dtype(at::kLong), f32 = like.options().dtype(at::kFloat);
  const cudaStream_t stream = geomdl::cuda::stream();
  if (name == "collectives") {
    at::Tensor a = at::full({64, kCols}, -7, i64), b = at::full({64, kCols}, -7, i64);
    collectives_kernel<int, 8>
        <<<1, 64, 0,
           stream>>>(
            a.data_ptr<int64_t>());
    collectives_kernel<long long, 16><<<dim3(1, 1, 1), dim3(64), 0, stream>>>(b.data_ptr<int64_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return {a, b};
  }
  if (name == "exit_before_barrier" || name == "unmatched_barriers" || name == "deadlock" ||
      name == "lane_not_in_mask") {
    at::Tensor out = at::zeros({64}, i32);
    if (name == "exit_before_barrier") exit_before_barrier_kernel<<<2, 64, 0, stream>>>(5, out.data_ptr<int>());
    if (name == "unmatched_barriers") unmatched_barriers_kernel<<<1, 64>>>(out.data_ptr<int>());
    if (name == "deadlock") deadlock_kernel<<<1, 64>>>(out.data_ptr<int>());
    if (name == "lane_not_in_mask") lane_not_in_mask_kernel<<<1, 32>>>(out.data_ptr<int>());
    return {out};
  }
  if (name == "exit_before_shuffle") {
    at::Tensor out = at::zeros({64}, i32), from_exited = at::zeros({64}, i32);
    exit_before_shuffle_kernel<<<1, 64>>>(3, out.data_ptr<int>(), from_exited.data_ptr<int>());
    return {out, from_exited};
  }
  if (name == "dynamic_smem_in_bounds" || name == "dynamic_smem_past_end") {
    at::Tensor out = at::zeros({1}, f32);
    const int index = name == "dynamic_smem_in_bounds" ? 15 : 16;
    dynamic_smem_write_kernel<<<1, 32, 16 * sizeof(float), stream>>>(index, out.data_ptr<float>());
    return {out};
  }
  if (name == "static_smem_in_bounds" || name == "static_smem_past_end") {
    at::Tensor out = at::zeros({1}, i32);
    static_smem_write_kernel<<<1, 32>>>(name == "static_smem_in_bounds" ? 7 : 8, out.data_ptr<int>());
    return {out};
  }
  if (name == "uninitialised_smem") {
    at::Tensor out = at::zeros({64}, f32);
    uninitialised_smem_kernel<<<1, 64>>>(out.data_ptr<float>());
    return {out};
  }
  if (name == "launch_bounds_ok" || name == "launch_bounds_exceeded") {
    at::Tensor out = at::zeros({128}, i32);
    bounded_kernel<64><<<1, name == "launch_bounds_ok" ? 64 : 128>>>(out.data_ptr<int>());
    return {out};
  }
  if (name == "bad_config_threads") {
    at::Tensor out = at::zeros({1}, i32);
    bounded_kernel<2048><<<1, 2048>>>(out.data_ptr<int>());
    return {out};
  }
  if (name == "bad_config_grid") {
    at::Tensor out = at::zeros({1}, i32);
    bounded_kernel<32><<<0, 32>>>(out.data_ptr<int>());
    return {out};
  }
  if (name == "atomics") {
    const int blocks = 16;
    at::Tensor order = at::full({blocks}, -1, i32), counter = at::zeros({1}, i32);
    at::Tensor umax = at::zeros({1}, i64), lmin = at::zeros({1}, i64), umin = at::full({1}, 2000000, i32);
    at::Tensor usum = at::zeros({1}, i64), fg = at::zeros({1}, f32), dg = at::zeros({1}, like.options().dtype(at::kDouble));
    at::Tensor fs = at::zeros({blocks}, f32);
    atomics_kernel<<<blocks, 128, 0, stream>>>(
        order.data_ptr<int>(), counter.data_ptr<int>(), reinterpret_cast<unsigned long long*>(umax.data_ptr<int64_t>()),
        reinterpret_cast<long long*>(lmin.data_ptr<int64_t>()), reinterpret_cast<unsigned int*>(umin.data_ptr<int>()),
        reinterpret_cast<unsigned long long*>(usum.data_ptr<int64_t>()), fg.data_ptr<float>(), dg.data_ptr<double>(),
        fs.data_ptr<float>());
    return {order, umax, lmin, umin, usum, fg, dg, fs};
  }
  if (name == "misaligned_ldg") {
    at::Tensor src = at::zeros({16}, f32), out = at::zeros({32}, f32);
    misaligned_ldg_kernel<<<1, 32>>>(src.data_ptr<float>(), out.data_ptr<float>());
    return {out};
  }
  if (name == "big_smem_without_attribute" || name == "big_smem_with_attribute") {
    const int threads = 1024;
    const size_t bytes = 64 * 1024;  // above the default 48 KiB
    at::Tensor out = at::zeros({threads}, f32);
    if (name == "big_smem_with_attribute")
      C10_CUDA_CHECK(cudaFuncSetAttribute(big_smem_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
    big_smem_kernel<<<1, threads, bytes, stream>>>(out.data_ptr<float>());
    return {out};
  }
  if (name == "constant_memory") {
    const float table[4] = {1.0f, -2.0f, 3.5f, 0.25f};
    const int zero = 0;
    C10_CUDA_CHECK(cudaMemcpyToSymbol(c_table, table, sizeof(table)));
    C10_CUDA_CHECK(cudaMemcpyToSymbol(d_calls, &zero, sizeof(int)));
    at::Tensor out = at::zeros({8}, f32), calls = at::zeros({1}, i32);
    constant_memory_kernel<<<3, 8>>>(out.data_ptr<float>());
    C10_CUDA_CHECK(cudaMemcpyFromSymbol(calls.data_ptr<int>(), d_calls, sizeof(int)));
    return {out, calls};
  }
  TORCH_CHECK(false, "unknown self-test ", name);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(geomdl_emu, m) {
  m.def("emu_configure", &emu_configure);
  m.def("emu_get_config", &emu_get_config);
  m.def("emu_take_launch_log", &emu_take_launch_log);
}

TORCH_LIBRARY_IMPL(geomdl_emu_selftest, CUDA, m) { m.impl("emu_selftest", &emu_selftest); }
