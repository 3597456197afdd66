// Convolution, pooling and upsampling ops.
//
// Two kernels carry the family: im2col (unfold) and col2im (fold), each the other's adjoint, so
// each one's backward is the other and anything built from them is differentiable to any order.
//   conv2d            = unfold, then one matmul per group: (O/g, C/g*kh*kw) x (C/g*kh*kw, L)
//   conv_transpose2d  = the transposed matmul, then fold
//   max_pool2d        = a window-table kernel (values and int64 indices); backward scatter_adds
//                       the gradient at the indices (its own backward is a gather)
//   avg_pool2d, adaptive_avg_pool2d, upsample_bilinear2d
//                     = separable: A_h (OH, H) @ x @ A_w^T (W, OW), two small constant matrices
//   upsample_nearest2d = index_select along H and W
// The 1-D forms add a unit H dim and reuse the 2-D ones. Inputs are batched (N, C, ...) or
// unbatched (C, ...); shapes in error messages are the caller's.
#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "core/autocast.hpp"
#include "core/dispatch.hpp"
#include "core/kernels.hpp"
#include "core/ops/derivatives.hpp"
#include "core/record.hpp"
#include "core/tensor_impl.hpp"
#include "ember/cuda/cuda.hpp"
#include "ember/ops.hpp"

