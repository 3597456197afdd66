// The CUDA caching allocator: the only place Ember calls cudaMalloc/cudaFree (never managed
// memory).
//
// Sizes are rounded to 512 bytes (small, up to 1 MiB) or 2 MiB (large). A freed block goes back
// to its device's pool, keyed by the stream it was allocated for: work queued later on that stream
// runs after the work that used the block, so handing it to the next allocation on the same stream
// is safe without a synchronization. A block is never handed to another stream. A tensor used by
// work on another stream is marked with record_stream (as torch's Tensor.record_stream): when its
// block is freed, an event is recorded on each such stream and the block waits in `pending` until
// every event has happened; allocations move finished blocks to the cache. A request takes the
// smallest cached block of
// its stream that is at least as large and at most twice as large; with none, cudaMalloc; if that
// fails, every cached block of the device is freed (after a device synchronization) and the
// cudaMalloc retried once, then DeviceError "out of memory".
//
// EMBER_CUDA_NO_CACHING=1 turns caching off: every allocation is a cudaMalloc and every free a
// cudaFree, so compute-sanitizer sees each one. Poisoning (set_poison_allocations,
// EMBER_CUDA_POISON=1) fills each new block with 0xFF bytes on its stream.
#include <cuda_runtime.h>

#include <atomic>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "cuda/allocator.hpp"
#include "cuda/common.cuh"
#include "ember/cuda/cuda.hpp"
#include "ember/tensor.hpp"

namespace ember::cuda {
namespace {

constexpr size_t kSmallLimit = size_t{1} << 20;  // 1 MiB
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeRound = size_t{2} << 20;  // 2 MiB

size_t round_size(size_t n) {
  n = n == 0 ? 1 : n;
  const size_t r = n <= kSmallLimit ? kSmallRound : kLargeRound;
  return (n + r - 1) / r * r;
}

/// A block in use: its size, the stream it was allocated for, and the other streams that use it
/// (record_stream).
struct LiveBlock {
  size_t size = 0;
  cudaStream_t stream = nullptr;
  std::vector<cudaStream_t> used_on;
};

/// A freed block still in use by other streams' queued work: cached once every event happened.
struct PendingBlock {
  void* ptr = nullptr;
  size_t size = 0;
  cudaStream_t stream = nullptr;
  std::vector<cudaEvent_t> events;
};

struct Pool {
  std::mutex mu;
  // (stream, size) -> cached device pointers
  std::map<std::pair<cudaStream_t, size_t>, std::vector<void*>> free_blocks;
  std::unordered_map<void*, LiveBlock> live;  // blocks of live storages
  std::vector<PendingBlock> pending;
  DeviceMemoryStats stats;
  int64_t cached = 0;  // bytes in free_blocks
};

std::vector<Pool>& pools() {
  static std::vector<Pool> p(static_cast<size_t>(device_count()));
  return p;
}

Pool& pool(int device) {
  std::vector<Pool>& p = pools();
  EMBER_CHECK(device >= 0 && device < static_cast<int>(p.size()), DeviceError,
              "[cuda] device ", device, " does not exist (", p.size(), " CUDA device(s) found)");
  return p[static_cast<size_t>(device)];
}

void cache_block(Pool& p, cudaStream_t stream, void* ptr, size_t size) {
  p.free_blocks[{stream, size}].push_back(ptr);
  p.cached += static_cast<int64_t>(size);
}

/// Moves the pending blocks whose events have all happened (every one, with `all`: the caller
/// synchronized the device) to the cache; the caller holds the pool's lock.
void collect_pending(Pool& p, bool all) {
  size_t kept = 0;
  for (PendingBlock& b : p.pending) {
    bool done = true;
    for (cudaEvent_t e : b.events) {
      if (all) break;
      const cudaError_t err = cudaEventQuery(e);
      if (err == cudaErrorNotReady) {
        (void)cudaGetLastError();
        done = false;
        break;
      }
      (void)cudaGetLastError();  // any other error: the event will not happen later either
    }
    if (!done) {
      p.pending[kept++] = std::move(b);
      continue;
    }
    for (cudaEvent_t e : b.events) (void)cudaEventDestroy(e);
    cache_block(p, b.stream, b.ptr, b.size);
  }
  p.pending.resize(kept);
}

/// cudaFree of every cached block of `device`; the caller holds its pool's lock.
void release_cached(int device, Pool& p) {
  detail::DeviceGuard guard(device);
  (void)cudaDeviceSynchronize();  // blocks freed on a stream may still be in use by its queue
  collect_pending(p, /*all=*/true);
  for (auto& [key, blocks] : p.free_blocks)
    for (void* b : blocks) {
      EMBER_CUDA_CHECK(cudaFree(b));
      p.stats.reserved -= static_cast<int64_t>(key.second);
    }
  p.free_blocks.clear();
  p.cached = 0;
}

void give_back(int device, cudaStream_t stream, void* ptr, size_t size) {
  Pool& p = pool(device);
  std::lock_guard<std::mutex> lock(p.mu);
  p.stats.allocated -= static_cast<int64_t>(size);
  std::vector<cudaStream_t> used_on;
  if (auto it = p.live.find(ptr); it != p.live.end()) {
    used_on = std::move(it->second.used_on);
    p.live.erase(it);
  }
  detail::DeviceGuard guard(device);  // a destructor path: nothing below throws
  if (!caching_enabled()) {
    for (cudaStream_t s : used_on) (void)cudaStreamSynchronize(s);
    (void)cudaFree(ptr);
    p.stats.reserved -= static_cast<int64_t>(size);
    return;
  }
  if (used_on.empty()) {
    cache_block(p, stream, ptr, size);
    return;
  }
  PendingBlock b{ptr, size, stream, {}};
  for (cudaStream_t s : used_on) {
    cudaEvent_t e = nullptr;
    if (cudaEventCreateWithFlags(&e, cudaEventDisableTiming) == cudaSuccess &&
        cudaEventRecord(e, s) == cudaSuccess) {
      b.events.push_back(e);
      continue;
    }
    (void)cudaGetLastError();  // no event: wait for the stream here instead
    if (e != nullptr) (void)cudaEventDestroy(e);
    (void)cudaStreamSynchronize(s);
  }
  p.pending.push_back(std::move(b));
}

std::atomic<bool>& poison_flag() {
  static std::atomic<bool> flag = [] {
    const char* v = std::getenv("EMBER_CUDA_POISON");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return flag;
}

/// The storage of block `ptr` (`size` bytes, nbytes of them asked for); its deleter gives the
/// block back to the pool of (device, stream).
std::shared_ptr<Storage> make_storage(void* ptr, size_t nbytes, int device, cudaStream_t stream,
                                      size_t size) {
  auto st = std::make_shared<Storage>();
  st->data = ptr;
  st->nbytes = nbytes;
  st->device = Device(kCUDA, device);
  st->deleter = [device, stream, size](void* q) { give_back(device, stream, q, size); };
  return st;
}

/// Registers block ptr as live; the caller holds the pool's lock.
void mark_live(Pool& p, void* ptr, size_t size, cudaStream_t stream) {
  LiveBlock& b = p.live[ptr];
  b.size = size;
  b.stream = stream;
  b.used_on.clear();
}

}  // namespace

bool caching_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("EMBER_CUDA_NO_CACHING");
    return v == nullptr || std::strcmp(v, "1") != 0;
  }();
  return enabled;
}

