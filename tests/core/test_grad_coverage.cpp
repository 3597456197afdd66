// Every public op is classified: differentiable ops must have an entry (a case named after the op)
// in one of the gradcheck tables tests/core/test_grad_*.cpp; the rest are listed here as not
// differentiable. A new op declared in ops.hpp or a new in-place member in tensor.hpp fails this
// test until it is classified and, if differentiable, gradchecked.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>

#include "test_util.hpp"

namespace {

std::string read(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::set<std::string> declared_ops() {
  const std::filesystem::path inc = std::filesystem::path(EMBER_SOURCE_DIR) / "include" / "ember";
  std::set<std::string> names;
  // Free functions returning tensors.
  std::regex free_fn(R"(\n(?:Tensor|std::vector<Tensor>|std::tuple<Tensor, Tensor>)&? (\w+)\()");
  std::string ops = read(inc / "ops.hpp");
  for (std::sregex_iterator it(ops.begin(), ops.end(), free_fn), end; it != end; ++it)
    names.insert((*it)[1]);
  // In-place members (they have no free form).
  std::regex inplace(R"(\n  Tensor& (\w+_)\()");
  std::string tensor = read(inc / "tensor.hpp");
  for (std::sregex_iterator it(tensor.begin(), tensor.end(), inplace), end; it != end; ++it)
    names.insert((*it)[1]);
  return names;
}

const std::set<std::string> kNotDifferentiable = {
    // factories and random numbers: no inputs to differentiate
    "tensor", "from_blob", "empty", "empty_strided", "zeros", "ones", "full", "scalar_tensor",
    "arange", "linspace", "eye", "empty_like", "zeros_like", "ones_like", "full_like", "rand",
    "randn", "randint", "randperm", "bernoulli", "multinomial", "rand_like", "randn_like",
    "randint_like", "uniform_", "normal_",
    // bool or integer results
    "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_not", "isnan",
    "isinf", "isfinite", "isclose", "all", "any", "argmax", "argmin", "argsort", "nonzero",
    "one_hot",
    // graph bookkeeping, not math
    "requires_grad_", "detach_",
    // zero_ is fill_(0), whose table entry covers it
    "zero_"};

}  // namespace

TEST_CASE("gradcheck coverage: every public differentiable op has a table entry") {
  const std::set<std::string> ops = declared_ops();
  REQUIRE(ops.size() > 100);  // the parser found the declarations
  std::string tables;
  for (const auto& e : std::filesystem::directory_iterator(
           std::filesystem::path(EMBER_SOURCE_DIR) / "tests" / "core")) {
    const std::string name = e.path().filename().string();
    if (name.rfind("test_grad_", 0) == 0 && name != "test_grad_coverage.cpp") tables += read(e.path());
  }
  size_t covered = 0;
  for (const std::string& op : ops) {
    if (kNotDifferentiable.count(op)) continue;
    // A case whose name is the op, or starts with the op and a space: {"mul broadcast", ...}
    const bool has_entry = tables.find("{\"" + op + "\"") != std::string::npos ||
                           tables.find("{\"" + op + " ") != std::string::npos;
    INFO("differentiable op without a gradcheck entry: " << op);
    CHECK(has_entry);
    covered += has_entry ? 1 : 0;
  }
  std::cout << "[gradcheck coverage] " << covered << " differentiable public ops have gradcheck "
            << "entries; " << kNotDifferentiable.size() << " ops are not differentiable\n";
}