namespace ember {

using autograd::Grads;
using autograd::Saved;

namespace {

// ---- argument checks ----

void check_defined(const Tensor& t, const char* op, const char* name) {
  EMBER_CHECK(t.defined(), ValueError, "[", op, "] argument ", name, " is undefined");
}

void check_floating(const Tensor& t, const char* op, const char* name) {
  EMBER_CHECK(is_floating(t.dtype()), DTypeError, "[", op, "] expected a floating ", name, ", got ",
              t.dtype());
}

/// One value per spatial dim: a single value applies to all `n` dims.
std::vector<int64_t> expand_param(IntArrayRef v, size_t n, const char* op, const char* name) {
  EMBER_CHECK(v.size() == 1 || v.size() == n, ValueError, "[", op, "] ", name, " must have 1 or ",
              n, " values, got ", v);
  return v.size() == n ? v.vec() : std::vector<int64_t>(n, v[0]);
}

/// A parameter of an op with `nd` (1 or 2) spatial dims as its two 2-D values: 1-D ops run on a
/// unit H dim, which gets `unit` (kernel/stride/dilation 1, padding 0).
std::vector<int64_t> param2(IntArrayRef v, int nd, int64_t unit, const char* op, const char* name) {
  std::vector<int64_t> p = expand_param(v, static_cast<size_t>(nd), op, name);
  if (nd == 1) p.insert(p.begin(), unit);
  return p;
}

/// The caller's view of a parameter: only the W value for 1-D ops.
std::vector<int64_t> shown(const std::vector<int64_t>& p2, int nd) {
  return nd == 1 ? std::vector<int64_t>{p2[1]} : p2;
}

void check_all(const std::vector<int64_t>& p, int64_t min, int nd, const char* op,
               const char* name) {
  for (int64_t v : p)
    EMBER_CHECK(v >= min, ValueError, "[", op, "] ", name, " must be ",
                min == 0 ? "non-negative" : "positive", ", got ", IntArrayRef(shown(p, nd)));
}

/// The input as (N, C, H, W), with how to give a result back the caller's rank.
struct Spatial {
  Tensor x4;
  bool unbatched = false;
  int nd = 2;
  Tensor restore(Tensor y4) const {
    if (nd == 1) y4 = y4.squeeze(2);
    return unbatched ? y4.squeeze(0) : y4;
  }
};

Spatial as_4d(const Tensor& x, int nd, const char* op) {
  check_defined(x, op, "input");
  check_device_usable(x.device(), op);
  EMBER_CHECK(x.dim() == nd + 1 || x.dim() == nd + 2, ShapeError, "[", op, "] expected a ", nd + 1,
              "-D (unbatched) or ", nd + 2, "-D (batched) input, got ", x.sizes());
  Spatial s;
  s.nd = nd;
  s.unbatched = x.dim() == nd + 1;
  Tensor t = s.unbatched ? x.unsqueeze(0) : x;
  s.x4 = nd == 1 ? t.unsqueeze(2) : t;
  return s;
}

void check_nonempty_plane(const Spatial& s, const Tensor& x, const char* op) {
  EMBER_CHECK(s.x4.size(2) > 0 && s.x4.size(3) > 0, ShapeError, "[", op,
              "] expected non-empty spatial dims, got input ", x.sizes());
}

/// Window positions along one dim, or a ShapeError when the dilated kernel does not fit the
/// padded input.
int64_t conv_out_size(int64_t in, int64_t k, int64_t d, int64_t p, int64_t s) {
  const int64_t span = in + 2 * p - d * (k - 1) - 1;
  return span < 0 ? 0 : span / s + 1;
}

/// Checks that the dilated kernel fits into the padded input of x4 and returns (OH, OW).
std::vector<int64_t> window_counts(const Tensor& x4, const Window2d& w, int nd, const Tensor& x,
                                   const char* op) {
  const int64_t OH = conv_out_size(x4.size(2), w.kh, w.dh, w.ph, w.sh);
  const int64_t OW = conv_out_size(x4.size(3), w.kw, w.dw, w.pw, w.sw);
  const std::vector<int64_t> eff = {w.dh * (w.kh - 1) + 1, w.dw * (w.kw - 1) + 1};
  const std::vector<int64_t> padded = {x4.size(2) + 2 * w.ph, x4.size(3) + 2 * w.pw};
  EMBER_CHECK(OH > 0 && OW > 0, ShapeError, "[", op, "] the dilated kernel ",
              IntArrayRef(shown(eff, nd)), " is larger than the padded input ",
              IntArrayRef(shown(padded, nd)), " (input ", x.sizes(), ")");
  return {OH, OW};
}

Window2d make_window(const std::vector<int64_t>& k, const std::vector<int64_t>& d,
                     const std::vector<int64_t>& p, const std::vector<int64_t>& s) {
  return Window2d{k[0], k[1], d[0], d[1], p[0], p[1], s[0], s[1]};
}

/// The window parameters of an op with nd spatial dims, checked (kernel, dilation, stride > 0,
/// padding >= 0).
Window2d window_of(IntArrayRef kernel, IntArrayRef dilation, IntArrayRef padding,
                   IntArrayRef stride, int nd, const char* op) {
  const std::vector<int64_t> k = param2(kernel, nd, 1, op, "kernel_size");
  const std::vector<int64_t> d = param2(dilation, nd, 1, op, "dilation");
  const std::vector<int64_t> p = param2(padding, nd, 0, op, "padding");
  const std::vector<int64_t> s = param2(stride, nd, 1, op, "stride");
  check_all(k, 1, nd, op, "kernel_size");
  check_all(d, 1, nd, op, "dilation");
  check_all(p, 0, nd, op, "padding");
  check_all(s, 1, nd, op, "stride");
  return make_window(k, d, p, s);
}

// ---- unfold / fold on (N, C, H, W) and (N, C*kh*kw, L), grad mode off ----

/// One window covers the whole (H, W) plane, unpadded and undilated: unfold and fold are then a
/// copy (a 7x7 kernel on a 7x7 image, DCGAN's first layer); the general loops pay per element.
bool whole_plane(const Window2d& w, int64_t H, int64_t W) {
  return w.kh == H && w.kw == W && w.ph == 0 && w.pw == 0 && w.dh == 1 && w.dw == 1;
}

Tensor unfold_4d(const Tensor& x4, const Window2d& w, int64_t OH, int64_t OW) {
  const int64_t N = x4.size(0), C = x4.size(1), H = x4.size(2), W = x4.size(3);
  if (whole_plane(w, H, W)) return x4.reshape({N, C * H * W, 1}).clone();
  Tensor cols = make_tensor({N, C * w.kh * w.kw, OH * OW}, x4.dtype(), x4.device(), "unfold");
  launch(x4.device(), cpu::im2col, cuda::im2col, cols.view({N * C, w.kh * w.kw, OH * OW}),
         x4.reshape({N * C, H, W}), w);
  return cols;
}

Tensor fold_4d(const Tensor& cols, int64_t C, int64_t H, int64_t W, const Window2d& w) {
  const int64_t N = cols.size(0);
  if (whole_plane(w, H, W) && cols.size(2) == 1) return cols.reshape({N, C, H, W}).clone();
  Tensor out = make_tensor({N, C, H, W}, cols.dtype(), cols.device(), "fold");
  launch(cols.device(), cpu::col2im, cuda::col2im, out.view({N * C, H, W}),
         cols.reshape({N * C, w.kh * w.kw, cols.size(2)}), w);
  return out;
}

IntArrayRef kernel_of(const Window2d& w, std::vector<int64_t>& store) {
  store = {w.kh, w.kw};
  return store;
}

}  // namespace

// ---- unfold / fold ----

Tensor unfold(const Tensor& input, IntArrayRef kernel_size, IntArrayRef dilation,
              IntArrayRef padding, IntArrayRef stride) {
  const char* op = "unfold";
  const Spatial s = as_4d(input, 2, op);
  EMBER_CHECK(input.dtype() != kBool, DTypeError, "[unfold] bool tensors are not supported");
  const Window2d w = window_of(kernel_size, dilation, padding, stride, 2, op);
  const std::vector<int64_t> o = window_counts(s.x4, w, 2, input, op);
  Tensor cols = forward_no_grad([&] { return unfold_4d(s.x4, w, o[0], o[1]); });
  if (s.unbatched) cols = make_view(cols, {cols.size(1), cols.size(2)}, {cols.size(2), 1}, 0);
  if (is_floating(cols.dtype())) {
    const std::vector<int64_t> hw = {s.x4.size(2), s.x4.size(3)};
    autograd::record("unfold", {input}, cols, {}, [w, hw](const Saved&, const Tensor& dy) {
      return Grads{fold(dy, hw, {w.kh, w.kw}, {w.dh, w.dw}, {w.ph, w.pw}, {w.sh, w.sw})};
    });
  }
  return cols;
}

Tensor fold(const Tensor& input, IntArrayRef output_size, IntArrayRef kernel_size,
            IntArrayRef dilation, IntArrayRef padding, IntArrayRef stride) {
  const char* op = "fold";
  check_defined(input, op, "input");
  check_device_usable(input.device(), op);
  EMBER_CHECK(input.dim() == 2 || input.dim() == 3, ShapeError,
              "[fold] expected a 2-D (unbatched) or 3-D (batched) input (N, C*kh*kw, L), got ",
              input.sizes());
  EMBER_CHECK(input.dtype() != kBool, DTypeError, "[fold] bool tensors are not supported");
  const Window2d w = window_of(kernel_size, dilation, padding, stride, 2, op);
  const std::vector<int64_t> hw = expand_param(output_size, 2, op, "output_size");
  check_all(hw, 1, 2, op, "output_size");
  const bool unbatched = input.dim() == 2;
  const Tensor in3 = unbatched ? input.unsqueeze(0) : input;
  const int64_t taps = w.kh * w.kw;
  EMBER_CHECK(in3.size(1) % taps == 0, ShapeError, "[fold] expected dim ", unbatched ? 0 : 1,
              " of input ", input.sizes(), " to be divisible by the kernel size ", w.kh, " * ",
              w.kw, " = ", taps);
  const int64_t OH = conv_out_size(hw[0], w.kh, w.dh, w.ph, w.sh);
  const int64_t OW = conv_out_size(hw[1], w.kw, w.dw, w.pw, w.sw);
  EMBER_CHECK(OH > 0 && OW > 0 && in3.size(2) == OH * OW, ShapeError, "[fold] input ",
              input.sizes(), " has ", in3.size(2), " blocks, but output_size ", IntArrayRef(hw),
              " with kernel (", w.kh, ", ", w.kw, ") gives ", OH, " * ", OW, " = ", OH * OW);
  const int64_t C = in3.size(1) / taps;
  Tensor out = forward_no_grad([&] { return fold_4d(in3, C, hw[0], hw[1], w); });
  if (unbatched) out = make_view(out, {C, hw[0], hw[1]}, {hw[0] * hw[1], hw[1], 1}, 0);
  if (is_floating(out.dtype())) {
    autograd::record("fold", {input}, out, {}, [w](const Saved&, const Tensor& dy) {
      return Grads{unfold(dy, {w.kh, w.kw}, {w.dh, w.dw}, {w.ph, w.pw}, {w.sh, w.sw})};
    });
  }
  return out;
}

// ---- convolution ----

namespace {

/// dtypes, devices, ranks, channels and groups of a (transposed) convolution.
void check_conv(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t groups, int nd,
                bool transposed, const char* op) {
  check_defined(x, op, "input");
  check_defined(weight, op, "weight");
  check_same_device({&x, &weight, &bias}, op);
  check_floating(x, op, "input");
  EMBER_CHECK(weight.dtype() == x.dtype(), DTypeError, "[", op, "] expected weight to have ",
              "the input's dtype ", x.dtype(), ", got ", weight.dtype());
  EMBER_CHECK(x.dim() == nd + 1 || x.dim() == nd + 2, ShapeError, "[", op, "] expected a ", nd + 1,
              "-D (unbatched) or ", nd + 2, "-D (batched) input, got ", x.sizes());
  EMBER_CHECK(weight.dim() == nd + 2, ShapeError, "[", op, "] expected a ", nd + 2, "-D weight ",
              transposed ? "(C_in, C_out/groups, k...)" : "(C_out, C_in/groups, k...)", ", got ",
              weight.sizes());
  EMBER_CHECK(groups > 0, ValueError, "[", op, "] groups must be positive, got ", groups);
  const int64_t C = x.size(x.dim() - nd - 1);
  EMBER_CHECK(C % groups == 0, ShapeError, "[", op, "] groups ", groups,
              " does not divide the input channels of input ", x.sizes());
  int64_t out_channels = 0;
  if (transposed) {
    EMBER_CHECK(weight.size(0) == C, ShapeError, "[", op, "] expected input ", x.sizes(),
                " to have ", weight.size(0), " channels (weight ", weight.sizes(), "), got ", C);
    out_channels = weight.size(1) * groups;
  } else {
    EMBER_CHECK(weight.size(1) * groups == C, ShapeError, "[", op, "] expected input ", x.sizes(),
                " to have ", weight.size(1) * groups, " channels (weight ", weight.sizes(),
                ", groups ", groups, "), got ", C);
    EMBER_CHECK(weight.size(0) % groups == 0, ShapeError, "[", op, "] groups ", groups,
                " does not divide the output channels of weight ", weight.sizes());
    out_channels = weight.size(0);
  }
  for (int64_t i = 2; i < weight.dim(); ++i)
    EMBER_CHECK(weight.size(i) > 0, ShapeError, "[", op,
                "] expected a non-empty kernel, got weight ", weight.sizes());
  if (bias.defined()) {
    EMBER_CHECK(bias.dtype() == x.dtype(), DTypeError, "[", op, "] expected bias to have the ",
                "input's dtype ", x.dtype(), ", got ", bias.dtype());
    EMBER_CHECK(bias.dim() == 1 && bias.size(0) == out_channels, ShapeError, "[", op,
                "] expected bias of shape ", IntArrayRef(out_channels), ", got ", bias.sizes());
  }
}

bool wants(const Tensor& t) { return t.defined() && t.requires_grad(); }

/// out (G, M, K) = sum over n of d[n] (G, M, L) @ b[n]^T (G, L, K): a convolution's weight
/// gradient. One GEMM per batch element accumulates into the output (beta = 1) in batch order,
/// reading b transposed in place: no (N*L, K) copy of the columns and no (N, G, M, K)
/// intermediate (300 MB for a 512-channel 3x3 layer at N = 32). The threads split each GEMM's
/// rows and columns, never the sum, so the result does not depend on the thread count. Recorded
/// with its own formula (written with ops), so it is differentiable again.
Tensor batch_summed_matmul_nt(const Tensor& d, const Tensor& b, const char* op) {
  const int64_t N = d.size(0), G = d.size(1), M = d.size(2), K = b.size(2);
  Tensor out = make_tensor({G, M, K}, d.dtype(), d.device(), op);
  forward_no_grad([&] {
    if (N == 0) {
      out.zero_();
      return 0;
    }
    for (int64_t n = 0; n < N; ++n)
      launch(d.device(), cpu::gemm, cuda::gemm, out, d.select(0, n),
             b.select(0, n).transpose(1, 2), Scalar(1.0), Scalar(n == 0 ? 0.0 : 1.0));
    return 0;
  });
  autograd::record(op, {d, b}, out, {d, b}, [](const Saved& s, const Tensor& g) {
    // out = sum_n d[n] b[n]^T:  d(out)/d(d[n]) = g b[n],  d(out)/d(b[n]) = g^T d[n].
    Tensor gd, gb;
    if (wants(s[0])) gd = matmul(g, s[1]);                // (G, M, K) x (N, G, K, L)
    if (wants(s[1])) gb = matmul(g.transpose(1, 2), s[0]);  // (G, K, M) x (N, G, M, L)
    return Grads{gd, gb};
  });
  return out;
}

/// out (N, G, M, L) = a (G, M, K) @ b (N, G, K, L) with the weight `a` shared by every batch,
/// recorded as one node; da is batch_summed_matmul_nt(dY, b). Written with ops, so it is
/// differentiable again.
Tensor shared_weight_matmul(const Tensor& a, const Tensor& b, const char* op) {
  Tensor out = forward_no_grad([&] { return matmul(a, b); });
  autograd::record(op, {a, b}, out, {a, b}, [op](const Saved& s, const Tensor& dy) {
    const Tensor &a = s[0], &b = s[1];
    Tensor ga, gb;
    if (wants(a)) ga = batch_summed_matmul_nt(dy, b, op);
    if (wants(b)) gb = matmul(a.transpose(1, 2), dy);
    return Grads{ga, gb};
  });
  return out;
}

/// Depthwise conv2d (groups == C == O) on (N, C, H, W) with the direct kernel: no columns in
/// forward. Backward as ops: dX = fold(w * dY) over the taps, dW = sum over N, L of
/// unfold(x) * dY, so it is differentiable again.
Tensor depthwise_conv2d_4d(const Tensor& x, const Tensor& weight, const Window2d& w, int64_t OH,
                           int64_t OW) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), K = w.kh * w.kw;
  Tensor out = make_tensor({N, C, OH, OW}, x.dtype(), x.device(), "conv2d");
  forward_no_grad([&] {
    launch(x.device(), cpu::depthwise_conv2d, cuda::depthwise_conv2d, out.view({N * C, OH, OW}),
           x.reshape({N * C, H, W}), weight.reshape({C, K}).contiguous(), w);
    return 0;
  });
  autograd::record("conv2d", {x, weight}, out, {x, weight},
                   [w, H, W](const Saved& s, const Tensor& dy) {
                     const Tensor &x = s[0], &weight = s[1];
                     const int64_t N = dy.size(0), C = dy.size(1), K = w.kh * w.kw;
                     const int64_t L = dy.size(2) * dy.size(3);
                     const Tensor d = dy.reshape({N, C, 1, L});
                     std::vector<int64_t> k;
                     Tensor gx, gw;
                     if (wants(x))
                       gx = fold((weight.reshape({1, C, K, 1}) * d).reshape({N, C * K, L}), {H, W},
                                 kernel_of(w, k), {w.dh, w.dw}, {w.ph, w.pw}, {w.sh, w.sw});
                     if (wants(weight))
                       gw = (unfold(x, kernel_of(w, k), {w.dh, w.dw}, {w.ph, w.pw}, {w.sh, w.sw})
                                 .reshape({N, C, K, L}) *
                             d)
                                .sum({0, 3})
                                .reshape(weight.sizes());
                     return Grads{gx, gw};
                   });
  return out;
}

