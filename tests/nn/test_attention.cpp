// scaled_dot_product_attention against a hand-written loop (float64: odd sizes, broadcast batch
// dims, bool / float masks, causal, custom scale, non-contiguous inputs), fully masked rows,
// dropout statistics and determinism, gradcheck / gradgradcheck, errors; MultiheadAttention
// against a per-sample, per-head composite written out here, batch_first, masks, weights,
// parameter names / init, unbatched input, gradcheck, errors.
#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <utility>
#include <vector>

#include "ember/nn.hpp"
#include "ember/nn/functional/attention.hpp"
#include "ember/nn/modules/attention.hpp"
#include "gradcheck.hpp"
#include "nn/attention_golden.hpp"

using namespace ember;
namespace F = ember::nn::functional;
using test::grad_input;
using test::values;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

Tensor rnd(std::vector<int64_t> sizes, uint64_t seed) {
  Generator g(seed);
  Tensor t = empty(sizes, kFloat64);
  uniform_(t, -1.0, 1.0, g);
  return t;
}

enum class MaskKind { None, Bool, Float, Causal };

/// The loop reference: every operand expanded to the broadcast batch, then per (b, i) a softmax
/// over j written out. Fully masked rows give zeros (the documented semantics).
Tensor loop_sdpa(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                 MaskKind kind, double scale) {
  const int64_t L = q.size(-2), S = k.size(-2), E = q.size(-1), Ev = v.size(-1);
  std::vector<int64_t> batch;
  {
    std::vector<int64_t> bq(q.sizes().begin(), q.sizes().end() - 2);
    std::vector<int64_t> bk(k.sizes().begin(), k.sizes().end() - 2);
    std::vector<int64_t> bv(v.sizes().begin(), v.sizes().end() - 2);
    batch = broadcast_shapes(broadcast_shapes(bq, bk), bv);
  }
  auto full = [&](const Tensor& t, int64_t r, int64_t c) {
    std::vector<int64_t> s = batch;
    s.push_back(r);
    s.push_back(c);
    return values(t.expand(s));
  };
  std::vector<double> Q = full(q, L, E), K = full(k, S, E), V = full(v, S, Ev);
  std::vector<double> M;
  if (kind == MaskKind::Bool || kind == MaskKind::Float) M = full(mask, L, S);
  int64_t B = 1;
  for (int64_t b : batch) B *= b;
  std::vector<int64_t> out_shape = batch;
  out_shape.push_back(L);
  out_shape.push_back(Ev);
  std::vector<double> out(static_cast<size_t>(B * L * Ev), 0.0);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t i = 0; i < L; ++i) {
      std::vector<double> s(static_cast<size_t>(S));
      double mx = -kInf;
      for (int64_t j = 0; j < S; ++j) {
        double acc = 0;
        for (int64_t e = 0; e < E; ++e) acc += Q[(b * L + i) * E + e] * K[(b * S + j) * E + e];
        acc *= scale;
        const double m = M.empty() ? 0.0 : M[static_cast<size_t>((b * L + i) * S + j)];
        if (kind == MaskKind::Bool && m == 0.0) acc = -kInf;
        if (kind == MaskKind::Float) acc += m;
        if (kind == MaskKind::Causal && j > i) acc = -kInf;
        s[static_cast<size_t>(j)] = acc;
        mx = std::max(mx, acc);
      }
      if (mx == -kInf) continue;  // fully masked: zeros
      double z = 0;
      for (double& x : s) z += (x = std::exp(x - mx));
      for (int64_t j = 0; j < S; ++j)
        for (int64_t e = 0; e < Ev; ++e)
          out[static_cast<size_t>((b * L + i) * Ev + e)] +=
              s[static_cast<size_t>(j)] / z * V[static_cast<size_t>((b * S + j) * Ev + e)];
    }
  }
  return tensor(out, kFloat64).view(out_shape);
}

bool close(const Tensor& a, const Tensor& b, double tol = 1e-12) {
  if (a.sizes() != b.sizes()) return false;
  std::vector<double> x = values(a), y = values(b);
  for (size_t i = 0; i < x.size(); ++i)
    if (!(std::abs(x[i] - y[i]) <= tol * (1 + std::abs(y[i])))) return false;
  return true;
}

}  // namespace

// ---- scaled_dot_product_attention ----

