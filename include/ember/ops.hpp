// Free functions: factories and every tensor op. Names and argument orders follow libtorch's
// C++ frontend (torch:: -> ember::). Each op throws a typed ember::Error on bad input.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <type_traits>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "ember/random.hpp"
#include "ember/tensor.hpp"

namespace ember {

// ---- factories ----

/// A tensor from nested braced lists: tensor({1.f, 2.f}), tensor({{1, 2}, {3, 4}}). The dtype
/// follows the C++ element type (double -> the default float dtype, as Python floats do, unless
/// options say otherwise; int -> int64; bool -> bool).
class NestedList {
 public:
  enum class Kind : uint8_t { Bool, Int, Float, Double };
  NestedList(bool v) : kind_(Kind::Bool), values_{static_cast<double>(v)} {}      // NOLINT
  NestedList(int v) : kind_(Kind::Int), values_{static_cast<double>(v)} {}        // NOLINT
  NestedList(int64_t v) : kind_(Kind::Int), values_{static_cast<double>(v)} {}    // NOLINT
  NestedList(float v) : kind_(Kind::Float), values_{static_cast<double>(v)} {}    // NOLINT
  NestedList(double v) : kind_(Kind::Double), values_{v} {}                       // NOLINT
  /// Elements (numbers, or rows of equal shape); ShapeError for ragged lists.
  NestedList(std::initializer_list<NestedList> rows);

  Kind kind() const { return kind_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  const std::vector<double>& values() const { return values_; }  // exact for |int| < 2^53

 private:
  Kind kind_;
  std::vector<int64_t> shape_;
  std::vector<double> values_;
};
Tensor tensor(const NestedList& values, TensorOptions options = {});
/// A 0-d tensor from one number.
template <class T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
Tensor tensor(T value, TensorOptions options = {});
/// A 1-D tensor from a vector.
template <class T>
Tensor tensor(const std::vector<T>& values, TensorOptions options = {});
/// A tensor over memory owned by the caller; `deleter` runs when the last view is gone.
Tensor from_blob(void* data, IntArrayRef sizes, std::function<void(void*)> deleter,
                 TensorOptions options = {});
Tensor from_blob(void* data, IntArrayRef sizes, IntArrayRef strides,
                 std::function<void(void*)> deleter, TensorOptions options = {});
/// No deleter: the caller keeps the memory alive while the tensor lives.
Tensor from_blob(void* data, IntArrayRef sizes, TensorOptions options = {});

Tensor empty(IntArrayRef sizes, TensorOptions options = {});
/// An empty tensor laid out in `format` (Contiguous, or ChannelsLast for 4 sizes).
Tensor empty(IntArrayRef sizes, TensorOptions options, MemoryFormat format);
Tensor empty_strided(IntArrayRef sizes, IntArrayRef strides, TensorOptions options = {});
Tensor zeros(IntArrayRef sizes, TensorOptions options = {});
Tensor ones(IntArrayRef sizes, TensorOptions options = {});
Tensor full(IntArrayRef sizes, Scalar value, TensorOptions options = {});
/// A 0-d tensor holding one number (dtype from the number unless options set it).
Tensor scalar_tensor(Scalar value, TensorOptions options = {});
Tensor arange(Scalar end, TensorOptions options = {});
Tensor arange(Scalar start, Scalar end, TensorOptions options = {});
Tensor arange(Scalar start, Scalar end, Scalar step, TensorOptions options = {});
Tensor linspace(Scalar start, Scalar end, int64_t steps, TensorOptions options = {});
Tensor eye(int64_t n, TensorOptions options = {});
Tensor eye(int64_t n, int64_t m, TensorOptions options = {});
// The *_like factories lay the result out by `format`: Preserve keeps a channels-last t so.
Tensor empty_like(const Tensor& t, std::optional<TensorOptions> options = std::nullopt,
                  MemoryFormat format = MemoryFormat::Preserve);
Tensor zeros_like(const Tensor& t, std::optional<TensorOptions> options = std::nullopt,
                  MemoryFormat format = MemoryFormat::Preserve);
Tensor ones_like(const Tensor& t, std::optional<TensorOptions> options = std::nullopt,
                 MemoryFormat format = MemoryFormat::Preserve);
Tensor full_like(const Tensor& t, Scalar value, std::optional<TensorOptions> options = std::nullopt,
                 MemoryFormat format = MemoryFormat::Preserve);

// ---- random factories (default generator unless one is given) ----
Tensor rand(IntArrayRef sizes, TensorOptions options = {});
Tensor rand(IntArrayRef sizes, Generator& gen, TensorOptions options = {});
Tensor randn(IntArrayRef sizes, TensorOptions options = {});
Tensor randn(IntArrayRef sizes, Generator& gen, TensorOptions options = {});
/// Integers uniform in [low, high); dtype int64 unless options say otherwise.
Tensor randint(int64_t high, IntArrayRef sizes, TensorOptions options = {});
Tensor randint(int64_t low, int64_t high, IntArrayRef sizes, TensorOptions options = {});
Tensor randint(int64_t low, int64_t high, IntArrayRef sizes, Generator& gen,
               TensorOptions options = {});
Tensor randperm(int64_t n, TensorOptions options = {});
Tensor randperm(int64_t n, Generator& gen, TensorOptions options = {});
/// Each element 1 with the probability in p (p in [0, 1]), else 0; same dtype as p.
Tensor bernoulli(const Tensor& p);
Tensor bernoulli(const Tensor& p, Generator& gen);
Tensor bernoulli(const Tensor& t, double p);
/// Samples indices from each row of non-negative weights (1-D or 2-D).
Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement = false);
Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement, Generator& gen);
Tensor rand_like(const Tensor& t, std::optional<TensorOptions> options = std::nullopt);
Tensor randn_like(const Tensor& t, std::optional<TensorOptions> options = std::nullopt);
Tensor randint_like(const Tensor& t, int64_t low, int64_t high,
                    std::optional<TensorOptions> options = std::nullopt);
