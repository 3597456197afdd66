// Process-wide kernel variant switches (gemm_tc's tile configuration, the attention forward's
// and backward's variants, the convolution's): a value set_* stores for the calls that follow,
// whose start-up value an environment variable may force for a whole run (-1, the automatic
// choice, otherwise). The GPU check times whole training steps under such variables.
#pragma once

#include <atomic>
#include <cstdlib>

#include "ember/error.hpp"

namespace ember::cuda::detail {

class VariantSwitch {
 public:
  /// `env`: the variable's name; `what`: the setter's name for messages; values lo..hi.
  constexpr VariantSwitch(const char* env, const char* what, int lo, int hi)
      : env_(env), what_(what), lo_(lo), hi_(hi) {}

  /// The current value: at first use the environment's (ValueError when it is set to anything
  /// but an integer in lo..hi), then whatever set() stored.
  int get() {
    int v = value_.load(std::memory_order_acquire);
    if (v != kUnread) return v;
    v = from_environment();
    int expected = kUnread;
    value_.compare_exchange_strong(expected, v, std::memory_order_acq_rel);
    return value_.load(std::memory_order_acquire);
  }

  /// Stores v for the calls that follow (ValueError outside lo..hi).
  void set(int v) {
    EMBER_CHECK(v >= lo_ && v <= hi_, ValueError, "[", what_, "] expected ", lo_,
                " (automatic) .. ", hi_, ", got ", v);
    value_.store(v, std::memory_order_release);
  }

 private:
  static constexpr int kUnread = -1000;

  int from_environment() const {
    const char* v = std::getenv(env_);
    if (v == nullptr || *v == '\0') return -1;
    char* end = nullptr;
    const long c = std::strtol(v, &end, 10);
    EMBER_CHECK(*end == '\0' && c >= lo_ && c <= hi_, ValueError, "[", what_, "] ", env_,
                " must be an integer in ", lo_, " .. ", hi_, ", got '", v, "'");
    return static_cast<int>(c);
  }

  const char* env_;
  const char* what_;
  int lo_, hi_;
  std::atomic<int> value_{kUnread};
};

}  // namespace ember::cuda::detail
