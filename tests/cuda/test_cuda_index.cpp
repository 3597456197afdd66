// Index ops on CUDA tensors against the CPU's, with the same seeded inputs: gather, scatter
// (tensor and scalar forms, in place), scatter_add, index_select, index_add (with alpha),
// embedding and nn::Embedding, advanced indexing, index_put_, masked_select and nonzero. The CUDA
// kernels apply duplicate indices in the CPU's order, so results are compared bitwise (alpha
// other than 1 or a power of two: to a rounding, since the CPU build may or may not fuse the
// multiply-add) and gradients exactly. Both scatter strategies are exercised: the row walk (short
// rows, or many rows) and the sorted runs (long rows, including one run holding everything).
// Every dtype; odd sizes; strided, transposed and expanded operands; empty tensors and size-1
// dims; out-of-range indices raise the CPU's IndexError with the same message. Without a GPU each
// case prints "skipped".
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "ember/cuda/cuda.hpp"
#include "ember/ember.hpp"
#include "cuda/cuda_test_util.hpp"

using namespace ember;
using ember::test::agree;
using ember::test::gpu;

namespace {

const Device kCu(kCUDA);
const DType kDTypes[] = {kFloat32, kFloat64, kFloat16, kBFloat16, kInt64,
                         kInt32,   kInt8,    kUInt8,   kBool};
const DType kFloats[] = {kFloat32, kFloat64, kFloat16, kBFloat16};

/// Seeded values of dtype dt, never all zero: uniform in [-10, 10) (magnitudes for uint8, > 0
/// for bool).
Tensor seeded(IntArrayRef sizes, DType dt, uint64_t seed) {
  Generator g(seed);
  Tensor base = rand(sizes, g) * 20.0 - 10.0;
  if (dt == kBool) return base > 0.0;
  if (dt == kUInt8) base = base.abs();
  return base.to(dt);
}

/// Seeded int64 indices in [0, high).
Tensor indices(IntArrayRef sizes, int64_t high, uint64_t seed) {
  Generator g(seed);
  return randint(0, high, sizes, g, TensorOptions(kInt64));
}

/// on_gpu is a CUDA tensor holding bitwise the CPU's result.
bool same(const Tensor& on_gpu, const Tensor& on_cpu) {
  return on_gpu.is_cuda() && test::bitwise_equal(on_gpu.cpu(), on_cpu);
}

/// Gradients: a CUDA gradient equal to the CPU's (both undefined counts as equal).
bool same_grad(const Tensor& on_gpu, const Tensor& on_cpu) {
  if (!on_gpu.defined() || !on_cpu.defined()) return on_gpu.defined() == on_cpu.defined();
  return on_gpu.is_cuda() && agree(on_gpu.cpu(), on_cpu, 0.0);
}

/// The layouts each operand is tried in, applied alike to the CPU tensor and its CUDA copy (the
/// views are made on the device, so the kernels see the strides).
using Layout = std::function<Tensor(const Tensor&)>;
const std::vector<std::pair<std::string, Layout>>& layouts() {
  static const std::vector<std::pair<std::string, Layout>> all = {
      {"contiguous", [](const Tensor& t) { return t; }},
      {"strided", [](const Tensor& t) { return test::non_contiguous(t); }},
      {"transposed",
       [](const Tensor& t) {
         if (t.dim() < 2) return t;
         const int64_t last = t.dim() - 1;
         return t.transpose(0, last).contiguous().transpose(0, last);
       }},
  };
  return all;
}

/// The message of the IndexError f(device) throws; FAIL if it throws nothing or another type.
std::string index_error(const std::function<void(Device)>& f, Device device) {
  try {
    f(device);
  } catch (const IndexError& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("expected IndexError, got: " << e.what());
  }
  FAIL("expected IndexError on " << device);
  return "";
}

}  // namespace

// ---- gather / index_select ----

