// CUDA random kernels: uniform, normal, randint, bernoulli, randperm and multinomial, giving the
// CPU kernels' numbers (src/core/cpu/random.cpp, which documents the stream layout) from the same
// seed and offset.
//
// One implementation on both devices: Philox4x32-10 and every word -> number conversion are
// core/philox.hpp's host/device functions, and the dtype roundings are loops.cuh's convert, which
// follows the CPU's rules. So uniform (every floating dtype), randint, bernoulli, randperm and
// multinomial with replacement are bitwise the CPU's. normal is not: its Box-Muller pair calls
// CUDA's log, sin and cos, which differ from glibc's by an ulp or two, so float64 normals agree to
// a few ulps and narrower dtypes almost always bitwise (after their rounding). Multinomial without
// replacement orders categories by keys -ln(u) / w, also through CUDA's log: its result is the
// CPU's unless two keys of a row lie within an ulp or two of each other (about 2^-50 relative; a
// flip there swaps two sampled categories), which for real weights does not happen in practice.
//
// Elementwise (uniform, normal, randint, bernoulli): one thread per 128-bit Philox block, grid-
// stride; the thread writes the block's random_elements_per_block consecutive elements of the
// contiguous output (the last block may be partial). Element i depends only on (seed, offset, i),
// so the launch shape never changes a number.
//
// randperm: Fisher-Yates is a chain of n - 1 dependent swaps. Run on one GPU thread it would cost
// a global-memory round trip (order 0.5 us) per swap, so the permutation is computed on the host
// by the CPU kernel (same swaps, in cache, order 10 ns each; estimates, not measured) into a
// tensor of out's dtype and copied over: O(n) host work plus one synchronous host-to-device copy
// of n elements. The numbers depend only on (seed, offset, n), so this is exactly the CPU's result.
//
// multinomial, weights (R, N) float64 contiguous, out (R, K) int64:
//   with replacement: one warp per row forms the running sums in index order (lane by lane through
//   shuffles, the CPU's order, so bitwise its sums) into a scratch (R, N); then one thread per
//   sample (r, k) looks its target (1 - u) * total up by binary search (first running sum above
//   it; the last positive-weight category when rounding puts it at the total). The sums are
//   O(N) sequential adds per row (rows in parallel): the cost of reproducing the CPU's rounding.
//   without replacement: one thread per category computes its key; the keys (non-negative doubles
//   as their bit patterns, -0 folded into +0, zero weights as all ones so they sort last) are
//   sorted with their flat index by CUB's stable radix sort, then stably re-sorted by row (when
//   R > 1): each row ends up in (key, index) order, the CPU's pair order, and its first K indices
//   are the sample. O(R N) memory: 32 bytes per weight plus CUB's scratch.
// Scratch buffers are Ember tensors on out's device; everything runs on out's current stream.
#include <cuda_runtime.h>

#include <cstdint>
#include <cub/device/device_radix_sort.cuh>
#include <type_traits>

#include "core/kernels.hpp"
#include "core/philox.hpp"
#include "core/tensor_impl.hpp"
#include "cuda/loops.cuh"

