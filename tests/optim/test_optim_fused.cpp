// The fused optimizer kernels (src/core/cpu/optim.cpp, taken by Adam, AdamW and SGD for contiguous
// float32/float64 CPU parameters) against the composites they replace
// (detail::adam_update_reference, detail::sgd_update_reference): five steps with fresh random
// gradients give bitwise the same parameters and state; the result does not depend on the thread
// count; parameters the kernels do not take (strided, float16, autograd recording) run the
// composite; state_dict / load_state_dict keep working on the same state tensors.
#include <cstring>
#include <functional>
#include <sstream>
#include <string>

#include "core/parallel.hpp"
#include "ember/optim.hpp"
#include "optim/util.hpp"
#include "optim/fused_configs.hpp"
#include "test_util.hpp"

using namespace ember;
using ember::test::bitwise_equal;
using ember::test::Config;
using ember::test::adam_config;
using ember::test::sgd_config;
using ember::test::all_configs;
using ember::test::states_of;

namespace {

// 70001 elements: three parallel chunks of kElementwiseGrain, the last with a vector tail.
const int64_t kSizes[] = {1, 7, 70001};
constexpr int kSteps = 5;


/// Runs kSteps of `c` on a parameter of n random elements: the optimizer on p (fused), the
/// reference on a copy; after every step parameters and states must agree bitwise.
void check_fused_matches_composite(const Config& c, DType dtype, int64_t n) {
  INFO(c.name << ", " << dtype << ", " << n << " elements");
  Generator gen(1234 + n);
  const TensorOptions opts(dtype);
  Tensor p = randn({n}, gen, opts).requires_grad_();
  Tensor q = p.detach().clone();
  std::unique_ptr<optim::Optimizer> opt = c.make({p});
  StateDict ref;
  for (int step = 1; step <= kSteps; ++step) {
    INFO("step " << step);
    Tensor g = randn({n}, gen, opts) * 0.5;
    p.mutable_grad() = g.clone();
    // The fused kernel takes this update (else the comparison would be composite to composite).
    CHECK(optim::detail::fused_update_applies(p.detach(), g, {}));
    for (const Tensor& s : states_of(*opt, p, c.states))
      if (s.defined()) CHECK(s.is_contiguous());
    opt->step();
    {
      NoGradGuard no_grad;
      c.reference(q, g, ref);
    }
    CHECK(bitwise_equal(p.detach(), q));
    const std::vector<Tensor> got = states_of(*opt, p, c.states);
    for (size_t i = 0; i < c.states.size(); ++i) {
      INFO(c.states[i]);
      REQUIRE(got[i].defined());
      REQUIRE(ref.contains(c.states[i]));
      CHECK(bitwise_equal(got[i], ref.at(c.states[i])));
    }
    if (ref.contains("step")) CHECK(opt->state(p)->get_int("step") == ref.get_int("step"));
    // The state holds the same keys, in the same order, as the composite's.
    CHECK(opt->state(p)->keys() == ref.keys());
  }
}

/// The parameter and states after kSteps of `c` on 70001 elements with `threads` threads.
std::vector<Tensor> run_with_threads(const Config& c, DType dtype, int threads) {
  const int saved = get_num_threads();
  set_num_threads(threads);
  Generator gen(99);
  const TensorOptions opts(dtype);
  Tensor p = randn({70001}, gen, opts).requires_grad_();
  std::unique_ptr<optim::Optimizer> opt = c.make({p});
  for (int step = 0; step < kSteps; ++step) {
    p.mutable_grad() = randn({70001}, gen, opts);
    opt->step();
  }
  set_num_threads(saved);
  std::vector<Tensor> out = {p.detach().clone()};
  for (const Tensor& s : states_of(*opt, p, c.states)) out.push_back(s.clone());
  return out;
}

}  // namespace

TEST_CASE("fused optimizers: five steps match the composite bitwise") {
  for (const Config& c : all_configs())
    for (DType dtype : {kFloat32, kFloat64})
      for (int64_t n : kSizes) check_fused_matches_composite(c, dtype, n);
}

TEST_CASE("fused optimizers: one multi-tensor step of a whole group matches the composite") {
  for (const Config& c : all_configs()) test::check_multi_tensor(c, {Device(kCPU)}, 3);
}

