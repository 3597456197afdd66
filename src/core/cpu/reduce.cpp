// CPU reduction kernels: reduce (sum, prod, max, min, all, any over any set of dims), arg_reduce
// (max/min with the index of the first extremum along one dim), cumsum and softmax.
//
// Determinism. Every output of `reduce` is computed in one canonical order that depends only on
// the number K of reduced elements, never on strides, layout or the thread count:
//   - the reduced elements, in row-major order of the reduced dims, are cut into chunks of
//     kChunk = 4096 (boundaries depend only on K);
//   - inside a chunk, element k goes to lane k % L of L accumulators, each accumulating in order
//     (the lanes are what lets the contiguous loop vectorize); the lanes are combined by a fixed
//     tree of adjacent pairs, for L = 8 ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7));
//   - the chunk partials are combined left to right.
// L is 8 for sum and prod; max, min, all and any do not depend on the order at all and use 32
// lanes, a width GCC vectorizes for their selects. Sums and products of float16, bfloat16,
// float32 and float64 accumulate in double (so float32 results are the rounded double sums, and
// a million ones sum to exactly 1e6), those of integers and bool in int64 (wrapping); max/min
// accumulate in the compute type, all/any in bool. The accumulator is converted to out's dtype
// once, at the end.
//
// Two loop shapes run this order: a row per output (reduced elements unit-stride or strided), and
// a block of W adjacent outputs that are unit-stride in x while the reduced elements are not (sum
// over dim 0 of a row-major matrix): the block sweeps x row by row in memory order, keeping the
// L lanes of its W outputs (W sized to fit L2 and the thread count; it never changes the
// arithmetic). Work is spread over outputs, or, when there are few outputs and long reductions,
// over (output, chunk) pairs whose partials go into a table combined in chunk order afterwards.
// Either way each output gets the canonical arithmetic, so results are bitwise identical for any
// strides and thread count. Reduced dims that do not merge into one strided range (dims 0 and 2
// of a contiguous 3-D tensor) are first gathered into a contiguous copy, which keeps their order.
//
// arg_reduce and cumsum scan each line sequentially (cumsum in double / int64); softmax gathers a
// line into a buffer in the compute type, subtracts the max, sums the exponentials in double in
// order, and scales by the reciprocal of the sum (log_softmax: subtracts its log).
// Lines are spread over threads; each line's arithmetic is sequential, hence deterministic.
#include <cmath>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "core/cpu/loops.hpp"
#include "core/cpu/vec_math.hpp"
#include "core/dispatch.hpp"
#include "core/kernels.hpp"
#include "core/parallel.hpp"

