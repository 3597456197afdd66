// Copying shape ops: cat, stack, pad, flip, roll, repeat, tril/triu, one_hot, masked_select.
#include "test_util.hpp"

using namespace ember;
using ember::test::bitwise_equal;
using ember::test::non_contiguous;
using ember::test::values;
using V = std::vector<double>;
using S = std::vector<int64_t>;

namespace {
/// 1, 2, ..., n as float32 in the given shape.
Tensor iota(IntArrayRef shape, DType dtype = kFloat32) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return arange(1, n + 1, TensorOptions(dtype)).view(shape);
}
}  // namespace

TEST_CASE("cat: hand-computed cases along each dim") {
  Tensor a = tensor({{1.f, 2.f}, {3.f, 4.f}});
  Tensor b = tensor({{5.f, 6.f}});
  Tensor c0 = cat({a, b}, 0);
  CHECK(c0.sizes() == S{3, 2});
  CHECK(values(c0) == V{1, 2, 3, 4, 5, 6});
  Tensor c1 = cat({a, a.mul(10)}, -1);
  CHECK(c1.sizes() == S{2, 4});
  CHECK(values(c1) == V{1, 2, 10, 20, 3, 4, 30, 40});
  CHECK(!c1.is_alias_of(a));
  // One input: still a copy.
  Tensor one = cat({a}, 1);
  CHECK(values(one) == values(a));
  CHECK(!one.is_alias_of(a));
  // Zero-size pieces along the cat dim are fine.
  Tensor c2 = cat({a, empty({2, 0}), a}, 1);
  CHECK(c2.sizes() == S{2, 4});
  CHECK(values(c2) == V{1, 2, 1, 2, 3, 4, 3, 4});
}

TEST_CASE("cat: dtype promotion and legacy empty inputs") {
  Tensor i = tensor({1, 2});  // int64
  Tensor f = tensor({0.5f});  // float32
  Tensor c = cat({i, f});
  CHECK(c.dtype() == kFloat32);
  CHECK(values(c) == V{1, 2, 0.5});
  Tensor i32 = tensor({3}, kInt32);
  CHECK(cat({i32, i}).dtype() == kInt64);
  CHECK(cat({tensor({true}), i32}).dtype() == kInt32);
  Tensor h = cat({tensor({1.5f}).to(kFloat16), tensor({-2.f}).to(kBFloat16)});
  CHECK(h.dtype() == kFloat32);
  CHECK(values(h) == V{1.5, -2});
  Tensor hf = flip(tensor({1.f, 2.f, 3.f}).to(kFloat16), {0});
  CHECK(hf.dtype() == kFloat16);
  CHECK(values(hf) == V{3, 2, 1});
  // (0,) tensors are skipped whatever the other shapes are.
  Tensor m = iota({2, 3});
  Tensor legacy = cat({empty({0}), m, empty({0}, kFloat64)}, 1);
  CHECK(legacy.sizes() == S{2, 3});
  CHECK(legacy.dtype() == kFloat64);
  CHECK(values(legacy) == values(m));
  Tensor all_empty = cat({empty({0}), empty({0})});
  CHECK(all_empty.sizes() == S{0});
}

TEST_CASE("cat: errors name the op, the tensor and the shapes") {
  EMBER_CHECK_THROWS(cat({}), ValueError, "[cat]");
  EMBER_CHECK_THROWS(cat({zeros({2, 3}), zeros({2, 4})}, 0), ShapeError, "[cat]", "tensor 1",
                     "(2, 4)", "(2, 3)");
  EMBER_CHECK_THROWS(cat({zeros({2, 3}), zeros({2, 3, 1})}, 0), ShapeError, "[cat]", "(2, 3, 1)");
  EMBER_CHECK_THROWS(cat({zeros({2, 3}), zeros({2, 3})}, 2), IndexError, "[cat]");
  EMBER_CHECK_THROWS(cat({zeros({}), zeros({})}), ShapeError, "[cat]", "zero-dimensional");
}

TEST_CASE("stack: new dim at each position") {
  Tensor a = tensor({1.f, 2.f, 3.f}), b = tensor({4.f, 5.f, 6.f});
  Tensor s0 = stack({a, b});
  CHECK(s0.sizes() == S{2, 3});
  CHECK(values(s0) == V{1, 2, 3, 4, 5, 6});
  Tensor s1 = stack({a, b}, 1);
  CHECK(s1.sizes() == S{3, 2});
  CHECK(values(s1) == V{1, 4, 2, 5, 3, 6});
  CHECK(values(stack({a, b}, -1)) == values(s1));
  Tensor sc = stack({tensor(1.f), tensor(2.f)});
  CHECK(sc.sizes() == S{2});
  EMBER_CHECK_THROWS(stack({zeros({2, 3}), zeros({3, 2})}), ShapeError, "[stack]", "(2, 3)",
                     "(3, 2)", "entry 1");
  EMBER_CHECK_THROWS(stack({}), ValueError, "[stack]");
}

