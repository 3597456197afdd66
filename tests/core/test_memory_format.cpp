// MemoryFormat: channels-last tensors (NCHW sizes over NHWC memory), their API (is_contiguous,
// contiguous, suggest_memory_format, the factories, clone and to), and the rule that ops keep
// the layout: elementwise results follow their first full-shape input, convolution, batch_norm
// and max pooling of a channels-last input are channels-last, with the same values (bitwise) and
// gradients as the NCHW computation.
#include <catch2/catch.hpp>
#include <sstream>

#include "ember/nn.hpp"
#include "ember/optim.hpp"
#include "test_util.hpp"

using namespace ember;
namespace F = ember::nn::functional;
using ember::test::bitwise_equal;

namespace {

constexpr MemoryFormat kCL = MemoryFormat::ChannelsLast;

Tensor rnd(std::vector<int64_t> sizes, uint64_t seed, DType dt = kFloat32) {
  Generator g(seed);
  return randn(sizes, g, TensorOptions(dt));
}

/// The strides of a channels-last (N, C, H, W) tensor.
std::vector<int64_t> cl_strides(int64_t C, int64_t H, int64_t W) {
  return {H * W * C, 1, W * C, C};
}

bool is_cl(const Tensor& t) { return t.suggest_memory_format() == kCL; }

}  // namespace

TEST_CASE("memory format: is_contiguous, contiguous, suggest_memory_format") {
  Tensor x = rnd({2, 3, 4, 5}, 1);
  CHECK(x.is_contiguous(MemoryFormat::Contiguous));
  CHECK_FALSE(x.is_contiguous(kCL));
  CHECK(x.suggest_memory_format() == MemoryFormat::Contiguous);
  Tensor c = x.contiguous(kCL);
  CHECK(c.strides() == IntArrayRef(cl_strides(3, 4, 5)));
  CHECK(c.is_contiguous(kCL));
  CHECK_FALSE(c.is_contiguous());
  CHECK(is_cl(c));
  CHECK(bitwise_equal(c, x));
  CHECK(c.contiguous(kCL).is_same(c));  // already laid out: itself
  CHECK(c.contiguous().is_contiguous());
  CHECK(bitwise_equal(c.contiguous(), x));
  // The permuted view of NHWC memory is channels-last too.
  Tensor nhwc = rnd({2, 4, 5, 3}, 2);
  CHECK(is_cl(nhwc.permute({0, 3, 1, 2})));
  // Size-1 dims do not decide: a (N, C, 1, 1) channels-last tensor is also row-major.
  Tensor pooled = rnd({2, 3, 1, 1}, 3).contiguous(kCL);
  CHECK(pooled.is_contiguous());
  CHECK(pooled.is_contiguous(kCL));
  CHECK(pooled.suggest_memory_format() == MemoryFormat::Contiguous);
  // Other ranks are never channels-last.
  CHECK_FALSE(rnd({3, 4}, 4).is_contiguous(kCL));
  CHECK(rnd({3, 4}, 4).t().suggest_memory_format() == MemoryFormat::Contiguous);
  EMBER_CHECK_THROWS(rnd({3, 4, 5}, 5).contiguous(kCL), ShapeError, "[contiguous]", "(3, 4, 5)");
  EMBER_CHECK_THROWS(x.contiguous(MemoryFormat::Preserve), ValueError, "[contiguous]");
  EMBER_CHECK_THROWS(x.is_contiguous(MemoryFormat::Preserve), ValueError, "[is_contiguous]");
  std::ostringstream os;
  os << kCL << ' ' << MemoryFormat::Contiguous << ' ' << MemoryFormat::Preserve;
  CHECK(os.str() == "ChannelsLast Contiguous Preserve");
}

TEST_CASE("memory format: factories, clone and to keep a channels-last layout") {
  Tensor x = rnd({2, 3, 4, 5}, 6).contiguous(kCL);
  Tensor e = empty({2, 3, 4, 5}, TensorOptions(kFloat64), kCL);
  CHECK(e.strides() == IntArrayRef(cl_strides(3, 4, 5)));
  CHECK(e.dtype() == kFloat64);
  EMBER_CHECK_THROWS(empty({2, 3}, {}, kCL), ShapeError, "[empty]", "(2, 3)");
  for (const Tensor& t : {empty_like(x), zeros_like(x), ones_like(x), full_like(x, 2.5)})
    CHECK(is_cl(t));
  CHECK(bitwise_equal(full_like(x, 2.5), full({2, 3, 4, 5}, 2.5)));
  CHECK(empty_like(x, std::nullopt, MemoryFormat::Contiguous).is_contiguous());
  CHECK(is_cl(empty_like(rnd({2, 3, 4, 5}, 7), std::nullopt, kCL)));
  // A transposed matrix is not channels-last: its *_like results stay row-major.
  CHECK(zeros_like(rnd({3, 4}, 8).t()).is_contiguous());
  Tensor cl = x.clone();
  CHECK(is_cl(cl));
  CHECK(bitwise_equal(cl, x));
  CHECK(x.clone(MemoryFormat::Contiguous).is_contiguous());
  Tensor d = x.to(kFloat64);
  CHECK(is_cl(d));
  CHECK(bitwise_equal(d, x.contiguous().to(kFloat64)));
  CHECK(x.to(kFloat64, false, false, MemoryFormat::Contiguous).is_contiguous());
  CHECK(is_cl(rnd({2, 3, 4, 5}, 9).to(kFloat32, false, true, kCL)));
  CHECK(x.to(kFloat32).is_same(x));  // nothing to do
}

