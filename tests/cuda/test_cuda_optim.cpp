// The fused optimizer kernels on CUDA (src/cuda/optim.cu, taken by Adam, AdamW and SGD for
// contiguous float32/float64 CUDA parameters): several steps with fresh random gradients give
// bitwise the parameters and state of the composites they replace run on CUDA
// (detail::adam_update_reference, detail::sgd_update_reference, which run the CUDA elementwise
// kernels op by op), and agree with the same optimizer run on the CPU; special values propagate as
// in the composite; strided and empty parameters; the same errors as the CPU. The foreach passes
// (cuda::foreach_norm, foreach_mul_, foreach_unscale_): norms against float64 over two tables and
// chunk boundaries, bitwise repeatable, NaN and infinity; scaling bitwise the composite's; the
// non-finite flag; clip_grad_norm_ and GradScaler on CUDA (a non-contiguous gradient beside the
// foreach ones) against the CPU. Without a GPU each case prints "skipped".
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/kernels.hpp"
#include "cuda/cuda_test_util.hpp"
#include "ember/ember.hpp"
#include "ember/optim.hpp"
#include "optim/fused_configs.hpp"
#include "optim/util.hpp"

using namespace ember;
using ember::test::agree;
using ember::test::bitwise_equal;
using ember::test::gpu;
using ember::test::Config;
using ember::test::adam_config;
using ember::test::sgd_config;
using ember::test::all_configs;
using ember::test::states_of;

namespace {

const Device cu(kCUDA);
constexpr int kSteps = 5;
// 70001 elements: many blocks, and a size that is a multiple of no block.
const int64_t kSizes[] = {1, 7, 70001};


/// Equal bits, or NaN in both (NaN payloads are not specified).
bool same_bits_or_nan(const Tensor& a, const Tensor& b) {
  if (a.sizes() != b.sizes() || a.dtype() != b.dtype()) return false;
  const std::vector<double> x = test::values(a), y = test::values(b);
  for (size_t i = 0; i < x.size(); ++i)
    if (!(std::isnan(x[i]) && std::isnan(y[i])) && std::memcmp(&x[i], &y[i], sizeof(double)) != 0)
      return false;
  return true;
}

/// kSteps of `c` on a parameter of n random elements: the optimizer on a CUDA parameter (fused),
/// the composite on a CUDA copy (bitwise the same after every step), the optimizer on a CPU copy
/// (close).
void check_cuda_fused(const Config& c, DType dtype, int64_t n) {
  INFO(c.name << ", " << dtype << ", " << n << " elements");
  Generator gen(1234 + n);
  const TensorOptions opts(dtype);
  Tensor start = randn({n}, gen, opts);
  Tensor p = start.to(cu).requires_grad_();   // fused, CUDA
  Tensor q = start.to(cu);                    // composite, CUDA
  Tensor h = start.clone().requires_grad_();  // fused, CPU
  std::unique_ptr<optim::Optimizer> opt = c.make({p});
  std::unique_ptr<optim::Optimizer> cpu_opt = c.make({h});
  StateDict ref;
  const double tol = dtype == kFloat64 ? 1e-12 : 1e-5;
  for (int step = 1; step <= kSteps; ++step) {
    INFO("step " << step);
    Tensor g = randn({n}, gen, opts) * 0.5;
    p.mutable_grad() = g.to(cu);
    h.mutable_grad() = g.clone();
    CHECK(optim::detail::fused_update_applies(p.detach(), p.grad(), {}));
    opt->step();
    cpu_opt->step();
    {
      NoGradGuard no_grad;
      c.reference(q, g.to(cu), ref);
    }
    CHECK(p.is_cuda());
    CHECK(bitwise_equal(p.detach().cpu(), q.cpu()));
    CHECK(agree(p.detach().cpu(), h.detach(), tol));
    const std::vector<Tensor> got = states_of(*opt, p, c.states);
    const std::vector<Tensor> cpu_got = states_of(*cpu_opt, h, c.states);
    for (size_t i = 0; i < c.states.size(); ++i) {
      INFO(c.states[i]);
      REQUIRE(got[i].defined());
      REQUIRE(ref.contains(c.states[i]));
      CHECK(got[i].is_cuda());
      CHECK(bitwise_equal(got[i].cpu(), ref.at(c.states[i]).cpu()));
      CHECK(agree(got[i].cpu(), cpu_got[i], tol));
    }
    CHECK(opt->state(p)->keys() == ref.keys());
  }
}

}  // namespace

