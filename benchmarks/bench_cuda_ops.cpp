// Short GPU benchmarks of the CUDA backend's straightforward kernels (issue 8; issue 9 adds the
// tensor-core suite). Each case calls the cuda:: kernel its op launches (src/core/kernels.hpp)
// into preallocated outputs on the current stream, so the time is the GPU's work, not the op's
// allocation or autograd bookkeeping.
//
// Timing (benchmarks/cuda_bench.hpp): CUDA events around one run after two warm-up runs, the L2
// flushed by a 256 MiB read before each timed run, 5 repetitions interleaved at random, the
// median reported.
//
// Memory-bound cases (float32), reported as bytes/s of the minimal traffic: each tensor the
// kernel must read or write, counted once per pass (add 12 B per element, unary 8 B, AdamW 28 B,
// cross-entropy forward + backward reads the logits twice and writes their gradient: 12 B per
// logit plus the per-row tensors). The ceiling of a case moving B bytes is
// "memcpy_d2d/<B>/probe": one device-to-device cudaMemcpyAsync of B / 2 bytes (B bytes of DRAM
// traffic) on the same stream; the table's last column is Ember's fraction of it. A case that
// mostly reads (the sums) may exceed 100%: a copy's mix of reads and writes is not the fastest
// pattern of every GPU.
//   add/<n>, relu/<n>, exp/<n>; bias_add/<R>x<C> (rows + a broadcast (C) bias);
//   transpose_copy/<R>x<C> (contiguous() of a transposed (C, R) view); sum_all/<n>;
//   sum_last/<R>x<C> (against peer general: the one-block-per-output kernel); sum_rows_bf16/<R>x<C>
//   (bf16 summed over rows into float32 columns, a bias gradient, against peer general: the
//   one-block-per-output kernel); softmax/<R>x<C>; layer_norm/<R>x<C> (forward);
//   cross_entropy/<N>x<C> (forward with the mean's sums, then backward); cross_entropy_bf16/<N>x<C>
//   (the same on bfloat16 logits, 6 B per logit, against peer via_float32: casts around the float32
//   kernels); adamw_step/<n> (one fused AdamW step); gelu_backward_bf16/<R>x<C> (GELU's gradient in
//   one pass, against peer composite: the 17 elementwise ops it replaced); mul_scalar/<n> and
//   mul_0d_device/<n> (x * s, s a Scalar read by value or a 0-d device tensor expanded);
//   batch_norm_relu_bf16/<N>x<C>x<H>x<W>[_nhwc] (BatchNorm
//   + residual + ReLU forward and backward, bf16 NCHW or channels-last, against peer ops: the three
//   ops' kernels, and peer scalar_sums: the same kernels with the per-channel sums one value per
//   thread; PyTorch's eager peer in peer_torch_cuda.py under the same key).
//
// GEMM, float32, exact (no TF32): C (M, N) = A (M, K) B (K, N), all row-major contiguous, as
// sgemm/<M>x<N>x<K>/<impl>, reported in FLOP/s (2 M N K per run). Peers, on the same stream:
// "cublas", cublasSgemm with CUBLAS_DEFAULT_MATH (float32 FMA; TF32 only with
// CUBLAS_TF32_TENSOR_OP_MATH, which is not set), and "cublas_pedantic", CUBLAS_PEDANTIC_MATH
// (float32 compute type enforced). The ratio column is Ember / peer. Each Ember repetition first
// compares its result with cuBLAS's (counter max_rel_diff: max |ember - cublas| / max |cublas|);
// a difference above 1e-4 marks the case as an error and the program exits 1.
// sgemm_tf32/<M>x<N>x<K>/<impl>: the same products with TF32 allowed (cuda::set_allow_tf32),
// against cuBLAS with CUBLAS_TF32_TENSOR_OP_MATH; checked against pedantic float32 within 5e-3.
//
// Without a GPU (ember::cuda::is_available() false) the program prints
// "bench_cuda_ops: skipped (no CUDA GPU)" and exits 0. Quick mode (EMBER_BENCH_QUICK=1): tiny
// sizes, one repetition of two runs. --ember_summary=FILE writes the ratio table as JSON.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "core/kernels.hpp"
#include "core/ops/derivatives.hpp"
#include "cuda_bench.hpp"
#include "ember/ember.hpp"

namespace {

using namespace ember;
using bench::add_gpu_case;
using bench::check_cuda;
using bench::g_failed;
using bench::gpu;
using bench::stream_of;
using bench::time_gpu;

constexpr double kGemmTolerance = 1e-4;  // max |ember - cublas| / max |cublas|

void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string(what) + " failed: " + cublasGetStatusString(s));
}

// ---- cuBLAS ----

/// A cuBLAS handle with a fixed math mode (RAII).
class CublasHandle {
 public:
  explicit CublasHandle(cublasMath_t mode) {
    check_cublas(cublasCreate(&handle_), "cublasCreate");
    check_cublas(cublasSetMathMode(handle_, mode), "cublasSetMathMode");
  }
  ~CublasHandle() { cublasDestroy(handle_); }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  cublasHandle_t get() const { return handle_; }

 private:
  cublasHandle_t handle_ = nullptr;
};

/// A new cuBLASLt handle, owned.
std::unique_ptr<std::remove_pointer_t<cublasLtHandle_t>, decltype(&cublasLtDestroy)> lt_handle() {
  cublasLtHandle_t h = nullptr;
  check_cublas(cublasLtCreate(&h), "cublasLtCreate");
  return {h, &cublasLtDestroy};
}

/// The program's cuBLAS handles, made in main once a GPU is known to exist and released before it
/// returns (not at static destruction, when the CUDA runtime may be gone).
struct GpuResources {
  CublasHandle cublas_default{CUBLAS_DEFAULT_MATH};
  CublasHandle cublas_pedantic{CUBLAS_PEDANTIC_MATH};
  CublasHandle cublas_tf32{CUBLAS_TF32_TENSOR_OP_MATH};
  decltype(lt_handle()) cublas_lt = lt_handle();
};
std::unique_ptr<GpuResources> g_gpu;

/// c (1, M, N) = a (1, M, K) @ b (1, K, N), row-major, on the current stream. cuBLAS is
/// column-major, so it computes c^T (N, M) = b^T (N, K) a^T (K, M) over the same memory.
void cublas_sgemm(const CublasHandle& h, const Tensor& c, const Tensor& a, const Tensor& b,
                  int64_t M, int64_t N, int64_t K) {
  check_cublas(cublasSetStream(h.get(), stream_of(cuda::current_stream())), "cublasSetStream");
  const float alpha = 1.0f, beta = 0.0f;
  check_cublas(
      cublasSgemm(h.get(), CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(N), static_cast<int>(M),
                  static_cast<int>(K), &alpha, static_cast<const float*>(b.data_ptr()),
                  static_cast<int>(N), static_cast<const float*>(a.data_ptr()), static_cast<int>(K),
                  &beta, static_cast<float*>(c.data_ptr()), static_cast<int>(N)),
      "cublasSgemm");
}

