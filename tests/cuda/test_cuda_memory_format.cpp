// Channels-last tensors on CUDA: the kernels that take them as they lie (elementwise maps in
// memory order, batch_norm as (N H W, C) rows, max pooling with threads along the channels, the
// implicit-GEMM convolutions reading and writing NHWC) against the CPU's NCHW results, and a
// bfloat16 ResNet block whose every activation and input gradient stays channels-last. Without
// a GPU each case prints "skipped".
#include <catch2/catch.hpp>

#include "cuda/cuda_test_util.hpp"
#include "ember/nn.hpp"

using namespace ember;
namespace F = ember::nn::functional;
using ember::test::agree;
using ember::test::bitwise_equal;
using ember::test::gpu;

namespace {

constexpr MemoryFormat kCL = MemoryFormat::ChannelsLast;

bool is_cl(const Tensor& t) { return t.suggest_memory_format() == kCL; }

Tensor rnd(std::vector<int64_t> sizes, uint64_t seed) {
  Generator g(seed);
  return randn(sizes, g);
}

}  // namespace

TEST_CASE("cuda memory format: elementwise maps of channels-last tensors, bitwise the CPU's") {
  if (!gpu()) return;
  const Device cu(kCUDA);
  for (DType dt : {kFloat32, kBFloat16, kFloat16}) {
    INFO(dt);
    // C = 24 (a 16-byte multiple in every dtype: the row path's chunks) and C = 5 (single steps).
    for (int64_t C : {24, 5}) {
      INFO("C " << C);
      Tensor a = rnd({2, C, 3, 7}, 1).to(dt), b = rnd({2, C, 3, 7}, 2).to(dt);
      Tensor bias = rnd({C, 1, 1}, 3).to(dt);
      Tensor ga = a.to(cu).contiguous(kCL), gb = b.to(cu).contiguous(kCL);
      Tensor gbias = bias.to(cu);
      struct Case {
        const char* name;
        Tensor cpu, gpu;
      };
      const std::vector<Case> cases{
          {"add", a + b, ga + gb},         // the vector path in memory order
          {"bias", a + bias, ga + gbias},  // the row path: a row of C per pixel
          {"scalar", a * 0.5, ga * 0.5},   // a Single
          {"relu", relu(a), relu(ga)},     // unary
          {"where", where(a > 0, a, b), where(ga > 0, ga, gb)},
          {"mixed", a + b, ga + gb.contiguous()},  // the general path
      };
      for (const Case& c : cases) {
        INFO(c.name);
        CHECK(is_cl(c.gpu));
        CHECK(bitwise_equal(c.gpu.cpu(), c.cpu));
      }
    }
  }
}

TEST_CASE("cuda memory format: batch_norm of a channels-last input, forward and backward") {
  if (!gpu()) return;
  const Device cu(kCUDA);
  for (DType dt : {kFloat32, kBFloat16}) {
    INFO(dt);
    Tensor x = rnd({4, 16, 5, 7}, 4).to(dt) * 3.0 + 1.0;
    Tensor w = rnd({16}, 5), b = rnd({16}, 6), dy = rnd({4, 16, 5, 7}, 7).to(dt);
    auto run = [&](const Tensor& x0, const Tensor& dy0, Device d) {
      Tensor xi = x0.detach().requires_grad_(), wi = w.detach().to(d).requires_grad_();
      Tensor bi = b.detach().to(d).requires_grad_();
      Tensor rm = zeros({16}, TensorOptions(d)), rv = ones({16}, TensorOptions(d));
      Tensor y = F::batch_norm(xi, rm, rv, wi, bi, /*training=*/true);
      y.backward(dy0);
      return std::vector<Tensor>{y, xi.grad(), wi.grad(), bi.grad(), rm, rv};
    };
    const std::vector<Tensor> ref = run(x, dy, Device(kCPU));
    const std::vector<Tensor> got = run(x.to(cu).contiguous(kCL), dy.to(cu).contiguous(kCL), cu);
    // NCHW dy for a channels-last x: the node lays dy out as x before its kernels.
    const std::vector<Tensor> mixed = run(x.to(cu).contiguous(kCL), dy.to(cu), cu);
    CHECK(is_cl(got[0]));
    CHECK(is_cl(got[1]));
    const double tol = dt == kFloat32 ? 1e-5 : 2e-2;
    const char* names[] = {"y", "dx", "dw", "db", "running_mean", "running_var"};
    for (size_t i = 0; i < ref.size(); ++i) {
      INFO(names[i]);
      CHECK(agree(got[i].cpu(), ref[i], tol));
      CHECK(bitwise_equal(mixed[i].cpu(), got[i].cpu()));
    }
    // Eval mode (no gradients): one pass, channels-last kept.
    NoGradGuard no_grad;
    Tensor rm = rnd({16}, 8), rv = rnd({16}, 9).abs() + 0.5;
    Tensor ye = F::batch_norm(x.to(cu).contiguous(kCL), rm.to(cu), rv.to(cu), w.to(cu), b.to(cu),
                              /*training=*/false);
    CHECK(is_cl(ye));
    CHECK(bitwise_equal(ye.cpu(), F::batch_norm(x, rm, rv, w, b, /*training=*/false)));
  }
}

