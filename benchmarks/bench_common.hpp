// Shared by the benchmark programs: case names, quick mode, and a reporter that prints every Ember
// case beside its peers with the ratio of their rates (medians of the repetitions).
//
// Case names are "<family>/<shape...>/<impl>": the last component is the implementation ("ember"
// or a peer such as "openblas"); everything before it is the case. A case's rate is its FLOP/s
// counter when it has one, else bytes/s, else items/s, else 1 / time. A "ceiling" case (for
// example "fma_peak/t1/probe") gives the hardware ceiling that ratio_main's `ceiling_of` maps a
// case to; the table then shows Ember's fraction of it.
//
// Quick mode (EMBER_BENCH_QUICK=1, used by CTest) registers tiny sizes with one repetition, so CI
// shows that every case runs without spending time measuring.
#pragma once

#include <benchmark/benchmark.h>
#ifdef EMBER_BENCH_TORCH
#include <torch/torch.h>
#endif

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ember/ops.hpp"

namespace ember::bench {

inline bool quick_mode() {
  const char* v = std::getenv("EMBER_BENCH_QUICK");
  return v != nullptr && *v != '\0' && std::string(v) != "0";
}

/// Repetitions for a measured case (5 by the rule), 1 in quick mode.
inline int repetitions() { return quick_mode() ? 1 : 5; }

/// Threads for a case: Ember's, and libtorch's in a program built with the libtorch peer
/// (EMBER_BENCH_TORCH); Ember's count is restored after.
struct ThreadScope {
  int saved;
  explicit ThreadScope(int t) : saved(get_num_threads()) {
    set_num_threads(t);
#ifdef EMBER_BENCH_TORCH
    torch::set_num_threads(t);
#endif
  }
  ~ThreadScope() { set_num_threads(saved); }
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;
};

/// Registers a measured case: real time, repetitions() repetitions reported as aggregates,
/// `min_seconds` per repetition (0.001 in quick mode).
template <class F>
void add_case(const std::string& name, F f, benchmark::TimeUnit unit, double min_seconds) {
  benchmark::RegisterBenchmark(name.c_str(), f)
      ->Unit(unit)
      ->UseRealTime()
      ->MinTime(quick_mode() ? 0.001 : min_seconds)
      ->Repetitions(repetitions())
      ->ReportAggregatesOnly(true);
}

/// Names the libtorch peer (its version, or its absence) in the context lines of the output.
inline void add_torch_context() {
#ifdef EMBER_BENCH_TORCH
  benchmark::AddCustomContext("libtorch", TORCH_VERSION);
#else
  benchmark::AddCustomContext("libtorch", "absent: Ember alone");
#endif
}

/// Sets the FLOP/s counter: `flops` per iteration.
inline void set_flops(benchmark::State& state, double flops) {
  state.counters["FLOP/s"] =
      benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::kIs1000);
}

struct CaseRates {
  std::map<std::string, double> rate;  // impl -> median rate
  std::string unit;                     // "FLOP/s", "B/s", "items/s" or "1/s"
};

/// Console output as usual, and the medians collected for the ratio table.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  std::map<std::string, CaseRates> cases;
  std::vector<std::string> order;

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      const bool median = r.run_type == Run::RT_Aggregate && r.aggregate_name == "median";
      const bool single = r.run_type == Run::RT_Iteration && r.repetitions <= 1;
      if (!median && !single) continue;
      if (r.error_occurred) continue;
      const std::string& name = r.run_name.function_name;
      const size_t slash = name.rfind('/');
      if (slash == std::string::npos) continue;
      const std::string key = name.substr(0, slash), impl = name.substr(slash + 1);
      double rate = 0;
      std::string unit;
      auto counter = [&](const char* c) {
        auto it = r.counters.find(c);
        return it == r.counters.end() ? -1.0 : static_cast<double>(it->second.value);
      };
      if (counter("FLOP/s") > 0) {
        rate = counter("FLOP/s"), unit = "FLOP/s";
      } else if (counter("bytes_per_second") > 0) {
        rate = counter("bytes_per_second"), unit = "B/s";
      } else if (counter("items_per_second") > 0) {
        rate = counter("items_per_second"), unit = "items/s";
      } else {
        const double s = r.GetAdjustedRealTime() * benchmark::GetTimeUnitMultiplier(r.time_unit);
        rate = s > 0 ? 1.0 / s : 0, unit = "1/s";
      }
      if (!cases.count(key)) order.push_back(key);
      cases[key].rate[impl] = rate;
      cases[key].unit = unit;
    }
  }
};

