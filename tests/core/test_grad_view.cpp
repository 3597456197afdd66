// Gradients of view, shape, conversion and indexing ops: gradcheck and gradgradcheck per op, plus
// hand-computed cases and the in-place error paths.
#include <iostream>
#include <string>

#include "gradcheck.hpp"

using namespace ember;
using indexing::None;
using indexing::Slice;
using In = std::vector<Tensor>;

namespace {

struct Case {
  std::string name;
  test::GradFn fn;
  std::vector<Tensor> inputs;
  bool second_order = true;  // false: the backward is first-order only
};

Tensor idx(std::vector<int64_t> v) { return tensor(v, TensorOptions(kInt64)); }

void run_cases(const std::vector<Case>& cases, const char* group) {
  for (const Case& c : cases) {
    INFO(c.name);
    CHECK(test::gradcheck(c.fn, c.inputs));
    // These ops are linear, so their second derivative alone is zero; squaring the output makes
    // the first gradient depend on the inputs, so gradgradcheck runs the backward's backward.
    test::GradFn fn = c.fn;
    test::GradFn squared = [fn](const In& x) {
      Tensor y = fn(x);
      return y * y;
    };
    if (c.second_order) CHECK(test::gradgradcheck(squared, c.inputs));
  }
  std::cout << "[test_grad_view] " << group << ": " << cases.size() << " cases\n";
}

}  // namespace