TEST_CASE("pad: constant mode, several dims and negative pads") {
  Tensor x = tensor({1.f, 2.f, 3.f, 4.f});
  CHECK(values(pad(x, {1, 2}, "constant", 9)) == V{9, 1, 2, 3, 4, 9, 9});
  CHECK(values(pad(x, {-1, 2})) == V{2, 3, 4, 0, 0});
  CHECK(values(pad(x, {1, -2})) == V{0, 1, 2});
  CHECK(pad(x, {-2, -2}).sizes() == S{0});
  Tensor m = tensor({{1.f, 2.f}, {3.f, 4.f}});
  Tensor p = pad(m, {1, 0, 0, 2}, "constant", -1);
  CHECK(p.sizes() == S{4, 3});
  CHECK(values(p) == V{-1, 1, 2, -1, 3, 4, -1, -1, -1, -1, -1, -1});
  Tensor m23 = iota({2, 3});
  Tensor crop = pad(m23, {0, -1, -1, 1});
  CHECK(crop.sizes() == S{2, 2});
  CHECK(values(crop) == V{4, 5, 0, 0});
  // Only the last dim of a 3-D tensor; int dtype kept.
  Tensor q = pad(iota({2, 1, 2}, kInt64), {1, 1});
  CHECK(q.dtype() == kInt64);
  CHECK(q.sizes() == S{2, 1, 4});
  CHECK(values(q) == V{0, 1, 2, 0, 0, 3, 4, 0});
  // No padding at all: a copy.
  Tensor same = pad(m, {0, 0});
  CHECK(values(same) == values(m));
  CHECK(!same.is_alias_of(m));
}

TEST_CASE("pad: reflect and replicate") {
  Tensor x = tensor({1.f, 2.f, 3.f, 4.f});
  CHECK(values(pad(x, {2, 1}, "reflect")) == V{3, 2, 1, 2, 3, 4, 3});
  CHECK(values(pad(x, {3, 3}, "reflect")) == V{4, 3, 2, 1, 2, 3, 4, 3, 2, 1});
  CHECK(values(pad(x, {2, -1}, "reflect")) == V{3, 2, 1, 2, 3});
  CHECK(values(pad(x, {2, 1}, "replicate")) == V{1, 1, 1, 2, 3, 4, 4});
  Tensor m = iota({3, 3});
  Tensor r = pad(m, {1, 1, 1, 1}, "reflect");
  CHECK(r.sizes() == S{5, 5});
  CHECK(values(r) == V{5, 4, 5, 6, 5, 2, 1, 2, 3, 2, 5, 4, 5, 6, 5, 8, 7, 8, 9, 8, 5, 4, 5, 6, 5});
  Tensor rep = pad(m, {1, 1, 1, 1}, "replicate");
  CHECK(values(rep) ==
        V{1, 1, 2, 3, 3, 1, 1, 2, 3, 3, 4, 4, 5, 6, 6, 7, 7, 8, 9, 9, 7, 7, 8, 9, 9});
  Tensor m2 = tensor({{1.f, 2.f}, {3.f, 4.f}});
  Tensor rep2 = pad(m2, {2, 0, 0, 1}, "replicate");
  CHECK(rep2.sizes() == S{3, 4});
  CHECK(values(rep2) == V{1, 1, 1, 2, 3, 3, 3, 4, 3, 3, 3, 4});
  // Batched (N, C, W) input padded in the last dim only.
  Tensor b = iota({2, 1, 3});
  CHECK(values(pad(b, {1, 1}, "reflect")) == V{2, 1, 2, 3, 2, 5, 4, 5, 6, 5});
}

TEST_CASE("pad: errors") {
  Tensor x = zeros({2, 3});
  EMBER_CHECK_THROWS(pad(x, {3, 0}, "reflect"), ValueError, "[pad]", "(3, 0)", "(2, 3)");
  EMBER_CHECK_THROWS(pad(x, {0, 0, 2, 0}, "reflect"), ValueError, "[pad]", "(2, 3)");
  EMBER_CHECK_THROWS(pad(x, {1}), ValueError, "[pad]", "even");
  EMBER_CHECK_THROWS(pad(x, {1, 1, 1, 1, 1, 1}), ValueError, "[pad]", "(2, 3)");
  EMBER_CHECK_THROWS(pad(x, {1, 1}, "circular"), ValueError, "[pad]", "circular");
  EMBER_CHECK_THROWS(pad(x, {-2, -2}), ShapeError, "[pad]", "(2, 3)");
  EMBER_CHECK_THROWS(pad(zeros({2, 0}), {1, 1}, "replicate"), ValueError, "[pad]", "(2, 0)");
}

