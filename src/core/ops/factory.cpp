// Factories: tensors from values, from memory, and filled tensors.
#include <cmath>

#include "core/dispatch.hpp"
#include "core/kernels.hpp"
#include "core/tensor_impl.hpp"
#include "ember/ops.hpp"

namespace ember {

Tensor finish_factory(Tensor t, const TensorOptions& o) {
  if (o.requires_grad()) t.requires_grad_(true);
  return t;
}

TensorOptions like_options(const Tensor& t, const std::optional<TensorOptions>& o) {
  if (!o) return t.options();
  TensorOptions r = *o;
  if (!r.has_dtype()) r = r.dtype(t.dtype());
  return r;
}


NestedList::NestedList(std::initializer_list<NestedList> rows) : kind_(Kind::Bool) {
  if (rows.size() == 0) {  // tensor({}) is an empty float tensor of shape (0,)
    kind_ = Kind::Float;
    shape_ = {0};
    return;
  }
  const NestedList& first = *rows.begin();
  shape_.push_back(static_cast<int64_t>(rows.size()));
  shape_.insert(shape_.end(), first.shape_.begin(), first.shape_.end());
  for (const NestedList& r : rows) {
    EMBER_CHECK(r.shape_ == first.shape_, ShapeError, "[tensor] ragged nested list: rows of shape ",
                IntArrayRef(first.shape_), " and ", IntArrayRef(r.shape_));
    kind_ = std::max(kind_, r.kind_);
    values_.insert(values_.end(), r.values_.begin(), r.values_.end());
  }
}

Tensor tensor(const NestedList& values, TensorOptions options) {
  DType dt = options.has_dtype() ? options.dtype() : [&] {
    switch (values.kind()) {
      case NestedList::Kind::Bool: return kBool;
      case NestedList::Kind::Int: return kInt64;
      case NestedList::Kind::Float: return kFloat32;
      case NestedList::Kind::Double: return get_default_dtype();
    }
    return kFloat32;
  }();
  Tensor cpu = make_tensor(values.shape(), dt, Device(kCPU), "tensor");
  visit_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = static_cast<T*>(cpu.data_ptr());
    for (size_t i = 0; i < values.values().size(); ++i) p[i] = convert<T>(values.values()[i]);
  });
  return finish_factory(cpu.to(options.device()), options);
}

template <class T>
Tensor tensor(const std::vector<T>& values, TensorOptions options) {
  DType dt = options.has_dtype() ? options.dtype() : dtype_of_v<T>;
  Tensor cpu = make_tensor({static_cast<int64_t>(values.size())}, dtype_of_v<T>, Device(kCPU), "tensor");
  std::copy(values.begin(), values.end(), static_cast<T*>(cpu.data_ptr()));
  return finish_factory(cpu.to(options.device(), dt), options);
}

template <class T, std::enable_if_t<std::is_arithmetic_v<T>, int>>
Tensor tensor(T value, TensorOptions options) {
  return scalar_tensor(Scalar(value), options);
}

#define EMBER_INSTANTIATE(T)                                                \
  template Tensor tensor<T>(const std::vector<T>&, TensorOptions);          \
  template Tensor tensor<T, 0>(T, TensorOptions);
EMBER_INSTANTIATE(bool)
EMBER_INSTANTIATE(uint8_t)
EMBER_INSTANTIATE(int8_t)
EMBER_INSTANTIATE(int32_t)
EMBER_INSTANTIATE(int64_t)
EMBER_INSTANTIATE(float)
EMBER_INSTANTIATE(double)
#undef EMBER_INSTANTIATE
template Tensor tensor<Half>(const std::vector<Half>&, TensorOptions);
template Tensor tensor<BFloat16>(const std::vector<BFloat16>&, TensorOptions);

