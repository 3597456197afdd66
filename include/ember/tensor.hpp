// ember::Tensor: a cheap, shared handle to storage plus sizes, strides, offset, dtype and device.
// Copying a Tensor copies the handle (like libtorch); views share storage and never copy data.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "ember/device.hpp"
#include "ember/dtype.hpp"
#include "ember/error.hpp"
#include "ember/scalar.hpp"

namespace ember {

struct TensorImpl;
class Tensor;
namespace autograd {
struct Node;
}

// ---- IntArrayRef: a non-owning view of int64 sizes, strides or dims ----

/// A non-owning list of int64 (sizes, strides, dims). Build it from a vector, a braced list or a
/// single integer; it must not outlive what it refers to (use `vec()` to keep a copy).
class IntArrayRef {
 public:
  IntArrayRef() = default;
  IntArrayRef(const std::vector<int64_t>& v) : data_(v.data()), size_(v.size()) {}  // NOLINT
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winit-list-lifetime"
#endif
  // Like c10::ArrayRef: valid for the full expression that builds it (a function argument).
  IntArrayRef(std::initializer_list<int64_t> l) : data_(l.begin()), size_(l.size()) {}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
  IntArrayRef(const int64_t& one) : data_(&one), size_(1) {}  // NOLINT
  IntArrayRef(const int64_t* data, size_t n) : data_(data), size_(n) {}

  const int64_t* begin() const { return data_; }
  const int64_t* end() const { return data_ + size_; }
  const int64_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  int64_t operator[](size_t i) const { return data_[i]; }
  int64_t front() const { return data_[0]; }
  int64_t back() const { return data_[size_ - 1]; }
  std::vector<int64_t> vec() const { return std::vector<int64_t>(begin(), end()); }
  bool equals(IntArrayRef o) const;
  bool operator==(IntArrayRef o) const { return equals(o); }
  bool operator!=(IntArrayRef o) const { return !equals(o); }

 private:
  const int64_t* data_ = nullptr;
  size_t size_ = 0;
};

/// Prints "(2, 3, 4)"; a 0-d shape prints "()".
std::ostream& operator<<(std::ostream& os, IntArrayRef a);
std::ostream& operator<<(std::ostream& os, const std::vector<int64_t>& a);

// ---- TensorOptions ----

/// Options for factories: dtype (default: the default float dtype), device, requires_grad.
class TensorOptions {
 public:
  TensorOptions() = default;
  TensorOptions(DType d) : dtype_(d) {}    // NOLINT: implicit, as in libtorch (zeros({2}, kInt64))
  TensorOptions(Device d) : device_(d) {}  // NOLINT
  TensorOptions(DeviceType d) : device_(d) {}  // NOLINT

  TensorOptions dtype(DType d) const {
    TensorOptions o = *this;
    o.dtype_ = d;
    return o;
  }
  TensorOptions device(Device d) const {
    TensorOptions o = *this;
    o.device_ = d;
    return o;
  }
  TensorOptions requires_grad(bool r) const {
    TensorOptions o = *this;
    o.requires_grad_ = r;
    return o;
  }
  DType dtype() const { return dtype_ ? *dtype_ : get_default_dtype(); }
  bool has_dtype() const { return dtype_.has_value(); }
  Device device() const { return device_; }
  bool requires_grad() const { return requires_grad_; }

