// Random factories and in-place samplers: rand, randn, randint, randperm, bernoulli, multinomial,
// the *_like forms, uniform_ and normal_. Each op checks its arguments, allocates, reserves
// Philox counter blocks from the generator (default_generator() unless one is given) and
// launches a kernel of src/core/cpu/random.cpp, which documents the stream layout.
#include <cmath>
#include <limits>

#include "core/dispatch.hpp"
#include "core/tensor_impl.hpp"
#include "ember/ops.hpp"

namespace ember {

namespace {

/// Reserves the counter blocks for `draws` draws of `kind` and returns (seed, first block).
std::pair<uint64_t, uint64_t> reserve(Generator& gen, RandomKind kind, DType dtype, int64_t draws) {
  const int64_t per = random_elements_per_block(kind, dtype);
  // advance() is atomic; a concurrent set_current_seed between the two calls is the caller's race.
  const uint64_t seed = gen.current_seed();
  const uint64_t offset = gen.advance(static_cast<uint64_t>((draws + per - 1) / per));
  return {seed, offset};
}

/// Runs `kernel(out, seed, offset)` for every element of t in row-major order. A non-contiguous
/// t is generated into a contiguous buffer and copied in, so its element i is the same number a
/// contiguous tensor would get.
template <class Kernel>
Tensor& generate(Tensor& t, RandomKind kind, Generator& gen, const char* op, Kernel&& kernel) {
  if (t.numel() == 0) return t;
  const auto [seed, offset] = reserve(gen, kind, t.dtype(), t.numel());
  if (t.is_contiguous()) {
    kernel(t, seed, offset);
  } else {
    Tensor buffer = make_tensor(t.sizes(), t.dtype(), t.device(), op);
    kernel(buffer, seed, offset);
    launch(t.device(), cpu::copy, cuda::copy, t, buffer);
  }
  t.bump_version();
  return t;
}

void check_floating_dtype(DType dtype, const char* op) {
  EMBER_CHECK(is_floating(dtype), DTypeError, "[", op, "] expected a floating dtype, got ", dtype);
}

/// Exact integers of a floating dtype reach 2^digits.
double exact_integer_limit(DType dtype) {
  switch (dtype) {
    case kFloat16: return 2048.0;
    case kBFloat16: return 256.0;
    case kFloat32: return 16777216.0;
    default: return 9007199254740992.0;
  }
}

/// [lo, hi] (inclusive) of the integers a dtype holds exactly, as doubles for floating dtypes.
void check_integer_range(int64_t lo, int64_t hi, DType dtype, const char* op) {
  bool fits = true;
  switch (dtype) {
    case kBool: fits = lo >= 0 && hi <= 1; break;
    case kUInt8: fits = lo >= 0 && hi <= 255; break;
    case kInt8: fits = lo >= -128 && hi <= 127; break;
    case kInt32:
      fits = lo >= std::numeric_limits<int32_t>::min() && hi <= std::numeric_limits<int32_t>::max();
      break;
    case kInt64: break;
    default: {
      const double limit = exact_integer_limit(dtype);
      fits = static_cast<double>(lo) >= -limit && static_cast<double>(hi) <= limit;
    }
  }
  EMBER_CHECK(fits, ValueError, "[", op, "] values from ", lo, " to ", hi, " do not fit dtype ",
              dtype);
}

/// ValueError unless every element of the floating tensor p lies in [0, 1] (NaN does not).
void check_probabilities(const Tensor& p, const char* op) {
  Tensor host = p.cpu().contiguous();
  visit_dtype(host.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* v = static_cast<const T*>(host.data_ptr());
    for (int64_t i = 0; i < host.numel(); ++i) {
      const double x = convert<double>(v[i]);
      EMBER_CHECK(x >= 0.0 && x <= 1.0, ValueError, "[", op,
                  "] probabilities must lie in [0, 1], got ", x, " in a tensor of shape ",
                  p.sizes());
    }
  });
}

}  // namespace

// ---- uniform and normal ----

Tensor& uniform_(Tensor& t, double from, double to, Generator& gen) {
  check_floating_dtype(t.dtype(), "uniform_");
  EMBER_CHECK(std::isfinite(from) && std::isfinite(to) && std::isfinite(to - from), ValueError,
              "[uniform_] expected finite bounds with a finite difference, got from=", from,
              " and to=", to);
  EMBER_CHECK(from <= to, ValueError, "[uniform_] expected from <= to, got from=", from,
              " and to=", to);
  return generate(t, RandomKind::Uniform, gen, "uniform_",
                  [&](const Tensor& out, uint64_t seed, uint64_t offset) {
                    launch(out.device(), cpu::uniform, cuda::uniform, out, from, to, seed, offset);
                  });
}

