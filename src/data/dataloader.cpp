// DataLoader: one Run per epoch. Batch k of an epoch holds the sampler's positions
// [k * B, (k + 1) * B); sample p is loaded with its own generator seeded from (seed, epoch, p).
// Workers claim batch numbers in increasing order, but only up to `num_workers * prefetch` batches
// ahead of the consumer (the bounded queue); finished batches wait in a map keyed by batch number
// and the consumer takes them strictly in order. So the output never depends on thread timing.
#include "ember/data/dataloader.hpp"

#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "core/parallel.hpp"
#include "ember/autograd.hpp"
#include "ember/error.hpp"
#include "ember/ops.hpp"

namespace ember::data {

namespace {
constexpr uint64_t kSampleTag = 0x73616d706c652121ull;  // "sample!!"

// Stacks tensors that must all have the first one's shape; `what` is "data" or "target".
Tensor stack_checked(const std::vector<Example>& examples, bool data, const char* what) {
  std::vector<Tensor> parts;
  parts.reserve(examples.size());
  for (const Example& e : examples) parts.push_back(data ? e.data : e.target);
  const Tensor& first = parts.front();
  for (size_t i = 1; i < parts.size(); ++i) {
    EMBER_CHECK(parts[i].sizes() == first.sizes(), ShapeError, "[DataLoader] cannot stack the ",
                what, " of a batch: example 0 has shape ", first.sizes(), " but example ", i,
                " has ", parts[i].sizes(), " (resize them or pass a collate function)");
    EMBER_CHECK(parts[i].dtype() == first.dtype(), DTypeError, "[DataLoader] cannot stack the ",
                what, " of a batch: example 0 is ", first.dtype(), " but example ", i, " is ",
                parts[i].dtype());
  }
  return stack(parts, 0);
}
}  // namespace

Example collate_stack(std::vector<Example>&& examples) {
  EMBER_CHECK(!examples.empty(), ValueError, "[DataLoader] cannot collate an empty batch");
  for (const Example& e : examples) {
    EMBER_CHECK(e.data.defined(), ValueError, "[DataLoader] an example has no data tensor");
    EMBER_CHECK(e.target.defined() == examples.front().target.defined(), ValueError,
                "[DataLoader] some examples of a batch have a target and some do not");
  }
  Example batch;
  batch.data = stack_checked(examples, true, "data");
  if (examples.front().target.defined()) batch.target = stack_checked(examples, false, "target");
  return batch;
}

// ---- one epoch in flight ----

struct DataLoader::Run {
  struct Slot {
    Example batch;
    std::exception_ptr error;
  };

  DatasetPtr dataset;
  Collate collate;
  std::vector<int64_t> order;  // the sampler's indices for this epoch
  int64_t batch_size = 1, num_batches = 0, epoch = 0;
  uint64_t seed = 0;

  // The consumer's state: `current` is the batch it holds, `consumed` the next one it will take.
  int64_t current = -1;
  Example batch;

  // Shared with the workers, under `mutex`.
  std::mutex mutex;
  std::condition_variable work_cv, ready_cv;
  int64_t next_claim = 0, consumed = 0, capacity = 0;
  bool stop = false;
  std::map<int64_t, Slot> ready;
  std::vector<std::thread> workers;

  ~Run() { shutdown(); }

  Example load(int64_t k) const {
    const int64_t first = k * batch_size;
    const int64_t last = std::min<int64_t>(first + batch_size, static_cast<int64_t>(order.size()));
    std::vector<Example> examples;
    examples.reserve(static_cast<size_t>(last - first));
    NoGradGuard no_grad;
    for (int64_t p = first; p < last; ++p) {
      SampleGeneratorGuard guard(Generator(
          mix_seed(seed, {kSampleTag, static_cast<uint64_t>(epoch), static_cast<uint64_t>(p)})));
      examples.push_back(dataset->get(order[static_cast<size_t>(p)]));
    }
    return collate(std::move(examples));
  }

  void start(int num_workers, int prefetch) {
    capacity = static_cast<int64_t>(num_workers) * prefetch;
    workers.reserve(static_cast<size_t>(num_workers));
    for (int w = 0; w < num_workers; ++w) workers.emplace_back([this] { work(); });
  }

  void work() {
    set_thread_local_num_threads(1);
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
      work_cv.wait(lock, [&] {
        return stop || next_claim >= num_batches || next_claim < consumed + capacity;
      });
      if (stop || next_claim >= num_batches) return;
      const int64_t k = next_claim++;
      lock.unlock();
      Slot slot;
      try {
        slot.batch = load(k);
      } catch (...) {
        slot.error = std::current_exception();
      }
      lock.lock();
      ready.emplace(k, std::move(slot));
      ready_cv.notify_all();
    }
  }

