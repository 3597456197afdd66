// CUDA optimizer updates: Adam/AdamW and SGD as one elementwise pass over each parameter (read p,
// g and the state once, write p and the state once) instead of the composites' ~10 (Adam) or ~5
// (SGD) tensor passes, and multi-tensor: one launch updates up to kMaxTensors parameters (a
// model's hundred small biases and norms cost a few launches, not a hundred). The launch's
// parameter table (pointers, element counts, per-parameter scalars, and the running count of
// blocks) travels in the kernel's arguments, so no copy precedes the launch; each block finds its
// parameter in the table and updates one chunk of kChunk elements of it. float32 and float64;
// the options are template parameters, so no test sits in the loop.
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

#include <climits>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/kernels.hpp"
#include "core/tensor_impl.hpp"
#include "cuda/loops.cuh"

namespace ember::cuda {
namespace {

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

// ---- the multi-tensor table ----

/// Parameters per launch: the Adam table (five pointers, a count and two scalars each) stays
/// under 4 KB of kernel arguments.
constexpr int kMaxTensors = 32;
/// Elements per block: 16 per thread.
constexpr int64_t kChunk = int64_t{16} * kThreads;

/// The kernel argument of one launch: for parameter t < count, kPtrs pointers (ptr[k][t]), its
/// element count n[t], its own scalars extra[t], and block_end[t], the number of blocks of
/// parameters 0..t (parameter t owns blocks block_end[t-1] .. block_end[t]-1).
template <class T, int kPtrs, class Extra>
struct Table {
  T* ptr[kPtrs][kMaxTensors];
  int64_t n[kMaxTensors];
  Extra extra[kMaxTensors];
  int32_t block_end[kMaxTensors];
  int32_t count;
};

/// The parameter of this block and its element range.
struct Slice {
  int t;
  int64_t begin, end;
};
template <class Tab>
__device__ __forceinline__ Slice slice_of(const Tab& table) {
  int t = 0;
  while (t + 1 < table.count && static_cast<int32_t>(blockIdx.x) >= table.block_end[t]) ++t;
  const int64_t chunk = blockIdx.x - (t == 0 ? 0 : table.block_end[t - 1]);
  const int64_t begin = chunk * kChunk;
  const int64_t end = begin + kChunk < table.n[t] ? begin + kChunk : table.n[t];
  return {t, begin, end};
}

/// Fills tables from `params` (fill(table, t, param) writes slot t) and launches each full one
/// (launch(table, blocks)); parameters without elements are skipped.
template <class Tab, class Param, class Fill, class Launch>
void for_each_table(const std::vector<Param>& params, Fill fill, Launch launch) {
  Tab table{};
  int32_t blocks = 0;
  auto flush = [&] {
    if (table.count == 0) return;
    launch(table, static_cast<unsigned>(blocks));
    table = Tab{};
    blocks = 0;
  };
  for (const Param& p : params) {
    const int64_t n = p.param.numel();
    if (n == 0) continue;
    const int64_t need = (n + kChunk - 1) / kChunk;
    if (table.count == kMaxTensors || blocks + need > int64_t{INT32_MAX}) flush();
    EMBER_CHECK(need <= int64_t{INT32_MAX}, ShapeError, "[optimizer step] a parameter of ", n,
                " elements is beyond the CUDA kernel's range");
    const int t = table.count++;
    table.n[t] = n;
    blocks += static_cast<int32_t>(need);
    table.block_end[t] = blocks;
    fill(table, t, p);
  }
  flush();
}

// ---- Adam / AdamW ----

/// The step's scalars shared by every parameter, each rounded to T once.
template <class T>
struct AdamScalars {
  T weight_decay, decay_scale, one_minus_beta1, beta2, one_minus_beta2, eps;
};
/// A parameter's own scalars (its step count): rounded to T once.
template <class T>
struct AdamPerParam {
  T bias_correction2_sqrt, neg_step_size;
};
/// Pointers: P, M, V, Vmax, G.
template <class T>
using AdamTable = Table<T, 5, AdamPerParam<T>>;

/// P, M, V, Vmax updated in place from G for every parameter of the table. kL2 folds the weight
/// decay into g (Adam), kDecoupled scales p first (AdamW), kAmsgrad keeps the running maximum
/// Vmax.
template <class T, bool kL2, bool kDecoupled, bool kAmsgrad>
__global__ void adam_kernel(AdamTable<T> table, AdamScalars<T> c) {
  const Slice s = slice_of(table);
  T* __restrict__ P = table.ptr[0][s.t];
  T* __restrict__ M = table.ptr[1][s.t];
  T* __restrict__ V = table.ptr[2][s.t];
  T* __restrict__ Vmax = table.ptr[3][s.t];
  const T* __restrict__ G = table.ptr[4][s.t];
  const AdamPerParam<T> e = table.extra[s.t];
  for (int64_t i = s.begin + threadIdx.x; i < s.end; i += blockDim.x) {
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
    const T denom = add_rn(div_rn(sqrt_rn(second), e.bias_correction2_sqrt), c.eps);
    P[i] = fma_rn(e.neg_step_size, div_rn(m, denom), p);
  }
}

template <class T>
void adam_typed(const std::vector<AdamStepTensors>& params, const AdamStepOptions& o) {
  const AdamScalars<T> s{static_cast<T>(o.weight_decay), static_cast<T>(o.decay_scale),
                         static_cast<T>(1 - o.beta1),    static_cast<T>(o.beta2),
                         static_cast<T>(1 - o.beta2),    static_cast<T>(o.eps)};
  const cudaStream_t stream = stream_of(params.front().param);
  auto fill = [](AdamTable<T>& table, int t, const AdamStepTensors& p) {
    table.ptr[0][t] = static_cast<T*>(p.param.data_ptr());
    table.ptr[1][t] = static_cast<T*>(p.exp_avg.data_ptr());
    table.ptr[2][t] = static_cast<T*>(p.exp_avg_sq.data_ptr());
    table.ptr[3][t] =
        p.max_exp_avg_sq.defined() ? static_cast<T*>(p.max_exp_avg_sq.data_ptr()) : nullptr;
    table.ptr[4][t] = static_cast<T*>(p.grad.data_ptr());
    table.extra[t] = {static_cast<T>(p.bias_correction2_sqrt), static_cast<T>(-p.step_size)};
  };
  with_flags(
      [&](auto l2, auto decoupled, auto amsgrad) {
        auto launch = [&](const AdamTable<T>& table, unsigned blocks) {
          adam_kernel<T, decltype(l2)::value, decltype(decoupled)::value,
                      decltype(amsgrad)::value><<<blocks, kThreads, 0, stream>>>(table, s);
          EMBER_CUDA_CHECK_LAUNCH();
        };
        for_each_table<AdamTable<T>>(params, fill, launch);
      },
      o.weight_decay != 0, o.decay_scale != 1, params.front().max_exp_avg_sq.defined());
}

// ---- SGD ----

template <class T>
struct SgdScalars {
  T weight_decay, momentum, one_minus_dampening, neg_lr;
};
/// Pointers: P, B (the momentum buffer), G; per parameter whether this is its first step.
template <class T>
using SgdTable = Table<T, 3, bool>;

/// P and, with kMomentum, the buffer B updated in place from G for every parameter of the table;
/// on a parameter's first step B is written without being read.
template <class T, bool kDecay, bool kMomentum, bool kNesterov>
__global__ void sgd_kernel(SgdTable<T> table, SgdScalars<T> c) {
  const Slice s = slice_of(table);
  T* __restrict__ P = table.ptr[0][s.t];
  T* __restrict__ B = table.ptr[1][s.t];
  const T* __restrict__ G = table.ptr[2][s.t];
  const bool first = table.extra[s.t];  // one value per block: no divergence
  for (int64_t i = s.begin + threadIdx.x; i < s.end; i += blockDim.x) {
    const T p = P[i];
    T g = G[i];
    if constexpr (kDecay) g = fma_rn(c.weight_decay, p, g);
    if constexpr (kMomentum) {
      // the first step takes the gradient as the buffer
      const T buf = first ? g : fma_rn(c.one_minus_dampening, g, mul_rn(B[i], c.momentum));
      B[i] = buf;
      g = kNesterov ? fma_rn(c.momentum, buf, g) : buf;
    }
    P[i] = fma_rn(c.neg_lr, g, p);
  }
}

template <class T>
void sgd_typed(const std::vector<SgdStepTensors>& params, const SgdStepOptions& o) {
  const SgdScalars<T> s{static_cast<T>(o.weight_decay), static_cast<T>(o.momentum),
                        static_cast<T>(1 - o.dampening), static_cast<T>(-o.lr)};
  const cudaStream_t stream = stream_of(params.front().param);
  const bool heavy_ball = o.momentum != 0;
  auto fill = [heavy_ball](SgdTable<T>& table, int t, const SgdStepTensors& p) {
    table.ptr[0][t] = static_cast<T*>(p.param.data_ptr());
    table.ptr[1][t] = heavy_ball ? static_cast<T*>(p.momentum_buffer.data_ptr()) : nullptr;
    table.ptr[2][t] = static_cast<T*>(p.grad.data_ptr());
    table.extra[t] = p.first_step;
  };
  with_flags(
      [&](auto decay, auto momentum, auto nesterov) {
        auto launch = [&](const SgdTable<T>& table, unsigned blocks) {
          sgd_kernel<T, decltype(decay)::value, decltype(momentum)::value,
                     decltype(nesterov)::value><<<blocks, kThreads, 0, stream>>>(table, s);
          EMBER_CUDA_CHECK_LAUNCH();
        };
        for_each_table<SgdTable<T>>(params, fill, launch);
      },
      o.weight_decay != 0, heavy_ball, o.nesterov);
}

// ---- foreach: gradient norms, scaling and unscaling ----

/// One tensor of a foreach call, as for_each_table reads it.
struct ForeachTensor {
  Tensor param;
};
std::vector<ForeachTensor> foreach_list(const std::vector<Tensor>& xs) {
  std::vector<ForeachTensor> list;
  list.reserve(xs.size());
  for (const Tensor& x : xs) list.push_back({x});
  return list;
}

/// The norm's per-element term and how two partial results combine: a sum of |x|^p (squares for
/// p 2, |x| for p 1), or the maximum of |x| with NaN winning (p infinity).
enum class NormKind { kTwo, kOne, kInf, kPow };
template <NormKind K>
__device__ __forceinline__ double norm_term(double a, double p) {
  if constexpr (K == NormKind::kTwo) return a * a;
  if constexpr (K == NormKind::kOne) return fabs(a);
  if constexpr (K == NormKind::kInf) return fabs(a);
  return pow(fabs(a), p);
}
template <NormKind K>
__device__ __forceinline__ double norm_combine(double a, double b) {
  if constexpr (K == NormKind::kInf) return (a > b || a != a) ? a : b;
  return a + b;
}
/// Every thread's v combined by a fixed tree (shuffles, then the first warp over the warp
/// results), returned to thread 0. blockDim.x == kThreads.
template <NormKind K>
__device__ __forceinline__ double block_combine(double v, double* shared /* [32] */) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int delta = 16; delta > 0; delta /= 2)
    v = norm_combine<K>(v, __shfl_down_sync(0xffffffffu, v, delta));
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kThreads / 32 ? shared[lane] : 0.0;
    for (int delta = 16; delta > 0; delta /= 2)
      v = norm_combine<K>(v, __shfl_down_sync(0xffffffffu, v, delta));
  }
  return v;
}