Tensor& normal_(Tensor& t, double mean, double std, Generator& gen) {
  check_floating_dtype(t.dtype(), "normal_");
  EMBER_CHECK(std::isfinite(mean) && std::isfinite(std), ValueError,
              "[normal_] expected a finite mean and std, got mean=", mean, " and std=", std);
  EMBER_CHECK(std >= 0.0, ValueError, "[normal_] expected std >= 0, got ", std);
  return generate(t, RandomKind::Normal, gen, "normal_",
                  [&](const Tensor& out, uint64_t seed, uint64_t offset) {
                    launch(out.device(), cpu::normal, cuda::normal, out, mean, std, seed, offset);
                  });
}

Tensor& Tensor::uniform_(double from, double to) {
  return ember::uniform_(*this, from, to, default_generator());
}
Tensor& Tensor::normal_(double mean, double std) {
  return ember::normal_(*this, mean, std, default_generator());
}

Tensor rand(IntArrayRef sizes, Generator& gen, TensorOptions options) {
  check_floating_dtype(options.dtype(), "rand");
  Tensor t = make_tensor(sizes, options.dtype(), options.device(), "rand");
  uniform_(t, 0.0, 1.0, gen);
  return finish_factory(t, options);
}
Tensor rand(IntArrayRef sizes, TensorOptions options) {
  return rand(sizes, default_generator(), options);
}

Tensor randn(IntArrayRef sizes, Generator& gen, TensorOptions options) {
  check_floating_dtype(options.dtype(), "randn");
  Tensor t = make_tensor(sizes, options.dtype(), options.device(), "randn");
  normal_(t, 0.0, 1.0, gen);
  return finish_factory(t, options);
}
Tensor randn(IntArrayRef sizes, TensorOptions options) {
  return randn(sizes, default_generator(), options);
}

// ---- integers ----

Tensor randint(int64_t low, int64_t high, IntArrayRef sizes, Generator& gen,
               TensorOptions options) {
  EMBER_CHECK(low < high, ValueError, "[randint] expected low < high, got low=", low,
              " and high=", high);
  if (!options.has_dtype()) options = options.dtype(kInt64);
  check_integer_range(low, high - 1, options.dtype(), "randint");
  Tensor t = make_tensor(sizes, options.dtype(), options.device(), "randint");
  generate(t, RandomKind::Randint, gen, "randint",
           [&](const Tensor& out, uint64_t seed, uint64_t offset) {
             launch(out.device(), cpu::randint, cuda::randint, out, low, high, seed, offset);
           });
  return finish_factory(t, options);
}
Tensor randint(int64_t low, int64_t high, IntArrayRef sizes, TensorOptions options) {
  return randint(low, high, sizes, default_generator(), options);
}
Tensor randint(int64_t high, IntArrayRef sizes, TensorOptions options) {
  return randint(0, high, sizes, default_generator(), options);
}

Tensor randperm(int64_t n, Generator& gen, TensorOptions options) {
  EMBER_CHECK(n >= 0, ValueError, "[randperm] expected n >= 0, got ", n);
  if (!options.has_dtype()) options = options.dtype(kInt64);
  EMBER_CHECK(options.dtype() != kBool, DTypeError, "[randperm] bool is not a valid dtype");
  if (n > 0) check_integer_range(0, n - 1, options.dtype(), "randperm");
  Tensor t = make_tensor({n}, options.dtype(), options.device(), "randperm");
  if (n > 1) {
    const auto [seed, offset] = reserve(gen, RandomKind::Randperm, t.dtype(), n - 1);
    launch(t.device(), cpu::randperm, cuda::randperm, t, seed, offset);
  } else if (n == 1) {
    t.fill_(0);
  }
  return finish_factory(t, options);
}
Tensor randperm(int64_t n, TensorOptions options) {
  return randperm(n, default_generator(), options);
}

// ---- Bernoulli and categorical ----

Tensor bernoulli(const Tensor& p, Generator& gen) {
  EMBER_CHECK(is_floating(p.dtype()), DTypeError,
              "[bernoulli] expected floating probabilities, got ", p.dtype());
  check_probabilities(p, "bernoulli");
  Tensor t = make_tensor(p.sizes(), p.dtype(), p.device(), "bernoulli");
  const Tensor pc = p.contiguous();
  generate(t, RandomKind::Bernoulli, gen, "bernoulli",
           [&](const Tensor& out, uint64_t seed, uint64_t offset) {
             launch(out.device(), cpu::bernoulli, cuda::bernoulli, out, pc, seed, offset);
           });
  return t;
}
Tensor bernoulli(const Tensor& p) { return bernoulli(p, default_generator()); }

