// The fused cross-entropy kernel on CUDA (src/cuda/cross_entropy.cu) against the CPU kernel, with
// the same seeded inputs: losses and input gradients for the reductions none, sum and mean,
// float32 and float64 (and float16/bfloat16 logits computed in float32, in and out of
// autocast), 1, 7, 1000 and 50257 classes, class weights, ignore_index, label smoothing,
// the (N, C, d1, d2) layout, unbatched input, logits of 1e30 and -inf, every target ignored, empty
// batches, non-contiguous inputs and repeated runs (bitwise), and the same typed errors as the
// CPU. Without a GPU each case prints "skipped".
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cuda/cuda_test_util.hpp"
#include "ember/ember.hpp"
#include "ember/nn/functional/loss.hpp"
#include "nn/ce_test_util.hpp"

using namespace ember;
namespace F = ember::nn::functional;
using ember::test::agree;
using ember::test::bitwise_equal;
using ember::test::gpu;
using ember::test::node_name;
using ember::test::rel_err;
using ember::test::values;
using ember::test::ce::classes;
using ember::test::ce::mixed_precision_opts;
using ember::test::ce::Opts;
using ember::test::ce::rnd;

namespace {

const Device cu(kCUDA);


/// {loss, dx} of cross_entropy on `device` for the output gradient dy (undefined: a seeded random
/// one of the loss's shape), copied back to the CPU. x keeps its layout.
std::vector<Tensor> run(const Tensor& x, const Tensor& t, const Opts& o, Device device,
                        Tensor dy = {}) {
  Tensor xl = x.to(device).detach().requires_grad_();
  Tensor w = o.weight.defined() ? o.weight.to(device) : Tensor();
  Tensor y = F::cross_entropy(xl, t.to(device), w, o.ignore_index, o.reduction, o.label_smoothing);
  CHECK(node_name(y) == "cross_entropy");  // the fused kernel ran
  if (!dy.defined()) dy = rnd(y.sizes().vec(), 99, y.dtype(), 1.0);
  Tensor dx = autograd::grad({y}, {xl}, {dy.to(device)})[0];
  return {y.detach().cpu(), dx.cpu()};
}

/// CUDA against CPU: other summation orders and CUDA's exp (both within a few ulp).
double tol(DType dt) { return dt == kFloat64 ? 1e-12 : 1e-5; }

void check_close(const std::vector<Tensor>& got, const std::vector<Tensor>& want, double t) {
  const char* const names[] = {"loss", "dx"};
  for (size_t i = 0; i < 2; ++i) {
    INFO(names[i]);
    CHECK(got[i].dtype() == want[i].dtype());
    CHECK(got[i].sizes() == want[i].sizes());
    CHECK(rel_err(got[i], want[i]) <= t);
  }
}

const char* const kReductions[] = {"none", "sum", "mean"};

}  // namespace

TEST_CASE("cuda cross_entropy: (N, C) for 1 to 50257 classes, weights, ignore_index, smoothing") {
  if (!gpu()) return;
  for (DType dt : {kFloat32, kFloat64}) {
    for (int64_t C : {1, 7, 1000, 50257}) {
      for (int64_t N : {1, 5, 67}) {
        if (C > 1000 && N > 5) continue;
        const uint64_t seed = static_cast<uint64_t>(C * 100 + N);
        Tensor x = rnd({N, C}, seed, dt);
        for (bool weighted : {false, true}) {
          for (double ls : {0.0, 0.1}) {
            for (const char* red : kReductions) {
              INFO(dt << " N " << N << " C " << C << " weighted " << weighted << " ls " << ls << " "
                      << red);
              Opts o;
              o.weight = weighted ? rnd({C}, seed + 1, dt, 1.0) + 1.5 : Tensor();
              o.reduction = red;
              o.label_smoothing = ls;
              Tensor t = classes({N}, C, seed + 2, N > 1 ? 4 : 0);
              check_close(run(x, t, o, cu), run(x, t, o, kCPU), tol(dt));
            }
          }
        }
      }
    }
  }
}