/// In place, generator-explicit forms of Tensor::uniform_ / normal_.
Tensor& uniform_(Tensor& t, double from, double to, Generator& gen);
Tensor& normal_(Tensor& t, double mean, double std, Generator& gen);

// ---- comparison of whole tensors ----
/// Same sizes, same dtype and every element equal (NaN != NaN).
bool equal(const Tensor& a, const Tensor& b);
/// |a - b| <= atol + rtol * |b| elementwise, after broadcasting.
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8,
              bool equal_nan = false);
Tensor isclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8,
               bool equal_nan = false);

// ---- type promotion and broadcasting (exposed for extensions and tests) ----
/// The dtype PyTorch would give `a op b` (dimensioned tensors > 0-d tensors > wrapped numbers).
DType result_type(const Tensor& a, const Tensor& b);
DType result_type(const Tensor& a, Scalar b);
/// The broadcast shape of a and b. ShapeError "[op] shapes (2, 3) and (4,) cannot be broadcast".
std::vector<int64_t> broadcast_shapes(IntArrayRef a, IntArrayRef b, const char* op = "broadcast");
std::vector<Tensor> broadcast_tensors(const std::vector<Tensor>& tensors);

// ---- views (see Tensor for the member forms) ----
Tensor view(const Tensor& t, IntArrayRef sizes);
Tensor reshape(const Tensor& t, IntArrayRef sizes);
Tensor permute(const Tensor& t, IntArrayRef dims);
Tensor transpose(const Tensor& t, int64_t d0, int64_t d1);
Tensor squeeze(const Tensor& t);
Tensor squeeze(const Tensor& t, int64_t d);
Tensor unsqueeze(const Tensor& t, int64_t d);
Tensor expand(const Tensor& t, IntArrayRef sizes);
Tensor narrow(const Tensor& t, int64_t d, int64_t start, int64_t length);
Tensor slice(const Tensor& t, int64_t d, std::optional<int64_t> start, std::optional<int64_t> end,
             int64_t step = 1);