// ---- memory-bound cases ----

/// case key -> its ceiling case (memcpy_d2d/<bytes>), filled at registration.
std::map<std::string, std::string>& memory_ceilings() {
  static std::map<std::string, std::string> m;
  return m;
}

/// The ceiling: one device-to-device cudaMemcpyAsync of bytes / 2 (bytes of traffic).
void bm_memcpy(benchmark::State& state, int64_t bytes) {
  const Tensor src = zeros({bytes / 2}, gpu(kUInt8)), dst = empty({bytes / 2}, gpu(kUInt8));
  const cudaStream_t s = stream_of(cuda::current_stream());
  time_gpu(state, [&] {
    check_cuda(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), static_cast<size_t>(bytes / 2),
                               cudaMemcpyDeviceToDevice, s),
               "cudaMemcpyAsync");
  });
  state.SetBytesProcessed(state.iterations() * bytes);
}

/// Registers `key`/ember, which moves `bytes` per run, and its memcpy ceiling (once per size).
/// `make` builds the inputs and returns the run.
void add_memory_case(const std::string& key, int64_t bytes,
                     std::function<std::function<void()>()> make) {
  static std::set<int64_t> probes;
  const std::string ceiling = "memcpy_d2d/" + std::to_string(bytes);
  memory_ceilings()[key] = ceiling;
  if (probes.insert(bytes).second)
    add_gpu_case(ceiling + "/probe", [bytes](benchmark::State& s) { bm_memcpy(s, bytes); });
  add_gpu_case(key + "/ember", [bytes, make](benchmark::State& s) {
    const std::function<void()> run = make();
    time_gpu(s, run);
    s.SetBytesProcessed(s.iterations() * bytes);
  });
}

/// The sum over `dim` of make()'s (x, out) as memory case `key`, and as its peer `key`/general:
/// the general reduction kernel, one block per output (set_reduce_layout_variant(0)).
template <class Make>
void add_sum_cases(const std::string& key, int64_t bytes, int64_t dim, Make make) {
  add_memory_case(key, bytes, [make, dim] {
    auto [x, out] = make();
    return std::function<void()>([x, out, dim] {
      const std::vector<int64_t> dims = {dim};
      cuda::reduce(out, x, dims, ReduceOp::Sum);
    });
  });
  add_gpu_case(key + "/general", [make, bytes, dim](benchmark::State& s) {
    auto [x, out] = make();
    time_gpu(s, [x, out, dim] {
      const std::vector<int64_t> dims = {dim};
      cuda::set_reduce_layout_variant(0);
      cuda::reduce(out, x, dims, ReduceOp::Sum);
      cuda::set_reduce_layout_variant(-1);
    });
    s.SetBytesProcessed(s.iterations() * bytes);
  });
}

std::string shape_name(int64_t rows, int64_t cols) {
  return std::to_string(rows) + "x" + std::to_string(cols);
}

