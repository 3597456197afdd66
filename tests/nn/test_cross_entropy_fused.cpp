// The fused cross-entropy kernel (src/core/cpu/cross_entropy.cpp) behind
// nn::functional::cross_entropy with class-index targets, against the composite
// cross_entropy_reference: losses and input gradients for every reduction, float32 and float64,
// odd class counts (1, 3, 1000, 5003), one row, class weights, ignore_index, label smoothing, the
// (N, C, d1, d2) layout, unbatched input, non-contiguous inputs (bitwise), 1 / 2 / 3 threads
// (bitwise), logits of 1e30 and -inf, gradcheck + gradgradcheck (double backward through the
// composite), float16/bfloat16 logits computed in float32 (bitwise the float32 path, in and out
// of autocast), the cases left to the composite, and the composite's errors.
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "ember/nn/functional/loss.hpp"
#include "gradcheck.hpp"
#include "nn/ce_test_util.hpp"

using namespace ember;
namespace F = ember::nn::functional;
using test::bitwise_equal;
using test::grad_input;
using test::message_of;
using test::node_name;
using test::rel_err;
using test::values;
using test::ce::classes;
using test::ce::mixed_precision_opts;
using test::ce::Opts;
using test::ce::rnd;

namespace {


using Ce = std::function<Tensor(const Tensor&, const Tensor&, const Opts&)>;
const Ce fused = [](const Tensor& x, const Tensor& t, const Opts& o) {
  return F::cross_entropy(x, t, o.weight, o.ignore_index, o.reduction, o.label_smoothing);
};
const Ce reference = [](const Tensor& x, const Tensor& t, const Opts& o) {
  return F::cross_entropy_reference(x, t, o.weight, o.ignore_index, o.reduction, o.label_smoothing);
};

/// {loss, dx}: the loss and the input gradient for the output gradient dy (undefined: a seeded
/// random one of the loss's shape). x keeps its strides.
std::vector<Tensor> run(const Ce& fn, const Tensor& x, const Tensor& t, const Opts& o,
                        Tensor dy = {}) {
  Tensor xl = x.detach().requires_grad_();
  Tensor y = fn(xl, t, o);
  if (!dy.defined()) dy = rnd(y.sizes().vec(), 99, y.dtype(), 1.0);
  Tensor dx = autograd::grad({y}, {xl}, {dy})[0];
  return {y.detach(), dx};
}

double tol(DType dt) { return dt == kFloat64 ? 1e-13 : 2e-6; }

void check_close(const std::vector<Tensor>& got, const std::vector<Tensor>& want, double t) {
  const char* const names[] = {"loss", "dx"};
  for (size_t i = 0; i < 2; ++i) {
    INFO(names[i]);
    REQUIRE(got[i].defined());
    CHECK(got[i].dtype() == want[i].dtype());
    CHECK(got[i].sizes() == want[i].sizes());
    CHECK(rel_err(got[i], want[i]) <= t);
  }
}

const char* const kReductions[] = {"none", "sum", "mean"};

}  // namespace

TEST_CASE("cross_entropy fused: matches the composite, forward and gradients") {
  for (DType dt : {kFloat32, kFloat64}) {
    for (int64_t C : {1, 3, 17, 1000, 5003}) {
      for (int64_t N : {1, 7, 64}) {
        if (C >= 1000 && N > 7) continue;
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
              // Some ignored rows where there are several.
              Tensor t = classes({N}, C, seed + 2, N > 1 ? 4 : 0);
              check_close(run(fused, x, t, o), run(reference, x, t, o), tol(dt));
            }
          }
        }
      }
    }
  }
}

TEST_CASE("cross_entropy fused: another ignore_index, int32 targets, a weight of another dtype") {
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dt);
    Tensor x = rnd({9, 6}, 201, dt);
    Opts o;
    o.ignore_index = 2;  // a real class: its targets count for nothing
    o.label_smoothing = 0.2;
    o.weight = rnd({6}, 202, dt == kFloat32 ? kFloat64 : kFloat32, 1.0) + 1.5;
    Tensor t = classes({9}, 6, 203);
    for (const char* red : kReductions) {
      INFO(red);
      o.reduction = red;
      std::vector<Tensor> got = run(fused, x, t, o);
      check_close(got, run(reference, x, t, o), tol(dt));
      // int32 class indices give bitwise the int64 results.
      std::vector<Tensor> i32 = run(fused, x, t.to(kInt32), o);
      CHECK(bitwise_equal(i32[0], got[0]));
      CHECK(bitwise_equal(i32[1], got[1]));
    }
  }
}

