// Reads tests/nn/attention_golden.txt, written by tests/nn/make_attention_golden.py from torch:
// one tensor per line, `<name> <f64|bool> <ndim> <sizes...> <values...>`.
#pragma once

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "ember/ember.hpp"

namespace ember::test {

inline StateDict load_attention_golden() {
  const std::string path = std::string(EMBER_SOURCE_DIR) + "/tests/nn/attention_golden.txt";
  std::ifstream in(path);
  EMBER_CHECK(in.good(), IOError, "[golden] cannot open ", path);
  StateDict out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream is(line);
    std::string name, kind;
    int64_t ndim = 0;
    is >> name >> kind >> ndim;
    std::vector<int64_t> sizes(static_cast<size_t>(ndim));
    int64_t n = 1;
    for (int64_t& s : sizes) {
      is >> s;
      n *= s;
    }
    std::vector<double> v(static_cast<size_t>(n));
    for (double& x : v) is >> x;
    EMBER_CHECK(!is.fail(), IOError, "[golden] malformed line for ", name);
    Tensor t = tensor(v, kFloat64).view(sizes);
    out.insert(name, kind == "bool" ? t.ne(0.0) : t);
  }
  return out;
}

/// The module state under `<prefix>.sd.`: keys as PyTorch's state_dict() wrote them.
inline StateDict golden_state(const StateDict& golden, const std::string& prefix) {
  return golden.sub(prefix + ".sd");
}

}  // namespace ember::test
