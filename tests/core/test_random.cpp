// Tests for the random family: Philox4x32-10, Generator, and the random factories and samplers.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <thread>

#include "core/parallel.hpp"
#include "test_util.hpp"

using namespace ember;
using ember::test::bitwise_equal;
using ember::test::values;

namespace {

/// The elements of a CPU tensor of C++ type T, in row-major order.
template <class T>
std::vector<T> elements(const Tensor& t) {
  Tensor c = t.contiguous();
  const T* p = c.data_ptr<T>();
  return std::vector<T>(p, p + c.numel());
}

struct MeanVar {
  double mean, var;
};
MeanVar mean_var(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  const double m = s / static_cast<double>(v.size());
  double q = 0;
  for (double x : v) q += (x - m) * (x - m);
  return {m, q / static_cast<double>(v.size() - 1)};
}

/// Restores the thread count when a test changes it.
struct ThreadCountGuard {
  int saved = get_num_threads();
  ~ThreadCountGuard() { set_num_threads(saved); }
};

}  // namespace

// ---- Philox and Generator ----

TEST_CASE("philox4x32_10: Random123 known-answer vectors") {
  // The vectors are the Philox4x32-10 known answers of Random123 (kat_vectors), confirmed with an
  // independent plain-Python implementation of Salmon et al. SC'11 written for this test.
  using C = std::array<uint32_t, 4>;
  using K = std::array<uint32_t, 2>;
  CHECK(philox4x32_10(C{0, 0, 0, 0}, K{0, 0}) ==
        C{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
  CHECK(philox4x32_10(C{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                      K{0xffffffffu, 0xffffffffu}) ==
        C{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
  CHECK(philox4x32_10(C{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
                      K{0xa4093822u, 0x299f31d0u}) ==
        C{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
  // From the same Python reference.
  CHECK(philox4x32_10(C{5, 7, 0, 0}, K{0xdeadbeefu, 0xcafeu}) ==
        C{0x7b862532u, 0x0bdbd435u, 0xfe1354e7u, 0x6161f048u});
}

TEST_CASE("generator: seed, offset and advance") {
  Generator g;
  CHECK(g.current_seed() == 67280421310721ull);
  CHECK(g.offset() == 0);
  CHECK(g.advance(3) == 0);
  CHECK(g.advance(5) == 3);
  CHECK(g.offset() == 8);
  g.set_offset(100);
  CHECK(g.advance(1) == 100);
  g.set_current_seed(9);
  CHECK(g.current_seed() == 9);
  CHECK(g.offset() == 0);  // reseeding resets the offset
}

TEST_CASE("generator: copies share state, clone is independent") {
  Generator a(5);
  Generator b = a;  // same handle
  a.advance(10);
  CHECK(b.offset() == 10);
  b.set_current_seed(6);
  CHECK(a.current_seed() == 6);

  Generator c = a.clone();
  CHECK(c.current_seed() == 6);
  CHECK(c.offset() == a.offset());
  c.advance(7);
  c.set_current_seed(99);
  CHECK(a.offset() == 0);
  CHECK(a.current_seed() == 6);

  // A copy draws from the shared stream, a clone repeats it.
  Generator d(1234);
  Generator e = d.clone();
  Generator f = d;
  Tensor x = rand({10}, d);
  Tensor y = rand({10}, f);
  Tensor z = rand({10}, e);
  CHECK_FALSE(bitwise_equal(x, y));
  CHECK(bitwise_equal(x, z));
}

TEST_CASE("generator: advance is thread-safe") {
  Generator g(1);
  constexpr int kThreads = 4, kCalls = 2000;
  std::vector<std::vector<uint64_t>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) got[t].push_back(g.advance(3));
    });
  for (std::thread& t : threads) t.join();
  CHECK(g.offset() == 3ull * kThreads * kCalls);
  std::set<uint64_t> firsts;
  for (const auto& v : got) firsts.insert(v.begin(), v.end());
  CHECK(firsts.size() == static_cast<size_t>(kThreads * kCalls));  // no block handed out twice
  for (uint64_t f : firsts) CHECK(f % 3 == 0);
}

// ---- the stream layout ----

TEST_CASE("rand: matches the Philox stream computed by an independent reference") {
  // Expected numbers from a plain-Python Philox4x32-10 with the layout of src/core/cpu/random.cpp:
  // key = seed, counter = (block, 0, 0, 0); float32 u = (word >> 8) * 2^-24.
  Generator g(42);
  std::vector<float> f = elements<float>(rand({6}, g, kFloat32));
  const std::vector<double> expect_f = {0.6129598617553711,  0.4685865044593811,
                                        0.07323169708251953, 0.3408614993095398,
                                        0.9877186417579651,  0.32706332206726074};
  for (size_t i = 0; i < f.size(); ++i) CHECK(static_cast<double>(f[i]) == expect_f[i]);
  CHECK(g.offset() == 2);  // ceil(6 / 4) blocks

  // normal: one block per Box-Muller pair, continuing at offset 2.
  std::vector<double> n = elements<double>(randn({3}, g, kFloat64));
  CHECK(n[0] == Approx(0.13500793462831734).epsilon(1e-13));
  CHECK(n[1] == Approx(-0.9043863850666349).epsilon(1e-13));
  CHECK(n[2] == Approx(-0.6482506427558838).epsilon(1e-13));
  CHECK(g.offset() == 4);

  // float64: 53 bits from two words, two elements per block.
  Generator h(42);
  std::vector<double> d = elements<double>(rand({3}, h, kFloat64));
  CHECK(d == std::vector<double>{0.4685865183391049, 0.34086154938517876, 0.32706338120338474});
  CHECK(h.offset() == 2);

  // randint: 64-bit multiply-shift.
  Generator r(7);
  CHECK(elements<int64_t>(randint(-5, 1000003, {3}, r)) ==
        std::vector<int64_t>{750153, 85653, 795285});
}

TEST_CASE("rand: consecutive calls continue the stream block by block") {
  Generator a(3), b(3);
  Tensor whole = rand({8}, a);
  Tensor first = rand({4}, b);
  Tensor second = rand({4}, b);
  CHECK(bitwise_equal(whole.slice(0, 0, 4), first));
  CHECK(bitwise_equal(whole.slice(0, 4, 8), second));
  // Zero-size tensors draw nothing.
  Generator c(3);
  CHECK(rand({0, 5}, c).numel() == 0);
  CHECK(c.offset() == 0);
}

TEST_CASE("manual_seed: the same seed gives the same tensors") {
  manual_seed(2024);
  CHECK(default_generator().current_seed() == 2024);
  Tensor a = rand({5, 7});
  Tensor b = randn({9});
  Tensor c = randint(0, 100, {11});
  Tensor d = randperm(20);
  CHECK(default_generator().offset() > 0);
  manual_seed(2024);
  CHECK(default_generator().offset() == 0);
  CHECK(bitwise_equal(a, rand({5, 7})));
  CHECK(bitwise_equal(b, randn({9})));
  CHECK(bitwise_equal(c, randint(0, 100, {11})));
  CHECK(bitwise_equal(d, randperm(20)));
  manual_seed(2025);
  CHECK_FALSE(bitwise_equal(a, rand({5, 7})));
  // Tensor::uniform_ / normal_ use the default generator too.
  manual_seed(77);
  Tensor u = empty({6});
  u.uniform_(-1, 1);
  Tensor v = empty({6});
  v.normal_(2, 3);
  manual_seed(77);
  Tensor u2 = empty({6});
  u2.uniform_(-1, 1);
  CHECK(bitwise_equal(u, u2));
  Tensor v2 = empty({6});
  v2.normal_(2, 3);
  CHECK(bitwise_equal(v, v2));
}

TEST_CASE("random: results are bitwise identical for 1, 2 and 4 threads") {
  ThreadCountGuard guard;
  const int64_t n = 100003;  // many parallel chunks and a ragged last block
  auto draw_all = [&](int threads) {
    set_num_threads(threads);
    Generator g(11);
    std::vector<Tensor> r;
    r.push_back(rand({n}, g));
    r.push_back(rand({n}, g, kFloat64));
    r.push_back(rand({n}, g, kBFloat16));
    r.push_back(randn({n}, g));
    r.push_back(randn({n}, g, kFloat16));
    r.push_back(randint(-1000, 1000, {n}, g));
    r.push_back(bernoulli(full({n}, 0.3), g));
    r.push_back(multinomial(rand({2000, 50}, g), 30, false, g));  // several chunks of rows
    r.push_back(multinomial(rand({2000, 50}, g), 30, true, g));
    r.push_back(randperm(5000, g));
    return r;
  };
  std::vector<Tensor> one = draw_all(1);
  for (int threads : {2, 4}) {
    std::vector<Tensor> many = draw_all(threads);
    for (size_t i = 0; i < one.size(); ++i) {
      INFO("threads " << threads << ", tensor " << i);
      CHECK(bitwise_equal(one[i], many[i]));
    }
  }
}

// ---- statistics ----

TEST_CASE("rand: uniform statistics and range") {
  Generator g(100);
  const int64_t n = 100000;
  std::vector<double> u = values(rand({n}, g));
  MeanVar s = mean_var(u);
  CHECK(std::abs(s.mean - 0.5) < 0.01);
  CHECK(std::abs(s.var - 1.0 / 12.0) < 0.005);
  CHECK(*std::min_element(u.begin(), u.end()) >= 0.0);
  CHECK(*std::max_element(u.begin(), u.end()) < 1.0);

  std::vector<double> d = values(rand({n}, g, kFloat64));
  s = mean_var(d);
  CHECK(std::abs(s.mean - 0.5) < 0.01);
  CHECK(std::abs(s.var - 1.0 / 12.0) < 0.005);

  Tensor t = empty({n}, kFloat32);
  uniform_(t, -2.0, 3.0, g);
  std::vector<double> w = values(t);
  s = mean_var(w);
  CHECK(std::abs(s.mean - 0.5) < 0.05);
  CHECK(std::abs(s.var - 25.0 / 12.0) < 0.1);
  CHECK(*std::min_element(w.begin(), w.end()) >= -2.0);
  CHECK(*std::max_element(w.begin(), w.end()) < 3.0);

  Tensor same = empty({4});
  uniform_(same, 1.5, 1.5, g);
  CHECK(values(same) == std::vector<double>(4, 1.5));
}

TEST_CASE("rand: half and bfloat16 stay below `to` after rounding") {
  Generator g(8);
  for (DType dt : {kFloat16, kBFloat16}) {
    INFO(dt);
    // bfloat16 has 8 significant bits: about 1 in 512 uniforms rounds up to 1 before the clamp.
    std::vector<double> u = values(rand({100000}, g, dt));
    CHECK(*std::max_element(u.begin(), u.end()) < 1.0);
    CHECK(*std::min_element(u.begin(), u.end()) >= 0.0);
    CHECK(std::abs(mean_var(u).mean - 0.5) < 0.01);
    Tensor t = empty({20000}, dt);
    uniform_(t, -3.0, 5.0, g);
    std::vector<double> w = values(t);
    CHECK(*std::max_element(w.begin(), w.end()) < 5.0);
    CHECK(*std::min_element(w.begin(), w.end()) >= -3.0);
  }
}

TEST_CASE("randn: normal statistics") {
  Generator g(5);
  const int64_t n = 100000;
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dt);
    std::vector<double> z = values(randn({n}, g, dt));
    MeanVar s = mean_var(z);
    CHECK(std::abs(s.mean) < 0.02);
    CHECK(std::abs(s.var - 1.0) < 0.03);
    // About 68.3% within one standard deviation.
    const double within = static_cast<double>(std::count_if(
                              z.begin(), z.end(), [](double x) { return std::abs(x) < 1; })) /
                          static_cast<double>(n);
    CHECK(std::abs(within - 0.6827) < 0.01);
  }
  Tensor t = empty({n}, kFloat32);
  normal_(t, 3.0, 0.5, g);
  MeanVar s = mean_var(values(t));
  CHECK(std::abs(s.mean - 3.0) < 0.01);
  CHECK(std::abs(s.var - 0.25) < 0.01);
  Tensor zero_std = empty({5});
  normal_(zero_std, -1.0, 0.0, g);
  CHECK(values(zero_std) == std::vector<double>(5, -1.0));
}

TEST_CASE("randint: bounds, dtypes and frequencies") {
  Generator g(21);
  Tensor a = randint(-3, 4, {20000}, g);
  CHECK(a.dtype() == kInt64);
  std::map<int64_t, int64_t> counts;
  for (int64_t v : elements<int64_t>(a)) counts[v]++;
  CHECK(counts.size() == 7);
  CHECK(counts.begin()->first == -3);
  CHECK(counts.rbegin()->first == 3);
  for (const auto& [v, c] : counts) {
    INFO(v);
    CHECK(std::abs(static_cast<double>(c) / 20000.0 - 1.0 / 7.0) < 0.015);
  }

  manual_seed(4);
  Tensor b = randint(10, {3, 4});
  CHECK(b.sizes() == IntArrayRef({3, 4}));
  for (int64_t v : elements<int64_t>(b)) CHECK((v >= 0 && v < 10));

  Tensor c = randint(-128, 128, {1000}, g, kInt8);
  CHECK(c.dtype() == kInt8);
  std::vector<int8_t> cv = elements<int8_t>(c);
  CHECK(*std::min_element(cv.begin(), cv.end()) == -128);
  CHECK(*std::max_element(cv.begin(), cv.end()) == 127);

  Tensor f = randint(0, 5, {100}, g, kFloat32);
  CHECK(f.dtype() == kFloat32);
  for (double v : values(f)) CHECK((v == std::floor(v) && v >= 0 && v < 5));

  // The full int64 range works (range 2^64 - 1 through unsigned arithmetic).
  Tensor wide =
      randint(std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), {1000}, g);
  std::vector<int64_t> wv = elements<int64_t>(wide);
  CHECK(std::count_if(wv.begin(), wv.end(), [](int64_t v) { return v < 0; }) > 400);
  CHECK(std::count_if(wv.begin(), wv.end(), [](int64_t v) { return v > 0; }) > 400);
}

TEST_CASE("randperm: a permutation of 0..n-1") {
  Generator g(31);
  for (int64_t n : {0, 1, 2, 7, 1000}) {
    INFO(n);
    Tensor p = randperm(n, g);
    CHECK(p.dtype() == kInt64);
    CHECK(p.sizes() == IntArrayRef({n}));
    std::vector<int64_t> v = elements<int64_t>(p);
    std::sort(v.begin(), v.end());
    for (int64_t i = 0; i < n; ++i) CHECK(v[i] == i);
  }
  Tensor a = randperm(1000, g), b = randperm(1000, g);
  CHECK_FALSE(bitwise_equal(a, b));
  std::vector<int64_t> av = elements<int64_t>(a);
  int64_t fixed = 0;
  for (int64_t i = 0; i < 1000; ++i) fixed += av[i] == i;
  CHECK(fixed < 10);  // a shuffle, not the identity (expected number of fixed points: 1)

  Tensor c = randperm(50, g, kInt32);
  CHECK(c.dtype() == kInt32);
  std::vector<int32_t> cv = elements<int32_t>(c);
  std::sort(cv.begin(), cv.end());
  for (int32_t i = 0; i < 50; ++i) CHECK(cv[i] == i);

  // Every position is uniform: position 0 of randperm(4) hits each value about 1/4 of the time.
  std::vector<int64_t> hits(4, 0);
  for (int i = 0; i < 4000; ++i) hits[elements<int64_t>(randperm(4, g))[0]]++;
  for (int64_t h : hits) CHECK(std::abs(static_cast<double>(h) / 4000.0 - 0.25) < 0.03);
}

TEST_CASE("bernoulli: probabilities 0 and 1 are exact, others match on average") {
  Generator g(41);
  Tensor p = tensor({0.0, 1.0, 0.0, 1.0, 1.0}, kFloat32);
  Tensor b = bernoulli(p, g);
  CHECK(b.dtype() == kFloat32);
  CHECK(values(b) == std::vector<double>{0, 1, 0, 1, 1});

  Tensor half_p = full({2, 50000}, 0.3, kFloat64);
  Tensor h = bernoulli(half_p, g);
  CHECK(h.dtype() == kFloat64);
  CHECK(h.sizes() == IntArrayRef({2, 50000}));
  std::vector<double> hv = values(h);
  for (double v : hv) CHECK((v == 0.0 || v == 1.0));
  CHECK(std::abs(mean_var(hv).mean - 0.3) < 0.01);

  // bernoulli(t, p): t's shape and dtype, any dtype.
  manual_seed(1);
  Tensor t = zeros({4, 25000}, kInt64);
  Tensor s = bernoulli(t, 0.75);
  CHECK(s.dtype() == kInt64);
  CHECK(s.sizes() == t.sizes());
  std::vector<int64_t> sv = elements<int64_t>(s);
  double ones_count = 0;
  for (int64_t v : sv) {
    CHECK((v == 0 || v == 1));
    ones_count += static_cast<double>(v);
  }
  CHECK(std::abs(ones_count / 100000.0 - 0.75) < 0.01);
  CHECK(values(bernoulli(ones({7}, kBool), 0.0)) == std::vector<double>(7, 0.0));
  CHECK(values(bernoulli(ones({7}, kBFloat16), 1.0)) == std::vector<double>(7, 1.0));

  // A non-contiguous p reads its logical elements.
  Tensor pt = tensor({{0.0, 1.0}, {0.0, 1.0}, {1.0, 0.0}}, kFloat32).t();  // (2, 3) transposed
  CHECK(values(bernoulli(pt, g)) == std::vector<double>{0, 0, 1, 1, 1, 0});
}

TEST_CASE("multinomial: without replacement gives distinct indices and skips zero weights") {
  Generator g(51);
  Tensor w = tensor({0.0, 1.0, 2.0, 0.0, 3.0}, kFloat32);
  for (int trial = 0; trial < 50; ++trial) {
    Tensor s = multinomial(w, 3, false, g);
    CHECK(s.dtype() == kInt64);
    CHECK(s.sizes() == IntArrayRef({3}));
    std::vector<int64_t> v = elements<int64_t>(s);
    std::sort(v.begin(), v.end());
    CHECK(v == std::vector<int64_t>{1, 2, 4});
  }
  // 2-D rows are sampled independently; the first pick follows the weights.
  Tensor rows = tensor({{1.0, 0.0, 0.0, 3.0}, {0.0, 0.0, 5.0, 0.0}}, kFloat64);
  Tensor s = multinomial(rows, 1, false, g);
  CHECK(s.sizes() == IntArrayRef({2, 1}));
  CHECK(elements<int64_t>(s)[1] == 2);
  int64_t first_is_3 = 0;
  Tensor row0 = rows[0];
  for (int i = 0; i < 4000; ++i) {
    std::vector<int64_t> pick = elements<int64_t>(multinomial(row0, 2, false, g));
    CHECK(pick[0] != pick[1]);
    first_is_3 += pick[0] == 3;
  }
  CHECK(std::abs(static_cast<double>(first_is_3) / 4000.0 - 0.75) < 0.03);
  // Drawing all categories gives a permutation.
  std::vector<int64_t> all = elements<int64_t>(multinomial(ones({6}), 6, false, g));
  std::sort(all.begin(), all.end());
  CHECK(all == std::vector<int64_t>{0, 1, 2, 3, 4, 5});
}

TEST_CASE("multinomial: with replacement follows the weights") {
  Generator g(61);
  Tensor w = tensor({{1.0, 0.0, 3.0, 0.0}, {0.0, 2.0, 0.0, 2.0}}, kFloat32);
  Tensor s = multinomial(w, 20000, true, g);
  CHECK(s.sizes() == IntArrayRef({2, 20000}));
  std::vector<int64_t> v = elements<int64_t>(s);
  int64_t row0_two = 0, row1_one = 0;
  for (int64_t i = 0; i < 20000; ++i) {
    CHECK((v[i] == 0 || v[i] == 2));
    CHECK((v[20000 + i] == 1 || v[20000 + i] == 3));
    row0_two += v[i] == 2;
    row1_one += v[20000 + i] == 1;
  }
  CHECK(std::abs(static_cast<double>(row0_two) / 20000.0 - 0.75) < 0.015);
  CHECK(std::abs(static_cast<double>(row1_one) / 20000.0 - 0.5) < 0.015);
  // More samples than categories is fine with replacement.
  Tensor one = multinomial(tensor({0.0, 0.0, 1.0}), 5, true, g);
  CHECK(elements<int64_t>(one) == std::vector<int64_t>(5, 2));
}

// ---- layout, options and the *_like forms ----

TEST_CASE("uniform_: non-contiguous tensors get the same numbers as contiguous ones") {
  Tensor contiguous = empty({4, 6});
  Tensor strided = empty({6, 4}).t();  // (4, 6), transposed
  REQUIRE_FALSE(strided.is_contiguous());
  Generator a(71), b(71);
  uniform_(contiguous, -1.0, 2.0, a);
  uniform_(strided, -1.0, 2.0, b);
  CHECK(bitwise_equal(contiguous, strided));
  normal_(contiguous, 0.5, 2.0, a);
  normal_(strided, 0.5, 2.0, b);
  CHECK(bitwise_equal(contiguous, strided));

  // Writing through a view fills only the view and bumps the shared version counter.
  Tensor base = zeros({3, 8});
  Tensor view = base.slice(1, 0, std::nullopt, 2);  // (3, 4), every other column
  const uint32_t version = base._version();
  Generator c(72);
  uniform_(view, 1.0, 2.0, c);
  CHECK(base._version() > version);
  std::vector<double> bv = values(base);
  for (int64_t i = 0; i < 24; ++i) {
    if (i % 2 == 0) {
      CHECK((bv[i] >= 1.0 && bv[i] < 2.0));
    } else {
      CHECK(bv[i] == 0.0);
    }
  }
}

TEST_CASE("rand: options and the *_like forms") {
  Tensor a = rand({2, 3}, requires_grad());
  CHECK(a.requires_grad());
  CHECK(a.dtype() == get_default_dtype());
  CHECK(a.sizes() == IntArrayRef({2, 3}));
  Tensor b = randn({4}, TensorOptions(kFloat64).requires_grad(true));
  CHECK(b.dtype() == kFloat64);
  CHECK(b.requires_grad());
  CHECK_FALSE(randint(0, 3, {2}).requires_grad());

  Tensor like = rand_like(zeros({3, 2}, kFloat64));
  CHECK(like.dtype() == kFloat64);
  CHECK(like.sizes() == IntArrayRef({3, 2}));
  CHECK(randn_like(zeros({5}), kBFloat16).dtype() == kBFloat16);
  Tensor ri = randint_like(zeros({2, 2}, kInt32), 5, 9);
  CHECK(ri.dtype() == kInt32);
  for (double v : values(ri)) CHECK((v >= 5 && v < 9));
  CHECK(randint_like(zeros({3}), 0, 2).dtype() == get_default_dtype());
}

// ---- errors ----

TEST_CASE("random: error cases name the op") {
  Generator g(1);
  EMBER_CHECK_THROWS(rand({2}, kInt64), DTypeError, "[rand]", "int64");
  EMBER_CHECK_THROWS(randn({2}, g, kInt32), DTypeError, "[randn]", "int32");
  EMBER_CHECK_THROWS(rand_like(zeros({2}, kInt64)), DTypeError, "[rand]");
  if (!cuda::is_available()) {  // without a GPU a CUDA tensor is a DeviceError naming the op
    EMBER_CHECK_THROWS(rand({2}, Device(kCUDA, 0)), DeviceError, "[rand]");
    EMBER_CHECK_THROWS(randint(0, 5, {2}, Device(kCUDA, 0)), DeviceError, "[randint]");
  }
  EMBER_CHECK_THROWS(rand({-1, 2}), ValueError, "[rand]");

  EMBER_CHECK_THROWS(randint(5, 5, {2}), ValueError, "[randint]", "low=5", "high=5");
  EMBER_CHECK_THROWS(randint(0, {2}), ValueError, "[randint]");
  EMBER_CHECK_THROWS(randint(0, 300, {2}, kUInt8), ValueError, "[randint]", "uint8");
  EMBER_CHECK_THROWS(randint(0, 3, {2}, kBool), ValueError, "[randint]", "bool");
  EMBER_CHECK_THROWS(randperm(-1), ValueError, "[randperm]", "-1");
  EMBER_CHECK_THROWS(randperm(300, kInt8), ValueError, "[randperm]", "int8");

  Tensor ints = zeros({3}, kInt64);
  EMBER_CHECK_THROWS(ints.uniform_(), DTypeError, "[uniform_]", "int64");
  EMBER_CHECK_THROWS(ints.normal_(), DTypeError, "[normal_]", "int64");
  Tensor f = zeros({3});
  EMBER_CHECK_THROWS(f.uniform_(1.0, 0.0), ValueError, "[uniform_]", "from=1", "to=0");
  EMBER_CHECK_THROWS(f.uniform_(0.0, INFINITY), ValueError, "[uniform_]");
  EMBER_CHECK_THROWS(f.normal_(0.0, -1.0), ValueError, "[normal_]", "-1");

  EMBER_CHECK_THROWS(bernoulli(tensor({0.5, 1.5})), ValueError, "[bernoulli]", "1.5", "(2,)");
  EMBER_CHECK_THROWS(bernoulli(tensor({0.5, NAN})), ValueError, "[bernoulli]");
  EMBER_CHECK_THROWS(bernoulli(zeros({2}, kInt64)), DTypeError, "[bernoulli]", "int64");
  EMBER_CHECK_THROWS(bernoulli(zeros({2}), -0.1), ValueError, "[bernoulli]", "-0.1");

  EMBER_CHECK_THROWS(multinomial(tensor({1.0, -1.0, 2.0}), 1), ValueError, "[multinomial]",
                     "non-negative", "-1");
  EMBER_CHECK_THROWS(multinomial(tensor({{1.0, 2.0}, {0.0, 0.0}}), 1), ValueError, "[multinomial]",
                     "row 1", "zero");
  EMBER_CHECK_THROWS(multinomial(tensor({1.0, 2.0, 3.0}), 4, false), ValueError, "[multinomial]",
                     "4 samples", "3 categories");
  EMBER_CHECK_THROWS(multinomial(tensor({1.0, 0.0, 3.0}), 3, false), ValueError, "[multinomial]",
                     "2 non-zero");
  EMBER_CHECK_THROWS(multinomial(ones({2, 2, 2}), 1), ShapeError, "[multinomial]", "(2, 2, 2)");
  EMBER_CHECK_THROWS(multinomial(ones({3}), 0), ValueError, "[multinomial]", "num_samples");
  EMBER_CHECK_THROWS(multinomial(ones({3}, kInt64), 1), DTypeError, "[multinomial]", "int64");
  EMBER_CHECK_THROWS(multinomial(tensor({1.0, INFINITY}), 1), ValueError, "[multinomial]");
  EMBER_CHECK_THROWS(multinomial(zeros({2, 0}), 1, true), ValueError, "[multinomial]", "(2, 0)");
}
