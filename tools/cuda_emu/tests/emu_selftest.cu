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
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
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

#if defined(EMBER_CUDA_EMU)
// ---- Hopper's asynchronous units (the emulator's models, called directly) ----
#include <cuda.h>

// One TMA box (64 x 8 of 16-bit elements, 128-byte swizzle) of a 20 x 72 tensor at (8, 16):
// rows 20-23 are out of bounds (zeros). Thread 0 arms the barrier and issues the copy; every
// thread waits for the phase, then copies shared memory out as it lies (swizzled).
// out[512]: the box's first element read before waiting for the barrier (the copy lands when a
// thread polls it, so still the poison 0xFFFF). wait = false: the misuse of never waiting.
__global__ void tma_kernel(uint16_t* out, const __grid_constant__ CUtensorMap map, bool wait) {
  extern __shared__ __align__(16) unsigned char raw[];
  unsigned char* const smem = reinterpret_cast<unsigned char*>(
      (reinterpret_cast<uintptr_t>(raw) + 1023) & ~static_cast<uintptr_t>(1023));
  uint64_t* const bar = reinterpret_cast<uint64_t*>(smem + 1024);
  if (threadIdx.x == 0) {
    ember_emu::mbar_init(bar, 1);
    ember_emu::mbar_arrive(bar, 1024);
    const int32_t coords[3] = {8, 16, 0};
    ember_emu::tma_load(smem, &map, coords, bar);
    out[512] = reinterpret_cast<uint16_t*>(smem)[0];
  }
  __syncthreads();
  if (!wait) return;
  while (!ember_emu::mbar_test_parity(bar, 0)) ember_emu::spin_yield("bar");
  for (int i = threadIdx.x; i < 512; i += blockDim.x) out[i] = reinterpret_cast<uint16_t*>(smem)[i];
}

// cp.reduce.async.bulk.tensor .add: 64 threads lay a 16 x 64 float box out in shared memory as a
// TMA load of `map` (float32, box 32 x 2 x 16 x 1, 128-byte swizzle) would, row r column c
// holding 1000 r + c + 0.5; thread 0 adds it at (0, 0, 8, 1). mode 0: fenced, waited for;
// 1: the box rewritten (all 7, fenced) after the issue and before bulk_wait_read, which the
// model reads at; 2: never waited for (the misuse).
__global__ void reduce_kernel(const __grid_constant__ CUtensorMap map, int mode) {
  extern __shared__ __align__(16) unsigned char raw[];
  float* const box = reinterpret_cast<float*>(
      (reinterpret_cast<uintptr_t>(raw) + 1023) & ~static_cast<uintptr_t>(1023));
  for (int e = static_cast<int>(threadIdx.x); e < 16 * 64; e += 64) {
    const int r = e / 64, c = e % 64;
    const uint32_t at = static_cast<uint32_t>((r * 2 + c / 32) * 32 + c % 32) * 4;
    box[(at ^ (((at >> 7) & 7u) << 4)) / 4] = 1000.0f * static_cast<float>(r) + static_cast<float>(c) + 0.5f;
  }
  ember_emu::fence_proxy_async();
  __syncthreads();
  if (threadIdx.x != 0) return;
  const int32_t coords[4] = {0, 0, 8, 1};
  ember_emu::tma_reduce_add(box, &map, coords);
  ember_emu::bulk_commit();
  if (mode == 1) {
    for (int e = 0; e < 16 * 64; ++e) box[e] = 7.0f;
    ember_emu::fence_proxy_async();
  }
  if (mode == 2) return;
  ember_emu::bulk_wait(0, true);
  ember_emu::bulk_wait(0, false);
}

// cp.async.bulk: thread 0 arms the barrier for 64 bytes and copies src[off..off + 16) (ints)
// into shared memory; every thread waits for the phase and copies the 16 ints out.
__global__ void bulk_kernel(int* out, const int* src, int off) {
  extern __shared__ __align__(16) unsigned char raw[];
  uint64_t* const bar = reinterpret_cast<uint64_t*>(raw + 64);
  if (threadIdx.x == 0) {
    ember_emu::mbar_init(bar, 1);
    ember_emu::mbar_arrive(bar, 64);
    ember_emu::bulk_load(raw, src + off, 64, bar);
  }
  __syncthreads();
  while (!ember_emu::mbar_test_parity(bar, 0)) ember_emu::spin_yield("bar");
  if (threadIdx.x < 16) out[threadIdx.x] = reinterpret_cast<int*>(raw)[threadIdx.x];
}