namespace ember::cpu {

namespace {

constexpr int64_t kChunk = 4096;  // reduced elements per partial; a multiple of every lane count
constexpr int64_t kBlockBytes = 256 * 1024;  // lane storage of the block shape (fits L2)
constexpr int64_t kGrain = 32768;            // elements of work per parallel task
constexpr int64_t kFewUnits = 64;            // below this many units, split the reduced range too

// ---- accumulators ----

template <class A>
bool is_nan(A v) {
  if constexpr (std::is_floating_point_v<A>)
    return v != v;  // NOLINT: std::isnan does not vectorize everywhere
  else
    return false;
}

// Integer accumulators wrap like PyTorch's int64 arithmetic (unsigned math avoids signed UB).
template <class A>
A wrap_add(A a, A b) {
  if constexpr (std::is_integral_v<A>)
    return static_cast<A>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
  else
    return a + b;
}
template <class A>
A wrap_mul(A a, A b) {
  if constexpr (std::is_integral_v<A>)
    return static_cast<A>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
  else
    return a * b;
}

// Each op names its lane count: 8 for sums and products, whose result depends on the order; 32
// for the order-free ones (max, min, all, any), a width GCC vectorizes for their selects.
template <class A>
struct SumOp {
  static constexpr int64_t kLanes = 8;
  static A identity() { return A(0); }
  static A apply(A a, A b) { return wrap_add(a, b); }
};
template <class A>
struct ProdOp {
  static constexpr int64_t kLanes = 8;
  static A identity() { return A(1); }
  static A apply(A a, A b) { return wrap_mul(a, b); }
};
// NaN counts as the maximum (and the minimum): once an accumulator holds NaN it keeps it.
template <class A>
struct MaxOp {
  static constexpr int64_t kLanes = 32;
  static A identity() {
    if constexpr (std::is_floating_point_v<A>)
      return -std::numeric_limits<A>::infinity();
    else
      return std::numeric_limits<A>::lowest();
  }
  static A apply(A a, A b) {
    const A m = b > a ? b : a;
    return is_nan(b) ? b : m;
  }
};
template <class A>
struct MinOp {
  static constexpr int64_t kLanes = 32;
  static A identity() {
    if constexpr (std::is_floating_point_v<A>)
      return std::numeric_limits<A>::infinity();
    else
      return std::numeric_limits<A>::max();
  }
  static A apply(A a, A b) {
    const A m = b < a ? b : a;
    return is_nan(b) ? b : m;
  }
};
struct AllOp {
  static constexpr int64_t kLanes = 32;
  static bool identity() { return true; }
  static bool apply(bool a, bool b) { return a && b; }
};
struct AnyOp {
  static constexpr int64_t kLanes = 32;
  static bool identity() { return false; }
  static bool apply(bool a, bool b) { return a || b; }
};

/// The accumulator of sums and products: double for floating inputs, int64 otherwise.
template <class T>
using sum_acc_t = std::conditional_t<std::is_floating_point_v<compute_t<T>>, double, int64_t>;

/// The fixed tree over the lanes: adjacent pairs, level by level (for 8 lanes
/// ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))).
template <class A, class Op>
A combine_lanes(A* l) {
  for (int64_t width = Op::kLanes; width > 1; width /= 2)
    for (int64_t j = 0; j < width / 2; ++j) l[j] = Op::apply(l[2 * j], l[2 * j + 1]);
  return l[0];
}

/// Writes an accumulator into an element of out's dtype.
template <class A>
using StoreFn = void (*)(char*, A);
template <class A>
StoreFn<A> store_for(DType dtype) {
  return visit_dtype(dtype, [](auto tag) -> StoreFn<A> {
    using O = typename decltype(tag)::type;
    return [](char* p, A v) { *reinterpret_cast<O*>(p) = convert<O>(v); };
  });
}

/// Element offsets of position i (row-major) of a coalesced layout, for each operand.
template <int N>
std::array<int64_t, N> offsets_of(int64_t i, const StridedLayout<N>& l) {
  std::array<int64_t, N> off{};
  for (int64_t d = static_cast<int64_t>(l.sizes.size()) - 1; d >= 0 && i > 0; --d) {
    const int64_t idx = i % l.sizes[d];
    i /= l.sizes[d];
    for (int k = 0; k < N; ++k) off[k] += idx * l.strides[k][d];
  }
  return off;
}

// ---- the canonical chunk, in two loop shapes ----

/// l[o] = op(l[o], q[o]) for o < w: the vectorized step of both loop shapes.
template <class T, class A, class Op>
inline void accumulate_row(A* __restrict l, const T* __restrict q, int64_t w) {
  for (int64_t o = 0; o < w; ++o) l[o] = Op::apply(l[o], convert<A>(q[o]));
}

/// One chunk of one output: n elements p[0], p[s], ..., element k in lane k % kLanes, lanes
/// combined by the tree.
template <class T, class A, class Op>
A chunk_row(const T* p, int64_t s, int64_t n) {
  constexpr int64_t kLanes = Op::kLanes;
  A lanes[kLanes];
  for (A& l : lanes) l = Op::identity();
  int64_t i = 0;
  if (s == 1) {
    for (; i + kLanes <= n; i += kLanes) accumulate_row<T, A, Op>(lanes, p + i, kLanes);
  } else {
    for (; i + kLanes <= n; i += kLanes)
      for (int64_t j = 0; j < kLanes; ++j)
        lanes[j] = Op::apply(lanes[j], convert<A>(p[(i + j) * s]));
  }
  for (; i < n; ++i) lanes[i % kLanes] = Op::apply(lanes[i % kLanes], convert<A>(p[i * s]));
  return combine_lanes<A, Op>(lanes);
}

/// One chunk of w adjacent outputs: output o reads p[k * s + o] for k < n. Same lane assignment
/// and tree as chunk_row; rows of x are swept in memory order, vectorized across the outputs.
template <class T, class A, class Op>
void chunk_block(const T* p, int64_t s, int64_t n, int64_t w, A* res) {
  constexpr int64_t kLanes = Op::kLanes;
  A small[512];  // narrow blocks (many short rows) skip the heap
  std::unique_ptr<A[]> big;
  A* lanes = small;  // (kLanes, w)
  if (kLanes * w > 512) {
    big.reset(new A[static_cast<size_t>(kLanes * w)]);
    lanes = big.get();
  }
  for (int64_t i = 0; i < kLanes * w; ++i) lanes[i] = Op::identity();
  for (int64_t k = 0; k < n; ++k) accumulate_row<T, A, Op>(&lanes[(k % kLanes) * w], p + k * s, w);
  for (int64_t o = 0; o < w; ++o) {
    A col[kLanes];
    for (int64_t j = 0; j < kLanes; ++j) col[j] = lanes[j * w + o];
    res[o] = combine_lanes<A, Op>(col);
  }
}

/// Runs U units of up to W outputs each over C = ceil(K / kChunk) chunks. chunk(u, c, res) fills
/// res[0, W) with the partials of chunk c; write(u, total) stores the combined results.
template <class A, class Op, class ChunkFn, class WriteFn>
void run_units(int64_t U, int64_t W, int64_t K, const ChunkFn& chunk, const WriteFn& write) {
  const int64_t C = std::max<int64_t>(1, (K + kChunk - 1) / kChunk);
  auto init = [W](A* v) {
    for (int64_t o = 0; o < W; ++o) v[o] = Op::identity();
  };
  if (C == 1 || U >= kFewUnits) {
    // Each task owns whole outputs and combines their chunks in order.
    const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, K * W));
    parallel_for(U, grain, [&](int64_t b, int64_t e) {
      std::unique_ptr<A[]> total(new A[W]), part(new A[W]);
      init(part.get());
      for (int64_t u = b; u < e; ++u) {
        init(total.get());
        for (int64_t c = 0; c < C; ++c) {
          chunk(u, c, part.get());
          for (int64_t o = 0; o < W; ++o) total[o] = Op::apply(total[o], part[o]);
        }
        write(u, total.get());
      }
    });
    return;
  }
  // Few outputs, long reductions: chunks run in parallel into a table of partials, which is then
  // combined in chunk order.
  std::unique_ptr<A[]> table(new A[static_cast<size_t>(U * C * W)]);
  for (int64_t i = 0; i < U * C * W; ++i) table[i] = Op::identity();
  const int64_t grain = std::max<int64_t>(1, kGrain / (std::min(K, kChunk) * W));
  parallel_for(U * C, grain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) chunk(i / C, i % C, &table[i * W]);
  });
  std::unique_ptr<A[]> total(new A[W]);
  for (int64_t u = 0; u < U; ++u) {
    init(total.get());
    for (int64_t c = 0; c < C; ++c)
      for (int64_t o = 0; o < W; ++o) total[o] = Op::apply(total[o], table[(u * C + c) * W + o]);
    write(u, total.get());
  }
}

