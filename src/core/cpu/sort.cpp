// CPU sort and topk along one dimension.
//
// Each row along `dim` is copied into a buffer of (key, index) pairs, keys in compute_t (float
// for Half/BFloat16), and ordered with a total order: by value (NaN above every number, as in
// PyTorch), then by original index. A total order makes std::sort give exactly the stable result,
// so `stable` needs no separate path, and topk's ties go to the smaller index. Values are then
// copied from the input at the sorted indices, so they are bitwise the input's elements.
// topk selects with std::partial_sort (sorted) or std::nth_element (unsorted, then the chosen
// elements are put back in input order): O(L log k) / O(L) per row of length L.
// Rows are independent and spread over threads with parallel_for.
#include <algorithm>
#include <array>
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/cpu/loops.hpp"
#include "core/dispatch.hpp"

namespace ember::cpu {

namespace {

template <class C>
struct Entry {
  C key;
  int64_t index;
};

template <class C>
inline bool is_nan(C v) {
  if constexpr (std::is_floating_point_v<C>) {
    return std::isnan(v);
  } else {
    (void)v;
    return false;
  }
}

/// Ascending: numbers increasing, then NaN; ties by index.
struct Ascending {
  template <class C>
  bool operator()(const Entry<C>& a, const Entry<C>& b) const {
    const bool an = is_nan(a.key), bn = is_nan(b.key);
    if (an || bn) return an == bn ? a.index < b.index : bn;
    if (a.key != b.key) return a.key < b.key;
    return a.index < b.index;
  }
};

/// Descending: NaN first, then numbers decreasing; ties by index.
struct Descending {
  template <class C>
  bool operator()(const Entry<C>& a, const Entry<C>& b) const {
    const bool an = is_nan(a.key), bn = is_nan(b.key);
    if (an || bn) return an == bn ? a.index < b.index : an;
    if (a.key != b.key) return a.key > b.key;
    return a.index < b.index;
  }
};

/// Calls f(Descending{}) or f(Ascending{}), so the comparator inlines into the sort.
template <class F>
void with_order(bool descending, F&& f) {
  if (descending) {
    f(Descending{});
  } else {
    f(Ascending{});
  }
}

/// Byte pointers to the first element of every row along dim, for N operands that share
/// sizes outside dim (their sizes at dim may differ).
template <int N>
std::vector<std::array<char*, N>> row_starts(IntArrayRef sizes, int64_t dim,
                                             const std::array<const Tensor*, N>& ts) {
  std::vector<int64_t> outer = sizes.vec();
  outer[dim] = 1;
  std::array<char*, N> base;
  std::array<std::vector<int64_t>, N> strides;
  for (int k = 0; k < N; ++k) {
    base[k] = byte_ptr(*ts[k]);
    strides[k] = byte_strides(*ts[k]);
  }
  std::vector<std::array<char*, N>> rows;
  for_each_row<N>(
      outer, base, strides,
      [&](const std::array<char*, N>& p, const std::array<int64_t, N>& s, int64_t n) {
        for (int64_t i = 0; i < n; ++i) {
          std::array<char*, N> r;
          for (int k = 0; k < N; ++k) r[k] = p[k] + i * s[k];
          rows.push_back(r);
        }
      },
      /*parallel=*/false);
  return rows;
}

/// Runs f(row, buffer) for every row along dim, rows spread over threads. The buffer holds the
/// row of x as (key, index) entries.
template <class T, int N, class F>
void for_each_sorted_row(const std::vector<std::array<char*, N>>& rows, int64_t L, int64_t x_stride,
                         F&& f) {
  using C = compute_t<T>;
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(L, 1));
  parallel_for(static_cast<int64_t>(rows.size()), grain, [&](int64_t r0, int64_t r1) {
    std::vector<Entry<C>> buf(static_cast<size_t>(L));
    for (int64_t r = r0; r < r1; ++r) {
      const char* x_row = rows[r][N - 1];
      for (int64_t i = 0; i < L; ++i)
        buf[i] = {convert<C>(*reinterpret_cast<const T*>(x_row + i * x_stride)), i};
      f(rows[r], buf);
    }
  });
}

/// Writes the first n entries of buf: values[j] = x[buf[j].index], indices[j] = buf[j].index.
template <class T, class C>
inline void write_row(char* v_row, int64_t v_stride, char* i_row, int64_t i_stride,
                      const char* x_row, int64_t x_stride, const std::vector<Entry<C>>& buf,
                      int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const int64_t src = buf[j].index;
    *reinterpret_cast<T*>(v_row + j * v_stride) =
        *reinterpret_cast<const T*>(x_row + src * x_stride);
    *reinterpret_cast<int64_t*>(i_row + j * i_stride) = src;
  }
}

}  // namespace

void topk(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t k, int64_t dim,
          bool largest, bool sorted) {
  const int64_t L = x.size(dim);
  const int64_t vs = values.stride(dim) * static_cast<int64_t>(values.element_size());
  const int64_t is = indices.stride(dim) * static_cast<int64_t>(sizeof(int64_t));
  const int64_t xs = x.stride(dim) * static_cast<int64_t>(x.element_size());
  auto rows = row_starts<3>(x.sizes(), dim, {&values, &indices, &x});
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    with_order(largest, [&](auto before) {
      for_each_sorted_row<T, 3>(
          rows, L, xs, [&](const std::array<char*, 3>& r, std::vector<Entry<C>>& buf) {
            if (sorted && k == L) {
              std::sort(buf.begin(), buf.end(), before);
            } else if (sorted) {
              std::partial_sort(buf.begin(), buf.begin() + k, buf.end(), before);
            } else {
              if (k < L) std::nth_element(buf.begin(), buf.begin() + k, buf.end(), before);
              std::sort(buf.begin(), buf.begin() + k,
                        [](const Entry<C>& a, const Entry<C>& b) { return a.index < b.index; });
            }
            write_row<T>(r[0], vs, r[1], is, r[2], xs, buf, k);
          });
    });
  });
}

void sort(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim,
          bool descending_order, bool stable) {
  (void)stable;  // the total order (value, index) makes every sort stable
  // A full sort is the top L of L in order; descending is "largest first".
  topk(values, indices, x, x.size(dim), dim, descending_order, /*sorted=*/true);
}

}  // namespace ember::cpu