TEST_CASE("sdpa: matches the loop reference over shapes, masks, causal and scale") {
  struct Case {
    const char* name;
    std::vector<int64_t> q, k, v, mask;
    MaskKind kind;
    std::optional<double> scale;
  };
  const std::vector<Case> cases = {
      {"2-D odd sizes", {3, 7}, {5, 7}, {5, 2}, {}, MaskKind::None, {}},
      {"batched", {2, 3, 4}, {2, 5, 4}, {2, 5, 3}, {}, MaskKind::None, {}},
      {"4-D heads", {2, 3, 4, 8}, {2, 3, 6, 8}, {2, 3, 6, 5}, {}, MaskKind::None, {}},
      {"broadcast batch dims", {2, 1, 3, 5}, {1, 4, 6, 5}, {4, 6, 2}, {}, MaskKind::None, {}},
      {"custom scale", {2, 3, 4}, {2, 5, 4}, {2, 5, 3}, {}, MaskKind::None, 0.7},
      {"bool mask (L, S)", {2, 3, 4}, {2, 5, 4}, {2, 5, 3}, {3, 5}, MaskKind::Bool, {}},
      {"bool mask broadcast (2, 1, 1, S)",
       {2, 3, 3, 4},
       {2, 3, 5, 4},
       {2, 3, 5, 4},
       {2, 1, 1, 5},
       MaskKind::Bool,
       {}},
      {"float mask (L, S)", {2, 3, 4}, {2, 5, 4}, {2, 5, 3}, {3, 5}, MaskKind::Float, {}},
      {"float mask full shape", {2, 3, 4}, {2, 5, 4}, {2, 5, 3}, {2, 3, 5}, MaskKind::Float, 0.3},
      {"causal L < S", {2, 3, 4}, {2, 5, 4}, {2, 5, 3}, {}, MaskKind::Causal, {}},
      {"causal L > S", {2, 6, 4}, {2, 4, 4}, {2, 4, 3}, {}, MaskKind::Causal, {}},
      {"causal square, scale", {1, 5, 3}, {1, 5, 3}, {1, 5, 3}, {}, MaskKind::Causal, 2.0},
  };
  uint64_t seed = 100;
  for (const Case& c : cases) {
    INFO(c.name);
    Tensor q = rnd(c.q, ++seed), k = rnd(c.k, ++seed), v = rnd(c.v, ++seed);
    Tensor mask;
    if (c.kind == MaskKind::Bool) {
      // About a third masked, but never a whole row, so every row has a softmax.
      mask = rnd(c.mask, ++seed) > -0.3;
      mask.select(-1, 0).fill_(true);
    } else if (c.kind == MaskKind::Float) {
      mask = rnd(c.mask, ++seed) * 3.0;
    }
    const double scale = c.scale ? *c.scale : 1.0 / std::sqrt(static_cast<double>(c.q.back()));
    Tensor y =
        F::scaled_dot_product_attention(q, k, v, mask, 0.0, c.kind == MaskKind::Causal, c.scale);
    CHECK(close(y, loop_sdpa(q, k, v, mask, c.kind, scale)));
    CHECK(y.dtype() == kFloat64);
  }
}

TEST_CASE("sdpa: non-contiguous q, k, v from transposes give bitwise the contiguous result") {
  Tensor q = rnd({2, 5, 3, 4}, 1), k = rnd({2, 5, 6, 4}, 2), v = rnd({2, 5, 6, 3}, 3);
  // Stored as (B, L, H, D) and viewed as (B, H, L, D): what a batch_first layer hands over.
  Tensor qt = q.transpose(1, 2).contiguous().transpose(1, 2);
  Tensor kt = k.transpose(-1, -2).contiguous().transpose(-1, -2);
  Tensor vt = test::non_contiguous(v);
  REQUIRE_FALSE(qt.is_contiguous());
  REQUIRE_FALSE(kt.is_contiguous());
  REQUIRE_FALSE(vt.is_contiguous());
  Tensor y = F::scaled_dot_product_attention(q, k, v);
  Tensor yt = F::scaled_dot_product_attention(qt, kt, vt);
  CHECK(test::bitwise_equal(yt, y));
  CHECK(close(y, loop_sdpa(q, k, v, {}, MaskKind::None, 0.5)));
}

TEST_CASE("sdpa: the public function is the reference") {
  Tensor q = rnd({2, 3, 4}, 4), k = rnd({2, 5, 4}, 5), v = rnd({2, 5, 3}, 6);
  Tensor m = rnd({3, 5}, 7) > 0.0;
  m.select(-1, 0).fill_(true);
  CHECK(test::bitwise_equal(F::scaled_dot_product_attention(q, k, v, m),
                            F::scaled_dot_product_attention_reference(q, k, v, m)));
}

TEST_CASE("sdpa: a float mask of -inf equals the bool mask, float32 works") {
  Tensor q = rnd({2, 3, 4}, 8), k = rnd({2, 5, 4}, 9), v = rnd({2, 5, 3}, 10);
  Tensor keep = rnd({2, 3, 5}, 11) > 0.0;
  keep.select(-1, 2).fill_(true);
  Tensor additive = zeros({2, 3, 5}, kFloat64).masked_fill(logical_not(keep), -kInf);
  CHECK(close(F::scaled_dot_product_attention(q, k, v, keep),
              F::scaled_dot_product_attention(q, k, v, additive)));
  Tensor y32 = F::scaled_dot_product_attention(q.to(kFloat32), k.to(kFloat32), v.to(kFloat32),
                                               additive.to(kFloat32));
  CHECK(y32.dtype() == kFloat32);
  CHECK(allclose(y32.to(kFloat64), F::scaled_dot_product_attention(q, k, v, keep), 1e-5, 1e-6));
  // A float64 mask on a float32 query is converted to the query's dtype.
  CHECK(F::scaled_dot_product_attention(q.to(kFloat32), k.to(kFloat32), v.to(kFloat32), additive)
            .dtype() == kFloat32);
}