TEST_CASE("cuda gather: every dtype and dim, strided and expanded operands, duplicates") {
  if (!gpu()) return;
  uint64_t seed = 100;
  for (DType dt : kDTypes) {
    const Tensor x = seeded({7, 33, 5}, dt, ++seed);
    for (int64_t d = 0; d < 3; ++d) {
      std::vector<int64_t> isz = {6, 31, 4};
      isz[static_cast<size_t>(d)] = 45;  // longer than x along d: many duplicates
      const Tensor idx = indices(isz, x.size(d), ++seed);
      for (const auto& [xn, xl] : layouts())
        for (const auto& [in, il] : layouts()) {
          INFO(dt << " dim " << d << " x " << xn << " index " << in);
          CHECK(same(gather(xl(x.to(kCu)), d, il(idx.to(kCu))), gather(xl(x), d, il(idx))));
        }
      // An expanded index (stride 0 outside dim).
      std::vector<int64_t> one = isz;
      one[static_cast<size_t>((d + 1) % 3)] = 1;
      const Tensor e = indices(one, x.size(d), ++seed);
      INFO(dt << " dim " << d << " expanded index");
      CHECK(same(gather(x.to(kCu), d, e.to(kCu).expand(isz)), gather(x, d, e.expand(isz))));
    }
  }
  // Size-1 dims, a 0-d input and index, empty indices.
  const Tensor x = seeded({1, 9, 1}, kFloat32, 7);
  const Tensor i = indices({1, 4, 1}, 9, 8);
  CHECK(same(gather(x.to(kCu), 1, i.to(kCu)), gather(x, 1, i)));
  const Tensor s = scalar_tensor(2.5), z = scalar_tensor(0, kInt64);
  CHECK(same(gather(s.to(kCu), 0, z.to(kCu)), gather(s, 0, z)));
  const Tensor empty_index = zeros({0, 9, 1}, kInt64);
  CHECK(same(gather(x.to(kCu), 0, empty_index.to(kCu)), gather(x, 0, empty_index)));
}

TEST_CASE("cuda index_select and embedding: every dtype and dim, int32 and 0-d indices") {
  if (!gpu()) return;
  uint64_t seed = 200;
  for (DType dt : kDTypes) {
    const Tensor x = seeded({5, 37, 3}, dt, ++seed);
    for (int64_t d = 0; d < 3; ++d) {
      const Tensor idx = indices({29}, x.size(d), ++seed);  // duplicates
      for (const auto& [xn, xl] : layouts()) {
        INFO(dt << " dim " << d << " x " << xn);
        CHECK(same(index_select(xl(x.to(kCu)), d, idx.to(kCu)), index_select(xl(x), d, idx)));
        CHECK(same(index_select(xl(x.to(kCu)), d, test::non_contiguous(idx.to(kCu))),
                   index_select(xl(x), d, idx)));
      }
      const Tensor i32 = idx.to(kInt32), i0 = scalar_tensor(x.size(d) - 1, kInt64);
      CHECK(same(index_select(x.to(kCu), d, i32.to(kCu)), index_select(x, d, i32)));
      CHECK(same(index_select(x.to(kCu), d, i0.to(kCu)), index_select(x, d, i0)));
      const Tensor none = zeros({0}, kInt64);
      CHECK(same(index_select(x.to(kCu), d, none.to(kCu)), index_select(x, d, none)));
    }
    const Tensor w = seeded({11, 7}, dt, ++seed);
    const Tensor ids = indices({3, 1, 5}, 11, ++seed);
    for (const auto& [wn, wl] : layouts()) {
      INFO(dt << " embedding weight " << wn);
      CHECK(same(embedding(wl(w.to(kCu)), ids.to(kCu)), embedding(wl(w), ids)));
      CHECK(same(embedding(wl(w.to(kCu)), ids.to(kInt32).to(kCu), 4), embedding(wl(w), ids, 4)));
    }
  }
}

// ---- scatter / scatter_add ----

TEST_CASE("cuda scatter and scatter_add, short rows: every dtype and dim, all layouts") {
  if (!gpu()) return;
  uint64_t seed = 300;
  for (DType dt : kDTypes) {
    const Tensor x = seeded({7, 33, 5}, dt, ++seed);
    for (int64_t d = 0; d < 3; ++d) {
      std::vector<int64_t> isz = {6, 31, 4}, ssz = {7, 33, 5};
      isz[static_cast<size_t>(d)] = 20;  // 20 positions into x.size(d) targets: duplicates
      ssz[static_cast<size_t>(d)] = 21;  // src larger than index: the extra elements unused
      const Tensor idx = indices(isz, x.size(d), ++seed);
      const Tensor src = seeded(ssz, dt, ++seed);
      for (const auto& [xn, xl] : layouts())
        for (const auto& [in, il] : layouts()) {
          INFO(dt << " dim " << d << " x/src " << xn << " index " << in);
          const Tensor xc = xl(x.to(kCu)), ic = il(idx.to(kCu)), sc = xl(src.to(kCu));
          const Tensor xh = xl(x), ih = il(idx), sh = xl(src);
          CHECK(same(scatter(xc, d, ic, sc), scatter(xh, d, ih, sh)));
          CHECK(same(scatter_add(xc, d, ic, sc), scatter_add(xh, d, ih, sh)));
          CHECK(same(scatter(xc, d, ic, Scalar(3)), scatter(xh, d, ih, Scalar(3))));
        }
    }
  }
}

