// The implicit-GEMM convolution kernels (src/cuda/conv_implicit_gemm.cu) against cuDNN, bfloat16
// NCHW tensors, float32 accumulation, on ResNet-50 layer shapes at batch 32:
//   conv/<pass>/N<n>_C<c>_O<o>_<h>x<w>_k<k>s<s>/<impl>,  pass = fprop, dgrad (input gradient),
//   wgrad (weight gradient); impl "ember" (the cuda:: kernel the op calls, into preallocated
//   outputs: its NHWC staging copies are part of the time) or "cudnn" (the legacy API:
//   cudnnConvolutionForward / BackwardData / BackwardFilter on NCHW CUDNN_DATA_BFLOAT16 tensors,
//   compute type float, CUDNN_TENSOR_OP_MATH, the algorithm the _v7 heuristic ranks first, chosen
//   once per case, its workspace allocated once). Reported in FLOP/s: 2 N O P Q C/g R S per pass.
// The ResNet stem (7x7 stride 2 on 3 channels, 224 x 224) is a case too: Ember pads its channels
// to 8 (the time includes that staging), cuDNN takes C = 3 as it is.
// conv/fprop_bias_relu/<shape>/{ember, cudnn_then_bias_relu}: the forward with bias and ReLU,
// fused in Ember's epilogue against cuDNN's forward followed by separate bias and ReLU kernels.
//
// "ember_wgmma" (every pass): the same call with set_conv_variant(1), the kernel on warpgroup
// MMA; a peer of "ember" (the automatic choice) until a GPU run decides the default.
// Before timing, each Ember case compares its result with cuDNN's (counter max_rel_diff: max
// |ember - cudnn| / max |cudnn|); above 1e-2 the case is an error and the program exits 1.
// Timing as the other GPU benchmarks (benchmarks/cuda_bench.hpp: CUDA events, L2 flushed by a
// 256 MiB read before each run, median of 5 repetitions).
//
// Without a GPU (ember::cuda::is_available() false) the program prints
// "bench_cuda_conv: skipped (no CUDA GPU)" and exits 0. Quick mode (EMBER_BENCH_QUICK=1): tiny
// sizes, one repetition of two runs.
#include <cuda_runtime.h>
#include <cudnn.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cuda_bench.hpp"

using namespace ember;
using ember::bench::add_gpu_case;
using ember::bench::check_cuda;
using ember::bench::g_failed;
using ember::bench::time_gpu;

