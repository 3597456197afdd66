// Dataset wrappers (TensorDataset, Subset, ConcatDataset, MapDataset, random_split) and the
// per-sample random stream of data loading.
#include "ember/data/dataset.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "ember/error.hpp"

namespace ember::data {

void check_index(int64_t index, int64_t size, const char* op) {
  EMBER_CHECK(index >= 0 && index < size, IndexError, "[", op, "] index ", index,
              " is out of range for a dataset of ", size, " examples");
}

// ---- TensorDataset ----

TensorDataset::TensorDataset(Tensor data, Tensor target)
    : data_(std::move(data)), target_(std::move(target)) {
  EMBER_CHECK(data_.defined() && data_.dim() >= 1, ShapeError,
              "[TensorDataset] expected a data tensor with at least one dimension");
  if (target_.defined()) {
    EMBER_CHECK(target_.dim() >= 1 && target_.size(0) == data_.size(0), ShapeError,
                "[TensorDataset] data ", data_.sizes(), " and target ", target_.sizes(),
                " differ in their first dimension");
  }
}

int64_t TensorDataset::size() const { return data_.size(0); }

Example TensorDataset::get(int64_t index) const {
  check_index(index, size(), "TensorDataset");
  return {data_[index], target_.defined() ? target_[index] : Tensor()};
}

// ---- Subset ----

Subset::Subset(DatasetPtr dataset, std::vector<int64_t> indices)
    : dataset_(std::move(dataset)), indices_(std::move(indices)) {
  EMBER_CHECK(dataset_ != nullptr, ValueError, "[Subset] the dataset is null");
  const int64_t n = dataset_->size();
  for (int64_t i : indices_) check_index(i, n, "Subset");
}

Example Subset::get(int64_t index) const {
  check_index(index, size(), "Subset");
  return dataset_->get(indices_[static_cast<size_t>(index)]);
}

// ---- ConcatDataset ----

ConcatDataset::ConcatDataset(std::vector<DatasetPtr> datasets) : datasets_(std::move(datasets)) {
  int64_t total = 0;
  for (const DatasetPtr& d : datasets_) {
    EMBER_CHECK(d != nullptr, ValueError, "[ConcatDataset] a dataset is null");
    total += d->size();
    offsets_.push_back(total);
  }
}

Example ConcatDataset::get(int64_t index) const {
  check_index(index, size(), "ConcatDataset");
  const size_t k = static_cast<size_t>(
      std::upper_bound(offsets_.begin(), offsets_.end(), index) - offsets_.begin());
  const int64_t start = k == 0 ? 0 : offsets_[k - 1];
  return datasets_[k]->get(index - start);
}

// ---- MapDataset ----

MapDataset::MapDataset(DatasetPtr dataset, Transform transform, Transform target_transform)
    : dataset_(std::move(dataset)),
      transform_(std::move(transform)),
      target_transform_(std::move(target_transform)) {
  EMBER_CHECK(dataset_ != nullptr, ValueError, "[MapDataset] the dataset is null");
}

Example MapDataset::get(int64_t index) const {
  Example e = dataset_->get(index);
  if (transform_) e.data = transform_(e.data);
  if (target_transform_ && e.target.defined()) e.target = target_transform_(e.target);
  return e;
}

// ---- random_split ----

std::vector<std::shared_ptr<Subset>> random_split(DatasetPtr dataset,
                                                  const std::vector<int64_t>& lengths,
                                                  uint64_t seed) {
  EMBER_CHECK(dataset != nullptr, ValueError, "[random_split] the dataset is null");
  int64_t total = 0;
  for (int64_t l : lengths) {
    EMBER_CHECK(l >= 0, ValueError, "[random_split] lengths must be non-negative, got ", l);
    total += l;
  }
  EMBER_CHECK(total == dataset->size(), ValueError, "[random_split] lengths sum to ", total,
              " but the dataset has ", dataset->size(), " examples");
  Generator gen(mix_seed(seed, {0x72616e645f73706cull}));  // "rand_spl"
  const std::vector<int64_t> perm = permutation(total, gen);
  std::vector<std::shared_ptr<Subset>> out;
  int64_t start = 0;
  for (int64_t l : lengths) {
    out.push_back(std::make_shared<Subset>(
        dataset, std::vector<int64_t>(perm.begin() + start, perm.begin() + start + l)));
    start += l;
  }
  return out;
}

std::vector<std::shared_ptr<Subset>> random_split(DatasetPtr dataset,
                                                  const std::vector<double>& fractions,
                                                  uint64_t seed) {
  EMBER_CHECK(dataset != nullptr, ValueError, "[random_split] the dataset is null");
  double sum = 0;
  for (double f : fractions) {
    EMBER_CHECK(f >= 0 && f <= 1, ValueError, "[random_split] fractions must lie in [0, 1], got ",
                f);
    sum += f;
  }
  EMBER_CHECK(std::abs(sum - 1.0) < 1e-6, ValueError, "[random_split] fractions sum to ", sum,
              ", expected 1");
  const int64_t n = dataset->size();
  std::vector<int64_t> lengths;
  int64_t assigned = 0;
  for (double f : fractions) {
    lengths.push_back(static_cast<int64_t>(std::floor(f * static_cast<double>(n))));
    assigned += lengths.back();
  }
  for (size_t i = 0; assigned < n && !lengths.empty(); i = (i + 1) % lengths.size()) {
    ++lengths[i];
    ++assigned;
  }
  return random_split(std::move(dataset), lengths, seed);
}

// ---- per-sample randomness ----

namespace {
thread_local Generator* t_sample_generator = nullptr;
Generator& thread_generator() {
  thread_local Generator gen(0);
  return gen;
}
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
}  // namespace

Generator& sample_generator() {
  return t_sample_generator != nullptr ? *t_sample_generator : thread_generator();
}

void set_sample_seed(uint64_t seed) { thread_generator().set_current_seed(seed); }

SampleGeneratorGuard::SampleGeneratorGuard(Generator gen)
    : gen_(std::move(gen)), previous_(t_sample_generator) {
  t_sample_generator = &gen_;
}

SampleGeneratorGuard::~SampleGeneratorGuard() { t_sample_generator = previous_; }

uint64_t mix_seed(uint64_t seed, std::initializer_list<uint64_t> words) {
  uint64_t h = splitmix64(seed);
  for (uint64_t w : words) h = splitmix64(h ^ splitmix64(w));
  return h;
}

double uniform(Generator& gen, double lo, double hi) {
  const uint64_t block = gen.advance(1);
  const uint64_t seed = gen.current_seed();
  const std::array<uint32_t, 4> w = philox4x32_10(
      {static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0u, 0u},
      {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)});
  const uint64_t bits = ((static_cast<uint64_t>(w[0]) << 32) | w[1]) >> 11;  // 53 bits
  const double u = static_cast<double>(bits) * 0x1.0p-53;
  return lo + (hi - lo) * u;
}

int64_t randint(Generator& gen, int64_t lo, int64_t hi) {
  EMBER_CHECK(hi > lo, ValueError, "[randint] expected lo < hi, got [", lo, ", ", hi, ")");
  const uint64_t range = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  // Rejection sampling on 64-bit words: accept below the largest multiple of range.
  const uint64_t limit = range == 0 ? 0 : (~uint64_t{0} / range) * range;
  const uint64_t seed = gen.current_seed();
  for (;;) {
    const uint64_t block = gen.advance(1);
    const std::array<uint32_t, 4> w = philox4x32_10(
        {static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0u, 0u},
        {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)});
    const uint64_t r = (static_cast<uint64_t>(w[0]) << 32) | w[1];
    if (r < limit) return lo + static_cast<int64_t>(r % range);
  }
}

std::vector<int64_t> permutation(int64_t n, Generator& gen) {
  EMBER_CHECK(n >= 0, ValueError, "[permutation] expected n >= 0, got ", n);
  std::vector<int64_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), int64_t{0});
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[static_cast<size_t>(i)],
                                                p[static_cast<size_t>(randint(gen, 0, i + 1))]);
  return p;
}

}  // namespace ember::data
