// CPU attention kernels: softmax(q k^T * scale) v without the (L, S) score matrix, forward and
// backward, after FlashAttention-2 (Dao, "FlashAttention-2: Faster Attention with Better
// Parallelism and Work Partitioning", 2023, algorithms 1 and 2).
//
// Shapes: q (..., L, D), k (..., S, D), v (..., S, Dv) with one set of batch dims (any strides,
// read in place by the packing); out (..., L, Dv), dq, dk and dv written in place with any
// strides, lse (..., L) contiguous. The batch dims flatten to BH "heads".
//
// Forward, one task per (head, block of BR queries), keys in blocks of BC:
//   S^T (BC, BR) = K_blk (Q_blk * scale)^T            -- keys as rows: every softmax step below
//   online softmax down the key rows:                     runs along contiguous queries
//     m_new = max(m, max_k S^T), alpha = e^(m - m_new), P^T = e^(S^T - m_new), l = alpha l + sum_k
//     P^T
//   O^T (Dv, BR) = alpha * O^T + V_blk^T P^T
//   finally out = (O^T / l)^T and lse = m + log l (kept for backward).
// The S^T tile is stored in the packed B layout of the second product ((BC, NR) slivers of NR
// queries), so P^T feeds V^T P^T without a copy. Causal (query i sees keys 0..i, upper-left
// aligned) stops each query block at its last query and masks only the diagonal tiles.
//
// Backward, one task per head (deterministic: one thread owns every sum of a head), key blocks
// outside, query blocks inside:
//   S^T = K Q^T * scale, P^T = e^(S^T - lse), dP^T = V dO^T, dS^T = P^T (dP^T - Dvec)
//   (Dvec_i = rowsum(dO_i * O_i)), dV_blk += P^T dO, dK_blk += dS^T Q, dQ += dS K; dK and dQ
//   are scaled once at the end.
//
// Every product is a sequence of (MR, NR) register tiles computed by a GEMM micro-kernel on
// packed slivers (gemm_kernels.hpp): the AVX-512 12 x 32 (float) / 12 x 16 (double) kernel of the
// packed GEMM when the CPU has it, else a portable loop with `omp simd`. Each element of a tile
// is one fma chain in k order, so the result depends on the block sizes (fixed: BR = BC = 96) but
// neither on the micro-kernel nor on the thread count. float32 uses vec_math.hpp's exp; the
// elementwise steps (online softmax, probabilities) are compiled twice, for the build's baseline
// and with an AVX-512 target attribute used beside the AVX-512 micro-kernel (about 1.6x on the
// forward), with the same arithmetic per element (the tests compare the two bitwise).
// Limits: none on L, S, D, Dv (any size; the tiles are zero-padded).

// Every product and sum here rounds on its own unless written as fma (vec_math's exp spells its
// fmas out). Otherwise GCC (-ffp-contract=fast, its C++ default) contracts `l * alpha + sum`
// and the like into fma differently in the baseline and the AVX-512-target copies of the
// elementwise steps, and the two stop agreeing bitwise on AVX-512 machines. Before the
// includes, so that the header templates instantiated here agree (as in optim.cpp).
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "core/cpu/gemm_kernels.hpp"
#include "core/cpu/vec_math.hpp"
#include "core/dispatch.hpp"
#include "core/kernels.hpp"
#include "core/parallel.hpp"
#include "ember/random.hpp"

namespace ember::cpu {
namespace {

// Queries and keys per block: a multiple of every micro-kernel's MR (12, 6) and NR (32, 16, 8).
// Part of the arithmetic (online-softmax steps, accumulation chains), so one value for all.
constexpr int64_t BR = 96;
constexpr int64_t BC = 96;

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/// A GEMM micro-kernel with gemm_kernels.hpp's contract.
/// The micro-kernel, its tile shape, and the elementwise steps compiled for the same ISA.
template <class C, int MR_, int NR_>
struct Tiles {
  static constexpr int MR = MR_, NR = NR_;
  MicroKernel<C> kernel;
  void (*softmax_step)(C* sb, int64_t nqs, int64_t bc, int64_t k0, int64_t q0, bool masked, C* m,
                       C* l, C* alpha, C* ob, int64_t rows, int64_t bw);
  void (*probabilities)(C* st, C* dpt, int64_t bc, int64_t bw, int64_t first_visible, const C* lse,
                        const C* dvec, const C* z);

