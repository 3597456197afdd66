// CPU GEMM: out[b] = beta * out[b] + alpha * a[b] @ b[b] for (B, M, K) x (B, K, N) -> (B, M, N)
// with arbitrary strides on all three tensors (row-major, column-major, transposed views,
// stride-0 expanded batches).
//
// Floating types: the cache-blocked scheme of Goto & van de Geijn ("Anatomy of High-Performance
// Matrix Multiplication", TOMS 2008) with intrinsics micro-kernels:
//   for each batch (one per task when B >= 2 x threads)
//     for jc in N step NC                       -- B panel (KC, NC)
//       for pc in K step KC                     -- pack B(pc:pc+KC, jc:jc+NC) into NR-wide slivers
//         for ic in M step MC                   -- pack A(ic:ic+MC, pc:pc+KC) into MR-tall slivers
//                                                  (threads split (ic, jr range) units; B shared)
//           for ir, jr: micro_kernel            -- (MR, NR) register tile, kc rank-1 updates
// Micro-kernels: AVX-512 12 x 32 (gemm_avx512.cpp, chosen at run time when the CPU has it), AVX2
// 6 x 16 (the build's baseline), or a portable loop; all three give the same bits.
// Packing converts any strides (and Half/BFloat16) into contiguous compute-type panels, so the
// arithmetic of one output element never depends on strides or on the thread count:
//   acc = fma chain over k in [pc, pc+KC) from 0;  out = fma(alpha, acc, beta*out) (first
//   block; alpha*acc when beta == 0), out = fma(alpha, acc, out) (later blocks).
// Edge tiles run the full micro-kernel on zero-padded panels and store the valid part.
// Half/BFloat16 accumulate into a float (B, M, N) buffer, rounded once at the end.
//
// Integer types: a plain loop with uint64 (modular, like two's complement wrap-around) sums.
// gemm_reference is the plain triple loop (double accumulation) the fast path is tested against.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "core/cpu/gemm_kernels.hpp"
#include "core/cpu/loops.hpp"
#include "core/dispatch.hpp"
#include "core/kernels.hpp"
#include "core/parallel.hpp"
#include "core/tensor_impl.hpp"