TEST_CASE("sdpa: float16, bfloat16 and float32 inputs stay close to float64") {
  Tensor q = rnd({2, 5, 8}, 30), k = rnd({2, 7, 8}, 31), v = rnd({2, 7, 4}, 32);
  Tensor y = F::scaled_dot_product_attention(q, k, v, {}, 0.0, true);
  const std::vector<std::pair<DType, double>> tolerances = {
      {kFloat32, 1e-6}, {kFloat16, 3e-3}, {kBFloat16, 2e-2}};
  for (const auto& [dt, tol] : tolerances) {
    INFO(dt);
    Tensor yh = F::scaled_dot_product_attention(q.to(dt), k.to(dt), v.to(dt), {}, 0.0, true);
    CHECK(yh.dtype() == dt);
    CHECK(values((yh.to(kFloat64) - y).abs().amax())[0] < tol);
  }
}

TEST_CASE("sdpa: a fully masked row gives zeros and a zero gradient, as PyTorch's math path") {
  Tensor q = grad_input({2, 3, 4}), k = grad_input({2, 5, 4}), v = grad_input({2, 5, 3});
  Tensor keep = ones({3, 5}, kBool);
  keep.select(0, 1).fill_(false);  // query 1 sees no key
  keep.index_put_({0, 4}, false);
  Tensor y = F::scaled_dot_product_attention(q, k, v, keep);
  CHECK(close(y, loop_sdpa(q.detach(), k.detach(), v.detach(), keep, MaskKind::Bool, 0.5)));
  CHECK(values(y.select(1, 1).abs().sum()) == std::vector<double>{0.0});
  CHECK(all(isfinite(y)).item<bool>());
  y.sum().backward();
  CHECK(all(isfinite(q.grad())).item<bool>());
  CHECK(all(isfinite(k.grad())).item<bool>());
  CHECK(values(q.grad().select(1, 1).abs().sum()) == std::vector<double>{0.0});
  // The same through a float mask of -inf.
  Tensor additive = zeros({3, 5}, kFloat64).masked_fill(logical_not(keep), -kInf);
  CHECK(close(F::scaled_dot_product_attention(q, k, v, additive), y));
}

TEST_CASE("sdpa: no keys gives zeros, no queries an empty output (as PyTorch)") {
  Tensor y = F::scaled_dot_product_attention(rnd({2, 3, 4}, 1), zeros({2, 0, 4}, kFloat64),
                                             zeros({2, 0, 5}, kFloat64));
  CHECK(y.sizes() == IntArrayRef({2, 3, 5}));
  CHECK(values(y.abs().sum())[0] == 0.0);
  Tensor e = F::scaled_dot_product_attention(zeros({2, 0, 4}, kFloat64), rnd({2, 3, 4}, 2),
                                             rnd({2, 3, 5}, 3));
  CHECK(e.sizes() == IntArrayRef({2, 0, 5}));
}

TEST_CASE("sdpa: dropout_p statistics, scaling and determinism under manual_seed") {
  // q = k = 0 makes every weight 1/S; value = eye(S) makes the output the weights themselves.
  const int64_t S = 32;
  const double p = 0.3;
  Tensor q = zeros({8, 32, 4}, kFloat64), k = zeros({8, S, 4}, kFloat64);
  Tensor v = eye(S, kFloat64).expand({8, S, S});
  manual_seed(1234);
  Tensor w = F::scaled_dot_product_attention(q, k, v, {}, p);
  std::vector<double> x = values(w);
  int64_t dropped = 0;
  bool kept_scaled = true;
  for (double e : x) {
    if (e == 0.0)
      ++dropped;
    else
      kept_scaled = kept_scaled && std::abs(e - 1.0 / S / (1.0 - p)) < 1e-15;
  }
  const double frac = static_cast<double>(dropped) / static_cast<double>(x.size());
  INFO("dropped fraction " << frac << " of " << x.size());
  CHECK(std::abs(frac - p) < 0.03);  // 8192 draws: the standard error is 0.005
  CHECK(kept_scaled);
  manual_seed(1234);
  CHECK(test::bitwise_equal(F::scaled_dot_product_attention(q, k, v, {}, p), w));
  CHECK_FALSE(test::bitwise_equal(F::scaled_dot_product_attention(q, k, v, {}, p), w));
  // dropout_p = 1 drops everything.
  CHECK(values(F::scaled_dot_product_attention(q, k, v, {}, 1.0).abs().sum()) ==
        std::vector<double>{0.0});
}

