// The text a module prints inside its parentheses (Module::extra_repr): the arguments streamed
// in order, booleans as true/false.
#pragma once

#include <sstream>
#include <string>

namespace ember::nn::detail {

template <class... Args>
std::string repr(Args&&... args) {
  std::ostringstream os;
  os << std::boolalpha;
  (os << ... << args);
  return os.str();
}

}  // namespace ember::nn::detail