  /// c (MR, NR; row stride sr) = (or += when accumulate) a_sliver(kc, MR)^T b_sliver(kc, NR).
  void tile(int64_t kc, const C* a, const C* b, C* c, int64_t sr, bool accumulate) const {
    alignas(64) C acc[MR * NR];
    if (kernel(kc, a, b, acc, c, sr, 1, /*full=*/true, C(1), C(0), /*first=*/!accumulate)) return;
    for (int i = 0; i < MR; ++i) {
      C* ci = c + i * sr;
      const C* ai = acc + i * NR;
      if (accumulate) {
        for (int j = 0; j < NR; ++j) ci[j] = std::fma(C(1), ai[j], ci[j]);  // as the kernel's store
      } else {
        for (int j = 0; j < NR; ++j) ci[j] = ai[j];
      }
    }
  }
};

/// Packs `rows` rows of depth `depth` into W-row slivers: dst[s][p][i] = mul * src(s W + i, p),
/// src(r, p) = src[r sr + p sp], zero rows up to a multiple of W. A sliver is (depth, W); the
/// rows [p0, p0 + n) of depth of sliver s start at dst + s depth W + p0 W.
template <int W, class C, class T>
void pack_slivers(C* dst, const T* src, int64_t sr, int64_t sp, int64_t rows, int64_t depth,
                  C mul) {
  const bool rows_inner = std::abs(sr) < std::abs(sp);
  for (int64_t s = 0; s < rows; s += W) {
    const int64_t n = std::min<int64_t>(W, rows - s);
    C* d = dst + s * depth;
    const T* x = src + s * sr;
    if (rows_inner) {
      for (int64_t p = 0; p < depth; ++p) {
        int64_t i = 0;
        for (; i < n; ++i) d[p * W + i] = mul * convert<C>(x[i * sr + p * sp]);
        for (; i < W; ++i) d[p * W + i] = C(0);
      }
    } else {
      for (int64_t i = 0; i < n; ++i)
        for (int64_t p = 0; p < depth; ++p) d[p * W + i] = mul * convert<C>(x[i * sr + p * sp]);
      for (int64_t i = n; i < W; ++i)
        for (int64_t p = 0; p < depth; ++p) d[p * W + i] = C(0);
    }
  }
}

/// Element offsets of each (row-major flattened) batch index of t (..., R, C).
std::vector<int64_t> batch_offsets(const Tensor& t) {
  const int64_t nb = t.dim() - 2;
  int64_t n = 1;
  for (int64_t d = 0; d < nb; ++d) n *= t.size(d);
  std::vector<int64_t> off(static_cast<size_t>(n));
  for (int64_t b = 0; b < n; ++b) {
    int64_t r = b, o = 0;
    for (int64_t d = nb - 1; d >= 0; --d) {
      o += (r % t.size(d)) * t.stride(d);
      r /= t.size(d);
    }
    off[static_cast<size_t>(b)] = o;
  }
  return off;
}

/// Sets rows [0, R) x columns [0, W) of every head of t (element (h, r, c) at t + off[h] + r sr +
/// c sc) to z.
template <class C>
void fill_heads(C* t, const std::vector<int64_t>& off, int64_t R, int64_t W, int64_t sr, int64_t sc,
                C z) {
  for (const int64_t o : off)
    for (int64_t r = 0; r < R; ++r)
      for (int64_t c = 0; c < W; ++c) t[o + r * sr + c * sc] = z;
}

/// A per-thread scratch buffer, grown once and reused.
template <class C>
C* scratch(int which, int64_t n) {
  thread_local std::vector<C> buffers[13];
  std::vector<C>& v = buffers[which];
  if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
  return v.data();
}

template <class C>
constexpr C kNegInf = -std::numeric_limits<C>::infinity();

// ---- the elementwise steps, compiled for each micro-kernel's ISA ----

constexpr int64_t kNoMask = std::numeric_limits<int64_t>::min() / 2;

/// Attention dropout: element (head bh, query i, key j) of the (BH, L, S) weights is kept with
/// probability 1 - p and then scaled by 1 / (1 - p). Its Philox word is the one bernoulli draws
/// for element e = (bh L + i) S + j of a (BH, L, S) tensor (block offset + e / 4, word e % 4;
/// kept when word * 2^-32 < 1 - p), so the mask equals `bernoulli(empty({BH, L, S}), 1 - p)` at
/// the same (seed, offset): forward and backward regenerate it instead of storing it.
struct DropoutMask {
  bool on = false;
  double keep = 1.0;
  uint64_t seed = 0, offset = 0;
  int64_t L = 0, S = 0;

