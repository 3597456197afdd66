// The CUDA runtime as Ember exposes it: device queries, streams, events and the caching
// allocator's statistics. No CUDA header is needed to use it.
//
// Safe in every build: without CUDA, or on a machine without a GPU or driver, the queries answer
// "no GPU" (any failing device query means no GPU, never a crash) and everything that needs a GPU
// (a Stream, an Event, synchronize) raises DeviceError with the reason.
#pragma once

#include <cstdint>
#include <memory>

namespace ember {
class Tensor;
}

namespace ember::cuda {

/// True when Ember was built with CUDA (EMBER_CUDA).
bool is_built();
/// True when built with CUDA and at least one device answers.
bool is_available();
/// Number of usable devices; 0 when the query fails for any reason.
int device_count();

/// The calling thread's current device (0 unless set_device changed it). DeviceError without a
/// GPU.
int current_device();
/// Makes `device` the calling thread's current device; DeviceError when it does not exist.
void set_device(int device);
/// Waits until all work queued on `device` (-1: the current one) has finished.
void synchronize(int device = -1);

/// A CUDA stream on one device, shared by copies of this handle; the last copy destroys a stream
/// this class created. The default (legacy) stream of a device is never destroyed.
class Stream {
 public:
  /// A new stream on `device` (-1: the current one) that does not synchronize with the default
  /// stream. priority: 0 normal, negative higher (as cudaStreamCreateWithPriority).
  explicit Stream(int device = -1, int priority = 0);
  /// The default stream of `device` (-1: the current one).
  static Stream default_stream(int device = -1);

  int device() const;
  /// The cudaStream_t, for code that launches its own kernels on it.
  void* handle() const;
  /// Waits until all work queued on the stream has finished.
  void synchronize() const;
  /// True when all work queued on the stream has finished.
  bool query() const;

  bool operator==(const Stream& o) const { return handle() == o.handle() && device() == o.device(); }
  bool operator!=(const Stream& o) const { return !(*this == o); }

  struct State;

 private:
  explicit Stream(std::shared_ptr<State> s) : state_(std::move(s)) {}
  std::shared_ptr<State> state_;
};

/// The stream the calling thread's Ember work on `device` (-1: current) is queued on: the
/// default stream unless set_current_stream or a StreamGuard changed it.
Stream current_stream(int device = -1);
/// Makes `s` the calling thread's current stream for its device.
void set_current_stream(const Stream& s);

/// Sets the current stream (and device) for a scope, restoring both on exit.
class StreamGuard {
 public:
  explicit StreamGuard(const Stream& s);
  ~StreamGuard();
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  Stream previous_;
  int previous_device_;
};

/// A CUDA event: a point in a stream's work that other streams and the host can wait for, and
/// that can time the work between two events.
class Event {
 public:
  /// enable_timing: elapsed_ms works (events without timing are cheaper to record).
  explicit Event(bool enable_timing = false);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  Event(Event&& o) noexcept;
  Event& operator=(Event&& o) noexcept;

  /// Records the event at the current end of `s`'s queue.
  void record(const Stream& s);
  /// Records on the current stream of the current device.
  void record();
  /// Makes all future work on `s` wait until the event has happened.
  void block(const Stream& s) const;
  /// Waits on the host until the event has happened.
  void synchronize() const;
  /// True when the event has happened (or was never recorded).
  bool query() const;
  /// Milliseconds between this event and `end` (both recorded, both with timing).
  float elapsed_ms(const Event& end) const;

 private:
  void* event_ = nullptr;  // cudaEvent_t
  int device_ = -1;
  bool timing_ = false;
};

/// The caching allocator of one device, like torch.cuda.memory_stats.
struct DeviceMemoryStats {
  int64_t allocated = 0;        // bytes in live tensors
  int64_t peak = 0;             // most bytes allocated at once since the last reset
  int64_t reserved = 0;         // bytes held from cudaMalloc (allocated + cached)
  int64_t num_allocations = 0;  // allocations served since the process started
  int64_t num_device_mallocs = 0;  // of them, those that needed a cudaMalloc
};

/// Statistics of `device` (-1: current); all zero without a GPU.
DeviceMemoryStats memory_stats(int device = -1);
/// Sets the peak of `device` (-1: current) to the bytes allocated now.
void reset_peak_memory_stats(int device = -1);
/// Marks t's memory as used by work queued on `s` (as torch's Tensor.record_stream): when the
/// last tensor on that memory is freed, the caching allocator gives it to a new allocation only
/// after the work queued on `s` by then has finished. Without it a block returns at once to the
/// stream it was allocated on, which is right only for work on that stream. DeviceError unless t
/// is a CUDA tensor on s's device; no effect for memory the allocator does not own (from_blob).
void record_stream(const Tensor& t, const Stream& s);
/// Returns every cached, unused block of every device to the driver (cudaFree).
void empty_cache();
/// False when EMBER_CUDA_NO_CACHING=1 was set at start-up: every allocation is then a cudaMalloc
/// and every free a cudaFree, so compute-sanitizer sees each one.
bool caching_enabled();
/// When on, every new CUDA allocation is filled with 0xFF bytes (NaN in every floating dtype, -1
/// in the signed integers) before the op that asked for it writes it, so a kernel that leaves an
/// output element unwritten is caught by the comparison with the CPU. Off unless
/// EMBER_CUDA_POISON=1 was set at start-up; the CUDA tests turn it on. Costs one memset per
/// allocation.
void set_poison_allocations(bool on);
bool poison_allocations();

/// Whether float32 matrix products on CUDA (matmul, mm, bmm, linear, addmm, baddbmm, ...) may run
/// on TF32 tensor cores: inputs rounded to 10 mantissa bits (relative error about 1e-3 per
/// product), float32 accumulation, about 8x the float32 FMA rate. Off by default, so float32 is
/// exact float32 arithmetic, like PyTorch's torch.backends.cuda.matmul.allow_tf32 (default False
/// since 1.12); EMBER_ALLOW_TF32=1 at start-up turns it on. Process-wide; no effect on the CPU.
void set_allow_tf32(bool allow);
bool allow_tf32();

/// The kernels behind CUDA matrix products, convolution and attention (process-wide).
enum class Backend {
  kEmber,   ///< Ember's own kernels (the default): tensor-core GEMM with fused epilogues,
            ///< implicit-GEMM convolution, fused flash attention
  kVendor,  ///< NVIDIA's libraries: every matrix product through cuBLAS; convolution through
            ///< cuDNN when it can be loaded (libcudnn.so.9; see cudnn_is_available()), else as
            ///< im2col + cuBLAS; attention as its composite over cuBLAS (matmul, softmax, matmul)
  kCublas = kVendor,  ///< the former name of kVendor
};
/// Selects the backend; EMBER_CUDA_BACKEND=vendor (or cublas, cudnn; ember) at start-up does the
/// same. DeviceError for kVendor when this build cannot call cuBLAS (no CUDA, or the CPU emulator).
void set_backend(Backend backend);
Backend backend();

/// Whether the vendor backend can use cuDNN for convolution: cuDNN 9 is found at run time
/// (libcudnn.so.9 on the library path; libember does not link it), like PyTorch's
/// torch.backends.cudnn.is_available(). Always false without CUDA or under the CPU emulator.
bool cudnn_is_available();
/// The loaded cuDNN's version (major * 10000 + minor * 100 + patch, e.g. 91900), 0 when absent.
int64_t cudnn_version();

}  // namespace ember::cuda
