// The kernel ABI: every kernel an op launches, declared for cpu:: and cuda:: with identical
// signatures. Ops do the checks, shape rules and allocation; kernels only compute.
// Conventions: outputs first, then inputs, then parameters. Inputs of elementwise kernels are
// already broadcast (expanded, stride 0) to the output's shape; any strides are allowed.
#pragma once

#include <cstdint>
#include <vector>

#include "ember/random.hpp"
#include "ember/scalar.hpp"
#include "ember/tensor.hpp"

namespace ember {

enum class UnaryOp : uint8_t {
  Neg, Exp, Exp2, Log, Log2, Log1p, Expm1, Sqrt, Rsqrt, Abs, Sign, Sin, Cos, Tan, Tanh, Sigmoid,
  Relu, GeluErf, GeluTanh, Silu, LeakyRelu /*p0 slope*/, Elu /*p0 alpha*/,
  Softplus /*p0 beta, p1 threshold*/, Erf, Reciprocal, Square, Floor, Ceil, Round,
  ClampMin /*p0*/, ClampMax /*p0*/, Clamp /*p0 min, p1 max*/, PowScalar /*p0 exponent*/,
  LogicalNot /*out bool*/, IsNan /*out bool*/, IsInf /*out bool*/, IsFinite /*out bool*/
};

/// The activations whose backward is one pass (activation_backward): the gradient from the
/// forward's input x (GeluErf, GeluTanh, Silu, LeakyRelu p0 slope, Elu p0 alpha, Softplus p0 beta
/// p1 threshold) or from its output y (Tanh, Sigmoid, Relu).
enum class ActGrad : uint8_t {
  GeluErf,
  GeluTanh,
  Silu,
  Tanh,
  Sigmoid,
  Relu,
  LeakyRelu,
  Elu,
  Softplus
};

enum class BinaryOp : uint8_t {
  Add /*a + alpha*b*/, Sub /*a - alpha*b*/, Mul, Div, Pow, Minimum, Maximum,
  Eq, Ne, Lt, Le, Gt, Ge /*out bool*/, LogicalAnd, LogicalOr /*out bool*/
};

enum class ReduceOp : uint8_t { Sum, Prod, Max, Min, All, Any };

/// The random kernels; see random_elements_per_block.
enum class RandomKind : uint8_t { Uniform, Normal, Randint, Bernoulli, Randperm, Multinomial };

/// How many consecutive elements (draws, for randperm and multinomial) share one 128-bit Philox
/// block of four 32-bit words: one word each for 32-bit uniforms and Bernoulli; two words (64
/// bits) each for float64 uniforms, randint, randperm swaps and multinomial uniforms; normal uses
/// a block per Box-Muller pair (two 53-bit uniforms -> two normals).
inline int64_t random_elements_per_block(RandomKind kind, DType dtype) {
  switch (kind) {
    case RandomKind::Uniform: return dtype == DType::Float64 ? 2 : 4;
    case RandomKind::Bernoulli: return 4;
    case RandomKind::Normal:
    case RandomKind::Randint:
    case RandomKind::Randperm:
    case RandomKind::Multinomial: return 2;
  }
  return 1;
}

/// A 2-D sliding window (im2col, col2im, pooling): kernel (kh, kw), dilation (dh, dw), zero
/// padding (ph, pw) on both sides and stride (sh, sw). For an (H, W) plane the window positions
/// are OH = (H + 2ph - dh (kh - 1) - 1) / sh + 1 by OW likewise; window (oh, ow) reads input row
/// oh sh - ph + i dh and column ow sw - pw + j dw for i < kh, j < kw.
struct Window2d {
  int64_t kh, kw, dh, dw, ph, pw, sh, sw;
};

/// The activation of a fused GEMM epilogue (GeluErf/GeluTanh as UnaryOp's).
enum class GemmAct : uint8_t { kNone, kRelu, kGelu, kGeluTanh };

/// What a fused GEMM does with the product (cuda::gemm_tc), each part optional:
/// out = act(alpha * a @ b + beta * out + bias) + residual, in float32, rounded once to out's
/// dtype: the operands' dtype, or float32 for 16-bit operands (the output cast). bias is (N) and
/// residual out's (B, M, N) shape, both in out's dtype; beta == 0 ignores out's old contents.
/// pre_act (out's shape and dtype, any strides), when defined, also receives the activation's
/// input alpha * a @ b + beta * out + bias (what a GELU's backward needs).
struct GemmEpilogue {
  double alpha = 1.0;
  double beta = 0.0;
  Tensor bias;
  GemmAct act = GemmAct::kNone;
  Tensor residual;
  Tensor pre_act;
};

/// The running statistics a training-mode batch_norm blends its batch statistics into, in place:
/// mean and var (C) contiguous, of the compute dtype, on x's device (both undefined: none).
/// unbias = n / (n - 1) for n values per channel.
struct RunningStats {
  Tensor mean, var;
  double momentum = 0.0, unbias = 1.0;
};

namespace cpu {
// ---- elementwise (src/core/cpu/elementwise.cpp, copy.cpp; src/cuda/elementwise.cu, copy.cu) ----
/// out[...] = value converted to out's dtype.
void fill(const Tensor& out, Scalar value);
/// out (n) contiguous: arange's values, out[i] = start + i * step converted to out's dtype, the
/// sum in int64 when integral (start and step integers), else in double (no fused multiply-add).
void arange(const Tensor& out, Scalar start, Scalar step, bool integral);
/// out (n) contiguous: linspace's values from start to end, the first half counted up from
/// start, the second down from end (PyTorch's symmetric rule), in double.
void linspace(const Tensor& out, double start, double end);
/// out[...] = src[...] converted to out's dtype; same shape (src may be expanded).
void copy(const Tensor& out, const Tensor& src);
/// out = op(x). x has the compute dtype (out's dtype, except bool outputs).
void unary(const Tensor& out, const Tensor& x, UnaryOp op, double p0, double p1);
/// out = op(a, b). a and b share the compute dtype; alpha scales b for Add/Sub. For Add, Sub,
/// Mul and Div on float16/bfloat16, b may instead be float32 (a broadcast scalar operand kept at
/// float precision, as PyTorch's opmath scalars).
void binary(const Tensor& out, const Tensor& a, const Tensor& b, BinaryOp op, Scalar alpha);
/// out = cond ? a : b (cond bool; a, b of out's dtype).
void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b);
/// dx = dy * f'(at), PyTorch's *_backward kernels: at is x or y as ActGrad says; dx, dy, at of
/// one floating dtype and shape (dy and at may be expanded), computed in its opmath type (16-bit
/// in float32) and rounded once.
void activation_backward(const Tensor& dx, const Tensor& dy, const Tensor& at, ActGrad kind,
                         double p0, double p1);

// ---- reductions (src/core/cpu/reduce.cpp, src/cuda/reduce.cu) ----
/// Reduces x over `dims` (sorted, unique; empty: each output is its one input element) into out
/// (keepdim shape: size 1 at dims; any dtype: the accumulator is converted once at the end).
/// Sum/Prod accumulate in double for floating x and in int64 for integer/bool x, Max/Min in x's
/// compute type (NaN propagates), All/Any in bool. Bitwise independent of strides and of the
/// thread count (fixed chunks, fixed combine order).
void reduce(const Tensor& out, const Tensor& x, IntArrayRef dims, ReduceOp op);
/// Max/Min along one dim with int64 indices of the first extremum (NaN counts as extremum).
/// values (x's dtype) and indices have the keepdim shape.
void arg_reduce(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim,
                bool is_max);
/// Inclusive prefix sum along dim; out and x share shape and dtype (accumulates in double/int64).
void cumsum(const Tensor& out, const Tensor& x, int64_t dim);
/// Softmax (log: log_softmax) along dim, stable (max subtracted); out and x share one floating
/// dtype.
void softmax(const Tensor& out, const Tensor& x, int64_t dim, bool log);

// ---- linear algebra (src/core/cpu/linalg.cpp, src/cuda/linalg.cu) ----
/// out[b] = beta * out[b] + alpha * a[b] @ b[b] for (B, M, K) x (B, K, N) -> (B, M, N), any
/// strides (transposed operands read in place). beta == 0 ignores out's old contents. out has
/// the operands' dtype, or float32 for float16/bfloat16 operands (accumulated in float32, never
/// rounded to 16 bits).
void gemm(const Tensor& out, const Tensor& a, const Tensor& b, Scalar alpha, Scalar beta);
// references
/// gemm as a plain triple loop (double sums for floating types); the tests check gemm against it.
void gemm_reference(const Tensor& out, const Tensor& a, const Tensor& b, Scalar alpha,
                    Scalar beta);

// ---- indexing (src/core/cpu/index.cpp, src/cuda/index.cu) and sorting (sort.cpp, sort.cu) ----
// Index tensors are int64 and already range-checked by check_index_range unless noted.
/// IndexError "[op] index 5 is out of bounds for dimension dim with size 3" unless every value
/// of the int64 tensor `index` lies in [0, size).
void check_index_range(const Tensor& index, int64_t size, const char* op, int64_t dim);
/// out[i][j][k] = x[i][index[i][j][k]][k] for dim 1; out and index share a shape that fits in
/// x outside dim. Same rank for all three.
void gather(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index);
/// out already holds a copy of the destination; writes (or adds, when accumulate) src at index:
/// out[i][index[i][j][k]][k] (+)= src[i][j][k] for dim 1, iterating over index's shape. Duplicate
/// targets are applied in order along dim, so accumulation is deterministic.
void scatter(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src, bool accumulate);
/// out = x with dim restricted to the 1-D index (out.size(dim) == index.numel()).
void index_select(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index);
/// out.index_select(dim, index) += alpha * source, deterministic (sequential over index).
void index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& source, Scalar alpha);
/// Sorts along dim; values and indices (int64) have x's shape. Equal elements keep their order
/// (every sort is stable); NaN is larger than every number.
void sort(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim,
          bool descending, bool stable);