// ---- reduce ----

/// Outputs (kept dims, coalesced; strides[0] of out, strides[1] of x, in elements) and the
/// reduced range (K elements at stride k_stride in x).
struct ReduceLayout {
  StridedLayout<2> kept;
  int64_t M = 1, K = 1, k_stride = 0;
};

/// False when the reduced dims do not merge into one strided range.
bool plan_reduce(const Tensor& out, const Tensor& x, const std::vector<bool>& reduced,
                 ReduceLayout& plan) {
  std::vector<int64_t> rs, rst, ks, kos, kxs;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (reduced[d]) {
      rs.push_back(x.sizes()[d]);
      rst.push_back(x.strides()[d]);
    } else {
      ks.push_back(x.sizes()[d]);
      kos.push_back(out.strides()[d]);
      kxs.push_back(x.strides()[d]);
    }
  }
  plan.K = 1;
  for (int64_t s : rs) plan.K *= s;
  plan.M = 1;
  for (int64_t s : ks) plan.M *= s;
  plan.k_stride = 0;
  if (plan.K > 1) {
    StridedLayout<1> r = coalesce<1>(rs, {rst});
    if (r.sizes.size() != 1) return false;
    plan.k_stride = r.strides[0][0];
  }
  if (plan.M > 0) plan.kept = coalesce<2>(ks, {kos, kxs});
  return true;
}