TEST_CASE("cuda scatter and scatter_add, long rows and many rows: duplicates in the CPU's order") {
  if (!gpu()) return;
  uint64_t seed = 400;
  struct Case {
    std::string name;
    std::vector<int64_t> x, index, src;
    int64_t dim, high;
  };
  const std::vector<Case> cases = {
      // One row of 5001 positions (sorted runs), 50 or 3 targets.
      {"1-D long", {50}, {5001}, {5003}, 0, 50},
      {"1-D few targets", {50}, {5001}, {5001}, 0, 3},
      // A handful of long rows along either dim (sorted runs), odd sizes.
      {"rows along dim 1", {3, 211}, {3, 777}, {4, 779}, 1, 211},
      {"rows along dim 0", {211, 3}, {777, 3}, {777, 5}, 0, 97},
      {"3-D middle dim", {2, 61, 3}, {2, 333, 3}, {2, 333, 3}, 1, 61},
      // 70000 rows of 37 (> the short-row limit): the row walk over many rows.
      {"many rows", {70001, 3}, {70001, 37}, {70001, 37}, 1, 3},
  };
  for (const Case& c : cases)
    for (DType dt : {kFloat32, kFloat16, kBFloat16, kFloat64, kInt32, kUInt8, kBool}) {
      if (c.name == "many rows" && dt != kFloat32 && dt != kFloat16) continue;
      const Tensor x = seeded(c.x, dt, ++seed);
      const Tensor idx = indices(c.index, c.high, ++seed);
      const Tensor src = seeded(c.src, dt, ++seed);
      for (const auto& [ln, l] : layouts()) {
        INFO(c.name << " " << dt << " " << ln);
        const Tensor xc = l(x.to(kCu)), ic = l(idx.to(kCu)), sc = l(src.to(kCu));
        CHECK(same(scatter(xc, c.dim, ic, sc), scatter(l(x), c.dim, l(idx), l(src))));
        CHECK(same(scatter_add(xc, c.dim, ic, sc), scatter_add(l(x), c.dim, l(idx), l(src))));
      }
    }
  // Everything into one element: a single run of 4000 float16 additions, in order.
  const Tensor x = seeded({9}, kFloat16, 1), src = seeded({4000}, kFloat16, 2);
  const Tensor idx = full({4000}, 4, TensorOptions(kInt64));
  CHECK(same(scatter_add(x.to(kCu), 0, idx.to(kCu), src.to(kCu)), scatter_add(x, 0, idx, src)));
  CHECK(same(scatter(x.to(kCu), 0, idx.to(kCu), src.to(kCu)), scatter(x, 0, idx, src)));
  // The same result twice (no timing dependence).
  const Tensor a = seeded({300}, kFloat32, 3), s = seeded({20000}, kFloat32, 4);
  const Tensor i = indices({20000}, 300, 5).to(kCu);
  CHECK(test::bitwise_equal(scatter_add(a.to(kCu), 0, i, s.to(kCu)).cpu(),
                            scatter_add(a.to(kCu), 0, i, s.to(kCu)).cpu()));
}

