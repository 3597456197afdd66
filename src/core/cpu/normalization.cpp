// CPU normalization kernels: layer_norm and batch_norm (training statistics), forward and
// first-order backward, float32 and float64, on contiguous tensors; both also take
// float16/bfloat16 x (and dy) computed in float32, each strip widened (core/cpu/widen.hpp), y and
// dx rounded once: bitwise the float32 kernel on x.to(float32), rounded afterwards. The composites
// in src/nn/normalization.cpp are the reference; the statistics follow their arithmetic.
//
// layer_norm, x (M, N) (M rows of the N normalized elements):
//   forward, one row at a time (after its first read the row sits in L1; the next row is
//   prefetched meanwhile): mean = x0 + sum(x - x0) / N with x0 the row's first element (the
//   differences are exact where values sit far from zero, so rows like 1e4 + noise keep their
//   mean), rounded to T as m; var = sum((x - m)^2) / N, centred at m as the composite does;
//   rstd = 1 / sqrt(var + eps); y = (x - m) * rstd * w + b.
//   backward: xhat = (x - m) rstd, g = dy w, dx = rstd (g - mean(g) - xhat mean(g xhat)) (row
//   sums as below); dw = sum_rows dy xhat, db = sum_rows dy. Rows are cut into chunks of
//   ceil(kChunkElems / N) rows (boundaries depend on M and N only, never on the thread count);
//   inside a chunk, groups of kRowGroup rows add up in T, each group's sum then into the chunk's
//   double partial row; the partials are added in chunk order, so dw and db are bitwise
//   independent of the thread count.
// batch_norm, x (N, C, S) (S = the product of the spatial dims), statistics per channel over N*S:
//   forward: the same two passes as a layer_norm row (shifted mean, then squares centred at the
//   rounded mean; the channel is in L2 for the second), then y = (x - m) (invstd w) + b.
//   backward: per channel sum(dy) and sum(dy (x - m)), then
//   dx = w invstd (dy - mean(dy) - xhat mean(dy xhat)); dw = sum(dy xhat), db = sum(dy).
//   One task per channel: every sum has one order, whatever the thread count.
// Sums: blocks of kBlockTerms * F terms go into F lanes of T (F wide enough for the adds'
// latency), each block's lanes are folded to kLanes and added to kLanes double lanes, combined
// at the end by a fixed tree. The order depends only on the shape.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/cpu/widen.hpp"
#include "core/dispatch.hpp"
#include "core/kernels.hpp"
#include "core/parallel.hpp"

namespace ember::cpu {
namespace {

constexpr int kLanes = 16;
constexpr int64_t kGrain = 32768;        // elements of work per parallel task
constexpr int64_t kChunkElems = 65536;   // elements per partial of the layer_norm weight gradient
constexpr int64_t kBlockTerms = 4;       // terms per T lane in a block (see accumulate)
// T lanes of a single sum (8 AVX2 registers of float: enough chains to hide the adds' latency)
// and of each of two sums computed together.
template <class T>
constexpr int kWide = 32 / sizeof(T) * 8;
template <class T>
constexpr int kWide2 = 32 / sizeof(T) * 4;
constexpr int64_t kRowGroup = 8;          // layer_norm rows per T partial of dw, db

struct Lanes {
  double v[kLanes] = {};
  double total() const {
    double t[kLanes / 2];
    for (int i = 0; i < kLanes / 2; ++i) t[i] = v[i] + v[i + kLanes / 2];
    for (int w = kLanes / 4; w >= 1; w /= 2)
      for (int i = 0; i < w; ++i) t[i] += t[i + w];
    return t[0];
  }
};

/// Adds the F lanes f of one block to the double lanes of s: folded to kLanes in T (lane j takes
/// f[j], f[j + kLanes], ... in order), then converted.
template <class T, int F>
[[gnu::always_inline]] inline void flush(Lanes& s, const T (&f)[F]) {
  T g[kLanes];
  for (int j = 0; j < kLanes; ++j) g[j] = f[j];
  for (int k = kLanes; k < F; k += kLanes)
    for (int j = 0; j < kLanes; ++j) g[j] += f[k + j];
  for (int j = 0; j < kLanes; ++j) s.v[j] += static_cast<double>(g[j]);
}

/// s += term(i) for i in [0, n). Blocks of kBlockTerms * F elements are summed in F lanes of T
/// (F independent chains keep the adds' latency hidden; starting them from the first terms
/// rather than zero keeps GCC from holding them in memory), each block then flushed into the
/// double lanes; the rest goes straight into the double lanes. The T lanes keep the loop as
/// wide as the data; the double lanes keep a long sum exact.
template <class T, int F, class Term>
[[gnu::always_inline]] inline void accumulate(Lanes& s, int64_t n, const Term& term) {
  constexpr int64_t kBlock = kBlockTerms * F;
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    T f[F];
    for (int j = 0; j < F; ++j) f[j] = term(i + j);
    for (int64_t k = F; k < kBlock; k += F)
      for (int j = 0; j < F; ++j) f[j] += term(i + k + j);
    flush<T, F>(s, f);
  }
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) s.v[j] += static_cast<double>(term(i + j));
  for (int j = 0; i + j < n; ++j) s.v[j] += static_cast<double>(term(i + j));
}

