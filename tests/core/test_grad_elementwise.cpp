// Backward of the elementwise ops: arithmetic, pow, minimum/maximum, unary math and activations,
// clamp, where, masked_fill and the in-place forms, against finite differences (gradcheck) and
// second order (gradgradcheck), plus hand-computed cases and the in-place rules.
#include <cmath>
#include <functional>
#include <iostream>

#include "gradcheck.hpp"

using namespace ember;
using test::grad_input;
using Inputs = std::vector<Tensor>;

namespace {

struct GradCase {
  std::string name;
  test::GradFn fn;
  Inputs inputs;
  bool second_order = true;
};

/// A float64 leaf with |values| in [0.1, 1), random signs: away from the kinks at 0.
Tensor away_from_zero(IntArrayRef sizes) {
  Tensor mag = grad_input(sizes, 0.1, 1.0).detach();
  Tensor u = grad_input(sizes).detach();
  return where(gt(u, 0.0), mag, neg(mag)).requires_grad_();
}

/// A non-contiguous float64 leaf of the given 2-d shape (a transposed buffer).
Tensor transposed_input(int64_t rows, int64_t cols, double lo = -1.0, double hi = 1.0) {
  return grad_input({cols, rows}, lo, hi).detach().t().requires_grad_();
}

/// A float64 leaf expanded (stride 0) from a row of `cols` to (rows, cols).
Tensor expanded_input(int64_t rows, int64_t cols, double lo = -1.0, double hi = 1.0) {
  return grad_input({cols}, lo, hi).detach().expand({rows, cols}).requires_grad_();
}

/// A fixed bool mask of the given shape.
Tensor mask_of(IntArrayRef sizes, uint64_t seed) {
  Tensor u = grad_input(sizes, -1.0, 1.0, seed).detach();
  return gt(u, 0.0);
}

int run_table(const std::vector<GradCase>& cases) {
  for (const GradCase& c : cases) {
    INFO("op: " << c.name);
    CHECK(test::gradcheck(c.fn, c.inputs));
    if (c.second_order) CHECK(test::gradgradcheck(c.fn, c.inputs));
  }
  return static_cast<int>(cases.size());
}

}  // namespace

