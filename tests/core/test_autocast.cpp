// Autocast (include/ember/autocast.hpp): the scope's settings, which ops cast to what, gradients
// reaching float32 parameters, and a float16 training loop with the GradScaler. All on the CPU
// (CPU and CUDA share the casting code; the CUDA kernels are compared with the CPU elsewhere).
#include <catch2/catch.hpp>
#include <thread>

#include "ember/ember.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::test;
namespace F = ember::nn::functional;

namespace {

Tensor rnd(std::vector<int64_t> shape, uint64_t seed, DType dt = kFloat32) {
  manual_seed(seed);
  return randn(shape).to(dt);
}

// The op under autocast gives exactly what it gives on inputs cast by hand (same kernels), in the
// scope's dtype, and stays close to the float32 result.
void check_lower(const char* name, const std::function<Tensor()>& op,
                 const std::function<Tensor(DType)>& by_hand, DType dt) {
  INFO(name << " in " << dt);
  Tensor full = op();
  Tensor autocast_out;
  {
    auto scope = autocast(dt);
    autocast_out = op();
  }
  REQUIRE(autocast_out.dtype() == dt);
  REQUIRE(bitwise_equal(autocast_out, by_hand(dt)));
  REQUIRE(full.dtype() == kFloat32);
  CHECK(rel_err(autocast_out, full) < 3e-2);
}

}  // namespace

TEST_CASE("autocast: scopes set, nest and restore the thread's settings") {
  REQUIRE_FALSE(is_autocast_enabled(kCPU));
  REQUIRE_FALSE(is_autocast_enabled(kCUDA));
  {
    auto all = autocast(kBFloat16);
    REQUIRE(is_autocast_enabled(kCPU));
    REQUIRE(is_autocast_enabled(kCUDA));
    REQUIRE(get_autocast_dtype(kCPU) == kBFloat16);
    {
      auto cuda_only = autocast(kFloat16, kCUDA);
      REQUIRE(get_autocast_dtype(kCUDA) == kFloat16);
      REQUIRE(get_autocast_dtype(kCPU) == kBFloat16);
      {
        auto off = autocast(kBFloat16, kCPU, /*enabled=*/false);
        REQUIRE_FALSE(is_autocast_enabled(kCPU));
        REQUIRE(is_autocast_enabled(kCUDA));
      }
      REQUIRE(is_autocast_enabled(kCPU));
    }
    REQUIRE(get_autocast_dtype(kCUDA) == kBFloat16);
    // Another thread has its own settings.
    bool other = true;
    std::thread([&] { other = is_autocast_enabled(kCPU); }).join();
    REQUIRE_FALSE(other);
  }
  REQUIRE_FALSE(is_autocast_enabled(kCPU));
  EMBER_CHECK_THROWS(autocast(kFloat32), ValueError, "[autocast]", "float32");
}

