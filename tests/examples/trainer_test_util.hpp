// Helpers for the tests that run the example trainers as programs: a generated text corpus, the
// rows of a run's metrics.csv, and bitwise comparison of two checkpoints.
#pragma once

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "ember/ember.hpp"

namespace ember::test {

/// A small English corpus: verses recombined from a few phrases, about 18 KB.
inline std::string tiny_corpus() {
  const char* subjects[] = {"And God", "The LORD", "Moses", "the people", "his servant"};
  const char* verbs[] = {"said unto", "called", "blessed", "went before", "spake unto"};
  const char* objects[] = {"the children of Israel", "the waters", "the earth", "Abraham",
                           "all the congregation"};
  std::string text;
  uint32_t state = 12345;
  for (int verse = 1; verse <= 300; ++verse) {
    state = state * 1664525u + 1013904223u;
    text += "Ge1:" + std::to_string(verse) + " " + subjects[(state >> 8) % 5] + " " +
            verbs[(state >> 12) % 5] + " " + objects[(state >> 16) % 5] + ", and it was good.\n";
  }
  return text;
}

/// The tags whose values measure time (throughput, seconds per epoch): they differ between runs.
inline bool is_timing_tag(const std::string& tag) {
  return tag == "train/images_per_sec" || tag == "train/tokens_per_sec" ||
         tag == "time/epoch_seconds";
}

using MetricRows = std::map<std::pair<int64_t, std::string>, std::string>;

/// Every row of <out>/metrics.csv as (step, tag) -> the value's text, timing values read as "*"
/// (so a comparison covers which rows exist and every deterministic value, bitwise). Rows after
/// `up_to` are left out. A (step, tag) pair logged twice, or a malformed row, fails the test.
inline MetricRows metric_rows(const std::string& out, int64_t up_to = INT64_MAX) {
  std::ifstream in(out + "/metrics.csv");
  REQUIRE(in.good());
  MetricRows rows;
  std::string line;
  std::getline(in, line);
  REQUIRE(line == "step,tag,value");
  while (std::getline(in, line)) {
    const size_t a = line.find(','), b = line.find(',', a + 1);
    INFO(out << "/metrics.csv row '" << line << "'");
    REQUIRE(a != std::string::npos);
    REQUIRE(b != std::string::npos);
    const int64_t step = std::stoll(line.substr(0, a));
    const std::string tag = line.substr(a + 1, b - a - 1);
    if (step > up_to) continue;
    const bool fresh =
        rows.emplace(std::pair{step, tag}, is_timing_tag(tag) ? "*" : line.substr(b + 1)).second;
    REQUIRE(fresh);
  }
  return rows;
}

/// Requires two logs to hold the same rows; a difference names its first (step, tag).
inline void require_same_rows(const MetricRows& got, const MetricRows& want) {
  auto show = [](const MetricRows& m, const std::pair<int64_t, std::string>& key) {
    auto it = m.find(key);
    return it == m.end() ? std::string("(no row)") : it->second;
  };
  std::set<std::pair<int64_t, std::string>> keys;
  for (const auto& [key, value] : got) keys.insert(key);
  for (const auto& [key, value] : want) keys.insert(key);
  for (const auto& key : keys) {
    if (show(got, key) == show(want, key)) continue;
    FAIL("metrics.csv differs first at step " << key.first << ", " << key.second << ": "
                                              << show(got, key) << " instead of "
                                              << show(want, key));
  }
  REQUIRE(got == want);
}

/// Same keys, dtypes, shapes and bytes.
inline void require_same_tensors(const StateDict& x, const StateDict& y, const std::string& what) {
  INFO(what);
  std::set<std::string> kx, ky;
  for (const auto& [name, t] : x) kx.insert(name);
  for (const auto& [name, t] : y) ky.insert(name);
  REQUIRE(kx == ky);
  for (const auto& [name, t] : x) {
    INFO(name);
    const Tensor& u = y.at(name);
    REQUIRE(t.dtype() == u.dtype());
    REQUIRE(t.sizes() == u.sizes());
    const Tensor a = t.cpu().contiguous(), b = u.cpu().contiguous();
    REQUIRE(std::memcmp(a.data_ptr(), b.data_ptr(), static_cast<size_t>(a.nbytes())) == 0);
  }
}

/// Two checkpoint files hold the same training state, bitwise: model, optimizer (every moment,
/// step count and group option), scheduler, generator states, step and metadata.
/// Returns the number of tensors compared.
inline size_t require_same_checkpoint(const std::string& a, const std::string& b) {
  INFO(a << " vs " << b);
  const Checkpoint x = load_checkpoint(a), y = load_checkpoint(b);
  REQUIRE(x.step == y.step);
  REQUIRE(x.optimizer.size() > 0);  // the comparison covers real optimizer state
  require_same_tensors(x.model, y.model, "model");
  require_same_tensors(x.optimizer, y.optimizer, "optimizer");
  require_same_tensors(x.scheduler, y.scheduler, "scheduler");
  REQUIRE(x.rng == y.rng);
  REQUIRE(x.metadata == y.metadata);
  return x.model.size() + x.optimizer.size() + x.scheduler.size();
}

}  // namespace ember::test
