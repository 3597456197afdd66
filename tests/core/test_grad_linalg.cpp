// Backward of the linear algebra ops: matmul (every 1-D / 2-D / batched broadcasting case), mm,
// bmm, addmm, baddbmm, outer, dot, linear, linear_gelu, linear_relu. Table-driven gradcheck and
// gradgradcheck, plus hand-computed gradients.
#include <iostream>
#include <string>

#include "gradcheck.hpp"

using namespace ember;
using test::grad_input;

namespace {

using Inputs = std::vector<Tensor>;

using Case = test::GradCase;

/// A leaf that requires grad and is stored non-contiguously: the transpose of a (c, r) tensor.
Tensor transposed_input(int64_t r, int64_t c) {
  return grad_input({c, r}).detach().t().requires_grad_();
}

/// A leaf that requires grad whose dim 0 is expanded (stride 0) from size 1 to n.
Tensor expanded_input(std::vector<int64_t> sizes) {
  std::vector<int64_t> one = sizes;
  one[0] = 1;
  return grad_input(one).detach().expand(sizes).requires_grad_();
}

Tensor mm_fn(const Inputs& x) { return mm(x[0], x[1]); }
Tensor bmm_fn(const Inputs& x) { return bmm(x[0], x[1]); }
Tensor matmul_fn(const Inputs& x) { return matmul(x[0], x[1]); }

std::vector<Case> cases() {
  std::vector<Case> c;
  // ---- matmul: every rank combination ----
  c.push_back({"matmul 1-D x 1-D", matmul_fn, {grad_input({3}), grad_input({3})}});
  c.push_back({"matmul 1-D x 2-D", matmul_fn, {grad_input({3}), grad_input({3, 4})}});
  c.push_back({"matmul 2-D x 1-D", matmul_fn, {grad_input({2, 3}), grad_input({3})}});
  c.push_back({"matmul 2-D x 2-D", matmul_fn, {grad_input({2, 3}), grad_input({3, 4})}});
  c.push_back({"matmul 3-D x 2-D", matmul_fn, {grad_input({5, 2, 3}), grad_input({3, 4})}});
  c.push_back({"matmul 4-D x 2-D", matmul_fn, {grad_input({2, 3, 2, 3}), grad_input({3, 2})}});
  c.push_back({"matmul 2-D x 3-D", matmul_fn, {grad_input({2, 3}), grad_input({5, 3, 4})}});
  c.push_back({"matmul 3-D x 3-D", matmul_fn, {grad_input({4, 2, 3}), grad_input({4, 3, 2})}});
  c.push_back(
      {"matmul batch broadcast", matmul_fn, {grad_input({2, 1, 2, 3}), grad_input({3, 3, 4})}});
  c.push_back({"matmul batch 1 vs 4", matmul_fn, {grad_input({1, 2, 3}), grad_input({4, 3, 2})}});
  c.push_back({"matmul 1-D x 3-D", matmul_fn, {grad_input({3}), grad_input({2, 3, 4})}});
  c.push_back({"matmul 3-D x 1-D", matmul_fn, {grad_input({2, 4, 3}), grad_input({3})}});
  c.push_back(
      {"matmul transposed operands", matmul_fn, {transposed_input(2, 3), transposed_input(3, 4)}});
  c.push_back(
      {"matmul expanded batch", matmul_fn, {expanded_input({3, 2, 3}), grad_input({3, 3, 2})}});
  // ---- mm / bmm ----
  c.push_back({"mm", mm_fn, {grad_input({2, 3}), grad_input({3, 4})}});
  c.push_back({"mm transposed", mm_fn, {transposed_input(2, 3), transposed_input(3, 4)}});
  c.push_back({"bmm", bmm_fn, {grad_input({2, 3, 4}), grad_input({2, 4, 2})}});
  c.push_back({"bmm expanded", bmm_fn, {expanded_input({3, 2, 4}), grad_input({3, 4, 2})}});
  // ---- addmm / baddbmm ----
  auto addmm_fn = [](const Inputs& x) { return addmm(x[0], x[1], x[2], 0.5, 2.0); };
  c.push_back({"addmm", addmm_fn, {grad_input({2, 4}), grad_input({2, 3}), grad_input({3, 4})}});
  c.push_back(
      {"addmm row input", addmm_fn, {grad_input({4}), grad_input({2, 3}), grad_input({3, 4})}});
  c.push_back(
      {"addmm 0-d input", addmm_fn, {grad_input({}), grad_input({2, 3}), transposed_input(3, 4)}});
  c.push_back({"addmm defaults",
               [](const Inputs& x) { return addmm(x[0], x[1], x[2]); },
               {grad_input({2, 1}), grad_input({2, 3}), grad_input({3, 4})}});
  auto baddbmm_fn = [](const Inputs& x) { return baddbmm(x[0], x[1], x[2], -1.5, 0.5); };
  c.push_back({"baddbmm",
               baddbmm_fn,
               {grad_input({2, 3, 4}), grad_input({2, 3, 5}), grad_input({2, 5, 4})}});
  c.push_back({"baddbmm broadcast input",
               baddbmm_fn,
               {grad_input({4}), grad_input({2, 3, 5}), grad_input({2, 5, 4})}});
  // ---- outer / dot ----
  c.push_back({"outer",
               [](const Inputs& x) { return outer(x[0], x[1]); },
               {grad_input({3}), grad_input({4})}});
  c.push_back(
      {"dot", [](const Inputs& x) { return dot(x[0], x[1]); }, {grad_input({5}), grad_input({5})}});
  c.push_back({"dot strided",
               [](const Inputs& x) { return dot(x[0], x[1]); },
               {transposed_input(1, 4).squeeze(0).detach().requires_grad_(),
                grad_input({8}).detach().slice(0, 0, std::nullopt, 2).requires_grad_()}});
  // ---- linear ----
  auto linear_fn = [](const Inputs& x) { return linear(x[0], x[1], x[2]); };
  c.push_back({"linear 2-D", linear_fn, {grad_input({4, 3}), grad_input({5, 3}), grad_input({5})}});
  c.push_back(
      {"linear 3-D", linear_fn, {grad_input({2, 4, 3}), grad_input({5, 3}), grad_input({5})}});
  c.push_back({"linear 1-D", linear_fn, {grad_input({3}), grad_input({5, 3}), grad_input({5})}});
  c.push_back({"linear transposed x",
               linear_fn,
               {transposed_input(4, 3), transposed_input(5, 3), grad_input({1})}});
  c.push_back({"linear no bias",
               [](const Inputs& x) { return linear(x[0], x[1]); },
               {grad_input({2, 3, 3}), grad_input({2, 3})}});
  // ---- linear_gelu (on the CPU the two ops; the CUDA fused node: tests/cuda) ----
  c.push_back({"linear_gelu tanh",
               [](const Inputs& x) { return linear_gelu(x[0], x[1], x[2], "tanh"); },
               {grad_input({2, 4, 3}), grad_input({5, 3}), grad_input({5})}});
  c.push_back({"linear_gelu erf",
               [](const Inputs& x) { return linear_gelu(x[0], x[1], x[2]); },
               {grad_input({4, 3}), grad_input({5, 3}), grad_input({5})}});
  c.push_back({"linear_relu",
               [](const Inputs& x) { return linear_relu(x[0], x[1], x[2]); },
               {grad_input({2, 4, 3}), grad_input({5, 3}), grad_input({5})}});
  c.push_back(
      {"linear_residual",
       [](const Inputs& x) { return linear_residual(x[0], x[1], x[2], x[3]); },
       {grad_input({2, 4, 3}), grad_input({5, 3}), grad_input({5}), grad_input({2, 4, 5})}});
  c.push_back({"linear_residual broadcast residual, no bias",
               [](const Inputs& x) { return linear_residual(x[0], x[1], Tensor(), x[2]); },
               {grad_input({4, 3}), grad_input({5, 3}), grad_input({5})}});
  return c;
}

}  // namespace