/// accumulate for two sums at once: s1 += term1(i), s2 += term2(i).
template <class T, int F, class Term1, class Term2>
[[gnu::always_inline]] inline void accumulate2(Lanes& s1, Lanes& s2, int64_t n,
                                               const Term1& term1, const Term2& term2) {
  constexpr int64_t kBlock = kBlockTerms * F;
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    T f1[F], f2[F];
    for (int j = 0; j < F; ++j) {
      f1[j] = term1(i + j);
      f2[j] = term2(i + j);
    }
    for (int64_t k = F; k < kBlock; k += F)
      for (int j = 0; j < F; ++j) {
        f1[j] += term1(i + k + j);
        f2[j] += term2(i + k + j);
      }
    flush<T, F>(s1, f1);
    flush<T, F>(s2, f2);
  }
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      s1.v[j] += static_cast<double>(term1(i + j));
      s2.v[j] += static_cast<double>(term2(i + j));
    }
  for (int j = 0; i + j < n; ++j) {
    s1.v[j] += static_cast<double>(term1(i + j));
    s2.v[j] += static_cast<double>(term2(i + j));
  }
}

/// The mean of a run of n elements at p: p[0] + sum(p[i] - p[0]) / n. Shifting by an element
/// makes the differences exact (Sterbenz) where the values sit far from zero, such as 1e4 plus
/// noise, so the T lanes lose nothing there; elsewhere they err by T's epsilon times |x|.
template <class T>
double run_mean(const T* p, int64_t n) {
  const T k = p[0];
  Lanes s;
  accumulate<T, kWide<T>>(s, n, [&](int64_t i) { return p[i] - k; });
  return static_cast<double>(k) + s.total() / static_cast<double>(n);
}

/// Asks for the next row (read) and its output (write) while this one is computed: the row's
/// passes run in L1, so without this every row would start with a stall on its first pass.
template <class T>
void prefetch_row(const T* next_in, const T* next_out, int64_t n) {
  constexpr int64_t kLine = 64 / sizeof(T);
  for (int64_t i = 0; i < n; i += kLine) {
    __builtin_prefetch(next_in + i, 0, 2);
    if (next_out != nullptr) __builtin_prefetch(next_out + i, 1, 2);
  }
}

template <class T>
T rsqrt_eps(T var, double eps) {
  return static_cast<T>(1.0 / std::sqrt(static_cast<double>(var) + eps));
}

// ---- layer_norm ----

template <class T, class Xs>
void layer_norm_forward_typed(Xs* Y, T* Mean, T* Rstd, const Xs* X, const T* W, const T* B,
                              int64_t M, int64_t N, double eps) {
  parallel_for(M, std::max<int64_t>(1, kGrain / N), [&](int64_t r0, int64_t r1) {
    std::vector<T> xbuf, ybuf;  // a 16-bit row widened, and its results before rounding
    for (int64_t r = r0; r < r1; ++r) {
      if (r + 1 < r1) prefetch_row(X + (r + 1) * N, Y + (r + 1) * N, N);
      const T* x = widen<T>(X + r * N, 1, N, N, xbuf);  // (N)
      int64_t ld = 0;
      T* y = compute_out<T>(Y + r * N, 1, N, N, ybuf, ld);
      const T m = static_cast<T>(run_mean(x, N));
      Lanes q;
      accumulate<T, kWide<T>>(q, N, [&](int64_t i) {
        const T d = x[i] - m;
        return d * d;
      });
      const T rs = rsqrt_eps(static_cast<T>(q.total() / static_cast<double>(N)), eps);
      Mean[r] = m;
      Rstd[r] = rs;
      if (W != nullptr && B != nullptr) {
        for (int64_t i = 0; i < N; ++i) y[i] = (x[i] - m) * rs * W[i] + B[i];
      } else if (W != nullptr) {
        for (int64_t i = 0; i < N; ++i) y[i] = (x[i] - m) * rs * W[i];
      } else if (B != nullptr) {
        for (int64_t i = 0; i < N; ++i) y[i] = (x[i] - m) * rs + B[i];
      } else {
        for (int64_t i = 0; i < N; ++i) y[i] = (x[i] - m) * rs;
      }
      narrow_into(Y + r * N, 1, N, N, ybuf);
    }
  });
}

