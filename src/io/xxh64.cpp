// XXH64, written from the xxHash specification (github.com/Cyan4973/xxHash, doc/xxhash_spec.md):
// four accumulator lanes over 32-byte stripes, then the tail in 8-, 4- and 1-byte steps and a
// final avalanche. Little-endian reads, as the specification defines them.
#include <algorithm>
#include <cstring>

#include "io/safetensors_impl.hpp"

namespace ember::io_detail {

struct XXH64Impl {
  static uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
  static uint64_t read64(const unsigned char* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  }
  static uint32_t read32(const unsigned char* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
  }
  static uint64_t round(uint64_t acc, uint64_t input) {
    acc += input * XXH64::kP2;
    acc = rotl(acc, 31);
    return acc * XXH64::kP1;
  }
  static uint64_t merge(uint64_t acc, uint64_t lane) {
    acc ^= round(0, lane);
    return acc * XXH64::kP1 + XXH64::kP4;
  }
  static void stripe(uint64_t acc[4], const unsigned char* p) {
    acc[0] = round(acc[0], read64(p));
    acc[1] = round(acc[1], read64(p + 8));
    acc[2] = round(acc[2], read64(p + 16));
    acc[3] = round(acc[3], read64(p + 24));
  }
};

void XXH64::update(const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  total_ += n;
  if (buffered_ > 0) {  // top up a partial stripe first
    size_t take = std::min(n, 32 - buffered_);
    std::memcpy(buf_ + buffered_, p, take);
    buffered_ += take;
    p += take;
    n -= take;
    if (buffered_ < 32) return;
    XXH64Impl::stripe(acc_, buf_);
    buffered_ = 0;
  }
  for (; n >= 32; p += 32, n -= 32) XXH64Impl::stripe(acc_, p);
  std::memcpy(buf_, p, n);
  buffered_ = n;
}

uint64_t XXH64::digest() const {
  using I = XXH64Impl;
  uint64_t h;
  if (total_ >= 32) {
    h = I::rotl(acc_[0], 1) + I::rotl(acc_[1], 7) + I::rotl(acc_[2], 12) + I::rotl(acc_[3], 18);
    for (uint64_t lane : acc_) h = I::merge(h, lane);
  } else {
    h = acc_[2] + kP5;  // acc_[2] is the seed (0) while no stripe has been consumed
  }
  h += total_;
  const unsigned char* p = buf_;
  size_t n = buffered_;
  for (; n >= 8; p += 8, n -= 8) {
    h ^= I::round(0, I::read64(p));
    h = I::rotl(h, 27) * kP1 + kP4;
  }
  if (n >= 4) {
    h ^= static_cast<uint64_t>(I::read32(p)) * kP1;
    h = I::rotl(h, 23) * kP2 + kP3;
    p += 4;
    n -= 4;
  }
  for (; n > 0; ++p, --n) {
    h ^= static_cast<uint64_t>(*p) * kP5;
    h = I::rotl(h, 11) * kP1;
  }
  h ^= h >> 33;
  h *= kP2;
  h ^= h >> 29;
  h *= kP3;
  h ^= h >> 32;
  return h;
}

}  // namespace ember::io_detail
