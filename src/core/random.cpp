// Philox4x32-10 and the Generator handle (seed + counter offset).
//
// Philox4x32-10 is the counter-based generator of Salmon, Moraes, Dror and Shaw, "Parallel Random
// Numbers: As Easy as 1, 2, 3" (SC'11): ten rounds of two 32x32->64 multiplications on a 128-bit
// counter, with a 64-bit key bumped by the Weyl constants between rounds. A Generator only hands
// out counter blocks (advance); kernels turn block numbers into numbers, so the same
// (seed, offset) gives the same tensor on any thread count.
#include "ember/random.hpp"

#include <mutex>

namespace ember {

namespace {
constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // golden ratio
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;  // sqrt(3) - 1
}  // namespace

std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * c[0];
    const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * c[2];
    c = {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k[0], static_cast<uint32_t>(p1),
         static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k[1], static_cast<uint32_t>(p0)};
    k[0] += kPhiloxW0;
    k[1] += kPhiloxW1;
  }
  return c;
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
