// CUDA cross-entropy of logits with class-index targets (log_softmax and the negative
// log-likelihood fused, in the spirit of llm.c's fused classifier), forward and first-order
// backward, float32 and float64 logits, and float16/bfloat16 logits computed in float32 (read as
// 16 bits, widened in registers, dx rounded once to 16 bits on its store: the mixed-precision
// classifier reads 2 bytes per logit and writes 2 per gradient, with no float32 copy), contiguous
// tensors, with the formulas of the CPU kernel
// (src/core/cpu/cross_entropy.cpp): weight, ignore_index and label smoothing as PyTorch, the
// max and log-sum kept apart for the backward, per-row loss and coefficients in double, each
// rounded to T once. Not bitwise the CPU's (another summation order, CUDA's exp), but
// deterministic: every sum has a fixed order that depends only on the shape; no atomics.
//
// x (N, C, S): row r = n S + s holds the C logits x[n, :, s]; t = target[r], w the class weights
// (1 without), W = sum_c w_c, ls the label smoothing.
//   forward: the logits are read once. Each thread keeps an online log-sum-exp state over its
//     logits (Milakov & Gimelshein, "Online normalizer calculation for softmax", 2018): the running
//     max m, z = sum exp(x - m) (each term exp in T, the sum in double, rescaled by exp(m_old -
//     m_new) in double when the max grows) and, with ls > 0, u = sum w_c (m - x_c) (terms >= 0:
//     shifted by the weight total times the max's growth, so nothing cancels). -inf logits add
//     nothing to z and w_c * inf to u, as they do beside any finite max on the CPU; a row whose
//     max is -inf (every logit -inf or NaN) gets z = NaN, as the CPU's exp(-inf - -inf).
//     States merge by a fixed warp-shuffle tree and then across warps in warp order.
//     loss = (1 - ls) w_t (log z + m - x_t) + (ls / C) (W log z + u), 0 where t is ignored.
//   backward, one pass: p_c = exp((x_c - m) - log z), dx_c = k_p p_c - k_w w_c, minus k_t at the
//     target, with k_p = a ((1 - ls) w_t + (ls / C) W), k_w = a ls / C, k_t = a (1 - ls) w_t for
//     a = dloss[r]; 0 on ignored rows. Each element is written once, by one thread.
// T below is the compute type (float or double), Xs the logits' and dx's storage type (T, or the
// 16-bit bits of a float16/bfloat16 tensor when T is float).
// Layouts: S == 1 (contiguous rows) takes one block per row (grid-stride), row_threads(C) threads
//   striding over the classes in 16-byte chunks (a scalar head up to each row's first 16-byte
//   boundary, two chunks in flight per thread, a scalar tail; the backward so when x and dx sit
//   alike against 16-byte boundaries, else element by element), coalesced; S > 1 takes one thread
//   per row, adjacent threads on adjacent s so that every class step is a coalesced read across the
//   warp.
// sums ("sum" / "mean", float64): the rounded per-row losses and w_t over the rows not ignored,
//   one block per chunk of kSumChunk rows (block tree), then one block adding the chunk partials
//   (thread j: chunks j, j + blockDim, ... in order, then the tree). W (for ls and the backward's
//   k_p) is one block's tree sum of the weights.
// Targets are checked by the op; a target outside [0, C) that is not ignore_index (unreachable)
// gives NaN rather than an out-of-bounds read.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "core/kernels.hpp"
#include "cuda/block_reduce.cuh"
#include "cuda/loops.cuh"
#include "ember/ops.hpp"

namespace ember::cuda {
namespace {

using detail::block_sum;
using detail::convert;
using detail::kThreads;
using detail::stream_of;

constexpr int64_t kSumChunk = 1024;  // rows per partial of the reduction sums
constexpr int64_t kGridCap = int64_t{1} << 20;

__host__ __device__ __forceinline__ int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}
unsigned grid_for(int64_t blocks) {
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks < kGridCap ? blocks : kGridCap));
}

