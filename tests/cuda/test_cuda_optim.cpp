// The fused optimizer kernels on CUDA (src/cuda/optim.cu, taken by Adam, AdamW and SGD for
// contiguous float32/float64 CUDA parameters): several steps with fresh random gradients give
// bitwise the parameters and state of the composites they replace run on CUDA
// (detail::adam_update_reference, detail::sgd_update_reference, which run the CUDA elementwise
// kernels op by op), and agree with the same optimizer run on the CPU; special values propagate as
// in the composite; strided and empty parameters; the same errors as the CPU. Without a GPU each
// case prints "skipped".
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

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