TEST_CASE("autocast: matmul, linear, convolution and attention run in the scope's dtype") {
  const Tensor a = rnd({5, 7}, 1), b = rnd({7, 3}, 2), bias = rnd({3}, 3);
  const Tensor a3 = rnd({2, 5, 7}, 4), b3 = rnd({2, 7, 3}, 5), in3 = rnd({2, 5, 3}, 6);
  const Tensor w = rnd({3, 7}, 7);
  const Tensor x = rnd({2, 3, 9, 8}, 8), k = rnd({4, 3, 3, 3}, 9), kb = rnd({4}, 10);
  const Tensor kt = rnd({3, 2, 3, 3}, 11);
  const Tensor x1 = rnd({2, 3, 11}, 12), k1 = rnd({4, 3, 3}, 13);
  const Tensor q = rnd({2, 2, 5, 8}, 14), kk = rnd({2, 2, 6, 8}, 15), v = rnd({2, 2, 6, 8}, 16);
  for (DType dt : {kBFloat16, kFloat16}) {
    check_lower(
        "matmul", [&] { return matmul(a, b); }, [&](DType d) { return matmul(a.to(d), b.to(d)); },
        dt);
    check_lower(
        "mm", [&] { return mm(a, b); }, [&](DType d) { return mm(a.to(d), b.to(d)); }, dt);
    check_lower(
        "bmm", [&] { return bmm(a3, b3); }, [&](DType d) { return bmm(a3.to(d), b3.to(d)); }, dt);
    check_lower(
        "addmm", [&] { return addmm(bias, a, b, 0.5, 2.0); },
        [&](DType d) { return addmm(bias.to(d), a.to(d), b.to(d), 0.5, 2.0); }, dt);
    check_lower(
        "baddbmm", [&] { return baddbmm(in3, a3, b3, 1.0, 0.5); },
        [&](DType d) { return baddbmm(in3.to(d), a3.to(d), b3.to(d), 1.0, 0.5); }, dt);
    check_lower(
        "linear", [&] { return linear(a3, w, bias); },
        [&](DType d) { return linear(a3.to(d), w.to(d), bias.to(d)); }, dt);
    check_lower(
        "conv2d", [&] { return conv2d(x, k, kb, 2, 1); },
        [&](DType d) { return conv2d(x.to(d), k.to(d), kb.to(d), 2, 1); }, dt);
    check_lower(
        "conv2d same", [&] { return conv2d(x, k, kb, 1, ConvPadding("same")); },
        [&](DType d) { return conv2d(x.to(d), k.to(d), kb.to(d), 1, ConvPadding("same")); }, dt);
    check_lower(
        "conv1d", [&] { return conv1d(x1, k1); },
        [&](DType d) { return conv1d(x1.to(d), k1.to(d)); }, dt);
    check_lower(
        "conv_transpose2d", [&] { return conv_transpose2d(x, kt, {}, 2, 1); },
        [&](DType d) { return conv_transpose2d(x.to(d), kt.to(d), {}, 2, 1); }, dt);
    check_lower(
        "sdpa", [&] { return F::scaled_dot_product_attention(q, kk, v, {}, 0.0, true); },
        [&](DType d) {
          return F::scaled_dot_product_attention(q.to(d), kk.to(d), v.to(d), {}, 0.0, true);
        },
        dt);
  }
  // Mixed inputs (one already in the scope's dtype) are cast to it too.
  {
    auto scope = autocast(kBFloat16);
    REQUIRE(matmul(a.to(kBFloat16), b).dtype() == kBFloat16);
    REQUIRE(matmul(a.to(kFloat16), b).dtype() == kBFloat16);
  }
}

TEST_CASE("autocast: float64 and integer tensors are never cast") {
  auto scope = autocast(kBFloat16);
  const Tensor a = rnd({4, 5}, 1, kFloat64), b = rnd({5, 2}, 2, kFloat64);
  REQUIRE(matmul(a, b).dtype() == kFloat64);
  REQUIRE(bitwise_equal(matmul(a, b), [&] {
    auto off = autocast(kBFloat16, std::nullopt, false);
    return matmul(a, b);
  }()));
  const Tensor i = arange(6, kInt64).reshape({2, 3}), j = arange(6, kInt64).reshape({3, 2});
  REQUIRE(matmul(i, j).dtype() == kInt64);
  REQUIRE(F::softmax(a, 1).dtype() == kFloat64);
}

