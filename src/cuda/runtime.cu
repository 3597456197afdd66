// The CUDA runtime behind include/ember/cuda/cuda.hpp: device queries (the count read once),
// streams (with a per-thread current stream per device), events. Any failing device query means
// "no GPU" (no driver: error 35, no device: error 100, ...); the error is cleared so later runtime
// calls start clean. Every other failing call raises DeviceError naming the call (common.cuh).
#include <cuda_runtime.h>

#include <vector>

#include "cuda/common.cuh"
#include "ember/cuda/cuda.hpp"

namespace ember::cuda {

bool is_built() { return true; }

int device_count() {
  // Queried once per process (as PyTorch does): every allocation and launch asks, through
  // check_device_usable and current_stream, and the set of devices does not change while a
  // process runs.
  static const int n = [] {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
      (void)cudaGetLastError();
      return 0;
    }
    return count;
  }();
  return n;
}

bool is_available() { return device_count() > 0; }

namespace {

void require_gpu(const char* what) {
  EMBER_CHECK(device_count() > 0, DeviceError, "[cuda] ", what,
              ": no CUDA GPU is available on this machine");
}

int resolve(int device, const char* what) {
  require_gpu(what);
  if (device < 0) return current_device();
  EMBER_CHECK(device < device_count(), DeviceError, "[cuda] ", what, ": device ", device,
              " does not exist (", device_count(), " CUDA device(s) found)");
  return device;
}

}  // namespace

int current_device() {
  require_gpu("current_device");
  int d = 0;
  EMBER_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

void set_device(int device) {
  const int d = resolve(device, "set_device");
  EMBER_CUDA_CHECK(cudaSetDevice(d));
}

void synchronize(int device) {
  const int d = resolve(device, "synchronize");
  detail::DeviceGuard guard(d);
  EMBER_CUDA_CHECK(cudaDeviceSynchronize());
}

// ---- streams ----

struct Stream::State {
  int device = 0;
  cudaStream_t stream = nullptr;
  bool owned = false;
  ~State() {
    if (owned) {
      detail::DeviceGuard guard(device);
      (void)cudaStreamDestroy(stream);
    }
  }
};

Stream::Stream(int device, int priority) {
  auto s = std::make_shared<State>();
  s->device = resolve(device, "Stream");
  detail::DeviceGuard guard(s->device);
  EMBER_CUDA_CHECK(cudaStreamCreateWithPriority(&s->stream, cudaStreamNonBlocking, priority));
  s->owned = true;
  state_ = std::move(s);
}

Stream Stream::default_stream(int device) {
  auto s = std::make_shared<State>();
  s->device = resolve(device, "default_stream");
  return Stream(std::move(s));
}

int Stream::device() const { return state_->device; }
void* Stream::handle() const { return static_cast<void*>(state_->stream); }

void Stream::synchronize() const {
  detail::DeviceGuard guard(state_->device);
  EMBER_CUDA_CHECK(cudaStreamSynchronize(state_->stream));
}

bool Stream::query() const {
  detail::DeviceGuard guard(state_->device);
  const cudaError_t err = cudaStreamQuery(state_->stream);
  if (err == cudaErrorNotReady) {
    (void)cudaGetLastError();
    return false;
  }
  EMBER_CUDA_CHECK(err);
  return true;
}

namespace {
/// The calling thread's current stream per device (empty: the default stream), and its handle
/// (null: the default stream) for the launch path, which reads it without touching a shared_ptr.
std::vector<std::shared_ptr<Stream>>& thread_streams() {
  thread_local std::vector<std::shared_ptr<Stream>> streams;
  return streams;
}
std::vector<cudaStream_t>& thread_stream_handles() {
  thread_local std::vector<cudaStream_t> handles;
  return handles;
}
}  // namespace

namespace detail {
cudaStream_t current_stream_handle(int device) {
  const std::vector<cudaStream_t>& handles = thread_stream_handles();
  return device >= 0 && device < static_cast<int>(handles.size())
             ? handles[static_cast<size_t>(device)]
             : nullptr;
}
}  // namespace detail

Stream current_stream(int device) {
  const int d = resolve(device, "current_stream");
  auto& streams = thread_streams();
  if (static_cast<int>(streams.size()) > d && streams[static_cast<size_t>(d)])
    return *streams[static_cast<size_t>(d)];
  return Stream::default_stream(d);
}

void set_current_stream(const Stream& s) {
  auto& streams = thread_streams();
  if (static_cast<int>(streams.size()) <= s.device())
    streams.resize(static_cast<size_t>(s.device()) + 1);
  streams[static_cast<size_t>(s.device())] = std::make_shared<Stream>(s);
  auto& handles = thread_stream_handles();
  if (handles.size() < streams.size()) handles.resize(streams.size(), nullptr);
  handles[static_cast<size_t>(s.device())] = static_cast<cudaStream_t>(s.handle());
}

StreamGuard::StreamGuard(const Stream& s)
    : previous_(current_stream(s.device())), previous_device_(current_device()) {
  set_current_stream(s);
  set_device(s.device());
}

StreamGuard::~StreamGuard() {
  set_current_stream(previous_);
  (void)cudaSetDevice(previous_device_);
}

// ---- events ----

Event::Event(bool enable_timing) : timing_(enable_timing) {
  device_ = current_device();
  cudaEvent_t e = nullptr;
  EMBER_CUDA_CHECK(
      cudaEventCreateWithFlags(&e, enable_timing ? cudaEventDefault : cudaEventDisableTiming));
  event_ = static_cast<void*>(e);
}

Event::~Event() {
  if (event_ != nullptr) {
    detail::DeviceGuard guard(device_);
    (void)cudaEventDestroy(static_cast<cudaEvent_t>(event_));
  }
}

Event::Event(Event&& o) noexcept : event_(o.event_), device_(o.device_), timing_(o.timing_) {
  o.event_ = nullptr;
}

Event& Event::operator=(Event&& o) noexcept {
  if (this != &o) {
    if (event_ != nullptr) (void)cudaEventDestroy(static_cast<cudaEvent_t>(event_));
    event_ = o.event_;
    device_ = o.device_;
    timing_ = o.timing_;
    o.event_ = nullptr;
  }
  return *this;
}

void Event::record(const Stream& s) {
  EMBER_CHECK(s.device() == device_, DeviceError, "[Event::record] the event belongs to device ",
              device_, ", the stream to device ", s.device());
  detail::DeviceGuard guard(device_);
  EMBER_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event_),
                                   static_cast<cudaStream_t>(s.handle())));
}

void Event::record() { record(current_stream(device_)); }

void Event::block(const Stream& s) const {
  detail::DeviceGuard guard(s.device());
  EMBER_CUDA_CHECK(cudaStreamWaitEvent(static_cast<cudaStream_t>(s.handle()),
                                       static_cast<cudaEvent_t>(event_), 0));
}

void Event::synchronize() const {
  EMBER_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event_)));
}

bool Event::query() const {
  const cudaError_t err = cudaEventQuery(static_cast<cudaEvent_t>(event_));
  if (err == cudaErrorNotReady) {
    (void)cudaGetLastError();
    return false;
  }
  EMBER_CUDA_CHECK(err);
  return true;
}

float Event::elapsed_ms(const Event& end) const {
  EMBER_CHECK(timing_ && end.timing_, DeviceError,
              "[Event::elapsed_ms] both events need enable_timing=true");
  float ms = 0.0f;
  EMBER_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(event_),
                                        static_cast<cudaEvent_t>(end.event_)));
  return ms;
}

}  // namespace ember::cuda
