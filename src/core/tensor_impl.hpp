// TensorImpl and Storage: what a Tensor handle points to. Private to the library.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "ember/tensor.hpp"

namespace ember {

/// A block of memory on one device. Views share it through shared_ptr.
struct Storage {
  void* data = nullptr;
  size_t nbytes = 0;
  Device device = Device(kCPU);
  std::function<void(void*)> deleter;  // empty for memory the caller keeps alive
  bool pinned = false;                  // page-locked host memory (Tensor::pin_memory)

  Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage() {
    if (deleter) deleter(data);
  }
};

/// Allocates storage on `device`: CPU memory 64-byte aligned, CUDA memory from the caching
/// allocator (src/cuda/allocator.cu). ValueError when nbytes exceeds the allocation cap or CPU
/// memory runs out; DeviceError for an unusable device or when GPU memory runs out.
std::shared_ptr<Storage> allocate_storage(size_t nbytes, Device device, const char* op);

/// Gradient hooks of one tensor, in registration order.
struct HookList {
  std::vector<std::pair<uint64_t, std::function<Tensor(const Tensor&)>>> hooks;
  bool retain_grad = false;
  std::weak_ptr<TensorImpl> owner;  // where retain_grad stores the gradient
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;  // in elements
  int64_t offset = 0;            // in elements
  DType dtype = kFloat32;
  Device device = Device(kCPU);
  bool wrapped_number = false;

  // ---- autograd fields (engine: src/core/autograd/) ----
  bool requires_grad = false;
  bool retains_grad = false;
  Tensor grad;
  std::shared_ptr<autograd::Node> grad_fn;
  uint32_t output_nr = 0;  // which output of grad_fn this tensor is
  std::shared_ptr<std::atomic<uint32_t>> version = std::make_shared<std::atomic<uint32_t>>(0);
  std::weak_ptr<autograd::Node> grad_accumulator;  // a leaf's AccumulateGrad node, made lazily
  std::shared_ptr<HookList> hooks;                 // shared with the node that runs them

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t s : sizes) n *= s;
    return n;
  }
};

// ---- shape helpers shared by ops ----

/// Contiguous (row-major) strides for sizes.
std::vector<int64_t> contiguous_strides(IntArrayRef sizes);
/// Product of sizes, overflow-checked (ValueError naming op).
int64_t checked_numel(IntArrayRef sizes, const char* op);
/// numel * element_size, overflow-checked.
size_t checked_nbytes(IntArrayRef sizes, DType dtype, const char* op);
/// Wraps a possibly negative dim into [0, ndim); IndexError naming op otherwise. A 0-d tensor
/// accepts dims -1 and 0 when scalar_ok.
int64_t wrap_dim(int64_t d, int64_t ndim, const char* op, bool scalar_ok = true);
/// A new tensor that shares `base`'s storage, dtype, device and version counter.
Tensor make_view(const Tensor& base, std::vector<int64_t> sizes, std::vector<int64_t> strides,
                 int64_t offset);
/// A fresh contiguous tensor.
Tensor make_tensor(IntArrayRef sizes, DType dtype, Device device, const char* op);
/// A fresh tensor laid out in `format` (Contiguous or ChannelsLast).
Tensor make_tensor(IntArrayRef sizes, DType dtype, Device device, const char* op,
                   MemoryFormat format);
/// The strides of `format` (Contiguous, or ChannelsLast for 4 sizes: ShapeError naming op
/// otherwise) for sizes.
std::vector<int64_t> format_strides(IntArrayRef sizes, MemoryFormat format, const char* op);
/// `format` with Preserve replaced by like's layout (suggest_memory_format).
MemoryFormat resolve_format(MemoryFormat format, const Tensor& like);
/// The layout of an op's result of `sizes` (PyTorch's rule for its common case): that of the
/// first defined input of that very shape that is not expanded (broadcast inputs do not decide),
/// ChannelsLast when it is laid out so, else Contiguous.
MemoryFormat result_format(IntArrayRef sizes, std::initializer_list<const Tensor*> inputs);
/// t's dims outermost first in memory when t is a dense permutation of a contiguous tensor but
/// not contiguous itself (t.permute(order) is contiguous: a channels-last tensor, a transposed
/// matrix); empty otherwise. Elementwise kernels iterate all operands in that order.
std::vector<int64_t> memory_order(const Tensor& t);
/// True when t's elements fill numel() consecutive slots from data_ptr(): contiguous, or a dense
/// permutation of it (memory_order non-empty), so kernels may walk it as a flat array.
bool is_dense(const Tensor& t);
/// y channels-last when `format` asks for it (a differentiable copy when a kernel path produced
/// NCHW: convolution, the CPU's batch_norm); otherwise y as the path left it.
Tensor laid_out(const Tensor& y, MemoryFormat format);
/// Sets requires_grad on a freshly made tensor when the factory options ask for it.
Tensor finish_factory(Tensor t, const TensorOptions& options);
/// Options for a *_like factory: t's dtype and device unless `options` overrides them.
TensorOptions like_options(const Tensor& t, const std::optional<TensorOptions>& options);
/// Throws DeviceError unless every defined tensor is on the same device as the first.
void check_same_device(std::initializer_list<const Tensor*> ts, const char* op);
/// The device of the defined tensors, which must agree (DeviceError naming op otherwise), except
/// that a 0-d CPU tensor joins tensors on any device as a scalar (PyTorch's rule). All undefined or
/// all 0-d CPU: the CPU.
Device common_device(std::initializer_list<const Tensor*> ts, const char* op);
/// t on `device`: t itself when it is there already (a 0-d CPU operand is copied over).
Tensor on_device(const Tensor& t, Device device);
/// Throws DeviceError for CUDA devices while the build has no CUDA kernels for them.
void check_device_usable(Device d, const char* op);

}  // namespace ember