void register_memory_cases() {
  const bool quick = bench::quick_mode();
  const std::vector<int64_t> sizes =
      quick ? std::vector<int64_t>{4096} : std::vector<int64_t>{int64_t{1} << 24, int64_t{1} << 26};
  for (int64_t n : sizes) {
    const std::string ns = "/" + std::to_string(n);
    add_memory_case("add" + ns, 12 * n, [n] {
      Generator gen(1);
      Tensor a = randn({n}, gen, gpu()), b = randn({n}, gen, gpu()), out = empty({n}, gpu());
      return std::function<void()>(
          [a, b, out] { cuda::binary(out, a, b, BinaryOp::Add, Scalar(1.0)); });
    });
    // x * s with s a Scalar (a 0-d CPU tensor, read by value) and with s a 0-d device tensor
    // expanded (each thread loads its one address): both one vector pass over x.
    for (const bool on_device : {false, true}) {
      add_memory_case(
          std::string(on_device ? "mul_0d_device" : "mul_scalar") + ns, 8 * n, [n, on_device] {
            Generator gen(4);
            Tensor x = randn({n}, gen, gpu()), out = empty({n}, gpu());
            Tensor s = scalar_tensor(0.5, on_device ? gpu() : TensorOptions(kFloat32));
            Tensor s_n = s.expand({n});
            return std::function<void()>(
                [x, s_n, out] { cuda::binary(out, x, s_n, BinaryOp::Mul, Scalar(1.0)); });
          });
    }
    for (const auto& [name, op] : {std::pair<const char*, UnaryOp>{"relu", UnaryOp::Relu},
                                   std::pair<const char*, UnaryOp>{"exp", UnaryOp::Exp}}) {
      const UnaryOp u = op;
      add_memory_case(name + ns, 8 * n, [n, u] {
        Generator gen(2);
        Tensor x = randn({n}, gen, gpu()), out = empty({n}, gpu());
        return std::function<void()>([x, out, u] { cuda::unary(out, x, u, 0.0, 0.0); });
      });
    }
  }

  // rows + bias: GPT-2's MLP activations (B*T = 8192, 4C = 3072) plus a (3072) bias.
  {
    const int64_t R = quick ? 8 : 8192, C = quick ? 96 : 3072;
    add_memory_case("bias_add/" + shape_name(R, C), 4 * (2 * R * C + C), [R, C] {
      Generator gen(3);
      Tensor x = randn({R, C}, gen, gpu()), bias = randn({C}, gen, gpu());
      Tensor out = empty({R, C}, gpu());
      Tensor bias_rows = bias.expand({R, C});  // stride 0 over the rows, as the op passes it
      return std::function<void()>(
          [x, bias_rows, out] { cuda::binary(out, x, bias_rows, BinaryOp::Add, Scalar(1.0)); });
    });
  }
  // contiguous() of a transposed view: (R, C) out from a contiguous (C, R) tensor read transposed.
  {
    const int64_t R = quick ? 64 : 4096, C = quick ? 48 : 4096;
    add_memory_case("transpose_copy/" + shape_name(R, C), 8 * R * C, [R, C] {
      Generator gen(4);
      Tensor x = randn({C, R}, gen, gpu()), out = empty({R, C}, gpu());
      Tensor xt = x.t();
      return std::function<void()>([xt, out] { cuda::copy(out, xt); });
    });
  }
  // sums: over every element, and over the last dim of (R, C).
  {
    const int64_t n = quick ? 4096 : int64_t{1} << 24;
    add_memory_case("sum_all/" + std::to_string(n), 4 * n + 4, [n] {
      Generator gen(5);
      Tensor x = randn({n}, gen, gpu()), out = empty({1}, gpu());
      return std::function<void()>([x, out] {
        const std::vector<int64_t> dims = {0};
        cuda::reduce(out, x, dims, ReduceOp::Sum);
      });
    });
    // Peer "general": the one-block-per-output kernel where the row kernel gives each output a
    // warp.
    const int64_t R = quick ? 1024 : 16384, C = quick ? 64 : 1024;
    add_sum_cases("sum_last/" + shape_name(R, C), 4 * (R * C + R), 1, [R, C] {
      Generator gen(6);
      return std::make_pair(randn({R, C}, gen, gpu()), empty({R, 1}, gpu()));
    });
  }
  // Sums over the rows of contiguous columns: a Linear's bias gradient, bf16 dH (B T, N) summed
  // into float32 (N), at GPT-2's MLP widths; peer "general": the one-block-per-output kernel,
  // which reads each column with a stride of a row.
  for (const int64_t C : quick ? std::vector<int64_t>{64} : std::vector<int64_t>{768, 3072}) {
    const int64_t R = quick ? 96 : 8192;
    add_sum_cases("sum_rows_bf16/" + shape_name(R, C), 2 * R * C + 4 * C, 0, [R, C] {
      Generator gen(16);
      return std::make_pair(randn({R, C}, gen, gpu()).to(kBFloat16), empty({1, C}, gpu()));
    });
  }
  // softmax over rows of 1024 and of GPT-2's vocabulary (50257).
  for (const auto& [R, C] :
       quick ? std::vector<std::pair<int64_t, int64_t>>{{4, 1024}, {2, 50257}}
             : std::vector<std::pair<int64_t, int64_t>>{{16384, 1024}, {1024, 50257}}) {
    const int64_t rows = R, cols = C;
    add_memory_case("softmax/" + shape_name(rows, cols), 8 * rows * cols, [rows, cols] {
      Generator gen(7);
      Tensor x = randn({rows, cols}, gen, gpu()) * 2.0, out = empty({rows, cols}, gpu());
      return std::function<void()>([x, out] { cuda::softmax(out, x, 1, /*log=*/false); });
    });
  }
  // layer_norm forward over rows of 768 (GPT-2 small, B*T rows): reads x, weight, bias; writes
  // y, mean, rstd.
  {
    const int64_t R = quick ? 4 : 32768, C = 768;
    add_memory_case("layer_norm/" + shape_name(R, C), 4 * (2 * R * C + 2 * C + 2 * R), [R, C] {
      Generator gen(8);
      Tensor x = randn({R, C}, gen, gpu()), w = randn({C}, gen, gpu()), b = randn({C}, gen, gpu());
      Tensor y = empty({R, C}, gpu()), mean = empty({R}, gpu()), rstd = empty({R}, gpu());
      return std::function<void()>([=] { cuda::layer_norm_forward(y, mean, rstd, x, w, b, 1e-5); });
    });
  }
  // cross_entropy forward (with the two sums "mean" reads) + backward, GPT-2's classifier.
  // Forward reads logits and targets and writes loss, max, log_sum per row; backward reads
  // logits, targets, max, log_sum and writes dlogits: 12 B per logit + 36 B per row.
  {
    const int64_t N = quick ? 4 : 4096, C = quick ? 1000 : 50257;
    add_memory_case("cross_entropy/" + shape_name(N, C), 12 * N * C + 36 * N, [N, C] {
      Generator gen(9);
      Tensor x = randn({N, C}, gen, gpu()) * 2.0, target = randint(0, C, {N}, gen, gpu(kInt64));
      Tensor loss = empty({N}, gpu()), max = empty({N}, gpu()), log_sum = empty({N}, gpu());
      Tensor sums = empty({2}, gpu(kFloat64)), dx = empty({N, C}, gpu());
      Tensor dloss = full({1}, 1.0 / static_cast<double>(N), gpu());  // d mean / d loss[r]
      const Tensor no_weight;
      return std::function<void()>([=] {
        cuda::cross_entropy_forward(loss, max, log_sum, sums, x, target, no_weight,
                                    /*ignore_index=*/-100, /*label_smoothing=*/0.0);
        cuda::cross_entropy_backward(dx, dloss, x, target, no_weight, max, log_sum, -100, 0.0);
      });
    });
  }
  // The same classifier on bfloat16 logits, as a bf16 autocast step runs it: the fused kernels
  // reading 16-bit logits and writing a 16-bit gradient, computing in float32 (6 B per logit +
  // 36 B per row). Peer "via_float32": what autocast's cast to float32 around the float32 kernels
  // costs (cast up, forward, backward, cast the gradient down), the path before 16-bit logits
  // were read as they are. Both report the same byte count, so Ember / peer is the time ratio.
  {
    const int64_t N = quick ? 4 : 8192, C = quick ? 1000 : 50304;
    const int64_t bytes = 6 * N * C + 36 * N;
    struct Classifier {
      Tensor x, target, loss, max, log_sum, sums, dx, dloss;
      Classifier(int64_t n, int64_t c) {
        Generator gen(11);
        x = (randn({n, c}, gen, gpu()) * 2.0).to(kBFloat16);
        target = randint(0, c, {n}, gen, gpu(kInt64));
        loss = empty({n}, gpu());
        max = empty({n}, gpu());
        log_sum = empty({n}, gpu());
        sums = empty({2}, gpu(kFloat64));
        dx = empty({n, c}, gpu(kBFloat16));
        dloss = full({1}, 1.0 / static_cast<double>(n), gpu());
      }
      void run(const Tensor& logits, const Tensor& dlogits) const {
        cuda::cross_entropy_forward(loss, max, log_sum, sums, logits, target, Tensor(), -100, 0.0);
        cuda::cross_entropy_backward(dlogits, dloss, logits, target, Tensor(), max, log_sum, -100,
                                     0.0);
      }
    };
    const std::string key = "cross_entropy_bf16/" + shape_name(N, C);
    add_memory_case(key, bytes, [N, C] {
      auto k = std::make_shared<Classifier>(N, C);
      return std::function<void()>([k] { k->run(k->x, k->dx); });
    });
    add_gpu_case(key + "/via_float32", [N, C, bytes](benchmark::State& s) {
      auto k = std::make_shared<Classifier>(N, C);
      Tensor x32 = empty({N, C}, gpu()), dx32 = empty({N, C}, gpu());
      time_gpu(s, [k, x32, dx32] {
        cuda::copy(x32, k->x);
        k->run(x32, dx32);
        cuda::copy(k->dx, dx32);
      });
      s.SetBytesProcessed(s.iterations() * bytes);
    });
  }
  // GELU's gradient (tanh form) at the GPT-2 MLP's pre-activation (B T = 8192, 4 C = 3072),
  // bf16: one activation_backward pass reading dy and x and writing dx (6 B per element), against
  // peer "composite": the same formula as 17 elementwise ops, detail::gelu_grad (what every
  // first-order backward ran before, and create_graph still runs). Both report the fused pass's
  // bytes, so Ember / peer is the time ratio.
  {
    const int64_t R = quick ? 64 : 8192, C = quick ? 96 : 3072;
    const std::string key = "gelu_backward_bf16/" + shape_name(R, C);
    struct Act {
      Tensor x, dy, dx;
      Act(int64_t r, int64_t c) {
        Generator gen(12);
        x = (randn({r, c}, gen, gpu()) * 2.0).to(kBFloat16);
        dy = randn({r, c}, gen, gpu()).to(kBFloat16);
        dx = empty({r, c}, gpu(kBFloat16));
      }
    };
    add_memory_case(key, 6 * R * C, [R, C] {
      auto a = std::make_shared<Act>(R, C);
      return std::function<void()>(
          [a] { cuda::activation_backward(a->dx, a->dy, a->x, ActGrad::GeluTanh, 0, 0); });
    });
    add_gpu_case(key + "/composite", [R, C](benchmark::State& s) {
      auto a = std::make_shared<Act>(R, C);
      time_gpu(s, [a] {
        NoGradGuard no_grad;
        (void)(a->dy *
               ember::detail::gelu_grad(a->x, /*tanh_form=*/true));  // the library's composite
      });
      s.SetBytesProcessed(s.iterations() * 6 * R * C);
    });
  }
  // A training-mode BatchNorm with the residual add and ReLU after it, forward and backward, at
  // the output of ResNet-50's first stage (N 64, C 256, 56 x 56), bf16 channels-last (and NCHW,
  // without the _nhwc suffix), float32
  // weight, bias and running statistics: batch_norm_relu's kernels, which read x twice and the
  // residual once and write z and one bit per value forward, read dz, x and the bits twice and
  // write dx and the residual's gradient backward (163/8 B per value), against peer "ops":
  // batch_norm's kernels, then an add and a relu kernel, and backward relu's threshold_backward
  // and batch_norm's backward (what the three ops run). Both report the fused kernels' bytes, so
  // Ember / peer is the time ratio.
  for (const MemoryFormat format : {MemoryFormat::ChannelsLast, MemoryFormat::Contiguous}) {
    const int64_t N = quick ? 2 : 64, C = quick ? 16 : 256, H = quick ? 6 : 56;
    const int64_t n = N * C * H * H;
    const bool nhwc = format == MemoryFormat::ChannelsLast;
    const std::string key = "batch_norm_relu_bf16/" + std::to_string(N) + "x" + std::to_string(C) +
                            "x" + std::to_string(H) + "x" + std::to_string(H) +
                            (nhwc ? "_nhwc" : "");
    struct Block {
      Tensor x, r, dz, w, b, rm, rv, z, y, g, mask, mean, invstd, var, dx, dw, db, dr;
      RunningStats running;
      Block(int64_t n_, int64_t c, int64_t h, MemoryFormat f) {
        Generator gen(13);
        const auto laid_out = [&](double scale) {
          return (randn({n_, c, h, h}, gen, gpu()) * scale).to(kBFloat16).contiguous(f);
        };
        x = laid_out(2.0), r = laid_out(1.0), dz = laid_out(1.0);
        w = randn({c}, gen, gpu()), b = randn({c}, gen, gpu());
        rm = zeros({c}, gpu()), rv = ones({c}, gpu());
        const auto like = [&] { return empty_like(x); };
        z = like(), y = like(), g = like(), dx = like(), dr = like();
        mask = empty({(x.numel() + 31) / 32}, gpu(kInt32));
        mean = empty({c}, gpu()), invstd = empty({c}, gpu()), var = empty({c}, gpu());
        dw = empty({c}, gpu()), db = empty({c}, gpu());
        running.mean = rm, running.var = rv, running.momentum = 0.1;
        running.unbias = static_cast<double>(n_ * h * h) / static_cast<double>(n_ * h * h - 1);
      }
    };
    const int64_t bytes = n * 163 / 8;
    add_memory_case(key, bytes, [N, C, H, format] {
      auto k = std::make_shared<Block>(N, C, H, format);
      return std::function<void()>([k] {
        cuda::batch_norm_relu_forward(k->z, k->mask, k->mean, k->invstd, k->var, k->x, k->w, k->b,
                                      k->r, 1e-5, k->running);
        cuda::batch_norm_relu_backward(k->dx, k->dw, k->db, k->dr, k->dz, k->x, k->mask, k->mean,
                                       k->invstd, k->w);
      });
    });
    add_gpu_case(key + "/ops", [N, C, H, format, bytes](benchmark::State& s) {
      auto k = std::make_shared<Block>(N, C, H, format);
      time_gpu(s, [k] {
        cuda::batch_norm_forward(k->y, k->mean, k->invstd, k->var, k->x, k->w, k->b, 1e-5,
                                 k->running);
        cuda::binary(k->y, k->y, k->r, BinaryOp::Add, Scalar(1.0));
        cuda::unary(k->z, k->y, UnaryOp::Relu, 0.0, 0.0);
        cuda::activation_backward(k->g, k->dz, k->z, ActGrad::Relu, 0, 0);
        cuda::batch_norm_backward(k->dx, k->dw, k->db, k->g, k->x, k->mean, k->invstd, k->w);
      });
      s.SetBytesProcessed(s.iterations() * bytes);
    });
    // Peer "scalar_sums": the same fused kernels with the per-channel sums one value per thread
    // (set_norm_sums_variant(0)); they differ from the 16-byte chunks in the column layout only
    // (channels-last), so in NCHW the ratio is about 1.
    add_gpu_case(key + "/scalar_sums", [N, C, H, format, bytes](benchmark::State& s) {
      auto k = std::make_shared<Block>(N, C, H, format);
      time_gpu(s, [k] {
        cuda::set_norm_sums_variant(0);
        cuda::batch_norm_relu_forward(k->z, k->mask, k->mean, k->invstd, k->var, k->x, k->w, k->b,
                                      k->r, 1e-5, k->running);
        cuda::batch_norm_relu_backward(k->dx, k->dw, k->db, k->dr, k->dz, k->x, k->mask, k->mean,
                                       k->invstd, k->w);
        cuda::set_norm_sums_variant(-1);
      });
      s.SetBytesProcessed(s.iterations() * bytes);
    });
  }
  // One fused AdamW step (lr 1e-3, betas 0.9/0.999, eps 1e-8, weight decay 1e-2, step 10):
  // reads p, g, m, v; writes p, m, v. One parameter of n elements, then `count` parameters of
  // n / count elements each in one multi-tensor call (a model's many small tensors).
  for (const int64_t count : {int64_t{1}, int64_t{96}}) {
    const int64_t n = quick ? 96 * 64 : int64_t{96} << 17;
    add_memory_case("adamw_step/" + std::to_string(count) + "x" + std::to_string(n / count), 28 * n,
                    [n, count] {
                      Generator gen(10);
                      const double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, wd = 1e-2,
                                   t = 10;
                      std::vector<AdamStepTensors> params;
                      for (int64_t i = 0; i < count; ++i) {
                        AdamStepTensors a;
                        a.param = randn({n / count}, gen, gpu());
                        a.grad = randn({n / count}, gen, gpu()) * 1e-2;
                        a.exp_avg = zeros({n / count}, gpu());
                        a.exp_avg_sq = zeros({n / count}, gpu());
                        a.step_size = lr / (1 - std::pow(beta1, t));
                        a.bias_correction2_sqrt = std::sqrt(1 - std::pow(beta2, t));
                        params.push_back(a);
                      }
                      AdamStepOptions options;
                      options.beta1 = beta1;
                      options.beta2 = beta2;
                      options.eps = eps;
                      options.decay_scale = 1 - lr * wd;
                      return std::function<void()>([=] { cuda::adam_step(params, options); });
                    });
  }
}

