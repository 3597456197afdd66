// Backward of the reductions: gradcheck (and gradgradcheck where the backward is written with
// differentiable ops) over a table of ops and inputs, plus hand-computed gradients.
#include <iostream>
#include <set>

#include "gradcheck.hpp"

using namespace ember;

namespace {
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
struct Case {
  std::string op;
  std::string name;
  Fn fn;
  std::vector<Tensor> inputs;
  bool second_order = true;
};

void run_table(const std::string& group, const std::vector<Case>& cases) {
  std::set<std::string> ops;
  for (const Case& c : cases) {
    INFO(c.op << ": " << c.name);
    ops.insert(c.op);
    CHECK(test::gradcheck(c.fn, c.inputs));
    if (c.second_order) CHECK(test::gradgradcheck(c.fn, c.inputs));
  }
  std::cout << "[test_grad_reduce] " << group << ": " << ops.size() << " ops, " << cases.size()
            << " cases\n";
}

Tensor t64(std::vector<double> v, IntArrayRef sizes) {
  return tensor(v, TensorOptions(kFloat64)).reshape(sizes);
}
Tensor leaf(std::vector<double> v, IntArrayRef sizes) {
  return t64(std::move(v), sizes).requires_grad_();
}
/// Distinct values, also in absolute value (no max ties), shuffled, in [-1.17, 1.23].
Tensor distinct(IntArrayRef sizes, uint64_t seed) {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)  // offset: no +-v pairs
    v[static_cast<size_t>(i)] = -1.17 + 2.4 * (i + 0.5) / n;
  uint64_t st = seed;
  for (int64_t i = n - 1; i > 0; --i) {
    st = st * 6364136223846793005ULL + 1442695040888963407ULL;
    std::swap(v[static_cast<size_t>(i)], v[static_cast<size_t>((st >> 33) % (i + 1))]);
  }
  return leaf(v, sizes);
}
/// Values with |x| in [0.3, 1.2] (off the abs / sign kinks).
Tensor off_zero(IntArrayRef sizes) {
  Tensor u = test::grad_input(sizes, 0.3, 1.2).detach();
  Tensor s = test::grad_input(sizes, -1.0, 1.0).detach();
  return where(s >= 0.0, u, -u).requires_grad_();
}
using V = const std::vector<Tensor>&;
}  // namespace

TEST_CASE("sum, mean, cumsum: grad matches finite differences") {
  Tensor x = test::grad_input({3, 4});
  Tensor z = test::grad_input({});
  Tensor big = test::grad_input({2, 3, 4});
  Tensor row = test::grad_input({4});
  Tensor e = test::grad_input({0, 3});
  std::vector<Case> cases = {
      {"sum", "all", [](V v) { return v[0].sum(); }, {x}},
      {"sum", "dim0", [](V v) { return v[0].sum({0}); }, {x}},
      {"sum", "dim1 keepdim", [](V v) { return v[0].sum({1}, true); }, {x}},
      {"sum", "dims 0,2", [](V v) { return v[0].sum({0, 2}); }, {big}},
      {"sum", "neg dim", [](V v) { return v[0].sum({-1}); }, {big}},
      {"sum", "0-d", [](V v) { return v[0].sum(); }, {z}},
      {"sum", "0-d dim 0", [](V v) { return v[0].sum({0}, true); }, {z}},
      {"sum", "transposed", [](V v) { return v[0].t().sum({1}); }, {x}},
      {"sum", "expanded", [](V v) { return v[0].expand({3, 4}).sum({1}); }, {row}},
      {"sum", "empty", [](V v) { return v[0].sum({0}); }, {e}},
      {"mean", "all", [](V v) { return v[0].mean(); }, {x}},
      {"mean", "dims 0,2 keepdim", [](V v) { return v[0].mean({0, 2}, true); }, {big}},
      {"mean", "sliced", [](V v) { return v[0].slice(1, 1, 4).mean({1}); }, {x}},
      {"mean", "0-d", [](V v) { return v[0].mean(); }, {z}},
      {"cumsum", "dim1", [](V v) { return v[0].cumsum(1); }, {x}},
      {"cumsum", "dim0 transposed", [](V v) { return v[0].t().cumsum(0); }, {x}},
      {"cumsum", "dim -1", [](V v) { return v[0].cumsum(-1); }, {big}},
      {"cumsum", "0-d", [](V v) { return v[0].cumsum(0); }, {z}},
  };
  run_table("sum/mean/cumsum", cases);
}

