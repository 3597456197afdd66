// Direct convolution on the CPU: conv2d forward and its weight gradient with the B operand read
// straight from a padded (phase-split) copy of one sample's image, so nothing is packed per tap.
// The layout and the register tiles are described in conv_direct.hpp.
//
// Forward, per sample: out(O, P) = A(O, C*R*S) B(C*R*S, P) with B's row j the buffer slice at
// off[j]; the weight A is packed once into mr-row slivers (zero rows past O), the tiles write a
// virtual output (O, OH*Wq) and the valid columns (ow < OW) are copied out with the bias. Every
// output element is one fma chain over the taps in order, so the AVX-512 and AVX2/portable
// tiles give bitwise the same forward. Parallel over samples (or over position tiles when there
// are fewer samples than threads); each element is computed by one thread in one order, so the
// result does not depend on the thread count.
//
// Weight gradient: gw(O, C*R*S) = sum over n of dY_n(O, P) B_n(C*R*S, P)^T, each tile a dot
// product along positions (dY's thrown-away columns zeroed). Samples go in fixed chunks; each
// chunk's partial sum is kept and the partials are added in chunk order, so the result does not
// depend on the thread count either (it does on the instruction set: the lanes differ).
#include "core/cpu/conv_direct.hpp"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
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
// 16 ymm registers: forward 4 x 3 vectors, weight gradient 2 x 4.
constexpr int kBaseMR = 4, kBaseMO = 2, kBaseNJ = 4;
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
constexpr int kBaseMR = 4, kBaseMO = 2, kBaseNJ = 4;
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
      conv_direct_detail::make_tiles<S, kBaseMR, kBaseMO, kBaseNJ>();
  return t;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// The phase-buffer layout of one sample (conv_direct.hpp) and the tap offsets into it.
struct PhaseLayout {
  int64_t C, H, W, OH, OW, sh, sw, ph, pw, Hq, Wq, plane;
  int64_t taps;     // C*R*S
  int64_t P;        // OH*Wq virtual positions
  int64_t P_end;    // P rounded up to whole vectors: what the tiles read and write
  int64_t data;     // C*sh*sw*plane elements that the fill writes
  int64_t size;     // data plus zeroed slack that tails may read
  std::vector<int64_t> off;  // taps, padded with 0 to a multiple of `pad_taps`

  PhaseLayout(int64_t C_, int64_t H_, int64_t W_, int64_t OH_, int64_t OW_, const Window2d& w,
              int lanes, int pad_taps)
      : C(C_), H(H_), W(W_), OH(OH_), OW(OW_), sh(w.sh), sw(w.sw), ph(w.ph), pw(w.pw) {
    const int64_t Hp = H + 2 * w.ph, Wp = W + 2 * w.pw;
    Hq = ceil_div(Hp, sh);
    Wq = ceil_div(Wp, sw);
    plane = Hq * Wq;
    taps = C * w.kh * w.kw;
    P = OH * Wq;
    P_end = ceil_div(P, lanes) * lanes;
    data = C * sh * sw * plane;
    off.assign(static_cast<size_t>(ceil_div(taps, pad_taps) * pad_taps), 0);
    int64_t max_off = 0;
    for (int64_t c = 0, j = 0; c < C; ++c)
      for (int64_t r = 0; r < w.kh; ++r)
        for (int64_t s = 0; s < w.kw; ++s, ++j) {
          const int64_t rr = r * w.dh, ss = s * w.dw;
          const int64_t o =
              ((c * sh + rr % sh) * sw + ss % sw) * plane + (rr / sh) * Wq + ss / sw;
          off[static_cast<size_t>(j)] = o;
          max_off = std::max(max_off, o);
        }
    size = std::max(data, max_off + P_end) + lanes;
  }

