// libFuzzer target: read_idx on arbitrary bytes, raw or gzip-compressed (zlib decides by the
// content). Seeds: fuzz/corpus/idx/.
#include "ember/data/datasets.hpp"
#include "fuzz_util.hpp"

namespace {
std::string g_path;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ember::fuzz::init("idx");
  g_path = ember::fuzz::scratch_dir() + "/input-idx-ubyte";
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ember::fuzz::write_file(g_path, data, size);
  try {
    ember::fuzz::consume(ember::fuzz::touch(ember::data::read_idx(g_path)));
  } catch (const ember::Error&) {
  }
  return 0;
}
