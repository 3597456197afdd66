// Convolution and pooling on CUDA tensors against the CPU's, through the public ops: conv2d
// (stride, padding, dilation, groups, depthwise, 1x1, few positions), conv1d, conv_transpose2d,
// unfold / fold, max_pool2d (padding, dilation, ceil_mode, indices), adaptive pools and avg_pool2d.
// Each case runs on CPU leaves and on CUDA copies of the same seeded values, in float64, float32,
// float16 and bfloat16, and compares the outputs and, after backward with one seeded upstream
// gradient, every leaf's gradient. Odd sizes (7, 13, 1), non-contiguous inputs (transposed,
// permuted, sliced, expanded), empty batches, plane counts beyond one grid, integer unfold / fold
// (wrapping sums), max pooling with NaN and ties, and the errors of bad input. unfold, fold and max
// pooling forwards must match bitwise (copies, the CPU's summation order, comparisons). Without a
// GPU each case prints "skipped".
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "cuda/cuda_test_util.hpp"
#include "ember/cuda/cuda.hpp"
#include "ember/ember.hpp"

using namespace ember;
using ember::test::agree;
using ember::test::gpu;

namespace {

using Leaves = std::vector<Tensor>;

struct Case {
  std::string name;
  std::vector<std::vector<int64_t>> shapes;  // the leaves: inputs, weights, biases
  /// The outputs from the leaves (which it may view: transpose, slice, expand). The first is
  /// differentiated; the others (indices) must match exactly.
  std::function<std::vector<Tensor>(const Leaves&)> fn;
  bool bitwise = false;  // the first output must match bitwise (copies, fixed-order sums)
};

/// Convolutions sum through GEMMs whose order differs between the devices; a few roundings of
/// the 16-bit types compound through the backward's intermediate results.
double tol_of(DType dt) {
  switch (dt) {
    case kFloat64:
      return 1e-10;
    case kFloat32:
      return 1e-4;
    case kFloat16:
      return 1e-2;
    default:
      return 5e-2;
  }
}

/// Seeded values in [-1, 1) of dt.
Tensor seeded(IntArrayRef sizes, Generator& g, DType dt) {
  return (rand(sizes, g, TensorOptions(kFloat64)) * 2.0 - 1.0).to(dt);
}

/// Runs c on CPU leaves and on CUDA copies of them (dt, seeded); compares the outputs and, after
/// backward with one seeded upstream gradient, the gradient of every leaf.
void check_case(const Case& c, DType dt, uint64_t seed) {
  const Device cu(kCUDA);
  INFO(c.name << " in " << dt);
  Generator g(seed);
  Leaves host, device;
  for (const std::vector<int64_t>& s : c.shapes) {
    const Tensor v = seeded(s, g, dt);
    host.push_back(v.clone().requires_grad_());
    device.push_back(v.to(cu).requires_grad_());
  }
  const std::vector<Tensor> y = c.fn(host), yc = c.fn(device);
  REQUIRE(y.size() == yc.size());
  REQUIRE(yc[0].is_cuda());
  const double tol = tol_of(dt);
  if (c.bitwise) {
    CHECK(test::bitwise_equal(yc[0].cpu(), y[0]));
  } else {
    CHECK(agree(yc[0].cpu(), y[0], tol));
  }
  for (size_t k = 1; k < y.size(); ++k) CHECK(test::bitwise_equal(yc[k].cpu(), y[k]));
  const Tensor dy = seeded(y[0].sizes(), g, dt);
  y[0].backward(dy);
  yc[0].backward(dy.to(cu));
  for (size_t k = 0; k < host.size(); ++k) {
    INFO("gradient of leaf " << k << " " << host[k].sizes());
    REQUIRE(host[k].grad().defined());
    REQUIRE(device[k].grad().defined());
    CHECK(device[k].grad().is_cuda());
    CHECK(agree(device[k].grad().cpu(), host[k].grad(), tol));
  }
}

std::vector<Tensor> one(const Tensor& y) { return {y}; }
std::vector<Tensor> both(const std::tuple<Tensor, Tensor>& vi) {
  return {std::get<0>(vi), std::get<1>(vi)};
}

std::vector<Case> conv_cases() {
  return {
      {"conv2d stride 2 padding 1 bias",
       {{2, 3, 7, 13}, {4, 3, 3, 3}, {4}},
       [](const Leaves& t) { return one(conv2d(t[0], t[1], t[2], 2, 1)); }},
      {"conv2d groups 2 dilation (2, 1) padding (2, 1) stride (1, 2)",
       {{2, 4, 13, 7}, {6, 2, 3, 2}, {6}},
       [](const Leaves& t) {
         return one(conv2d(t[0], t[1], t[2], {1, 2}, {2, 1}, {2, 1}, 2));
       }},
      {"conv2d depthwise stride (2, 1) dilation (2, 3) bias",
       {{3, 5, 11, 9}, {5, 1, 3, 2}, {5}},
       [](const Leaves& t) {
         return one(conv2d(t[0], t[1], t[2], {2, 1}, 1, {2, 3}, 5));
       }},
      {"conv2d depthwise unbatched padding 1",
       {{6, 7, 13}, {6, 1, 3, 3}},
       [](const Leaves& t) { return one(conv2d(t[0], t[1], {}, 1, 1, 1, 6)); }},
      {"conv2d depthwise on an expanded batch",
       {{1, 3, 7, 13}, {3, 1, 2, 3}, {3}},
       [](const Leaves& t) {
         return one(conv2d(t[0].expand({4, 3, 7, 13}), t[1], t[2], {1, 2}, {1, 0}, 1, 3));
       }},
      {"conv2d depthwise on a sliced input",
       {{2, 4, 9, 27}, {4, 1, 3, 3}},
       [](const Leaves& t) {
         return one(conv2d(t[0].slice(3, 1, std::nullopt, 2), t[1], {}, 2, 1, 1, 4));
       }},
      {"conv2d few positions (L = 4, one GEMM over the batch)",
       {{2, 3, 5, 5}, {4, 3, 4, 4}, {4}},
       [](const Leaves& t) { return one(conv2d(t[0], t[1], t[2])); }},
      {"conv2d 1x1 with W = 1",
       {{2, 3, 7, 1}, {5, 3, 1, 1}, {5}},
       [](const Leaves& t) { return one(conv2d(t[0], t[1], t[2])); }},
      {"conv2d H = 1 kernel (1, 3) padding (0, 1)",
       {{2, 3, 1, 13}, {4, 3, 1, 3}},
       [](const Leaves& t) {
         return one(conv2d(t[0], t[1], {}, 1, {0, 1}));
       }},
      {"conv2d transposed input and weight views",
       {{2, 3, 9, 7}, {3, 4, 3, 3}, {4}},
       [](const Leaves& t) {
         return one(conv2d(t[0].transpose(2, 3), t[1].transpose(0, 1), t[2], 1, {1, 2}));
       }},
      {"conv2d padding same, even kernel",
       {{1, 2, 7, 6}, {3, 2, 2, 4}, {3}},
       [](const Leaves& t) { return one(conv2d(t[0], t[1], t[2], 1, "same")); }},
      {"conv2d empty batch",
       {{0, 3, 7, 7}, {4, 3, 3, 3}, {4}},
       [](const Leaves& t) { return one(conv2d(t[0], t[1], t[2], 1, 1)); }},
      {"conv1d depthwise stride 2 dilation 2",
       {{2, 3, 13}, {3, 1, 3}, {3}},
       [](const Leaves& t) { return one(conv1d(t[0], t[1], t[2], 2, 1, 2, 3)); }},
      {"conv1d groups 1",
       {{2, 4, 13}, {5, 4, 3}, {5}},
       [](const Leaves& t) { return one(conv1d(t[0], t[1], t[2], 1, 2)); }},
      {"conv_transpose2d stride 2 padding 1 output_padding 1 bias",
       {{2, 3, 5, 7}, {3, 4, 3, 3}, {4}},
       [](const Leaves& t) { return one(conv_transpose2d(t[0], t[1], t[2], 2, 1, 1)); }},
      {"conv_transpose2d groups 2 dilation (1, 2) stride (2, 3)",
       {{1, 4, 7, 5}, {4, 3, 2, 3}},
       [](const Leaves& t) {
         return one(conv_transpose2d(t[0], t[1], {}, {2, 3}, 0, 0, 2, {1, 2}));
       }},
      {"conv_transpose2d output_padding beyond the stride (dilation 2)",
       {{2, 2, 5, 5}, {2, 3, 3, 3}, {3}},
       [](const Leaves& t) { return one(conv_transpose2d(t[0], t[1], t[2], 1, 0, 1, 1, 2)); }},
      {"conv_transpose2d few positions (H*W = 4), permuted input",
       {{1, 2, 2, 3}, {3, 2, 3, 3}},
       [](const Leaves& t) {
         return one(conv_transpose2d(t[0].permute({0, 3, 1, 2}), t[1], {}, 2));
       }},
  };
}

std::vector<Case> unfold_fold_cases() {
  return {
      {"unfold kernel (2, 3) dilation (1, 2) padding (1, 0) stride (2, 1)",
       {{2, 3, 7, 13}},
       [](const Leaves& t) {
         return one(unfold(t[0], {2, 3}, {1, 2}, {1, 0}, {2, 1}));
       },
       true},
      {"unfold permuted input, unbatched view",
       {{7, 13, 3}},
       [](const Leaves& t) {
         return one(unfold(t[0].permute({2, 0, 1}), 3, 1, 1, {1, 2}));
       },
       true},
      {"unfold expanded input (planes of stride 0), H = 1",
       {{1, 1, 1, 13}},
       [](const Leaves& t) {
         return one(unfold(t[0].expand({4, 1, 1, 13}), {1, 4}, {1, 3}, {0, 2}, {1, 2}));
       },
       true},
      {"fold to (7, 13), the adjoint of the first unfold",
       {{2, 18, 36}},
       [](const Leaves& t) {
         return one(fold(t[0], {7, 13}, {2, 3}, {1, 2}, {1, 0}, {2, 1}));
       },
       true},
      {"fold transposed input, stride (2, 3) dilation 2 padding 2",
       {{1, 20, 18}},
       [](const Leaves& t) {
         return one(fold(t[0].transpose(1, 2), {9, 11}, 3, 2, 2, {2, 3}));
       },
       true},
      {"fold unbatched, sliced input, overlapping windows",
       {{12, 96}},
       [](const Leaves& t) {
         return one(fold(t[0].slice(1, 0, std::nullopt, 2), {7, 9}, {2, 2}, 1, 0, 1));
       },
       true},
      {"unfold empty batch",
       {{0, 3, 7, 7}},
       [](const Leaves& t) { return one(unfold(t[0], 3)); },
       true},
  };
}

std::vector<Case> pool_cases() {
  return {
      {"max_pool2d kernel 3 stride 2 padding 1",
       {{2, 3, 7, 13}},
       [](const Leaves& t) { return both(max_pool2d_with_indices(t[0], 3, 2, 1)); },
       true},
      {"max_pool2d ceil_mode kernel (2, 3) stride 2 padding (1, 0) dilation (1, 2)",
       {{2, 3, 13, 7}},
       [](const Leaves& t) {
         return both(max_pool2d_with_indices(t[0], {2, 3}, 2, {1, 0}, {1, 2}, true));
       },
       true},
      {"max_pool2d ceil_mode dilation 2 stride 1, transposed input",
       {{2, 3, 13, 7}},
       [](const Leaves& t) {
         return both(max_pool2d_with_indices(t[0].transpose(2, 3), 2, 1, 1, 2, true));
       },
       true},
      {"max_pool2d H = 1, sliced input",
       {{2, 3, 1, 27}},
       [](const Leaves& t) {
         return both(max_pool2d_with_indices(t[0].slice(3, 0, std::nullopt, 2), {1, 3}, {1, 2}));
       },
       true},
      {"max_pool2d unbatched, values only",
       {{3, 7, 7}},
       [](const Leaves& t) { return one(max_pool2d(t[0], 2)); },
       true},
      {"max_pool1d",
       {{2, 3, 13}},
       [](const Leaves& t) { return both(max_pool1d_with_indices(t[0], 3, 2, 1)); },
       true},
      {"adaptive_max_pool2d to (3, 5), overlapping bins",
       {{2, 3, 7, 13}},
       [](const Leaves& t) {
         return both(adaptive_max_pool2d(t[0], {3, 5}));
       },
       true},
      {"avg_pool2d ceil_mode, count_include_pad false",
       {{2, 3, 7, 13}},
       [](const Leaves& t) { return one(avg_pool2d(t[0], 3, 2, 1, true, false)); }},
      {"avg_pool2d divisor_override, transposed input",
       {{2, 3, 13, 7}},
       [](const Leaves& t) {
         return one(avg_pool2d(t[0].transpose(2, 3), {2, 3}, 1, 0, false, true, 5));
       }},
      {"adaptive_avg_pool2d to (3, 5)",
       {{2, 3, 7, 13}},
       [](const Leaves& t) {
         return one(adaptive_avg_pool2d(t[0], {3, 5}));
       }},
  };
}

void run_cases(const std::vector<Case>& cases, uint64_t seed) {
  for (const Case& c : cases)
    for (DType dt : {kFloat64, kFloat32, kFloat16, kBFloat16}) check_case(c, dt, ++seed);
}

}  // namespace