  /// t[k * stride] *= z(bh, i, j0 + k) for k in [0, n) (mul), or t[k * stride] = z (!mul).
  template <class C>
  void apply(C* t, int64_t stride, int64_t bh, int64_t i, int64_t j0, int64_t n, bool mul) const {
    const C scale = static_cast<C>(1.0 / keep);
    uint64_t e = static_cast<uint64_t>((bh * L + i) * S + j0);
    std::array<uint32_t, 4> w{};
    uint64_t block = ~uint64_t{0};
    for (int64_t k = 0; k < n; ++k, ++e) {
      if (e / 4 != block) {
        block = e / 4;
        const uint64_t b = offset + block;
        w = philox4x32_10({static_cast<uint32_t>(b), static_cast<uint32_t>(b >> 32), 0u, 0u},
                          {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)});
      }
      const C z = static_cast<double>(w[e % 4]) * 0x1p-32 < keep ? scale : C(0);
      if (mul)
        t[k * stride] *= z;
      else
        t[k * stride] = z;
    }
  }
};

/// Online softmax of one S^T tile, sb (nqs, BC, NR) of which keys [0, bc) are valid, in place:
/// P^T = e^(S^T - m_new) (0 where masked: key k0 + k > query q0 + j), running max m, sum l and
/// the rescale factors alpha (BR each). Then O^T (rows, bw) columns *= alpha.
template <class C, int NR>
[[gnu::always_inline]] inline void softmax_step_body(C* sb, int64_t nqs, int64_t bc, int64_t k0,
                                                     int64_t q0, bool masked, C* m, C* l, C* alpha,
                                                     C* ob, int64_t rows, int64_t bw) {
  for (int64_t qs = 0; qs < nqs; ++qs) {
    C* st = sb + qs * BC * NR;  // (bc, NR)
    C* mq = m + qs * NR;
    C* lq = l + qs * NR;
    C* aq = alpha + qs * NR;
    const int64_t qbase = q0 + qs * NR;
    alignas(64) C mx[NR], sum[NR];
    for (int j = 0; j < NR; ++j) mx[j] = mq[j], sum[j] = C(0);
    for (int64_t kk = 0; kk < bc; ++kk) {
      C* row = st + kk * NR;
      if (masked) {
        const int64_t key = k0 + kk;
#pragma omp simd
        for (int j = 0; j < NR; ++j) row[j] = key > qbase + j ? kNegInf<C> : row[j];
      }
#pragma omp simd
      for (int j = 0; j < NR; ++j) mx[j] = row[j] > mx[j] ? row[j] : mx[j];
    }
    // Every query sees key 0, so after the first block the running max is finite.
#pragma omp simd
    for (int j = 0; j < NR; ++j) {
      aq[j] = mq[j] == kNegInf<C> ? C(0) : vm::exp<C>(mq[j] - mx[j]);
      mq[j] = mx[j];
    }
    for (int64_t kk = 0; kk < bc; ++kk) {
      C* row = st + kk * NR;
#pragma omp simd
      for (int j = 0; j < NR; ++j) {
        const C p = row[j] == kNegInf<C> ? C(0) : vm::exp<C>(row[j] - mx[j]);
        row[j] = p;
        sum[j] += p;
      }
    }
#pragma omp simd
    for (int j = 0; j < NR; ++j) lq[j] = lq[j] * aq[j] + sum[j];
  }
  for (int64_t r = 0; r < rows; ++r) {
    C* orow = ob + r * bw;
#pragma omp simd
    for (int64_t j = 0; j < bw; ++j) orow[j] *= alpha[j];
  }
}

/// Backward: P^T = e^(S^T - lse) in st and dS^T = P^T (dP^T - Dvec) in dpt, both (bc, BR) with
/// bw valid columns; P^T is 0 where query j < first_visible + k (causal; kNoMask: none). With
/// dropout (z: the (bc, BR) tile of keep / (1 - p) factors, else null) st gets the dropped P^T z
/// (what dV needs) and dS^T = P^T (dP^T z - Dvec).
template <class C>
[[gnu::always_inline]] inline void probabilities_body(C* st, C* dpt, int64_t bc, int64_t bw,
                                                      int64_t first_visible, const C* lse,
                                                      const C* dvec, const C* z) {
  for (int64_t kk = 0; kk < bc; ++kk) {
    C* srow = st + kk * BR;
    C* drow = dpt + kk * BR;
    const int64_t first = first_visible + kk;  // queries j >= key see it
    if (z == nullptr) {
#pragma omp simd
      for (int64_t j = 0; j < bw; ++j) {
        const C p = j < first ? C(0) : vm::exp<C>(srow[j] - lse[j]);
        srow[j] = p;
        drow[j] = p * (drow[j] - dvec[j]);
      }
    } else {
      const C* zrow = z + kk * BR;
#pragma omp simd
      for (int64_t j = 0; j < bw; ++j) {
        const C p = j < first ? C(0) : vm::exp<C>(srow[j] - lse[j]);
        srow[j] = p * zrow[j];
        drow[j] = p * (drow[j] * zrow[j] - dvec[j]);
      }
    }
  }
}

template <class C, int NR>
void softmax_step_baseline(C* sb, int64_t nqs, int64_t bc, int64_t k0, int64_t q0, bool masked,
                           C* m, C* l, C* alpha, C* ob, int64_t rows, int64_t bw) {
  softmax_step_body<C, NR>(sb, nqs, bc, k0, q0, masked, m, l, alpha, ob, rows, bw);
}
template <class C>
void probabilities_baseline(C* st, C* dpt, int64_t bc, int64_t bw, int64_t first_visible,
                            const C* lse, const C* dvec, const C* z) {
  probabilities_body<C>(st, dpt, bc, bw, first_visible, lse, dvec, z);
}

#ifdef EMBER_AVX512_GEMM
// The same steps in 512-bit vectors, run only beside the AVX-512 micro-kernel (so only on CPUs
// that have it). The arithmetic per element is the same as the baseline's (the tests compare
// the two bitwise).
#if defined(__clang__)
#define EMBER_AVX512_TARGET __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq")))
#else
#define EMBER_AVX512_TARGET \
  __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,prefer-vector-width=512")))
#endif
template <class C, int NR>
EMBER_AVX512_TARGET void softmax_step_avx512(C* sb, int64_t nqs, int64_t bc, int64_t k0, int64_t q0,
                                             bool masked, C* m, C* l, C* alpha, C* ob, int64_t rows,
                                             int64_t bw) {
  softmax_step_body<C, NR>(sb, nqs, bc, k0, q0, masked, m, l, alpha, ob, rows, bw);
}
template <class C>
EMBER_AVX512_TARGET void probabilities_avx512(C* st, C* dpt, int64_t bc, int64_t bw,
                                              int64_t first_visible, const C* lse, const C* dvec,
                                              const C* z) {
  probabilities_body<C>(st, dpt, bc, bw, first_visible, lse, dvec, z);
}
#undef EMBER_AVX512_TARGET
#endif

// ---- forward ----

template <class C, class Tl>
void forward_flash(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                   const Tensor& v, double scale, bool causal, const DropoutMask& drop,
                   const Tl& tiles) {
  constexpr int MR = Tl::MR, NR = Tl::NR;
  const int64_t L = q.size(-2), S = k.size(-2), D = q.size(-1), Dv = v.size(-1);
  const std::vector<int64_t> qo = batch_offsets(q), ko = batch_offsets(k), vo = batch_offsets(v);
  const int64_t BH = static_cast<int64_t>(qo.size());
  const C* Q = q.data_ptr<C>();
  const C* K = k.data_ptr<C>();
  const C* V = v.data_ptr<C>();
  C* O = out.data_ptr<C>();
  C* LSE = lse.data_ptr<C>();
  const std::vector<int64_t> oo = batch_offsets(out);
  const int64_t qsr = q.stride(-2), qsc = q.stride(-1), ksr = k.stride(-2), ksc = k.stride(-1);
  const int64_t vsr = v.stride(-2), vsc = v.stride(-1), osr = out.stride(-2), osc = out.stride(-1);
  if (BH == 0 || L == 0) return;
  if (S == 0) {  // no keys: zeros, as the reference
    fill_heads(O, oo, L, Dv, osr, osc, C(0));
    std::fill(LSE, LSE + BH * L, kNegInf<C>);
    return;
  }

  // K as MR-key slivers over D, V^T as MR-row slivers of Dv over the keys: shared by every query
  // block of a head, packed once.
  const int64_t ka_size = round_up(S, MR) * D, va_size = round_up(Dv, MR) * S;
  std::unique_ptr<C[]> kpack(new C[static_cast<size_t>(BH * ka_size)]);
  std::unique_ptr<C[]> vpack(new C[static_cast<size_t>(BH * va_size)]);
  parallel_for(BH, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t bh = b0; bh < b1; ++bh) {
      pack_slivers<MR>(kpack.get() + bh * ka_size, K + ko[bh], ksr, ksc, S, D, C(1));
      pack_slivers<MR>(vpack.get() + bh * va_size, V + vo[bh], vsc, vsr, Dv, S, C(1));
    }
  });

  const int64_t n_qblocks = (L + BR - 1) / BR;
  const int64_t dv_slivers = (Dv + MR - 1) / MR;
  const C cscale = static_cast<C>(scale);
  parallel_for(BH * n_qblocks, 1, [&](int64_t t0, int64_t t1) {
    C* qt = scratch<C>(0, BR * D);                // (BR/NR, D, NR): (Q_blk scale)^T slivers
    C* sb = scratch<C>(1, BR * BC);               // (BR/NR, BC, NR): S^T, then P^T
    C* ob = scratch<C>(2, dv_slivers * MR * BR);  // (Dv_pad, bw): O^T
    C* m = scratch<C>(3, BR);
    C* l = scratch<C>(4, BR);
    C* alpha = scratch<C>(5, BR);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t bh = t / n_qblocks, q0 = (t % n_qblocks) * BR;
      const int64_t br = std::min(BR, L - q0);
      const int64_t nqs = (br + NR - 1) / NR, bw = nqs * NR;
      const C* kp = kpack.get() + bh * ka_size;
      const C* vp = vpack.get() + bh * va_size;
      pack_slivers<NR>(qt, Q + qo[bh] + q0 * qsr, qsr, qsc, br, D, cscale);
      std::fill(ob, ob + dv_slivers * MR * bw, C(0));
      std::fill(m, m + bw, kNegInf<C>);
      std::fill(l, l + bw, C(0));
      // Keys after the block's last query are masked for all of its queries.
      const int64_t k_end = causal ? std::min(S, q0 + br) : S;
      for (int64_t k0 = 0; k0 < k_end; k0 += BC) {
        const int64_t bc = std::min(BC, k_end - k0);
        const int64_t nks = (bc + MR - 1) / MR;
        for (int64_t qs = 0; qs < nqs; ++qs)
          for (int64_t ks = 0; ks < nks; ++ks)
            tiles.tile(D, kp + (k0 / MR + ks) * D * MR, qt + qs * D * NR,
                       sb + qs * BC * NR + ks * MR * NR, NR, false);
        const bool masked = causal && k0 + bc - 1 > q0;
        tiles.softmax_step(sb, nqs, bc, k0, q0, masked, m, l, alpha, ob,
                           k0 > 0 ? dv_slivers * MR : 0, bw);
        if (drop.on) {  // l has the undropped sum; O accumulates the dropped weights
          for (int64_t j = 0; j < br; ++j)
            drop.apply(sb + (j / NR) * BC * NR + j % NR, NR, bh, q0 + j, k0, bc, /*mul=*/true);
        }
        for (int64_t s = 0; s < dv_slivers; ++s)
          for (int64_t qs = 0; qs < nqs; ++qs)
            tiles.tile(bc, vp + s * S * MR + k0 * MR, sb + qs * BC * NR, ob + s * MR * bw + qs * NR,
                       bw, true);
      }
      C* o = O + oo[bh] + q0 * osr;
      for (int64_t i = 0; i < br; ++i) {
        const C li = l[i];
        for (int64_t d = 0; d < Dv; ++d) o[i * osr + d * osc] = ob[d * bw + i] / li;
        LSE[bh * L + q0 + i] = m[i] + std::log(li);
      }
    }
  });
}

