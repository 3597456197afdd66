// Generators of small dataset files for tests: IDX / MNIST, CIFAR-10 / CIFAR-100 binary batches,
// and ImageFolder trees of PNGs. Each returns what a reader should give back, so a test compares
// the reader with an independent description of the data. Content is deterministic in the seed.
//
// The fake MNIST and CIFAR images are learnable: noise in [0, 64) plus, for class k, two bright
// rows (2k + 4 and 2k + 5, value 255), so a small model reaches high accuracy in a few steps.
#pragma once

#include <stb/stb_image_write.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "ember/data/datasets.hpp"
#include "ember/ember.hpp"
#include "io/io_test_util.hpp"  // TempDir, read_bytes, write_bytes

namespace ember::test {

/// A SplitMix64 stream: deterministic bytes and small integers for fake data.
struct FakeRng {
  uint64_t state;
  explicit FakeRng(uint64_t seed) : state(seed * 0x9e3779b97f4a7c15ull + 1) {}
  uint64_t next() {
    uint64_t x = (state += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  }
  int64_t below(int64_t n) { return static_cast<int64_t>(next() % static_cast<uint64_t>(n)); }
};

/// What a reader should return: images uint8 (N, H, W, C) and labels int64 (N); for CIFAR-100
/// `labels` are the fine labels and `coarse` the superclasses.
struct FakeImages {
  Tensor images;
  Tensor labels;
  Tensor coarse;
};

/// n learnable images (N, H, W, C) with labels drawn below num_classes.
inline FakeImages make_fake_images(int64_t n, int64_t h, int64_t w, int64_t c, uint64_t seed,
                                   int64_t num_classes = 10) {
  FakeRng rng(seed);
  FakeImages f{empty({n, h, w, c}, kUInt8), empty({n}, kInt64), Tensor()};
  uint8_t* px = f.images.data_ptr<uint8_t>();
  int64_t* lab = f.labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    lab[i] = rng.below(num_classes);
    const int64_t bright = 2 * (lab[i] % 10) + 4;
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w * c; ++x)
        px[(i * h + y) * w * c + x] =
            (y == bright || y == bright + 1) ? 255 : static_cast<uint8_t>(rng.below(64));
  }
  return f;
}

/// Writes MNIST-format files {train,t10k}-{images-idx3,labels-idx1}-ubyte (with .gz when `gzip`)
/// into dir (created if needed) holding n learnable h x w images. Returns images as
/// (N, H, W, 1) and labels.
inline FakeImages write_fake_mnist(const std::string& dir, int64_t n, uint64_t seed,
                                   bool gzip = true, bool train = true, int64_t h = 28,
                                   int64_t w = 28) {
  std::filesystem::create_directories(dir);
  FakeImages f = make_fake_images(n, h, w, 1, seed);
  const std::string prefix = (std::filesystem::path(dir) / (train ? "train" : "t10k")).string();
  const std::string ext = gzip ? ".gz" : "";
  data::write_idx(prefix + "-images-idx3-ubyte" + ext, f.images.squeeze(3), gzip);
  data::write_idx(prefix + "-labels-idx1-ubyte" + ext, f.labels.to(kUInt8), gzip);
  return f;
}

/// The bytes of CIFAR records for images (N, 32, 32, 3): per record the label bytes, then the R,
/// G and B planes (32x32 row-major each).
inline std::string cifar_records(const Tensor& images, const std::vector<Tensor>& label_bytes) {
  const int64_t n = images.size(0);
  const uint8_t* px = images.data_ptr<uint8_t>();
  std::string out;
  for (int64_t i = 0; i < n; ++i) {
    for (const Tensor& l : label_bytes) out.push_back(static_cast<char>(l.data_ptr<int64_t>()[i]));
    for (int64_t ch = 0; ch < 3; ++ch)
      for (int64_t yx = 0; yx < 1024; ++yx)
        out.push_back(static_cast<char>(px[(i * 1024 + yx) * 3 + ch]));
  }
  return out;
}