/// Threads per row of n classes: a power of two in [32, 512], about 4 classes per thread.
int row_threads(int64_t n) {
  int t = 32;
  while (t < 512 && t * int64_t{4} < n) t *= 2;
  return t;
}

template <class T>
__device__ __forceinline__ T neg_inf() {
  return -std::numeric_limits<T>::infinity();
}
template <class T>
__device__ __forceinline__ T nan_of() {
  return std::numeric_limits<T>::quiet_NaN();
}

// CUDA's accurate exp (expf for float; no fast-math intrinsic), named apart from ember::exp.
__device__ __forceinline__ float exp_of(float v) { return expf(v); }
__device__ __forceinline__ double exp_of(double v) { return ::exp(v); }

// ---- the rule shared by every row ----

template <class T>
struct Rule {
  const T* W;           // (C) or nullptr: every class 1
  const double* W_sum;  // device scalar sum_c w_c, or nullptr: C
  int64_t C;
  int64_t ignore_index;
  double ls;  // label smoothing
  __device__ T weight(int64_t c) const { return W != nullptr ? W[c] : T(1); }
  __device__ double weight_sum() const {
    return W_sum != nullptr ? *W_sum : static_cast<double>(C);
  }
  __device__ bool valid(int64_t t) const { return t >= 0 && t < C; }
};

// ---- the online log-sum-exp state ----

template <class T>
struct Lse {
  T m;       // max so far (-inf before any logit above -inf)
  double z;  // sum exp(x - m) over the logits above -inf
  double u;  // sum w (m - x) (label smoothing)
  double w;  // sum of the weights behind u's shift (logits above -inf)
};

template <class T>
__device__ __forceinline__ Lse<T> lse_empty() {
  return {neg_inf<T>(), 0.0, 0.0, 0.0};
}

/// s's sums restated relative to a larger max M (s.m > -inf).
template <class T, bool kSmooth>
__device__ __forceinline__ void lse_rescale(Lse<T>& s, T M) {
  const double d = static_cast<double>(M) - static_cast<double>(s.m);
  s.z *= exp_of(-d);
  if constexpr (kSmooth) s.u += s.w * d;
}

/// Adds logit x of weight wc.
template <class T, bool kSmooth>
__device__ __forceinline__ void lse_add(Lse<T>& s, T x, T wc) {
  if (x > s.m) {
    if (s.m != neg_inf<T>()) lse_rescale<T, kSmooth>(s, x);
    s.m = x;
  }
  if (x == neg_inf<T>()) {  // exp(-inf - M) = 0 for any M above -inf; w (M + inf) = w inf
    if constexpr (kSmooth) s.u += static_cast<double>(wc * -x);
    return;
  }
  s.z += static_cast<double>(exp_of(x - s.m));
  if constexpr (kSmooth) {
    s.u += static_cast<double>(wc * (s.m - x));
    s.w += static_cast<double>(wc);
  }
}

template <class T, bool kSmooth>
__device__ __forceinline__ Lse<T> lse_merge(Lse<T> a, Lse<T> b) {
  const T M = b.m > a.m ? b.m : a.m;
  if (a.m != M && a.m != neg_inf<T>()) lse_rescale<T, kSmooth>(a, M);
  if (b.m != M && b.m != neg_inf<T>()) lse_rescale<T, kSmooth>(b, M);
  return {M, a.z + b.z, a.u + b.u, a.w + b.w};
}

template <class T>
__device__ __forceinline__ Lse<T> lse_shfl_down(const Lse<T>& s, int delta) {
  return {__shfl_down_sync(0xffffffffu, s.m, delta), __shfl_down_sync(0xffffffffu, s.z, delta),
          __shfl_down_sync(0xffffffffu, s.u, delta), __shfl_down_sync(0xffffffffu, s.w, delta)};
}