TEST_CASE("view ops: grad matches finite differences") {
  using test::grad_input;
  std::vector<Case> cases = {
      {"view",
       [](const In& x) {
         return x[0].view({6, 4});
       },
       {grad_input({2, 3, 4})}},
      {"view 0-d",
       [](const In& x) {
         return x[0].view({1, 1});
       },
       {grad_input({})}},
      {"view_as",
       [](const In& x) { return x[0].view_as(x[1]); },
       {grad_input({2, 3}), grad_input({3, 2})}},
      {"reshape (view)",
       [](const In& x) {
         return x[0].reshape({3, -1});
       },
       {grad_input({2, 6})}},
      {"reshape (copies)",
       [](const In& x) { return x[0].t().reshape({12}); },
       {grad_input({3, 4})}},
      {"permute",
       [](const In& x) {
         return x[0].permute({2, 0, 1});
       },
       {grad_input({2, 3, 4})}},
      {"transpose", [](const In& x) { return x[0].transpose(0, 2); }, {grad_input({2, 3, 4})}},
      {"t", [](const In& x) { return x[0].t(); }, {grad_input({2, 3})}},
      {"transpose 0-d", [](const In& x) { return x[0].transpose(0, -1); }, {grad_input({})}},
      {"squeeze", [](const In& x) { return x[0].squeeze(); }, {grad_input({2, 1, 3, 1})}},
      {"squeeze(d)", [](const In& x) { return x[0].squeeze(1); }, {grad_input({2, 1, 3})}},
      {"squeeze(d) no-op", [](const In& x) { return x[0].squeeze(0); }, {grad_input({2, 3})}},
      {"squeeze 0-d", [](const In& x) { return x[0].squeeze(0); }, {grad_input({})}},
      {"unsqueeze", [](const In& x) { return x[0].unsqueeze(1); }, {grad_input({2, 3})}},
      {"unsqueeze(-1)", [](const In& x) { return x[0].unsqueeze(-1); }, {grad_input({2, 3})}},
      {"unsqueeze 0-d", [](const In& x) { return x[0].unsqueeze(0); }, {grad_input({})}},
      {"expand",
       [](const In& x) {
         return x[0].expand({2, 3, 4});
       },
       {grad_input({3, 1})}},
      {"expand 0-d",
       [](const In& x) {
         return x[0].expand({2, 3});
       },
       {grad_input({})}},
      {"expand_as",
       [](const In& x) { return x[0].expand_as(x[1]); },
       {grad_input({1, 3}), grad_input({4, 3})}},
      {"expanded input",
       [](const In& x) {
         return x[0].expand({4, 3}).t();
       },
       {grad_input({3})}},
      {"slice step", [](const In& x) { return x[0].slice(0, 1, 5, 2); }, {grad_input({5, 4})}},
      {"slice negative", [](const In& x) { return x[0].slice(1, -3); }, {grad_input({5, 4})}},
      {"slice empty", [](const In& x) { return x[0].slice(1, 2, 2); }, {grad_input({3, 4})}},
      {"slice of t()", [](const In& x) { return x[0].t().slice(0, 1, 3); }, {grad_input({3, 4})}},
      {"narrow", [](const In& x) { return x[0].narrow(1, 1, 2); }, {grad_input({5, 4})}},
      {"select", [](const In& x) { return x[0].select(1, -1); }, {grad_input({3, 4})}},
      {"select to 0-d", [](const In& x) { return x[0].select(0, 2); }, {grad_input({4})}},
      {"flatten", [](const In& x) { return x[0].flatten(1); }, {grad_input({2, 3, 4})}},
      {"flatten 0-d", [](const In& x) { return x[0].flatten(); }, {grad_input({})}},
      {"flatten non-contiguous",
       [](const In& x) { return x[0].t().flatten(); },
       {grad_input({3, 4})}},
      {"unflatten",
       [](const In& x) {
         return x[0].unflatten(1, {3, 4});
       },
       {grad_input({2, 12})}},
      {"diagonal", [](const In& x) { return x[0].diagonal(1); }, {grad_input({3, 4})}},
      {"diagonal negative offset",
       [](const In& x) { return x[0].diagonal(-1); },
       {grad_input({4, 3})}},
      {"diagonal dims",
       [](const In& x) { return x[0].diagonal(0, 1, 2); },
       {grad_input({2, 3, 3})}},
      {"chunk",
       [](const In& x) {
         auto c = x[0].chunk(2, 0);
         return cat({c[1], c[0]}, 0);
       },
       {grad_input({5, 3})}},
      {"split",
       [](const In& x) {
         auto c = x[0].split(2, 1);
         return cat({c[2], c[0]}, 1);
       },
       {grad_input({2, 5})}},
      {"split_with_sizes",
       [](const In& x) {
         auto c = x[0].split_with_sizes({1, 3}, 0);
         return c[1];
       },
       {grad_input({4, 2})}},
      {"unbind",
       [](const In& x) {
         auto u = x[0].unbind(1);
         return stack({u[2], u[0]});
       },
       {grad_input({2, 3})}},
      {"broadcast_tensors",
       [](const In& x) {
         return broadcast_tensors({x[0], x[1]})[0];
       },
       {grad_input({3, 1}), grad_input({4})}},
      {"as_strided",
       [](const In& x) {
         return x[0].as_strided({2, 2}, {1, 4}, 1);
       },
       {grad_input({3, 4})}},
      {"chain",
       [](const In& x) {
         return x[0].permute({1, 0, 2}).slice(2, 1).unsqueeze(0).squeeze(0);
       },
       {grad_input({2, 3, 4})}},
  };
  run_cases(cases, "views");
}

TEST_CASE("conversion and copy ops: grad matches finite differences") {
  using test::grad_input;
  std::vector<Case> cases = {
      {"clone", [](const In& x) { return x[0].clone(); }, {grad_input({2, 3})}},
      {"clone non-contiguous", [](const In& x) { return x[0].t().clone(); }, {grad_input({2, 3})}},
      {"contiguous", [](const In& x) { return x[0].t().contiguous(); }, {grad_input({2, 3})}},
      {"contiguous (no-op)", [](const In& x) { return x[0].contiguous(); }, {grad_input({2, 3})}},
      {"to (copy)",
       [](const In& x) { return x[0].to(kFloat64, false, true); },
       {grad_input({2, 3})}},
      {"copy_ into a fresh tensor",
       [](const In& x) {
         Tensor y = zeros({2, 3}, kFloat64);
         y.copy_(x[0]);
         return y;
       },
       {grad_input({3})}},
      {"copy_ over a non-leaf",
       [](const In& x) {
         Tensor y = x[0].clone();
         y.copy_(x[1]);
         return cat({y, x[0]}, 0);
       },
       {grad_input({2, 3}), grad_input({1, 3})}},
      {"fill_",
       [](const In& x) {
         Tensor y = x[0].clone();
         y.fill_(2.5);
         return cat({y, x[0]}, 0);
       },
       {grad_input({2, 3})}},
  };
  run_cases(cases, "conversions");
}