namespace ember::cuda {
namespace {

using detail::blocks_for;
using detail::convert;
using detail::DeviceGuard;
using detail::kThreads;
using detail::stream_of;
using detail::visit_device_dtype;

template <class T>
inline constexpr bool is_float_v = std::is_floating_point_v<T> || detail::is_reduced_v<T>;

constexpr unsigned kFullMask = 0xffffffffu;

// ---- one thread per Philox block ----

/// Calls f(words, first, count) for each Philox block b covering [0, numel): elements
/// [first, first + count) with first = b * kPer.
template <int kPer, class F>
__global__ void philox_blocks_kernel(int64_t numel, uint64_t seed, uint64_t offset, F f) {
  const int64_t blocks = (numel + kPer - 1) / kPer;
  for (int64_t b = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; b < blocks;
       b += int64_t{gridDim.x} * blockDim.x) {
    const int64_t first = b * kPer;
    const int64_t count = numel - first < kPer ? numel - first : kPer;
    f(rng::philox_block(seed, offset + static_cast<uint64_t>(b)), first, count);
  }
}

/// Runs f over the Philox blocks of the contiguous out on out's device and current stream; nothing
/// for an empty out. kPer = random_elements_per_block(kind, out's dtype), a constant so that the
/// callers' loops over a block's words unroll (and the words stay in registers).
template <int kPer, class F>
void for_each_block(const Tensor& out, RandomKind kind, uint64_t seed, uint64_t offset, F f) {
  const int64_t numel = out.numel();
  if (numel == 0) return;
  const int64_t per_block = random_elements_per_block(kind, out.dtype());
  EMBER_CHECK(per_block == kPer, DeviceError, "[random] internal: ", per_block,
              " elements per Philox block for ", out.dtype(), ", the kernel assumes ", kPer);
  const int64_t blocks = (numel + kPer - 1) / kPer;
  DeviceGuard guard(out.device().index());
  philox_blocks_kernel<kPer>
      <<<blocks_for(blocks), kThreads, 0, stream_of(out)>>>(numel, seed, offset, f);
  EMBER_CUDA_CHECK_LAUNCH();
}

// ---- elementwise distributions (device lambdas in named templates) ----

template <class T>
void uniform_typed(const Tensor& out, double from, double to, uint64_t seed, uint64_t offset) {
  T* o = static_cast<T*>(out.data_ptr());
  const double span = to - from;
  const bool clamp = from < to;
  // The dtype's largest value below `to`, exact in T, computed on the host by the CPU's routine.
  const double top = clamp ? rng::uniform_clamp_value(out.dtype(), from, to) : from;
  constexpr bool wide = std::is_same_v<T, double>;
  constexpr int kPer = wide ? 2 : 4;
  for_each_block<kPer>(out, RandomKind::Uniform, seed, offset,
                       [=] __device__(const rng::Words& w, int64_t first, int64_t count) {
#pragma unroll
                         for (int j = 0; j < kPer; ++j) {
                           if (j >= count) break;
                           T v = convert<T>(rng::uniform_value(w, j, wide, from, span));
                           if (clamp && !(convert<double>(v) < to)) v = convert<T>(top);
                           o[first + j] = v;
                         }
                       });
}

template <class T>
void normal_typed(const Tensor& out, double mean, double stddev, uint64_t seed, uint64_t offset) {
  T* o = static_cast<T*>(out.data_ptr());
  for_each_block<2>(out, RandomKind::Normal, seed, offset,
                    [=] __device__(const rng::Words& w, int64_t first, int64_t count) {
                      const rng::NormalPair z = rng::normal_pair(w, mean, stddev);
                      o[first] = convert<T>(z.first);
                      if (count > 1) o[first + 1] = convert<T>(z.second);
                    });
}

template <class T>
void randint_typed(const Tensor& out, int64_t low, uint64_t range, uint64_t seed, uint64_t offset) {
  T* o = static_cast<T*>(out.data_ptr());
  for_each_block<2>(out, RandomKind::Randint, seed, offset,
                    [=] __device__(const rng::Words& w, int64_t first, int64_t count) {
#pragma unroll
                      for (int j = 0; j < 2; ++j) {
                        if (j >= count) break;
                        o[first + j] = convert<T>(rng::randint_value(w, j, low, range));
                      }
                    });
}

/// p_step 0: one probability for every element; 1: p[i] for element i.
template <class T, class P>
void bernoulli_typed(const Tensor& out, const Tensor& p, int64_t p_step, uint64_t seed,
                     uint64_t offset) {
  T* o = static_cast<T*>(out.data_ptr());
  const P* pp = static_cast<const P*>(p.data_ptr());
  for_each_block<4>(out, RandomKind::Bernoulli, seed, offset,
                    [=] __device__(const rng::Words& w, int64_t first, int64_t count) {
#pragma unroll
                      for (int j = 0; j < 4; ++j) {
                        if (j >= count) break;
                        const double prob = convert<double>(pp[(first + j) * p_step]);
                        o[first + j] = convert<T>(rng::bernoulli_uniform(w, j) < prob ? 1 : 0);
                      }
                    });
}

// ---- multinomial with replacement ----

/// cdf (R, N) = the running sums of each row of w (R, N), added in index order; total (R) = the
/// last running sum; last (R) = the last index with a positive weight (0 if none). One warp per
/// row: the warp loads 32 weights (coalesced), and every lane adds them in order from shuffles, so
/// `run` is the CPU's sequential sum, the same value in every lane.
__global__ void running_sums_kernel(double* cdf, double* total, int64_t* last, const double* w,
                                    int64_t R, int64_t N) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  const int64_t warps = int64_t{gridDim.x} * (blockDim.x / 32);
  // r is the same for all lanes of a warp (blockDim.x is a multiple of 32), so every loop below
  // is warp-uniform and the full-mask shuffles and ballots see all 32 lanes.
  for (int64_t r = (blockIdx.x * int64_t{blockDim.x} + threadIdx.x) / 32; r < R; r += warps) {
    const double* row = w + r * N;  // (N,)
    double* sums = cdf + r * N;     // (N,)
    double run = 0;
    int64_t last_positive = 0;
    for (int64_t base = 0; base < N; base += 32) {
      const int64_t n = base + lane;
      const double x = n < N ? row[n] : 0.0;
      const int count = N - base < 32 ? static_cast<int>(N - base) : 32;
      double mine = 0;
      for (int l = 0; l < count; ++l) {
        run += __shfl_sync(kFullMask, x, l);
        if (l == lane) mine = run;
      }
      if (n < N) sums[n] = mine;
      const unsigned positive = __ballot_sync(kFullMask, n < N && x > 0.0);
      if (positive != 0u) last_positive = base + 31 - __clz(static_cast<int>(positive));
    }
    if (lane == 0) {
      total[r] = run;
      last[r] = last_positive;
    }
  }
}

/// out[r][k] (R, K) = the first category whose running sum exceeds the target of draw r * K + k
/// (std::upper_bound's answer), or last[r] when none does.
__global__ void sample_with_replacement_kernel(int64_t* out, const double* cdf, const double* total,
                                               const int64_t* last, int64_t R, int64_t N, int64_t K,
                                               uint64_t seed, uint64_t offset) {
  const int64_t samples = R * K;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < samples;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / K;
    const double target =
        rng::cdf_target(rng::uniform53_open(rng::draw64(seed, offset, i)), total[r]);
    const double* sums = cdf + r * N;  // (N,), non-decreasing
    int64_t lo = 0, hi = N;            // invariant: sums[< lo] <= target < sums[>= hi]
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (target < sums[mid]) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    out[i] = lo == N ? last[r] : lo;
  }
}

