// Backward of the convolution family: unfold/fold, conv1d/2d, conv_transpose1d/2d, max/avg/
// adaptive pooling, upsampling and interpolate. Table-driven gradcheck and gradgradcheck (double
// backward works because unfold and fold are each other's backward), a gradient penalty through
// convolutions, and hand-computed gradients.
#include <iostream>

#include "gradcheck.hpp"

using namespace ember;
using test::grad_input;

namespace {

using Inputs = std::vector<Tensor>;
using Case = test::GradCase;

/// A leaf that requires grad, stored with a strided last dim.
Tensor strided_input(IntArrayRef sizes) {
  std::vector<int64_t> big = sizes.vec();
  big.back() *= 2;
  return grad_input(big).detach().slice(-1, 0, std::nullopt, 2).requires_grad_();
}

std::vector<Case> cases() {
  std::vector<Case> c;
  // ---- unfold / fold ----
  c.push_back({"unfold",
               [](const Inputs& x) {
                 return unfold(x[0], {2, 3}, 1, 1, {2, 1});
               },
               {grad_input({2, 2, 4, 5})}});
  c.push_back({"unfold dilated unbatched strided",
               [](const Inputs& x) { return unfold(x[0], 2, 2, 0, 1); },
               {strided_input({2, 5, 5})}});
  c.push_back({"fold",
               [](const Inputs& x) {
                 return fold(x[0], {4, 5}, {2, 3}, 1, 1, {2, 1});
               },
               {grad_input({2, 12, 15})}});
  c.push_back({"fold unbatched",
               [](const Inputs& x) {
                 return fold(x[0], {4, 4}, 2, 2, 0, 1);
               },
               {grad_input({8, 4})}});
  // ---- convolution ----
  auto conv2d_fn = [](const Inputs& x) { return conv2d(x[0], x[1], x[2], 2, 1); };
  c.push_back({"conv2d stride 2 padding 1",
               conv2d_fn,
               {grad_input({2, 2, 5, 5}), grad_input({3, 2, 3, 3}), grad_input({3})}});
  c.push_back({"conv2d groups dilation unbatched",
               [](const Inputs& x) {
                 return conv2d(x[0], x[1], x[2], 1, {1, 2}, 2, 2);
               },
               {grad_input({4, 5, 6}), grad_input({4, 2, 2, 2}), grad_input({4})}});
  c.push_back({"conv2d depthwise no bias strided",
               [](const Inputs& x) { return conv2d(x[0], x[1], {}, 1, 1, 1, 3); },
               {strided_input({1, 3, 4, 4}), grad_input({3, 1, 3, 3})}});
  c.push_back({"conv2d 1x1",
               [](const Inputs& x) { return conv2d(x[0], x[1], x[2]); },
               {grad_input({2, 3, 3, 3}), grad_input({2, 3, 1, 1}), grad_input({2})}});
  c.push_back({"conv2d same even kernel",
               [](const Inputs& x) { return conv2d(x[0], x[1], x[2], 1, "same"); },
               {grad_input({1, 2, 4, 4}), grad_input({2, 2, 2, 2}), grad_input({2})}});
  c.push_back({"conv2d_relu groups stride 2 (on the CPU conv2d then relu)",
               [](const Inputs& x) { return conv2d_relu(x[0], x[1], x[2], 2, 1, 1, 2); },
               {grad_input({2, 4, 5, 5}), grad_input({4, 2, 3, 3}), grad_input({4})}});
  c.push_back({"conv1d",
               [](const Inputs& x) { return conv1d(x[0], x[1], x[2], 2, 1, 1, 2); },
               {grad_input({2, 4, 7}), grad_input({2, 2, 3}), grad_input({2})}});
  c.push_back({"conv1d depthwise unbatched",
               [](const Inputs& x) { return conv1d(x[0], x[1], x[2], 2, 1, 2, 3); },
               {grad_input({3, 8}), grad_input({3, 1, 3}), grad_input({3})}});
  c.push_back({"conv_transpose2d stride 2 output_padding 1",
               [](const Inputs& x) { return conv_transpose2d(x[0], x[1], x[2], 2, 1, 1); },
               {grad_input({2, 3, 3, 3}), grad_input({3, 2, 3, 3}), grad_input({2})}});
  c.push_back({"conv_transpose2d groups dilation",
               [](const Inputs& x) {
                 return conv_transpose2d(x[0], x[1], {}, 1, 0, 0, 2, {1, 2});
               },
               {grad_input({1, 4, 3, 3}), grad_input({4, 1, 2, 2})}});
  c.push_back({"conv_transpose1d",
               [](const Inputs& x) { return conv_transpose1d(x[0], x[1], x[2], 3, 1, 2); },
               {grad_input({3, 4}), grad_input({3, 2, 3}), grad_input({2})}});
  // ---- pooling (random inputs: no ties within eps) ----
  c.push_back({"max_pool2d",
               [](const Inputs& x) { return max_pool2d(x[0], 3, 2, 1); },
               {grad_input({2, 2, 5, 5})}});
  c.push_back({"max_pool2d dilation ceil_mode strided",
               [](const Inputs& x) {
                 return max_pool2d(x[0], 2, {2, 1}, 1, 2, true);
               },
               {strided_input({2, 5, 6})}});
  c.push_back({"max_pool2d_with_indices values",
               [](const Inputs& x) { return std::get<0>(max_pool2d_with_indices(x[0], 2)); },
               {grad_input({1, 2, 4, 5})}});
  c.push_back({"max_pool1d",
               [](const Inputs& x) { return max_pool1d(x[0], 3, 2, 1); },
               {grad_input({2, 2, 7})}});
  c.push_back({"max_pool1d_with_indices values",
               [](const Inputs& x) { return std::get<0>(max_pool1d_with_indices(x[0], 2)); },
               {grad_input({3, 6})}});
  c.push_back({"avg_pool2d",
               [](const Inputs& x) { return avg_pool2d(x[0], 3, 2, 1); },
               {grad_input({2, 2, 5, 5})}});
  c.push_back({"avg_pool2d ceil_mode exclude pad divisor",
               [](const Inputs& x) {
                 return avg_pool2d(x[0], {2, 3}, 2, 1, true, false, 4);
               },
               {strided_input({2, 5, 6})}});
  c.push_back({"avg_pool1d",
               [](const Inputs& x) { return avg_pool1d(x[0], 3, 2, 1, false, false); },
               {grad_input({2, 2, 7})}});
  c.push_back({"adaptive_avg_pool2d",
               [](const Inputs& x) {
                 return adaptive_avg_pool2d(x[0], {3, 2});
               },
               {grad_input({2, 2, 5, 7})}});
  c.push_back({"adaptive_avg_pool2d global",
               [](const Inputs& x) { return adaptive_avg_pool2d(x[0], 1); },
               {grad_input({2, 3, 3, 2})}});
  c.push_back({"adaptive_avg_pool1d",
               [](const Inputs& x) { return adaptive_avg_pool1d(x[0], 4); },
               {grad_input({2, 7})}});
  c.push_back({"adaptive_max_pool2d values",
               [](const Inputs& x) {
                 return std::get<0>(adaptive_max_pool2d(x[0], {2, 3}));
               },
               {grad_input({2, 2, 5, 7})}});
  c.push_back({"adaptive_max_pool1d values",
               [](const Inputs& x) { return std::get<0>(adaptive_max_pool1d(x[0], 3)); },
               {grad_input({2, 2, 7})}});
  // ---- upsampling ----
  c.push_back({"upsample_nearest2d",
               [](const Inputs& x) {
                 return upsample_nearest2d(x[0], {5, 7});
               },
               {grad_input({2, 2, 3, 4})}});
  c.push_back({"upsample_nearest1d",
               [](const Inputs& x) { return upsample_nearest1d(x[0], {3}); },
               {grad_input({2, 2, 5})}});
  c.push_back({"upsample_bilinear2d",
               [](const Inputs& x) {
                 return upsample_bilinear2d(x[0], {5, 7}, false);
               },
               {grad_input({2, 2, 3, 4})}});
  c.push_back({"upsample_bilinear2d align_corners downsample strided",
               [](const Inputs& x) {
                 return upsample_bilinear2d(x[0], {2, 3}, true);
               },
               {strided_input({2, 4, 5})}});
  c.push_back({"upsample_linear1d",
               [](const Inputs& x) { return upsample_linear1d(x[0], {7}, false); },
               {grad_input({2, 2, 4})}});
  c.push_back({"interpolate bilinear scale_factor",
               [](const Inputs& x) {
                 return interpolate(x[0], std::nullopt, std::vector<double>{2.0, 1.5}, "bilinear");
               },
               {grad_input({1, 2, 3, 4})}});
  c.push_back({"interpolate nearest size",
               [](const Inputs& x) { return interpolate(x[0], std::vector<int64_t>{5}); },
               {grad_input({1, 2, 3})}});
  return c;
}

}  // namespace

