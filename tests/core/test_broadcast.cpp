// Broadcasting in elementwise ops: the shape rule over a table of shape pairs, values against an
// index-by-index reference, and error messages that name the op and both shapes.

#include <string>
#include <vector>

#include "test_util.hpp"

using namespace ember;
using ember::test::bitwise_equal;
using ember::test::values;

namespace {

using Shape = std::vector<int64_t>;

int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t v : s) n *= v;
  return n;
}

/// Row-major index into `in` (right-aligned against `out`, size-1 dims repeat) of the
/// out-element with linear index i.
int64_t source_index(const Shape& out, const Shape& in, int64_t i) {
  int64_t idx = 0, stride = 1;
  for (int64_t d = static_cast<int64_t>(out.size()) - 1; d >= 0; --d) {
    int64_t coord = i % out[d];
    i /= out[d];
    int64_t id = d - (static_cast<int64_t>(out.size()) - static_cast<int64_t>(in.size()));
    if (id < 0) continue;
    if (in[id] != 1) idx += coord * stride;
    stride *= in[id];
  }
  return idx;
}

/// Values 1, 2, 3, ... (float64) in the given shape.
Tensor counting(const Shape& s, double scale = 1.0) {
  return mul(add(arange(numel_of(s), kFloat64), 1), scale).reshape(s);
}

struct Pair {
  Shape a, b, out;
};

std::vector<Pair> good_pairs() {
  return {
      {{}, {}, {}},
      {{3}, {}, {3}},
      {{}, {2, 3}, {2, 3}},
      {{3}, {3}, {3}},
      {{1}, {4}, {4}},
      {{2, 3}, {3}, {2, 3}},
      {{2, 3}, {1, 3}, {2, 3}},
      {{2, 1}, {1, 3}, {2, 3}},
      {{2, 1}, {3}, {2, 3}},
      {{4, 1, 5}, {3, 1}, {4, 3, 5}},
      {{1, 1, 1}, {2, 3}, {1, 2, 3}},
      {{5, 1, 3, 1}, {4, 1, 6}, {5, 4, 3, 6}},
      {{2, 0}, {1}, {2, 0}},
      {{0}, {2, 1}, {2, 0}},
      {{3, 1, 2}, {3, 2, 1}, {3, 2, 2}},
  };
}

struct BadPair {
  Shape a, b;
  const char* a_str;
  const char* b_str;
};

std::vector<BadPair> bad_pairs() {
  return {
      {{2}, {3}, "(2,)", "(3,)"},           {{2, 3}, {2}, "(2, 3)", "(2,)"},
      {{4, 3}, {3, 4}, "(4, 3)", "(3, 4)"}, {{2, 1, 3}, {4, 2}, "(2, 1, 3)", "(4, 2)"},
      {{0}, {2}, "(0,)", "(2,)"},
  };
}

}  // namespace

TEST_CASE("broadcast_shapes: a table of shape pairs") {
  for (const Pair& p : good_pairs()) {
    INFO("shapes " << IntArrayRef(p.a) << " and " << IntArrayRef(p.b));
    CHECK(broadcast_shapes(p.a, p.b) == p.out);
    CHECK(broadcast_shapes(p.b, p.a) == p.out);
  }
  for (const BadPair& p : bad_pairs()) {
    INFO("shapes " << IntArrayRef(p.a) << " and " << IntArrayRef(p.b));
    EMBER_CHECK_THROWS(broadcast_shapes(p.a, p.b, "mul"), ShapeError, "[mul]", p.a_str, p.b_str,
                       "cannot be broadcast");
  }
}

TEST_CASE("add: broadcasting over a table of shapes") {
  for (const Pair& p : good_pairs()) {
    INFO("shapes " << IntArrayRef(p.a) << " and " << IntArrayRef(p.b));
    Tensor a = counting(p.a), b = counting(p.b, 100.0);
    Tensor sum = add(a, b);
    REQUIRE(sum.sizes() == IntArrayRef(p.out));
    std::vector<double> av = values(a), bv = values(b), got = values(sum);
    bool ok = true;
    for (int64_t i = 0; i < numel_of(p.out); ++i) {
      double expected = av[source_index(p.out, p.a, i)] + bv[source_index(p.out, p.b, i)];
      ok = ok && got[i] == expected;
    }
    CHECK(ok);
    // The other orders and ops use the same shape rule.
    CHECK(add(b, a).sizes() == IntArrayRef(p.out));
    CHECK(mul(a, b).sizes() == IntArrayRef(p.out));
    CHECK(lt(a, b).sizes() == IntArrayRef(p.out));
    CHECK(maximum(a, b).sizes() == IntArrayRef(p.out));
    CHECK(where(gt(a, 2), a, b).sizes() == IntArrayRef(p.out));
  }
}