TEST_CASE("cuda scatter_ and scatter_add_ in place into strided destinations, empty indices") {
  if (!gpu()) return;
  for (DType dt : {kFloat32, kFloat16, kInt64}) {
    const Tensor x = seeded({9, 40}, dt, 11), src = seeded({9, 40}, dt, 12);
    for (const auto& [n, l] : {std::make_pair(std::string("short"), int64_t{7}),
                               std::make_pair(std::string("long"), int64_t{40})}) {
      const Tensor idx = indices({9, l}, 40, 13), idx0 = indices({5, l}, 9, 14);
      for (const auto& [ln, lay] : layouts()) {
        INFO(dt << " " << n << " rows, destination " << ln);
        Tensor hc = lay(x.clone()), gc = lay(x.to(kCu));
        hc.scatter_(1, idx, src);
        gc.scatter_(1, idx.to(kCu), src.to(kCu));
        CHECK(same(gc, hc));
        hc.scatter_add_(0, idx0, src);
        gc.scatter_add_(0, idx0.to(kCu), src.to(kCu));
        CHECK(same(gc, hc));
      }
    }
    const Tensor none = zeros({0, 40}, kInt64);
    CHECK(same(scatter_add(x.to(kCu), 0, none.to(kCu), src.to(kCu)), scatter_add(x, 0, none, src)));
    CHECK(same(scatter(x.to(kCu), 0, none.to(kCu), src.to(kCu)), scatter(x, 0, none, src)));
  }
}

// ---- index_add ----

TEST_CASE("cuda index_add: every dtype and dim, duplicates, alpha, both strategies") {
  if (!gpu()) return;
  uint64_t seed = 500;
  for (DType dt : kDTypes) {
    const bool floating = is_floating(dt);
    // alpha 1 and -2 are exact products: bitwise; 0.3 to a rounding (fused or not on the CPU).
    std::vector<Scalar> alphas = {Scalar(1)};
    if (dt != kBool) alphas.push_back(Scalar(-2));
    if (floating) alphas.push_back(Scalar(0.3));
    struct Case {
      std::vector<int64_t> x;
      int64_t dim, n;
    };
    // n <= 32: the walk; 3001: sorted runs (one key per index entry, shared by every row).
    for (const Case& c : {Case{{7, 33, 5}, 0, 19}, Case{{7, 33, 5}, 1, 29}, Case{{7, 33, 5}, 2, 31},
                          Case{{50, 7}, 0, 3001}, Case{{5, 40}, 1, 3001},
                          Case{{3, 17, 4}, 1, 3001}}) {
      std::vector<int64_t> ssz = c.x;
      ssz[static_cast<size_t>(c.dim)] = c.n;
      const Tensor x = seeded(c.x, dt, ++seed), src = seeded(ssz, dt, ++seed);
      const Tensor idx = indices({c.n}, c.x[static_cast<size_t>(c.dim)], ++seed);
      for (const Scalar& alpha : alphas)
        for (const auto& [ln, l] : layouts()) {
          INFO(dt << " x " << IntArrayRef(c.x) << " dim " << c.dim << " n " << c.n << " alpha "
                  << alpha.to_double() << " " << ln);
          const Tensor got = index_add(l(x.to(kCu)), c.dim, test::non_contiguous(idx.to(kCu)),
                                       l(src.to(kCu)), alpha);
          const Tensor want = index_add(l(x), c.dim, idx, l(src), alpha);
          if (alpha.is_floating_point())  // a rounding per accumulated step at most
            CHECK(agree(got.cpu(), want, 50 * test::tolerance(dt)));
          else
            CHECK(same(got, want));
        }
    }
  }
  // Many rows (70000 columns) with 40 entries: the walk; an int32 index; a 0-d index; in place
  // into a transposed destination; an empty index.
  const Tensor x = seeded({9, 70000}, kFloat32, 1), src = seeded({40, 70000}, kFloat32, 2);
  const Tensor idx = indices({40}, 9, 3);
  CHECK(same(index_add(x.to(kCu), 0, idx.to(kCu), src.to(kCu)), index_add(x, 0, idx, src)));
  const Tensor y = seeded({6, 8}, kFloat16, 4), s = seeded({6, 5}, kFloat16, 5);
  const Tensor i32 = indices({5}, 8, 6).to(kInt32);
  CHECK(same(index_add(y.to(kCu), 1, i32.to(kCu), s.to(kCu)), index_add(y, 1, i32, s)));
  const Tensor i0 = scalar_tensor(3, kInt64), s0 = seeded({6, 1}, kFloat16, 7);
  CHECK(same(index_add(y.to(kCu), 1, i0.to(kCu), s0.to(kCu)), index_add(y, 1, i0, s0)));
  Tensor hc = y.t().contiguous().t(), gc = y.to(kCu).t().contiguous().t();
  hc.index_add_(1, i32, s, 3);
  gc.index_add_(1, i32.to(kCu), s.to(kCu), 3);
  CHECK(same(gc, hc));
  const Tensor none = zeros({0}, kInt64), s_none = zeros({6, 0}, kFloat16);
  CHECK(same(index_add(y.to(kCu), 1, none.to(kCu), s_none.to(kCu)), index_add(y, 1, none, s_none)));
}