namespace ember::cpu {
namespace {

// ---- problem description ----

/// A (B, R, C) operand: typed base pointer and element strides.
template <class T>
struct Mat {
  T* data;
  int64_t sb, sr, sc;  // batch, row, column strides
  T* at(int64_t b, int64_t r, int64_t c) const { return data + b * sb + r * sr + c * sc; }
};

template <class T>
Mat<T> mat_of(const Tensor& t) {
  return Mat<T>{t.data_ptr<std::remove_const_t<T>>(), t.stride(0), t.stride(1), t.stride(2)};
}

/// The transposed view of a (B, R, C) operand: (B, C, R).
template <class T>
Mat<T> transposed(const Mat<T>& m) {
  return Mat<T>{m.data, m.sb, m.sc, m.sr};
}

// ---- blocking parameters ----

template <class C>
struct MicroTile;
// MR x NR accumulators in vector registers: 6 rows x two 256-bit vectors (12 of AVX2's 16
// registers) leaves room for the two B loads and the A broadcast.
constexpr int kVectorBytes = 32;
template <>
struct MicroTile<float> {
  static constexpr int MR = 6;
  static constexpr int NR = 2 * kVectorBytes / static_cast<int>(sizeof(float));
};
template <>
struct MicroTile<double> {
  static constexpr int MR = 6;
  static constexpr int NR = 2 * kVectorBytes / static_cast<int>(sizeof(double));
};

// Measured on a 48 KiB L1 / 2 MiB L2 core: KC 128-384 and NC 512-1024 are within noise of each
// other; NC 512 helped N = 1024. KC is part of the arithmetic (chains restart every KC), so every
// micro-kernel must use the same KC.
constexpr int64_t KC = 256;  // depth of a packed block: the A sliver stays in L1
constexpr int64_t MC = 96;   // rows of a packed A block (multiple of both MRs), (MC, KC) in L2
constexpr int64_t NC = 512;  // columns of a packed B panel (multiple of NR), (KC, NC) in L2

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// ---- packing ----

/// Packs A(0:mc, 0:kc) into MR-tall slivers: dst[s][p][i] = A(s*MR + i, p), zero-padded rows.
/// The loop order follows the smaller source stride, so both layouts read memory in order.
#if defined(__AVX2__)
/// Transposes an 8 x 8 block of floats: rows r[0..7] (each 8 floats in a ymm) become columns.
inline void transpose8x8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/// pack_a of a full 12-row float sliver with contiguous rows: 8 columns at a time, rows 0-7 and
/// rows 8-11 transposed in registers (8 loads, 8 stores of 8 and 8 of 4 floats per 96 values)
/// instead of one scattered store per value. Returns the columns done (a multiple of 8).
inline int64_t pack_a12_rows_avx2(float* d, const float* a, int64_t sr, int64_t kc) {
  int64_t p = 0;
  for (; p + 8 <= kc; p += 8) {
    __m256 r[8], q[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(a + i * sr + p);
    for (int i = 0; i < 4; ++i) q[i] = _mm256_loadu_ps(a + (8 + i) * sr + p);
    for (int i = 4; i < 8; ++i) q[i] = q[i - 4];  // unused rows of the second block
    transpose8x8(r);
    transpose8x8(q);
    for (int j = 0; j < 8; ++j) {
      _mm256_storeu_ps(d + (p + j) * 12, r[j]);
      _mm_storeu_ps(d + (p + j) * 12 + 8, _mm256_castps256_ps128(q[j]));
    }
  }
  return p;
}
#endif

template <int MR, class C, class T>
void pack_a(C* dst, const T* src, int64_t sr, int64_t sc, int64_t mc, int64_t kc) {
  const bool rows_contiguous = std::abs(sc) <= std::abs(sr);
  for (int64_t s = 0; s < mc; s += MR) {
    const int64_t rows = std::min<int64_t>(MR, mc - s);
    C* d = dst + s * kc;  // (kc, MR)
    const T* a = src + s * sr;
#if defined(__AVX2__)
    if constexpr (MR == 12 && std::is_same_v<C, float> && std::is_same_v<T, float>) {
      if (rows == MR && sc == 1) {
        const int64_t done = pack_a12_rows_avx2(d, a, sr, kc);
        for (int64_t p = done; p < kc; ++p)
          for (int64_t i = 0; i < MR; ++i) d[p * MR + i] = a[i * sr + p];
        continue;
      }
    }
#endif
    if (rows_contiguous) {
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t p = 0; p < kc; ++p) d[p * MR + i] = convert<C>(a[i * sr + p * sc]);
      for (int64_t i = rows; i < MR; ++i)
        for (int64_t p = 0; p < kc; ++p) d[p * MR + i] = C(0);
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        int64_t i = 0;
        for (; i < rows; ++i) d[p * MR + i] = convert<C>(a[i * sr + p * sc]);
        for (; i < MR; ++i) d[p * MR + i] = C(0);
      }
    }
  }
}

/// Packs B(0:kc, 0:nc) into NR-wide slivers: dst[s][p][j] = B(p, s*NR + j), zero-padded columns.
template <int NR, class C, class T>
void pack_b(C* dst, const T* src, int64_t sr, int64_t sc, int64_t kc, int64_t nc) {
  const bool cols_contiguous = std::abs(sr) < std::abs(sc);
  for (int64_t s = 0; s < nc; s += NR) {
    const int64_t cols = std::min<int64_t>(NR, nc - s);
    C* d = dst + s * kc;  // (kc, NR)
    const T* b = src + s * sc;
    if (cols_contiguous) {
      for (int64_t j = 0; j < cols; ++j)
        for (int64_t p = 0; p < kc; ++p) d[p * NR + j] = convert<C>(b[p * sr + j * sc]);
      for (int64_t j = cols; j < NR; ++j)
        for (int64_t p = 0; p < kc; ++p) d[p * NR + j] = C(0);
    } else if (cols == NR && sc == 1) {
      for (int64_t p = 0; p < kc; ++p)
        for (int64_t j = 0; j < NR; ++j) d[p * NR + j] = convert<C>(b[p * sr + j]);
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        int64_t j = 0;
        for (; j < cols; ++j) d[p * NR + j] = convert<C>(b[p * sr + j * sc]);
        for (; j < NR; ++j) d[p * NR + j] = C(0);
      }
    }
  }
}

// ---- micro-kernel ----

// MicroKernel<C> (gemm_kernels.hpp): true when the kernel stored the tile itself.