/// One pointer per tensor, no per-tensor scalars.
template <class T>
using ForeachTable = Table<T, 1, int32_t>;

/// Stage 1: block b's combined terms over its chunk into partial[b].
template <class T, NormKind K>
__global__ void norm_partial_kernel(ForeachTable<T> table, double* __restrict__ partial, double p) {
  __shared__ double shared[32];
  const Slice s = slice_of(table);
  const T* __restrict__ X = table.ptr[0][s.t];
  double v = 0.0;
  for (int64_t i = s.begin + threadIdx.x; i < s.end; i += blockDim.x)
    v = norm_combine<K>(v, norm_term<K>(static_cast<double>(X[i]), p));
  v = block_combine<K>(v, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = v;
}

/// Stage 2: block t combines tensor t's partials (in a fixed order) into norms[index[t]].
template <class T, NormKind K>
__global__ void norm_final_kernel(ForeachTable<T> table, const double* __restrict__ partial,
                                  T* __restrict__ norms, double p) {
  __shared__ double shared[32];
  const int t = blockIdx.x;
  const int32_t begin = t == 0 ? 0 : table.block_end[t - 1], end = table.block_end[t];
  double v = 0.0;
  for (int32_t b = begin + static_cast<int32_t>(threadIdx.x); b < end; b += blockDim.x)
    v = norm_combine<K>(v, partial[b]);
  v = block_combine<K>(v, shared);
  if (threadIdx.x == 0) {
    if constexpr (K == NormKind::kTwo) v = sqrt(v);
    if constexpr (K == NormKind::kPow) v = pow(v, 1.0 / p);
    norms[table.extra[t]] = static_cast<T>(v);
  }
}

template <class T, NormKind K>
void foreach_norm_typed(const Tensor& norms, const std::vector<Tensor>& xs, double p) {
  const cudaStream_t stream = stream_of(norms);
  T* out = static_cast<T*>(norms.data_ptr());
  // Norms of empty tensors (skipped by the tables) are 0.
  EMBER_CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof(T) * xs.size(), stream));
  std::vector<ForeachTensor> list = foreach_list(xs);
  // Each table's slot t remembers its tensor's index in xs.
  std::vector<int32_t> index;
  for (size_t i = 0; i < xs.size(); ++i)
    if (xs[i].numel() > 0) index.push_back(static_cast<int32_t>(i));
  size_t next = 0;
  auto fill = [&](ForeachTable<T>& table, int t, const ForeachTensor& x) {
    table.ptr[0][t] = static_cast<T*>(x.param.data_ptr());
    table.extra[t] = index[next++];
  };
  auto launch = [&](const ForeachTable<T>& table, unsigned blocks) {
    const Tensor partial =
        make_tensor({static_cast<int64_t>(blocks)}, kFloat64, norms.device(), "foreach_norm");
    double* part = static_cast<double*>(partial.data_ptr());
    norm_partial_kernel<T, K><<<blocks, kThreads, 0, stream>>>(table, part, p);
    EMBER_CUDA_CHECK_LAUNCH();
    norm_final_kernel<T, K>
        <<<static_cast<unsigned>(table.count), kThreads, 0, stream>>>(table, part, out, p);
    EMBER_CUDA_CHECK_LAUNCH();
  };
  for_each_table<ForeachTable<T>>(list, fill, launch);
}

