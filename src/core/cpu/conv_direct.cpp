// Direct convolution on the CPU: conv2d forward, input gradient and weight gradient with the B
// operand read straight from a padded (phase-split) copy of one sample's image (or of dY), so
// nothing is packed per tap. The layout and the register tiles are described in conv_direct.hpp.
//
// Forward, per sample: out(O, P) = A(O, C*R*S) B(C*R*S, P) with B's row j the buffer slice at
// off[j]; the weight A is packed once into mr-row slivers (zero rows past O), the tiles write a
// virtual output (O, OH*Wq) and the valid columns (ow < OW) are copied out with the bias. Every
// output element is one fma chain over the taps in order, so the AVX-512 and AVX2/portable
// tiles give bitwise the same forward. Parallel over samples (or over position tiles when there
// are fewer samples than threads); each element is computed by one thread in one order, so the
// result does not depend on the thread count.
//
// Input gradient (the transposed convolution): gx's sh*sw output phases (rows a, a + sh, ...;
// columns b, b + sw, ...) are each a forward-style GEMM over dY zero-padded once per sample,
// with only the taps that reach the phase (tap r reaches phase a when a + ph - r*dh is a multiple
// of sh, reading dY row u + (a + ph - r*dh)/sh), scattered into gx with the phase's stride.
//
// Weight gradient: gw(O, C*R*S) = sum over n of dY_n(O, P) B_n(C*R*S, P)^T over the valid
// positions only, with dY transposed per sample (channels in the vector lanes) and each tap's
// input value broadcast. Samples go in fixed chunks; each element is one fma chain over a chunk's
// (sample, oh, ow) in order, and the chunks' partial sums are added in chunk order, so the
// result depends neither on the thread count nor on the instruction set.
#include "core/cpu/conv_direct.hpp"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "core/dispatch.hpp"
#include "core/kernels.hpp"
#include "core/parallel.hpp"
#include "ember/error.hpp"

