// CPU cross-entropy of logits with class-index targets (log_softmax and the negative
// log-likelihood in one kernel), forward and first-order backward, float32 and float64 logits, and
// float16/bfloat16 logits computed in float32, on contiguous tensors. The composite
// nn::functional::cross_entropy_reference (log_softmax, gather, where, sums) is the reference; the
// terms follow its formula, with PyTorch's weight, ignore_index and label-smoothing rules.
//
// x (N, C, S): row r = n S + s holds the C logits x[n, :, s]; t = target[r], w the class weights
// (1 without), W = sum_c w_c, ls the label smoothing.
//   forward, per row:
//     m = max_c x_c; z = sum_c exp(x_c - m) (vec_math's exp for float; short blocks summed in T,
//     the blocks in double). m and log z are kept for the backward: the log-sum-exp
//     lse = m + log z rounded to T would lose log z beside a huge m, such as logits of 1e30.
//     nll = log z + (m - x_t); with ls > 0 also u = sum_c w_c (m - x_c) (terms >= 0: nothing
//     cancels); loss = (1 - ls) w_t nll + (ls / C) (W log z + u), in double, rounded once.
//   backward, one pass per row recomputing p_c = exp((x_c - m) - log z) (the composite's
//   log-probability, exponentiated), a = dloss[r]:
//     dx_c = a ((1 - ls) w_t + (ls / C) W) p_c - a (ls / C) w_c, then dx_t -= a (1 - ls) w_t.
//   Ignored rows get loss 0 and dx 0.
// Layouts: S == 1 walks each row along its contiguous classes (the max in kMaxLanes lanes of T;
// the sums in kLanes lanes of T over short blocks, flushed into kLanes double lanes combined by a
// fixed tree); S > 1 takes tiles of kTile adjacent columns s of one n and walks the classes in
// order, every step contiguous across the tile (the vector dimension), summing in double. Either
// way each row's arithmetic depends only on the shape and its values.
// Sums for "sum" / "mean": the rounded per-row losses and the weights w_t of the counted rows,
// each in double over fixed chunks of kSumChunk rows, the chunk partials added in chunk order.
// Tasks are rows, tiles or chunks, so results are bitwise independent of the thread count.
// 16-bit logits: each row (or tile) is widened to float into a per-task buffer and takes the float
// path, and the backward's float row (or tile) is rounded once into dx, so the results are bitwise
// those of the float32 kernel on x.to(float32) with dx rounded to x's dtype afterwards.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/cpu/vec_math.hpp"
#include "core/cpu/widen.hpp"
#include "core/dispatch.hpp"
#include "core/kernels.hpp"
#include "core/parallel.hpp"

