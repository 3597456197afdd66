// gradcheck and gradgradcheck: analytic gradients (autograd) against float64 central differences
// (eps 1e-6, atol 1e-5, rtol 1e-3), through one backward with a fixed random projection of the
// output, as PyTorch's gradcheck does.
//
//   CHECK(test::gradcheck([](const std::vector<Tensor>& x) { return x[0] * x[1]; },
//                         {test::grad_input({2, 3}), test::grad_input({3})}));
//
// Inputs must be float64 and require grad (grad_input makes them). They may be non-contiguous
// or expanded views of a leaf: the analytic pass uses them as given, the numerical pass perturbs
// contiguous clones. Keep inputs away from kinks (|x| > 0.1 for abs/relu, distinct values for
// max) rather than loosening tolerances.
#pragma once

#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace ember::test {

using GradFn = std::function<Tensor(const std::vector<Tensor>&)>;

/// A float64 leaf of the given shape with values uniform in [lo, hi), requiring grad.
inline Tensor grad_input(IntArrayRef sizes, double lo = -1.0, double hi = 1.0, uint64_t seed = 0) {
  static uint64_t counter = 12345;
  Generator g(seed ? seed : ++counter);
  Tensor t = empty(sizes, kFloat64);
  uniform_(t, lo, hi, g);
  return t.requires_grad_();
}

struct GradcheckResult {
  bool ok = true;
  std::string report;
  explicit operator bool() const { return ok; }
};
inline std::ostream& operator<<(std::ostream& os, const GradcheckResult& r) {
  return os << (r.ok ? "gradcheck passed" : r.report);
}

inline double projected(const Tensor& y, const Tensor& v) {
  std::vector<double> a = values(y), b = values(v);
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

/// Compares autograd's gradient of sum(fn(inputs) * v) with central differences.
inline GradcheckResult gradcheck(const GradFn& fn, const std::vector<Tensor>& inputs,
                                 double eps = 1e-6, double atol = 1e-5, double rtol = 1e-3) {
  GradcheckResult r;
  std::ostringstream rep;
  Tensor y = fn(inputs);
  Generator g(777);
  Tensor v = empty(y.sizes(), kFloat64);
  uniform_(v, -1.0, 1.0, g);
  v = v.to(y.dtype());
  std::vector<Tensor> wrt;
  std::vector<size_t> wrt_index;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].defined() && inputs[i].requires_grad()) {
      wrt.push_back(inputs[i]);
      wrt_index.push_back(i);
    }
  }
  std::vector<Tensor> analytic;
  if (y.requires_grad()) {
    analytic = autograd::grad({y}, wrt, {v}, std::nullopt, false, /*allow_unused=*/true);
  } else {
    analytic.resize(wrt.size());
  }
  for (size_t k = 0; k < wrt.size(); ++k) {
    const size_t i = wrt_index[k];
    Tensor base = inputs[i].detach().contiguous().clone();
    std::vector<double> num(static_cast<size_t>(base.numel()));
    for (int64_t j = 0; j < base.numel(); ++j) {
      double* p = base.data_ptr<double>() + j;
      const double orig = *p;
      auto eval = [&](double x) {
        *p = x;
        std::vector<Tensor> in;
        for (size_t m = 0; m < inputs.size(); ++m) in.push_back(m == i ? base : inputs[m].detach());
        NoGradGuard ng;
        return projected(fn(in).to(kFloat64), v.to(kFloat64));
      };
      num[static_cast<size_t>(j)] = (eval(orig + eps) - eval(orig - eps)) / (2 * eps);
      *p = orig;
    }
    std::vector<double> ana = analytic[k].defined() ? values(analytic[k])
                                                    : std::vector<double>(num.size(), 0.0);
    if (analytic[k].defined() && analytic[k].sizes() != inputs[i].sizes()) {
      r.ok = false;
      rep << "input " << i << ": gradient shape " << analytic[k].sizes() << " != input shape "
          << inputs[i].sizes() << "\n";
      continue;
    }
    for (size_t j = 0; j < num.size(); ++j) {
      if (!(std::abs(ana[j] - num[j]) <= atol + rtol * std::abs(num[j]))) {
        r.ok = false;
        rep << "input " << i << " element " << j << ": analytic " << ana[j] << " numerical "
            << num[j] << "\n";
      }
    }
  }
  r.report = rep.str();
  return r;
}

/// gradcheck of the gradient itself: the backward pass built with create_graph=true must be
/// differentiable and correct.
inline GradcheckResult gradgradcheck(const GradFn& fn, const std::vector<Tensor>& inputs) {
  GradFn first = [fn](const std::vector<Tensor>& in) {
    std::vector<Tensor> wrt;
    for (const Tensor& t : in)
      if (t.defined() && t.requires_grad()) wrt.push_back(t);
    Tensor y = fn(in);
    Generator g(991);
    Tensor v = empty(y.sizes(), kFloat64);
    uniform_(v, -1.0, 1.0, g);
    if (!autograd::is_grad_enabled() || wrt.empty()) {
      // Numerical pass (no grad mode): recompute with grad enabled on detached leaves.
      autograd::AutoGradMode on(true);
      std::vector<Tensor> leaves;
      for (const Tensor& t : in) leaves.push_back(t.detach().requires_grad_());
      Tensor yy = fn(leaves);
      auto gs = autograd::grad({yy}, leaves, {v.to(yy.dtype())}, std::nullopt, false, true);
      Tensor s = zeros({}, kFloat64);
      for (size_t k = 0; k < gs.size(); ++k)
        if (gs[k].defined()) s = s + (gs[k] * gs[k]).sum();
      return s;
    }
    auto gs = autograd::grad({y}, wrt, {v.to(y.dtype())}, std::nullopt, true, true);
    Tensor s = zeros({}, kFloat64);
    for (const Tensor& gk : gs)
      if (gk.defined()) s = s + (gk * gk).sum();
    return s;
  };
  return gradcheck(first, inputs);
}

/// One entry of a family's gradient table.
struct GradCase {
  std::string name;
  GradFn fn;
  std::vector<Tensor> inputs;
  bool second_order = true;  // false: the backward is first-order only (say why at the entry)
};

/// Runs gradcheck, and gradgradcheck where the entry allows, over every entry of a table.
inline void check_grad_table(const std::vector<GradCase>& table) {
  for (const GradCase& c : table) {
    INFO(c.name);
    CHECK(gradcheck(c.fn, c.inputs));
    if (c.second_order) CHECK(gradgradcheck(c.fn, c.inputs));
  }
}

}  // namespace ember::test