/// The k largest (or smallest) along dim; values and indices have x's shape with k at dim.
/// Ties prefer the smaller index; sorted=false keeps the selected elements in input order.
void topk(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t k, int64_t dim,
          bool largest, bool sorted);
/// count (0-d int64) = number of elements of x that are not zero (NaN counts as non-zero).
void count_nonzero(const Tensor& count, const Tensor& x);
/// out (count, x.dim()) int64 = coordinates of the non-zero elements of contiguous x, row-major.
void nonzero(const Tensor& out, const Tensor& x);

// ---- random (src/core/cpu/random.cpp, src/cuda/random.cu; both through src/core/philox.hpp) ----
// out is contiguous. Element i (row-major) of out reads Philox4x32-10 with key = seed and counter
// block offset + i / per_block, per_block = random_elements_per_block(kind, out's dtype); the op
// reserves ceil(numel / per_block) blocks with Generator::advance first.
/// Floating out, uniform in [from, to) (from < to, or from == to giving from).
void uniform(const Tensor& out, double from, double to, uint64_t seed, uint64_t offset);
/// Floating out, mean + std * N(0, 1) (Box-Muller in double).
void normal(const Tensor& out, double mean, double std, uint64_t seed, uint64_t offset);
/// Any out dtype holding [low, high), low < high: low + (64 random bits * (high - low)) >> 64.
void randint(const Tensor& out, int64_t low, int64_t high, uint64_t seed, uint64_t offset);
/// out (any dtype) = 1 with probability p[i], else 0. p is floating with values in [0, 1], and
/// either contiguous with out's numel or a single element used for all of out.
void bernoulli(const Tensor& out, const Tensor& p, uint64_t seed, uint64_t offset);
/// out (1-D, n elements, any dtype holding n - 1) = a Fisher-Yates shuffle of 0..n-1; draw s
/// (s = 0..n-2) swaps position n-1-s with one uniform in [0, n-1-s].
void randperm(const Tensor& out, uint64_t seed, uint64_t offset);
/// out (R, K) int64 = K category indices per row of weights (R, N) (float64, validated: finite,
/// non-negative, each row with a positive sum and, without replacement, >= K non-zero weights).
/// With replacement draw r*K+k is one inverse-CDF sample; without replacement draw r*N+n is the
/// uniform of category n (exponential race, see the kernel).
void multinomial(const Tensor& out, const Tensor& weights, bool replacement, uint64_t seed,
                 uint64_t offset);