TEST_CASE("prod: grad matches finite differences, with and without zeros") {
  Tensor x = off_zero({3, 4});
  Tensor z = test::grad_input({});
  Tensor one_zero = leaf({0.5, 0.0, -1.5, 0.7, 1.1, -0.8}, {2, 3});
  Tensor row_zero = leaf({0.5, 0.9, -1.5, 0.7, 0.0, -0.8}, {3, 2});
  std::vector<Case> cases = {
      {"prod", "all", [](V v) { return v[0].prod(); }, {x}},
      {"prod", "dim0", [](V v) { return v[0].prod(0); }, {x}},
      {"prod", "dim1 keepdim", [](V v) { return v[0].prod(1, true); }, {x}},
      {"prod", "transposed", [](V v) { return v[0].t().prod(1); }, {x}},
      {"prod", "0-d", [](V v) { return v[0].prod(); }, {z}},
      // One zero: first order only (PyTorch is exact at second order there; we are not).
      {"prod", "one zero all", [](V v) { return v[0].prod(); }, {one_zero}, false},
      {"prod", "one zero dim1", [](V v) { return v[0].prod(1); }, {one_zero}, false},
      {"prod", "one zero in one row", [](V v) { return v[0].prod(1); }, {row_zero}, false},
  };
  run_table("prod", cases);
}

TEST_CASE("max, min, amax, amin: grad matches finite differences") {
  Tensor x = distinct({3, 4}, 1);
  Tensor big = distinct({2, 3, 4}, 2);
  Tensor z = test::grad_input({});
  std::vector<Case> cases = {
      {"max", "all", [](V v) { return v[0].max(); }, {x}},
      {"min", "all", [](V v) { return v[0].min(); }, {x}},
      {"max", "dim1", [](V v) { return std::get<0>(v[0].max(1)); }, {x}},
      {"max", "dim0 keepdim", [](V v) { return std::get<0>(v[0].max(0, true)); }, {x}},
      {"min", "dim -1", [](V v) { return std::get<0>(v[0].min(-1)); }, {big}},
      {"min", "transposed", [](V v) { return std::get<0>(v[0].t().min(1)); }, {x}},
      {"max", "0-d dim", [](V v) { return std::get<0>(v[0].max(0)); }, {z}},
      {"amax", "dims 0,2", [](V v) { return v[0].amax({0, 2}); }, {big}},
      {"amax", "all keepdim", [](V v) { return v[0].amax({}, true); }, {big}},
      {"amin", "dim1", [](V v) { return v[0].amin({1}); }, {x}},
      {"amin", "0-d", [](V v) { return v[0].amin({}); }, {z}},
  };
  run_table("max/min", cases);
}

TEST_CASE("var, std, var_mean, logsumexp, norm: grad matches finite differences") {
  Tensor x = off_zero({3, 4});
  Tensor big = off_zero({2, 3, 4});
  Tensor d = distinct({3, 4}, 3);
  std::vector<Case> cases = {
      {"var", "all", [](V v) { return v[0].var({}); }, {x}},
      {"var", "dim1 corr0", [](V v) { return v[0].var({1}, 0); }, {x}},
      {"var", "dims 0,2 keepdim", [](V v) { return v[0].var({0, 2}, 1, true); }, {big}},
      {"std", "all", [](V v) { return v[0].std({}); }, {x}},
      {"std", "dim0 transposed", [](V v) { return v[0].t().std({0}); }, {x}},
      {"var_mean", "both outputs",
       [](V v) {
         auto [var, m] = var_mean(v[0], {1}, 1, false);
         return var + m * 3.0;
       },
       {x}},
      {"var_mean", "mean only", [](V v) { return std::get<1>(var_mean(v[0], {0}, 1, true)); }, {x}},
      {"logsumexp", "dim1", [](V v) { return v[0].logsumexp({1}); }, {x}},
      {"logsumexp", "all keepdim", [](V v) { return v[0].logsumexp({}, true); }, {big}},
      {"norm", "p=2 all", [](V v) { return v[0].norm(2); }, {x}},
      {"norm", "p=2 dim1", [](V v) { return v[0].norm(2, {1}); }, {x}},
      {"norm", "p=1 dim0 keepdim", [](V v) { return v[0].norm(1, {0}, true); }, {x}},
      {"norm", "p=3 dims 0,2", [](V v) { return v[0].norm(3, {0, 2}); }, {big}},
      {"norm", "p=1.5 transposed", [](V v) { return v[0].t().norm(1.5, {0}); }, {x}},
      {"norm", "p=inf dim1", [](V v) { return v[0].norm(INFINITY, {1}); }, {d}},
  };
  run_table("var/std/logsumexp/norm", cases);
}

TEST_CASE("softmax, log_softmax: grad matches finite differences") {
  Tensor x = test::grad_input({3, 4});
  Tensor big = test::grad_input({2, 3, 4});
  Tensor z = test::grad_input({});
  std::vector<Case> cases = {
      {"softmax", "dim1", [](V v) { return v[0].softmax(1); }, {x}},
      {"softmax", "dim0 transposed", [](V v) { return v[0].t().softmax(0); }, {x}},
      {"softmax", "dim1 of 3-d", [](V v) { return v[0].softmax(1); }, {big}},
      {"softmax", "0-d", [](V v) { return v[0].softmax(0); }, {z}},
      {"log_softmax", "dim -1", [](V v) { return v[0].log_softmax(-1); }, {x}},
      {"log_softmax", "dim0 of 3-d", [](V v) { return v[0].log_softmax(0); }, {big}},
      {"log_softmax", "sliced", [](V v) { return v[0].slice(1, 1, 3).log_softmax(1); }, {x}},
  };
  run_table("softmax", cases);
}