  /// buf[0, data) = sample x (C, H, W; strides xc, xh, xw) split into zero-padded phase planes.
  template <class T>
  void fill(T* buf, const T* x, int64_t xc, int64_t xh, int64_t xw) const {
    for (int64_t c = 0; c < C; ++c)
      for (int64_t a = 0; a < sh; ++a)
        for (int64_t b = 0; b < sw; ++b) {
          T* dst = buf + ((c * sh + a) * sw + b) * plane;
          // padded column j*sw + b holds input column j*sw + b - pw: valid j in [jlo, jhi)
          const int64_t jlo = std::min(Wq, std::max<int64_t>(0, ceil_div(pw - b, sw)));
          const int64_t jhi = std::max(jlo, std::min(Wq, ceil_div(W + pw - b, sw)));
          for (int64_t i = 0; i < Hq; ++i, dst += Wq) {
            const int64_t y = i * sh + a - ph;
            if (y < 0 || y >= H) {
              std::fill(dst, dst + Wq, T(0));
              continue;
            }
            std::fill(dst, dst + jlo, T(0));
            const T* src = x + c * xc + y * xh + (jlo * sw + b - pw) * xw;
            const int64_t step = sw * xw, n = jhi - jlo;
            if (step == 1) {
              std::memcpy(dst + jlo, src, static_cast<size_t>(n) * sizeof(T));
            } else {
              for (int64_t q = 0; q < n; ++q) dst[jlo + q] = src[q * step];
            }
            std::fill(dst + jhi, dst + Wq, T(0));
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

template <class T>
void direct_forward(const Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias,
                    const Window2d& w) {
  const ConvDirectTiles<T>& k = direct_tiles<T>();
  const int64_t N = x.size(0), O = out.size(1), OH = out.size(2), OW = out.size(3);
  const PhaseLayout g(x.size(1), x.size(2), x.size(3), OH, OW, w, k.lanes, 1);
  const int64_t MR = k.mr, OB = ceil_div(O, MR), taps = g.taps, ldc = g.P_end;
  // ---- the weight in mr-row slivers: A[ob][j][i] = weight[ob*MR + i][j], 0 past O ----
  std::vector<T> a(static_cast<size_t>(OB * taps * MR), T(0));
  {
    const T* wp = weight.data_ptr<T>();
    const int64_t s0 = weight.stride(0), s1 = weight.stride(1);
    for (int64_t o = 0; o < O; ++o)
      for (int64_t j = 0; j < taps; ++j)
        a[static_cast<size_t>(((o / MR) * taps + j) * MR + o % MR)] = wp[o * s0 + j * s1];
  }
  const T* xp = x.data_ptr<T>();
  const T* bp = bias.defined() ? bias.data_ptr<T>() : nullptr;
  const int64_t bs = bias.defined() ? bias.stride(0) : 0;
  T* op = out.data_ptr<T>();
  const int64_t tile = k.nv * k.lanes, ntiles = ceil_div(g.P, tile);
  constexpr int64_t KC = 512;  // taps per pass: the slivers' KC*MR stay in L1/L2
  // Tiles [t0, t1) of one sample: all output channels, every tap.
  auto compute = [&](const T* buf, T* vout, int64_t t0, int64_t t1) {
    for (int64_t j0 = 0; j0 < taps; j0 += KC) {
      const int64_t kc = std::min(KC, taps - j0);
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t p0 = t * tile, nv = std::min<int64_t>(k.nv, ceil_div(g.P - p0, k.lanes));
        for (int64_t ob = 0; ob < OB; ++ob)
          k.forward[nv](kc, a.data() + (ob * taps + j0) * MR, buf + p0,
                        g.off.data() + j0, vout + ob * MR * ldc + p0, ldc, j0 > 0);
      }
    }
  };
  // out[n] = the valid columns of vout, plus the bias.
  auto store = [&](const T* vout, int64_t n, int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
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
  };
  const int64_t xn = x.stride(0), xc = x.stride(1), xh = x.stride(2), xw = x.stride(3);
  const int64_t threads = get_num_threads();
  if (N >= threads) {
    parallel_for(N, ceil_div(N, threads), [&](int64_t n0, int64_t n1) {
      std::vector<T> buf_v, vout_v;
      T* buf = scratch(buf_v, g.size);
      T* vout = scratch(vout_v, OB * MR * ldc);
      for (int64_t n = n0; n < n1; ++n) {
        g.fill(buf, xp + n * xn, xc, xh, xw);
        compute(buf, vout, 0, ntiles);
        store(vout, n, 0, O);
      }
    });
    return;
  }
  std::vector<T> buf_v, vout_v;
  T* buf = scratch(buf_v, g.size);
  T* vout = scratch(vout_v, OB * MR * ldc);
  for (int64_t n = 0; n < N; ++n) {
    g.fill(buf, xp + n * xn, xc, xh, xw);
    parallel_for(ntiles, ceil_div(ntiles, threads),
                 [&](int64_t t0, int64_t t1) { compute(buf, vout, t0, t1); });
    parallel_for(O, ceil_div(O, threads), [&](int64_t o0, int64_t o1) { store(vout, n, o0, o1); });
  }
}

template <class T>
void direct_weight_grad(const Tensor& gw, const Tensor& dy, const Tensor& x, const Window2d& w) {
  const ConvDirectTiles<T>& k = direct_tiles<T>();
  const int64_t N = x.size(0), O = dy.size(1), OH = dy.size(2), OW = dy.size(3);
  const PhaseLayout g(x.size(1), x.size(2), x.size(3), OH, OW, w, k.lanes, k.nj);
  const int64_t MO = k.mo, NJ = k.nj, OB = ceil_div(O, MO), JB = ceil_div(g.taps, NJ);
  const int64_t taps = g.taps, ld = g.P_end;
  // Fixed chunks of samples (never fewer than 8 per chunk, at most 16 chunks): one partial sum
  // each, added in chunk order at the end.
  const int64_t per_chunk = std::max<int64_t>(8, ceil_div(N, 16)), chunks = ceil_div(N, per_chunk);
  std::vector<T> partial(static_cast<size_t>(chunks * O * taps), T(0));
  const T* xp = x.data_ptr<T>();
  const T* yp = dy.data_ptr<T>();
  const int64_t xn = x.stride(0), xc = x.stride(1), xh = x.stride(2), xw = x.stride(3);
  const int64_t yn = dy.stride(0), yc = dy.stride(1), yh = dy.stride(2), yw = dy.stride(3);
  const int64_t threads = get_num_threads();
  // Samples per tile call: as many of a chunk as keep their buffers within about 1 MiB, so the
  // tiles' lane sums are reduced once per group (small images have few positions per sample).
  const int64_t per_sample = g.size + OB * MO * ld;
  const int64_t group = std::clamp<int64_t>(
      (int64_t{1} << 20) / static_cast<int64_t>(sizeof(T)) / per_sample, 1, per_chunk);
  parallel_for(chunks, ceil_div(chunks, threads), [&](int64_t c0, int64_t c1) {
    std::vector<T> buf_v, dyv_v;
    T* buf = scratch(buf_v, group * g.size);
    // dY in the virtual layout, (OB*MO, P_end) per sample, zero outside the valid columns/rows.
    T* dyv = scratch(dyv_v, group * OB * MO * ld);
    T sums[4 * 6];
    for (int64_t ch = c0; ch < c1; ++ch) {
      T* acc = partial.data() + ch * O * taps;
      const int64_t n_end = std::min(N, (ch + 1) * per_chunk);
      for (int64_t n0 = ch * per_chunk; n0 < n_end; n0 += group) {
        const int64_t ns = std::min(group, n_end - n0);
        for (int64_t s = 0; s < ns; ++s) {
          const int64_t n = n0 + s;
          g.fill(buf + s * g.size, xp + n * xn, xc, xh, xw);
          for (int64_t o = 0; o < O; ++o) {
            T* d = dyv + s * OB * MO * ld + o * ld;
            const T* src = yp + n * yn + o * yc;
            for (int64_t oh = 0; oh < OH; ++oh, d += g.Wq) {
              for (int64_t q = 0; q < OW; ++q) d[q] = src[oh * yh + q * yw];
              std::fill(d + OW, d + g.Wq, T(0));
            }
          }
        }
        for (int64_t ob = 0; ob < OB; ++ob) {
          const int64_t mo = std::min(MO, O - ob * MO);
          for (int64_t jb = 0; jb < JB; ++jb) {
            k.weight_grad(ns, ld, dyv + ob * MO * ld, ld, OB * MO * ld, buf, g.size,
                          g.off.data() + jb * NJ, sums);
            const int64_t nj = std::min(NJ, taps - jb * NJ);
            for (int64_t i = 0; i < mo; ++i)
              for (int64_t j = 0; j < nj; ++j)
                acc[(ob * MO + i) * taps + jb * NJ + j] += sums[i * NJ + j];
          }
        }
      }
    }
  });
  T* gp = gw.data_ptr<T>();
  parallel_for(O, ceil_div(O, threads), [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o)
      for (int64_t j = 0; j < taps; ++j) {
        T s = partial[static_cast<size_t>(o * taps + j)];
        for (int64_t ch = 1; ch < chunks; ++ch)
          s += partial[static_cast<size_t>((ch * O + o) * taps + j)];
        gp[o * taps + j] = s;
      }
  });
}

template <class F>
void float_or_double(DType dtype, const char* op, F&& f) {
  visit_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      f(T{});
    } else {
      throw DTypeError(detail::str_cat("[", op, "] expected float32 or float64, got ", dtype));
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
  float_or_double(out.dtype(), "conv2d_direct", [&](auto tag) {
    direct_forward<decltype(tag)>(out, x, weight, bias, w);
  });
}

void conv2d_direct_weight_grad(const Tensor& gw, const Tensor& dy, const Tensor& x,
                               const Window2d& w) {
  if (gw.numel() == 0) return;
  if (dy.numel() == 0) {
    fill(gw, Scalar(0));
    return;
  }
  float_or_double(gw.dtype(), "conv2d_direct_weight_grad", [&](auto tag) {
    direct_weight_grad<decltype(tag)>(gw, dy, x, w);
  });
}

}  // namespace ember::cpu