 private:
  std::optional<DType> dtype_;
  Device device_ = Device(kCPU);
  bool requires_grad_ = false;
};

// ---- MemoryFormat ----

/// How the elements of a 4-d (N, C, H, W) tensor lie in memory, as libtorch's MemoryFormat.
/// Contiguous: row-major NCHW. ChannelsLast: NHWC memory behind NCHW sizes, strides
/// (H W C, 1, W C, C), the layout the CUDA convolution kernels read and write without a
/// transpose. Preserve (copies, *_like factories, to()): channels-last stays channels-last,
/// everything else becomes contiguous. Ops on channels-last inputs give channels-last results
/// (docs/design.md, "Memory format").
enum class MemoryFormat : int8_t { Contiguous, ChannelsLast, Preserve };
std::ostream& operator<<(std::ostream& os, MemoryFormat f);

inline TensorOptions dtype(DType d) { return TensorOptions().dtype(d); }
inline TensorOptions device(Device d) { return TensorOptions().device(d); }
inline TensorOptions requires_grad(bool r = true) { return TensorOptions().requires_grad(r); }

// ---- indexing: t.index({Slice(1, None, 2), 0, None, "...", mask}) ----

namespace indexing {
inline constexpr std::nullopt_t None = std::nullopt;
struct EllipsisIndexType {};
inline constexpr EllipsisIndexType Ellipsis{};

/// Python's start:stop:step; None means "from the beginning" / "to the end" / step 1.
class Slice {
 public:
  Slice(std::optional<int64_t> start = std::nullopt, std::optional<int64_t> stop = std::nullopt,
        std::optional<int64_t> step = std::nullopt);
  int64_t start() const { return start_; }
  int64_t stop() const { return stop_; }
  int64_t step() const { return step_; }

 private:
  int64_t start_, stop_, step_;
};

/// One entry of an index list: None (new axis), Ellipsis ("..."), an integer, a bool, a Slice,
/// or a Tensor (integer indices or a boolean mask).
class TensorIndex {
 public:
  enum class Kind : uint8_t { None, Ellipsis, Integer, Boolean, Slice, Tensor };
  TensorIndex(std::nullopt_t) : kind_(Kind::None) {}  // NOLINT
  TensorIndex(EllipsisIndexType) : kind_(Kind::Ellipsis) {}  // NOLINT
  TensorIndex(const char* s);                                // NOLINT: "..." only
  TensorIndex(int64_t i) : kind_(Kind::Integer), integer_(i) {}  // NOLINT
  TensorIndex(int i) : kind_(Kind::Integer), integer_(i) {}      // NOLINT
  TensorIndex(bool b) : kind_(Kind::Boolean), boolean_(b) {}     // NOLINT
  TensorIndex(Slice s) : kind_(Kind::Slice), slice_(s) {}        // NOLINT
  TensorIndex(const Tensor& t);                                  // NOLINT
  ~TensorIndex();
  TensorIndex(const TensorIndex&);
  TensorIndex& operator=(const TensorIndex&);

  Kind kind() const { return kind_; }
  int64_t integer() const { return integer_; }
  bool boolean() const { return boolean_; }
  const Slice& slice() const { return slice_; }
  const Tensor& tensor() const;

 private:
  Kind kind_;
  int64_t integer_ = 0;
  bool boolean_ = false;
  Slice slice_;
  std::shared_ptr<Tensor> tensor_;
};
}  // namespace indexing

// ---- Tensor ----

class Tensor {
 public:
  /// An undefined tensor (`defined()` is false), like a default-constructed at::Tensor.
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // -- metadata --
  bool defined() const { return impl_ != nullptr; }
  IntArrayRef sizes() const;
  IntArrayRef strides() const;
  /// Size of dimension d; negative d counts from the end. IndexError when out of range.
  int64_t size(int64_t d) const;
  int64_t stride(int64_t d) const;
  int64_t dim() const;
  int64_t ndimension() const { return dim(); }
  int64_t numel() const;
  int64_t storage_offset() const;
  DType dtype() const;
  DType scalar_type() const { return dtype(); }
  Device device() const;
  TensorOptions options() const;
  bool is_cpu() const { return device().is_cpu(); }
  bool is_cuda() const { return device().is_cuda(); }
  bool is_contiguous() const;
  /// True when the elements lie in `format`'s order without gaps (size-1 dims ignored, as in
  /// libtorch); ChannelsLast needs 4 dims. Preserve is a ValueError.
  bool is_contiguous(MemoryFormat format) const;
  /// ChannelsLast for a 4-d tensor whose strides are ordered as channels-last's (C innermost,
  /// then W, H, N; PyTorch's rule, which reads a size-1 dim's stride too, so a 1-channel image
  /// made channels-last is told apart from a row-major one), else Contiguous. Ops give results
  /// of that layout.
  MemoryFormat suggest_memory_format() const;
  bool is_floating_point() const { return is_floating(dtype()); }
  size_t element_size() const { return ember::element_size(dtype()); }
  size_t nbytes() const;
  /// True when both tensors share one storage (one is a view of the other, or both of a third).
  bool is_alias_of(const Tensor& other) const;
  /// True when both handles refer to the same tensor object.
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }
  /// A 0-d tensor made from a C++ number in an expression (`t + 2`): it takes part in type
  /// promotion by category only, as in PyTorch.
  bool is_wrapped_number() const;
  TensorImpl* unsafe_impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

