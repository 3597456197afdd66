// A tour of the Ember tensor API: factories, views that share storage, printing, dtype
// conversion and float16. Run with `make demo`.
#include <cmath>
#include <cstdio>
#include <iostream>

#include "ember/ember.hpp"

int main() {
  std::cout << std::boolalpha;
  std::cout << "Ember " << ember::version() << " (CUDA built: " << ember::cuda::is_built()
            << ", GPUs: " << ember::cuda::device_count() << ")\n\n";

  // Factories: the names and arguments of libtorch's C++ frontend.
  ember::Tensor a = ember::arange(12, ember::kFloat32).reshape({3, 4});
  std::cout << "a = arange(12).reshape({3, 4}):\n" << a << "\n";
  std::cout << "sizes " << a.sizes() << ", strides " << a.strides() << ", dtype " << a.dtype()
            << "\n\n";
  std::cout << "eye(3, kInt64):\n" << ember::eye(3, ember::kInt64) << "\n";
  std::cout << "full({2, 2}, 0.5):\n" << ember::full({2, 2}, 0.5) << "\n";
  std::cout << "tensor({{1, 2}, {3, 4}}):\n" << ember::tensor({{1, 2}, {3, 4}}) << "\n\n";

  // Views: no copies, the same storage seen through other sizes and strides.
  ember::Tensor at = a.t();
  std::cout << "a.t() has strides " << at.strides() << ", contiguous: " << at.is_contiguous()
            << ", shares a's storage: " << at.is_alias_of(a) << "\n";
  ember::Tensor col = a.select(1, 2);  // a[:, 2]
  std::cout << "a.select(1, 2): " << col << "\n";
  ember::Tensor every_other = a.slice(1, 0, 4, 2);  // a[:, 0:4:2]
  std::cout << "a.slice(1, 0, 4, 2):\n" << every_other << "\n";
  col.fill_(-1);  // writing through a view changes a
  std::cout << "after a.select(1, 2).fill_(-1), a =\n" << a << "\n";
  std::cout << "a.t().contiguous() strides " << at.contiguous().strides() << "\n\n";

  // dtype conversion: float16 rounds to nearest even and keeps Inf and NaN.
  ember::Tensor x = ember::linspace(0, 1, 5);
  std::cout << "linspace(0, 1, 5): " << x << "\n";
  std::cout << "as float16: " << x.to(ember::kFloat16) << "\n";
  std::cout << "as int64: " << x.mul(4).to(ember::kInt64) << "\n";
  ember::Half h(0.1f);
  std::printf("Half(0.1f) stores bits 0x%04x and reads back %.8f\n", static_cast<unsigned>(h.x),
              static_cast<double>(static_cast<float>(h)));
  std::cout << "float16 of {65519, 65520, nan}: "
            << ember::tensor({65519.0, 65520.0, std::nan("")}).to(ember::kFloat16)
            << "  (65504 is the largest float16)\n";
  std::cout << "one element out: a[1][3].item<float>() = " << a[1][3].item<float>() << "\n";

  // Errors are typed exceptions whose message names the op and the shapes.
  try {
    a.view({5, 5});
  } catch (const ember::ShapeError& e) {
    std::cout << "\ncaught ember::ShapeError: " << e.what() << "\n";
  }
  return 0;
}