TEST_CASE("elementwise binary ops: grad matches finite differences") {
  Tensor c23 = mask_of({2, 3}, 5);
  std::vector<GradCase> cases = {
      {"add",
       [](const Inputs& x) { return add(x[0], x[1]); },
       {grad_input({2, 3}), grad_input({3})}},
      {"add alpha",
       [](const Inputs& x) { return add(x[0], x[1], 2.5); },
       {grad_input({2, 1}), grad_input({1, 3})}},
      {"add 0-d",
       [](const Inputs& x) { return x[0] + x[1]; },
       {grad_input({}), grad_input({2, 3})}},
      {"add scalar", [](const Inputs& x) { return x[0] + 2.0; }, {grad_input({2, 3})}},
      {"sub",
       [](const Inputs& x) { return x[0] - x[1]; },
       {transposed_input(2, 3), grad_input({2, 3})}},
      {"sub alpha",
       [](const Inputs& x) { return sub(x[0], x[1], 0.5); },
       {grad_input({3}), expanded_input(2, 3)}},
      {"rsub scalar", [](const Inputs& x) { return 2.0 - x[0]; }, {grad_input({4})}},
      {"mul", [](const Inputs& x) { return x[0] * x[1]; }, {grad_input({2, 3}), grad_input({3})}},
      {"mul non-contiguous",
       [](const Inputs& x) { return x[0] * x[1]; },
       {transposed_input(3, 2), expanded_input(3, 2)}},
      {"mul 0-d", [](const Inputs& x) { return x[0] * x[1]; }, {grad_input({}), grad_input({})}},
      {"mul self", [](const Inputs& x) { return x[0] * x[0]; }, {grad_input({5})}},
      {"mul scalar", [](const Inputs& x) { return x[0] * 3.0; }, {grad_input({2, 2})}},
      {"div",
       [](const Inputs& x) { return x[0] / x[1]; },
       {grad_input({2, 3}), grad_input({3}, 0.5, 2.0)}},
      {"div broadcast",
       [](const Inputs& x) { return x[0] / x[1]; },
       {grad_input({3, 1}), transposed_input(3, 4, 0.5, 2.0)}},
      {"div scalar", [](const Inputs& x) { return x[0] / 2.0; }, {grad_input({3})}},
      {"rdiv scalar", [](const Inputs& x) { return 1.5 / x[0]; }, {grad_input({3}, 0.5, 2.0)}},
      {"pow tensor^tensor",
       [](const Inputs& x) { return pow(x[0], x[1]); },
       {grad_input({2, 3}, 0.5, 2.0), grad_input({3}, -1.5, 1.5)}},
      {"pow tensor^scalar 3", [](const Inputs& x) { return pow(x[0], 3); }, {grad_input({2, 3})}},
      {"pow tensor^scalar 2", [](const Inputs& x) { return x[0].pow(2); }, {grad_input({4})}},
      {"pow tensor^scalar 0.5",
       [](const Inputs& x) { return pow(x[0], 0.5); },
       {grad_input({4}, 0.5, 2.0)}},
      {"pow tensor^scalar -1.5",
       [](const Inputs& x) { return pow(x[0], -1.5); },
       {transposed_input(2, 3, 0.5, 2.0)}},
      {"pow tensor^scalar 0", [](const Inputs& x) { return pow(x[0], 0); }, {grad_input({3})}},
      {"pow scalar^tensor", [](const Inputs& x) { return pow(2.5, x[0]); }, {grad_input({2, 3})}},
      {"minimum",
       [](const Inputs& x) { return minimum(x[0], x[1]); },
       {grad_input({2, 3}), grad_input({3})}},
      {"maximum",
       [](const Inputs& x) { return maximum(x[0], x[1]); },
       {grad_input({2, 3}), transposed_input(2, 3)}},
      {"where",
       [c23](const Inputs& x) { return where(c23, x[0], x[1]); },
       {grad_input({2, 3}), grad_input({3})}},
      {"where broadcast condition",
       [](const Inputs& x) { return where(mask_of({3}, 9), x[0], x[1]); },
       {grad_input({2, 1}), grad_input({})}},
      {"where scalar other",
       [c23](const Inputs& x) { return where(c23, x[0], 0.5); },
       {grad_input({2, 3})}},
      {"where scalar self",
       [c23](const Inputs& x) { return where(c23, 1.5, x[0]); },
       {expanded_input(2, 3)}},
      {"masked_fill",
       [c23](const Inputs& x) { return masked_fill(x[0], c23, 7.0); },
       {grad_input({3})}},
  };
  int n = run_table(cases);
  std::cout << "[test_grad_elementwise] binary table: " << n << " cases\n";
}

TEST_CASE("elementwise unary ops: grad matches finite differences") {
  auto u = [](Tensor (*f)(const Tensor&)) { return [f](const Inputs& x) { return f(x[0]); }; };
  std::vector<GradCase> cases = {
      {"neg", u(neg), {grad_input({2, 3})}},
      {"exp", u(exp), {transposed_input(2, 3)}},
      {"exp2", u(exp2), {grad_input({4})}},
      {"log", u(log), {grad_input({2, 3}, 0.5, 2.0)}},
      {"log2", u(log2), {grad_input({4}, 0.5, 2.0)}},
      {"log1p", u(log1p), {grad_input({4}, -0.5, 1.0)}},
      {"expm1", u(expm1), {grad_input({})}},
      {"sqrt", u(sqrt), {transposed_input(2, 3, 0.5, 2.0)}},
      {"rsqrt", u(rsqrt), {grad_input({4}, 0.5, 2.0)}},
      {"abs", u(abs), {away_from_zero({2, 3})}},
      {"sign", u(sign), {away_from_zero({4})}},
      {"sin", u(sin), {grad_input({2, 3})}},
      {"cos", u(cos), {expanded_input(2, 3)}},
      {"tan", u(tan), {grad_input({4})}},
      {"tanh", u(tanh), {grad_input({2, 3})}},
      {"sigmoid", u(sigmoid), {grad_input({2, 3}, -3.0, 3.0)}},
      {"relu", u(relu), {away_from_zero({2, 3})}},
      {"gelu", [](const Inputs& x) { return gelu(x[0]); }, {grad_input({2, 3}, -3.0, 3.0)}},
      {"gelu tanh",
       [](const Inputs& x) { return gelu(x[0], "tanh"); },
       {grad_input({2, 3}, -3.0, 3.0)}},
      {"silu", u(silu), {grad_input({2, 3}, -3.0, 3.0)}},
      {"leaky_relu", [](const Inputs& x) { return leaky_relu(x[0], 0.1); }, {away_from_zero({6})}},
      {"elu", [](const Inputs& x) { return elu(x[0], 1.5); }, {away_from_zero({6})}},
      {"softplus", [](const Inputs& x) { return softplus(x[0]); }, {grad_input({6}, -3.0, 3.0)}},
      {"softplus beta threshold",
       [](const Inputs& x) { return softplus(x[0], 2.0, 1.0); },
       {grad_input({6}, -1.0, 0.4)}},
      {"erf", u(erf), {grad_input({2, 3})}},
      {"reciprocal", u(reciprocal), {away_from_zero({4})}},
      {"square", u(square), {transposed_input(3, 2)}},
      {"floor", u(floor), {grad_input({4}, -3.0, 3.0)}},
      {"ceil", u(ceil), {grad_input({4}, -3.0, 3.0)}},
      {"round", u(round), {grad_input({4}, -3.0, 3.0)}},
      {"clamp", [](const Inputs& x) { return clamp(x[0], -0.5, 0.5); }, {grad_input({3, 4})}},
      {"clamp_min", [](const Inputs& x) { return clamp_min(x[0], 0.2); }, {transposed_input(3, 4)}},
      {"clamp_max", [](const Inputs& x) { return x[0].clamp_max(-0.2); }, {grad_input({3, 4})}},
  };
  int n = run_table(cases);
  std::cout << "[test_grad_elementwise] unary table: " << n << " cases\n";
}