/// The merge of every thread's state by a fixed tree; valid in thread 0. Ends with a barrier, so
/// shared may be reused at once.
template <class T, bool kSmooth>
__device__ Lse<T> block_merge(Lse<T> s, Lse<T>* shared /* [32] */) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int delta = 16; delta > 0; delta /= 2) s = lse_merge<T, kSmooth>(s, lse_shfl_down(s, delta));
  if (lane == 0) shared[warp] = s;
  __syncthreads();
  if (warp == 0) {
    const int warps = blockDim.x / 32;
    s = lane < warps ? shared[lane] : lse_empty<T>();
    for (int delta = 16; delta > 0; delta /= 2)
      s = lse_merge<T, kSmooth>(s, lse_shfl_down(s, delta));
  }
  __syncthreads();
  return s;
}

/// Writes row r's loss, max and log-sum from its merged state; x points at the row's class 0,
/// its classes `stride` apart.
template <class T, class Xs>
__device__ void finish_row(const Rule<T>& rule, int64_t t, const Lse<T>& s, const Xs* x,
                           int64_t stride, T* loss, T* max, T* log_sum) {
  const double z = s.m == neg_inf<T>() ? nan_of<double>() : s.z;
  const double log_z = ::log(z);
  *max = s.m;
  *log_sum = static_cast<T>(log_z);
  if (t == rule.ignore_index) {
    *loss = T(0);
    return;
  }
  if (!rule.valid(t)) {
    *loss = nan_of<T>();
    return;
  }
  const double w_t = static_cast<double>(rule.weight(t));
  const double nll =
      log_z + (static_cast<double>(s.m) - static_cast<double>(convert<T>(x[t * stride])));
  double l = w_t * nll;
  if (rule.ls > 0.0) {
    l = (1.0 - rule.ls) * l +
        rule.ls / static_cast<double>(rule.C) * (rule.weight_sum() * log_z + s.u);
  }
  *loss = static_cast<T>(l);
}

// ---- forward ----

template <class T>
constexpr int kRowChunk = 16 / static_cast<int>(sizeof(T));  // elements per 16-byte chunk
template <class T>
using RowChunk = detail::Chunk<T, kRowChunk<T>>;

/// The classes of one row (S == 1) split among the block's threads, the row read in 16-byte
/// chunks: scalar(c) for each class c of the scalar head (up to the row's first 16-byte boundary)
/// and of the tail; chunk(c0, v) for each 16-byte chunk v holding classes c0 .. c0 + V - 1, two
/// chunks loaded per step and thread. Each class goes to one fixed thread; the order within a
/// thread is fixed.
template <class T, class Scalar, class ChunkF>
__device__ __forceinline__ void for_row(const T* __restrict__ row, int64_t C, Scalar scalar,
                                        ChunkF chunk) {
  constexpr int V = kRowChunk<T>;
  using Vec = RowChunk<T>;
  const int64_t h = detail::vector_head(row, C), nch = (C - h) / V;
  for (int64_t c = threadIdx.x; c < h; c += blockDim.x) scalar(c);
  const Vec* xv = reinterpret_cast<const Vec*>(row + h);
  int64_t i = threadIdx.x;
  for (; i + blockDim.x < nch; i += 2 * int64_t{blockDim.x}) {
    const Vec a = xv[i], b = xv[i + blockDim.x];
    chunk(h + i * V, a);
    chunk(h + (i + blockDim.x) * V, b);
  }
  if (i < nch) chunk(h + i * V, xv[i]);
  for (int64_t c = h + nch * V + threadIdx.x; c < C; c += blockDim.x) scalar(c);
}

