// Elementwise ops: values against the std:: scalar functions, type promotion, 16-bit floats,
// non-contiguous inputs, in-place rules, operators and whole-tensor comparisons.

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "core/cpu/vec_math.hpp"
#include "test_util.hpp"

using namespace ember;
using ember::test::bitwise_equal;
using ember::test::non_contiguous;
using ember::test::values;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

/// NaN-aware exact comparison of doubles.
bool same(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

void check_values(const Tensor& t, const std::vector<double>& expected) {
  INFO("tensor " << t);
  std::vector<double> got = values(t);
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", expected " << expected[i]);
    CHECK(same(got[i], expected[i]));
  }
}

void check_approx(const Tensor& t, const std::vector<double>& expected, double eps = 1e-6) {
  std::vector<double> got = values(t);
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    if (std::isnan(expected[i])) {
      CHECK(std::isnan(got[i]));
    } else {
      CHECK(got[i] == Approx(expected[i]).epsilon(eps).margin(eps));
    }
  }
}

// Reports the caller's line on failure.
#define check_values(...)                 \
  do {                                    \
    INFO("checked at line " << __LINE__); \
    (check_values)(__VA_ARGS__);          \
  } while (0)
#define check_approx(...)                 \
  do {                                    \
    INFO("checked at line " << __LINE__); \
    (check_approx)(__VA_ARGS__);          \
  } while (0)

Tensor f64(std::vector<double> v) { return tensor(v, kFloat64); }
Tensor f32(std::vector<float> v) { return tensor(v, kFloat32); }

/// One unary op with its scalar reference in double and in float. Float exp, expm1, tanh, sigmoid
/// and erf are vec_math.hpp's (the library's double versions for float64); test_vec_math.cpp
/// measures those against the library functions.
struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> ref64;
  std::function<float(float)> ref32;
};

#define UNARY_CASE(NAME, OP, EXPR)                                                        \
  UnaryCase {                                                                             \
    NAME, [](const Tensor& t) { return OP(t); }, [](double v) -> double { return EXPR; }, \
        [](float v) -> float { return EXPR; }                                             \
  }

std::vector<UnaryCase> unary_cases() {
  return {
      UNARY_CASE("neg", ember::neg, -v),
      UNARY_CASE("exp", ember::exp, cpu::vm::exp(v)),
      UNARY_CASE("exp2", ember::exp2, std::exp2(v)),
      UNARY_CASE("log", ember::log, std::log(v)),
      UNARY_CASE("log2", ember::log2, std::log2(v)),
      UNARY_CASE("log1p", ember::log1p, std::log1p(v)),
      UNARY_CASE("expm1", ember::expm1, cpu::vm::expm1(v)),
      UNARY_CASE("sqrt", ember::sqrt, std::sqrt(v)),
      UNARY_CASE("rsqrt", ember::rsqrt, 1 / std::sqrt(v)),
      UNARY_CASE("abs", ember::abs, std::abs(v)),
      UNARY_CASE("sin", ember::sin, std::sin(v)),
      UNARY_CASE("cos", ember::cos, std::cos(v)),
      UNARY_CASE("tan", ember::tan, std::tan(v)),
      UNARY_CASE("tanh", ember::tanh, cpu::vm::tanh(v)),
      UNARY_CASE("sigmoid", ember::sigmoid, cpu::vm::sigmoid(v)),
      UNARY_CASE("erf", ember::erf, cpu::vm::erf(v)),
      UNARY_CASE("reciprocal", ember::reciprocal, 1 / v),
      UNARY_CASE("square", ember::square, v * v),
      UNARY_CASE("floor", ember::floor, std::floor(v)),
      UNARY_CASE("ceil", ember::ceil, std::ceil(v)),
      UNARY_CASE("round", ember::round, std::nearbyint(v)),
      UNARY_CASE("relu", ember::relu, std::isnan(v) ? v : (v < 0 ? decltype(v)(0) : v)),
      UNARY_CASE("sign", ember::sign,
                 std::isnan(v) ? v
                               : (v > 0   ? decltype(v)(1)
                                  : v < 0 ? decltype(v)(-1)
                                          : 0)),
  };
}

const std::vector<double> kSamples = {-3.5, -1.0, -0.5, -0.0, 0.0,  0.25, 0.5,
                                      1.0,  2.5,  7.0,  1e-8, kNaN, kInf, -kInf};

}  // namespace

// ---- arithmetic ----

TEST_CASE("add/sub/mul/div: hand-computed values") {
  Tensor a = f32({1, 2, 3, 4}), b = f32({0.5, -1, 2, 8});
  check_values(add(a, b), {1.5, 1, 5, 12});
  check_values(add(a, b, 2), {2, 0, 7, 20});
  check_values(sub(a, b), {0.5, 3, 1, -4});
  check_values(sub(a, b, 0.5), {0.75, 2.5, 2, 0});
  check_values(mul(a, b), {0.5, -2, 6, 32});
  check_values(div(a, b), {2, -2, 1.5, 0.5});
  check_values(add(a, 1), {2, 3, 4, 5});
  check_values(sub(a, 1.5, 2), {-2, -1, 0, 1});
  check_values(mul(a, -2), {-2, -4, -6, -8});
  check_values(div(a, 4), {0.25, 0.5, 0.75, 1});
  check_values(div(f32({1, -1, 0}), 0.0), {kInf, -kInf, kNaN});
  CHECK(add(a, b).dtype() == kFloat32);
  CHECK(add(a, b).sizes() == IntArrayRef({4}));
}

