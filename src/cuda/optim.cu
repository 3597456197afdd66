// CUDA optimizer updates: Adam/AdamW and SGD as one elementwise pass over each parameter (read p,
// g and the state once, write p and the state once) instead of the composites' ~10 (Adam) or ~5
// (SGD) tensor passes. float32 and float64, contiguous tensors of one element count; one thread
// per element, grid-stride; the options are template parameters, so no test sits in the loop.
//
// Bitwise the composite's: detail::adam_update_reference / sgd_update_reference (src/optim) on
// CUDA run the kernels of src/cuda/elementwise.cu, one tensor op after another, and this file
// repeats their float operations in the same order, each double scalar rounded once to T as the
// composite's wrapped number or alpha is. There, `a + alpha * b` (add with alpha != 1) is a single
// expression that nvcc contracts into one fma (its default -fmad=true); `a * s` then `+ t` in two
// ops are two roundings. So every operation here is written as an intrinsic with its rounding
// spelled out: __f*_rn / __d*_rn for the separately rounded mul, add, sub, div and sqrt (nvcc
// never contracts those), __fmaf_rn / __fma_rn where the composite's expression became an fma.
// CUDA's default division and sqrtf are IEEE round-to-nearest, as these intrinsics; no fast-math
// intrinsic is used. (An fma with alpha == 1, where the composite adds without a product, rounds
// a + b once: the same value.)
//
// Adam (Adam: weight decay wd folded into g; AdamW: p = p * decay_scale first):
//   g = fma(wd, p, g)  |  p = p * decay_scale
//   m = fma(1 - beta1, g - m, m)                           (exp_avg.add_(g - m, 1 - beta1))
//   v = v * beta2 + (g * (1 - beta2)) * g                  (three roundings, then the add)
//   vmax = maximum(vmax, v), NaN propagating               (amsgrad; the denominator uses vmax)
//   denom = sqrt(v) / bias_correction2_sqrt + eps
//   p = fma(-step_size, m / denom, p)
// SGD:
//   g = fma(wd, p, g)
//   buf = g on the first step, else fma(1 - dampening, g, buf * momentum)
//   g = nesterov ? fma(momentum, buf, g) : buf             (momentum != 0)
//   p = fma(-lr, g, p)
// Elementwise, so the results do not depend on the launch configuration.
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "core/kernels.hpp"
#include "cuda/loops.cuh"

