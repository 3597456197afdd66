// Tensor handle: metadata, factories, data access, conversion, printing, errors.
#include <limits>
#include <sstream>

#include "test_util.hpp"

using namespace ember;

static std::string str(const Tensor& t) {
  std::ostringstream os;
  os << t;
  return os.str();
}

TEST_CASE("tensor: nested lists give shape and dtype like torch.tensor") {
  Tensor a = tensor({{1, 2, 3}, {4, 5, 6}});
  CHECK(a.sizes() == IntArrayRef({2, 3}));
  CHECK(a.dtype() == kInt64);
  CHECK(a.strides() == IntArrayRef({3, 1}));
  CHECK(a.numel() == 6);
  CHECK(a.dim() == 2);
  CHECK(a.is_contiguous());
  CHECK(test::values(a) == std::vector<double>{1, 2, 3, 4, 5, 6});
  CHECK(tensor({1.5, 2.5}).dtype() == kFloat32);
  CHECK(tensor({1.5f}).dtype() == kFloat32);
  CHECK(tensor({true, false}).dtype() == kBool);
  CHECK(tensor({1, 2}, kFloat64).dtype() == kFloat64);
  CHECK(tensor(3.5).dim() == 0);
  CHECK(tensor(3.5).item<double>() == 3.5);
  CHECK(tensor(std::vector<int32_t>{1, 2}).dtype() == kInt32);
  EMBER_CHECK_THROWS(tensor({{1, 2}, {3}}), ShapeError, "[tensor]", "ragged", "(2,)", "(1,)");
}

TEST_CASE("tensor: factories") {
  CHECK(test::values(zeros({2, 2})) == std::vector<double>(4, 0.0));
  CHECK(test::values(ones({3}, kInt32)) == std::vector<double>(3, 1.0));
  CHECK(ones({3}, kInt32).dtype() == kInt32);
  Tensor f = full({2}, 7);
  CHECK(f.dtype() == kInt64);
  CHECK(full({2}, 7.5).dtype() == kFloat32);
  CHECK(full({2}, true).dtype() == kBool);
  CHECK(test::values(arange(5)) == std::vector<double>{0, 1, 2, 3, 4});
  CHECK(arange(5).dtype() == kInt64);
  CHECK(arange(0.0, 1.0, 0.25).dtype() == kFloat32);
  CHECK(test::values(arange(0.0, 1.0, 0.25)) == std::vector<double>{0, 0.25, 0.5, 0.75});
  CHECK(test::values(arange(5, 0, -2)) == std::vector<double>{5, 3, 1});
  // int64 bounds beyond 2^53 count exactly (a double span would round 1000 up to 1024).
  const int64_t big = int64_t{1} << 60;
  Tensor r = arange(big, big + 1000, 7);
  CHECK(r.numel() == 143);
  CHECK(r[142].item<int64_t>() == big + 994);
  CHECK(arange(big + 1000, big, -7).numel() == 143);
  CHECK(arange(std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::min() + 10, 3)
            .numel() == 4);
  EMBER_CHECK_THROWS(arange(big, big - 1, 1), ValueError, "[arange]", "inconsistent signs");
  CHECK(test::values(linspace(0, 1, 5)) == std::vector<double>{0, 0.25, 0.5, 0.75, 1});
  CHECK(linspace(0, 1, 1).numel() == 1);
  CHECK(test::values(eye(2, 3)) == std::vector<double>{1, 0, 0, 0, 1, 0});
  Tensor e = empty({2, 3}, kFloat64);
  CHECK(e.sizes() == IntArrayRef({2, 3}));
  CHECK(e.dtype() == kFloat64);
  Tensor z = zeros_like(e);
  CHECK(z.dtype() == kFloat64);
  CHECK(ones_like(e, kInt32).dtype() == kInt32);
  CHECK(test::values(full_like(e, 2)) == std::vector<double>(6, 2));
  Tensor s = empty_strided({2, 3}, {1, 2});
  CHECK(s.strides() == IntArrayRef({1, 2}));
  CHECK(zeros({0, 3}).numel() == 0);
  CHECK(ones({2}, TensorOptions().dtype(kFloat32).requires_grad(true)).requires_grad());
  EMBER_CHECK_THROWS(zeros({2, -1}), ValueError, "[full]", "(2, -1)");
  EMBER_CHECK_THROWS(arange(0, 5, 0), ValueError, "[arange]");
  EMBER_CHECK_THROWS(arange(5, 0, 1), ValueError, "[arange]");
  EMBER_CHECK_THROWS(linspace(0, 1, -1), ValueError, "[linspace]");
  EMBER_CHECK_THROWS(empty({int64_t{1} << 40, int64_t{1} << 40}), ValueError, "[empty]",
                     "overflow");
  EMBER_CHECK_THROWS(empty({int64_t{1} << 50}), ValueError, "[empty]", "exceeds");
  EMBER_CHECK_THROWS(ones({2}, kInt64).requires_grad_(), DTypeError, "[requires_grad_]", "int64");
}