// A producer thread hands 5 values to a consumer warp through one slot guarded by two barriers
// ("full": 1 arrival, "empty": 32 arrivals), phases alternating. (Only one thread may wait on
// "empty": a lane that fell two phases behind would wait on the wrong parity forever.)
__global__ void pingpong_kernel(int* out) {
  extern __shared__ __align__(16) unsigned char raw[];
  uint64_t* const full = reinterpret_cast<uint64_t*>(raw);
  uint64_t* const empty = full + 1;
  int* const slot = reinterpret_cast<int*>(raw + 16);
  if (threadIdx.x == 0) {
    ember_emu::mbar_init(full, 1);
    ember_emu::mbar_init(empty, 32);
  }
  __syncthreads();
  for (int i = 0; i < 5; ++i) {
    if (threadIdx.x == 0) {
      while (!ember_emu::mbar_test_parity(empty, (i & 1) ^ 1)) ember_emu::spin_yield("empty");
      *slot = 10 * i + 7;
      ember_emu::mbar_arrive(full, 0);
    } else if (threadIdx.x >= 32) {
      while (!ember_emu::mbar_test_parity(full, i & 1)) ember_emu::spin_yield("full");
      if (threadIdx.x == 32) out[i] = *slot;
      __syncwarp();
      ember_emu::mbar_arrive(empty, 0);
    }
  }
}

// Two warps take turns through named barriers 1 and 2 (64 threads each: the warp that waits and
// the one that hands over), warp 1 giving warp 0 the first turn and skipping its last hand-over:
// the log records the turns strictly alternating.
__global__ void turns_kernel(int* out) {
  __shared__ int log[8];
  __shared__ int n;
  if (threadIdx.x == 0) n = 0;
  __syncthreads();
  const int w = threadIdx.x / 32;
  if (w == 1) ember_emu::named_barrier(1, 64, false);
  for (int i = 0; i < 4; ++i) {
    ember_emu::named_barrier(1 + w, 64, true);  // my turn
    if (threadIdx.x % 32 == 0) log[n++] = w;
    if (!(w == 1 && i == 3)) ember_emu::named_barrier(2 - w, 64, false);  // the other's turn
  }
  __syncthreads();
  if (threadIdx.x < 8) out[threadIdx.x] = log[threadIdx.x];
}
// Misuse: a hand-over nobody takes (arrivals left at a named barrier when the block ends).
__global__ void named_leftover_kernel() {
  if (threadIdx.x < 32) ember_emu::named_barrier(1, 64, false);
}
// Misuse: both warps wait for their turn, nobody hands one over.
__global__ void named_deadlock_kernel() { ember_emu::named_barrier(1 + threadIdx.x / 32, 64, true); }

// One wgmma.m64n8k16 from no-swizzle core matrices: A (64 x 16) and B (8 x 16, K-major) written
// in the canonical layout (LBO 128 bytes along K, SBO 256 along M/N), D read back per lane.
// fenced = false: the misuse of storing the operands without fence.proxy.async (aborts).
__global__ void wgmma_kernel(float* out, const __nv_bfloat16* a, const __nv_bfloat16* b,
                             bool fenced) {
  extern __shared__ __align__(16) unsigned char raw[];
  unsigned char* const smem = reinterpret_cast<unsigned char*>(
      (reinterpret_cast<uintptr_t>(raw) + 127) & ~static_cast<uintptr_t>(127));
  __nv_bfloat16* const as = reinterpret_cast<__nv_bfloat16*>(smem);
  __nv_bfloat16* const bs = as + 64 * 16;
  const auto core = [](int r, int k) { return (r / 8) * 128 + (k / 8) * 64 + (r % 8) * 8 + k % 8; };
  for (int i = threadIdx.x; i < 64 * 16; i += blockDim.x) as[core(i / 16, i % 16)] = a[i];
  for (int i = threadIdx.x; i < 8 * 16; i += blockDim.x) bs[core(i / 16, i % 16)] = b[i];
  if (fenced) ember_emu::fence_proxy_async();  // the stores, visible to wgmma's reads
  __syncthreads();
  const auto desc = [](const void* p, uint32_t lbo, uint32_t sbo) {
    return static_cast<uint64_t>((ember_emu::shared_address(p) & 0x3FFFF) >> 4) |
           (static_cast<uint64_t>(lbo >> 4) << 16) | (static_cast<uint64_t>(sbo >> 4) << 32);
  };
  float d[4] = {1, 1, 1, 1};
  ember_emu::wgmma_issue({d, 8, desc(as, 128, 256), desc(bs, 128, 256), true, true, false, false});
  ember_emu::wgmma_commit();
  ember_emu::wgmma_wait(0);
  const int w = threadIdx.x / 32, l = threadIdx.x % 32;
  for (int e = 0; e < 4; ++e)
    out[(16 * w + l / 4 + 8 * (e / 2)) * 8 + 2 * (l % 4) + e % 2] = d[e];
}

// cp.async lands at the wait that retires its group: before it shared memory holds its old bytes.
__global__ void cp_async_kernel(int* out, const int* in) {
  extern __shared__ __align__(16) int sbuf[];
  ember_emu::cp_async(sbuf, in, 16);
  ember_emu::cp_async_commit();
  ember_emu::cp_async(sbuf + 4, in + 4, 8);  // 8 bytes read, 8 zero-filled
  ember_emu::cp_async_commit();
  out[0] = sbuf[0];  // not landed: poison
  ember_emu::cp_async_wait(1);
  out[1] = sbuf[0];  // group 1 landed
  out[2] = sbuf[4];  // group 2 not yet
  ember_emu::cp_async_wait(0);
  out[3] = sbuf[4];
  out[4] = sbuf[7];
}