template <class T, class A, class Op>
void reduce_typed(const Tensor& out, const Tensor& x, const ReduceLayout& plan) {
  const T* xp = static_cast<const T*>(x.data_ptr());
  char* op = byte_ptr(out);
  const int64_t osize = static_cast<int64_t>(out.element_size());
  const StoreFn<A> store = store_for<A>(out.dtype());
  const StridedLayout<2>& kl = plan.kept;
  const int64_t K = plan.K, ks = plan.k_stride;
  const bool block = K > 1 && ks != 1 && kl.strides[1].back() == 1;
  if (!block) {
    auto chunk = [&](int64_t u, int64_t c, A* res) {
      const std::array<int64_t, 2> off = offsets_of<2>(u, kl);
      const int64_t start = c * kChunk;
      res[0] = chunk_row<T, A, Op>(xp + off[1] + start * ks, ks, std::min(kChunk, K - start));
    };
    auto write = [&](int64_t u, const A* total) {
      store(op + offsets_of<2>(u, kl)[0] * osize, total[0]);
    };
    run_units<A, Op>(plan.M, 1, K, chunk, write);
    return;
  }
  // Block shape: rows of I outputs that are unit-stride in x, cut into blocks of W. The width
  // never changes the arithmetic, so it is free to fit the cache and the thread count.
  const int64_t I = kl.sizes.back(), rows = plan.M / I;
  int64_t W = std::min<int64_t>(I, kBlockBytes / (Op::kLanes * static_cast<int64_t>(sizeof(A))));
  const int64_t threads = get_num_threads();
  if (rows * ((I + W - 1) / W) < threads) W = std::max<int64_t>(16, (I + threads - 1) / threads);
  W = std::min(W, I);
  const int64_t nb = (I + W - 1) / W;
  const int64_t out_inner = kl.strides[0].back();
  auto chunk = [&](int64_t u, int64_t c, A* res) {
    const int64_t first = (u % nb) * W;
    const std::array<int64_t, 2> off = offsets_of<2>((u / nb) * I + first, kl);
    const int64_t start = c * kChunk;
    chunk_block<T, A, Op>(xp + off[1] + start * ks, ks, std::min(kChunk, K - start),
                          std::min(W, I - first), res);
  };
  auto write = [&](int64_t u, const A* total) {
    const int64_t first = (u % nb) * W;
    const std::array<int64_t, 2> off = offsets_of<2>((u / nb) * I + first, kl);
    const int64_t w = std::min(W, I - first);
    for (int64_t o = 0; o < w; ++o) store(op + (off[0] + o * out_inner) * osize, total[o]);
  };
  run_units<A, Op>(rows * nb, W, K, chunk, write);
}