#if defined(__AVX2__) && defined(__FMA__)
/// The vector registers the micro-kernel works in (AVX2: 8 floats or 4 doubles).
template <class C>
struct Simd;
template <>
struct Simd<float> {
  using V = __m256;
  static constexpr int W = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static V set1(float v) { return _mm256_set1_ps(v); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
};
template <>
struct Simd<double> {
  using V = __m256d;
  static constexpr int W = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static V bcast(const double* p) { return _mm256_broadcast_sd(p); }
  static V set1(double v) { return _mm256_set1_pd(v); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
};

/// acc(6, 2W) = a_sliver(kc, 6)^T @ b_sliver(kc, 2W) in twelve named registers (GCC keeps an
/// array of vectors in memory): kc rank-1 updates, one fma chain per element in k order. A full
/// tile of a row-major C (sc == 1) is stored straight from the registers with store_tile's rule;
/// any other tile goes through `acc_out` and store_tile. Returns true when it stored the tile.
template <class C, int MR, int NR>
bool micro_kernel(int64_t kc, const C* __restrict a, const C* __restrict b, C* __restrict acc_out,
                  C* c, int64_t sr, int64_t sc, bool full, C alpha, C beta, bool first) {
  using S = Simd<C>;
  using V = typename S::V;
  constexpr int W = S::W;
  static_assert(MR == 6 && NR == 2 * W, "the AVX2 micro-kernel is 6 x 2 vectors");
  const bool direct = full && sc == 1;
  if (direct)
    for (int i = 0; i < MR; ++i) __builtin_prefetch(c + i * sr, 1);
  V c00 = S::zero(), c01 = S::zero(), c10 = S::zero(), c11 = S::zero();
  V c20 = S::zero(), c21 = S::zero(), c30 = S::zero(), c31 = S::zero();
  V c40 = S::zero(), c41 = S::zero(), c50 = S::zero(), c51 = S::zero();
#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    const V b0 = S::load(b), b1 = S::load(b + W);
    __builtin_prefetch(b + 8 * NR);
    V ai = S::bcast(a + 0);
    c00 = S::fma(ai, b0, c00), c01 = S::fma(ai, b1, c01);
    ai = S::bcast(a + 1);
    c10 = S::fma(ai, b0, c10), c11 = S::fma(ai, b1, c11);
    ai = S::bcast(a + 2);
    c20 = S::fma(ai, b0, c20), c21 = S::fma(ai, b1, c21);
    ai = S::bcast(a + 3);
    c30 = S::fma(ai, b0, c30), c31 = S::fma(ai, b1, c31);
    ai = S::bcast(a + 4);
    c40 = S::fma(ai, b0, c40), c41 = S::fma(ai, b1, c41);
    ai = S::bcast(a + 5);
    c50 = S::fma(ai, b0, c50), c51 = S::fma(ai, b1, c51);
    a += MR;
    b += NR;
  }
  if (direct) {
    const V va = S::set1(alpha), vb = S::set1(beta);
    auto put = [&](C* o, V v) {
      if (!first)
        S::store(o, S::fma(va, v, S::load(o)));
      else if (beta == C(0))
        S::store(o, S::mul(va, v));  // beta == 0 ignores the old contents
      else
        S::store(o, S::fma(va, v, S::mul(vb, S::load(o))));
    };
    put(c, c00), put(c + W, c01);
    put(c + sr, c10), put(c + sr + W, c11);
    put(c + 2 * sr, c20), put(c + 2 * sr + W, c21);
    put(c + 3 * sr, c30), put(c + 3 * sr + W, c31);
    put(c + 4 * sr, c40), put(c + 4 * sr + W, c41);
    put(c + 5 * sr, c50), put(c + 5 * sr + W, c51);
    return true;
  }
  S::store(acc_out, c00), S::store(acc_out + W, c01);
  S::store(acc_out + NR, c10), S::store(acc_out + NR + W, c11);
  S::store(acc_out + 2 * NR, c20), S::store(acc_out + 2 * NR + W, c21);
  S::store(acc_out + 3 * NR, c30), S::store(acc_out + 3 * NR + W, c31);
  S::store(acc_out + 4 * NR, c40), S::store(acc_out + 4 * NR + W, c41);
  S::store(acc_out + 5 * NR, c50), S::store(acc_out + 5 * NR + W, c51);
  return false;
}
#else
/// Without AVX2: the portable micro-kernel (gemm_kernels.hpp).
template <class C, int MR, int NR>
bool micro_kernel(int64_t kc, const C* a, const C* b, C* acc_out, C* c, int64_t sr, int64_t sc,
                  bool full, C alpha, C beta, bool first) {
  return micro_kernel_portable<C, MR, NR>(kc, a, b, acc_out, c, sr, sc, full, alpha, beta, first);
}
#endif

/// Writes the valid (rows, cols) part of an accumulator tile into C. Explicit fma calls keep the
/// rounding the same whatever the compiler's contraction choices.
template <class C>
void store_tile(C* c, int64_t sr, int64_t sc, const C* acc, int nr, int64_t rows, int64_t cols,
                C alpha, C beta, bool first) {
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      C& o = c[i * sr + j * sc];
      const C v = acc[i * nr + j];
      if (!first)
        o = std::fma(alpha, v, o);
      else if (beta == C(0))
        o = alpha * v;  // beta == 0 ignores the old contents (NaN included)
      else
        o = std::fma(alpha, v, beta * o);
    }
  }
}