TEST_CASE("shape ops: grad matches finite differences") {
  using test::grad_input;
  std::vector<Case> cases = {
      {"cat dim 0",
       [](const In& x) {
         return cat({x[0], x[1]}, 0);
       },
       {grad_input({2, 3}), grad_input({4, 3})}},
      {"cat dim 1 non-contiguous",
       [](const In& x) {
         return cat({x[0].t(), x[1]}, 1);
       },
       {grad_input({3, 2}), grad_input({2, 1})}},
      {"cat with skipped (0,)",
       [](const In& x) {
         return cat({x[0], x[1], x[2]}, -1);
       },
       {grad_input({2, 2}), grad_input({0}), grad_input({2, 3})}},
      {"cat expanded",
       [](const In& x) {
         return cat({x[0].expand({2, 3}), x[1]}, 0);
       },
       {grad_input({3}), grad_input({1, 3})}},
      {"stack",
       [](const In& x) {
         return stack({x[0], x[1], x[2]}, 1);
       },
       {grad_input({2, 3}), grad_input({2, 3}), grad_input({2, 3})}},
      {"stack 0-d",
       [](const In& x) {
         return stack({x[0], x[1]});
       },
       {grad_input({}), grad_input({})}},
      {"pad constant",
       [](const In& x) {
         return pad(x[0], {1, 2}, "constant", 0.5);
       },
       {grad_input({2, 3})}},
      {"pad constant crop",
       [](const In& x) {
         return pad(x[0], {1, -1, -1, 2});
       },
       {grad_input({3, 4})}},
      {"pad reflect",
       [](const In& x) {
         return pad(x[0], {2, 1}, "reflect");
       },
       {grad_input({2, 4})}},
      {"pad replicate",
       [](const In& x) {
         return pad(x[0], {2, 2, 1, 0}, "replicate");
       },
       {grad_input({2, 3})}},
      {"flip",
       [](const In& x) {
         return x[0].flip({0, 1});
       },
       {grad_input({3, 4})}},
      {"flip size-1 dim", [](const In& x) { return x[0].flip({0}); }, {grad_input({1, 4})}},
      {"roll",
       [](const In& x) {
         return x[0].roll({1, -1}, {0, 1});
       },
       {grad_input({3, 4})}},
      {"roll flat", [](const In& x) { return x[0].roll({2}); }, {grad_input({3, 2})}},
      {"repeat",
       [](const In& x) {
         return x[0].repeat({2, 1, 3});
       },
       {grad_input({2, 3})}},
      {"repeat 0-d", [](const In& x) { return x[0].repeat({3}); }, {grad_input({})}},
      {"tril", [](const In& x) { return x[0].tril(); }, {grad_input({3, 4})}},
      {"triu", [](const In& x) { return x[0].triu(1); }, {grad_input({2, 3, 3})}},
      {"masked_select",
       [](const In& x) {
         return x[0].masked_select(tensor({true, false, true}, TensorOptions(kBool)));
       },
       {grad_input({2, 3})}},
  };
  run_cases(cases, "shape");
}

