// Fused attention on the GPU (src/cuda/attention.cu, FlashAttention-2 on mma.sync) beside its
// peer in the same process: the composite scaled_dot_product_attention_reference (matmul on the
// tensor-core GEMM, softmax and masked_fill as separate ops, the (L, S) scores in memory) on the
// same bfloat16 tensors. cuDNN's fused SDPA (the named peer) and FlashAttention, as
// PyTorch ships them, run in a separate process: benchmarks/peer_torch_cuda.py times the same cases
// under the same keys (impl torch_cudnn, torch_flash), and tools/gpu-table.py joins its JSON with
// this program's --ember_summary; tools/gpu-check.sh runs all three.
//
// Cases (B, H, T, D), L = S = T, causal and not, forward and backward:
//   (4, 16, 1024, 64), (2, 16, 4096, 128), (1, 16, 8192, 128); quick mode: tiny sizes.
// FLOP per forward: 4 B H L S D (two products), halved when causal; backward 2.5x the forward
// (FA2's accounting: five products of which the forward's two; the recomputation in Ember's
// deterministic dQ kernel is not counted). Reported as FLOP/s, with Ember / composite.
// Backward: autograd::grad of the recorded graph (retained), the fused node's kernels for Ember.
// Forward cases also run "ember_wgmma": both products on wgmma (set_attention_forward_variant(1);
// on GPUs without sm_90a code it is the mma.sync kernel again), "ember_ws" and "ember_ws64": the
// warp-specialised, TMA-fed kernel with key tiles of 128 and 64 (variants 2 and 3; on other GPUs
// variant 1's fallback), each checked against the composite on its first case too. Backward cases
// run "ember_wgmma" too: the dK/dV and dQ kernels on wgmma (set_attention_backward_variant(1)),
// "ember_ws": the warp-specialised, TMA-fed dK/dV and dQ kernels (variant 2), and "ember_fused":
// the persistent kernel that adds dQ in turn (variant 3; 5 tile products per pair, not 7).
// Without a GPU: "bench_cuda_attention: skipped (no CUDA GPU)", exit 0.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/kernels.hpp"
#include "cuda_bench.hpp"
#include "ember/nn/functional/attention.hpp"

using namespace ember;
using ember::bench::add_gpu_case;
using ember::bench::g_failed;
using ember::bench::time_gpu;
namespace F = ember::nn::functional;

namespace {

struct Shape {
  int64_t B, H, T, D;
};

Tensor random_bf16(const std::vector<int64_t>& sizes, uint64_t seed) {
  Generator g(seed);
  return randn(sizes, g).to(kBFloat16).to(Device(kCUDA));
}

Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, bool fused) {
  return fused ? F::scaled_dot_product_attention_flash(q, k, v, causal)
               : F::scaled_dot_product_attention_reference(q, k, v, {}, 0.0, causal);
}

void bm_attention(benchmark::State& state, Shape sh, bool causal, bool backward, bool fused,
                  int variant = -1) {
  // the variant of the kernels timed: the forward's, or for a backward case the backward's
  if (backward)
    cuda::set_attention_backward_variant(variant);
  else
    cuda::set_attention_forward_variant(variant);
  const std::vector<int64_t> sizes = {sh.B, sh.H, sh.T, sh.D};
  Tensor q = random_bf16(sizes, 1), k = random_bf16(sizes, 2), v = random_bf16(sizes, 3);
  double flops = 4.0 * static_cast<double>(sh.B * sh.H) * static_cast<double>(sh.T) *
                 static_cast<double>(sh.T) * static_cast<double>(sh.D);
  if (causal) flops *= 0.5;
  if (!backward) {
    NoGradGuard no_grad;
    time_gpu(state, [&] { (void)attend(q, k, v, causal, fused); });
  } else {
    flops *= 2.5;
    Tensor ql = q.requires_grad_(), kl = k.requires_grad_(), vl = v.requires_grad_();
    Tensor y = attend(ql, kl, vl, causal, fused);
    Tensor dy = random_bf16(sizes, 4);
    time_gpu(state, [&] { (void)autograd::grad({y}, {ql, kl, vl}, {dy}, /*retain_graph=*/true); });
  }
  bench::set_flops(state, flops);
  // Keep the first case of each variant honest: the fused forward (or, backward, dq) agrees with
  // the composite's.
  static bool checked[2][5] = {};  // by backward, variant + 1
  if (fused && !checked[backward][variant + 1]) {
    checked[backward][variant + 1] = true;
    const auto result = [&](bool f) {
      Tensor a = q.detach().requires_grad_(backward), b = k.detach(), c = v.detach();
      Tensor y = attend(a, b, c, causal, f);
      if (!backward) return y.detach().to(kFloat32).cpu();
      return autograd::grad({y}, {a}, {random_bf16(sizes, 4)})[0].to(kFloat32).cpu();
    };
    Tensor a = result(true), b = result(false);
    const double err = (a - b).abs().max().item<float>(), mag = b.abs().max().item<float>();
    if (!(err <= 2e-2 * mag)) {
      std::fprintf(stderr, "bench_cuda_attention: fused and composite %s differ by %g (max %g)\n",
                   backward ? "dq" : "outputs", err, mag);
      g_failed = true;
    }
  }
  cuda::set_attention_forward_variant(-1);
  cuda::set_attention_backward_variant(-1);
}

void register_cases() {
  std::vector<Shape> shapes;
  if (bench::quick_mode())
    shapes = {{1, 2, 128, 64}, {1, 2, 200, 128}};
  else
    shapes = {{4, 16, 1024, 64}, {2, 16, 4096, 128}, {1, 16, 8192, 128}};
  for (const Shape& sh : shapes)
    for (bool backward : {false, true})
      for (bool causal : {false, true}) {
        const std::string key = std::string(backward ? "attn_bwd_bf16/" : "attn_fwd_bf16/") + "B" +
                                std::to_string(sh.B) + "_H" + std::to_string(sh.H) + "_T" +
                                std::to_string(sh.T) + "_D" + std::to_string(sh.D) +
                                (causal ? "_causal" : "") + "/";
        for (bool fused : {true, false})
          add_gpu_case(key + (fused ? "ember" : "composite"),
                       [=](benchmark::State& s) { bm_attention(s, sh, causal, backward, fused); });
        add_gpu_case(key + "ember_wgmma", [=](benchmark::State& s) {
          bm_attention(s, sh, causal, backward, true, /*variant=*/1);
        });
        add_gpu_case(key + "ember_ws", [=](benchmark::State& s) {
          bm_attention(s, sh, causal, backward, true, /*variant=*/2);
        });
        // forward variant 3: key tiles of 64; backward variant 3: the fused kernel
        add_gpu_case(key + (backward ? "ember_fused" : "ember_ws64"), [=](benchmark::State& s) {
          bm_attention(s, sh, causal, backward, true, /*variant=*/3);
        });
      }
}

}  // namespace

int main(int argc, char** argv) {
  if (!ember::cuda::is_available()) {
    std::printf("bench_cuda_attention: skipped (no CUDA GPU)\n");
    return 0;
  }
  try {
    bench::g_flush = std::make_unique<bench::L2Flush>();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda_attention: %s\n", e.what());
    return 1;
  }
  register_cases();
  const int rc = ember::bench::ratio_main(argc, argv);
  try {
    ember::cuda::synchronize();  // a sticky CUDA error of the last case surfaces here
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda_attention: %s\n", e.what());
    g_failed = true;
  }
  bench::g_flush.reset();
  return rc != 0 ? rc : (g_failed ? 1 : 0);
}