// ---- GEMM ----

enum class GemmImpl { Ember, Cublas, CublasPedantic, EmberTf32, CublasTf32 };

constexpr double kTf32Tolerance = 5e-3;  // TF32 against float32: max |diff| / max |ref|

void bm_sgemm(benchmark::State& state, int64_t M, int64_t N, int64_t K, GemmImpl impl) {
  Generator gen(11);
  const Tensor a = randn({1, M, K}, gen, gpu()), b = randn({1, K, N}, gen, gpu());
  const Tensor c = empty({1, M, N}, gpu());
  const bool ember = impl == GemmImpl::Ember || impl == GemmImpl::EmberTf32;
  const bool previous_tf32 = cuda::allow_tf32();
  cuda::set_allow_tf32(impl == GemmImpl::EmberTf32);
  if (ember) {
    // The result against cuBLAS (pedantic float32) before timing.
    const Tensor ref = empty({1, M, N}, gpu());
    cuda::gemm(c, a, b, Scalar(1.0), Scalar(0.0));
    cublas_sgemm(g_gpu->cublas_pedantic, ref, a, b, M, N, K);
    const double diff = (c - ref).abs().max().item<double>();
    const double scale = ref.abs().max().item<double>();
    const double rel = scale > 0 ? diff / scale : diff;
    state.counters["max_rel_diff"] = rel;
    const double tolerance = impl == GemmImpl::EmberTf32 ? kTf32Tolerance : kGemmTolerance;
    if (!(rel <= tolerance)) {
      g_failed = true;
      cuda::set_allow_tf32(previous_tf32);
      state.SkipWithError(
          ("Ember's gemm differs from cuBLAS: max |diff| / max |ref| = " + std::to_string(rel))
              .c_str());
      return;
    }
  }
  time_gpu(state, [&] {
    switch (impl) {
      case GemmImpl::Ember:
      case GemmImpl::EmberTf32:
        cuda::gemm(c, a, b, Scalar(1.0), Scalar(0.0));
        break;
      case GemmImpl::Cublas:
        cublas_sgemm(g_gpu->cublas_default, c, a, b, M, N, K);
        break;
      case GemmImpl::CublasPedantic:
        cublas_sgemm(g_gpu->cublas_pedantic, c, a, b, M, N, K);
        break;
      case GemmImpl::CublasTf32:
        cublas_sgemm(g_gpu->cublas_tf32, c, a, b, M, N, K);
        break;
    }
  });
  cuda::set_allow_tf32(previous_tf32);
  bench::set_flops(state,
                   2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K));
}