// ---- convolution and pooling (src/core/cpu/conv.cpp; im2col to depthwise: src/cuda/conv.cu) ----
/// cols (P, kh*kw, OH*OW) contiguous = the windows of x (P, H, W) (P = N*C planes, any strides):
/// cols[p][i*kw + j][oh*OW + ow] = x[p][oh*sh - ph + i*dh][ow*sw - pw + j*dw], 0 in the padding.
void im2col(const Tensor& cols, const Tensor& x, const Window2d& w);
/// out (P, H, W) contiguous = the adjoint of im2col: each element of cols (P, kh*kw, OH*OW, any
/// strides) added to the input position it was read from; padding positions are dropped.
/// Accumulates in compute_t (float for Half/BFloat16) in a fixed order (deterministic).
void col2im(const Tensor& out, const Tensor& cols, const Window2d& w);
/// values and indices (int64, into H*W), both (N, C, OH, OW) with one set of strides (any; a
/// channels-last pair from a channels-last x), = max over the windows of x (N, C, H, W, any
/// strides, floating). rows (OH, 2) and cols (OW, 2) int64 contiguous list each
/// window's [begin, end) in input coordinates, clipped to the plane; the window visits begin,
/// begin + dh, ... < end (dw along W). Ties keep the first position, NaN wins (as PyTorch).
void max_pool2d(const Tensor& values, const Tensor& indices, const Tensor& x, const Tensor& rows,
                const Tensor& cols, int64_t dh, int64_t dw);
/// out (P, OH, OW) contiguous = depthwise convolution (one filter per plane, no bias) of x
/// (P, H, W, any strides, floating; P = N*C) with weight (C, kh*kw) contiguous: plane p uses row
/// p % C. Accumulates in compute_t, taps in order (deterministic).
void depthwise_conv2d(const Tensor& out, const Tensor& x, const Tensor& weight, const Window2d& w);
/// out (N, O, OH, OW) contiguous = conv2d of x (N, C, H, W, any strides) with weight
/// (O, C*kh*kw, any strides), plus bias (O,) of out's dtype when defined; groups 1, any stride,
/// padding and dilation. Direct convolution (src/core/cpu/conv_direct.cpp): each sample is copied
/// once into zero-padded phase planes and every tap reads a contiguous slice of them, so nothing is
/// packed per tap. float32 and float64; each element one fma chain over (c, r, s) in order, bitwise
/// the same for every thread count and instruction set.
void conv2d_direct(const Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias,
                   const Window2d& w);
