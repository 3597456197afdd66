// Optimizer base: parameter groups, step/zero_grad, and the flattened state_dict.
#include "ember/optim/optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "core/zero_grad.hpp"
#include "ember/autograd.hpp"
#include "ember/ops.hpp"

namespace ember::optim {

void OptimizerOptions::set_momentum(double) {
  throw ValueError("[OptimizerOptions] this optimizer has no momentum or beta1 to set");
}

// ---- OptimizerParamGroup ----

OptimizerParamGroup::OptimizerParamGroup(std::vector<Tensor> params) : params_(std::move(params)) {}

OptimizerParamGroup::OptimizerParamGroup(std::vector<Tensor> params,
                                         std::unique_ptr<OptimizerOptions> options)
    : params_(std::move(params)), options_(std::move(options)) {}

OptimizerParamGroup::OptimizerParamGroup(const OptimizerParamGroup& other)
    : initial_lr(other.initial_lr),
      params_(other.params_),
      options_(other.options_ ? other.options_->clone() : nullptr) {}

OptimizerParamGroup& OptimizerParamGroup::operator=(const OptimizerParamGroup& other) {
  if (this != &other) {
    params_ = other.params_;
    options_ = other.options_ ? other.options_->clone() : nullptr;
    initial_lr = other.initial_lr;
  }
  return *this;
}

OptimizerOptions& OptimizerParamGroup::options() {
  EMBER_CHECK(options_ != nullptr, ValueError, "[OptimizerParamGroup] the group has no options");
  return *options_;
}

const OptimizerOptions& OptimizerParamGroup::options() const {
  EMBER_CHECK(options_ != nullptr, ValueError, "[OptimizerParamGroup] the group has no options");
  return *options_;
}

void OptimizerParamGroup::set_options(std::unique_ptr<OptimizerOptions> options) {
  options_ = std::move(options);
}

// ---- Optimizer ----

Optimizer::Optimizer(std::string name, std::vector<OptimizerParamGroup> groups,
                     std::unique_ptr<OptimizerOptions> defaults)
    : name_(std::move(name)), defaults_(std::move(defaults)) {
  defaults_->validate(name_);
  for (const OptimizerParamGroup& g : groups) add_param_group(g);
  EMBER_CHECK(size() > 0, ValueError, "[", name_, "] got an empty parameter list");
}

void Optimizer::add_param_group(const OptimizerParamGroup& group) {
  const std::string who = name();
  OptimizerParamGroup g = group;
  if (!g.has_options()) g.set_options(defaults_->clone());
  g.options().validate(who);
  std::unordered_set<const TensorImpl*> seen;
  for (const OptimizerParamGroup& other : param_groups_)
    for (const Tensor& p : other.params()) seen.insert(p.unsafe_impl());
  for (size_t i = 0; i < g.params().size(); ++i) {
    const Tensor& p = g.params()[i];
    EMBER_CHECK(p.defined(), ValueError, "[", who, "] parameter ", i, " of the group is undefined");
    EMBER_CHECK(p.is_floating_point(), DTypeError, "[", who,
                "] can only optimize floating tensors, parameter ", i, " is ", p.dtype());
    EMBER_CHECK(p.is_leaf(), ValueError, "[", who, "] can't optimize a non-leaf tensor (parameter ",
                i, " of the group, shape ", p.sizes(), ")");
    EMBER_CHECK(seen.insert(p.unsafe_impl()).second, ValueError, "[", who,
                "] a parameter appears more than once (parameter ", i, " of the group, shape ",
                p.sizes(), ")");
  }
  param_groups_.push_back(std::move(g));
}

Tensor Optimizer::step(const LossClosure& closure) {
  Tensor loss;
  if (closure) {
    autograd::AutoGradMode enable(true);
    loss = closure();
  }
  NoGradGuard no_grad;
  const std::string who = name();
  for (size_t gi = 0; gi < param_groups_.size(); ++gi) {
    OptimizerParamGroup& group = param_groups_[gi];
    std::vector<ParamUpdate> updates;
    for (size_t j = 0; j < group.params().size(); ++j) {
      Tensor& p = group.params()[j];
      const Tensor& grad = p.grad();
      if (!grad.defined()) continue;
      EMBER_CHECK(grad.sizes() == p.sizes(), ShapeError, "[", who, ".step] gradient shape ",
                  grad.sizes(), " differs from parameter shape ", p.sizes(), " (parameter ", j,
                  " of group ", gi, ")");
      EMBER_CHECK(grad.dtype() == p.dtype(), DTypeError, "[", who, ".step] gradient dtype ",
                  grad.dtype(), " differs from parameter dtype ", p.dtype(), " (parameter ", j,
                  " of group ", gi, ")");
      EMBER_CHECK(grad.device() == p.device(), DeviceError, "[", who, ".step] gradient on ",
                  grad.device(), ", parameter on ", p.device(), " (parameter ", j, " of group ", gi,
                  ")");
      updates.push_back({&p, &grad, &state_[p.unsafe_impl()]});
    }
    if (!updates.empty()) update_group(updates, group.options());
  }
  return loss;
}

void Optimizer::update_group(const std::vector<ParamUpdate>& params,
                             const OptimizerOptions& options) {
  for (const ParamUpdate& u : params) update(*u.param, *u.grad, *u.state, options);
}

void Optimizer::zero_grad(bool set_to_none) {
  for (OptimizerParamGroup& group : param_groups_) {
    for (const Tensor& p : group.params()) zero_grad_of(p, set_to_none);
  }
}

std::vector<Tensor> Optimizer::parameters() const {
  std::vector<Tensor> out;
  for (const OptimizerParamGroup& g : param_groups_)
    out.insert(out.end(), g.params().begin(), g.params().end());
  return out;
}

size_t Optimizer::size() const {
  size_t n = 0;
  for (const OptimizerParamGroup& g : param_groups_) n += g.params().size();
  return n;
}

const StateDict* Optimizer::state(const Tensor& param) const {
  auto it = state_.find(param.unsafe_impl());
  return it == state_.end() ? nullptr : &it->second;
}

StateDict Optimizer::state_dict() const {
  StateDict sd;
  int64_t index = 0;
  for (const OptimizerParamGroup& g : param_groups_) {
    for (const Tensor& p : g.params()) {
      auto it = state_.find(p.unsafe_impl());
      if (it != state_.end())
        for (const auto& [key, value] : it->second)
          sd.insert("state." + std::to_string(index) + "." + key, value.clone());
      ++index;
    }
  }
  index = 0;
  for (size_t gi = 0; gi < param_groups_.size(); ++gi) {
    const OptimizerParamGroup& g = param_groups_[gi];
    const std::string prefix = "param_groups." + std::to_string(gi);
    g.options().save(sd, prefix);
    if (g.initial_lr) sd.set_double(prefix + ".initial_lr", *g.initial_lr);
    std::vector<int64_t> ids(g.params().size());
    for (int64_t& id : ids) id = index++;
    sd.insert(prefix + ".params", tensor(ids, kInt64));
  }
  return sd;
}

namespace {

/// Splits "state.<id>.<name>" into id and name; false when the key has another form.
bool parse_state_key(const std::string& key, int64_t& id, std::string& name) {
  const std::string head = "state.";
  if (key.compare(0, head.size(), head) != 0) return false;
  const size_t dot = key.find('.', head.size());
  if (dot == std::string::npos || dot == head.size()) return false;
  const std::string digits = key.substr(head.size(), dot - head.size());
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      digits.size() > 18)
    return false;
  id = std::stoll(digits);
  name = key.substr(dot + 1);
  return !name.empty();
}

}  // namespace