void register_gemm_cases() {
  struct Shape {
    int64_t M, N, K;
  };
  std::vector<Shape> shapes;
  if (bench::quick_mode()) {
    shapes = {{64, 64, 64}, {33, 47, 29}};
  } else {
    for (int64_t n : {1024, 2048, 4096}) shapes.push_back({n, n, n});
    shapes.push_back({8192, 3072, 768});  // GPT-2 MLP up-projection: (B*T, C) @ (C, 4C)
  }
  for (const Shape& sh : shapes) {
    const std::string key = "sgemm/" + std::to_string(sh.M) + "x" + std::to_string(sh.N) + "x" +
                            std::to_string(sh.K) + "/";
    const std::pair<GemmImpl, const char*> impls[] = {
        {GemmImpl::Ember, "ember"},
        {GemmImpl::Cublas, "cublas"},
        {GemmImpl::CublasPedantic, "cublas_pedantic"}};
    for (const auto& [impl, name] : impls) {
      const GemmImpl i = impl;
      add_gpu_case(key + name, [sh, i](benchmark::State& s) { bm_sgemm(s, sh.M, sh.N, sh.K, i); });
    }
    // TF32 (cuda::set_allow_tf32) against cuBLAS with CUBLAS_TF32_TENSOR_OP_MATH.
    const std::string tf32_key = "sgemm_tf32/" + key.substr(std::string("sgemm/").size());
    for (const auto& [impl, name] :
         {std::pair<GemmImpl, const char*>{GemmImpl::EmberTf32, "ember"},
          std::pair<GemmImpl, const char*>{GemmImpl::CublasTf32, "cublas"}}) {
      const GemmImpl i = impl;
      add_gpu_case(tf32_key + name,
                   [sh, i](benchmark::State& s) { bm_sgemm(s, sh.M, sh.N, sh.K, i); });
    }
  }
}

// ---- tensor-core GEMM (bfloat16) ----
//
// hgemm_bf16/<M>x<N>x<K>/<impl>: out (M, N) = x (M, K) @ w^T for a Linear weight w (N, K), bf16
// in and out, float32 accumulation. "ember" is cuda::gemm_tc with its automatic tile
// configuration ("ember_config0" .. "ember_config6", each forced, listed as peers), "cublas" cublasGemmEx
// (CUBLAS_COMPUTE_32F, default algorithm), "cublaslt" cublasLtMatmul (the heuristic's first
// algorithm, 32 MiB of workspace). hgemm_bf16_bias_gelu/...: the same product then
// + bias (N) and GELU (tanh form): "ember" fused in gemm_tc's epilogue, "cublas" cublasGemmEx
// followed by Ember's bias-add and GELU kernels (what an unfused framework runs), "cublaslt"
// with both fused in cuBLASLt's epilogue (CUBLASLT_EPILOGUE_GELU_BIAS; its result is checked
// against the cublas path's first). Each Ember
// repetition first compares its result with cuBLAS's (max |diff| / max |ref| <= 1e-2).
// The two other products of a Linear layer's backward, at GPT-2's MLP shapes (B*T = 8192):
// hgemm_bf16_nn/<M>x<N>x<K> (dX = dY W: A (M, K) and B (K, N) both row-major, B N-contiguous)
// and hgemm_bf16_tn/... (dW = dY^T X: A the transpose of a stored (K, M), i.e. M-contiguous;
// B (K, N) row-major). "ember" is cuda::gemm, as the ops call it (gemm_tc where it reads the
// layout, else contiguous copies first), "cublas" cublasGemmEx with the matching transposes.
// hgemm_fp16/<n>x<n>x<n>/{ember,cublas}: the hgemm_bf16 product in float16 at 4096 and 8192.
// hgemm_bf16_f32out/...: the hgemm_bf16 product stored as float32 (the output cast).

