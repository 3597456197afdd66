// Tensor handle: metadata, storage allocation, data access, autograd fields, conversions.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <numeric>
#include <ostream>
#include <unordered_map>

#include "core/dispatch.hpp"
#include "core/record.hpp"
#include "core/tensor_impl.hpp"
#include "cuda/allocator.hpp"
#include "ember/cuda/cuda.hpp"
#include "ember/memory.hpp"
#include "ember/ops.hpp"

namespace ember {

// ---- IntArrayRef ----

bool IntArrayRef::equals(IntArrayRef o) const {
  if (size_ != o.size_) return false;
  for (size_t i = 0; i < size_; ++i)
    if (data_[i] != o.data_[i]) return false;
  return true;
}

std::ostream& operator<<(std::ostream& os, IntArrayRef a) {
  os << '(';
  for (size_t i = 0; i < a.size(); ++i) os << (i ? ", " : "") << a[i];
  if (a.size() == 1) os << ',';
  return os << ')';
}
std::ostream& operator<<(std::ostream& os, const std::vector<int64_t>& a) {
  return os << IntArrayRef(a);
}

std::ostream& operator<<(std::ostream& os, MemoryFormat f) {
  switch (f) {
    case MemoryFormat::Contiguous:
      return os << "Contiguous";
    case MemoryFormat::ChannelsLast:
      return os << "ChannelsLast";
    case MemoryFormat::Preserve:
      return os << "Preserve";
  }
  return os << "MemoryFormat(" << static_cast<int>(f) << ")";
}

// ---- shape helpers ----

std::vector<int64_t> contiguous_strides(IntArrayRef sizes) {
  std::vector<int64_t> st(sizes.size());
  int64_t s = 1;
  for (size_t i = sizes.size(); i-- > 0;) {
    st[i] = s;
    s *= std::max<int64_t>(sizes[i], 1);
  }
  return st;
}

namespace {
/// The dims of a 4-d channels-last tensor from the innermost: C, W, H, N.
constexpr int64_t kChannelsLastOrder[4] = {1, 3, 2, 0};
}  // namespace

std::vector<int64_t> format_strides(IntArrayRef sizes, MemoryFormat format, const char* op) {
  EMBER_CHECK(format != MemoryFormat::Preserve, ValueError, "[", op,
              "] MemoryFormat::Preserve names no layout here");
  if (format == MemoryFormat::Contiguous) return contiguous_strides(sizes);
  EMBER_CHECK(sizes.size() == 4, ShapeError, "[", op,
              "] MemoryFormat::ChannelsLast needs a 4-d (N, C, H, W) shape, got ", sizes);
  std::vector<int64_t> st(4);
  int64_t s = 1;
  for (int64_t d : kChannelsLastOrder) {
    st[static_cast<size_t>(d)] = s;
    s *= std::max<int64_t>(sizes[static_cast<size_t>(d)], 1);
  }
  return st;
}

MemoryFormat resolve_format(MemoryFormat format, const Tensor& like) {
  return format == MemoryFormat::Preserve ? like.suggest_memory_format() : format;
}

MemoryFormat result_format(IntArrayRef sizes, std::initializer_list<const Tensor*> inputs) {
  for (const Tensor* t : inputs) {
    if (!t->defined() || t->sizes() != sizes) continue;
    bool expanded = false;  // a broadcast value (stride 0) has no layout to keep
    for (int64_t d = 0; d < t->dim(); ++d)
      expanded = expanded || (t->stride(d) == 0 && t->size(d) > 1);
    if (!expanded) return t->suggest_memory_format();
  }
  return MemoryFormat::Contiguous;
}

bool is_dense(const Tensor& t) { return t.is_contiguous() || !memory_order(t).empty(); }

Tensor laid_out(const Tensor& y, MemoryFormat format) {
  const MemoryFormat cl = MemoryFormat::ChannelsLast;
  return format == cl && !y.is_contiguous(cl) ? y.contiguous(cl) : y;
}

std::vector<int64_t> memory_order(const Tensor& t) {
  if (t.is_contiguous()) return {};
  std::vector<int64_t> perm(static_cast<size_t>(t.dim()));
  std::iota(perm.begin(), perm.end(), int64_t{0});
  std::stable_sort(perm.begin(), perm.end(),
                   [&](int64_t a, int64_t b) { return t.stride(a) > t.stride(b); });
  int64_t expected = 1;  // is_contiguous() of the permuted sizes and strides, without a view
  for (size_t i = perm.size(); i-- > 0;) {
    const int64_t n = t.size(perm[i]);
    if (n == 0) return perm;
    if (n == 1) continue;
    if (t.stride(perm[i]) != expected) return {};
    expected *= n;
  }
  return perm;
}

int64_t checked_numel(IntArrayRef sizes, const char* op) {
  int64_t n = 1;
  for (int64_t s : sizes) {
    EMBER_CHECK(s >= 0, ValueError, "[", op, "] sizes must be non-negative, got ", sizes);
    EMBER_CHECK(!__builtin_mul_overflow(n, s, &n), ValueError, "[", op,
                "] number of elements overflows int64 for sizes ", sizes);
  }
  return n;
}

size_t checked_nbytes(IntArrayRef sizes, DType dtype, const char* op) {
  int64_t n = checked_numel(sizes, op);
  int64_t bytes = 0;
  EMBER_CHECK(!__builtin_mul_overflow(n, static_cast<int64_t>(element_size(dtype)), &bytes),
              ValueError, "[", op, "] byte size overflows for sizes ", sizes, " of ", dtype);
  return static_cast<size_t>(bytes);
}

int64_t wrap_dim(int64_t d, int64_t ndim, const char* op, bool scalar_ok) {
  int64_t n = (ndim == 0 && scalar_ok) ? 1 : ndim;
  EMBER_CHECK(n > 0, IndexError, "[", op, "] dimension specified as ", d,
              " but the tensor has no dimensions");
  EMBER_CHECK(d >= -n && d < n, IndexError, "[", op, "] dimension out of range (expected to be in [",
              -n, ", ", n - 1, "], but got ", d, ")");
  return d < 0 ? d + n : d;
}

namespace {
std::atomic<int64_t> g_live_bytes{0}, g_peak_bytes{0}, g_num_allocs{0};

/// The allocation cap: 1 TiB (above any real machine, below absurd headers) unless
/// EMBER_MAX_ALLOC_MB says otherwise.
std::atomic<size_t>& max_alloc() {
  static std::atomic<size_t> cap = [] {
    const char* env = std::getenv("EMBER_MAX_ALLOC_MB");
    const long long mb = env != nullptr && *env != '\0' ? std::atoll(env) : 0;
    return mb > 0 ? static_cast<size_t>(mb) << 20 : size_t{1} << 40;
  }();
  return cap;
}

/// ValueError when nbytes is over the cap.
void check_allocation(size_t nbytes, const char* op) {
  const size_t cap = max_alloc().load(std::memory_order_relaxed);
  EMBER_CHECK(nbytes <= cap, ValueError, "[", op, "] allocation of ", nbytes,
              " bytes exceeds the limit of ", cap, " bytes (set_max_allocation_bytes)");
}
}  // namespace

size_t max_allocation_bytes() { return max_alloc().load(std::memory_order_relaxed); }

size_t set_max_allocation_bytes(size_t bytes) {
  EMBER_CHECK(bytes > 0, ValueError, "[set_max_allocation_bytes] expected a positive limit");
  return max_alloc().exchange(bytes, std::memory_order_relaxed);
}

void reset_peak_memory_stats() { g_peak_bytes.store(g_live_bytes.load()); }

namespace {

/// Freed blocks of at least kCacheMinBytes wait here for an allocation of the same (4 KiB rounded)
/// size, so a training loop that allocates the same activation shapes every step reuses memory
/// instead of handing it back to the OS and page-faulting it in again (about a tenth of a
/// ResNet-20 step). At most `limit` bytes are kept (EMBER_CPU_CACHE_MB, default 1024; 0 turns the
/// cache off); empty_cpu_cache() frees them. Never destroyed, so tensors freed during static
/// destruction can still return their blocks.
struct BlockCache {
  std::mutex mu;
  std::unordered_multimap<size_t, void*> blocks;
  int64_t bytes = 0;
  int64_t limit = 0;
};
constexpr size_t kCacheMinBytes = size_t{256} << 10;

BlockCache& block_cache() {
  static BlockCache* cache = [] {
    auto* c = new BlockCache;
    const char* env = std::getenv("EMBER_CPU_CACHE_MB");
    const long long mb = env != nullptr && *env != '\0' ? std::atoll(env) : 1024;
    c->limit = static_cast<int64_t>(std::max(0LL, mb)) << 20;
    return c;
  }();
  return *cache;
}

void* cache_take(size_t rounded) {
  BlockCache& c = block_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  auto it = c.blocks.find(rounded);
  if (it == c.blocks.end()) return nullptr;
  void* p = it->second;
  c.blocks.erase(it);
  c.bytes -= static_cast<int64_t>(rounded);
  return p;
}

bool cache_put(void* p, size_t rounded) {
  BlockCache& c = block_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  if (c.bytes + static_cast<int64_t>(rounded) > c.limit) return false;
  c.blocks.emplace(rounded, p);
  c.bytes += static_cast<int64_t>(rounded);
  return true;
}

}  // namespace

void empty_cpu_cache() {
  BlockCache& c = block_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  for (auto& [size, p] : c.blocks) std::free(p);
  c.blocks.clear();
  c.bytes = 0;
}

std::shared_ptr<Storage> allocate_storage(size_t nbytes, Device device, const char* op) {
  check_device_usable(device, op);
  check_allocation(nbytes, op);
  if (device.is_cuda()) return cuda::detail::allocate_storage(nbytes, device, op);
  auto st = std::make_shared<Storage>();
  st->nbytes = nbytes;
  st->device = device;
  size_t rounded = (std::max<size_t>(nbytes, 1) + 63) / 64 * 64;
  const bool cacheable = rounded >= kCacheMinBytes;
  if (cacheable) rounded = (rounded + 4095) / 4096 * 4096;
  void* p = cacheable ? cache_take(rounded) : nullptr;
  if (p == nullptr) p = std::aligned_alloc(64, rounded);
  if (p == nullptr && cacheable) {  // memory is short: give the cached blocks back and retry
    empty_cpu_cache();
    p = std::aligned_alloc(64, rounded);
  }
  EMBER_CHECK(p != nullptr, ValueError, "[", op, "] out of memory allocating ", nbytes, " bytes");
  st->data = p;
  const int64_t counted = static_cast<int64_t>(rounded);
  int64_t live = g_live_bytes.fetch_add(counted) + counted;
  int64_t peak = g_peak_bytes.load();
  while (live > peak && !g_peak_bytes.compare_exchange_weak(peak, live)) {
  }
  g_num_allocs.fetch_add(1);
  st->deleter = [counted, cacheable](void* q) {
    if (!cacheable || !cache_put(q, static_cast<size_t>(counted))) std::free(q);
    g_live_bytes.fetch_sub(counted);
  };
  return st;
}

MemoryStats cpu_memory_stats() {
  int64_t cached = 0;
  {
    BlockCache& c = block_cache();
    std::lock_guard<std::mutex> lock(c.mu);
    cached = c.bytes;
  }
  return MemoryStats{g_live_bytes.load(), g_peak_bytes.load(), g_num_allocs.load(), cached};
}

Tensor make_tensor(IntArrayRef sizes, DType dtype, Device device, const char* op) {
  return make_tensor(sizes, dtype, device, op, MemoryFormat::Contiguous);
}

Tensor make_tensor(IntArrayRef sizes, DType dtype, Device device, const char* op,
                   MemoryFormat format) {
  size_t nbytes = checked_nbytes(sizes, dtype, op);  // first: the strides' products fit then
  std::vector<int64_t> strides = format_strides(sizes, format, op);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = allocate_storage(nbytes, device, op);
  impl->sizes = sizes.vec();
  impl->strides = std::move(strides);
  impl->dtype = dtype;
  impl->device = impl->storage->device;  // cuda (no index) resolves to the current device
  return Tensor(std::move(impl));
}

Tensor make_view(const Tensor& base, std::vector<int64_t> sizes, std::vector<int64_t> strides,
                 int64_t offset) {
  const TensorImpl* b = base.unsafe_impl();
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = b->storage;
  impl->sizes = std::move(sizes);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = b->dtype;
  impl->device = b->device;
  impl->version = b->version;
  return Tensor(std::move(impl));
}

namespace {
/// The first defined tensor of ts (0-d CPU tensors skipped when scalars_join), after checking
/// that every other one is on its device; nullptr when there is none.
const Tensor* device_leader(std::initializer_list<const Tensor*> ts, const char* op,
                           bool scalars_join) {
  const Tensor* first = nullptr;
  for (const Tensor* t : ts) {
    if (!t->defined() || (scalars_join && t->dim() == 0 && t->is_cpu())) continue;
    if (!first) {
      first = t;
      continue;
    }
    EMBER_CHECK(t->device() == first->device(), DeviceError, "[", op,
                "] expected all tensors on the same device, got ", first->device(), " and ",
                t->device());
  }
  return first;
}
}  // namespace

void check_same_device(std::initializer_list<const Tensor*> ts, const char* op) {
  device_leader(ts, op, /*scalars_join=*/false);
}

Device common_device(std::initializer_list<const Tensor*> ts, const char* op) {
  const Tensor* first = device_leader(ts, op, /*scalars_join=*/true);
  return first ? first->device() : Device(kCPU);
}

Tensor on_device(const Tensor& t, Device device) {
  return !t.defined() || t.device() == device ? t : t.to(device);
}

void check_device_usable(Device d, const char* op) {
  if (d.is_cpu()) return;
  EMBER_CHECK(cuda::is_built(), DeviceError, "[", op, "] cannot use device ", d,
              ": Ember was built without CUDA (configure with -DEMBER_CUDA=ON)");
  EMBER_CHECK(cuda::device_count() > 0, DeviceError, "[", op, "] cannot use device ", d,
              ": no CUDA GPU is available on this machine");
  EMBER_CHECK(d.index() < cuda::device_count(), DeviceError, "[", op, "] device ", d,
              " does not exist: ", cuda::device_count(), " CUDA device(s) found");
}

// ---- metadata ----

#define EMBER_IMPL_CHECK(op)                                                                  \
  EMBER_CHECK(impl_ != nullptr, ValueError, "[", op, "] the tensor is undefined (default-constructed)")

IntArrayRef Tensor::sizes() const {
  EMBER_IMPL_CHECK("sizes");
  return IntArrayRef(impl_->sizes);
}
IntArrayRef Tensor::strides() const {
  EMBER_IMPL_CHECK("strides");
  return IntArrayRef(impl_->strides);
}
int64_t Tensor::size(int64_t d) const {
  EMBER_IMPL_CHECK("size");
  return impl_->sizes[wrap_dim(d, dim(), "size", false)];
}
int64_t Tensor::stride(int64_t d) const {
  EMBER_IMPL_CHECK("stride");
  return impl_->strides[wrap_dim(d, dim(), "stride", false)];
}
int64_t Tensor::dim() const {
  EMBER_IMPL_CHECK("dim");
  return static_cast<int64_t>(impl_->sizes.size());
}
int64_t Tensor::numel() const {
  EMBER_IMPL_CHECK("numel");
  return impl_->numel();
}
int64_t Tensor::storage_offset() const {
  EMBER_IMPL_CHECK("storage_offset");
  return impl_->offset;
}
DType Tensor::dtype() const {
  EMBER_IMPL_CHECK("dtype");
  return impl_->dtype;
}
Device Tensor::device() const {
  EMBER_IMPL_CHECK("device");
  return impl_->device;
}
TensorOptions Tensor::options() const {
  return TensorOptions().dtype(dtype()).device(device());
}
bool Tensor::is_contiguous() const {
  EMBER_IMPL_CHECK("is_contiguous");
  int64_t expected = 1;
  for (size_t i = impl_->sizes.size(); i-- > 0;) {
    if (impl_->sizes[i] == 1) continue;
    if (impl_->sizes[i] == 0) return true;
    if (impl_->strides[i] != expected) return false;
    expected *= impl_->sizes[i];
  }
  return true;
}
bool Tensor::is_contiguous(MemoryFormat format) const {
  EMBER_IMPL_CHECK("is_contiguous");
  EMBER_CHECK(format != MemoryFormat::Preserve, ValueError,
              "[is_contiguous] MemoryFormat::Preserve is not a layout");
  if (format == MemoryFormat::Contiguous) return is_contiguous();
  if (impl_->sizes.size() != 4) return false;
  int64_t expected = 1;
  for (int64_t d : kChannelsLastOrder) {
    const int64_t n = impl_->sizes[static_cast<size_t>(d)];
    if (n == 0) return true;
    if (n == 1) continue;
    if (impl_->strides[static_cast<size_t>(d)] != expected) return false;
    expected *= n;
  }
  return true;
}
MemoryFormat Tensor::suggest_memory_format() const {
  EMBER_IMPL_CHECK("suggest_memory_format");
  // PyTorch's rule: the strides ordered as channels-last's (C innermost, then W, H, N), gaps
  // allowed. A size-1 dim counts by its stride, so a (N, 1, H, W) tensor made channels-last,
  // strides (H W, 1, W, 1), is told apart from a row-major one, (H W, H W, W, 1); ambiguous
  // cases (N, 1, 1, 1) stay Contiguous.
  if (impl_->sizes.size() != 4 || impl_->strides[1] == 0) return MemoryFormat::Contiguous;
  int64_t min = 0;
  for (int64_t d : kChannelsLastOrder) {
    const int64_t n = impl_->sizes[static_cast<size_t>(d)];
    const int64_t st = impl_->strides[static_cast<size_t>(d)];
    if (n == 0 || st < min) return MemoryFormat::Contiguous;
    if (d == 0 && min == impl_->strides[1]) return MemoryFormat::Contiguous;
    min = n > 1 ? st * n : st;
  }
  return MemoryFormat::ChannelsLast;
}
size_t Tensor::nbytes() const { return static_cast<size_t>(numel()) * element_size(); }
bool Tensor::is_alias_of(const Tensor& other) const {
  return defined() && other.defined() && impl_->storage == other.impl_->storage;
}
bool Tensor::is_wrapped_number() const { return impl_ && impl_->wrapped_number; }

// ---- data access ----

void* Tensor::data_ptr() const {
  EMBER_IMPL_CHECK("data_ptr");
  if (!impl_->storage || !impl_->storage->data) return nullptr;
  return static_cast<char*>(impl_->storage->data) +
         impl_->offset * static_cast<int64_t>(ember::element_size(impl_->dtype));
}

template <class T>
T* Tensor::data_ptr() const {
  EMBER_CHECK(dtype() == dtype_of_v<T>, DTypeError, "[data_ptr] expected ", dtype_of_v<T>,
              " but the tensor is ", dtype());
  return static_cast<T*>(data_ptr());
}

Scalar Tensor::item() const {
  EMBER_CHECK(numel() == 1, ValueError, "[item] a tensor with ", numel(),
              " elements cannot be converted to a scalar; shape ", sizes());
  Tensor c = is_cpu() ? *this : to(Device(kCPU));
  return visit_dtype(c.dtype(), [&](auto tag) -> Scalar {
    using T = typename decltype(tag)::type;
    return Scalar(*static_cast<const T*>(c.data_ptr()));
  });
}

template <class T>
T Tensor::item() const {
  return item().to<T>();
}

#define EMBER_INSTANTIATE(T)                \
  template T* Tensor::data_ptr<T>() const; \
  template T Tensor::item<T>() const;
EMBER_INSTANTIATE(bool)
EMBER_INSTANTIATE(uint8_t)
EMBER_INSTANTIATE(int8_t)
EMBER_INSTANTIATE(int32_t)
EMBER_INSTANTIATE(int64_t)
EMBER_INSTANTIATE(Half)
EMBER_INSTANTIATE(BFloat16)
EMBER_INSTANTIATE(float)
EMBER_INSTANTIATE(double)
#undef EMBER_INSTANTIATE

// ---- autograd fields ----

bool Tensor::requires_grad() const { return impl_ && impl_->requires_grad; }
Tensor& Tensor::requires_grad_(bool r) {
  EMBER_IMPL_CHECK("requires_grad_");
  EMBER_CHECK(!r || is_floating(impl_->dtype), DTypeError,
              "[requires_grad_] only floating tensors can require gradients, got ", impl_->dtype);
  impl_->requires_grad = r;
  return *this;
}
const Tensor& Tensor::grad() const {
  EMBER_IMPL_CHECK("grad");
  return impl_->grad;
}
Tensor& Tensor::mutable_grad() {
  EMBER_IMPL_CHECK("mutable_grad");
  return impl_->grad;
}
std::shared_ptr<autograd::Node> Tensor::grad_fn() const { return impl_ ? impl_->grad_fn : nullptr; }
bool Tensor::is_leaf() const { return !impl_ || impl_->grad_fn == nullptr; }
uint32_t Tensor::_version() const {
  EMBER_IMPL_CHECK("_version");
  return impl_->version->load();
}
void Tensor::bump_version() const {
  EMBER_IMPL_CHECK("bump_version");
  impl_->version->fetch_add(1);
}

// ---- conversions ----

Tensor Tensor::to(TensorOptions o, bool non_blocking, bool copy, MemoryFormat format) const {
  EMBER_IMPL_CHECK("to");
  DType dt = o.has_dtype() ? o.dtype() : dtype();
  Device dev = o.device();
  if (dev.is_cuda() && dev.index() < 0 && cuda::is_available())
    dev = Device(kCUDA, cuda::current_device());  // as the tensor would report it
  if (!copy && dt == dtype() && dev == device() &&
      (format == MemoryFormat::Preserve || is_contiguous(format)))
    return *this;
  Tensor out = make_tensor(sizes(), dt, dev, "to", resolve_format(format, *this));
  {
    NoGradGuard no_grad;
    out.copy_(*this, non_blocking);
  }
  if (is_floating(dt) && autograd::needs_grad({this})) {
    TensorOptions back = options();  // the gradient goes back to the input's dtype and device
    autograd::record("to", {*this}, out, {}, [back](const autograd::Saved&, const Tensor& dy) {
      return autograd::Grads{dy.to(back)};
    });
  }
  return out;
}
Tensor Tensor::to(Device d, bool non_blocking, bool copy, MemoryFormat format) const {
  return to(TensorOptions().device(d).dtype(dtype()), non_blocking, copy, format);
}
Tensor Tensor::to(DType t, bool non_blocking, bool copy, MemoryFormat format) const {
  return to(TensorOptions().device(device()).dtype(t), non_blocking, copy, format);
}
Tensor Tensor::to(Device d, DType t, bool non_blocking, bool copy, MemoryFormat format) const {
  return to(TensorOptions().device(d).dtype(t), non_blocking, copy, format);
}
Tensor Tensor::cpu() const { return to(Device(kCPU)); }
Tensor Tensor::pin_memory() const {
  EMBER_IMPL_CHECK("pin_memory");
  EMBER_CHECK(is_cpu(), DeviceError, "[pin_memory] expected a CPU tensor, got one on ", device());
  if (is_pinned()) return *this;
  const size_t n = checked_nbytes(sizes(), dtype(), "pin_memory");
  check_allocation(n, "pin_memory");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = cuda::detail::allocate_pinned_storage(n, "pin_memory");
  impl->sizes = sizes().vec();
  impl->strides = contiguous_strides(sizes());
  impl->dtype = dtype();
  impl->device = Device(kCPU);
  Tensor out = Tensor(std::move(impl));
  NoGradGuard no_grad;
  out.copy_(*this);
  return out;
}
bool Tensor::is_pinned() const {
  EMBER_IMPL_CHECK("is_pinned");
  return impl_->storage && impl_->storage->pinned;
}
Tensor Tensor::cuda() const { return to(Device(kCUDA, 0)); }

Tensor Tensor::contiguous(MemoryFormat format) const {
  EMBER_IMPL_CHECK("contiguous");
  EMBER_CHECK(format != MemoryFormat::Preserve, ValueError,
              "[contiguous] MemoryFormat::Preserve is not a layout to make");
  EMBER_CHECK(format != MemoryFormat::ChannelsLast || dim() == 4, ShapeError,
              "[contiguous] MemoryFormat::ChannelsLast needs a 4-d (N, C, H, W) tensor, got ",
              sizes());
  return is_contiguous(format) ? *this : clone(format);
}
Tensor Tensor::clone(MemoryFormat format) const {
  EMBER_IMPL_CHECK("clone");
  Tensor out = make_tensor(sizes(), dtype(), device(), "clone", resolve_format(format, *this));
  {
    NoGradGuard no_grad;
    out.copy_(*this);
  }
  autograd::record("clone", {*this}, out, {},
                   [](const autograd::Saved&, const Tensor& dy) { return autograd::Grads{dy}; });
  return out;
}

Tensor& Tensor::copy_(const Tensor& src, bool non_blocking) {
  EMBER_IMPL_CHECK("copy_");
  EMBER_CHECK(src.defined(), ValueError, "[copy_] the source tensor is undefined");
  std::vector<int64_t> shape = broadcast_shapes(sizes(), src.sizes(), "copy_");
  EMBER_CHECK(IntArrayRef(shape) == sizes(), ShapeError, "[copy_] source shape ", src.sizes(),
              " cannot be broadcast to destination shape ", sizes());
  autograd::check_inplace(*this, "copy_");
  const bool record = is_floating(dtype()) && autograd::needs_grad({this, &src});
  if (record) autograd::check_not_view_write(*this, "copy_");
  {
    NoGradGuard no_grad;
    Tensor s = src.expand(sizes());
    // Between the host and a GPU the CUDA copy moves the data, whichever side is the destination.
    if (non_blocking && is_cuda() != s.is_cuda())
      cuda::copy_non_blocking(*this, s);
    else
      launch(is_cpu() ? s.device() : device(), cpu::copy, cuda::copy, *this, s);
  }
  bump_version();
  if (record) {
    // The old value of self is overwritten (zero gradient); src gets dy in its dtype and device.
    TensorOptions src_options = src.options();
    const bool src_floating = is_floating(src.dtype());
    autograd::record("copy_", {*this, src}, *this, {},
                     [src_options, src_floating](const autograd::Saved&, const Tensor& dy) {
                       return autograd::Grads{zeros_like(dy),
                                              src_floating ? dy.to(src_options) : Tensor()};
                     });
  }
  return *this;
}

Tensor& Tensor::fill_(Scalar v) {
  EMBER_IMPL_CHECK("fill_");
  autograd::check_inplace(*this, "fill_");
  launch(device(), cpu::fill, cuda::fill, *this, v);
  bump_version();
  // The old value is overwritten: its gradient is zero.
  autograd::record("fill_", {*this}, *this, {}, [](const autograd::Saved&, const Tensor& dy) {
    return autograd::Grads{zeros_like(dy)};
  });
  return *this;
}
Tensor& Tensor::fill_(const Tensor& v) {
  EMBER_CHECK(v.defined() && v.dim() == 0, ShapeError,
              "[fill_] expected a 0-d value tensor, got shape ", v.defined() ? v.sizes() : IntArrayRef());
  return fill_(v.item());
}
Tensor& Tensor::zero_() { return fill_(0); }

// ---- indexing::TensorIndex ----

namespace indexing {
Slice::Slice(std::optional<int64_t> start, std::optional<int64_t> stop,
             std::optional<int64_t> step)
    : start_(start.value_or(0)),
      stop_(stop.value_or(std::numeric_limits<int64_t>::max())),
      step_(step.value_or(1)) {
  EMBER_CHECK(step_ > 0, ValueError, "[Slice] step must be positive, got ", step_);
  if (!start && step_ < 0) start_ = std::numeric_limits<int64_t>::max();
}
TensorIndex::TensorIndex(const char* s) : kind_(Kind::Ellipsis) {
  EMBER_CHECK(s != nullptr && std::strcmp(s, "...") == 0, ValueError,
              "[index] the only string index is \"...\", got \"", s ? s : "(null)", "\"");
}
TensorIndex::TensorIndex(const Tensor& t)
    : kind_(Kind::Tensor), tensor_(std::make_shared<Tensor>(t)) {}
TensorIndex::~TensorIndex() = default;
TensorIndex::TensorIndex(const TensorIndex&) = default;
TensorIndex& TensorIndex::operator=(const TensorIndex&) = default;
const Tensor& TensorIndex::tensor() const {
  EMBER_CHECK(kind_ == Kind::Tensor, ValueError, "[index] this index is not a tensor");
  return *tensor_;
}
}  // namespace indexing

}  // namespace ember
