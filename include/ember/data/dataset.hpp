// Datasets: an indexed collection of examples, like torch.utils.data.Dataset, plus the wrappers
// that split and combine them, and the per-sample random stream that augmentation draws from.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "ember/random.hpp"
#include "ember/tensor.hpp"

namespace ember::data {

/// One example (or, after collation, one batch): `data` and `target` (libtorch's names).
/// `target` is undefined for datasets without targets.
struct Example {
  Tensor data;
  Tensor target;
};

/// A function from tensor to tensor, e.g. a transform (see data/transforms.hpp) or a Lambda.
using Transform = std::function<Tensor(const Tensor&)>;

/// An indexed dataset. `get` must be safe to call from several threads at once: the DataLoader's
/// workers call it concurrently. It raises IndexError for an index outside [0, size()).
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Example get(int64_t index) const = 0;
};
using DatasetPtr = std::shared_ptr<const Dataset>;

/// Throws IndexError "[<op>] index i is out of range for a dataset of n examples" unless
/// 0 <= index < size.
void check_index(int64_t index, int64_t size, const char* op);

/// Rows of `data` (and of `target` when defined): example i is (data[i], target[i]). Both must
/// have the same first dimension.
class TensorDataset : public Dataset {
 public:
  explicit TensorDataset(Tensor data, Tensor target = Tensor());
  int64_t size() const override;
  Example get(int64_t index) const override;
  const Tensor& data() const { return data_; }
  const Tensor& target() const { return target_; }

 private:
  Tensor data_, target_;
};

/// The examples of `dataset` at `indices`, in that order (repeats allowed).
class Subset : public Dataset {
 public:
  Subset(DatasetPtr dataset, std::vector<int64_t> indices);
  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  Example get(int64_t index) const override;
  const std::vector<int64_t>& indices() const { return indices_; }
  const DatasetPtr& dataset() const { return dataset_; }

 private:
  DatasetPtr dataset_;
  std::vector<int64_t> indices_;
};

/// The datasets one after another.
class ConcatDataset : public Dataset {
 public:
  explicit ConcatDataset(std::vector<DatasetPtr> datasets);
  int64_t size() const override { return offsets_.empty() ? 0 : offsets_.back(); }
  Example get(int64_t index) const override;

 private:
  std::vector<DatasetPtr> datasets_;
  std::vector<int64_t> offsets_;  // cumulative sizes
};

/// Applies `transform` to each example's data (and `target_transform`, when set, to its target).
class MapDataset : public Dataset {
 public:
  MapDataset(DatasetPtr dataset, Transform transform, Transform target_transform = nullptr);
  int64_t size() const override { return dataset_->size(); }
  Example get(int64_t index) const override;

 private:
  DatasetPtr dataset_;
  Transform transform_, target_transform_;
};

/// Splits `dataset` into non-overlapping subsets of the given lengths (which must sum to its
/// size), from a random permutation drawn with `seed`, like torch.utils.data.random_split.
std::vector<std::shared_ptr<Subset>> random_split(DatasetPtr dataset,
                                                  const std::vector<int64_t>& lengths,
                                                  uint64_t seed = 0);
/// Fractions that sum to 1: each subset gets floor(f * n) examples and the remainder is handed
/// out one at a time from the first subset on, as PyTorch does.
std::vector<std::shared_ptr<Subset>> random_split(DatasetPtr dataset,
                                                  const std::vector<double>& fractions,
                                                  uint64_t seed = 0);

// ---- randomness for data loading ----
//
// Augmentation must not depend on which worker thread loads a sample. The DataLoader gives every
// sample its own generator, seeded from (loader seed, epoch, position in the epoch), and makes it
// the thread's sample generator while that sample is loaded. Random transforms draw from
// sample_generator() unless given a generator explicitly.

/// The generator random transforms draw from on this thread: the current sample's while a
/// DataLoader loads one, otherwise a per-thread generator (seed 0 until set_sample_seed).
Generator& sample_generator();
/// Reseeds this thread's own sample generator (outside a DataLoader).
void set_sample_seed(uint64_t seed);

/// Makes `gen` this thread's sample generator for the guard's lifetime.
class SampleGeneratorGuard {
 public:
  explicit SampleGeneratorGuard(Generator gen);
  ~SampleGeneratorGuard();
  SampleGeneratorGuard(const SampleGeneratorGuard&) = delete;
  SampleGeneratorGuard& operator=(const SampleGeneratorGuard&) = delete;

 private:
  Generator gen_;
  Generator* previous_;
};

/// A 64-bit seed mixed from a base seed and a list of words (SplitMix64 finalizer per word):
/// nearby inputs give unrelated seeds.
uint64_t mix_seed(uint64_t seed, std::initializer_list<uint64_t> words);

/// One uniform double in [lo, hi) from one Philox block of `gen` (53 random bits).
double uniform(Generator& gen, double lo = 0.0, double hi = 1.0);
/// One uniform integer in [lo, hi) (hi > lo), without modulo bias.
int64_t randint(Generator& gen, int64_t lo, int64_t hi);
/// A uniformly random permutation of 0..n-1 (Fisher-Yates driven by `gen`). (Named apart from
/// ember::randperm, which returns a tensor, so that both namespaces can be used together.)
std::vector<int64_t> permutation(int64_t n, Generator& gen);

}  // namespace ember::data