/// gx (N, C, H, W) contiguous = conv2d's input gradient (the transposed convolution) of dy
/// (N, O, OH, OW, any strides) with weight (O, C*kh*kw, any strides): each of the sh*sw output
/// phases (rows a, a + sh, ...; columns b, b + sw, ...) is a direct convolution of zero-padded dy
/// with the taps that reach it. H and W may exceed what (OH, OW) covers (output_padding): those
/// elements get only the taps that reach them. float32 and float64; bitwise the same for every
/// thread count and instruction set.
void conv2d_direct_input_grad(const Tensor& gx, const Tensor& dy, const Tensor& weight,
                              const Window2d& w);
/// gw (O, C*kh*kw) contiguous = sum over n and output positions of dy[n] (N, O, OH, OW, any
/// strides) times the windows of x (N, C, H, W, any strides): conv2d's weight gradient by the
/// direct layout. float32 and float64; bitwise the same for every thread count (not across
/// instruction sets: their vectors sum the positions in different lanes).
void conv2d_direct_weight_grad(const Tensor& gw, const Tensor& dy, const Tensor& x,
                               const Window2d& w);
// references
/// im2col and col2im as plain loops over every element of cols (col2im sums in double); the
/// tests check the kernels against them.
void im2col_reference(const Tensor& cols, const Tensor& x, const Window2d& w);
void col2im_reference(const Tensor& out, const Tensor& cols, const Window2d& w);

// ---- attention (src/core/cpu/attention.cpp; src/cuda/attention.cu) ----
/// FlashAttention-2 forward: out (..., L, Dv) contiguous = softmax(q k^T * scale) v and lse
/// (..., L) contiguous = the log-sum-exp of each query's scaled scores, for q (..., L, D), k
/// (..., S, D), v (..., S, Dv) with the same batch dims (any strides), float32 or float64 (out and
/// lse take q's dtype). is_causal: query i sees keys 0..i. S == 0 gives zeros (lse -inf). Never
/// forms the (L, S) scores; bitwise independent of the thread count.
/// dropout_p > 0 drops attention weights with the Philox words of (seed, offset): the mask of
/// bernoulli(1 - p) over a (..., L, S) tensor at that state (BH*L*S/4 blocks), never stored.
void attention_forward_flash(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                             const Tensor& v, double scale, bool is_causal, double dropout_p = 0.0,
                             uint64_t seed = 0, uint64_t offset = 0);
/// FlashAttention-2 backward: dq, dk, dv (contiguous, shapes of q, k, v) from dout (..., L, Dv,
/// any strides) and the forward's q, k, v, out and lse. Recomputes the probabilities tile by tile;
/// one thread per batch index, so bitwise independent of the thread count.
void attention_backward_flash(const Tensor& dq, const Tensor& dk, const Tensor& dv,
                              const Tensor& dout, const Tensor& q, const Tensor& k,
                              const Tensor& v, const Tensor& out, const Tensor& lse, double scale,
                              bool is_causal, double dropout_p = 0.0, uint64_t seed = 0,
                              uint64_t offset = 0);

// ---- normalization (src/core/cpu/normalization.cpp, src/cuda/normalization.cu) ----
// x, y, dy and dx float32 or float64, or float16/bfloat16 computed in float32 (bitwise the float32
// kernel on x.to(float32), y and dx rounded afterwards); every other tensor of the compute dtype;
// all contiguous. weight and bias may be undefined (no affine), and an undefined gradient output
// is not computed. Results are bitwise independent of the thread count.
/// layer_norm over the last N = x.numel() / M elements of x, M = mean.numel() rows: y (x's shape)
/// = (x - mean) * rstd * weight + bias with weight, bias (N); mean and rstd (M) =
/// 1 / sqrt(biased var + eps) per row, kept for the backward.
void layer_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, double eps);
/// dx (x's shape), dweight, dbias (N) of layer_norm_forward from dy (x's shape) and the saved
/// mean, rstd. dweight and dbias are sums over fixed chunks of rows, added in chunk order.
void layer_norm_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                         const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                         const Tensor& weight);
/// batch_norm with batch statistics over x (N, C, *): per channel mean, invstd = 1 / sqrt(var +
/// eps) and var (the biased variance), each (C); y (x's shape) = (x - mean) * invstd * weight +
/// bias with weight, bias (C). N * (product of *) must be positive. x and y float32/float64, or
/// float16/bfloat16 computed in float32; every other tensor of the compute dtype. With running
/// statistics: per channel, in float64 and each product and sum rounded apart (the composite's
/// arithmetic), running.mean = running.mean (1 - momentum) + mean momentum and running.var =
/// running.var (1 - momentum) + (var unbias) momentum, rounded once to the compute dtype.
void batch_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& invstd,
                        const Tensor& var, const Tensor& x, const Tensor& weight,
                        const Tensor& bias, double eps, const RunningStats& running);
/// Eval-mode batch_norm: y = ((x - mean) * r) * weight + bias per element, the channel's mean,
/// r, weight and bias (C) of the compute dtype (weight, bias may be undefined), each product and
/// sum rounded apart in the compute dtype as the composite's ops, y rounded once to x's dtype.
/// x and y as batch_norm_forward's, contiguous (N, C, *).
void batch_norm_eval(const Tensor& y, const Tensor& x, const Tensor& mean, const Tensor& r,
                     const Tensor& weight, const Tensor& bias);