TEST_CASE("cuda memory format: max_pool2d of a channels-last input, bitwise the CPU's") {
  if (!gpu()) return;
  const Device cu(kCUDA);
  for (DType dt : {kFloat32, kBFloat16}) {
    INFO(dt);
    Tensor x = rnd({2, 12, 9, 11}, 10).to(dt);
    x.index_put_({0, 3, 2, 2}, std::nan(""));  // NaN wins
    auto [v, i] = max_pool2d_with_indices(x, {3, 3}, {2, 2}, {1, 1});
    auto [gv, gi] = max_pool2d_with_indices(x.to(cu).contiguous(kCL), {3, 3}, {2, 2}, {1, 1});
    CHECK(is_cl(gv));
    CHECK(is_cl(gi));
    CHECK(agree(gv.cpu(), v, 0.0));  // exact; a NaN's payload may differ in bfloat16
    CHECK(bitwise_equal(gi.cpu(), i));
    Tensor xg = x.to(cu).contiguous(kCL).requires_grad_();
    Tensor xc = x.detach().requires_grad_();
    Tensor dy = rnd({2, 12, 5, 6}, 11).to(dt);
    max_pool2d(xg, {3, 3}, {2, 2}, {1, 1}).backward(dy.to(cu));
    max_pool2d(xc, {3, 3}, {2, 2}, {1, 1}).backward(dy);
    CHECK(is_cl(xg.grad()));
    CHECK(bitwise_equal(xg.grad().cpu(), xc.grad()));
  }
}

TEST_CASE("cuda memory format: a bfloat16 ResNet block stays channels-last, values as NCHW") {
  if (!gpu()) return;
  const Device cu(kCUDA);
  Tensor x = rnd({4, 16, 12, 12}, 12).to(cu, kBFloat16);
  Tensor w1 = (rnd({16, 16, 3, 3}, 13) * 0.1).to(cu, kBFloat16);
  Tensor w2 = (rnd({16, 16, 1, 1}, 14) * 0.2).to(cu, kBFloat16);
  Tensor gamma = rnd({16}, 15).to(cu);
  auto run = [&](const Tensor& x0) {
    Tensor xi = x0.detach().requires_grad_();
    Tensor a = w1.detach().requires_grad_(), b = w2.detach().requires_grad_();
    Tensor gi = gamma.detach().requires_grad_();
    Tensor h = relu(F::batch_norm(conv2d(xi, a, {}, {1, 1}, {1, 1}), {}, {}, gi, {}, true));
    Tensor y = relu(conv2d(h, b) + xi);
    Tensor p = max_pool2d(y, {3, 3}, {2, 2}, {1, 1});
    Tensor loss = adaptive_avg_pool2d(p, {1, 1}).to(kFloat32).pow(2).sum();
    loss.backward();
    return std::vector<Tensor>{h, y, p, xi.grad(), a.grad(), b.grad(), gi.grad()};
  };
  const std::vector<Tensor> dense = run(x);
  const std::vector<Tensor> cl = run(x.contiguous(kCL));
  const char* names[] = {"h", "y", "pool", "dx", "dw1", "dw2", "dgamma"};
  for (size_t i = 0; i < dense.size(); ++i) {
    INFO(names[i]);
    if (i < 4) CHECK(is_cl(cl[i]));
    CHECK(agree(cl[i].cpu(), dense[i].cpu(), 3e-2));
  }
}

TEST_CASE("cuda memory format: copies between the host and the device keep channels-last") {
  if (!gpu()) return;
  const Device cu(kCUDA);
  for (DType dt : {kFloat32, kBFloat16}) {
    INFO(dt);
    Tensor x = rnd({3, 5, 4, 6}, 16).to(dt);
    Tensor xcl = x.contiguous(kCL);
    Tensor up = xcl.to(cu);  // the bytes as they lie
    CHECK(is_cl(up));
    CHECK(bitwise_equal(up.cpu(), x));
    Tensor down = up.cpu();
    CHECK(is_cl(down));
    CHECK(bitwise_equal(down, x));
    // Into the other layout, and with a conversion.
    CHECK(bitwise_equal(up.to(Device(kCPU), false, false, MemoryFormat::Contiguous), x));
    CHECK(up.to(Device(kCPU), false, false, MemoryFormat::Contiguous).is_contiguous());
    CHECK(bitwise_equal(x.to(cu).contiguous(kCL).cpu(), x));
    CHECK(bitwise_equal(xcl.to(cu, kFloat64).cpu(), x.to(kFloat64)));
    Tensor big = rnd({4, 64, 16, 16}, 17).to(dt);  // past the 64 KiB upload ring
    CHECK(bitwise_equal(big.contiguous(kCL).to(cu).cpu(), big));
  }
}