TEST_CASE("cross_entropy fused: (N, C, d1, d2) and unbatched (C,) layouts") {
  const std::vector<std::vector<int64_t>> shapes = {
      {3, 5, 4, 7}, {2, 7, 130}, {2, 3, 1}, {1, 4, 65, 2}, {4, 1, 3, 3}};
  for (DType dt : {kFloat32, kFloat64}) {
    for (const std::vector<int64_t>& shape : shapes) {
      for (const char* red : kReductions) {
        for (double ls : {0.0, 0.15}) {
          INFO(dt << " shape " << IntArrayRef(shape) << " " << red << " ls " << ls);
          const int64_t C = shape[1];
          std::vector<int64_t> tshape = shape;
          tshape.erase(tshape.begin() + 1);
          const uint64_t seed = static_cast<uint64_t>(shape.size() * 1000 + C);
          Tensor x = rnd(shape, seed, dt);
          Opts o;
          o.reduction = red;
          o.label_smoothing = ls;
          o.weight = rnd({C}, seed + 1, dt, 1.0) + 1.5;
          Tensor t = classes(tshape, C, seed + 2, 5);
          check_close(run(fused, x, t, o), run(reference, x, t, o), tol(dt));
          o.weight = Tensor();
          check_close(run(fused, x, t, o), run(reference, x, t, o), tol(dt));
        }
      }
    }
    // Unbatched: input (C,), a 0-d target; "none" gives a 0-d loss.
    Tensor u = rnd({11}, 301, dt);
    for (const char* red : kReductions) {
      INFO(dt << " unbatched " << red);
      Opts o;
      o.reduction = red;
      o.label_smoothing = 0.05;
      std::vector<Tensor> got = run(fused, u, tensor(int64_t{4}), o);
      CHECK(got[0].dim() == 0);
      check_close(got, run(reference, u, tensor(int64_t{4}), o), tol(dt));
    }
  }
}

TEST_CASE("cross_entropy fused: non-contiguous inputs give bitwise the contiguous results") {
  for (DType dt : {kFloat32, kFloat64}) {
    for (const char* red : kReductions) {
      INFO(dt << " " << red);
      Opts o;
      o.reduction = red;
      o.label_smoothing = 0.1;
      o.weight = rnd({45}, 401, dt, 1.0) + 1.5;
      Tensor x = rnd({37, 45}, 402, dt);
      Tensor t = classes({37}, 45, 403, 6);
      Tensor dy =
          rnd(std::string(red) == "none" ? std::vector<int64_t>{37} : std::vector<int64_t>{}, 404,
              dt, 1.0);
      std::vector<Tensor> dense = run(fused, x, t, o, dy);
      // A transposed view, a strided view, a strided target, a strided weight and dy.
      Tensor xt = x.t().contiguous().t();
      REQUIRE_FALSE(xt.is_contiguous());
      Opts os = o;
      os.weight = test::non_contiguous(o.weight);
      const std::vector<std::vector<Tensor>> views = {
          run(fused, xt, t, o, dy),
          run(fused, test::non_contiguous(x), test::non_contiguous(t), os,
              test::non_contiguous(dy)),
      };
      for (const std::vector<Tensor>& v : views) {
        CHECK(bitwise_equal(v[0], dense[0]));
        CHECK(bitwise_equal(v[1], dense[1]));
      }
      // Channels last (N, C, H, W): the same values in another memory order.
      Tensor x4 = rnd({3, 6, 5, 4}, 405, dt), t4 = classes({3, 5, 4}, 6, 406, 7);
      Tensor dy4 =
          rnd(std::string(red) == "none" ? std::vector<int64_t>{3, 5, 4} : std::vector<int64_t>{},
              407, dt, 1.0);
      Tensor cl = x4.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
      REQUIRE_FALSE(cl.is_contiguous());
      Opts o4;
      o4.reduction = red;
      std::vector<Tensor> a = run(fused, x4, t4, o4, dy4), b = run(fused, cl, t4, o4, dy4);
      CHECK(bitwise_equal(a[0], b[0]));
      CHECK(bitwise_equal(a[1], b[1]));
    }
  }
}

