// BatchNorm1d/2d, LayerNorm, RMSNorm, GroupNorm and Dropout modules: parameters and buffers with
// PyTorch's names and initial values, running statistics, train/eval behaviour, errors.
#include <cmath>

#include "ember/nn.hpp"
#include "gradcheck.hpp"

using namespace ember;

TEST_CASE("BatchNorm2d: names, init, running statistics and eval mode") {
  manual_seed(0);
  nn::BatchNorm2d bn(3);
  CHECK(bn->state_dict().keys() == std::vector<std::string>{"weight", "bias", "running_mean",
                                                            "running_var", "num_batches_tracked"});
  CHECK(equal(bn->weight, ones({3})));
  CHECK(equal(bn->bias, zeros({3})));
  Tensor x = randn({4, 3, 5, 5}) * 2.0 + 1.0;
  Tensor y = bn(x);
  // Training: each channel of y has mean 0 and biased variance 1 (up to eps).
  CHECK(allclose(y.mean({0, 2, 3}), zeros({3}), 0, 1e-5));
  CHECK(allclose(y.var({0, 2, 3}, 0), ones({3}), 0, 1e-3));
  // running = 0.9 * init + 0.1 * batch stat (unbiased variance).
  CHECK(allclose(bn->running_mean, x.mean({0, 2, 3}) * 0.1, 1e-5, 1e-6));
  CHECK(allclose(bn->running_var, x.var({0, 2, 3}, 1) * 0.1 + 0.9, 1e-5, 1e-6));
  CHECK(bn->num_batches_tracked.item<int64_t>() == 1);
  // Eval: normalizes with the running statistics, updates nothing.
  bn->eval();
  Tensor rm = bn->running_mean.clone();
  Tensor ye = bn(x);
  Tensor ref = (x - bn->running_mean.view({1, 3, 1, 1})) /
               (bn->running_var.view({1, 3, 1, 1}) + 1e-5).sqrt();
  CHECK(allclose(ye, ref, 1e-5, 1e-5));
  CHECK(equal(rm, bn->running_mean));
  CHECK(bn->num_batches_tracked.item<int64_t>() == 1);
  EMBER_CHECK_THROWS(bn(zeros({2, 3, 4})), ShapeError, "[BatchNorm2d]", "(2, 3, 4)");
  EMBER_CHECK_THROWS(bn(zeros({2, 4, 3, 3})), ShapeError, "[BatchNorm2d]", "3 channels",
                     "(2, 4, 3, 3)");
}

TEST_CASE("BatchNorm1d: cumulative average with momentum=None, no running stats") {
  manual_seed(1);
  nn::BatchNorm1d bn(2, 1e-5, std::nullopt);
  Tensor a = randn({8, 2}), b = randn({8, 2}) + 3.0;
  bn(a);
  bn(b);
  // Cumulative moving average over the two batches.
  CHECK(allclose(bn->running_mean, (a.mean({0}) + b.mean({0})) / 2.0, 1e-5, 1e-6));
  nn::BatchNorm1d plain(2, 1e-5, 0.1, /*affine=*/false, /*track_running_stats=*/false);
  CHECK(plain->state_dict().empty());
  plain->eval();  // still batch statistics: nothing tracked
  CHECK(allclose(plain(b).mean({0}), zeros({2}), 0, 1e-5));
  CHECK(nn::BatchNorm1d(4)(randn({3, 4, 7})).sizes() == IntArrayRef({3, 4, 7}));
}

TEST_CASE("BatchNorm2d: gradcheck through a float64 module in training mode") {
  nn::BatchNorm2d bn(2);
  bn->to(kFloat64);
  {
    NoGradGuard g;
    bn->weight.copy_(tensor({1.5, -0.5}));
    bn->bias.copy_(tensor({0.1, 0.2}));
  }
  Tensor x = test::grad_input({3, 2, 2, 2});
  CHECK(test::gradcheck([&](const std::vector<Tensor>& in) { return bn(in[0]); }, {x}));
}

namespace {

/// A BatchNorm2d whose forward adds one: a subclass, which Sequential must run as it is.
class ShiftedBatchNormImpl : public nn::BatchNorm2dImpl {
 public:
  using nn::BatchNorm2dImpl::BatchNorm2dImpl;
  Tensor forward(const Tensor& x) { return nn::BatchNorm2dImpl::forward(x) + 1.0; }
};

}  // namespace