void multinomial_with_replacement(const Tensor& out, const Tensor& weights, uint64_t seed,
                                  uint64_t offset) {
  const int64_t R = weights.size(0), N = weights.size(1), K = out.size(1);
  cudaStream_t stream = stream_of(out);
  Tensor cdf = make_tensor({R, N}, kFloat64, out.device(), "multinomial");  // (R, N)
  Tensor total = make_tensor({R}, kFloat64, out.device(), "multinomial");   // (R,)
  Tensor last = make_tensor({R}, kInt64, out.device(), "multinomial");      // (R,)
  running_sums_kernel<<<blocks_for(R * 32), kThreads, 0, stream>>>(
      cdf.data_ptr<double>(), total.data_ptr<double>(), last.data_ptr<int64_t>(),
      weights.data_ptr<double>(), R, N);
  EMBER_CUDA_CHECK_LAUNCH();
  sample_with_replacement_kernel<<<blocks_for(R * K), kThreads, 0, stream>>>(
      out.data_ptr<int64_t>(), cdf.data_ptr<double>(), total.data_ptr<double>(),
      last.data_ptr<int64_t>(), R, N, K, seed, offset);
  EMBER_CUDA_CHECK_LAUNCH();
}

// ---- multinomial without replacement ----

/// keys[i], index[i] (i = r * N + n) = the sort key of category n of row r and i itself. The key
/// of a positive weight is the bit pattern of its race key (a non-negative double or +inf, whose
/// bits order as the values do); -0 (u = 1) becomes +0, which the CPU's comparison ties with
/// it. A zero weight gets all ones: after every real key, and never sampled (each row has at least
/// K positive weights).
__global__ void race_keys_kernel(uint64_t* keys, int64_t* index, const double* w, int64_t count,
                                 uint64_t seed, uint64_t offset) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x) {
    uint64_t key = ~uint64_t{0};
    const double weight = w[i];
    if (weight > 0.0) {
      double k = rng::race_key(rng::uniform53_open(rng::draw64(seed, offset, i)), weight);
      if (k == 0.0) k = 0.0;  // -0 -> +0
      key = static_cast<uint64_t>(__double_as_longlong(k));
    }
    keys[i] = key;
    index[i] = i;
  }
}