namespace ember::cpu {
namespace {

constexpr int kLanes = 16;           // lanes of a contiguous row's sums
constexpr int64_t kBlockSteps = 8;   // terms per T lane before a flush into the double lanes
constexpr int kMaxLanes = 32;        // lanes of a contiguous row's max (hide the selects' latency)
constexpr int64_t kTile = 64;        // columns s per tile of the (N, C, S > 1) layout
constexpr int64_t kGrain = 32768;    // logits of work per parallel task
constexpr int64_t kSumChunk = 1024;  // rows per partial of the reduction sums

/// The class weights and smoothing shared by every row.
template <class T>
struct Rule {
  const T* W;    // (C) or nullptr: every class 1
  double W_sum;  // sum_c w_c (C without weights)
  int64_t C;
  int64_t ignore_index;
  double ls;  // label smoothing
  T weight(int64_t t) const { return W != nullptr ? W[t] : T(1); }
};

/// lanes[0] + ... + lanes[kLanes - 1] by a fixed tree of adjacent pairs.
inline double fold(double (&lanes)[kLanes]) {
  for (int w = kLanes / 2; w >= 1; w /= 2)
    for (int j = 0; j < w; ++j) lanes[j] += lanes[j + w];
  return lanes[0];
}

/// max_c x_c of a contiguous row in kMaxLanes lanes. A NaN may be skipped here; it reaches the
/// sum through exp(NaN - m) and makes the row NaN, as in the composite.
template <class T>
T row_max(const T* x, int64_t C) {
  T lane[kMaxLanes];
  for (int j = 0; j < kMaxLanes; ++j) lane[j] = -std::numeric_limits<T>::infinity();
  int64_t i = 0;
  for (; i + kMaxLanes <= C; i += kMaxLanes)
    for (int j = 0; j < kMaxLanes; ++j) lane[j] = x[i + j] > lane[j] ? x[i + j] : lane[j];
  for (int j = 0; i + j < C; ++j) lane[j] = x[i + j] > lane[j] ? x[i + j] : lane[j];
  T m = lane[0];
  for (int j = 1; j < kMaxLanes; ++j) m = lane[j] > m ? lane[j] : m;
  return m;
}

/// z = sum_c exp(x_c - m) of a contiguous row and, when kSmooth, u = sum_c w_c (m - x_c). Lane j
/// of kLanes takes the elements j, j + kLanes, ...: blocks of kBlockSteps * kLanes elements add
/// up in lanes of T (cheaper than converting every term), each block's lanes then go into double
/// lanes; the rest goes straight into the double lanes.
template <class T, bool kSmooth>
void row_sums(const T* x, const T* W, int64_t C, T m, double& z, double& u) {
  constexpr int64_t kBlock = kBlockSteps * kLanes;
  double lz[kLanes] = {}, lu[kLanes] = {};
  // w_c (m - x_c), or m - x_c without weights.
  auto gap = [&](int64_t c) { return W != nullptr ? W[c] * (m - x[c]) : m - x[c]; };
  int64_t i = 0;
  for (; i + kBlock <= C; i += kBlock) {
    T fz[kLanes], fu[kLanes];
    for (int j = 0; j < kLanes; ++j) fz[j] = vm::exp<T>(x[i + j] - m);  // vectorizes
    for (int64_t k = kLanes; k < kBlock; k += kLanes)
      for (int j = 0; j < kLanes; ++j) fz[j] += vm::exp<T>(x[i + k + j] - m);
    for (int j = 0; j < kLanes; ++j) lz[j] += static_cast<double>(fz[j]);
    if constexpr (kSmooth) {
      for (int j = 0; j < kLanes; ++j) fu[j] = gap(i + j);
      for (int64_t k = kLanes; k < kBlock; k += kLanes)
        for (int j = 0; j < kLanes; ++j) fu[j] += gap(i + k + j);
      for (int j = 0; j < kLanes; ++j) lu[j] += static_cast<double>(fu[j]);
    }
  }
  for (; i + kLanes <= C; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) lz[j] += static_cast<double>(vm::exp<T>(x[i + j] - m));
    if constexpr (kSmooth)
      for (int j = 0; j < kLanes; ++j) lu[j] += static_cast<double>(gap(i + j));
  }
  for (int j = 0; i + j < C; ++j) {
    lz[j] += static_cast<double>(vm::exp<T>(x[i + j] - m));
    if constexpr (kSmooth) lu[j] += static_cast<double>(gap(i + j));
  }
  z = fold(lz);
  u = kSmooth ? fold(lu) : 0.0;
}

/// A row's loss from its max m, sums z and u, and target logit x_t; writes m and log z.
template <class T>
T row_loss(const Rule<T>& rule, int64_t t, T m, double z, double u, T x_t, T& m_out, T& log_z_out) {
  const double log_z = std::log(z);
  m_out = m;
  log_z_out = static_cast<T>(log_z);
  if (t == rule.ignore_index) return T(0);
  const double w_t = static_cast<double>(rule.weight(t));
  const double nll = log_z + (static_cast<double>(m) - static_cast<double>(x_t));
  double loss = w_t * nll;
  if (rule.ls > 0.0) {
    loss =
        (1.0 - rule.ls) * loss + rule.ls / static_cast<double>(rule.C) * (rule.W_sum * log_z + u);
  }
  return static_cast<T>(loss);
}

// ---- forward ----

template <class T, class Xs, bool kSmooth>
void forward_rows(T* L, T* M, T* LZ, const Xs* X, const int64_t* Tgt, const Rule<T>& rule,
                  int64_t N) {
  const int64_t C = rule.C;
  parallel_for(N, std::max<int64_t>(1, kGrain / C), [&](int64_t r0, int64_t r1) {
    std::vector<T> buf;  // a 16-bit row widened
    for (int64_t r = r0; r < r1; ++r) {
      const T* x = widen(X + r * C, 1, C, C, buf);  // (C)
      const T m = row_max(x, C);
      double z, u;
      row_sums<T, kSmooth>(x, rule.W, C, m, z, u);
      const int64_t t = Tgt[r];
      const T x_t = t == rule.ignore_index ? T(0) : x[t];
      L[r] = row_loss(rule, t, m, z, u, x_t, M[r], LZ[r]);
    }
  });
}

template <class T, class Xs, bool kSmooth>
void forward_tiles(T* L, T* M, T* LZ, const Xs* X, const int64_t* Tgt, const Rule<T>& rule,
                   int64_t N, int64_t S) {
  const int64_t C = rule.C;
  const int64_t tiles = (S + kTile - 1) / kTile;
  parallel_for(N * tiles, std::max<int64_t>(1, kGrain / (C * kTile)), [&](int64_t u0, int64_t u1) {
    std::vector<T> buf;  // a 16-bit tile widened
    for (int64_t unit = u0; unit < u1; ++unit) {
      const int64_t n = unit / tiles, s0 = unit % tiles * kTile;
      const int64_t width = std::min(kTile, S - s0);
      // x0[c * ld + j]: class c of column s0 + j
      const int64_t ld = std::is_same_v<T, Xs> ? S : width;
      const T* x0 = widen(X + n * C * S + s0, C, width, S, buf);
      T m[kTile];
      double z[kTile] = {}, u[kTile] = {};
      for (int64_t j = 0; j < width; ++j) m[j] = -std::numeric_limits<T>::infinity();
      for (int64_t c = 0; c < C; ++c) {
        const T* xc = x0 + c * ld;  // (width)
        for (int64_t j = 0; j < width; ++j) m[j] = xc[j] > m[j] ? xc[j] : m[j];
      }
      for (int64_t c = 0; c < C; ++c) {
        const T* xc = x0 + c * ld;
        for (int64_t j = 0; j < width; ++j) z[j] += static_cast<double>(vm::exp<T>(xc[j] - m[j]));
        if constexpr (kSmooth) {
          const T wc = rule.weight(c);
          for (int64_t j = 0; j < width; ++j) u[j] += static_cast<double>(wc * (m[j] - xc[j]));
        }
      }
      const int64_t r0 = n * S + s0;
      for (int64_t j = 0; j < width; ++j) {
        const int64_t t = Tgt[r0 + j];
        const T x_t = t == rule.ignore_index ? T(0) : x0[t * ld + j];
        L[r0 + j] = row_loss(rule, t, m[j], z[j], u[j], x_t, M[r0 + j], LZ[r0 + j]);
      }
    }
  });
}

/// sums[0] = sum of L[r], sums[1] = sum of w_t over the rows not ignored; fixed chunks.
template <class T>
void reduction_sums(double* sums, const T* L, const int64_t* Tgt, const Rule<T>& rule, int64_t R) {
  const int64_t chunks = (R + kSumChunk - 1) / kSumChunk;
  std::vector<double> part(static_cast<size_t>(2 * chunks));  // (chunks, 2)
  parallel_for(chunks, std::max<int64_t>(1, kGrain / kSumChunk), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double sl = 0.0, sw = 0.0;
      for (int64_t r = c * kSumChunk; r < std::min(R, (c + 1) * kSumChunk); ++r) {
        sl += static_cast<double>(L[r]);
        if (Tgt[r] != rule.ignore_index) sw += static_cast<double>(rule.weight(Tgt[r]));
      }
      part[static_cast<size_t>(2 * c)] = sl;
      part[static_cast<size_t>(2 * c + 1)] = sw;
    }
  });
  double sl = 0.0, sw = 0.0;
  for (int64_t c = 0; c < chunks; ++c) {
    sl += part[static_cast<size_t>(2 * c)];
    sw += part[static_cast<size_t>(2 * c + 1)];
  }
  sums[0] = sl;
  sums[1] = sw;
}

