// cuda_emu: the CUDA runtime and device language, emulated on the CPU (see tools/cuda_emu/README.md).
//
// Shadows the toolkit's cuda_runtime.h when tools/cuda_emu/include comes first on the include
// path. Kernels compile as plain C++; a launch (rewritten from name<<<...>>>(args) by
// rewrite_launches.py) runs the grid block by block, each thread of a block a fiber on one OS
// thread, so __syncthreads and the warp collectives are real barriers. Everything that switches
// fibers is out of line (src/emu_runtime.cpp), so the compiler reloads threadIdx & co. after it.
#pragma once

#include <math.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

#define EMBER_CUDA_EMU 1

// ---- execution-space and storage qualifiers ----
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// rewrite_launches.py turns every `__shared__ T x;` into a registered static (poisoned per block,
// counted against the limit); this fallback only keeps an unrewritten header compiling.
#define __shared__ static
#define __constant__ static
#define __managed__
#define __grid_constant__

// ---- vector types ----
struct uint3 {
  unsigned int x, y, z;
};
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};
struct __attribute__((aligned(8))) float2 { float x, y; };
struct __attribute__((aligned(16))) float4 { float x, y, z, w; };
struct __attribute__((aligned(16))) double2 { double x, y; };
struct __attribute__((aligned(8))) int2 { int x, y; };
struct __attribute__((aligned(16))) int4 { int x, y, z, w; };
struct __attribute__((aligned(8))) uint2 { unsigned int x, y; };
struct __attribute__((aligned(16))) uint4 { unsigned int x, y, z, w; };
struct __attribute__((aligned(16))) longlong2 { long long x, y; };
struct __attribute__((aligned(16))) ulonglong2 { unsigned long long x, y; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline double2 make_double2(double x, double y) { return {x, y}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return {x, y, z}; }

// ---- the built-in variables: set by the emulator before it resumes each thread ----
inline uint3 threadIdx;
inline uint3 blockIdx;
inline dim3 blockDim;
inline dim3 gridDim;
constexpr int warpSize = 32;

// ---- runtime types ----
enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidSymbol = 13,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInsufficientDriver = 35,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorLaunchFailure = 719,
};
typedef enum cudaError cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxBlockDimX = 2,
  cudaDevAttrMaxBlockDimY = 3,
  cudaDevAttrMaxBlockDimZ = 4,
  cudaDevAttrMaxGridDimX = 5,
  cudaDevAttrMaxGridDimY = 6,
  cudaDevAttrMaxGridDimZ = 7,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrTotalConstantMemory = 9,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMaxRegistersPerBlock = 12,
  cudaDevAttrClockRate = 13,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrMaxThreadsPerMultiProcessor = 39,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerMultiprocessor = 81,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};

enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9,
};

enum cudaMemoryType {
  cudaMemoryTypeUnregistered = 0,
  cudaMemoryTypeHost = 1,
  cudaMemoryTypeDevice = 2,
  cudaMemoryTypeManaged = 3,
};

struct cudaPointerAttributes {
  enum cudaMemoryType type;
  int device;
  void* devicePointer;
  void* hostPointer;
};

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  int regsPerBlock;
  int warpSize;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  size_t totalConstMem;
  int major;
  int minor;
  int multiProcessorCount;
  int maxThreadsPerMultiProcessor;
  size_t sharedMemPerMultiprocessor;
  size_t sharedMemPerBlockOptin;
  int regsPerMultiprocessor;
  int l2CacheSize;
  int memoryBusWidth;
};

typedef struct CUstream_st* cudaStream_t;
typedef struct CUevent_st* cudaEvent_t;

#define cudaStreamDefault 0x00u
#define cudaStreamNonBlocking 0x01u
#define cudaStreamLegacy ((cudaStream_t)0x1)
#define cudaStreamPerThread ((cudaStream_t)0x2)
#define cudaEventDefault 0x00u
#define cudaEventBlockingSync 0x01u
#define cudaEventDisableTiming 0x02u

// ---- the runtime API (src/emu_runtime.cpp) ----
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorName(cudaError_t err);
const char* cudaGetErrorString(cudaError_t err);

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaDeviceReset();
cudaError_t cudaDeviceGetAttribute(int* value, enum cudaDeviceAttr attr, int device);
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetStreamPriorityRange(int* least, int* greatest);
cudaError_t cudaDeviceCanAccessPeer(int* can, int device, int peer);
cudaError_t cudaDeviceEnablePeerAccess(int peer, unsigned int flags);
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);

