// Loss modules give exactly their functional forms, keep class weights as buffers, and convert
// with the module.
#include "ember/nn.hpp"
#include "gradcheck.hpp"

using namespace ember;
namespace F = ember::nn::functional;

TEST_CASE("loss modules: each equals its functional form with the same options") {
  manual_seed(0);
  Tensor logits = randn({6, 4});
  Tensor target = tensor({0, 3, 1, 1, 2, 0});
  Tensor w = tensor({1.0f, 2.0f, 0.5f, 1.0f});
  nn::CrossEntropyLoss ce(
      nn::CrossEntropyLossOptions{.weight = w, .ignore_index = 2, .label_smoothing = 0.1});
  CHECK(equal(ce(logits, target), F::cross_entropy(logits, target, w, 2, "mean", 0.1)));
  CHECK(ce->named_buffers().keys() == std::vector<std::string>{"weight"});
  CHECK(ce->state_dict().contains("weight"));
  nn::NLLLoss nll(nn::NLLLossOptions{.reduction = "sum"});
  Tensor lp = log_softmax(logits, 1);
  CHECK(equal(nll(lp, target), F::nll_loss(lp, target, {}, -100, "sum")));

  Tensor a = randn({3, 5}), b = randn({3, 5});
  CHECK(equal(nn::MSELoss()(a, b), F::mse_loss(a, b)));
  CHECK(equal(nn::L1Loss("sum")(a, b), F::l1_loss(a, b, "sum")));
  CHECK(equal(nn::SmoothL1Loss("mean", 0.5)(a, b), F::smooth_l1_loss(a, b, "mean", 0.5)));
  CHECK(equal(nn::HuberLoss("none", 2.0)(a, b), F::huber_loss(a, b, "none", 2.0)));
  Tensor p = sigmoid(a), y = rand({3, 5}).gt(0.5).to(kFloat32);
  CHECK(equal(nn::BCELoss()(p, y), F::binary_cross_entropy(p, y)));
  Tensor pw = full({5}, 3.0);
  nn::BCEWithLogitsLoss bce(nn::BCEWithLogitsLossOptions{.pos_weight = pw});
  CHECK(equal(bce(a, y), F::binary_cross_entropy_with_logits(a, y, {}, "mean", pw)));
  CHECK(bce->named_buffers().contains("pos_weight"));
  Tensor q = softmax(b, 1);
  CHECK(equal(nn::KLDivLoss("batchmean")(log_softmax(a, 1), q),
              F::kl_div(log_softmax(a, 1), q, "batchmean")));
}

TEST_CASE("loss modules: the weight buffer follows to(dtype), gradients reach the logits") {
  nn::CrossEntropyLoss ce(nn::CrossEntropyLossOptions{.weight = tensor({1.0f, 3.0f, 2.0f})});
  ce->to(kFloat64);
  CHECK(ce->options.weight.dtype() == kFloat64);
  Tensor x = test::grad_input({4, 3});
  Tensor t = tensor({2, 0, 1, 1});
  CHECK(test::gradcheck([&](const std::vector<Tensor>& in) { return ce(in[0], t); }, {x}));
  CHECK(test::gradgradcheck([&](const std::vector<Tensor>& in) { return ce(in[0], t); }, {x}));
}