inline std::string human(double v, const std::string& unit) {
  const char* prefix[] = {"", "k", "M", "G", "T"};
  int p = 0;
  while (std::fabs(v) >= 1000 && p < 4) v /= 1000, ++p;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3g %s%s", v, prefix[p], unit.c_str());
  return buf;
}

/// a < b comparing runs of digits by their value ("n128" < "n1024").
inline bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) &&
        std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t i1 = i, j1 = j;
      while (i1 < a.size() && std::isdigit(static_cast<unsigned char>(a[i1]))) ++i1;
      while (j1 < b.size() && std::isdigit(static_cast<unsigned char>(b[j1]))) ++j1;
      const unsigned long long x = std::stoull(a.substr(i, i1 - i));
      const unsigned long long y = std::stoull(b.substr(j, j1 - j));
      if (x != y) return x < y;
      i = i1, j = j1;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i, ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

/// Runs the registered benchmarks (5 repetitions interleaved at random unless given otherwise)
/// and prints the ratio table: for each case, Ember's rate, each peer's rate and Ember / peer
/// (above 1: Ember is faster), and Ember's fraction of the ceiling case that `ceiling_of(case)`
/// names (empty: none). `--ember_summary=FILE` also writes the table as JSON.
inline int ratio_main(int argc, char** argv,
                      const std::function<std::string(const std::string&)>& ceiling_of = {}) {
  std::vector<char*> args(argv, argv + argc);
  std::string summary_path;
  std::vector<std::string> extra = {"--benchmark_enable_random_interleaving=true"};
  for (auto it = args.begin(); it != args.end();) {
    const std::string a = *it;
    if (a.rfind("--ember_summary=", 0) == 0) {
      summary_path = a.substr(16);
      it = args.erase(it);
    } else {
      ++it;
    }
  }
  if (quick_mode()) extra = {"--benchmark_min_time=0.001"};
  for (std::string& e : extra) args.insert(args.begin() + 1, e.data());
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  // Natural order (numbers by value), so sizes read upward whatever order the runs interleaved in.
  std::sort(reporter.order.begin(), reporter.order.end(), natural_less);
  std::printf("\n%-44s %14s %-36s %s\n", "case", "ember", "peer: rate (ember/peer)", "ceiling");
  std::string json = "[\n";
  bool first_row = true;
  for (const std::string& key : reporter.order) {
    const CaseRates& c = reporter.cases[key];
    auto e = c.rate.find("ember");
    std::string peers, peer_json;
    for (const auto& [impl, rate] : c.rate) {
      if (impl == "ember") continue;
      char buf[160];
      if (e != c.rate.end() && rate > 0) {
        std::snprintf(buf, sizeof buf, "%s: %s (%.2fx)  ", impl.c_str(), human(rate, c.unit).c_str(),
                      e->second / rate);
      } else {
        std::snprintf(buf, sizeof buf, "%s: %s  ", impl.c_str(), human(rate, c.unit).c_str());
      }
      peers += buf;
      std::snprintf(buf, sizeof buf, "%s\"%s\": %.6g", peer_json.empty() ? "" : ", ", impl.c_str(),
                    rate);
      peer_json += buf;
    }
    std::string ceil_text = "", ceil_json = "null";
    if (ceiling_of && e != c.rate.end()) {
      const std::string ck = ceiling_of(key);
      auto cc = reporter.cases.find(ck);
      if (!ck.empty() && cc != reporter.cases.end() && !cc->second.rate.empty()) {
        const double ceil = cc->second.rate.begin()->second;
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.1f%% of %s", 100.0 * e->second / ceil, ck.c_str());
        ceil_text = buf;
        std::snprintf(buf, sizeof buf, "%.4f", e->second / ceil);
        ceil_json = buf;
      }
    }
    std::printf("%-44s %14s %-36s %s\n", key.c_str(),
                e == c.rate.end() ? "-" : human(e->second, c.unit).c_str(), peers.c_str(),
                ceil_text.c_str());
    char row[512];
    std::snprintf(row, sizeof row,
                  "%s  {\"case\": \"%s\", \"unit\": \"%s\", \"ember\": %.6g, \"peers\": {%s}, "
                  "\"fraction_of_ceiling\": %s}",
                  first_row ? "" : ",\n", key.c_str(), c.unit.c_str(),
                  e == c.rate.end() ? 0.0 : e->second, peer_json.c_str(), ceil_json.c_str());
    json += row;
    first_row = false;
  }
  json += "\n]\n";
  if (!summary_path.empty()) {
    std::ofstream(summary_path) << json;
    std::printf("summary written to %s\n", summary_path.c_str());
  }
  return 0;
}

}  // namespace ember::bench
