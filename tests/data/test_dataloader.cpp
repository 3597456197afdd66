// DataLoader, samplers and dataset wrappers: batching, shuffling, determinism across worker
// counts, worker errors, early destruction and the bounded prefetch queue.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <set>
#include <thread>

#include "core/parallel.hpp"
#include "ember/data/dataloader.hpp"
#include "ember/ember.hpp"

using namespace ember;
using namespace ember::data;

namespace {

// Example i: data = [i, i + 0.5] (float32), target = i (int64 scalar).
std::shared_ptr<TensorDataset> counting_dataset(int64_t n) {
  Tensor x = arange(0, n, kFloat32).unsqueeze(1);
  Tensor data = cat({x, x + 0.5}, 1);
  return std::make_shared<TensorDataset>(data, arange(0, n, kInt64));
}

std::vector<int64_t> targets_of(const Example& batch) {
  Tensor t = batch.target.contiguous();
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
}

// Every batch of one epoch, flattened: targets and data bytes.
struct EpochRecord {
  std::vector<std::vector<int64_t>> targets;
  std::vector<std::vector<float>> data;
};
EpochRecord record(DataLoader& loader) {
  EpochRecord r;
  for (Example& b : loader) {
    r.targets.push_back(targets_of(b));
    Tensor d = b.data.contiguous();
    r.data.emplace_back(d.data_ptr<float>(), d.data_ptr<float>() + d.numel());
  }
  return r;
}

// A dataset whose get() calls a hook first (to count, sleep or throw).
class HookDataset : public Dataset {
 public:
  HookDataset(int64_t n, std::function<void(int64_t)> hook) : n_(n), hook_(std::move(hook)) {}
  int64_t size() const override { return n_; }
  Example get(int64_t i) const override {
    check_index(i, n_, "HookDataset");
    hook_(i);
    return {full({2}, static_cast<double>(i)), tensor(i)};
  }

 private:
  int64_t n_;
  std::function<void(int64_t)> hook_;
};

}  // namespace

TEST_CASE("collate_stack: stacks data and scalar targets", "[data]") {
  std::vector<Example> ex = {{full({2, 3}, 1.0), tensor(int64_t{4})},
                             {full({2, 3}, 2.0), tensor(int64_t{5})}};
  Example b = collate_stack(std::move(ex));
  REQUIRE(b.data.sizes() == IntArrayRef({2, 2, 3}));
  REQUIRE(b.target.sizes() == IntArrayRef({2}));
  REQUIRE(b.data[1][0][0].item<float>() == 2.0f);
  REQUIRE(targets_of(b) == std::vector<int64_t>{4, 5});
}

TEST_CASE("collate_stack: shape and target mismatches name the shapes", "[data]") {
  std::vector<Example> ex = {{zeros({2, 3}), Tensor()}, {zeros({3, 2}), Tensor()}};
  REQUIRE_THROWS_AS(collate_stack(std::move(ex)), ShapeError);
  std::vector<Example> ex2 = {{zeros({2, 3}), Tensor()}, {zeros({3, 2}), Tensor()}};
  REQUIRE_THROWS_WITH(collate_stack(std::move(ex2)),
                      Catch::Contains("example 0 has shape (2, 3) but example 1 has (3, 2)"));
  std::vector<Example> ex3 = {{zeros({2}), tensor(int64_t{1})}, {zeros({2}), Tensor()}};
  REQUIRE_THROWS_AS(collate_stack(std::move(ex3)), ValueError);
}

TEST_CASE("DataLoader: sequential batches, last batch kept or dropped", "[data]") {
  auto ds = counting_dataset(10);
  DataLoader loader(ds, DataLoaderOptions(3));
  REQUIRE(loader.size() == 4);
  EpochRecord r = record(loader);
  REQUIRE(r.targets == std::vector<std::vector<int64_t>>{{0, 1, 2}, {3, 4, 5}, {6, 7, 8}, {9}});
  REQUIRE(r.data[3] == std::vector<float>{9.0f, 9.5f});

  DataLoader dropping(ds, DataLoaderOptions(3).drop_last(true));
  REQUIRE(dropping.size() == 3);
  REQUIRE(record(dropping).targets.size() == 3);

  DataLoader empty_loader(counting_dataset(0), DataLoaderOptions(4));
  REQUIRE(empty_loader.size() == 0);
  REQUIRE(empty_loader.begin() == empty_loader.end());
}

