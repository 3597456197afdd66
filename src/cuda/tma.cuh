// Hopper's Tensor Memory Accelerator and transaction barriers (PTX, sm_90), for the
// warp-specialised kernels (gemm_tc.cu's configuration 3):
//   encode_tensor_map   (host) a tiled CUtensorMap of a rank-3 (inner, rows, batch) tensor of
//                       16-bit elements with the 128-byte swizzle wgmma's smem_desc_sw128 reads,
//                       kept in a per-thread cache keyed by everything it encodes
//   mbar_init / mbar_arrive / mbar_arrive_expect_tx / mbar_wait   mbarrier objects in shared
//                       memory (64-bit): arrival counts plus expected transaction bytes; a phase
//                       completes when both reach zero; mbar_wait(bar, parity) returns once the
//                       phase of that parity has completed (a fresh barrier counts its "previous"
//                       phase, parity 1, as completed); it traps after 20 s on one phase
//   load_3d / load_4d   cp.async.bulk.tensor: one box of the tensor map into shared memory,
//                       completing its bytes on an mbarrier; out-of-bounds elements are zeros
//   load_bulk           cp.async.bulk: contiguous bytes (16-byte units) likewise
//   reduce_add_box / bulk_commit / bulk_wait   cp.reduce.async.bulk.tensor:
//                       a box in shared memory added into global memory, in bulk groups
//   setmaxnreg          move registers between a block's warpgroups (producer -> consumers)
//   named_barrier       bar.sync / bar.arrive on barriers 1-15 (warpgroups' turns)
//   cluster_ctarank / cluster_sync / mbar_arrive_cluster / load_3d_multicast   thread-block
//                       clusters: the block's rank, a barrier of every thread of the cluster, an
//                       arrival on the mbarrier at the same offset in another block of the
//                       cluster, a box written to the same offset in several blocks' shared
//                       memory (each completing its bytes on its own mbarrier at bar's offset)
//   flag_wait / flag_set   ordered hand-offs between the blocks of a cooperative launch
//                       through a counter in global memory
// Under the CPU emulator (EMBER_CUDA_EMULATED) these are the emulator's models (ember_emu::):
// the copy runs at the call, the barrier state is kept beside the 8 bytes, and a thread polling
// a barrier lets the other threads run (a poll that can never succeed is reported as deadlock).
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <map>
#include <tuple>

namespace ember::cuda::tma {

#if defined(__CUDA_ARCH_FEAT_SM90_ALL) || defined(EMBER_CUDA_EMULATED)
__device__ inline void mbar_init(uint64_t* bar, uint32_t count) {
#if defined(EMBER_CUDA_EMULATED)
  ::ember_emu::mbar_init(bar, count);
#else
  const auto a = static_cast<uint32_t>(__cvta_generic_to_shared(bar));
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(a), "r"(count) : "memory");
#endif
}

/// Makes the initialised barriers visible to the other threads and to the async proxy (TMA);
/// a __syncthreads follows.
__device__ inline void fence_barrier_init() {
#if !defined(EMBER_CUDA_EMULATED)
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

__device__ inline void mbar_arrive(uint64_t* bar) {
#if defined(EMBER_CUDA_EMULATED)
  ::ember_emu::mbar_arrive(bar, 0);
#else
  const auto a = static_cast<uint32_t>(__cvta_generic_to_shared(bar));
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(a) : "memory");
#endif
}

/// Arrives and adds `bytes` to the transaction bytes the current phase waits for.
__device__ inline void mbar_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
#if defined(EMBER_CUDA_EMULATED)
  ::ember_emu::mbar_arrive(bar, bytes);
#else
  const auto a = static_cast<uint32_t>(__cvta_generic_to_shared(bar));
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(a), "r"(bytes)
               : "memory");
#endif
}

/// How long mbar_wait polls one phase before it traps: far beyond any wait of a working pipeline,
/// compute-sanitizer's slowdown included.
constexpr uint64_t kMbarWaitLimitNs = 20'000'000'000;

#if !defined(EMBER_CUDA_EMULATED)
/// For a polling loop: true once kMbarWaitLimitNs have passed since the first call (start 0 on
/// entry; the first call records the time). A wait that never ends is a protocol bug: the caller
/// traps (the launch fails with an error) rather than hang the GPU until someone kills the process.
__device__ inline bool poll_expired(uint64_t& start) {
  uint64_t now;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  if (start == 0) {
    start = now;
    return false;
  }
  return now - start > kMbarWaitLimitNs;
}
#endif