/// The layout of a convolution's result, as PyTorch's: channels-last when the input or the
/// weight is laid out so (the CUDA kernels then write it directly, without a transpose).
MemoryFormat conv_format(const Tensor& x4, const Tensor& w4) {
  return x4.suggest_memory_format() == MemoryFormat::ChannelsLast ||
                 w4.suggest_memory_format() == MemoryFormat::ChannelsLast
             ? MemoryFormat::ChannelsLast
             : MemoryFormat::Contiguous;
}

/// conv2d with groups 1 on (N, C, H, W), float32/float64 on the CPU, by the direct kernel
/// (cpu::conv2d_direct), with the bias added by the kernel when it has x's dtype. No columns exist
/// in forward or are kept for backward. Backward, first order: the direct input-gradient and
/// weight-gradient kernels. Under create_graph the backward is written with ops (fold(W^T dY) and
/// sum over n of dY[n] unfold(x)[n]^T), so it is differentiable again.
Tensor conv2d_direct_4d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const Window2d& w, int64_t OH, int64_t OW) {
  const int64_t N = x.size(0), O = weight.size(0), H = x.size(2), W = x.size(3);
  const int64_t K = weight.numel() / std::max<int64_t>(O, 1);
  const bool fuse_bias = bias.defined() && bias.dtype() == x.dtype() && bias.is_cpu();
  const Tensor b = fuse_bias ? bias : Tensor();
  Tensor out = make_tensor({N, O, OH, OW}, x.dtype(), x.device(), "conv2d");
  forward_no_grad([&] {
    cpu::conv2d_direct(out, x, weight.reshape({O, K}), b, w);
    return 0;
  });
  autograd::record(
      "conv2d", {x, weight, b}, out, {x, weight, b}, [w, H, W, O, K](const Saved& s, const Tensor& dy) {
        const Tensor &x = s[0], &weight = s[1];
        const int64_t N = dy.size(0), C = x.size(1), L = dy.size(2) * dy.size(3);
        Tensor gx, gw, gb;
        if (wants(s[2])) gb = dy.sum({0, 2, 3});
        std::vector<int64_t> k;
        if (autograd::is_grad_enabled()) {  // create_graph: a differentiable backward
          if (wants(x))
            gx = fold(matmul(weight.reshape({O, K}).t(), dy.reshape({N, O, L})), {H, W},
                      kernel_of(w, k), {w.dh, w.dw}, {w.ph, w.pw}, {w.sh, w.sw});
          if (wants(weight)) {
            const Tensor cols =
                unfold(x, kernel_of(w, k), {w.dh, w.dw}, {w.ph, w.pw}, {w.sh, w.sw});
            gw = batch_summed_matmul_nt(dy.reshape({N, 1, O, L}), cols.reshape({N, 1, K, L}),
                                        "conv2d")
                     .reshape(weight.sizes());
          }
          return Grads{gx, gw, gb};
        }
        if (wants(x)) {
          gx = make_tensor({N, C, H, W}, x.dtype(), x.device(), "conv2d");
          cpu::conv2d_direct_input_grad(gx, dy, weight.reshape({O, K}), w);
          gx = laid_out(gx, x.suggest_memory_format());  // a channels-last x's gradient is so
        }
        if (wants(weight)) {
          gw = make_tensor({O, K}, x.dtype(), x.device(), "conv2d");
          cpu::conv2d_direct_weight_grad(gw, dy, x, w);
          gw = gw.reshape(weight.sizes());
        }
        return Grads{gx, gw, gb};
      });
  return out;
}

// ---- CUDA: Ember's implicit GEMM on the tensor cores, or cuDNN ----

/// The three passes of one CUDA convolution backend, each with cuda::conv2d_implicit_gemm's
/// contract (kernels.hpp): it returns false, having written nothing, when it declines a problem.
struct ConvKernels {
  bool (*forward)(const Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Window2d& w, int64_t groups, bool relu);
  bool (*input_grad)(const Tensor& dx, const Tensor& dy, const Tensor& weight, const Tensor& bias,
                     const Window2d& w, int64_t groups);
  bool (*weight_grad)(const Tensor& dw, const Tensor& dy, const Tensor& x, const Window2d& w,
                      int64_t groups);
  bool depthwise;  // also tried before the depthwise kernel (groups == C == O)
  bool fuses_relu;  // forward takes relu = true (else it is given false and relu runs after)
};

/// Ember's kernels: bfloat16/float16 on the tensor cores (src/cuda/conv_implicit_gemm.cu).
constexpr ConvKernels kImplicitGemm{&cuda::conv2d_implicit_gemm,
                                    &cuda::conv2d_implicit_gemm_input_grad,
                                    &cuda::conv2d_implicit_gemm_weight_grad, false, true};
/// The vendor backend's: cuDNN, every floating dtype (src/cuda/cudnn.cu).
constexpr ConvKernels kCudnn{&cuda::cudnn_conv2d, &cuda::cudnn_conv2d_input_grad,
                             &cuda::cudnn_conv2d_weight_grad, true, false};

/// The kernels that may take a convolution of CUDA tensor x: Ember's for bfloat16/float16 under
/// the Ember backend, cuDNN's under the vendor backend when cuDNN is loaded; nullptr for none
/// (ops: im2col + GEMM, which then runs on cuBLAS under the vendor backend).
const ConvKernels* conv_kernels_for(const Tensor& x) {
  if (!x.is_cuda()) return nullptr;
  if (cuda::backend() == cuda::Backend::kVendor)
    return cuda::cudnn_is_available() ? &kCudnn : nullptr;
  return x.dtype() == kBFloat16 || x.dtype() == kFloat16 ? &kImplicitGemm : nullptr;
}

/// conv2d's gradients written with ops (differentiable again, any layout): dX = conv_transpose2d
/// of dY (output_padding restores the rows the windows never reached), dW = sum over n of
/// dY[n] unfold(x)[n]^T per group.
Tensor conv2d_input_grad_ops(const Tensor& dy, const Tensor& weight, const Window2d& w,
                             int64_t groups, int64_t H, int64_t W) {
  const int64_t OH = dy.size(2), OW = dy.size(3);
  const int64_t oph = H - ((OH - 1) * w.sh - 2 * w.ph + w.dh * (w.kh - 1) + 1);
  const int64_t opw = W - ((OW - 1) * w.sw - 2 * w.pw + w.dw * (w.kw - 1) + 1);
  return conv_transpose2d(dy, weight, {}, {w.sh, w.sw}, {w.ph, w.pw}, {oph, opw}, groups,
                          {w.dh, w.dw});
}

Tensor conv2d_weight_grad_ops(const Tensor& dy, const Tensor& x, const Tensor& weight,
                              const Window2d& w, int64_t groups) {
  const int64_t N = x.size(0), O = dy.size(1), L = dy.size(2) * dy.size(3);
  const int64_t K = weight.numel() / std::max<int64_t>(O, 1);
  std::vector<int64_t> k;
  const Tensor cols = unfold(x, kernel_of(w, k), {w.dh, w.dw}, {w.ph, w.pw}, {w.sh, w.sw});
  return batch_summed_matmul_nt(dy.reshape({N, groups, O / groups, L}),
                                cols.reshape({N, groups, K, L}), "conv2d")
      .reshape(weight.sizes());
}

/// A first-order gradient by one of the CUDA convolution kernels, into a new tensor of
/// like's shape and dtype: undefined under create_graph or when `kernel(out)` declines (returns
/// false), so the caller computes it with ops.
template <class Kernel>
Tensor kernel_grad(const Tensor& like, const char* op, Kernel&& kernel) {
  if (autograd::is_grad_enabled()) return Tensor();
  Tensor g =
      make_tensor(like.sizes(), like.dtype(), like.device(), op, like.suggest_memory_format());
  return kernel(g) ? g : Tensor();
}

/// The output gradient as Ember's convolution kernels read it, channels-last (NCHW sizes over NHWC
/// memory), made once when both the input and the weight gradient run on them at first order:
/// each kernel takes it as a view instead of transposing it itself. Otherwise (create_graph,
/// whose ops must see dy itself) dy as it is.
Tensor dy_for_kernels(const ConvKernels* k, const Tensor& dy, bool both) {
  if (k != &kImplicitGemm || !both || dy.dim() != 4 || autograd::is_grad_enabled()) return dy;
  return dy.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
}

/// The gradient for weight input w_in (the caller's weight; `weight` is it as the kernels read
/// it, a cast without a record under autocast) by `kernel` (a ConvKernels weight_grad call on the
/// gradient tensor it is given): first in w_in's dtype (a float32 parameter's gradient straight
/// from the kernel's float32 sums), else in weight's, the engine casting it; undefined when the
/// kernel declines both or under create_graph.
template <class Kernel>
Tensor kernel_weight_grad(const Tensor& w_in, const Tensor& weight, const char* op,
                          Kernel&& kernel) {
  Tensor g;
  if (w_in.dtype() != weight.dtype()) g = kernel_grad(w_in, op, kernel);
  return g.defined() ? g : kernel_grad(weight, op, kernel);
}

/// The gradient for bias input b_in: dY summed over the batch and the plane, into b_in's dtype.
Tensor conv_bias_grad(const Tensor& b_in, const Tensor& dy) {
  return dy.sum({0, 2, 3}, false, b_in.dtype());
}