/// Writes CIFAR-10 binary batches into dir: data_batch_1..5.bin with n_per_batch records each
/// (train) or test_batch.bin with n_per_batch records, and batches.meta.txt when `meta`.
inline FakeImages write_fake_cifar10(const std::string& dir, int64_t n_per_batch, uint64_t seed,
                                     bool train = true, bool meta = false) {
  std::filesystem::create_directories(dir);
  const int64_t batches = train ? 5 : 1;
  FakeImages f = make_fake_images(batches * n_per_batch, 32, 32, 3, seed);
  for (int64_t b = 0; b < batches; ++b) {
    const Tensor imgs = f.images.narrow(0, b * n_per_batch, n_per_batch).contiguous();
    const Tensor labs = f.labels.narrow(0, b * n_per_batch, n_per_batch).contiguous();
    const std::string name =
        train ? detail::str_cat("data_batch_", b + 1, ".bin") : std::string("test_batch.bin");
    write_bytes((std::filesystem::path(dir) / name).string(), cifar_records(imgs, {labs}));
  }
  if (meta) {
    write_bytes((std::filesystem::path(dir) / "batches.meta.txt").string(),
                "c0\nc1\nc2\nc3\nc4\nc5\nc6\nc7\nc8\nc9\n\n");
  }
  return f;
}

/// Writes CIFAR-100 train.bin or test.bin (n records) into dir. labels: fine (< 100); coarse:
/// fine / 5 (< 20).
inline FakeImages write_fake_cifar100(const std::string& dir, int64_t n, uint64_t seed,
                                      bool train = true) {
  std::filesystem::create_directories(dir);
  FakeImages f = make_fake_images(n, 32, 32, 3, seed, 100);
  f.coarse = empty({n}, kInt64);
  for (int64_t i = 0; i < n; ++i)
    f.coarse.data_ptr<int64_t>()[i] = f.labels.data_ptr<int64_t>()[i] / 5;
  write_bytes((std::filesystem::path(dir) / (train ? "train.bin" : "test.bin")).string(),
              cifar_records(f.images, {f.coarse, f.labels}));
  return f;
}

/// One image written by write_fake_image_folder.
struct FakeImageFile {
  std::string path;
  int64_t label;
  Tensor pixels;  // uint8 (H, W, 3)
};

/// Writes root/<class>/img_<j>.png for each class (per_class images of varying small sizes, RGB
/// noise) and returns them in ImageFolder's order (classes sorted byte-wise, files sorted).
inline std::vector<FakeImageFile> write_fake_image_folder(const std::string& root,
                                                          std::vector<std::string> classes,
                                                          int64_t per_class, uint64_t seed) {
  std::sort(classes.begin(), classes.end());
  FakeRng rng(seed);
  std::vector<FakeImageFile> out;
  for (size_t k = 0; k < classes.size(); ++k) {
    const std::filesystem::path dir = std::filesystem::path(root) / classes[k];
    std::filesystem::create_directories(dir);
    for (int64_t j = 0; j < per_class; ++j) {
      const int64_t h = 3 + rng.below(6), w = 3 + rng.below(6);
      Tensor px = empty({h, w, 3}, kUInt8);
      uint8_t* p = px.data_ptr<uint8_t>();
      for (int64_t i = 0; i < h * w * 3; ++i) p[i] = static_cast<uint8_t>(rng.below(256));
      const std::string path = (dir / detail::str_cat("img_", j, ".png")).string();
      REQUIRE(stbi_write_png(path.c_str(), static_cast<int>(w), static_cast<int>(h), 3, p,
                             static_cast<int>(w * 3)) != 0);
      out.push_back({path, static_cast<int64_t>(k), px});
    }
  }
  // Files within a class sort as strings: img_10 before img_2.
  std::stable_sort(out.begin(), out.end(), [](const FakeImageFile& a, const FakeImageFile& b) {
    return a.label != b.label ? a.label < b.label : a.path < b.path;
  });
  return out;
}

}  // namespace ember::test