TEST_CASE("cross_entropy fused: 1, 2 and 3 threads give bitwise the same losses and gradients") {
  const int threads = get_num_threads();
  // Many row tasks (300 x 1000), many rows per sum chunk (5000 x 16), tiles of (N, C, S).
  const std::vector<std::vector<int64_t>> shapes = {{300, 1000}, {5000, 16}, {6, 9, 200}};
  for (DType dt : {kFloat32, kFloat64}) {
    for (const std::vector<int64_t>& shape : shapes) {
      for (const char* red : kReductions) {
        INFO(dt << " shape " << IntArrayRef(shape) << " " << red);
        const int64_t C = shape[1];
        std::vector<int64_t> tshape = shape;
        tshape.erase(tshape.begin() + 1);
        Tensor x = rnd(shape, 501, dt);
        Tensor t = classes(tshape, C, 502, 9);
        Opts o;
        o.reduction = red;
        o.label_smoothing = 0.1;
        o.weight = rnd({C}, 503, dt, 1.0) + 1.5;
        std::vector<std::vector<Tensor>> runs;
        for (int n : {1, 2, 3}) {
          set_num_threads(n);
          runs.push_back(run(fused, x, t, o));
        }
        set_num_threads(threads);
        for (size_t k = 1; k < runs.size(); ++k) {
          INFO("threads " << k + 1);
          CHECK(bitwise_equal(runs[k][0], runs[0][0]));
          CHECK(bitwise_equal(runs[k][1], runs[0][1]));
        }
        // The comparison can fail: other logits give other bits.
        CHECK_FALSE(bitwise_equal(run(fused, x * 1.5, t, o)[1], runs[0][1]));
      }
    }
  }
}

TEST_CASE("cross_entropy fused: logits of 1e30 and -inf stay finite where the composite is") {
  const double inf = std::numeric_limits<double>::infinity();
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dt);
    // Rows: huge logits, ties at huge logits, -inf at a non-target class, a huge negative target.
    Tensor x = tensor({{1e30, -1e30, 0.0, 1.0},
                       {0.0, 1e30, 1e30, -1e30},
                       {-inf, 1.0, 2.0, -inf},
                       {-1e30, 1e30, 3.0, 2.0},
                       {-inf, -inf, 5.0, -inf}},
                      dt);
    Tensor t = tensor({1, 2, 2, 0, 2});
    for (const char* red : kReductions) {
      INFO(red);
      Opts o;
      o.reduction = red;
      std::vector<Tensor> got = run(fused, x, t, o), want = run(reference, x, t, o);
      for (double v : values(got[0])) CHECK(std::isfinite(v));
      for (double v : values(got[1])) CHECK(std::isfinite(v));
      CHECK(rel_err(got[0], want[0]) <= tol(dt));
      CHECK(rel_err(got[1], want[1]) <= tol(dt));
    }
    // Exact values: one-hot softmax at the max (shared by ties), loss of a 1e30 gap is 1e30.
    Opts none;
    none.reduction = "none";
    std::vector<Tensor> got = run(fused, x, t, none, ones({5}, dt));
    const std::vector<double> loss = values(got[0]);
    CHECK(loss[0] == Approx(2e30));
    CHECK(loss[1] == Approx(std::log(2.0)).epsilon(1e-6));
    CHECK(loss[2] == Approx(std::log1p(std::exp(-1.0))).epsilon(1e-6));
    CHECK(loss[4] == 0.0);
    const std::vector<double> g = values(got[1]);
    const std::vector<double> g1 = {g[4], g[5], g[6], g[7]};
    CHECK(g1 == std::vector<double>{0.0, 0.5, -0.5, 0.0});
    CHECK(g[8] == 0.0);   // -inf logit: probability 0
    CHECK(g[16] == 0.0);  // a row whose only finite logit is the target
    CHECK(g[18] == 0.0);
    // -inf at the target: an infinite loss (as PyTorch) with a finite gradient; with label
    // smoothing every row holding a -inf logit is infinite.
    Tensor xi = tensor({{-inf, 1.0, 2.0}}, dt), ti = tensor({0});
    std::vector<Tensor> a = run(fused, xi, ti, none, ones({1}, dt));
    std::vector<Tensor> b = run(reference, xi, ti, none, ones({1}, dt));
    CHECK(values(a[0])[0] == inf);
    CHECK(values(b[0])[0] == inf);
    for (double v : values(a[1])) CHECK(std::isfinite(v));
    CHECK(rel_err(a[1], b[1]) <= tol(dt));
    Opts smooth = none;
    smooth.label_smoothing = 0.1;
    a = run(fused, xi, tensor({2}), smooth, ones({1}, dt));
    b = run(reference, xi, tensor({2}), smooth, ones({1}, dt));
    CHECK(values(a[0])[0] == inf);
    CHECK(values(b[0])[0] == inf);
    CHECK(rel_err(a[1], b[1]) <= tol(dt));
    // Every logit -inf: NaN, as the composite (and PyTorch).
    Tensor all = full({1, 3}, -inf, dt);
    CHECK(std::isnan(values(F::cross_entropy(all, tensor({1}), {}, -100, "none"))[0]));
    CHECK(
        std::isnan(values(F::cross_entropy_reference(all, tensor({1}), {}, -100, "none", 0.0))[0]));
  }
}

