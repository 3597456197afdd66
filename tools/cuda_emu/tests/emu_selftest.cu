// cuda_emu's own checks: barriers, warp collectives, shared memory, CUB, half conversions, and
// (with an argument) that each kind of misuse aborts. Built and run by ctest when
// EMBER_CUDA_EMULATE=ON; compile it with nvcc to compare against a real GPU.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) {                                                    \
      std::printf("FAILED: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::exit(1);                                                   \
    }                                                                 \
  } while (0)

// Reverses each block's slice through shared memory: needs the barrier.
__global__ void reverse_kernel(int* out, const int* in) {
  __shared__ int tile[256];
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  tile[threadIdx.x] = in[i];
  __syncthreads();
  out[i] = tile[blockDim.x - 1 - threadIdx.x];
}

__global__ void warp_kernel(int* sums, unsigned* ballots, int* xors) {
  int v = threadIdx.x;
  for (int d = 16; d > 0; d /= 2) v += __shfl_down_sync(0xffffffffu, v, d);
  if (threadIdx.x % 32 == 0) sums[threadIdx.x / 32] = v;
  ballots[threadIdx.x] = __ballot_sync(0xffffffffu, threadIdx.x % 3 == 0);
  int x = threadIdx.x;
  for (int m = 1; m < 32; m *= 2) x += __shfl_xor_sync(0xffffffffu, x, m);
  xors[threadIdx.x] = x + __shfl_sync(0xffffffffu, 0, 7) + __shfl_up_sync(0xffffffffu, 1, 1);
}

__global__ void cub_kernel(int* sums, int* scans) {
  using Reduce = cub::BlockReduce<int, 128>;
  using Scan = cub::BlockScan<int, 128>;
  __shared__ typename Reduce::TempStorage rt;
  __shared__ typename Scan::TempStorage st;
  const int total = Reduce(rt).Sum(static_cast<int>(threadIdx.x));
  if (threadIdx.x == 0) sums[blockIdx.x] = total;
  int prefix = 0;
  Scan(st).ExclusiveSum(1, prefix);
  scans[blockIdx.x * 128 + threadIdx.x] = prefix;
}

__global__ void dynamic_kernel(float* out) {
  extern __shared__ float buf[];
  buf[threadIdx.x] = static_cast<float>(threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = buf[(threadIdx.x + 1) % blockDim.x];
}

__global__ void grid2d_kernel(int* out) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  out[y * gridDim.x * blockDim.x + x] = y * 1000 + x;
}

// ---- misuse (each aborts) ----
__global__ void early_exit_kernel(int* out) {
  if (threadIdx.x == 5) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}
__global__ void divergent_kernel(int* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}
__global__ void shfl_exit_kernel(int* out) {
  if (threadIdx.x == 3) return;
  out[threadIdx.x] = __shfl_down_sync(0xffffffffu, 1, 1);
}
__global__ void big_shared_kernel(int* out) {
  __shared__ double big[8192];  // 64 KiB
  big[threadIdx.x] = 1;
  out[threadIdx.x] = static_cast<int>(big[0]);
}

int main(int argc, char** argv) {
  int* d = nullptr;
  int* e = nullptr;
  CHECK(cudaMalloc(&d, 4096 * sizeof(int)) == cudaSuccess);
  CHECK(cudaMalloc(&e, 4096 * sizeof(int)) == cudaSuccess);
  if (argc > 1) {
    // Each misuse must abort: run it in a child and pass when the child dies of SIGABRT.
    const pid_t child = fork();
    if (child > 0) {
      int status = 0;
      waitpid(child, &status, 0);
      const bool aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
      std::printf("misuse '%s' %s\n", argv[1], aborted ? "detected" : "NOT detected");
      return aborted ? 0 : 1;
    }
    const char* what = argv[1];
    if (!std::strcmp(what, "early_exit")) early_exit_kernel<<<1, 64>>>(d);
    if (!std::strcmp(what, "divergent")) divergent_kernel<<<1, 64>>>(d);
    if (!std::strcmp(what, "shfl_exit")) shfl_exit_kernel<<<1, 32>>>(d);
    if (!std::strcmp(what, "big_shared")) big_shared_kernel<<<1, 32>>>(d);
    if (!std::strcmp(what, "block_size")) reverse_kernel<<<1, 2048>>>(d, e);
    if (!std::strcmp(what, "grid_y")) grid2d_kernel<<<dim3(1, 70000), 1>>>(d);
    if (!std::strcmp(what, "host_pointer")) {
      std::vector<int> host(256);
      reverse_kernel<<<1, 256>>>(host.data(), e);
    }
    if (!std::strcmp(what, "memcpy_kind")) {
      std::vector<int> host(16);
      cudaMemcpy(host.data(), d, 64, cudaMemcpyHostToDevice);
    }
    if (!std::strcmp(what, "overflow")) {
      std::vector<int> host(5000);
      cudaMemcpy(d, host.data(), 5000 * sizeof(int), cudaMemcpyHostToDevice);
    }
    std::printf("misuse '%s' was not detected\n", what);
    return 1;
  }

  std::vector<int> h(1024), r(1024);
  for (int i = 0; i < 1024; ++i) h[i] = i;
  CHECK(cudaMemcpy(e, h.data(), 1024 * sizeof(int), cudaMemcpyHostToDevice) == cudaSuccess);
  reverse_kernel<<<4, 256>>>(d, e);
  CHECK(cudaGetLastError() == cudaSuccess);
  CHECK(cudaMemcpy(r.data(), d, 1024 * sizeof(int), cudaMemcpyDeviceToHost) == cudaSuccess);
  for (int i = 0; i < 1024; ++i) CHECK(r[i] == (i / 256) * 256 + 255 - i % 256);

  unsigned* ballots = nullptr;
  int* xors = nullptr;
  CHECK(cudaMalloc(&ballots, 64 * sizeof(unsigned)) == cudaSuccess);
  CHECK(cudaMalloc(&xors, 64 * sizeof(int)) == cudaSuccess);
  warp_kernel<<<1, 64>>>(d, ballots, xors);
  std::vector<unsigned> hb(64);
  std::vector<int> hx(64);
  CHECK(cudaMemcpy(r.data(), d, 2 * sizeof(int), cudaMemcpyDeviceToHost) == cudaSuccess);
  CHECK(cudaMemcpy(hb.data(), ballots, 64 * sizeof(unsigned), cudaMemcpyDeviceToHost) == cudaSuccess);
  CHECK(cudaMemcpy(hx.data(), xors, 64 * sizeof(int), cudaMemcpyDeviceToHost) == cudaSuccess);
  CHECK(r[0] == 496 && r[1] == 496 + 32 * 32);
  unsigned expect_ballot = 0;
  for (int t = 0; t < 32; ++t) expect_ballot |= (t % 3 == 0 ? 1u : 0u) << t;
  CHECK(hb[0] == expect_ballot);
  for (int t = 0; t < 64; ++t) CHECK(hx[t] == (t < 32 ? 496 : 496 + 32 * 32) + 0 + 1);

  int* scans = nullptr;
  CHECK(cudaMalloc(&scans, 256 * sizeof(int)) == cudaSuccess);
  cub_kernel<<<2, 128>>>(d, scans);
  CHECK(cudaMemcpy(r.data(), d, 2 * sizeof(int), cudaMemcpyDeviceToHost) == cudaSuccess);
  CHECK(r[0] == 127 * 128 / 2 && r[1] == 127 * 128 / 2);
  CHECK(cudaMemcpy(h.data(), scans, 256 * sizeof(int), cudaMemcpyDeviceToHost) == cudaSuccess);
  for (int i = 0; i < 256; ++i) CHECK(h[i] == i % 128);

  float* f = nullptr;
  CHECK(cudaMalloc(&f, 64 * sizeof(float)) == cudaSuccess);
  dynamic_kernel<<<1, 64, 64 * sizeof(float)>>>(f);
  std::vector<float> hf(64);
  CHECK(cudaMemcpy(hf.data(), f, 64 * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess);
  for (int i = 0; i < 64; ++i) CHECK(hf[i] == static_cast<float>((i + 1) % 64));

  grid2d_kernel<<<dim3(4, 3), dim3(8, 2)>>>(d);
  CHECK(cudaMemcpy(r.data(), d, 32 * 6 * sizeof(int), cudaMemcpyDeviceToHost) == cudaSuccess);
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 32; ++x) CHECK(r[y * 32 + x] == y * 1000 + x);

  // radix sort: stable, by bits [0, 4)
  using u64 = unsigned long long;
  std::vector<u64> keys = {0x13, 0x02, 0x23, 0x01, 0x33, 0x02};
  std::vector<long> vals = {0, 1, 2, 3, 4, 5};
  u64 *ki = nullptr, *ko = nullptr;
  long *vi = nullptr, *vo = nullptr;
  CHECK(cudaMalloc(&ki, 48) == cudaSuccess && cudaMalloc(&ko, 48) == cudaSuccess);
  CHECK(cudaMalloc(&vi, 48) == cudaSuccess && cudaMalloc(&vo, 48) == cudaSuccess);
  CHECK(cudaMemcpy(ki, keys.data(), 48, cudaMemcpyHostToDevice) == cudaSuccess);
  CHECK(cudaMemcpy(vi, vals.data(), 48, cudaMemcpyHostToDevice) == cudaSuccess);
  size_t bytes = 0;
  CHECK(cub::DeviceRadixSort::SortPairs(nullptr, bytes, ki, ko, vi, vo, 6, 0, 4) == cudaSuccess);
  void* temp = nullptr;
  CHECK(bytes > 0 && cudaMalloc(&temp, bytes) == cudaSuccess);
  CHECK(cub::DeviceRadixSort::SortPairs(temp, bytes, ki, ko, vi, vo, 6, 0, 4) == cudaSuccess);
  CHECK(cudaMemcpy(vals.data(), vo, 48, cudaMemcpyDeviceToHost) == cudaSuccess);
  const long order[] = {3, 1, 5, 0, 2, 4};
  for (int i = 0; i < 6; ++i) CHECK(vals[i] == order[i]);

  // half / bfloat16: round to nearest even, subnormals, overflow
  CHECK(__half_as_ushort(__float2half_rn(1.0f)) == 0x3c00);
  CHECK(__half_as_ushort(__float2half_rn(65504.0f)) == 0x7bff);
  CHECK(__half_as_ushort(__float2half_rn(65520.0f)) == 0x7c00);
  CHECK(__half_as_ushort(__float2half_rn(5.9604645e-08f)) == 0x0001);  // 2^-24
  CHECK(__half_as_ushort(__float2half_rn(2.9802322e-08f)) == 0x0000);  // 2^-25: tie to even
  CHECK(__half_as_ushort(__float2half_rn(1.0f + 1.0f / 2048)) == 0x3c00);  // tie to even
  CHECK(__half_as_ushort(__float2half_rn(1.0f + 3.0f / 2048)) == 0x3c02);
  CHECK(__half2float(__ushort_as_half(0x0001)) == 5.9604645e-08f);
  CHECK(__half2float(__ushort_as_half(0xfbff)) == -65504.0f);
  for (unsigned b = 0; b < 0x10000; ++b) {  // every finite half survives the round trip
    const __half hv = __ushort_as_half(static_cast<unsigned short>(b));
    if ((b & 0x7c00) == 0x7c00) continue;
    CHECK(__half_as_ushort(__float2half_rn(__half2float(hv))) == b);
    const __nv_bfloat16 bv = __ushort_as_bfloat16(static_cast<unsigned short>(b));
    if ((b & 0x7f80) == 0x7f80) continue;
    CHECK(__bfloat16_as_ushort(__float2bfloat16_rn(__bfloat162float(bv))) == b);
  }
  CHECK(__bfloat16_as_ushort(__float2bfloat16_rn(1.00390625f)) == 0x3f80);  // tie to even
  CHECK(__bfloat16_as_ushort(__float2bfloat16_rn(1.01171875f)) == 0x3f82);

  cudaEvent_t a, b;
  CHECK(cudaEventCreate(&a) == cudaSuccess && cudaEventCreate(&b) == cudaSuccess);
  CHECK(cudaEventRecord(a) == cudaSuccess && cudaEventRecord(b) == cudaSuccess);
  float ms = -1;
  CHECK(cudaEventElapsedTime(&ms, a, b) == cudaSuccess && ms >= 0);
  std::printf("cuda_emu selftest: all passed\n");
  return 0;
}