TEST_CASE("Sequential: a BatchNorm and the ReLU after it run as forward_relu, same values") {
  // The pair is one stage (batch_norm_relu: one fused node on CUDA while training, the three
  // ops here): outputs, gradients, running statistics and the batch count bitwise those of the
  // modules called one by one, in training and in eval mode. A BatchNorm subclass keeps its own
  // forward.
  manual_seed(3);
  nn::Sequential a(nn::Conv2d(nn::Conv2dOptions(2, 4, 3).padding(1)), nn::BatchNorm2d(4),
                   nn::ReLU(), nn::Flatten(), nn::Linear(4 * 5 * 5, 3), nn::BatchNorm1d(3),
                   nn::ReLU());
  nn::Sequential b(nn::Conv2d(nn::Conv2dOptions(2, 4, 3).padding(1)), nn::BatchNorm2d(4),
                   nn::ReLU(), nn::Flatten(), nn::Linear(4 * 5 * 5, 3), nn::BatchNorm1d(3),
                   nn::ReLU());
  b->load_state_dict(a->state_dict());
  const Tensor x = randn({6, 2, 5, 5});
  for (bool training : {true, false}) {
    INFO("training " << training);
    a->train(training);
    b->train(training);
    Tensor ya = a(x);
    Tensor yb = x;
    yb = b->at<nn::Conv2dImpl>(0)->forward(yb);
    yb = b->at<nn::BatchNorm2dImpl>(1)->forward(yb);
    yb = b->at<nn::ReLUImpl>(2)->forward(yb);
    yb = b->at<nn::FlattenImpl>(3)->forward(yb);
    yb = b->at<nn::LinearImpl>(4)->forward(yb);
    yb = b->at<nn::BatchNorm1dImpl>(5)->forward(yb);
    yb = b->at<nn::ReLUImpl>(6)->forward(yb);
    CHECK(test::bitwise_equal(ya, yb));
    ya.sum().backward();
    yb.sum().backward();
    const std::vector<Tensor> ba = a->buffers(), bb = b->buffers();
    for (size_t i = 0; i < ba.size(); ++i) CHECK(test::bitwise_equal(ba[i], bb[i]));
    const std::vector<Tensor> pa = a->parameters(), pb = b->parameters();
    for (size_t i = 0; i < pa.size(); ++i) CHECK(test::bitwise_equal(pa[i].grad(), pb[i].grad()));
  }
  nn::Sequential s(nn::ModuleHolder<ShiftedBatchNormImpl>(2), nn::ReLU());
  const Tensor z = randn({4, 2, 3, 3}) - 5.0;
  CHECK(test::bitwise_equal(s(z), relu(nn::BatchNorm2d(2)(z) + 1.0)));
  // Replacing the ReLU of a fused pair: the BatchNorm then runs alone.
  nn::Sequential r(nn::BatchNorm2d(2), nn::ReLU());
  r->replace_module("1", nn::Identity());
  CHECK(test::bitwise_equal(r(z), nn::BatchNorm2d(2)(z)));
}

TEST_CASE("LayerNorm, RMSNorm, GroupNorm modules") {
  manual_seed(2);
  nn::LayerNorm ln(std::vector<int64_t>{4});
  CHECK(ln->named_parameters().keys() == std::vector<std::string>{"weight", "bias"});
  Tensor x = randn({3, 4}) * 3.0 + 2.0;
  Tensor y = ln(x);
  CHECK(allclose(y.mean({1}), zeros({3}), 0, 1e-5));
  CHECK(allclose(y.var({1}, 0), ones({3}), 0, 1e-3));
  nn::LayerNorm nobias(std::vector<int64_t>{4}, 1e-5, true, /*bias=*/false);
  CHECK(nobias->parameters().size() == 1);

  nn::RMSNorm rms(std::vector<int64_t>{4});
  Tensor r = rms(x);
  Tensor ref = x / (x.square().mean({1}, true) + 1.1920928955078125e-07).sqrt();
  CHECK(allclose(r, ref, 1e-5, 1e-6));

  nn::GroupNorm gn(2, 4);
  Tensor z = randn({2, 4, 3}) + 5.0;
  Tensor g = gn(z).reshape({2, 2, 6});
  CHECK(allclose(g.mean({2}), zeros({2, 2}), 0, 1e-5));
  EMBER_CHECK_THROWS(nn::GroupNorm(3, 4), ValueError, "[GroupNorm]", "divisible");
  CHECK(gn->named_parameters().keys() == std::vector<std::string>{"weight", "bias"});
}

TEST_CASE("Dropout modules: training scales, eval is the identity") {
  manual_seed(3);
  nn::Dropout drop(0.25);
  Tensor x = ones({100000});
  Tensor y = drop(x);
  const double zero_fraction = eq(y, 0.0).to(kFloat64).mean().item<double>();
  CHECK(std::abs(zero_fraction - 0.25) < 0.01);
  CHECK(y.max().item<double>() == Approx(1.0 / 0.75));
  drop->eval();
  CHECK(equal(drop(x), x));
  nn::Dropout2d d2(0.5);
  Tensor c = d2(ones({2, 8, 3, 3}));
  // Whole channels are either all zero or all 2.
  Tensor per_channel = c.amax({2, 3});
  CHECK(equal(per_channel, c.amin({2, 3})));
  EMBER_CHECK_THROWS(nn::Dropout(1.5), ValueError, "[Dropout]", "1.5");
}
