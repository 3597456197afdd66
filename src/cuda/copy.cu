// CUDA fill and copy: any strides on either side (up to 16 dims), every dtype conversion the CPU
// copy does (the same rules: half and bfloat16 through float, round to nearest even; bool is
// "!= 0"), and copies between the host and the device.
//
// Same dtype and both dense in the same layout: one cudaMemcpyAsync on the current stream (host
// to device from pageable memory returns once the source is staged; device to host waits for the
// stream). Otherwise a grid-stride kernel computes each element's two offsets from its linear
// index; across devices the source is first made contiguous on its own device, moved with one
// memcpy, and converted/strided on the destination's side.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/kernels.hpp"
#include "core/tensor_impl.hpp"
#include "cuda/common.cuh"
#include "ember/cuda/cuda.hpp"

namespace ember::cuda {
namespace {

// Device-side storage types of Ember's dtypes (half and bfloat16 as their 16 bits).
struct HalfBits {
  uint16_t v;
};
struct BF16Bits {
  uint16_t v;
};

template <class T>
struct Tag {
  using type = T;
};

template <class F>
void visit_device_dtype(DType dt, F&& f) {
  switch (dt) {
    case DType::Bool: f(Tag<bool>{}); return;
    case DType::UInt8: f(Tag<uint8_t>{}); return;
    case DType::Int8: f(Tag<int8_t>{}); return;
    case DType::Int32: f(Tag<int32_t>{}); return;
    case DType::Int64: f(Tag<int64_t>{}); return;
    case DType::Float16: f(Tag<HalfBits>{}); return;
    case DType::BFloat16: f(Tag<BF16Bits>{}); return;
    case DType::Float32: f(Tag<float>{}); return;
    case DType::Float64: f(Tag<double>{}); return;
  }
  throw DTypeError(ember::detail::str_cat("[cuda] unknown dtype ", dt));
}

template <class O, class I>
__device__ __forceinline__ O convert(I v) {
  if constexpr (std::is_same_v<O, I>) {
    return v;
  } else if constexpr (std::is_same_v<I, HalfBits>) {
    return convert<O>(__half2float(__ushort_as_half(v.v)));
  } else if constexpr (std::is_same_v<I, BF16Bits>) {
    return convert<O>(__bfloat162float(__ushort_as_bfloat16(v.v)));
  } else if constexpr (std::is_same_v<O, HalfBits>) {
    return HalfBits{__half_as_ushort(__float2half_rn(static_cast<float>(v)))};
  } else if constexpr (std::is_same_v<O, BF16Bits>) {
    return BF16Bits{__bfloat16_as_ushort(__float2bfloat16_rn(static_cast<float>(v)))};
  } else if constexpr (std::is_same_v<O, bool>) {
    return v != I(0);
  } else {
    return static_cast<O>(v);
  }
}

constexpr int kMaxDims = 16;

/// Sizes and the element strides of up to two tensors of one shape, size-1 dims dropped.
struct Layout {
  int ndim = 0;
  int64_t sizes[kMaxDims];
  int64_t strides[2][kMaxDims];
};

Layout make_layout(const Tensor& a, const Tensor* b, const char* op) {
  Layout l;
  for (int64_t d = 0; d < a.dim(); ++d) {
    if (a.size(d) == 1) continue;
    EMBER_CHECK(l.ndim < kMaxDims, ShapeError, "[", op, "] CUDA kernels take at most ", kMaxDims,
                " dims of size > 1, got ", a.sizes());
    l.sizes[l.ndim] = a.size(d);
    l.strides[0][l.ndim] = a.stride(d);
    l.strides[1][l.ndim] = b ? b->stride(d) : 0;
    ++l.ndim;
  }
  return l;
}

__device__ __forceinline__ void offsets(const Layout& l, int64_t i, int64_t& o0, int64_t& o1) {
  o0 = 0;
  o1 = 0;
  for (int d = l.ndim - 1; d >= 0; --d) {
    const int64_t idx = i % l.sizes[d];
    i /= l.sizes[d];
    o0 += idx * l.strides[0][d];
    o1 += idx * l.strides[1][d];
  }
}

template <class O, class I>
__global__ void copy_kernel(O* out, const I* in, Layout l, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    int64_t oo = 0, io = 0;
    offsets(l, i, oo, io);
    out[oo] = convert<O>(in[io]);
  }
}

template <class O>
__global__ void fill_kernel(O* out, O value, Layout l, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    int64_t oo = 0, unused = 0;
    offsets(l, i, oo, unused);
    out[oo] = value;
  }
}

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 65535 * 8 ? b : 65535 * 8);  // grid-stride beyond
}