TEST_CASE("cuda fused optimizers: steps match the CUDA composite bitwise and the CPU closely") {
  if (!gpu()) return;
  for (const Config& c : all_configs())
    for (DType dtype : {kFloat32, kFloat64})
      for (int64_t n : kSizes) check_cuda_fused(c, dtype, n);
}

TEST_CASE("cuda fused optimizers: multi-tensor steps of a group (CUDA, and CUDA beside CPU)") {
  if (!gpu()) return;
  for (const Config& c : all_configs()) {
    test::check_multi_tensor(c, {cu}, 3);
    test::check_multi_tensor(c, {cu, Device(kCPU)}, 2);
  }
}

TEST_CASE("cuda fused optimizers: special values propagate as in the CUDA composite") {
  if (!gpu()) return;
  // inf, NaN, signed zeros and subnormals in the gradient and the parameter.
  const float inf = INFINITY, nan = NAN, tiny = 1e-40f;
  const std::vector<float> pv = {1.0f, -0.0f, 0.0f, tiny, -2.0f, 3.0f, inf, 0.5f, 1e30f};
  const std::vector<float> gv = {inf, 0.0f, -0.0f, tiny, nan, -inf, 1.0f, -tiny, 1e30f};
  for (const Config& c : all_configs()) {
    INFO(c.name);
    Tensor p = tensor(pv, kFloat32).to(cu).requires_grad_();
    Tensor q = tensor(pv, kFloat32).to(cu);
    std::unique_ptr<optim::Optimizer> opt = c.make({p});
    StateDict ref;
    for (int step = 0; step < 3; ++step) {
      const Tensor g = tensor(gv, kFloat32).to(cu);
      p.mutable_grad() = g.clone();
      opt->step();
      NoGradGuard no_grad;
      c.reference(q, g, ref);
    }
    CHECK(same_bits_or_nan(p.detach().cpu(), q.cpu()));
    const std::vector<Tensor> got = states_of(*opt, p, c.states);
    for (size_t i = 0; i < c.states.size(); ++i) {
      INFO(c.states[i]);
      CHECK(same_bits_or_nan(got[i].cpu(), ref.at(c.states[i]).cpu()));
    }
  }
}

TEST_CASE("cuda optimizers: strided (composite) and empty parameters, the CPU's errors") {
  if (!gpu()) return;
  for (const Config& c : {adam_config(true, true, 0.1), sgd_config(0.9, 0.5, false, 1e-2)}) {
    INFO(c.name);
    Generator gen(11);
    Tensor base = randn({13, 7}, gen);
    Tensor strided = base.to(cu).t().detach().requires_grad_();  // (7, 13), column-major
    Tensor host = base.t().detach().requires_grad_();
    REQUIRE_FALSE(strided.is_contiguous());
    std::unique_ptr<optim::Optimizer> a = c.make({strided});
    std::unique_ptr<optim::Optimizer> b = c.make({host});
    for (int step = 0; step < kSteps; ++step) {
      Tensor g = randn({7, 13}, gen);
      strided.mutable_grad() = g.to(cu);
      host.mutable_grad() = g.clone();
      a->step();
      b->step();
    }
    CHECK(agree(strided.detach().cpu(), host.detach(), 1e-5));
    // An empty parameter: nothing to update, no launch.
    Tensor e = empty({0, 3}).to(cu).requires_grad_();
    std::unique_ptr<optim::Optimizer> o = c.make({e});
    e.mutable_grad() = empty({0, 3}).to(cu);
    o->step();
    CHECK(e.numel() == 0);
  }
  for (Device d : {Device(kCPU), cu}) {
    INFO(d);
    Tensor p = zeros({3}).to(d).requires_grad_();
    EMBER_CHECK_THROWS(optim::Adam({p}, optim::AdamOptions(-1.0)), ValueError, "[Adam]",
                       "learning rate");
    EMBER_CHECK_THROWS(optim::SGD({p}, optim::SGDOptions(0.1).nesterov(true)), ValueError, "[SGD]",
                       "Nesterov");
  }
}

// ---- foreach: clip_grad_norm_'s norms and scaling, GradScaler's unscaling ----