TEST_CASE("add/sub/mul: integers wrap around and alpha must be integral") {
  Tensor a = tensor({100, -100}, kInt8), b = tensor({100, -100}, kInt8);
  Tensor s = add(a, b);
  CHECK(s.dtype() == kInt8);
  check_values(s, {-56, 56});
  check_values(mul(tensor({int64_t{1} << 62}, kInt64), 4), {0});
  check_values(add(tensor({1, 2}, kInt32), tensor({3, 4}, kInt32), 3), {10, 14});
  check_values(sub(tensor({1, 2}, kInt64), tensor({3, 4}, kInt64), 2), {-5, -6});
  EMBER_CHECK_THROWS(add(tensor({1, 2}, kInt32), tensor({3, 4}, kInt32), 0.5), DTypeError, "[add]",
                     "alpha");
  EMBER_CHECK_THROWS(add(f32({1}), f32({1}), true), DTypeError, "[add]", "bool alpha");
  EMBER_CHECK_THROWS(sub(tensor({true}), tensor({false})), DTypeError, "[sub]", "bool");
  EMBER_CHECK_THROWS(sub(f32({1}), tensor({false})), DTypeError, "[sub]", "bool");
}

TEST_CASE("add/mul: bool tensors give logical or / and") {
  Tensor a = tensor({true, true, false, false}), b = tensor({true, false, true, false});
  CHECK(add(a, b).dtype() == kBool);
  check_values(add(a, b), {1, 1, 1, 0});
  check_values(mul(a, b), {1, 0, 0, 0});
  check_values(add(a, 1), {2, 2, 1, 1});  // bool + int number -> int64
  CHECK(add(a, 1).dtype() == kInt64);
}

TEST_CASE("div: true division, integer inputs give the default float dtype") {
  Tensor a = tensor({7, -7, 1}, kInt32), b = tensor({2, 2, 0}, kInt32);
  Tensor q = div(a, b);
  CHECK(q.dtype() == kFloat32);
  check_values(q, {3.5, -3.5, kInf});
  CHECK(div(tensor({1, 2}, kInt64), 2).dtype() == kFloat32);
  set_default_dtype(kFloat64);
  CHECK(div(a, b).dtype() == kFloat64);
  CHECK(exp(a).dtype() == kFloat64);
  set_default_dtype(kFloat32);
  CHECK(div(tensor({true}), tensor({true})).dtype() == kFloat32);
  CHECK(div(tensor({1.0}, kFloat16), tensor({2}, kInt64)).dtype() == kFloat16);
}

TEST_CASE("pow: tensor and scalar exponents, integer rules") {
  check_values(pow(f32({2, 3, 4}), 2), {4, 9, 16});
  check_values(pow(f32({4, 9, -1}), 0.5), {2, 3, kNaN});
  check_values(pow(f32({2, 4}), -1), {0.5, 0.25});
  check_values(pow(f64({2, 10}), 3.0), {8, 1000});
  check_values(pow(f64({2, 10}), 1.5), {std::pow(2.0, 1.5), std::pow(10.0, 1.5)});
  check_values(pow(f32({2, 3}), f32({3, 2})), {8, 9});
  check_values(pow(2, f32({0, 1, 3})), {1, 2, 8});
  CHECK(pow(2, f32({0})).dtype() == kFloat32);
  CHECK(pow(2.5, tensor({1, 2}, kInt64)).dtype() == kFloat32);

  Tensor ints = tensor({2, -3, 0, 5}, kInt64);
  Tensor p = pow(ints, 3);
  CHECK(p.dtype() == kInt64);
  check_values(p, {8, -27, 0, 125});
  check_values(pow(ints, 0), {1, 1, 1, 1});
  CHECK(pow(ints, 0.5).dtype() == kFloat32);
  EMBER_CHECK_THROWS(pow(ints, -1), ValueError, "[pow]", "negative integer powers");
  // Integer tensor exponents: negative powers give 1 for 1, +-1 for -1, else 0 (PyTorch).
  check_values(pow(tensor({1, -1, -1, 2, 3}, kInt32), tensor({-2, -3, -2, -1, 4}, kInt32)),
               {1, -1, 1, 0, 81});
  CHECK(pow(tensor({true}), 2).dtype() == kInt64);
}

TEST_CASE("minimum/maximum: values, promotion and NaN propagation") {
  Tensor a = f32({1, 5, std::nanf(""), 2}), b = f32({3, 4, 0, std::nanf("")});
  check_values(minimum(a, b), {1, 4, kNaN, kNaN});
  check_values(maximum(a, b), {3, 5, kNaN, kNaN});
  Tensor m = maximum(tensor({1, 7}, kInt32), tensor({2.5}, kFloat64));
  CHECK(m.dtype() == kFloat64);
  check_values(m, {2.5, 7});
  check_values(minimum(tensor({-4, 9}, kInt8), tensor({3}, kInt8)), {-4, 3});
}

// ---- type promotion ----