Tensor bernoulli(const Tensor& t, double p) {
  EMBER_CHECK(p >= 0.0 && p <= 1.0, ValueError, "[bernoulli] expected 0 <= p <= 1, got ", p);
  Tensor out = make_tensor(t.sizes(), t.dtype(), t.device(), "bernoulli");
  const Tensor prob = full({}, p, TensorOptions(kFloat64).device(t.device()));
  generate(out, RandomKind::Bernoulli, default_generator(), "bernoulli",
           [&](const Tensor& o, uint64_t seed, uint64_t offset) {
             launch(o.device(), cpu::bernoulli, cuda::bernoulli, o, prob, seed, offset);
           });
  return out;
}

Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement, Generator& gen) {
  EMBER_CHECK(probs.dim() == 1 || probs.dim() == 2, ShapeError,
              "[multinomial] expected a 1-D or 2-D tensor of weights, got shape ", probs.sizes());
  EMBER_CHECK(is_floating(probs.dtype()), DTypeError,
              "[multinomial] expected floating weights, got ", probs.dtype());
  EMBER_CHECK(num_samples > 0, ValueError, "[multinomial] expected num_samples > 0, got ",
              num_samples);
  const int64_t N = probs.size(-1);
  const int64_t R = probs.dim() == 2 ? probs.size(0) : 1;
  EMBER_CHECK(N > 0, ValueError, "[multinomial] expected at least one category, got shape ",
              probs.sizes());
  EMBER_CHECK(replacement || num_samples <= N, ValueError, "[multinomial] cannot draw ",
              num_samples, " samples without replacement from ", N, " categories (shape ",
              probs.sizes(), ")");
  const Tensor weights = probs.to(kFloat64).reshape({R, N}).contiguous();  // (R, N)

  // Validate on the host: every weight finite and >= 0, every row with a positive finite sum
  // and, without replacement, at least num_samples non-zero weights.
  const Tensor host = weights.cpu();
  const double* w = host.data_ptr<double>();
  for (int64_t r = 0; r < R; ++r) {
    double sum = 0;
    int64_t nonzero = 0;
    for (int64_t n = 0; n < N; ++n) {
      const double x = w[r * N + n];
      EMBER_CHECK(std::isfinite(x) && x >= 0.0, ValueError,
                  "[multinomial] weights must be finite and non-negative, got ", x, " in row ", r,
                  " of shape ", probs.sizes());
      sum += x;
      nonzero += x > 0.0;
    }
    EMBER_CHECK(sum > 0.0, ValueError, "[multinomial] the weights of row ", r,
                " sum to zero (shape ", probs.sizes(), ")");
    EMBER_CHECK(std::isfinite(sum), ValueError, "[multinomial] the weights of row ", r,
                " overflow to an infinite sum (shape ", probs.sizes(), ")");
    EMBER_CHECK(replacement || nonzero >= num_samples, ValueError, "[multinomial] row ", r,
                " has only ", nonzero, " non-zero weights, cannot draw ", num_samples,
                " samples without replacement");
  }

  Tensor out = make_tensor({R, num_samples}, kInt64, probs.device(), "multinomial");  // (R, K)
  const int64_t draws = R * (replacement ? num_samples : N);
  const auto [seed, offset] = reserve(gen, RandomKind::Multinomial, kInt64, draws);
  launch(out.device(), cpu::multinomial, cuda::multinomial, out, weights, replacement, seed,
         offset);
  return probs.dim() == 1 ? out.view({num_samples}) : out;
}
Tensor multinomial(const Tensor& probs, int64_t num_samples, bool replacement) {
  return multinomial(probs, num_samples, replacement, default_generator());
}

// ---- *_like ----

Tensor rand_like(const Tensor& t, std::optional<TensorOptions> options) {
  return rand(t.sizes(), like_options(t, options));
}
Tensor randn_like(const Tensor& t, std::optional<TensorOptions> options) {
  return randn(t.sizes(), like_options(t, options));
}
Tensor randint_like(const Tensor& t, int64_t low, int64_t high,
                    std::optional<TensorOptions> options) {
  return randint(low, high, t.sizes(), like_options(t, options));
}

}  // namespace ember
