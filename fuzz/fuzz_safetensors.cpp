// libFuzzer target: safetensors bytes through every reader, in memory (deserialize_safetensors,
// deserialize_safetensors_metadata) and from a file (load_safetensors's memory mapping,
// read_safetensors_header's bounded reads). Seeds: fuzz/corpus/safetensors/.
#include <string_view>

#include "ember/io/safetensors.hpp"
#include "fuzz_util.hpp"

namespace {
std::string g_path;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ember::fuzz::init("safetensors");
  g_path = ember::fuzz::scratch_dir() + "/input.safetensors";
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ember;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    fuzz::consume(fuzz::touch(deserialize_safetensors(bytes)));
  } catch (const Error&) {
  }
  try {
    fuzz::consume(deserialize_safetensors_metadata(bytes).size());
  } catch (const Error&) {
  }
  fuzz::write_file(g_path, data, size);
  try {
    fuzz::consume(fuzz::touch(load_safetensors(g_path)));
  } catch (const Error&) {
  }
  try {
    SafetensorsHeader h = read_safetensors_header(g_path);
    fuzz::consume(h.entries.size() + h.metadata.size() + h.header_size);
  } catch (const Error&) {
  }
  return 0;
}