TEST_CASE("result_type: PyTorch's promotion table") {
  struct Row {
    Tensor a;
    Tensor b;
    DType expected;
  };
  Tensor i32 = tensor({1, 2}, kInt32), i8 = tensor({1, 2}, kInt8), u8 = tensor({1, 2}, kUInt8);
  Tensor h = tensor({1.0}, kFloat16), bf = tensor({1.0}, kBFloat16), f = tensor({1.0}, kFloat32);
  Tensor d = tensor({1.0}, kFloat64), bl = tensor({true}), i64 = tensor({1}, kInt64);
  Tensor d0 = scalar_tensor(1.0, kFloat64), i64_0 = scalar_tensor(1, kInt64);
  std::vector<Row> rows = {
      {i32, f, kFloat32}, {i32, d, kFloat64},    {i8, u8, kInt32},    {i8, i64, kInt64},
      {h, bf, kFloat32},  {h, f, kFloat32},      {bf, d, kFloat64},   {bl, bl, kBool},
      {bl, i8, kInt8},    {bl, h, kFloat16},     {i32, d0, kFloat64}, {i8, i64_0, kInt8},
      {h, d0, kFloat16},  {d0, i64_0, kFloat64}, {bl, i64_0, kInt64}, {i32, i32, kInt32},
  };
  for (const Row& r : rows) {
    INFO(r.a.dtype() << " (dim " << r.a.dim() << ") with " << r.b.dtype() << " (dim " << r.b.dim()
                     << ")");
    CHECK(result_type(r.a, r.b) == r.expected);
    CHECK(result_type(r.b, r.a) == r.expected);
    CHECK(add(r.a, r.b).dtype() == (r.expected));
  }
}

TEST_CASE("result_type: wrapped numbers only lift the category") {
  Tensor i32 = tensor({1, 2}, kInt32), i8 = tensor({1, 2}, kInt8);
  Tensor h = tensor({1.0, 2.0}, kFloat16), bl = tensor({true, false});
  CHECK(result_type(i32, 2.5) == kFloat32);
  CHECK(result_type(i8, 1000) == kInt8);
  CHECK(result_type(h, 2.5) == kFloat16);
  CHECK(result_type(bl, true) == kBool);
  CHECK(result_type(bl, 3) == kInt64);
  CHECK(result_type(bl, 0.5) == kFloat32);
  CHECK(result_type(scalar_tensor(1, kInt32), 2.5) == kFloat32);

  Tensor r = add(i32, 2.5);
  CHECK(r.dtype() == kFloat32);
  check_values(r, {3.5, 4.5});
  Tensor w = add(i8, 1000);  // 1000 wraps to -24 in int8, as in PyTorch
  CHECK(w.dtype() == kInt8);
  check_values(w, {-23, -22});
  Tensor hr = add(h, 2.5);
  CHECK(hr.dtype() == kFloat16);
  check_values(hr, {3.5, 4.5});
  // A float64 tensor sees the number at full precision.
  CHECK(add(f64({0.0}), 0.1).item<double>() == 0.1);
  set_default_dtype(kFloat64);
  CHECK(result_type(i32, 2.5) == kFloat64);
  set_default_dtype(kFloat32);
}

// ---- unary ----

TEST_CASE("unary: each op matches the std:: scalar function (float64, float32)") {
  Tensor x64 = tensor(kSamples, kFloat64);
  Tensor x32 = x64.to(kFloat32);
  for (const UnaryCase& c : unary_cases()) {
    INFO("op " << c.name);
    Tensor y64 = c.op(x64), y32 = c.op(x32);
    CHECK(y64.dtype() == kFloat64);
    CHECK(y32.dtype() == kFloat32);
    std::vector<double> exp64, exp32;
    for (double v : kSamples) {
      exp64.push_back(c.ref64(v));
      exp32.push_back(static_cast<double>(c.ref32(static_cast<float>(v))));
    }
    check_values(y64, exp64);
    check_values(y32, exp32);
  }
}

TEST_CASE("unary: float16 and bfloat16 compute in float and round once") {
  std::vector<double> samples = {-2.5, -0.75, 0.0, 0.3, 1.0, 3.0, kNaN};
  for (DType t : {kFloat16, kBFloat16}) {
    Tensor x = tensor(samples, kFloat64).to(t);
    std::vector<double> xs = values(x);
    for (const UnaryCase& c : unary_cases()) {
      INFO("op " << c.name << " on " << t);
      Tensor y = c.op(x);
      CHECK(y.dtype() == t);
      std::vector<double> expected;
      for (double v : xs) {
        float r = c.ref32(static_cast<float>(v));
        expected.push_back(t == kFloat16 ? static_cast<double>(static_cast<float>(Half(r)))
                                         : static_cast<double>(static_cast<float>(BFloat16(r))));
      }
      check_values(y, expected);
    }
  }
  // 1/3 rounds to nearest even in float16: 0x3555.
  Tensor third = div(tensor({1.0}, kFloat16), 3);
  CHECK(third.data_ptr<Half>()[0].x == 0x3555);
}

TEST_CASE("mul/add: a number operand of a float16/bfloat16 tensor stays at float precision") {
  // PyTorch computes half * 0.1 as half(float(x) * 0.1f), not with 0.1 rounded to half first.
  Tensor base = linspace(-8, 8, 97, kFloat32);
  for (DType t : {kFloat16, kBFloat16}) {
    INFO(t);
    Tensor x = base.to(t);
    std::vector<double> xs = values(x);
    auto round_to = [t](float v) {
      return t == kFloat16 ? static_cast<double>(static_cast<float>(Half(v)))
                           : static_cast<double>(static_cast<float>(BFloat16(v)));
    };
    const float tenth_rounded = static_cast<float>(round_to(0.1f));
    std::vector<double> prod, sum, prod_rounded_scalar;
    for (double v : xs) {
      prod.push_back(round_to(static_cast<float>(v) * 0.1f));
      sum.push_back(round_to(static_cast<float>(v) + 0.01f));
      prod_rounded_scalar.push_back(round_to(static_cast<float>(v) * tenth_rounded));
    }
    check_values(mul(x, 0.1), prod);
    check_values(x * 0.1, prod);
    check_values(add(x, 0.01), sum);
    check_values(mul(x, scalar_tensor(0.1, kFloat64)), prod);
    Tensor y = x.clone();
    y.mul_(0.1);
    check_values(y, prod);
    CHECK(prod != prod_rounded_scalar);  // the two conventions do differ on these inputs
  }
}