void set_poison_allocations(bool on) { poison_flag().store(on, std::memory_order_relaxed); }
bool poison_allocations() { return poison_flag().load(std::memory_order_relaxed); }

DeviceMemoryStats memory_stats(int device) {
  if (!is_available()) return {};
  Pool& p = pool(device < 0 ? current_device() : device);
  std::lock_guard<std::mutex> lock(p.mu);
  return p.stats;
}

void reset_peak_memory_stats(int device) {
  if (!is_available()) return;
  Pool& p = pool(device < 0 ? current_device() : device);
  std::lock_guard<std::mutex> lock(p.mu);
  p.stats.peak = p.stats.allocated;
}

void record_stream(const Tensor& t, const Stream& s) {
  EMBER_CHECK(t.defined(), ValueError, "[record_stream] the tensor is undefined");
  EMBER_CHECK(t.is_cuda(), DeviceError, "[record_stream] expected a CUDA tensor, got one on ",
              t.device());
  EMBER_CHECK(s.device() == t.device().index(), DeviceError, "[record_stream] the tensor is on ",
              t.device(), ", the stream on cuda:", s.device());
  const std::shared_ptr<Storage>& st = t.unsafe_impl()->storage;
  if (!st || st->data == nullptr) return;
  Pool& p = pool(s.device());
  std::lock_guard<std::mutex> lock(p.mu);
  auto it = p.live.find(st->data);
  if (it == p.live.end()) return;  // memory the allocator does not own (from_blob)
  const cudaStream_t h = static_cast<cudaStream_t>(s.handle());
  LiveBlock& b = it->second;
  if (h == b.stream) return;
  for (cudaStream_t u : b.used_on)
    if (u == h) return;
  b.used_on.push_back(h);
}