// ---- backward ----

template <class C, class Tl>
void backward_flash(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                    const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                    const Tensor& lse, double scale, bool causal, const DropoutMask& drop,
                    const Tl& tiles) {
  constexpr int MR = Tl::MR, NR = Tl::NR;
  const int64_t L = q.size(-2), S = k.size(-2), D = q.size(-1), Dv = v.size(-1);
  const std::vector<int64_t> qo = batch_offsets(q), ko = batch_offsets(k), vo = batch_offsets(v);
  const std::vector<int64_t> go = batch_offsets(dout), oo = batch_offsets(out);
  const std::vector<int64_t> lo = batch_offsets(lse.unsqueeze(-1));
  const int64_t BH = static_cast<int64_t>(qo.size());
  const C* Q = q.data_ptr<C>();
  const C* K = k.data_ptr<C>();
  const C* V = v.data_ptr<C>();
  const C* G = dout.data_ptr<C>();
  const C* O = out.data_ptr<C>();
  const C* LSE = lse.data_ptr<C>();
  C* dQ = dq.data_ptr<C>();
  C* dK = dk.data_ptr<C>();
  C* dV = dv.data_ptr<C>();
  const int64_t qsr = q.stride(-2), qsc = q.stride(-1), ksr = k.stride(-2), ksc = k.stride(-1);
  const int64_t vsr = v.stride(-2), vsc = v.stride(-1), gsr = dout.stride(-2),
                gsc = dout.stride(-1);
  const int64_t osr = out.stride(-2), osc = out.stride(-1), lsr = lse.stride(-1);
  const std::vector<int64_t> dqo = batch_offsets(dq), dko = batch_offsets(dk),
                             dvo = batch_offsets(dv);
  const int64_t dqr = dq.stride(-2), dqc = dq.stride(-1), dkr = dk.stride(-2), dkc = dk.stride(-1),
                dvr = dv.stride(-2), dvc = dv.stride(-1);
  if (BH == 0) return;
  if (L == 0 || S == 0) {  // no queries or no keys: nothing flows
    fill_heads(dQ, dqo, L, D, dqr, dqc, C(0));
    fill_heads(dK, dko, S, D, dkr, dkc, C(0));
    fill_heads(dV, dvo, S, Dv, dvr, dvc, C(0));
    return;
  }
  const int64_t s_mr = round_up(S, MR), l_nr = round_up(L, NR), l_br = round_up(L, BR);
  const int64_t d_nr = round_up(D, NR), dv_nr = round_up(Dv, NR);
  const C cscale = static_cast<C>(scale);

  parallel_for(BH, 1, [&](int64_t b0, int64_t b1) {
    C* ka = scratch<C>(0, s_mr * D);    // K as MR-key slivers over D
    C* va = scratch<C>(1, s_mr * Dv);   // V as MR-key slivers over Dv
    C* qtb = scratch<C>(2, l_nr * D);   // (Q scale)^T: NR-query slivers over D
    C* gtb = scratch<C>(3, l_nr * Dv);  // dO^T: NR-query slivers over Dv
    C* gb = scratch<C>(4, dv_nr * L);   // dO: NR-column slivers over the queries
    C* qb = scratch<C>(5, d_nr * L);    // Q: NR-column slivers over the queries
    C* kb = scratch<C>(6, d_nr * S);    // K: NR-column slivers over the keys
    C* rows = scratch<C>(7, 2 * l_nr);  // lse, then Dvec, per query (zero-padded)
    C* dq_acc = scratch<C>(8, l_br * d_nr);
    C* kv_acc = scratch<C>(9, BC * (d_nr + dv_nr));  // dK_blk (BC, d_nr), dV_blk (BC, dv_nr)
    C* tiles_buf = scratch<C>(10, 2 * BC * BR);      // S^T then P^T; dP^T then dS^T: (BC, BR)
    C* pa = scratch<C>(11, BC * BR);                 // a packed (BC, BR) or (BR, BC) operand
    C* zt = drop.on ? scratch<C>(12, BC * BR) : nullptr;  // dropout factors (BC, BR)
    C* lse_q = rows;
    C* dvec = rows + l_nr;
    C* dk_acc = kv_acc;
    C* dv_acc = kv_acc + BC * d_nr;
    C* st = tiles_buf;
    C* dpt = tiles_buf + BC * BR;
    for (int64_t bh = b0; bh < b1; ++bh) {
      const C* qh = Q + qo[bh];
      const C* kh = K + ko[bh];
      const C* vh = V + vo[bh];
      const C* gh = G + go[bh];
      pack_slivers<MR>(ka, kh, ksr, ksc, S, D, C(1));
      pack_slivers<MR>(va, vh, vsr, vsc, S, Dv, C(1));
      pack_slivers<NR>(qtb, qh, qsr, qsc, L, D, cscale);
      pack_slivers<NR>(gtb, gh, gsr, gsc, L, Dv, C(1));
      pack_slivers<NR>(gb, gh, gsc, gsr, Dv, L, C(1));
      pack_slivers<NR>(qb, qh, qsc, qsr, D, L, C(1));
      pack_slivers<NR>(kb, kh, ksc, ksr, D, S, C(1));
      std::fill(rows, rows + 2 * l_nr, C(0));
      for (int64_t i = 0; i < L; ++i) {
        lse_q[i] = LSE[lo[bh] + i * lsr];
        const C* gi = gh + i * gsr;
        const C* oi = O + oo[bh] + i * osr;
        C acc = C(0);
        // Explicit fma: the same rounding whatever the strides (a contiguous loop may vectorize).
        for (int64_t d = 0; d < Dv; ++d) acc = std::fma(gi[d * gsc], oi[d * osc], acc);
        dvec[i] = acc;
      }
      std::fill(dq_acc, dq_acc + l_br * d_nr, C(0));

      for (int64_t k0 = 0; k0 < S; k0 += BC) {
        const int64_t bc = std::min(BC, S - k0);
        const int64_t nks = (bc + MR - 1) / MR;
        std::fill(kv_acc, kv_acc + BC * (d_nr + dv_nr), C(0));
        // Causal: query blocks that end before key k0 see none of this block.
        for (int64_t q0 = causal ? k0 / BR * BR : 0; q0 < L; q0 += BR) {
          const int64_t br = std::min(BR, L - q0);
          const int64_t nqs = (br + NR - 1) / NR, bw = nqs * NR;
          for (int64_t ks = 0; ks < nks; ++ks)
            for (int64_t qs = 0; qs < nqs; ++qs) {
              tiles.tile(D, ka + (k0 / MR + ks) * D * MR, qtb + (q0 / NR + qs) * D * NR,
                         st + ks * MR * BR + qs * NR, BR, false);
              tiles.tile(Dv, va + (k0 / MR + ks) * Dv * MR, gtb + (q0 / NR + qs) * Dv * NR,
                         dpt + ks * MR * BR + qs * NR, BR, false);
            }
          const bool masked = causal && k0 + bc - 1 > q0;
          if (zt != nullptr) {
            for (int64_t j = 0; j < br; ++j)
              drop.apply(zt + j, BR, bh, q0 + j, k0, bc, /*mul=*/false);
          }
          tiles.probabilities(st, dpt, bc, bw, masked ? k0 - q0 : kNoMask, lse_q + q0, dvec + q0,
                              zt);
          // dV_blk += P^T dO_blk and dK_blk += dS^T Q_blk: keys as MR-row slivers over queries.
          pack_slivers<MR>(pa, st, BR, 1, bc, br, C(1));
          for (int64_t ks = 0; ks < nks; ++ks)
            for (int64_t t = 0; t < dv_nr / NR; ++t)
              tiles.tile(br, pa + ks * br * MR, gb + t * L * NR + q0 * NR,
                         dv_acc + ks * MR * dv_nr + t * NR, dv_nr, true);
          pack_slivers<MR>(pa, dpt, BR, 1, bc, br, C(1));
          for (int64_t ks = 0; ks < nks; ++ks)
            for (int64_t t = 0; t < d_nr / NR; ++t)
              tiles.tile(br, pa + ks * br * MR, qb + t * L * NR + q0 * NR,
                         dk_acc + ks * MR * d_nr + t * NR, d_nr, true);
          // dQ_blk += dS K_blk: queries as MR-row slivers over keys.
          pack_slivers<MR>(pa, dpt, 1, BR, br, bc, C(1));
          for (int64_t qs = 0; qs < (br + MR - 1) / MR; ++qs)
            for (int64_t t = 0; t < d_nr / NR; ++t)
              tiles.tile(bc, pa + qs * bc * MR, kb + t * S * NR + k0 * NR,
                         dq_acc + (q0 + qs * MR) * d_nr + t * NR, d_nr, true);
        }
        C* dkh = dK + dko[bh] + k0 * dkr;
        C* dvh = dV + dvo[bh] + k0 * dvr;
        for (int64_t kk = 0; kk < bc; ++kk) {
          for (int64_t d = 0; d < D; ++d) dkh[kk * dkr + d * dkc] = cscale * dk_acc[kk * d_nr + d];
          for (int64_t d = 0; d < Dv; ++d) dvh[kk * dvr + d * dvc] = dv_acc[kk * dv_nr + d];
        }
      }
      C* dqh = dQ + dqo[bh];
      for (int64_t i = 0; i < L; ++i)
        for (int64_t d = 0; d < D; ++d) dqh[i * dqr + d * dqc] = cscale * dq_acc[i * d_nr + d];
    }
  });
}

