// Philox4x32-10 and the Generator handle (seed + counter offset).
//
// Philox4x32-10 is the counter-based generator of Salmon, Moraes, Dror and Shaw, "Parallel Random
// Numbers: As Easy as 1, 2, 3" (SC'11): ten rounds of two 32x32->64 multiplications on a 128-bit
// counter, with a 64-bit key bumped by the Weyl constants between rounds. A Generator only hands
// out counter blocks (advance); kernels turn block numbers into numbers, so the same
// (seed, offset) gives the same tensor on any thread count. The rounds are core/philox.hpp's,
// shared with the CPU and CUDA kernels.
#include "ember/random.hpp"

#include <mutex>

#include "core/philox.hpp"

namespace ember {

std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  const rng::Words w = rng::philox4x32_10(rng::Words{{c[0], c[1], c[2], c[3]}}, k[0], k[1]);
  return {w.w[0], w.w[1], w.w[2], w.w[3]};
}

// ---- Generator ----

struct Generator::State {
  mutable std::mutex mutex;
  uint64_t seed = 0;
  uint64_t offset = 0;
};

Generator::Generator(uint64_t seed) : state_(std::make_shared<State>()) { state_->seed = seed; }

void Generator::set_current_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->seed = seed;
  state_->offset = 0;
}

uint64_t Generator::current_seed() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->seed;
}

uint64_t Generator::offset() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->offset;
}

void Generator::set_offset(uint64_t offset) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->offset = offset;
}

uint64_t Generator::advance(uint64_t blocks) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  const uint64_t first = state_->offset;
  state_->offset += blocks;  // wraps after 2^64 blocks (2^68 bytes of output): never in practice
  return first;
}

Generator Generator::clone() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  Generator g(state_->seed);
  g.state_->offset = state_->offset;
  return g;
}

Generator& default_generator() {
  static Generator g;
  return g;
}

void manual_seed(uint64_t seed) { default_generator().set_current_seed(seed); }

}  // namespace ember
