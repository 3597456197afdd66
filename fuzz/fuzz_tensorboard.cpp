// libFuzzer target: read_tensorboard_events on arbitrary bytes. Mutations rarely keep TFRecord's
// two CRC-32Cs right, so each input is read twice: as it is (the framing and CRC checks), and with
// every record's CRCs recomputed where its length fits, so the fuzzer also reaches the protocol-
// buffer decoder behind them. Seeds: fuzz/corpus/tensorboard/.
#include <cstring>

#include "ember/io/tensorboard.hpp"
#include "fuzz_util.hpp"

namespace {

std::string g_path;

// The bytes with each record's length CRC and data CRC made to match (little-endian u64 length,
// masked CRC of it, data, masked CRC of the data), as far as the framing holds.
std::string with_valid_crcs(std::string b) {
  size_t pos = 0;
  while (b.size() - pos >= 12) {
    uint64_t n;
    std::memcpy(&n, b.data() + pos, 8);
    const uint32_t len_crc = ember::masked_crc32c(b.data() + pos, 8);
    std::memcpy(b.data() + pos + 8, &len_crc, 4);
    if (n > b.size() - pos - 12 || b.size() - pos - 12 - n < 4) break;
    const uint32_t data_crc = ember::masked_crc32c(b.data() + pos + 12, static_cast<size_t>(n));
    std::memcpy(b.data() + pos + 12 + n, &data_crc, 4);
    pos += 12 + static_cast<size_t>(n) + 4;
  }
  return b;
}

void load(const std::string& bytes) {
  ember::fuzz::write_file(g_path, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  try {
    uint64_t sum = 0;
    for (const ember::TensorBoardEvent& e : ember::read_tensorboard_events(g_path)) {
      sum += static_cast<uint64_t>(e.step) + e.file_version.size();
      for (const ember::TensorBoardValue& v : e.values)
        sum += v.tag.size() + v.encoded_image.size() + v.bucket.size() + v.bucket_limit.size();
    }
    ember::fuzz::consume(sum);
  } catch (const ember::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ember::fuzz::init("tensorboard");
  g_path = ember::fuzz::scratch_dir() + "/events.out.tfevents.0.fuzz";
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  load(bytes);
  const std::string fixed = with_valid_crcs(bytes);
  if (fixed != bytes) load(fixed);
  return 0;
}