TEST_CASE("DataLoader: shuffle is a new permutation each epoch, replayable from the seed",
          "[data]") {
  auto ds = counting_dataset(50);
  DataLoader loader(ds, DataLoaderOptions(7).shuffle(true).seed(11));
  EpochRecord e0 = record(loader), e1 = record(loader);
  REQUIRE(loader.epoch() == 2);
  auto flat = [](const EpochRecord& r) {
    std::vector<int64_t> v;
    for (const auto& b : r.targets) v.insert(v.end(), b.begin(), b.end());
    return v;
  };
  std::vector<int64_t> f0 = flat(e0), f1 = flat(e1);
  REQUIRE(std::set<int64_t>(f0.begin(), f0.end()).size() == 50);
  REQUIRE(std::set<int64_t>(f1.begin(), f1.end()).size() == 50);
  REQUIRE(f0 != f1);
  std::vector<int64_t> sorted = f0;
  std::sort(sorted.begin(), sorted.end());
  REQUIRE(sorted != f0);  // shuffled, not sequential

  DataLoader again(ds, DataLoaderOptions(7).shuffle(true).seed(11));
  REQUIRE(flat(record(again)) == f0);
  again.set_epoch(1);
  REQUIRE(flat(record(again)) == f1);
  DataLoader other(ds, DataLoaderOptions(7).shuffle(true).seed(12));
  REQUIRE(flat(record(other)) != f0);
}

TEST_CASE("DataLoader: batches are bitwise identical for 0, 1, 2 and 4 workers", "[data]") {
  // Random augmentation drawn from the per-sample generator: noise plus a random offset.
  Transform augment = [](const Tensor& x) {
    Generator& g = sample_generator();
    return x + randn(x.sizes(), g) * 0.1 + uniform(g, -1.0, 1.0);
  };
  auto ds = std::make_shared<MapDataset>(counting_dataset(103), augment);
  std::vector<EpochRecord> runs;
  for (int workers : {0, 1, 2, 4}) {
    DataLoader loader(ds, DataLoaderOptions(8).shuffle(true).seed(3).num_workers(workers));
    EpochRecord a = record(loader), b = record(loader);  // two epochs
    a.targets.insert(a.targets.end(), b.targets.begin(), b.targets.end());
    a.data.insert(a.data.end(), b.data.begin(), b.data.end());
    runs.push_back(a);
  }
  for (size_t i = 1; i < runs.size(); ++i) {
    REQUIRE(runs[i].targets == runs[0].targets);
    REQUIRE(runs[i].data == runs[0].data);  // bitwise: float == on every element
  }
  // The augmentation really is random: epoch 0 and 1 see the same example differently.
  REQUIRE(runs[0].data[0] != runs[0].data[13]);
}

TEST_CASE("DataLoader: iterate(epoch, first_batch) resumes mid-epoch exactly", "[data]") {
  Transform augment = [](const Tensor& x) { return x + uniform(sample_generator()); };
  auto ds = std::make_shared<MapDataset>(counting_dataset(40), augment);
  DataLoader loader(ds, DataLoaderOptions(6).shuffle(true).seed(5).num_workers(2));
  loader.set_epoch(3);
  EpochRecord full_epoch = record(loader);
  std::vector<std::vector<float>> tail;
  for (auto it = loader.iterate(3, 4); it != loader.end(); ++it) {
    REQUIRE(it.batch_index() == 4 + static_cast<int64_t>(tail.size()));
    Tensor d = it->data.contiguous();
    tail.emplace_back(d.data_ptr<float>(), d.data_ptr<float>() + d.numel());
  }
  REQUIRE(tail == std::vector<std::vector<float>>(full_epoch.data.begin() + 4,
                                                  full_epoch.data.end()));
  REQUIRE(loader.iterate(3, loader.size()) == loader.end());
  REQUIRE_THROWS_AS(loader.iterate(3, loader.size() + 1), IndexError);
}