/// One row of the layer_norm backward: dx (when given), and dy xhat, dy added to the T partial
/// rows fw, fb (when given).
template <class T>
void layer_norm_backward_row(T* dx, T* fw, T* fb, const T* dy, const T* x, T m, T rs, const T* W,
                             int64_t N) {
  if (fw != nullptr) {
    for (int64_t i = 0; i < N; ++i) {
      fw[i] += dy[i] * ((x[i] - m) * rs);
      fb[i] += dy[i];
    }
  }
  if (dx == nullptr) return;
  // Sums of g = dy w and g xhat; xhat recomputed (cheaper than a buffer round trip).
  Lanes sg, sgx;
  if (W != nullptr) {
    accumulate2<T, kWide2<T>>(
        sg, sgx, N, [&](int64_t i) { return dy[i] * W[i]; },
        [&](int64_t i) { return dy[i] * W[i] * ((x[i] - m) * rs); });
  } else {
    accumulate2<T, kWide2<T>>(
        sg, sgx, N, [&](int64_t i) { return dy[i]; },
        [&](int64_t i) { return dy[i] * ((x[i] - m) * rs); });
  }
  const T a = static_cast<T>(sg.total() / static_cast<double>(N));
  const T c = static_cast<T>(sgx.total() / static_cast<double>(N));
  if (W != nullptr) {
    for (int64_t k = 0; k < N; ++k) dx[k] = rs * (dy[k] * W[k] - a - (x[k] - m) * rs * c);
  } else {
    for (int64_t k = 0; k < N; ++k) dx[k] = rs * (dy[k] - a - (x[k] - m) * rs * c);
  }
}

template <class T, class Xs>
void layer_norm_backward_typed(Xs* DX, T* DW, T* DB, const Xs* DY, const Xs* X, const T* Mean,
                               const T* Rstd, const T* W, int64_t M, int64_t N) {
  const bool param_grads = DW != nullptr || DB != nullptr;
  const int64_t rows = std::max<int64_t>(1, (kChunkElems + N - 1) / N);  // rows per chunk
  const int64_t chunks = (M + rows - 1) / rows;
  // Partial rows (chunks, 2, N): dw then db of each chunk. Kept by the calling thread across
  // calls, so a training loop does not fault fresh pages in each step.
  thread_local std::vector<double> partial_buf;
  double* P = nullptr;
  if (param_grads) {
    if (partial_buf.size() < static_cast<size_t>(chunks * 2 * N))
      partial_buf.resize(static_cast<size_t>(chunks * 2 * N));
    P = partial_buf.data();
  }
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    // A chunk's rows go by groups of kRowGroup into T partials (fw, fb), each group's then added
    // to the chunk's double partials (pw, pb).
    thread_local std::vector<T> group_buf;
    std::vector<T> dybuf, xbuf, dxbuf;  // 16-bit rows widened, dx before rounding
    T* fw = nullptr;
    T* fb = nullptr;
    if (param_grads) {
      group_buf.resize(static_cast<size_t>(2 * N));
      fw = group_buf.data();
      fb = fw + N;
    }
    for (int64_t c = c0; c < c1; ++c) {
      double* pw = param_grads ? P + c * 2 * N : nullptr;
      double* pb = param_grads ? pw + N : nullptr;
      if (param_grads) std::fill_n(pw, 2 * N, 0.0);
      const int64_t end = std::min(M, (c + 1) * rows);
      for (int64_t g = c * rows; g < end; g += kRowGroup) {
        if (param_grads) std::fill_n(fw, 2 * N, T(0));
        for (int64_t r = g; r < std::min(end, g + kRowGroup); ++r) {
          int64_t ld = 0;
          T* dx = DX != nullptr ? compute_out<T>(DX + r * N, 1, N, N, dxbuf, ld) : nullptr;
          layer_norm_backward_row(dx, fw, fb, widen<T>(DY + r * N, 1, N, N, dybuf),
                                  widen<T>(X + r * N, 1, N, N, xbuf), Mean[r], Rstd[r], W, N);
          if (DX != nullptr) narrow_into(DX + r * N, 1, N, N, dxbuf);
        }
        if (!param_grads) continue;
        for (int64_t i = 0; i < N; ++i) {
          pw[i] += static_cast<double>(fw[i]);
          pb[i] += static_cast<double>(fb[i]);
        }
      }
    }
  });
  if (!param_grads) return;
  // dw[i], db[i] = the chunk partials added in chunk order; blocks of columns in parallel.
  constexpr int64_t kCols = 512;
  parallel_for(N, kCols, [&](int64_t i0, int64_t i1) {
    double sw[kCols] = {}, sb[kCols] = {};
    for (int64_t c = 0; c < chunks; ++c) {
      const double* pw = P + c * 2 * N;
      const double* pb = pw + N;
      for (int64_t i = i0; i < i1; ++i) {
        sw[i - i0] += pw[i];
        sb[i - i0] += pb[i];
      }
    }
    for (int64_t i = i0; i < i1; ++i) {
      if (DW != nullptr) DW[i] = static_cast<T>(sw[i - i0]);
      if (DB != nullptr) DB[i] = static_cast<T>(sb[i - i0]);
    }
  });
}

