// The CUDA runtime in a build without CUDA: there is never a GPU. Queries answer so; everything
// that needs a GPU raises DeviceError saying how to get one.
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/tensor_impl.hpp"
#include "cuda/allocator.hpp"
#include "ember/cuda/cuda.hpp"
#include "ember/error.hpp"

namespace ember::cuda {
namespace {
[[noreturn]] void no_cuda(const char* what) {
  throw DeviceError(ember::detail::str_cat(
      "[cuda] ", what, ": Ember was built without CUDA (configure with -DEMBER_CUDA=ON)"));
}
}  // namespace

bool is_built() { return false; }
bool is_available() { return false; }
int device_count() { return 0; }
int current_device() { no_cuda("current_device"); }
void set_device(int) { no_cuda("set_device"); }
void synchronize(int) { no_cuda("synchronize"); }

struct Stream::State {};
Stream::Stream(int, int) { no_cuda("Stream"); }
Stream Stream::default_stream(int) { no_cuda("default_stream"); }
int Stream::device() const { no_cuda("Stream::device"); }
void* Stream::handle() const { no_cuda("Stream::handle"); }
void Stream::synchronize() const { no_cuda("Stream::synchronize"); }
bool Stream::query() const { no_cuda("Stream::query"); }
Stream current_stream(int) { no_cuda("current_stream"); }
void set_current_stream(const Stream&) { no_cuda("set_current_stream"); }
StreamGuard::StreamGuard(const Stream& s) : previous_(s), previous_device_(0) {
  no_cuda("StreamGuard");
}
// Never reached (the constructor throws); names previous_device_, which only CUDA builds use.
StreamGuard::~StreamGuard() { (void)previous_device_; }

Event::Event(bool) { no_cuda("Event"); }
Event::~Event() = default;
Event::Event(Event&& o) noexcept : event_(o.event_), device_(o.device_), timing_(o.timing_) {}
Event& Event::operator=(Event&&) noexcept { return *this; }
void Event::record(const Stream&) { no_cuda("Event::record"); }
void Event::record() { no_cuda("Event::record"); }
void Event::block(const Stream&) const { no_cuda("Event::block"); }
void Event::synchronize() const { no_cuda("Event::synchronize"); }
bool Event::query() const { no_cuda("Event::query"); }
float Event::elapsed_ms(const Event&) const { no_cuda("Event::elapsed_ms"); }

DeviceMemoryStats memory_stats(int) { return {}; }
void reset_peak_memory_stats(int) {}
void record_stream(const Tensor&, const Stream&) { no_cuda("record_stream"); }
void empty_cache() {}
bool caching_enabled() {
  const char* v = std::getenv("EMBER_CUDA_NO_CACHING");
  return v == nullptr || std::strcmp(v, "1") != 0;
}

void set_poison_allocations(bool) {}
bool poison_allocations() { return false; }

namespace detail {
std::shared_ptr<Storage> allocate_storage(size_t, Device, const char* op) {
  no_cuda(op);
}
std::shared_ptr<Storage> allocate_pinned_storage(size_t, const char* op) { no_cuda(op); }
}  // namespace detail

}  // namespace ember::cuda