TEST_CASE("unary: integer and bool inputs") {
  Tensor i = tensor({-3, 0, 2}, kInt32);
  CHECK(exp(i).dtype() == kFloat32);
  check_approx(exp(i), {std::exp(-3.0), 1.0, std::exp(2.0)});
  CHECK(sqrt(tensor({4, 9}, kInt64)).dtype() == kFloat32);
  CHECK(sigmoid(tensor({true})).dtype() == kFloat32);
  for (auto op : {ember::neg, ember::abs, ember::sign, ember::square, ember::floor, ember::ceil,
                  ember::round, ember::relu}) {
    CHECK(op(i).dtype() == kInt32);
  }
  check_values(neg(i), {3, 0, -2});
  check_values(abs(i), {3, 0, 2});
  check_values(sign(i), {-1, 0, 1});
  check_values(square(i), {9, 0, 4});
  check_values(relu(i), {0, 0, 2});
  check_values(floor(i), {-3, 0, 2});
  check_values(round(i), {-3, 0, 2});
  check_values(abs(tensor({-128}, kInt8)), {-128});  // wraps like PyTorch
  check_values(sign(tensor({0, 7}, kUInt8)), {0, 1});
  Tensor b = tensor({true, false});
  check_values(abs(b), {1, 0});
  CHECK(square(b).dtype() == kInt64);
  EMBER_CHECK_THROWS(neg(b), DTypeError, "[neg]", "bool");
  EMBER_CHECK_THROWS(-b, DTypeError, "[neg]");
  EMBER_CHECK_THROWS(relu(b), DTypeError, "[relu]", "bool");
}

TEST_CASE("round: half to even, sign: zero and NaN") {
  check_values(round(f32({0.5, 1.5, 2.5, -0.5, -1.5, 2.4, -2.6})), {0, 2, 2, -0.0, -2, 2, -3});
  Tensor s = sign(f64({-0.0, 0.0, kNaN, -kInf, 3}));
  check_values(s, {0, 0, kNaN, -1, 1});
}

TEST_CASE("activations: gelu, silu, leaky_relu, elu, softplus against formulas") {
  std::vector<double> xs = {-4, -1, -0.25, 0, 0.5, 2, 30};
  Tensor x = tensor(xs, kFloat64);
  std::vector<double> ge, gt, si, lr, el, sp, sp2;
  for (double v : xs) {
    ge.push_back(0.5 * v * (1 + std::erf(v / std::sqrt(2.0))));
    gt.push_back(0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))));
    si.push_back(v / (1 + std::exp(-v)));
    lr.push_back(v > 0 ? v : 0.2 * v);
    el.push_back(v > 0 ? v : 1.5 * (std::exp(v) - 1));
    sp.push_back(v > 20 ? v : std::log1p(std::exp(v)));
    sp2.push_back(2 * v > 1 ? v : std::log1p(std::exp(2 * v)) / 2);
  }
  check_approx(gelu(x), ge, 1e-12);
  check_approx(gelu(x, "tanh"), gt, 1e-12);
  check_approx(silu(x), si, 1e-12);
  check_approx(leaky_relu(x, 0.2), lr, 1e-12);
  check_values(leaky_relu(f32({-100, 3})), {static_cast<double>(-100 * 0.01f), 3});
  check_approx(elu(x, 1.5), el, 1e-12);
  check_approx(softplus(x), sp, 1e-12);
  check_approx(softplus(x, 2, 1), sp2, 1e-12);
  // gelu tanh and erf forms differ slightly, and both are exact at 0.
  CHECK(values(gelu(x, "tanh"))[2] != values(gelu(x))[2]);
  EMBER_CHECK_THROWS(gelu(x, "fast"), ValueError, "[gelu]", "fast");
  CHECK(gelu(tensor({1, 2}, kInt64)).dtype() == kFloat32);
  CHECK(silu(f32({0})).item<float>() == 0.0f);
  CHECK(sigmoid(f32({-200})).item<float>() == 0.0f);
  CHECK(sigmoid(f32({200})).item<float>() == 1.0f);
}

TEST_CASE("clamp: bounds, NaN, dtypes and errors") {
  Tensor x = f32({-2, -0.5, 0.5, 3, std::nanf("")});
  check_values(clamp(x, -1, 1), {-1, -0.5, 0.5, 1, kNaN});
  check_values(clamp(x, 0), {0, 0, 0.5, 3, kNaN});
  check_values(clamp(x, std::nullopt, 0), {-2, -0.5, 0, 0, kNaN});
  check_values(clamp_min(x, 0.5), {0.5, 0.5, 0.5, 3, kNaN});
  check_values(clamp_max(x, -1), {-2, -1, -1, -1, kNaN});
  check_values(clamp(x, 2, 1), {1, 1, 1, 1, kNaN});  // min > max: everything is max
  check_values(clamp(x, kNaN, 1), {kNaN, kNaN, kNaN, kNaN, kNaN});
  Tensor i = tensor({-5, 0, 5, 100}, kInt8);
  Tensor ci = clamp(i, -1, 1000);
  CHECK(ci.dtype() == kInt8);
  check_values(ci, {-1, 0, 5, 100});
  Tensor cf = clamp(tensor({1, 2, 3}, kInt64), 1.5);
  CHECK(cf.dtype() == kFloat32);
  check_values(cf, {1.5, 2, 3});
  EMBER_CHECK_THROWS(clamp(x, std::nullopt, std::nullopt), ValueError, "[clamp]", "min and max");
  Tensor y = x.clone();
  uint32_t v0 = y._version();
  y.clamp_(-1, 1);
  CHECK(y._version() == v0 + 1);
  check_values(y, {-1, -0.5, 0.5, 1, kNaN});
  Tensor yi = tensor({-5, 5}, kInt32);
  EMBER_CHECK_THROWS(yi.clamp_(0.5), DTypeError, "[clamp_]", "float32", "int32");
  yi.clamp_(0, 3);
  check_values(yi, {0, 3});
}

