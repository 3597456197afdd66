// BatchNorm folding (nn::utils::fuse_conv_bn_eval / fuse_linear_bn_eval and the _weights forms,
// torch.nn.utils.fusion's semantics): a hand-computed 1x1 case; the folded layer against
// bn(layer(x)) in eval mode for Conv2d (groups, stride, padding, with and without a bias),
// ConvTranspose2d (groups: output channels along dim 1 per group), Conv1d and Linear, affine and
// not, float64 (1e-12) and float32 (1e-5); with a ReLU after it conv2d_relu / linear_relu of the
// folded parameters; inputs untouched, the result in eval mode on the layer's dtype; typed errors.
#include <catch2/catch.hpp>

#include "ember/ember.hpp"
#include "test_util.hpp"

using namespace ember;

namespace {

/// Running statistics and affine parameters of a BatchNorm, drawn from g (variances positive).
template <class BN>
void randomize(BN& bn, Generator& g) {
  NoGradGuard no_grad;
  const int64_t c = bn->running_mean.size(0);
  bn->running_mean.copy_(randn({c}, g));
  bn->running_var.copy_(rand({c}, g) + 0.5);
  if (bn->weight.defined()) bn->weight.copy_(randn({c}, g));
  if (bn->bias.defined()) bn->bias.copy_(randn({c}, g));
}

/// max |a - b| <= tol * max(1, max |b|).
bool near(const Tensor& a, const Tensor& b, double tol) {
  if (a.sizes() != b.sizes()) return false;
  const std::vector<double> x = test::values(a.to(kFloat64)), y = test::values(b.to(kFloat64));
  double scale = 1, err = 0;
  for (double v : y) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < x.size(); ++i) err = std::max(err, std::abs(x[i] - y[i]));
  UNSCOPED_INFO("max |diff| " << err << " against " << scale);
  return err <= tol * scale;
}

double tol_of(DType dt) { return dt == kFloat64 ? 1e-12 : 1e-5; }

}  // namespace

TEST_CASE("fuse_conv_bn_weights: a hand-computed 1x1 channel") {
  // s = gamma / sqrt(var + eps) = 4 / sqrt(3 + 1) = 2: w' = 2 * 2, b' = (1 - 3) * 2 + 5.
  auto [w, b] =
      nn::utils::fuse_conv_bn_weights(full({1, 1, 1, 1}, 2.0), full({1}, 1.0), full({1}, 3.0),
                                      full({1}, 3.0), 1.0, full({1}, 4.0), full({1}, 5.0));
  CHECK(test::values(w) == std::vector<double>{4});
  CHECK(test::values(b) == std::vector<double>{1});
  CHECK(w.dtype() == kFloat32);
  // No conv bias, no affine parameters: b' = -mean / sqrt(var + eps).
  auto [w2, b2] = nn::utils::fuse_conv_bn_weights(full({1, 1, 1, 1}, 2.0), Tensor(), full({1}, 3.0),
                                                  full({1}, 3.0), 1.0, Tensor(), Tensor());
  CHECK(test::values(w2) == std::vector<double>{1});
  CHECK(test::values(b2) == std::vector<double>{-1.5});
}

TEST_CASE("fuse_conv_bn_eval: Conv2d + BatchNorm2d equals bn(conv(x)) in eval mode") {
  Generator g(4101);
  for (DType dt : {kFloat64, kFloat32}) {
    for (bool conv_bias : {true, false}) {
      for (bool affine : {true, false}) {
        INFO(dt << " conv_bias " << conv_bias << " affine " << affine);
        nn::Conv2d conv(nn::Conv2dOptions(4, 6, 3).stride(2).padding(1).groups(2).bias(conv_bias));
        nn::BatchNorm2d bn(6, 1e-3, 0.1, affine);
        conv->to(dt);
        bn->to(dt);
        randomize(bn, g);
        conv->eval();
        bn->eval();
        const Tensor w_before = conv->weight.clone();
        const uint64_t offset = default_generator().offset();
        nn::Conv2d fused = nn::utils::fuse_conv_bn_eval(conv, bn);
        CHECK(default_generator().offset() == offset);  // no draws for the discarded init
        CHECK_FALSE(fused->is_training());
        CHECK(fused->weight.dtype() == dt);
        REQUIRE(fused->bias.defined());
        CHECK(test::bitwise_equal(conv->weight, w_before));  // the inputs are untouched
        const Tensor x = randn({2, 4, 9, 8}, g).to(dt);
        NoGradGuard no_grad;
        const Tensor want = bn(conv(x));
        CHECK(near(fused(x), want, tol_of(dt)));
        // With the ReLU: one op (one kernel on CUDA).
        CHECK(near(conv2d_relu(x, fused->weight, fused->bias, 2, 1, 1, 2), relu(want), tol_of(dt)));
      }
    }
  }
}