TEST_CASE("elementwise in-place ops: grad matches finite differences") {
  Tensor c23 = mask_of({2, 3}, 21);
  std::vector<GradCase> cases = {
      {"add_",
       [](const Inputs& x) {
         Tensor y = x[0] * 1.0;
         y.add_(x[1], 2.0);
         return y;
       },
       {grad_input({2, 3}), grad_input({3})}},
      {"add_ scalar",
       [](const Inputs& x) {
         Tensor y = x[0] * 1.0;
         y += 3.0;
         return y * y;
       },
       {grad_input({3})}},
      {"sub_",
       [](const Inputs& x) {
         Tensor y = x[0] * 1.0;
         y.sub_(x[1], 0.5);
         return y;
       },
       {grad_input({2, 3}), grad_input({})}},
      {"mul_",
       [](const Inputs& x) {
         Tensor y = x[0] * 1.0;
         y.mul_(x[1]);
         return y;
       },
       {grad_input({2, 3}), grad_input({2, 1})}},
      {"mul_ self",
       [](const Inputs& x) {
         Tensor y = x[0] + 0.0;
         y.mul_(y);
         return y;
       },
       {grad_input({4})}},
      {"div_",
       [](const Inputs& x) {
         Tensor y = x[0] * 1.0;
         y.div_(x[1]);
         return y;
       },
       {grad_input({2, 3}), grad_input({3}, 0.5, 2.0)}},
      {"div_ self",
       [](const Inputs& x) {
         Tensor y = x[0] + 0.0;
         y.div_(y);
         return y * x[0];
       },
       {grad_input({4}, 0.5, 2.0)}},
      {"clamp_",
       [](const Inputs& x) {
         Tensor y = x[0] * 1.0;
         y.clamp_(-0.3, 0.4);
         return y;
       },
       {grad_input({3, 4})}},
      {"masked_fill_",
       [c23](const Inputs& x) {
         Tensor y = x[0] * 2.0;
         y.masked_fill_(c23, 1.0);
         return y;
       },
       {grad_input({2, 3})}},
      {"in-place into a no-grad tensor",
       [](const Inputs& x) {
         Tensor y = zeros({3}, kFloat64);
         y.add_(x[0]);
         y.mul_(x[0]);
         return y;
       },
       {grad_input({3})}},
  };
  int n = run_table(cases);
  std::cout << "[test_grad_elementwise] in-place table: " << n << " cases\n";
}

