// The CUDA runtime (streams, events, the caching allocator) and copies between the host and the
// device. Without a GPU the GPU cases report "skipped" (a warning in the output) and only the
// no-GPU behaviour is checked.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cuda/cuda_test_util.hpp"
#include "cuda/variant.hpp"
#include "ember/cuda/cuda.hpp"
#include "ember/ember.hpp"

using namespace ember;
using ember::test::agree;
using ember::test::gpu;

namespace {

const DType kAll[] = {kBool,    kUInt8,    kInt8,    kInt32,  kInt64,
                      kFloat16, kBFloat16, kFloat32, kFloat64};

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
  EMBER_CHECK_THROWS(ones({3}).pin_memory(), DeviceError, "pin_memory");
  CHECK_FALSE(ones({3}).is_pinned());
}

TEST_CASE("kernel variant switches: the environment's value at first use, set() after, errors") {
  // (No GPU needed: the switch is host code. Its own variable names, so no kernel is affected.)
  cuda::detail::VariantSwitch unset{"EMBER_TEST_VARIANT_UNSET", "set_test_variant", -1, 3};
  ::unsetenv("EMBER_TEST_VARIANT_UNSET");
  CHECK(unset.get() == -1);  // automatic
  unset.set(2);
  CHECK(unset.get() == 2);
  EMBER_CHECK_THROWS(unset.set(4), ValueError, "set_test_variant");
  EMBER_CHECK_THROWS(unset.set(-2), ValueError, "set_test_variant");
  CHECK(unset.get() == 2);

  cuda::detail::VariantSwitch forced{"EMBER_TEST_VARIANT_FORCED", "set_test_variant", -1, 3};
  ::setenv("EMBER_TEST_VARIANT_FORCED", "3", 1);
  CHECK(forced.get() == 3);
  ::setenv("EMBER_TEST_VARIANT_FORCED", "1", 1);  // read once: later changes do not count
  CHECK(forced.get() == 3);
  forced.set(0);
  CHECK(forced.get() == 0);

  for (const char* bad : {"7", "x", "2x", "-5"}) {
    cuda::detail::VariantSwitch s{"EMBER_TEST_VARIANT_BAD", "set_test_variant", -1, 3};
    ::setenv("EMBER_TEST_VARIANT_BAD", bad, 1);
    EMBER_CHECK_THROWS(s.get(), ValueError, "EMBER_TEST_VARIANT_BAD");
    s.set(1);  // a set() still works, and replaces the unreadable value
    CHECK(s.get() == 1);
  }
  ::unsetenv("EMBER_TEST_VARIANT_FORCED");
  ::unsetenv("EMBER_TEST_VARIANT_BAD");
}

