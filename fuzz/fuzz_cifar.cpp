// libFuzzer target: the CIFAR binary readers. The bytes become both root/test_batch.bin
// (CIFAR10(root, train=false), 3073-byte records) and root/test.bin (CIFAR100(root, false), 3074-
// byte records, fine and coarse labels). Seeds: fuzz/corpus/cifar/.
#include <type_traits>

#include "ember/data/datasets.hpp"
#include "fuzz_util.hpp"

namespace {

std::string g_root;

template <class Dataset>
void load(bool coarse) {
  try {
    const Dataset d = [&] {
      if constexpr (std::is_same_v<Dataset, ember::data::CIFAR100>)
        return Dataset(g_root, false, nullptr, nullptr, coarse);
      else
        return Dataset(g_root, false);
    }();
    uint64_t sum = ember::fuzz::touch(d.images()) + ember::fuzz::touch(d.labels());
    if (d.size() > 0) sum += ember::fuzz::touch(d.get(d.size() - 1).data);
    ember::fuzz::consume(sum + d.classes().size());
  } catch (const ember::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ember::fuzz::init("cifar");
  g_root = ember::fuzz::scratch_dir();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ember::fuzz::write_file(g_root + "/test_batch.bin", data, size);
  ember::fuzz::write_file(g_root + "/test.bin", data, size);
  load<ember::data::CIFAR10>(false);
  // The coarse labels are checked either way; which one is kept depends on the first byte.
  load<ember::data::CIFAR100>(size > 0 && (data[0] & 1) != 0);
  return 0;
}