TEST_CASE("memory format: elementwise results follow the first full-shape input") {
  Tensor a = rnd({2, 6, 3, 5}, 10), b = rnd({2, 6, 3, 5}, 11);
  Tensor acl = a.contiguous(kCL), bcl = b.contiguous(kCL);
  Tensor bias = rnd({6, 1, 1}, 12);
  // Unary, binary (both channels-last, with a broadcast bias, with a Scalar), in place.
  struct Case {
    const char* name;
    Tensor dense, cl;
  };
  const std::vector<Case> cases{
      {"relu", relu(a), relu(acl)},
      {"exp", exp(a), exp(acl)},
      {"add", a + b, acl + bcl},
      {"bias", a + bias, acl + bias},
      {"bias first", bias * a, bias * acl},
      {"scalar", a * 0.5, acl * 0.5},
      {"scalar first", 1.0 - a, 1.0 - acl},
      {"compare", a > b, acl > bcl},
      {"where", where(a > 0, a, b), where(acl > 0, acl, bcl)},
      {"masked_fill", a.masked_fill(b > 0, 1.5), acl.masked_fill(bcl > 0, 1.5)},
      {"float64", a.to(kFloat64) * b, acl.to(kFloat64) * bcl},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    CHECK(is_cl(c.cl));
    CHECK(c.dense.is_contiguous());
    CHECK(bitwise_equal(c.cl, c.dense));
  }
  // The first full-shape input decides: NCHW + channels-last is NCHW, and the reverse.
  CHECK((a + bcl).is_contiguous());
  CHECK(is_cl(acl + b));
  CHECK(bitwise_equal(acl + b, a + b));
  // In place keeps self's layout.
  Tensor t = acl.clone();
  t.add_(b).mul_(2.0);
  CHECK(is_cl(t));
  CHECK(bitwise_equal(t, (a + b) * 2.0));
  // Other layouts are unchanged: a transposed operand gives a row-major result.
  Tensor m = rnd({5, 7}, 13);
  CHECK((m.t() * 2.0).is_contiguous());
}

TEST_CASE("memory format: gradients through channels-last ops") {
  Tensor a = rnd({2, 4, 3, 3}, 14);
  Tensor w = rnd({4, 1, 1}, 15);
  auto grad_of = [&](const Tensor& x0) {
    Tensor x = x0.detach().requires_grad_();
    Tensor y = gelu(x * w + 1.0);
    (y * y).sum().backward();
    return std::make_pair(y, x.grad());
  };
  auto [y1, g1] = grad_of(a);
  auto [y2, g2] = grad_of(a.contiguous(kCL));
  CHECK(is_cl(y2));
  CHECK(bitwise_equal(y1, y2));
  CHECK(bitwise_equal(g1, g2));
}

TEST_CASE("memory format: conv2d, batch_norm, max_pool2d keep channels-last (CPU)") {
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dt);
    Tensor x = rnd({3, 8, 9, 7}, 16, dt);
    Tensor w1 = rnd({6, 8, 3, 3}, 17, dt) * 0.2, w2 = rnd({6, 1, 3, 3}, 18, dt) * 0.3;
    Tensor gamma = rnd({6}, 19, dt), beta = rnd({6}, 20, dt);
    auto run = [&](const Tensor& x0) {
      Tensor xi = x0.detach().requires_grad_();
      Tensor wi = w1.detach().requires_grad_();
      Tensor gi = gamma.detach().requires_grad_();
      Tensor h = conv2d(xi, wi, {}, {1, 1}, {1, 1});
      Tensor hb = F::batch_norm(h, {}, {}, gi, beta, /*training=*/true);
      Tensor hp = max_pool2d(relu(hb), {3, 3}, {2, 2}, {1, 1});
      Tensor hd = conv2d(hp, w2, {}, {1, 1}, {1, 1}, {1, 1}, 6);  // depthwise
      Tensor y = adaptive_avg_pool2d(hd + hp, {1, 1});
      (y * y).sum().backward();
      return std::vector<Tensor>{h, hb, hp, hd, y, xi.grad(), wi.grad(), gi.grad()};
    };
    const std::vector<Tensor> dense = run(x);
    const std::vector<Tensor> cl = run(x.contiguous(kCL));
    const char* names[] = {"conv", "batch_norm", "max_pool", "depthwise",
                           "pool", "dx",         "dw",       "dgamma"};
    for (size_t i = 0; i < dense.size(); ++i) {
      INFO(names[i]);
      CHECK(bitwise_equal(cl[i], dense[i]));
      if (i < 4 || i == 5) CHECK(is_cl(cl[i]));  // activations and dx
    }
  }
}

