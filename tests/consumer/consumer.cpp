// The program each consumer project builds (find_package, add_subdirectory, pkg-config). It uses
// a few public API calls and checks what they print; it exits non-zero on any mismatch.
#include <ember/ember.hpp>

#include <iostream>
#include <sstream>
#include <string>

#ifndef EMBER_CONSUMER
#define EMBER_CONSUMER "unknown"
#endif

namespace {
int failures = 0;

void expect(const std::string& what, const std::string& got, const std::string& want) {
  if (got != want) {
    std::cerr << "MISMATCH in " << what << "\n  got:  " << got << "\n  want: " << want << "\n";
    ++failures;
  }
}

template <class T>
std::string str(const T& v) {
  std::ostringstream os;
  os << v;
  return os.str();
}
}  // namespace

int main() {
  ember::Tensor a = ember::arange(6).reshape({2, 3});
  ember::Tensor at = a.transpose(0, 1);
  ember::Tensor o = ember::ones({2, 2}, ember::kFloat32);
  std::cout << "a =\n" << a << "\na.transpose(0, 1) =\n" << at << "\nones =\n" << o << "\n";

  expect("arange dtype", str(a.dtype()), "int64");
  expect("reshape sizes", str(a.sizes()), "(2, 3)");
  expect("transpose sizes", str(at.sizes()), "(3, 2)");
  expect("transpose strides", str(at.strides()), "(1, 3)");
  expect("print int64", str(a), "tensor([[0, 1, 2],\n        [3, 4, 5]])");
  expect("print float32", str(o), "tensor([[1., 1.],\n        [1., 1.]])");
  expect("item", str(at[2][1].item<int64_t>()), "5");
  expect("full + item", str(ember::full({1}, 2.5).item<double>()), "2.5");
  expect("eye diagonal", str(ember::eye(3)[1][1].item<float>()), "1");
  expect("zeros numel", str(ember::zeros({4, 5}).numel()), "20");

  // Any build and any machine: the queries answer, and never crash without a GPU.
  const bool built = ember::cuda::is_built();
  const bool available = ember::cuda::is_available();
  const int devices = ember::cuda::device_count();
  std::cout << "cuda: built=" << built << " available=" << available << " devices=" << devices
            << "\n";
  if ((available && !built) || available != (devices > 0)) {
    std::cerr << "inconsistent CUDA queries\n";
    ++failures;
  }

  if (failures) {
    std::cerr << "ember consumer (" << EMBER_CONSUMER << "): " << failures << " check(s) failed\n";
    return 1;
  }
  std::cout << "ember consumer (" << EMBER_CONSUMER << "): OK\n";
  return 0;
}
