// The CUDA caching allocator: the only place Ember calls cudaMalloc/cudaFree (never managed
// memory).
//
// Sizes are rounded to 512 bytes (small, up to 1 MiB) or 2 MiB (large). A freed block goes back
// to its device's pool, keyed by the stream it was allocated for: work queued later on that stream
// runs after the work that used the block, so handing it to the next allocation on the same stream
// is safe without a synchronization. A block is never handed to another stream (what PyTorch's
// record_stream makes possible is not offered yet). A request takes the smallest cached block of
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
#include <vector>

#include "cuda/allocator.hpp"
#include "cuda/common.cuh"
#include "ember/cuda/cuda.hpp"

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

struct Pool {
  std::mutex mu;
  // (stream, size) -> cached device pointers
  std::map<std::pair<cudaStream_t, size_t>, std::vector<void*>> free_blocks;
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

/// cudaFree of every cached block of `device`; the caller holds its pool's lock.
void release_cached(int device, Pool& p) {
  detail::DeviceGuard guard(device);
  (void)cudaDeviceSynchronize();  // blocks freed on a stream may still be in use by its queue
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
  if (!caching_enabled()) {
    detail::DeviceGuard guard(device);
    (void)cudaFree(ptr);  // a destructor path: never throw
    p.stats.reserved -= static_cast<int64_t>(size);
    return;
  }
  p.free_blocks[{stream, size}].push_back(ptr);
  p.cached += static_cast<int64_t>(size);
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
  const cudaStream_t stream = static_cast<cudaStream_t>(current_stream(d).handle());
  void* ptr = nullptr;
  {
    std::lock_guard<std::mutex> lock(p.mu);
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
    EMBER_CUDA_CHECK(cudaMemsetAsync(st->data, 0xFF, nbytes,
                                     static_cast<cudaStream_t>(current_stream(d).handle())));
  }
  return st;
}

}  // namespace detail

}  // namespace ember::cuda