/// conv2d (+ bias, + ReLU when relu) of operands o (4-d) on CUDA by k.forward, the bias and ReLU
/// fused; an undefined tensor when the kernel declines the problem (the caller runs im2col +
/// gemm). The node's inputs are (o.x, o.w_in, o.b_in). Backward, first order: (relu: no gradient
/// where the output is <= 0, as relu's) k's input- and weight-gradient kernels, each falling back
/// to the ops above when it declines, dW in w_in's dtype and db summed into b_in's; under
/// create_graph the ops, differentiable again, or (o.recast: the weight or bias was cast without
/// a record) the composite conv2d on recorded casts.
Tensor conv2d_kernels_4d(const ConvKernels& k, const ParamOperands& o, const Window2d& w,
                         int64_t groups, int64_t OH, int64_t OW, bool relu) {
  const char* op = relu ? "conv2d_relu" : "conv2d";
  const Tensor &x = o.x, &weight = o.w;
  const int64_t N = x.size(0), O = weight.size(0), H = x.size(2), W = x.size(3);
  Tensor out = make_tensor({N, O, OH, OW}, x.dtype(), x.device(), op, conv_format(x, weight));
  const bool done =
      forward_no_grad([&] { return k.forward(out, x, weight, o.bias(), w, groups, relu); });
  if (!done) return Tensor();
  autograd::record(
      op, {x, o.w_in, o.b_in}, out, {x, o.w_in, o.b_in, weight, relu ? out : Tensor()},
      [kern = &k, w, groups, H, W, relu, recast = o.recast, dt = o.autocast](const Saved& s,
                                                                             const Tensor& dy_out) {
        const Tensor &x = s[0], &w_in = s[1], &weight = s[3];
        if (recast && autograd::is_grad_enabled())
          return autograd::composite_grads(
              [&](const Saved& in) {
                autocast_detail::Suspend off;
                const Tensor y = conv2d(in[0], autocast_detail::cast(in[1], dt),
                                        autocast_detail::cast(in[2], dt), {w.sh, w.sw},
                                        {w.ph, w.pw}, {w.dh, w.dw}, groups);
                return relu ? ember::relu(y) : y;
              },
              s, dy_out, 3);
        const Tensor dy_act = relu ? detail::relu_grad(dy_out, s[4]) : dy_out;
        Tensor gx, gw, gb;
        if (wants(s[2])) gb = conv_bias_grad(s[2], dy_act);
        const Tensor dy = dy_for_kernels(kern, dy_act, wants(x) && wants(w_in));
        if (wants(x)) {
          gx = kernel_grad(x, "conv2d", [&](const Tensor& g) {
            return kern->input_grad(g, dy, weight, Tensor(), w, groups);
          });
          if (!gx.defined()) gx = conv2d_input_grad_ops(dy, weight, w, groups, H, W);
        }
        if (wants(w_in)) {
          gw = kernel_weight_grad(w_in, weight, "conv2d", [&](const Tensor& g) {
            return kern->weight_grad(g, dy, x, w, groups);
          });
          if (!gw.defined()) gw = conv2d_weight_grad_ops(dy, x, weight, w, groups);
        }
        return Grads{gx, gw, gb};
      });
  return out;
}

/// conv_transpose2d (+ bias) of operands o (4-d) on CUDA: conv2d's input gradient with the weight
/// (C_in, C_out/g, kh, kw) read as a conv2d weight (O = C_in), by k.input_grad, the bias fused;
/// undefined when it declines. The node's inputs are (o.x, o.w_in, o.b_in). Backward, first
/// order: dX = conv2d of dY restricted to x's positions (k.forward), dW = conv2d's weight gradient
/// with x and dY swapped (in w_in's dtype), db summed into b_in's; under create_graph (or a
/// decline) ops, or (o.recast) the composite conv_transpose2d on recorded casts.
Tensor conv_transpose2d_kernels_4d(const ConvKernels& k, const ParamOperands& o, const Window2d& w,
                                   int64_t groups, int64_t OH, int64_t OW) {
  const Tensor &x = o.x, &weight = o.w;
  const int64_t N = x.size(0), Cout = weight.size(1) * groups, H = x.size(2), W = x.size(3);
  Tensor out = make_tensor({N, Cout, OH, OW}, x.dtype(), x.device(), "conv_transpose2d",
                           conv_format(x, weight));
  const bool done =
      forward_no_grad([&] { return k.input_grad(out, x, weight, o.bias(), w, groups); });
  if (!done) return Tensor();
  // output_padding, for the composite: the rows past what the windows of x's last row reach.
  const int64_t oph = OH - ((H - 1) * w.sh - 2 * w.ph + w.dh * (w.kh - 1) + 1);
  const int64_t opw = OW - ((W - 1) * w.sw - 2 * w.pw + w.dw * (w.kw - 1) + 1);
  autograd::record(
      "conv_transpose2d", {x, o.w_in, o.b_in}, out, {x, o.w_in, o.b_in, weight},
      [kern = &k, w, groups, H, W, oph, opw, recast = o.recast, dt = o.autocast](
          const Saved& s, const Tensor& dy_out) {
        const Tensor &x = s[0], &w_in = s[1], &weight = s[3];
        if (recast && autograd::is_grad_enabled())
          return autograd::composite_grads(
              [&](const Saved& in) {
                autocast_detail::Suspend off;
                return conv_transpose2d(in[0], autocast_detail::cast(in[1], dt),
                                        autocast_detail::cast(in[2], dt), {w.sh, w.sw},
                                        {w.ph, w.pw}, {oph, opw}, groups, {w.dh, w.dw});
              },
              s, dy_out, 3);
        Tensor gx, gw, gb;
        if (wants(s[2])) gb = conv_bias_grad(s[2], dy_out);
        const Tensor dy = dy_for_kernels(kern, dy_out, wants(x) && wants(w_in));
        if (wants(x)) {
          gx = kernel_grad(x, "conv_transpose2d", [&](const Tensor& g) {
            return kern->forward(g, dy, weight, Tensor(), w, groups, false);
          });
          if (!gx.defined())  // dY's windows may reach past x's (output_padding): crop
            gx = conv2d(dy, weight, {}, {w.sh, w.sw}, {w.ph, w.pw}, {w.dh, w.dw}, groups)
                     .slice(2, 0, H)
                     .slice(3, 0, W);
        }
        if (wants(w_in)) {
          gw = kernel_weight_grad(w_in, weight, "conv_transpose2d", [&](const Tensor& g) {
            return kern->weight_grad(g, x, dy, w, groups);
          });
          if (!gw.defined()) {
            // dY's windows (BH, BW) >= (H, W); the first (H, W) pair with x's positions.
            const int64_t Cin = x.size(1);
            const int64_t Kg = weight.numel() / std::max<int64_t>(Cin, 1);
            const int64_t BH = conv_out_size(dy.size(2), w.kh, w.dh, w.ph, w.sh);
            const int64_t BW = conv_out_size(dy.size(3), w.kw, w.dw, w.pw, w.sw);
            std::vector<int64_t> k;
            const int64_t N = x.size(0);
            const Tensor cols =
                unfold(dy, kernel_of(w, k), {w.dh, w.dw}, {w.ph, w.pw}, {w.sh, w.sw})
                    .reshape({N, groups * Kg, BH, BW})
                    .slice(2, 0, H)
                    .slice(3, 0, W)
                    .reshape({N, groups, Kg, H * W});
            gw = batch_summed_matmul_nt(x.reshape({N, groups, Cin / groups, H * W}), cols,
                                        "conv_transpose2d")
                     .reshape(weight.sizes());
          }
        }
        return Grads{gx, gw, gb};
      });
  return out;
}

/// Output positions per sample (conv2d) or input positions (conv_transpose2d) up to which the
/// batch is folded into one GEMM: the direct kernel vectorizes along positions and would leave
/// most lanes idle.
constexpr int64_t kFewPositions = 4;

Tensor conv2d_unfused_4d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                         const Window2d& w, int64_t groups, int64_t OH, int64_t OW);

/// conv2d (relu: then ReLU) of operands o, x (N, C, H, W): a CUDA convolution kernel when one
/// takes it, the ReLU in its epilogue when it fuses_relu (Ember's; after cuDNN's, relu), else the
/// paths of conv2d_unfused_4d (on recorded casts under autocast) and relu.
Tensor conv2d_4d(const ParamOperands& o, const Window2d& w, int64_t groups, int64_t OH, int64_t OW,
                 bool relu) {
  const Tensor& x = o.x;
  const bool depthwise = groups == x.size(1) && o.w.size(0) == x.size(1) && groups > 1;
  const ConvKernels* kern = conv_kernels_for(x);
  Tensor y;
  bool fused = false;
  if (kern != nullptr && (kern->depthwise || !depthwise)) {
    fused = relu && kern->fuses_relu;
    y = conv2d_kernels_4d(*kern, o, w, groups, OH, OW, fused);
  }
  if (!y.defined()) {
    fused = false;
    y = conv2d_unfused_4d(x, o.weight_for_ops(), o.bias_for_ops(), w, groups, OH, OW);
  }
  return relu && !fused ? ember::relu(y) : y;
}

/// conv2d of (N, C, H, W) without the CUDA kernels: depthwise, batch-folded, direct or
/// im2col + GEMM.
Tensor conv2d_unfused_4d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                         const Window2d& w, int64_t groups, int64_t OH, int64_t OW) {
  const int64_t N = x.size(0), C = x.size(1), O = weight.size(0), L = OH * OW;
  const int64_t K = C / groups * w.kh * w.kw;
  const bool depthwise = groups == C && O == C && groups > 1;
  if (depthwise) {  // a batch of 1-row GEMMs is slow
    Tensor y = depthwise_conv2d_4d(x, weight, w, OH, OW);
    return bias.defined() ? y + bias.reshape({O, 1, 1}) : y;
  }
  const bool pointwise = w.kh == 1 && w.kw == 1 && w.sh == 1 && w.sw == 1 && w.ph == 0 &&
                         w.pw == 0;  // 1x1, stride 1: the columns are the input itself
  if (groups == 1 && !pointwise && L <= kFewPositions) {
    // A few output positions per sample (a 7x7 kernel on a 7x7 image is a linear layer): one
    // GEMM over the whole batch, (N*L, K) x (K, O), instead of N GEMMs L columns wide.
    std::vector<int64_t> k;
    const Tensor cols =
        unfold(x, kernel_of(w, k), {w.dh, w.dw}, {w.ph, w.pw}, {w.sh, w.sw});  // (N, K, L)
    Tensor y = matmul(cols.transpose(1, 2).reshape({N * L, K}), weight.reshape({O, K}).t())
                   .reshape({N, L, O})
                   .transpose(1, 2)
                   .reshape({N, O, OH, OW});
    return bias.defined() ? y + bias.reshape({O, 1, 1}) : y;
  }
  if (groups == 1 && !pointwise && x.device().is_cpu() &&
      (x.dtype() == kFloat32 || x.dtype() == kFloat64)) {
    Tensor y = conv2d_direct_4d(x, weight, bias, w, OH, OW);
    return bias.defined() && bias.dtype() != x.dtype() ? y + bias.reshape({O, 1, 1}) : y;
  }
  std::vector<int64_t> k;
  const Tensor cols = pointwise
                          ? x.reshape({N, C, L})
                          : unfold(x, kernel_of(w, k), {w.dh, w.dw}, {w.ph, w.pw}, {w.sh, w.sw});
  Tensor y = shared_weight_matmul(weight.reshape({groups, O / groups, K}),
                                  cols.reshape({N, groups, K, L}), "conv2d");  // (N, g, O/g, L)
  y = y.reshape({N, O, OH, OW});
  return bias.defined() ? y + bias.reshape({O, 1, 1}) : y;
}