// ---- comparisons and logical ops ----

TEST_CASE("comparisons: Tensor and Scalar forms give bool") {
  Tensor a = f32({1, 2, 3, std::nanf("")}), b = f32({3, 2, 1, std::nanf("")});
  check_values(eq(a, b), {0, 1, 0, 0});
  check_values(ne(a, b), {1, 0, 1, 1});
  check_values(lt(a, b), {1, 0, 0, 0});
  check_values(le(a, b), {1, 1, 0, 0});
  check_values(gt(a, b), {0, 0, 1, 0});
  check_values(ge(a, b), {0, 1, 1, 0});
  check_values(eq(a, 2), {0, 1, 0, 0});
  check_values(ne(a, 2), {1, 0, 1, 1});
  check_values(lt(a, 2.5), {1, 1, 0, 0});
  check_values(le(a, 2), {1, 1, 0, 0});
  check_values(gt(a, 1), {0, 1, 1, 0});
  check_values(ge(a, 3), {0, 0, 1, 0});
  CHECK(eq(a, b).dtype() == kBool);
  // Promotion before comparing: int 2 vs float 2.5 compares in float.
  check_values(lt(tensor({2, 3}, kInt32), 2.5), {1, 0});
  check_values(eq(tensor({1, 2}, kInt64), tensor({1.0, 2.5}, kFloat64)), {1, 0});
  check_values(a.gt(b), values(gt(a, b)));
}

TEST_CASE("logical ops and isnan/isinf/isfinite") {
  Tensor a = tensor({true, true, false, false}), b = tensor({true, false, true, false});
  check_values(logical_and(a, b), {1, 0, 0, 0});
  check_values(logical_or(a, b), {1, 1, 1, 0});
  check_values(logical_not(a), {0, 0, 1, 1});
  check_values(logical_and(f32({0, 2, std::nanf("")}), tensor({5, 5, 5}, kInt32)), {0, 1, 1});
  check_values(logical_not(tensor({0, 3}, kInt64)), {1, 0});
  CHECK(logical_not(tensor({0, 3}, kInt64)).dtype() == kBool);
  Tensor x = f32({1, std::nanf(""), INFINITY, -INFINITY});
  check_values(isnan(x), {0, 1, 0, 0});
  check_values(isinf(x), {0, 0, 1, 1});
  check_values(isfinite(x), {1, 0, 0, 0});
  check_values(isfinite(tensor({1, 2}, kInt32)), {1, 1});
  check_values(isnan(tensor({1.0, kNaN}, kFloat64).to(kBFloat16)), {0, 1});
  check_values(isinf(tensor({kInf, 1.0}, kFloat64).to(kFloat16)), {1, 0});
}

// ---- where / masked_fill ----

TEST_CASE("where: three overloads, broadcasting and promotion") {
  Tensor c = tensor({true, false, true});
  check_values(where(c, f32({1, 2, 3}), f32({-1, -2, -3})), {1, -2, 3});
  check_values(where(c, f32({1, 2, 3}), 0.0), {1, 0, 3});
  check_values(where(c, 9, tensor({4, 5, 6}, kInt32)), {9, 5, 9});
  CHECK(where(c, 9, tensor({4, 5, 6}, kInt32)).dtype() == kInt32);
  CHECK(where(c, tensor({1, 2, 3}, kInt32), 0.5).dtype() == kFloat32);
  CHECK(where(c, tensor({1.0}, kFloat16), 0.5).dtype() == kFloat16);
  Tensor w = where(tensor({{true}, {false}}), f32({1, 2, 3}), f32({7}));  // (2,1) (3) (1)
  CHECK(w.sizes() == IntArrayRef({2, 3}));
  check_values(w, {1, 2, 3, 7, 7, 7});
  CHECK(f32({1, 2, 3}).where(c, f32({0})).sizes() == IntArrayRef({3}));
  EMBER_CHECK_THROWS(where(f32({1, 0}), f32({1, 2}), f32({3, 4})), DTypeError, "[where]", "bool",
                     "float32");
  EMBER_CHECK_THROWS(where(tensor({true, false}), f32({1, 2, 3}), f32({3})), ShapeError, "[where]",
                     "(2,)", "(3,)");
}

