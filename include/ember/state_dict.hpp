// StateDict: an ordered map from dotted names to tensors. It is what Module::state_dict(),
// Optimizer::state_dict() and the schedulers return, what load_state_dict() takes, and what
// safetensors files and checkpoints hold. Numbers (a learning rate, a step count) are stored as
// 0-d tensors (float64 or int64), so every piece of training state is one flat, typed map.
#pragma once

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ember/tensor.hpp"

namespace ember {

class StateDict {
 public:
  using Item = std::pair<std::string, Tensor>;
  using const_iterator = std::vector<Item>::const_iterator;

  StateDict() = default;
  StateDict(std::initializer_list<Item> items);

  /// Inserts or replaces (keeping the key's first position, like Python's dict).
  void insert(const std::string& key, Tensor value);
  bool contains(const std::string& key) const;
  /// The tensor under key; IndexError "[StateDict] no key 'fc.weight'" when absent.
  const Tensor& at(const std::string& key) const;
  /// Null when absent.
  const Tensor* find(const std::string& key) const;
  /// Removes key; returns whether it was present.
  bool erase(const std::string& key);

  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  const_iterator begin() const { return items_.begin(); }
  const_iterator end() const { return items_.end(); }
  const std::vector<Item>& items() const { return items_; }
  std::vector<std::string> keys() const;

  /// The entries under `prefix.` with the prefix removed: sd.sub("optimizer").
  StateDict sub(const std::string& prefix) const;
  /// Inserts every entry of other, its keys written `prefix.key` (or `key` for an empty prefix).
  void update(const StateDict& other, const std::string& prefix = "");

  // ---- numbers stored as 0-d tensors ----
  void set_double(const std::string& key, double v);
  void set_int(const std::string& key, int64_t v);
  /// The number under key; IndexError when absent, ValueError when it is not one element.
  double get_double(const std::string& key) const;
  int64_t get_int(const std::string& key) const;

 private:
  std::vector<Item> items_;
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace ember