TEST_CASE("activation backward: one fused pass against float64 and the composite") {
  // First-order gradients of the activations run activation_backward: dy * f'(x or y) computed
  // in the opmath type and rounded once. Against the float64 gradient of the same rounded
  // values, for float32, bfloat16 and float16, contiguous and strided; the composite formula
  // (what create_graph differentiates) gives the same values to rounding.
  using Act = std::function<Tensor(const Tensor&)>;
  const std::vector<std::pair<std::string, Act>> acts = {
      {"gelu", [](const Tensor& x) { return gelu(x); }},
      {"gelu tanh", [](const Tensor& x) { return gelu(x, "tanh"); }},
      {"silu", [](const Tensor& x) { return silu(x); }},
      {"tanh", [](const Tensor& x) { return tanh(x); }},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }},
      {"relu", [](const Tensor& x) { return relu(x); }},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.2); }},
      {"elu", [](const Tensor& x) { return elu(x, 1.5); }},
      {"softplus", [](const Tensor& x) { return softplus(x, 2.0, 3.0); }}};
  for (const auto& [name, f] : acts) {
    for (DType dt : {kFloat32, kBFloat16, kFloat16}) {
      for (bool strided : {false, true}) {
        INFO(name << " " << dt << (strided ? " strided" : ""));
        Generator g(5);
        Tensor x0 = (rand({37, 29}, g, kFloat64) * 8.0 - 4.0).to(dt);
        Tensor dy = randn({37, 29}, g, kFloat64).to(dt);
        if (strided) {
          x0 = x0.t().contiguous().t();
          dy = dy.t().contiguous().t();
        }
        Tensor x = x0.detach().requires_grad_();
        Tensor dx = autograd::grad({f(x)}, {x}, {dy})[0];
        CHECK(dx.dtype() == dt);
        // float64 from the same rounded inputs
        Tensor x64 = x0.to(kFloat64).requires_grad_();
        Tensor want = autograd::grad({f(x64)}, {x64}, {dy.to(kFloat64)})[0];
        const double tol = dt == kFloat32 ? 2e-6 : dt == kBFloat16 ? 8e-3 : 1e-3;
        CHECK(test::rel_err(dx.to(kFloat64), want) <= tol);
        // create_graph takes the composite: the same values to rounding
        Tensor xc = x0.detach().requires_grad_();
        Tensor dc = autograd::grad({f(xc)}, {xc}, {dy}, std::nullopt, /*create_graph=*/true)[0];
        CHECK(test::rel_err(dc.detach().to(kFloat64), want) <= (dt == kFloat32 ? 1e-5 : 3e-2));
      }
    }
  }
}