TEST_CASE("conv: grads match finite differences (gradcheck and gradgradcheck)") {
  const std::vector<Case> table = cases();
  test::check_grad_table(table);
  std::cout << "[test_grad_conv] gradcheck + gradgradcheck over " << table.size()
            << " cases of 21 ops\n";
}

TEST_CASE("conv2d: a gradient penalty through two convolutions is differentiable") {
  // WGAN-GP style: penalty(w1, w2) = || d/dx sum(conv2d(tanh(conv2d(x, w1)), w2)) ||^2.
  Tensor x = grad_input({2, 2, 5, 5});
  auto penalty = [x](const Inputs& w) {
    autograd::AutoGradMode on(true);  // the numerical pass runs fn under no-grad
    Tensor xi = x.detach().requires_grad_();
    Tensor d = conv2d(tanh(conv2d(xi, w[0], {}, 1, 1)), w[1], {}, 2).sum();
    Tensor g = autograd::grad({d}, {xi}, {}, std::nullopt, /*create_graph=*/true)[0];
    return (g * g).sum();
  };
  CHECK(test::gradcheck(penalty, {grad_input({3, 2, 3, 3}), grad_input({1, 3, 3, 3})}));
}

TEST_CASE("conv: hand-computed gradients") {
  // Box filter 2x2 over 3x3 with dY = 1: dX counts the windows covering each element.
  Tensor x = ones({1, 1, 3, 3}, kFloat64).requires_grad_();
  Tensor w = ones({1, 1, 2, 2}, kFloat64).requires_grad_();
  conv2d(x, w).sum().backward();
  CHECK(test::values(x.grad()) == std::vector<double>{1, 2, 1, 2, 4, 2, 1, 2, 1});
  CHECK(test::values(w.grad()) == std::vector<double>{4, 4, 4, 4});
  // max_pool2d sends each gradient to its argmax, summing where windows share one.
  Tensor m = tensor({{1.0, 2.0, 0.0}, {0.0, 9.0, 0.0}, {3.0, 0.0, 1.0}}, kFloat64)
                 .reshape({1, 3, 3})
                 .requires_grad_();
  max_pool2d(m, 2, 1).sum().backward();
  CHECK(test::values(m.grad()) == std::vector<double>{0, 0, 0, 0, 4, 0, 0, 0, 0});
  // avg_pool2d spreads 1 / 4 per window.
  Tensor a = ones({1, 2, 2}, kFloat64).requires_grad_();
  avg_pool2d(a, 2).sum().backward();
  CHECK(test::values(a.grad()) == std::vector<double>{0.25, 0.25, 0.25, 0.25});
  // unfold's backward is fold: the overlap counts.
  Tensor u = ones({1, 1, 3, 3}, kFloat64).requires_grad_();
  unfold(u, 2).sum().backward();
  CHECK(test::values(u.grad()) == std::vector<double>{1, 2, 1, 2, 4, 2, 1, 2, 1});
  CHECK(unfold(u, 2).grad_fn()->name() == "unfold");
  CHECK(max_pool2d(m, 2).grad_fn()->name() == "max_pool2d");
}