TEST_CASE("cuda conv2d / conv1d / conv_transpose2d: outputs and gradients equal the CPU's") {
  if (!gpu()) return;
  run_cases(conv_cases(), 1000);
}

TEST_CASE("cuda unfold / fold: outputs bitwise the CPU's, gradients equal") {
  if (!gpu()) return;
  run_cases(unfold_fold_cases(), 2000);
}

TEST_CASE("cuda max / avg / adaptive pooling: values, indices and gradients equal the CPU's") {
  if (!gpu()) return;
  run_cases(pool_cases(), 3000);
}

TEST_CASE("cuda conv: more planes than one grid covers") {
  if (!gpu()) return;
  // 600001 planes: beyond 65535 blocks of 8 planes, so the kernels' plane loops stride.
  constexpr int64_t P = 600001;
  const std::vector<Case> cases = {
      {"unfold of 1x1 planes, kernel 2 padding 1",
       {{1, P, 1, 1}},
       [](const Leaves& t) { return one(unfold(t[0], 2, 1, 1)); },
       true},
      {"max_pool2d of (1, 3) planes",
       {{1, P, 1, 3}},
       [](const Leaves& t) {
         return both(max_pool2d_with_indices(t[0], {1, 2}, 1));
       },
       true},
      {"depthwise conv2d of (1, 3) planes",
       {{1, P, 1, 3}, {P, 1, 1, 2}},
       [](const Leaves& t) { return one(conv2d(t[0], t[1], {}, 1, 0, 1, P)); }},
  };
  uint64_t seed = 4000;
  for (const Case& c : cases) check_case(c, kFloat32, ++seed);
}

