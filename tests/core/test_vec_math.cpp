// The vectorizable float32 functions of src/core/cpu/vec_math.hpp against the double-precision
// library functions rounded to float (correctly rounded but for rare double-rounding cases): a
// sweep over every 127th float bit pattern (34 million inputs, all exponents, both signs), a dense
// sweep of the region each function works hardest in, and the special values.
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "core/cpu/vec_math.hpp"
#include "test_util.hpp"

using namespace ember::cpu;

namespace {

/// Distance in units in the last place between two floats of the same sign class (the float
/// bit patterns mapped to a monotonic integer line); NaN against NaN is 0, NaN against a number
/// is huge.
int64_t ulp_distance(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b) ? 0 : INT64_MAX;
  auto line = [](float f) {
    const int32_t i = std::bit_cast<int32_t>(f);
    return i < 0 ? -static_cast<int64_t>(i & 0x7fffffff) : static_cast<int64_t>(i);
  };
  const int64_t d = line(a) - line(b);
  return d < 0 ? -d : d;
}

struct Worst {
  int64_t ulp = 0;
  float at = 0, got = 0, want = 0;
  void add(float x, float got_v, float want_v) {
    const int64_t d = ulp_distance(got_v, want_v);
    if (d > ulp) ulp = d, at = x, got = got_v, want = want_v;
  }
};

template <class F, class R>
Worst sweep(F f, R reference, float dense_lo, float dense_hi) {
  Worst w;
  for (uint64_t bits = 0; bits <= 0xffffffffull; bits += 127) {
    const float x = std::bit_cast<float>(static_cast<uint32_t>(bits));
    w.add(x, f(x), static_cast<float>(reference(static_cast<double>(x))));
  }
  const int n = 2000000;
  for (int i = 0; i <= n; ++i) {
    const float x = dense_lo + (dense_hi - dense_lo) * (static_cast<float>(i) / n);
    w.add(x, f(x), static_cast<float>(reference(static_cast<double>(x))));
  }
  return w;
}

void report(const char* name, const Worst& w, int64_t limit) {
  INFO(name << ": worst " << w.ulp << " ulp at x = " << w.at << " (got " << w.got << ", want "
            << w.want << ")");
  CHECK(w.ulp <= limit);
}

constexpr float kInf = std::numeric_limits<float>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();

}  // namespace

TEST_CASE("vec_math: exp within 2 ulp of the correctly rounded result") {
  const Worst w = sweep(vm::exp_f32, [](double x) { return std::exp(x); }, -90.0f, 89.0f);
  report("exp", w, 2);
  CHECK(vm::exp_f32(0.0f) == 1.0f);
  CHECK(vm::exp_f32(-kInf) == 0.0f);
  CHECK(vm::exp_f32(kInf) == kInf);
  CHECK(vm::exp_f32(89.0f) == kInf);
  CHECK(std::isnan(vm::exp_f32(kNaN)));
}

TEST_CASE("vec_math: expm1 within 2 ulp, tiny inputs exact") {
  const Worst w = sweep(vm::expm1_f32, [](double x) { return std::expm1(x); }, -2.0f, 2.0f);
  report("expm1", w, 2);
  CHECK(vm::expm1_f32(1e-30f) == 1e-30f);
  CHECK(vm::expm1_f32(-0.0f) == 0.0f);
  CHECK(vm::expm1_f32(-kInf) == -1.0f);
  CHECK(vm::expm1_f32(kInf) == kInf);
  CHECK(ulp_distance(vm::expm1_f32(88.7f), static_cast<float>(std::expm1(double{88.7f}))) <= 2);
  CHECK(std::isnan(vm::expm1_f32(kNaN)));
}

TEST_CASE("vec_math: tanh within 3 ulp, odd, saturating") {
  const Worst w = sweep(vm::tanh_f32, [](double x) { return std::tanh(x); }, -5.0f, 5.0f);
  report("tanh", w, 3);
  CHECK(vm::tanh_f32(kInf) == 1.0f);
  CHECK(vm::tanh_f32(-kInf) == -1.0f);
  CHECK(vm::tanh_f32(1e-30f) == 1e-30f);
  CHECK(std::signbit(vm::tanh_f32(-0.0f)));
  CHECK(std::isnan(vm::tanh_f32(kNaN)));
}

TEST_CASE("vec_math: sigmoid within 3 ulp") {
  const Worst w = sweep(
      vm::sigmoid_f32, [](double x) { return 1.0 / (1.0 + std::exp(-x)); }, -20.0f, 20.0f);
  report("sigmoid", w, 3);
  CHECK(vm::sigmoid_f32(-kInf) == 0.0f);
  CHECK(vm::sigmoid_f32(kInf) == 1.0f);
  CHECK(std::isnan(vm::sigmoid_f32(kNaN)));
}

TEST_CASE("vec_math: erf within 4 ulp, odd, saturating") {
  const Worst w = sweep(vm::erf_f32, [](double x) { return std::erf(x); }, -4.5f, 4.5f);
  report("erf", w, 4);
  CHECK(vm::erf_f32(kInf) == 1.0f);
  CHECK(vm::erf_f32(-kInf) == -1.0f);
  CHECK(vm::erf_f32(0.0f) == 0.0f);
  CHECK(std::isnan(vm::erf_f32(kNaN)));
}