TEST_CASE("cuda cross_entropy: rows in 16-byte chunks: heads, tails, offset logits") {
  if (!gpu()) return;
  for (DType dt : {kFloat32, kFloat64}) {
    for (int64_t C : {2, 3, 5, 33, 1025}) {
      const int64_t N = 7;
      const uint64_t seed = static_cast<uint64_t>(C * 31 + 5);
      for (double ls : {0.0, 0.1}) {
        INFO(dt << " C " << C << " ls " << ls);
        Opts o;
        o.label_smoothing = ls;
        o.reduction = "sum";
        Tensor t = classes({N}, C, seed + 2, 2);
        Tensor x = rnd({N, C}, seed, dt);
        check_close(run(x, t, o, cu), run(x, t, o, kCPU), tol(dt));
        // Logits as a contiguous view at an odd element offset: x and dx then sit differently
        // against 16-byte boundaries (the backward walks element by element).
        Tensor wide = rnd({N * C + 1}, seed + 3, dt);
        Tensor xo = wide.narrow(0, 1, N * C).reshape({N, C});
        check_close(run(xo, t, o, cu), run(xo, t, o, kCPU), tol(dt));
      }
    }
  }
}

TEST_CASE("cuda cross_entropy: (N, C, d1, d2), unbatched (C,), another ignore_index") {
  if (!gpu()) return;
  for (DType dt : {kFloat32, kFloat64}) {
    for (const std::vector<int64_t>& shape :
         std::vector<std::vector<int64_t>>{{2, 5, 3, 7}, {3, 17, 33, 2}, {1, 1, 4, 5}}) {
      std::vector<int64_t> tshape = shape;
      tshape.erase(tshape.begin() + 1);
      const int64_t C = shape[1];
      const uint64_t seed = static_cast<uint64_t>(shape[0] * 1000 + C * 10 + shape[2]);
      Tensor x = rnd(shape, seed, dt);
      const int64_t ignore_index = C > 2 ? 2 : -100;  // a class index where there is one
      Tensor t = classes(tshape, C, seed + 1, 5, ignore_index);
      for (bool weighted : {false, true}) {
        for (double ls : {0.0, 0.2}) {
          for (const char* red : kReductions) {
            INFO(dt << " shape " << IntArrayRef(shape) << " weighted " << weighted << " ls " << ls
                    << " " << red);
            Opts o;
            o.weight = weighted ? rnd({C}, seed + 2, dt, 1.0) + 1.5 : Tensor();
            o.ignore_index = ignore_index;
            o.reduction = red;
            o.label_smoothing = ls;
            check_close(run(x, t, o, cu), run(x, t, o, kCPU), tol(dt));
          }
        }
      }
    }
    INFO(dt << " unbatched");
    Tensor x = rnd({11}, 7, dt);
    Opts o;
    o.label_smoothing = 0.05;
    check_close(run(x, tensor(int64_t{4}), o, cu), run(x, tensor(int64_t{4}), o, kCPU), tol(dt));
  }
}

TEST_CASE("cuda cross_entropy: logits of 1e30 and -inf, every logit -inf") {
  if (!gpu()) return;
  const double inf = std::numeric_limits<double>::infinity();
  for (DType dt : {kFloat32, kFloat64}) {
    // Huge logits, ties at huge logits, -inf at a non-target class, a huge negative target, a row
    // whose only finite logit is the target, and -inf at the target.
    Tensor x = tensor({{1e30, -1e30, 0.0, 1.0},
                       {0.0, 1e30, 1e30, -1e30},
                       {-inf, 1.0, 2.0, -inf},
                       {-1e30, 1e30, 3.0, 2.0},
                       {-inf, -inf, 5.0, -inf},
                       {-inf, 1.0, 2.0, 0.5}},
                      dt);
    Tensor t = tensor({1, 2, 2, 0, 2, 0});
    for (double ls : {0.0, 0.1}) {
      for (const char* red : kReductions) {
        INFO(dt << " ls " << ls << " " << red);
        Opts o;
        o.reduction = red;
        o.label_smoothing = ls;
        const std::vector<Tensor> got = run(x, t, o, cu), want = run(x, t, o, kCPU);
        // agree: infinities and NaN at the same places, finite values close.
        CHECK(agree(got[0], want[0], tol(dt)));
        CHECK(agree(got[1], want[1], tol(dt)));
      }
    }
    Opts none;
    none.reduction = "none";
    Tensor all = full({2, 3}, -inf, dt);
    const std::vector<double> got =
        values(F::cross_entropy(all.to(cu), tensor({1, 0}).to(cu), {}, -100, "none").cpu());
    for (double v : got) CHECK(std::isnan(v));
  }
}