/// Returns once the phase of parity `parity` has completed (traps after kMbarWaitLimitNs).
/// kCluster: with acquire semantics at cluster scope, for a barrier other blocks of the cluster
/// arrive on (mbar_arrive_cluster).
template <bool kCluster = false>
__device__ inline void mbar_wait(uint64_t* bar, uint32_t parity) {
#if defined(EMBER_CUDA_EMULATED)
  while (!::ember_emu::mbar_test_parity(bar, parity)) ::ember_emu::spin_yield("an mbarrier");
#else
  const auto a = static_cast<uint32_t>(__cvta_generic_to_shared(bar));
  uint64_t start = 0;
  for (;;) {
    uint32_t done = 0;
    if constexpr (kCluster)
      asm volatile(
          "{\n.reg .pred p;\nmbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 p, [%1], "
          "%2;\nselp.u32 %0, 1, 0, p;\n}\n"
          : "=r"(done)
          : "r"(a), "r"(parity)
          : "memory");
    else
      asm volatile(
          "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
          "selp.u32 %0, 1, 0, p;\n}\n"
          : "=r"(done)
          : "r"(a), "r"(parity)
          : "memory");
    if (done) return;
    if (poll_expired(start)) __trap();
  }
#endif
}

/// Named barrier `id` (1-15; 0 is __syncthreads) of `count` threads (a multiple of 32): with
/// `wait` arrives and waits until `count` threads have arrived (bar.sync), else only arrives
/// (bar.arrive). Lets warpgroups take turns (FA3's ping-pong) without stopping the whole block.
__device__ inline void named_barrier(int id, int count, bool wait) {
#if defined(EMBER_CUDA_EMULATED)
  ::ember_emu::named_barrier(id, count, wait);
#else
  if (wait)
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(count) : "memory");
  else
    asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(count) : "memory");
#endif
}

/// setmaxnreg: every warp of the calling warpgroup owns at most N registers per thread from here
/// (kInc false: gives the rest back to the block's pool; true: waits until the pool has them).
/// Lets a warp-specialised kernel move registers from its producer to its consumers; N a
/// multiple of 8 in [24, 256]. The emulator has no register file: a no-op there.
template <int N, bool kInc>
__device__ inline void setmaxnreg() {
  static_assert(N % 8 == 0 && N >= 24 && N <= 256, "setmaxnreg: a multiple of 8 in [24, 256]");
#if !defined(EMBER_CUDA_EMULATED)
  if constexpr (kInc)
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
  else
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}

/// The box of `map` at coordinates c (innermost first; the map's rank, 3 or 4) into shared memory
/// at dst (128-byte aligned; 1024 for the 128-byte swizzle to match smem_desc_sw128), its bytes
/// completing on bar.
template <int kRank>
__device__ inline void load_box(void* dst, const CUtensorMap* map, const int32_t (&c)[kRank],
                                uint64_t* bar) {
  static_assert(kRank == 3 || kRank == 4, "load_box: rank 3 or 4");
#if defined(EMBER_CUDA_EMULATED)
  ::ember_emu::tma_load(dst, map, c, bar);
#else
  const auto d = static_cast<uint32_t>(__cvta_generic_to_shared(dst));
  const auto b = static_cast<uint32_t>(__cvta_generic_to_shared(bar));
  const auto m = reinterpret_cast<uint64_t>(map);
  if constexpr (kRank == 3)
    asm volatile(
        "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
        " [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(d),
        "l"(m), "r"(c[0]), "r"(c[1]), "r"(c[2]), "r"(b)
        : "memory");
  else
    asm volatile(
        "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
        " [%0], [%1, {%2, %3, %4, %5}], [%6];\n" ::"r"(d),
        "l"(m), "r"(c[0]), "r"(c[1]), "r"(c[2]), "r"(c[3]), "r"(b)
        : "memory");
#endif
}
__device__ inline void load_3d(void* dst, const CUtensorMap* map, int32_t c0, int32_t c1,
                               int32_t c2, uint64_t* bar) {
  load_box<3>(dst, map, {c0, c1, c2}, bar);
}

// ---- thread-block clusters ----

/// This block's rank in its cluster (%cluster_ctarank; 0 without a cluster).
__device__ inline uint32_t cluster_ctarank() {
#if defined(EMBER_CUDA_EMULATED)
  return static_cast<uint32_t>(::ember_emu::cluster_ctarank());
#else
  uint32_t r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return r;
#endif
}

