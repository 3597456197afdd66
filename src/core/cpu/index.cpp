// CPU indexing kernels: gather / index_select (reads through an index), scatter / index_add
// (writes through an index), the index range check, and nonzero.
//
// Every kernel walks its operands with the shared strided iterator `for_each_row`:
//   - gather-like kernels iterate the output's shape with x "restrided": x's strides everywhere
//     except a 0 stride at `dim`, so the row pointer of x lands on x[..., 0, ...] and the index
//     value times x's stride at dim is added per element. Reads only, so rows run in parallel.
//   - scatter-like kernels iterate the index's shape with `dim` collapsed to size 1 and loop over
//     dim inside each row. Two elements that differ outside dim can never hit the same output
//     element, so rows still run in parallel, and duplicate targets along dim are applied in
//     index order: scatter_add / index_add are deterministic and thread-count independent.
// index_select / index_add reuse them with the 1-D index expanded (stride 0) to the full shape.
#include <array>
#include <atomic>
#include <cstdlib>

#include "core/cpu/loops.hpp"
#include "core/dispatch.hpp"

namespace ember::cpu {

namespace {

template <class T>
inline T load(const char* p) {
  return *reinterpret_cast<const T*>(p);
}

/// out = x gathered along dim by index; out and index have the same shape.
void gather_along(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index) {
  std::vector<int64_t> x_strides = byte_strides(x);
  const int64_t x_dim_stride = x_strides[dim];
  x_strides[dim] = 0;  // the index supplies the position along dim
  visit_dtype(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    for_each_row<3>(out.sizes(), {byte_ptr(out), byte_ptr(index), byte_ptr(x)},
                    {byte_strides(out), byte_strides(index), x_strides},
                    [&](const std::array<char*, 3>& p, const std::array<int64_t, 3>& s, int64_t n) {
                      for (int64_t i = 0; i < n; ++i) {
                        const int64_t j = load<int64_t>(p[1] + i * s[1]);
                        *reinterpret_cast<T*>(p[0] + i * s[0]) =
                            load<T>(p[2] + i * s[2] + j * x_dim_stride);
                      }
                    });
  });
}

/// out[..., index[..., j, ...], ...] (+)= alpha * src[..., j, ...] over index's shape.
void scatter_along(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src,
                   bool accumulate, Scalar alpha) {
  std::vector<int64_t> iter_sizes = index.sizes().vec();
  const int64_t L = iter_sizes[dim];  // positions along dim, applied in order inside a row
  iter_sizes[dim] = 1;
  const std::vector<int64_t> out_strides = byte_strides(out);
  const std::vector<int64_t> index_strides = byte_strides(index);
  const std::vector<int64_t> src_strides = byte_strides(src);
  const int64_t out_dim = out_strides[dim], index_dim = index_strides[dim],
                src_dim = src_strides[dim];
  visit_dtype(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const C a = alpha.to<C>();
    for_each_row<3>(iter_sizes, {byte_ptr(out), byte_ptr(index), byte_ptr(src)},
                    {out_strides, index_strides, src_strides},
                    [&](const std::array<char*, 3>& p, const std::array<int64_t, 3>& s, int64_t n) {
                      auto apply = [&](int64_t i, int64_t j) {
                        const int64_t t = load<int64_t>(p[1] + i * s[1] + j * index_dim);
                        T* o = reinterpret_cast<T*>(p[0] + i * s[0] + t * out_dim);
                        const T v = load<T>(p[2] + i * s[2] + j * src_dim);
                        if (accumulate) {
                          *o = convert<T>(convert<C>(*o) + a * convert<C>(v));
                        } else {
                          *o = v;
                        }
                      };
                      // Either loop order applies one output element's contributions in increasing
                      // j; walk the index along its smaller stride for locality.
                      if (std::abs(index_dim) < std::abs(s[1])) {
                        for (int64_t i = 0; i < n; ++i)
                          for (int64_t j = 0; j < L; ++j) apply(i, j);
                      } else {
                        for (int64_t j = 0; j < L; ++j)
                          for (int64_t i = 0; i < n; ++i) apply(i, j);
                      }
                    });
  });
}

/// The 1-D index viewed with `shape` (stride 0 everywhere except dim).
Tensor expand_index(const Tensor& index, IntArrayRef shape, int64_t dim) {
  std::vector<int64_t> strides(shape.size(), 0);
  strides[dim] = index.stride(0);
  return make_view(index, shape.vec(), strides, index.storage_offset());
}

}  // namespace

void check_index_range(const Tensor& index, int64_t size, const char* op, int64_t dim) {
  bool bad = false;
  int64_t bad_value = 0;
  // Sequential, so the message names the first bad index in row-major order.
  for_each_row<1>(
      index.sizes(), {byte_ptr(index)}, {byte_strides(index)},
      [&](const std::array<char*, 1>& p, const std::array<int64_t, 1>& s, int64_t n) {
        for (int64_t i = 0; i < n && !bad; ++i) {
          const int64_t v = load<int64_t>(p[0] + i * s[0]);
          if (v < 0 || v >= size) {
            bad = true;
            bad_value = v;
          }
        }
      },
      /*parallel=*/false);
  EMBER_CHECK(!bad, IndexError, "[", op, "] index ", bad_value, " is out of bounds for dimension ",
              dim, " with size ", size);
}

void gather(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index) {
  gather_along(out, x, dim, index);
}

void scatter(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src,
             bool accumulate) {
  scatter_along(out, dim, index, src, accumulate, Scalar(1));
}

void index_select(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index) {
  gather_along(out, x, dim, expand_index(index, out.sizes(), dim));
}

void index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& source,
               Scalar alpha) {
  scatter_along(out, dim, expand_index(index, source.sizes(), dim), source, true, alpha);
}

void count_nonzero(const Tensor& count, const Tensor& x) {
  std::atomic<int64_t> total{0};
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    for_each_row<1>(x.sizes(), {byte_ptr(x)}, {byte_strides(x)},
                    [&](const std::array<char*, 1>& p, const std::array<int64_t, 1>& s, int64_t n) {
                      int64_t c = 0;
                      for (int64_t i = 0; i < n; ++i) c += convert<bool>(load<T>(p[0] + i * s[0]));
                      total.fetch_add(c, std::memory_order_relaxed);
                    });
  });
  *count.data_ptr<int64_t>() = total.load();
}

void nonzero(const Tensor& out, const Tensor& x) {
  const int64_t D = x.dim();
  const int64_t N = x.numel();
  const IntArrayRef sizes = x.sizes();
  int64_t* o = out.data_ptr<int64_t>();  // (count, D), contiguous
  const int64_t capacity = out.size(0);
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = static_cast<const T*>(x.data_ptr());
    std::vector<int64_t> coord(static_cast<size_t>(D), 0);  // multi-index of element l
    int64_t written = 0;
    for (int64_t l = 0; l < N && written < capacity; ++l) {
      if (convert<bool>(p[l])) {
        std::copy(coord.begin(), coord.end(), o + written * D);
        ++written;
      }
      for (int64_t d = D - 1; d >= 0; --d) {
        if (++coord[d] < sizes[d]) break;
        coord[d] = 0;
      }
    }
  });
}

}  // namespace ember::cpu