template <class T>
__global__ void mul_kernel(ForeachTable<T> table, const T* __restrict__ scale) {
  const Slice s = slice_of(table);
  T* __restrict__ X = table.ptr[0][s.t];
  const T c = *scale;
  for (int64_t i = s.begin + threadIdx.x; i < s.end; i += blockDim.x) X[i] = mul_rn(X[i], c);
}

template <class T>
__global__ void unscale_kernel(ForeachTable<T> table, T inv_scale, float* __restrict__ found_inf) {
  const Slice s = slice_of(table);
  T* __restrict__ X = table.ptr[0][s.t];
  bool bad = false;
  for (int64_t i = s.begin + threadIdx.x; i < s.end; i += blockDim.x) {
    const T v = mul_rn(X[i], inv_scale);
    bad = bad || !isfinite(v);
    X[i] = v;
  }
  if (bad) *found_inf = 1.f;  // every writer stores the same value
}

/// The dtype of a foreach call's tensors, checked: contiguous, of one floating dtype, on one GPU.
void check_foreach(const std::vector<Tensor>& xs, const char* op) {
  for (const Tensor& x : xs)
    EMBER_CHECK(x.is_cuda() && x.is_contiguous() && x.dtype() == xs.front().dtype() &&
                    x.device() == xs.front().device(),
                ValueError, "[", op, "] expects contiguous tensors of one dtype on one GPU, got ",
                x.dtype(), " ", x.sizes(), " on ", x.device());
}

}  // namespace