void empty_cache() {
  if (!is_available()) return;
  std::vector<Pool>& all = pools();
  for (size_t d = 0; d < all.size(); ++d) {
    std::lock_guard<std::mutex> lock(all[d].mu);
    release_cached(static_cast<int>(d), all[d]);
  }
}

namespace {

/// A block of at least nbytes from the pool of `device` for the current stream (see the top).
std::shared_ptr<Storage> allocate_block(size_t nbytes, Device device, const char* op) {
  const int d = device.index() < 0 ? current_device() : device.index();
  Pool& p = pool(d);
  const size_t size = round_size(nbytes);
  const cudaStream_t stream = detail::current_stream_handle(d);
  void* ptr = nullptr;
  {
    std::lock_guard<std::mutex> lock(p.mu);
    if (!p.pending.empty()) collect_pending(p, /*all=*/false);
    if (caching_enabled()) {
      // The smallest cached block of this stream in [size, 2 size].
      auto it = p.free_blocks.lower_bound({stream, size});
      while (it != p.free_blocks.end() && it->first.first == stream &&
             it->first.second <= 2 * size && it->second.empty())
        ++it;
      if (it != p.free_blocks.end() && it->first.first == stream &&
          it->first.second <= 2 * size && !it->second.empty()) {
        ptr = it->second.back();
        it->second.pop_back();
        p.cached -= static_cast<int64_t>(it->first.second);
        const size_t got = it->first.second;
        p.stats.allocated += static_cast<int64_t>(got);
        p.stats.peak = std::max(p.stats.peak, p.stats.allocated);
        ++p.stats.num_allocations;
        mark_live(p, ptr, got, stream);
        return make_storage(ptr, nbytes, d, stream, got);
      }
    }
    detail::DeviceGuard guard(d);
    cudaError_t err = cudaMalloc(&ptr, size);
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      release_cached(d, p);
      err = cudaMalloc(&ptr, size);
    }
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      (void)cudaMemGetInfo(&free_b, &total_b);
      (void)cudaGetLastError();
      throw DeviceError(ember::detail::str_cat(
          "[", op, "] CUDA out of memory allocating ", nbytes, " bytes on cuda:", d, " (",
          p.stats.allocated, " bytes allocated by Ember, ", free_b, " of ", total_b,
          " bytes free on the device)"));
    }
    EMBER_CUDA_CHECK(err);
    p.stats.allocated += static_cast<int64_t>(size);
    p.stats.reserved += static_cast<int64_t>(size);
    p.stats.peak = std::max(p.stats.peak, p.stats.allocated);
    ++p.stats.num_allocations;
    ++p.stats.num_device_mallocs;
    mark_live(p, ptr, size, stream);
  }
  return make_storage(ptr, nbytes, d, stream, size);
}

}  // namespace

namespace detail {

std::shared_ptr<Storage> allocate_storage(size_t nbytes, Device device, const char* op) {
  std::shared_ptr<Storage> st = allocate_block(nbytes, device, op);
  if (poison_flag().load(std::memory_order_relaxed) && nbytes > 0) {
    const int d = st->device.index();
    DeviceGuard guard(d);
    EMBER_CUDA_CHECK(cudaMemsetAsync(st->data, 0xFF, nbytes, current_stream_handle(d)));
  }
  return st;
}

std::shared_ptr<Storage> allocate_pinned_storage(size_t nbytes, const char* op) {
  EMBER_CHECK(is_available(), DeviceError, "[", op,
              "] pinned memory needs a CUDA GPU, and none is available on this machine");
  void* ptr = nullptr;
  const cudaError_t err = cudaHostAlloc(&ptr, nbytes == 0 ? 1 : nbytes, cudaHostAllocDefault);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    throw DeviceError(ember::detail::str_cat("[", op, "] could not pin ", nbytes,
                                             " bytes of host memory: ", cudaGetErrorString(err)));
  }
  auto st = std::make_shared<Storage>();
  st->data = ptr;
  st->nbytes = nbytes;
  st->device = Device(kCPU);
  st->pinned = true;
  st->deleter = [](void* q) { (void)cudaFreeHost(q); };
  return st;
}

}  // namespace detail

}  // namespace ember::cuda