TEST_CASE("sdpa: gradcheck and gradgradcheck") {
  using Inputs = std::vector<Tensor>;
  Tensor keep = rnd({3, 5}, 21) > -0.2;
  keep.select(-1, 0).fill_(true);
  Tensor keep_with_empty_row = keep.clone();
  keep_with_empty_row.select(0, 2).fill_(false);
  auto plain = [](const Inputs& x) { return F::scaled_dot_product_attention(x[0], x[1], x[2]); };
  std::vector<test::GradCase> table;
  table.push_back(
      {"plain", plain, {grad_input({2, 3, 4}), grad_input({2, 5, 4}), grad_input({2, 5, 3})}});
  table.push_back({"odd 2-D", plain, {grad_input({3, 5}), grad_input({4, 5}), grad_input({4, 1})}});
  table.push_back({"broadcast batch",
                   plain,
                   {grad_input({2, 1, 3, 4}), grad_input({1, 2, 5, 4}), grad_input({2, 5, 3})}});
  table.push_back({"non-contiguous",
                   plain,
                   {grad_input({2, 4, 3}).detach().transpose(1, 2).requires_grad_(),
                    grad_input({2, 4, 5}).detach().transpose(1, 2).requires_grad_(),
                    grad_input({2, 3, 5}).detach().transpose(1, 2).requires_grad_()}});
  table.push_back(
      {"bool mask",
       [keep](const Inputs& x) { return F::scaled_dot_product_attention(x[0], x[1], x[2], keep); },
       {grad_input({2, 3, 4}), grad_input({2, 5, 4}), grad_input({2, 5, 3})}});
  table.push_back({"bool mask with a fully masked row",
                   [keep_with_empty_row](const Inputs& x) {
                     return F::scaled_dot_product_attention(x[0], x[1], x[2], keep_with_empty_row);
                   },
                   {grad_input({2, 3, 4}), grad_input({2, 5, 4}), grad_input({2, 5, 3})}});
  table.push_back(
      {"float mask (differentiable)",
       [](const Inputs& x) { return F::scaled_dot_product_attention(x[0], x[1], x[2], x[3]); },
       {grad_input({2, 3, 4}), grad_input({2, 5, 4}), grad_input({2, 5, 3}), grad_input({3, 5})}});
  table.push_back({"causal, scale",
                   [](const Inputs& x) {
                     return F::scaled_dot_product_attention(x[0], x[1], x[2], {}, 0.0, true, 0.8);
                   },
                   {grad_input({2, 4, 3}), grad_input({2, 3, 3}), grad_input({2, 3, 2})}});
  test::check_grad_table(table);
}

TEST_CASE("sdpa: errors name the op and the shapes") {
  Tensor q = rnd({2, 3, 4}, 1), k = rnd({2, 5, 4}, 2), v = rnd({2, 5, 3}, 3);
  EMBER_CHECK_THROWS(F::scaled_dot_product_attention(q, rnd({2, 5, 3}, 4), v), ShapeError,
                     "[scaled_dot_product_attention]", "(2, 3, 4)", "(2, 5, 3)");
  EMBER_CHECK_THROWS(F::scaled_dot_product_attention(q, k, rnd({2, 4, 3}, 5)), ShapeError,
                     "[scaled_dot_product_attention]", "(2, 5, 4)", "(2, 4, 3)");
  EMBER_CHECK_THROWS(F::scaled_dot_product_attention(rnd({4}, 6), k, v), ShapeError,
                     "[scaled_dot_product_attention]", "(4");
  EMBER_CHECK_THROWS(F::scaled_dot_product_attention(q, rnd({3, 5, 4}, 7), rnd({3, 5, 3}, 8)),
                     ShapeError, "[scaled_dot_product_attention]");
  EMBER_CHECK_THROWS(F::scaled_dot_product_attention(q, k, v, ones({3, 4}, kBool)), ShapeError,
                     "[scaled_dot_product_attention]", "(3, 4)", "(2, 3, 5)");
  EMBER_CHECK_THROWS(F::scaled_dot_product_attention(q, k, v, ones({4, 3, 5}, kBool)), ShapeError,
                     "[scaled_dot_product_attention]", "(4, 3, 5)");
  EMBER_CHECK_THROWS(F::scaled_dot_product_attention(q, k, v, ones({3, 5}, kBool), 0.0, true),
                     ValueError, "[scaled_dot_product_attention]", "is_causal");
  EMBER_CHECK_THROWS(F::scaled_dot_product_attention(q, k, v, ones({3, 5}, kInt64)), DTypeError,
                     "[scaled_dot_product_attention]", "int64");
  EMBER_CHECK_THROWS(F::scaled_dot_product_attention(q.to(kFloat32), k, v), DTypeError,
                     "[scaled_dot_product_attention]", "float32", "float64");
  EMBER_CHECK_THROWS(F::scaled_dot_product_attention(q, k, v, {}, 1.5), ValueError,
                     "[scaled_dot_product_attention]", "1.5");
  EMBER_CHECK_THROWS(F::scaled_dot_product_attention(q.to(kInt64), k.to(kInt64), v.to(kInt64)),
                     DTypeError, "[scaled_dot_product_attention]", "int64");
}

// ---- MultiheadAttention ----

