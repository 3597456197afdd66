// CUDA fill and copy: any strides on either side (up to 16 dims), every dtype conversion the CPU
// copy does (the same rules: half and bfloat16 through float, round to nearest even; bool is
// "!= 0"), and copies between the host and the device.
//
// Same dtype and both dense in the same layout: one cudaMemcpyAsync on the current stream (host
// to device from pageable memory returns once the source is staged; device to host waits for the
// stream). Otherwise a grid-stride kernel computes each element's two offsets from its linear
// index; across devices the source is first made contiguous on its own device, moved with one
// memcpy, and converted/strided on the destination's side (loops.cuh's map).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/kernels.hpp"
#include "core/tensor_impl.hpp"
#include "cuda/common.cuh"
#include "cuda/loops.cuh"
#include "ember/cuda/cuda.hpp"

namespace ember::cuda {
namespace {

using detail::BF16Bits;
using detail::HalfBits;
using detail::stream_of;
using detail::visit_device_dtype;

// (Device lambdas may not sit inside the generic lambdas of the dtype visits: each lives in a
// named function template.)
template <class O, class I>
void convert_on_device(const Tensor& out, const Tensor& src) {
  detail::map<O, I>(out, [] __device__(I v) { return detail::convert<O>(v); }, src);
}

template <class O>
void fill_with(const Tensor& out, O v) {
  detail::map<O>(out, [v] __device__() { return v; });
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
  visit_device_dtype(out.dtype(), [&](auto ot) {
    using O = typename decltype(ot)::type;
    visit_device_dtype(src.dtype(), [&](auto it) {
      using I = typename decltype(it)::type;
      convert_on_device<O, I>(out, src);
    });
  });
}

}  // namespace

void fill(const Tensor& out, Scalar value) {
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
    fill_with<O>(out, v);
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