Tensor from_blob(void* data, IntArrayRef sizes, IntArrayRef strides,
                 std::function<void(void*)> deleter, TensorOptions options) {
  EMBER_CHECK(data != nullptr || checked_numel(sizes, "from_blob") == 0, ValueError,
              "[from_blob] null data pointer for shape ", sizes);
  EMBER_CHECK(sizes.size() == strides.size(), ShapeError, "[from_blob] sizes ", sizes,
              " and strides ", strides, " differ in length");
  check_device_usable(options.device(), "from_blob");
  int64_t max_index = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    EMBER_CHECK(sizes[i] >= 0 && strides[i] >= 0, ValueError,
                "[from_blob] sizes and strides must be non-negative, got ", sizes, " and ", strides);
    if (sizes[i] > 0) max_index += (sizes[i] - 1) * strides[i];
  }
  auto st = std::make_shared<Storage>();
  st->data = data;
  st->nbytes = checked_numel(sizes, "from_blob") == 0
                   ? 0
                   : static_cast<size_t>(max_index + 1) * element_size(options.dtype());
  st->device = options.device();
  st->deleter = std::move(deleter);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(st);
  impl->sizes = sizes.vec();
  impl->strides = strides.vec();
  impl->dtype = options.dtype();
  impl->device = options.device();
  return finish_factory(Tensor(std::move(impl)), options);
}

Tensor from_blob(void* data, IntArrayRef sizes, std::function<void(void*)> deleter,
                 TensorOptions options) {
  std::vector<int64_t> st = contiguous_strides(sizes);
  return from_blob(data, sizes, st, std::move(deleter), options);
}

Tensor from_blob(void* data, IntArrayRef sizes, TensorOptions options) {
  return from_blob(data, sizes, std::function<void(void*)>(), options);
}

Tensor empty(IntArrayRef sizes, TensorOptions options) {
  return finish_factory(make_tensor(sizes, options.dtype(), options.device(), "empty"), options);
}
Tensor empty(IntArrayRef sizes, TensorOptions options, MemoryFormat format) {
  return finish_factory(make_tensor(sizes, options.dtype(), options.device(), "empty", format),
                        options);
}

Tensor empty_strided(IntArrayRef sizes, IntArrayRef strides, TensorOptions options) {
  EMBER_CHECK(sizes.size() == strides.size(), ShapeError, "[empty_strided] sizes ", sizes,
              " and strides ", strides, " differ in length");
  int64_t n = 0;
  bool empty_t = checked_numel(sizes, "empty_strided") == 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    EMBER_CHECK(strides[i] >= 0, ValueError, "[empty_strided] negative stride in ", strides);
    if (sizes[i] > 0) n += (sizes[i] - 1) * strides[i];
  }
  Tensor base = make_tensor({empty_t ? 0 : n + 1}, options.dtype(), options.device(), "empty_strided");
  return finish_factory(make_view(base, sizes.vec(), strides.vec(), 0), options);
}

Tensor full(IntArrayRef sizes, Scalar value, TensorOptions options) {
  if (!options.has_dtype()) options = options.dtype(value.type());
  Tensor t = make_tensor(sizes, options.dtype(), options.device(), "full");
  t.fill_(value);
  return finish_factory(t, options);
}
Tensor zeros(IntArrayRef sizes, TensorOptions options) {
  return full(sizes, 0, options.dtype(options.dtype()));
}
Tensor ones(IntArrayRef sizes, TensorOptions options) {
  return full(sizes, 1, options.dtype(options.dtype()));
}
Tensor scalar_tensor(Scalar value, TensorOptions options) { return full({}, value, options); }