cudaError_t cudaMalloc(void** ptr, size_t size);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMallocHost(void** ptr, size_t size);
#define cudaHostAllocDefault 0x00u
/// Page-locked host memory: plain host memory here (flags must be cudaHostAllocDefault).
cudaError_t cudaHostAlloc(void** ptr, size_t size, unsigned int flags);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind,
                            cudaStream_t stream = 0);
cudaError_t cudaMemcpyPeer(void* dst, int dst_device, const void* src, int src_device, size_t count);
cudaError_t cudaMemcpyPeerAsync(void* dst, int dst_device, const void* src, int src_device,
                                size_t count, cudaStream_t stream = 0);
cudaError_t cudaMemset(void* dst, int value, size_t count);
cudaError_t cudaMemsetAsync(void* dst, int value, size_t count, cudaStream_t stream = 0);
cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes* attributes, const void* ptr);

cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags);
cudaError_t cudaStreamCreateWithPriority(cudaStream_t* stream, unsigned int flags, int priority);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags = 0);

cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = 0);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

cudaError_t cudaFuncSetAttribute(const void* func, enum cudaFuncAttribute attr, int value);
template <class T>
cudaError_t cudaMalloc(T** ptr, size_t size) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), size);
}
template <class R, class... P>
cudaError_t cudaFuncSetAttribute(R (*func)(P...), enum cudaFuncAttribute attr, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(func), attr, value);
}

// ---- the emulator's interface to the device code ----
namespace ember_emu {

/// The block barrier (__syncthreads): aborts if a thread of the block has exited or threads wait
/// at different barriers.
void syncthreads(const char* file, int line);
int syncthreads_count(int predicate, const char* file, int line);

enum class WarpOp : int { kSync, kShflIdx, kShflUp, kShflDown, kShflXor, kBallot, kAny, kAll };
/// One warp collective: every lane of `mask` must arrive with the same op and mask.
uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t value, int param, int width,
                         const char* what);
unsigned active_mask();

/// Registers a __shared__ variable at its declaration: the first thread of a block to reach it
/// poisons it (0xFF bytes) and counts it against the 48 KiB static limit.
void shared_var(void* p, size_t bytes);
/// The launch's dynamic shared memory (extern __shared__), poisoned per block.
void* dynamic_shared();

/// True when [p, p + bytes) lies inside one cudaMalloc allocation.
bool is_device_range(const void* p, size_t bytes);
/// Aborts with `what` unless [p, p + bytes) is device memory (bytes == 0: any pointer).
void require_device_range(const void* p, size_t bytes, const char* what);
[[noreturn]] void fatal(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

struct LaunchConfig {
  const char* name;
  const void* kernel;
  dim3 grid, block;
  size_t shmem;
  cudaStream_t stream;
  dim3 cluster{1, 1, 1};  // thread-block cluster (cudaLaunchKernelEx's attribute)
  bool cooperative = false;  // cudaLaunchAttributeCooperative: the whole grid resident at once
};
/// What the program asked of the emulated GPU since start-up: kernel launches, and host waits
/// (cudaStreamSynchronize, cudaEventSynchronize, cudaDeviceSynchronize, and a synchronous
/// cudaMemcpy from device memory: each point where a real host would wait for the GPU). Tests
/// count them around a training step (tests/cuda/test_cuda_training.cpp).
struct Counts {
  unsigned long long launches = 0, host_waits = 0;
};
Counts counts();

using ThreadEntry = void (*)(void* ctx);
/// Runs the grid: entry(ctx) once per thread, as a fiber.
void run_kernel(const LaunchConfig& config, ThreadEntry entry, void* ctx);
void check_kernel_pointer(const char* kernel, int index, const void* p);

/// A launch: the arguments are copied once (by value, as a launch does), pointer arguments must be
/// device memory, and each thread calls the kernel with its own copies.
template <class K>
class Launcher {
 public:
  Launcher(const char* name, K kernel, dim3 grid, dim3 block, size_t shmem, cudaStream_t stream,
           dim3 cluster = dim3(1, 1, 1), bool cooperative = false)
      : kernel_(kernel), config_{name, nullptr, grid, block, shmem, stream, cluster, cooperative} {}

  template <class... A>
  void operator()(A&&... args) const {
    using Tuple = std::tuple<std::decay_t<A>...>;
    Tuple captured{std::forward<A>(args)...};
    check_pointers(captured, std::index_sequence_for<A...>{});
    struct Ctx {
      const K* kernel;
      Tuple* args;
    } ctx{&kernel_, &captured};
    run_kernel(config_, [](void* c) {
      Ctx* x = static_cast<Ctx*>(c);
      std::apply([x](const auto&... a) { (*x->kernel)(a...); }, *x->args);
    }, &ctx);
  }

 private:
  template <class Tuple, size_t... I>
  void check_pointers(const Tuple& t, std::index_sequence<I...>) const {
    (check_one(static_cast<int>(I), std::get<I>(t)), ...);
  }
  template <class T>
  void check_one(int index, const T& v) const {
    if constexpr (std::is_pointer_v<T>) check_kernel_pointer(config_.name, index, static_cast<const void*>(v));
  }

  K kernel_;
  LaunchConfig config_;
};

template <class K>
Launcher<K> launch(const char* name, K kernel, dim3 grid, dim3 block, size_t shmem = 0,
                   cudaStream_t stream = 0) {
  return Launcher<K>(name, kernel, grid, block, shmem, stream);
}

}  // namespace ember_emu

