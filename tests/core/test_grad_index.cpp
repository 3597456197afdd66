// Backward of the index ops: gather, scatter (tensor and scalar forms), scatter_add,
// index_select, index_add, embedding (with padding_idx), sort and topk values, and the in-place
// scatter_ / scatter_add_ / index_add_. Table-driven gradcheck and gradgradcheck, plus
// hand-computed gradients.
#include <iostream>
#include <string>

#include "gradcheck.hpp"

using namespace ember;
using test::grad_input;

namespace {

using Inputs = std::vector<Tensor>;

using Case = test::GradCase;

Tensor idx(std::vector<int64_t> v, std::vector<int64_t> shape) {
  return tensor(v, kInt64).reshape(shape);
}

/// A leaf that requires grad and is stored non-contiguously: the transpose of a (c, r) tensor.
Tensor transposed_input(int64_t r, int64_t c) {
  return grad_input({c, r}).detach().t().requires_grad_();
}

/// Distinct, well-separated values (no ties for sort/topk), shuffled, as a leaf requiring grad.
Tensor distinct_input(std::vector<int64_t> shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  std::vector<double> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(static_cast<double>((i * 7) % n) * 0.1 - 0.3);
  return tensor(v, kFloat64).reshape(shape).requires_grad_();
}

/// In-place ops are checked on a clone, so the leaf itself is not modified.
std::vector<Case> cases() {
  std::vector<Case> c;
  // ---- gather ----
  const Tensor gi = idx({0, 2, 2, 1, 0, 0}, {2, 3});  // repeated indices accumulate
  c.push_back(
      {"gather dim 1", [gi](const Inputs& x) { return x[0].gather(1, gi); }, {grad_input({2, 4})}});
  c.push_back({"gather dim 0",
               [](const Inputs& x) {
                 return x[0].gather(0, idx({1, 0, 1}, {1, 3}));
               },
               {transposed_input(2, 3)}});
  c.push_back({"gather 0-d",
               [](const Inputs& x) { return x[0].gather(0, idx({0}, {})); },
               {grad_input({})}});
  // ---- scatter / scatter_add ----
  const Tensor si = idx({1, 0, 3, 2, 0, 1}, {2, 3});  // distinct per row: no write conflicts
  c.push_back({"scatter",
               [si](const Inputs& x) { return x[0].scatter(1, si, x[1]); },
               {grad_input({2, 4}), grad_input({2, 3})}});
  c.push_back({"scatter larger src",
               [si](const Inputs& x) { return x[0].scatter(1, si, x[1]); },
               {grad_input({2, 4}), grad_input({3, 5})}});
  c.push_back({"scatter scalar",
               [si](const Inputs& x) { return x[0].scatter(1, si, 2.5); },
               {grad_input({2, 4})}});
  c.push_back({"scatter_add",
               [gi](const Inputs& x) { return x[0].scatter_add(1, gi, x[1]); },
               {grad_input({2, 4}), transposed_input(2, 3)}});
  c.push_back({"scatter_add larger src",
               [gi](const Inputs& x) { return x[0].scatter_add(1, gi, x[1]); },
               {grad_input({3, 3}), grad_input({2, 4})}});
  c.push_back({"scatter_",
               [si](const Inputs& x) { return x[0].clone().scatter_(1, si, x[1]); },
               {grad_input({2, 4}), grad_input({2, 3})}});
  c.push_back({"scatter_add_",
               [gi](const Inputs& x) { return (x[0] * 1.0).scatter_add_(1, gi, x[1]); },
               {grad_input({2, 4}), grad_input({2, 3})}});
  // ---- index_select / index_add ----
  const Tensor ii = idx({2, 0, 2}, {3});
  c.push_back({"index_select dim 0",
               [ii](const Inputs& x) { return x[0].index_select(0, ii); },
               {grad_input({3, 2})}});
  c.push_back({"index_select dim 1 int32",
               [](const Inputs& x) {
                 return x[0].index_select(1, tensor(std::vector<int32_t>{1, 1, 0}, kInt32));
               },
               {transposed_input(2, 3)}});
  c.push_back({"index_select 0-d",
               [](const Inputs& x) { return x[0].index_select(0, idx({0}, {})); },
               {grad_input({})}});
  c.push_back({"index_add",
               [ii](const Inputs& x) { return x[0].index_add(0, ii, x[1], 1.5); },
               {grad_input({4, 2}), grad_input({3, 2})}});
  c.push_back({"index_add dim 1",
               [ii](const Inputs& x) { return x[0].index_add(1, ii, x[1]); },
               {grad_input({2, 3}), transposed_input(2, 3)}});
  c.push_back({"index_add_",
               [ii](const Inputs& x) { return x[0].clone().index_add_(0, ii, x[1], -2.0); },
               {grad_input({3, 2}), grad_input({3, 2})}});
  // ---- embedding ----
  c.push_back({"embedding",
               [](const Inputs& x) {
                 return embedding(x[0], idx({0, 3, 3, 1}, {2, 2}));
               },
               {grad_input({4, 3})}});
  // padding_idx zeroes a row's gradient by definition (not the true derivative), so it is
  // checked by hand below; here it names a row that is not looked up.
  c.push_back({"embedding padding_idx unused",
               [](const Inputs& x) {
                 return embedding(x[0], idx({0, 3, 3, 1, 0}, {5}), 2);
               },
               {grad_input({4, 3})}});
  // ---- sort / topk values ----
  c.push_back({"sort values",
               [](const Inputs& x) { return std::get<0>(x[0].sort(1)); },
               {distinct_input({2, 5})}});
  c.push_back({"sort descending dim 0",
               [](const Inputs& x) { return std::get<0>(x[0].sort(0, true)); },
               {distinct_input({4, 3})}});
  c.push_back({"topk values",
               [](const Inputs& x) { return std::get<0>(x[0].topk(2, 1)); },
               {distinct_input({3, 5})}});
  c.push_back({"topk smallest",
               [](const Inputs& x) { return std::get<0>(x[0].topk(3, 0, false)); },
               {distinct_input({5, 2})}});
  return c;
}

}  // namespace

