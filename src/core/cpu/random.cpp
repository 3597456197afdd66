// CPU random kernels: uniform, normal, randint, bernoulli, randperm, multinomial.
//
// Stream layout (the CUDA kernels follow it too, see kernels.hpp): element i (row-major) of a
// contiguous output reads the 128-bit Philox4x32-10 block b = offset + i / per_block, computed
// with key = (seed low 32 bits, seed high 32 bits) and counter = (b low, b high, 0, 0), where
// per_block = random_elements_per_block(kind, dtype):
//   uniform, 32-bit floats   4 per block: word i % 4, u = (word >> 8) * 2^-24 in [0, 1)
//   uniform, float64         2 per block: words 2j, 2j+1 (j = i % 2) as the low and high halves of
//                            a 64-bit x, u = (x >> 11) * 2^-53 in [0, 1)
//   normal                   2 per block: one Box-Muller pair. u1 = ((x0 >> 11) + 1) * 2^-53 in
//                            (0, 1] and u2 = (x1 >> 11) * 2^-53 from the two 64-bit halves;
//                            r = sqrt(-2 ln u1); element 2j is r cos(2 pi u2), 2j+1 r sin(2 pi u2)
//   randint                  2 per block: low + ((x * (high - low)) >> 64), a 64x64->128-bit
//                            multiply-shift (Lemire); bias below (high - low) / 2^64
//   bernoulli                4 per block: 1 when word * 2^-32 < p
// Values are computed in double (uniform: from + (to - from) u as one fused multiply-add; normal:
// mean + std z likewise) and rounded once into the output dtype; uniforms that round up to `to`
// are clamped to the largest value of the dtype below `to`. Because element i depends
// only on (seed, offset, i), blocks are spread over threads in any way and the result is the same
// bit for bit for every thread count.
//
// randperm and multinomial are sequential per row (Fisher-Yates; exponential race), and use the
// same 64-bit draws: draw s reads block offset + s / 2, 64-bit half s % 2.
//
// Philox and every word -> number conversion come from core/philox.hpp, which the CUDA kernels
// (src/cuda/random.cu) share: the two devices give the same numbers from one piece of code (up to
// the last bits of log, sin and cos, which CUDA and glibc round differently).
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "core/dispatch.hpp"
#include "core/parallel.hpp"
#include "core/philox.hpp"
#include "core/tensor_impl.hpp"

namespace ember::cpu {

namespace {

using rng::Words;

/// Philox blocks per parallel chunk: each block costs ten rounds of multiplications.
constexpr int64_t kRandomGrainBlocks = 4096;

/// Calls f(words, first, count) for each Philox block covering [0, numel), in parallel; block b
/// covers elements [b * per_block, b * per_block + count).
template <class F>
void for_each_block(int64_t numel, int64_t per_block, uint64_t seed, uint64_t offset, F&& f) {
  const int64_t blocks = (numel + per_block - 1) / per_block;
  parallel_for(blocks, kRandomGrainBlocks, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t first = b * per_block;
      f(rng::philox_block(seed, offset + static_cast<uint64_t>(b)), first,
        std::min(per_block, numel - first));
    }
  });
}

template <class T>
constexpr bool is_float_type_v =
    std::is_floating_point_v<T> || std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;

/// The next value of T toward -infinity.
template <class T>
T step_down(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    return std::nextafter(v, -std::numeric_limits<T>::infinity());
  } else {  // Half, BFloat16: sign-magnitude bit patterns
    uint16_t b = v.x;
    if (b == 0x0000u) {
      b = 0x8001u;  // +0 -> the smallest negative subnormal
    } else if (b & 0x8000u) {
      ++b;  // negative: larger magnitude
    } else {
      --b;
    }
    return T::from_bits(b);
  }
}