TEST_CASE("flip: hand-computed cases") {
  Tensor m = iota({2, 3});
  CHECK(values(flip(m, {0})) == V{4, 5, 6, 1, 2, 3});
  CHECK(values(m.flip({1})) == V{3, 2, 1, 6, 5, 4});
  CHECK(values(flip(m, {-1})) == V{3, 2, 1, 6, 5, 4});
  CHECK(values(flip(m, {0, 1})) == V{6, 5, 4, 3, 2, 1});
  Tensor f = flip(m, {});
  CHECK(values(f) == values(m));
  CHECK(!f.is_alias_of(m));
  Tensor c = iota({2, 2, 2}, kInt32);
  Tensor fc = flip(c, {2, 0});
  CHECK(fc.dtype() == kInt32);
  CHECK(values(fc) == V{6, 5, 8, 7, 2, 1, 4, 3});
  EMBER_CHECK_THROWS(flip(m, {0, -2}), IndexError, "[flip]", "multiple");
  EMBER_CHECK_THROWS(flip(m, {2}), IndexError, "[flip]");
}

TEST_CASE("roll: shifts, wrap-around and flattening") {
  Tensor x = iota({5});
  CHECK(values(roll(x, 2)) == V{4, 5, 1, 2, 3});
  CHECK(values(roll(x, -1)) == V{2, 3, 4, 5, 1});
  CHECK(values(roll(x, 7)) == V{4, 5, 1, 2, 3});
  CHECK(values(roll(x, 5)) == values(x));
  Tensor m = iota({2, 3});
  Tensor flat = m.roll(1);
  CHECK(flat.sizes() == S{2, 3});
  CHECK(values(flat) == V{6, 1, 2, 3, 4, 5});
  CHECK(values(roll(m, {1, -1}, {0, 1})) == V{5, 6, 4, 2, 3, 1});
  CHECK(values(roll(m, 1, 1)) == V{3, 1, 2, 6, 4, 5});
  EMBER_CHECK_THROWS(roll(m, {1, 2}, {0}), ValueError, "[roll]", "(1, 2)");
  EMBER_CHECK_THROWS(roll(m, {1, 2}), ValueError, "[roll]");
}

TEST_CASE("repeat: tiles along every dim") {
  Tensor x = tensor({1.f, 2.f, 3.f});
  Tensor r = x.repeat({2, 2});
  CHECK(r.sizes() == S{2, 6});
  CHECK(values(r) == V{1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3});
  Tensor m = tensor({{1.f, 2.f}, {3.f, 4.f}});
  CHECK(values(repeat(m, {2, 1})) == V{1, 2, 3, 4, 1, 2, 3, 4});
  CHECK(values(repeat(m, {1, 2})) == V{1, 2, 1, 2, 3, 4, 3, 4});
  Tensor r3 = repeat(m, {2, 1, 1});
  CHECK(r3.sizes() == S{2, 2, 2});
  CHECK(values(r3) == V{1, 2, 3, 4, 1, 2, 3, 4});
  CHECK(repeat(m, {0, 3}).sizes() == S{0, 6});
  Tensor s = repeat(tensor(7.f), {3});
  CHECK(values(s) == V{7, 7, 7});
  EMBER_CHECK_THROWS(repeat(m, {2}), ShapeError, "[repeat]", "(2,)", "(2, 2)");
  EMBER_CHECK_THROWS(repeat(m, {2, -1}), ValueError, "[repeat]");
}

TEST_CASE("tril/triu: diagonals, batches and dtypes") {
  Tensor m = iota({3, 4});
  CHECK(values(tril(m)) == V{1, 0, 0, 0, 5, 6, 0, 0, 9, 10, 11, 0});
  CHECK(values(m.tril(1)) == V{1, 2, 0, 0, 5, 6, 7, 0, 9, 10, 11, 12});
  CHECK(values(tril(m, -1)) == V{0, 0, 0, 0, 5, 0, 0, 0, 9, 10, 0, 0});
  CHECK(values(triu(m)) == V{1, 2, 3, 4, 0, 6, 7, 8, 0, 0, 11, 12});
  CHECK(values(m.triu(1)) == V{0, 2, 3, 4, 0, 0, 7, 8, 0, 0, 0, 12});
  CHECK(values(triu(m, -1)) == V{1, 2, 3, 4, 5, 6, 7, 8, 0, 10, 11, 12});
  Tensor b = iota({2, 2, 2}, kInt64);
  Tensor tb = tril(b);
  CHECK(tb.dtype() == kInt64);
  CHECK(values(tb) == V{1, 0, 3, 4, 5, 0, 7, 8});
  Tensor bl = triu(ones({2, 2}, kBool));
  CHECK(bl.dtype() == kBool);
  CHECK(values(bl) == V{1, 1, 0, 1});
  EMBER_CHECK_THROWS(tril(zeros({3})), ShapeError, "[tril]", "(3,)");
  EMBER_CHECK_THROWS(triu(zeros({})), ShapeError, "[triu]", "()");
}

