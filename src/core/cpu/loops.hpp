// The one strided iterator every CPU kernel builds on.
//
// for_each_row<N>(shape, ptrs, strides, f) walks a shape with N operands (operand 0 is usually
// the output), calling f(ptrs, inner_strides, n) once per innermost row with byte pointers and
// byte strides. Dimensions that are jointly contiguous are merged first, so a contiguous tensor
// is one row; rows are spread over threads when the tensor is large.
//
// map<Out, In...>(out, f, in...) is the elementwise form: out[i] = f(in[i]...), with a contiguous
// fast path the compiler vectorizes.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <tuple>
#include <utility>
#include <vector>

#include "core/parallel.hpp"
#include "core/tensor_impl.hpp"

namespace ember::cpu {

template <int N>
struct StridedLayout {
  std::vector<int64_t> sizes;                   // coalesced, outermost first
  std::array<std::vector<int64_t>, N> strides;  // bytes, same rank as sizes
};

/// Merges dimensions that are contiguous for all operands and drops size-1 dimensions.
template <int N>
StridedLayout<N> coalesce(IntArrayRef sizes, const std::array<std::vector<int64_t>, N>& strides) {
  StridedLayout<N> l;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 1) continue;
    if (!l.sizes.empty()) {
      bool mergeable = true;
      for (int k = 0; k < N; ++k)
        if (l.strides[k].back() != strides[k][d] * sizes[d]) mergeable = false;
      if (mergeable) {
        l.sizes.back() *= sizes[d];
        for (int k = 0; k < N; ++k) l.strides[k].back() = strides[k][d];
        continue;
      }
    }
    l.sizes.push_back(sizes[d]);
    for (int k = 0; k < N; ++k) l.strides[k].push_back(strides[k][d]);
  }
  if (l.sizes.empty()) {  // a single element
    l.sizes.push_back(1);
    for (int k = 0; k < N; ++k) l.strides[k].push_back(0);
  }
  return l;
}

/// Byte pointer to a tensor's first element and its byte strides.
inline char* byte_ptr(const Tensor& t) { return static_cast<char*>(t.data_ptr()); }
inline std::vector<int64_t> byte_strides(const Tensor& t) {
  std::vector<int64_t> s = t.strides().vec();
  for (int64_t& v : s) v *= static_cast<int64_t>(t.element_size());
  return s;
}

/// f(std::array<char*, N> ptrs, const std::array<int64_t, N>& inner_strides, int64_t n)
template <int N, class F>
void for_each_row(IntArrayRef sizes, std::array<char*, N> base,
                  const std::array<std::vector<int64_t>, N>& strides, F&& f, bool parallel = true) {
  for (int64_t s : sizes)
    if (s == 0) return;
  StridedLayout<N> l = coalesce<N>(sizes, strides);
  const int64_t rank = static_cast<int64_t>(l.sizes.size());
  const int64_t inner = l.sizes.back();
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < rank; ++d) rows *= l.sizes[d];
  std::array<int64_t, N> inner_strides;
  for (int k = 0; k < N; ++k) inner_strides[k] = l.strides[k].back();

  auto run_rows = [&](int64_t r0, int64_t r1) {
    // Multi-index of row r0 over the outer dims.
    std::vector<int64_t> idx(static_cast<size_t>(std::max<int64_t>(rank - 1, 0)), 0);
    int64_t r = r0;
    for (int64_t d = rank - 2; d >= 0; --d) {
      idx[d] = r % l.sizes[d];
      r /= l.sizes[d];
    }
    std::array<char*, N> p;
    for (int k = 0; k < N; ++k) {
      p[k] = base[k];
      for (int64_t d = 0; d + 1 < rank; ++d) p[k] += idx[d] * l.strides[k][d];
    }
    for (int64_t row = r0; row < r1; ++row) {
      f(p, inner_strides, inner);
      for (int64_t d = rank - 2; d >= 0; --d) {  // increment the multi-index
        for (int k = 0; k < N; ++k) p[k] += l.strides[k][d];
        if (++idx[d] < l.sizes[d]) break;
        for (int k = 0; k < N; ++k) p[k] -= l.strides[k][d] * l.sizes[d];
        idx[d] = 0;
      }
    }
  };
  if (parallel && rows > 1 && rows * inner > kElementwiseGrain) {
    int64_t grain = std::max<int64_t>(1, kElementwiseGrain / inner);
    parallel_for(rows, grain, run_rows);
  } else if (parallel && rows == 1 && inner > kElementwiseGrain) {
    // One long row: split it into chunks.
    parallel_for(inner, kElementwiseGrain, [&](int64_t b, int64_t e) {
      std::array<char*, N> p;
      for (int k = 0; k < N; ++k) p[k] = base[k] + b * inner_strides[k];
      f(p, inner_strides, e - b);
    });
  } else {
    run_rows(0, rows);
  }
}