Tensor select(const Tensor& t, int64_t d, int64_t index);
Tensor flatten(const Tensor& t, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor unflatten(const Tensor& t, int64_t d, IntArrayRef sizes);
Tensor as_strided(const Tensor& t, IntArrayRef sizes, IntArrayRef strides,
                  std::optional<int64_t> storage_offset = std::nullopt);
std::vector<Tensor> chunk(const Tensor& t, int64_t chunks, int64_t d = 0);
std::vector<Tensor> split(const Tensor& t, int64_t split_size, int64_t d = 0);
std::vector<Tensor> split_with_sizes(const Tensor& t, IntArrayRef sizes, int64_t d = 0);
std::vector<Tensor> unbind(const Tensor& t, int64_t d = 0);
Tensor diagonal(const Tensor& t, int64_t offset = 0, int64_t d1 = 0, int64_t d2 = 1);
Tensor contiguous(const Tensor& t);
Tensor clone(const Tensor& t);

// ---- elementwise ----
Tensor add(const Tensor& a, const Tensor& b, Scalar alpha = 1);
Tensor add(const Tensor& a, Scalar b, Scalar alpha = 1);
Tensor sub(const Tensor& a, const Tensor& b, Scalar alpha = 1);
Tensor sub(const Tensor& a, Scalar b, Scalar alpha = 1);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, Scalar b);
/// True division: integer inputs give the default float dtype.
Tensor div(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, Scalar b);
Tensor pow(const Tensor& a, const Tensor& e);
Tensor pow(const Tensor& a, Scalar e);
Tensor pow(Scalar a, const Tensor& e);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor exp2(const Tensor& x);
Tensor log(const Tensor& x);
Tensor log2(const Tensor& x);
Tensor log1p(const Tensor& x);
Tensor expm1(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sign(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor tan(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
/// approximate: "none" (erf form) or "tanh".
Tensor gelu(const Tensor& x, const std::string& approximate = "none");
Tensor silu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, Scalar negative_slope = 0.01);
Tensor elu(const Tensor& x, Scalar alpha = 1.0);
/// log(1 + exp(beta x)) / beta, linear above `threshold` (PyTorch's defaults).
Tensor softplus(const Tensor& x, Scalar beta = 1, Scalar threshold = 20);
Tensor erf(const Tensor& x);
Tensor reciprocal(const Tensor& x);
Tensor square(const Tensor& x);
Tensor floor(const Tensor& x);
Tensor ceil(const Tensor& x);
/// Rounds half to even, like PyTorch.
Tensor round(const Tensor& x);
Tensor clamp(const Tensor& x, std::optional<Scalar> min, std::optional<Scalar> max = std::nullopt);
Tensor clamp_min(const Tensor& x, Scalar min);
Tensor clamp_max(const Tensor& x, Scalar max);
/// Elementwise min/max; NaN propagates.
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b);
Tensor where(const Tensor& condition, const Tensor& a, Scalar b);
Tensor where(const Tensor& condition, Scalar a, const Tensor& b);
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, Scalar b);
Tensor ne(const Tensor& a, Scalar b);
Tensor lt(const Tensor& a, Scalar b);
Tensor le(const Tensor& a, Scalar b);
Tensor gt(const Tensor& a, Scalar b);
Tensor ge(const Tensor& a, Scalar b);
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);
Tensor logical_not(const Tensor& x);
Tensor isnan(const Tensor& x);
Tensor isinf(const Tensor& x);
Tensor isfinite(const Tensor& x);
Tensor masked_fill(const Tensor& x, const Tensor& mask, Scalar value);

// ---- reductions (dims: any set; empty means all) ----
Tensor sum(const Tensor& x, IntArrayRef dims = {}, bool keepdim = false,
           std::optional<DType> dtype = std::nullopt);
Tensor mean(const Tensor& x, IntArrayRef dims = {}, bool keepdim = false,
            std::optional<DType> dtype = std::nullopt);
Tensor prod(const Tensor& x, std::optional<int64_t> d = std::nullopt, bool keepdim = false,
            std::optional<DType> dtype = std::nullopt);