TEST_CASE("cuda max_pool2d: NaN wins, ties keep the first position, as on the CPU") {
  if (!gpu()) return;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // One (4, 5) plane: ties (the 3s and 7s), a lone NaN and two NaNs sharing windows.
  const Tensor plane = tensor(std::vector<double>{3,   3, 1,   7,   7,  //
                                                  3,   2, nan, 0,   7,  //
                                                  -1,  5, 5,   nan, 2,  //
                                                  nan, 5, 5,   4,   -3})
                           .reshape({1, 1, 4, 5});
  const Tensor x = cat({plane, -plane}, 1);  // (1, 2, 4, 5); the negated plane has its own ties
  for (DType dt : {kFloat64, kFloat32, kFloat16, kBFloat16}) {
    const Tensor xd = x.to(dt);
    for (int64_t k : {2, 3}) {
      for (int64_t s : {1, 2}) {
        INFO(dt << " kernel " << k << " stride " << s);
        auto [v, i] = max_pool2d_with_indices(xd, k, s, k / 2, 1, true);
        auto [vc, ic] = max_pool2d_with_indices(xd.to(Device(kCUDA)), k, s, k / 2, 1, true);
        CHECK(agree(vc.cpu(), v, 0));
        CHECK(test::bitwise_equal(ic.cpu(), i));
      }
    }
    // The gradient lands on the winning positions.
    const Tensor leaf = xd.clone().requires_grad_();
    const Tensor leaf_c = xd.to(Device(kCUDA)).clone().requires_grad_();
    max_pool2d(leaf, 2, 1).sum().backward();
    max_pool2d(leaf_c, 2, 1).sum().backward();
    CHECK(agree(leaf_c.grad().cpu(), leaf.grad(), 0));
  }
}