// Misuse: a wgmma still reading a stage that TMA refills (released too early).
__global__ void wgmma_refill_kernel(const __grid_constant__ CUtensorMap map) {
  extern __shared__ __align__(16) unsigned char raw[];
  unsigned char* const smem = reinterpret_cast<unsigned char*>(
      (reinterpret_cast<uintptr_t>(raw) + 1023) & ~static_cast<uintptr_t>(1023));
  uint64_t* const bar = reinterpret_cast<uint64_t*>(smem + 9216);
  if (threadIdx.x == 0) ember_emu::mbar_init(bar, 1);
  __syncthreads();
  const uint64_t desc = static_cast<uint64_t>(ember_emu::shared_address(smem) >> 4) |
                        (uint64_t{1} << 16) | (uint64_t{64} << 32) | (uint64_t{1} << 62);
  float d[4] = {};
  ember_emu::wgmma_issue({d, 8, desc, desc, true, true, false, false});
  ember_emu::wgmma_commit();
  if (threadIdx.x == 0) {
    ember_emu::mbar_arrive(bar, 1024);
    const int32_t coords[3] = {0, 0, 0};
    ember_emu::tma_load(smem, &map, coords, bar);
  }
  ember_emu::wgmma_wait(0);
}
// Misuse: waiting for a phase nobody completes.
__global__ void mbar_deadlock_kernel() {
  __shared__ uint64_t bar;
  if (threadIdx.x == 0) ember_emu::mbar_init(&bar, 2);
  __syncthreads();
  if (threadIdx.x == 0) ember_emu::mbar_arrive(&bar, 0);
  while (!ember_emu::mbar_test_parity(&bar, 0)) ember_emu::spin_yield("bar");
}
// Misuse: arriving on a barrier that was never initialised.
__global__ void mbar_uninit_kernel() {
  __shared__ uint64_t bar;
  ember_emu::mbar_arrive(&bar, 0);
}

// A cluster of 2 blocks (64 threads each): rank 0 multicasts one TMA box (64 x 8) into both
// blocks' shared memory, each block's "full" barrier counting its own bytes; every thread then
// arrives on the other block's "ack" barrier (remote, by mapa) and waits for its own (all 64 of
// the peer's threads), copies its block's box out, and the cluster ends with a cluster barrier
// so that no block exits while its peer may still reach its shared memory.
__global__ void cluster_kernel(uint16_t* out, int* ranks, const __grid_constant__ CUtensorMap map) {
  extern __shared__ __align__(16) unsigned char raw[];
  unsigned char* const smem = reinterpret_cast<unsigned char*>(
      (reinterpret_cast<uintptr_t>(raw) + 1023) & ~static_cast<uintptr_t>(1023));
  uint64_t* const full = reinterpret_cast<uint64_t*>(smem + 1024);
  uint64_t* const ack = full + 1;
  const int rank = ember_emu::cluster_ctarank();
  if (threadIdx.x == 0) {
    ember_emu::mbar_init(full, 1);
    ember_emu::mbar_init(ack, 64);
    ember_emu::mbar_arrive(full, 1024);  // this block's bytes, whoever issues the copy
  }
  ember_emu::cluster_arrive();  // the barriers are initialised before any peer uses them
  ember_emu::cluster_wait();
  if (rank == 0 && threadIdx.x == 0) {
    const int32_t coords[3] = {8, 16, 0};
    ember_emu::tma_load_multicast(smem, &map, coords, full, 0x3);
  }
  while (!ember_emu::mbar_test_parity(full, 0)) ember_emu::spin_yield("full");
  for (int i = threadIdx.x; i < 512; i += blockDim.x)
    out[blockIdx.x * 512 + i] = reinterpret_cast<uint16_t*>(smem)[i];
  ember_emu::mbar_arrive(static_cast<uint64_t*>(ember_emu::map_shared_rank(ack, rank ^ 1)), 0);
  while (!ember_emu::mbar_test_parity(ack, 0)) ember_emu::spin_yield("ack");
  if (threadIdx.x == 0) ranks[blockIdx.x] = rank + 10 * ember_emu::cluster_nctarank();
  ember_emu::cluster_arrive();
  ember_emu::cluster_wait();
}
// Misuse: block rank 0 exits while rank 1 still arrives on its barrier. Rank 1 first waits until
// every thread of rank 0 has counted itself out in `exited` (zero at launch): a thread counts
// just before it exits, with no yield between, so rank 1 sees the full count only once they have
// all exited, in any scheduling order (reversed, shuffled, by warp priority).
__global__ void cluster_exited_kernel(int* exited) {
  extern __shared__ __align__(16) unsigned char raw[];
  uint64_t* const bar = reinterpret_cast<uint64_t*>(raw);
  if (threadIdx.x == 0) ember_emu::mbar_init(bar, 64);
  ember_emu::cluster_arrive();
  ember_emu::cluster_wait();
  if (ember_emu::cluster_ctarank() == 0) {
    atomicAdd(exited, 1);
    return;
  }
  while (atomicAdd(exited, 0) < static_cast<int>(blockDim.x)) ember_emu::spin_yield("rank 0's exit");
  ember_emu::mbar_arrive(static_cast<uint64_t*>(ember_emu::map_shared_rank(bar, 0)), 0);
}
// Misuse: a static shared-memory variable in a cluster launch.
__global__ void cluster_static_kernel(int* out) {
  __shared__ int v;
  v = 1;
  out[0] = v;
}

