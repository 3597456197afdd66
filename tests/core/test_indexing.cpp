// libtorch-style indexing: Tensor::index and Tensor::index_put_.
#include "test_util.hpp"

using namespace ember;
using namespace ember::indexing;
using ember::test::bitwise_equal;
using ember::test::non_contiguous;
using ember::test::values;
using V = std::vector<double>;
using S = std::vector<int64_t>;

namespace {
/// 0, 1, ..., n-1 as float32 in the given shape.
Tensor iota(IntArrayRef shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return arange(n, TensorOptions(kFloat32)).view(shape);
}
}  // namespace

TEST_CASE("index: integers select and return views") {
  Tensor x = iota({2, 3, 4});
  Tensor a = x.index({0});
  CHECK(a.sizes() == S{3, 4});
  CHECK(values(a) == values(iota({3, 4})));
  CHECK(a.is_alias_of(x));
  Tensor b = x.index({1, 2});
  CHECK(values(b) == V{20, 21, 22, 23});
  CHECK(b.storage_offset() == 20);
  Tensor c = x.index({-1, -1, -1});
  CHECK(c.dim() == 0);
  CHECK(c.item<float>() == 23.f);
  CHECK(values(x.index({-2, 0})) == V{0, 1, 2, 3});
}

TEST_CASE("index: a table of slices with steps and negative bounds") {
  Tensor x = iota({10});
  struct Case {
    Slice s;
    V expected;
  };
  std::vector<Case> cases = {
      {Slice(), V{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
      {Slice(None, None, 2), V{0, 2, 4, 6, 8}},
      {Slice(1, -1, 3), V{1, 4, 7}},
      {Slice(-3), V{7, 8, 9}},
      {Slice(None, -8), V{0, 1}},
      {Slice(5, 2), V{}},
      {Slice(-100, 100), V{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
      {Slice(8, None, 5), V{8}},
      {Slice(2, 7, 2), V{2, 4, 6}},
  };
  for (const Case& c : cases) {
    Tensor r = x.index({c.s});
    INFO("slice(" << c.s.start() << ", " << c.s.stop() << ", " << c.s.step() << ")");
    CHECK(values(r) == c.expected);
    CHECK(r.is_alias_of(x));
  }
  Tensor m = iota({3, 4});
  Tensor sub = m.index({Slice(1, None), Slice(None, None, 3)});
  CHECK(sub.sizes() == S{2, 2});
  CHECK(values(sub) == V{4, 7, 8, 11});
  EMBER_CHECK_THROWS(x.index({Slice(None, None, 0)}), ValueError, "step");
}

TEST_CASE("index: None, Ellipsis and bools") {
  Tensor x = iota({2, 3, 4});
  CHECK(x.index({None}).sizes() == S{1, 2, 3, 4});
  CHECK(x.index({Slice(), None}).sizes() == S{2, 1, 3, 4});
  CHECK(x.index({"...", None}).sizes() == S{2, 3, 4, 1});
  CHECK(x.index({None, "...", None}).sizes() == S{1, 2, 3, 4, 1});
  Tensor e = x.index({"...", 0});
  CHECK(e.sizes() == S{2, 3});
  CHECK(values(e) == V{0, 4, 8, 12, 16, 20});
  CHECK(values(x.index({0, Ellipsis, 1})) == V{1, 5, 9});
  Tensor all = x.index({Ellipsis});
  CHECK(all.sizes() == x.sizes());
  CHECK(all.is_alias_of(x));
  CHECK(x.index({}).sizes() == x.sizes());
  CHECK(x.index({1, Ellipsis, 2, 3}).item<float>() == 23.f);  // ellipsis spanning no dims
  Tensor t = x.index({true});
  CHECK(t.sizes() == S{1, 2, 3, 4});
  CHECK(t.is_alias_of(x));
  CHECK(x.index({false}).sizes() == S{0, 2, 3, 4});
  CHECK(x.index({Slice(), true}).sizes() == S{2, 1, 3, 4});
  CHECK(x.index({tensor(true)}).sizes() == S{1, 2, 3, 4});
  // A 0-d tensor indexed by None and "...".
  Tensor s = tensor(5.f);
  CHECK(s.index({None}).sizes() == S{1});
  CHECK(s.index({"..."}).item<float>() == 5.f);
}

TEST_CASE("index: errors name the op, the index and the sizes") {
  Tensor m = zeros({2, 3});
  EMBER_CHECK_THROWS(m.index({0, 0, 0}), IndexError,
                     "[index] too many indices for tensor of dimension 2");
  EMBER_CHECK_THROWS(m.index({2}), IndexError, "[index]", "index 2", "dimension 0", "size 2");
  EMBER_CHECK_THROWS(m.index({0, -4}), IndexError, "[index]", "index -4", "dimension 1", "size 3");
  EMBER_CHECK_THROWS(m.index({"...", 0, "..."}), IndexError, "[index]", "ellipsis");
  EMBER_CHECK_THROWS(m.index({Slice(), 5}), IndexError, "index 5", "dimension 1");
  EMBER_CHECK_THROWS(m.index({None, 0, 0, 0}), IndexError, "too many indices");
  EMBER_CHECK_THROWS(TensorIndex("..x"), ValueError, "[index]");
  EMBER_CHECK_THROWS(m.index({tensor({0.5f})}), IndexError, "[index]", "float32");
  EMBER_CHECK_THROWS(m.index({tensor({2})}), IndexError, "[index]", "index 2", "size 2");
  EMBER_CHECK_THROWS(m.index({Slice(), tensor({-4})}), IndexError, "index -4", "size 3");
  EMBER_CHECK_THROWS(m.index({tensor({true, false, true})}), IndexError, "[index]", "mask", "(3,)",
                     "(2,)");
  EMBER_CHECK_THROWS(m.index({tensor({0, 1}), tensor({0, 1, 2})}), IndexError, "[index]", "(2,)",
                     "(3,)");
  EMBER_CHECK_THROWS(m.index({tensor({0}), tensor({0}), tensor({0})}), IndexError,
                     "too many indices");
}

TEST_CASE("index: writing through a basic-index view changes the base") {
  Tensor x = iota({2, 3, 4});
  Tensor v = x.index({Slice(), 1});
  REQUIRE(v.is_alias_of(x));
  v.fill_(100);
  CHECK(x.index({0, 1, 0}).item<float>() == 100.f);
  CHECK(x.index({1, 1, 3}).item<float>() == 100.f);
  CHECK(x.index({0, 0, 0}).item<float>() == 0.f);
  Tensor w = x.index({1, Slice(None, None, 2), -1});
  w.fill_(-1);
  CHECK(values(x.index({1, Slice(), 3})) == V{-1, 100, -1});
}

TEST_CASE("index: integer tensor indices (advanced indexing)") {
  Tensor line = iota({10}) * 10;
  Tensor r = line.index({tensor({3, 0, -1})});
  CHECK(values(r) == V{30, 0, 90});
  CHECK(!r.is_alias_of(line));
  Tensor r2 = line.index({tensor({{1, 2}, {3, 4}})});
  CHECK(r2.sizes() == S{2, 2});
  CHECK(values(r2) == V{10, 20, 30, 40});
  CHECK(values(line.index({tensor({1, 2}, kInt32)})) == V{10, 20});

  Tensor x = iota({2, 3, 4});
  Tensor cols = x.index({Slice(), tensor({2, 0})});
  CHECK(cols.sizes() == S{2, 2, 4});
  CHECK(values(cols) == V{8, 9, 10, 11, 0, 1, 2, 3, 20, 21, 22, 23, 12, 13, 14, 15});
  Tensor last = x.index({"...", tensor({3})});
  CHECK(last.sizes() == S{2, 3, 1});
  CHECK(values(last) == V{3, 7, 11, 15, 19, 23});
  // Several tensors, adjacent at the front: result dims replace them.
  Tensor pair = x.index({tensor({1, 0}), tensor({0, 2})});
  CHECK(pair.sizes() == S{2, 4});
  CHECK(values(pair) == V{12, 13, 14, 15, 8, 9, 10, 11});
  // Adjacent but not first: the broadcast dims stay in place.
  Tensor mid = x.index({Slice(), tensor({0, 2}), tensor({1, 3})});
  CHECK(mid.sizes() == S{2, 2});
  CHECK(values(mid) == V{1, 11, 13, 23});
  // Separated by a slice: the broadcast dims go first.
  Tensor sep = x.index({tensor({1, 0}), Slice(), tensor({0, 3})});
  CHECK(sep.sizes() == S{2, 3});
  CHECK(values(sep) == V{12, 16, 20, 3, 7, 11});
  // Broadcasting index tensors against each other.
  Tensor bc = x.index({tensor({{0}, {1}}), tensor({0, 1, 2})});
  CHECK(bc.sizes() == S{2, 3, 4});
  CHECK(values(bc.index({1, 2})) == V{20, 21, 22, 23});
  CHECK(values(bc.index({0, 1})) == V{4, 5, 6, 7});
  // All three dims: one element per index position.
  Tensor pts = x.index({tensor({0, 1}), tensor({2, 0}), tensor({1, 3})});
  CHECK(values(pts) == V{9, 15});
  // A 0-d index tensor removes the dim.
  Tensor z = x.index({tensor(int64_t{1})});
  CHECK(z.sizes() == S{3, 4});
  CHECK(values(z) == values(x.index({1})));
  // Empty index tensor.
  CHECK(x.index({empty({0}, kInt64)}).sizes() == S{0, 3, 4});
}

TEST_CASE("index: bool masks") {
  Tensor m = tensor({{1.f, -2.f, 3.f}, {-4.f, 5.f, -6.f}});
  Tensor pos = m.index({m > 0});
  CHECK(pos.sizes() == S{3});
  CHECK(values(pos) == V{1, 3, 5});
  Tensor x = iota({2, 3, 4});
  Tensor rows = x.index({tensor({false, true})});
  CHECK(rows.sizes() == S{1, 3, 4});
  CHECK(values(rows) == values(x.index({Slice(1, 2)})));
  Tensor mask2 = tensor({{true, false, false}, {false, false, true}});
  Tensor sel = x.index({mask2});
  CHECK(sel.sizes() == S{2, 4});
  CHECK(values(sel) == V{0, 1, 2, 3, 20, 21, 22, 23});
  Tensor inner = x.index({Slice(), Slice(), tensor({true, false, false, true})});
  CHECK(inner.sizes() == S{2, 3, 2});
  CHECK(values(inner.index({1})) == V{12, 15, 16, 19, 20, 23});
  CHECK(x.index({zeros({2}, kBool)}).sizes() == S{0, 3, 4});
  // uint8 masks act like bool masks.
  CHECK(values(m.index({tensor({0, 1}, kUInt8)})) == V{-4, 5, -6});
  CHECK(values(m.index({Slice(), tensor({1, 0, 1}, kUInt8)})) == V{1, 3, -4, -6});
}

TEST_CASE("index: combinations of basic and advanced indices") {
  Tensor x = iota({2, 3, 4});
  Tensor a = x.index({None, 1, Slice(None, None, 2), tensor({0, 3})});
  CHECK(a.sizes() == S{1, 2, 2});
  CHECK(values(a) == V{12, 15, 20, 23});
  Tensor b = x.index({0, tensor({2, 1})});
  CHECK(b.sizes() == S{2, 4});
  CHECK(values(b) == V{8, 9, 10, 11, 4, 5, 6, 7});
  Tensor c = x.index({"...", tensor({1, 2}), 0});
  CHECK(c.sizes() == S{2, 2});
  CHECK(values(c) == V{4, 8, 16, 20});
  // A bool scalar next to a tensor index becomes an index over the new axis (PyTorch).
  Tensor d = x.index({true, tensor({1, 0})});
  CHECK(d.sizes() == S{2, 3, 4});
  CHECK(values(d.index({0, 0})) == V{12, 13, 14, 15});
  Tensor e = x.index({Slice(), None, tensor({2})});
  CHECK(e.sizes() == S{2, 1, 1, 4});
  CHECK(values(e) == V{8, 9, 10, 11, 20, 21, 22, 23});
}

TEST_CASE("index: non-contiguous inputs give bitwise the same results") {
  Tensor x = iota({3, 4, 5}) * 0.5 - 7.25;
  Tensor n = non_contiguous(x);
  REQUIRE(!n.is_contiguous());
  std::vector<std::vector<TensorIndex>> table = {
      {1},
      {Slice(None, None, 2), -1},
      {"...", Slice(1, 4, 2)},
      {None, 2, Slice(), None},
      {tensor({2, 0, 1})},
      {Slice(), tensor({3, 1})},
      {tensor({0, 2}), Slice(), tensor({4, 0})},
      {tensor({{0}, {2}}), tensor({1, 3})},
      {x.select(2, 0) > 0},
      {Slice(), Slice(), tensor({true, false, true, true, false})},
      {true, 1, tensor({0, 3})},
  };
  for (size_t i = 0; i < table.size(); ++i) {
    INFO("case " << i);
    CHECK(bitwise_equal(x.index(table[i]), n.index(table[i])));
  }
  Tensor xt = x.transpose(0, 2);
  CHECK(bitwise_equal(xt.index({tensor({1, 4}), 2}), xt.contiguous().index({tensor({1, 4}), 2})));
}

TEST_CASE("index_put_: basic indices with scalars and tensors") {
  Tensor z = zeros({2, 3});
  const uint32_t v0 = z._version();
  z.index_put_({0}, 5);
  CHECK(values(z) == V{5, 5, 5, 0, 0, 0});
  CHECK(z._version() > v0);
  z.index_put_({Slice(), 1}, tensor({7.f, 8.f}));
  CHECK(values(z) == V{5, 7, 5, 0, 8, 0});
  z.index_put_({1}, ones({1, 3}));  // leading size-1 dims of the value are dropped
  CHECK(values(z) == V{5, 7, 5, 1, 1, 1});
  z.index_put_({Slice(), Slice(None, None, 2)}, tensor({{-1.f}, {-2.f}}));
  CHECK(values(z) == V{-1, 7, -1, -2, 1, -2});
  z.index_put_({"..."}, 0.5);
  CHECK(values(z) == V{0.5, 0.5, 0.5, 0.5, 0.5, 0.5});
  z.index_put_({-1, -1}, tensor(9));  // int value converted to float32
  CHECK(values(z) == V{0.5, 0.5, 0.5, 0.5, 0.5, 9});
  CHECK(z.dtype() == kFloat32);
  // Through None and a view of the tensor.
  Tensor w = zeros({3});
  w.index_put_({None, Slice(1)}, 4);
  CHECK(values(w) == V{0, 4, 4});
  Tensor base = zeros({2, 4});
  Tensor half = base.index({Slice(), Slice(2)});
  half.index_put_({0}, 3);
  CHECK(values(base) == V{0, 0, 3, 3, 0, 0, 0, 0});
  EMBER_CHECK_THROWS(z.index_put_({0}, ones({2})), ShapeError, "[index_put_]", "(2,)", "(3,)");
  EMBER_CHECK_THROWS(z.index_put_({0, 0, 0}, 1), IndexError, "too many indices");
}

TEST_CASE("index_put_: advanced indices with scalars and tensors") {
  Tensor line = tensor({1.f, -2.f, 3.f, -4.f});
  uint32_t v = line._version();
  line.index_put_({line < 0}, tensor({10.f, 20.f}));
  CHECK(values(line) == V{1, 10, 3, 20});
  CHECK(line._version() > v);
  v = line._version();
  line.index_put_({line > 5}, 0);
  CHECK(values(line) == V{1, 0, 3, 0});
  CHECK(line._version() > v);
  line.index_put_({tensor({0, -1})}, tensor({7.f, 9.f}));
  CHECK(values(line) == V{7, 0, 3, 9});
  line.index_put_({tensor({1, 2})}, tensor(6.f));
  CHECK(values(line) == V{7, 6, 6, 9});

  Tensor z = zeros({3, 3});
  z.index_put_({tensor({0, 1, 2}), tensor({2, 1, 0})}, 1);
  CHECK(values(z) == V{0, 0, 1, 0, 1, 0, 1, 0, 0});
  Tensor y = zeros({2, 3});
  y.index_put_({Slice(), tensor({0, 2})}, tensor({{1.f, 2.f}, {3.f, 4.f}}));
  CHECK(values(y) == V{1, 0, 2, 3, 0, 4});
  y.index_put_({tensor({1}), Slice(1)}, tensor({8.f, 9.f}));
  CHECK(values(y) == V{1, 0, 2, 3, 8, 9});
  // Bool mask over the leading dim, tensor value broadcast over the rest.
  Tensor r = zeros({3, 2});
  r.index_put_({tensor({true, false, true})}, tensor({5.f, 6.f}));
  CHECK(values(r) == V{5, 6, 0, 0, 5, 6});
  r.index_put_({tensor({false, true, false})}, -1);
  CHECK(values(r) == V{5, 6, -1, -1, 5, 6});
  // Mask with a slice in front.
  Tensor q = zeros({2, 3});
  q.index_put_({Slice(), tensor({true, false, true})}, tensor({{1.f, 2.f}, {3.f, 4.f}}));
  CHECK(values(q) == V{1, 0, 2, 3, 0, 4});
  EMBER_CHECK_THROWS(z.index_put_({tensor({0, 1})}, ones({3, 3})), ShapeError, "[index_put_]",
                     "(3, 3)", "(2, 3)");
  EMBER_CHECK_THROWS(z.index_put_({tensor({3})}, 1), IndexError, "[index_put_]", "index 3");
}

TEST_CASE("index_put_: non-contiguous destinations are written in place") {
  Tensor base = zeros({3, 3});
  Tensor t = base.t();  // non-contiguous view
  REQUIRE(!t.is_contiguous());
  t.index_put_({tensor({0}), tensor({1})}, 5);
  CHECK(values(base) == V{0, 0, 0, 5, 0, 0, 0, 0, 0});
  t.index_put_({tensor({2, 0}), Slice()}, tensor({{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}}));
  // t[2] = (1, 2, 3) is base[:, 2]; t[0] = (4, 5, 6) is base[:, 0].
  CHECK(values(base) == V{4, 0, 1, 5, 0, 2, 6, 0, 3});
  Tensor nc = non_contiguous(zeros({2, 3}));
  nc.index_put_({nc == 0}, 2);
  CHECK(values(nc) == V{2, 2, 2, 2, 2, 2});
  Tensor nc2 = non_contiguous(zeros({2, 3}));
  nc2.index_put_({Slice(), tensor({1})}, tensor({{1.f}, {2.f}}));
  CHECK(values(nc2) == V{0, 1, 0, 0, 2, 0});
}
