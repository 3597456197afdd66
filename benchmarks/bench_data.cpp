// Data loading throughput: Fashion-MNIST batches of 128 through the classic CIFAR augmentation
// (pad 4 + random 28x28 crop, horizontal flip, ToTensor, Normalize), by number of workers.
// Reports images/s (items_per_second) as the median of 5 repetitions of 100 batches each; the
// bar is 20,000 images/s on 2 cores. Uses the real Fashion-MNIST training set from Debian's
// dataset-fashion-mnist when present, otherwise 60,000 random 28x28 images of the same layout.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <filesystem>

#include "bench_common.hpp"
#include "ember/data.hpp"
#include "ember/ember.hpp"

namespace {

using namespace ember;
using namespace ember::data;

Transform cifar_augmentation() {
  return transforms::Compose({transforms::RandomCrop(28, 4), transforms::RandomHorizontalFlip(0.5),
                              transforms::ToTensor(),
                              transforms::Normalize({0.2860}, {0.3530})});
}

DatasetPtr fashion_mnist_train(Transform t) {
  const std::string root = default_fashion_mnist_root();
  if (std::filesystem::exists(root + "/train-images-idx3-ubyte.gz")) {
    return std::make_shared<FashionMNIST>(root, true, std::move(t));
  }
  std::fprintf(stderr, "bench_data: %s not found; using random images of the same shape\n",
               root.c_str());
  Generator gen(1);
  Tensor images = randint(0, 256, {60000, 28, 28, 1}, gen, kUInt8);
  Tensor labels = randint(0, 10, {60000}, gen, kInt64);
  return std::make_shared<MapDataset>(std::make_shared<TensorDataset>(images, labels),
                                      std::move(t));
}

const DatasetPtr& dataset() {
  static DatasetPtr ds = fashion_mnist_train(cifar_augmentation());
  return ds;
}

constexpr int64_t kBatch = 128;
const int64_t kBatches = bench::quick_mode() ? 3 : 100;

// One iteration = 100 batches (3 in quick mode) of 128 from a fresh epoch.
void BM_DataLoader(benchmark::State& state) {
  const int workers = static_cast<int>(state.range(0));
  DataLoader loader(dataset(), DataLoaderOptions(kBatch).shuffle(true).num_workers(workers));
  int64_t images = 0;
  for (auto _ : state) {
    int64_t n = 0;
    for (Example& batch : loader) {
      images += batch.data.size(0);
      benchmark::DoNotOptimize(batch.data.data_ptr());
      if (++n == kBatches) break;
    }
  }
  state.SetItemsProcessed(images);
  state.counters["workers"] = workers;
}
BENCHMARK(BM_DataLoader)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()
    ->Iterations(1)->Repetitions(bench::repetitions())->ReportAggregatesOnly(true);

// The per-image pipeline alone, on the calling thread (no batching, no queue).
void BM_AugmentOneImage(benchmark::State& state) {
  const DatasetPtr& ds = dataset();
  int64_t i = 0;
  for (auto _ : state) {
    Example e = ds->get(i++ % ds->size());
    benchmark::DoNotOptimize(e.data.data_ptr());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AugmentOneImage)->Unit(benchmark::kMicrosecond)->Repetitions(bench::repetitions())
    ->ReportAggregatesOnly(true);

}  // namespace

int main(int argc, char** argv) { return ember::bench::ratio_main(argc, argv); }