// A cooperative launch: block b waits (polling global memory) for turn b, writes its index at
// the next free place of out and hands the turn to b + 1; out[32] counts the blocks that started
// before block 0 (a different number each launch: the first block rotates).
__global__ void turns_in_order_kernel(int* out, int* turn, int* started) {
  if (threadIdx.x == 0) {
    const int b = static_cast<int>(blockIdx.x);
    if (b == 0) out[32] = *started;
    ++*started;
    while (__atomic_load_n(turn, __ATOMIC_ACQUIRE) != b) ember_emu::spin_yield("a turn");
    out[out[33]++] = b;
    __atomic_store_n(turn, b + 1, __ATOMIC_RELEASE);
  }
  __syncthreads();
}
// Misuse: a turn that never comes (block 1 waits for 5 of a grid of 2).
__global__ void turn_deadlock_kernel(int* turn) {
  if (blockIdx.x == 1)
    while (__atomic_load_n(turn, __ATOMIC_ACQUIRE) != 5) ember_emu::spin_yield("a turn");
}
// Two warps take turns at __syncwarp: lane 0 of each logs its warp three times. Round robin
// interleaves them (0 1 0 1 0 1); EMBER_EMU_WARP_PRIORITY=1 runs warp 0 until it is done
// (0 0 0 1 1 1), and in reverse warp 1 (1 1 1 0 0 0).
__global__ void warp_order_kernel(int* log) {
  __shared__ int n;
  if (threadIdx.x == 0) n = 0;
  __syncthreads();
  for (int i = 0; i < 3; ++i) {
    __syncwarp();
    if (threadIdx.x % 32 == 0) log[atomicAdd(&n, 1)] = static_cast<int>(threadIdx.x / 32);
  }
}

// Past a barrier the threads go on in the round's order: the first to get past it is thread 0
// (the last thread with EMBER_EMU_REVERSE=1), not the last to arrive.
__global__ void barrier_order_kernel(int* first) {
  __shared__ int n;
  if (threadIdx.x == 0) n = 0;
  __syncthreads();
  if (atomicAdd(&n, 1) == 0) *first = static_cast<int>(threadIdx.x);
}

// Blocks taking items from a counter in global memory, a barrier after each take (slot: one int
// per block): by priority the first block takes them all, swept (EMBER_EMU_BLOCK_SWEEP=1) the
// blocks take them in turn.
__global__ void take_items_kernel(int* next, int* slot, int* owner, int items) {
  for (;;) {
    if (threadIdx.x == 0) slot[blockIdx.x] = atomicAdd(next, 1);
    __syncthreads();
    const int item = slot[blockIdx.x];
    __syncthreads();
    if (item >= items) return;
    if (threadIdx.x == 0) owner[item] = static_cast<int>(blockIdx.x);
  }
}

// Misuse: a cluster operation in a cooperative launch.
__global__ void cooperative_rank_kernel(int* out) { out[0] = ember_emu::cluster_ctarank(); }

template <class... Exp, class... Act>
void launch_cooperative(void (*kernel)(Exp...), dim3 grid, dim3 block, Act&&... args) {
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeCooperative;
  attr.val.cooperative = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid, config.blockDim = block, config.dynamicSmemBytes = 0;
  config.stream = nullptr, config.attrs = &attr, config.numAttrs = 1;
  CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Act>(args)...) == cudaSuccess);
}

template <class... Exp, class... Act>
void launch_cluster(void (*kernel)(Exp...), dim3 grid, dim3 block, size_t shmem, unsigned cluster,
                    Act&&... args) {
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeClusterDimension;
  attr.val.clusterDim.x = cluster, attr.val.clusterDim.y = 1, attr.val.clusterDim.z = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid, config.blockDim = block, config.dynamicSmemBytes = shmem;
  config.stream = nullptr, config.attrs = &attr, config.numAttrs = 1;
  CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Act>(args)...) == cudaSuccess);
}