/// Whether a convolution of x may run on the CUDA kernels (which record their own node: the
/// weight and bias under autocast are then cast without a record, ParamOperands).
bool on_cuda(const Tensor& x) { return x.defined() && x.is_cuda(); }

/// Operands o with x as its 4-d view s.x4 and conv1d's (C_out, C_in/g, k) weights as
/// (C_out, C_in/g, 1, k).
ParamOperands operands_4d(const ParamOperands& o, const Spatial& s) {
  ParamOperands o4 =
      o.with_weight([&s](const Tensor& t) { return s.nd == 1 ? t.unsqueeze(2) : t; });
  o4.x = s.x4;
  return o4;
}

/// conv1d/conv2d (relu: then ReLU, conv2d_relu) of operands o (after the op's autocast step) with
/// numeric padding.
Tensor conv_of(const ParamOperands& o, IntArrayRef stride, IntArrayRef padding,
               IntArrayRef dilation, int64_t groups, int nd, const char* op, bool relu) {
  check_conv(o.x, o.w, o.bias(), groups, nd, false, op);
  const Spatial s = as_4d(o.x, nd, op);
  const std::vector<int64_t> k(o.w.sizes().end() - nd, o.w.sizes().end());
  const Window2d w = window_of(k, dilation, padding, stride, nd, op);
  const std::vector<int64_t> n = window_counts(s.x4, w, nd, o.x, op);
  const ParamOperands o4 = operands_4d(o, s);
  return s.restore(laid_out(conv2d_4d(o4, w, groups, n[0], n[1], relu), conv_format(s.x4, o4.w)));
}

/// conv1d/conv2d (relu: then ReLU, conv2d_relu) with numeric padding. Under autocast x goes
/// through a recorded cast and the weight and bias as ParamOperands says.
Tensor conv_impl(const Tensor& x, const Tensor& weight, const Tensor& bias, IntArrayRef stride,
                 IntArrayRef padding, IntArrayRef dilation, int64_t groups, int nd, const char* op,
                 bool relu) {
  const ParamOperands o = param_operands(x, weight, bias, on_cuda(x));
  autocast_detail::Suspend off;
  return conv_of(o, stride, padding, dilation, groups, nd, op, relu);
}

/// "same" / "valid" padding: the symmetric part goes to the convolution, an odd remainder to a
/// zero pad on the right/bottom first (as PyTorch).
Tensor conv_named_padding(const Tensor& x, const Tensor& weight, const Tensor& bias,
                          IntArrayRef stride, const ConvPadding& padding, IntArrayRef dilation,
                          int64_t groups, int nd, const char* op) {
  ParamOperands o = param_operands(x, weight, bias, on_cuda(x));
  autocast_detail::Suspend off;
  const std::string& mode = padding.mode();
  EMBER_CHECK(mode == "same" || mode == "valid", ValueError, "[", op, "] padding must be ",
              "\"same\", \"valid\" or numbers, got \"", mode, "\"");
  if (mode == "valid") return conv_of(o, stride, 0, dilation, groups, nd, op, false);
  check_conv(o.x, o.w, o.bias(), groups, nd, false, op);
  const std::vector<int64_t> s = expand_param(stride, static_cast<size_t>(nd), op, "stride");
  for (int64_t v : s)
    EMBER_CHECK(v == 1, ValueError, "[", op, "] padding=\"same\" needs stride 1, got ",
                IntArrayRef(s));
  const std::vector<int64_t> d = expand_param(dilation, static_cast<size_t>(nd), op, "dilation");
  check_all(d, 1, 2, op, "dilation");
  std::vector<int64_t> sym(static_cast<size_t>(nd)), extra;  // extra: pad() list, last dim first
  bool asymmetric = false;
  for (int i = nd - 1; i >= 0; --i) {
    const int64_t total = d[static_cast<size_t>(i)] * (weight.size(2 + i) - 1);
    sym[static_cast<size_t>(i)] = total / 2;
    extra.push_back(0);
    extra.push_back(total % 2);
    asymmetric = asymmetric || total % 2 != 0;
  }
  if (asymmetric) o.x = pad(o.x, extra);
  return conv_of(o, stride, sym, dilation, groups, nd, op, false);
}

/// conv_transpose2d on (N, C_in, H, W): (C_out/g*kh*kw, C_in/g) x (C_in/g, H*W) per group, then
/// fold into (OH, OW).
/// conv_transpose2d with groups 1 on (N, C_in, H, W), float32/float64 on the CPU: conv2d's input
/// gradient, by the direct kernel (the weight (C_in, C_out, kh, kw) is a conv2d weight with
/// O = C_in), the bias added after. Backward, first order: dX = conv2d(dY, W) by the direct
/// kernel, dW by the direct weight-gradient kernel with the roles of x and dY swapped. Under
/// create_graph: the ops of conv2d (dX) and unfold + matmul (dW), differentiable again.
Tensor conv_transpose2d_direct_4d(const Tensor& x, const Tensor& weight, const Window2d& w,
                                  int64_t OH, int64_t OW) {
  const int64_t N = x.size(0), Cin = x.size(1), Cout = weight.size(1), H = x.size(2),
                W = x.size(3);
  const int64_t K = Cout * w.kh * w.kw;
  Tensor out = make_tensor({N, Cout, OH, OW}, x.dtype(), x.device(), "conv_transpose2d",
                           conv_format(x, weight));
  forward_no_grad([&] {
    cpu::conv2d_direct_input_grad(out, x, weight.reshape({Cin, K}), w);
    return 0;
  });
  autograd::record(
      "conv_transpose2d", {x, weight}, out, {x, weight},
      [w, H, W, Cin, K](const Saved& s, const Tensor& dy) {
        const Tensor &x = s[0], &weight = s[1];
        const int64_t N = x.size(0);
        Tensor gx, gw;
        if (autograd::is_grad_enabled()) {  // create_graph: a differentiable backward
          std::vector<int64_t> k;
          // dX = conv2d(dY, W) cropped to x's size (output_padding may leave extra rows).
          if (wants(x))
            gx = conv2d(dy, weight, {}, {w.sh, w.sw}, {w.ph, w.pw}, {w.dh, w.dw})
                     .slice(2, 0, H)
                     .slice(3, 0, W);
          if (wants(weight)) {
            // dY's windows (BH, BW) >= (H, W); the first (H, W) pair with x's positions.
            const int64_t BH = conv_out_size(dy.size(2), w.kh, w.dh, w.ph, w.sh);
            const int64_t BW = conv_out_size(dy.size(3), w.kw, w.dw, w.pw, w.sw);
            const Tensor cols = unfold(dy, kernel_of(w, k), {w.dh, w.dw}, {w.ph, w.pw},
                                       {w.sh, w.sw})
                                    .reshape({N, K, BH, BW})
                                    .slice(2, 0, H)
                                    .slice(3, 0, W)
                                    .reshape({N, 1, K, H * W});
            gw = batch_summed_matmul_nt(x.reshape({N, 1, Cin, H * W}), cols, "conv_transpose2d")
                     .reshape(weight.sizes());
          }
          return Grads{gx, gw};
        }
        if (wants(x)) {
          gx = make_tensor(x.sizes(), x.dtype(), x.device(), "conv_transpose2d");
          cpu::conv2d_direct(gx, dy, weight.reshape({Cin, K}), Tensor(), w);
          gx = laid_out(gx, x.suggest_memory_format());
        }
        if (wants(weight)) {
          gw = make_tensor({Cin, K}, x.dtype(), x.device(), "conv_transpose2d");
          cpu::conv2d_direct_weight_grad(gw, x, dy, w);
          gw = gw.reshape(weight.sizes());
        }
        return Grads{gx, gw};
      });
  return out;
}

/// conv_transpose2d of operands o, x (N, C_in, H, W): a CUDA convolution kernel when one takes it,
/// else the direct kernel or GEMMs (on recorded casts under autocast).
Tensor conv_transpose2d_4d(const ParamOperands& o, const Window2d& w, int64_t groups, int64_t OH,
                           int64_t OW) {
  if (const ConvKernels* kern = conv_kernels_for(o.x)) {
    Tensor y = conv_transpose2d_kernels_4d(*kern, o, w, groups, OH, OW);
    if (y.defined()) return y;
  }
  const Tensor &x = o.x, weight = o.weight_for_ops(), bias = o.bias_for_ops();
  if (groups == 1 && x.size(2) * x.size(3) > kFewPositions && x.device().is_cpu() &&
      (x.dtype() == kFloat32 || x.dtype() == kFloat64)) {
    Tensor y = conv_transpose2d_direct_4d(x, weight, w, OH, OW);
    return bias.defined() ? y + bias.reshape({weight.size(1), 1, 1}) : y;
  }
  const int64_t N = x.size(0), Cin = x.size(1), Cout = weight.size(1) * groups;
  const int64_t K = Cout / groups * w.kh * w.kw;
  // fold's window count for (OH, OW); exceeds (H, W) only when output_padding >= stride (allowed
  // when it is < dilation): extra zero input rows contribute nothing.
  const int64_t BH = conv_out_size(OH, w.kh, w.dh, w.ph, w.sh);
  const int64_t BW = conv_out_size(OW, w.kw, w.dw, w.pw, w.sw);
  const Tensor xin =
      BH > x.size(2) || BW > x.size(3) ? pad(x, {0, BW - x.size(3), 0, BH - x.size(2)}) : x;
  const int64_t L = BH * BW;
  Tensor cols =
      groups == 1 && L <= kFewPositions
          // One GEMM over the batch, (N*L, Cin) x (Cin, K), rather than N of L columns.
          ? matmul(xin.reshape({N, Cin, L}).transpose(1, 2).reshape({N * L, Cin}),
                   weight.reshape({Cin, K}))
                .reshape({N, L, K})
                .transpose(1, 2)
          : shared_weight_matmul(weight.reshape({groups, Cin / groups, K}).transpose(1, 2),
                                 xin.reshape({N, groups, Cin / groups, L}),
                                 "conv_transpose2d")  // (N, g, K, L)
                .reshape({N, Cout * w.kh * w.kw, L});
  const bool pointwise = w.kh == 1 && w.kw == 1 && w.sh == 1 && w.sw == 1 && w.ph == 0 &&
                         w.pw == 0 && BH == OH && BW == OW;
  std::vector<int64_t> k;
  Tensor y = pointwise
                 ? cols.reshape({N, Cout, OH, OW})
                 : fold(cols, {OH, OW}, kernel_of(w, k), {w.dh, w.dw}, {w.ph, w.pw}, {w.sh, w.sw});
  return bias.defined() ? y + bias.reshape({Cout, 1, 1}) : y;
}