/// Per-thread packing buffers, grown once and reused across calls.
template <class C>
std::vector<C>& pack_buffer(int which) {
  thread_local std::vector<C> buffers[3];  // A block, B panel, whole shared A
  return buffers[which];
}

/// Grows a packing buffer to at least n elements and returns its data.
template <class C>
C* pack_buffer_data(int which, int64_t n) {
  std::vector<C>& v = pack_buffer<C>(which);
  if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
  return v.data();
}

/// The (mc, kc) A block against NR-wide slivers [jr0, jr1) of the packed (kc, nc) B panel, into
/// C(ic:ic+mc, jc+jr0:jc+jr1) of batch bi.
template <class C, int MR, int NR>
void macro_kernel(const Mat<C>& out, int64_t bi, int64_t ic, int64_t jc, const C* apack,
                  const C* bpack, int64_t mc, int64_t nc, int64_t kc, int64_t jr0, int64_t jr1,
                  C alpha, C beta, bool first, MicroKernel<C> kernel) {
  alignas(64) C acc[MR * NR];
  for (int64_t ir = 0; ir < mc; ir += MR) {
    const int64_t rows = std::min<int64_t>(MR, mc - ir);
    for (int64_t jr = jr0; jr < jr1; jr += NR) {
      const int64_t cols = std::min<int64_t>(NR, nc - jr);
      C* c = out.at(bi, ic + ir, jc + jr);
      if (!kernel(kc, apack + ir * kc, bpack + jr * kc, acc, c, out.sr, out.sc,
                  rows == MR && cols == NR, alpha, beta, first))
        store_tile<C>(c, out.sr, out.sc, acc, NR, rows, cols, alpha, beta, first);
    }
  }
}