/// Reorders the dims so that operand 0's strides descend (a stable sort): an elementwise loop
/// then walks its output in memory order, and a channels-last or transposed output, with inputs
/// laid out like it, coalesces into long contiguous rows. A contiguous output keeps the order.
/// Only for loops whose result does not depend on the order they visit elements in.
template <int N>
void order_by_output(std::vector<int64_t>& sizes, std::array<std::vector<int64_t>, N>& strides) {
  const std::vector<int64_t>& o = strides[0];
  if (std::is_sorted(o.begin(), o.end(), std::greater<int64_t>())) return;
  std::vector<size_t> perm(sizes.size());
  for (size_t d = 0; d < perm.size(); ++d) perm[d] = d;
  std::stable_sort(perm.begin(), perm.end(), [&](size_t a, size_t b) { return o[a] > o[b]; });
  const auto apply = [&](std::vector<int64_t>& v) {
    std::vector<int64_t> r(v.size());
    for (size_t d = 0; d < perm.size(); ++d) r[d] = v[perm[d]];
    v = std::move(r);
  };
  apply(sizes);
  for (int k = 0; k < N; ++k) apply(strides[k]);
}

/// flatten: everything f calls is inlined into this loop, so that it can vectorize (GCC otherwise
/// keeps a large f, such as vec_math's exp inside an op's lambda, as a call per element).
template <class Out, class... In, class P, class F, size_t... I>
[[gnu::flatten]] inline void call_contiguous(Out* o, const P& p, int64_t n, F& f, std::index_sequence<I...>) {
  std::tuple<const In*...> ins{reinterpret_cast<const In*>(p[I + 1])...};
  for (int64_t i = 0; i < n; ++i) o[i] = f(std::get<I>(ins)[i]...);
}

template <class Out, class... In, class P, class S, class F, size_t... I>
inline void call_strided(const P& p, const S& s, int64_t i, F& f, std::index_sequence<I...>) {
  *reinterpret_cast<Out*>(p[0] + i * s[0]) =
      f(*reinterpret_cast<const In*>(p[I + 1] + i * s[I + 1])...);
}

/// out[i] = f(in[i]...) elementwise. Out and In are the element types of the tensors; all
/// tensors have out's shape (inputs may be expanded).
template <class Out, class... In, class F, class... Ts>
void map(const Tensor& out, F&& f, const Ts&... in) {
  static_assert(sizeof...(In) == sizeof...(Ts), "one element type per input tensor");
  constexpr int N = 1 + sizeof...(In);
  std::array<char*, N> base{byte_ptr(out), byte_ptr(in)...};
  std::array<std::vector<int64_t>, N> strides{byte_strides(out), byte_strides(in)...};
  std::vector<int64_t> sizes = out.sizes().vec();
  order_by_output<N>(sizes, strides);
  for_each_row<N>(sizes, base, strides,
                  [&](const std::array<char*, N>& p, const std::array<int64_t, N>& s, int64_t n) {
                    bool contiguous = s[0] == static_cast<int64_t>(sizeof(Out));
                    int k = 1;
                    ((contiguous = contiguous && s[k++] == static_cast<int64_t>(sizeof(In))), ...);
                    Out* o = reinterpret_cast<Out*>(p[0]);
                    // Inputs broadcast along the row (stride 0, such as where's scalar or
                    // masked_fill's value) are copied into a block once, so the row still runs
                    // the contiguous loop, a block at a time.
                    bool blockwise = !contiguous && s[0] == static_cast<int64_t>(sizeof(Out));
                    k = 1;
                    ((blockwise = blockwise && (s[k] == 0 || s[k] == static_cast<int64_t>(sizeof(In))),
                      ++k),
                     ...);
                    if (contiguous) {
                      call_contiguous<Out, In...>(o, p, n, f, std::make_index_sequence<N - 1>{});
                    } else if (blockwise) {
                      constexpr int64_t B = 256;
                      std::tuple<std::array<In, B>...> blocks;
                      std::array<char*, N> q = p;
                      std::apply(
                          [&](auto&... blk) {
                            int i = 1;
                            ((s[i] == 0 ? (blk.fill(*reinterpret_cast<const In*>(p[i])),
                                           q[i] = reinterpret_cast<char*>(blk.data()))
                                        : q[i],
                              ++i),
                             ...);
                          },
                          blocks);
                      for (int64_t i0 = 0; i0 < n; i0 += B) {
                        call_contiguous<Out, In...>(o + i0, q, std::min(B, n - i0), f,
                                                    std::make_index_sequence<N - 1>{});
                        for (int i = 1; i < N; ++i) q[i] += s[i] * B;
                      }
                    } else {
                      for (int64_t i = 0; i < n; ++i) {
                        call_strided<Out, In...>(p, s, i, f, std::make_index_sequence<N - 1>{});
                      }
                    }
                  });
}

}  // namespace ember::cpu