TEST_CASE("indexing: grad matches finite differences") {
  using test::grad_input;
  std::vector<Case> cases = {
      {"index basic",
       [](const In& x) {
         return x[0].index({1, Slice(0, None, 2), None, "..."});
       },
       {grad_input({3, 4, 2})}},
      {"index ellipsis",
       [](const In& x) {
         return x[0].index({"...", -1});
       },
       {grad_input({3, 4})}},
      {"index tensor (repeated)",
       [](const In& x) {
         return x[0].index({idx({0, 2, 0})});
       },
       {grad_input({3, 4})}},
      {"index two tensors",
       [](const In& x) {
         return x[0].index({Slice(), idx({1, 0}), idx({2, 2})});
       },
       {grad_input({2, 3, 4})}},
      {"index mask",
       [](const In& x) {
         return x[0].index({tensor({true, false, true}, TensorOptions(kBool))});
       },
       {grad_input({3, 2})}},
      {"index_put_ tensor",
       [](const In& x) {
         Tensor y = x[0].clone();
         y.index_put_({idx({2, 0})}, x[1]);
         return y;
       },
       {grad_input({3, 4}), grad_input({4})}},
      {"index_put_ basic",
       [](const In& x) {
         Tensor y = x[0].clone();
         y.index_put_({Slice(1, None), 0}, x[1]);
         return y;
       },
       {grad_input({3, 4}), grad_input({1, 1})}},
      {"index_put_ mask",
       [](const In& x) {
         Tensor y = x[0].clone();
         y.index_put_({tensor({false, true, true}, TensorOptions(kBool))}, x[1]);
         return y;
       },
       {grad_input({3, 2}), grad_input({2, 2})}},
  };
  run_cases(cases, "indexing");
}