// ---- lines along one dim (arg_reduce, cumsum, softmax) ----

/// Calls f(offsets, L) for every line along `dim` of a tensor of shape `sizes`; offsets are the
/// element offsets of the line's first element in each of the N operands.
template <int N, class F>
void for_each_line(IntArrayRef sizes, int64_t dim, const std::array<const Tensor*, N>& ts,
                   const F& f) {
  std::vector<int64_t> other;
  std::array<std::vector<int64_t>, N> strides;
  int64_t lines = 1;
  for (int64_t d = 0; d < static_cast<int64_t>(sizes.size()); ++d) {
    if (d == dim) continue;
    other.push_back(sizes[d]);
    lines *= sizes[d];
    for (int k = 0; k < N; ++k) strides[k].push_back(ts[k]->strides()[d]);
  }
  const int64_t L = sizes[dim];
  if (lines == 0 || L == 0) return;
  const StridedLayout<N> l = coalesce<N>(other, strides);
  parallel_for(lines, std::max<int64_t>(1, kGrain / L), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) f(offsets_of<N>(i, l), L);
  });
}

/// Softmax (or log-softmax) of one line of L elements: gathered into a buffer in the compute type,
/// shifted by the max, exponentials (vec_math's) summed in double in eight fixed lanes.
template <class T>
void softmax_line(T* o, int64_t os, const T* p, int64_t xs, int64_t L, bool log) {
  using C = compute_t<T>;
  thread_local std::vector<C> buf;
  buf.resize(static_cast<size_t>(L));
  C* b = buf.data();
  for (int64_t i = 0; i < L; ++i) b[i] = convert<C>(p[i * xs]);
  const C m = chunk_row<C, C, MaxOp<C>>(b, 1, L);
  thread_local std::vector<C> exps;
  exps.resize(static_cast<size_t>(L));
  C* e = exps.data();
  for (int64_t i = 0; i < L; ++i) {  // vectorizes (vec_math's exp is branch-free)
    b[i] -= m;
    e[i] = vm::exp(b[i]);
  }
  // Eight interleaved double partial sums (lane i % 8) combined in a fixed order: vectorizes, and
  // the result still depends only on L and the values.
  double lane[8] = {};
  int64_t i8 = 0;
  for (; i8 + 8 <= L; i8 += 8)
    for (int j = 0; j < 8; ++j) lane[j] += static_cast<double>(e[i8 + j]);
  for (int64_t i = i8; i < L; ++i) lane[i - i8] += static_cast<double>(e[i]);
  const double s = ((lane[0] + lane[4]) + (lane[1] + lane[5])) +
                   ((lane[2] + lane[6]) + (lane[3] + lane[7]));
  const C k = log ? static_cast<C>(std::log(s)) : static_cast<C>(1.0 / s);
  if (log) {
    for (int64_t i = 0; i < L; ++i) o[i * os] = convert<T>(b[i] - k);
  } else {
    for (int64_t i = 0; i < L; ++i) o[i * os] = convert<T>(e[i] * k);
  }
}

void reduce_planned(const Tensor& out, const Tensor& x, const ReduceLayout& plan, ReduceOp op) {
  if (plan.M == 0) return;
  if (plan.K == 1) {  // nothing to combine: a converting copy (x and out share the keepdim shape)
    copy(out, x);
    return;
  }
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using S = sum_acc_t<T>;
    using C = compute_t<T>;
    switch (op) {
      case ReduceOp::Sum:
        return reduce_typed<T, S, SumOp<S>>(out, x, plan);
      case ReduceOp::Prod:
        return reduce_typed<T, S, ProdOp<S>>(out, x, plan);
      case ReduceOp::Max:
        return reduce_typed<T, C, MaxOp<C>>(out, x, plan);
      case ReduceOp::Min:
        return reduce_typed<T, C, MinOp<C>>(out, x, plan);
      case ReduceOp::All:
        return reduce_typed<T, bool, AllOp>(out, x, plan);
      case ReduceOp::Any:
        return reduce_typed<T, bool, AnyOp>(out, x, plan);
    }
  });
}

}  // namespace