namespace ember::cpu {
namespace {

// ---- the build's own tiles: AVX2 + FMA, or portable loops ----
#if defined(__AVX2__) && defined(__FMA__)
struct BaseF32 {
  using T = float;
  using V = __m256;
  static constexpr int W = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V set1(float v) { return _mm256_set1_ps(v); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static float reduce_add(V v) {
    alignas(32) float l[8];
    _mm256_store_ps(l, v);
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
  }
};
struct BaseF64 {
  using T = double;
  using V = __m256d;
  static constexpr int W = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static V set1(double v) { return _mm256_set1_pd(v); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
  static double reduce_add(V v) {
    alignas(32) double l[4];
    _mm256_store_pd(l, v);
    return (l[0] + l[1]) + (l[2] + l[3]);
  }
};
// 16 ymm registers: forward 4 x 3 vectors, weight gradient 6 taps x 2 vectors.
constexpr int kBaseMR = 4, kBaseNJ = 6;
#else
template <class C>
struct Portable {
  using T = C;
  static constexpr int W = 8;
  struct V {
    C v[W];
  };
  static V zero() { return V{}; }
  static V load(const C* p) {
    V r;
    for (int l = 0; l < W; ++l) r.v[l] = p[l];
    return r;
  }
  static V set1(C x) {
    V r;
    for (int l = 0; l < W; ++l) r.v[l] = x;
    return r;
  }
  static V fma(V a, V b, V c) {
    for (int l = 0; l < W; ++l) c.v[l] = std::fma(a.v[l], b.v[l], c.v[l]);
    return c;
  }
  static void store(C* p, V v) {
    for (int l = 0; l < W; ++l) p[l] = v.v[l];
  }
  static C reduce_add(V v) {
    C s = v.v[0];
    for (int l = 1; l < W; ++l) s += v.v[l];
    return s;
  }
};
using BaseF32 = Portable<float>;
using BaseF64 = Portable<double>;
constexpr int kBaseMR = 4, kBaseNJ = 6;
#endif

template <class T>
const ConvDirectTiles<T>& direct_tiles() {
#ifdef EMBER_AVX512_GEMM
  if (gemm_isa() == GemmIsa::Avx512) {
    if constexpr (std::is_same_v<T, float>) {
      static const ConvDirectTiles<float> t = conv_direct_tiles_avx512_f32();
      return t;
    } else {
      static const ConvDirectTiles<double> t = conv_direct_tiles_avx512_f64();
      return t;
    }
  }
#endif
  using S = std::conditional_t<std::is_same_v<T, float>, BaseF32, BaseF64>;
  static const ConvDirectTiles<T> t =
      conv_direct_detail::make_tiles<S, kBaseMR, kBaseNJ>();
  return t;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// One sample's C planes (H, W), zero-padded by (top, left) and split into sh*sw phase planes
/// of (Hq, Wq): plane (c, a, b) holds padded pixel (i*sh + a, j*sw + b) at [i][j].
struct Planes {
  int64_t C, H, W, sh, sw, top, left, Hq, Wq, plane, data;
  std::vector<char> used;  // (sh*sw): phase planes some tap reads; the others are left alone

  Planes(int64_t C_, int64_t H_, int64_t W_, int64_t sh_, int64_t sw_, int64_t top_,
         int64_t left_, int64_t Hq_, int64_t Wq_)
      : C(C_), H(H_), W(W_), sh(sh_), sw(sw_), top(top_), left(left_), Hq(Hq_), Wq(Wq_),
        plane(Hq_ * Wq_), data(C_ * sh_ * sw_ * Hq_ * Wq_),
        used(static_cast<size_t>(sh_ * sw_), 1) {}

  /// buf[0, data) = sample x (C, H, W; strides xc, xh, xw) in the padded phase planes (those in
  /// use; the rest keep their contents, zero in a fresh scratch buffer).
  template <class T>
  void fill(T* buf, const T* x, int64_t xc, int64_t xh, int64_t xw) const {
    if (sh == 1 && sw == 1) {
      fill_unstrided(buf, x, xc, xh, xw);
      return;
    }
    // Strided: each input row is padded once into `row`, then split into its sw phases.
    std::vector<T> row(static_cast<size_t>(Wq * sw), T(0));
    const int64_t n = std::max<int64_t>(0, std::min(W, Wq * sw - left));  // columns in a phase
    for (int64_t c = 0; c < C; ++c)
      for (int64_t a = 0; a < sh; ++a)
        for (int64_t i = 0; i < Hq; ++i) {
          const int64_t y = i * sh + a - top;
          T* d0 = buf + (c * sh + a) * sw * plane + i * Wq;  // phase (a, 0); (a, b) at b*plane
          const char* u = used.data() + a * sw;
          if (y < 0 || y >= H) {
            for (int64_t b = 0; b < sw; ++b)
              if (u[b]) std::fill(d0 + b * plane, d0 + b * plane + Wq, T(0));
            continue;
          }
          const T* src = x + c * xc + y * xh;
          if (xw == 1) {
            std::memcpy(row.data() + left, src, static_cast<size_t>(n) * sizeof(T));
          } else {
            for (int64_t q = 0; q < n; ++q) row[static_cast<size_t>(left + q)] = src[q * xw];
          }
          const T* r = row.data();
          if (sw == 2 && u[0] && u[1]) {  // one pass over the row, both phases
            T* d1 = d0 + plane;
            for (int64_t q = 0; q < Wq; ++q) {
              d0[q] = r[2 * q];
              d1[q] = r[2 * q + 1];
            }
            continue;
          }
          for (int64_t b = 0; b < sw; ++b)
            if (u[b]) {
              T* d = d0 + b * plane;
              for (int64_t q = 0; q < Wq; ++q) d[q] = r[q * sw + b];
            }
        }
  }

 private:
  template <class T>
  void fill_unstrided(T* buf, const T* x, int64_t xc, int64_t xh, int64_t xw) const {
    // column j holds input column j - left: valid j in [jlo, jhi)
    const int64_t jlo = std::min(Wq, left), jhi = std::max(jlo, std::min(Wq, W + left));
    for (int64_t c = 0; c < C; ++c) {
      T* dst = buf + c * plane;
      for (int64_t i = 0; i < Hq; ++i, dst += Wq) {
        const int64_t y = i - top;
        if (y < 0 || y >= H) {
          std::fill(dst, dst + Wq, T(0));
          continue;
        }
        std::fill(dst, dst + jlo, T(0));
        const T* src = x + c * xc + y * xh + (jlo - left) * xw;
        const int64_t n = jhi - jlo;
        if (xw == 1) {
          std::memcpy(dst + jlo, src, static_cast<size_t>(n) * sizeof(T));
        } else {
          for (int64_t q = 0; q < n; ++q) dst[jlo + q] = src[q * xw];
        }
        std::fill(dst + jhi, dst + Wq, T(0));
      }
    }
  }
};

/// The planes of conv2d's input x (C, H, W) under window w, and the offset of tap (c, r, s)
/// (j = (c*kh + r)*kw + s) for output position 0 (conv_direct.hpp), padded with 0 to a multiple
/// of pad_taps.
Planes input_planes(int64_t C, int64_t H, int64_t W, const Window2d& w) {
  Planes g(C, H, W, w.sh, w.sw, w.ph, w.pw, ceil_div(H + 2 * w.ph, w.sh),
           ceil_div(W + 2 * w.pw, w.sw));
  std::fill(g.used.begin(), g.used.end(), 0);
  for (int64_t r = 0; r < w.kh; ++r)
    for (int64_t s = 0; s < w.kw; ++s)
      g.used[static_cast<size_t>((r * w.dh % w.sh) * w.sw + s * w.dw % w.sw)] = 1;
  return g;
}

std::vector<int64_t> input_offsets(const Planes& g, const Window2d& w, int64_t pad_taps) {
  const int64_t taps = g.C * w.kh * w.kw;
  std::vector<int64_t> off(static_cast<size_t>(ceil_div(taps, pad_taps) * pad_taps), 0);
  for (int64_t c = 0, j = 0; c < g.C; ++c)
    for (int64_t r = 0; r < w.kh; ++r)
      for (int64_t s = 0; s < w.kw; ++s, ++j) {
        const int64_t rr = r * w.dh, ss = s * w.dw;
        off[static_cast<size_t>(j)] = ((c * g.sh + rr % g.sh) * g.sw + ss % g.sw) * g.plane +
                                      (rr / g.sh) * g.Wq + ss / g.sw;
      }
  return off;
}

/// One GEMM of the direct layout: vout(rows, ldc) = A(rows, taps) B(taps, P), B's row j the
/// buffer slice at off[j]; A in mr-row slivers (OB of them, zero rows past `rows`).
template <class T>
struct DirectGemm {
  using Forward = typename ConvDirectTiles<T>::Forward;
  int64_t rows = 0, MR = 0, OB = 0, taps = 0, P = 0, P_end = 0, NV = 0;
  const Forward* tile = nullptr;  // tile[v], v = 1..NV vectors
  std::vector<T> a;          // (OB, taps, MR)
  std::vector<int64_t> off;  // (taps)

  /// get(i, j) = A[i][j] for i < rows, j < taps. Fewer rows than the tile's take the narrowest
  /// tile that holds them (1, 2 or 4 rows); more rows over exactly four vectors the wide tile.
  template <class Get>
  DirectGemm(const ConvDirectTiles<T>& k, int64_t rows_, int64_t taps_, int64_t P_,
             std::vector<int64_t> off_, Get&& get)
      : rows(rows_), MR(k.mr), taps(taps_), P(P_), P_end(ceil_div(P_, k.lanes) * k.lanes),
        NV(k.nv), tile(k.forward), off(std::move(off_)) {
    for (int m = 0; m < 3; ++m)
      if (rows <= (int64_t{1} << m) && (int64_t{1} << m) < k.mr && k.small_forward[m][1]) {
        MR = int64_t{1} << m;
        tile = k.small_forward[m];
        break;
      }
    if (tile == k.forward && k.wide[4] && P_end == 4 * k.lanes) {
      MR = k.wide_mr;
      NV = 4;
      tile = k.wide;
    }
    OB = ceil_div(rows, MR);
    a.assign(static_cast<size_t>(OB * taps * MR), T(0));
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < taps; ++j)
        a[static_cast<size_t>(((i / MR) * taps + j) * MR + i % MR)] = get(i, j);
  }

  /// The buffer elements the tiles may read: slack past the planes stays zero.
  int64_t reach() const {
    int64_t m = 0;
    for (int64_t j = 0; j < taps; ++j) m = std::max(m, off[static_cast<size_t>(j)]);
    return m + P_end;
  }
  int64_t tiles(const ConvDirectTiles<T>& k) const { return ceil_div(P_end / k.lanes, NV); }

  /// Tiles [t0, t1) of the positions, every row; taps in passes of KC (the slivers' KC*mr stay
  /// in L1/L2), each pass continuing the previous one's fma chains. The vectors are spread evenly
  /// over the tiles (5 as 3 + 2, not 3 + 1 + 1: a one-vector tile has too few accumulators;
  /// exactly 4 is one wide tile where there is one).
  void run(const ConvDirectTiles<T>& k, const T* buf, T* vout, int64_t t0, int64_t t1) const {
    constexpr int64_t KC = 512;
    const int64_t V = P_end / k.lanes, nt = tiles(k);
    for (int64_t j0 = 0; j0 < taps; j0 += KC) {
      const int64_t kc = std::min(KC, taps - j0);
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t v0 = t * V / nt, nv = (t + 1) * V / nt - v0, p0 = v0 * k.lanes;
        for (int64_t ob = 0; ob < OB; ++ob)
          tile[nv](kc, a.data() + (ob * taps + j0) * MR, buf + p0, off.data() + j0,
                   vout + ob * MR * P_end + p0, P_end, j0 > 0);
      }
    }
  }
};

/// A per-thread buffer of at least n elements, zero when first allocated (the slack past what the
/// fills write stays zero).
template <class T>
T* scratch(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.assign(static_cast<size_t>(n), T(0));
  return v.data();
}

/// Runs sample(n, buf, vout, t0, t1, parallel_tiles) for every sample: whole samples per thread
/// when there are at least as many as threads, else one sample at a time with its tiles split
/// (the callback then parallelizes inside). Each element is computed by one thread in one order.
template <class T, class Sample>
void for_each_sample(int64_t N, int64_t buf_size, int64_t vout_size, Sample&& sample) {
  const int64_t threads = get_num_threads();
  if (N >= threads) {
    parallel_for(N, ceil_div(N, threads), [&](int64_t n0, int64_t n1) {
      std::vector<T> buf_v, vout_v;
      T* buf = scratch(buf_v, buf_size);
      T* vout = scratch(vout_v, vout_size);
      for (int64_t n = n0; n < n1; ++n) sample(n, buf, vout, false);
    });
    return;
  }
  std::vector<T> buf_v, vout_v;
  T* buf = scratch(buf_v, buf_size);
  T* vout = scratch(vout_v, vout_size);
  for (int64_t n = 0; n < N; ++n) sample(n, buf, vout, true);
}

/// gemm.run over all its tiles, split across threads when `split`.
template <class T>
void run_tiles(const DirectGemm<T>& gemm, const ConvDirectTiles<T>& k, const T* buf, T* vout,
               bool split) {
  const int64_t nt = gemm.tiles(k);
  if (!split) {
    gemm.run(k, buf, vout, 0, nt);
    return;
  }
  parallel_for(nt, ceil_div(nt, get_num_threads()),
               [&](int64_t t0, int64_t t1) { gemm.run(k, buf, vout, t0, t1); });
}

template <class T>
void direct_forward(const Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias,
                    const Window2d& w) {
  const ConvDirectTiles<T>& k = direct_tiles<T>();
  const int64_t N = x.size(0), O = out.size(1), OH = out.size(2), OW = out.size(3);
  const Planes g = input_planes(x.size(1), x.size(2), x.size(3), w);
  const T* wp = weight.data_ptr<T>();
  const int64_t ws0 = weight.stride(0), ws1 = weight.stride(1);
  const DirectGemm<T> gemm(k, O, g.C * w.kh * w.kw, OH * g.Wq, input_offsets(g, w, 1),
                           [&](int64_t o, int64_t j) { return wp[o * ws0 + j * ws1]; });
  const T* xp = x.data_ptr<T>();
  const T* bp = bias.defined() ? bias.data_ptr<T>() : nullptr;
  const int64_t bs = bias.defined() ? bias.stride(0) : 0, ldc = gemm.P_end;
  T* op = out.data_ptr<T>();
  const int64_t xn = x.stride(0), xc = x.stride(1), xh = x.stride(2), xw = x.stride(3);
  for_each_sample<T>(N, std::max(g.data, gemm.reach()) + k.lanes, gemm.OB * gemm.MR * ldc,
                     [&](int64_t n, T* buf, T* vout, bool split) {
                       g.fill(buf, xp + n * xn, xc, xh, xw);
                       run_tiles(gemm, k, buf, vout, split);
                       // out[n] = the valid columns (ow < OW) of vout, plus the bias.
                       for (int64_t o = 0; o < O; ++o) {
                         const T b = bp ? bp[o * bs] : T(0);
                         T* dst = op + (n * O + o) * OH * OW;
                         for (int64_t oh = 0; oh < OH; ++oh, dst += OW) {
                           const T* src = vout + o * ldc + oh * g.Wq;
                           if (bp) {
                             for (int64_t q = 0; q < OW; ++q) dst[q] = src[q] + b;
                           } else {
                             std::memcpy(dst, src, static_cast<size_t>(OW) * sizeof(T));
                           }
                         }
                       }
                     });
}

/// A tap that reaches an output phase: output row u of the phase reads dY row u + shift.
struct PhaseTap {
  int64_t tap, shift;  // tap index along the axis, offset of the read row from the output's
};

/// The taps of one axis that reach output phase `a` (rows a, a + stride, ...) of the input
/// gradient: tap r reads dY row u + (a + pad - r*dil) / stride when that divides exactly.
std::vector<PhaseTap> phase_taps(int64_t a, int64_t k, int64_t dil, int64_t pad, int64_t stride) {
  std::vector<PhaseTap> taps;
  for (int64_t r = 0; r < k; ++r) {
    const int64_t d = a + pad - r * dil;
    if (d % stride == 0) taps.push_back(PhaseTap{r, d / stride});  // exact, either sign
  }
  return taps;
}

template <class T>
void direct_input_grad(const Tensor& gx, const Tensor& dy, const Tensor& weight,
                       const Window2d& w) {
  const ConvDirectTiles<T>& k = direct_tiles<T>();
  const int64_t N = gx.size(0), C = gx.size(1), H = gx.size(2), W = gx.size(3);
  const int64_t O = dy.size(1), OH = dy.size(2), OW = dy.size(3);
  // ---- the output phases and the padding of dY they need ----
  struct Phase {
    int64_t a, b, Uh, Uw;
    std::vector<PhaseTap> rows, cols;
  };
  std::vector<Phase> phases;
  int64_t top = 0, bottom = 0, left = 0, right = 0;
  for (int64_t a = 0; a < std::min(w.sh, H); ++a)
    for (int64_t b = 0; b < std::min(w.sw, W); ++b) {
      Phase ph{a, b, ceil_div(H - a, w.sh), ceil_div(W - b, w.sw),
               phase_taps(a, w.kh, w.dh, w.ph, w.sh), phase_taps(b, w.kw, w.dw, w.pw, w.sw)};
      for (const PhaseTap& t : ph.rows) {
        top = std::max(top, -t.shift);
        bottom = std::max(bottom, ph.Uh - 1 + t.shift - (OH - 1));
      }
      for (const PhaseTap& t : ph.cols) {
        left = std::max(left, -t.shift);
        right = std::max(right, ph.Uw - 1 + t.shift - (OW - 1));
      }
      phases.push_back(std::move(ph));
    }
  const Planes g(O, OH, OW, 1, 1, top, left, OH + top + bottom, OW + left + right);
  // ---- one GEMM per phase: rows c, taps (o, r, s) of the phase ----
  const T* wp = weight.data_ptr<T>();
  const int64_t ws0 = weight.stride(0), ws1 = weight.stride(1), khw = w.kh * w.kw;
  std::vector<DirectGemm<T>> gemms;
  int64_t buf_size = g.data, vout_size = 0;
  for (const Phase& ph : phases) {
    const int64_t nr = static_cast<int64_t>(ph.rows.size()), ns = static_cast<int64_t>(ph.cols.size());
    std::vector<int64_t> off(static_cast<size_t>(O * nr * ns));
    for (int64_t o = 0, j = 0; o < O; ++o)
      for (const PhaseTap& r : ph.rows)
        for (const PhaseTap& c : ph.cols)
          off[static_cast<size_t>(j++)] = o * g.plane + (r.shift + top) * g.Wq + c.shift + left;
    gemms.emplace_back(k, C, O * nr * ns, ph.Uh * g.Wq, std::move(off), [&](int64_t c, int64_t j) {
      const int64_t o = j / (nr * ns), r = ph.rows[static_cast<size_t>(j / ns % nr)].tap;
      const int64_t s = ph.cols[static_cast<size_t>(j % ns)].tap;
      return wp[o * ws0 + (c * khw + r * w.kw + s) * ws1];
    });
    buf_size = std::max(buf_size, gemms.back().reach());
    vout_size = std::max(vout_size, gemms.back().OB * gemms.back().MR * gemms.back().P_end);
  }
  const T* yp = dy.data_ptr<T>();
  const int64_t yn = dy.stride(0), yc = dy.stride(1), yh = dy.stride(2), yw = dy.stride(3);
  T* gp = gx.data_ptr<T>();
  for_each_sample<T>(N, buf_size + k.lanes, vout_size, [&](int64_t n, T* buf, T* vout, bool split) {
    g.fill(buf, yp + n * yn, yc, yh, yw);
    for (size_t i = 0; i < phases.size(); ++i) {
      const Phase& ph = phases[i];
      const DirectGemm<T>& gemm = gemms[i];
      if (gemm.taps > 0) run_tiles(gemm, k, buf, vout, split);
      // gx[n, c, a + sh*u, b + sw*v] = vout[c, u*Wq + v]; a phase no tap reaches is 0.
      for (int64_t c = 0; c < C; ++c) {
        T* dst = gp + ((n * C + c) * H + ph.a) * W + ph.b;
        for (int64_t u = 0; u < ph.Uh; ++u) {
          T* d = dst + u * w.sh * W;
          const T* src = vout + c * gemm.P_end + u * g.Wq;
          if (gemm.taps == 0) {
            for (int64_t v = 0; v < ph.Uw; ++v) d[v * w.sw] = T(0);
          } else if (w.sw == 1) {
            std::memcpy(d, src, static_cast<size_t>(ph.Uw) * sizeof(T));
          } else {
            for (int64_t v = 0; v < ph.Uw; ++v) d[v * w.sw] = src[v];
          }
        }
      }
    }
  });
}

template <class T>
void direct_weight_grad(const Tensor& gw, const Tensor& dy, const Tensor& x, const Window2d& w) {
  const ConvDirectTiles<T>& k = direct_tiles<T>();
  const int64_t N = x.size(0), O = dy.size(1), OH = dy.size(2), OW = dy.size(3), P = OH * OW;
  const Planes g = input_planes(x.size(1), x.size(2), x.size(3), w);
  const std::vector<int64_t> off = input_offsets(g, w, k.nj);  // padded taps read offset 0
  const int64_t L = k.lanes, NJ = k.nj, taps = g.C * w.kh * w.kw, JB = ceil_div(taps, NJ);
  // Channels in blocks of CB = two vectors (one when O fits one vector: a half-used block would
  // stream twice the bytes): a sample's dY transposed is (O_pad / CB, P, CB), so a tile streams
  // its block contiguously. The dY stream bounds these tiles (two vectors per 24 fmas).
  const int64_t VO = ceil_div(O, L), CB = VO > 1 ? 2 * L : L, O_pad = ceil_div(O, CB) * CB;
  const int64_t taps_pad = JB * NJ;
  const int64_t buf_size = g.data + L, dyt_size = P * O_pad;  // the tiles read within the planes
  // Fixed chunks of samples (never fewer than 8 per chunk, at most 16 chunks): one partial sum
  // (taps_pad, O_pad) each, added in chunk order at the end. Within a chunk each element is one
  // fma chain over (sample, oh, ow): the groups below continue it.
  const int64_t per_chunk = std::max<int64_t>(8, ceil_div(N, 16)), chunks = ceil_div(N, per_chunk);
  // Every element is written by its chunk's first group: no zero fill.
  std::unique_ptr<T[]> partial(new T[static_cast<size_t>(chunks * taps_pad * O_pad)]);
  const T* xp = x.data_ptr<T>();
  const T* yp = dy.data_ptr<T>();
  const int64_t xn = x.stride(0), xc = x.stride(1), xh = x.stride(2), xw = x.stride(3);
  const int64_t yn = dy.stride(0), yc = dy.stride(1), yh = dy.stride(2), yw = dy.stride(3);
  const int64_t threads = get_num_threads();
  // Samples per tile call: as many of a chunk as keep their buffers within about 4 MiB.
  const int64_t group = std::clamp<int64_t>(
      (int64_t{4} << 20) / static_cast<int64_t>(sizeof(T)) / (buf_size + dyt_size), 1, per_chunk);
  parallel_for(chunks, ceil_div(chunks, threads), [&](int64_t c0, int64_t c1) {
    std::vector<T> buf_v, dyt_v;
    T* buf = scratch(buf_v, group * buf_size);
    T* dyt = scratch(dyt_v, group * dyt_size);  // channels >= O stay zero
    for (int64_t ch = c0; ch < c1; ++ch) {
      T* acc = partial.get() + ch * taps_pad * O_pad;
      const int64_t n_first = ch * per_chunk, n_end = std::min(N, n_first + per_chunk);
      for (int64_t n0 = n_first; n0 < n_end; n0 += group) {
        const int64_t ns = std::min(group, n_end - n0);
        for (int64_t s = 0; s < ns; ++s) {
          const int64_t n = n0 + s;
          g.fill(buf + s * buf_size, xp + n * xn, xc, xh, xw);
          T* d = dyt + s * dyt_size;
          for (int64_t o = 0; o < O; ++o) {
            const T* src = yp + n * yn + o * yc;
            T* dst = d + (o / CB) * P * CB + o % CB;
            for (int64_t oh = 0; oh < OH; ++oh)
              for (int64_t ow = 0; ow < OW; ++ow) dst[(oh * OW + ow) * CB] = src[oh * yh + ow * yw];
          }
        }
        for (int64_t v = 0; v < VO; v += 2) {
          const int64_t mv = std::min<int64_t>(2, VO - v);
          for (int64_t jb = 0; jb < JB; ++jb)
            k.weight_grad[mv](ns, OH, OW, g.Wq, dyt + v / 2 * P * CB, dyt_size, CB, buf, buf_size,
                              off.data() + jb * NJ, acc + jb * NJ * O_pad + v * L, O_pad,
                              n0 > n_first);
        }
      }
    }
  });
  T* gp = gw.data_ptr<T>();
  parallel_for(O, ceil_div(O, threads), [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o)
      for (int64_t j = 0; j < taps; ++j) {
        T s = partial[static_cast<size_t>(j * O_pad + o)];
        for (int64_t ch = 1; ch < chunks; ++ch)
          s += partial[static_cast<size_t>((ch * taps_pad + j) * O_pad + o)];
        gp[o * taps + j] = s;
      }
  });
}

}  // namespace

void conv2d_direct(const Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias,
                   const Window2d& w) {
  if (out.numel() == 0) return;
  if (x.size(1) * w.kh * w.kw == 0) {
    if (bias.defined())
      copy(out, bias.view({1, out.size(1), 1, 1}).expand(out.sizes()));
    else
      fill(out, Scalar(0));
    return;
  }
  visit_float(
      out.dtype(),
      [&](auto tag) { direct_forward<typename decltype(tag)::type>(out, x, weight, bias, w); },
      "conv2d_direct");
}

void conv2d_direct_input_grad(const Tensor& gx, const Tensor& dy, const Tensor& weight,
                              const Window2d& w) {
  if (gx.numel() == 0) return;
  if (dy.size(1) * w.kh * w.kw == 0 || dy.size(2) * dy.size(3) == 0) {
    fill(gx, Scalar(0));
    return;
  }
  visit_float(
      gx.dtype(),
      [&](auto tag) { direct_input_grad<typename decltype(tag)::type>(gx, dy, weight, w); },
      "conv2d_direct_input_grad");
}

void conv2d_direct_weight_grad(const Tensor& gw, const Tensor& dy, const Tensor& x,
                               const Window2d& w) {
  if (gw.numel() == 0) return;
  if (dy.numel() == 0) {
    fill(gw, Scalar(0));
    return;
  }
  visit_float(
      gw.dtype(),
      [&](auto tag) { direct_weight_grad<typename decltype(tag)::type>(gw, dy, x, w); },
      "conv2d_direct_weight_grad");
}

}  // namespace ember::cpu