/// The largest T strictly below `to`, or `from` rounded when no T lies in [from, to).
template <class T>
T largest_below(double from, double to) {
  T t = convert<T>(to);
  while (!(convert<double>(t) < to)) t = step_down(t);
  if (convert<double>(t) < from) t = convert<T>(from);
  return t;
}

}  // namespace

}  // namespace ember::cpu

namespace ember::rng {

double uniform_clamp_value(DType dtype, double from, double to) {
  double top = 0;
  visit_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (cpu::is_float_type_v<T>) {
      top = convert<double>(cpu::largest_below<T>(from, to));
    } else {
      throw DTypeError(detail::str_cat("[uniform] expected a floating output, got ", dtype));
    }
  });
  return top;
}

}  // namespace ember::rng

namespace ember::cpu {

// ---- elementwise distributions ----

void uniform(const Tensor& out, double from, double to, uint64_t seed, uint64_t offset) {
  visit_dtype(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (is_float_type_v<T>) {
      T* o = static_cast<T*>(out.data_ptr());
      const double span = to - from;
      const bool clamp = from < to;
      const T top = clamp ? largest_below<T>(from, to) : convert<T>(from);
      constexpr bool wide = std::is_same_v<T, double>;
      const int64_t per = random_elements_per_block(RandomKind::Uniform, out.dtype());
      for_each_block(out.numel(), per, seed, offset, [&](const Words& w, int64_t first, int64_t n) {
        for (int64_t j = 0; j < n; ++j) {
          T v = convert<T>(rng::uniform_value(w, j, wide, from, span));
          if (clamp && !(convert<double>(v) < to)) v = top;
          o[first + j] = v;
        }
      });
    } else {
      throw DTypeError(detail::str_cat("[uniform] expected a floating output, got ", out.dtype()));
    }
  });
}

void normal(const Tensor& out, double mean, double std, uint64_t seed, uint64_t offset) {
  visit_dtype(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (is_float_type_v<T>) {
      T* o = static_cast<T*>(out.data_ptr());
      const int64_t per = random_elements_per_block(RandomKind::Normal, out.dtype());
      for_each_block(out.numel(), per, seed, offset, [&](const Words& w, int64_t first, int64_t n) {
        const rng::NormalPair z = rng::normal_pair(w, mean, std);
        o[first] = convert<T>(z.first);
        if (n > 1) o[first + 1] = convert<T>(z.second);
      });
    } else {
      throw DTypeError(detail::str_cat("[normal] expected a floating output, got ", out.dtype()));
    }
  });
}

void randint(const Tensor& out, int64_t low, int64_t high, uint64_t seed, uint64_t offset) {
  const uint64_t range = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
  visit_dtype(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* o = static_cast<T*>(out.data_ptr());
    const int64_t per = random_elements_per_block(RandomKind::Randint, out.dtype());
    for_each_block(out.numel(), per, seed, offset, [&](const Words& w, int64_t first, int64_t n) {
      for (int64_t j = 0; j < n; ++j)
        o[first + j] = convert<T>(rng::randint_value(w, j, low, range));
    });
  });
}

void bernoulli(const Tensor& out, const Tensor& p, uint64_t seed, uint64_t offset) {
  const int64_t p_step = p.numel() == 1 ? 0 : 1;
  visit_dtype(out.dtype(), [&](auto out_tag) {
    using T = typename decltype(out_tag)::type;
    visit_dtype(p.dtype(), [&](auto p_tag) {
      using P = typename decltype(p_tag)::type;
      if constexpr (is_float_type_v<P>) {
        T* o = static_cast<T*>(out.data_ptr());
        const P* pp = static_cast<const P*>(p.data_ptr());
        const T one = convert<T>(1), zero = convert<T>(0);
        const int64_t per = random_elements_per_block(RandomKind::Bernoulli, out.dtype());
        for_each_block(out.numel(), per, seed, offset,
                       [&](const Words& w, int64_t first, int64_t n) {
                         for (int64_t j = 0; j < n; ++j) {
                           const double u = rng::bernoulli_uniform(w, j);
                           const double prob = convert<double>(pp[(first + j) * p_step]);
                           o[first + j] = u < prob ? one : zero;
                         }
                       });
      } else {
        throw DTypeError(
            detail::str_cat("[bernoulli] expected floating probabilities, got ", p.dtype()));
      }
    });
  });
}