TEST_CASE("tensor: from_blob shares caller memory and runs the deleter") {
  float data[6] = {1, 2, 3, 4, 5, 6};
  int deleted = 0;
  {
    Tensor t = from_blob(data, {2, 3}, [&](void*) { ++deleted; });
    CHECK(t.data_ptr<float>() == data);
    Tensor v = t.transpose(0, 1);
    t = Tensor();
    CHECK(deleted == 0);  // the view keeps the storage alive
    CHECK(v.size(0) == 3);
  }
  CHECK(deleted == 1);
  Tensor s = from_blob(data, {3}, {2}, nullptr, kFloat32);
  CHECK(test::values(s) == std::vector<double>{1, 3, 5});
  double d[2] = {1, 2};
  CHECK(test::values(from_blob(d, {2}, kFloat64)) == std::vector<double>{1, 2});
  EMBER_CHECK_THROWS(from_blob(nullptr, {2}), ValueError, "[from_blob]");
}

TEST_CASE("tensor: item and data_ptr check their preconditions") {
  Tensor t = tensor({2.5});
  CHECK(t.item<float>() == 2.5f);
  CHECK(t.item<int>() == 2);
  CHECK(t.item().is_floating_point());
  EMBER_CHECK_THROWS(ones({2}).item<float>(), ValueError, "[item]", "(2,)");
  EMBER_CHECK_THROWS(ones({2}).data_ptr<int64_t>(), DTypeError, "[data_ptr]", "int64", "float32");
  Tensor u;
  CHECK_FALSE(u.defined());
  EMBER_CHECK_THROWS(u.sizes(), ValueError, "[sizes]", "undefined");
  EMBER_CHECK_THROWS(ones({2, 3}).size(2), IndexError, "[size]", "[-2, 1]", "2");
}

TEST_CASE("tensor: to() converts dtypes with rounding and keeps NaN/Inf") {
  Tensor f = tensor({1.0, -2.5, 1e10, std::numeric_limits<double>::infinity(),
                     std::numeric_limits<double>::quiet_NaN()},
                    kFloat64);
  Tensor h = f.to(kFloat16);
  CHECK(h.dtype() == kFloat16);
  std::vector<double> v = test::values(h);
  CHECK(v[0] == 1.0);
  CHECK(v[1] == -2.5);
  CHECK(std::isinf(v[2]));  // 1e10 overflows float16
  CHECK(std::isinf(v[3]));
  CHECK(std::isnan(v[4]));
  Tensor b = f.to(kBFloat16);
  CHECK(std::isnan(test::values(b)[4]));
  CHECK(test::values(tensor({0.0, 2.0, -1.0}).to(kBool)) == std::vector<double>{0, 1, 1});
  CHECK(test::values(tensor({1.7, -1.7}).to(kInt32)) == std::vector<double>{1, -1});
  Tensor same = f.to(kFloat64);
  CHECK(same.is_same(f));
  CHECK_FALSE(f.to(kFloat64, false, true).is_same(f));
  Tensor c = f.clone();
  CHECK_FALSE(c.is_alias_of(f));
  CHECK(test::bitwise_equal(c, f));
}

TEST_CASE("tensor: copy_ broadcasts, converts and bumps the version") {
  Tensor t = zeros({2, 3});
  uint32_t v0 = t._version();
  t.copy_(tensor({1, 2, 3}));
  CHECK(t._version() == v0 + 1);
  CHECK(test::values(t) == std::vector<double>{1, 2, 3, 1, 2, 3});
  EMBER_CHECK_THROWS(t.copy_(ones({4})), ShapeError, "[copy_]", "(4,)", "(2, 3)");
  t.fill_(5);
  CHECK(test::values(t) == std::vector<double>(6, 5));
  t.zero_();
  CHECK(test::values(t) == std::vector<double>(6, 0));
}

TEST_CASE("tensor: printing matches PyTorch") {
  CHECK(str(tensor({{1.0, 2.0}, {3.0, 4.0}})) == "tensor([[1., 2.],\n        [3., 4.]])");
  CHECK(str(tensor({1.5, -2.25})) == "tensor([ 1.5000, -2.2500])");
  CHECK(str(tensor({1, 2, 3})) == "tensor([1, 2, 3])");
  CHECK(str(tensor({1, 2}, kInt32)) == "tensor([1, 2], dtype=int32)");
  CHECK(str(tensor({true, false})) == "tensor([ True, False])");
  CHECK(str(tensor(3.5)) == "tensor(3.5000)");
  CHECK(str(zeros({0, 3})) == "tensor([], size=(0, 3))");
  CHECK(str(tensor({1e-5, 1.0})) == "tensor([1.0000e-05, 1.0000e+00])");
  CHECK(str(tensor({1.0, 2.0}, kFloat64)) == "tensor([1., 2.], dtype=float64)");
  CHECK(str(arange(2 * 2 * 2).reshape({2, 2, 2})) ==
        "tensor([[[0, 1],\n         [2, 3]],\n\n        [[4, 5],\n         [6, 7]]])");
  CHECK(str(arange(2000)) == "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])");
  CHECK(str(ones({2}, TensorOptions().requires_grad(true))) ==
        "tensor([1., 1.], requires_grad=True)");
  std::ostringstream os;
  os << IntArrayRef({2, 3}) << IntArrayRef({4}) << IntArrayRef();
  CHECK(os.str() == "(2, 3)(4,)()");
}

TEST_CASE("threads: set_num_threads validates and round-trips") {
  int before = get_num_threads();
  set_num_threads(3);
  CHECK(get_num_threads() == 3);
  set_num_threads(before);
  EMBER_CHECK_THROWS(set_num_threads(0), ValueError, "[set_num_threads]");
}