// ---- backward ----

/// The coefficients of a row's gradient: dx_c = k_p p_c - k_w w_c, dx_t -= k_t.
template <class T>
struct RowGrad {
  T k_p, k_w, k_t;
};

template <class T>
RowGrad<T> row_grad(const Rule<T>& rule, int64_t t, T a) {
  const double ad = static_cast<double>(a);
  const double w_t = static_cast<double>(rule.weight(t));
  const double k_s = ad * rule.ls / static_cast<double>(rule.C);
  return {static_cast<T>(
              ad * ((1.0 - rule.ls) * w_t + rule.ls / static_cast<double>(rule.C) * rule.W_sum)),
          static_cast<T>(k_s), static_cast<T>(ad * (1.0 - rule.ls) * w_t)};
}

template <class T, class Xs>
void backward_rows(Xs* DX, const T* DL, bool per_row, const Xs* X, const int64_t* Tgt, const T* M,
                   const T* LZ, const Rule<T>& rule, int64_t N) {
  const int64_t C = rule.C;
  const T* W = rule.W;
  parallel_for(N, std::max<int64_t>(1, kGrain / C), [&](int64_t r0, int64_t r1) {
    std::vector<T> xbuf, dbuf;  // a 16-bit row widened, its gradient before rounding
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t t = Tgt[r];
      if (t == rule.ignore_index) {
        std::fill_n(DX + r * C, C, Xs(0));
        continue;
      }
      const T* x = widen(X + r * C, 1, C, C, xbuf);  // (C)
      int64_t ld;
      T* dx = compute_out(DX + r * C, 1, C, C, dbuf, ld);
      const RowGrad<T> g = row_grad(rule, t, DL[per_row ? r : 0]);
      const T m = M[r], lz = LZ[r];
      if (rule.ls == 0.0) {
        for (int64_t c = 0; c < C; ++c) dx[c] = g.k_p * vm::exp<T>((x[c] - m) - lz);  // vectorizes
      } else if (W != nullptr) {
        for (int64_t c = 0; c < C; ++c) dx[c] = g.k_p * vm::exp<T>((x[c] - m) - lz) - g.k_w * W[c];
      } else {
        for (int64_t c = 0; c < C; ++c) dx[c] = g.k_p * vm::exp<T>((x[c] - m) - lz) - g.k_w;
      }
      dx[t] -= g.k_t;
      narrow_into(DX + r * C, 1, C, C, dbuf);
    }
  });
}