/// Eval-mode batch_norm_relu: z = relu(y + residual) with y batch_norm_eval's, rounded to x's
/// dtype before the add and the sum rounded again (the separate ops' values); residual laid out
/// as x, or undefined (z = relu(y)).
void batch_norm_eval_relu(const Tensor& z, const Tensor& x, const Tensor& mean, const Tensor& r,
                          const Tensor& weight, const Tensor& bias, const Tensor& residual);
/// dx (x's shape), dweight, dbias (C) of batch_norm_forward from dy and the saved mean, invstd.
void batch_norm_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                         const Tensor& dy, const Tensor& x, const Tensor& mean,
                         const Tensor& invstd, const Tensor& weight);

// ---- cross-entropy (src/core/cpu/cross_entropy.cpp, src/cuda/cross_entropy.cu) ----
// Logits x (N, C, S) contiguous, float32 or float64, or float16/bfloat16 computed in float32 (S =
// the product of the dims after the class dim, 1 for (N, C)); a row r = n S + s is x[n, :, s].
// The compute dtype is x's, float32 for 16-bit x: loss, max, log_sum, weight and dloss have it,
// dx has x's dtype. target (N, S) contiguous int64, each value in [0, C) or ignore_index (checked
// by the op); weight (C) contiguous of the compute dtype, or undefined (every class 1).
// ls = label_smoothing. Results are bitwise independent of the thread count; on the CPU, 16-bit x
// gives bitwise the float32 results of x.to(float32), dx rounded once to x's dtype.
/// Per row, in the compute dtype: max[r] = max_c x_c and log_sum[r] = log sum_c exp(x_c - max[r])
/// (the log-sum-exp lse = max + log_sum, kept in two parts for the backward), and loss[r] = (1 -
/// ls) w[t] (lse - x_t) + (ls / C) sum_c w_c (lse - x_c), 0 where t is ignored. sums, when defined,
/// is float64 (2): the sum of the rounded loss[r] and the sum of w[t] over the rows not ignored,
/// each over fixed chunks of rows added in chunk order.
void cross_entropy_forward(const Tensor& loss, const Tensor& max, const Tensor& log_sum,
                           const Tensor& sums, const Tensor& x, const Tensor& target,
                           const Tensor& weight, int64_t ignore_index, double label_smoothing);
/// dx (x's shape, contiguous) = dloss[r] * d loss[r] / d x per row, from the saved max and
/// log_sum: dx_c = dloss[r] (p_c ((1 - ls) w[t] + (ls / C) sum_k w_k) - (1 - ls) w[t] [c == t] -
/// (ls / C) w_c), p_c = exp((x_c - max[r]) - log_sum[r]), in the compute dtype and rounded once to
/// x's; 0 on ignored rows. dloss (the compute dtype, contiguous) has one element per row, or one
/// for every row.
void cross_entropy_backward(const Tensor& dx, const Tensor& dloss, const Tensor& x,
                            const Tensor& target, const Tensor& weight, const Tensor& max,
                            const Tensor& log_sum, int64_t ignore_index, double label_smoothing);

}  // namespace cpu

// ---- optimizer updates (src/core/cpu/optim.cpp, src/cuda/optim.cu) ----
// Multi-tensor: one call updates a list of parameters in place (on CUDA, one launch per up to
// kMaxTensors parameters). Every tensor of a call on one device, contiguous, float32 or float64 of
// one dtype; each parameter's tensors of its element count, none aliasing another. The arithmetic
// is the composite's in src/optim, operation by operation with each double scalar rounded once to
// the dtype, so the results are bitwise the composite's on the same device; elementwise, so
// bitwise independent of the thread count and of how the list is split into launches.
/// One parameter of an Adam/AdamW step (torch.optim.Adam/AdamW): param, exp_avg, exp_avg_sq and
/// max_exp_avg_sq (undefined: no amsgrad; defined for all parameters of a call or for none)
/// updated from grad. step_size = lr / (1 - beta1^t) and bias_correction2_sqrt = sqrt(1 - beta2^t)
/// for the parameter's step t.
struct AdamStepTensors {
  Tensor param, exp_avg, exp_avg_sq, max_exp_avg_sq, grad;
  double step_size = 0, bias_correction2_sqrt = 1;
};
/// The scalars shared by a call: weight_decay != 0 folds weight_decay * param into the gradient
/// (Adam's L2); decay_scale != 1 multiplies param by it first (AdamW's 1 - lr * weight_decay).
struct AdamStepOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0, decay_scale = 1;
};
/// One parameter of an SGD step (torch.optim.SGD): param and momentum_buffer (unused when
/// momentum == 0) updated from grad; on the first step the buffer is written as the (decayed)
/// gradient, not read.
struct SgdStepTensors {
  Tensor param, momentum_buffer, grad;
  bool first_step = false;
};
struct SgdStepOptions {
  double lr = 0, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
};