TEST_CASE("autocast: softmax, losses and normalizations compute in float32") {
  const Tensor x16 = rnd({6, 10}, 3, kBFloat16), h16 = rnd({6, 10}, 4, kFloat16);
  const Tensor t16 = rnd({6, 10}, 5, kBFloat16);
  const Tensor y = randint(0, 10, {6});
  auto scope = autocast(kBFloat16);
  // op(input, other): `other` is a second floating operand where the op has one.
  struct Case {
    const char* name;
    std::function<Tensor(const Tensor&, const Tensor&)> op;
  };
  const std::vector<Case> cases = {
      {"softmax", [](const Tensor& t, const Tensor&) { return softmax(t, 1); }},
      {"log_softmax", [](const Tensor& t, const Tensor&) { return log_softmax(t, 1); }},
      {"logsumexp", [](const Tensor& t, const Tensor&) { return logsumexp(t, {1}); }},
      {"cross_entropy", [&](const Tensor& t, const Tensor&) { return F::cross_entropy(t, y); }},
      {"nll_loss", [&](const Tensor& t, const Tensor&) { return F::nll_loss(t, y); }},
      {"mse_loss", [](const Tensor& t, const Tensor& o) { return F::mse_loss(t, o); }},
      {"l1_loss", [](const Tensor& t, const Tensor& o) { return F::l1_loss(t, o); }},
      {"smooth_l1_loss", [](const Tensor& t, const Tensor& o) { return F::smooth_l1_loss(t, o); }},
      {"huber_loss", [](const Tensor& t, const Tensor& o) { return F::huber_loss(t, o); }},
      {"bce_with_logits",
       [](const Tensor& t, const Tensor& o) { return F::binary_cross_entropy_with_logits(t, o); }},
      {"kl_div", [](const Tensor& t, const Tensor& o) { return F::kl_div(t, o, "mean", true); }},
      {"layer_norm", [](const Tensor& t, const Tensor&) { return F::layer_norm(t, {10}); }},
      {"group_norm",
       [](const Tensor& t, const Tensor&) {
         return F::group_norm(t.reshape({6, 10, 1}), 5);
       }},
      {"rms_norm", [](const Tensor& t, const Tensor&) { return F::rms_norm(t, {10}); }},
  };
  for (const Case& c : cases) {
    for (const Tensor& in : {x16, h16}) {
      INFO(c.name << " on " << in.dtype());
      const Tensor out = c.op(in, t16);
      REQUIRE(out.dtype() == kFloat32);
      Tensor expected;
      {
        auto off = autocast(kBFloat16, std::nullopt, false);
        expected = c.op(in.to(kFloat32), t16.to(kFloat32));
      }
      // The float32 op on the widened (exact) inputs: the same computation.
      CHECK(rel_err(out, expected) < 1e-6);
    }
  }
  // An explicit dtype wins over the scope, as in PyTorch.
  REQUIRE(softmax(x16, 1, kBFloat16).dtype() == kBFloat16);
}

TEST_CASE("autocast: gradients reach float32 parameters in float32, close to the float32 ones") {
  nn::Linear fc1(12, 16), fc2(16, 5);
  manual_seed(21);
  const Tensor x = randn({8, 12});
  const Tensor y = randint(0, 5, {8});
  auto loss_of = [&] { return F::cross_entropy(fc2->forward(relu(fc1->forward(x))), y); };

  Tensor ref_loss = loss_of();
  ref_loss.backward();
  std::vector<Tensor> ref_grads;
  for (Tensor& p : fc1->parameters()) ref_grads.push_back(p.grad().clone());
  for (Tensor& p : fc2->parameters()) ref_grads.push_back(p.grad().clone());
  for (Tensor& p : fc1->parameters()) p.mutable_grad() = Tensor();
  for (Tensor& p : fc2->parameters()) p.mutable_grad() = Tensor();

  Tensor loss;
  {
    auto scope = autocast(kBFloat16);
    loss = loss_of();
  }
  REQUIRE(loss.dtype() == kFloat32);
  CHECK(rel_err(loss, ref_loss) < 2e-2);
  loss.backward();  // outside the scope
  std::vector<Tensor> grads;
  for (Tensor& p : fc1->parameters()) grads.push_back(p.grad());
  for (Tensor& p : fc2->parameters()) grads.push_back(p.grad());
  REQUIRE(grads.size() == ref_grads.size());
  for (size_t i = 0; i < grads.size(); ++i) {
    INFO("parameter " << i);
    REQUIRE(grads[i].defined());
    REQUIRE(grads[i].dtype() == kFloat32);
    CHECK(rel_err(grads[i], ref_grads[i]) < 5e-2);
  }

  // backward inside the scope gives the same gradients (autocast is off during backward).
  std::vector<Tensor> first;
  for (Tensor& g : grads) first.push_back(g.clone());
  for (Tensor& p : fc1->parameters()) p.mutable_grad() = Tensor();
  for (Tensor& p : fc2->parameters()) p.mutable_grad() = Tensor();
  {
    auto scope = autocast(kBFloat16);
    loss_of().backward();
  }
  size_t i = 0;
  for (Tensor& p : fc1->parameters()) REQUIRE(bitwise_equal(p.grad(), first[i++]));
  for (Tensor& p : fc2->parameters()) REQUIRE(bitwise_equal(p.grad(), first[i++]));
}