constexpr double kHgemmTolerance = 1e-2;

/// out (M, N) = x (M, K) @ w (N, K)^T in bf16 through cublasGemmEx on the current stream
/// (column-major: out^T (N, M) = w (N, K) x^T); out bf16, or float32 (C of CUDA_R_32F).
void cublas_hgemm(const CublasHandle& h, const Tensor& out, const Tensor& x, const Tensor& w,
                  int64_t M, int64_t N, int64_t K) {
  check_cublas(cublasSetStream(h.get(), stream_of(cuda::current_stream())), "cublasSetStream");
  const float alpha = 1.0f, beta = 0.0f;
  const cudaDataType dt = x.dtype() == kFloat16 ? CUDA_R_16F : CUDA_R_16BF;
  const cudaDataType ct = out.dtype() == kFloat32 ? CUDA_R_32F : dt;  // the output cast
  check_cublas(
      cublasGemmEx(h.get(), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(N), static_cast<int>(M),
                   static_cast<int>(K), &alpha, w.data_ptr(), dt, static_cast<int>(K),
                   x.data_ptr(), dt, static_cast<int>(K), &beta, out.data_ptr(), ct,
                   static_cast<int>(N), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
      "cublasGemmEx");
}

/// One cuBLASLt product, out (M, N) = x (M, K) @ w (N, K)^T in bf16 with float32 compute, with
/// bias (N) and GELU fused into its epilogue (CUBLASLT_EPILOGUE_GELU_BIAS) when `bias` is given:
/// the descriptors and the heuristic's first algorithm chosen once, 32 MiB of workspace. As for
/// cublasGemmEx, cuBLASLt is column-major: D^T (N, M) = w (N, K) x^T, the bias along D's rows.
class LtGemm {
 public:
  LtGemm(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor* bias, int64_t M,
         int64_t N, int64_t K)
      : out_(out), x_(x), w_(w), workspace_(empty({kWorkspace}, gpu(kUInt8))) {
    check_cublas(cublasLtMatmulDescCreate(&op_, CUBLAS_COMPUTE_32F, CUDA_R_32F),
                 "cublasLtMatmulDescCreate");
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    set(CUBLASLT_MATMUL_DESC_TRANSA, ta);
    set(CUBLASLT_MATMUL_DESC_TRANSB, tb);
    if (bias) {
      const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_GELU_BIAS;
      const void* bias_ptr = bias->data_ptr();
      const cudaDataType_t bias_type = CUDA_R_16BF;
      set(CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue);
      set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias_ptr);
      set(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, bias_type);
    }
    const auto u = [](int64_t v) { return static_cast<uint64_t>(v); };
    check_cublas(cublasLtMatrixLayoutCreate(&a_, CUDA_R_16BF, u(K), u(N), K), "layout A");
    check_cublas(cublasLtMatrixLayoutCreate(&b_, CUDA_R_16BF, u(K), u(M), K), "layout B");
    check_cublas(cublasLtMatrixLayoutCreate(&d_, CUDA_R_16BF, u(N), u(M), N), "layout D");
    check_cublas(cublasLtMatmulPreferenceCreate(&pref_), "cublasLtMatmulPreferenceCreate");
    const size_t ws = kWorkspace;
    check_cublas(cublasLtMatmulPreferenceSetAttribute(
                     pref_, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws),
                 "cublasLtMatmulPreferenceSetAttribute");
    int found = 0;
    check_cublas(cublasLtMatmulAlgoGetHeuristic(g_gpu->cublas_lt.get(), op_, a_, b_, d_, d_,
                                                pref_, 1, &algo_, &found),
                 "cublasLtMatmulAlgoGetHeuristic");
    if (found < 1) throw std::runtime_error("cuBLASLt has no algorithm for this product");
  }
  ~LtGemm() {
    cublasLtMatmulPreferenceDestroy(pref_);
    cublasLtMatrixLayoutDestroy(d_);
    cublasLtMatrixLayoutDestroy(b_);
    cublasLtMatrixLayoutDestroy(a_);
    cublasLtMatmulDescDestroy(op_);
  }
  LtGemm(const LtGemm&) = delete;
  LtGemm& operator=(const LtGemm&) = delete;

  void run() const {
    const float alpha = 1.0f, beta = 0.0f;
    check_cublas(cublasLtMatmul(g_gpu->cublas_lt.get(), op_, &alpha, w_.data_ptr(), a_,
                                x_.data_ptr(), b_, &beta, out_.data_ptr(), d_, out_.data_ptr(), d_,
                                &algo_.algo, workspace_.data_ptr(), kWorkspace,
                                stream_of(cuda::current_stream())),
                 "cublasLtMatmul");
  }

 private:
  static constexpr int64_t kWorkspace = int64_t{32} << 20;
  template <class V>
  void set(cublasLtMatmulDescAttributes_t attr, const V& v) {
    check_cublas(cublasLtMatmulDescSetAttribute(op_, attr, &v, sizeof v),
                 "cublasLtMatmulDescSetAttribute");
  }
  Tensor out_, x_, w_, workspace_;
  cublasLtMatmulDesc_t op_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, d_ = nullptr;
  cublasLtMatmulPreference_t pref_ = nullptr;
  cublasLtMatmulHeuristicResult_t algo_{};
};

/// Whether `got` agrees with cuBLAS's `want` (max |diff| / max |want| <= kHgemmTolerance, the
/// case's counter max_rel_diff); if not, the case is an error naming `what`.
bool hgemm_agrees(benchmark::State& state, const Tensor& got, const Tensor& want,
                  const char* what) {
  const Tensor ref = want.to(kFloat32);
  const double diff = (got.to(kFloat32) - ref).abs().max().item<double>();
  const double scale = ref.abs().max().item<double>();
  const double rel = scale > 0 ? diff / scale : diff;
  state.counters["max_rel_diff"] = rel;
  if (rel <= kHgemmTolerance) return true;
  g_failed = true;
  state.SkipWithError((std::string(what) + " differs from cuBLAS's: max |diff| / max |ref| = " +
                       std::to_string(rel))
                          .c_str());
  return false;
}