namespace cpu {
void adam_step(const std::vector<AdamStepTensors>& params, const AdamStepOptions& options);
void sgd_step(const std::vector<SgdStepTensors>& params, const SgdStepOptions& options);
}  // namespace cpu

namespace cuda {
void fill(const Tensor& out, Scalar value);
void arange(const Tensor& out, Scalar start, Scalar step, bool integral);
void linspace(const Tensor& out, double start, double end);
void copy(const Tensor& out, const Tensor& src);
/// copy between the host and a GPU (one side CPU, the other CUDA) that returns without waiting
/// when the host side is pinned and both sides are dense of one dtype (Tensor::copy_'s
/// non_blocking); otherwise as copy.
void copy_non_blocking(const Tensor& out, const Tensor& src);
void unary(const Tensor& out, const Tensor& x, UnaryOp op, double p0, double p1);
void binary(const Tensor& out, const Tensor& a, const Tensor& b, BinaryOp op, Scalar alpha);
void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b);
void activation_backward(const Tensor& dx, const Tensor& dy, const Tensor& at, ActGrad kind,
                         double p0, double p1);
void reduce(const Tensor& out, const Tensor& x, IntArrayRef dims, ReduceOp op);
/// The reductions' layout kernels for the calls that follow (process-wide): -1 (the default)
/// floating sums over the rows of contiguous columns (sum(x, 0) of a row-major matrix) on the
/// column kernels, whose blocks read whole rows, and 1024 or more outputs along a unit-stride dim
/// (sum(x, -1)) on the row kernel, one warp per output; 0 the general kernel, one block per
/// output, always. Different summation orders: sums agree to rounding. EMBER_REDUCE_LAYOUT_VARIANT
/// forces one for a run. For the tests and benchmarks.
void set_reduce_layout_variant(int variant);
void arg_reduce(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim,
                bool is_max);
void cumsum(const Tensor& out, const Tensor& x, int64_t dim);
void softmax(const Tensor& out, const Tensor& x, int64_t dim, bool log);
void gemm(const Tensor& out, const Tensor& a, const Tensor& b, Scalar alpha, Scalar beta);
/// The tensor-core GEMM (src/cuda/gemm_tc.cu) with a fused epilogue, for bfloat16/float16 a, b and
/// out of gemm's shapes (out also float32: the output cast), or float32 ones on TF32 when
/// cuda::allow_tf32(). Returns false, having done nothing, when the layout is not one it takes
/// (see gemm_tc.cu); the caller then uses gemm and separate ops.
bool gemm_tc(const Tensor& out, const Tensor& a, const Tensor& b, const GemmEpilogue& epilogue);
/// gemm_tc's tile configuration for the calls that follow (process-wide): -1 (the default: 0
/// when the product has fewer 128 x 128 tiles than SMs, else 1), or 0-6 forced (see gemm_tc.cu;
/// 2-6 need sm_90a, else 1 runs; 3-6, TMA, also read M-contiguous A; 6 runs in thread-block
/// clusters). For the tests and benchmarks, which run each; EMBER_GEMM_TC_CONFIG sets the
/// start-up value.
void set_gemm_tc_config(int config);
/// gemm through cuBLAS (src/cuda/cublas.cu) for cuda::Backend::kVendor: float32 (TF32 when
/// allowed), float64, float16 and bfloat16 (into out of their dtype or float32); false, having
/// done nothing, for a dtype or layout it does not map (the caller then runs gemm's own kernels).
bool cublas_gemm(const Tensor& out, const Tensor& a, const Tensor& b, Scalar alpha, Scalar beta);
/// True when this build can call cuBLAS (a real CUDA build, not the CPU emulator).
bool cublas_available();
/// True when cuDNN 9 was loaded (src/cuda/cudnn.cu, on first call); its version is the public
/// cuda::cudnn_version().
bool cudnn_available();
void check_index_range(const Tensor& index, int64_t size, const char* op, int64_t dim);
void gather(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index);
void scatter(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src, bool accumulate);
void index_select(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index);
void index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& source, Scalar alpha);
void sort(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim,
          bool descending, bool stable);
void topk(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t k, int64_t dim,
          bool largest, bool sorted);
void count_nonzero(const Tensor& count, const Tensor& x);
void nonzero(const Tensor& out, const Tensor& x);
void uniform(const Tensor& out, double from, double to, uint64_t seed, uint64_t offset);
void normal(const Tensor& out, double mean, double std, uint64_t seed, uint64_t offset);
void randint(const Tensor& out, int64_t low, int64_t high, uint64_t seed, uint64_t offset);
void bernoulli(const Tensor& out, const Tensor& p, uint64_t seed, uint64_t offset);
void randperm(const Tensor& out, uint64_t seed, uint64_t offset);
void multinomial(const Tensor& out, const Tensor& weights, bool replacement, uint64_t seed,
                 uint64_t offset);