namespace {

/// A float64 module with non-zero biases (PyTorch's init zeroes them, which would hide bugs).
nn::MultiheadAttention make_mha(nn::MultiheadAttentionOptions o, uint64_t seed) {
  nn::MultiheadAttention m(o);
  m->to(kFloat64);
  NoGradGuard no_grad;
  Generator g(seed);
  for (Tensor p : m->parameters()) uniform_(p, -0.6, 0.6, g);
  return m;
}

/// Multi-head attention written out per sample and per head from the module's parameters:
/// seq-first q (L, N, E), k / v (S, N, E); kpm (N, S) and attn_mask (L, S) bool, true = excluded.
std::pair<Tensor, Tensor> mha_composite(const nn::MultiheadAttentionImpl& m, const Tensor& q,
                                        const Tensor& k, const Tensor& v, const Tensor& kpm,
                                        const Tensor& attn_mask) {
  const int64_t N = q.size(1), E = m.embed_dim, H = m.num_heads, D = E / H;
  const Tensor& W = m.in_proj_weight;
  const Tensor& b = m.in_proj_bias;
  std::vector<Tensor> outs, weights;
  for (int64_t n = 0; n < N; ++n) {
    Tensor xq = q.select(1, n), xk = k.select(1, n), xv = v.select(1, n);
    Tensor excluded = zeros({q.size(0), k.size(0)}, kBool);
    if (attn_mask.defined()) excluded = excluded | attn_mask;
    if (kpm.defined()) excluded = excluded | kpm.select(0, n).unsqueeze(0);
    std::vector<Tensor> heads;
    Tensor wsum = zeros({q.size(0), k.size(0)}, kFloat64);
    for (int64_t h = 0; h < H; ++h) {
      Tensor qh = matmul(xq, W.narrow(0, h * D, D).t()) + b.narrow(0, h * D, D);
      Tensor kh = matmul(xk, W.narrow(0, E + h * D, D).t()) + b.narrow(0, E + h * D, D);
      Tensor vh = matmul(xv, W.narrow(0, 2 * E + h * D, D).t()) + b.narrow(0, 2 * E + h * D, D);
      Tensor s = matmul(qh, kh.t()) / std::sqrt(static_cast<double>(D));
      Tensor p = softmax(s.masked_fill(excluded, -kInf), -1);
      heads.push_back(matmul(p, vh));
      wsum = wsum + p;
    }
    outs.push_back(matmul(cat(heads, 1), m.out_proj->weight.t()) + m.out_proj->bias);
    weights.push_back(wsum / static_cast<double>(H));
  }
  return {stack(outs, 1), stack(weights, 0)};
}

}  // namespace

TEST_CASE("MultiheadAttention: parameter names, shapes and PyTorch's init") {
  manual_seed(3);
  nn::MultiheadAttention m(16, 4);
  StateDict sd = m->state_dict();
  CHECK(sd.keys() == std::vector<std::string>{"in_proj_weight", "in_proj_bias", "out_proj.weight",
                                              "out_proj.bias"});
  CHECK(sd.at("in_proj_weight").sizes() == IntArrayRef({48, 16}));
  CHECK(sd.at("in_proj_bias").sizes() == IntArrayRef({48}));
  CHECK(sd.at("out_proj.weight").sizes() == IntArrayRef({16, 16}));
  CHECK(sd.at("out_proj.bias").sizes() == IntArrayRef({16}));
  CHECK(m->head_dim == 4);
  // xavier_uniform_ on (3E, E): bound sqrt(6 / (E + 3E)); biases zero.
  const double bound = std::sqrt(6.0 / 64.0);
  std::vector<double> w = values(m->in_proj_weight);
  CHECK(*std::max_element(w.begin(), w.end()) <= bound);
  CHECK(*std::min_element(w.begin(), w.end()) >= -bound);
  CHECK(*std::max_element(w.begin(), w.end()) > 0.8 * bound);
  CHECK(values(m->in_proj_bias.abs().sum())[0] == 0.0);
  CHECK(values(m->out_proj->bias.abs().sum())[0] == 0.0);
  CHECK(values(m->out_proj->weight.abs().sum())[0] > 0.0);
  // kdim / vdim: separate projections; add_bias_kv; bias = false.
  nn::MultiheadAttention kv(nn::MultiheadAttentionOptions(8, 2).kdim(5).vdim(6).add_bias_kv(true));
  CHECK(kv->state_dict().keys() ==
        std::vector<std::string>{"q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias",
                                 "bias_k", "bias_v", "out_proj.weight", "out_proj.bias"});
  CHECK(kv->k_proj_weight.sizes() == IntArrayRef({8, 5}));
  CHECK(kv->v_proj_weight.sizes() == IntArrayRef({8, 6}));
  CHECK(kv->bias_k.sizes() == IntArrayRef({1, 1, 8}));
  nn::MultiheadAttention nb(8, 2, 0.0, /*bias=*/false);
  CHECK(nb->state_dict().keys() == std::vector<std::string>{"in_proj_weight", "out_proj.weight"});
  std::ostringstream os;
  os << *m;
  CHECK(os.str().find("MultiheadAttention(embed_dim=16, num_heads=4") != std::string::npos);
  CHECK(os.str().find("(out_proj): Linear(in_features=16, out_features=16") != std::string::npos);
}