// ---- cudaLaunchKernelEx (the C++ template form) with a cluster dimension or cooperative ----
enum cudaLaunchAttributeID {
  cudaLaunchAttributeIgnore = 0,
  cudaLaunchAttributeCooperative = 2,
  cudaLaunchAttributeClusterDimension = 4,
};
union cudaLaunchAttributeValue {
  char pad[64];
  int cooperative;
  struct {
    unsigned int x, y, z;
  } clusterDim;
};
struct cudaLaunchAttribute {
  cudaLaunchAttributeID id;
  cudaLaunchAttributeValue val;
};
struct cudaLaunchConfig_t {
  dim3 gridDim, blockDim;
  size_t dynamicSmemBytes;
  cudaStream_t stream;
  cudaLaunchAttribute* attrs;
  unsigned int numAttrs;
};
template <class... Exp, class... Act>
cudaError_t cudaLaunchKernelEx(const cudaLaunchConfig_t* config, void (*kernel)(Exp...),
                               Act&&... args) {
  dim3 cluster(1, 1, 1);
  bool cooperative = false;
  for (unsigned i = 0; i < config->numAttrs; ++i) {
    const cudaLaunchAttribute& a = config->attrs[i];
    if (a.id == cudaLaunchAttributeClusterDimension)
      cluster = dim3(a.val.clusterDim.x, a.val.clusterDim.y, a.val.clusterDim.z);
    else if (a.id == cudaLaunchAttributeCooperative)
      cooperative = a.val.cooperative != 0;
    else if (a.id != cudaLaunchAttributeIgnore)
      ember_emu::fatal("cudaLaunchKernelEx: launch attribute %d is not emulated", static_cast<int>(a.id));
  }
  ember_emu::Launcher<void (*)(Exp...)>("cudaLaunchKernelEx", kernel, config->gridDim,
                                        config->blockDim, config->dynamicSmemBytes,
                                        config->stream, cluster,
                                        cooperative)(static_cast<Exp>(args)...);
  return cudaSuccess;
}
namespace ember_emu {
/// Clusters of `size` blocks with `shmem` bytes of dynamic shared memory each that the emulated
/// GPU runs at once: one block per SM when it fits the opt-in limit, else 0.
int max_active_clusters(size_t shmem, unsigned size);
}  // namespace ember_emu
/// ember_emu::max_active_clusters for the config's cluster dimension and shared memory.
template <class... Exp>
cudaError_t cudaOccupancyMaxActiveClusters(int* clusters, void (*)(Exp...),
                                           const cudaLaunchConfig_t* config) {
  unsigned size = 1;
  for (unsigned i = 0; i < config->numAttrs; ++i)
    if (config->attrs[i].id == cudaLaunchAttributeClusterDimension)
      size = config->attrs[i].val.clusterDim.x * config->attrs[i].val.clusterDim.y *
             config->attrs[i].val.clusterDim.z;
  *clusters = ember_emu::max_active_clusters(config->dynamicSmemBytes, size);
  return cudaSuccess;
}