/// S == 1: one block per row.
template <class T, class Xs, bool kSmooth>
__global__ void forward_rows_kernel(T* __restrict__ L, T* __restrict__ Mx, T* __restrict__ LZ,
                                    const Xs* __restrict__ X, const int64_t* __restrict__ Tgt,
                                    Rule<T> rule, int64_t R) {
  __shared__ Lse<T> shared[32];
  const int64_t C = rule.C;
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const Xs* x = X + r * C;  // (C)
    Lse<T> s = lse_empty<T>();
    const auto add = [&](int64_t c, Xs v) {
      lse_add<T, kSmooth>(s, convert<T>(v), kSmooth ? rule.weight(c) : T(1));
    };
    for_row<Xs>(
        x, C, [&](int64_t c) { add(c, x[c]); },
        [&](int64_t c0, const RowChunk<Xs>& v) {
#pragma unroll
          for (int j = 0; j < kRowChunk<Xs>; ++j) add(c0 + j, v.v[j]);
        });
    s = block_merge<T, kSmooth>(s, shared);
    if (threadIdx.x == 0) finish_row(rule, Tgt[r], s, x, 1, L + r, Mx + r, LZ + r);
  }
}

/// S > 1: one thread per row.
template <class T, class Xs, bool kSmooth>
__global__ void forward_columns_kernel(T* __restrict__ L, T* __restrict__ Mx, T* __restrict__ LZ,
                                       const Xs* __restrict__ X, const int64_t* __restrict__ Tgt,
                                       Rule<T> rule, int64_t R, int64_t S) {
  const int64_t C = rule.C;
  for (int64_t r = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; r < R;
       r += int64_t{gridDim.x} * blockDim.x) {
    const Xs* x = X + (r / S) * C * S + r % S;  // x[c * S]: class c
    Lse<T> s = lse_empty<T>();
    for (int64_t c = 0; c < C; ++c)
      lse_add<T, kSmooth>(s, convert<T>(x[c * S]), kSmooth ? rule.weight(c) : T(1));
    finish_row(rule, Tgt[r], s, x, S, L + r, Mx + r, LZ + r);
  }
}

/// partial (chunks, 2): per chunk of kSumChunk rows, the sum of the losses and of w_t over the
/// rows not ignored.
template <class T>
__global__ void sum_partials_kernel(double* __restrict__ partial, const T* __restrict__ L,
                                    const int64_t* __restrict__ Tgt, Rule<T> rule, int64_t R,
                                    int64_t chunks) {
  __shared__ double shared[33];
  for (int64_t chunk = blockIdx.x; chunk < chunks; chunk += gridDim.x) {
    const int64_t r1 = (chunk + 1) * kSumChunk < R ? (chunk + 1) * kSumChunk : R;
    double sl = 0.0, sw = 0.0;
    for (int64_t r = chunk * kSumChunk + threadIdx.x; r < r1; r += blockDim.x) {
      sl += static_cast<double>(L[r]);
      const int64_t t = Tgt[r];
      if (t != rule.ignore_index && rule.valid(t)) sw += static_cast<double>(rule.weight(t));
    }
    sl = block_sum(sl, shared);
    sw = block_sum(sw, shared);
    if (threadIdx.x == 0) {
      partial[2 * chunk] = sl;
      partial[2 * chunk + 1] = sw;
    }
  }
}

/// sums (2) = the chunk partials (chunks, 2) added up; one block.
__global__ void sum_final_kernel(double* __restrict__ sums, const double* __restrict__ partial,
                                 int64_t chunks) {
  __shared__ double shared[33];
  double sl = 0.0, sw = 0.0;
  for (int64_t c = threadIdx.x; c < chunks; c += blockDim.x) {
    sl += partial[2 * c];
    sw += partial[2 * c + 1];
  }
  sl = block_sum(sl, shared);
  sw = block_sum(sw, shared);
  if (threadIdx.x == 0) {
    sums[0] = sl;
    sums[1] = sw;
  }
}

/// out (1) = sum_c W[c]; one block.
template <class T>
__global__ void weight_sum_kernel(double* __restrict__ out, const T* __restrict__ W, int64_t C) {
  __shared__ double shared[33];
  double s = 0.0;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += static_cast<double>(W[c]);
  s = block_sum(s, shared);
  if (threadIdx.x == 0) *out = s;
}

// ---- backward ----

/// A row's gradient coefficients: dx_c = k_p p_c - k_w w_c, minus k_t at the target.
template <class T>
struct RowGrad {
  T k_p, k_w, k_t;
};

