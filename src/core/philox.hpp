// Philox4x32-10 and the conversions of its 32-bit words into numbers, shared by the CPU
// (src/core/random.cpp, src/core/cpu/random.cpp) and CUDA (src/cuda/random.cu) random kernels, so
// both devices compute one stream with one piece of code. Host and device functions under nvcc
// (EMBER_HOST_DEVICE), plain inline functions otherwise.
//
// Every a * b + c that the CPU build used to contract into a fused multiply-add (GCC contracts by
// default, and -march=native has FMA) is written as an explicit fma here, so the result no longer
// depends on the compiler's choice and the GPU reproduces it bit for bit. Everything else is exact
// (integer work, scaling by powers of two) or one IEEE-rounded operation, the same on both
// devices, except normal_pair and race_key: they call log, sqrt, sin and cos, which CUDA and glibc
// round differently by an ulp or two.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>

#include "ember/dtype.hpp"

#ifndef EMBER_HOST_DEVICE
#ifdef __CUDACC__
#define EMBER_HOST_DEVICE __host__ __device__
#else
#define EMBER_HOST_DEVICE
#endif
#endif

namespace ember::rng {

/// The four 32-bit output words of one Philox block (or its 128-bit counter).
struct Words {
  uint32_t w[4];
  EMBER_HOST_DEVICE uint32_t operator[](int64_t i) const { return w[i]; }
};

// Salmon et al., "Parallel Random Numbers: As Easy as 1, 2, 3" (SC'11), Philox4x32.
constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // golden ratio
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;  // sqrt(3) - 1

/// One Philox4x32 round on counter c with round key (k0, k1): two 32x32->64 multiplications.
EMBER_HOST_DEVICE inline void philox_round(Words& c, uint32_t k0, uint32_t k1) {
  const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * c.w[0];
  const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * c.w[2];
  const uint32_t c1 = c.w[1], c3 = c.w[3];
  c.w[0] = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
  c.w[1] = static_cast<uint32_t>(p1);
  c.w[2] = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
  c.w[3] = static_cast<uint32_t>(p0);
}

/// Philox4x32-10: ten rounds, the key bumped by the Weyl constants between rounds.
EMBER_HOST_DEVICE inline Words philox4x32_10(Words c, uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    philox_round(c, k0, k1);
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  return c;
}

/// Block `counter` of the stream of `seed`: key = (seed low, seed high), counter = (counter low,
/// counter high, 0, 0).
EMBER_HOST_DEVICE inline Words philox_block(uint64_t seed, uint64_t counter) {
  return philox4x32_10(
      Words{{static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32), 0u, 0u}},
      static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

/// The j-th 64-bit half of a block (j in {0, 1}): words 2j (low) and 2j+1 (high).
EMBER_HOST_DEVICE inline uint64_t bits64(const Words& w, int64_t j) {
  return static_cast<uint64_t>(w[2 * j]) | (static_cast<uint64_t>(w[2 * j + 1]) << 32);
}

/// The 64 bits of draw d of a stream of 64-bit draws (randperm, multinomial): block offset + d / 2,
/// half d % 2.
EMBER_HOST_DEVICE inline uint64_t draw64(uint64_t seed, uint64_t offset, int64_t d) {
  const Words w = philox_block(seed, offset + static_cast<uint64_t>(d / 2));
  return d % 2 == 0 ? bits64(w, 0) : bits64(w, 1);  // constant indices: registers on the GPU
}

// ---- words -> numbers ----

/// [0, 1) from the top 24 bits of a word.
EMBER_HOST_DEVICE inline double uniform24(uint32_t word) {
  return static_cast<double>(word >> 8) * 0x1p-24;
}
/// [0, 1) from the top 53 bits.
EMBER_HOST_DEVICE inline double uniform53(uint64_t x) {
  return static_cast<double>(x >> 11) * 0x1p-53;
}
/// (0, 1] from the top 53 bits.
EMBER_HOST_DEVICE inline double uniform53_open(uint64_t x) {
  return static_cast<double>((x >> 11) + 1) * 0x1p-53;
}

/// A uniform integer in [0, range) from 64 random bits (range > 0): the high half of x * range
/// (Lemire's multiply-shift; bias below range / 2^64).
EMBER_HOST_DEVICE inline uint64_t below(uint64_t x, uint64_t range) {
#ifdef __CUDA_ARCH__
  return __umul64hi(x, range);
#else
  return static_cast<uint64_t>((static_cast<unsigned __int128>(x) * range) >> 64);
#endif
}

/// The uniform element j of a block: 53 bits of half j for float64 (`wide`), else the top 24 bits
/// of word j; mapped onto [from, from + span) in double.
EMBER_HOST_DEVICE inline double uniform_value(const Words& w, int64_t j, bool wide, double from,
                                              double span) {
  const double u = wide ? uniform53(bits64(w, j)) : uniform24(w[j]);
  return std::fma(span, u, from);
}

/// Randint element j of a block: low + below(half j, range), in wrapping unsigned arithmetic
/// (low + a value below high - low never overflows as a value).
EMBER_HOST_DEVICE inline int64_t randint_value(const Words& w, int64_t j, int64_t low,
                                               uint64_t range) {
  return static_cast<int64_t>(static_cast<uint64_t>(low) + below(bits64(w, j), range));
}

/// Bernoulli element j of a block is 1 when this uniform (exact in double) is below p.
EMBER_HOST_DEVICE inline double bernoulli_uniform(const Words& w, int64_t j) {
  return static_cast<double>(w[j]) * 0x1p-32;
}

/// Two normals from one block by Box-Muller in double: u1 in (0, 1] from half 0, u2 in [0, 1)
/// from half 1, r = sqrt(-2 ln u1); (mean + std r cos(2 pi u2), mean + std r sin(2 pi u2)).
struct NormalPair {
  double first, second;
};
EMBER_HOST_DEVICE inline NormalPair normal_pair(const Words& w, double mean, double stddev) {
  const double u1 = uniform53_open(bits64(w, 0));
  const double u2 = uniform53(bits64(w, 1));
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double theta = 2.0 * std::numbers::pi * u2;
  return {std::fma(stddev, r * std::cos(theta), mean), std::fma(stddev, r * std::sin(theta), mean)};
}

/// Multinomial with replacement: the point in [0, total) that draw u (in (0, 1]) looks up among the
/// running sums.
EMBER_HOST_DEVICE inline double cdf_target(double u, double total) { return (1.0 - u) * total; }

/// Multinomial without replacement: the exponential-race key E / w of a category of weight w > 0,
/// E = -ln(u) with u in (0, 1].
EMBER_HOST_DEVICE inline double race_key(double u, double weight) { return -std::log(u) / weight; }

/// The value uniform() clamps to in `dtype` when from < to: the largest value of the dtype below
/// `to` (or `from` rounded when none lies in [from, to)), exact in the dtype. Host only; defined in
/// src/core/cpu/random.cpp.
double uniform_clamp_value(DType dtype, double from, double to);

}  // namespace ember::rng