/// The timing common to the hgemm cases: Ember's run (ours, into out) first checked against the
/// peer's (max |diff| / max |ref| <= kHgemmTolerance, else the case is an error), then the one
/// named by `cublas` timed; 2 M N K FLOP per run. Restores the automatic tile configuration.
template <class Ours, class Peer>
void time_hgemm(benchmark::State& state, const Tensor& out, bool cublas, Ours&& ours, Peer&& peer,
                int64_t M, int64_t N, int64_t K) {
  if (!cublas) {
    ours();
    const Tensor got = out.to(kFloat32);  // a copy: the peer writes out next
    peer();
    if (!hgemm_agrees(state, got, out, "Ember's product")) {
      cuda::set_gemm_tc_config(-1);
      return;
    }
  }
  if (cublas)
    time_gpu(state, peer);
  else
    time_gpu(state, ours);
  bench::set_flops(state,
                   2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K));
  cuda::set_gemm_tc_config(-1);
}

/// The backward layouts: out (M, N) = A B with B (K, N) row-major and A (M, K) row-major (kNN)
/// or the transpose of a row-major (K, M) (kTN).
enum class Layout { kNN, kTN };

void bm_hgemm_layout(benchmark::State& state, int64_t M, int64_t N, int64_t K, Layout layout,
                     bool cublas, int config) {
  cuda::set_gemm_tc_config(config);
  Generator gen(13);
  const bool tn = layout == Layout::kTN;
  const Tensor a_store = randn({1, tn ? K : M, tn ? M : K}, gen, gpu()).to(kBFloat16);
  const Tensor a = tn ? a_store.transpose(1, 2) : a_store;
  const Tensor b = randn({1, K, N}, gen, gpu()).to(kBFloat16);
  const Tensor out = empty({1, M, N}, gpu(kBFloat16));
  auto peer = [&] {  // column-major: out^T (N, M) = B^T A^T
    const CublasHandle& h = g_gpu->cublas_default;
    check_cublas(cublasSetStream(h.get(), stream_of(cuda::current_stream())), "cublasSetStream");
    const float alpha = 1.0f, beta = 0.0f;
    check_cublas(
        cublasGemmEx(h.get(), CUBLAS_OP_N, tn ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(N),
                     static_cast<int>(M), static_cast<int>(K), &alpha, b.data_ptr(), CUDA_R_16BF,
                     static_cast<int>(N), a_store.data_ptr(), CUDA_R_16BF,
                     static_cast<int>(tn ? M : K), &beta, out.data_ptr(), CUDA_R_16BF,
                     static_cast<int>(N), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
        "cublasGemmEx");
  };
  auto ours = [&] { cuda::gemm(out, a, b, Scalar(1.0), Scalar(0.0)); };
  time_hgemm(state, out, cublas, ours, peer, M, N, K);
}

/// An hgemm case's operands (the same for every implementation: one seed) and its unfused peer:
/// cublasGemmEx into out, for bias_gelu into tmp and then Ember's bias-add and GELU kernels.
struct HgemmCase {
  int64_t M, N, K;
  bool bias_gelu;
  DType dt = kBFloat16;
  bool f32_out = false;  // the output cast: out float32
  Generator gen{12};
  Tensor x = randn({1, M, K}, gen, gpu()).to(dt);
  Tensor w = randn({N, K}, gen, gpu()).to(dt);
  Tensor bias = randn({N}, gen, gpu()).to(dt);
  Tensor out = empty({1, M, N}, gpu(f32_out ? kFloat32 : dt)), tmp = empty({1, M, N}, gpu(dt));
  Tensor bias_rows = bias.expand({1, M, N});

  void unfused_peer() const {
    cublas_hgemm(g_gpu->cublas_default, bias_gelu ? tmp : out, x, w, M, N, K);
    if (bias_gelu) {
      cuda::binary(tmp, tmp, bias_rows, BinaryOp::Add, Scalar(1.0));
      cuda::unary(out, tmp, UnaryOp::GeluTanh, 0.0, 0.0);
    }
  }
};

void bm_hgemm(benchmark::State& state, int64_t M, int64_t N, int64_t K, bool cublas, bool bias_gelu,
              int config, DType dt = kBFloat16, bool f32_out = false) {
  cuda::set_gemm_tc_config(config);
  const HgemmCase c{M, N, K, bias_gelu, dt, f32_out};
  const Tensor wt = c.w.t().unsqueeze(0);  // (1, K, N) view of the weight, K contiguous
  GemmEpilogue e;
  if (bias_gelu) {
    e.bias = c.bias;
    e.act = GemmAct::kGeluTanh;
  }
  auto peer = [&] { c.unfused_peer(); };
  auto ours = [&] {
    if (!cuda::gemm_tc(c.out, c.x, wt, e)) throw std::runtime_error("gemm_tc declined the layout");
  };
  time_hgemm(state, c.out, cublas, ours, peer, M, N, K);
}

/// The cuBLASLt peer of an hgemm case (bias and GELU fused in its epilogue for bias_gelu): its
/// result first checked against the unfused cublasGemmEx path, as Ember's is, then timed.
void bm_hgemm_lt(benchmark::State& state, int64_t M, int64_t N, int64_t K, bool bias_gelu) {
  const HgemmCase c{M, N, K, bias_gelu};
  const Tensor got = empty({1, M, N}, gpu(kBFloat16));
  const LtGemm lt(got, c.x, c.w, bias_gelu ? &c.bias : nullptr, M, N, K);
  lt.run();
  c.unfused_peer();
  if (!hgemm_agrees(state, got, c.out, "cuBLASLt's product")) return;
  time_gpu(state, [&] { lt.run(); });
  bench::set_flops(state,
                   2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K));
}