TEST_CASE("cross_entropy fused: every target ignored gives NaN for mean, 0 for sum, zero grads") {
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dt);
    Tensor x = rnd({3, 4}, 601, dt);
    Tensor t = full({3}, Scalar(int64_t{-100}), kInt64);
    Opts o;
    std::vector<Tensor> got = run(fused, x, t, o, ones({}, dt));
    CHECK(std::isnan(values(got[0])[0]));
    CHECK(bitwise_equal(got[1], zeros({3, 4}, dt)));
    o.reduction = "sum";
    got = run(fused, x, t, o, ones({}, dt));
    CHECK(values(got[0])[0] == 0.0);
    CHECK(bitwise_equal(got[1], zeros({3, 4}, dt)));
  }
}

TEST_CASE("cross_entropy fused: gradcheck and gradgradcheck (double backward via the composite)") {
  Tensor w = rnd({4}, 701, kFloat64, 0.5) + 1.0;
  Tensor t = tensor({3, 0, -100, 1, 2});
  Tensor t4 = tensor({{{1, 0}, {2, -100}}, {{0, 0}, {1, 2}}});  // (2, 2, 2)
  for (const char* red : kReductions) {
    for (double ls : {0.0, 0.2}) {
      INFO(red << " ls " << ls);
      const std::string r = red;
      auto f = [&](const std::vector<Tensor>& in) {
        return F::cross_entropy(in[0], t, w, -100, r, ls);
      };
      CHECK(test::gradcheck(f, {grad_input({5, 4})}));
      CHECK(test::gradgradcheck(f, {grad_input({5, 4})}));
      auto g = [&](const std::vector<Tensor>& in) {
        return F::cross_entropy(in[0], t4, {}, -100, r, ls);
      };
      CHECK(test::gradcheck(g, {grad_input({2, 3, 2, 2})}));
      CHECK(test::gradgradcheck(g, {grad_input({2, 3, 2, 2})}));
    }
  }
  // The double-backward gradient equals the composite's, and the fused op records one node.
  Tensor x = grad_input({3, 5});
  Tensor tx = tensor({4, 0, 2});
  Tensor wx = rnd({5}, 702, kFloat64, 0.5) + 1.0;
  auto second = [&](const Ce& fn) {
    Opts o;
    o.weight = wx;
    o.label_smoothing = 0.1;
    Tensor y = fn(x, tx, o);
    Tensor gx = autograd::grad({y}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];
    return autograd::grad({(gx * gx * gx).sum()}, {x})[0];
  };
  CHECK(rel_err(second(fused), second(reference)) <= 1e-12);
  CHECK(node_name(F::cross_entropy(x, tx)) == "cross_entropy");
}

