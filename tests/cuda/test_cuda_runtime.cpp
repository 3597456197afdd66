// The CUDA runtime (streams, events, the caching allocator) and copies between the host and the
// device. Without a GPU the GPU cases report "skipped" (a warning in the output) and only the
// no-GPU behaviour is checked.
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "ember/cuda/cuda.hpp"
#include "ember/ember.hpp"
#include "cuda/cuda_test_util.hpp"

using namespace ember;
using ember::test::agree;
using ember::test::gpu;

namespace {

const DType kAll[] = {kBool, kUInt8, kInt8, kInt32, kInt64, kFloat16, kBFloat16, kFloat32,
                      kFloat64};

Tensor random_of(IntArrayRef sizes, DType dt, uint64_t seed) {
  Generator g(seed);
  Tensor t = randn(sizes, g) * 50.0;
  return t.to(dt);
}

}  // namespace

TEST_CASE("cuda runtime without a GPU: queries say so, GPU objects raise DeviceError") {
  if (cuda::is_available()) return;  // the GPU cases below cover that machine
  CHECK(cuda::device_count() == 0);
  EMBER_CHECK_THROWS(cuda::Stream(), DeviceError, "cuda");
  EMBER_CHECK_THROWS(cuda::Event(), DeviceError, "cuda");
  EMBER_CHECK_THROWS(cuda::synchronize(), DeviceError, "cuda");
  EMBER_CHECK_THROWS(cuda::current_stream(), DeviceError, "cuda");
  const cuda::DeviceMemoryStats s = cuda::memory_stats();
  CHECK(s.allocated == 0);
  CHECK(s.reserved == 0);
  cuda::empty_cache();  // nothing to do, never throws
  EMBER_CHECK_THROWS(ones({3}).to(Device(kCUDA)), DeviceError, "cuda");
}

TEST_CASE("cuda copies: host -> device -> host is exact for every dtype, dense and strided") {
  if (!gpu()) return;
  uint64_t seed = 100;
  for (DType dt : kAll) {
    INFO("dtype " << dt);
    Tensor h = random_of({5, 7, 3}, dt, ++seed);
    Tensor d = h.to(Device(kCUDA));
    CHECK(d.device() == Device(kCUDA, 0));
    CHECK(test::bitwise_equal(d.cpu(), h));
    // Non-contiguous source on either side.
    Tensor ht = h.transpose(0, 2);
    CHECK(test::bitwise_equal(ht.to(Device(kCUDA)).cpu(), ht));
    CHECK(test::bitwise_equal(d.transpose(0, 2).cpu(), ht));
    // Into a strided destination on the device.
    Tensor dst = zeros({3, 7, 5}, TensorOptions(dt).device(Device(kCUDA)));
    dst.transpose(0, 2).copy_(h);
    CHECK(test::bitwise_equal(dst.cpu(), ht.contiguous()));
    // Expanded (stride-0) source.
    Tensor row = random_of({1, 7}, dt, ++seed);
    CHECK(test::bitwise_equal(row.expand({4, 7}).to(Device(kCUDA)).cpu(),
                              row.expand({4, 7}).contiguous()));
  }
}

TEST_CASE("cuda copies: dtype conversions on the device equal the CPU's") {
  if (!gpu()) return;
  uint64_t seed = 200;
  for (DType from : kAll)
    for (DType to : kAll) {
      INFO(from << " -> " << to);
      Tensor h = random_of({33, 5}, from, ++seed);
      Tensor on_gpu = h.to(Device(kCUDA)).to(to).cpu();  // converted by the CUDA kernel
      CHECK(test::bitwise_equal(on_gpu, h.to(to)));
      Tensor across = h.to(Device(kCUDA), to).cpu();  // converted while moving
      CHECK(test::bitwise_equal(across, h.to(to)));
    }
}