// ---- gradients ----

TEST_CASE("cuda index ops: gradients equal the CPU's (gather, scatter, index_select, ...)") {
  if (!gpu()) return;
  uint64_t seed = 600;
  // f(device, leaves) -> output; the loss is sum(out * w) with a seeded w of out's shape.
  struct Op {
    std::string name;
    std::function<Tensor(const std::vector<Tensor>&, const std::vector<Tensor>&)> f;
    std::vector<std::vector<int64_t>> leaves;  // floating inputs that get gradients
  };
  for (DType dt : kFloats) {
    // Index tensors, made once per dtype: position 0 along dim for gather/scatter, 1-D for
    // index_select/index_add/embedding. Long enough for the sorted runs in the 1-D cases.
    const Tensor g_idx = indices({6, 50, 4}, 33, ++seed);       // into (7, 33, 5) along dim 1
    const Tensor s_idx = indices({6, 20, 4}, 33, ++seed);       // scatter into dim 1
    const Tensor long_idx = indices({2000}, 37, ++seed);        // 1-D, sorted runs
    const Tensor sel_idx = indices({23}, 37, ++seed);
    const Tensor emb_idx = indices({4, 129}, 12, ++seed);
    const std::vector<Op> ops = {
        {"gather", [](auto& t, auto& i) { return gather(t[0], 1, i[0]); }, {{7, 33, 5}}},
        {"gather transposed",
         [](auto& t, auto& i) { return gather(t[0].transpose(0, 2), 1, i[0].transpose(0, 2)); },
         {{7, 33, 5}}},
        {"gather 1-D long", [](auto& t, auto& i) { return gather(t[0], 0, i[2]); }, {{37}}},
        {"scatter", [](auto& t, auto& i) { return scatter(t[0], 1, i[1], t[1]); },
         {{7, 33, 5}, {6, 21, 5}}},
        {"scatter scalar", [](auto& t, auto& i) { return scatter(t[0], 1, i[1], 0.5); },
         {{7, 33, 5}}},
        {"scatter_add", [](auto& t, auto& i) { return scatter_add(t[0], 1, i[1], t[1]); },
         {{7, 33, 5}, {6, 20, 4}}},
        {"scatter_add 1-D long", [](auto& t, auto& i) { return scatter_add(t[0], 0, i[2], t[1]); },
         {{37}, {2000}}},
        {"index_select", [](auto& t, auto& i) { return index_select(t[0], 0, i[3]); },
         {{37, 9}}},
        {"index_select long", [](auto& t, auto& i) { return index_select(t[0], 1, i[2]); },
         {{3, 37}}},
        {"index_add", [](auto& t, auto& i) { return index_add(t[0], 1, i[2], t[1], 2); },
         {{3, 37}, {3, 2000}}},
        {"embedding", [](auto& t, auto& i) { return embedding(t[0], i[4]); }, {{12, 33}}},
        {"embedding padding", [](auto& t, auto& i) { return embedding(t[0], i[4], 5); },
         {{12, 33}}},
    };
    const std::vector<Tensor> idx_cpu = {g_idx, s_idx, long_idx, sel_idx, emb_idx};
    std::vector<Tensor> idx_gpu;
    for (const Tensor& t : idx_cpu) idx_gpu.push_back(t.to(kCu));
    for (const Op& op : ops) {
      INFO(op.name << " " << dt);
      std::vector<Tensor> lc, lg;
      for (const auto& sizes : op.leaves) {
        const Tensor v = seeded(sizes, dt, ++seed);
        lc.push_back(v.clone().requires_grad_(true));
        lg.push_back(v.to(kCu).requires_grad_(true));
      }
      const Tensor oc = op.f(lc, idx_cpu), og = op.f(lg, idx_gpu);
      REQUIRE(same(og.detach(), oc.detach()));
      const Tensor w = seeded(oc.sizes().vec(), dt, ++seed);
      (oc * w).sum().backward();
      (og * w.to(kCu)).sum().backward();
      for (size_t k = 0; k < lc.size(); ++k) {
        INFO("input " << k);
        CHECK(same_grad(lg[k].grad(), lc[k].grad()));
      }
    }
  }
}