// ---- batch_norm ----

/// A running statistic blended in: r (1 - momentum) + v momentum in double, each product and the
/// sum rounded apart (the composite's float64 ops), rounded once to T.
template <class T>
T blend(T r, double v, double momentum) {
  const double kept = static_cast<double>(r) * (1.0 - momentum);
  const double added = v * momentum;
  return static_cast<T>(kept + added);
}

template <class T, class Xs>
void batch_norm_forward_typed(Xs* Y, T* Mean, T* Invstd, T* Var, const Xs* X, const T* W,
                              const T* B, int64_t N, int64_t C, int64_t S, double eps, T* RunMean,
                              T* RunVar, double momentum, double unbias) {
  const double count = static_cast<double>(N * S);
  parallel_for(C, std::max<int64_t>(1, kGrain / (N * S)), [&](int64_t c0, int64_t c1) {
    std::vector<T> buf;  // a 16-bit strip widened
    const auto strip = [&](int64_t n, int64_t c) {
      return widen(X + (n * C + c) * S, 1, S, S, buf);
    };
    for (int64_t c = c0; c < c1; ++c) {
      // mean: shifted by the channel's first element (see run_mean), strip by strip.
      const T k = static_cast<T>(X[c * S]);
      Lanes s1;
      for (int64_t n = 0; n < N; ++n) {
        const T* x = strip(n, c);  // (S)
        accumulate<T, kWide<T>>(s1, S, [&](int64_t i) { return x[i] - k; });
      }
      const T m = static_cast<T>(static_cast<double>(k) + s1.total() / count);
      // var: centred at the rounded mean, as the composite (the channel is in L2 by now).
      Lanes s2;
      for (int64_t n = 0; n < N; ++n) {
        const T* x = strip(n, c);
        accumulate<T, kWide<T>>(s2, S, [&](int64_t i) {
          const T d = x[i] - m;
          return d * d;
        });
      }
      const T var = static_cast<T>(s2.total() / count);
      const T is = rsqrt_eps(var, eps);
      Mean[c] = m;
      Invstd[c] = is;
      Var[c] = var;
      if (RunMean != nullptr) {
        RunMean[c] = blend(RunMean[c], static_cast<double>(m), momentum);
        const double unbiased = static_cast<double>(var) * unbias;
        RunVar[c] = blend(RunVar[c], unbiased, momentum);
      }
      const T scale = W != nullptr ? is * W[c] : is;
      const T shift = B != nullptr ? B[c] : T(0);
      for (int64_t n = 0; n < N; ++n) {
        const T* x = strip(n, c);  // (S)
        Xs* y = Y + (n * C + c) * S;
        for (int64_t i = 0; i < S; ++i) y[i] = convert<Xs>((x[i] - m) * scale + shift);
      }
    }
  });
}