TEST_CASE("memory format: eval-mode batch_norm and max_pool2d indices of a channels-last input") {
  Tensor x = rnd({2, 5, 6, 4}, 21);
  Tensor rm = rnd({5}, 22), rv = rnd({5}, 23).abs() + 0.5;
  Tensor y = F::batch_norm(x, rm, rv, {}, {}, /*training=*/false);
  Tensor ycl = F::batch_norm(x.contiguous(kCL), rm, rv, {}, {}, /*training=*/false);
  CHECK(is_cl(ycl));
  CHECK(bitwise_equal(ycl, y));
  auto [v, i] = max_pool2d_with_indices(x, {2, 2}, {2, 2});
  auto [vcl, icl] = max_pool2d_with_indices(x.contiguous(kCL), {2, 2}, {2, 2});
  CHECK(is_cl(vcl));
  CHECK(is_cl(icl));
  CHECK(bitwise_equal(vcl, v));
  CHECK(bitwise_equal(icl, i));
  // An unbatched channels-last (C, H, W) input and its gradient.
  Tensor u = rnd({4, 6, 5}, 24);
  Tensor ucl = u.permute({1, 2, 0}).contiguous().permute({2, 0, 1}).requires_grad_();
  Tensor ud = u.detach().requires_grad_();
  max_pool2d(ucl, {2, 2}).pow(2).sum().backward();
  max_pool2d(ud, {2, 2}).pow(2).sum().backward();
  CHECK(bitwise_equal(ucl.grad(), ud.grad()));
}

TEST_CASE("memory format: Module::to(ChannelsLast), gradients and optimizer state in its layout") {
  // The same few SGD and AdamW steps of a small CNN, NCHW against channels-last (weights and
  // input): the same losses and weights bit for bit, every 4-d weight, its gradient and its
  // optimizer state channels-last (the fused updates walk them alike).
  struct Net : nn::Module {
    Net() {
      c1 = register_module("c1", nn::Conv2d(nn::Conv2dOptions(3, 8, 3).padding(1)));
      bn = register_module("bn", nn::BatchNorm2d(8));
      c2 = register_module("c2", nn::Conv2d(nn::Conv2dOptions(8, 4, 1)));
    }
    Tensor forward(const Tensor& x) {
      return adaptive_avg_pool2d(c2(relu(bn(c1(x)))), {1, 1}).flatten(1);
    }
    nn::Conv2d c1{nullptr}, c2{nullptr};
    nn::BatchNorm2d bn{nullptr};
  };
  const Tensor x = rnd({4, 3, 6, 6}, 30);
  for (bool adam : {false, true}) {
    INFO((adam ? "AdamW" : "SGD"));
    auto train = [&](bool channels_last) {
      manual_seed(31);
      auto net = std::make_shared<Net>();
      if (channels_last) net->to(kCL);
      std::unique_ptr<optim::Optimizer> opt;
      if (adam)
        opt = std::make_unique<optim::AdamW>(net->parameters(), optim::AdamWOptions(1e-2));
      else
        opt = std::make_unique<optim::SGD>(net->parameters(),
                                           optim::SGDOptions(0.1).momentum(0.9).weight_decay(1e-3));
      std::vector<Tensor> losses;
      for (int step = 0; step < 3; ++step) {
        opt->zero_grad();
        Tensor loss = net->forward(channels_last ? x.contiguous(kCL) : x).pow(2).mean();
        loss.backward();
        opt->step();
        losses.push_back(loss.detach());
      }
      return std::make_pair(net, losses);
    };
    auto [dense, l1] = train(false);
    auto [cl, l2] = train(true);
    for (size_t i = 0; i < l1.size(); ++i) CHECK(bitwise_equal(l1[i], l2[i]));
    const std::vector<Tensor> pd = dense->parameters(), pc = cl->parameters();
    for (size_t i = 0; i < pd.size(); ++i) {
      INFO("parameter " << i);
      CHECK(bitwise_equal(pc[i], pd[i]));
      if (pc[i].dim() == 4) {
        CHECK(is_cl(pc[i]));
        CHECK(is_cl(pc[i].grad()));
      }
    }
  }
}