TEST_CASE("cuda cross_entropy: every target ignored, empty batches") {
  if (!gpu()) return;
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dt);
    Tensor x = rnd({3, 4}, 601, dt);
    Tensor t = full({3}, Scalar(int64_t{-100}), kInt64);
    Opts o;
    std::vector<Tensor> got = run(x, t, o, cu, ones({}, dt));
    CHECK(std::isnan(values(got[0])[0]));
    CHECK(bitwise_equal(got[1], zeros({3, 4}, dt)));
    o.reduction = "sum";
    got = run(x, t, o, cu, ones({}, dt));
    CHECK(values(got[0])[0] == 0.0);
    CHECK(bitwise_equal(got[1], zeros({3, 4}, dt)));
    // No rows: the composite's results, on either device.
    Tensor e = empty({0, 5}, dt), te = empty({0}, kInt64);
    for (const char* red : kReductions) {
      INFO(red);
      Tensor a = F::cross_entropy(e, te, {}, -100, red);
      Tensor b = F::cross_entropy(e.to(cu), te.to(cu), {}, -100, red);
      CHECK(agree(b.cpu(), a, 0.0));
    }
  }
}

TEST_CASE("cuda cross_entropy: non-contiguous inputs and repeated runs give bitwise the same") {
  if (!gpu()) return;
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dt);
    // 5000 rows: several chunks of the reduction sums.
    Tensor x = rnd({37, 5000}, 701, dt).t();  // (5000, 37), transposed in memory
    Tensor t = classes({5000}, 37, 702, 9);
    REQUIRE(!x.is_contiguous());
    for (const char* red : kReductions) {
      INFO(red);
      Opts o;
      o.reduction = red;
      o.label_smoothing = 0.1;
      o.weight = rnd({37}, 703, dt, 1.0) + 1.5;
      const std::vector<Tensor> strided = run(x, t, o, cu);
      const std::vector<Tensor> dense = run(x.contiguous(), t, o, cu);
      CHECK(bitwise_equal(strided[0], dense[0]));
      CHECK(bitwise_equal(strided[1], dense[1]));
      const std::vector<Tensor> again = run(x.contiguous(), t, o, cu);
      CHECK(bitwise_equal(again[0], dense[0]));
      CHECK(bitwise_equal(again[1], dense[1]));
      check_close(dense, run(x, t, o, kCPU), tol(dt));
    }
  }
}