  void shutdown() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
    }
    work_cv.notify_all();
    for (std::thread& t : workers) t.join();
    workers.clear();
  }

  // Moves to the next batch (current + 1); past the last one the run is done.
  void advance() {
    const int64_t k = current + 1;
    if (k >= num_batches) {
      current = num_batches;
      batch = Example();
      shutdown();
      return;
    }
    Slot slot;
    if (workers.empty()) {
      try {
        slot.batch = load(k);
      } catch (...) {
        slot.error = std::current_exception();
      }
    } else {
      std::unique_lock<std::mutex> lock(mutex);
      ready_cv.wait(lock, [&] { return ready.count(k) != 0; });
      auto it = ready.find(k);
      slot = std::move(it->second);
      ready.erase(it);
      consumed = k + 1;
      lock.unlock();
      work_cv.notify_all();
    }
    if (slot.error) {  // the epoch ends here; the error surfaces on the caller's thread
      current = num_batches;
      batch = Example();
      shutdown();
      std::rethrow_exception(slot.error);
    }
    current = k;
    batch = std::move(slot.batch);
  }
};

// ---- Iterator ----

bool DataLoader::Iterator::done() const { return !run_ || run_->current >= run_->num_batches; }

Example& DataLoader::Iterator::operator*() const {
  EMBER_CHECK(!done(), IndexError, "[DataLoader] dereferenced an iterator past the last batch");
  return run_->batch;
}

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  EMBER_CHECK(!done(), IndexError, "[DataLoader] advanced an iterator past the last batch");
  run_->advance();
  return *this;
}

int64_t DataLoader::Iterator::batch_index() const { return run_ ? run_->current : 0; }

// ---- DataLoader ----

DataLoader::DataLoader(DatasetPtr dataset, DataLoaderOptions options)
    : dataset_(std::move(dataset)), options_(std::move(options)) {
  EMBER_CHECK(dataset_ != nullptr, ValueError, "[DataLoader] the dataset is null");
  EMBER_CHECK(options_.batch_size_ >= 1, ValueError,
              "[DataLoader] expected batch_size >= 1, got ", options_.batch_size_);
  EMBER_CHECK(options_.num_workers_ >= 0, ValueError,
              "[DataLoader] expected num_workers >= 0, got ", options_.num_workers_);
  EMBER_CHECK(options_.prefetch_ >= 1, ValueError, "[DataLoader] expected prefetch >= 1, got ",
              options_.prefetch_);
  if (options_.sampler_) {
    sampler_ = options_.sampler_;
  } else if (options_.shuffle_) {
    sampler_ = std::make_shared<RandomSampler>(dataset_->size(), options_.seed_);
  } else {
    sampler_ = std::make_shared<SequentialSampler>(dataset_->size());
  }
  if (!options_.collate_) options_.collate_ = collate_stack;
}

int64_t DataLoader::size() const {
  const int64_t n = sampler_->size(), b = options_.batch_size_;
  return options_.drop_last_ ? n / b : (n + b - 1) / b;
}

void DataLoader::set_epoch(int64_t epoch) {
  EMBER_CHECK(epoch >= 0, ValueError, "[DataLoader] expected epoch >= 0, got ", epoch);
  epoch_ = epoch;
}

DataLoader::Iterator DataLoader::begin() {
  Iterator it = iterate(epoch_);
  ++epoch_;
  return it;
}

DataLoader::Iterator DataLoader::iterate(int64_t epoch, int64_t first_batch) {
  EMBER_CHECK(epoch >= 0, ValueError, "[DataLoader] expected epoch >= 0, got ", epoch);
  auto run = std::make_shared<Run>();
  run->dataset = dataset_;
  run->collate = options_.collate_;
  run->order = sampler_->indices(epoch);
  run->batch_size = options_.batch_size_;
  run->epoch = epoch;
  run->seed = options_.seed_;
  const int64_t n = static_cast<int64_t>(run->order.size()), b = options_.batch_size_;
  run->num_batches = options_.drop_last_ ? n / b : (n + b - 1) / b;
  EMBER_CHECK(first_batch >= 0 && first_batch <= run->num_batches, IndexError,
              "[DataLoader] first_batch ", first_batch, " is outside [0, ", run->num_batches,
              "] for an epoch of ", run->num_batches, " batches");
  run->current = first_batch - 1;
  run->next_claim = run->consumed = first_batch;
  run->start(options_.num_workers_, options_.prefetch_);
  run->advance();
  return Iterator(std::move(run));
}

}  // namespace ember::data
