// The autograd engine, exercised through custom functions (ops record their own nodes with
// their backward formulas; the gradcheck table covers those).
#include <cmath>

#include "gradcheck.hpp"

using namespace ember;
using autograd::AutogradContext;

namespace {
// y = x * x
struct Square : autograd::Function<Square> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x) {
    ctx->save_for_backward({x});
    return x * x;
  }
  static std::vector<Tensor> backward(AutogradContext* ctx, std::vector<Tensor> g);
};
// y = a * b
struct Mul : autograd::Function<Mul> {
  static Tensor forward(AutogradContext* ctx, const Tensor& a, const Tensor& b) {
    ctx->save_for_backward({a, b});
    return a * b;
  }
  static std::vector<Tensor> backward(AutogradContext* ctx, std::vector<Tensor> g) {
    auto s = ctx->get_saved_variables();
    return {Mul::apply(g[0], s[1]), Mul::apply(g[0], s[0])};
  }
};
// y = c * x for a constant c
struct Scale : autograd::Function<Scale> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, double c) {
    ctx->saved_data = {c};
    return x * c;
  }
  static std::vector<Tensor> backward(AutogradContext* ctx, std::vector<Tensor> g) {
    return {Scale::apply(g[0], ctx->saved_data[0])};
  }
};
std::vector<Tensor> Square::backward(AutogradContext* ctx, std::vector<Tensor> g) {
  Tensor x = ctx->get_saved_variables()[0];
  return {Mul::apply(g[0], Scale::apply(x, 2.0))};
}
// s = sum(x), gradient broadcast back
struct SumAll : autograd::Function<SumAll> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x) {
    ctx->saved_data = {static_cast<double>(x.dim())};
    ctx->save_for_backward({x});
    return x.sum();
  }
  static std::vector<Tensor> backward(AutogradContext* ctx, std::vector<Tensor> g) {
    Tensor x = ctx->get_saved_variables()[0];
    return {Expand::apply(g[0], x)};
  }
  // Broadcasts a 0-d gradient to x's shape (differentiable: its backward sums).
  struct Expand : autograd::Function<Expand> {
    static Tensor forward(AutogradContext* ctx, const Tensor& g, const Tensor& like) {
      ctx->save_for_backward({like});
      return g.expand(like.sizes()).contiguous();
    }
    static std::vector<Tensor> backward(AutogradContext*, std::vector<Tensor> g) {
      return {SumAll::apply(g[0]), Tensor()};
    }
  };
};
// Returns (values, indices): indices are not differentiable.
struct MaxWithIndex : autograd::Function<MaxWithIndex> {
  static std::vector<Tensor> forward(AutogradContext* ctx, const Tensor& x) {
    auto [v, i] = x.max(0);
    ctx->mark_non_differentiable({i});
    ctx->save_for_backward({i});
    ctx->saved_data = {static_cast<double>(x.size(0))};
    return {v, i};
  }
  static std::vector<Tensor> backward(AutogradContext* ctx, std::vector<Tensor> g) {
    Tensor i = ctx->get_saved_variables()[0];
    Tensor out = zeros({static_cast<int64_t>(ctx->saved_data[0])}, g[0].dtype());
    out.index_put_({i}, g[0]);
    return {out};
  }
};
// A backward that returns NaN.
struct BadBackward : autograd::Function<BadBackward> {
  static Tensor forward(AutogradContext*, const Tensor& x) { return x.clone(); }
  static std::vector<Tensor> backward(AutogradContext*, std::vector<Tensor> g) {
    return {full_like(g[0], std::nan(""))};
  }
};
}  // namespace

TEST_CASE("autograd: leaves, requires_grad and grad accumulation") {
  Tensor x = tensor({1.0, 2.0, 3.0}).requires_grad_();
  CHECK(x.is_leaf());
  CHECK(x.requires_grad());
  Tensor y = SumAll::apply(Square::apply(x));
  CHECK_FALSE(y.is_leaf());
  CHECK(y.requires_grad());
  CHECK(y.grad_fn() != nullptr);
  y.backward();
  CHECK(test::values(x.grad()) == std::vector<double>{2, 4, 6});
  SumAll::apply(Square::apply(x)).backward();  // accumulates
  CHECK(test::values(x.grad()) == std::vector<double>{4, 8, 12});
  x.mutable_grad() = Tensor();
  SumAll::apply(Scale::apply(x, 3.0)).backward();
  CHECK(test::values(x.grad()) == std::vector<double>{3, 3, 3});
  CHECK(x.grad().is_contiguous());
}

TEST_CASE("autograd: a shared input sums the gradients of every path") {
  Tensor x = tensor({1.0, -2.0}).requires_grad_();
  Tensor y = SumAll::apply(Mul::apply(x, x));  // x*x through one node with both edges to x
  y.backward();
  CHECK(test::values(x.grad()) == std::vector<double>{2, -4});
  Tensor z = tensor({3.0, 4.0}).requires_grad_();
  Tensor a = Scale::apply(z, 2.0);
  Tensor out = SumAll::apply(Mul::apply(a, Square::apply(a)));  // a^3, a used twice
  out.backward();
  // d/dz (2z)^3 = 3 (2z)^2 * 2 = 24 z^2
  CHECK(test::values(z.grad()) == std::vector<double>{216, 384});
}