// ---- permutations and categorical sampling ----

void randperm(const Tensor& out, uint64_t seed, uint64_t offset) {
  const int64_t n = out.numel();
  std::vector<int64_t> perm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  Words w{};
  for (int64_t s = 0; s + 1 < n; ++s) {
    if (s % 2 == 0) w = rng::philox_block(seed, offset + static_cast<uint64_t>(s / 2));
    const int64_t i = n - 1 - s;
    const auto j =
        static_cast<int64_t>(rng::below(rng::bits64(w, s % 2), static_cast<uint64_t>(i) + 1));
    std::swap(perm[i], perm[j]);
  }
  visit_dtype(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* o = static_cast<T*>(out.data_ptr());
    for (int64_t i = 0; i < n; ++i) o[i] = convert<T>(perm[i]);
  });
}

// With replacement: sample k of row r uses the uniform of draw r * K + k, scaled by the row sum
// and looked up in the running sums (the first category whose running sum exceeds it, which is
// never a zero-weight one).
// Without replacement: the exponential race of Efraimidis and Spirakis ("Weighted random sampling
// with a reservoir", IPL 2006). Category n gets the key E_n / w_n with E_n = -ln(u_n) exponential
// (u_n from draw r * N + n, in (0, 1]); the K smallest keys in increasing order have exactly the
// distribution of sequential sampling that zeroes each chosen weight and renormalises, in
// O(N + K log K) instead of O(N K). Zero weights get no key and are never chosen.
void multinomial(const Tensor& out, const Tensor& weights, bool replacement, uint64_t seed,
                 uint64_t offset) {
  const int64_t R = weights.size(0), N = weights.size(1), K = out.size(1);
  const double* wp = weights.data_ptr<double>();
  int64_t* op = out.data_ptr<int64_t>();
  auto draw = [&](int64_t d) {  // the 53-bit uniform of draw d, in (0, 1]
    return rng::uniform53_open(rng::draw64(seed, offset, d));
  };
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(N + K, 1));
  parallel_for(R, grain, [&](int64_t r0, int64_t r1) {
    std::vector<double> cdf;
    std::vector<std::pair<double, int64_t>> keys;
    for (int64_t r = r0; r < r1; ++r) {
      const double* w = wp + r * N;  // (N,)
      int64_t* o = op + r * K;       // (K,)
      if (replacement) {
        cdf.resize(static_cast<size_t>(N));
        double run = 0;
        int64_t last_nonzero = 0;
        for (int64_t n = 0; n < N; ++n) {
          run += w[n];
          cdf[n] = run;
          if (w[n] > 0) last_nonzero = n;
        }
        for (int64_t k = 0; k < K; ++k) {
          const double target = rng::cdf_target(draw(r * K + k), run);  // [0, run)
          const auto it = std::upper_bound(cdf.begin(), cdf.end(), target);
          // Rounding can put target at run itself: take the last category that can be chosen.
          o[k] = it == cdf.end() ? last_nonzero : static_cast<int64_t>(it - cdf.begin());
        }
      } else {
        keys.clear();
        for (int64_t n = 0; n < N; ++n) {
          const double u = draw(r * N + n);
          if (w[n] > 0) keys.emplace_back(rng::race_key(u, w[n]), n);
        }
        // Ties are broken by the category index, so the result never depends on the sort.
        const auto mid = keys.begin() + K;
        std::nth_element(keys.begin(), mid - 1, keys.end());
        std::sort(keys.begin(), mid);
        for (int64_t k = 0; k < K; ++k) o[k] = keys[k].second;
      }
    }
  });
}

}  // namespace ember::cpu
