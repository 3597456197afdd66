// Samplers: the order in which a DataLoader visits a dataset's indices, one epoch at a time.
// Each is a pure function of (its settings, epoch), so an epoch can be replayed exactly (resume).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace ember::data {

/// The dataset indices of one epoch, in visiting order.
class Sampler {
 public:
  virtual ~Sampler() = default;
  /// The indices for `epoch` (0, 1, ...). Deterministic: the same epoch gives the same list.
  virtual std::vector<int64_t> indices(int64_t epoch) const = 0;
  /// How many indices every epoch has.
  virtual int64_t size() const = 0;
};
using SamplerPtr = std::shared_ptr<const Sampler>;

/// 0, 1, ..., n - 1 every epoch.
class SequentialSampler : public Sampler {
 public:
  explicit SequentialSampler(int64_t n);
  std::vector<int64_t> indices(int64_t epoch) const override;
  int64_t size() const override { return n_; }

 private:
  int64_t n_;
};

/// A fresh random permutation of 0..n-1 each epoch, drawn from (seed, epoch).
class RandomSampler : public Sampler {
 public:
  explicit RandomSampler(int64_t n, uint64_t seed = 0);
  std::vector<int64_t> indices(int64_t epoch) const override;
  int64_t size() const override { return n_; }

 private:
  int64_t n_;
  uint64_t seed_;
};

/// Options of DistributedSampler (torch.utils.data.DistributedSampler's arguments).
struct DistributedSamplerOptions {
  DistributedSamplerOptions(int64_t num_replicas, int64_t rank)
      : num_replicas_(num_replicas), rank_(rank) {}
  DistributedSamplerOptions& shuffle(bool s) {
    shuffle_ = s;
    return *this;
  }
  DistributedSamplerOptions& seed(uint64_t s) {
    seed_ = s;
    return *this;
  }
  DistributedSamplerOptions& drop_last(bool d) {
    drop_last_ = d;
    return *this;
  }
  int64_t num_replicas_, rank_;
  bool shuffle_ = true;
  uint64_t seed_ = 0;
  bool drop_last_ = false;
};

/// This rank's shard of a dataset of n examples, as torch's DistributedSampler: every replica
/// draws the same permutation (from seed and epoch; identity without shuffle), which is padded by
/// repeating its start to a multiple of num_replicas (or truncated with drop_last), and rank r
/// takes positions r, r + R, r + 2R, ... So the shards are disjoint (before padding) and together
/// cover the dataset, and every rank has the same number of indices.
class DistributedSampler : public Sampler {
 public:
  DistributedSampler(int64_t n, const DistributedSamplerOptions& options);
  std::vector<int64_t> indices(int64_t epoch) const override;
  int64_t size() const override { return per_replica_; }

 private:
  int64_t n_;
  DistributedSamplerOptions o_;
  int64_t per_replica_;
};

}  // namespace ember::data