template <class T>
__device__ RowGrad<T> row_grad(const Rule<T>& rule, int64_t t, T a) {
  const double ad = static_cast<double>(a);
  const double w_t = static_cast<double>(rule.weight(t));
  const double C = static_cast<double>(rule.C);
  const double k_s = ad * rule.ls / C;
  return {static_cast<T>(ad * ((1.0 - rule.ls) * w_t + rule.ls / C * rule.weight_sum())),
          static_cast<T>(k_s), static_cast<T>(ad * (1.0 - rule.ls) * w_t)};
}

/// dx of class c of a row (not ignored).
template <class T>
__device__ __forceinline__ T grad_of(const Rule<T>& rule, const RowGrad<T>& g, T x, T m, T lz,
                                     int64_t c, int64_t t) {
  T v = g.k_p * exp_of((x - m) - lz);
  if (rule.ls > 0.0) v = v - g.k_w * rule.weight(c);
  if (c == t) v = v - g.k_t;
  return v;
}

/// The row's coefficients, or false where the row gets zeros (ignored) or NaN (invalid target).
template <class T>
__device__ __forceinline__ bool row_coefficients(const Rule<T>& rule, int64_t t, const T* DL,
                                                 bool per_row, int64_t r, RowGrad<T>& g, T& fill) {
  if (t == rule.ignore_index || !rule.valid(t)) {
    fill = t == rule.ignore_index ? T(0) : nan_of<T>();
    return false;
  }
  g = row_grad(rule, t, DL[per_row ? r : 0]);
  return true;
}

/// S == 1: one block per row. kVec: x and dx share their offset from a 16-byte boundary, and
/// both are walked in 16-byte chunks.
template <class T, class Xs, bool kVec>
__global__ void backward_rows_kernel(Xs* __restrict__ DX, const T* __restrict__ DL, bool per_row,
                                     const Xs* __restrict__ X, const int64_t* __restrict__ Tgt,
                                     const T* __restrict__ Mx, const T* __restrict__ LZ,
                                     Rule<T> rule, int64_t R) {
  const int64_t C = rule.C;
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const Xs* x = X + r * C;  // (C)
    Xs* dx = DX + r * C;
    const int64_t t = Tgt[r];
    RowGrad<T> g;
    T fill;
    if (!row_coefficients(rule, t, DL, per_row, r, g, fill)) {
      const Xs f = convert<Xs>(fill);
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dx[c] = f;
      continue;
    }
    const T m = Mx[r], lz = LZ[r];
    const auto grad = [&](int64_t c, Xs v) {
      return convert<Xs>(grad_of(rule, g, convert<T>(v), m, lz, c, t));
    };
    if constexpr (!kVec) {
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dx[c] = grad(c, x[c]);
    } else {  // x and dx alike against 16-byte boundaries: a chunk of x is one of dx
      for_row<Xs>(
          x, C, [&](int64_t c) { dx[c] = grad(c, x[c]); },
          [&](int64_t c0, const RowChunk<Xs>& v) {
            RowChunk<Xs> o;
#pragma unroll
            for (int j = 0; j < kRowChunk<Xs>; ++j) o.v[j] = grad(c0 + j, v.v[j]);
            *reinterpret_cast<RowChunk<Xs>*>(dx + c0) = o;
          });
    }
  }
}

/// S > 1: one thread per row.
template <class T, class Xs>
__global__ void backward_columns_kernel(Xs* __restrict__ DX, const T* __restrict__ DL, bool per_row,
                                        const Xs* __restrict__ X, const int64_t* __restrict__ Tgt,
                                        const T* __restrict__ Mx, const T* __restrict__ LZ,
                                        Rule<T> rule, int64_t R, int64_t S) {
  const int64_t C = rule.C;
  for (int64_t r = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; r < R;
       r += int64_t{gridDim.x} * blockDim.x) {
    const int64_t base = (r / S) * C * S + r % S;  // class c at base + c * S
    const int64_t t = Tgt[r];
    RowGrad<T> g;
    T fill;
    if (!row_coefficients(rule, t, DL, per_row, r, g, fill)) {
      const Xs f = convert<Xs>(fill);
      for (int64_t c = 0; c < C; ++c) DX[base + c * S] = f;
      continue;
    }
    const T m = Mx[r], lz = LZ[r];
    for (int64_t c = 0; c < C; ++c)
      DX[base + c * S] = convert<Xs>(grad_of(rule, g, convert<T>(X[base + c * S]), m, lz, c, t));
  }
}