/// Calls f(tiles) with the micro-kernel of the current GemmIsa.
template <class C, class F>
void with_tiles(F&& f) {
#ifdef EMBER_AVX512_GEMM
  if (gemm_isa() == GemmIsa::Avx512) {
    constexpr int NR = 2 * 64 / static_cast<int>(sizeof(C));
    MicroKernel<C> kernel;
    if constexpr (std::is_same_v<C, float>)
      kernel = &micro_kernel_avx512_f32;
    else
      kernel = &micro_kernel_avx512_f64;
    f(Tiles<C, kGemmAvx512MR, NR>{kernel, &softmax_step_avx512<C, NR>, &probabilities_avx512<C>});
    return;
  }
#endif
  constexpr int MR = 6, NR = 2 * 32 / static_cast<int>(sizeof(C));
  f(Tiles<C, MR, NR>{&micro_kernel_portable<C, MR, NR>, &softmax_step_baseline<C, NR>,
                     &probabilities_baseline<C>});
}

}  // namespace

namespace {
DropoutMask dropout_mask(const Tensor& q, const Tensor& k, double dropout_p, uint64_t seed,
                         uint64_t offset) {
  DropoutMask d;
  d.on = dropout_p > 0.0;
  d.keep = 1.0 - dropout_p;
  d.seed = seed;
  d.offset = offset;
  d.L = q.size(-2);
  d.S = k.size(-2);
  return d;
}
}  // namespace

void attention_forward_flash(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                             const Tensor& v, double scale, bool is_causal, double dropout_p,
                             uint64_t seed, uint64_t offset) {
  const DropoutMask drop = dropout_mask(q, k, dropout_p, seed, offset);
  visit_dtype(q.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      with_tiles<T>([&](const auto& tiles) {
        forward_flash<T>(out, lse, q, k, v, scale, is_causal, drop, tiles);
      });
    } else {
      throw DTypeError("[attention_forward_flash] expected float32 or float64");
    }
  });
}

void attention_backward_flash(const Tensor& dq, const Tensor& dk, const Tensor& dv,
                              const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& out, const Tensor& lse, double scale, bool is_causal,
                              double dropout_p, uint64_t seed, uint64_t offset) {
  const DropoutMask drop = dropout_mask(q, k, dropout_p, seed, offset);
  visit_dtype(q.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      with_tiles<T>([&](const auto& tiles) {
        backward_flash<T>(dq, dk, dv, dout, q, k, v, out, lse, scale, is_causal, drop, tiles);
      });
    } else {
      throw DTypeError("[attention_backward_flash] expected float32 or float64");
    }
  });
}

}  // namespace ember::cpu