TEST_CASE("MultiheadAttention: output and weights equal a per-sample, per-head composite") {
  nn::MultiheadAttention m = make_mha(nn::MultiheadAttentionOptions(8, 2), 11);
  Tensor q = rnd({3, 2, 8}, 1), k = rnd({5, 2, 8}, 2), v = rnd({5, 2, 8}, 3);
  Tensor kpm = zeros({2, 5}, kBool);
  kpm.index_put_({1, 3}, true);
  kpm.index_put_({1, 0}, true);
  Tensor am = rnd({3, 5}, 4) > 0.5;
  am.select(1, 1).fill_(false);  // key 1 is visible to every query
  SECTION("cross-attention with both masks") {
    auto [out, w] = m(q, k, v, kpm, true, am);
    auto [ref_out, ref_w] = mha_composite(*m, q, k, v, kpm, am);
    CHECK(close(out, ref_out));
    CHECK(close(w, ref_w));
    CHECK(out.sizes() == IntArrayRef({3, 2, 8}));
    CHECK(w.sizes() == IntArrayRef({2, 3, 5}));
  }
  SECTION("self-attention without masks") {
    auto [out, w] = m(q, q, q);
    auto [ref_out, ref_w] = mha_composite(*m, q, q, q, Tensor(), Tensor());
    CHECK(close(out, ref_out));
    CHECK(close(w, ref_w));
  }
  SECTION("need_weights = false gives the same output and no weights") {
    auto [out, w] = m(q, k, v, kpm, false, am);
    CHECK_FALSE(w.defined());
    CHECK(close(out, std::get<0>(mha_composite(*m, q, k, v, kpm, am))));
  }
}

TEST_CASE("MultiheadAttention: batch_first equals seq-first with the same weights") {
  nn::MultiheadAttention seq = make_mha(nn::MultiheadAttentionOptions(8, 4), 12);
  nn::MultiheadAttention bf = make_mha(nn::MultiheadAttentionOptions(8, 4).batch_first(true), 13);
  bf->load_state_dict(seq->state_dict());
  Tensor q = rnd({2, 3, 8}, 5), k = rnd({2, 4, 8}, 6), v = rnd({2, 4, 8}, 7);  // (N, L, E)
  Tensor kpm = zeros({2, 4}, kBool);
  kpm.index_put_({0, 2}, true);
  auto [y_bf, w_bf] = bf(q, k, v, kpm);
  auto [y_seq, w_seq] = seq(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), kpm);
  CHECK(y_bf.sizes() == IntArrayRef({2, 3, 8}));
  CHECK(close(y_bf, y_seq.transpose(0, 1), 1e-14));
  CHECK(close(w_bf, w_seq, 1e-14));
}

TEST_CASE("MultiheadAttention: key_padding_mask excludes keys, weights sum to 1") {
  nn::MultiheadAttention m = make_mha(nn::MultiheadAttentionOptions(6, 3), 14);
  Tensor q = rnd({4, 2, 6}, 8), k = rnd({5, 2, 6}, 9), v = rnd({5, 2, 6}, 10);
  Tensor kpm = zeros({2, 5}, kBool);
  kpm.index_put_({0, 4}, true);
  kpm.index_put_({1, 1}, true);
  kpm.index_put_({1, 2}, true);
  auto [y, w] = m(q, k, v, kpm);
  // Changing the masked keys and values changes nothing.
  Tensor k2 = k.clone(), v2 = v.clone();
  k2.select(0, 4).select(0, 0).fill_(7.0);
  v2.select(0, 1).select(0, 1).fill_(-9.0);
  v2.select(0, 2).select(0, 1).fill_(5.0);
  auto [y2, w2] = m(q, k2, v2, kpm);
  CHECK(close(y2, y, 1e-14));
  // ...while changing a visible one does.
  Tensor v3 = v.clone();
  v3.select(0, 0).select(0, 1).fill_(5.0);
  CHECK_FALSE(close(std::get<0>(m(q, k, v3, kpm)), y, 1e-6));
  // Masked keys get weight 0; each query's weights (averaged over heads) sum to 1.
  CHECK(values(w.select(0, 0).select(1, 4).abs().sum())[0] == 0.0);
  CHECK(values(w.select(0, 1).narrow(1, 1, 2).abs().sum())[0] == 0.0);
  CHECK(close(w.sum({-1}), ones({2, 4}, kFloat64)));
  // Per-head weights: (N, H, L, S), each sums to 1, and their mean is the average.
  auto [y_h, w_h] = m(q, k, v, kpm, true, Tensor(), /*average_attn_weights=*/false);
  CHECK(w_h.sizes() == IntArrayRef({2, 3, 4, 5}));
  CHECK(close(w_h.sum({-1}), ones({2, 3, 4}, kFloat64)));
  CHECK(close(w_h.mean({1}), w));
  CHECK(close(y_h, y, 0.0));
  // A float key_padding_mask of -inf is the same mask.
  Tensor fkpm = zeros({2, 5}, kFloat64).masked_fill(kpm, -kInf);
  CHECK(close(std::get<0>(m(q, k, v, fkpm)), y));
}