void reduce(const Tensor& out, const Tensor& x, IntArrayRef dims, ReduceOp op) {
  std::vector<bool> reduced(static_cast<size_t>(x.dim()), false);
  for (int64_t d : dims) reduced[d] = true;
  ReduceLayout plan;
  if (plan_reduce(out, x, reduced, plan)) {
    reduce_planned(out, x, plan, op);
    return;
  }
  // Gather: kept dims first, reduced dims last, contiguous; out permuted alike. The reduced
  // elements keep their row-major order, so the result is the same as without the copy.
  std::vector<int64_t> perm;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (!reduced[d]) perm.push_back(d);
  for (int64_t d = 0; d < x.dim(); ++d)
    if (reduced[d]) perm.push_back(d);
  const Tensor xg = x.permute(perm).contiguous();
  const Tensor out_p = out.permute(perm);
  std::vector<bool> tail(reduced.size(), false);
  for (size_t i = reduced.size() - dims.size(); i < reduced.size(); ++i) tail[i] = true;
  plan_reduce(out_p, xg, tail, plan);
  reduce_planned(out_p, xg, plan, op);
}

void arg_reduce(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim,
                bool is_max) {
  const int64_t xs = x.strides()[dim];
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const T* xp = static_cast<const T*>(x.data_ptr());
    T* vp = static_cast<T*>(values.data_ptr());
    int64_t* ip = static_cast<int64_t*>(indices.data_ptr());
    // Strictly better only, so ties keep the first occurrence; the first NaN wins for good.
    auto better = [is_max](C v, C best) {
      if (is_nan(best)) return false;
      if (is_nan(v)) return true;
      return is_max ? v > best : v < best;
    };
    for_each_line<3>(x.sizes(), dim, {&x, &values, &indices},
                     [&](const std::array<int64_t, 3>& off, int64_t L) {
                       const T* p = xp + off[0];
                       int64_t bi = 0;
                       C best = convert<C>(p[0]);
                       for (int64_t i = 1; i < L; ++i) {
                         const C v = convert<C>(p[i * xs]);
                         if (better(v, best)) {
                           best = v;
                           bi = i;
                         }
                       }
                       vp[off[1]] = p[bi * xs];
                       ip[off[2]] = bi;
                     });
  });
}

void cumsum(const Tensor& out, const Tensor& x, int64_t dim) {
  const int64_t xs = x.strides()[dim], os = out.strides()[dim];
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = sum_acc_t<T>;
    const T* xp = static_cast<const T*>(x.data_ptr());
    T* op = static_cast<T*>(out.data_ptr());
    for_each_line<2>(x.sizes(), dim, {&out, &x}, [&](const std::array<int64_t, 2>& off, int64_t L) {
      T* o = op + off[0];
      const T* p = xp + off[1];
      A acc = A(0);
      for (int64_t i = 0; i < L; ++i) {
        acc = wrap_add(acc, convert<A>(p[i * xs]));
        o[i * os] = convert<T>(acc);
      }
    });
  });
}

void softmax(const Tensor& out, const Tensor& x, int64_t dim, bool log) {
  const int64_t xs = x.strides()[dim], os = out.strides()[dim];
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_floating_point_v<compute_t<T>>) {
      const T* xp = static_cast<const T*>(x.data_ptr());
      T* op = static_cast<T*>(out.data_ptr());
      for_each_line<2>(x.sizes(), dim, {&out, &x},
                       [&](const std::array<int64_t, 2>& off, int64_t L) {
                         softmax_line<T>(op + off[0], os, xp + off[1], xs, L, log);
                       });
    } else {
      throw DTypeError(detail::str_cat("[softmax] expected a floating tensor, got ", x.dtype()));
    }
  });
}

}  // namespace ember::cpu