TEST_CASE("one_hot: classes, inference and errors") {
  Tensor i = tensor({0, 2, 1});
  Tensor h = one_hot(i);
  CHECK(h.dtype() == kInt64);
  CHECK(h.sizes() == S{3, 3});
  CHECK(values(h) == V{1, 0, 0, 0, 0, 1, 0, 1, 0});
  Tensor h4 = one_hot(i, 4);
  CHECK(h4.sizes() == S{3, 4});
  CHECK(values(h4) == V{1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0});
  Tensor h2 = one_hot(tensor({{0}, {1}}));
  CHECK(h2.sizes() == S{2, 1, 2});
  CHECK(values(h2) == V{1, 0, 0, 1});
  CHECK(one_hot(empty({0}, kInt64), 3).sizes() == S{0, 3});
  EMBER_CHECK_THROWS(one_hot(tensor({0, 3}), 3), IndexError, "[one_hot]", "3");
  EMBER_CHECK_THROWS(one_hot(tensor({0, -1})), ValueError, "[one_hot]", "-1");
  EMBER_CHECK_THROWS(one_hot(tensor({0.f})), DTypeError, "[one_hot]", "float32");
  EMBER_CHECK_THROWS(one_hot(empty({0}, kInt64)), ValueError, "[one_hot]");
}

TEST_CASE("masked_select: broadcast mask, 1-D result") {
  Tensor m = iota({2, 3});
  Tensor mask = tensor({true, false, true});
  Tensor s = masked_select(m, mask);
  CHECK(s.sizes() == S{4});
  CHECK(values(s) == V{1, 3, 4, 6});
  Tensor full_mask = tensor({{false, true, false}, {true, true, false}});
  CHECK(values(m.masked_select(full_mask)) == V{2, 4, 5});
  // The mask may have more dims than x.
  Tensor big = masked_select(tensor({1.f, 2.f}), tensor({{true, false}, {true, true}}));
  CHECK(values(big) == V{1, 1, 2});
  CHECK(masked_select(m, zeros({3}, kBool)).sizes() == S{0});
  EMBER_CHECK_THROWS(masked_select(m, ones({3})), DTypeError, "[masked_select]", "float32");
  EMBER_CHECK_THROWS(masked_select(m, ones({4}, kBool)), ShapeError, "[masked_select]", "(2, 3)",
                     "(4,)");
}

TEST_CASE("shape ops: non-contiguous inputs give bitwise the same results") {
  Tensor x = (iota({3, 4}) - 6.5) * 0.3;
  Tensor n = non_contiguous(x);
  REQUIRE(!n.is_contiguous());
  Tensor xt = x.t(), nt = non_contiguous(x).t();  // transposed views too
  for (auto [a, b] : std::vector<std::pair<Tensor, Tensor>>{{x, n}, {xt.contiguous(), nt}}) {
    CHECK(bitwise_equal(cat({a, a}, 1), cat({b, b}, 1)));
    CHECK(bitwise_equal(stack({a, a}, 1), stack({b, b}, 1)));
    CHECK(bitwise_equal(pad(a, {1, 2, 2, 1}), pad(b, {1, 2, 2, 1})));
    CHECK(bitwise_equal(pad(a, {2, 1, 1, 2}, "reflect"), pad(b, {2, 1, 1, 2}, "reflect")));
    CHECK(bitwise_equal(pad(a, {2, 1, 1, 0}, "replicate"), pad(b, {2, 1, 1, 0}, "replicate")));
    CHECK(bitwise_equal(flip(a, {0, 1}), flip(b, {0, 1})));
    CHECK(bitwise_equal(roll(a, {1, 2}, {0, 1}), roll(b, {1, 2}, {0, 1})));
    CHECK(bitwise_equal(roll(a, 5), roll(b, 5)));
    CHECK(bitwise_equal(repeat(a, {2, 1, 3}), repeat(b, {2, 1, 3})));
    CHECK(bitwise_equal(tril(a, 1), tril(b, 1)));
    CHECK(bitwise_equal(triu(a, -1), triu(b, -1)));
    CHECK(bitwise_equal(masked_select(a, a > 0), masked_select(b, b > 0)));
  }
  Tensor idx = tensor({{0, 3}, {2, 1}});
  CHECK(bitwise_equal(one_hot(idx), one_hot(non_contiguous(idx))));
}