namespace ember_emu {

// ---- Hopper's asynchronous units (sm_90a), emulated for src/cuda/mma.cuh and tma.cuh ----
// Shared-memory addresses (__cvta_generic_to_shared) exist for the launch's dynamic shared memory:
// offsets from the 1024-byte boundary at or below its start, so an address has the same low 10
// bits as the pointer (the swizzle patterns are functions of the address bits).
uint32_t shared_address(const void* p);
void* shared_pointer(uint32_t address, size_t bytes);
/// A thread polling (an mbarrier's phase) lets the other threads of the block run; a round of the
/// block in which every thread polls or waits and no mbarrier changes is reported as a deadlock.
void spin_yield(const char* what);
/// After a release store to global memory (tma::flag_set): the thread stops and the round starts
/// over, so the threads polling the flag (in any block) run before it goes on: the adversarial
/// order for a hand-off published before the work it covers is done.
void release_yield();
/// mbarrier: init (expected arrivals), arrive (+ tx bytes expected), complete_tx, and whether
/// the phase of the given parity has completed. The state lives beside the 8 shared bytes;
/// using a barrier before its init (in this block) aborts.
/// Named barrier `id` (1-15) of `count` threads: bar.sync (wait) or bar.arrive; the phase
/// completes at `count` arrivals. A block that ends with arrivals pending aborts.
void named_barrier(int id, int count, bool wait);
void mbar_init(void* bar, uint32_t count);
void mbar_arrive(void* bar, uint32_t expect_tx_bytes);
bool mbar_test_parity(void* bar, uint32_t parity);
/// cp.async.bulk.tensor: the box of `tmap` at coords (innermost first; rank of the map) into
/// shared memory at dst, swizzled as the map says, out-of-bounds elements zero; then complete_tx
/// of the box's bytes on bar. Reads global memory at the call; lands (writes shared memory,
/// completes on bar) when a thread polls bar (mbar_test_parity), so reads before the wait see
/// the old bytes. A block ending with a copy in flight aborts.
void tma_load(void* dst, const void* tmap, const int32_t* coords, void* bar);
/// cp.reduce.async.bulk.tensor .add (4-byte elements: float32): the box of `tmap` at coords
/// += the box as tma_load would have written it at shared src (out-of-bounds elements skipped),
/// in the calling thread's next bulk group. The shared memory is read through the async proxy's
/// view (what fence.proxy.async published) as late as the model allows, at the bulk_wait that
/// covers it, and global memory is written at the bulk_wait without .read that covers it: a
/// buffer written again before bulk_wait(.read), or a sum used before bulk_wait, shows. A block
/// ending with such an operation not waited for aborts.
void tma_reduce_add(const void* src, const void* tmap, const int32_t* coords);
/// cp.async.bulk.commit_group and cp.async.bulk.wait_group{.read} (at most `pending` groups
/// left; read: only their reads of shared memory done).
void bulk_commit();
void bulk_wait(int pending, bool read);
/// cp.async.bulk (no tensor map): `bytes` (a multiple of 16) from global src to shared dst (both
/// 16-byte aligned), then complete_tx of them on bar. Lands as tma_load's copies do.
void bulk_load(void* dst, const void* src, uint32_t bytes, void* bar);
/// wgmma.mma_async (operands from shared memory, K-major or transposed per trans_*; or A from
/// registers when a_regs: a_frag, this thread's 4 registers of the warp's 16 x 16 slice in
/// mma.m16n8k16's A layout): queued per thread and run at the wgmma.wait_group that retires its
/// group, reading shared memory then (as the hardware reads it asynchronously), so a stage
/// overwritten before the wait gives wrong results here too. d: this thread's n / 2 float
/// accumulators (m64nNk16).
struct WgmmaOp {
  float* d;
  int n;
  uint64_t desc_a, desc_b;
  bool bf16;  // else fp16
  bool scale_d;
  bool trans_a, trans_b;
  bool a_regs = false;
  uint32_t a_frag[4] = {0, 0, 0, 0};
};
void wgmma_issue(const WgmmaOp& op);
/// fence.proxy.async: the block's shared-memory writes through the generic proxy (stores,
/// cp.async) so far become visible to the async proxy. wgmma reads its shared operands as the
/// async proxy sees them: an operand byte written after the block's last fence (or while the
/// wgmma was in flight) aborts. (Lenient: any thread's fence publishes every thread's writes.)
void fence_proxy_async();
/// A write of shared memory by an asynchronous copy (cp.async): aborts, as TMA's copies do, when a
/// wgmma that reads those bytes has been issued and not yet retired.
void shared_write(const void* p, size_t bytes, const char* writer);
/// cp.async.cg of 16 bytes (the first src_bytes read from global memory at the call, the rest
/// zeros), landing in shared memory only when a cp.async.wait_group retires its group (or the
/// thread exits): shared memory read before the wait still holds its old (poisoned) bytes.
void cp_async(void* dst, const void* src, int src_bytes);
void cp_async_commit();
void cp_async_wait(int pending);
void wgmma_commit();
void wgmma_wait(int pending);

// Thread-block clusters (a launch by cudaLaunchKernelEx with cudaLaunchAttributeClusterDimension):
// the blocks of a cluster run together, each with its own dynamic shared memory (static
// __shared__ variables abort), and reach each other's:
/// %cluster_ctarank and %cluster_nctarank.
int cluster_ctarank();
int cluster_nctarank();
/// barrier.cluster.arrive / .wait: the phase completes when every thread of the cluster has
/// arrived; a thread exiting while others wait aborts, as does a wait without an arrival.
void cluster_arrive();
void cluster_wait();
/// mapa: p (in the calling block's dynamic shared memory) at the same offset in block `rank` of
/// the cluster; mbar_arrive on the result is a remote arrival (mbarrier.arrive.shared::cluster).
/// Reaching a block whose threads have all exited aborts.
void* map_shared_rank(const void* p, int rank);
/// cp.async.bulk.tensor .multicast::cluster: the box into the same shared offset dst of every
/// block of the cluster in `mask` (bit r: rank r), each completing its bytes on its own
/// mbarrier at bar's offset.
void tma_load_multicast(void* dst, const void* tmap, const int32_t* coords, void* bar,
                        uint16_t mask);

template <class T>
uint64_t to_bits(const T& v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "cuda_emu: shuffle of a type over 8 bytes");
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <class T>
T from_bits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}

}  // namespace ember_emu