Tensor max(const Tensor& x);
std::tuple<Tensor, Tensor> max(const Tensor& x, int64_t d, bool keepdim = false);
Tensor min(const Tensor& x);
std::tuple<Tensor, Tensor> min(const Tensor& x, int64_t d, bool keepdim = false);
Tensor amax(const Tensor& x, IntArrayRef dims = {}, bool keepdim = false);
Tensor amin(const Tensor& x, IntArrayRef dims = {}, bool keepdim = false);
Tensor argmax(const Tensor& x, std::optional<int64_t> d = std::nullopt, bool keepdim = false);
Tensor argmin(const Tensor& x, std::optional<int64_t> d = std::nullopt, bool keepdim = false);
/// Variance with Bessel-style `correction` (1 = unbiased, 0 = population).
Tensor var(const Tensor& x, IntArrayRef dims = {}, int64_t correction = 1, bool keepdim = false);
Tensor std(const Tensor& x, IntArrayRef dims = {}, int64_t correction = 1, bool keepdim = false);
std::tuple<Tensor, Tensor> var_mean(const Tensor& x, IntArrayRef dims = {}, int64_t correction = 1,
                                    bool keepdim = false);
Tensor logsumexp(const Tensor& x, IntArrayRef dims, bool keepdim = false);
/// p in {1, 2, inf (std::numeric_limits<double>::infinity())} or any positive real.
Tensor norm(const Tensor& x, Scalar p = 2, IntArrayRef dims = {}, bool keepdim = false);
Tensor all(const Tensor& x);
Tensor all(const Tensor& x, int64_t d, bool keepdim = false);
Tensor any(const Tensor& x);
Tensor any(const Tensor& x, int64_t d, bool keepdim = false);
Tensor cumsum(const Tensor& x, int64_t d, std::optional<DType> dtype = std::nullopt);
Tensor softmax(const Tensor& x, int64_t d, std::optional<DType> dtype = std::nullopt);
Tensor log_softmax(const Tensor& x, int64_t d, std::optional<DType> dtype = std::nullopt);

// ---- linear algebra ----
/// PyTorch's matmul: 1-D x 1-D dot, 2-D mm, 1-D operands promoted and squeezed, batch dims
/// broadcast. Transposed operands are read in place, never copied.
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor mm(const Tensor& a, const Tensor& b);
Tensor bmm(const Tensor& a, const Tensor& b);
/// beta * input + alpha * (a @ b). On CUDA with beta == 1, an input that is a row of N (a bias)
/// or of the result's shape (a residual) is added in the tensor-core GEMM's epilogue.
Tensor addmm(const Tensor& input, const Tensor& a, const Tensor& b, Scalar beta = 1,
             Scalar alpha = 1);
Tensor baddbmm(const Tensor& input, const Tensor& a, const Tensor& b, Scalar beta = 1,
               Scalar alpha = 1);
/// PyTorch's out_dtype overloads: float16/bfloat16 operands give a float32 result, summed in
/// float32 and never rounded to 16 bits (on CUDA the tensor-core GEMM stores float32 from its
/// epilogue: no 16-bit output and no conversion pass); out_dtype may also be the operands' own
/// dtype (the plain op). Any other pair is a DTypeError. addmm/baddbmm's input may have the
/// operands' dtype or out_dtype. Gradients: dY is rounded to the operands' dtype and multiplied
/// in it, as the plain op's backward does, so the operands get gradients of their own dtype.
Tensor mm(const Tensor& a, const Tensor& b, DType out_dtype);
Tensor bmm(const Tensor& a, const Tensor& b, DType out_dtype);
Tensor addmm(const Tensor& input, const Tensor& a, const Tensor& b, DType out_dtype,
             Scalar beta = 1, Scalar alpha = 1);
Tensor baddbmm(const Tensor& input, const Tensor& a, const Tensor& b, DType out_dtype,
               Scalar beta = 1, Scalar alpha = 1);
Tensor outer(const Tensor& a, const Tensor& b);
Tensor dot(const Tensor& a, const Tensor& b);
/// x @ weight^T + bias, weight (out_features, in_features).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});
/// gelu(linear(x, weight, bias), approximate) as one op: on CUDA (16-bit floats, or float32 with
/// TF32 allowed) one tensor-core GEMM with the bias and GELU in its epilogue, which also keeps
/// the pre-activation for the backward; elsewhere exactly the two ops. A transformer MLP's
/// first half.
Tensor linear_gelu(const Tensor& x, const Tensor& weight, const Tensor& bias,
                   const std::string& approximate = "none");