TEST_CASE("cuda pinned memory: pin_memory copies, non_blocking round trips are exact") {
  if (!gpu()) return;
  uint64_t seed = 300;
  for (DType dt : {kFloat32, kBFloat16, kInt64, kUInt8}) {
    INFO("dtype " << dt);
    Tensor h = random_of({37, 19}, dt, ++seed);
    CHECK_FALSE(h.is_pinned());
    Tensor p = h.pin_memory();
    CHECK(p.is_pinned());
    CHECK(p.is_cpu());
    CHECK(p.pin_memory().data_ptr() == p.data_ptr());  // already pinned: itself
    CHECK(test::bitwise_equal(p, h));
    // A strided source is pinned densely.
    Tensor pt = h.transpose(0, 1).pin_memory();
    CHECK(pt.is_contiguous());
    CHECK(test::bitwise_equal(pt, h.transpose(0, 1)));
    // Host -> device -> host, both queued; the pinned source is dropped before the copy is
    // waited for (the copy keeps it alive).
    Tensor d = p.to(Device(kCUDA), /*non_blocking=*/true);
    p = Tensor();
    Tensor back = empty({37, 19}, TensorOptions(dt)).pin_memory();
    back.copy_(d, /*non_blocking=*/true);
    cuda::current_stream().synchronize();
    CHECK(test::bitwise_equal(back, h));
    // Not pinned, or converting: synchronous whatever non_blocking says, still exact.
    CHECK(test::bitwise_equal(h.to(Device(kCUDA), true).cpu(), h));
    Tensor f = empty({37, 19}, TensorOptions(kFloat64)).pin_memory();
    f.copy_(d, /*non_blocking=*/true);
    CHECK(test::bitwise_equal(f, h.to(kFloat64)));
  }
  // Many queued copies in a row, each from its own pinned buffer dropped at once.
  Tensor acc = zeros({4096}, TensorOptions().device(Device(kCUDA)));
  for (int i = 0; i < 50; ++i) {
    Tensor src = full({4096}, static_cast<double>(i)).pin_memory();
    acc.add_(src.to(Device(kCUDA), /*non_blocking=*/true));
  }
  cuda::synchronize();
  CHECK(equal(acc.cpu(), full({4096}, 49.0 * 50.0 / 2.0)));
  EMBER_CHECK_THROWS(ones({2}, TensorOptions().device(Device(kCUDA))).pin_memory(), DeviceError,
                     "expected a CPU tensor");
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

TEST_CASE("cuda copies: small uploads through the pinned ring are exact, sources freed at once") {
  // Host-to-device copies of up to 64 KiB are staged in a ring of 16 pinned slots and queued
  // without a wait: many in a row (the ring wraps several times), each source freed (and its
  // memory reused) right after the copy, sizes on both sides of the limit, dtype conversions.
  if (!gpu()) return;
  const Device cu(kCUDA);
  std::vector<Tensor> on_device, want;
  for (int i = 0; i < 50; ++i) {
    const int64_t n = i % 5 == 4 ? 8193 : 1 + i * 37;  // 8193 float64: past 64 KiB
    Tensor h = random_of({n}, i % 2 == 0 ? kFloat64 : kInt32, static_cast<uint64_t>(500 + i));
    want.push_back(h.clone());
    on_device.push_back(h.to(cu));
    std::memset(h.data_ptr(), 0xff, h.nbytes());  // the source overwritten after the copy
  }
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("upload " << i);
    CHECK(test::bitwise_equal(on_device[i].cpu(), want[i]));
  }
  // 64 KiB exactly (8192 float64), and into a converting destination (staged, then converted).
  Tensor h = random_of({8192}, kFloat64, 600);
  CHECK(test::bitwise_equal(h.to(cu).cpu(), h));
  Tensor dst = zeros({8192}, TensorOptions(kFloat32).device(cu));
  dst.copy_(h);
  CHECK(test::bitwise_equal(dst.cpu(), h.to(kFloat32)));
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

TEST_CASE("cuda arange and linspace: computed on the device, bitwise the CPU's, every dtype") {
  if (!gpu()) return;
  const Device cu(kCUDA);
  struct Range {
    Scalar start, end, step;
  };
  // Integral and fractional steps, negative steps, a count past one grid-stride pass
  // (65535 * 8 blocks of 256 threads is 134M; 300001 crosses many blocks), int64 beyond 2^53.
  const std::vector<Range> ranges = {
      {0, 7, 1},         {5, -6, -3},       {0, 300001, 1},
      {-1.5, 2.25, 0.1}, {1e3, -1e3, -0.7}, {int64_t{1} << 60, (int64_t{1} << 60) + 1000, 7}};
  for (DType dt : kAll) {
    if (dt == kBool) continue;
    for (const Range& r : ranges) {
      INFO("dtype " << dt << " arange(" << r.start << ", " << r.end << ", " << r.step << ")");
      Tensor h = arange(r.start, r.end, r.step, TensorOptions(dt));
      Tensor d = arange(r.start, r.end, r.step, TensorOptions(dt).device(cu));
      CHECK(d.device().type() == kCUDA);
      CHECK(test::bitwise_equal(d.cpu(), h));
    }
    for (int64_t steps : {0, 1, 2, 7, 100000}) {
      INFO("dtype " << dt << " linspace steps " << steps);
      Tensor h = linspace(-3.3, 17.9, steps, TensorOptions(dt));
      Tensor d = linspace(-3.3, 17.9, steps, TensorOptions(dt).device(cu));
      CHECK(test::bitwise_equal(d.cpu(), h));
    }
  }
  // The default dtypes: int64 for integers, the default float dtype otherwise.
  CHECK(arange(5, TensorOptions().device(cu)).dtype() == kInt64);
  CHECK(arange(0.5, 3, TensorOptions().device(cu)).dtype() == get_default_dtype());
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

TEST_CASE("cuda record_stream: a block used on another stream waits for that stream's work") {
  if (!gpu()) return;
  const Device dev(kCUDA);
  const int64_t kMax = int64_t{1} << 22;
  Tensor work = ones({kMax}, TensorOptions().device(dev));
  Tensor victim = ones({4096}, TensorOptions().device(dev));  // allocated on the default stream
  cuda::synchronize();
  cuda::Stream side;
  EMBER_CHECK_THROWS(cuda::record_stream(ones({3}), side), DeviceError, "expected a CUDA tensor");
  {
    cuda::StreamGuard guard(side);
    // Queue work on `side` until its queue is seen to be long: elementwise passes growing to
    // 4M elements, for at most 0.2 s of host time (on a GPU the queue outgrows the device within
    // a few passes; under the CPU emulator every launch finishes before it returns).
    const auto start = std::chrono::steady_clock::now();
    auto elapsed_ms = [&] {
      return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
          .count();
    };
    int64_t n = int64_t{1} << 12;
    double busy_since = -1;
    while (elapsed_ms() < 200 && (busy_since < 0 || elapsed_ms() - busy_since < 20)) {
      work.narrow(0, 0, n).add_(1.0);
      if (!side.query()) {
        if (busy_since < 0) busy_since = elapsed_ms();
      } else if (n < kMax) {
        n *= 2;
      }
    }
    victim.add_(1.0);  // used on `side`, after the queued passes
    cuda::record_stream(victim, side);
    cuda::record_stream(victim, side);  // twice: once is remembered
  }
  const void* block = victim.data_ptr();
  const int64_t allocated = cuda::memory_stats().allocated;
  victim = Tensor();  // freed while `side` may still be working on it
  CHECK(cuda::memory_stats().allocated < allocated);
  Tensor next = empty({4096}, TensorOptions().device(dev));  // the default stream, same size
  if (!side.query()) {
    INFO("side stream still busy: the block must not be handed out");
    CHECK(next.data_ptr() != block);
  } else {
    WARN("the side stream finished before the check: only the reuse after it is tested");
  }
  side.synchronize();
  if (cuda::caching_enabled()) {
    Tensor again = empty({4096}, TensorOptions().device(dev));
    CHECK((again.data_ptr() == block || next.data_ptr() == block));  // reused once it finished
  }
  next = Tensor();
  cuda::synchronize();
  cuda::empty_cache();  // pending blocks included
  CHECK(cuda::memory_stats().reserved == cuda::memory_stats().allocated);
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

TEST_CASE("cuda copies: rows contiguous on both sides move as 16-byte chunks, every dtype") {
  if (!cuda::is_available()) return;
  cuda::set_poison_allocations(true);
  const Device cu(kCUDA);
  Generator g(32);
  // An attention gradient (B, H, T, D) into its third of a (B, T, 3, H, D) qkv gradient (rows of
  // D contiguous on both sides, the rest anywhere), a permute whose inner dim stays, a narrowed
  // destination; then rows that are not whole 16-byte chunks (D = 3 for 4-byte types), a source
  // one element off a 16-byte boundary and a dtype conversion, which take the other paths. Every
  // result bitwise the CPU's copy, and nothing outside the destination written.
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16, kInt8, kInt64, kBool}) {
    for (int64_t D : {3, 8, 16, 64}) {
      INFO(dt << " D " << D);
      const Tensor grad = (rand({2, 3, 5, D}, g) * 100.0 - 50.0).to(dt);  // (B, H, T, D)
      Tensor qkv = zeros({2, 5, 3, 3, D}, TensorOptions(dt).device(cu));  // (B, T, 3, H, D)
      qkv.select(2, 1).copy_(grad.to(cu).transpose(1, 2));
      Tensor want = zeros({2, 5, 3, 3, D}, TensorOptions(dt));
      want.select(2, 1).copy_(grad.transpose(1, 2));
      CHECK(test::bitwise_equal(qkv.cpu(), want));
      const Tensor x = (rand({4, 6, 2 * D}, g) * 100.0 - 50.0).to(dt);
      CHECK(test::bitwise_equal(x.to(cu).permute({1, 0, 2}).contiguous().cpu(),
                                x.permute({1, 0, 2}).contiguous()));
      Tensor wide = zeros({6, 4, 2 * D + 8}, TensorOptions(dt).device(cu));
      wide.narrow(2, 8, 2 * D).copy_(x.to(cu).permute({1, 0, 2}));
      Tensor wide_want = zeros({6, 4, 2 * D + 8}, TensorOptions(dt));
      wide_want.narrow(2, 8, 2 * D).copy_(x.permute({1, 0, 2}));
      CHECK(test::bitwise_equal(wide.cpu(), wide_want));
      const Tensor late = zeros({x.numel() + 1}, TensorOptions(dt).device(cu))
                              .narrow(0, 1, x.numel())
                              .view(x.sizes())
                              .copy_(x.to(cu));
      CHECK(test::bitwise_equal(late.permute({1, 0, 2}).contiguous().cpu(),
                                x.permute({1, 0, 2}).contiguous()));
      if (dt != kBool)
        CHECK(test::bitwise_equal(x.to(cu).permute({1, 0, 2}).to(kFloat64).cpu(),
                                  x.permute({1, 0, 2}).to(kFloat64)));
    }
  }
}

TEST_CASE("cuda copies: transposed views (the tiled transpose) are exact for every dtype") {
  if (!cuda::is_available()) return;
  cuda::set_poison_allocations(true);
  const Device cu(kCUDA);
  Generator g(31);
  for (DType dt : {kFloat32, kFloat64, kFloat16, kBFloat16, kInt8, kInt64, kBool}) {
    for (auto [R, C] : std::vector<std::pair<int64_t, int64_t>>{
             {1, 7}, {7, 1}, {2, 3}, {32, 32}, {33, 65}, {64, 31}, {100, 257}}) {
      INFO(dt << " (" << R << ", " << C << ")");
      const Tensor x = (rand({C, R}, g) * 100.0 - 50.0).to(dt);  // read as x.t(): (R, C)
      CHECK(test::bitwise_equal(x.to(cu).t().contiguous().cpu(), x.t().contiguous()));
      // A strided source: a narrowed (C, R) window of a wider tensor, transposed.
      const Tensor w = (rand({C, R + 5}, g) * 100.0 - 50.0).to(dt).narrow(1, 2, R);
      CHECK(test::bitwise_equal(w.to(cu).t().contiguous().cpu(), w.t().contiguous()));
      Tensor wd = (rand({C, R + 5}, g) * 100.0 - 50.0).to(dt);
      const Tensor wv = wd.to(cu).narrow(1, 3, R).t();  // an odd element offset
      CHECK(test::bitwise_equal(wv.contiguous().cpu(), wd.narrow(1, 3, R).t().contiguous()));
    }
  }
  // Batched: (B, R, C) from (B, C, R) and from a (C, B, R) permute; a 4-d permute; with a dtype
  // conversion (the general path) and into a strided destination (the general path).
  const Tensor b = rand({3, 40, 37}, g);
  CHECK(test::bitwise_equal(b.to(cu).transpose(1, 2).contiguous().cpu(),
                            b.transpose(1, 2).contiguous()));
  CHECK(test::bitwise_equal(b.to(cu).permute({1, 2, 0}).contiguous().cpu(),
                            b.permute({1, 2, 0}).contiguous()));
  const Tensor q = rand({2, 3, 17, 9}, g);
  CHECK(test::bitwise_equal(q.to(cu).permute({0, 2, 3, 1}).contiguous().cpu(),
                            q.permute({0, 2, 3, 1}).contiguous()));
  CHECK(test::bitwise_equal(q.to(cu).transpose(2, 3).contiguous().cpu(),
                            q.transpose(2, 3).contiguous()));
  CHECK(test::bitwise_equal(b.to(cu).transpose(1, 2).to(kFloat64).cpu(),
                            b.transpose(1, 2).to(kFloat64)));
  Tensor dst = zeros({37, 40}, TensorOptions().device(cu));
  dst.t().copy_(b.select(0, 1).to(cu));
  CHECK(test::bitwise_equal(dst.t().contiguous().cpu(), b.select(0, 1)));
}
