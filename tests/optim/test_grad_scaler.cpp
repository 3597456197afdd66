// GradScaler: scaled backward + unscale gives the unscaled step bitwise (power-of-two scales),
// steps with Inf/NaN gradients are skipped and back the scale off, clean runs grow it, misuse is
// a typed error, and the state round-trips.
#include <cmath>
#include <limits>

#include "ember/ember.hpp"
#include "ember/optim/grad_scaler.hpp"
#include "test_util.hpp"

using namespace ember;

namespace {
Tensor loss_of(const Tensor& w, const Tensor& x) { return (matmul(x, w) - 1.0).square().mean(); }
}  // namespace

TEST_CASE("GradScaler: a scaled step equals the plain step bitwise") {
  manual_seed(0);
  Tensor x = randn({8, 4});
  Tensor w0 = randn({4, 3});
  Tensor a = w0.clone().requires_grad_(), b = w0.clone().requires_grad_();
  optim::SGD plain({a}, optim::SGDOptions(0.1).momentum(0.9));
  optim::SGD scaled({b}, optim::SGDOptions(0.1).momentum(0.9));
  optim::GradScaler scaler;
  for (int i = 0; i < 3; ++i) {
    plain.zero_grad();
    loss_of(a, x).backward();
    plain.step();

    scaled.zero_grad();
    Tensor loss = loss_of(b, x);
    Tensor s = scaler.scale(loss);
    CHECK(s.item<double>() == Approx(loss.item<double>() * 65536.0));
    s.backward();
    CHECK(scaler.step(scaled));
    scaler.update();
  }
  CHECK(test::bitwise_equal(a, b));
  CHECK(scaler.get_scale() == 65536.0);
  CHECK(scaler.growth_tracker() == 3);
}

TEST_CASE("GradScaler: a non-finite gradient skips the step and backs off the scale") {
  Tensor w = ones({3}).requires_grad_();
  optim::SGD opt({w}, optim::SGDOptions(0.5));
  optim::GradScaler scaler(optim::GradScalerOptions{.init_scale = 1024.0, .growth_interval = 2});
  Tensor bad = tensor({1.0f, std::numeric_limits<float>::infinity(), 2.0f});
  scaler.scale((w * bad).sum()).backward();
  CHECK(!scaler.step(opt));
  CHECK(equal(w, ones({3})));  // untouched
  scaler.update();
  CHECK(scaler.get_scale() == 512.0);
  CHECK(scaler.growth_tracker() == 0);
  // NaN as well.
  opt.zero_grad();
  scaler.scale((w * std::nan("")).sum()).backward();
  CHECK(!scaler.step(opt));
  scaler.update();
  CHECK(scaler.get_scale() == 256.0);
  // Two clean steps in a row grow the scale.
  for (int i = 0; i < 2; ++i) {
    opt.zero_grad();
    scaler.scale((w * 2.0).sum()).backward();
    CHECK(scaler.step(opt));
    scaler.update();
  }
  CHECK(scaler.get_scale() == 512.0);
  CHECK(allclose(w, full({3}, 1.0 - 2 * 0.5 * 2.0)));
  scaler.update(3.0);
  CHECK(scaler.get_scale() == 3.0);
}

TEST_CASE("GradScaler: unscale_ before clipping, misuse errors, disabled, state_dict") {
  Tensor w = ones({2}).requires_grad_();
  optim::SGD opt({w}, optim::SGDOptions(1.0));
  optim::GradScaler scaler;
  scaler.scale((w * tensor({3.0f, 4.0f})).sum()).backward();
  scaler.unscale_(opt);
  CHECK(equal(w.grad(), tensor({3.0f, 4.0f})));  // the true gradient, ready for clipping
  Tensor norm = nn::utils::clip_grad_norm_({w}, 1.0);
  CHECK(norm.item<double>() == Approx(5.0));
  EMBER_CHECK_THROWS(scaler.unscale_(opt), ValueError, "[GradScaler.unscale_]", "already");
  CHECK(scaler.step(opt));
  EMBER_CHECK_THROWS(scaler.step(opt), ValueError, "[GradScaler.step]");
  scaler.update();
  EMBER_CHECK_THROWS(scaler.update(), ValueError, "[GradScaler.update]");
  EMBER_CHECK_THROWS(optim::GradScaler(optim::GradScalerOptions{.backoff_factor = 1.5}), ValueError,
                     "backoff_factor", "1.5");

  optim::GradScaler off(optim::GradScalerOptions{.enabled = false});
  Tensor l = (w * 2.0).sum();
  CHECK(off.scale(l).is_same(l));

  optim::GradScaler a(optim::GradScalerOptions{.init_scale = 8.0, .growth_interval = 5});
  a.update(16.0);
  optim::GradScaler b;
  b.load_state_dict(a.state_dict());
  CHECK(b.get_scale() == 16.0);
  CHECK(b.state_dict().get_int("growth_interval") == 5);
  StateDict broken = a.state_dict();
  broken.set_double("growth_factor", 0.5);
  EMBER_CHECK_THROWS(b.load_state_dict(broken), ValueError, "growth_factor");
  CHECK(b.get_scale() == 16.0);
}