/// out (B, M, N) of compute type C; a, b of storage type T (T == C, or Half/BFloat16 -> float).
///
/// Many batches (B >= 2 x threads): each task is one (batch, row block) with its own packed
/// panels. Otherwise the threads share each packed B panel (packed by all of them, then a
/// barrier) and split the (MC row block, NR-sliver range) units of the macro loop between them,
/// as BLIS does. Both orders give every element the same arithmetic.
///
/// B is read only through `pack_panel(nr, dst, bi, pc, j0, kc, ncols)`, which packs rows
/// [pc, pc + kc) and columns [j0, j0 + ncols) of batch bi's B into pack_b's sliver layout
/// (nr = std::integral_constant<int, NR>): a matrix in memory (MatPacker), or any other source
/// that can write the sliver layout.
template <class C, class T, int MR, int NR, class PackB>
void gemm_packed(const Mat<C>& out, const Mat<const T>& a, const PackB& pack_panel, int64_t B,
                 int64_t M, int64_t N, int64_t K, C alpha, C beta, MicroKernel<C> kernel) {
  const std::integral_constant<int, NR> nr{};
  static_assert(MC % MR == 0, "row blocks hold whole slivers");
  const double flops = 2.0 * static_cast<double>(B) * M * N * K;
  const int64_t kc_max = std::min(K, KC);
  const int64_t a_size = round_up(std::min(M, MC), MR) * kc_max;
  const int64_t b_size = round_up(std::min(N, NC), NR) * kc_max;
  int threads = flops < 1e6 ? 1 : get_num_threads();  // small products: not worth waking threads
#ifdef _OPENMP
  if (omp_in_parallel()) threads = 1;
#endif

  // A shared by every batch (stride 0: a weight against a batch of column matrices, as in
  // convolution) is packed once per thread, all of its blocks, instead of once per batch: for
  // small products the packing costs more than the arithmetic. Block (ic, pc) sits at
  // ic * K + pc * round_up(mc, MR), inside round_up(M, MR) * K elements.
  const bool a_shared = B > 1 && a.sb == 0 && round_up(M, MR) * K <= (int64_t{1} << 20);
  auto a_block = [&](C* whole, int64_t ic, int64_t pc, int64_t mc) {
    return whole + ic * K + pc * round_up(mc, MR);
  };
  auto pack_whole_a = [&](C* whole) {
    for (int64_t ic = 0; ic < M; ic += MC)
      for (int64_t pc = 0; pc < K; pc += KC) {
        const int64_t mc = std::min(MC, M - ic);
        pack_a<MR>(a_block(whole, ic, pc, mc), a.at(0, ic, pc), a.sr, a.sc, mc,
                   std::min(KC, K - pc));
      }
  };

  if (B >= 2 * threads && (threads > 1 || a_shared)) {
    // One contiguous range of batches per thread, so a shared A is packed once per thread.
    parallel_for(B, (B + threads - 1) / threads, [&](int64_t b0, int64_t b1) {
      C* apack = pack_buffer_data<C>(0, a_size);
      C* bpack = pack_buffer_data<C>(1, b_size);
      C* whole = a_shared ? pack_buffer_data<C>(2, round_up(M, MR) * K) : nullptr;
      if (a_shared) pack_whole_a(whole);
      for (int64_t bi = b0; bi < b1; ++bi)
        for (int64_t jc = 0; jc < N; jc += NC) {
          const int64_t nc = std::min(NC, N - jc);
          for (int64_t pc = 0; pc < K; pc += KC) {
            const int64_t kc = std::min(KC, K - pc);
            pack_panel(nr, bpack, bi, pc, jc, kc, nc);
            for (int64_t ic = 0; ic < M; ic += MC) {
              const int64_t mc = std::min(MC, M - ic);
              const C* ap = apack;
              if (a_shared)
                ap = a_block(whole, ic, pc, mc);
              else
                pack_a<MR>(apack, a.at(bi, ic, pc), a.sr, a.sc, mc, kc);
              macro_kernel<C, MR, NR>(out, bi, ic, jc, ap, bpack, mc, nc, kc, 0, nc, alpha,
                                      beta, pc == 0, kernel);
            }
          }
        }
    });
    return;
  }

  // Shared B panel. Units: m_blocks row blocks x n_chunks sliver ranges, enough for the threads.
  C* bpack = pack_buffer_data<C>(1, b_size);  // the calling thread's buffer, shared by the team
  auto body = [&](int tid, int nthr) {
    C* apack = pack_buffer_data<C>(0, a_size);
    for (int64_t bi = 0; bi < B; ++bi)
      for (int64_t jc = 0; jc < N; jc += NC) {
        const int64_t nc = std::min(NC, N - jc);
        const int64_t slivers = (nc + NR - 1) / NR;
        const int64_t m_blocks = (M + MC - 1) / MC;
        const int64_t n_chunks =
            m_blocks >= nthr ? 1 : std::min<int64_t>(slivers, (2 * nthr + m_blocks - 1) / m_blocks);
        const int64_t units = m_blocks * n_chunks;
        for (int64_t pc = 0; pc < K; pc += KC) {
          const int64_t kc = std::min(KC, K - pc);
          const int64_t s0 = slivers * tid / nthr, s1 = slivers * (tid + 1) / nthr;
          if (s1 > s0)
            pack_panel(nr, bpack + s0 * NR * kc, bi, pc, jc + s0 * NR, kc,
                       std::min(nc, s1 * NR) - s0 * NR);
#ifdef _OPENMP
#pragma omp barrier
#endif
          int64_t packed_block = -1;
          for (int64_t u = tid; u < units; u += nthr) {
            const int64_t mb = u / n_chunks, ch = u % n_chunks;
            const int64_t ic = mb * MC, mc = std::min(MC, M - ic);
            if (mb != packed_block) {
              pack_a<MR>(apack, a.at(bi, ic, pc), a.sr, a.sc, mc, kc);
              packed_block = mb;
            }
            const int64_t jr0 = slivers * ch / n_chunks * NR;
            const int64_t jr1 = std::min(nc, slivers * (ch + 1) / n_chunks * NR);
            macro_kernel<C, MR, NR>(out, bi, ic, jc, apack, bpack, mc, nc, kc, jr0, jr1, alpha,
                                    beta, pc == 0, kernel);
          }
#ifdef _OPENMP
#pragma omp barrier
#endif
        }
      }
  };
  if (threads == 1) {
    body(0, 1);
    return;
  }
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
  body(omp_get_thread_num(), omp_get_num_threads());
#endif
}