TEST_CASE("fuse_conv_bn_eval: ConvTranspose2d with groups, Conv1d, and Linear") {
  Generator g(4102);
  for (DType dt : {kFloat64, kFloat32}) {
    INFO(dt);
    NoGradGuard no_grad;
    {
      nn::ConvTranspose2d conv(
          nn::ConvTranspose2dOptions(4, 6, 3).stride(2).padding(1).output_padding(1).groups(2));
      nn::BatchNorm2d bn(6);
      conv->to(dt);
      bn->to(dt);
      randomize(bn, g);
      conv->eval();
      bn->eval();
      const Tensor x = randn({2, 4, 5, 4}, g).to(dt);
      CHECK(near(nn::utils::fuse_conv_bn_eval(conv, bn)(x), bn(conv(x)), tol_of(dt)));
    }
    {
      nn::Conv1d conv(nn::Conv1dOptions(3, 5, 3).padding(1).bias(false));
      nn::BatchNorm1d bn(5);
      conv->to(dt);
      bn->to(dt);
      randomize(bn, g);
      conv->eval();
      bn->eval();
      const Tensor x = randn({2, 3, 11}, g).to(dt);
      CHECK(near(nn::utils::fuse_conv_bn_eval(conv, bn)(x), bn(conv(x)), tol_of(dt)));
    }
    for (bool bias : {true, false}) {
      nn::Linear lin(7, 5, bias);
      nn::BatchNorm1d bn(5);
      lin->to(dt);
      bn->to(dt);
      randomize(bn, g);
      lin->eval();
      bn->eval();
      const Tensor x = randn({6, 7}, g).to(dt);
      nn::Linear fused = nn::utils::fuse_linear_bn_eval(lin, bn);
      CHECK(near(fused(x), bn(lin(x)), tol_of(dt)));
      CHECK(near(linear_relu(x, fused->weight, fused->bias), relu(bn(lin(x))), tol_of(dt)));
    }
  }
}

TEST_CASE("fuse_conv_bn_eval: a bfloat16 layer gets bfloat16 parameters, rounded once") {
  Generator g(4103);
  nn::Conv2d conv(nn::Conv2dOptions(3, 4, 1));
  nn::BatchNorm2d bn(4);
  randomize(bn, g);
  conv->to(kBFloat16);
  conv->eval();
  bn->eval();
  nn::Conv2d fused = nn::utils::fuse_conv_bn_eval(conv, bn);
  CHECK(fused->weight.dtype() == kBFloat16);
  CHECK(fused->bias.dtype() == kBFloat16);
  // Each weight is the float64 product rounded to bfloat16.
  auto [w64, b64] = nn::utils::fuse_conv_bn_weights(conv->weight.to(kFloat64),
                                                    conv->bias.to(kFloat64), bn->running_mean,
                                                    bn->running_var, bn->eps, bn->weight, bn->bias);
  CHECK(test::bitwise_equal(fused->weight, w64.to(kBFloat16)));
  CHECK(test::bitwise_equal(fused->bias, b64.to(kBFloat16)));
}

TEST_CASE("fuse_conv_bn_eval: typed errors name the function") {
  nn::Conv2d conv(4, 6, 3);
  nn::BatchNorm2d bn(6), bn5(5), untracked(6, 1e-5, 0.1, true, false);
  EMBER_CHECK_THROWS(nn::utils::fuse_conv_bn_eval(conv, bn), ValueError, "[fuse_conv_bn_eval]",
                     "eval()", "training");
  conv->eval();
  bn5->eval();
  untracked->eval();
  EMBER_CHECK_THROWS(nn::utils::fuse_conv_bn_eval(conv, bn5), ShapeError, "[fuse_conv_bn_weights]",
                     "6 channels", "(5,)");
  EMBER_CHECK_THROWS(nn::utils::fuse_conv_bn_eval(conv, untracked), ValueError,
                     "track_running_stats");
  nn::Linear lin(3, 4);
  nn::BatchNorm1d bn4(4);
  EMBER_CHECK_THROWS(nn::utils::fuse_linear_bn_eval(lin, bn4), ValueError, "[fuse_linear_bn_eval]");
  EMBER_CHECK_THROWS(nn::utils::fuse_linear_bn_weights(ones({2, 3, 4}), Tensor(), zeros({2}),
                                                       ones({2}), 1e-5, Tensor(), Tensor()),
                     ShapeError, "[fuse_linear_bn_weights]", "(2, 3, 4)");
}