TEST_CASE("cuda cross_entropy: float16 and bfloat16 logits in float32, in and out of autocast") {
  // 16-bit logits are read as they are (16-byte chunks of 8, heads and tails, odd offsets) and
  // computed in float32; dx is rounded once to 16 bits. In an autocast scope the loss is float32
  // and the node's input is the 16-bit tensor itself (no float32 copy). Against the CPU kernel,
  // which is bitwise the float32 path: the float32 loss within 1e-5, 16-bit results within 1e-2
  // of the largest value (a bfloat16 step is 2^-8 of it).
  if (!gpu()) return;
  struct Layout {
    std::vector<int64_t> x, t;
    int64_t C;
    bool offset;  // the logits a contiguous view at an odd element offset
  };
  const std::vector<Layout> layouts = {
      {{5, 1}, {5}, 1, false},        {{9, 7}, {9}, 7, true},
      {{7, 33}, {7}, 33, true},       {{6, 1000}, {6}, 1000, false},
      {{3, 50257}, {3}, 50257, true}, {{2, 5, 3, 7}, {2, 3, 7}, 5, false}};
  uint64_t seed = 1200;
  for (DType dt : {kFloat16, kBFloat16}) {
    for (const Layout& l : layouts) {
      for (int variant = 0; variant < 2; ++variant) {
        for (const char* red : kReductions) {
          INFO(dt << " x " << IntArrayRef(l.x) << " offset " << l.offset << " variant " << variant
                  << " " << red);
          ++seed;
          int64_t n = 1;
          for (int64_t d : l.x) n *= d;
          Tensor x = rnd({n + 1}, seed, kFloat32, 4.0).to(dt);
          x = (l.offset ? x.narrow(0, 1, n) : x.narrow(0, 0, n)).reshape(l.x);
          const Tensor t = classes(l.t, l.C, seed + 1, variant == 1 ? 3 : 0);
          const Opts o = mixed_precision_opts(variant, red, l.C, seed + 2);
          const Tensor dy =
              rnd(o.reduction == "none" ? l.t : std::vector<int64_t>{}, seed + 3, kFloat32, 1.0);
          std::vector<Tensor> got, want;
          {
            auto scope = autocast(dt);
            got = run(x, t, o, cu, dy);
            want = run(x, t, o, kCPU, dy);
          }
          CHECK(got[0].dtype() == kFloat32);
          CHECK(got[1].dtype() == dt);
          CHECK(rel_err(got[0], want[0]) <= 1e-5);
          CHECK(rel_err(got[1].to(kFloat64), want[1].to(kFloat64)) <= 1e-2);
          // Outside autocast: a loss of x's dtype.
          Tensor xl = x.to(cu).detach().requires_grad_();
          Tensor y = F::cross_entropy(xl, t.to(cu), o.weight.defined() ? o.weight.to(cu) : Tensor(),
                                      o.ignore_index, o.reduction, o.label_smoothing);
          CHECK(y.dtype() == dt);
          Tensor dx = autograd::grad({y}, {xl}, {dy.to(dt).to(cu)})[0];
          CHECK(rel_err(y.detach().cpu().to(kFloat64), want[0].to(kFloat64)) <= 1e-2);
          CHECK(rel_err(dx.cpu().to(kFloat64), want[1].to(kFloat64)) <= 1e-2);
        }
      }
    }
  }
  // The autocast node reads the 16-bit logits, and repeated runs are bitwise the same.
  Tensor x = rnd({64, 5003}, 1299, kFloat32).to(kBFloat16).to(cu);
  Tensor t = classes({64}, 5003, 1298, 5).to(cu);
  auto scope = autocast(kBFloat16);
  Tensor xl = x.detach().requires_grad_();
  Tensor y1 = F::cross_entropy(xl, t);
  REQUIRE(node_name(y1) == "cross_entropy");
  CHECK(y1.grad_fn()->input_meta[0].dtype == kBFloat16);
  Tensor g1 = autograd::grad({y1}, {xl})[0];
  Tensor y2 = F::cross_entropy(xl, t);
  Tensor g2 = autograd::grad({y2}, {xl})[0];
  CHECK(bitwise_equal(y1.detach().cpu(), y2.detach().cpu()));
  CHECK(bitwise_equal(g1.cpu(), g2.cpu()));
}

TEST_CASE("cuda cross_entropy: errors are the CPU's") {
  if (!gpu()) return;
  Tensor x = rnd({4, 6}, 801, kFloat32);
  for (Device d : {Device(kCPU), cu}) {
    INFO(d);
    EMBER_CHECK_THROWS(F::cross_entropy(x.to(d), tensor({0, 1, 6, 2}).to(d)), IndexError,
                       "[cross_entropy]", "6");
    EMBER_CHECK_THROWS(F::cross_entropy(x.to(d), tensor({0, 1, 2}).to(d)), ShapeError,
                       "[cross_entropy]", "(4, 6)");
    EMBER_CHECK_THROWS(F::cross_entropy(x.to(d), tensor({0, 1, 2, 3}).to(d), ones({5}).to(d)),
                       ShapeError, "[cross_entropy]", "weight");
    EMBER_CHECK_THROWS(F::cross_entropy(x.to(d), tensor({0, 1, 2, 3}).to(d), {}, -100, "avg"),
                       ValueError, "[cross_entropy]", "reduction");
    EMBER_CHECK_THROWS(F::cross_entropy(x.to(d), tensor({0, 1, 2, 3}).to(d), {}, -100, "mean", 1.5),
                       ValueError, "[cross_entropy]", "label_smoothing");
  }
}