cudaStream_t stream_of(const Tensor& t) {
  return static_cast<cudaStream_t>(current_stream(t.device().index()).handle());
}

/// Both dense (contiguous) with the same dtype: bytes can be moved as they are.
bool raw_copyable(const Tensor& out, const Tensor& src) {
  return out.dtype() == src.dtype() && out.is_contiguous() && src.is_contiguous();
}

/// out = src (converted, strided), both on out's CUDA device.
void copy_on_device(const Tensor& out, const Tensor& src) {
  const int64_t n = out.numel();
  if (n == 0) return;
  detail::DeviceGuard guard(out.device().index());
  cudaStream_t stream = stream_of(out);
  if (raw_copyable(out, src)) {
    EMBER_CUDA_CHECK(cudaMemcpyAsync(out.data_ptr(), src.data_ptr(), out.nbytes(),
                                     cudaMemcpyDeviceToDevice, stream));
    return;
  }
  const Layout l = make_layout(out, &src, "copy");
  visit_device_dtype(out.dtype(), [&](auto ot) {
    using O = typename decltype(ot)::type;
    visit_device_dtype(src.dtype(), [&](auto it) {
      using I = typename decltype(it)::type;
      copy_kernel<O, I><<<blocks_for(n), kThreads, 0, stream>>>(
          static_cast<O*>(out.data_ptr()), static_cast<const I*>(src.data_ptr()), l, n);
      EMBER_CUDA_CHECK_LAUNCH();
    });
  });
}

}  // namespace

void fill(const Tensor& out, Scalar value) {
  const int64_t n = out.numel();
  if (n == 0) return;
  detail::DeviceGuard guard(out.device().index());
  const Layout l = make_layout(out, nullptr, "fill");
  visit_device_dtype(out.dtype(), [&](auto ot) {
    using O = typename decltype(ot)::type;
    O v;
    if constexpr (std::is_same_v<O, HalfBits>) {
      const Half h = value.to<Half>();
      std::memcpy(&v, &h, sizeof(v));
    } else if constexpr (std::is_same_v<O, BF16Bits>) {
      const BFloat16 h = value.to<BFloat16>();
      std::memcpy(&v, &h, sizeof(v));
    } else {
      v = value.to<O>();
    }
    fill_kernel<O><<<blocks_for(n), kThreads, 0, stream_of(out)>>>(static_cast<O*>(out.data_ptr()),
                                                                   v, l, n);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

void copy(const Tensor& out, const Tensor& src) {
  if (out.numel() == 0) return;
  if (out.device().is_cuda() && src.device().is_cuda()) {
    EMBER_CHECK(out.device() == src.device(), DeviceError, "[copy] between ", src.device(),
                " and ", out.device(), " is not supported yet");
    copy_on_device(out, src);
    return;
  }
  if (out.device().is_cuda()) {  // host -> device
    const Tensor host = src.contiguous();  // dense, src's dtype (expanded sources materialise)
    Tensor staged = raw_copyable(out, host)
                        ? out
                        : make_tensor(host.sizes(), host.dtype(), out.device(), "copy");
    {
      detail::DeviceGuard guard(out.device().index());
      EMBER_CUDA_CHECK(cudaMemcpyAsync(staged.data_ptr(), host.data_ptr(), host.nbytes(),
                                       cudaMemcpyHostToDevice, stream_of(out)));
      // From pageable memory the copy has staged the source when it returns; `host` may die.
      EMBER_CUDA_CHECK(cudaStreamSynchronize(stream_of(out)));
    }
    if (!staged.is_same(out)) copy_on_device(out, staged);
    return;
  }
  // device -> host: a dense copy on the device first, then one memcpy, then the CPU conversion.
  Tensor dev = src;
  if (!src.is_contiguous()) {
    dev = make_tensor(src.sizes(), src.dtype(), src.device(), "copy");
    copy_on_device(dev, src);
  }
  Tensor host = raw_copyable(out, dev) ? out : make_tensor(dev.sizes(), dev.dtype(), kCPU, "copy");
  {
    detail::DeviceGuard guard(dev.device().index());
    EMBER_CUDA_CHECK(cudaMemcpyAsync(host.data_ptr(), dev.data_ptr(), dev.nbytes(),
                                     cudaMemcpyDeviceToHost, stream_of(dev)));
    EMBER_CUDA_CHECK(cudaStreamSynchronize(stream_of(dev)));
  }
  if (!host.is_same(out)) cpu::copy(out, host);
}

}  // namespace ember::cuda