/// rows[i] = the row of flat index index[i].
__global__ void row_of_kernel(uint64_t* rows, const int64_t* index, int64_t count, int64_t N) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x)
    rows[i] = static_cast<uint64_t>(index[i] / N);
}

/// out[r][k] (R, K) = the category of the k-th entry of row r in sorted (R * N flat indices, each
/// row's block in (key, index) order).
__global__ void gather_first_kernel(int64_t* out, const int64_t* sorted, int64_t R, int64_t N,
                                    int64_t K) {
  const int64_t samples = R * K;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < samples;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / K, k = i % K;
    out[i] = sorted[r * N + k] - r * N;
  }
}

/// Stable sort of n (key, value) pairs by the key bits [0, end_bit), on `like`'s device and
/// current stream, with CUB's radix sort (scratch: an Ember tensor).
void stable_sort_pairs(const uint64_t* keys_in, uint64_t* keys_out, const int64_t* values_in,
                       int64_t* values_out, int64_t n, int end_bit, const Tensor& like) {
  cudaStream_t stream = stream_of(like);
  size_t bytes = 0;
  EMBER_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, bytes, keys_in, keys_out, values_in,
                                                   values_out, n, 0, end_bit, stream));
  const int64_t scratch_bytes = static_cast<int64_t>(bytes > 0 ? bytes : 1);
  Tensor scratch = make_tensor({scratch_bytes}, kUInt8, like.device(), "multinomial");
  EMBER_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(scratch.data_ptr(), bytes, keys_in, keys_out,
                                                   values_in, values_out, n, 0, end_bit, stream));
}