TEST_CASE("linalg: grads match finite differences (gradcheck and gradgradcheck)") {
  const std::vector<Case> table = cases();
  test::check_grad_table(table);
  std::cout << "[test_grad_linalg] gradcheck + gradgradcheck over " << table.size()
            << " cases of 8 ops (matmul, mm, bmm, addmm, baddbmm, outer, dot, linear)\n";
}

TEST_CASE("matmul: hand-computed gradients, batch broadcast summed to each input") {
  // a (2, 1, 1, 2) ones, b (3, 2, 1) = [[1],[2]] per batch: y = a @ b (2, 3, 1, 1), dy = 1.
  // da = sum over the 3 batches of b^T = 3 * [1, 2]; db = sum over the 2 batches of a^T = [2, 2].
  Tensor a = ones({2, 1, 1, 2}, kFloat64).requires_grad_();
  Tensor b =
      tensor({1.0, 2.0}, kFloat64).reshape({2, 1}).expand({3, 2, 1}).contiguous().requires_grad_();
  matmul(a, b).sum().backward();
  REQUIRE(a.grad().sizes() == IntArrayRef({2, 1, 1, 2}));
  REQUIRE(b.grad().sizes() == IntArrayRef({3, 2, 1}));
  CHECK(test::values(a.grad()) == std::vector<double>{3, 6, 3, 6});
  CHECK(test::values(b.grad()) == std::vector<double>{2, 2, 2, 2, 2, 2});

  // 1-D x 1-D: d/da (a . b) = b.
  Tensor u = tensor({1.0, 2.0, 3.0}, kFloat64).requires_grad_();
  Tensor v = tensor({4.0, 5.0, 6.0}, kFloat64).requires_grad_();
  matmul(u, v).backward();
  CHECK(test::values(u.grad()) == std::vector<double>{4, 5, 6});
  CHECK(test::values(v.grad()) == std::vector<double>{1, 2, 3});
}