TEST_CASE("DataLoader: a worker's exception reaches the caller with its type and message",
          "[data]") {
  auto ds = std::make_shared<HookDataset>(30, [](int64_t i) {
    EMBER_CHECK(i != 17, ValueError, "[HookDataset] example ", i, " is broken");
  });
  for (int workers : {0, 1, 3}) {
    DataLoader loader(ds, DataLoaderOptions(4).num_workers(workers));
    int64_t seen = 0;
    bool caught = false;
    try {
      for (Example& b : loader) seen += b.data.size(0);
    } catch (const ValueError& e) {
      caught = true;
      REQUIRE(std::string(e.what()) == "[HookDataset] example 17 is broken");
    }
    REQUIRE(caught);
    REQUIRE(seen == 16);  // batches 0-3 arrived, in order, before batch 4 failed
  }
  // A collate error (example 5 is longer than the others) surfaces the same way.
  struct Ragged : Dataset {
    int64_t size() const override { return 8; }
    Example get(int64_t i) const override { return {zeros({i == 5 ? 3 : 2}), tensor(i)}; }
  };
  DataLoader ragged(std::make_shared<Ragged>(), DataLoaderOptions(2).num_workers(2));
  REQUIRE_THROWS_WITH(record(ragged), Catch::Contains("example 0 has shape (2,) but example 1 has (3,)"));
}

TEST_CASE("DataLoader: destroying an iterator or the loader mid-epoch does not hang", "[data]") {
  std::atomic<int64_t> loaded{0};
  auto ds = std::make_shared<HookDataset>(2000, [&](int64_t) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    ++loaded;
  });
  auto t0 = std::chrono::steady_clock::now();
  {
    DataLoader loader(ds, DataLoaderOptions(10).num_workers(4));
    int n = 0;
    for (Example& b : loader) {
      (void)b;
      if (++n == 3) break;  // the iterator dies here with workers busy
    }
  }
  {
    auto loader = std::make_unique<DataLoader>(ds, DataLoaderOptions(10).num_workers(4));
    DataLoader::Iterator it = loader->begin();
    loader.reset();  // the epoch keeps its dataset alive; the iterator still works
    ++it;
    REQUIRE(targets_of(*it).front() == 10);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE(loaded.load() < 2000);  // far from the whole epoch was loaded
  REQUIRE(seconds < 30.0);
}

TEST_CASE("DataLoader: workers stay within the prefetch bound", "[data]") {
  std::atomic<int64_t> loaded{0};
  auto ds = std::make_shared<HookDataset>(400, [&](int64_t) { ++loaded; });
  DataLoader loader(ds, DataLoaderOptions(4).num_workers(2).prefetch(3));
  DataLoader::Iterator it = loader.begin();  // holds batch 0
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // Batch 0 plus at most num_workers * prefetch = 6 batches ahead.
  REQUIRE(loaded.load() <= (1 + 6) * 4);
  REQUIRE(loaded.load() >= 2 * 4);  // and the workers did run ahead
  ++it;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  REQUIRE(loaded.load() <= (2 + 6) * 4);
}

TEST_CASE("DataLoader: workers run kernels single-threaded", "[data]") {
  std::atomic<int> max_threads{0};
  auto ds = std::make_shared<HookDataset>(8, [&](int64_t) {
    int t = get_num_threads();
    int prev = max_threads.load();
    while (t > prev && !max_threads.compare_exchange_weak(prev, t)) {
    }
  });
  DataLoader loader(ds, DataLoaderOptions(2).num_workers(2));
  record(loader);
  REQUIRE(max_threads.load() == 1);
}