namespace {

/// n random CUDA tensors of dtype with element counts around the kernels' chunk (4096) and
/// table (32 tensors) boundaries, empty ones included.
std::vector<Tensor> foreach_inputs(DType dtype, int count, Generator& g) {
  const int64_t sizes[] = {1, 0, 4096, 4097, 70001, 3, 12289, 255};
  std::vector<Tensor> xs;
  for (int i = 0; i < count; ++i)
    xs.push_back((randn({sizes[i % 8]}, g) * (1 + i % 5)).to(dtype).to(cu));
  return xs;
}

/// The p-norm of x's values in float64 on the CPU.
double norm64(const Tensor& x, double p) {
  double acc = 0;
  for (double v : test::values(x.cpu().to(kFloat64))) {
    if (std::isinf(p))
      acc = std::max(acc, std::abs(v));
    else
      acc += std::pow(std::abs(v), p);
  }
  return std::isinf(p) ? acc : std::pow(acc, 1 / p);
}

}  // namespace

TEST_CASE("cuda foreach_norm: each tensor's p-norm against float64, repeatable bitwise") {
  if (!gpu()) return;
  Generator g(5101);
  for (DType dt : {kFloat32, kFloat64}) {
    for (double p : {2.0, 1.0, 3.0, double(INFINITY)}) {
      INFO(dt << " p " << p);
      const std::vector<Tensor> xs = foreach_inputs(dt, 41, g);      // two tables
      Tensor norms = full({41}, NAN, TensorOptions(dt).device(cu));  // poisoned
      cuda::foreach_norm(norms, xs, p);
      const std::vector<double> got = test::values(norms.cpu().to(kFloat64));
      const double tol = dt == kFloat32 ? 2e-7 : 1e-13;
      for (size_t i = 0; i < xs.size(); ++i) {
        const double want = norm64(xs[i], p);
        INFO("tensor " << i << " of " << xs[i].numel());
        CHECK(std::abs(got[i] - want) <= tol * want);
      }
      Tensor again = empty({41}, TensorOptions(dt).device(cu));
      cuda::foreach_norm(again, xs, p);
      CHECK(bitwise_equal(norms.cpu(), again.cpu()));
    }
  }
  // NaN and infinity: the 2-norm of a tensor holding NaN is NaN, its inf-norm NaN too; an
  // infinite element gives infinity.
  std::vector<Tensor> xs = foreach_inputs(kFloat32, 3, g);
  xs[2] = tensor({1.f, INFINITY, 2.f}).to(cu);
  xs[0] = tensor({NAN}).to(cu);
  for (double p : {2.0, double(INFINITY)}) {
    Tensor norms = empty({3}, TensorOptions(kFloat32).device(cu));
    cuda::foreach_norm(norms, xs, p);
    const std::vector<double> v = test::values(norms.cpu());
    CHECK(std::isnan(v[0]));
    CHECK(v[1] == 0);  // empty
    CHECK(std::isinf(v[2]));
  }
  EMBER_CHECK_THROWS(cuda::foreach_norm(empty({2}, TensorOptions(kFloat32).device(cu)), xs, 2),
                     ValueError, "[foreach_norm]", "3 elements");
  EMBER_CHECK_THROWS(
      cuda::foreach_norm(empty({1}, TensorOptions(kFloat32).device(cu)), {xs[2].to(kFloat64)}, 2),
      ValueError, "[foreach_norm]");
}