TEST_CASE("elementwise grads: hand-computed values") {
  SECTION("mul and div") {
    Tensor a = tensor({2.0, 3.0}, kFloat64).requires_grad_();
    Tensor b = tensor({4.0, -1.0}, kFloat64).requires_grad_();
    (a * b + a / b).sum().backward();
    // d/da = b + 1/b, d/db = a - a/b^2
    CHECK(test::values(a.grad()) == std::vector<double>{4.25, -2.0});
    CHECK(test::values(b.grad()) == std::vector<double>{2.0 - 2.0 / 16.0, 0.0});
  }
  SECTION("broadcast gradient is summed to the input's shape") {
    Tensor a = grad_input({2, 3});
    Tensor b = tensor({1.0, 2.0, 3.0}, kFloat64).requires_grad_();
    sub(a, b, 2.0).sum().backward();
    CHECK(b.grad().sizes() == IntArrayRef({3}));
    CHECK(test::values(b.grad()) == std::vector<double>{-4.0, -4.0, -4.0});
  }
  SECTION("pow: zero base, zero exponent") {
    Tensor x = tensor({0.0, 2.0}, kFloat64).requires_grad_();
    Tensor e = tensor({2.0, 0.0}, kFloat64).requires_grad_();
    pow(x, e).sum().backward();
    // d/dx = e x^(e-1): 0 at x=0,e=2; 0 where e == 0. d/de = x^e log x: 0 at x == 0 (not NaN).
    CHECK(test::values(x.grad()) == std::vector<double>{0.0, 0.0});
    CHECK(test::values(e.grad()) == std::vector<double>{0.0, std::log(2.0)});
  }
  SECTION("minimum / maximum split ties half and half") {
    Tensor a = tensor({1.0, 2.0, 3.0}, kFloat64).requires_grad_();
    Tensor b = tensor({2.0, 2.0, 1.0}, kFloat64).requires_grad_();
    minimum(a, b).sum().backward();
    CHECK(test::values(a.grad()) == std::vector<double>{1.0, 0.5, 0.0});
    CHECK(test::values(b.grad()) == std::vector<double>{0.0, 0.5, 1.0});
    a.mutable_grad() = Tensor();
    b.mutable_grad() = Tensor();
    maximum(a, b).sum().backward();
    CHECK(test::values(a.grad()) == std::vector<double>{0.0, 0.5, 1.0});
    CHECK(test::values(b.grad()) == std::vector<double>{1.0, 0.5, 0.0});
  }
  SECTION("clamp passes the gradient on the boundary, none outside") {
    Tensor x = tensor({-2.0, -1.0, 0.0, 1.0, 2.0}, kFloat64).requires_grad_();
    clamp(x, -1.0, 1.0).sum().backward();
    CHECK(test::values(x.grad()) == std::vector<double>{0.0, 1.0, 1.0, 1.0, 0.0});
  }
  SECTION("relu, abs, sign, floor") {
    Tensor x = tensor({-2.0, 0.0, 3.0}, kFloat64).requires_grad_();
    (relu(x) + abs(x) * 2.0 + sign(x) + floor(x)).sum().backward();
    CHECK(test::values(x.grad()) == std::vector<double>{-2.0, 0.0, 3.0});
  }
  SECTION("where: no gradient for the unselected branch") {
    Tensor c = tensor({1.0, 0.0, 1.0}, kFloat64).to(kBool);
    Tensor a = tensor({1.0, 2.0, 3.0}, kFloat64).requires_grad_();
    Tensor b = tensor({5.0}, kFloat64).requires_grad_();
    (where(c, a, b) * 3.0).sum().backward();
    CHECK(test::values(a.grad()) == std::vector<double>{3.0, 0.0, 3.0});
    CHECK(test::values(b.grad()) == std::vector<double>{3.0});
  }
  SECTION("a float32 input gets a float32 gradient") {
    Tensor a = ones({2}, kFloat32).requires_grad_();
    Tensor b = full({2}, 3.0, kFloat64).requires_grad_();
    Tensor y = a * b;
    CHECK(y.dtype() == kFloat64);
    y.sum().backward();
    CHECK(a.grad().dtype() == kFloat32);
    CHECK(test::values(a.grad()) == std::vector<double>{3.0, 3.0});
  }
  SECTION("comparisons record nothing") {
    Tensor x = grad_input({3});
    CHECK_FALSE(gt(x, 0.0).requires_grad());
    CHECK_FALSE(isnan(x).requires_grad());
    CHECK(exp(x).requires_grad());
    NoGradGuard ng;
    CHECK_FALSE(exp(x).requires_grad());
  }
}

TEST_CASE("elementwise in-place ops: autograd rules") {
  SECTION("a leaf that requires grad cannot be modified in place") {
    Tensor x = grad_input({3});
    EMBER_CHECK_THROWS(x.add_(1.0), ValueError, "[add_]", "leaf");
    EMBER_CHECK_THROWS(x.mul_(x), ValueError, "[mul_]");
    EMBER_CHECK_THROWS(x.clamp_(0.0, 1.0), ValueError, "[clamp_]");
    EMBER_CHECK_THROWS(x.masked_fill_(gt(x, 0.0), 1.0), ValueError, "[masked_fill_]");
    NoGradGuard ng;
    x.add_(1.0);  // allowed without grad mode
  }
  SECTION("modifying a tensor saved for backward is caught") {
    Tensor x = grad_input({3});
    Tensor y = x * 1.0;
    Tensor z = exp(y);  // saves its output z
    z.mul_(2.0);
    EMBER_CHECK_THROWS(z.sum().backward(), ValueError, "exp", "modified in place");
  }
  SECTION("mul_ uses self's value from before the write") {
    Tensor x = tensor({2.0, 3.0}, kFloat64).requires_grad_();
    Tensor w = tensor({5.0, 7.0}, kFloat64).requires_grad_();
    Tensor y = x * 1.0;
    y.mul_(w);
    y.sum().backward();
    CHECK(test::values(x.grad()) == std::vector<double>{5.0, 7.0});
    CHECK(test::values(w.grad()) == std::vector<double>{2.0, 3.0});
    CHECK(y.grad_fn()->name() == "mul_");
  }
}
