// Samplers: sequential, random (a fresh permutation each epoch) and distributed (torch's
// DistributedSampler sharding).
#include "ember/data/sampler.hpp"

#include <numeric>

#include "ember/data/dataset.hpp"
#include "ember/error.hpp"

namespace ember::data {

namespace {
// Tags keep the permutation streams apart from the per-sample augmentation streams.
constexpr uint64_t kPermutationTag = 0x7065726d75746521ull;  // "permute!"

std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  Generator gen(mix_seed(seed, {kPermutationTag, static_cast<uint64_t>(epoch)}));
  return permutation(n, gen);
}

void check_size(int64_t n, const char* op) {
  EMBER_CHECK(n >= 0, ValueError, "[", op, "] expected a non-negative size, got ", n);
}
}  // namespace

SequentialSampler::SequentialSampler(int64_t n) : n_(n) { check_size(n, "SequentialSampler"); }

std::vector<int64_t> SequentialSampler::indices(int64_t) const {
  std::vector<int64_t> v(static_cast<size_t>(n_));
  std::iota(v.begin(), v.end(), int64_t{0});
  return v;
}

RandomSampler::RandomSampler(int64_t n, uint64_t seed) : n_(n), seed_(seed) {
  check_size(n, "RandomSampler");
}

std::vector<int64_t> RandomSampler::indices(int64_t epoch) const {
  return epoch_permutation(n_, seed_, epoch);
}

DistributedSampler::DistributedSampler(int64_t n, const DistributedSamplerOptions& options)
    : n_(n), o_(options) {
  check_size(n, "DistributedSampler");
  EMBER_CHECK(o_.num_replicas_ >= 1, ValueError,
              "[DistributedSampler] expected num_replicas >= 1, got ", o_.num_replicas_);
  EMBER_CHECK(o_.rank_ >= 0 && o_.rank_ < o_.num_replicas_, ValueError,
              "[DistributedSampler] rank ", o_.rank_, " is outside [0, ", o_.num_replicas_, ")");
  const int64_t r = o_.num_replicas_;
  per_replica_ = o_.drop_last_ ? n / r : (n + r - 1) / r;
}

std::vector<int64_t> DistributedSampler::indices(int64_t epoch) const {
  std::vector<int64_t> all;
  if (o_.shuffle_) {
    all = epoch_permutation(n_, o_.seed_, epoch);
  } else {
    all.resize(static_cast<size_t>(n_));
    std::iota(all.begin(), all.end(), int64_t{0});
  }
  const int64_t r = o_.num_replicas_;
  const int64_t total = per_replica_ * r;
  if (total <= n_) {
    all.resize(static_cast<size_t>(total));
  } else if (n_ > 0) {  // pad by repeating from the start (several times if n < num_replicas)
    const size_t original = all.size();
    while (static_cast<int64_t>(all.size()) < total) all.push_back(all[all.size() % original]);
  }
  std::vector<int64_t> mine;
  mine.reserve(static_cast<size_t>(per_replica_));
  for (int64_t i = o_.rank_; i < static_cast<int64_t>(all.size()); i += r) {
    mine.push_back(all[static_cast<size_t>(i)]);
  }
  return mine;
}

}  // namespace ember::data