template <class T, class Xs>
void batch_norm_backward_typed(Xs* DX, T* DW, T* DB, const Xs* DY, const Xs* X, const T* Mean,
                               const T* Invstd, const T* W, int64_t N, int64_t C, int64_t S) {
  const double count = static_cast<double>(N * S);
  parallel_for(C, std::max<int64_t>(1, kGrain / (N * S)), [&](int64_t c0, int64_t c1) {
    std::vector<T> xbuf, dybuf;  // 16-bit strips widened
    for (int64_t c = c0; c < c1; ++c) {
      const T m = Mean[c], is = Invstd[c];
      Lanes s1, s2;
      for (int64_t n = 0; n < N; ++n) {
        const T* dy = widen(DY + (n * C + c) * S, 1, S, S, dybuf);  // (S)
        const T* x = widen(X + (n * C + c) * S, 1, S, S, xbuf);
        accumulate2<T, kWide2<T>>(
            s1, s2, S, [&](int64_t i) { return dy[i]; },
            [&](int64_t i) { return dy[i] * (x[i] - m); });
      }
      const double sum_dy = s1.total();
      const double sum_dyx = s2.total() * static_cast<double>(is);  // sum(dy xhat)
      if (DW != nullptr) DW[c] = static_cast<T>(sum_dyx);
      if (DB != nullptr) DB[c] = static_cast<T>(sum_dy);
      if (DX == nullptr) continue;
      const T k1 = W != nullptr ? W[c] * is : is;
      const T a = static_cast<T>(sum_dy / count);
      const T k2 = static_cast<T>(sum_dyx / count) * is;  // mean(dy xhat) * invstd
      for (int64_t n = 0; n < N; ++n) {
        const T* dy = widen(DY + (n * C + c) * S, 1, S, S, dybuf);  // (S)
        const T* x = widen(X + (n * C + c) * S, 1, S, S, xbuf);
        Xs* dx = DX + (n * C + c) * S;
        for (int64_t i = 0; i < S; ++i) dx[i] = convert<Xs>(k1 * (dy[i] - a - (x[i] - m) * k2));
      }
    }
  });
}

template <class T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}
template <class T>
T* mut_ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

/// x (N, C, *) as N, C and S (the product of the rest); false when it holds no value.
inline bool channel_dims(const Tensor& x, int64_t& N, int64_t& C, int64_t& S) {
  N = x.size(0);
  C = x.size(1);
  S = N * C == 0 ? 0 : x.numel() / (N * C);
  return N * C * S != 0;
}

}  // namespace

void layer_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, double eps) {
  const int64_t M = mean.numel();
  if (M == 0) return;
  const int64_t N = x.numel() / M;
  visit_widened(x.dtype(), "layer_norm", [&](auto tag) {
    using Xs = typename decltype(tag)::type;
    using T = compute_t<Xs>;
    layer_norm_forward_typed<T, Xs>(y.data_ptr<Xs>(), mean.data_ptr<T>(), rstd.data_ptr<T>(),
                                    x.data_ptr<Xs>(), ptr_or_null<T>(weight), ptr_or_null<T>(bias),
                                    M, N, eps);
  });
}

void layer_norm_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                         const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                         const Tensor& weight) {
  const int64_t M = mean.numel();
  const int64_t N = M == 0 ? 0 : x.numel() / M;
  visit_widened(x.dtype(), "layer_norm_backward", [&](auto tag) {
    using Xs = typename decltype(tag)::type;
    using T = compute_t<Xs>;
    if (M == 0) {  // no rows: the parameter gradients are sums over nothing
      for (const Tensor* g : {&dweight, &dbias})
        if (g->defined()) std::fill_n(g->data_ptr<T>(), g->numel(), T(0));
      return;
    }
    layer_norm_backward_typed<T, Xs>(mut_ptr_or_null<Xs>(dx), mut_ptr_or_null<T>(dweight),
                                     mut_ptr_or_null<T>(dbias), dy.data_ptr<Xs>(), x.data_ptr<Xs>(),
                                     mean.data_ptr<T>(), rstd.data_ptr<T>(), ptr_or_null<T>(weight),
                                     M, N);
  });
}