TEST_CASE("autograd: backward errors name the problem") {
  Tensor x = tensor({1.0, 2.0}).requires_grad_();
  Tensor y = Square::apply(x);
  EMBER_CHECK_THROWS(y.backward(), ValueError, "[backward]", "one-element", "(2,)");
  EMBER_CHECK_THROWS(y.backward(ones({3})), ShapeError, "[backward]", "(3,)", "(2,)");
  EMBER_CHECK_THROWS(tensor({1.0}).backward(), ValueError, "[backward]", "does not require grad");
  Tensor s = SumAll::apply(y);
  s.backward();
  EMBER_CHECK_THROWS(s.backward(), ValueError, "[autograd]", "second time", "retain_graph=true");
}

TEST_CASE("autograd: retain_graph allows a second backward") {
  Tensor x = tensor({1.0, 2.0}).requires_grad_();
  Tensor s = SumAll::apply(Square::apply(x));
  s.backward({}, /*retain_graph=*/true);
  s.backward();
  CHECK(test::values(x.grad()) == std::vector<double>{4, 8});
}

TEST_CASE("autograd: an in-place change to a saved tensor is detected") {
  Tensor a = tensor({1.0, 2.0}).requires_grad_();
  Tensor b = tensor({3.0, 4.0});
  Tensor y = SumAll::apply(Mul::apply(a, b));
  b.add_(1);
  EMBER_CHECK_THROWS(y.backward(), ValueError,
                     "[autograd] a tensor saved by (anonymous namespace)::Mul was modified in "
                     "place: version 1, expected 0");
  // check_inplace refuses in-place ops on leaves that require grad.
  EMBER_CHECK_THROWS(autograd::check_inplace(a, "add_"), ValueError, "[add_]", "leaf");
  {
    NoGradGuard g;
    autograd::check_inplace(a, "add_");  // allowed without grad mode
  }
}

TEST_CASE("autograd: grad() returns gradients without touching .grad") {
  Tensor x = tensor({1.0, 2.0}).requires_grad_();
  Tensor w = tensor({5.0, 6.0}).requires_grad_();
  Tensor unused = tensor({0.0}).requires_grad_();
  Tensor y = SumAll::apply(Mul::apply(Square::apply(x), w));
  auto g = autograd::grad({y}, {x}, {}, /*retain_graph=*/true);
  CHECK(test::values(g[0]) == std::vector<double>{10, 24});
  CHECK_FALSE(x.grad().defined());
  CHECK_FALSE(w.grad().defined());
  EMBER_CHECK_THROWS(autograd::grad({y}, {x, unused}, {}, true), ValueError, "[grad]", "input 1",
                     "allow_unused");
  auto g2 = autograd::grad({y}, {unused, w}, {}, true, false, /*allow_unused=*/true);
  CHECK_FALSE(g2[0].defined());
  CHECK(test::values(g2[1]) == std::vector<double>{1, 4});
  // Gradient with respect to a non-leaf.
  Tensor h = Square::apply(x);
  Tensor z = SumAll::apply(Scale::apply(h, 3.0));
  CHECK(test::values(autograd::grad({z}, {h})[0]) == std::vector<double>{3, 3});
}

TEST_CASE("autograd: create_graph gives second derivatives") {
  // A single path per node: multi-path sums become differentiable once the ops record.
  Tensor x = tensor({1.0, 2.0, 3.0}).requires_grad_();
  Tensor y = SumAll::apply(Square::apply(Square::apply(x)));  // sum x^4
  auto g = autograd::grad({y}, {x}, {}, std::nullopt, /*create_graph=*/true);
  CHECK(test::values(g[0]) == std::vector<double>{4, 32, 108});
  CHECK(g[0].requires_grad());
  SumAll::apply(g[0]).backward();  // d/dx sum 4x^3 = 12x^2
  CHECK(test::values(x.grad()) == std::vector<double>{12, 48, 108});
  // Hessian-vector product of sum x^4 with v: 12 x^2 v.
  Tensor y2 = SumAll::apply(Square::apply(Square::apply(x)));
  Tensor gx = autograd::grad({y2}, {x}, {}, std::nullopt, true)[0];
  Tensor v = tensor({1.0, 0.0, 2.0});
  Tensor hv = autograd::grad({SumAll::apply(Mul::apply(gx, v))}, {x})[0];
  CHECK(test::values(hv) == std::vector<double>{12, 0, 216});
}