inline size_t __cvta_generic_to_shared(const void* p) { return ::ember_emu::shared_address(p); }

// ---- synchronization ----
#define __syncthreads() ::ember_emu::syncthreads(__FILE__, __LINE__)
#define __syncthreads_count(p) ::ember_emu::syncthreads_count((p) ? 1 : 0, __FILE__, __LINE__)
#define __syncthreads_or(p) (::ember_emu::syncthreads_count((p) ? 1 : 0, __FILE__, __LINE__) != 0)
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  (void)::ember_emu::warp_collective(::ember_emu::WarpOp::kSync, mask, 0, 0, 32, "__syncwarp");
}
inline void __threadfence() { __atomic_signal_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_signal_fence(__ATOMIC_SEQ_CST); }
inline unsigned __activemask() { return ::ember_emu::active_mask(); }

// ---- warp collectives ----
template <class T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32) {
  return ember_emu::from_bits<T>(ember_emu::warp_collective(
      ember_emu::WarpOp::kShflIdx, mask, ember_emu::to_bits(var), src_lane, width, "__shfl_sync"));
}
template <class T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32) {
  return ember_emu::from_bits<T>(ember_emu::warp_collective(ember_emu::WarpOp::kShflUp, mask,
      ember_emu::to_bits(var), static_cast<int>(delta), width, "__shfl_up_sync"));
}
template <class T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32) {
  return ember_emu::from_bits<T>(ember_emu::warp_collective(ember_emu::WarpOp::kShflDown, mask,
      ember_emu::to_bits(var), static_cast<int>(delta), width, "__shfl_down_sync"));
}
template <class T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32) {
  return ember_emu::from_bits<T>(ember_emu::warp_collective(ember_emu::WarpOp::kShflXor, mask,
      ember_emu::to_bits(var), lane_mask, width, "__shfl_xor_sync"));
}
inline unsigned __ballot_sync(unsigned mask, int predicate) {
  return static_cast<unsigned>(ember_emu::warp_collective(ember_emu::WarpOp::kBallot, mask,
                                                          predicate != 0, 0, 32, "__ballot_sync"));
}
inline int __any_sync(unsigned mask, int predicate) {
  return static_cast<int>(ember_emu::warp_collective(ember_emu::WarpOp::kAny, mask, predicate != 0,
                                                     0, 32, "__any_sync"));
}
inline int __all_sync(unsigned mask, int predicate) {
  return static_cast<int>(ember_emu::warp_collective(ember_emu::WarpOp::kAll, mask, predicate != 0,
                                                     0, 32, "__all_sync"));
}

