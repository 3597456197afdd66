// CPU optimizer updates: Adam/AdamW and SGD as one pass over each parameter tensor (read p, g and
// the state once, write p and the state once) instead of the composites' ~10 (Adam) or ~5 (SGD)
// tensor passes. float32 and float64, contiguous tensors; chunks of kElementwiseGrain elements in
// parallel, each chunk plain loops that -O3 vectorizes (the options are template parameters, so
// no test is left inside a loop; Adam's square roots are SSE/AVX instructions, see sqrt_block).
//
// The composites in src/optim/adam.cpp and sgd.cpp are the reference, and the arithmetic is
// theirs, operation by operation: each op rounds to T, each double scalar is rounded to T once
// (as a wrapped number or an alpha is), and cpu::binary's `a + alpha * b` (alpha != 1) is one fma
// wherever the compiler contracts it there, which GCC (-ffp-contract=fast, its C++ default) and
// clang do when the target has an fma instruction. This file spells that fma out and keeps every
// other product and sum separately rounded (contraction off below), so the results are bitwise
// the composite's (tests/optim/test_optim_fused.cpp).
//
// Adam (Adam: weight decay wd folded into g; AdamW: p = p * decay_scale first, decay_scale =
// 1 - lr wd computed by the caller, as the composite does, so that both use one double):
//   g = fma(wd, p, g)  |  p = p * decay_scale
//   m = fma(1 - beta1, g - m, m)                           (exp_avg.lerp_(g, 1 - beta1))
//   v = v * beta2 + (g * (1 - beta2)) * g
//   vmax = max(vmax, v), NaN propagating                   (amsgrad; denominator from vmax)
//   denom = sqrt(v) / sqrt(bias_correction2) + eps
//   p = fma(-step_size, m / denom, p)
// SGD:
//   g = fma(wd, p, g)
//   buf = g on the first step, else fma(1 - dampening, g, buf * momentum)
//   g = nesterov ? fma(momentum, buf, g) : buf             (momentum != 0)
//   p = fma(-lr, g, p)

// Every product and sum below rounds on its own unless it is written as fma. Before the includes,
// as in src/data/image_ops.cpp, so that the header templates instantiated here agree.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "core/dispatch.hpp"
#include "core/kernels.hpp"
#include "core/parallel.hpp"

namespace ember::cpu {
namespace {

/// a + alpha * b as cpu::binary's Add computes it with alpha != 1: one fma where the target has
/// one (the compiler contracts the composite's loop there), two roundings elsewhere.
template <class T>
[[gnu::always_inline]] inline T add_scaled(T a, T alpha, T b) {
#if defined(__FMA__) || defined(__FP_FAST_FMA) || defined(__ARM_FEATURE_FMA)
  return std::fma(alpha, b, a);
#else
  return a + alpha * b;
#endif
}

/// f(std::bool_constant<b>{}...) for the run-time flags b...: the options become template
/// parameters, so that the element loops hold no branch.
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

/// The step's scalars, each rounded to T once.
template <class T>
struct AdamScalars {
  T weight_decay, decay_scale, one_minus_beta1, beta2, one_minus_beta2, bias_correction2_sqrt, eps,
      neg_step_size;
};

/// out[i] = std::sqrt(x[i]) (correctly rounded: the same values), for n <= kBlock. GCC keeps
/// std::sqrt a libm call behind a branch, for errno, and so does not vectorize a loop around it;
/// this calls the SSE/AVX square root instructions directly.
template <class T>
[[gnu::always_inline]] inline void sqrt_block(T* __restrict out, const T* __restrict x, int64_t n) {
  int64_t i = 0;
#if defined(__AVX__)
  if constexpr (std::is_same_v<T, float>) {
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_sqrt_ps(_mm256_loadu_ps(x + i)));
  } else {
    for (; i + 4 <= n; i += 4) _mm256_storeu_pd(out + i, _mm256_sqrt_pd(_mm256_loadu_pd(x + i)));
  }
#elif defined(__SSE2__)
  if constexpr (std::is_same_v<T, float>) {
    for (; i + 4 <= n; i += 4) _mm_storeu_ps(out + i, _mm_sqrt_ps(_mm_loadu_ps(x + i)));
  } else {
    for (; i + 2 <= n; i += 2) _mm_storeu_pd(out + i, _mm_sqrt_pd(_mm_loadu_pd(x + i)));
  }
#endif
  for (; i < n; ++i) out[i] = std::sqrt(x[i]);
}

/// Elements per block of adam_chunk: its five arrays stay in L1 between the three loops.
constexpr int64_t kBlock = 256;

/// One chunk of n elements: P and the states (n) updated in place, G (n) read. kL2 folds the
/// weight decay into g (Adam), kDecoupled scales p first (AdamW). Per block of kBlock elements:
/// the moments (one vector loop), their square roots (sqrt_block), the parameter (a vector loop
/// over the block, now in L1).
template <class T, bool kL2, bool kDecoupled, bool kAmsgrad>
void adam_chunk(T* __restrict P, T* __restrict M, T* __restrict V, T* __restrict Vmax,
                const T* __restrict G, int64_t n, const AdamScalars<T>& s) {
  const AdamScalars<T> c = s;  // locals, so that the loops keep them in registers
  T root[kBlock];
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t len = std::min(kBlock, n - b);
    T* __restrict p_ = P + b;
    T* __restrict m_ = M + b;
    T* __restrict v_ = V + b;
    T* __restrict vmax_ = kAmsgrad ? Vmax + b : nullptr;
    const T* __restrict g_ = G + b;
    for (int64_t i = 0; i < len; ++i) {
      T g = g_[i];
      if constexpr (kL2) g = add_scaled(g, c.weight_decay, p_[i]);
      m_[i] = add_scaled(m_[i], c.one_minus_beta1, g - m_[i]);
      const T v = v_[i] * c.beta2 + (g * c.one_minus_beta2) * g;
      v_[i] = v;
      if constexpr (kAmsgrad) {
        const T old = vmax_[i];
        vmax_[i] = (old > v || old != old) ? old : v;  // maximum(vmax, v) as cpu::binary's
      }
    }
    sqrt_block(root, kAmsgrad ? vmax_ : v_, len);  // the denominator's second moment
    for (int64_t i = 0; i < len; ++i) {
      T p = p_[i];
      if constexpr (kDecoupled) p = p * c.decay_scale;
      const T denom = root[i] / c.bias_correction2_sqrt + c.eps;
      p_[i] = add_scaled(p, c.neg_step_size, m_[i] / denom);
    }
  }
}