/// gemm_packed with the micro-kernel of the current GemmIsa: AVX-512 (12 x 2 vectors, its own
/// translation unit) or the build's baseline (AVX2 6 x 16, or the portable loop). B comes through
/// `pack_panel` (see gemm_packed).
template <class C, class T, class PackB>
void gemm_tiled_with(const Mat<C>& out, const Mat<const T>& a, const PackB& pack_panel, int64_t B,
                     int64_t M, int64_t N, int64_t K, C alpha, C beta) {
#ifdef EMBER_AVX512_GEMM
  if (gemm_isa() == GemmIsa::Avx512) {
    constexpr int NR = 2 * 64 / static_cast<int>(sizeof(C));
    if constexpr (std::is_same_v<C, float>)
      gemm_packed<C, T, kGemmAvx512MR, NR>(out, a, pack_panel, B, M, N, K, alpha, beta,
                                           &micro_kernel_avx512_f32);
    else
      gemm_packed<C, T, kGemmAvx512MR, NR>(out, a, pack_panel, B, M, N, K, alpha, beta,
                                           &micro_kernel_avx512_f64);
    return;
  }
#endif
  constexpr int MR = MicroTile<C>::MR, NR = MicroTile<C>::NR;
  gemm_packed<C, T, MR, NR>(out, a, pack_panel, B, M, N, K, alpha, beta,
                            &micro_kernel<C, MR, NR>);
}

/// B from a (B, K, N) matrix in memory.
template <class C, class T>
struct MatPacker {
  Mat<const T> b;
  template <int NR>
  void operator()(std::integral_constant<int, NR>, C* dst, int64_t bi, int64_t pc, int64_t j0,
                  int64_t kc, int64_t ncols) const {
    pack_b<NR>(dst, b.at(bi, pc, j0), b.sr, b.sc, kc, ncols);
  }
};

template <class C, class T>
void gemm_tiled(const Mat<C>& out, const Mat<const T>& a, const Mat<const T>& b, int64_t B,
                int64_t M, int64_t N, int64_t K, C alpha, C beta) {
  gemm_tiled_with<C, T>(out, a, MatPacker<C, T>{b}, B, M, N, K, alpha, beta);
}

/// The M == 1 case (vector @ matrix, and matrix @ vector transposed): no A panel to pack, so
/// the same per-element arithmetic (fma chains restarted every KC, combined with store_tile's
/// rule) runs over NR-wide column blocks of B, vectorized along N; a narrow last block (and
/// N == 1, a dot product) runs one scalar chain per column.
template <class C, class T>
void gemm_row(const Mat<C>& out, const Mat<const T>& a, const Mat<const T>& b, int64_t B, int64_t N,
              int64_t K, C alpha, C beta) {
  constexpr int W = MicroTile<C>::NR;
  const int64_t n_blocks = (N + W - 1) / W;
  const int64_t tasks = B * n_blocks;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 17) / (W * K));
  parallel_for(tasks, grain, [&](int64_t t0, int64_t t1) {
    std::vector<C>& bpack = pack_buffer<C>(1);
    bpack.resize(std::max(bpack.size(), static_cast<size_t>(W * std::min(K, KC))));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t bi = t / n_blocks;
      const int64_t j0 = (t % n_blocks) * W;
      const int64_t w = std::min<int64_t>(W, N - j0);
      for (int64_t pc = 0; pc < K; pc += KC) {
        const int64_t kc = std::min(KC, K - pc);
        const T* ap = a.at(bi, 0, pc);
        if (w == W) {
          pack_b<W>(bpack.data(), b.at(bi, pc, j0), b.sr, b.sc, kc, W);
          C acc[W] = {};
          for (int64_t p = 0; p < kc; ++p) {
            const C av = convert<C>(ap[p * a.sc]);
            const C* bp = bpack.data() + p * W;
#pragma omp simd
            for (int j = 0; j < W; ++j) acc[j] = std::fma(av, bp[j], acc[j]);
          }
          store_tile<C>(out.at(bi, 0, j0), out.sr, out.sc, acc, W, 1, W, alpha, beta, pc == 0);
        } else {
          for (int64_t j = 0; j < w; ++j) {
            const T* bj = b.at(bi, pc, j0 + j);
            C acc = C(0);
            for (int64_t p = 0; p < kc; ++p)
              acc = std::fma(convert<C>(ap[p * a.sc]), convert<C>(bj[p * b.sr]), acc);
            store_tile<C>(out.at(bi, 0, j0 + j), out.sr, out.sc, &acc, 1, 1, 1, alpha, beta,
                          pc == 0);
          }
        }
      }
    }
  });
}