namespace {

void check_cudnn(cudnnStatus_t s, const char* what) {
  if (s != CUDNN_STATUS_SUCCESS)
    throw std::runtime_error(std::string(what) + " failed: " + cudnnGetErrorString(s));
}

struct HandleDeleter {
  void operator()(cudnnContext* h) const { cudnnDestroy(h); }
};
/// The program's cuDNN handle, made in main once a GPU is known to exist, released before exit.
std::unique_ptr<cudnnContext, HandleDeleter> g_cudnn;

struct Shape {
  int64_t N, C, O, H, W, k, stride, pad;
  int64_t P() const { return (H + 2 * pad - k) / stride + 1; }
  int64_t Q() const { return (W + 2 * pad - k) / stride + 1; }
  double flops() const { return 2.0 * N * O * P() * Q() * C * k * k; }
  std::string name() const {
    return "N" + std::to_string(N) + "_C" + std::to_string(C) + "_O" + std::to_string(O) + "_" +
           std::to_string(H) + "x" + std::to_string(W) + "_k" + std::to_string(k) + "s" +
           std::to_string(stride);
  }
};

enum class Pass { kFprop, kDgrad, kWgrad };
const char* pass_name(Pass p) {
  return p == Pass::kFprop ? "fprop" : p == Pass::kDgrad ? "dgrad" : "wgrad";
}

/// cuDNN's descriptors for one shape, destroyed with it.
class CudnnConv {
 public:
  explicit CudnnConv(const Shape& s) {
    check_cudnn(cudnnCreateTensorDescriptor(&x_), "cudnnCreateTensorDescriptor");
    check_cudnn(cudnnCreateTensorDescriptor(&y_), "cudnnCreateTensorDescriptor");
    check_cudnn(cudnnCreateFilterDescriptor(&w_), "cudnnCreateFilterDescriptor");
    check_cudnn(cudnnCreateConvolutionDescriptor(&conv_), "cudnnCreateConvolutionDescriptor");
    const auto i = [](int64_t v) { return static_cast<int>(v); };
    check_cudnn(cudnnSetTensor4dDescriptor(x_, CUDNN_TENSOR_NCHW, CUDNN_DATA_BFLOAT16, i(s.N),
                                           i(s.C), i(s.H), i(s.W)),
                "cudnnSetTensor4dDescriptor");
    check_cudnn(cudnnSetTensor4dDescriptor(y_, CUDNN_TENSOR_NCHW, CUDNN_DATA_BFLOAT16, i(s.N),
                                           i(s.O), i(s.P()), i(s.Q())),
                "cudnnSetTensor4dDescriptor");
    check_cudnn(cudnnSetFilter4dDescriptor(w_, CUDNN_DATA_BFLOAT16, CUDNN_TENSOR_NCHW, i(s.O),
                                           i(s.C), i(s.k), i(s.k)),
                "cudnnSetFilter4dDescriptor");
    check_cudnn(cudnnSetConvolution2dDescriptor(conv_, i(s.pad), i(s.pad), i(s.stride), i(s.stride),
                                                1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                "cudnnSetConvolution2dDescriptor");
    check_cudnn(cudnnSetConvolutionMathType(conv_, CUDNN_TENSOR_OP_MATH),
                "cudnnSetConvolutionMathType");
  }
  ~CudnnConv() {
    cudnnDestroyConvolutionDescriptor(conv_);
    cudnnDestroyFilterDescriptor(w_);
    cudnnDestroyTensorDescriptor(y_);
    cudnnDestroyTensorDescriptor(x_);
  }
  CudnnConv(const CudnnConv&) = delete;
  CudnnConv& operator=(const CudnnConv&) = delete;

  /// Picks the heuristic's first algorithm for `pass` and allocates its workspace.
  void prepare(Pass pass) {
    cudnnHandle_t h = g_cudnn.get();
    int n = 0;
    size_t bytes = 0;
    if (pass == Pass::kFprop) {
      cudnnConvolutionFwdAlgoPerf_t perf[8];
      check_cudnn(cudnnGetConvolutionForwardAlgorithm_v7(h, x_, w_, conv_, y_, 8, &n, perf),
                  "cudnnGetConvolutionForwardAlgorithm_v7");
      fwd_ = first_ok(perf, n).algo;
      check_cudnn(cudnnGetConvolutionForwardWorkspaceSize(h, x_, w_, conv_, y_, fwd_, &bytes),
                  "cudnnGetConvolutionForwardWorkspaceSize");
    } else if (pass == Pass::kDgrad) {
      cudnnConvolutionBwdDataAlgoPerf_t perf[8];
      check_cudnn(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, w_, y_, conv_, x_, 8, &n, perf),
                  "cudnnGetConvolutionBackwardDataAlgorithm_v7");
      bwd_data_ = first_ok(perf, n).algo;
      check_cudnn(
          cudnnGetConvolutionBackwardDataWorkspaceSize(h, w_, y_, conv_, x_, bwd_data_, &bytes),
          "cudnnGetConvolutionBackwardDataWorkspaceSize");
    } else {
      cudnnConvolutionBwdFilterAlgoPerf_t perf[8];
      check_cudnn(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, x_, y_, conv_, w_, 8, &n, perf),
                  "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
      bwd_filter_ = first_ok(perf, n).algo;
      check_cudnn(
          cudnnGetConvolutionBackwardFilterWorkspaceSize(h, x_, y_, conv_, w_, bwd_filter_, &bytes),
          "cudnnGetConvolutionBackwardFilterWorkspaceSize");
    }
    workspace_ = empty({static_cast<int64_t>(std::max<size_t>(bytes, 16))}, bench::gpu(kUInt8));
    bytes_ = bytes;
  }

  /// One pass: fprop y = conv(x, w); dgrad x = dgrad(y, w); wgrad w = wgrad(x, y).
  void run(Pass pass, const Tensor& x, const Tensor& w, const Tensor& y) const {
    const float one = 1.f, zero = 0.f;
    cudnnHandle_t h = g_cudnn.get();
    void* ws = workspace_.data_ptr();
    if (pass == Pass::kFprop)
      check_cudnn(cudnnConvolutionForward(h, &one, x_, x.data_ptr(), w_, w.data_ptr(), conv_, fwd_,
                                          ws, bytes_, &zero, y_, y.data_ptr()),
                  "cudnnConvolutionForward");
    else if (pass == Pass::kDgrad)
      check_cudnn(cudnnConvolutionBackwardData(h, &one, w_, w.data_ptr(), y_, y.data_ptr(), conv_,
                                               bwd_data_, ws, bytes_, &zero, x_, x.data_ptr()),
                  "cudnnConvolutionBackwardData");
    else
      check_cudnn(cudnnConvolutionBackwardFilter(h, &one, x_, x.data_ptr(), y_, y.data_ptr(), conv_,
                                                 bwd_filter_, ws, bytes_, &zero, w_, w.data_ptr()),
                  "cudnnConvolutionBackwardFilter");
  }