void register_hgemm_cases() {
  struct Shape {
    int64_t M, N, K;
    bool bias_gelu;
  };
  std::vector<Shape> shapes;
  if (bench::quick_mode()) {
    shapes = {{64, 64, 64, false}, {72, 40, 56, true}};
  } else {
    for (int64_t n : {1024, 2048, 4096, 8192}) shapes.push_back({n, n, n, false});
    shapes.push_back({8192, 2304, 768, false});  // GPT-2 124M, B*T = 8192: qkv projection
    shapes.push_back({8192, 768, 3072, false});  // MLP down-projection
    shapes.push_back({8192, 3072, 768, true});   // MLP up-projection + bias + GELU
  }
  for (const Shape& sh : shapes) {
    const std::string key = std::string(sh.bias_gelu ? "hgemm_bf16_bias_gelu/" : "hgemm_bf16/") +
                            std::to_string(sh.M) + "x" + std::to_string(sh.N) + "x" +
                            std::to_string(sh.K) + "/";
    for (const bool cublas : {false, true})
      add_gpu_case(key + (cublas ? "cublas" : "ember"), [sh, cublas](benchmark::State& s) {
        bm_hgemm(s, sh.M, sh.N, sh.K, cublas, sh.bias_gelu, -1);
      });
    add_gpu_case(key + "cublaslt",
                 [sh](benchmark::State& s) { bm_hgemm_lt(s, sh.M, sh.N, sh.K, sh.bias_gelu); });
    // Each configuration forced, as peers of the default (automatic) choice: 0 and 1 (mma.sync),
    // 2 (wgmma), 3 (TMA + mbarriers + warp-specialised wgmma), 4 (3 persistent) and 5 (persistent
    // ping-pong); 2-5 on sm_90a, elsewhere they fall back to 1.
    for (const int config : {0, 1, 2, 3, 4, 5, 6})
      add_gpu_case(key + "ember_config" + std::to_string(config),
                   [sh, config](benchmark::State& s) {
                     bm_hgemm(s, sh.M, sh.N, sh.K, false, sh.bias_gelu, config);
                   });
  }
  // float16 (the same kernels, the other 16-bit type) at the large square sizes.
  for (const int64_t n : bench::quick_mode() ? std::vector<int64_t>{64}
                                             : std::vector<int64_t>{4096, 8192}) {
    const std::string key = "hgemm_fp16/" + std::to_string(n) + "x" + std::to_string(n) + "x" +
                            std::to_string(n) + "/";
    for (const bool cublas : {false, true})
      add_gpu_case(key + (cublas ? "cublas" : "ember"), [n, cublas](benchmark::State& s) {
        bm_hgemm(s, n, n, n, cublas, false, -1, kFloat16);
      });
  }
  // The output cast: bf16 operands, float32 out (mm(a, b, kFloat32)), at the MLP down-projection;
  // cuBLAS's peer stores float32 itself (C of CUDA_R_32F).
  for (const Shape& sh : bench::quick_mode() ? std::vector<Shape>{{72, 40, 56, false}}
                                             : std::vector<Shape>{{8192, 768, 3072, false}}) {
    const std::string key = "hgemm_bf16_f32out/" + std::to_string(sh.M) + "x" +
                            std::to_string(sh.N) + "x" + std::to_string(sh.K) + "/";
    for (const bool cublas : {false, true})
      add_gpu_case(key + (cublas ? "cublas" : "ember"), [sh, cublas](benchmark::State& s) {
        bm_hgemm(s, sh.M, sh.N, sh.K, cublas, false, -1, kBFloat16, true);
      });
  }
  // The backward's layouts: MLP down-projection W (768, 3072): dH = dY W (NN), dW = dY^T H (TN).
  struct LayoutShape {
    int64_t M, N, K;
    Layout layout;
  };
  const std::vector<LayoutShape> layouts =
      bench::quick_mode()
          ? std::vector<LayoutShape>{{48, 40, 72, Layout::kNN}, {40, 56, 72, Layout::kTN}}
          : std::vector<LayoutShape>{{8192, 3072, 768, Layout::kNN},
                                     {768, 3072, 8192, Layout::kTN}};
  for (const LayoutShape& sh : layouts) {
    const std::string key =
        std::string(sh.layout == Layout::kNN ? "hgemm_bf16_nn/" : "hgemm_bf16_tn/") +
        std::to_string(sh.M) + "x" + std::to_string(sh.N) + "x" + std::to_string(sh.K) + "/";
    for (const bool cublas : {false, true})
      add_gpu_case(key + (cublas ? "cublas" : "ember"), [sh, cublas](benchmark::State& s) {
        bm_hgemm_layout(s, sh.M, sh.N, sh.K, sh.layout, cublas, -1);
      });
    for (const int config : {3, 4, 5, 6})  // the configurations that read an M-contiguous A in place
      add_gpu_case(key + "ember_config" + std::to_string(config),
                   [sh, config](benchmark::State& s) {
                     bm_hgemm_layout(s, sh.M, sh.N, sh.K, sh.layout, false, config);
                   });
  }
}

// ---- context ----

/// The GPU, its nominal DRAM bandwidth and float32 FMA peak, cuBLAS's version, the method.
void add_gpu_context() {
  int device = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  cudaDeviceProp prop{};
  check_cuda(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  int clock_khz = 0, mem_clock_khz = 0;
  check_cuda(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, device),
             "cudaDeviceGetAttribute");
  check_cuda(cudaDeviceGetAttribute(&mem_clock_khz, cudaDevAttrMemoryClockRate, device),
             "cudaDeviceGetAttribute");
  char buf[1024];
  std::snprintf(buf, sizeof buf, ", sm_%d%d, %d SMs, %.0f MiB L2, %.1f GiB", prop.major, prop.minor,
                prop.multiProcessorCount, prop.l2CacheSize / 1048576.0,
                static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
  benchmark::AddCustomContext("gpu", std::string(prop.name) + buf);
  // Double data rate over the bus; 128 float32 FMA lanes per SM (sm_80 and later), 2 FLOP each.
  const double dram = 2.0 * mem_clock_khz * 1e3 * prop.memoryBusWidth / 8.0;
  const double fp32 = 2.0 * 128.0 * prop.multiProcessorCount * clock_khz * 1e3;
  std::snprintf(buf, sizeof buf, "DRAM %.0f GB/s, float32 FMA %.1f TFLOP/s (from clocks)",
                dram * 1e-9, fp32 * 1e-12);
  benchmark::AddCustomContext("gpu_nominal_peaks", buf);
  int version = 0;
  check_cublas(cublasGetVersion(g_gpu->cublas_default.get(), &version), "cublasGetVersion");
  benchmark::AddCustomContext(
      "cublas",
      std::to_string(version) +
          " (peers: CUBLAS_DEFAULT_MATH, CUBLAS_PEDANTIC_MATH, CUBLAS_TF32_TENSOR_OP_MATH)");
  benchmark::AddCustomContext("timing",
                              "CUDA events, L2 flushed by a 256 MiB read before each run");
}

}  // namespace

int main(int argc, char** argv) {
  if (!ember::cuda::is_available()) {
    std::printf("bench_cuda_ops: skipped (no CUDA GPU)\n");
    return 0;
  }
  try {
    bench::g_flush = std::make_unique<bench::L2Flush>();
    g_gpu = std::make_unique<GpuResources>();
    add_gpu_context();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda_ops: %s\n", e.what());
    return 1;
  }
  register_memory_cases();
  register_gemm_cases();
  register_hgemm_cases();
  const int rc = ember::bench::ratio_main(argc, argv, [](const std::string& key) {
    auto it = memory_ceilings().find(key);
    return it == memory_ceilings().end() ? std::string() : it->second;
  });
  try {
    ember::cuda::synchronize();  // a sticky CUDA error of the last case surfaces here
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda_ops: %s\n", e.what());
    g_failed = true;
  }
  g_gpu.reset();
  bench::g_flush.reset();
  return rc != 0 ? rc : (g_failed ? 1 : 0);
}