TEST_CASE("DataLoader: options are validated", "[data]") {
  auto ds = counting_dataset(5);
  REQUIRE_THROWS_AS(DataLoader(ds, DataLoaderOptions(0)), ValueError);
  REQUIRE_THROWS_AS(DataLoader(ds, DataLoaderOptions(2).num_workers(-1)), ValueError);
  REQUIRE_THROWS_AS(DataLoader(ds, DataLoaderOptions(2).prefetch(0)), ValueError);
  REQUIRE_THROWS_AS(DataLoader(DatasetPtr(), DataLoaderOptions(2)), ValueError);
  DataLoader loader(ds, DataLoaderOptions(2));
  auto it = loader.end();
  REQUIRE_THROWS_AS(*it, IndexError);
}

TEST_CASE("DataLoader: a custom sampler and a by-value dataset", "[data]") {
  TensorDataset ds(arange(0, 6, kFloat32), arange(0, 6, kInt64));
  std::vector<int64_t> order = {5, 0, 3};
  struct Fixed : Sampler {
    std::vector<int64_t> v;
    std::vector<int64_t> indices(int64_t) const override { return v; }
    int64_t size() const override { return static_cast<int64_t>(v.size()); }
  };
  auto s = std::make_shared<Fixed>();
  s->v = order;
  DataLoader loader(ds, DataLoaderOptions(2).sampler(s));
  REQUIRE(record(loader).targets == std::vector<std::vector<int64_t>>{{5, 0}, {3}});
}

TEST_CASE("DistributedSampler: disjoint shards that cover the dataset, padded or dropped",
          "[data]") {
  for (bool shuffle : {false, true}) {
    const int64_t n = 10, R = 3;
    std::vector<int64_t> all;
    for (int64_t r = 0; r < R; ++r) {
      DistributedSampler s(n, DistributedSamplerOptions(R, r).shuffle(shuffle).seed(9));
      std::vector<int64_t> mine = s.indices(2);
      REQUIRE(static_cast<int64_t>(mine.size()) == 4);  // ceil(10 / 3)
      REQUIRE(s.size() == 4);
      all.insert(all.end(), mine.begin(), mine.end());
    }
    REQUIRE(all.size() == 12);
    REQUIRE(std::set<int64_t>(all.begin(), all.end()).size() == 10);  // 2 repeats of padding
  }
  // Without shuffle the shards are torch's: rank r takes r, r + R, ... of 0..9 padded with 0, 1.
  DistributedSampler s0(10, DistributedSamplerOptions(3, 0).shuffle(false));
  DistributedSampler s2(10, DistributedSamplerOptions(3, 2).shuffle(false));
  REQUIRE(s0.indices(0) == std::vector<int64_t>{0, 3, 6, 9});
  REQUIRE(s2.indices(0) == std::vector<int64_t>{2, 5, 8, 1});
  DistributedSampler d(10, DistributedSamplerOptions(3, 1).shuffle(false).drop_last(true));
  REQUIRE(d.indices(0) == std::vector<int64_t>{1, 4, 7});
  // Shuffled: the same permutation on every rank, a new one each epoch.
  DistributedSampler a(12, DistributedSamplerOptions(2, 0).seed(4));
  REQUIRE(a.indices(0) != a.indices(1));
  REQUIRE(a.indices(5) == a.indices(5));
  REQUIRE_THROWS_AS(DistributedSampler(10, DistributedSamplerOptions(2, 2)), ValueError);
  REQUIRE_THROWS_AS(DistributedSampler(10, DistributedSamplerOptions(0, 0)), ValueError);
}

TEST_CASE("RandomSampler and SequentialSampler", "[data]") {
  RandomSampler r(20, 1);
  std::vector<int64_t> p = r.indices(0);
  REQUIRE(std::set<int64_t>(p.begin(), p.end()).size() == 20);
  REQUIRE(r.indices(0) == p);
  REQUIRE(r.indices(1) != p);
  REQUIRE(SequentialSampler(3).indices(7) == std::vector<int64_t>{0, 1, 2});
  REQUIRE_THROWS_AS(SequentialSampler(-1), ValueError);
}