// ---- atomics (one OS thread runs every fiber and switches only at barriers: plain RMW is atomic) ----
#define EMBER_EMU_ATOMIC_RMW(name, T, expr) \
  inline T name(T* address, T val) {      \
    T old = *address;                     \
    *address = (expr);                    \
    return old;                           \
  }
EMBER_EMU_ATOMIC_RMW(atomicAdd, int, old + val)
EMBER_EMU_ATOMIC_RMW(atomicAdd, unsigned int, old + val)
EMBER_EMU_ATOMIC_RMW(atomicAdd, unsigned long long, old + val)
EMBER_EMU_ATOMIC_RMW(atomicAdd, float, old + val)
EMBER_EMU_ATOMIC_RMW(atomicAdd, double, old + val)
EMBER_EMU_ATOMIC_RMW(atomicSub, int, old - val)
EMBER_EMU_ATOMIC_RMW(atomicSub, unsigned int, old - val)
EMBER_EMU_ATOMIC_RMW(atomicExch, int, val)
EMBER_EMU_ATOMIC_RMW(atomicExch, unsigned int, val)
EMBER_EMU_ATOMIC_RMW(atomicExch, unsigned long long, val)
EMBER_EMU_ATOMIC_RMW(atomicExch, float, val)
EMBER_EMU_ATOMIC_RMW(atomicMin, int, val < old ? val : old)
EMBER_EMU_ATOMIC_RMW(atomicMin, unsigned int, val < old ? val : old)
EMBER_EMU_ATOMIC_RMW(atomicMin, long long, val < old ? val : old)
EMBER_EMU_ATOMIC_RMW(atomicMin, unsigned long long, val < old ? val : old)
EMBER_EMU_ATOMIC_RMW(atomicMax, int, val > old ? val : old)
EMBER_EMU_ATOMIC_RMW(atomicMax, unsigned int, val > old ? val : old)
EMBER_EMU_ATOMIC_RMW(atomicMax, long long, val > old ? val : old)
EMBER_EMU_ATOMIC_RMW(atomicMax, unsigned long long, val > old ? val : old)
EMBER_EMU_ATOMIC_RMW(atomicAnd, int, old & val)
EMBER_EMU_ATOMIC_RMW(atomicAnd, unsigned int, old & val)
EMBER_EMU_ATOMIC_RMW(atomicAnd, unsigned long long, old & val)
EMBER_EMU_ATOMIC_RMW(atomicOr, int, old | val)
EMBER_EMU_ATOMIC_RMW(atomicOr, unsigned int, old | val)
EMBER_EMU_ATOMIC_RMW(atomicOr, unsigned long long, old | val)
EMBER_EMU_ATOMIC_RMW(atomicXor, int, old ^ val)
EMBER_EMU_ATOMIC_RMW(atomicXor, unsigned int, old ^ val)
EMBER_EMU_ATOMIC_RMW(atomicXor, unsigned long long, old ^ val)
EMBER_EMU_ATOMIC_RMW(atomicInc, unsigned int, old >= val ? 0u : old + 1u)
EMBER_EMU_ATOMIC_RMW(atomicDec, unsigned int, (old == 0u || old > val) ? val : old - 1u)
#undef EMBER_EMU_ATOMIC_RMW
#define EMBER_EMU_ATOMIC_CAS(T)                          \
  inline T atomicCAS(T* address, T compare, T val) {     \
    T old = *address;                                    \
    if (old == compare) *address = val;                  \
    return old;                                          \
  }