 private:
  template <class Perf>
  static const Perf& first_ok(const Perf* perf, int n) {
    for (int i = 0; i < n; ++i)
      if (perf[i].status == CUDNN_STATUS_SUCCESS) return perf[i];
    throw std::runtime_error("cuDNN offers no algorithm for this convolution");
  }
  cudnnTensorDescriptor_t x_ = nullptr, y_ = nullptr;
  cudnnFilterDescriptor_t w_ = nullptr;
  cudnnConvolutionDescriptor_t conv_ = nullptr;
  cudnnConvolutionFwdAlgo_t fwd_{};
  cudnnConvolutionBwdDataAlgo_t bwd_data_{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter_{};
  Tensor workspace_;
  size_t bytes_ = 0;
};

void ember_run(Pass pass, const Shape& s, const Tensor& x, const Tensor& w, const Tensor& y) {
  const Window2d win{s.k, s.k, 1, 1, s.pad, s.pad, s.stride, s.stride};
  bool ok = false;
  if (pass == Pass::kFprop)
    ok = cuda::conv2d_implicit_gemm(y, x, w, Tensor(), win, 1, false);
  else if (pass == Pass::kDgrad)
    ok = cuda::conv2d_implicit_gemm_input_grad(x, y, w, Tensor(), win, 1);
  else
    ok = cuda::conv2d_implicit_gemm_weight_grad(w, y, x, win, 1);
  if (!ok) throw std::runtime_error("the implicit-GEMM kernel declined the shape");
}

/// max |a - b| / max |b| in float64.
double rel_diff(const Tensor& a, const Tensor& b) {
  const Tensor ad = a.cpu().to(kFloat64), bd = b.cpu().to(kFloat64);
  const double err = (ad - bd).abs().max().item<double>();
  const double mag = bd.abs().max().item<double>();
  return mag > 0 ? err / mag : err;
}

/// Records max |got - ref| / max |ref| as the counter max_rel_diff; above 1e-2 marks the case an
/// error (the program then exits 1) and returns false.
bool agrees_with_cudnn(benchmark::State& state, const Tensor& got, const Tensor& ref) {
  const double rel = rel_diff(got, ref);
  state.counters["max_rel_diff"] = rel;
  if (rel <= 1e-2) return true;
  g_failed = true;
  state.SkipWithError(
      ("Ember's result differs from cuDNN's: max |diff| / max |ref| = " + std::to_string(rel))
          .c_str());
  return false;
}

/// variant: set_conv_variant's value for Ember's run (-1 the automatic choice, 1 wgmma).
void bm_conv(benchmark::State& state, const Shape& s, Pass pass, bool cudnn, int variant = -1) {
  cuda::set_conv_variant(variant);
  struct Restore {
    ~Restore() { cuda::set_conv_variant(-1); }
  } restore;
  cudnnSetStream(g_cudnn.get(), bench::stream_of(cuda::current_stream()));
  Generator g(4242);
  const auto rnd = [&g](IntArrayRef shape) {
    return randn(shape, g).to(kBFloat16).to(Device(kCUDA));
  };
  // Inputs of the pass random, its output preallocated.
  Tensor x = rnd({s.N, s.C, s.H, s.W}), w = rnd({s.O, s.C, s.k, s.k});
  Tensor y = rnd({s.N, s.O, s.P(), s.Q()});
  Tensor& out = pass == Pass::kFprop ? y : pass == Pass::kDgrad ? x : w;
  CudnnConv conv(s);
  conv.prepare(pass);
  if (!cudnn) {  // check against cuDNN once
    Tensor ref = empty(out.sizes(), bench::gpu(kBFloat16));
    Tensor xx = pass == Pass::kDgrad ? ref : x, ww = pass == Pass::kWgrad ? ref : w;
    Tensor yy = pass == Pass::kFprop ? ref : y;
    conv.run(pass, xx, ww, yy);
    ember_run(pass, s, x, w, y);
    if (!agrees_with_cudnn(state, out, ref)) return;
  }
  time_gpu(state, [&] {
    if (cudnn)
      conv.run(pass, x, w, y);
    else
      ember_run(pass, s, x, w, y);
  });
  bench::set_flops(state, s.flops());
}

/// The forward with bias and ReLU: "ember" with both in the implicit GEMM's epilogue (what
/// conv2d_relu calls); "cudnn_then_bias_relu" cuDNN's forward and then the bias add and ReLU as
/// separate (Ember) elementwise kernels, what an unfused conv-bias-ReLU runs. Ember's result is
/// checked against the peer's first, as bm_conv does.
void bm_conv_bias_relu(benchmark::State& state, const Shape& s, bool cudnn) {
  cudnnSetStream(g_cudnn.get(), bench::stream_of(cuda::current_stream()));
  Generator g(4243);
  const auto rnd = [&g](IntArrayRef shape) {
    return randn(shape, g).to(kBFloat16).to(Device(kCUDA));
  };
  const Tensor x = rnd({s.N, s.C, s.H, s.W}), w = rnd({s.O, s.C, s.k, s.k}), bias = rnd({s.O});
  const Tensor y = rnd({s.N, s.O, s.P(), s.Q()});
  const Window2d win{s.k, s.k, 1, 1, s.pad, s.pad, s.stride, s.stride};
  CudnnConv conv(s);
  conv.prepare(Pass::kFprop);
  const auto peer = [&] {
    conv.run(Pass::kFprop, x, w, y);
    return relu(y + bias.reshape({s.O, 1, 1}));
  };
  const auto ember = [&] {
    if (!cuda::conv2d_implicit_gemm(y, x, w, bias, win, 1, true))
      throw std::runtime_error("the implicit-GEMM kernel declined the shape");
  };
  if (!cudnn) {
    const Tensor ref = peer();
    ember();
    if (!agrees_with_cudnn(state, y, ref)) return;
  }
  time_gpu(state, [&] {
    if (cudnn)
      peer();
    else
      ember();
  });
  bench::set_flops(state, s.flops());
}

void register_cases() {
  std::vector<Shape> shapes;
  if (bench::quick_mode()) {
    shapes = {{2, 16, 16, 9, 9, 3, 1, 1}, {2, 16, 8, 7, 7, 1, 1, 0}, {2, 8, 16, 9, 9, 3, 2, 1}};
  } else {
    shapes = {{32, 64, 64, 56, 56, 3, 1, 1},   {32, 128, 128, 28, 28, 3, 1, 1},
              {32, 256, 256, 14, 14, 3, 1, 1}, {32, 512, 512, 7, 7, 3, 1, 1},
              {32, 256, 64, 56, 56, 1, 1, 0},  {32, 128, 256, 56, 56, 3, 2, 1},
              {32, 3, 64, 224, 224, 7, 2, 3}};
  }
  for (const Shape& s : shapes)
    for (Pass pass : {Pass::kFprop, Pass::kDgrad, Pass::kWgrad}) {
      const std::string key = std::string("conv/") + pass_name(pass) + "/" + s.name() + "/";
      for (bool cudnn : {false, true})
        add_gpu_case(key + (cudnn ? "cudnn" : "ember"),
                     [s, pass, cudnn](benchmark::State& st) { bm_conv(st, s, pass, cudnn); });
      // The pass on wgmma (set_conv_variant(1); elsewhere than sm_90a the mma.sync kernel
      // runs), as a peer of the default.
      add_gpu_case(key + "ember_wgmma",
                   [s, pass](benchmark::State& st) { bm_conv(st, s, pass, false, 1); });
    }
  // The fused bias + ReLU forward on two of the shapes (the first and the fourth: the largest
  // output and the smallest).
  for (const Shape& s : {shapes[0], shapes[3 % shapes.size()]}) {
    const std::string key = "conv/fprop_bias_relu/" + s.name() + "/";
    for (bool cudnn : {false, true})
      add_gpu_case(key + (cudnn ? "cudnn_then_bias_relu" : "ember"),
                   [s, cudnn](benchmark::State& st) { bm_conv_bias_relu(st, s, cudnn); });
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (!ember::cuda::is_available()) {
    std::printf("bench_cuda_conv: skipped (no CUDA GPU)\n");
    return 0;
  }
  try {
    bench::g_flush = std::make_unique<bench::L2Flush>();
    cudnnHandle_t h = nullptr;
    check_cudnn(cudnnCreate(&h), "cudnnCreate");
    g_cudnn.reset(h);
    benchmark::AddCustomContext("cudnn", std::to_string(cudnnGetVersion()) +
                                             " (legacy API, heuristic _v7 algorithm, bf16 NCHW)");
    benchmark::AddCustomContext("timing",
                                "CUDA events, L2 flushed by a 256 MiB read before each run");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda_conv: %s\n", e.what());
    return 1;
  }
  register_cases();
  const int rc = ember::bench::ratio_main(argc, argv);
  try {
    ember::cuda::synchronize();  // a sticky CUDA error of the last case surfaces here
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda_conv: %s\n", e.what());
    g_failed = true;
  }
  g_cudnn.reset();
  bench::g_flush.reset();
  return rc != 0 ? rc : (g_failed ? 1 : 0);
}