/// Every thread of every block of the cluster arrives, then waits for the others (release /
/// acquire at cluster scope; the non-.aligned form, so the threads of a warp may reach it apart).
/// Before a block's first remote access (its peers' barriers must be initialised) and before it
/// exits (its peers may still reach its shared memory).
__device__ inline void cluster_sync() {
#if defined(EMBER_CUDA_EMULATED)
  ::ember_emu::cluster_arrive();
  ::ember_emu::cluster_wait();
#else
  asm volatile("barrier.cluster.arrive.release;\n" ::: "memory");
  asm volatile("barrier.cluster.wait.acquire;\n" ::: "memory");
#endif
}

/// Arrives (release, cluster scope) on the mbarrier at bar's offset in block `cta` of the cluster
/// (mapa, then mbarrier.arrive on the shared::cluster address; `cta` may be this block).
__device__ inline void mbar_arrive_cluster(uint64_t* bar, uint32_t cta) {
#if defined(EMBER_CUDA_EMULATED)
  ::ember_emu::mbar_arrive(
      static_cast<uint64_t*>(::ember_emu::map_shared_rank(bar, static_cast<int>(cta))), 0);
#else
  const auto a = static_cast<uint32_t>(__cvta_generic_to_shared(bar));
  uint32_t remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(remote) : "r"(a), "r"(cta));
  asm volatile("mbarrier.arrive.release.cluster.shared::cluster.b64 _, [%0];\n" ::"r"(remote)
               : "memory");
#endif
}

/// load_3d's box written to dst's offset in the shared memory of every block of the cluster whose
/// bit is set in `mask` (bit r: rank r), each completing the box's bytes on its own mbarrier at
/// bar's offset (cp.async.bulk.tensor .multicast::cluster).
__device__ inline void load_3d_multicast(void* dst, const CUtensorMap* map, int32_t c0, int32_t c1,
                                         int32_t c2, uint64_t* bar, uint16_t mask) {
#if defined(EMBER_CUDA_EMULATED)
  const int32_t c[3] = {c0, c1, c2};
  ::ember_emu::tma_load_multicast(dst, map, c, bar, mask);
#else
  const auto d = static_cast<uint32_t>(__cvta_generic_to_shared(dst));
  const auto b = static_cast<uint32_t>(__cvta_generic_to_shared(bar));
  const auto m = reinterpret_cast<uint64_t>(map);
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      ".multicast::cluster [%0], [%1, {%2, %3, %4}], [%5], %6;\n" ::"r"(d),
      "l"(m), "r"(c0), "r"(c1), "r"(c2), "r"(b), "h"(mask)
      : "memory");
#endif
}
/// e.g. attention's (D, rows, heads, batches)
__device__ inline void load_4d(void* dst, const CUtensorMap* map, int32_t c0, int32_t c1,
                               int32_t c2, int32_t c3, uint64_t* bar) {
  load_box<4>(dst, map, {c0, c1, c2, c3}, bar);
}
/// cp.async.bulk without a tensor map: `bytes` (a non-zero multiple of 16) from global memory at
/// src to shared memory at dst (both 16-byte aligned), completing on bar.
__device__ inline void load_bulk(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
#if defined(EMBER_CUDA_EMULATED)
  ::ember_emu::bulk_load(dst, src, bytes, bar);
#else
  const auto d = static_cast<uint32_t>(__cvta_generic_to_shared(dst));
  const auto b = static_cast<uint32_t>(__cvta_generic_to_shared(bar));
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::
          "r"(d),
      "l"(src), "r"(bytes), "r"(b)
      : "memory");
#endif
}