TEST_CASE("MultiheadAttention: bool and float attn_mask agree, 3-D masks are per head") {
  nn::MultiheadAttention m = make_mha(nn::MultiheadAttentionOptions(8, 2), 15);
  Tensor q = rnd({3, 2, 8}, 11), k = rnd({4, 2, 8}, 12);
  Tensor am = rnd({3, 4}, 13) > 0.3;
  am.select(1, 0).fill_(false);
  Tensor fam = zeros({3, 4}, kFloat64).masked_fill(am, -kInf);
  auto [y_bool, w_bool] = m(q, k, k, Tensor(), true, am);
  auto [y_float, w_float] = m(q, k, k, Tensor(), true, fam);
  CHECK(close(y_bool, y_float));
  CHECK(close(w_bool, w_float));
  // The (L, S) mask repeated for every (sample, head) as a (N * H, L, S) mask.
  auto [y3, w3] = m(q, k, k, Tensor(), true, am.unsqueeze(0).expand({4, 3, 4}).contiguous());
  CHECK(close(y3, y_bool, 1e-14));
  // Per head: masking key 3 for head 1 of sample 0 only changes sample 0.
  Tensor per_head = zeros({4, 3, 4}, kBool);
  per_head.select(0, 1).select(1, 3).fill_(true);
  auto [yh, wh] = m(q, k, k, Tensor(), true, per_head, false);
  auto [y0, w0] = m(q, k, k, Tensor(), true, Tensor(), false);
  CHECK(values(wh.select(0, 0).select(0, 1).select(1, 3).abs().sum())[0] == 0.0);
  CHECK(close(wh.select(0, 1), w0.select(0, 1), 1e-14));
  CHECK(close(wh.select(0, 0).select(0, 0), w0.select(0, 0).select(0, 0), 1e-14));
  CHECK(close(yh.select(1, 1), y0.select(1, 1), 1e-14));
  CHECK_FALSE(close(yh.select(1, 0), y0.select(1, 0), 1e-6));
  // A float mask is added to the scores: a constant per row changes nothing.
  CHECK(close(std::get<0>(m(q, k, k, Tensor(), true, full({3, 4}, 2.5, kFloat64))), y0, 1e-12));
  // is_causal is a hint: it needs the mask and applies it.
  Tensor causal = ones({3, 4}, kBool).triu(1);
  CHECK(close(std::get<0>(m(q, k, k, Tensor(), false, causal, true, true)),
              std::get<0>(m(q, k, k, Tensor(), false, causal))));
  EMBER_CHECK_THROWS(m(q, k, k, Tensor(), false, Tensor(), true, true), ValueError,
                     "[MultiheadAttention]", "is_causal");
}

TEST_CASE("MultiheadAttention: unbatched input equals a batch of one") {
  nn::MultiheadAttention m = make_mha(nn::MultiheadAttentionOptions(8, 2), 16);
  Tensor q = rnd({3, 8}, 14), k = rnd({4, 8}, 15);
  Tensor kpm = zeros({4}, kBool);
  kpm.index_put_({2}, true);
  Tensor am = zeros({2, 3, 4}, kBool);  // unbatched 3-D: (num_heads, L, S)
  am.index_put_({0, 1, 0}, true);
  auto [y, w] = m(q, k, k, kpm, true, am, false);
  auto [yb, wb] =
      m(q.unsqueeze(1), k.unsqueeze(1), k.unsqueeze(1), kpm.unsqueeze(0), true, am, false);
  CHECK(y.sizes() == IntArrayRef({3, 8}));
  CHECK(w.sizes() == IntArrayRef({2, 3, 4}));
  CHECK(close(y, yb.squeeze(1), 0.0));
  CHECK(close(w, wb.squeeze(0), 0.0));
}

TEST_CASE("MultiheadAttention: a fully masked query is NaN with weights, zero without") {
  nn::MultiheadAttention m = make_mha(nn::MultiheadAttentionOptions(4, 2), 17);
  Tensor q = rnd({2, 1, 4}, 16), k = rnd({3, 1, 4}, 17);
  Tensor am = zeros({2, 3}, kBool);
  am.select(0, 1).fill_(true);  // query 1 may attend to nothing
  auto [y, w] = m(q, k, k, Tensor(), true, am);
  CHECK(all(isnan(w.select(1, 1))).item<bool>());
  CHECK(all(isnan(y.select(0, 1))).item<bool>());
  CHECK(all(isfinite(y.select(0, 0))).item<bool>());
  // need_weights = false runs scaled_dot_product_attention: the row is out_proj.bias.
  auto [y2, none] = m(q, k, k, Tensor(), false, am);
  CHECK(close(y2.select(0, 1).select(0, 0), m->out_proj->bias.detach(), 0.0));
  CHECK(close(y2.select(0, 0), y.select(0, 0), 1e-14));
}

TEST_CASE("MultiheadAttention: dropout acts in training mode only") {
  nn::MultiheadAttention m = make_mha(nn::MultiheadAttentionOptions(8, 2).dropout(0.5), 18);
  Tensor q = rnd({6, 2, 8}, 18);
  manual_seed(5);
  auto [y1, w1] = m(q, q, q);
  manual_seed(5);
  auto [y2, w2] = m(q, q, q);
  CHECK(test::bitwise_equal(y1, y2));
  auto [y3, w3] = m(q, q, q);
  CHECK_FALSE(test::bitwise_equal(y1, y3));
  // Returned weights are the dropped ones (as PyTorch): some zero, no longer summing to 1.
  CHECK(values(eq(w1, 0.0).sum())[0] > 0);
  m->eval();
  auto [e1, ew1] = m(q, q, q);
  auto [e2, ew2] = m(q, q, q);
  CHECK(test::bitwise_equal(e1, e2));
  CHECK(close(ew1.sum({-1}), ones({2, 6}, kFloat64)));
}

TEST_CASE("MultiheadAttention: gradcheck through a float64 module") {
  nn::MultiheadAttention m = make_mha(nn::MultiheadAttentionOptions(4, 2), 19);
  Tensor kpm = zeros({2, 3}, kBool);
  kpm.index_put_({1, 0}, true);
  Tensor k = rnd({3, 2, 4}, 20);
  auto fn = [&](const std::vector<Tensor>& x) {
    return std::get<0>(m(x[0], x[1], x[1], kpm, /*need_weights=*/false));
  };
  CHECK(test::gradcheck(fn, {grad_input({2, 2, 4}), grad_input({3, 2, 4})}));
  auto fn_w = [&](const std::vector<Tensor>& x) {
    auto [y, w] = m(x[0], k, k, kpm);
    return y.sum() + (w * w).sum();
  };
  CHECK(test::gradcheck(fn_w, {grad_input({2, 2, 4})}));
  CHECK(test::gradgradcheck(fn, {grad_input({2, 2, 4}), grad_input({3, 2, 4})}));
  // And the parameters receive gradients.
  Tensor q = grad_input({2, 2, 4});
  std::get<0>(m(q, q, q)).sum().backward();
  CHECK(m->in_proj_weight.grad().defined());
  CHECK(m->out_proj->weight.grad().defined());
}

TEST_CASE("MultiheadAttention: errors name the op and the shapes") {
  EMBER_CHECK_THROWS(nn::MultiheadAttention(10, 3), ValueError, "[MultiheadAttention]",
                     "embed_dim=10", "num_heads=3");
  nn::MultiheadAttention m = make_mha(nn::MultiheadAttentionOptions(8, 2), 20);
  Tensor q = rnd({3, 2, 8}, 21), k = rnd({4, 2, 8}, 22);
  EMBER_CHECK_THROWS(m(rnd({3, 2, 6}, 1), k, k), ShapeError, "[MultiheadAttention]", "(3, 2, 6)");
  EMBER_CHECK_THROWS(m(q, k, rnd({5, 2, 8}, 2)), ShapeError, "[MultiheadAttention]", "(5, 2, 8)");
  EMBER_CHECK_THROWS(m(q, k, k, zeros({2, 5}, kBool)), ShapeError, "[MultiheadAttention]", "(2, 5)",
                     "(2, 4)");
  EMBER_CHECK_THROWS(m(q, k, k, Tensor(), true, zeros({4, 4}, kBool)), ShapeError,
                     "[MultiheadAttention]", "(4, 4)", "(3, 4)");
  EMBER_CHECK_THROWS(m(q, k, k, Tensor(), true, zeros({3, 3, 4}, kBool)), ShapeError,
                     "[MultiheadAttention]", "(3, 3, 4)", "(4, 3, 4)");
  EMBER_CHECK_THROWS(m(q, k, k, Tensor(), true, zeros({3, 4}, kInt64)), DTypeError,
                     "[MultiheadAttention]", "int64");
  EMBER_CHECK_THROWS(m(rnd({8}, 3), k, k), ShapeError, "[MultiheadAttention]", "(8");
  EMBER_CHECK_THROWS(m(q, rnd({4, 8}, 4), rnd({4, 8}, 4)), ShapeError, "[MultiheadAttention]",
                     "(4, 8)");
}

TEST_CASE("MultiheadAttention: a state_dict from PyTorch loads by name and gives torch's outputs") {
  const StateDict golden = test::load_attention_golden();
  SECTION("cross-attention, float attn_mask, bool key_padding_mask") {
    nn::MultiheadAttention m(8, 2);
    m->to(kFloat64);
    nn::LoadStateDictResult r = m->load_state_dict(test::golden_state(golden, "mha"));
    CHECK(r.missing_keys.empty());
    CHECK(r.unexpected_keys.empty());
    const Tensor &q = golden.at("mha.query"), &k = golden.at("mha.key"),
                 &v = golden.at("mha.value");
    const Tensor &kpm = golden.at("mha.kpm"), &am = golden.at("mha.attn_mask");
    auto [y, w] = m(q, k, v, kpm, true, am);
    CHECK(close(y, golden.at("mha.out"), 1e-12));
    CHECK(close(w, golden.at("mha.weights"), 1e-12));
    CHECK(close(std::get<1>(m(q, k, v, kpm, true, am, false)), golden.at("mha.weights_heads"),
                1e-12));
    CHECK(close(std::get<0>(m(q, k, v, kpm, false, am)), golden.at("mha.out_no_weights"), 1e-12));
  }
  SECTION("kdim / vdim, add_bias_kv, add_zero_attn, batch_first, bool attn_mask") {
    nn::MultiheadAttention m(nn::MultiheadAttentionOptions(8, 2)
                                 .kdim(5)
                                 .vdim(6)
                                 .add_bias_kv(true)
                                 .add_zero_attn(true)
                                 .batch_first(true));
    m->to(kFloat64);
    m->load_state_dict(test::golden_state(golden, "mha2"));
    auto [y, w] = m(golden.at("mha2.query"), golden.at("mha2.key"), golden.at("mha2.value"),
                    Tensor(), true, golden.at("mha2.attn_mask"));
    CHECK(close(y, golden.at("mha2.out"), 1e-12));
    CHECK(close(w, golden.at("mha2.weights"), 1e-12));
  }
}
