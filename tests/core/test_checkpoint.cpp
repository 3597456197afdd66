// Gradient checkpointing and the CPU memory statistics it is measured with.
#include "gradcheck.hpp"

using namespace ember;

namespace {
// Ten layers of h = tanh(1.01 h): each layer saves tensors for backward.
Tensor block(const std::vector<Tensor>& in) {
  Tensor h = in[0];
  for (int i = 0; i < 10; ++i) h = (h * 1.01).tanh();
  return h;
}
Tensor run(const Tensor& x, bool use_checkpoint) {
  Tensor h = x;
  for (int s = 0; s < 4; ++s) h = use_checkpoint ? checkpoint(block, {h}) : block({h});
  return h.sum();
}
}  // namespace

TEST_CASE("memory stats: allocations are counted and freed") {
  const int64_t before = cpu_memory_stats().allocated;
  {
    Tensor t = empty({1024}, kFloat64);
    CHECK(cpu_memory_stats().allocated - before == 8192);
    reset_peak_memory_stats();
    Tensor u = empty({2048}, kFloat64);
    CHECK(cpu_memory_stats().peak >= before + 8192 + 16384);
  }
  CHECK(cpu_memory_stats().allocated == before);
}

TEST_CASE("memory stats: large freed blocks are cached, reused and released") {
  empty_cpu_cache();
  CHECK(cpu_memory_stats().cached == 0);
  const int64_t before = cpu_memory_stats().allocated;
  const void* first = nullptr;
  {
    Tensor t = empty({300000}, kFloat32);  // 1.2 MB: above the 256 KiB threshold
    first = t.data_ptr();
    CHECK(cpu_memory_stats().allocated - before == 1200128);  // rounded to 4 KiB
  }
  CHECK(cpu_memory_stats().allocated == before);
  CHECK(cpu_memory_stats().cached == 1200128);
  {
    Tensor again = empty({300000}, kFloat32);  // same size: the cached block comes back
    CHECK(again.data_ptr() == first);
    CHECK(cpu_memory_stats().cached == 0);
    again.fill_(2.5f);
    CHECK(again.sum().item<double>() == 750000.0);
  }
  Tensor small = empty({1000}, kFloat32);  // small blocks are never cached
  small = Tensor();
  CHECK(cpu_memory_stats().cached == 1200128);
  empty_cpu_cache();
  CHECK(cpu_memory_stats().cached == 0);
}

TEST_CASE("checkpoint: drops activations, lowers peak memory, gives equal gradients") {
  Tensor x0 = randn({128, 128}, kFloat64);
  Tensor x1 = x0.clone().requires_grad_();
  Tensor x2 = x0.clone().requires_grad_();

  const int64_t base1 = cpu_memory_stats().allocated;
  reset_peak_memory_stats();
  Tensor y1 = run(x1, false);
  const int64_t held_plain = cpu_memory_stats().allocated - base1;
  y1.backward();
  y1 = Tensor();
  const int64_t peak_plain = cpu_memory_stats().peak - base1;

  const int64_t base2 = cpu_memory_stats().allocated;
  reset_peak_memory_stats();
  Tensor y2 = run(x2, true);
  const int64_t held_ckpt = cpu_memory_stats().allocated - base2;
  y2.backward();
  y2 = Tensor();
  const int64_t peak_ckpt = cpu_memory_stats().peak - base2;

  INFO("after forward: plain " << held_plain << " B, checkpointed " << held_ckpt << " B; peak: plain "
                               << peak_plain << " B, checkpointed " << peak_ckpt << " B");
  const int64_t act = 128 * 128 * 8;
  CHECK(held_plain >= 40 * act);  // every layer's saved tensors
  CHECK(held_ckpt <= 6 * act);    // segment outputs only
  CHECK(peak_ckpt * 2 < peak_plain);
  CHECK(allclose(x1.grad(), x2.grad(), 1e-12, 1e-14));
}

TEST_CASE("checkpoint: replays the forward's random numbers in backward") {
  auto dropout_like = [](const std::vector<Tensor>& in) {
    return in[0] * bernoulli(full_like(in[0], 0.5));
  };
  Tensor x = ones({64}, kFloat64).requires_grad_();
  manual_seed(3);
  Tensor y = checkpoint(dropout_like, {x});
  Tensor mask = y.detach().clone();
  rand({5});  // move the generator on before backward
  y.sum().backward();
  CHECK(test::bitwise_equal(x.grad(), mask));  // d(x * m)/dx = m, with the same m
}

TEST_CASE("checkpoint: gradcheck, second order, and no-grad passthrough") {
  auto f = [](const std::vector<Tensor>& in) {
    return checkpoint([](const std::vector<Tensor>& v) { return (v[0] * v[1]).tanh(); }, in);
  };
  CHECK(test::gradcheck(f, {test::grad_input({3, 4}), test::grad_input({4})}));
  CHECK(test::gradgradcheck(f, {test::grad_input({3, 4}), test::grad_input({4})}));
  Tensor plain = ones({2});
  Tensor out = checkpoint([](const std::vector<Tensor>& v) { return v[0] * 2; }, {plain});
  CHECK_FALSE(out.requires_grad());
  Tensor x = ones({2}, kFloat64).requires_grad_();
  Tensor same = checkpoint([](const std::vector<Tensor>& v) { return v[0]; }, {x});
  CHECK(x.is_leaf());  // returning an input does not rewrite the input's history
  same.sum().backward();
  CHECK(test::values(x.grad()) == std::vector<double>{1, 1});
}

TEST_CASE("memory: graphs free their saved tensors, with or without backward (no cycles)") {
  Tensor w = randn({16, 8}, kFloat64).requires_grad_();
  Tensor idx = tensor({0, 3, 3, 7});
  const int64_t base = cpu_memory_stats().allocated;
  auto build = [&] {
    Tensor x = randn({4, 16}, kFloat64);
    Tensor h = matmul(x, w).tanh().exp();  // tanh and exp save their outputs
    Tensor s = h.softmax(1).log_softmax(1).index_select(1, idx);
    Tensor t = cat({s, s.flip({0})}, 0).var({1}) + h.max() + h.norm();
    return t.sum();
  };
  {
    Tensor loss = build();
    CHECK(cpu_memory_stats().allocated > base);
  }
  CHECK(cpu_memory_stats().allocated == base);  // scope exit alone frees the whole graph
  {
    Tensor loss = build();
    loss.backward();
  }
  const int64_t grad_bytes = static_cast<int64_t>((w.grad().nbytes() + 63) / 64 * 64);
  CHECK(cpu_memory_stats().allocated == base + grad_bytes);  // only w.grad() stays
  w.mutable_grad() = Tensor();
  CHECK(cpu_memory_stats().allocated == base);
}