TEST_CASE("cuda unfold / fold of integer tensors: bitwise the CPU's, wrapping sums") {
  if (!gpu()) return;
  const Device cu(kCUDA);
  Generator g(4500);
  for (DType dt : {kInt64, kInt32, kInt8, kUInt8}) {
    INFO(dt);
    // Values up to 127: the overlapping sums of fold wrap in the 8-bit types, as on the CPU.
    const Tensor x = randint(0, 128, {2, 3, 7, 13}, g, TensorOptions(dt));
    const Tensor xt = x.transpose(2, 3).contiguous().transpose(2, 3);  // strided copy
    const Tensor cols = unfold(xt, {3, 2}, {1, 2}, 1, {2, 1});
    CHECK(test::bitwise_equal(unfold(xt.to(cu), {3, 2}, {1, 2}, 1, {2, 1}).cpu(), cols));
    const Tensor folded = fold(cols, {7, 13}, {3, 2}, {1, 2}, 1, {2, 1});
    CHECK(test::bitwise_equal(fold(cols.to(cu), {7, 13}, {3, 2}, {1, 2}, 1, {2, 1}).cpu(), folded));
    const Tensor dense = randint(0, 128, {1, 4 * 9, 9 * 11}, g, TensorOptions(dt));
    CHECK(test::bitwise_equal(fold(dense.to(cu), {11, 13}, 3).cpu(), fold(dense, {11, 13}, 3)));
  }
}