/// Picks the loop nest. Every path computes each output element with the same arithmetic, so the
/// choice (which depends on M and N, and M changes when matmul folds a batch into it) never
/// changes a result. Swapping to out^T = b^T a^T is free: fma(x, y, z) == fma(y, x, z).
template <class C, class T>
void gemm_floating(const Mat<C>& out, const Mat<const T>& a, const Mat<const T>& b, int64_t B,
                   int64_t M, int64_t N, int64_t K, C alpha, C beta) {
  if (B == 0 || M == 0 || N == 0) return;
  if (K == 0) {  // empty sum: out = beta * out
    for (int64_t bi = 0; bi < B; ++bi)
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
          C& o = *out.at(bi, i, j);
          o = beta == C(0) ? C(0) : beta * o;
        }
    return;
  }
  if (M == 1)
    gemm_row<C, T>(out, a, b, B, N, K, alpha, beta);
  else if (N == 1)
    gemm_row<C, T>(transposed(out), transposed(b), transposed(a), B, M, K, alpha, beta);
  else if (N < MicroTile<C>::NR && N < M)
    gemm_tiled<C, T>(transposed(out), transposed(b), transposed(a), B, N, M, K, alpha, beta);
  else
    gemm_tiled<C, T>(out, a, b, B, M, N, K, alpha, beta);
}

/// Integers: uint64 sums (wrap-around is defined), i-k-j order for unit-stride rows of b.
template <class T>
void gemm_integer(const Mat<T>& out, const Mat<const T>& a, const Mat<const T>& b, int64_t B,
                  int64_t M, int64_t N, int64_t K, int64_t alpha, int64_t beta) {
  auto u = [](auto v) { return static_cast<uint64_t>(static_cast<int64_t>(v)); };
  const int64_t grain = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, N * K));
  parallel_for(B * M, grain, [&](int64_t r0, int64_t r1) {
    std::vector<uint64_t> row(static_cast<size_t>(N));
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t bi = r / M, i = r % M;
      std::fill(row.begin(), row.end(), 0);
      for (int64_t k = 0; k < K; ++k) {
        const uint64_t aik = u(*a.at(bi, i, k));
        const T* bk = b.at(bi, k, 0);
        for (int64_t j = 0; j < N; ++j) row[j] += aik * u(bk[j * b.sc]);
      }
      for (int64_t j = 0; j < N; ++j) {
        T& o = *out.at(bi, i, j);
        uint64_t v = u(alpha) * row[j];
        if (beta != 0) v += u(beta) * u(o);
        o = static_cast<T>(static_cast<int64_t>(v));
      }
    }
  });
}

}  // namespace

namespace {
GemmIsa initial_gemm_isa() {
  GemmIsa best = gemm_isa_available(GemmIsa::Avx512) ? GemmIsa::Avx512 : GemmIsa::Baseline;
  const char* env = std::getenv("EMBER_GEMM_ISA");
  if (env != nullptr && std::string(env) == "baseline") best = GemmIsa::Baseline;
  return best;
}
std::atomic<GemmIsa>& current_gemm_isa() {
  static std::atomic<GemmIsa> isa{initial_gemm_isa()};
  return isa;
}
}  // namespace

bool gemm_isa_available(GemmIsa isa) {
  if (isa == GemmIsa::Baseline) return true;
#if defined(EMBER_AVX512_GEMM) && (defined(__GNUC__) || defined(__clang__))
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  return avx512;
#else
  return false;
#endif
}

GemmIsa gemm_isa() { return current_gemm_isa().load(std::memory_order_relaxed); }