/// relu(linear(x, weight, bias)) as one op: on CUDA (as linear_gelu) one tensor-core GEMM with
/// the bias and ReLU in its epilogue, whose backward reads the output (no pre-activation kept);
/// elsewhere exactly the two ops.
Tensor linear_relu(const Tensor& x, const Tensor& weight, const Tensor& bias);
/// residual + linear(x, weight, bias) as one op, a transformer block's output projection and its
/// skip connection: on CUDA (16-bit x and weight, or float32 with TF32 allowed; a residual of
/// the result's shape in x's dtype or, for 16-bit x, float32) one tensor-core GEMM that adds the
/// bias and the residual in its epilogue and rounds the sum once to the residual's dtype (the
/// composite rounds the product to x's dtype before adding); elsewhere exactly the composite.
/// The gradients are the composite's. Under autocast, x, weight and bias are cast as linear's
/// and the residual is not, so a float32 residual stream stays float32.
Tensor linear_residual(const Tensor& x, const Tensor& weight, const Tensor& bias,
                       const Tensor& residual);

// ---- copying shape ops ----
Tensor cat(const std::vector<Tensor>& tensors, int64_t d = 0);
Tensor stack(const std::vector<Tensor>& tensors, int64_t d = 0);
/// pad lists (left, right) pairs from the last dimension backwards, as torch.nn.functional.pad.
/// mode: "constant", "reflect", "replicate".
Tensor pad(const Tensor& x, IntArrayRef pad, const std::string& mode = "constant",
           double value = 0.0);
Tensor flip(const Tensor& x, IntArrayRef dims);
Tensor roll(const Tensor& x, IntArrayRef shifts, IntArrayRef dims = {});
Tensor repeat(const Tensor& x, IntArrayRef repeats);
Tensor tril(const Tensor& x, int64_t diagonal = 0);
Tensor triu(const Tensor& x, int64_t diagonal = 0);
/// int64 class indices -> int64 one-hot with a trailing dimension of num_classes (-1: max + 1).
Tensor one_hot(const Tensor& indices, int64_t num_classes = -1);
Tensor gather(const Tensor& x, int64_t d, const Tensor& index);
Tensor scatter(const Tensor& x, int64_t d, const Tensor& index, const Tensor& src);
Tensor scatter(const Tensor& x, int64_t d, const Tensor& index, Scalar value);
Tensor scatter_add(const Tensor& x, int64_t d, const Tensor& index, const Tensor& src);
Tensor index_select(const Tensor& x, int64_t d, const Tensor& index);
Tensor index_add(const Tensor& x, int64_t d, const Tensor& index, const Tensor& source,
                 Scalar alpha = 1);
Tensor masked_select(const Tensor& x, const Tensor& mask);
/// Rows of `weight` picked by integer `indices`: output indices.sizes() + (embedding_dim,).
Tensor embedding(const Tensor& weight, const Tensor& indices, int64_t padding_idx = -1);
std::tuple<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t d = -1, bool largest = true,
                                bool sorted = true);
std::tuple<Tensor, Tensor> sort(const Tensor& x, int64_t d = -1, bool descending = false,
                                bool stable = false);
Tensor argsort(const Tensor& x, int64_t d = -1, bool descending = false, bool stable = false);
/// Indices of non-zero elements, (count, dim).
Tensor nonzero(const Tensor& x);

// ---- convolution, pooling, upsampling ----
// Inputs are batched (N, C, spatial...) or unbatched (C, spatial...), as in PyTorch; a kernel
// size, stride, padding or dilation given as one value applies to every spatial dim. Output
// sizes along a dim: convolution (in + 2 padding - dilation (k - 1) - 1) / stride + 1; pooling
// the same, rounded up in ceil_mode.