TEST_CASE("cuda fold and depthwise conv2d repeat bitwise") {
  if (!gpu()) return;
  const Device cu(kCUDA);
  Generator g(5000);
  const Tensor cols = seeded({3, 4 * 9, 11 * 13}, g, kFloat32).to(cu);
  CHECK(test::bitwise_equal(fold(cols, {13, 15}, 3).cpu(), fold(cols, {13, 15}, 3).cpu()));
  const Tensor x = seeded({2, 6, 17, 19}, g, kFloat32).to(cu);
  const Tensor w = seeded({6, 1, 3, 3}, g, kFloat32).to(cu);
  CHECK(
      test::bitwise_equal(conv2d(x, w, {}, 1, 1, 1, 6).cpu(), conv2d(x, w, {}, 1, 1, 1, 6).cpu()));
}

TEST_CASE("cuda conv: bad input raises the CPU's typed errors") {
  if (!gpu()) return;
  for (Device d : {Device(kCPU), Device(kCUDA)}) {
    INFO("on " << d);
    const Tensor x = ones({1, 4, 5, 5}).to(d), w = ones({2, 3, 3, 3}).to(d);
    EMBER_CHECK_THROWS(conv2d(x, w), ShapeError, "[conv2d]", "(1, 4, 5, 5)", "(2, 3, 3, 3)");
    EMBER_CHECK_THROWS(conv2d(x, ones({2, 4, 7, 7}).to(d)), ShapeError, "[conv2d]", "(7, 7)");
    EMBER_CHECK_THROWS(conv2d(x.to(kInt64), w.to(kInt64)), DTypeError, "[conv2d]", "int64");
    EMBER_CHECK_THROWS(max_pool2d(x.to(kInt64), 2), DTypeError, "[max_pool2d]", "int64");
    EMBER_CHECK_THROWS(max_pool2d(x, 7), ShapeError, "[max_pool2d]", "(1, 4, 5, 5)");
    EMBER_CHECK_THROWS(max_pool2d(x, 2, 2, 2), ValueError, "[max_pool2d]", "padding");
    EMBER_CHECK_THROWS(unfold(x, 7), ShapeError, "[unfold]", "(1, 4, 5, 5)");
    EMBER_CHECK_THROWS(unfold(x.to(kBool), 2), DTypeError, "[unfold]", "bool");
    EMBER_CHECK_THROWS(fold(ones({1, 5, 4}).to(d), {3, 3}, 2), ShapeError, "[fold]", "(1, 5, 4)");
  }
  // Operands on different devices.
  const Tensor x = ones({1, 3, 5, 5}), w = ones({2, 3, 3, 3});
  EMBER_CHECK_THROWS(conv2d(x.to(Device(kCUDA)), w), DeviceError, "[conv2d]", "same device");
}