TEST_CASE("fused optimizers: the result is independent of the thread count") {
  for (const Config& c : {adam_config(true, true, 0.1), sgd_config(0.9, 0.0, true, 1e-2)}) {
    INFO(c.name);
    const std::vector<Tensor> one = run_with_threads(c, kFloat32, 1);
    const std::vector<Tensor> two = run_with_threads(c, kFloat32, 2);
    REQUIRE(one.size() == two.size());
    for (size_t i = 0; i < one.size(); ++i) CHECK(bitwise_equal(one[i], two[i]));
  }
}

TEST_CASE("fused optimizers: special values propagate as in the composite") {
  // inf, NaN, signed zeros and subnormals in the gradient and the parameter.
  const float inf = INFINITY, nan = NAN, tiny = 1e-40f;
  const std::vector<float> pv = {1.0f, -0.0f, 0.0f, tiny, -2.0f, 3.0f, inf, 0.5f, 1e30f};
  const std::vector<float> gv = {inf, 0.0f, -0.0f, tiny, nan, -inf, 1.0f, -tiny, 1e30f};
  for (const Config& c : all_configs()) {
    INFO(c.name);
    Tensor p = tensor(pv, kFloat32).requires_grad_();
    Tensor q = p.detach().clone();
    std::unique_ptr<optim::Optimizer> opt = c.make({p});
    StateDict ref;
    for (int step = 0; step < 3; ++step) {
      const Tensor g = tensor(gv, kFloat32);
      p.mutable_grad() = g.clone();
      opt->step();
      NoGradGuard no_grad;
      c.reference(q, g, ref);
    }
    // Equal bits, or NaN in both (NaN payloads are not specified).
    const std::vector<double> a = test::values(p), b = test::values(q);
    for (size_t i = 0; i < a.size(); ++i) {
      INFO("element " << i << ": " << a[i] << " vs " << b[i]);
      CHECK(((std::isnan(a[i]) && std::isnan(b[i])) ||
             std::memcmp(&a[i], &b[i], sizeof(double)) == 0));
    }
  }
}

TEST_CASE(
    "fused optimizers: the kernels take only dense float32/float64 CPU updates laid out alike") {
  Generator gen(5);
  Tensor p = randn({7, 13}, gen);
  Tensor g = randn({7, 13}, gen);
  CHECK(optim::detail::fused_update_applies(p, g, {zeros_like(p), Tensor()}));
  CHECK(optim::detail::fused_update_applies(p.to(kFloat64), g.to(kFloat64), {}));
  // One dense layout shared by all (transposed, channels-last): walked as flat memory.
  CHECK(optim::detail::fused_update_applies(p.t(), g.t(), {zeros({7, 13}).t()}));
  const MemoryFormat cl = MemoryFormat::ChannelsLast;
  Tensor p4 = randn({2, 3, 4, 5}, gen).contiguous(cl), g4 = randn({2, 3, 4, 5}, gen).contiguous(cl);
  CHECK(optim::detail::fused_update_applies(p4, g4, {zeros_like(p4)}));
  // Layouts that differ, or strided parameter, gradient or state
  CHECK_FALSE(optim::detail::fused_update_applies(p.t(), g.t().contiguous(), {}));
  CHECK_FALSE(optim::detail::fused_update_applies(p4, g4.contiguous(), {}));
  CHECK_FALSE(optim::detail::fused_update_applies(p4, g4, {zeros(p4.sizes())}));
  CHECK_FALSE(optim::detail::fused_update_applies(p, test::non_contiguous(g), {}));
  CHECK_FALSE(optim::detail::fused_update_applies(p, g, {test::non_contiguous(p)}));
  // other dtypes, mixed dtypes
  CHECK_FALSE(optim::detail::fused_update_applies(p.to(kFloat16), g.to(kFloat16), {}));
  CHECK_FALSE(optim::detail::fused_update_applies(p, g.to(kFloat64), {}));
  CHECK_FALSE(optim::detail::fused_update_applies(p, g, {zeros_like(p, kFloat64)}));
  // aliasing: the gradient or a state sharing the parameter's storage
  CHECK_FALSE(optim::detail::fused_update_applies(p, p, {}));
  CHECK_FALSE(optim::detail::fused_update_applies(p, g, {p.view({13, 7})}));
  // autograd would record the composite's in-place ops
  Tensor leaf = p.clone().requires_grad_();
  CHECK_FALSE(optim::detail::fused_update_applies(leaf, g, {}));
  NoGradGuard no_grad;
  CHECK(optim::detail::fused_update_applies(leaf, g, {}));
}

