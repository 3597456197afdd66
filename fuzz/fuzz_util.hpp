// Shared pieces of the libFuzzer targets (fuzz/fuzz_<format>.cpp): library limits that keep a
// lying header below libFuzzer's -malloc_limit_mb, a per-process scratch directory for the loaders
// that take a path, and a read of every loaded byte so AddressSanitizer checks it.
//
// A target catches `const ember::Error&` only. Any other exception escaping a loader
// (std::bad_alloc, std::out_of_range, a JSON library's own exception) reaches libFuzzer as an
// uncaught exception, i.e. a crash: it is a parser bug to fix, not to catch here.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "ember/ember.hpp"
#include "ember/memory.hpp"

namespace ember::fuzz {

/// The allocation cap during fuzzing: a file that claims more gets a typed error well below
/// libFuzzer's -malloc_limit_mb=512.
inline constexpr size_t kMaxAllocationBytes = size_t{256} << 20;

/// A fresh directory for this process's files: $TMPDIR (tools/fuzz.sh points it at its scratch
/// directory), else /dev/shm, else /tmp, then "ember_fuzz_<name>_<pid>". Removed at normal exit.
inline const std::string& scratch_dir(const char* name = "target") {
  static const std::string dir = [name] {
    namespace fs = std::filesystem;
    std::error_code ec;
    const char* tmp = std::getenv("TMPDIR");
    fs::path base = tmp != nullptr && *tmp != '\0'     ? fs::path(tmp)
                    : fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm")
                                                       : fs::path("/tmp");
    fs::path d = base / ("ember_fuzz_" + std::string(name) + "_" + std::to_string(::getpid()));
    fs::remove_all(d, ec);
    fs::create_directories(d);
    return d.string();
  }();
  return dir;
}

inline void remove_scratch_dir() {
  std::error_code ec;
  std::filesystem::remove_all(scratch_dir(), ec);
}

/// Call from LLVMFuzzerInitialize: one CPU thread, no allocator block cache (it would keep up to
/// a gigabyte of freed blocks alive), the 256 MiB allocation cap, and the scratch directory.
inline void init(const char* name) {
  setenv("EMBER_CPU_CACHE_MB", "0", 1);  // read once, at the first allocation
  ember::set_num_threads(1);
  ember::set_max_allocation_bytes(kMaxAllocationBytes);
  ember::empty_cpu_cache();
  scratch_dir(name);
  std::atexit(remove_scratch_dir);
}

/// Replaces the file at path with the bytes.
inline void write_file(const std::string& path, const uint8_t* data, size_t size) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (size > 0) f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  f.close();
  if (!f) {
    // The harness itself failed (disk full?): not a finding of the parser, but nothing to fuzz.
    std::abort();
  }
}

/// The sum of a tensor's bytes: reads every element so ASan checks the memory behind it.
inline uint64_t touch(const Tensor& t) {
  if (!t.defined() || t.numel() == 0) return 0;
  const Tensor c = t.contiguous();
  const auto* p = static_cast<const unsigned char*>(c.data_ptr());
  uint64_t sum = 0;
  for (size_t i = 0; i < c.nbytes(); ++i) sum += p[i];
  return sum;
}

inline uint64_t touch(const StateDict& d) {
  uint64_t sum = 0;
  for (const auto& [name, t] : d) sum += name.size() + touch(t);
  return sum;
}

/// Keeps a value alive so the reads above are not optimized away.
inline void consume(uint64_t v) {
  static volatile uint64_t sink = 0;
  sink = sink + v;
}

}  // namespace ember::fuzz