TEST_CASE("masked_fill: out of place and in place") {
  Tensor x = f32({1, 2, 3, 4}).reshape({2, 2});
  Tensor m = tensor({true, false});
  Tensor y = masked_fill(x, m, -1);
  check_values(y, {-1, 2, -1, 4});
  check_values(x, {1, 2, 3, 4});
  check_values(x.masked_fill(tensor({{false}, {true}}), 0.5), {1, 2, 0.5, 0.5});
  CHECK(masked_fill(tensor({1, 2}, kInt64), tensor({true, false}), 7).dtype() == kInt64);
  uint32_t v0 = x._version();
  x.masked_fill_(m, 10);
  CHECK(x._version() == v0 + 1);
  check_values(x, {10, 2, 10, 4});
  EMBER_CHECK_THROWS(x.masked_fill_(f32({1, 0}), 0), DTypeError, "[masked_fill_]", "bool");
  EMBER_CHECK_THROWS(x.masked_fill_(tensor({true, false, true}), 0), ShapeError, "[masked_fill_]",
                     "(2, 2)", "(3,)");
  EMBER_CHECK_THROWS(f32({1}).masked_fill_(tensor({true, false}), 0), ShapeError, "[masked_fill_]",
                     "(1,)", "(2,)");
}

// ---- non-contiguous inputs ----

TEST_CASE("elementwise: non-contiguous inputs give bitwise the same results") {
  Tensor base = linspace(-3, 3, 24, kFloat32).reshape({4, 6});
  std::vector<Tensor> inputs = {base, base.to(kFloat16), base.to(kFloat64),
                                mul(base, 3).to(kInt32)};
  for (const Tensor& x : inputs) {
    Tensor nc = non_contiguous(x);
    REQUIRE(!nc.is_contiguous());
    Tensor tr = x.t().contiguous().t();  // a transposed view with x's values
    REQUIRE(!tr.is_contiguous());
    for (const UnaryCase& c : unary_cases()) {
      INFO("op " << c.name << " on " << x.dtype());
      if (x.dtype() == kInt32 && std::string(c.name) == "reciprocal") continue;
      Tensor ref = c.op(x);
      CHECK(bitwise_equal(c.op(nc), ref));
      CHECK(bitwise_equal(c.op(tr), ref));
    }
    Tensor y = add(x, 1);
    Tensor ync = non_contiguous(y), ytr = y.t().contiguous().t();
    std::vector<std::function<Tensor(const Tensor&, const Tensor&)>> binaries = {
        [](const Tensor& a, const Tensor& b) { return add(a, b, 2); },
        [](const Tensor& a, const Tensor& b) { return sub(a, b); },
        [](const Tensor& a, const Tensor& b) { return mul(a, b); },
        [](const Tensor& a, const Tensor& b) { return div(a, b); },
        [](const Tensor& a, const Tensor& b) { return pow(a, b); },
        [](const Tensor& a, const Tensor& b) { return maximum(a, b); },
        [](const Tensor& a, const Tensor& b) { return lt(a, b); },
        [](const Tensor& a, const Tensor& b) { return where(gt(a, 0), a, b); },
        [](const Tensor& a, const Tensor& b) { return add(a, b.select(0, 1)); },  // broadcast row
        [](const Tensor& a, const Tensor&) { return mul(a, 0.37); },
        [](const Tensor& a, const Tensor&) { return clamp(a, -1, 2); },
    };
    for (size_t k = 0; k < binaries.size(); ++k) {
      INFO("binary case " << k << " on " << x.dtype());
      Tensor ref = binaries[k](x, y);
      CHECK(bitwise_equal(binaries[k](nc, ync), ref));
      CHECK(bitwise_equal(binaries[k](tr, ytr), ref));
      CHECK(bitwise_equal(binaries[k](nc, ytr), ref));
    }
  }
}

TEST_CASE("elementwise: large tensors take the parallel path and match the serial result") {
  const int64_t R = 300, C = 1000;
  Tensor a = linspace(-1, 1, R * C, kFloat32).reshape({R, C});
  Tensor b = linspace(0, 2, C, kFloat32);
  int threads = get_num_threads();
  set_num_threads(1);
  Tensor serial = add(mul(a, b), exp(a));
  set_num_threads(std::max(2, threads));
  Tensor parallel = add(mul(a, b), exp(a));
  set_num_threads(threads);
  CHECK(bitwise_equal(serial, parallel));
  const float* pa = a.data_ptr<float>();
  const float* pb = b.data_ptr<float>();
  const float* pr = parallel.data_ptr<float>();
  bool ok = true;
  for (int64_t r = 0; r < R && ok; r += 37) {
    for (int64_t c = 0; c < C; ++c) {
      float x = pa[r * C + c];
      volatile float product = x * pb[c];  // rounded on its own, as the mul kernel does
      ok = ok && pr[r * C + c] == product + cpu::vm::exp(x);
    }
  }
  CHECK(ok);
  // A long transposed operand (strided rows, several threads).
  Tensor t = a.t();
  CHECK(bitwise_equal(neg(t), neg(t.contiguous())));
}

// ---- in place ----