void set_gemm_isa(GemmIsa isa) {
  if (!gemm_isa_available(isa))
    throw DeviceError("[set_gemm_isa] this CPU or build has no AVX-512 GEMM kernel");
  current_gemm_isa().store(isa, std::memory_order_relaxed);
}

void gemm(const Tensor& out, const Tensor& a, const Tensor& b, Scalar alpha, Scalar beta) {
  const int64_t B = out.size(0), M = out.size(1), N = out.size(2), K = a.size(2);
  visit_dtype(a.dtype(), [&](auto tag) {  // the operands' (out may be float32, below)
    using T = typename decltype(tag)::type;
    const Mat<const T> ma = mat_of<const T>(a), mb = mat_of<const T>(b);
    if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
      if (out.dtype() == kFloat32) {  // the output cast: the float sums, never rounded to T
        gemm_floating<float, T>(mat_of<float>(out), ma, mb, B, M, N, K, alpha.to<float>(),
                                beta.to<float>());
        return;
      }
    }
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      gemm_floating<T, T>(mat_of<T>(out), ma, mb, B, M, N, K, alpha.to<T>(), beta.to<T>());
    } else if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
      // Accumulate in a float buffer; round to T once.
      Tensor acc = make_tensor({B, M, N}, kFloat32, out.device(), "gemm");
      gemm_floating<float, T>(mat_of<float>(acc), ma, mb, B, M, N, K, alpha.to<float>(), 0.0f);
      const float fb = beta.to<float>();
      if (fb == 0.0f) {
        map<T, float>(
            out, [](float v) { return T(v); }, acc);
      } else {
        map<T, float, T>(
            out, [fb](float v, T o) { return T(std::fma(fb, static_cast<float>(o), v)); }, acc,
            out);
      }
    } else if constexpr (std::is_same_v<T, bool>) {
      throw DTypeError("[gemm] bool tensors are not supported");
    } else {
      gemm_integer<T>(mat_of<T>(out), ma, mb, B, M, N, K, alpha.to<int64_t>(), beta.to<int64_t>());
    }
  });
}

// ---- convolution as an implicit GEMM ----

void gemm_reference(const Tensor& out, const Tensor& a, const Tensor& b, Scalar alpha,
                    Scalar beta) {
  const int64_t B = out.size(0), M = out.size(1), N = out.size(2), K = a.size(2);
  visit_dtype(a.dtype(), [&](auto tag) {  // the operands'
    using T = typename decltype(tag)::type;
    const Mat<const T> ma = mat_of<const T>(a), mb = mat_of<const T>(b);
    if constexpr (std::is_same_v<T, bool>) {
      throw DTypeError("[gemm_reference] bool tensors are not supported");
    } else if constexpr (std::is_integral_v<T>) {
      auto u = [](auto v) { return static_cast<uint64_t>(static_cast<int64_t>(v)); };
      const uint64_t ua = u(alpha.to<int64_t>()), ub = u(beta.to<int64_t>());
      const Mat<T> mo = mat_of<T>(out);
      for (int64_t bi = 0; bi < B; ++bi)
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < N; ++j) {
            uint64_t s = 0;
            for (int64_t k = 0; k < K; ++k) s += u(*ma.at(bi, i, k)) * u(*mb.at(bi, k, j));
            T& o = *mo.at(bi, i, j);
            uint64_t v = ua * s + (ub != 0 ? ub * u(o) : 0);
            o = static_cast<T>(static_cast<int64_t>(v));
          }
    } else {
      // out of T, or float32 for 16-bit operands (the output cast)
      auto run = [&](auto* out_type) {
        using O = std::remove_pointer_t<decltype(out_type)>;
        const Mat<O> mo = mat_of<O>(out);
        const double da = alpha.to<double>(), db = beta.to<double>();
        for (int64_t bi = 0; bi < B; ++bi)
          for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < N; ++j) {
              double s = 0;
              for (int64_t k = 0; k < K; ++k)
                s += convert<double>(*ma.at(bi, i, k)) * convert<double>(*mb.at(bi, k, j));
              O& o = *mo.at(bi, i, j);
              double v = da * s;
              if (db != 0.0) v += db * convert<double>(o);
              o = convert<O>(v);
            }
      };
      if (out.dtype() == a.dtype())
        run(static_cast<T*>(nullptr));
      else
        run(static_cast<float*>(nullptr));
    }
  });
}

}  // namespace ember::cpu