TEST_CASE("index: grads match finite differences (gradcheck and gradgradcheck)") {
  const std::vector<Case> table = cases();
  test::check_grad_table(table);
  std::cout << "[test_grad_index] gradcheck + gradgradcheck over " << table.size()
            << " cases of 11 ops (gather, scatter (tensor + scalar), scatter_add, scatter_, "
               "scatter_add_, "
               "index_select, index_add, index_add_, embedding, sort, topk)\n";
}

TEST_CASE("gather / index_select / embedding: hand-computed gradients") {
  Tensor x = zeros({3}, kFloat64).requires_grad_();
  x.gather(0, idx({2, 2, 0}, {3})).sum().backward();
  CHECK(test::values(x.grad()) == std::vector<double>{1, 0, 2});

  Tensor y = zeros({3, 2}, kFloat64).requires_grad_();
  y.index_select(0, idx({1, 1, 1}, {3})).sum().backward();
  CHECK(test::values(y.grad()) == std::vector<double>{0, 0, 3, 3, 0, 0});

  // Rows looked up at padding_idx (2) get no gradient; row 0 is looked up twice.
  Tensor w = ones({3, 2}, kFloat64).requires_grad_();
  Tensor e = embedding(w, idx({0, 2, 0, 1}, {4}), 2);
  CHECK(e.grad_fn()->name() == "embedding");
  e.sum().backward();
  CHECK(test::values(w.grad()) == std::vector<double>{2, 2, 1, 1, 0, 0});
}

TEST_CASE("sort / topk: indices are not differentiable, values scatter back") {
  Tensor x = tensor({3.0, 1.0, 2.0}, kFloat64).requires_grad_();
  auto [values, indices] = x.topk(2);
  CHECK(values.requires_grad());
  CHECK_FALSE(indices.requires_grad());
  (values * tensor({10.0, 1.0}, kFloat64)).sum().backward();  // values = [3, 2]
  CHECK(test::values(x.grad()) == std::vector<double>{10, 0, 1});
  CHECK_FALSE(argsort(x).requires_grad());
}

TEST_CASE("scatter_ / scatter_add_ / index_add_: in-place checks and recording") {
  Tensor leaf = grad_input({2, 3});
  Tensor i = idx({0, 1}, {1, 2});
  EMBER_CHECK_THROWS(leaf.scatter_(1, i, grad_input({1, 2})), ValueError, "[scatter_]");
  EMBER_CHECK_THROWS(leaf.scatter_add_(1, i, grad_input({1, 2})), ValueError, "[scatter_add_]");
  EMBER_CHECK_THROWS(leaf.index_add_(0, idx({1}, {1}), grad_input({1, 3})), ValueError,
                     "[index_add_]");
  {
    NoGradGuard no_grad;  // allowed without grad mode
    Tensor before = leaf.detach().clone();
    leaf.index_add_(0, idx({1}, {1}), ones({1, 3}, kFloat64));
    CHECK(test::values(leaf - before) == std::vector<double>{0, 0, 0, 1, 1, 1});
  }
  // A buffer that does not require grad becomes part of the graph through src.
  Tensor buf = zeros({2, 3}, kFloat64);
  Tensor src = grad_input({1, 2});
  buf.scatter_add_(1, i, src);
  REQUIRE(buf.requires_grad());
  CHECK(buf.grad_fn()->name() == "scatter_add_");
  (buf * 2.0).sum().backward();
  CHECK(test::values(src.grad()) == std::vector<double>{2, 2});

  // Self's old history is the input edge: overwritten positions get no gradient.
  Tensor a = grad_input({2, 3});
  Tensor b = a * 1.0;
  b.scatter_(1, i, zeros({1, 2}, kFloat64));
  b.sum().backward();
  CHECK(test::values(a.grad()) == std::vector<double>{0, 0, 1, 1, 1, 1});
}