TEST_CASE("in place: add_/sub_/mul_/div_ values, version counter, self aliasing") {
  Tensor x = f32({1, 2, 3, 4});
  uint32_t v0 = x._version();
  Tensor& r = x.add_(f32({1, 1, 1, 1}), 2);
  CHECK(&r == &x);
  CHECK(x._version() == v0 + 1);
  check_values(x, {3, 4, 5, 6});
  x.sub_(1);
  check_values(x, {2, 3, 4, 5});
  x.mul_(f32({2}));
  check_values(x, {4, 6, 8, 10});
  x.div_(4);
  check_values(x, {1, 1.5, 2, 2.5});
  x.sub_(f32({1, 1, 1, 1}), 0.5);
  check_values(x, {0.5, 1, 1.5, 2});
  CHECK(x._version() == v0 + 5);

  // A view shares the counter; in-place ops on it write the base.
  Tensor m = f32({1, 2, 3, 4, 5, 6}).reshape({2, 3});
  Tensor row = m.select(0, 1);
  uint32_t mv = m._version();
  row.mul_(10);
  check_values(m, {1, 2, 3, 40, 50, 60});
  CHECK(m._version() == mv + 1);

  // Inputs overlapping the output are read before anything is written.
  Tensor sq = f32({1, 2, 3, 4}).reshape({2, 2});
  sq.add_(sq.t());
  check_values(sq, {2, 5, 5, 8});
  Tensor bc = f32({1, 2, 3, 4}).reshape({2, 2});
  bc.mul_(bc.select(0, 1));  // row 1 = (3, 4) broadcast over both rows
  check_values(bc, {3, 8, 9, 16});
  Tensor base = f32({1, 2, 3, 4, 5, 6}).reshape({2, 3});
  base.t().add_(f32({10, 20}));  // a transposed (non-contiguous) self
  check_values(base, {11, 12, 13, 24, 25, 26});
  Tensor same_t = f32({1, 2});
  same_t.add_(same_t);
  check_values(same_t, {2, 4});

  // Lower-precision self computes in the promoted type and rounds back.
  Tensor h = tensor({1.0, 2.0}, kFloat64).to(kFloat16);
  h.add_(tensor({0.5, 0.25}, kFloat64));
  CHECK(h.dtype() == kFloat16);
  check_values(h, {1.5, 2.25});
  Tensor i = tensor({1, 2}, kInt64);
  i.add_(tensor({3, 4}, kInt32));
  CHECK(i.dtype() == kInt64);
  check_values(i, {4, 6});
  Tensor fi = f32({1, 2});
  fi.add_(tensor({1, 1}, kInt64));
  check_values(fi, {2, 3});
}

TEST_CASE("in place: dtype and shape errors") {
  Tensor i = tensor({1, 2, 3}, kInt64);
  EMBER_CHECK_THROWS(i.add_(f32({1, 2, 3})), DTypeError,
                     "[add_] result type float32 can't be cast to the desired output type int64");
  EMBER_CHECK_THROWS(i.add_(0.5), DTypeError, "[add_]", "float32", "int64");
  EMBER_CHECK_THROWS(i.mul_(1.5), DTypeError, "[mul_]", "float32", "int64");
  EMBER_CHECK_THROWS(i.div_(2), DTypeError, "[div_]", "float32", "int64");
  EMBER_CHECK_THROWS(i /= 2, DTypeError, "[div_]");
  Tensor b = tensor({true, false});
  EMBER_CHECK_THROWS(b.add_(tensor({1, 2}, kInt64)), DTypeError, "[add_]", "int64", "bool");
  b.add_(tensor({false, true}));
  check_values(b, {1, 1});
  CHECK(i._version() == 0);
  Tensor x = f32({1, 2, 3});
  EMBER_CHECK_THROWS(x.add_(f32({1, 2, 3, 4, 5, 6}).reshape({2, 3})), ShapeError, "[add_]", "(3,)",
                     "(2, 3)");
  EMBER_CHECK_THROWS(x.mul_(f32({1, 2})), ShapeError, "[mul_]", "(3,)", "(2,)");
  EMBER_CHECK_THROWS(x.expand({2, 3}).add_(1), ValueError, "[add_]", "single memory location");
  CHECK(x._version() == 0);
}

// ---- operators ----

TEST_CASE("operators: arithmetic, comparisons, logical and compound assignment") {
  Tensor a = f32({1, 2, 4}), b = f32({2, 2, 2});
  check_values(a + b, {3, 4, 6});
  check_values(a - b, {-1, 0, 2});
  check_values(a * b, {2, 4, 8});
  check_values(a / b, {0.5, 1, 2});
  check_values(a + 1, {2, 3, 5});
  check_values(a - 1, {0, 1, 3});
  check_values(a * 3, {3, 6, 12});
  check_values(a / 2, {0.5, 1, 2});
  check_values(1 + a, {2, 3, 5});
  check_values(10 - a, {9, 8, 6});
  check_values(3 * a, {3, 6, 12});
  check_values(8 / a, {8, 4, 2});
  check_values(-a, {-1, -2, -4});
  CHECK((2 / tensor({4}, kInt64)).dtype() == kFloat32);
  CHECK((10 - tensor({4}, kInt32)).dtype() == kInt32);
  check_values(a == b, {0, 1, 0});
  check_values(a != b, {1, 0, 1});
  check_values(a < b, {1, 0, 0});
  check_values(a <= b, {1, 1, 0});
  check_values(a > b, {0, 0, 1});
  check_values(a >= b, {0, 1, 1});
  check_values(a == 2, {0, 1, 0});
  check_values(a != 2, {1, 0, 1});
  check_values(a < 2, {1, 0, 0});
  check_values(a <= 2, {1, 1, 0});
  check_values(a > 2, {0, 0, 1});
  check_values(a >= 2, {0, 1, 1});
  Tensor p = tensor({true, true, false}), q = tensor({true, false, false});
  check_values(p & q, {1, 0, 0});
  check_values(p | q, {1, 1, 0});
  check_values(~p, {0, 0, 1});
  check_values((a > 1) & (a < 4), {0, 1, 0});
  EMBER_CHECK_THROWS(a & b, DTypeError, "[bitwise_and]", "float32");
  EMBER_CHECK_THROWS(~a, DTypeError, "[bitwise_not]", "float32");
  Tensor c = a.clone();
  uint32_t v0 = c._version();
  c += b;
  check_values(c, {3, 4, 6});
  c -= b;
  check_values(c, {1, 2, 4});
  c *= b;
  check_values(c, {2, 4, 8});
  c /= b;
  check_values(c, {1, 2, 4});
  c += 1;
  c -= 0.5;
  c *= 2;
  c /= 3;
  check_values(c, values(div(mul(sub(add(a, 1), 0.5), 2), 3)));
  CHECK(c._version() == v0 + 8);
}