  // -- data access (CPU tensors) --
  /// Pointer to the first element; DTypeError if T does not match dtype().
  template <class T>
  T* data_ptr() const;
  void* data_ptr() const;
  /// The single value of a one-element tensor, converted to T. ValueError otherwise.
  template <class T>
  T item() const;
  Scalar item() const;

  // -- autograd fields (the engine lives in autograd.hpp) --
  bool requires_grad() const;
  /// Marks a floating tensor as requiring gradients. DTypeError for integer tensors.
  Tensor& requires_grad_(bool r = true);
  const Tensor& grad() const;
  Tensor& mutable_grad();
  std::shared_ptr<autograd::Node> grad_fn() const;
  bool is_leaf() const;
  /// The version counter shared by a tensor and its views; in-place ops bump it.
  uint32_t _version() const;
  void bump_version() const;
  /// Which output of grad_fn() this tensor is.
  uint32_t output_nr() const;
  /// Computes gradients of this tensor w.r.t. graph leaves (see autograd::backward). `gradient`
  /// may be omitted for a one-element tensor.
  void backward(const Tensor& gradient = {}, std::optional<bool> retain_graph = std::nullopt,
                bool create_graph = false) const;
  /// Keeps .grad() for this non-leaf tensor after backward.
  void retain_grad() const;
  bool retains_grad() const;
  /// Calls `hook(grad)` when this tensor's gradient is computed; a defined return value replaces
  /// the gradient. Returns a handle for remove_hook.
  uint64_t register_hook(std::function<Tensor(const Tensor&)> hook) const;
  void remove_hook(uint64_t handle) const;
  /// A tensor sharing storage that is not part of the graph (requires_grad false).
  Tensor detach() const;
  /// Detaches this tensor from the graph in place.
  Tensor& detach_();
  /// Replaces this tensor's data (storage, sizes, strides, dtype, device) with `data`'s, keeping
  /// its identity and autograd flags, like PyTorch's `t.data = data`: handles held elsewhere (a
  /// module's registered parameter) see the new data. Its gradient is dropped when the shape,
  /// dtype or device changes. ValueError for a non-leaf tensor.
  void set_data(const Tensor& data);

  // -- conversion and copies --
  // non_blocking: a copy between the host and a GPU from or into pinned memory (pin_memory())
  // is queued on the current stream and returns at once (the host memory is kept alive until the
  // copy has run); read a device-to-host result only after synchronizing that stream. Every other
  // copy is synchronous whatever non_blocking says.
  // A converted or copied result is laid out by `format` (Preserve: channels-last stays so).
  Tensor to(Device d, bool non_blocking = false, bool copy = false,
            MemoryFormat format = MemoryFormat::Preserve) const;
  Tensor to(DType t, bool non_blocking = false, bool copy = false,
            MemoryFormat format = MemoryFormat::Preserve) const;
  Tensor to(TensorOptions o, bool non_blocking = false, bool copy = false,
            MemoryFormat format = MemoryFormat::Preserve) const;
  Tensor to(Device d, DType t, bool non_blocking = false, bool copy = false,
            MemoryFormat format = MemoryFormat::Preserve) const;
  Tensor cpu() const;
  Tensor cuda() const;
  /// A copy of this CPU tensor in page-locked host memory (itself when already pinned), which
  /// copies to and from a GPU can read and write asynchronously. DeviceError without a GPU or
  /// for a CUDA tensor.
  Tensor pin_memory() const;
  /// True when the tensor's memory is page-locked host memory from pin_memory().
  bool is_pinned() const;
  /// Itself when is_contiguous(format), else a copy laid out in `format` (Contiguous or
  /// ChannelsLast; ChannelsLast needs 4 dims).
  Tensor contiguous(MemoryFormat format = MemoryFormat::Contiguous) const;
  /// A copy laid out in `format` (Preserve: channels-last stays so, else row-major).
  Tensor clone(MemoryFormat format = MemoryFormat::Preserve) const;