// ---- typed launchers ----

/// A temporary device buffer of n float64 values on t's device.
Tensor scratch(int64_t n, const Tensor& t) {
  return empty({n}, TensorOptions(kFloat64).device(t.device()));
}

/// The rule for x (N, C, *), with W's sum computed into w_sum (a fresh scratch) when weighted.
template <class T>
Rule<T> make_rule(const Tensor& x, const Tensor& weight, int64_t ignore_index, double ls,
                  Tensor& w_sum, cudaStream_t stream) {
  Rule<T> rule{nullptr, nullptr, x.size(1), ignore_index, ls};
  if (weight.defined()) {
    rule.W = static_cast<const T*>(weight.data_ptr());
    w_sum = scratch(1, x);
    rule.W_sum = static_cast<const double*>(w_sum.data_ptr());
    weight_sum_kernel<T>
        <<<1, kThreads, 0, stream>>>(static_cast<double*>(w_sum.data_ptr()), rule.W, rule.C);
    EMBER_CUDA_CHECK_LAUNCH();
  }
  return rule;
}

template <class T, class Xs, bool kSmooth>
void launch_forward(const Tensor& loss, const Tensor& max, const Tensor& log_sum, const Tensor& x,
                    const Tensor& target, const Rule<T>& rule, int64_t R, int64_t S,
                    cudaStream_t stream) {
  T* L = static_cast<T*>(loss.data_ptr());
  T* Mx = static_cast<T*>(max.data_ptr());
  T* LZ = static_cast<T*>(log_sum.data_ptr());
  const Xs* X = static_cast<const Xs*>(x.data_ptr());
  const int64_t* Tgt = static_cast<const int64_t*>(target.data_ptr());
  if (S == 1) {
    forward_rows_kernel<T, Xs, kSmooth>
        <<<grid_for(R), row_threads(rule.C), 0, stream>>>(L, Mx, LZ, X, Tgt, rule, R);
  } else {
    forward_columns_kernel<T, Xs, kSmooth>
        <<<grid_for(ceil_div(R, kThreads)), kThreads, 0, stream>>>(L, Mx, LZ, X, Tgt, rule, R, S);
  }
  EMBER_CUDA_CHECK_LAUNCH();
}

template <class T, class Xs>
void forward_typed(const Tensor& loss, const Tensor& max, const Tensor& log_sum, const Tensor& sums,
                   const Tensor& x, const Tensor& target, const Tensor& weight,
                   int64_t ignore_index, double label_smoothing, int64_t R, int64_t S) {
  const cudaStream_t stream = stream_of(loss);
  Tensor w_sum;
  const Rule<T> rule = make_rule<T>(x, weight, ignore_index, label_smoothing, w_sum, stream);
  if (label_smoothing > 0.0) {
    launch_forward<T, Xs, true>(loss, max, log_sum, x, target, rule, R, S, stream);
  } else {
    launch_forward<T, Xs, false>(loss, max, log_sum, x, target, rule, R, S, stream);
  }
  if (!sums.defined()) return;
  const int64_t chunks = ceil_div(R, kSumChunk);
  Tensor partial = scratch(2 * chunks, x);  // (chunks, 2)
  double* P = static_cast<double*>(partial.data_ptr());
  sum_partials_kernel<T><<<grid_for(chunks), kThreads, 0, stream>>>(
      P, static_cast<const T*>(loss.data_ptr()), static_cast<const int64_t*>(target.data_ptr()),
      rule, R, chunks);
  EMBER_CUDA_CHECK_LAUNCH();
  sum_final_kernel<<<1, kThreads, 0, stream>>>(static_cast<double*>(sums.data_ptr()), P, chunks);
  EMBER_CUDA_CHECK_LAUNCH();
}

