// Views: they share storage, never copy, and follow PyTorch's shape rules and errors.
#include "test_util.hpp"

using namespace ember;

TEST_CASE("view: views alias storage and writes show through") {
  Tensor base = arange(12, kFloat32).reshape({3, 4});
  std::vector<Tensor> views = {base.view({4, 3}),       base.transpose(0, 1), base.t(),
                               base.permute({1, 0}),    base.narrow(1, 1, 2), base.select(0, 1),
                               base.slice(1, 0, 4, 2),  base.unsqueeze(0),    base.flatten(),
                               base.diagonal(),         base.expand({2, 3, 4}), base[2],
                               base.as_strided({2}, {5}, 1), base.unflatten(1, {2, 2}),
                               base.squeeze(),          base.chunk(2, 1)[1],  base.split(1, 0)[2],
                               base.unbind(1)[3]};
  for (const Tensor& v : views) {
    CHECK(v.is_alias_of(base));
  }
  base.select(0, 1).fill_(-1);  // row 1 through a view
  CHECK(test::values(base.select(0, 1)) == std::vector<double>(4, -1));
  CHECK(test::values(base.t().select(0, 0)) == std::vector<double>{0, -1, 8});
  // A view shares the version counter.
  Tensor v = base.view({12});
  uint32_t before = base._version();
  v.fill_(0);
  CHECK(base._version() == before + 1);
}

TEST_CASE("view: sizes, strides and offsets") {
  Tensor a = arange(24).reshape({2, 3, 4});
  Tensor t = a.transpose(0, 2);
  CHECK(t.sizes() == IntArrayRef({4, 3, 2}));
  CHECK(t.strides() == IntArrayRef({1, 4, 12}));
  CHECK_FALSE(t.is_contiguous());
  CHECK(t.contiguous().is_contiguous());
  CHECK(test::values(a.permute({2, 0, 1}).contiguous())[1] == 4);
  Tensor s = a.slice(2, 1, std::nullopt, 2);
  CHECK(s.sizes() == IntArrayRef({2, 3, 2}));
  CHECK(s.storage_offset() == 1);
  CHECK(test::values(s.select(0, 0).select(0, 0)) == std::vector<double>{1, 3});
  CHECK(a.slice(1, -2).size(1) == 2);
  CHECK(a.slice(1, 5, 10).size(1) == 0);  // clamped like Python
  CHECK(a.narrow(2, -2, 2).storage_offset() == 2);
  CHECK(test::values(a.diagonal(1, 1, 2).select(0, 0)) == std::vector<double>{1, 6, 11});
  CHECK(test::values(a.diagonal(-1, 1, 2).select(0, 1)) == std::vector<double>{16, 21});
  CHECK(a.unsqueeze(-1).sizes() == IntArrayRef({2, 3, 4, 1}));
  CHECK(a.unsqueeze(1).strides() == IntArrayRef({12, 12, 4, 1}));
  CHECK(ones({1, 3, 1}).squeeze().sizes() == IntArrayRef({3}));
  CHECK(ones({1, 3, 1}).squeeze(2).sizes() == IntArrayRef({1, 3}));
  CHECK(ones({1, 3, 1}).squeeze(1).sizes() == IntArrayRef({1, 3, 1}));
  Tensor e = tensor({1, 2, 3}).expand({2, 3});
  CHECK(e.strides() == IntArrayRef({0, 1}));
  CHECK(test::values(e) == std::vector<double>{1, 2, 3, 1, 2, 3});
  CHECK(tensor({{1}, {2}}).expand({-1, 3}).sizes() == IntArrayRef({2, 3}));
  CHECK(a.flatten(1).sizes() == IntArrayRef({2, 12}));
  CHECK(a.flatten(0, 1).sizes() == IntArrayRef({6, 4}));
  CHECK(tensor(5).flatten().sizes() == IntArrayRef({1}));
  CHECK(a.unflatten(2, {2, -1}).sizes() == IntArrayRef({2, 3, 2, 2}));
  CHECK(a.view({-1, 4}).sizes() == IntArrayRef({6, 4}));
  auto parts = a.split_with_sizes({1, 3}, 2);
  CHECK(parts[1].sizes() == IntArrayRef({2, 3, 3}));
  CHECK(a.chunk(3, 2).size() == 2);  // ceil(4/3)=2 per chunk -> 2 chunks, as PyTorch
  CHECK(a.split(3, 2).back().size(2) == 1);
  CHECK(a.unbind(0).size() == 2);
}