/// cp.reduce.async.bulk.tensor .add: the box of `map` at coordinates c (innermost first, rank 4)
/// += the values in shared memory at src (laid out and swizzled as load_box would write that
/// box; 1024-byte aligned), out-of-bounds elements skipped. The shared memory must be published
/// to the async proxy first (fence.proxy.async by the threads that wrote it). It joins the
/// thread's next bulk group (bulk_commit); bulk_wait<n, true> then lets src be written again,
/// and bulk_wait<n> makes the sums visible to this thread (so a release by it publishes them).
__device__ inline void reduce_add_box(const void* src, const CUtensorMap* map,
                                      const int32_t (&c)[4]) {
#if defined(EMBER_CUDA_EMULATED)
  ::ember_emu::tma_reduce_add(src, map, c);
#else
  const auto s = static_cast<uint32_t>(__cvta_generic_to_shared(src));
  asm volatile(
      "cp.reduce.async.bulk.tensor.4d.global.shared::cta.add.tile.bulk_group"
      " [%0, {%1, %2, %3, %4}], [%5];\n" ::"l"(reinterpret_cast<uint64_t>(map)),
      "r"(c[0]), "r"(c[1]), "r"(c[2]), "r"(c[3]), "r"(s)
      : "memory");
#endif
}
/// Closes the thread's bulk operations issued since the last call into a group.
__device__ inline void bulk_commit() {
#if defined(EMBER_CUDA_EMULATED)
  ::ember_emu::bulk_commit();
#else
  asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
#endif
}
/// Waits until at most kPending of the thread's bulk groups are incomplete, their writes to
/// global memory visible to this thread (cp.async.bulk.wait_group); with kRead, only until they
/// have read their shared memory (.read), which may then be written again.
template <int kPending, bool kRead = false>
__device__ inline void bulk_wait() {
#if defined(EMBER_CUDA_EMULATED)
  ::ember_emu::bulk_wait(kPending, kRead);
#else
  if constexpr (kRead)
    asm volatile("cp.async.bulk.wait_group.read %0;\n" ::"n"(kPending) : "memory");
  else
    asm volatile("cp.async.bulk.wait_group %0;\n" ::"n"(kPending) : "memory");
#endif
}

// Ordered hand-offs between the blocks of one grid through a counter in global memory (a
// cooperative launch, so every block is resident and a wait always ends): one thread waits until
// the counter holds its turn, a barrier passes the turn to its peers, they write, a barrier
// gathers them, and the one thread publishes the next turn. The release store is cumulative:
// the writes the barrier ordered before it are visible to whoever acquires the new value.

/// Returns once *flag == value (ld.acquire.gpu; traps after kMbarWaitLimitNs).
__device__ inline void flag_wait(const int* flag, int value) {
#if defined(EMBER_CUDA_EMULATED)
  while (__atomic_load_n(flag, __ATOMIC_ACQUIRE) != value)
    ::ember_emu::spin_yield("a global-memory flag (flag_wait)");
#else
  uint64_t start = 0;
  for (;;) {
    int v;
    asm volatile("ld.acquire.gpu.global.b32 %0, [%1];\n" : "=r"(v) : "l"(flag) : "memory");
    if (v == value) return;
    if (poll_expired(start)) __trap();
  }
#endif
}
/// *flag = value (st.release.gpu), after a fence ordering the block's writes that a barrier put
/// before this thread's.
__device__ inline void flag_set(int* flag, int value) {
#if defined(EMBER_CUDA_EMULATED)
  __atomic_store_n(flag, value, __ATOMIC_RELEASE);
  ::ember_emu::release_yield();  // the flag's pollers first
#else
  __threadfence();
  asm volatile("st.release.gpu.global.b32 [%0], %1;\n" ::"l"(flag), "r"(value) : "memory");
#endif
}
#endif

/// A tensor map of a (batch, rows, inner) tensor of 16-bit elements (bf16 when `bf16`, else
/// fp16) at base, element strides row_stride and batch_stride (batch_stride 0: one batch read by
/// every z), read in boxes of (box_rows, box_inner) with the 128-byte swizzle (box_inner * 2 <=
/// 128). Returns false where the driver refuses it (alignment, sizes) or has no entry point.
/// Maps already encoded on this thread, by everything that went into them (a map holds only the
/// address, sizes, strides and box, so one made for the same key is the same map; the caching
/// allocator hands out the same addresses again, so a training loop's products hit it): the
/// driver call leaves the launch path. At most 1024 entries (then it starts afresh).
inline bool encode_tensor_map(CUtensorMap* map, bool bf16, const void* base, uint64_t inner,
                              uint64_t rows, uint64_t batches, uint64_t row_stride,
                              uint64_t batch_stride, uint32_t box_inner, uint32_t box_rows);

/// The same for a rank-4 (d3, d2, rows, inner) tensor, element strides row_stride, s2 and s3,
/// boxes of (1, 1, box_rows, box_inner): attention's heads, (B, H, rows, D) at any (b, h) strides.
/// (Either way, the stride of a dimension of size 1 is not used; a zero stride of a larger one is
/// refused.)
inline bool encode_tensor_map_4d(CUtensorMap* map, bool bf16, const void* base, uint64_t inner,
                                 uint64_t rows, uint64_t d2, uint64_t d3, uint64_t row_stride,
                                 uint64_t s2, uint64_t s3, uint32_t box_inner, uint32_t box_rows);