EMBER_EMU_ATOMIC_CAS(int)
EMBER_EMU_ATOMIC_CAS(unsigned int)
EMBER_EMU_ATOMIC_CAS(unsigned long long)
EMBER_EMU_ATOMIC_CAS(unsigned short)
#undef EMBER_EMU_ATOMIC_CAS

// ---- bit reinterpretation and integer intrinsics ----
inline unsigned int __float_as_uint(float x) { return ember_emu::from_bits<unsigned int>(ember_emu::to_bits(x)); }
inline int __float_as_int(float x) { return ember_emu::from_bits<int>(ember_emu::to_bits(x)); }
inline float __uint_as_float(unsigned int x) { return ember_emu::from_bits<float>(ember_emu::to_bits(x)); }
inline float __int_as_float(int x) { return ember_emu::from_bits<float>(ember_emu::to_bits(x)); }
inline long long __double_as_longlong(double x) { return ember_emu::from_bits<long long>(ember_emu::to_bits(x)); }
inline double __longlong_as_double(long long x) { return ember_emu::from_bits<double>(ember_emu::to_bits(x)); }
inline int __double2hiint(double x) { return static_cast<int>(static_cast<unsigned long long>(__double_as_longlong(x)) >> 32); }
inline int __double2loint(double x) { return static_cast<int>(static_cast<unsigned long long>(__double_as_longlong(x)) & 0xffffffffull); }
inline double __hiloint2double(int hi, int lo) {
  return __longlong_as_double(static_cast<long long>((static_cast<unsigned long long>(static_cast<unsigned>(hi)) << 32) |
                                                     static_cast<unsigned>(lo)));
}
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x)); }
inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
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
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return static_cast<unsigned long long>((static_cast<unsigned __int128>(a) * b) >> 64);
}
inline int __mulhi(int a, int b) { return static_cast<int>((static_cast<long long>(a) * b) >> 32); }
inline long long __mul64hi(long long a, long long b) {
  return static_cast<long long>((static_cast<__int128>(a) * b) >> 64);
}
template <class T>
T __ldg(const T* p) {
  return *p;
}
inline long long clock64() { return static_cast<long long>(__builtin_ia32_rdtsc()); }
inline void __nanosleep(unsigned) {}

// ---- IEEE round-to-nearest arithmetic (the emulated sources compile with -ffp-contract=off) ----
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __frcp_rn(float a) { return 1.0f / a; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __drcp_rn(double a) { return 1.0 / a; }
inline double __dsqrt_rn(double a) { return std::sqrt(a); }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }

// ---- math: CUDA's device math library, mapped to the C library (results differ by a few ulp) ----
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float rcbrtf(float x) { return 1.0f / std::cbrt(x); }
inline double rcbrt(double x) { return 1.0 / std::cbrt(x); }
inline float exp10f(float x) { return std::pow(10.0f, x); }
inline double exp10(double x) { return std::pow(10.0, x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __log2f(float x) { return std::log2(x); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __tanf(float x) { return std::tan(x); }
inline float __powf(float x, float y) { return std::pow(x, y); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : (x == x ? x : 0.0f)); }
inline void sincosf(float x, float* s, float* c) { *s = std::sin(x), *c = std::cos(x); }
inline void sincos(double x, double* s, double* c) { *s = std::sin(x), *c = std::cos(x); }
inline float normcdff(float x) { return 0.5f * std::erfc(-x * 0.70710678118654752f); }
inline double normcdf(double x) { return 0.5 * std::erfc(-x * 0.70710678118654752440); }
// CUDA's integer and float min/max overloads in the global namespace
inline int min(int a, int b) { return a < b ? a : b; }
inline unsigned int min(unsigned int a, unsigned int b) { return a < b ? a : b; }
inline long min(long a, long b) { return a < b ? a : b; }
inline unsigned long min(unsigned long a, unsigned long b) { return a < b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline float min(float a, float b) { return std::fmin(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned int max(unsigned int a, unsigned int b) { return a > b ? a : b; }
inline long max(long a, long b) { return a > b ? a : b; }
inline unsigned long max(unsigned long a, unsigned long b) { return a > b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline float max(float a, float b) { return std::fmax(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }
