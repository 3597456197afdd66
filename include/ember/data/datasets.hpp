// Dataset file readers: IDX (MNIST, Fashion-MNIST), the CIFAR-10/100 binary batches, and
// ImageFolder (one subdirectory of images per class), like torchvision.datasets.
//
// Every reader raises IOError naming the file and what is wrong with it (missing, truncated,
// malformed, absurd sizes). Images come out as uint8 (H, W, C) tensors, the layout the transforms
// treat as an image (ToTensor turns it into float (C, H, W)); targets are int64 0-d tensors.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "ember/data/dataset.hpp"
#include "ember/tensor.hpp"

namespace ember::data {

// ---- IDX ----

/// Reads an IDX file (raw or gzip-compressed; zlib tells them apart by content). Element types:
/// 0x08 -> uint8, 0x09 -> int8, 0x0B (int16) -> int32 (Ember has no int16; values are widened),
/// 0x0C -> int32, 0x0D -> float32, 0x0E -> float64; big-endian data is swapped to native order.
/// Dimensions of size 0 are allowed (an empty tensor); ndim must be 1..8 and the data at most
/// 2^33 bytes. IOError for a missing, truncated, malformed or oversized file.
Tensor read_idx(const std::string& path);

/// Writes `t` (uint8, int8, int32, float32 or float64; 1 to 8 dimensions, each < 2^32) as an IDX
/// file, gzip-compressed when `gzip`. The file is replaced atomically.
void write_idx(const std::string& path, const Tensor& t, bool gzip = false);

// ---- labeled images held in memory ----

/// Common part of MNIST and CIFAR: N images in one uint8 (N, H, W, C) tensor and N int64 labels.
/// get(i) returns a copy of image i as uint8 (H, W, C) (`transform` applied when set) and the label
/// as an int64 0-d tensor (`target_transform` applied when set). Thread-safe.
class LabeledImageDataset : public Dataset {
 public:
  int64_t size() const override;
  Example get(int64_t index) const override;
  /// (N) int64.
  const Tensor& labels() const { return labels_; }
  /// Class names; labels index into them.
  const std::vector<std::string>& classes() const { return classes_; }

 protected:
  LabeledImageDataset(const char* name, Transform transform, Transform target_transform)
      : name_(name),
        transform_(std::move(transform)),
        target_transform_(std::move(target_transform)) {}
  const char* name_;
  Tensor images_;  // (N, H, W, C) uint8
  Tensor labels_;  // (N) int64
  std::vector<std::string> classes_;
  Transform transform_, target_transform_;
};

// ---- MNIST, Fashion-MNIST ----

/// MNIST from `root`: {train,t10k}-images-idx3-ubyte and {train,t10k}-labels-idx1-ubyte, each
/// raw or with .gz (raw preferred when both exist), in root or in root/MNIST/raw (torchvision's
/// layout). Images must be uint8 (N, H, W), labels uint8 (N) and < 10. get(i): uint8 (H, W, 1).
class MNIST : public LabeledImageDataset {
 public:
  explicit MNIST(const std::string& root, bool train = true, Transform transform = nullptr,
                 Transform target_transform = nullptr);
  /// (N, H, W) uint8.
  Tensor images() const { return images_.squeeze(3); }
  const std::string& images_path() const { return images_path_; }
  const std::string& labels_path() const { return labels_path_; }

 protected:
  MNIST(const char* name, std::vector<std::string> classes, const std::string& root, bool train,
        Transform transform, Transform target_transform);

 private:
  std::string images_path_, labels_path_;
};

/// Fashion-MNIST: the same files and format as MNIST (root/FashionMNIST/raw also searched), with
/// its class names ("T-shirt/top", "Trouser", ..., "Ankle boot").
class FashionMNIST : public MNIST {
 public:
  explicit FashionMNIST(const std::string& root, bool train = true, Transform transform = nullptr,
                        Transform target_transform = nullptr);
};

/// Where Fashion-MNIST is installed: $EMBER_FASHION_MNIST when set and non-empty, else
/// "/usr/share/datasets/fashion-mnist" (Debian's dataset-fashion-mnist package).
std::string default_fashion_mnist_root();

// ---- CIFAR ----

/// CIFAR-10 binary version from root or root/cifar-10-batches-bin: data_batch_1..5.bin (train)
/// or test_batch.bin, records of 3073 bytes (label, 1024 R, 1024 G, 1024 B; 32x32 row-major).
/// Class names from batches.meta.txt when present, else the standard ten. get(i): uint8 (32, 32,
/// 3).
class CIFAR10 : public LabeledImageDataset {
 public:
  explicit CIFAR10(const std::string& root, bool train = true, Transform transform = nullptr,
                   Transform target_transform = nullptr);
  /// (N, 32, 32, 3) uint8.
  const Tensor& images() const { return images_; }
};

/// CIFAR-100 binary version from root or root/cifar-100-binary: train.bin or test.bin, records of
/// 3074 bytes (coarse label, fine label, pixels). Labels are the 100 fine classes, or the 20
/// superclasses when `coarse`; names from fine_label_names.txt / coarse_label_names.txt when
/// present, else the standard ones.
class CIFAR100 : public LabeledImageDataset {
 public:
  explicit CIFAR100(const std::string& root, bool train = true, Transform transform = nullptr,
                    Transform target_transform = nullptr, bool coarse = false);
  /// (N, 32, 32, 3) uint8.
  const Tensor& images() const { return images_; }
};

// ---- ImageFolder ----

/// Images in root/<class>/**/<file>, like torchvision.datasets.ImageFolder: classes are the
/// subdirectories of root sorted byte-wise, samples the files below each class directory
/// (recursively, following symbolic links, in directory order then file order, both sorted) whose
/// extension matches one of `extensions` (case-insensitive). get(i) decodes with stb_image as
/// uint8 (H, W, 3) RGB; images larger than 65535 on a side or 2^28 pixels are refused, and so is
/// one whose decode could need more than max_allocation_bytes() (16 bytes a pixel), before stb
/// allocates; a PNG chunk must fit in the file; pixels missing from a truncated PNM, TGA or HDR
/// file read as 0. IOError for a missing root, no class directories, a class without images, or
/// an undecodable image.
class ImageFolder : public Dataset {
 public:
  explicit ImageFolder(const std::string& root, Transform transform = nullptr,
                       Transform target_transform = nullptr,
                       std::vector<std::string> extensions = {".png", ".jpg", ".jpeg", ".bmp",
                                                              ".gif", ".tga", ".ppm", ".pgm"});
  int64_t size() const override { return static_cast<int64_t>(samples_.size()); }
  Example get(int64_t index) const override;
  const std::vector<std::string>& classes() const { return classes_; }
  /// Class name -> class index.
  std::map<std::string, int64_t> class_to_idx() const;
  /// (path, class index) per sample.
  const std::vector<std::pair<std::string, int64_t>>& samples() const { return samples_; }

 private:
  std::string root_;
  std::vector<std::string> classes_;
  std::vector<std::pair<std::string, int64_t>> samples_;
  Transform transform_, target_transform_;
};

/// Decodes an image file with stb_image into uint8 (H, W, 3) RGB, with ImageFolder's size caps.
Tensor load_image_rgb(const std::string& path);

}  // namespace ember::data