TEST_CASE("reductions: hand-computed gradients") {
  SECTION("sum over dim 1 broadcasts dy back") {
    Tensor x = test::grad_input({2, 3});
    x.sum({1}).backward(t64({1.0, 2.0}, {2}));
    CHECK(test::values(x.grad()) == std::vector<double>{1, 1, 1, 2, 2, 2});
  }
  SECTION("mean divides by the count") {
    Tensor x = test::grad_input({2, 2});
    x.mean().backward();
    CHECK(test::values(x.grad()) == std::vector<double>{0.25, 0.25, 0.25, 0.25});
  }
  SECTION("prod without zeros, with one zero, with two zeros") {
    Tensor a = leaf({2.0, 3.0, 4.0}, {3});
    a.prod().backward();
    CHECK(test::values(a.grad()) == std::vector<double>{12, 8, 6});
    Tensor b = leaf({2.0, 0.0, 4.0}, {3});
    b.prod().backward();
    CHECK(test::values(b.grad()) == std::vector<double>{0, 8, 0});
    Tensor c = leaf({0.0, 3.0, 0.0}, {3});
    c.prod().backward();
    CHECK(test::values(c.grad()) == std::vector<double>{0, 0, 0});
  }
  SECTION("max over all dims shares dy among ties; max along a dim picks the index") {
    Tensor x = leaf({1.0, 3.0, 3.0, -2.0}, {4});
    x.max().backward();
    CHECK(test::values(x.grad()) == std::vector<double>{0, 0.5, 0.5, 0});
    Tensor y = leaf({1.0, 3.0, 3.0, -2.0}, {2, 2});
    auto [vals, idx] = y.max(0);
    CHECK_FALSE(idx.requires_grad());
    vals.backward(t64({1.0, 1.0}, {2}));
    // column 0: 1 vs 3 -> index 1; column 1: 3 vs -2 -> index 0
    CHECK(test::values(y.grad()) == std::vector<double>{0, 1, 1, 0});
    Tensor w = leaf({1.0, 3.0, 3.0, -2.0}, {4});
    w.amin({}).backward();
    CHECK(test::values(w.grad()) == std::vector<double>{0, 0, 0, 1});
  }
  SECTION("norm p=2 at zero gives 0; p=1 gives sign") {
    Tensor x = leaf({0.0, 0.0}, {2});
    x.norm(2).backward();
    CHECK(test::values(x.grad()) == std::vector<double>{0, 0});
    Tensor y = leaf({3.0, -4.0}, {2});
    y.norm(2).backward();
    CHECK(test::values(y.grad()) == std::vector<double>{0.6, -0.8});
    Tensor u = leaf({3.0, -4.0, 0.0}, {3});
    u.norm(1).backward();
    CHECK(test::values(u.grad()) == std::vector<double>{1, -1, 0});
  }
  SECTION("cumsum backward is a reversed cumsum") {
    Tensor x = test::grad_input({3});
    x.cumsum(0).backward(t64({1.0, 2.0, 3.0}, {3}));
    CHECK(test::values(x.grad()) == std::vector<double>{6, 5, 3});
  }
  SECTION("softmax rows: gradient of a constant dy is zero") {
    Tensor x = test::grad_input({2, 3});
    x.softmax(1).backward(ones({2, 3}, TensorOptions(kFloat64)));
    for (double g : test::values(x.grad())) CHECK(std::abs(g) < 1e-12);
  }
  SECTION("var of (1, 2, 3): 2 (x - mean) / (n - 1)") {
    Tensor x = leaf({1.0, 2.0, 3.0}, {3});
    x.var({}).backward();
    CHECK(test::values(x.grad()) == std::vector<double>{-1, 0, 1});
  }
}

TEST_CASE("reductions: integer outputs and no_grad record nothing") {
  Tensor x = test::grad_input({3, 4});
  CHECK_FALSE(x.argmax(1).requires_grad());
  CHECK_FALSE(x.argmin().requires_grad());
  CHECK_FALSE((x > 0.0).all().requires_grad());
  CHECK_FALSE((x > 0.0).any(1).requires_grad());
  CHECK_FALSE(std::get<1>(x.max(1)).requires_grad());
  CHECK(x.sum().requires_grad());
  NoGradGuard guard;
  CHECK_FALSE(x.sum().requires_grad());
  CHECK_FALSE(x.softmax(0).requires_grad());
}