TEST_CASE("cuda foreach_mul_ and foreach_unscale_: bitwise the composite, the non-finite flag") {
  if (!gpu()) return;
  Generator g(5102);
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dt);
    const std::vector<Tensor> xs = foreach_inputs(dt, 37, g);
    std::vector<Tensor> ys, want;
    for (const Tensor& x : xs) ys.push_back(x.clone());
    const Tensor scale = full({1}, 0.3, TensorOptions(dt).device(cu));
    cuda::foreach_mul_(ys, scale);
    for (size_t i = 0; i < xs.size(); ++i) CHECK(bitwise_equal(ys[i].cpu(), (xs[i] * scale).cpu()));
    // Unscale: the product by the rounded 1 / scale, the flag untouched while all are finite.
    const double inv = 1.0 / 65536.0 * 3;
    Tensor flag = zeros({1}, TensorOptions(kFloat32).device(cu));
    std::vector<Tensor> zs;
    for (const Tensor& x : xs) zs.push_back(x.clone());
    cuda::foreach_unscale_(zs, inv, flag);
    for (size_t i = 0; i < xs.size(); ++i) CHECK(bitwise_equal(zs[i].cpu(), (xs[i] * inv).cpu()));
    CHECK(flag.cpu().item<float>() == 0.f);
    // One overflow (finite times a huge inverse scale) or NaN in any tensor sets it.
    zs[20].view({-1})[0].fill_(1e300);  // float32: inf already; float64: inf after the product
    cuda::foreach_unscale_(zs, 1e300, flag);
    CHECK(flag.cpu().item<float>() == 1.f);
    Tensor flag2 = zeros({1}, TensorOptions(kFloat32).device(cu));
    std::vector<Tensor> ns{xs[0].clone(), tensor({1.0, NAN}).to(dt).to(cu)};
    cuda::foreach_unscale_(ns, 1.0, flag2);
    CHECK(flag2.cpu().item<float>() == 1.f);
  }
}

TEST_CASE("cuda clip_grad_norm_ and GradScaler: the foreach passes agree with the CPU") {
  if (!gpu()) return;
  Generator g(5103);
  // 45 parameters (two tables), one of them without a gradient, one non-contiguous gradient
  // (the one-op path beside the foreach one).
  std::vector<Tensor> pc, pg;
  for (int i = 0; i < 45; ++i) {
    const Tensor w = randn({3 + i % 7, 11}, g);
    pc.push_back(w.clone().requires_grad_());
    pg.push_back(w.to(cu).requires_grad_());
  }
  for (size_t i = 0; i < pc.size(); ++i) {
    if (i == 5) continue;
    const Tensor grad = randn(pc[i].sizes(), g) * 4;
    pc[i].mutable_grad() = grad.clone();
    pg[i].mutable_grad() = i == 9 ? grad.t().contiguous().to(cu).t() : grad.to(cu);
  }
  REQUIRE_FALSE(pg[9].grad().is_contiguous());
  for (double p : {2.0, double(INFINITY)}) {
    INFO("p " << p);
    std::vector<Tensor> gc, gg;
    for (size_t i = 0; i < pc.size(); ++i) {
      gc.push_back(pc[i].grad().defined() ? pc[i].grad().clone() : Tensor());
      gg.push_back(pg[i].grad().defined() ? pg[i].grad().clone() : Tensor());
    }
    const Tensor tc = nn::utils::clip_grad_norm_(pc, 1.0, p);
    const Tensor tg = nn::utils::clip_grad_norm_(pg, 1.0, p);
    CHECK(tg.is_cuda());
    CHECK(std::abs(tg.cpu().item<double>() - tc.item<double>()) <= 1e-6 * tc.item<double>());
    for (size_t i = 0; i < pc.size(); ++i) {
      if (i == 5) continue;
      CHECK(test::rel_err(pg[i].grad().cpu(), pc[i].grad()) <= 1e-6);
      // Restore the unclipped gradients for the next p.
      pc[i].mutable_grad() = gc[i];
      pg[i].mutable_grad() = gg[i];
    }
  }
  // GradScaler: gradients unscaled as on the CPU; a non-finite one skips the step and backs off.
  for (bool overflow : {false, true}) {
    INFO("overflow " << overflow);
    std::vector<Tensor> params{pg[0], pg[1], pg[9]};
    if (overflow) pg[1].mutable_grad().view({-1})[2].fill_(INFINITY);
    const std::vector<Tensor> before{pg[0].detach().clone(), pg[1].detach().clone()};
    const Tensor g0 = pg[0].grad().cpu();
    optim::SGD opt(params, optim::SGDOptions(0.1));
    optim::GradScaler scaler(optim::GradScalerOptions{.init_scale = 1024.0});
    scaler.unscale_(opt);
    CHECK(bitwise_equal(pg[0].grad().cpu(), g0 * (1.0 / 1024.0)));
    CHECK(scaler.step(opt) == !overflow);
    scaler.update();
    CHECK(scaler.get_scale() == (overflow ? 512.0 : 1024.0));
    CHECK(bitwise_equal(pg[0].detach().cpu(), before[0].cpu()) == overflow);
  }
}