namespace ember::cuda {
namespace {

using detail::blocks_for;
using detail::kThreads;
using detail::stream_of;

// ---- operations rounded once each (never contracted) ----

__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float sub_rn(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ double sub_rn(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ float div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double div_rn(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ float sqrt_rn(float a) { return __fsqrt_rn(a); }
__device__ __forceinline__ double sqrt_rn(double a) { return __dsqrt_rn(a); }
/// a * b + c rounded once: the composite's contracted `c + alpha * b` with a = alpha.
__device__ __forceinline__ float fma_rn(float a, float b, float c) { return __fmaf_rn(a, b, c); }
__device__ __forceinline__ double fma_rn(double a, double b, double c) { return __fma_rn(a, b, c); }

/// f(std::bool_constant<b>{}...) for the run-time flags b...: the options become template
/// parameters of the kernels.
template <class F>
void with_flags(F&& f) {
  f();
}
template <class F, class... Flags>
void with_flags(F&& f, bool b, Flags... rest) {
  if (b) {
    with_flags([&](auto... c) { f(std::true_type{}, c...); }, rest...);
  } else {
    with_flags([&](auto... c) { f(std::false_type{}, c...); }, rest...);
  }
}

// ---- Adam / AdamW ----

/// The step's scalars, each rounded to T once.
template <class T>
struct AdamScalars {
  T weight_decay, decay_scale, one_minus_beta1, beta2, one_minus_beta2, bias_correction2_sqrt, eps,
      neg_step_size;
};

/// P, M, V, Vmax (n) updated in place from G (n). kL2 folds the weight decay into g (Adam),
/// kDecoupled scales p first (AdamW), kAmsgrad keeps the running maximum Vmax.
template <class T, bool kL2, bool kDecoupled, bool kAmsgrad>
__global__ void adam_kernel(T* __restrict__ P, T* __restrict__ M, T* __restrict__ V,
                            T* __restrict__ Vmax, const T* __restrict__ G, int64_t n,
                            AdamScalars<T> c) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    T p = P[i];
    T g = G[i];
    if constexpr (kL2) g = fma_rn(c.weight_decay, p, g);
    if constexpr (kDecoupled) p = mul_rn(p, c.decay_scale);
    const T m0 = M[i];
    const T m = fma_rn(c.one_minus_beta1, sub_rn(g, m0), m0);
    const T v = add_rn(mul_rn(V[i], c.beta2), mul_rn(mul_rn(g, c.one_minus_beta2), g));
    M[i] = m;
    V[i] = v;
    T second = v;  // the second moment of the denominator
    if constexpr (kAmsgrad) {
      const T old = Vmax[i];
      second = (old > v || old != old) ? old : v;  // maximum(vmax, v) as cuda::binary's
      Vmax[i] = second;
    }
    const T denom = add_rn(div_rn(sqrt_rn(second), c.bias_correction2_sqrt), c.eps);
    P[i] = fma_rn(c.neg_step_size, div_rn(m, denom), p);
  }
}

template <class T, bool kL2, bool kDecoupled, bool kAmsgrad>
void launch_adam(const Tensor& param, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                 const Tensor& max_exp_avg_sq, const Tensor& grad, const AdamScalars<T>& s) {
  const int64_t n = param.numel();
  adam_kernel<T, kL2, kDecoupled, kAmsgrad><<<blocks_for(n), kThreads, 0, stream_of(param)>>>(
      static_cast<T*>(param.data_ptr()), static_cast<T*>(exp_avg.data_ptr()),
      static_cast<T*>(exp_avg_sq.data_ptr()),
      kAmsgrad ? static_cast<T*>(max_exp_avg_sq.data_ptr()) : nullptr,
      static_cast<const T*>(grad.data_ptr()), n, s);
  EMBER_CUDA_CHECK_LAUNCH();
}

template <class T>
void adam_typed(const Tensor& param, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                const Tensor& max_exp_avg_sq, const Tensor& grad, double beta1, double beta2,
                double eps, double weight_decay, double decay_scale, double step_size,
                double bias_correction2_sqrt) {
  const AdamScalars<T> s{static_cast<T>(weight_decay), static_cast<T>(decay_scale),
                         static_cast<T>(1 - beta1),    static_cast<T>(beta2),
                         static_cast<T>(1 - beta2),    static_cast<T>(bias_correction2_sqrt),
                         static_cast<T>(eps),          static_cast<T>(-step_size)};
  with_flags(
      [&](auto l2, auto decoupled, auto amsgrad) {
        launch_adam<T, decltype(l2)::value, decltype(decoupled)::value, decltype(amsgrad)::value>(
            param, exp_avg, exp_avg_sq, max_exp_avg_sq, grad, s);
      },
      weight_decay != 0, decay_scale != 1, max_exp_avg_sq.defined());
}

// ---- SGD ----

template <class T>
struct SgdScalars {
  T weight_decay, momentum, one_minus_dampening, neg_lr;
};

/// P (n) and, with kMomentum, the buffer B (n) updated in place from G (n); kFirst writes B
/// without reading it.
template <class T, bool kDecay, bool kMomentum, bool kFirst, bool kNesterov>
__global__ void sgd_kernel(T* __restrict__ P, T* __restrict__ B, const T* __restrict__ G, int64_t n,
                           SgdScalars<T> c) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const T p = P[i];
    T g = G[i];
    if constexpr (kDecay) g = fma_rn(c.weight_decay, p, g);
    if constexpr (kMomentum) {
      T buf = g;  // the first step takes the gradient as the buffer
      if constexpr (!kFirst) buf = fma_rn(c.one_minus_dampening, g, mul_rn(B[i], c.momentum));
      B[i] = buf;
      g = kNesterov ? fma_rn(c.momentum, buf, g) : buf;
    }
    P[i] = fma_rn(c.neg_lr, g, p);
  }
}

template <class T, bool kDecay, bool kMomentum, bool kFirst, bool kNesterov>
void launch_sgd(const Tensor& param, const Tensor& momentum_buffer, const Tensor& grad,
                const SgdScalars<T>& s) {
  const int64_t n = param.numel();
  sgd_kernel<T, kDecay, kMomentum, kFirst, kNesterov>
      <<<blocks_for(n), kThreads, 0, stream_of(param)>>>(
          static_cast<T*>(param.data_ptr()),
          kMomentum ? static_cast<T*>(momentum_buffer.data_ptr()) : nullptr,
          static_cast<const T*>(grad.data_ptr()), n, s);
  EMBER_CUDA_CHECK_LAUNCH();
}

template <class T>
void sgd_typed(const Tensor& param, const Tensor& momentum_buffer, const Tensor& grad, double lr,
               double momentum, double dampening, double weight_decay, bool nesterov,
               bool first_step) {
  const SgdScalars<T> s{static_cast<T>(weight_decay), static_cast<T>(momentum),
                        static_cast<T>(1 - dampening), static_cast<T>(-lr)};
  with_flags(
      [&](auto decay, auto heavy_ball, auto first, auto nesterov_momentum) {
        launch_sgd<T, decltype(decay)::value, decltype(heavy_ball)::value, decltype(first)::value,
                   decltype(nesterov_momentum)::value>(param, momentum_buffer, grad, s);
      },
      weight_decay != 0, momentum != 0, first_step, nesterov);
}

}  // namespace

void adam_step(const Tensor& param, const Tensor& exp_avg, const Tensor& exp_avg_sq,
               const Tensor& max_exp_avg_sq, const Tensor& grad, double beta1, double beta2,
               double eps, double weight_decay, double decay_scale, double step_size,
               double bias_correction2_sqrt) {
  if (param.numel() == 0) return;
  detail::DeviceGuard guard(param.device().index());
  detail::visit_device_float(param.dtype(), "adam_step", [&](auto tag) {
    adam_typed<typename decltype(tag)::type>(param, exp_avg, exp_avg_sq, max_exp_avg_sq, grad,
                                             beta1, beta2, eps, weight_decay, decay_scale,
                                             step_size, bias_correction2_sqrt);
  });
}

void sgd_step(const Tensor& param, const Tensor& momentum_buffer, const Tensor& grad, double lr,
              double momentum, double dampening, double weight_decay, bool nesterov,
              bool first_step) {
  if (param.numel() == 0) return;
  detail::DeviceGuard guard(param.device().index());
  detail::visit_device_float(param.dtype(), "sgd_step", [&](auto tag) {
    sgd_typed<typename decltype(tag)::type>(param, momentum_buffer, grad, lr, momentum, dampening,
                                            weight_decay, nesterov, first_step);
  });
}

}  // namespace ember::cuda
