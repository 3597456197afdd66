// libFuzzer target: image files through ImageFolder. LLVMFuzzerInitialize makes root/cls/x.png;
// each input overwrites that file and runs ImageFolder(root).get(0), i.e. stb_image's format
// detection (by content: PNG, JPEG, BMP, GIF, TGA, PNM, PSD, HDR, PIC whatever the extension),
// Ember's size caps, and the decode. Seeds: fuzz/corpus/image/.
#include <filesystem>

#include "ember/data/datasets.hpp"
#include "fuzz_util.hpp"

namespace {
std::string g_root, g_path;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ember::fuzz::init("image");
  g_root = ember::fuzz::scratch_dir() + "/root";
  std::filesystem::create_directories(g_root + "/cls");
  g_path = g_root + "/cls/x.png";
  ember::fuzz::write_file(g_path, nullptr, 0);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ember::fuzz::write_file(g_path, data, size);
  try {
    const ember::data::ImageFolder folder(g_root);
    const ember::data::Example e = folder.get(0);
    ember::fuzz::consume(ember::fuzz::touch(e.data) + ember::fuzz::touch(e.target));
  } catch (const ember::Error&) {
  }
  return 0;
}