template <class T>
struct SgdScalars {
  T weight_decay, momentum, one_minus_dampening, neg_lr;
};

/// One chunk of n elements: P (n) and, with kMomentum, the buffer B (n) updated in place (kFirst:
/// B is written, not read), G (n) read.
template <class T, bool kDecay, bool kMomentum, bool kFirst, bool kNesterov>
void sgd_chunk(T* __restrict P, T* __restrict B, const T* __restrict G, int64_t n,
               const SgdScalars<T>& s) {
  const SgdScalars<T> c = s;
  for (int64_t i = 0; i < n; ++i) {
    const T p = P[i];
    T g = G[i];
    if constexpr (kDecay) g = add_scaled(g, c.weight_decay, p);
    if constexpr (kMomentum) {
      T buf = g;  // the first step takes the gradient as the buffer
      if constexpr (!kFirst) buf = add_scaled(B[i] * c.momentum, c.one_minus_dampening, g);
      B[i] = buf;
      g = kNesterov ? add_scaled(g, c.momentum, buf) : buf;
    }
    P[i] = add_scaled(p, c.neg_lr, g);
  }
}

}  // namespace

void adam_step(const std::vector<AdamStepTensors>& params, const AdamStepOptions& o) {
  if (params.empty()) return;
  visit_float(params.front().param.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const bool amsgrad = params.front().max_exp_avg_sq.defined();
    with_flags(
        [&](auto l2, auto decoupled_decay, auto ams) {
          constexpr bool kL2 = decltype(l2)::value, kDecoupled = decltype(decoupled_decay)::value,
                         kAmsgrad = decltype(ams)::value;
          for (const AdamStepTensors& t : params) {
            const AdamScalars<T> s{static_cast<T>(o.weight_decay),
                                   static_cast<T>(o.decay_scale),
                                   static_cast<T>(1 - o.beta1),
                                   static_cast<T>(o.beta2),
                                   static_cast<T>(1 - o.beta2),
                                   static_cast<T>(t.bias_correction2_sqrt),
                                   static_cast<T>(o.eps),
                                   static_cast<T>(-t.step_size)};
            T* P = t.param.data_ptr<T>();
            T* M = t.exp_avg.data_ptr<T>();
            T* V = t.exp_avg_sq.data_ptr<T>();
            T* Vmax = kAmsgrad ? t.max_exp_avg_sq.data_ptr<T>() : nullptr;
            const T* G = t.grad.data_ptr<T>();
            parallel_for(t.param.numel(), kElementwiseGrain, [&](int64_t b, int64_t e) {
              adam_chunk<T, kL2, kDecoupled, kAmsgrad>(
                  P + b, M + b, V + b, kAmsgrad ? Vmax + b : nullptr, G + b, e - b, s);
            });
          }
        },
        o.weight_decay != 0, o.decay_scale != 1, amsgrad);
  });
}

void sgd_step(const std::vector<SgdStepTensors>& params, const SgdStepOptions& o) {
  if (params.empty()) return;
  visit_float(params.front().param.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const SgdScalars<T> s{static_cast<T>(o.weight_decay), static_cast<T>(o.momentum),
                          static_cast<T>(1 - o.dampening), static_cast<T>(-o.lr)};
    for (const SgdStepTensors& t : params) {
      T* P = t.param.data_ptr<T>();
      T* B = o.momentum != 0 ? t.momentum_buffer.data_ptr<T>() : nullptr;
      const T* G = t.grad.data_ptr<T>();
      with_flags(
          [&](auto decay, auto heavy_ball, auto first, auto nesterov_momentum) {
            constexpr bool kDecay = decltype(decay)::value,
                           kMomentum = decltype(heavy_ball)::value,
                           kFirst = decltype(first)::value,
                           kNesterov = decltype(nesterov_momentum)::value;
            parallel_for(t.param.numel(), kElementwiseGrain, [&](int64_t b, int64_t e) {
              sgd_chunk<T, kDecay, kMomentum, kFirst, kNesterov>(
                  P + b, kMomentum ? B + b : nullptr, G + b, e - b, s);
            });
          },
          o.weight_decay != 0, B != nullptr, t.first_step, o.nesterov);
    }
  });
}

}  // namespace ember::cpu