TEST_CASE("cuda nn::Embedding: forward and backward with padding_idx, repeated tokens") {
  if (!gpu()) return;
  for (DType dt : {kFloat32, kFloat64, kBFloat16}) {
    const Tensor w = seeded({50, 24}, dt, 21);
    auto cpu_emb = nn::EmbeddingImpl::from_pretrained(w, /*freeze=*/false, /*padding_idx=*/3);
    auto gpu_emb = nn::EmbeddingImpl::from_pretrained(w, false, 3);
    gpu_emb->to(kCu);
    REQUIRE(gpu_emb->weight.is_cuda());
    const Tensor tokens = indices({8, 301}, 50, 22);  // 2408 lookups of 50 rows: long runs
    const Tensor yc = cpu_emb->forward(tokens), yg = gpu_emb->forward(tokens.to(kCu));
    CHECK(same(yg.detach(), yc.detach()));
    const Tensor g = seeded(yc.sizes().vec(), dt, 23);
    (yc * g).sum().backward();
    (yg * g.to(kCu)).sum().backward();
    INFO(dt);
    CHECK(same_grad(gpu_emb->weight.grad(), cpu_emb->weight.grad()));
  }
}

// ---- advanced indexing, index_put_, masked_select, nonzero ----

TEST_CASE("cuda advanced indexing, index_put_ and masked_select equal the CPU's") {
  if (!gpu()) return;
  using indexing::Slice;
  uint64_t seed = 700;
  for (DType dt : kDTypes) {
    INFO(dt);
    const Tensor x = seeded({6, 13, 5}, dt, ++seed);
    const Tensor xc = x.to(kCu);
    const Tensor i = indices({4, 3}, 6, ++seed), j = indices({3}, 13, ++seed);
    const Tensor mask = seeded({6, 13}, kFloat32, ++seed) > 2.0;
    CHECK(same(xc.index({i.to(kCu)}), x.index({i})));
    CHECK(same(xc.index({Slice(), j.to(kCu)}), x.index({Slice(), j})));
    CHECK(same(xc.index({i.to(kCu), j.to(kCu)}), x.index({i, j})));
    CHECK(same(xc.index({mask.to(kCu)}), x.index({mask})));
    CHECK(same(masked_select(xc, mask.to(kCu).unsqueeze(2)), masked_select(x, mask.unsqueeze(2))));
    CHECK(same(masked_select(xc.transpose(0, 2), mask.to(kCu).t()),
               masked_select(x.transpose(0, 2), mask.t())));
    // index_put_: duplicate positions keep the last value, as the CPU's scatter. The value
    // (3, 13, 5) broadcasts over i's (4, 3), so repeated rows of i get different values.
    const Tensor v1 = seeded({3, 13, 5}, dt, ++seed), v2 = seeded({4, 3, 5}, dt, ++seed);
    Tensor hc = x.clone(), gc = xc.clone();
    hc.index_put_({i}, v1);
    gc.index_put_({i.to(kCu)}, v1.to(kCu));
    CHECK(same(gc, hc));
    hc.index_put_({i, j}, v2);
    gc.index_put_({i.to(kCu), j.to(kCu)}, v2.to(kCu));
    CHECK(same(gc, hc));
    hc.index_put_({mask}, Scalar(1));
    gc.index_put_({mask.to(kCu)}, Scalar(1));
    CHECK(same(gc, hc));
  }
}