TEST_CASE("linear: hand-computed gradients") {
  // x (2, 2), W (1, 2), b (1,): y = x W^T + b; with dy = 1: dx = rows of W, dW = column sums of x,
  // db = batch size.
  Tensor x = tensor({{1.0, 2.0}, {3.0, 4.0}}, kFloat64).requires_grad_();
  Tensor w = tensor({{0.5, -1.0}}, kFloat64).requires_grad_();
  Tensor b = tensor({0.25}, kFloat64).requires_grad_();
  Tensor y = linear(x, w, b);
  CHECK(y.grad_fn()->name() == "linear");
  y.sum().backward();
  CHECK(test::values(x.grad()) == std::vector<double>{0.5, -1.0, 0.5, -1.0});
  CHECK(test::values(w.grad()) == std::vector<double>{4.0, 6.0});
  CHECK(test::values(b.grad()) == std::vector<double>{2.0});
}

TEST_CASE("linalg: one node per op, none for integer results or without grad") {
  Tensor a = grad_input({2, 3}), b = grad_input({3});
  Tensor y = matmul(a, b);
  REQUIRE(y.grad_fn());
  CHECK(y.grad_fn()->name() == "matmul");
  CHECK(y.grad_fn()->next_edges.size() == 2);
  // The edges lead straight to the leaves' accumulators: no internal view/expand nodes.
  CHECK(y.grad_fn()->next_edges[0].fn->name() != "unsqueeze");
  CHECK(y.grad_fn()->next_edges[1].fn->name() != "unsqueeze");
  CHECK(addmm(zeros({2}, kFloat64), a, grad_input({3, 2}), 1, 1).grad_fn()->name() == "addmm");
  {
    NoGradGuard no_grad;
    CHECK_FALSE(matmul(a, b).requires_grad());
  }
  Tensor i = ones({2, 2}, kInt64);
  CHECK_FALSE(mm(i, i).requires_grad());
  CHECK_FALSE(matmul(a.detach(), b.detach()).requires_grad());
  // Only the inputs that require grad get a gradient.
  Tensor c = grad_input({3, 2}).detach();
  mm(a, c).sum().backward();
  CHECK(a.grad().defined());
  CHECK_FALSE(c.grad().defined());
}
