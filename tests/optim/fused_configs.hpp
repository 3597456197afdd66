// The optimizer configurations the fused-kernel tests run (tests/optim/test_optim_fused.cpp on the
// CPU, tests/cuda/test_cuda_optim.cpp on CUDA): each optimizer beside the composite update it
// must equal bitwise.
#pragma once

#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "ember/optim.hpp"
#include "optim/util.hpp"
#include "test_util.hpp"

namespace ember::test {

/// One optimizer configuration: the optimizer (the fused path) and the reference update of one
/// parameter with a StateDict of its own (the composite).
struct Config {
  std::string name;
  std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)> make;
  std::function<void(Tensor&, const Tensor&, StateDict&)> reference;
  std::vector<std::string> states;  // the parameter-shaped state tensors
};

inline Config adam_config(bool adamw, bool amsgrad, double weight_decay) {
  const double lr = 1e-2, beta1 = 0.9, beta2 = 0.99, eps = 1e-8;
  std::ostringstream name;
  name << (adamw ? "AdamW" : "Adam") << " amsgrad=" << amsgrad << " weight_decay=" << weight_decay;
  Config c;
  c.name = name.str();
  if (adamw) {
    c.make = [=](std::vector<Tensor> ps) -> std::unique_ptr<optim::Optimizer> {
      return std::make_unique<optim::AdamW>(std::move(ps), optim::AdamWOptions(lr)
                                                               .betas({beta1, beta2})
                                                               .eps(eps)
                                                               .weight_decay(weight_decay)
                                                               .amsgrad(amsgrad));
    };
  } else {
    c.make = [=](std::vector<Tensor> ps) -> std::unique_ptr<optim::Optimizer> {
      return std::make_unique<optim::Adam>(std::move(ps), optim::AdamOptions(lr)
                                                              .betas({beta1, beta2})
                                                              .eps(eps)
                                                              .weight_decay(weight_decay)
                                                              .amsgrad(amsgrad));
    };
  }
  c.reference = [=](Tensor& p, const Tensor& g, StateDict& s) {
    optim::detail::adam_update_reference(p, g, s, lr, beta1, beta2, eps, weight_decay, amsgrad,
                                         /*decoupled=*/adamw);
  };
  c.states = {"exp_avg", "exp_avg_sq"};
  if (amsgrad) c.states.push_back("max_exp_avg_sq");
  return c;
}

inline Config sgd_config(double momentum, double dampening, bool nesterov, double weight_decay) {
  const double lr = 0.05;
  std::ostringstream name;
  name << "SGD momentum=" << momentum << " dampening=" << dampening << " nesterov=" << nesterov
       << " weight_decay=" << weight_decay;
  Config c;
  c.name = name.str();
  c.make = [=](std::vector<Tensor> ps) -> std::unique_ptr<optim::Optimizer> {
    return std::make_unique<optim::SGD>(std::move(ps), optim::SGDOptions(lr)
                                                           .momentum(momentum)
                                                           .dampening(dampening)
                                                           .nesterov(nesterov)
                                                           .weight_decay(weight_decay));
  };
  c.reference = [=](Tensor& p, const Tensor& g, StateDict& s) {
    optim::detail::sgd_update_reference(p, g, s, lr, momentum, dampening, weight_decay, nesterov);
  };
  if (momentum != 0) c.states = {"momentum_buffer"};
  return c;
}

inline std::vector<Config> all_configs() {
  std::vector<Config> out;
  for (bool adamw : {false, true})
    for (bool amsgrad : {false, true})
      for (double wd : {0.0, 0.1}) out.push_back(adam_config(adamw, amsgrad, wd));
  // weight_decay 1 is a unit alpha: the composite adds p without a product
  out.push_back(adam_config(false, false, 1.0));
  for (double wd : {0.0, 1e-2}) {
    out.push_back(sgd_config(0.0, 0.0, false, wd));
    out.push_back(sgd_config(0.9, 0.0, false, wd));
    out.push_back(sgd_config(0.9, 0.5, false, wd));
    out.push_back(sgd_config(0.9, 0.0, true, wd));
  }
  return out;
}

/// The parameter-shaped state tensors of p in `opt`, in the order of `names`.
inline std::vector<Tensor> states_of(const optim::Optimizer& opt, const Tensor& p,
                              const std::vector<std::string>& names) {
  std::vector<Tensor> out;
  const StateDict* s = opt.state(p);
  for (const std::string& n : names) out.push_back(s && s->contains(n) ? s->at(n) : Tensor());
  return out;
}

/// A group of 45 parameters spread over `devices` (in turn): float32 and float64, sizes from 0
/// to 3 * 4096 + 5 elements (one parameter spans several blocks of the CUDA kernel, and 45 >
/// its 32 parameters per launch), one strided (the composite), one without a gradient. `steps`
/// steps of the optimizer (one update_group: a multi-tensor call per device and dtype) against
/// the composite reference run on a copy of each parameter: bitwise after every step.
inline void check_multi_tensor(const Config& c, const std::vector<Device>& devices, int steps) {
  INFO(c.name);
  Generator gen(77);
  std::vector<Tensor> params, copies;
  std::vector<StateDict> refs;
  const int64_t sizes[] = {5, 0, 1, 3 * 4096 + 5, 64, 4096, 17, 300};
  for (int i = 0; i < 45; ++i) {
    const TensorOptions opts = TensorOptions(i % 3 == 2 ? kFloat64 : kFloat32)
                                   .device(devices[static_cast<size_t>(i) % devices.size()]);
    Tensor p = i == 7 ? randn({9, 4}, gen, opts).t()  // strided
                      : randn({sizes[i % 8]}, gen, opts);
    params.push_back(p.detach().requires_grad_());
    copies.push_back(p.detach().clone());
  }
  refs.resize(params.size());
  REQUIRE_FALSE(params[7].is_contiguous());
  std::unique_ptr<optim::Optimizer> opt = c.make(params);
  for (int step = 1; step <= steps; ++step) {
    INFO("step " << step);
    for (size_t i = 0; i < params.size(); ++i) {
      if (i == 11) continue;  // never has a gradient: never updated
      Tensor g = randn(params[i].sizes(), gen, TensorOptions(params[i].dtype())) * 0.5;
      g = g.to(params[i].device());
      params[i].mutable_grad() = g;
      NoGradGuard no_grad;
      c.reference(copies[i], g, refs[i]);
    }
    opt->step();
    for (size_t i = 0; i < params.size(); ++i) {
      INFO("parameter " << i << " " << params[i].sizes() << " " << params[i].dtype() << " on "
                        << params[i].device());
      CHECK(bitwise_equal(params[i].detach().cpu(), copies[i].cpu()));
      const std::vector<Tensor> got = states_of(*opt, params[i], c.states);
      for (size_t k = 0; k < c.states.size(); ++k) {
        INFO(c.states[k]);
        if (i == 11) {
          CHECK_FALSE(got[k].defined());
          continue;
        }
        REQUIRE(got[k].defined());
        CHECK(got[k].device() == params[i].device());
        CHECK(bitwise_equal(got[k].cpu(), refs[i].at(c.states[k]).cpu()));
      }
    }
  }
}

}  // namespace ember::test