/// im2col (torch.nn.functional.unfold): (N, C, H, W) -> (N, C*kh*kw, L), L = OH*OW. Column l is
/// window l (row-major over (OH, OW)); row c*kh*kw + i*kw + j is tap (i, j) of channel c; 0 in
/// the padding.
Tensor unfold(const Tensor& input, IntArrayRef kernel_size, IntArrayRef dilation = 1,
              IntArrayRef padding = 0, IntArrayRef stride = 1);
/// col2im (torch.nn.functional.fold), the adjoint of unfold: (N, C*kh*kw, L) -> (N, C, H, W)
/// with (H, W) = output_size; overlapping windows are summed.
Tensor fold(const Tensor& input, IntArrayRef output_size, IntArrayRef kernel_size,
            IntArrayRef dilation = 1, IntArrayRef padding = 0, IntArrayRef stride = 1);

/// Convolution over (N, C_in, L) / (N, C_in, H, W) with weight (C_out, C_in/groups, k...) and
/// optional bias (C_out,); groups == C_in is depthwise. Computed as unfold + matmul per group,
/// so it is differentiable to any order (e.g. a gradient penalty through convs).
Tensor conv1d(const Tensor& input, const Tensor& weight, const Tensor& bias = {},
              IntArrayRef stride = 1, IntArrayRef padding = 0, IntArrayRef dilation = 1,
              int64_t groups = 1);
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = {},
              IntArrayRef stride = 1, IntArrayRef padding = 0, IntArrayRef dilation = 1,
              int64_t groups = 1);
/// A convolution padding given by name: "same" (output size = input size; stride 1 only; an odd
/// total padding dilation (k - 1) puts the extra zero on the right/bottom, as PyTorch) or
/// "valid" (none). Built from a string, never from a number, so conv2d(x, w, b, 1, 0) still
/// means padding 0.
class ConvPadding {
 public:
  template <class S, std::enable_if_t<std::is_convertible_v<const S&, std::string_view> &&
                                          !std::is_arithmetic_v<S>,
                                      int> = 0>
  ConvPadding(const S& mode) : mode_(std::string_view(mode)) {}  // NOLINT: implicit, as a string
  const std::string& mode() const { return mode_; }

 private:
  std::string mode_;
};
Tensor conv1d(const Tensor& input, const Tensor& weight, const Tensor& bias, IntArrayRef stride,
              ConvPadding padding, IntArrayRef dilation = 1, int64_t groups = 1);
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, IntArrayRef stride,
              ConvPadding padding, IntArrayRef dilation = 1, int64_t groups = 1);
/// relu(conv2d(...)) as one op: on CUDA (bfloat16/float16, Ember's backend) one implicit-GEMM
/// convolution with the bias and ReLU in its epilogue, whose backward reads the output; elsewhere
/// (and where the kernel declines) exactly the two ops. A convolution followed by BatchNorm
/// folded into it (nn::utils::fuse_conv_bn_eval) and a ReLU, at inference.
Tensor conv2d_relu(const Tensor& input, const Tensor& weight, const Tensor& bias = {},
                   IntArrayRef stride = 1, IntArrayRef padding = 0, IntArrayRef dilation = 1,
                   int64_t groups = 1);
/// Transposed convolution (the adjoint of conv with the same parameters) with weight
/// (C_in, C_out/groups, k...): output size (in - 1) stride - 2 padding + dilation (k - 1) +
/// output_padding + 1; output_padding must be smaller than the stride or the dilation.
Tensor conv_transpose1d(const Tensor& input, const Tensor& weight, const Tensor& bias = {},
                        IntArrayRef stride = 1, IntArrayRef padding = 0,
                        IntArrayRef output_padding = 0, int64_t groups = 1,
                        IntArrayRef dilation = 1);
Tensor conv_transpose2d(const Tensor& input, const Tensor& weight, const Tensor& bias = {},
                        IntArrayRef stride = 1, IntArrayRef padding = 0,
                        IntArrayRef output_padding = 0, int64_t groups = 1,
                        IntArrayRef dilation = 1);