void foreach_norm(const Tensor& norms, const std::vector<Tensor>& xs, double p) {
  if (xs.empty()) return;
  check_foreach(xs, "foreach_norm");
  EMBER_CHECK(norms.is_contiguous() && norms.numel() == static_cast<int64_t>(xs.size()) &&
                  norms.dtype() == xs.front().dtype() && norms.device() == xs.front().device(),
              ValueError, "[foreach_norm] expected norms of ", xs.size(), " elements of ",
              xs.front().dtype(), ", got ", norms.sizes(), " of ", norms.dtype());
  EMBER_CHECK(p > 0, ValueError, "[foreach_norm] p must be positive or infinity, got ", p);
  detail::DeviceGuard guard(norms.device().index());
  detail::visit_device_float(norms.dtype(), "foreach_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (p == 2)
      foreach_norm_typed<T, NormKind::kTwo>(norms, xs, p);
    else if (p == 1)
      foreach_norm_typed<T, NormKind::kOne>(norms, xs, p);
    else if (std::isinf(p))
      foreach_norm_typed<T, NormKind::kInf>(norms, xs, p);
    else
      foreach_norm_typed<T, NormKind::kPow>(norms, xs, p);
  });
}

void foreach_mul_(const std::vector<Tensor>& xs, const Tensor& scale) {
  if (xs.empty()) return;
  check_foreach(xs, "foreach_mul_");
  EMBER_CHECK(scale.numel() == 1 && scale.dtype() == xs.front().dtype() &&
                  scale.device() == xs.front().device(),
              ValueError, "[foreach_mul_] expected a one-element scale of ", xs.front().dtype(),
              " on ", xs.front().device(), ", got ", scale.sizes(), " of ", scale.dtype());
  detail::DeviceGuard guard(scale.device().index());
  detail::visit_device_float(scale.dtype(), "foreach_mul_", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* c = static_cast<const T*>(scale.data_ptr());
    const cudaStream_t stream = stream_of(scale);
    auto fill = [](ForeachTable<T>& table, int t, const ForeachTensor& x) {
      table.ptr[0][t] = static_cast<T*>(x.param.data_ptr());
    };
    auto launch = [&](const ForeachTable<T>& table, unsigned blocks) {
      mul_kernel<T><<<blocks, kThreads, 0, stream>>>(table, c);
      EMBER_CUDA_CHECK_LAUNCH();
    };
    for_each_table<ForeachTable<T>>(foreach_list(xs), fill, launch);
  });
}