TEST_CASE("view ops: hand-computed gradients") {
  SECTION("expand sums over the broadcast dims") {
    Tensor x = ones({3, 1}, kFloat64).requires_grad_();
    Tensor y = x.expand({2, 3, 4});
    autograd::backward({y}, {ones({2, 3, 4}, kFloat64)});
    REQUIRE(x.grad().defined());
    CHECK(x.grad().sizes() == IntArrayRef({3, 1}));
    for (double v : test::values(x.grad())) CHECK(v == 8.0);
  }
  SECTION("slice writes dy into the sliced positions") {
    Tensor x = zeros({5}, kFloat64).requires_grad_();
    Tensor y = x.slice(0, 1, 5, 2);  // elements 1 and 3
    autograd::backward({y}, {tensor({10.0, 20.0}, TensorOptions(kFloat64))});
    CHECK(test::values(x.grad()) == std::vector<double>{0, 10, 0, 20, 0});
  }
  SECTION("to(float32) sends a float64 gradient back") {
    Tensor x = ones({2}, kFloat64).requires_grad_();
    Tensor y = x.to(kFloat32);
    CHECK(y.requires_grad());
    autograd::backward({y}, {full({2}, 3.0, TensorOptions(kFloat32))});
    CHECK(x.grad().dtype() == kFloat64);
    CHECK(test::values(x.grad()) == std::vector<double>{3, 3});
  }
  SECTION("to(int64) is not differentiable") {
    Tensor x = ones({2}, kFloat64).requires_grad_();
    CHECK_FALSE(x.to(kInt64).requires_grad());
  }
  SECTION("cat splits dy") {
    Tensor a = zeros({1, 2}, kFloat64).requires_grad_();
    Tensor b = zeros({2, 2}, kFloat64).requires_grad_();
    Tensor y = cat({a, b}, 0);
    autograd::backward(
        {y}, {tensor({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, TensorOptions(kFloat64)).view({3, 2})});
    CHECK(test::values(a.grad()) == std::vector<double>{1, 2});
    CHECK(test::values(b.grad()) == std::vector<double>{3, 4, 5, 6});
  }
  SECTION("split, chunk and unbind record one node; its gradient concatenates the pieces'") {
    Tensor x = zeros({2, 6}, kFloat64).requires_grad_();
    std::vector<Tensor> p = x.split(2, 1);  // 3 pieces of (2, 2)
    REQUIRE(p.size() == 3);
    CHECK(p[0].grad_fn() == p[2].grad_fn());
    CHECK(p[0].grad_fn()->name() == "split");
    CHECK(p[1].grad_fn()->num_outputs == 3);
    // Piece 1 gets no gradient: zeros in its columns.
    autograd::backward({p[2], p[0]}, {full({2, 2}, 3.0, TensorOptions(kFloat64)),
                                      full({2, 2}, 1.0, TensorOptions(kFloat64))});
    CHECK(test::values(x.grad()) == std::vector<double>{1, 1, 0, 0, 3, 3, 1, 1, 0, 0, 3, 3});
    Tensor z = zeros({3, 2}, kFloat64).requires_grad_();
    std::vector<Tensor> c = z.chunk(2, 0);  // (2, 2) and (1, 2)
    CHECK(c[0].grad_fn() == c[1].grad_fn());
    autograd::backward({c[1]}, {tensor({5.0, 6.0}, TensorOptions(kFloat64)).view({1, 2})});
    CHECK(test::values(z.grad()) == std::vector<double>{0, 0, 0, 0, 5, 6});
    Tensor w = zeros({2, 3}, kFloat64).requires_grad_();
    std::vector<Tensor> u = w.unbind(1);
    CHECK(u[0].grad_fn() == u[2].grad_fn());
    CHECK(u[0].grad_fn()->name() == "unbind");
    autograd::backward({u[1]}, {tensor({7.0, 8.0}, TensorOptions(kFloat64))});
    CHECK(test::values(w.grad()) == std::vector<double>{0, 7, 0, 0, 8, 0});
    // The pieces stay views of x, and in-place writes through them stay refused.
    CHECK(p[1].data_ptr() == static_cast<char*>(x.data_ptr()) + 2 * sizeof(double));
    Tensor y = x.clone();
    CHECK_THROWS_AS(y.split(3, 1)[0].copy_(zeros({2, 3}, kFloat64)), ValueError);
  }
  SECTION("copy_ gives the overwritten value a zero gradient") {
    Tensor a = ones({2}, kFloat64).requires_grad_();
    Tensor b = ones({2}, kFloat64).requires_grad_();
    Tensor y = a.clone();
    y.copy_(b);
    autograd::backward({y}, {full({2}, 2.0, TensorOptions(kFloat64))});
    CHECK(test::values(b.grad()) == std::vector<double>{2, 2});
    CHECK(test::values(a.grad()) == std::vector<double>{0, 0});
  }
  SECTION("contiguous on a contiguous tensor is the tensor itself") {
    Tensor x = ones({2}, kFloat64).requires_grad_();
    CHECK(x.contiguous().is_same(x));
  }
  SECTION("no recording without grad") {
    Tensor x = ones({2, 3}, kFloat64);
    CHECK_FALSE(x.t().requires_grad());
    Tensor r = ones({2, 3}, kFloat64).requires_grad_();
    NoGradGuard ng;
    CHECK_FALSE(r.t().requires_grad());
    CHECK_FALSE(cat({r, r}).requires_grad());
  }
}

TEST_CASE("view ops: in-place errors") {
  Tensor x = ones({2, 3}, kFloat64).requires_grad_();
  SECTION("in-place on a leaf that requires grad") {
    CHECK_THROWS_AS(x.fill_(1.0), ValueError);
    CHECK_THROWS_AS(x.copy_(zeros({2, 3}, kFloat64)), ValueError);
    CHECK_THROWS_AS(x.index_put_({0}, zeros({3}, kFloat64)), ValueError);
  }
  SECTION("in-place through a view of a tensor that requires grad") {
    Tensor y = x.clone();
    Tensor v = y.select(0, 1);
    try {
      v.copy_(zeros({3}, kFloat64));
      FAIL("expected a ValueError");
    } catch (const ValueError& e) {
      CHECK(std::string(e.what()).find("[copy_] in-place operation on a view") !=
            std::string::npos);
    }
    CHECK_THROWS_AS(y.t().index_put_({0}, zeros({2}, kFloat64)), ValueError);
  }
  SECTION("allowed under NoGradGuard") {
    NoGradGuard ng;
    CHECK_NOTHROW(x.fill_(2.0));
    CHECK_NOTHROW(x.select(0, 0).copy_(zeros({3}, kFloat64)));
  }
  SECTION("as_strided over overlapping memory names the op") {
    Tensor e = x.clone().select(0, 0).unsqueeze(0).expand({4, 3});
    CHECK_THROWS_AS(e.as_strided({2}, {1}), ValueError);
  }
}
