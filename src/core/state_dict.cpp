// StateDict: insertion-ordered string -> Tensor map.
#include "ember/state_dict.hpp"

#include "ember/ops.hpp"

namespace ember {

StateDict::StateDict(std::initializer_list<Item> items) {
  for (const Item& it : items) insert(it.first, it.second);
}

void StateDict::insert(const std::string& key, Tensor value) {
  auto it = index_.find(key);
  if (it != index_.end()) {
    items_[it->second].second = std::move(value);
    return;
  }
  index_.emplace(key, items_.size());
  items_.emplace_back(key, std::move(value));
}

bool StateDict::contains(const std::string& key) const { return index_.count(key) != 0; }

const Tensor* StateDict::find(const std::string& key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &items_[it->second].second;
}

const Tensor& StateDict::at(const std::string& key) const {
  const Tensor* t = find(key);
  EMBER_CHECK(t != nullptr, IndexError, "[StateDict] no key '", key, "'");
  return *t;
}

bool StateDict::erase(const std::string& key) {
  auto it = index_.find(key);
  if (it == index_.end()) return false;
  items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(it->second));
  index_.clear();
  for (size_t i = 0; i < items_.size(); ++i) index_.emplace(items_[i].first, i);
  return true;
}

std::vector<std::string> StateDict::keys() const {
  std::vector<std::string> k;
  k.reserve(items_.size());
  for (const Item& it : items_) k.push_back(it.first);
  return k;
}

StateDict StateDict::sub(const std::string& prefix) const {
  StateDict out;
  const std::string p = prefix + ".";
  for (const Item& it : items_)
    if (it.first.compare(0, p.size(), p) == 0) out.insert(it.first.substr(p.size()), it.second);
  return out;
}

void StateDict::update(const StateDict& other, const std::string& prefix) {
  for (const Item& it : other.items_)
    insert(prefix.empty() ? it.first : prefix + "." + it.first, it.second);
}

void StateDict::set_double(const std::string& key, double v) {
  insert(key, scalar_tensor(v, kFloat64));
}

void StateDict::set_int(const std::string& key, int64_t v) {
  insert(key, scalar_tensor(v, kInt64));
}

double StateDict::get_double(const std::string& key) const {
  const Tensor& t = at(key);
  EMBER_CHECK(t.numel() == 1, ValueError, "[StateDict] '", key, "' holds ", t.sizes(),
              ", not one number");
  return t.item<double>();
}

int64_t StateDict::get_int(const std::string& key) const {
  const Tensor& t = at(key);
  EMBER_CHECK(t.numel() == 1, ValueError, "[StateDict] '", key, "' holds ", t.sizes(),
              ", not one number");
  return t.item<int64_t>();
}

}  // namespace ember