void foreach_unscale_(const std::vector<Tensor>& xs, double inv_scale, const Tensor& found_inf) {
  if (xs.empty()) return;
  check_foreach(xs, "foreach_unscale_");
  EMBER_CHECK(found_inf.numel() == 1 && found_inf.dtype() == kFloat32 &&
                  found_inf.device() == xs.front().device(),
              ValueError, "[foreach_unscale_] expected a one-element float32 found_inf on ",
              xs.front().device(), ", got ", found_inf.sizes(), " of ", found_inf.dtype());
  detail::DeviceGuard guard(found_inf.device().index());
  detail::visit_device_float(xs.front().dtype(), "foreach_unscale_", [&](auto tag) {
    using T = typename decltype(tag)::type;
    float* flag = static_cast<float*>(found_inf.data_ptr());
    const cudaStream_t stream = stream_of(found_inf);
    auto fill = [](ForeachTable<T>& table, int t, const ForeachTensor& x) {
      table.ptr[0][t] = static_cast<T*>(x.param.data_ptr());
    };
    auto launch = [&](const ForeachTable<T>& table, unsigned blocks) {
      unscale_kernel<T><<<blocks, kThreads, 0, stream>>>(table, static_cast<T>(inv_scale), flag);
      EMBER_CUDA_CHECK_LAUNCH();
    };
    for_each_table<ForeachTable<T>>(foreach_list(xs), fill, launch);
  });
}

void adam_step(const std::vector<AdamStepTensors>& params, const AdamStepOptions& options) {
  if (params.empty()) return;
  const Tensor& first = params.front().param;
  detail::DeviceGuard guard(first.device().index());
  detail::visit_device_float(first.dtype(), "adam_step", [&](auto tag) {
    adam_typed<typename decltype(tag)::type>(params, options);
  });
}

void sgd_step(const std::vector<SgdStepTensors>& params, const SgdStepOptions& options) {
  if (params.empty()) return;
  const Tensor& first = params.front().param;
  detail::DeviceGuard guard(first.device().index());
  detail::visit_device_float(first.dtype(), "sgd_step", [&](auto tag) {
    sgd_typed<typename decltype(tag)::type>(params, options);
  });
}

}  // namespace ember::cuda