TEST_CASE("Tensor members forward to the free functions") {
  Tensor a = f32({0.5, 1, 2});
  CHECK(bitwise_equal(a.exp(), exp(a)));
  CHECK(bitwise_equal(a.pow(2), pow(a, 2)));
  CHECK(bitwise_equal(a.pow(a), pow(a, a)));
  CHECK(bitwise_equal(a.add(a, 3), add(a, a, 3)));
  CHECK(bitwise_equal(a.sub(1, 2), sub(a, 1, 2)));
  CHECK(bitwise_equal(a.clamp(0.7, 1.5), clamp(a, 0.7, 1.5)));
  CHECK(bitwise_equal(a.clamp_max(1), clamp_max(a, 1)));
  CHECK(bitwise_equal(a.minimum(f32({1})), minimum(a, f32({1}))));
  CHECK(bitwise_equal(a.logical_not(), logical_not(a)));
  CHECK(bitwise_equal(a.isfinite(), isfinite(a)));
}

// ---- whole-tensor comparisons ----

TEST_CASE("equal, allclose, isclose") {
  Tensor a = f32({1, 2, 3});
  CHECK(equal(a, f32({1, 2, 3})));
  CHECK_FALSE(equal(a, f32({1, 2, 4})));
  CHECK_FALSE(equal(a, a.to(kFloat64)));
  CHECK_FALSE(equal(a, f32({1, 2, 3, 4})));
  CHECK_FALSE(equal(f32({std::nanf("")}), f32({std::nanf("")})));
  CHECK(equal(non_contiguous(a), a));

  CHECK(allclose(f64({1.0, 100.0}), f64({1.0 + 1e-9, 100.0 + 1e-4})));
  CHECK_FALSE(allclose(f64({1.0}), f64({1.0 + 1e-4})));
  CHECK(allclose(f64({1.0}), f64({1.1}), 0.1, 0.0));
  CHECK_FALSE(allclose(f64({1.1}), f64({1.0}), 0.1, 0.0));  // relative to |b|
  CHECK(allclose(f64({1.0, 1.0}), f64({1.0})));             // broadcasts
  CHECK_FALSE(allclose(f64({kNaN}), f64({kNaN})));
  CHECK(allclose(f64({kNaN}), f64({kNaN}), 1e-5, 1e-8, true));
  CHECK(allclose(f64({kInf}), f64({kInf})));
  CHECK_FALSE(allclose(f64({kInf}), f64({-kInf})));
  CHECK_FALSE(allclose(f64({1.0}), f64({kInf})));
  CHECK(allclose(tensor({1, 2}, kInt64), tensor({1, 2}, kInt64)));
  Tensor c = isclose(f32({1, 2, std::nanf("")}), f32({1, 2.5, std::nanf("")}), 0, 0.1, true);
  CHECK(c.dtype() == kBool);
  check_values(c, {1, 0, 1});
  EMBER_CHECK_THROWS(allclose(f32({1, 2}), f32({1, 2, 3})), ShapeError, "(2,)", "(3,)");
}

TEST_CASE("where / masked_fill: long rows with a broadcast scalar select bits exactly") {
  // Rows longer than map's 256-element broadcast block, odd lengths, float and double, special
  // values (NaN payloads, -0.0, infinities) that an arithmetic select would change.
  for (DType dt : {kFloat32, kFloat64})
    for (int64_t n : {1, 255, 257, 1000, 70001}) {
      std::vector<double> xs(static_cast<size_t>(n));
      std::vector<uint8_t> cs(static_cast<size_t>(n));
      const double specials[] = {-0.0, INFINITY, -INFINITY, std::nan(""), 1e-310, 3.5};
      for (int64_t i = 0; i < n; ++i) {
        xs[static_cast<size_t>(i)] = i % 7 == 0 ? specials[i % 6] : std::sin(0.37 * i);
        cs[static_cast<size_t>(i)] = static_cast<uint8_t>((i * 2654435761u >> 7) & 1);
      }
      Tensor x = tensor(xs, dt);
      Tensor c = tensor(std::vector<double>(cs.begin(), cs.end()), kFloat64).gt(0.5);
      Tensor a = where(c, x, -0.0), b = masked_fill(x, c, 2.5), d = where(c, 7.0, x);
      Tensor xc = x.to(kFloat64);
      for (int64_t i = 0; i < n; ++i) {
        const bool ci = cs[static_cast<size_t>(i)] != 0;
        const double xi = xc[i].item<double>();
        auto same = [](double u, double v) {
          return (std::isnan(u) && std::isnan(v)) ||
                 (u == v && std::signbit(u) == std::signbit(v));
        };
        CHECK(same(a[i].to(kFloat64).item<double>(), ci ? xi : -0.0));
        CHECK(same(b[i].to(kFloat64).item<double>(), ci ? 2.5 : xi));
        CHECK(same(d[i].to(kFloat64).item<double>(), ci ? 7.0 : xi));
        if (n > 1000 && i > 300) break;  // the long rows: the first blocks are enough per element
      }
      // The long rows in full, against the contiguous (non-broadcast) form.
      CHECK(test::bitwise_equal(a, where(c, x, full({n}, -0.0, TensorOptions(dt)))));
      CHECK(test::bitwise_equal(b, where(c, full({n}, 2.5, TensorOptions(dt)), x)));
    }
}