TEST_CASE("autograd: hooks and retain_grad") {
  Tensor x = tensor({1.0, 2.0}).requires_grad_();
  Tensor h = Square::apply(x);
  h.retain_grad();
  CHECK(h.retains_grad());
  std::vector<double> seen;
  h.register_hook([&](const Tensor& g) {
    seen = test::values(g);
    return Tensor();
  });
  auto id = x.register_hook([](const Tensor& g) { return Scale::apply(g, 10.0); });
  SumAll::apply(Scale::apply(h, 2.0)).backward();
  CHECK(seen == std::vector<double>{2, 2});
  CHECK(test::values(h.grad()) == std::vector<double>{2, 2});
  CHECK(test::values(x.grad()) == std::vector<double>{40, 80});  // 2 * 2x, times 10 by the hook
  x.remove_hook(id);
  x.mutable_grad() = Tensor();
  SumAll::apply(x).backward();
  CHECK(test::values(x.grad()) == std::vector<double>{1, 1});
  EMBER_CHECK_THROWS(tensor({1.0}).register_hook([](const Tensor& g) { return g; }), ValueError,
                     "[register_hook]");
}

TEST_CASE("autograd: grad modes and detach") {
  Tensor x = tensor({1.0, 2.0}).requires_grad_();
  {
    NoGradGuard guard;
    CHECK_FALSE(autograd::is_grad_enabled());
    Tensor y = Square::apply(x);
    CHECK_FALSE(y.requires_grad());
    {
      autograd::AutoGradMode on(true);
      CHECK(Square::apply(x).requires_grad());
    }
  }
  {
    InferenceMode guard;
    CHECK_FALSE(Square::apply(x).requires_grad());
  }
  CHECK(autograd::is_grad_enabled());
  Tensor y = Square::apply(x);
  Tensor d = y.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_alias_of(y));
  Tensor e = Square::apply(x);
  e.detach_();
  CHECK(e.is_leaf());
  CHECK_FALSE(e.requires_grad());
}

TEST_CASE("autograd: non-differentiable outputs and identity outputs") {
  Tensor x = tensor({1.0, 5.0, 3.0}).requires_grad_();
  auto out = MaxWithIndex::apply(x);
  CHECK(out[0].requires_grad());
  CHECK_FALSE(out[1].requires_grad());
  out[0].backward();
  CHECK(test::values(x.grad()) == std::vector<double>{0, 1, 0});
  CHECK(out[0].grad_fn()->name() == "(anonymous namespace)::MaxWithIndex");
}

TEST_CASE("autograd: anomaly mode names the node that produced NaN") {
  Tensor x = tensor({1.0, 2.0}).requires_grad_();
  Tensor y = SumAll::apply(BadBackward::apply(x));
  autograd::DetectAnomalyGuard guard;
  EMBER_CHECK_THROWS(y.backward(), ValueError, "[autograd] anomaly", "BadBackward", "(2,)");
}

TEST_CASE("autograd: a chain of 100000 nodes runs and frees without recursion") {
  Tensor x = tensor({1.0}).requires_grad_();
  Tensor y = x;
  for (int i = 0; i < 100000; ++i) y = Scale::apply(y, 1.0);
  y.backward();
  CHECK(x.grad().item<double>() == 1.0);
  y = Tensor();  // tears the whole graph down
  Tensor z = x;
  for (int i = 0; i < 100000; ++i) z = Scale::apply(z, 1.0);
  z = Tensor();  // never ran backward: teardown alone
  SUCCEED("no stack overflow");
}

TEST_CASE("autograd: saved tensors are freed with the graph") {
  int freed = 0;
  double buf[2] = {1.0, 2.0};
  Tensor w = tensor({3.0, 4.0}).requires_grad_();
  {
    Tensor b = from_blob(buf, {2}, [&](void*) { ++freed; }, kFloat64);
    Tensor y = SumAll::apply(Mul::apply(w, b));
    b = Tensor();
    CHECK(freed == 0);  // the node holds it
    y.backward();       // releases saved tensors
    CHECK(freed == 1);
  }
  CHECK(test::values(w.grad()) == std::vector<double>{1, 2});
}

TEST_CASE("autograd: ops record, and multi-path gradients stay differentiable") {
  Tensor x = tensor({1.0, 2.0, 3.0}).requires_grad_();
  Tensor y = (x * x * x).sum();  // x reaches the graph along three paths
  Tensor g = autograd::grad({y}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];
  CHECK(test::values(g) == std::vector<double>{3, 12, 27});
  g.sum().backward();  // d/dx sum 3x^2 = 6x
  CHECK(test::values(x.grad()) == std::vector<double>{6, 12, 18});
  // A WGAN-GP style penalty: (|grad| - 1)^2 differentiated w.r.t. a weight.
  auto penalty = [](const std::vector<Tensor>& in) {
    autograd::AutoGradMode on(true);  // also inside gradcheck's numerical pass
    Tensor inp = in[1].detach().requires_grad_();
    Tensor out = matmul(inp, in[0]).tanh().sum();
    Tensor gi = autograd::grad({out}, {inp}, {}, std::nullopt, /*create_graph=*/true)[0];
    return (gi.norm() - 1).square();
  };
  Tensor w = tensor({{0.5, -1.0}, {2.0, 0.25}}, kFloat64).requires_grad_();
  Tensor inp = tensor({{1.0, 2.0}}, kFloat64);
  CHECK(test::gradcheck(penalty, {w, inp}));
}