// Sets the emulator's scheduling variables for one check and restores them after it, so the
// rest of the checks run in the order the caller asked for.
class ScopedEnv {
 public:
  explicit ScopedEnv(std::initializer_list<std::pair<const char*, const char*>> values) {
    for (const auto& [name, value] : values) {
      const char* was = std::getenv(name);
      saved_.push_back({name, was != nullptr ? std::optional<std::string>(was) : std::nullopt});
      setenv(name, value, 1);
    }
  }
  ~ScopedEnv() {
    for (const auto& [name, was] : saved_)
      if (was)
        setenv(name.c_str(), was->c_str(), 1);
      else
        unsetenv(name.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

CUtensorMap make_map(uint16_t* base, uint64_t cols, uint64_t rows, uint32_t box_rows) {
  CUtensorMap map;
  const cuuint64_t dims[3] = {cols, rows, 1};
  const cuuint64_t strides[2] = {cols * 2, cols * rows * 2};
  const cuuint32_t box[3] = {64, box_rows, 1}, es[3] = {1, 1, 1};
  CHECK(cuTensorMapEncodeTiled(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, base, dims, strides, box,
                               es, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                               CU_TENSOR_MAP_L2_PROMOTION_NONE,
                               CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS);
  return map;
}

/// reduce_kernel's target: float32 (2 heads, 20 rows, 64 columns) seen as (32, 2, 20, 2).
CUtensorMap make_reduce_map(float* base) {
  CUtensorMap map;
  const cuuint64_t dims[4] = {32, 2, 20, 2};
  const cuuint64_t strides[3] = {128, 256, 20 * 256};
  const cuuint32_t box[4] = {32, 2, 16, 1}, es[4] = {1, 1, 1, 1};
  CHECK(cuTensorMapEncodeTiled(&map, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 4, base, dims, strides, box,
                               es, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                               CU_TENSOR_MAP_L2_PROMOTION_NONE,
                               CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS);
  return map;
}

void hopper_checks() {
  // cp.reduce.async.bulk.tensor: the box's rows 8-19 of head 1 gain its values (rows 20-23 are
  // out of bounds), the rest stays 1; rewritten before bulk_wait_read, the new values are added.
  for (int mode = 0; mode < 2; ++mode) {
    float* t = nullptr;
    CHECK(cudaMalloc(&t, 2 * 20 * 64 * sizeof(float)) == cudaSuccess);
    std::vector<float> ones(2 * 20 * 64, 1.0f), got(ones.size());
    CHECK(cudaMemcpy(t, ones.data(), ones.size() * 4, cudaMemcpyHostToDevice) == cudaSuccess);
    reduce_kernel<<<1, 64, 8192>>>(make_reduce_map(t), mode);
    CHECK(cudaMemcpy(got.data(), t, got.size() * 4, cudaMemcpyDeviceToHost) == cudaSuccess);
    for (int h = 0; h < 2; ++h)
      for (int r = 0; r < 20; ++r)
        for (int c = 0; c < 64; ++c) {
          const bool hit = h == 1 && r >= 8;
          const float add = mode == 1 ? 7.0f : 1000.0f * static_cast<float>(r - 8) + c + 0.5f;
          CHECK(got[static_cast<size_t>((h * 20 + r) * 64 + c)] == (hit ? 1.0f + add : 1.0f));
        }
    CHECK(cudaFree(t) == cudaSuccess);
  }
  // Cooperative launches: the blocks run together (block b waits for b - 1's turn, whichever runs
  // first), and the first block to run changes from launch to launch (by rotation, unshuffled).
  {
    const ScopedEnv env({{"EMBER_EMU_SHUFFLE", "0"}});
    int* d = nullptr;
    CHECK(cudaMalloc(&d, 64 * sizeof(int)) == cudaSuccess);
    std::vector<int> h(64), firsts;
    for (int run = 0; run < 3; ++run) {
      CHECK(cudaMemset(d, 0, 64 * sizeof(int)) == cudaSuccess);
      launch_cooperative(turns_in_order_kernel, 6, 64, d, d + 40, d + 41);
      CHECK(cudaMemcpy(h.data(), d, 64 * sizeof(int), cudaMemcpyDeviceToHost) == cudaSuccess);
      for (int b = 0; b < 6; ++b) CHECK(h[b] == b);
      CHECK(h[33] == 6 && h[40] == 6);
      firsts.push_back(h[32]);
    }
    CHECK(firsts[0] != firsts[1] && firsts[1] != firsts[2]);
  }
  // The warps of a block by priority (EMBER_EMU_WARP_PRIORITY=1), forwards and in reverse.
  {
    int* d = nullptr;
    CHECK(cudaMalloc(&d, 6 * sizeof(int)) == cudaSuccess);
    const char* const modes[3][2] = {{"0", "0"}, {"1", "0"}, {"1", "1"}};
    const int want[3][6] = {{0, 1, 0, 1, 0, 1}, {0, 0, 0, 1, 1, 1}, {1, 1, 1, 0, 0, 0}};
    for (int m = 0; m < 3; ++m) {
      const ScopedEnv env({{"EMBER_EMU_WARP_PRIORITY", modes[m][0]},
                           {"EMBER_EMU_REVERSE", modes[m][1]},
                           {"EMBER_EMU_SHUFFLE", "0"}});
      warp_order_kernel<<<1, 64>>>(d);
      int got[6];
      CHECK(cudaMemcpy(got, d, sizeof got, cudaMemcpyDeviceToHost) == cudaSuccess);
      for (int i = 0; i < 6; ++i) CHECK(got[i] == want[m][i]);
    }
    // A list sets the order, the warps it leaves out after it (in reverse too): "2,0" runs
    // warps 2, 0, 1; "1," warp 1 first.
    {
      int* w = nullptr;
      CHECK(cudaMalloc(&w, 9 * sizeof(int)) == cudaSuccess);
      const char* const lists[2] = {"2,0", "1,"};
      const int order[2][3] = {{2, 0, 1}, {1, 0, 2}};
      for (int l = 0; l < 2; ++l)
        for (const char* reverse : {"0", "1"}) {
          const ScopedEnv env({{"EMBER_EMU_WARP_PRIORITY", lists[l]},
                               {"EMBER_EMU_REVERSE", reverse},
                               {"EMBER_EMU_SHUFFLE", "0"}});
          warp_order_kernel<<<1, 96>>>(w);
          int got[9];
          CHECK(cudaMemcpy(got, w, sizeof got, cudaMemcpyDeviceToHost) == cudaSuccess);
          for (int i = 0; i < 9; ++i) CHECK(got[i] == order[l][i / 3]);
        }
    }
    // Shuffled (EMBER_EMU_SHUFFLE=n): the warps in a random order each round, so two launches
    // of the same kernel log different orders (each warp three times all the same).
    {
      const ScopedEnv env({{"EMBER_EMU_SHUFFLE", "7"}, {"EMBER_EMU_WARP_PRIORITY", "0"}});
      std::vector<std::vector<int>> logs;
      for (int run = 0; run < 8; ++run) {
        int* w = nullptr;
        CHECK(cudaMalloc(&w, 96 * sizeof(int)) == cudaSuccess);
        warp_order_kernel<<<1, 1024>>>(w);
        std::vector<int> got(96);
        CHECK(cudaMemcpy(got.data(), w, 96 * sizeof(int), cudaMemcpyDeviceToHost) == cudaSuccess);
        std::vector<int> count(32, 0);
        for (int v : got) CHECK(v >= 0 && v < 32 && ++count[static_cast<size_t>(v)] <= 3);
        logs.push_back(got);
      }
      bool differ = false;
      for (size_t r = 1; r < logs.size(); ++r) differ = differ || logs[r] != logs[0];
      CHECK(differ);
    }
    // Past a barrier, thread 0 first (the last thread in reverse).
    for (int reverse = 0; reverse < 2; ++reverse) {
      const ScopedEnv env(
          {{"EMBER_EMU_REVERSE", reverse ? "1" : "0"}, {"EMBER_EMU_SHUFFLE", "0"}});
      barrier_order_kernel<<<1, 64>>>(d);
      int first = -1;
      CHECK(cudaMemcpy(&first, d, sizeof first, cudaMemcpyDeviceToHost) == cudaSuccess);
      CHECK(first == (reverse ? 63 : 0));
    }
  }
  // A cooperative launch's blocks taking items from a counter: by priority the first block takes
  // all 9; swept (EMBER_EMU_BLOCK_SWEEP=1), each of the 3 takes 3.
  {
    int* d = nullptr;
    CHECK(cudaMalloc(&d, 16 * sizeof(int)) == cudaSuccess);
    for (int sweep = 0; sweep < 2; ++sweep) {
      const ScopedEnv env(
          {{"EMBER_EMU_BLOCK_SWEEP", sweep ? "1" : "0"}, {"EMBER_EMU_SHUFFLE", "0"}});
      CHECK(cudaMemset(d, 0, 16 * sizeof(int)) == cudaSuccess);
      launch_cooperative(take_items_kernel, 3, 64, d, d + 1, d + 4, 9);
      int owner[9], taken[3] = {0, 0, 0};
      CHECK(cudaMemcpy(owner, d + 4, sizeof owner, cudaMemcpyDeviceToHost) == cudaSuccess);
      for (int i = 0; i < 9; ++i) {
        CHECK(owner[i] >= 0 && owner[i] < 3);
        ++taken[owner[i]];
      }
      for (int b = 0; b < 3; ++b) CHECK(sweep ? taken[b] == 3 : (taken[b] == 0 || taken[b] == 9));
    }
  }
  // TMA: element (r, c) of the box lands in row r, 16-byte chunk (c / 8) ^ (r % 8).
  const uint64_t rows = 20, cols = 72;
  std::vector<uint16_t> h(rows * cols);
  for (uint64_t i = 0; i < h.size(); ++i) h[i] = static_cast<uint16_t>(1 + i);
  uint16_t *src = nullptr, *dst = nullptr;
  CHECK(cudaMalloc(&src, h.size() * 2) == cudaSuccess && cudaMalloc(&dst, 1040) == cudaSuccess);
  CHECK(cudaMemcpy(src, h.data(), h.size() * 2, cudaMemcpyHostToDevice) == cudaSuccess);
  const CUtensorMap map = make_map(src, cols, rows, 8);
  tma_kernel<<<1, 64, 3072>>>(dst, map, true);
  std::vector<uint16_t> got(513);
  CHECK(cudaMemcpy(got.data(), dst, 1026, cudaMemcpyDeviceToHost) == cudaSuccess);
  CHECK(got[512] == 0xFFFF);  // not landed before the wait
  for (int r = 0; r < 8; ++r)
    for (int c = 0; c < 64; ++c) {
      const int at = r * 64 + (((c / 8) ^ (r % 8)) * 8) + c % 8;
      const uint16_t want = 16 + r < static_cast<int>(rows) ? h[(16 + r) * cols + 8 + c] : 0;
      CHECK(got[at] == want);
    }
  // Clusters of 2 in a grid of 4: every block holds rank 0's multicast box; ranks by blockIdx.x.
  uint16_t* cluster_out = nullptr;
  int* ranks = nullptr;
  CHECK(cudaMalloc(&cluster_out, 4 * 1024) == cudaSuccess && cudaMalloc(&ranks, 16) == cudaSuccess);
  launch_cluster(cluster_kernel, 4, 64, 3072, 2, cluster_out, ranks, map);
  std::vector<uint16_t> cgot(4 * 512);
  std::vector<int> hranks(4);
  CHECK(cudaMemcpy(cgot.data(), cluster_out, 4 * 1024, cudaMemcpyDeviceToHost) == cudaSuccess);
  CHECK(cudaMemcpy(hranks.data(), ranks, 16, cudaMemcpyDeviceToHost) == cudaSuccess);
  for (int b = 0; b < 4; ++b) {
    CHECK(hranks[b] == b % 2 + 20);
    for (int i = 0; i < 512; ++i) CHECK(cgot[b * 512 + i] == got[i]);
  }
  // the driver's rules: a 16-byte aligned base, strides in 16 bytes, the box inside the swizzle
  CUtensorMap bad;
  const cuuint64_t dims[3] = {72, 20, 1}, odd[2] = {72 * 2 + 2, 72 * 20 * 2};
  const cuuint32_t box[3] = {64, 8, 1}, wide[3] = {128, 8, 1}, es[3] = {1, 1, 1};
  CHECK(cuTensorMapEncodeTiled(&bad, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, src, dims, odd, box, es,
                               CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                               CU_TENSOR_MAP_L2_PROMOTION_NONE,
                               CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_ERROR_INVALID_VALUE);
  const cuuint64_t strides[2] = {72 * 2, 72 * 20 * 2};
  CHECK(cuTensorMapEncodeTiled(&bad, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, src, dims, strides, wide,
                               es, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                               CU_TENSOR_MAP_L2_PROMOTION_NONE,
                               CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_ERROR_INVALID_VALUE);
  CHECK(cuTensorMapEncodeTiled(&bad, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, src + 1, dims, strides,
                               box, es, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                               CU_TENSOR_MAP_L2_PROMOTION_NONE,
                               CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_ERROR_INVALID_VALUE);

  int *cin = nullptr, *cout = nullptr;
  CHECK(cudaMalloc(&cin, 8 * sizeof(int)) == cudaSuccess && cudaMalloc(&cout, 5 * sizeof(int)) == cudaSuccess);
  const int hin[8] = {11, 12, 13, 14, 15, 16, 17, 18};
  CHECK(cudaMemcpy(cin, hin, sizeof hin, cudaMemcpyHostToDevice) == cudaSuccess);
  cp_async_kernel<<<1, 1, 64>>>(cout, cin);
  int hout[5];
  CHECK(cudaMemcpy(hout, cout, sizeof hout, cudaMemcpyDeviceToHost) == cudaSuccess);
  CHECK(hout[0] == -1 && hout[1] == 11 && hout[2] == -1 && hout[3] == 15 && hout[4] == 0);

  int *bsrc = nullptr, *bdst = nullptr;
  CHECK(cudaMalloc(&bsrc, 32 * sizeof(int)) == cudaSuccess &&
        cudaMalloc(&bdst, 16 * sizeof(int)) == cudaSuccess);
  std::vector<int> hbs(32);
  for (int i = 0; i < 32; ++i) hbs[i] = 100 + i;
  CHECK(cudaMemcpy(bsrc, hbs.data(), 32 * sizeof(int), cudaMemcpyHostToDevice) == cudaSuccess);
  bulk_kernel<<<1, 32, 128>>>(bdst, bsrc, 8);
  int hbd[16];
  CHECK(cudaMemcpy(hbd, bdst, sizeof hbd, cudaMemcpyDeviceToHost) == cudaSuccess);
  for (int i = 0; i < 16; ++i) CHECK(hbd[i] == 108 + i);

  int* vals = nullptr;
  CHECK(cudaMalloc(&vals, 5 * sizeof(int)) == cudaSuccess);
  pingpong_kernel<<<1, 64, 64>>>(vals);
  std::vector<int> hv(5);
  CHECK(cudaMemcpy(hv.data(), vals, 5 * sizeof(int), cudaMemcpyDeviceToHost) == cudaSuccess);
  for (int i = 0; i < 5; ++i) CHECK(hv[i] == 10 * i + 7);

  int* turns = nullptr;
  CHECK(cudaMalloc(&turns, 8 * sizeof(int)) == cudaSuccess);
  turns_kernel<<<1, 64>>>(turns);
  int ht[8];
  CHECK(cudaMemcpy(ht, turns, sizeof ht, cudaMemcpyDeviceToHost) == cudaSuccess);
  for (int i = 0; i < 8; ++i) CHECK(ht[i] == i % 2);

  // wgmma: D = 1 + A B^T on small integers (exact in bf16 and float)
  std::vector<__nv_bfloat16> ha(64 * 16), hb(8 * 16);
  for (int i = 0; i < 64 * 16; ++i) ha[i] = __float2bfloat16_rn(static_cast<float>(i % 7 - 3));
  for (int i = 0; i < 8 * 16; ++i) hb[i] = __float2bfloat16_rn(static_cast<float>(i % 5 - 2));
  __nv_bfloat16 *da = nullptr, *db = nullptr;
  float* dd = nullptr;
  CHECK(cudaMalloc(&da, ha.size() * 2) == cudaSuccess && cudaMalloc(&db, hb.size() * 2) == cudaSuccess);
  CHECK(cudaMalloc(&dd, 64 * 8 * sizeof(float)) == cudaSuccess);
  CHECK(cudaMemcpy(da, ha.data(), ha.size() * 2, cudaMemcpyHostToDevice) == cudaSuccess);
  CHECK(cudaMemcpy(db, hb.data(), hb.size() * 2, cudaMemcpyHostToDevice) == cudaSuccess);
  wgmma_kernel<<<1, 128, 4096>>>(dd, da, db, true);
  std::vector<float> hd(64 * 8);
  CHECK(cudaMemcpy(hd.data(), dd, hd.size() * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess);
  for (int m = 0; m < 64; ++m)
    for (int n = 0; n < 8; ++n) {
      float want = 1;
      for (int k = 0; k < 16; ++k)
        want += __bfloat162float(ha[m * 16 + k]) * __bfloat162float(hb[n * 16 + k]);
      CHECK(hd[m * 8 + n] == want);
    }
}

void hopper_misuse(const char* what, int* d) {
  (void)d;
  if (!std::strcmp(what, "mbar_deadlock")) mbar_deadlock_kernel<<<1, 32>>>();
  if (!std::strcmp(what, "tma_unwaited")) {
    uint16_t* src = nullptr;
    CHECK(cudaMalloc(&src, 64 * 8 * 2) == cudaSuccess);
    tma_kernel<<<1, 64, 3072>>>(reinterpret_cast<uint16_t*>(d), make_map(src, 64, 8, 8), false);
  }
  if (!std::strcmp(what, "wgmma_unfenced")) {
    __nv_bfloat16* ab = nullptr;
    CHECK(cudaMalloc(&ab, 64 * 16 * 2 + 8 * 16 * 2) == cudaSuccess);
    CHECK(cudaMemset(ab, 0, 64 * 16 * 2 + 8 * 16 * 2) == cudaSuccess);
    wgmma_kernel<<<1, 128, 4096>>>(reinterpret_cast<float*>(d), ab, ab + 64 * 16, false);
  }
  if (!std::strcmp(what, "mbar_uninit")) mbar_uninit_kernel<<<1, 1>>>();
  if (!std::strcmp(what, "named_leftover")) named_leftover_kernel<<<1, 64>>>();
  if (!std::strcmp(what, "named_deadlock")) named_deadlock_kernel<<<1, 64>>>();
  if (!std::strcmp(what, "bulk_misaligned")) bulk_kernel<<<1, 32, 128>>>(d + 16, d, 2);
  if (!std::strcmp(what, "cluster_exited")) {
    CHECK(cudaMemset(d, 0, sizeof(int)) == cudaSuccess);
    launch_cluster(cluster_exited_kernel, 2, 64, 64, 2, d);
  }
  if (!std::strcmp(what, "cluster_static")) launch_cluster(cluster_static_kernel, 2, 32, 0, 2, d);
  if (!std::strcmp(what, "cluster_grid")) launch_cluster(cluster_static_kernel, 3, 32, 0, 2, d);
  if (!std::strcmp(what, "cooperative_deadlock")) launch_cooperative(turn_deadlock_kernel, 2, 32, d);
  if (!std::strcmp(what, "cooperative_size")) launch_cooperative(turn_deadlock_kernel, 1000, 1024, d);
  if (!std::strcmp(what, "cooperative_cluster")) launch_cooperative(cooperative_rank_kernel, 2, 32, d);
  if (!std::strcmp(what, "bulk_unwaited")) {
    float* t = nullptr;
    CHECK(cudaMalloc(&t, 2 * 20 * 64 * sizeof(float)) == cudaSuccess);
    reduce_kernel<<<1, 64, 8192>>>(make_reduce_map(t), 2);
  }
  if (!std::strcmp(what, "warp_priority_list")) {  // not a list of warps
    setenv("EMBER_EMU_WARP_PRIORITY", "2,x", 1);
    warp_order_kernel<<<1, 96>>>(d);
  }
  if (!std::strcmp(what, "wgmma_refill")) {
    uint16_t* src = nullptr;
    CHECK(cudaMalloc(&src, 64 * 8 * 2) == cudaSuccess);
    wgmma_refill_kernel<<<1, 128, 12288>>>(make_map(src, 64, 8, 8));
  }
}
#endif

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
#if defined(EMBER_CUDA_EMU)
    hopper_misuse(what, d);
#endif
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
#if defined(EMBER_CUDA_EMU)
  hopper_checks();
#endif
  std::printf("cuda_emu selftest: all passed\n");
  return 0;
}