template <class T, class Xs>
void backward_tiles(Xs* DX, const T* DL, bool per_row, const Xs* X, const int64_t* Tgt, const T* M,
                    const T* LZ, const Rule<T>& rule, int64_t N, int64_t S) {
  const int64_t C = rule.C;
  const int64_t tiles = (S + kTile - 1) / kTile;
  parallel_for(N * tiles, std::max<int64_t>(1, kGrain / (C * kTile)), [&](int64_t u0, int64_t u1) {
    std::vector<T> xbuf, dbuf;  // a 16-bit tile widened, its gradient before rounding
    for (int64_t unit = u0; unit < u1; ++unit) {
      const int64_t n = unit / tiles, s0 = unit % tiles * kTile;
      const int64_t width = std::min(kTile, S - s0);
      const int64_t r0 = n * S + s0;
      // x0[c * ld + j], dx0[c * ld + j]: class c of column s0 + j
      const int64_t ld = std::is_same_v<T, Xs> ? S : width;
      const T* x0 = widen(X + n * C * S + s0, C, width, S, xbuf);
      int64_t ld_dx;
      T* dx0 = compute_out(DX + n * C * S + s0, C, width, S, dbuf, ld_dx);
      T k_p[kTile], k_w[kTile], k_t[kTile], m[kTile], lz[kTile];
      for (int64_t j = 0; j < width; ++j) {
        const int64_t t = Tgt[r0 + j];
        const RowGrad<T> g = t == rule.ignore_index ? RowGrad<T>{T(0), T(0), T(0)}
                                                    : row_grad(rule, t, DL[per_row ? r0 + j : 0]);
        k_p[j] = g.k_p;
        k_w[j] = g.k_w;
        k_t[j] = g.k_t;
        m[j] = M[r0 + j];
        lz[j] = LZ[r0 + j];
      }
      for (int64_t c = 0; c < C; ++c) {
        const T* xc = x0 + c * ld;  // (width)
        T* dxc = dx0 + c * ld_dx;
        const T wc = rule.weight(c);
        for (int64_t j = 0; j < width; ++j)
          dxc[j] = k_p[j] * vm::exp<T>((xc[j] - m[j]) - lz[j]) - k_w[j] * wc;
      }
      for (int64_t j = 0; j < width; ++j) {
        const int64_t t = Tgt[r0 + j];
        if (t == rule.ignore_index) {
          // Exactly 0, even where exp(x - lse) is not finite.
          for (int64_t c = 0; c < C; ++c) dx0[c * ld_dx + j] = T(0);
          continue;
        }
        dx0[t * ld_dx + j] -= k_t[j];
      }
      narrow_into(DX + n * C * S + s0, C, width, S, dbuf);
    }
  });
}