void im2col(const Tensor& cols, const Tensor& x, const Window2d& w);
void col2im(const Tensor& out, const Tensor& cols, const Window2d& w);
void max_pool2d(const Tensor& values, const Tensor& indices, const Tensor& x, const Tensor& rows,
                const Tensor& cols, int64_t dh, int64_t dw);
void depthwise_conv2d(const Tensor& out, const Tensor& x, const Tensor& weight, const Window2d& w);
/// Implicit-GEMM convolution on the tensor cores (src/cuda/conv_implicit_gemm.cu), bfloat16 or
/// float16 tensors of one dtype, NCHW at the API (any strides), float32 accumulation, one rounding.
/// Each returns false, having written nothing, when it declines the layout (channels per group
/// not a multiple of 8, another dtype); the caller then uses im2col + gemm.
/// out (N, O, OH, OW) = act(conv2d(x (N, C, H, W), weight (O, C/groups, kh, kw)) + bias (O) when
/// defined), act = relu when `relu`. Needs C/groups % 8 == 0.
bool conv2d_implicit_gemm(const Tensor& out, const Tensor& x, const Tensor& weight,
                          const Tensor& bias, const Window2d& w, int64_t groups, bool relu);
/// dx (N, C, H, W) = conv2d's input gradient (the transposed convolution) of dy (N, O, OH, OW)
/// with weight (O, C/groups, kh, kw), + bias (C) when defined (conv_transpose2d's); (H, W) may
/// exceed what (OH, OW) covers (output_padding: those positions get only the bias). Needs
/// O/groups % 8 == 0.
bool conv2d_implicit_gemm_input_grad(const Tensor& dx, const Tensor& dy, const Tensor& weight,
                                     const Tensor& bias, const Window2d& w, int64_t groups);
/// dw (O, C/groups, kh, kw) = sum over n and output positions of dy (N, O, OH, OW) times the
/// windows of x (N, C, H, W): conv2d's weight gradient; deterministic (split-K partial sums in
/// float32 reduced in a fixed order, no atomics), rounded once to dw's dtype: x's, or float32 (a
/// float32 parameter's gradient under autocast). Needs C/groups % 8 == 0 and O/groups % 8 == 0.
bool conv2d_implicit_gemm_weight_grad(const Tensor& dw, const Tensor& dy, const Tensor& x,
                                      const Window2d& w, int64_t groups);
/// The implicit-GEMM kernels for the calls that follow (process-wide): -1 (the default, for now
/// 0) or 0: every pass on mma.sync; 1: every pass on wgmma where the GPU runs sm_90a code.
/// For the tests and benchmarks.
void set_conv_variant(int variant);
/// The same three passes through NVIDIA's cuDNN (src/cuda/cudnn.cu), for cuda::Backend::kVendor:
/// float32 (TF32 only when cuda::allow_tf32()), float64, float16 and bfloat16 (float32
/// accumulation), any channel counts, deterministic algorithms only. Each returns false, having
/// written nothing, when cuDNN cannot be loaded, for another dtype, a ReLU request, sizes past
/// int32, or an output whose extent is not exactly the convolution's (the caller then runs ops).
bool cudnn_conv2d(const Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Window2d& w, int64_t groups, bool relu);
bool cudnn_conv2d_input_grad(const Tensor& dx, const Tensor& dy, const Tensor& weight,
                             const Tensor& bias, const Window2d& w, int64_t groups);
bool cudnn_conv2d_weight_grad(const Tensor& dw, const Tensor& dy, const Tensor& x,
                              const Window2d& w, int64_t groups);
// The CUDA batch_norm kernels also take x channels-last (NCHW sizes over NHWC memory) with y, dy
// and dx laid out as x: (N H W, C) rows of channels. The CPU's take contiguous tensors only.
void layer_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, double eps);
void layer_norm_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                         const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                         const Tensor& weight);
void batch_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& invstd,
                        const Tensor& var, const Tensor& x, const Tensor& weight,
                        const Tensor& bias, double eps, const RunningStats& running);
void batch_norm_eval(const Tensor& y, const Tensor& x, const Tensor& mean, const Tensor& r,
                     const Tensor& weight, const Tensor& bias);
void batch_norm_eval_relu(const Tensor& z, const Tensor& x, const Tensor& mean, const Tensor& r,
                          const Tensor& weight, const Tensor& bias, const Tensor& residual);
void batch_norm_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                         const Tensor& dy, const Tensor& x, const Tensor& mean,
                         const Tensor& invstd, const Tensor& weight);
/// batch_norm_relu's forward: z = relu(y + residual) with y batch_norm_forward's (rounded to x's
/// dtype before the add, the sum rounded again: the unfused ops' values), residual laid out as x
/// or undefined; mask (int32, ceil(numel / 32) words) gets bit i % 32 of word i / 32 set where
/// the i-th value of z in memory is not <= 0 (relu's gradient passes there).
void batch_norm_relu_forward(const Tensor& z, const Tensor& mask, const Tensor& mean,
                             const Tensor& invstd, const Tensor& var, const Tensor& x,
                             const Tensor& weight, const Tensor& bias, const Tensor& residual,
                             double eps, const RunningStats& running);