Tensor conv_transpose_impl(const Tensor& x, const Tensor& weight, const Tensor& bias,
                           IntArrayRef stride, IntArrayRef padding, IntArrayRef output_padding,
                           int64_t groups, IntArrayRef dilation, int nd, const char* op) {
  // Under autocast x goes through a recorded cast and the weight and bias as ParamOperands says.
  const ParamOperands o = param_operands(x, weight, bias, on_cuda(x));
  autocast_detail::Suspend off;
  check_conv(o.x, o.w, o.bias(), groups, nd, true, op);
  const Spatial s = as_4d(o.x, nd, op);
  const std::vector<int64_t> k(weight.sizes().end() - nd, weight.sizes().end());
  const Window2d w = window_of(k, dilation, padding, stride, nd, op);
  const std::vector<int64_t> op2 = param2(output_padding, nd, 0, op, "output_padding");
  check_all(op2, 0, nd, op, "output_padding");
  const int64_t st[2] = {w.sh, w.sw}, di[2] = {w.dh, w.dw};
  for (int i = 0; i < 2; ++i)
    EMBER_CHECK(op2[static_cast<size_t>(i)] < st[i] || op2[static_cast<size_t>(i)] < di[i],
                ValueError, "[", op, "] output_padding ", IntArrayRef(shown(op2, nd)),
                " must be smaller than the stride or the dilation");
  const int64_t OH = (s.x4.size(2) - 1) * w.sh - 2 * w.ph + w.dh * (w.kh - 1) + op2[0] + 1;
  const int64_t OW = (s.x4.size(3) - 1) * w.sw - 2 * w.pw + w.dw * (w.kw - 1) + op2[1] + 1;
  EMBER_CHECK(OH > 0 && OW > 0 && s.x4.size(2) > 0 && s.x4.size(3) > 0, ShapeError, "[", op,
              "] the output size ", IntArrayRef(shown({OH, OW}, nd)), " of input ", x.sizes(),
              " with weight ", weight.sizes(), " is not positive");
  const ParamOperands o4 = operands_4d(o, s);
  return s.restore(laid_out(conv_transpose2d_4d(o4, w, groups, OH, OW), conv_format(s.x4, o4.w)));
}

}  // namespace

