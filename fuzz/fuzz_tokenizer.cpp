// libFuzzer target: the tokenizers' JSON files. Every input goes through both
// BPETokenizer::load and CharTokenizer::load (their "type" field makes at most one accept it);
// a tokenizer that loads then encodes and decodes a short text, which walks its tables.
// Seeds: fuzz/corpus/tokenizer/.
#include "ember/data/text.hpp"
#include "fuzz_util.hpp"

namespace {
std::string g_path;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ember::fuzz::init("tokenizer");
  g_path = ember::fuzz::scratch_dir() + "/tokenizer.json";
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ember::data;
  ember::fuzz::write_file(g_path, data, size);
  try {
    const BPETokenizer t = BPETokenizer::load(g_path);
    const std::string text = "hello world, h\xc3\xa9llo 123 <|endoftext|>";
    const std::vector<int64_t> ids = t.encode(text);
    if (t.decode(ids) != text) __builtin_trap();  // decode(encode(s)) == s is documented
    ember::fuzz::consume(static_cast<uint64_t>(t.vocab_size()) + ids.size());
  } catch (const ember::Error&) {
  }
  try {
    const CharTokenizer t = CharTokenizer::load(g_path);
    uint64_t sum = static_cast<uint64_t>(t.vocab_size());
    if (t.vocab_size() > 0) {
      std::vector<int64_t> ids = {0, t.vocab_size() - 1};
      const std::string text = t.decode(ids);
      if (t.encode(text) != ids) __builtin_trap();  // ids -> text -> ids round-trips
      sum += text.size();
    }
    ember::fuzz::consume(sum);
  } catch (const ember::Error&) {
  }
  return 0;
}