TEST_CASE("fused optimizers: a strided parameter runs the composite and agrees") {
  // The same update on a strided parameter (composite) and on a contiguous one (fused).
  for (const Config& c : {adam_config(true, true, 0.1), adam_config(false, false, 0.1),
                          sgd_config(0.9, 0.5, false, 1e-2)}) {
    INFO(c.name);
    Generator gen(11);
    Tensor base = randn({13, 7}, gen);
    Tensor strided = base.t().detach().requires_grad_();  // (7, 13), column-major
    REQUIRE_FALSE(strided.is_contiguous());
    Tensor dense = strided.detach().contiguous().requires_grad_();
    std::unique_ptr<optim::Optimizer> a = c.make({strided});
    std::unique_ptr<optim::Optimizer> b = c.make({dense});
    for (int step = 0; step < kSteps; ++step) {
      Tensor g = randn({7, 13}, gen);
      CHECK_FALSE(optim::detail::fused_update_applies(strided.detach(), g, {}));
      strided.mutable_grad() = g.clone();
      dense.mutable_grad() = g.clone();
      a->step();
      b->step();
    }
    CHECK_FALSE(strided.is_contiguous());  // updated in place: still the view of base
    CHECK(bitwise_equal(strided, dense));
    CHECK(bitwise_equal(base.t(), dense.detach()));
    const std::vector<Tensor> sa = states_of(*a, strided, c.states);
    const std::vector<Tensor> sb = states_of(*b, dense, c.states);
    for (size_t i = 0; i < sa.size(); ++i) CHECK(bitwise_equal(sa[i], sb[i]));
  }
}

TEST_CASE("fused optimizers: state tensors are updated in place and survive state_dict") {
  for (const Config& c : {adam_config(true, true, 0.1), adam_config(false, false, 0.0),
                          sgd_config(0.9, 0.0, true, 1e-2)}) {
    INFO(c.name);
    Generator gen(21);
    const int64_t n = 70001;
    Tensor pa = randn({n}, gen).requires_grad_();
    std::unique_ptr<optim::Optimizer> a = c.make({pa});
    std::vector<Tensor> grads;
    for (int s = 0; s < kSteps; ++s) grads.push_back(randn({n}, gen));
    pa.mutable_grad() = grads[0];
    a->step();
    // Later steps write the same tensors (the objects the state holds, and their memory).
    const std::vector<Tensor> first = states_of(*a, pa, c.states);
    const uint32_t version = first.empty() ? 0 : first[0]._version();
    for (int s = 1; s < 3; ++s) {
      pa.mutable_grad() = grads[s];
      a->step();
    }
    const std::vector<Tensor> later = states_of(*a, pa, c.states);
    for (size_t i = 0; i < first.size(); ++i) {
      CHECK(first[i].is_same(later[i]));
      CHECK(first[i].data_ptr() == later[i].data_ptr());
    }
    if (!first.empty()) CHECK(first[0]._version() > version);  // in-place writes are counted

    // Resume from state_dict into a fresh optimizer: the two runs continue bit-identically.
    const StateDict saved = a->state_dict();
    Tensor pb = pa.detach().clone().requires_grad_();
    std::unique_ptr<optim::Optimizer> b = c.make({pb});
    b->load_state_dict(saved);
    for (int s = 3; s < kSteps; ++s) {
      pa.mutable_grad() = grads[s];
      pb.mutable_grad() = grads[s];
      a->step();
      b->step();
    }
    CHECK(bitwise_equal(pa, pb));
    const StateDict sa = a->state_dict(), sb = b->state_dict();
    REQUIRE(sa.keys() == sb.keys());
    for (const auto& [k, v] : sa) {
      INFO(k);
      CHECK(bitwise_equal(v, sb.at(k)));
    }
  }
}