Tensor conv1d(const Tensor& input, const Tensor& weight, const Tensor& bias, IntArrayRef stride,
              IntArrayRef padding, IntArrayRef dilation, int64_t groups) {
  return conv_impl(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d", false);
}

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, IntArrayRef stride,
              IntArrayRef padding, IntArrayRef dilation, int64_t groups) {
  return conv_impl(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d", false);
}

Tensor conv2d_relu(const Tensor& input, const Tensor& weight, const Tensor& bias,
                   IntArrayRef stride, IntArrayRef padding, IntArrayRef dilation, int64_t groups) {
  return conv_impl(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d_relu", true);
}

Tensor conv1d(const Tensor& input, const Tensor& weight, const Tensor& bias, IntArrayRef stride,
              ConvPadding padding, IntArrayRef dilation, int64_t groups) {
  return conv_named_padding(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d");
}

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, IntArrayRef stride,
              ConvPadding padding, IntArrayRef dilation, int64_t groups) {
  return conv_named_padding(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d");
}

Tensor conv_transpose1d(const Tensor& input, const Tensor& weight, const Tensor& bias,
                        IntArrayRef stride, IntArrayRef padding, IntArrayRef output_padding,
                        int64_t groups, IntArrayRef dilation) {
  return conv_transpose_impl(input, weight, bias, stride, padding, output_padding, groups, dilation,
                             1, "conv_transpose1d");
}

Tensor conv_transpose2d(const Tensor& input, const Tensor& weight, const Tensor& bias,
                        IntArrayRef stride, IntArrayRef padding, IntArrayRef output_padding,
                        int64_t groups, IntArrayRef dilation) {
  return conv_transpose_impl(input, weight, bias, stride, padding, output_padding, groups, dilation,
                             2, "conv_transpose2d");
}

// ---- pooling ----

namespace {

/// PyTorch's pooling_output_shape: floor (or ceil) division, and in ceil mode the last window
/// must start inside the input or the left padding.
int64_t pool_out_size(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dil,
                      bool ceil_mode) {
  const int64_t span = in + 2 * pad - dil * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
  int64_t out = (span >= 0 ? span / stride : -((-span + stride - 1) / stride)) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

struct PoolArgs {
  Window2d w;
  int64_t OH, OW;
};

/// Checked window and output size of max/avg pooling (padding at most half the kernel, output
/// non-empty). An empty stride means the kernel size.
PoolArgs pool_args(const Spatial& s, const Tensor& x, IntArrayRef kernel_size, IntArrayRef stride,
                   IntArrayRef padding, IntArrayRef dilation, bool ceil_mode, const char* op) {
  check_nonempty_plane(s, x, op);
  const int nd = s.nd;
  const Window2d w =
      window_of(kernel_size, dilation, padding, stride.empty() ? kernel_size : stride, nd, op);
  EMBER_CHECK(2 * w.ph <= w.kh && 2 * w.pw <= w.kw, ValueError, "[", op, "] padding ",
              IntArrayRef(shown({w.ph, w.pw}, nd)), " must be at most half the kernel size ",
              IntArrayRef(shown({w.kh, w.kw}, nd)));
  const int64_t OH = pool_out_size(s.x4.size(2), w.kh, w.ph, w.sh, w.dh, ceil_mode);
  const int64_t OW = pool_out_size(s.x4.size(3), w.kw, w.pw, w.sw, w.dw, ceil_mode);
  EMBER_CHECK(OH > 0 && OW > 0, ShapeError, "[", op, "] the output size ",
              IntArrayRef(shown({OH, OW}, nd)), " of input ", x.sizes(), " with kernel ",
              IntArrayRef(shown({w.kh, w.kw}, nd)), " is too small");
  return PoolArgs{w, OH, OW};
}

/// A contiguous CPU int64 tensor (n, 2) of window bounds [begin, end).
Tensor window_table(const std::vector<int64_t>& bounds, Device device) {
  Tensor t = tensor(bounds, TensorOptions(kInt64));
  t = t.reshape({static_cast<int64_t>(bounds.size() / 2), 2});
  return device.type() == DeviceType::CPU ? t : t.to(device);
}

/// Window bounds of max pooling along one dim: the first tap inside the input and the end.
std::vector<int64_t> pool_bounds(int64_t in, int64_t out, int64_t k, int64_t pad, int64_t stride,
                                 int64_t dil) {
  std::vector<int64_t> b;
  for (int64_t o = 0; o < out; ++o) {
    int64_t begin = o * stride - pad;
    const int64_t end = std::min(begin + (k - 1) * dil + 1, in);
    while (begin < 0) begin += dil;
    b.push_back(begin);
    b.push_back(end);
  }
  return b;
}

/// PyTorch's adaptive bins: [floor(o * in / out), ceil((o + 1) * in / out)).
std::vector<int64_t> adaptive_bounds(int64_t in, int64_t out) {
  std::vector<int64_t> b;
  for (int64_t o = 0; o < out; ++o) {
    b.push_back(o * in / out);
    b.push_back(((o + 1) * in + out - 1) / out);
  }
  return b;
}

/// Max pooling of input (its Spatial s) over window tables; records the backward: the gradient
/// scatter_added at the indices (so its own gradient is a gather: differentiable again).
std::tuple<Tensor, Tensor> max_pool_tables(const Tensor& input, const Spatial& s,
                                           const std::vector<int64_t>& hb,
                                           const std::vector<int64_t>& wb, int64_t dh, int64_t dw,
                                           const char* op) {
  check_floating(input, op, "input");
  const int64_t N = s.x4.size(0), C = s.x4.size(1), H = s.x4.size(2), W = s.x4.size(3);
  const int64_t OH = static_cast<int64_t>(hb.size() / 2), OW = static_cast<int64_t>(wb.size() / 2);
  // A channels-last input gives channels-last values and indices, as PyTorch's.
  const MemoryFormat fmt = s.x4.suggest_memory_format();
  Tensor values = make_tensor({N, C, OH, OW}, input.dtype(), input.device(), op, fmt);
  Tensor indices = make_tensor({N, C, OH, OW}, kInt64, input.device(), op, fmt);
  forward_no_grad([&] {
    launch(input.device(), cpu::max_pool2d, cuda::max_pool2d, values, indices, s.x4,
           window_table(hb, input.device()), window_table(wb, input.device()), dh, dw);
    return 0;
  });
  Tensor v = s.restore(values);
  Tensor i = s.restore(indices);
  const std::vector<int64_t> in_sizes = input.sizes().vec();
  if (fmt == MemoryFormat::ChannelsLast) {
    // (N, OH OW, C) memory: the gradient scatter-added along the pixels of each (n, c).
    const Tensor pixel_indices = indices.permute({0, 2, 3, 1}).view({N, OH * OW, C});
    Spatial shape = s;
    shape.x4 = Tensor();  // only the flags, to restore the input's rank
    autograd::record(op, {input}, v, {pixel_indices},
                     [N, C, H, W, OH, OW, shape](const Saved& saved, const Tensor& dy) {
                       const Tensor dy4 = dy.reshape({N, C, OH, OW});
                       const Tensor src = dy4.permute({0, 2, 3, 1}).reshape({N, OH * OW, C});
                       Tensor g = zeros({N, H * W, C}, dy.options()).scatter_add(1, saved[0], src);
                       return Grads{shape.restore(g.view({N, H, W, C}).permute({0, 3, 1, 2}))};
                     });
    return {v, i};
  }
  const int64_t P = N * C;
  const Tensor flat_indices = indices.view({P, OH * OW});
  autograd::record(
      op, {input}, v, {flat_indices}, [P, H, W, in_sizes](const Saved& saved, const Tensor& dy) {
        Tensor g = zeros({P, H * W}, dy.options()).scatter_add(1, saved[0], dy.reshape({P, -1}));
        return Grads{g.view(in_sizes)};
      });
  return {v, i};
}

std::tuple<Tensor, Tensor> max_pool_impl(const Tensor& input, IntArrayRef kernel_size,
                                         IntArrayRef stride, IntArrayRef padding,
                                         IntArrayRef dilation, bool ceil_mode, int nd,
                                         const char* op) {
  const Spatial s = as_4d(input, nd, op);
  check_floating(input, op, "input");
  const PoolArgs a = pool_args(s, input, kernel_size, stride, padding, dilation, ceil_mode, op);
  const Window2d& w = a.w;
  return max_pool_tables(input, s, pool_bounds(s.x4.size(2), a.OH, w.kh, w.ph, w.sh, w.dh),
                         pool_bounds(s.x4.size(3), a.OW, w.kw, w.pw, w.sw, w.dw), w.dh, w.dw, op);
}

std::vector<int64_t> adaptive_size(const Spatial& s, const Tensor& x, IntArrayRef output_size,
                                   const char* op) {
  check_nonempty_plane(s, x, op);
  std::vector<int64_t> o = param2(output_size, s.nd, 1, op, "output_size");
  check_all(o, 1, s.nd, op, "output_size");
  return o;
}

std::tuple<Tensor, Tensor> adaptive_max_impl(const Tensor& input, IntArrayRef output_size, int nd,
                                             const char* op) {
  const Spatial s = as_4d(input, nd, op);
  check_floating(input, op, "input");
  const std::vector<int64_t> o = adaptive_size(s, input, output_size, op);
  return max_pool_tables(input, s, adaptive_bounds(s.x4.size(2), o[0]),
                         adaptive_bounds(s.x4.size(3), o[1]), 1, 1, op);
}

/// A constant (rows, cols) matrix of dtype dt on device.
Tensor matrix(const std::vector<double>& v, int64_t rows, int64_t cols, DType dt, Device device) {
  Tensor t = tensor(v, TensorOptions(dt)).reshape({rows, cols});
  return device.type() == DeviceType::CPU ? t : t.to(device);
}

/// y (N, C, OH, OW) = ah (OH, H) @ x4 (N, C, H, W) @ aw^T (W, OW), in x4's dtype.
Tensor separable(const Tensor& x4, const Tensor& ah, const Tensor& aw) {
  return matmul(ah, matmul(x4, aw.t()));
}

/// 0/1 window-membership matrix (out, in) of bounds [begin, end) and the window lengths.
Tensor membership(const std::vector<int64_t>& bounds, int64_t in, DType dt, Device device) {
  const int64_t out = static_cast<int64_t>(bounds.size() / 2);
  std::vector<double> m(static_cast<size_t>(out * in), 0.0);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = bounds[2 * o]; i < bounds[2 * o + 1]; ++i)
      m[static_cast<size_t>(o * in + i)] = 1.0;
  return matrix(m, out, in, dt, device);
}

/// Average pooling as window sums (two 0/1 matrices) divided by an (OH, OW) divisor.
Tensor average_windows(const Spatial& s, const std::vector<int64_t>& hb,
                       const std::vector<int64_t>& wb, const std::vector<double>& hdiv,
                       const std::vector<double>& wdiv, std::optional<int64_t> divisor) {
  const DType dt = opmath_dtype(s.x4.dtype());
  const Device dev = s.x4.device();
  const Tensor x = s.x4.dtype() == dt ? s.x4 : s.x4.to(dt);
  const int64_t OH = static_cast<int64_t>(hdiv.size()), OW = static_cast<int64_t>(wdiv.size());
  Tensor sums =
      separable(x, membership(hb, x.size(2), dt, dev), membership(wb, x.size(3), dt, dev));
  std::vector<double> d(static_cast<size_t>(OH * OW));
  for (int64_t i = 0; i < OH; ++i)
    for (int64_t j = 0; j < OW; ++j)
      d[static_cast<size_t>(i * OW + j)] =
          divisor ? static_cast<double>(*divisor)
                  : hdiv[static_cast<size_t>(i)] * wdiv[static_cast<size_t>(j)];
  Tensor y = sums / matrix(d, OH, OW, dt, dev);
  return y.dtype() == s.x4.dtype() ? y : y.to(s.x4.dtype());
}

Tensor avg_pool_impl(const Tensor& input, IntArrayRef kernel_size, IntArrayRef stride,
                     IntArrayRef padding, bool ceil_mode, bool count_include_pad,
                     std::optional<int64_t> divisor_override, int nd, const char* op) {
  const Spatial s = as_4d(input, nd, op);
  check_floating(input, op, "input");
  EMBER_CHECK(!divisor_override || *divisor_override != 0, ValueError, "[", op,
              "] divisor_override must not be zero");
  const PoolArgs a = pool_args(s, input, kernel_size, stride, padding, 1, ceil_mode, op);
  // PyTorch's rule per dim: the window [start, start + k) clipped to the padded input counts
  // for count_include_pad, clipped to the input otherwise; only input positions are summed.
  auto dim_windows = [&](int64_t in, int64_t out, int64_t k, int64_t pad, int64_t stride_,
                         std::vector<int64_t>& bounds, std::vector<double>& count) {
    for (int64_t o = 0; o < out; ++o) {
      const int64_t start = o * stride_ - pad;
      const int64_t end_padded = std::min(start + k, in + pad);
      const int64_t begin = std::max<int64_t>(start, 0), end = std::min(end_padded, in);
      bounds.push_back(begin);
      bounds.push_back(std::max(begin, end));
      const int64_t n = count_include_pad ? end_padded - start : end - begin;
      count.push_back(static_cast<double>(std::max<int64_t>(n, 1)));
    }
  };
  std::vector<int64_t> hb, wb;
  std::vector<double> hc, wc;
  dim_windows(s.x4.size(2), a.OH, a.w.kh, a.w.ph, a.w.sh, hb, hc);
  dim_windows(s.x4.size(3), a.OW, a.w.kw, a.w.pw, a.w.sw, wb, wc);
  return s.restore(average_windows(s, hb, wb, hc, wc, divisor_override));
}

Tensor adaptive_avg_impl(const Tensor& input, IntArrayRef output_size, int nd, const char* op) {
  const Spatial s = as_4d(input, nd, op);
  check_floating(input, op, "input");
  const std::vector<int64_t> o = adaptive_size(s, input, output_size, op);
  const int64_t H = s.x4.size(2), W = s.x4.size(3);
  if (o[0] == 1 && o[1] == 1) {
    if (s.x4.suggest_memory_format() == MemoryFormat::ChannelsLast)  // over (N, H W, C) memory:
      return s.restore(  // a channels-last (N, C, 1, 1) result and gradient
          s.x4.permute({0, 2, 3, 1}).mean({1, 2}, /*keepdim=*/true).permute({0, 3, 1, 2}));
    return s.restore(s.x4.mean({2, 3}, /*keepdim=*/true));
  }
  std::vector<int64_t> hb = adaptive_bounds(H, o[0]), wb = adaptive_bounds(W, o[1]);
  std::vector<double> hc, wc;
  for (size_t i = 0; i < hb.size(); i += 2) hc.push_back(static_cast<double>(hb[i + 1] - hb[i]));
  for (size_t i = 0; i < wb.size(); i += 2) wc.push_back(static_cast<double>(wb[i + 1] - wb[i]));
  return s.restore(average_windows(s, hb, wb, hc, wc, std::nullopt));
}

}  // namespace

std::tuple<Tensor, Tensor> max_pool2d_with_indices(const Tensor& input, IntArrayRef kernel_size,
                                                   IntArrayRef stride, IntArrayRef padding,
                                                   IntArrayRef dilation, bool ceil_mode) {
  return max_pool_impl(input, kernel_size, stride, padding, dilation, ceil_mode, 2,
                       "max_pool2d_with_indices");
}

Tensor max_pool2d(const Tensor& input, IntArrayRef kernel_size, IntArrayRef stride,
                  IntArrayRef padding, IntArrayRef dilation, bool ceil_mode) {
  return std::get<0>(
      max_pool_impl(input, kernel_size, stride, padding, dilation, ceil_mode, 2, "max_pool2d"));
}

std::tuple<Tensor, Tensor> max_pool1d_with_indices(const Tensor& input, IntArrayRef kernel_size,
                                                   IntArrayRef stride, IntArrayRef padding,
                                                   IntArrayRef dilation, bool ceil_mode) {
  return max_pool_impl(input, kernel_size, stride, padding, dilation, ceil_mode, 1,
                       "max_pool1d_with_indices");
}

Tensor max_pool1d(const Tensor& input, IntArrayRef kernel_size, IntArrayRef stride,
                  IntArrayRef padding, IntArrayRef dilation, bool ceil_mode) {
  return std::get<0>(
      max_pool_impl(input, kernel_size, stride, padding, dilation, ceil_mode, 1, "max_pool1d"));
}

Tensor avg_pool2d(const Tensor& input, IntArrayRef kernel_size, IntArrayRef stride,
                  IntArrayRef padding, bool ceil_mode, bool count_include_pad,
                  std::optional<int64_t> divisor_override) {
  return avg_pool_impl(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override, 2, "avg_pool2d");
}

Tensor avg_pool1d(const Tensor& input, IntArrayRef kernel_size, IntArrayRef stride,
                  IntArrayRef padding, bool ceil_mode, bool count_include_pad) {
  return avg_pool_impl(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       std::nullopt, 1, "avg_pool1d");
}

Tensor adaptive_avg_pool2d(const Tensor& input, IntArrayRef output_size) {
  return adaptive_avg_impl(input, output_size, 2, "adaptive_avg_pool2d");
}

Tensor adaptive_avg_pool1d(const Tensor& input, IntArrayRef output_size) {
  return adaptive_avg_impl(input, output_size, 1, "adaptive_avg_pool1d");
}

std::tuple<Tensor, Tensor> adaptive_max_pool2d(const Tensor& input, IntArrayRef output_size) {
  return adaptive_max_impl(input, output_size, 2, "adaptive_max_pool2d");
}

std::tuple<Tensor, Tensor> adaptive_max_pool1d(const Tensor& input, IntArrayRef output_size) {
  return adaptive_max_impl(input, output_size, 1, "adaptive_max_pool1d");
}

// ---- upsampling ----

namespace {

std::vector<int64_t> upsample_size(const Spatial& s, const Tensor& x, IntArrayRef output_size,
                                   const char* op) {
  check_floating(x, op, "input");
  check_nonempty_plane(s, x, op);
  EMBER_CHECK(output_size.size() == static_cast<size_t>(s.nd), ValueError, "[", op,
              "] expected output_size with ", s.nd, " values, got ", output_size);
  std::vector<int64_t> o = param2(output_size, s.nd, 1, op, "output_size");
  check_all(o, 1, s.nd, op, "output_size");
  return o;
}

void check_scale(std::optional<double> scale, const char* op) {
  EMBER_CHECK(!scale || (std::isfinite(*scale) && *scale > 0), ValueError, "[", op,
              "] scale factors must be positive and finite, got ", scale ? *scale : 0.0);
}

/// PyTorch's nearest source index: floor(dst * scale) in float, scale = 1/scale_factor when one
/// is given and in/out otherwise; exact copies for out == in and out == 2 in.
Tensor nearest_index(int64_t in, int64_t out, std::optional<double> scale, Device device) {
  std::vector<int64_t> idx(static_cast<size_t>(out));
  const float sc = scale && *scale > 0 ? static_cast<float>(1.0 / *scale)
                                       : static_cast<float>(in) / static_cast<float>(out);
  for (int64_t o = 0; o < out; ++o) {
    int64_t i = 0;
    if (out == in) {
      i = o;
    } else if (out == 2 * in) {
      i = o >> 1;
    } else {
      i = std::min(static_cast<int64_t>(std::floor(static_cast<float>(o) * sc)), in - 1);
    }
    idx[static_cast<size_t>(o)] = i;
  }
  Tensor t = tensor(idx, TensorOptions(kInt64));
  return device.type() == DeviceType::CPU ? t : t.to(device);
}

/// PyTorch's linear interpolation weights along one dim as an (out, in) matrix, computed in S
/// (float for float32 and half inputs, double for float64): source = scale * (dst + 0.5) - 0.5
/// clamped at 0 (align_corners false), scale * dst (true).
template <class S>
std::vector<double> linear_weights(int64_t in, int64_t out, bool align_corners,
                                   std::optional<double> scale) {
  S sc;
  if (align_corners) {
    sc = out > 1 ? static_cast<S>(in - 1) / static_cast<S>(out - 1) : S(0);
  } else {
    sc = scale && *scale > 0 ? static_cast<S>(1.0 / *scale)
                             : static_cast<S>(in) / static_cast<S>(out);
  }
  std::vector<double> m(static_cast<size_t>(out * in), 0.0);
  for (int64_t o = 0; o < out; ++o) {
    S src = align_corners ? sc * static_cast<S>(o) : sc * (static_cast<S>(o) + S(0.5)) - S(0.5);
    if (!align_corners && src < S(0)) src = S(0);
    const int64_t i0 = static_cast<int64_t>(src);
    const int64_t step = i0 < in - 1 ? 1 : 0;
    const S l1 = src - static_cast<S>(i0), l0 = S(1) - l1;
    m[static_cast<size_t>(o * in + i0)] += static_cast<double>(l0);
    m[static_cast<size_t>(o * in + i0 + step)] += static_cast<double>(l1);
  }
  return m;
}

Tensor upsample_nearest_impl(const Tensor& input, IntArrayRef output_size,
                             std::optional<double> scales_h, std::optional<double> scales_w, int nd,
                             const char* op) {
  const Spatial s = as_4d(input, nd, op);
  const std::vector<int64_t> o = upsample_size(s, input, output_size, op);
  check_scale(scales_h, op);
  check_scale(scales_w, op);
  Tensor y = s.x4;
  if (nd == 2) y = y.index_select(2, nearest_index(y.size(2), o[0], scales_h, y.device()));
  y = y.index_select(3, nearest_index(y.size(3), o[1], scales_w, y.device()));
  return s.restore(y);
}

Tensor upsample_linear_impl(const Tensor& input, IntArrayRef output_size, bool align_corners,
                            std::optional<double> scales_h, std::optional<double> scales_w, int nd,
                            const char* op) {
  const Spatial s = as_4d(input, nd, op);
  const std::vector<int64_t> o = upsample_size(s, input, output_size, op);
  check_scale(scales_h, op);
  check_scale(scales_w, op);
  const DType dt = opmath_dtype(input.dtype());
  const Device dev = input.device();
  const int64_t H = s.x4.size(2), W = s.x4.size(3);
  const bool f64 = dt == kFloat64;
  auto weights = [&](int64_t in, int64_t out, std::optional<double> sc) {
    return f64 ? linear_weights<double>(in, out, align_corners, sc)
               : linear_weights<float>(in, out, align_corners, sc);
  };
  const Tensor x = input.dtype() == dt ? s.x4 : s.x4.to(dt);
  const Tensor aw = matrix(weights(W, o[1], scales_w), o[1], W, dt, dev);
  Tensor y = nd == 2 ? separable(x, matrix(weights(H, o[0], scales_h), o[0], H, dt, dev), aw)
                     : matmul(x, aw.t());
  if (y.dtype() != input.dtype()) y = y.to(input.dtype());
  return s.restore(y);
}

}  // namespace

Tensor upsample_nearest1d(const Tensor& input, IntArrayRef output_size,
                          std::optional<double> scales) {
  return upsample_nearest_impl(input, output_size, std::nullopt, scales, 1, "upsample_nearest1d");
}

Tensor upsample_nearest2d(const Tensor& input, IntArrayRef output_size,
                          std::optional<double> scales_h, std::optional<double> scales_w) {
  return upsample_nearest_impl(input, output_size, scales_h, scales_w, 2, "upsample_nearest2d");
}

Tensor upsample_linear1d(const Tensor& input, IntArrayRef output_size, bool align_corners,
                         std::optional<double> scales) {
  return upsample_linear_impl(input, output_size, align_corners, std::nullopt, scales, 1,
                              "upsample_linear1d");
}

Tensor upsample_bilinear2d(const Tensor& input, IntArrayRef output_size, bool align_corners,
                           std::optional<double> scales_h, std::optional<double> scales_w) {
  return upsample_linear_impl(input, output_size, align_corners, scales_h, scales_w, 2,
                              "upsample_bilinear2d");
}

Tensor interpolate(const Tensor& input, std::optional<std::vector<int64_t>> size,
                   std::optional<std::vector<double>> scale_factor, const std::string& mode,
                   std::optional<bool> align_corners) {
  const char* op = "interpolate";
  check_defined(input, op, "input");
  EMBER_CHECK(input.dim() == 3 || input.dim() == 4, ShapeError,
              "[interpolate] expected a 3-D (N, C, L) or 4-D (N, C, H, W) input, got ",
              input.sizes());
  const int nd = static_cast<int>(input.dim()) - 2;
  EMBER_CHECK(size.has_value() != scale_factor.has_value(), ValueError,
              "[interpolate] exactly one of size and scale_factor must be given");
  const bool linear = mode == "linear" || mode == "bilinear";
  EMBER_CHECK(mode == "nearest" || linear, ValueError, "[interpolate] unknown mode '", mode,
              "'; expected nearest, linear or bilinear");
  EMBER_CHECK(linear || !align_corners.has_value(), ValueError,
              "[interpolate] align_corners can only be set with the linear modes, got mode '", mode,
              "'");
  EMBER_CHECK(!linear || (mode == "linear") == (nd == 1), ShapeError, "[interpolate] mode '", mode,
              "' needs a ", mode == "linear" ? 3 : 4, "-D input, got ", input.sizes());
  std::vector<int64_t> out;
  std::vector<std::optional<double>> scales(static_cast<size_t>(nd));
  if (size) {
    out = expand_param(*size, static_cast<size_t>(nd), op, "size");
  } else {
    EMBER_CHECK(scale_factor->size() == 1 || scale_factor->size() == static_cast<size_t>(nd),
                ValueError, "[interpolate] scale_factor must have 1 or ", nd, " values, got ",
                scale_factor->size());
    for (int i = 0; i < nd; ++i) {
      const double f = (*scale_factor)[scale_factor->size() == 1 ? 0 : static_cast<size_t>(i)];
      check_scale(f, op);
      scales[static_cast<size_t>(i)] = f;
      out.push_back(static_cast<int64_t>(std::floor(static_cast<double>(input.size(2 + i)) * f)));
    }
  }
  if (nd == 1)
    return linear ? upsample_linear1d(input, out, align_corners.value_or(false), scales[0])
                  : upsample_nearest1d(input, out, scales[0]);
  return linear
             ? upsample_bilinear2d(input, out, align_corners.value_or(false), scales[0], scales[1])
             : upsample_nearest2d(input, out, scales[0], scales[1]);
}

}  // namespace ember