TEST_CASE("autocast: linear ops give float32 weight and bias gradients without 16-bit rounding") {
  // Under autocast the linear family casts x through the recorded cast (its gradient comes back
  // through it, as PyTorch's) but the weight and bias without one: the node returns dW = dH^T x
  // and db = sum dH summed and stored in float32, where rounding them to 16 bits and casting back
  // (PyTorch's autocast) loses about 3 significant digits. The forward and dX are unchanged:
  // bitwise the op on operands cast by hand.
  const int64_t B = 3, T = 5, K = 24, N = 16;
  const char* names[] = {"linear", "linear without bias", "linear_gelu", "linear_relu",
                         "linear_residual"};
  const Tensor res = rnd({B, T, N}, 34);
  for (DType dt : {kBFloat16, kFloat16}) {
    for (int op = 0; op < 5; ++op) {
      INFO(names[op] << " in " << dt);
      // post(h) for h = x W^T + b, as the ops compose.
      auto post = [&](const Tensor& h) {
        if (op == 2) return gelu(h, "tanh");
        if (op == 3) return relu(h);
        if (op == 4) return res + h;
        return h;
      };
      auto run = [&](const Tensor& x, const Tensor& w, const Tensor& b) {
        switch (op) {
          case 1:
            return linear(x, w);
          case 2:
            return linear_gelu(x, w, b, "tanh");
          case 3:
            return linear_relu(x, w, b);
          case 4:
            return linear_residual(x, w, b, res);
          default:
            return linear(x, w, b);
        }
      };
      const Tensor x = rnd({B, T, K}, 31).requires_grad_();
      const Tensor w = rnd({N, K}, 32).requires_grad_();
      const Tensor b = op == 1 ? Tensor() : rnd({N}, 33).requires_grad_();
      auto cast = [&](const Tensor& t) { return t.defined() ? t.detach().to(dt) : t; };
      Tensor out;
      {
        auto scope = autocast(dt);
        out = run(x, w, b);
      }
      REQUIRE(bitwise_equal(out.detach(), run(cast(x), cast(w), cast(b))));
      const Tensor dy = rnd(out.sizes().vec(), 35, out.dtype());
      std::vector<Tensor> inputs{x, w};
      if (b.defined()) inputs.push_back(b);
      const std::vector<Tensor> g = autograd::grad({out}, inputs, {dy});
      for (const Tensor& t : g) REQUIRE(t.dtype() == kFloat32);

      // By hand, without autocast: dH at h in dt, and the gradients of the cast operands.
      const Tensor xc = cast(x).requires_grad_(), wc = cast(w).requires_grad_();
      const Tensor bc = b.defined() ? cast(b).requires_grad_() : Tensor();
      const Tensor h = linear(xc, wc, bc);
      std::vector<Tensor> hand_in{h, xc, wc};
      if (b.defined()) hand_in.push_back(bc);
      const std::vector<Tensor> hand = autograd::grad({post(h)}, hand_in, {dy});
      const Tensor dh = hand[0].to(kFloat64).reshape({-1, N});
      REQUIRE(bitwise_equal(g[0], hand[1].to(kFloat32)));  // dX through x's cast, as before
      const Tensor dw64 = mm(dh.t(), xc.detach().to(kFloat64).reshape({-1, K}));
      CHECK(rel_err(g[1], dw64) < 1e-6);
      CHECK(rel_err(hand[2].to(kFloat32), dw64) > 1e-4);  // the 16-bit rounding avoided
      if (b.defined()) {
        const Tensor db64 = dh.sum({0});
        CHECK(rel_err(g[2], db64) < 1e-6);
        CHECK(rel_err(hand[3].to(kFloat32), db64) > 1e-4);
      }

      // create_graph: the node differentiates the composite with its casts recorded, so the
      // first-order gradients are bitwise those of the ops on operands cast with records; the
      // second-order ones agree to 16-bit rounding (where they pass back through a linear node
      // without create_graph, it gives its float32 gradients again).
      Tensor out2;
      {
        auto scope = autocast(dt);
        out2 = run(x, w, b);
      }
      const std::vector<Tensor> g1 = autograd::grad({out2}, inputs, {dy}, true, true);
      const Tensor composite = post(linear(x.to(dt), w.to(dt), b.defined() ? b.to(dt) : b));
      const std::vector<Tensor> c1 = autograd::grad({composite}, inputs, {dy}, true, true);
      for (size_t i = 0; i < g1.size(); ++i) REQUIRE(bitwise_equal(g1[i], c1[i]));
      const Tensor s_ours = (g1[0] * g1[0]).sum() + (g1[1] * g1[1]).sum();
      const Tensor s_comp = (c1[0] * c1[0]).sum() + (c1[1] * c1[1]).sum();
      const std::vector<Tensor> g2 =
          autograd::grad({s_ours}, {x, w}, {}, std::nullopt, false, true);
      const std::vector<Tensor> c2 =
          autograd::grad({s_comp}, {x, w}, {}, std::nullopt, false, true);
      for (size_t i = 0; i < 2; ++i) {
        REQUIRE(g2[i].defined() == c2[i].defined());
        if (g2[i].defined()) CHECK(rel_err(g2[i], c2[i]) < 1e-2);
      }
    }
  }
}