void multinomial_without_replacement(const Tensor& out, const Tensor& weights, uint64_t seed,
                                     uint64_t offset) {
  const int64_t R = weights.size(0), N = weights.size(1), K = out.size(1);
  const int64_t count = R * N;
  cudaStream_t stream = stream_of(out);
  // Two (key, index) buffers, ping-ponged by the two sorts; uint64 keys live in int64 tensors.
  Tensor keys_a = make_tensor({count}, kInt64, out.device(), "multinomial");
  Tensor keys_b = make_tensor({count}, kInt64, out.device(), "multinomial");
  Tensor index_a = make_tensor({count}, kInt64, out.device(), "multinomial");
  Tensor index_b = make_tensor({count}, kInt64, out.device(), "multinomial");
  auto* ka = static_cast<uint64_t*>(keys_a.data_ptr());
  auto* kb = static_cast<uint64_t*>(keys_b.data_ptr());
  int64_t* ia = index_a.data_ptr<int64_t>();
  int64_t* ib = index_b.data_ptr<int64_t>();

  race_keys_kernel<<<blocks_for(count), kThreads, 0, stream>>>(ka, ia, weights.data_ptr<double>(),
                                                               count, seed, offset);
  EMBER_CUDA_CHECK_LAUNCH();
  // By key; equal keys keep their index order (stable), as the CPU's pair comparison does.
  stable_sort_pairs(ka, kb, ia, ib, count, 64, out);
  const int64_t* sorted = ib;
  if (R > 1) {
    // Then by row, stably: each row's entries stay in (key, index) order.
    row_of_kernel<<<blocks_for(count), kThreads, 0, stream>>>(ka, ib, count, N);
    EMBER_CUDA_CHECK_LAUNCH();
    int row_bits = 0;
    while (row_bits < 63 && (int64_t{1} << row_bits) < R) ++row_bits;  // rows < 2^row_bits
    stable_sort_pairs(ka, kb, ib, ia, count, row_bits, out);
    sorted = ia;
  }
  gather_first_kernel<<<blocks_for(R * K), kThreads, 0, stream>>>(out.data_ptr<int64_t>(), sorted,
                                                                  R, N, K);
  EMBER_CUDA_CHECK_LAUNCH();
}

}  // namespace

// ---- the kernel ABI (core/kernels.hpp) ----

void uniform(const Tensor& out, double from, double to, uint64_t seed, uint64_t offset) {
  visit_device_dtype(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (is_float_v<T>) {
      uniform_typed<T>(out, from, to, seed, offset);
    } else {
      throw DTypeError(
          ember::detail::str_cat("[uniform] expected a floating output, got ", out.dtype()));
    }
  });
}

void normal(const Tensor& out, double mean, double std, uint64_t seed, uint64_t offset) {
  visit_device_dtype(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (is_float_v<T>) {
      normal_typed<T>(out, mean, std, seed, offset);
    } else {
      throw DTypeError(
          ember::detail::str_cat("[normal] expected a floating output, got ", out.dtype()));
    }
  });
}

void randint(const Tensor& out, int64_t low, int64_t high, uint64_t seed, uint64_t offset) {
  const uint64_t range = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
  visit_device_dtype(out.dtype(), [&](auto tag) {
    randint_typed<typename decltype(tag)::type>(out, low, range, seed, offset);
  });
}

void bernoulli(const Tensor& out, const Tensor& p, uint64_t seed, uint64_t offset) {
  const int64_t p_step = p.numel() == 1 ? 0 : 1;
  visit_device_dtype(out.dtype(), [&](auto out_tag) {
    using T = typename decltype(out_tag)::type;
    visit_device_dtype(p.dtype(), [&](auto p_tag) {
      using P = typename decltype(p_tag)::type;
      if constexpr (is_float_v<P>) {
        bernoulli_typed<T, P>(out, p, p_step, seed, offset);
      } else {
        throw DTypeError(
            ember::detail::str_cat("[bernoulli] expected floating probabilities, got ", p.dtype()));
      }
    });
  });
}

void randperm(const Tensor& out, uint64_t seed, uint64_t offset) {
  // The CPU's sequential Fisher-Yates on the host, then one copy (see the opening comment).
  const Tensor host = make_tensor(out.sizes(), out.dtype(), Device(kCPU), "randperm");
  cpu::randperm(host, seed, offset);
  cuda::copy(out, host);
}

void multinomial(const Tensor& out, const Tensor& weights, bool replacement, uint64_t seed,
                 uint64_t offset) {
  if (out.numel() == 0) return;
  DeviceGuard guard(out.device().index());
  if (replacement) {
    multinomial_with_replacement(out, weights, seed, offset);
  } else {
    multinomial_without_replacement(out, weights, seed, offset);
  }
}

}  // namespace ember::cuda