Tensor arange(Scalar start, Scalar end, Scalar step, TensorOptions options) {
  bool integral = start.is_integral(true) && end.is_integral(true) && step.is_integral(true);
  if (!options.has_dtype()) options = options.dtype(integral ? kInt64 : get_default_dtype());
  const double s = start.to_double(), e = end.to_double(), st = step.to_double();
  EMBER_CHECK(st != 0, ValueError, "[arange] step must be non-zero");
  EMBER_CHECK(std::isfinite(s) && std::isfinite(e), ValueError, "[arange] bounds must be finite, got ",
              start, " and ", end);
  EMBER_CHECK((st > 0 && e >= s) || (st < 0 && e <= s), ValueError,
              "[arange] upper bound and step have inconsistent signs: start ", start, ", end ", end,
              ", step ", step);
  int64_t n;
  if (integral) {
    // ceil((end - start) / step), exact for any int64 bounds (through double, bounds beyond 2^53
    // would round): the span and the step's magnitude in uint64, where both are exact.
    const int64_t si = start.to_long(), ei = end.to_long(), sti = step.to_long();
    EMBER_CHECK((sti > 0 && ei >= si) || (sti < 0 && ei <= si), ValueError,
                "[arange] upper bound and step have inconsistent signs: start ", start, ", end ",
                end, ", step ", step);
    const uint64_t span = sti > 0 ? static_cast<uint64_t>(ei) - static_cast<uint64_t>(si)
                                  : static_cast<uint64_t>(si) - static_cast<uint64_t>(ei);
    const uint64_t mag =
        sti > 0 ? static_cast<uint64_t>(sti) : uint64_t{0} - static_cast<uint64_t>(sti);
    const uint64_t q = span / mag + (span % mag != 0 ? 1 : 0);
    EMBER_CHECK(q < (uint64_t{1} << 63), ValueError, "[arange] too many elements: ", q);
    n = static_cast<int64_t>(q);
  } else {
    const double count = std::ceil((e - s) / st);
    EMBER_CHECK(count < 9.2e18, ValueError, "[arange] too many elements: ", count);
    n = static_cast<int64_t>(count);
  }
  // Computed where it lives: on a GPU by a kernel, no host buffer and no upload.
  Tensor t = make_tensor({n}, options.dtype(), options.device(), "arange");
  launch(t.device(), cpu::arange, cuda::arange, t, start, step, integral);
  return finish_factory(t, options);
}
Tensor arange(Scalar start, Scalar end, TensorOptions options) { return arange(start, end, 1, options); }
Tensor arange(Scalar end, TensorOptions options) { return arange(0, end, 1, options); }

Tensor linspace(Scalar start, Scalar end, int64_t steps, TensorOptions options) {
  EMBER_CHECK(steps >= 0, ValueError, "[linspace] number of steps must be non-negative, got ", steps);
  // Symmetric evaluation like PyTorch (the second half counts back from `end`), computed where
  // the tensor lives.
  Tensor t = make_tensor({steps}, options.dtype(), options.device(), "linspace");
  launch(t.device(), cpu::linspace, cuda::linspace, t, start.to_double(), end.to_double());
  return finish_factory(t, options);
}

Tensor eye(int64_t n, int64_t m, TensorOptions options) {
  EMBER_CHECK(n >= 0 && m >= 0, ValueError, "[eye] sizes must be non-negative, got ", n, " and ", m);
  Tensor t = zeros({n, m}, options);
  t.diagonal().fill_(1);
  return t;
}
Tensor eye(int64_t n, TensorOptions options) { return eye(n, n, options); }

Tensor empty_like(const Tensor& t, std::optional<TensorOptions> o, MemoryFormat format) {
  return empty(t.sizes(), like_options(t, o), resolve_format(format, t));
}
Tensor zeros_like(const Tensor& t, std::optional<TensorOptions> o, MemoryFormat format) {
  return full_like(t, 0, o, format);
}
Tensor ones_like(const Tensor& t, std::optional<TensorOptions> o, MemoryFormat format) {
  return full_like(t, 1, o, format);
}
Tensor full_like(const Tensor& t, Scalar value, std::optional<TensorOptions> o,
                 MemoryFormat format) {
  const TensorOptions options = like_options(t, o);
  Tensor out = make_tensor(t.sizes(), options.dtype(), options.device(), "full_like",
                           resolve_format(format, t));
  out.fill_(value);
  return finish_factory(out, options);
}

}  // namespace ember
