// CIFAR-10 and CIFAR-100, binary version: fixed-size records of label byte(s) and three 32x32
// colour planes. All records land in one uint8 (N, 32, 32, 3) tensor, planes interleaved at load.
#include <filesystem>

#include "data/reader_util.hpp"
#include "ember/data/datasets.hpp"
#include "ember/error.hpp"
#include "ember/ops.hpp"
#include "io/file.hpp"

namespace ember::data {

using reader_detail::where;

namespace {

constexpr size_t kPlane = 32 * 32;
constexpr size_t kPixels = 3 * kPlane;

const std::vector<std::string> kCifar10Classes = {
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};

const std::vector<std::string> kCifar100Fine = {
    "apple",       "aquarium_fish", "baby",      "bear",       "beaver",       "bed",
    "bee",         "beetle",        "bicycle",   "bottle",     "bowl",         "boy",
    "bridge",      "bus",           "butterfly", "camel",      "can",          "castle",
    "caterpillar", "cattle",        "chair",     "chimpanzee", "clock",        "cloud",
    "cockroach",   "couch",         "crab",      "crocodile",  "cup",          "dinosaur",
    "dolphin",     "elephant",      "flatfish",  "forest",     "fox",          "girl",
    "hamster",     "house",         "kangaroo",  "keyboard",   "lamp",         "lawn_mower",
    "leopard",     "lion",          "lizard",    "lobster",    "man",          "maple_tree",
    "motorcycle",  "mountain",      "mouse",     "mushroom",   "oak_tree",     "orange",
    "orchid",      "otter",         "palm_tree", "pear",       "pickup_truck", "pine_tree",
    "plain",       "plate",         "poppy",     "porcupine",  "possum",       "rabbit",
    "raccoon",     "ray",           "road",      "rocket",     "rose",         "sea",
    "seal",        "shark",         "shrew",     "skunk",      "skyscraper",   "snail",
    "snake",       "spider",        "squirrel",  "streetcar",  "sunflower",    "sweet_pepper",
    "table",       "tank",          "telephone", "television", "tiger",        "tractor",
    "train",       "trout",         "tulip",     "turtle",     "wardrobe",     "whale",
    "willow_tree", "wolf",          "woman",     "worm"};

const std::vector<std::string> kCifar100Coarse = {"aquatic_mammals",
                                                  "fish",
                                                  "flowers",
                                                  "food_containers",
                                                  "fruit_and_vegetables",
                                                  "household_electrical_devices",
                                                  "household_furniture",
                                                  "insects",
                                                  "large_carnivores",
                                                  "large_man-made_outdoor_things",
                                                  "large_natural_outdoor_scenes",
                                                  "large_omnivores_and_herbivores",
                                                  "medium_mammals",
                                                  "non-insect_invertebrates",
                                                  "people",
                                                  "reptiles",
                                                  "small_mammals",
                                                  "trees",
                                                  "vehicles_1",
                                                  "vehicles_2"};

// The directory (root or root/<sub>) that holds `first`; IOError listing both paths otherwise.
std::filesystem::path find_dir(const std::string& root, const char* sub, const std::string& first,
                               const char* op) {
  const std::filesystem::path r(root);
  const std::string found = reader_detail::first_existing(
      {(r / first).string(), (r / sub / first).string()}, op, first.c_str());
  return std::filesystem::path(found).parent_path();
}

// Reads the record files into *images (N, 32, 32, 3) and *labels (N) int64. A record is one
// label byte per entry of `limits` (each checked against its limit) then the R, G, B planes; the
// label kept is byte `label_byte`.
void load_records(const char* op, const std::vector<std::string>& files,
                  const std::vector<int64_t>& limits, size_t label_byte, Tensor* images,
                  Tensor* labels) {
  const size_t header = limits.size();
  const size_t record = header + kPixels;
  std::vector<std::shared_ptr<io_detail::MappedFile>> maps;
  int64_t total = 0;
  for (const std::string& f : files) {
    reader_detail::require_regular_file(f, op);
    maps.push_back(io_detail::map_file(f, where(op, f)));
    const size_t size = maps.back()->size;
    EMBER_CHECK(size > 0 && size % record == 0, IOError, where(op, f), ": size ", size,
                " bytes is not a positive multiple of the ", record, "-byte record");
    total += static_cast<int64_t>(size / record);
  }
  *images = empty({total, 32, 32, 3}, kUInt8);
  *labels = empty({total}, kInt64);
  uint8_t* img = images->data_ptr<uint8_t>();
  int64_t* lab = labels->data_ptr<int64_t>();
  int64_t n = 0;
  for (size_t k = 0; k < files.size(); ++k) {
    const uint8_t* p = maps[k]->data;
    const size_t count = maps[k]->size / record;
    for (size_t r = 0; r < count; ++r, ++n) {
      const uint8_t* rec = p + r * record;
      for (size_t b = 0; b < header; ++b)
        EMBER_CHECK(rec[b] < limits[b], IOError, where(op, files[k]), ": label ", int{rec[b]},
                    " of record ", r, " is out of range for ", limits[b], " classes");
      lab[n] = rec[label_byte];
      uint8_t* dst = img + static_cast<size_t>(n) * kPixels;  // (32, 32, 3)
      const uint8_t* src = rec + header;                      // (3, 32, 32)
      for (size_t i = 0; i < kPlane; ++i) {
        dst[3 * i + 0] = src[i];
        dst[3 * i + 1] = src[kPlane + i];
        dst[3 * i + 2] = src[2 * kPlane + i];
      }
    }
  }
}

// Class names from dir/file when it exists (exactly `count` non-empty lines), else `standard`.
std::vector<std::string> class_names(const std::filesystem::path& dir, const char* file,
                                     const std::vector<std::string>& standard, const char* op) {
  const std::string path = (dir / file).string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return standard;
  std::vector<std::string> names = reader_detail::read_lines(path, op);
  EMBER_CHECK(names.size() == standard.size(), IOError, where(op, path), ": expected ",
              standard.size(), " class names, one per line, got ", names.size());
  return names;
}

}  // namespace

CIFAR10::CIFAR10(const std::string& root, bool train, Transform transform,
                 Transform target_transform)
    : LabeledImageDataset("CIFAR10", std::move(transform), std::move(target_transform)) {
  const std::filesystem::path dir =
      find_dir(root, "cifar-10-batches-bin", train ? "data_batch_1.bin" : "test_batch.bin", name_);
  std::vector<std::string> files;
  if (train) {
    for (int b = 1; b <= 5; ++b)
      files.push_back((dir / detail::str_cat("data_batch_", b, ".bin")).string());
  } else {
    files.push_back((dir / "test_batch.bin").string());
  }
  load_records(name_, files, {10}, 0, &images_, &labels_);
  classes_ = class_names(dir, "batches.meta.txt", kCifar10Classes, name_);
}

CIFAR100::CIFAR100(const std::string& root, bool train, Transform transform,
                   Transform target_transform, bool coarse)
    : LabeledImageDataset("CIFAR100", std::move(transform), std::move(target_transform)) {
  const std::string file = train ? "train.bin" : "test.bin";
  const std::filesystem::path dir = find_dir(root, "cifar-100-binary", file, name_);
  load_records(name_, {(dir / file).string()}, {20, 100}, coarse ? 0 : 1, &images_, &labels_);
  classes_ = coarse ? class_names(dir, "coarse_label_names.txt", kCifar100Coarse, name_)
                    : class_names(dir, "fine_label_names.txt", kCifar100Fine, name_);
}

}  // namespace ember::data