void batch_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& invstd,
                        const Tensor& var, const Tensor& x, const Tensor& weight,
                        const Tensor& bias, double eps, const RunningStats& running) {
  int64_t N, C, S;
  if (!channel_dims(x, N, C, S)) return;
  visit_widened(x.dtype(), "batch_norm", [&](auto tag) {
    using Xs = typename decltype(tag)::type;
    using T = compute_t<Xs>;
    batch_norm_forward_typed<T, Xs>(
        y.data_ptr<Xs>(), mean.data_ptr<T>(), invstd.data_ptr<T>(), var.data_ptr<T>(),
        x.data_ptr<Xs>(), ptr_or_null<T>(weight), ptr_or_null<T>(bias), N, C, S, eps,
        mut_ptr_or_null<T>(running.mean), mut_ptr_or_null<T>(running.var), running.momentum,
        running.unbias);
  });
}

namespace {

/// batch_norm_eval, and with relu batch_norm_eval_relu (residual optional).
void batch_norm_eval_impl(const Tensor& y, const Tensor& x, const Tensor& mean, const Tensor& r,
                          const Tensor& weight, const Tensor& bias, const Tensor& residual,
                          bool relu) {
  int64_t N, C, S;
  if (!channel_dims(x, N, C, S)) return;
  visit_widened(x.dtype(), relu ? "batch_norm_relu" : "batch_norm", [&](auto tag) {
    using Xs = typename decltype(tag)::type;
    using T = compute_t<Xs>;
    const Xs* X = x.data_ptr<Xs>();
    const Xs* Res = ptr_or_null<Xs>(residual);
    Xs* Y = y.data_ptr<Xs>();
    const T* M = mean.data_ptr<T>();
    const T* R = r.data_ptr<T>();
    const T* W = ptr_or_null<T>(weight);
    const T* B = ptr_or_null<T>(bias);
    parallel_for(N * C, std::max<int64_t>(1, kGrain / S), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {  // one (n, c) strip of S values
        const int64_t c = p % C;
        const T m = M[c], rc = R[c], w = W != nullptr ? W[c] : T(1), b = B != nullptr ? B[c] : T(0);
        const Xs* xs = X + p * S;
        const Xs* rs = Res != nullptr ? Res + p * S : nullptr;
        Xs* ys = Y + p * S;
        for (int64_t i = 0; i < S; ++i) {
          // One statement per op: each rounded apart, as the composite's (x - m) * r * w + b.
          T v = static_cast<T>(xs[i]) - m;
          v = v * rc;
          if (W != nullptr) v = v * w;
          if (B != nullptr) v = v + b;
          if (relu) {  // the add and the relu as their ops round: y, then y + residual, in Xs
            v = static_cast<T>(convert<Xs>(v));
            if (rs != nullptr) v = static_cast<T>(convert<Xs>(v + static_cast<T>(rs[i])));
            if (v < T(0)) v = T(0);  // relu: NaN and -0 pass
          }
          ys[i] = convert<Xs>(v);
        }
      }
    });
  });
}

}  // namespace

void batch_norm_eval(const Tensor& y, const Tensor& x, const Tensor& mean, const Tensor& r,
                     const Tensor& weight, const Tensor& bias) {
  batch_norm_eval_impl(y, x, mean, r, weight, bias, Tensor(), false);
}

void batch_norm_eval_relu(const Tensor& z, const Tensor& x, const Tensor& mean, const Tensor& r,
                          const Tensor& weight, const Tensor& bias, const Tensor& residual) {
  batch_norm_eval_impl(z, x, mean, r, weight, bias, residual, true);
}

void batch_norm_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                         const Tensor& dy, const Tensor& x, const Tensor& mean,
                         const Tensor& invstd, const Tensor& weight) {
  int64_t N, C, S;
  if (!channel_dims(x, N, C, S)) return;
  visit_widened(x.dtype(), "batch_norm_backward", [&](auto tag) {
    using Xs = typename decltype(tag)::type;
    using T = compute_t<Xs>;
    batch_norm_backward_typed<T, Xs>(mut_ptr_or_null<Xs>(dx), mut_ptr_or_null<T>(dweight),
                                     mut_ptr_or_null<T>(dbias), dy.data_ptr<Xs>(), x.data_ptr<Xs>(),
                                     mean.data_ptr<T>(), invstd.data_ptr<T>(),
                                     ptr_or_null<T>(weight), N, C, S);
  });
}

}  // namespace ember::cpu
