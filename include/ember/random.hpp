// Random numbers: a counter-based Philox4x32-10 generator. Element i of a random tensor depends
// only on (seed, offset, i), so the stream is the same for any thread count and can be reproduced
// bit for bit by a GPU kernel.
#pragma once

#include <array>
#include <cstdint>
#include <memory>

namespace ember {

/// Philox4x32-10 (Salmon et al., "Parallel Random Numbers: As Easy as 1, 2, 3", SC'11).
/// Returns the four 32-bit outputs for a 128-bit counter and a 64-bit key.
std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

/// A handle to generator state (seed, offset). Copies share state, like torch.Generator.
class Generator {
 public:
  explicit Generator(uint64_t seed = 67280421310721ull);
  void set_current_seed(uint64_t seed);  // also resets the offset to 0
  uint64_t current_seed() const;
  /// Philox counter offset: how many 128-bit blocks have been consumed.
  uint64_t offset() const;
  void set_offset(uint64_t offset);
  /// Reserves `blocks` counter blocks and returns the first; thread-safe.
  uint64_t advance(uint64_t blocks);
  /// An independent generator with the same seed and offset.
  Generator clone() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

/// The process-wide default generator used when none is passed.
Generator& default_generator();
/// Seeds the default generator (and resets its offset), like torch::manual_seed.
void manual_seed(uint64_t seed);

}  // namespace ember