TEST_CASE("cuda nonzero: every dtype, many tiles, NaN and -0.0, size-1 dims, empty") {
  if (!gpu()) return;
  uint64_t seed = 800;
  for (DType dt : kDTypes) {
    // Around 40% zeros (sparse and dense stretches) over 100003 elements: hundreds of tiles.
    for (const std::vector<int64_t>& sizes :
         {std::vector<int64_t>{7, 33, 5}, std::vector<int64_t>{100003},
          std::vector<int64_t>{3, 1, 4001, 1}, std::vector<int64_t>{1}}) {
      Tensor x = seeded(sizes, dt, ++seed);
      x = where(seeded(sizes, kFloat32, ++seed) > 2.0, x, zeros({}, TensorOptions(dt)));
      for (const auto& [ln, l] : layouts()) {
        INFO(dt << " " << IntArrayRef(sizes) << " " << ln);
        CHECK(same(nonzero(l(x.to(kCu))), nonzero(l(x))));
      }
    }
    const Tensor zero = zeros({5, 7}, TensorOptions(dt));
    CHECK(same(nonzero(zero.to(kCu)), nonzero(zero)));
    const Tensor none = zeros({0, 3}, TensorOptions(dt));
    CHECK(same(nonzero(none.to(kCu)), nonzero(none)));
    const Tensor s = ones({}, TensorOptions(dt));
    CHECK(same(nonzero(s.to(kCu)), nonzero(s)));
  }
  // NaN counts, -0.0 does not; a dense stretch longer than a tile; 18 dims, 16 of size 1.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (DType dt : kFloats) {
    const Tensor f = tensor(std::vector<double>{0.0, -0.0, nan, 1.0, -0.0, nan}).to(dt);
    CHECK(same(nonzero(f.to(kCu)), nonzero(f)));
  }
  const Tensor dense = ones({3, 700});
  CHECK(same(nonzero(dense.to(kCu)), nonzero(dense)));
  const Tensor many = seeded({2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3}, kInt32, 9);
  CHECK(same(nonzero(many.to(kCu)), nonzero(many)));
}

// ---- errors ----

TEST_CASE("cuda index ops: out-of-range indices raise the CPU's IndexError, first bad first") {
  if (!gpu()) return;
  const Tensor x = seeded({4, 6}, kFloat32, 31);
  // Two bad values: the message names the first in row-major order, on the view for the
  // transposed index.
  const Tensor two_bad = tensor({{0, 7, 1}, {-1, 9, 2}});
  // 300001 entries, bad at 123457 (99), 200000 (-4) and 250000 (77): 99 is named.
  std::vector<int64_t> big(300001, 0);
  big[123457] = 99;
  big[200000] = -4;
  big[250000] = 77;
  const Tensor big_index = tensor(big);
  const std::vector<std::pair<std::string, std::function<void(Device)>>> cases = {
      {"gather", [&](Device d) { gather(x.to(d), 1, two_bad.to(d)); }},
      {"gather transposed", [&](Device d) { gather(x.to(d), 0, two_bad.to(d).t()); }},
      {"gather strided",
       [&](Device d) { gather(x.to(d), 1, test::non_contiguous(two_bad.to(d))); }},
      {"scatter", [&](Device d) { scatter(x.to(d), 1, two_bad.to(d), ones({2, 3}, d)); }},
      {"scatter scalar", [&](Device d) { scatter(x.to(d), 0, two_bad.to(d), 1.0); }},
      {"scatter_add", [&](Device d) { scatter_add(x.to(d), 1, two_bad.to(d), ones({2, 3}, d)); }},
      {"index_select", [&](Device d) { index_select(x.to(d), 1, two_bad.to(d).reshape({-1})); }},
      {"index_select big", [&](Device d) { index_select(x.to(d), 0, big_index.to(d)); }},
      {"index_select big strided",
       [&](Device d) { index_select(x.to(d), 0, test::non_contiguous(big_index.to(d))); }},
      {"index_add",
       [&](Device d) { index_add(x.to(d), 0, tensor({0, 3, 4, -2}).to(d), ones({4, 6}, d)); }},
      {"embedding", [&](Device d) { embedding(x.to(d), big_index.to(d).reshape({-1, 1})); }},
      {"nn::Embedding",
       [&](Device d) {
         nn::Embedding e(4, 3);
         e->to(d);
         e->forward(tensor({{1, 2}, {4, 0}}).to(d));
       }},
      {"gather 0-d", [&](Device d) { gather(scalar_tensor(1.0).to(d), 0, scalar_tensor(1, kInt64).to(d)); }},
  };
  for (const auto& [name, f] : cases) {
    INFO(name);
    const std::string want = index_error(f, Device(kCPU));
    CHECK(!want.empty());
    CHECK(index_error(f, kCu) == want);
  }
  // In place: a failed check writes nothing on CUDA either.
  Tensor y = ones({2, 3}, kCu);
  CHECK_THROWS_AS(y.scatter_add_(1, tensor({{0, 9}}).to(kCu), ones({1, 2}, kCu)), IndexError);
  CHECK(same(y, ones({2, 3})));
  CHECK_THROWS_AS(y.index_add_(0, tensor({1, 2}).to(kCu), ones({2, 3}, kCu)), IndexError);
  CHECK(same(y, ones({2, 3})));
}