TEST_CASE("broadcast: failing shapes name the op and both shapes") {
  for (const BadPair& p : bad_pairs()) {
    INFO("shapes " << IntArrayRef(p.a) << " and " << IntArrayRef(p.b));
    Tensor a = zeros(p.a), b = zeros(p.b);
    EMBER_CHECK_THROWS(add(a, b), ShapeError, "[add]", p.a_str, p.b_str);
    EMBER_CHECK_THROWS(sub(a, b), ShapeError, "[sub]", p.a_str, p.b_str);
    EMBER_CHECK_THROWS(mul(a, b), ShapeError, "[mul]", p.a_str, p.b_str);
    EMBER_CHECK_THROWS(div(a, b), ShapeError, "[div]", p.a_str, p.b_str);
    EMBER_CHECK_THROWS(pow(a, b), ShapeError, "[pow]", p.a_str, p.b_str);
    EMBER_CHECK_THROWS(minimum(a, b), ShapeError, "[minimum]", p.a_str, p.b_str);
    EMBER_CHECK_THROWS(eq(a, b), ShapeError, "[eq]", p.a_str, p.b_str);
    EMBER_CHECK_THROWS(a > b, ShapeError, "[gt]", p.a_str, p.b_str);
    EMBER_CHECK_THROWS(logical_and(a, b), ShapeError, "[logical_and]", p.a_str, p.b_str);
    EMBER_CHECK_THROWS(where(gt(a, 0), a, b), ShapeError, "[where]", p.a_str, p.b_str);
    EMBER_CHECK_THROWS(masked_fill(a, gt(b, 0), 1), ShapeError, "[masked_fill]", p.a_str, p.b_str);
    EMBER_CHECK_THROWS(isclose(a, b), ShapeError, p.a_str, p.b_str);
    Tensor c = a.clone();
    EMBER_CHECK_THROWS(c.add_(b), ShapeError, "[add_]", p.a_str, p.b_str);
    EMBER_CHECK_THROWS(c *= b, ShapeError, "[mul_]", p.a_str, p.b_str);
  }
}

TEST_CASE("broadcast: in-place ops need the broadcast shape to equal self's shape") {
  Tensor x = zeros({2, 3});
  x.add_(counting({3}));  // (2, 3) += (3,) is fine
  CHECK(values(x) == std::vector<double>({1, 2, 3, 1, 2, 3}));
  x.mul_(counting({2, 1}));
  CHECK(values(x) == std::vector<double>({1, 2, 3, 2, 4, 6}));
  Tensor row = zeros({3});
  EMBER_CHECK_THROWS(row.add_(counting({2, 3})), ShapeError, "[add_]", "output with shape (3,)",
                     "broadcast shape (2, 3)");
  Tensor col = zeros({2, 1});
  EMBER_CHECK_THROWS(col.sub_(counting({1, 3})), ShapeError, "[sub_]", "(2, 1)", "(2, 3)");
  EMBER_CHECK_THROWS(col.div_(counting({3})), ShapeError, "[div_]", "(2, 1)", "(2, 3)");
  Tensor s = zeros({});
  const uint32_t v0 = s._version();
  EMBER_CHECK_THROWS(s += counting({2}), ShapeError, "[add_]", "()", "(2,)");
  CHECK(s._version() == v0);  // a failed op does not bump the version
  s += counting({});
  CHECK(s._version() == v0 + 1);
  CHECK(s.item<double>() == 1.0);
}

TEST_CASE("broadcast: expanded and 0-d operands, empty results") {
  Tensor a = counting({3, 4});
  Tensor col = counting({3, 1}, 10.0);
  // An explicitly expanded (stride 0) operand gives the same bits as implicit broadcasting.
  CHECK(bitwise_equal(add(a, col.expand({3, 4})), add(a, col)));
  CHECK(bitwise_equal(mul(a.t(), col.t()), mul(a, col).t().contiguous()));
  // A 0-d tensor broadcasts like a number but keeps its dtype in promotion rules.
  Tensor zero_d = scalar_tensor(2.0, kFloat64);
  CHECK(add(a, zero_d).sizes() == IntArrayRef({3, 4}));
  CHECK(values(add(a, zero_d))[5] == 8.0);
  // Empty tensors broadcast to empty results without touching memory.
  Tensor e = add(zeros({0, 3}), counting({3}));
  CHECK(e.sizes() == IntArrayRef({0, 3}));
  CHECK(e.numel() == 0);
  CHECK(where(zeros({2, 0}, kBool), 1, zeros({1})).sizes() == IntArrayRef({2, 0}));
  CHECK(broadcast_tensors({zeros({2, 1}), zeros({3}), zeros({})})[2].sizes() ==
        IntArrayRef({2, 3}));
}

TEST_CASE("where: three-way broadcasting of condition and both branches") {
  Tensor cond = tensor({{true}, {false}});  // (2, 1)
  Tensor a = counting({3});                 // (3,)
  Tensor b = counting({1, 1, 3}, -1.0);     // (1, 1, 3)
  Tensor w = where(cond, a, b);
  CHECK(w.sizes() == IntArrayRef({1, 2, 3}));
  CHECK(values(w) == std::vector<double>({1, 2, 3, -1, -2, -3}));
  EMBER_CHECK_THROWS(where(tensor({true, false}), a, b), ShapeError, "[where]", "(2,)", "(3,)");
}