TEST_CASE("autocast: float16 training with amp::GradScaler follows float32 training") {
  // The same model, data and seed trained 40 steps in float32 and with float16 autocast plus
  // loss scaling: both losses fall, and the autocast run ends close to the float32 one.
  auto train = [](bool amp) {
    manual_seed(5);
    nn::Sequential model(nn::Linear(10, 32), nn::ReLU(), nn::Linear(32, 3));
    optim::SGD opt(model->parameters(), optim::SGDOptions(0.1).momentum(0.9));
    amp::GradScaler scaler(amp::GradScalerOptions{.init_scale = 1024.0, .growth_interval = 10});
    manual_seed(6);
    const Tensor x = randn({64, 10});
    const Tensor y = argmax(matmul(x, randn({10, 3})), 1);
    std::vector<double> losses;
    for (int step = 0; step < 40; ++step) {
      opt.zero_grad();
      Tensor loss;
      {
        auto scope = autocast(kFloat16, kCPU, amp);
        loss = F::cross_entropy(model->forward(x), y);
      }
      losses.push_back(loss.item<double>());
      if (amp) {
        scaler.scale(loss).backward();
        scaler.step(opt);
        scaler.update();
      } else {
        loss.backward();
        opt.step();
      }
    }
    for (const Tensor& p : model->parameters()) REQUIRE(p.dtype() == kFloat32);
    return std::make_pair(losses, scaler.get_scale());
  };
  const auto [full, unused] = train(false);
  const auto [mixed, scale] = train(true);
  REQUIRE(full.back() < 0.5 * full.front());
  REQUIRE(mixed.back() < 0.5 * mixed.front());
  CHECK(std::abs(mixed.back() - full.back()) < 0.05 + 0.1 * full.back());
  REQUIRE(scale >= 1024.0);  // no overflow at this size: the scale only grew
}