/// Max pooling; the padding (at most half the kernel) never wins. An empty stride means the
/// kernel size. The _with_indices forms also return int64 indices into each input plane
/// (H*W, or L), as PyTorch; ties keep the first position and NaN propagates.
Tensor max_pool1d(const Tensor& input, IntArrayRef kernel_size, IntArrayRef stride = {},
                  IntArrayRef padding = 0, IntArrayRef dilation = 1, bool ceil_mode = false);
Tensor max_pool2d(const Tensor& input, IntArrayRef kernel_size, IntArrayRef stride = {},
                  IntArrayRef padding = 0, IntArrayRef dilation = 1, bool ceil_mode = false);
std::tuple<Tensor, Tensor> max_pool1d_with_indices(const Tensor& input, IntArrayRef kernel_size,
                                                   IntArrayRef stride = {}, IntArrayRef padding = 0,
                                                   IntArrayRef dilation = 1,
                                                   bool ceil_mode = false);
std::tuple<Tensor, Tensor> max_pool2d_with_indices(const Tensor& input, IntArrayRef kernel_size,
                                                   IntArrayRef stride = {}, IntArrayRef padding = 0,
                                                   IntArrayRef dilation = 1,
                                                   bool ceil_mode = false);
/// Average pooling. count_include_pad counts the zero padding in the divisor (windows that run
/// past the padding in ceil_mode never count that part); divisor_override replaces the divisor.
Tensor avg_pool1d(const Tensor& input, IntArrayRef kernel_size, IntArrayRef stride = {},
                  IntArrayRef padding = 0, bool ceil_mode = false, bool count_include_pad = true);
Tensor avg_pool2d(const Tensor& input, IntArrayRef kernel_size, IntArrayRef stride = {},
                  IntArrayRef padding = 0, bool ceil_mode = false, bool count_include_pad = true,
                  std::optional<int64_t> divisor_override = std::nullopt);
/// Adaptive pooling to output_size with PyTorch's bins [floor(i in / out), ceil((i+1) in / out)).
Tensor adaptive_avg_pool1d(const Tensor& input, IntArrayRef output_size);
Tensor adaptive_avg_pool2d(const Tensor& input, IntArrayRef output_size);
/// (values, int64 indices into each input plane).
std::tuple<Tensor, Tensor> adaptive_max_pool1d(const Tensor& input, IntArrayRef output_size);
std::tuple<Tensor, Tensor> adaptive_max_pool2d(const Tensor& input, IntArrayRef output_size);

/// Nearest upsampling with PyTorch's source index min(floor(dst * scale), in - 1) in float,
/// scale = 1 / scales when a scale factor is given, in / out otherwise.
Tensor upsample_nearest1d(const Tensor& input, IntArrayRef output_size,
                          std::optional<double> scales = std::nullopt);
Tensor upsample_nearest2d(const Tensor& input, IntArrayRef output_size,
                          std::optional<double> scales_h = std::nullopt,
                          std::optional<double> scales_w = std::nullopt);
/// Linear / bilinear upsampling with PyTorch's source positions: scale * (dst + 0.5) - 0.5
/// clamped at 0, or scale * dst with align_corners (scale (in - 1) / (out - 1)).
Tensor upsample_linear1d(const Tensor& input, IntArrayRef output_size, bool align_corners,
                         std::optional<double> scales = std::nullopt);
Tensor upsample_bilinear2d(const Tensor& input, IntArrayRef output_size, bool align_corners,
                           std::optional<double> scales_h = std::nullopt,
                           std::optional<double> scales_w = std::nullopt);
/// torch.nn.functional.interpolate for (N, C, L) ("nearest", "linear") and (N, C, H, W)
/// ("nearest", "bilinear"): exactly one of size and scale_factor (one value or one per dim;
/// output size floor(in * scale_factor)). align_corners only with the linear modes.
Tensor interpolate(const Tensor& input, std::optional<std::vector<int64_t>> size = std::nullopt,
                   std::optional<std::vector<double>> scale_factor = std::nullopt,
                   const std::string& mode = "nearest",
                   std::optional<bool> align_corners = std::nullopt);

// ---- threads ----
/// Number of threads the CPU kernels use (OpenMP). Results never depend on it.
void set_num_threads(int n);
int get_num_threads();

}  // namespace ember