TEST_CASE("cuda fill: every dtype, strided views") {
  if (!gpu()) return;
  for (DType dt : kAll) {
    INFO("dtype " << dt);
    Tensor d = zeros({4, 6}, TensorOptions(dt).device(Device(kCUDA)));
    d.slice(1, 1, 5, 2).fill_(3);
    Tensor h = zeros({4, 6}, TensorOptions(dt));
    h.slice(1, 1, 5, 2).fill_(3);
    CHECK(test::bitwise_equal(d.cpu(), h));
  }
}

TEST_CASE("cuda streams and events: guards restore, events order and time work") {
  if (!gpu()) return;
  const cuda::Stream def = cuda::current_stream();
  CHECK(def == cuda::Stream::default_stream());
  cuda::Stream s;
  CHECK(s != def);
  {
    cuda::StreamGuard guard(s);
    CHECK(cuda::current_stream() == s);
    Tensor a = ones({1 << 20}, TensorOptions().device(Device(kCUDA)));
    cuda::Event start(true), stop(true);
    start.record();
    a.fill_(2);
    stop.record();
    stop.synchronize();
    CHECK(stop.query());
    CHECK(start.elapsed_ms(stop) >= 0.0f);
    cuda::Event done;
    done.record(s);
    done.block(def);  // the default stream waits for s
    CHECK(a.cpu().sum().item<double>() == 2.0 * (1 << 20));
  }
  CHECK(cuda::current_stream() == def);
  s.synchronize();
  CHECK(s.query());
  EMBER_CHECK_THROWS(cuda::set_device(cuda::device_count()), DeviceError, "does not exist");
}

TEST_CASE("cuda caching allocator: freed blocks are reused, statistics add up") {
  if (!gpu()) return;
  cuda::synchronize();
  cuda::empty_cache();
  const cuda::DeviceMemoryStats before = cuda::memory_stats();
  { Tensor a = empty({1 << 18}, TensorOptions().device(Device(kCUDA))); }  // 1 MiB
  const cuda::DeviceMemoryStats mid = cuda::memory_stats();
  CHECK(mid.allocated == before.allocated);
  { Tensor b = empty({1 << 18}, TensorOptions().device(Device(kCUDA))); }
  const cuda::DeviceMemoryStats after = cuda::memory_stats();
  CHECK(after.num_allocations == before.num_allocations + 2);
  if (cuda::caching_enabled()) {
    CHECK(after.num_device_mallocs == before.num_device_mallocs + 1);  // the second reused
    CHECK(after.reserved > after.allocated);
  } else {
    CHECK(after.num_device_mallocs == before.num_device_mallocs + 2);
  }
  CHECK(after.peak >= before.allocated + (int64_t{1} << 20));
  cuda::empty_cache();
  CHECK(cuda::memory_stats().reserved == cuda::memory_stats().allocated);
  // Out of memory (512 GiB: under the allocation cap, over any GPU) is a typed error.
  EMBER_CHECK_THROWS(empty({int64_t{1} << 39}, TensorOptions(kUInt8).device(Device(kCUDA))),
                     DeviceError, "out of memory");
}

TEST_CASE("cuda poisoned allocations: new device memory reads NaN and -1 until written") {
  if (!gpu()) return;  // gpu() turns poisoning on
  CHECK(cuda::poison_allocations());
  const Device cu(kCUDA);
  const Tensor f = empty({5}, TensorOptions(kFloat32).device(cu)).cpu();
  for (double v : test::values(f)) CHECK(std::isnan(v));
  const Tensor h = empty({3}, TensorOptions(kBFloat16).device(cu)).cpu();
  for (double v : test::values(h)) CHECK(std::isnan(v));
  const Tensor i = empty({3}, TensorOptions(kInt64).device(cu)).cpu();
  for (double v : test::values(i)) CHECK(v == -1);
  CHECK(test::values(zeros({4}, TensorOptions().device(cu)).cpu()) ==
        std::vector<double>(4, 0.0));  // a written tensor is its value
}