TEST_CASE("cross_entropy fused: float16 and bfloat16 logits are computed in float32") {
  // 16-bit logits go to the fused kernel as they are. The loss and the input gradient are bitwise
  // those of the float32 logits x.to(float32), the gradient rounded once to x's dtype: outside
  // autocast with the loss rounded to x's dtype (PyTorch's result dtype), in an autocast scope as
  // float32 (what autocast's cast to float32 gives, without the float32 copy).
  struct Layout {
    std::vector<int64_t> x, t;
    int64_t C;
  };
  const std::vector<Layout> layouts = {{{6, 5}, {6}, 5},
                                       {{3, 1003}, {3}, 1003},
                                       {{2, 4, 3, 5}, {2, 3, 5}, 4},
                                       {{2, 3, 9, 9}, {2, 9, 9}, 3}};  // two tiles of columns
  uint64_t seed = 1100;
  for (DType dt : {kFloat16, kBFloat16}) {
    for (const Layout& l : layouts) {
      for (int variant = 0; variant < 2; ++variant) {
        for (const char* red : kReductions) {
          INFO(dt << " x " << IntArrayRef(l.x) << " variant " << variant << " " << red);
          ++seed;
          const Tensor x = rnd(l.x, seed, kFloat32, 4.0).to(dt);
          const Tensor t = classes(l.t, l.C, seed + 7, variant == 1 ? 3 : 0);
          const Opts o = mixed_precision_opts(variant, red, l.C, seed + 9);
          const Ce via_float32 = [](const Tensor& xl, const Tensor& tl, const Opts& ol) {
            return fused(xl.to(kFloat32), tl, ol);
          };
          // Outside autocast: a loss of x's dtype.
          const Tensor dy =
              rnd(o.reduction == "none" ? l.t : std::vector<int64_t>{}, seed + 11, kFloat32, 1.0);
          std::vector<Tensor> got = run(fused, x, t, o, dy.to(dt));
          const Ce rounded = [&](const Tensor& xl, const Tensor& tl, const Opts& ol) {
            return via_float32(xl, tl, ol).to(dt);
          };
          std::vector<Tensor> want = run(rounded, x, t, o, dy.to(dt));
          CHECK(got[0].dtype() == dt);
          CHECK(got[1].dtype() == dt);
          CHECK(bitwise_equal(got[0], want[0]));
          CHECK(bitwise_equal(got[1], want[1]));
          // In an autocast scope: a float32 loss, the node reading x itself (no cast before it).
          {
            auto scope = autocast(dt);
            Tensor xl = x.detach().requires_grad_();
            Tensor y = fused(xl, t, o);
            CHECK(y.dtype() == kFloat32);
            REQUIRE(node_name(y) == "cross_entropy");
            CHECK(y.grad_fn()->input_meta[0].dtype == dt);
            Tensor dx = autograd::grad({y}, {xl}, {dy})[0];
            std::vector<Tensor> w32 = run(via_float32, x, t, o, dy);
            CHECK(bitwise_equal(y.detach(), w32[0]));
            CHECK(bitwise_equal(dx, w32[1]));
          }
          // And close to float64 on the same 16-bit values.
          std::vector<Tensor> w64 = run(
              [](const Tensor& xl, const Tensor& tl, const Opts& ol) {
                Opts o64 = ol;
                if (ol.weight.defined()) o64.weight = ol.weight.to(kFloat64);
                return reference(xl.to(kFloat64), tl, o64);
              },
              x, t, o, dy.to(kFloat64));
          CHECK(rel_err(want[0].to(kFloat64), w64[0]) <= 1e-2);
          std::vector<Tensor> w32 = run(via_float32, x, t, o, dy);
          CHECK(rel_err(w32[0].to(kFloat64), w64[0]) <= 2e-6);
          CHECK(rel_err(w32[1].to(kFloat64), w64[1].to(dt).to(kFloat64)) <= 1e-2);
        }
      }
    }
  }
}