/// Its backward: batch_norm_backward of g = (mask ? dz : 0), and dresidual = g where defined.
void batch_norm_relu_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                              const Tensor& dresidual, const Tensor& dz, const Tensor& x,
                              const Tensor& mask, const Tensor& mean, const Tensor& invstd,
                              const Tensor& weight);
/// The per-column sums of batch_norm (channels-last or (N, C) input) and of layer_norm's weight
/// and bias gradients for the calls that follow (process-wide): -1 (the default) 16-byte chunks
/// of each row per thread where the layout allows, 0 one value per thread; bitwise the same
/// results. EMBER_NORM_SUMS_VARIANT forces one for a run. For the tests and benchmarks.
void set_norm_sums_variant(int variant);
void cross_entropy_forward(const Tensor& loss, const Tensor& max, const Tensor& log_sum,
                           const Tensor& sums, const Tensor& x, const Tensor& target,
                           const Tensor& weight, int64_t ignore_index, double label_smoothing);
void cross_entropy_backward(const Tensor& dx, const Tensor& dloss, const Tensor& x,
                            const Tensor& target, const Tensor& weight, const Tensor& max,
                            const Tensor& log_sum, int64_t ignore_index, double label_smoothing);
void adam_step(const std::vector<AdamStepTensors>& params, const AdamStepOptions& options);
void sgd_step(const std::vector<SgdStepTensors>& params, const SgdStepOptions& options);
/// Gradient clipping's and loss scaling's passes over many tensors at once (torch's
/// _foreach_norm, _foreach_mul_ and _amp_foreach_non_finite_check_and_unscale_), for
/// clip_grad_norm_ and GradScaler::unscale_: xs contiguous float32/float64 tensors of one dtype
/// on one GPU, one launch (two for the norms) per up to kMaxTensors of them, no host sync.
/// norms (xs.size(),), contiguous, xs' dtype: the p-norm of each x (p 2: the square root of the
/// sum of squares; infinity: max |x|, NaN winning; otherwise (sum |x|^p)^(1/p)), summed in
/// float64 by a fixed tree (bitwise repeatable), rounded once; an empty x has norm 0.
void foreach_norm(const Tensor& norms, const std::vector<Tensor>& xs, double p);
/// x *= scale[0] in place for every x, one rounding; scale is a one-element tensor of xs' dtype
/// on their GPU, read there (clip_grad_norm_'s clip coefficient, never copied to the host).
void foreach_mul_(const std::vector<Tensor>& xs, const Tensor& scale);
/// x *= inv_scale (rounded once to the dtype) in place for every x, and found_inf[0] (float32,
/// one element) set to 1 when a product is not finite (never cleared).
void foreach_unscale_(const std::vector<Tensor>& xs, double inv_scale, const Tensor& found_inf);
/// cpu::attention_forward_flash on the tensor cores (src/cuda/attention.cu): q, k, v bfloat16 or
/// float16 with D == Dv in {64, 128}; out in q's dtype, lse float32 (both contiguous). Rows in
/// whole 16-byte chunks are read in place, other layouts copied contiguous first. The same
/// dropout mask as the CPU kernel's. Deterministic (no atomics).
void attention_forward_flash(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                             const Tensor& v, double scale, bool is_causal, double dropout_p = 0.0,
                             uint64_t seed = 0, uint64_t offset = 0);
/// attention_forward_flash's kernel for the calls that follow (process-wide): -1 (the default,
/// for now mma.sync) or 0: both products (S = Q K^T, O += P V) on mma.sync; 1: both on wgmma
/// where the GPU runs sm_90a code; 2 and 3: there, the warp-specialised TMA-fed kernel with key
/// tiles of 128 and 64 (variant 1 where its tensor maps cannot be made). ValueError outside -1..3.
/// For the tests and benchmarks, which run each.
void set_attention_forward_variant(int variant);
/// attention_backward_flash's kernels for the calls that follow (process-wide): -1 (the default,
/// for now mma.sync) or 0: the dK/dV and dQ kernels' products on mma.sync; 1: on wgmma from
/// swizzled tiles where the GPU runs sm_90a code; 2: there, the warp-specialised TMA-fed kernels
/// (128 keys or queries per block, two consumer warpgroups; variant 1 where their tensor maps
/// cannot be made); 3: there, the fused persistent kernel (dK, dV and dQ from one pass, dQ's float
/// sums added by the key tiles in a fixed order; variant 1 where its tensor maps cannot be made).
/// ValueError outside -1..3.
void set_attention_backward_variant(int variant);
/// cpu::attention_backward_flash on the tensor cores, for attention_forward_flash's outputs
/// (lse float32); bitwise repeatable (variants 0-2: dK/dV and dQ in separate kernels, no atomics;
/// 3: dQ summed in a fixed order).
void attention_backward_flash(const Tensor& dq, const Tensor& dk, const Tensor& dv,
                              const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& out, const Tensor& lse, double scale, bool is_causal,
                              double dropout_p = 0.0, uint64_t seed = 0, uint64_t offset = 0);
}  // namespace cuda

}  // namespace ember
