// DataLoader: batches of a dataset, loaded by worker threads into a bounded prefetch queue, like
// torch.utils.data.DataLoader.
//
//   data::DataLoader loader(dataset, data::DataLoaderOptions(128).shuffle(true).num_workers(2));
//   for (data::Example& batch : loader) { ... batch.data ... batch.target ... }
//
// Each range-for (each begin()) is one epoch with a fresh shuffle. The batches of an epoch are a
// function of (seed, epoch) only: which examples form batch k, and the random numbers that
// augmentation draws for each sample (see sample_generator in dataset.hpp), never depend on the
// number of workers or on thread timing. So 0, 1, 2 or 4 workers give bitwise the same batches.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>
#include <vector>

#include "ember/data/dataset.hpp"
#include "ember/data/sampler.hpp"

namespace ember::data {

/// Turns the examples of one batch into one Example.
using Collate = std::function<Example(std::vector<Example>&& examples)>;

/// The default collate: stacks the data tensors into (B, ...) and the targets into (B, ...); a
/// scalar target per example becomes (B,). Throws ShapeError naming the first two shapes that
/// differ. Targets must be defined in all examples or in none.
Example collate_stack(std::vector<Example>&& examples);

/// Options of DataLoader, libtorch-style: DataLoaderOptions(64).shuffle(true).num_workers(2).
struct DataLoaderOptions {
  DataLoaderOptions(int64_t batch_size = 1) : batch_size_(batch_size) {}  // NOLINT
  DataLoaderOptions& batch_size(int64_t b) {
    batch_size_ = b;
    return *this;
  }
  /// A RandomSampler (new permutation each epoch); ignored when a sampler is given.
  DataLoaderOptions& shuffle(bool s) {
    shuffle_ = s;
    return *this;
  }
  /// Drops the last batch when it is smaller than batch_size.
  DataLoaderOptions& drop_last(bool d) {
    drop_last_ = d;
    return *this;
  }
  /// Worker threads; 0 loads on the calling thread.
  DataLoaderOptions& num_workers(int n) {
    num_workers_ = n;
    return *this;
  }
  /// Batches each worker may have ready ahead of the consumer (torch's prefetch_factor).
  DataLoaderOptions& prefetch(int n) {
    prefetch_ = n;
    return *this;
  }
  /// Seeds the shuffle and the per-sample augmentation stream.
  DataLoaderOptions& seed(uint64_t s) {
    seed_ = s;
    return *this;
  }
  /// Visits the sampler's indices instead of 0..n-1 (or a shuffle of them).
  DataLoaderOptions& sampler(SamplerPtr s) {
    sampler_ = std::move(s);
    return *this;
  }
  DataLoaderOptions& collate(Collate c) {
    collate_ = std::move(c);
    return *this;
  }

  int64_t batch_size_;
  bool shuffle_ = false;
  bool drop_last_ = false;
  int num_workers_ = 0;
  int prefetch_ = 2;
  uint64_t seed_ = 0;
  SamplerPtr sampler_;
  Collate collate_;
};

class DataLoader {
  struct Run;  // one epoch in flight: its batches, worker threads and ready queue

 public:
  /// An input iterator over one epoch's batches. Copies share the epoch. Destroying the last
  /// copy mid-epoch stops and joins the workers (after each finishes the sample it is loading).
  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Example;
    using difference_type = std::ptrdiff_t;
    using pointer = Example*;
    using reference = Example&;

    Iterator() = default;
    Example& operator*() const;
    Example* operator->() const { return &**this; }
    /// Waits for the next batch; rethrows, on this thread, an exception a worker raised for it.
    Iterator& operator++();
    bool operator==(const Iterator& other) const { return done() == other.done(); }
    bool operator!=(const Iterator& other) const { return !(*this == other); }
    /// The position of the current batch in its epoch.
    int64_t batch_index() const;

   private:
    friend class DataLoader;
    explicit Iterator(std::shared_ptr<Run> run) : run_(std::move(run)) {}
    bool done() const;
    std::shared_ptr<Run> run_;
  };

  DataLoader(DatasetPtr dataset, DataLoaderOptions options = {});
  /// Takes a dataset by value: DataLoader(MNIST(root), ...).
  template <class D, class = std::enable_if_t<std::is_base_of_v<Dataset, std::decay_t<D>> &&
                                              !std::is_pointer_v<std::decay_t<D>>>>
  DataLoader(D&& dataset, DataLoaderOptions options = {})  // NOLINT
      : DataLoader(DatasetPtr(std::make_shared<std::decay_t<D>>(std::forward<D>(dataset))),
                   std::move(options)) {}

  /// Starts epoch epoch() and advances epoch() by one.
  Iterator begin();
  Iterator end() const { return Iterator(); }
  /// Starts `epoch` at batch `first_batch` (skipping the earlier batches without loading them):
  /// resuming mid-epoch gives the same batches as an uninterrupted run. Does not change epoch().
  Iterator iterate(int64_t epoch, int64_t first_batch = 0);

  /// Batches per epoch.
  int64_t size() const;
  /// The epoch the next begin() starts (0 at construction).
  int64_t epoch() const { return epoch_; }
  void set_epoch(int64_t epoch);
  const DataLoaderOptions& options() const { return options_; }
  const DatasetPtr& dataset() const { return dataset_; }
  const SamplerPtr& sampler() const { return sampler_; }

 private:
  DatasetPtr dataset_;
  DataLoaderOptions options_;
  SamplerPtr sampler_;
  int64_t epoch_ = 0;
};

}  // namespace ember::data