TEST_CASE("cross_entropy fused: other cases run the composite") {
  Tensor x = rnd({4, 5}, 801, kFloat32);
  Tensor t = tensor({1, 0, 4, 2});
  // Class-probability targets.
  Tensor p = softmax(rnd({4, 5}, 802, kFloat32), 1);
  CHECK(bitwise_equal(F::cross_entropy(x, p),
                      F::cross_entropy_reference(x, p, {}, -100, "mean", 0.0)));
  // A weight that requires grad gets the composite's weight gradient.
  Tensor w1 = (rnd({5}, 803, kFloat32, 0.5) + 1.0).requires_grad_();
  Tensor w2 = w1.detach().requires_grad_();
  Tensor xl = x.detach().requires_grad_();
  Tensor l1 = F::cross_entropy(xl, t, w1, -100, "mean", 0.1);
  Tensor l2 = F::cross_entropy_reference(xl, t, w2, -100, "mean", 0.1);
  CHECK(bitwise_equal(l1, l2));
  CHECK(node_name(l1) != "cross_entropy");
  std::vector<Tensor> g1 = autograd::grad({l1}, {xl, w1}), g2 = autograd::grad({l2}, {xl, w2});
  CHECK(bitwise_equal(g1[0], g2[0]));
  CHECK(bitwise_equal(g1[1], g2[1]));
  // An empty batch.
  Tensor e = empty({0, 5});
  Tensor te = empty({0}, kInt64);
  CHECK(bitwise_equal(F::cross_entropy(e, te, {}, -100, "sum"),
                      F::cross_entropy_reference(e, te, {}, -100, "sum", 0.0)));
}

TEST_CASE("cross_entropy fused: error messages are the composite's") {
  Tensor x = rnd({2, 3}, 901, kFloat32);
  Tensor x4 = rnd({2, 3, 4, 5}, 902, kFloat32);
  struct Bad {
    std::string name;
    Tensor input, target, weight;
    int64_t ignore_index = -100;
    std::string reduction = "mean";
    double label_smoothing = 0.0;
  };
  const std::vector<Bad> cases = {
      {"target shape", x, tensor({0, 1, 2}), {}},
      {"target rank", x, tensor({{0, 1}}), {}},
      {"(N, C, d1, d2) target shape", x4, zeros({2, 4, 4}, kInt64), {}},
      {"class index C", x, tensor({0, 3}), {}},
      {"class index -1", x, tensor({-1, 0}), {}},
      {"class index out of range with ignore_index", x, tensor({5, 1}), {}, 1},
      {"weight shape", x, tensor({0, 1}), ones({4})},
      {"weight dtype", x, tensor({0, 1}), ones({3}, kInt64)},
      {"bool target", x, tensor({true, false}), {}},
      {"reduction", x, tensor({0, 1}), {}, -100, "avg"},
      {"label smoothing", x, tensor({0, 1}), {}, -100, "mean", 1.5},
      {"unbatched target", rnd({3}, 903, kFloat32), tensor({0}), {}},
  };
  for (const Bad& c : cases) {
    INFO(c.name);
    const std::string pub = message_of([&] {
      F::cross_entropy(c.input, c.target, c.weight, c.ignore_index, c.reduction, c.label_smoothing);
    });
    const std::string ref = message_of([&] {
      F::cross_entropy_reference(c.input, c.target, c.weight, c.ignore_index, c.reduction,
                                 c.label_smoothing);
    });
    CHECK_FALSE(pub.empty());
    CHECK(pub == ref);
  }
  EMBER_CHECK_THROWS(F::cross_entropy(x, tensor({0, 3})), IndexError, "[cross_entropy]",
                     "target 3 is out of bounds for 3 classes", "(2, 3)");
  EMBER_CHECK_THROWS(F::cross_entropy(x, tensor({0, 1, 2})), ShapeError, "[cross_entropy]",
                     "(2, 3)", "(2,)", "(3,)");
  EMBER_CHECK_THROWS(F::cross_entropy(x4, zeros({2, 4, 4}, kInt64)), ShapeError, "[cross_entropy]",
                     "(2, 3, 4, 5)", "(2, 4, 5)", "(2, 4, 4)");
  EMBER_CHECK_THROWS(F::cross_entropy(x, tensor({true, false})), DTypeError, "[cross_entropy]");
}