template <class T, class Xs>
void backward_typed(const Tensor& dx, const Tensor& dloss, const Tensor& x, const Tensor& target,
                    const Tensor& weight, const Tensor& max, const Tensor& log_sum,
                    int64_t ignore_index, double label_smoothing, int64_t R, int64_t S) {
  const cudaStream_t stream = stream_of(dx);
  Tensor w_sum;
  const Rule<T> rule = make_rule<T>(x, weight, ignore_index, label_smoothing, w_sum, stream);
  const bool per_row = dloss.numel() == R && R > 1;
  Xs* DX = static_cast<Xs*>(dx.data_ptr());
  const T* DL = static_cast<const T*>(dloss.data_ptr());
  const Xs* X = static_cast<const Xs*>(x.data_ptr());
  const int64_t* Tgt = static_cast<const int64_t*>(target.data_ptr());
  const T* Mx = static_cast<const T*>(max.data_ptr());
  const T* LZ = static_cast<const T*>(log_sum.data_ptr());
  if (S == 1) {
    const bool same_head =
        (reinterpret_cast<uintptr_t>(X) - reinterpret_cast<uintptr_t>(DX)) % 16 == 0;
    if (same_head)
      backward_rows_kernel<T, Xs, true><<<grid_for(R), row_threads(rule.C), 0, stream>>>(
          DX, DL, per_row, X, Tgt, Mx, LZ, rule, R);
    else
      backward_rows_kernel<T, Xs, false><<<grid_for(R), row_threads(rule.C), 0, stream>>>(
          DX, DL, per_row, X, Tgt, Mx, LZ, rule, R);
  } else {
    backward_columns_kernel<T, Xs><<<grid_for(ceil_div(R, kThreads)), kThreads, 0, stream>>>(
        DX, DL, per_row, X, Tgt, Mx, LZ, rule, R, S);
  }
  EMBER_CUDA_CHECK_LAUNCH();
}

}  // namespace

void cross_entropy_forward(const Tensor& loss, const Tensor& max, const Tensor& log_sum,
                           const Tensor& sums, const Tensor& x, const Tensor& target,
                           const Tensor& weight, int64_t ignore_index, double label_smoothing) {
  const int64_t N = x.size(0), C = x.size(1);
  const int64_t R = target.numel();  // N * S rows
  detail::DeviceGuard guard(x.device().index());
  if (R == 0 || C == 0) {
    if (sums.defined())
      EMBER_CUDA_CHECK(cudaMemsetAsync(sums.data_ptr(), 0, 2 * sizeof(double), stream_of(sums)));
    return;
  }
  const int64_t S = R / N;
  detail::visit_device_widened(x.dtype(), "cross_entropy", [&](auto tag) {
    using Xs = typename decltype(tag)::type;
    forward_typed<detail::compute_t<Xs>, Xs>(loss, max, log_sum, sums, x, target, weight,
                                             ignore_index, label_smoothing, R, S);
  });
}

void cross_entropy_backward(const Tensor& dx, const Tensor& dloss, const Tensor& x,
                            const Tensor& target, const Tensor& weight, const Tensor& max,
                            const Tensor& log_sum, int64_t ignore_index, double label_smoothing) {
  const int64_t N = x.size(0), C = x.size(1);
  const int64_t R = target.numel();
  if (R == 0 || C == 0) return;
  const int64_t S = R / N;
  detail::DeviceGuard guard(x.device().index());
  detail::visit_device_widened(x.dtype(), "cross_entropy_backward", [&](auto tag) {
    using Xs = typename decltype(tag)::type;
    backward_typed<detail::compute_t<Xs>, Xs>(dx, dloss, x, target, weight, max, log_sum,
                                              ignore_index, label_smoothing, R, S);
  });
}

}  // namespace ember::cuda