void Optimizer::load_state_dict(const StateDict& sd) {
  const std::string who = name() + ".load_state_dict";
  size_t n_groups = 0;
  while (sd.contains("param_groups." + std::to_string(n_groups) + ".params")) ++n_groups;
  EMBER_CHECK(n_groups == param_groups_.size(), ValueError, "[", who, "] the state dict has ",
              n_groups, " parameter groups, the optimizer has ", param_groups_.size());

  // Saved parameter id -> the parameter now in that position (PyTorch maps them by order).
  std::unordered_map<int64_t, Tensor> by_id;
  std::vector<std::unique_ptr<OptimizerOptions>> options(n_groups);
  std::vector<std::optional<double>> initial_lrs(n_groups);
  for (size_t gi = 0; gi < n_groups; ++gi) {
    const OptimizerParamGroup& group = param_groups_[gi];
    const std::string prefix = "param_groups." + std::to_string(gi);
    const Tensor& ids = sd.at(prefix + ".params");
    EMBER_CHECK(ids.dim() == 1 && !ids.is_floating_point(), ValueError, "[", who, "] '", prefix,
                ".params' must be a 1-d integer tensor, got ", ids.sizes(), " ", ids.dtype());
    EMBER_CHECK(static_cast<size_t>(ids.numel()) == group.params().size(), ValueError, "[", who,
                "] group ", gi, " of the state dict has ", ids.numel(),
                " parameters, the optimizer's has ", group.params().size());
    Tensor ids64 = ids.to(kInt64).contiguous();
    for (size_t j = 0; j < group.params().size(); ++j) {
      const int64_t id = ids64.data_ptr<int64_t>()[j];
      EMBER_CHECK(by_id.emplace(id, group.params()[j]).second, ValueError, "[", who,
                  "] parameter id ", id, " appears twice in the state dict's groups");
    }
    options[gi] = group.options().clone();
    options[gi]->load(sd, prefix);
    options[gi]->validate(name());
    if (const Tensor* t = sd.find(prefix + ".initial_lr")) initial_lrs[gi] = t->item<double>();
  }

  const std::vector<std::string> names = state_names();
  std::unordered_map<const TensorImpl*, StateDict> state;
  for (const auto& [key, value] : sd) {
    if (key.compare(0, 13, "param_groups.") == 0) continue;
    int64_t id = 0;
    std::string sname;
    EMBER_CHECK(parse_state_key(key, id, sname), ValueError, "[", who, "] unexpected key '", key,
                "'");
    auto it = by_id.find(id);
    EMBER_CHECK(it != by_id.end(), ValueError, "[", who, "] '", key, "' names parameter ", id,
                ", which no group of the state dict holds");
    EMBER_CHECK(std::find(names.begin(), names.end(), sname) != names.end(), ValueError, "[", who,
                "] unknown state '", sname, "' in '", key, "'");
    const Tensor& p = it->second;
    StateDict& ps = state[p.unsafe_impl()];
    if (sname == "step") {
      EMBER_CHECK(value.numel() == 1, ShapeError, "[", who, "] '", key, "' has shape ",
                  value.sizes(), ", expected one number");
      const double s = value.item<double>();
      EMBER_CHECK(s >= 0 && s == std::floor(s), ValueError, "[", who, "] '", key,
                  "' is not a step count: ", s);
      ps.set_int("step", static_cast<int64_t>(s));
      continue;
    }
    EMBER_CHECK(value.sizes() == p.sizes(), ShapeError, "[", who, "] '", key, "' has shape ",
                value.sizes(), ", its parameter has shape ", p.sizes());
    EMBER_CHECK(value.is_floating_point(), DTypeError, "[", who, "] '", key,
                "' must be floating, got ", value.dtype());
    Tensor copy = empty_like(p);
    {
      NoGradGuard no_grad;
      copy.copy_(value);
    }
    ps.insert(sname, copy);
  }

  // Every check passed: commit.
  for (size_t gi = 0; gi < n_groups; ++gi) {
    param_groups_[gi].set_options(std::move(options[gi]));
    param_groups_[gi].initial_lr = initial_lrs[gi];
  }
  state_ = std::move(state);
}

}  // namespace ember::optim