/// A rank-4 tensor map of float32 (reduce_add_box's target): sizes innermost first, element
/// strides of dimensions 1-3, any box (box[0] * 4 <= 128 bytes, the 128-byte swizzle).
inline bool encode_tensor_map_f32(CUtensorMap* map, const void* base,
                                  const std::array<uint64_t, 4>& dims,
                                  const std::array<uint64_t, 4>& strides,
                                  const std::array<uint32_t, 4>& box);

namespace detail {
/// What a map encodes: the element type, base, rank, sizes (innermost first), element strides
/// of dimensions 1..rank-1 and the box.
struct MapKey {
  CUtensorMapDataType type;
  const void* base;
  uint32_t rank;
  std::array<uint64_t, 4> dims, strides;
  std::array<uint32_t, 4> box;
  auto tie() const { return std::tie(type, base, rank, dims, strides, box); }
  bool operator<(const MapKey& o) const { return tie() < o.tie(); }
};

inline bool encode_uncached(CUtensorMap* map, const MapKey& k) {
  using Encode = decltype(&cuTensorMapEncodeTiled);
#if defined(EMBER_CUDA_EMULATED)
  const Encode encode = cuTensorMapEncodeTiled;  // the emulator's
#else
  // The driver's function, found at run time: libember does not link libcuda.
  static const Encode encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult status{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault,
                                         &status) != cudaSuccess ||
        status != cudaDriverEntryPointSuccess)
      fn = nullptr;
    (void)cudaGetLastError();
    return reinterpret_cast<Encode>(fn);
  }();
  if (encode == nullptr) return false;
#endif
  const uint64_t esize = k.type == CU_TENSOR_MAP_DATA_TYPE_FLOAT32 ? 4 : 2;
  cuuint64_t dims[4], strides[3];
  cuuint32_t box[4], element_strides[4];
  for (uint32_t d = 0; d < k.rank; ++d) {
    dims[d] = k.dims[d];
    box[d] = k.box[d];
    element_strides[d] = 1;
    if (d == 0) continue;
    uint64_t stride = k.strides[d];
    // A dimension of size 1 never steps, but TMA still wants a valid stride: the one past the
    // dimension below it. A zero stride elsewhere (a broadcast) is refused, as TMA does not
    // document it.
    if (dims[d] == 1 && d >= 2) stride = strides[d - 2] / esize * dims[d - 1];
    if (stride == 0) return false;
    strides[d - 1] = stride * esize;
  }
  return encode(map, k.type, k.rank, const_cast<void*>(k.base), dims, strides, box, element_strides,
                CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

inline bool encode_cached(CUtensorMap* map, const MapKey& key) {
  thread_local std::map<MapKey, CUtensorMap> cache;
  const auto it = cache.find(key);
  if (it != cache.end()) {
    *map = it->second;
    return true;
  }
  if (!encode_uncached(map, key)) return false;
  if (cache.size() >= 1024) cache.clear();
  cache.emplace(key, *map);
  return true;
}
}  // namespace detail

inline bool encode_tensor_map(CUtensorMap* map, bool bf16, const void* base, uint64_t inner,
                              uint64_t rows, uint64_t batches, uint64_t row_stride,
                              uint64_t batch_stride, uint32_t box_inner, uint32_t box_rows) {
  if (batch_stride == 0) batches = 1;  // one batch read by every z
  return detail::encode_cached(
      map, {bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
            base,
            3,
            {inner, rows, batches, 0},
            {0, row_stride, batch_stride, 0},
            {box_inner, box_rows, 1, 1}});
}

inline bool encode_tensor_map_4d(CUtensorMap* map, bool bf16, const void* base, uint64_t inner,
                                 uint64_t rows, uint64_t d2, uint64_t d3, uint64_t row_stride,
                                 uint64_t s2, uint64_t s3, uint32_t box_inner, uint32_t box_rows) {
  return detail::encode_cached(
      map, {bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
            base,
            4,
            {inner, rows, d2, d3},
            {0, row_stride, s2, s3},
            {box_inner, box_rows, 1, 1}});
}

inline bool encode_tensor_map_f32(CUtensorMap* map, const void* base,
                                  const std::array<uint64_t, 4>& dims,
                                  const std::array<uint64_t, 4>& strides,
                                  const std::array<uint32_t, 4>& box) {
  return detail::encode_cached(map, {CU_TENSOR_MAP_DATA_TYPE_FLOAT32, base, 4, dims, strides, box});
}

}  // namespace ember::cuda::tma