/// N, C, S of x (N, C, *) and the rule of weight and label smoothing.
template <class T>
Rule<T> make_rule(const Tensor& x, const Tensor& weight, int64_t ignore_index, double ls) {
  Rule<T> rule{weight.defined() ? weight.data_ptr<T>() : nullptr, 0.0, x.size(1), ignore_index, ls};
  if (rule.W != nullptr) {
    for (int64_t c = 0; c < rule.C; ++c) rule.W_sum += static_cast<double>(rule.W[c]);
  } else {
    rule.W_sum = static_cast<double>(rule.C);
  }
  return rule;
}

}  // namespace

void cross_entropy_forward(const Tensor& loss, const Tensor& max, const Tensor& log_sum,
                           const Tensor& sums, const Tensor& x, const Tensor& target,
                           const Tensor& weight, int64_t ignore_index, double label_smoothing) {
  const int64_t N = x.size(0), C = x.size(1);
  const int64_t R = target.numel();  // N * S rows
  if (R == 0 || C == 0) {
    if (sums.defined()) std::fill_n(sums.data_ptr<double>(), 2, 0.0);
    return;
  }
  const int64_t S = R / N;
  visit_widened(x.dtype(), "cross_entropy", [&](auto tag) {
    using Xs = typename decltype(tag)::type;
    using T = compute_t<Xs>;
    const Rule<T> rule = make_rule<T>(x, weight, ignore_index, label_smoothing);
    T* L = loss.data_ptr<T>();
    T* M = max.data_ptr<T>();
    T* LZ = log_sum.data_ptr<T>();
    const Xs* X = x.data_ptr<Xs>();
    const int64_t* Tgt = target.data_ptr<int64_t>();
    const bool smooth = label_smoothing > 0.0;
    if (S == 1) {
      smooth ? forward_rows<T, Xs, true>(L, M, LZ, X, Tgt, rule, N)
             : forward_rows<T, Xs, false>(L, M, LZ, X, Tgt, rule, N);
    } else {
      smooth ? forward_tiles<T, Xs, true>(L, M, LZ, X, Tgt, rule, N, S)
             : forward_tiles<T, Xs, false>(L, M, LZ, X, Tgt, rule, N, S);
    }
    if (sums.defined()) reduction_sums(sums.data_ptr<double>(), L, Tgt, rule, R);
  });
}

void cross_entropy_backward(const Tensor& dx, const Tensor& dloss, const Tensor& x,
                            const Tensor& target, const Tensor& weight, const Tensor& max,
                            const Tensor& log_sum, int64_t ignore_index, double label_smoothing) {
  const int64_t N = x.size(0), C = x.size(1);
  const int64_t R = target.numel();
  if (R == 0 || C == 0) return;
  const int64_t S = R / N;
  const bool per_row = dloss.numel() == R && R > 1;
  visit_widened(x.dtype(), "cross_entropy_backward", [&](auto tag) {
    using Xs = typename decltype(tag)::type;
    using T = compute_t<Xs>;
    const Rule<T> rule = make_rule<T>(x, weight, ignore_index, label_smoothing);
    Xs* DX = dx.data_ptr<Xs>();
    const T* DL = dloss.data_ptr<T>();
    const Xs* X = x.data_ptr<Xs>();
    const int64_t* Tgt = target.data_ptr<int64_t>();
    const T* M = max.data_ptr<T>();
    const T* LZ = log_sum.data_ptr<T>();
    if (S == 1) {
      backward_rows(DX, DL, per_row, X, Tgt, M, LZ, rule, N);
    } else {
      backward_tiles(DX, DL, per_row, X, Tgt, M, LZ, rule, N, S);
    }
  });
}

}  // namespace ember::cpu