TEST_CASE("view: reshape views when possible and copies otherwise") {
  Tensor a = arange(12).reshape({3, 4});
  Tensor r = a.reshape({4, 3});
  CHECK(r.is_alias_of(a));
  Tensor t = a.t();
  Tensor rt = t.reshape({12});  // transposed memory cannot be flattened as a view
  CHECK_FALSE(rt.is_alias_of(a));
  CHECK(test::values(rt) == std::vector<double>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  // A view through non-contiguous dims that stay contiguous within each run.
  Tensor b = arange(24).reshape({2, 3, 4}).slice(0, 0, 2);
  CHECK(b.view({6, 4}).is_alias_of(b));
  Tensor c = arange(24).reshape({2, 3, 4}).slice(1, 0, 2);  // (2, 2, 4) strides (12, 4, 1)
  CHECK(c.view({2, 8}).is_alias_of(c));
  CHECK_THROWS_AS(c.view({16}), ShapeError);
  CHECK(test::values(c.reshape({16}))[8] == 12);
}

TEST_CASE("view: errors name the op and the shapes") {
  Tensor a = arange(12).reshape({3, 4});
  EMBER_CHECK_THROWS(a.view({5, 3}), ShapeError, "[view]", "(5, 3)", "12");
  EMBER_CHECK_THROWS(a.view({-1, -1}), ShapeError, "[view]", "-1");
  EMBER_CHECK_THROWS(a.t().view({12}), ShapeError, "[view]", "(4, 3)", "reshape");
  EMBER_CHECK_THROWS(a.reshape({7, -1}), ShapeError, "[reshape]", "(7, -1)");
  EMBER_CHECK_THROWS(a.permute({0}), ShapeError, "[permute]", "(3, 4)");
  EMBER_CHECK_THROWS(a.permute({0, 0}), IndexError, "[permute]", "repeated");
  EMBER_CHECK_THROWS(a.transpose(0, 2), IndexError, "[transpose]", "[-2, 1]", "2");
  EMBER_CHECK_THROWS(a.expand({3, 5}), ShapeError, "[expand]", "(3, 4)", "(3, 5)");
  EMBER_CHECK_THROWS(a.expand({4}), ShapeError, "[expand]");
  EMBER_CHECK_THROWS(a.narrow(1, 2, 3), IndexError, "[narrow]", "(3, 4)");
  EMBER_CHECK_THROWS(a.select(0, 3), IndexError, "[select]", "index 3", "size 3");
  EMBER_CHECK_THROWS(a.slice(0, 0, 2, 0), ValueError, "[slice]", "step");
  EMBER_CHECK_THROWS(a.as_strided({3, 4}, {4, 2}), IndexError, "[as_strided]", "storage");
  EMBER_CHECK_THROWS(a.unflatten(1, {3, -1}), ShapeError, "[unflatten]");
  EMBER_CHECK_THROWS(a.split_with_sizes({1, 1}, 0), ShapeError, "[split_with_sizes]", "(1, 1)");
  EMBER_CHECK_THROWS(a.chunk(0), ValueError, "[chunk]");
  EMBER_CHECK_THROWS(a.diagonal(0, 1, 1), IndexError, "[diagonal]");
  EMBER_CHECK_THROWS(a.flatten(1, 0), IndexError, "[flatten]");
  EMBER_CHECK_THROWS(tensor(1).select(0, 0), IndexError, "[select]", "0-d");
}

TEST_CASE("broadcast_shapes: table of pairs") {
  struct Case {
    std::vector<int64_t> a, b, out;
  };
  std::vector<Case> ok = {{{}, {}, {}},           {{3}, {}, {3}},         {{2, 3}, {3}, {2, 3}},
                          {{2, 1}, {1, 3}, {2, 3}}, {{5, 1, 4}, {3, 1}, {5, 3, 4}},
                          {{0}, {1}, {0}},        {{1, 0}, {3, 1}, {3, 0}}};
  for (const Case& c : ok) CHECK(broadcast_shapes(c.a, c.b) == c.out);
  EMBER_CHECK_THROWS(broadcast_shapes({2, 3}, {4}, "mul"), ShapeError, "[mul]", "(2, 3)", "(4,)");
  EMBER_CHECK_THROWS(broadcast_shapes({0}, {2}, "add"), ShapeError, "[add]", "(0,)", "(2,)");
  auto ts = broadcast_tensors({ones({2, 1}), ones({3})});
  CHECK(ts[0].sizes() == IntArrayRef({2, 3}));
  CHECK(ts[1].strides() == IntArrayRef({0, 1}));
}