  // -- views (share storage) --
  Tensor view(IntArrayRef sizes) const;
  Tensor view_as(const Tensor& other) const;
  Tensor reshape(IntArrayRef sizes) const;
  Tensor reshape_as(const Tensor& other) const;
  Tensor permute(IntArrayRef dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const;
  Tensor squeeze() const;
  Tensor squeeze(int64_t d) const;
  Tensor unsqueeze(int64_t d) const;
  Tensor expand(IntArrayRef sizes) const;
  Tensor expand_as(const Tensor& other) const;
  Tensor narrow(int64_t d, int64_t start, int64_t length) const;
  Tensor slice(int64_t d = 0, std::optional<int64_t> start = std::nullopt,
               std::optional<int64_t> end = std::nullopt, int64_t step = 1) const;
  Tensor select(int64_t d, int64_t index) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor unflatten(int64_t d, IntArrayRef sizes) const;
  Tensor as_strided(IntArrayRef sizes, IntArrayRef strides,
                    std::optional<int64_t> storage_offset = std::nullopt) const;
  std::vector<Tensor> chunk(int64_t chunks, int64_t d = 0) const;
  std::vector<Tensor> split(int64_t split_size, int64_t d = 0) const;
  std::vector<Tensor> split_with_sizes(IntArrayRef split_sizes, int64_t d = 0) const;
  std::vector<Tensor> unbind(int64_t d = 0) const;
  Tensor diagonal(int64_t offset = 0, int64_t d1 = 0, int64_t d2 = 1) const;
  /// t[i] is select(0, i).
  Tensor operator[](int64_t i) const { return select(0, i); }
  Tensor index(std::initializer_list<indexing::TensorIndex> indices) const;
  Tensor index(const std::vector<indexing::TensorIndex>& indices) const;
  Tensor& index_put_(std::initializer_list<indexing::TensorIndex> indices, const Tensor& value);
  Tensor& index_put_(std::initializer_list<indexing::TensorIndex> indices, Scalar value);
  Tensor& index_put_(const std::vector<indexing::TensorIndex>& indices, const Tensor& value);

  // -- elementwise --
  Tensor add(const Tensor& o, Scalar alpha = 1) const;
  Tensor add(Scalar o, Scalar alpha = 1) const;
  Tensor sub(const Tensor& o, Scalar alpha = 1) const;
  Tensor sub(Scalar o, Scalar alpha = 1) const;
  Tensor mul(const Tensor& o) const;
  Tensor mul(Scalar o) const;
  Tensor div(const Tensor& o) const;
  Tensor div(Scalar o) const;
  Tensor pow(const Tensor& e) const;
  Tensor pow(Scalar e) const;
  Tensor neg() const;
  Tensor exp() const;
  Tensor exp2() const;
  Tensor log() const;
  Tensor log2() const;
  Tensor log1p() const;
  Tensor expm1() const;
  Tensor sqrt() const;
  Tensor rsqrt() const;
  Tensor abs() const;
  Tensor sign() const;
  Tensor sin() const;
  Tensor cos() const;
  Tensor tan() const;
  Tensor tanh() const;
  Tensor sigmoid() const;
  Tensor relu() const;
  Tensor erf() const;
  Tensor reciprocal() const;
  Tensor square() const;
  Tensor floor() const;
  Tensor ceil() const;
  Tensor round() const;
  Tensor clamp(std::optional<Scalar> min, std::optional<Scalar> max = std::nullopt) const;
  Tensor clamp_min(Scalar min) const;
  Tensor clamp_max(Scalar max) const;
  Tensor minimum(const Tensor& o) const;
  Tensor maximum(const Tensor& o) const;
  Tensor eq(const Tensor& o) const;
  Tensor eq(Scalar o) const;
  Tensor ne(const Tensor& o) const;
  Tensor ne(Scalar o) const;
  Tensor lt(const Tensor& o) const;
  Tensor lt(Scalar o) const;
  Tensor le(const Tensor& o) const;
  Tensor le(Scalar o) const;
  Tensor gt(const Tensor& o) const;
  Tensor gt(Scalar o) const;
  Tensor ge(const Tensor& o) const;
  Tensor ge(Scalar o) const;
  Tensor logical_and(const Tensor& o) const;
  Tensor logical_or(const Tensor& o) const;
  Tensor logical_not() const;
  Tensor isnan() const;
  Tensor isinf() const;
  Tensor isfinite() const;
  Tensor where(const Tensor& condition, const Tensor& other) const;
  Tensor masked_fill(const Tensor& mask, Scalar value) const;

  // -- in place (return *this; bump the version counter) --
  Tensor& add_(const Tensor& o, Scalar alpha = 1);
  Tensor& add_(Scalar o, Scalar alpha = 1);
  Tensor& sub_(const Tensor& o, Scalar alpha = 1);
  Tensor& sub_(Scalar o, Scalar alpha = 1);
  Tensor& mul_(const Tensor& o);
  Tensor& mul_(Scalar o);
  Tensor& div_(const Tensor& o);
  Tensor& div_(Scalar o);
  Tensor& zero_();
  Tensor& fill_(Scalar v);
  Tensor& fill_(const Tensor& v);
  /// Copies src (broadcast to this shape, converted to this dtype) into this tensor.
  Tensor& copy_(const Tensor& src, bool non_blocking = false);
  Tensor& clamp_(std::optional<Scalar> min, std::optional<Scalar> max = std::nullopt);
  Tensor& masked_fill_(const Tensor& mask, Scalar value);
  Tensor& uniform_(double from = 0.0, double to = 1.0);
  Tensor& normal_(double mean = 0.0, double std = 1.0);

  // -- reductions --
  Tensor sum(std::optional<DType> dtype = std::nullopt) const;
  Tensor sum(IntArrayRef dims, bool keepdim = false, std::optional<DType> dtype = std::nullopt) const;
  Tensor mean(std::optional<DType> dtype = std::nullopt) const;
  Tensor mean(IntArrayRef dims, bool keepdim = false, std::optional<DType> dtype = std::nullopt) const;
  Tensor prod(std::optional<DType> dtype = std::nullopt) const;
  Tensor prod(int64_t d, bool keepdim = false, std::optional<DType> dtype = std::nullopt) const;
  Tensor max() const;
  std::tuple<Tensor, Tensor> max(int64_t d, bool keepdim = false) const;
  Tensor min() const;
  std::tuple<Tensor, Tensor> min(int64_t d, bool keepdim = false) const;
  Tensor amax(IntArrayRef dims = {}, bool keepdim = false) const;
  Tensor amin(IntArrayRef dims = {}, bool keepdim = false) const;
  Tensor argmax(std::optional<int64_t> d = std::nullopt, bool keepdim = false) const;
  Tensor argmin(std::optional<int64_t> d = std::nullopt, bool keepdim = false) const;
  Tensor var(IntArrayRef dims = {}, int64_t correction = 1, bool keepdim = false) const;
  Tensor std(IntArrayRef dims = {}, int64_t correction = 1, bool keepdim = false) const;
  Tensor logsumexp(IntArrayRef dims, bool keepdim = false) const;
  Tensor norm(Scalar p = 2, IntArrayRef dims = {}, bool keepdim = false) const;
  Tensor all() const;
  Tensor all(int64_t d, bool keepdim = false) const;
  Tensor any() const;
  Tensor any(int64_t d, bool keepdim = false) const;
  Tensor cumsum(int64_t d, std::optional<DType> dtype = std::nullopt) const;
  Tensor softmax(int64_t d, std::optional<DType> dtype = std::nullopt) const;
  Tensor log_softmax(int64_t d, std::optional<DType> dtype = std::nullopt) const;

  // -- linear algebra --
  Tensor matmul(const Tensor& o) const;
  Tensor mm(const Tensor& o) const;
  Tensor bmm(const Tensor& o) const;
  Tensor dot(const Tensor& o) const;
  Tensor outer(const Tensor& o) const;

  // -- copying shape ops --
  Tensor flip(IntArrayRef dims) const;
  Tensor roll(IntArrayRef shifts, IntArrayRef dims = {}) const;
  Tensor repeat(IntArrayRef repeats) const;
  Tensor tril(int64_t diagonal = 0) const;
  Tensor triu(int64_t diagonal = 0) const;
  Tensor gather(int64_t d, const Tensor& index) const;
  Tensor scatter(int64_t d, const Tensor& index, const Tensor& src) const;
  Tensor scatter(int64_t d, const Tensor& index, Scalar value) const;
  Tensor scatter_add(int64_t d, const Tensor& index, const Tensor& src) const;
  Tensor& scatter_(int64_t d, const Tensor& index, const Tensor& src);
  Tensor& scatter_add_(int64_t d, const Tensor& index, const Tensor& src);
  Tensor index_select(int64_t d, const Tensor& index) const;
  Tensor index_add(int64_t d, const Tensor& index, const Tensor& source, Scalar alpha = 1) const;
  Tensor& index_add_(int64_t d, const Tensor& index, const Tensor& source, Scalar alpha = 1);
  Tensor masked_select(const Tensor& mask) const;
  std::tuple<Tensor, Tensor> topk(int64_t k, int64_t d = -1, bool largest = true,
                                  bool sorted = true) const;
  std::tuple<Tensor, Tensor> sort(int64_t d = -1, bool descending = false,
                                  bool stable = false) const;
  Tensor argsort(int64_t d = -1, bool descending = false, bool stable = false) const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// ---- operators ----
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, Scalar b);
Tensor operator-(const Tensor& a, Scalar b);
Tensor operator*(const Tensor& a, Scalar b);
Tensor operator/(const Tensor& a, Scalar b);
Tensor operator+(Scalar a, const Tensor& b);
Tensor operator-(Scalar a, const Tensor& b);
Tensor operator*(Scalar a, const Tensor& b);
Tensor operator/(Scalar a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator==(const Tensor& a, const Tensor& b);
Tensor operator!=(const Tensor& a, const Tensor& b);
Tensor operator<(const Tensor& a, const Tensor& b);
Tensor operator<=(const Tensor& a, const Tensor& b);
Tensor operator>(const Tensor& a, const Tensor& b);
Tensor operator>=(const Tensor& a, const Tensor& b);
Tensor operator==(const Tensor& a, Scalar b);
Tensor operator!=(const Tensor& a, Scalar b);
Tensor operator<(const Tensor& a, Scalar b);
Tensor operator<=(const Tensor& a, Scalar b);
Tensor operator>(const Tensor& a, Scalar b);
Tensor operator>=(const Tensor& a, Scalar b);
/// On bool tensors: logical and / or / not (libtorch's bitwise ops on bool).
Tensor operator&(const Tensor& a, const Tensor& b);
Tensor operator|(const Tensor& a, const Tensor& b);
Tensor operator~(const Tensor& a);
Tensor& operator+=(Tensor& a, const Tensor& b);
Tensor& operator-=(Tensor& a, const Tensor& b);
Tensor& operator*=(Tensor& a, const Tensor& b);
Tensor& operator/=(Tensor& a, const Tensor& b);
Tensor& operator+=(Tensor& a, Scalar b);
Tensor& operator-=(Tensor& a, Scalar b);
Tensor& operator*=(Tensor& a, Scalar b);
Tensor& operator/=(Tensor& a, Scalar b);

/// Prints like PyTorch: "tensor([[1., 2.],\n        [3., 4.]])" with dtype/device when not default.
std::ostream& operator<<(std::ostream& os, const Tensor& t);

}  // namespace ember