TEST_CASE("Subset, ConcatDataset, random_split", "[data]") {
  auto ds = counting_dataset(10);
  Subset sub(ds, {7, 2, 2});
  REQUIRE(sub.size() == 3);
  REQUIRE(sub.get(0).target.item<int64_t>() == 7);
  REQUIRE_THROWS_AS(sub.get(3), IndexError);
  REQUIRE_THROWS_AS(Subset(ds, {10}), IndexError);
  REQUIRE_THROWS_WITH(Subset(ds, {10}), Catch::Contains("index 10 is out of range"));

  ConcatDataset cat_ds({counting_dataset(3), counting_dataset(0), counting_dataset(4)});
  REQUIRE(cat_ds.size() == 7);
  REQUIRE(cat_ds.get(2).target.item<int64_t>() == 2);
  REQUIRE(cat_ds.get(3).target.item<int64_t>() == 0);
  REQUIRE(cat_ds.get(6).target.item<int64_t>() == 3);
  REQUIRE_THROWS_AS(cat_ds.get(7), IndexError);
  REQUIRE_THROWS_AS(cat_ds.get(-1), IndexError);

  auto parts = random_split(ds, std::vector<int64_t>{6, 4}, 3);
  REQUIRE(parts.size() == 2);
  REQUIRE(parts[0]->size() == 6);
  std::set<int64_t> seen;
  for (auto& p : parts)
    for (int64_t i : p->indices()) seen.insert(i);
  REQUIRE(seen.size() == 10);
  REQUIRE(random_split(ds, std::vector<int64_t>{6, 4}, 3)[0]->indices() == parts[0]->indices());
  REQUIRE(random_split(ds, std::vector<int64_t>{6, 4}, 4)[0]->indices() != parts[0]->indices());
  REQUIRE_THROWS_AS(random_split(ds, std::vector<int64_t>{6, 5}), ValueError);
  // Fractions: floor(0.33 * 10) = 3 each, the remainder 1 goes to the first subset.
  auto thirds = random_split(ds, std::vector<double>{0.34, 0.33, 0.33});
  REQUIRE(thirds[0]->size() == 4);
  REQUIRE(thirds[1]->size() == 3);
  REQUIRE(thirds[2]->size() == 3);
  REQUIRE_THROWS_AS(random_split(ds, std::vector<double>{0.5, 0.6}), ValueError);
}

TEST_CASE("TensorDataset: rows of data and target", "[data]") {
  TensorDataset ds(arange(0, 12, kFloat32).view({4, 3}), arange(0, 4, kInt64));
  REQUIRE(ds.size() == 4);
  Example e = ds.get(2);
  REQUIRE(e.data.sizes() == IntArrayRef({3}));
  REQUIRE(e.data[0].item<float>() == 6.0f);
  REQUIRE(e.target.item<int64_t>() == 2);
  REQUIRE_THROWS_AS(TensorDataset(zeros({4, 3}), zeros({5})), ShapeError);
  REQUIRE_THROWS_AS(ds.get(4), IndexError);
}

TEST_CASE("sample_generator: guarded per thread, helpers in range", "[data]") {
  Generator g(42);
  double first;
  {
    SampleGeneratorGuard guard(g.clone());
    first = uniform(sample_generator());
  }
  Generator h(42);
  REQUIRE(uniform(h) == first);
  for (int i = 0; i < 1000; ++i) {
    int64_t r = randint(h, -3, 4);
    REQUIRE(r >= -3);
    REQUIRE(r < 4);
    double u = uniform(h, 2.0, 3.0);
    REQUIRE(u >= 2.0);
    REQUIRE(u < 3.0);
  }
  REQUIRE_THROWS_AS(randint(h, 3, 3), ValueError);
  REQUIRE(mix_seed(1, {2}) != mix_seed(1, {3}));
  std::vector<int64_t> p = permutation(100, h);
  REQUIRE(std::set<int64_t>(p.begin(), p.end()).size() == 100);
}
