// Convolution family: unfold/fold (and their kernels against the plain references), conv1d/2d,
// conv_transpose1d/2d, max/avg/adaptive pooling, nearest/bilinear upsampling and interpolate.
// Hand-computed small cases, float64 nested-loop references over grids of parameters, the
// adjoint identity of conv_transpose2d, non-contiguous inputs, half types and error cases.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/cpu/gemm_kernels.hpp"
#include "core/kernels.hpp"
#include "gradcheck.hpp"
#include "test_util.hpp"

using namespace ember;
using test::values;

namespace {

Tensor rnd(IntArrayRef sizes, uint64_t seed, DType dt = kFloat64) {
  Generator g(seed);
  Tensor t = empty(sizes, kFloat64);
  uniform_(t, -1.0, 1.0, g);
  return t.to(dt);
}

bool close(const Tensor& a, const Tensor& b, double tol = 1e-10) {
  if (a.sizes() != b.sizes()) return false;
  std::vector<double> x = values(a), y = values(b);
  for (size_t i = 0; i < x.size(); ++i)
    if (!(std::abs(x[i] - y[i]) <= tol * (1 + std::abs(y[i])))) return false;
  return true;
}

/// A batched (N, C, H, W) float64 tensor from a nested-loop function.
struct Geometry {
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
};

/// Direct convolution (float64): out[n][o][y][x] = b[o] + sum over the group's channels and taps.
Tensor conv2d_reference(const Tensor& x, const Tensor& w, const Tensor& b, const Geometry& g,
                        int64_t groups) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), O = w.size(0);
  const int64_t OH = (H + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh + 1;
  const int64_t OW = (W + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw + 1;
  const std::vector<double> xv = values(x), wv = values(w);
  const std::vector<double> bv = b.defined() ? values(b) : std::vector<double>(O, 0.0);
  const int64_t Cg = C / groups, Og = O / groups;
  std::vector<double> out(static_cast<size_t>(N * O * OH * OW));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oy = 0; oy < OH; ++oy)
        for (int64_t ox = 0; ox < OW; ++ox) {
          double s = bv[static_cast<size_t>(o)];
          const int64_t grp = o / Og;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t i = 0; i < g.kh; ++i)
              for (int64_t j = 0; j < g.kw; ++j) {
                const int64_t iy = oy * g.sh - g.ph + i * g.dh, ix = ox * g.sw - g.pw + j * g.dw;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                s += xv[static_cast<size_t>(((n * C + grp * Cg + c) * H + iy) * W + ix)] *
                     wv[static_cast<size_t>(((o * Cg + c) * g.kh + i) * g.kw + j)];
              }
          out[static_cast<size_t>(((n * O + o) * OH + oy) * OW + ox)] = s;
        }
  return tensor(out, kFloat64).reshape({N, O, OH, OW});
}

/// Direct transposed convolution (float64): every input element scatters w times itself.
Tensor conv_transpose2d_reference(const Tensor& x, const Tensor& w, const Tensor& b,
                                  const Geometry& g, int64_t oph, int64_t opw, int64_t groups) {
  const int64_t N = x.size(0), Cin = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t Cog = w.size(1), Cout = Cog * groups, Cig = Cin / groups;
  const int64_t OH = (H - 1) * g.sh - 2 * g.ph + g.dh * (g.kh - 1) + oph + 1;
  const int64_t OW = (W - 1) * g.sw - 2 * g.pw + g.dw * (g.kw - 1) + opw + 1;
  const std::vector<double> xv = values(x), wv = values(w);
  std::vector<double> out(static_cast<size_t>(N * Cout * OH * OW), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t ci = 0; ci < Cin; ++ci)
      for (int64_t iy = 0; iy < H; ++iy)
        for (int64_t ix = 0; ix < W; ++ix) {
          const double v = xv[static_cast<size_t>(((n * Cin + ci) * H + iy) * W + ix)];
          const int64_t grp = ci / Cig;
          for (int64_t co = 0; co < Cog; ++co)
            for (int64_t i = 0; i < g.kh; ++i)
              for (int64_t j = 0; j < g.kw; ++j) {
                const int64_t oy = iy * g.sh - g.ph + i * g.dh, ox = ix * g.sw - g.pw + j * g.dw;
                if (oy < 0 || oy >= OH || ox < 0 || ox >= OW) continue;
                out[static_cast<size_t>(((n * Cout + grp * Cog + co) * OH + oy) * OW + ox)] +=
                    v * wv[static_cast<size_t>(((ci * Cog + co) * g.kh + i) * g.kw + j)];
              }
        }
  Tensor y = tensor(out, kFloat64).reshape({N, Cout, OH, OW});
  return b.defined() ? y + b.reshape({Cout, 1, 1}) : y;
}

double inner(const Tensor& a, const Tensor& b) { return (a * b).sum().item<double>(); }

}  // namespace

// ---- unfold / fold ----

TEST_CASE("unfold: hand-computed 2x2 windows of a 3x3 plane") {
  Tensor x = arange(1, 10, kFloat64).reshape({1, 1, 3, 3});
  Tensor cols = unfold(x, 2);
  REQUIRE(cols.sizes() == IntArrayRef({1, 4, 4}));
  CHECK(values(cols) == std::vector<double>{1, 2, 4, 5, 2, 3, 5, 6, 4, 5, 7, 8, 5, 6, 8, 9});
  // Padding 1, stride 2: windows at (-1, -1), (-1, 1), (1, -1), (1, 1); tap (0, 0) reads
  // (-1, -1) = 0, (-1, 1) = 0, (1, -1) = 0, (1, 1) = 5.
  Tensor p = unfold(x.squeeze(0), 2, 1, 1, 2);  // unbatched (C, H, W) -> (C*k*k, L)
  REQUIRE(p.sizes() == IntArrayRef({4, 4}));
  CHECK(values(p) == std::vector<double>{0, 0, 0, 5, 0, 0, 4, 6, 0, 2, 0, 8, 1, 3, 7, 9});
}

TEST_CASE("fold: hand-computed overlap counts, fold is the adjoint of unfold") {
  Tensor counts = fold(ones({1, 4, 4}, kFloat64), {3, 3}, 2);
  REQUIRE(counts.sizes() == IntArrayRef({1, 1, 3, 3}));
  CHECK(values(counts) == std::vector<double>{1, 2, 1, 2, 4, 2, 1, 2, 1});
  // <unfold(x), c> == <x, fold(c)> for a grid of windows.
  for (int64_t s : {1, 2})
    for (int64_t p : {0, 1})
      for (int64_t d : {1, 2}) {
        Tensor x = rnd({2, 3, 7, 6}, 1);
        Tensor u = unfold(x, {3, 2}, d, p, s);
        Tensor c = rnd(u.sizes(), 2);
        Tensor f = fold(c, {7, 6}, {3, 2}, d, p, s);
        CHECK(std::abs(inner(u, c) - inner(x, f)) < 1e-10);
      }
}

TEST_CASE("unfold / fold with one window over the whole plane: a copy, equal to the loops") {
  // A (3, 4) kernel on a (3, 4) plane, no padding: unfold and fold take the copy path. A zero
  // padding of 1 on a (1, 2) plane gives the same windows through the general loops.
  Tensor x = rnd({2, 5, 3, 4}, 6);
  Tensor cols = unfold(x, {3, 4});
  REQUIRE(cols.sizes() == IntArrayRef({2, 60, 1}));
  CHECK(test::bitwise_equal(cols, x.reshape({2, 60, 1})));
  CHECK(cols.data_ptr<double>() != x.data_ptr<double>());  // a copy, never an alias
  Tensor inner_x = x.slice(2, 1, 2).slice(3, 1, 3);         // (2, 5, 1, 2), strided
  Tensor loops = unfold(inner_x, {3, 4}, 1, {1, 1});
  Tensor mask = unfold(ones({1, 1, 1, 2}, kFloat64), {3, 4}, 1, {1, 1});
  CHECK(close(loops.reshape({2, 5, 12}), cols.reshape({2, 5, 12}) * mask.reshape({1, 1, 12}), 0));
  Tensor back = fold(cols, {3, 4}, {3, 4});
  CHECK(test::bitwise_equal(back, x));
  CHECK(back.data_ptr<double>() != cols.data_ptr<double>());
  // Through conv_transpose2d (1x1 -> 7x7, DCGAN's first layer) and conv2d, with gradients.
  Tensor z = rnd({3, 4, 1, 1}, 7).requires_grad_(true);
  Tensor wt = rnd({4, 2, 7, 7}, 8).requires_grad_(true);
  CHECK(test::gradcheck([](const std::vector<Tensor>& in) { return conv_transpose2d(in[0], in[1]); },
                  {z, wt}));
  Tensor y = conv_transpose2d(z, wt);
  Tensor ref = matmul(z.reshape({3, 4}), wt.reshape({4, 98})).reshape({3, 2, 7, 7});
  CHECK(close(y, ref, 1e-12));
  Tensor img = rnd({3, 2, 7, 7}, 9).requires_grad_(true);
  CHECK(test::gradcheck([](const std::vector<Tensor>& in) { return conv2d(in[0], in[1]); },
                  {img, wt.detach().clone().requires_grad_(true)}));
}

TEST_CASE("im2col / col2im kernels match their plain references (odd sizes, strided input)") {
  int cases = 0;
  for (DType dt : {kFloat64, kFloat32, kFloat16, kInt64})
    for (const Window2d& w : {Window2d{3, 3, 1, 1, 1, 1, 1, 1}, Window2d{2, 3, 2, 1, 0, 2, 2, 3},
                              Window2d{1, 1, 1, 1, 0, 0, 2, 2}, Window2d{5, 2, 1, 3, 2, 1, 3, 1},
                              Window2d{3, 1, 2, 2, 3, 0, 1, 2}}) {
      // (P, H, W) = (5, 9, 7) viewed with a transposed, strided layout.
      Tensor base = (rnd({5, 7, 18}, 3) * 10).to(dt);
      Tensor x = base.slice(2, 0, std::nullopt, 2).transpose(1, 2);  // (5, 9, 7), non-contiguous
      REQUIRE_FALSE(x.is_contiguous());
      const int64_t OH = (9 + 2 * w.ph - w.dh * (w.kh - 1) - 1) / w.sh + 1;
      const int64_t OW = (7 + 2 * w.pw - w.dw * (w.kw - 1) - 1) / w.sw + 1;
      Tensor cols = empty({5, w.kh * w.kw, OH * OW}, dt), ref = empty_like(cols);
      cpu::im2col(cols, x, w);
      cpu::im2col_reference(ref, x, w);
      CHECK(test::bitwise_equal(cols, ref));
      Tensor c = (rnd({5, OH * OW, w.kh * w.kw}, 4) * 10).to(dt).transpose(1, 2);  // strided
      Tensor out = empty({5, 9, 7}, dt), out_ref = empty_like(out);
      cpu::col2im(out, c, w);
      cpu::col2im_reference(out_ref, c, w);
      INFO("dtype " << dt << " window " << w.kh << " " << w.kw << " " << w.dh << " " << w.dw << " "
                    << w.ph << " " << w.pw << " " << w.sh << " " << w.sw);
      // float32 sums up to kh*kw terms of magnitude <= 10 in float: error bound ~ 9 * 90 * 6e-8.
      CHECK(close(out, out_ref, dt == kFloat16 ? 2e-3 : dt == kFloat32 ? 5e-5 : 1e-12));
      ++cases;
    }
  CHECK(cases == 20);
}

TEST_CASE("unfold / fold / max_pool2d: results do not depend on the thread count") {
  Tensor x = rnd({3, 5, 33, 31}, 5, kFloat32);
  const int before = get_num_threads();
  set_num_threads(1);
  Tensor u1 = unfold(x, 3, 1, 1, 1), f1 = fold(u1, {33, 31}, 3, 1, 1, 1);
  Tensor m1 = max_pool2d(x, 3, 2, 1);
  set_num_threads(4);
  Tensor u4 = unfold(x, 3, 1, 1, 1), f4 = fold(u4, {33, 31}, 3, 1, 1, 1);
  Tensor m4 = max_pool2d(x, 3, 2, 1);
  set_num_threads(before);
  CHECK(test::bitwise_equal(u1, u4));
  CHECK(test::bitwise_equal(f1, f4));
  CHECK(test::bitwise_equal(m1, m4));
}

// ---- convolution ----

TEST_CASE("conv2d: hand-computed 2x2 box filter with bias") {
  Tensor x = arange(1, 17, kFloat64).reshape({1, 1, 4, 4});
  Tensor w = ones({1, 1, 2, 2}, kFloat64);
  Tensor y = conv2d(x, w, tensor({0.5}, kFloat64));
  REQUIRE(y.sizes() == IntArrayRef({1, 1, 3, 3}));
  CHECK(values(y) == std::vector<double>{14.5, 18.5, 22.5, 30.5, 34.5, 38.5, 46.5, 50.5, 54.5});
  // Stride 2, padding 1: windows at rows/cols -1, 1, 3.
  Tensor z = conv2d(x, w, {}, 2, 1);
  REQUIRE(z.sizes() == IntArrayRef({1, 1, 3, 3}));
  CHECK(values(z) == std::vector<double>{1, 5, 4, 14, 34, 20, 13, 29, 16});
  // conv1d: [1, 2, 3, 4] * [1, -1] = [-1, -1, -1].
  Tensor c = conv1d(tensor({{1.0, 2.0, 3.0, 4.0}}, kFloat64), tensor({{{1.0, -1.0}}}, kFloat64));
  REQUIRE(c.sizes() == IntArrayRef({1, 3}));
  CHECK(values(c) == std::vector<double>{-1, -1, -1});
}

TEST_CASE("conv2d matches a direct nested-loop convolution over a grid of parameters") {
  int cases = 0;
  uint64_t seed = 100;
  for (int64_t groups : {1, 2, 6})
    for (const Geometry& g : {Geometry{3, 3, 1, 1, 1, 1, 1, 1}, Geometry{1, 1, 1, 1, 0, 0, 1, 1},
                              Geometry{1, 1, 2, 2, 0, 0, 1, 1}, Geometry{2, 3, 2, 1, 1, 0, 1, 2},
                              Geometry{3, 2, 1, 3, 2, 1, 2, 1}, Geometry{5, 5, 2, 2, 2, 2, 1, 1}}) {
      const int64_t C = 6, O = groups == 6 ? 6 : 4;  // groups 6 = depthwise
      Tensor x = rnd({2, C, 9, 8}, ++seed);
      Tensor w = rnd({O, C / groups, g.kh, g.kw}, ++seed);
      Tensor b = rnd({O}, ++seed);
      Tensor y = conv2d(x, w, b, {g.sh, g.sw}, {g.ph, g.pw}, {g.dh, g.dw}, groups);
      INFO("groups " << groups << " kernel (" << g.kh << ", " << g.kw << ") stride (" << g.sh
                     << ", " << g.sw << ")");
      const Tensor ref = conv2d_reference(x, w, b, g, groups);
      CHECK(close(y, ref));
      // float32: the packed GEMM's float accumulation over at most 6*25 terms of size <= 1.
      CHECK(close(conv2d(x.to(kFloat32), w.to(kFloat32), b.to(kFloat32), {g.sh, g.sw}, {g.ph, g.pw},
                         {g.dh, g.dw}, groups),
                  ref, 2e-5));
      // Unbatched input, no bias.
      Tensor y1 = conv2d(x[0], w, {}, {g.sh, g.sw}, {g.ph, g.pw}, {g.dh, g.dw}, groups);
      CHECK(close(y1, conv2d_reference(x.slice(0, 0, 1), w, {}, g, groups).squeeze(0)));
      ++cases;
    }
  CHECK(cases == 18);
}

TEST_CASE("conv2d: weight gradient matches the reference and the thread count does not matter") {
  // dW = sum_n dY[n] unfold(x)[n]^T, against matmul of the batch folded into the inner dim, and
  // independent of the thread count.
  const int saved = get_num_threads();
  Tensor x = rnd({6, 5, 11, 9}, 950), w = rnd({7, 5, 3, 3}, 951).requires_grad_(true);
  Tensor dy = rnd({6, 7, 6, 5}, 952);
  set_num_threads(1);
  Tensor y = conv2d(x, w, {}, 2, 1);
  y.backward(dy);
  const Tensor g1 = w.grad().clone();
  w.mutable_grad() = Tensor();
  set_num_threads(2);
  conv2d(x, w, {}, 2, 1).backward(dy);
  CHECK(test::bitwise_equal(g1, w.grad()));
  set_num_threads(saved);
  Tensor cols = unfold(x, 3, 1, 1, 2);  // (6, 45, 30)
  Tensor ref = matmul(dy.reshape({6, 7, 30}).permute({1, 0, 2}).reshape({7, 180}),
                      cols.permute({0, 2, 1}).reshape({180, 45}))
                   .reshape({7, 5, 3, 3});
  CHECK(close(g1, ref, 1e-12));
}

TEST_CASE("conv2d depthwise (direct kernel): reference, strides, half types, thread count") {
  Tensor x = rnd({3, 5, 11, 9}, 50), w = rnd({5, 1, 3, 2}, 51), b = rnd({5}, 52);
  const Geometry g{3, 2, 2, 1, 1, 1, 2, 3};
  Tensor y = conv2d(x, w, b, {2, 1}, 1, {2, 3}, 5);
  CHECK(close(y, conv2d_reference(x, w, b, g, 5)));
  CHECK(y.grad_fn() == nullptr);
  CHECK(test::bitwise_equal(
      conv2d(test::non_contiguous(x), test::non_contiguous(w), b, {2, 1}, 1, {2, 3}, 5), y));
  // conv1d: x[0] is (N, C, L) = (5, 11, 9), depthwise over its 11 channels.
  Tensor w1 = rnd({11, 1, 3}, 53);
  CHECK(close(
      conv1d(x[0], w1, {}, 1, 1, 1, 11),
      conv2d_reference(x[0].unsqueeze(2), w1.unsqueeze(2), {}, Geometry{1, 3, 1, 1, 0, 1, 1, 1}, 11)
          .squeeze(2)));
  Tensor xf = rnd({4, 8, 33, 31}, 54, kFloat32), wf = rnd({8, 1, 3, 3}, 55, kFloat32);
  const int before = get_num_threads();
  set_num_threads(1);
  Tensor y1 = conv2d(xf, wf, {}, 1, 1, 1, 8);
  set_num_threads(4);
  Tensor y4 = conv2d(xf, wf, {}, 1, 1, 1, 8);
  set_num_threads(before);
  CHECK(test::bitwise_equal(y1, y4));
  for (DType dt : {kFloat16, kBFloat16}) {
    Tensor yh = conv2d(xf.to(dt), wf.to(dt), {}, 1, 1, 1, 8);
    REQUIRE(yh.dtype() == dt);
    CHECK(close(yh, conv2d(xf.to(dt).to(kFloat32), wf.to(dt).to(kFloat32), {}, 1, 1, 1, 8),
                dt == kFloat16 ? 4e-3 : 2e-2));
  }
}

TEST_CASE("conv1d matches the reference through a unit H dim") {
  Tensor x = rnd({2, 4, 11}, 7), w = rnd({6, 2, 3}, 8), b = rnd({6}, 9);
  Tensor y = conv1d(x, w, b, 2, 1, 2, 2);
  Geometry g{1, 3, 1, 2, 0, 1, 1, 2};
  CHECK(close(y, conv2d_reference(x.unsqueeze(2), w.unsqueeze(2), b, g, 2).squeeze(2)));
  CHECK(y.sizes() == IntArrayRef({2, 6, 5}));
  CHECK(close(conv1d(x[1], w, b, 2, 1, 2, 2), y[1]));
}

TEST_CASE("conv2d: padding \"same\" and \"valid\"") {
  Tensor x = rnd({1, 2, 7, 6}, 11);
  for (int64_t k : {3, 4})
    for (int64_t d : {1, 2}) {
      Tensor w = rnd({3, 2, k, k}, 12);
      Tensor y = conv2d(x, w, {}, 1, "same", d);
      REQUIRE(y.sizes() == IntArrayRef({1, 3, 7, 6}));
      // PyTorch: total d (k - 1), left total / 2, the rest on the right/bottom.
      const int64_t total = d * (k - 1), left = total / 2, right = total - left;
      Tensor ref = conv2d(pad(x, {left, right, left, right}), w, {}, 1, 0, d);
      CHECK(close(y, ref));
    }
  Tensor w = rnd({3, 2, 3, 3}, 13);
  CHECK(close(conv2d(x, w, {}, 1, std::string("valid")), conv2d(x, w)));
  CHECK(conv1d(rnd({2, 5}, 14), rnd({1, 2, 4}, 15), {}, 1, "same").sizes() == IntArrayRef({1, 5}));
  EMBER_CHECK_THROWS(conv2d(x, w, {}, 2, "same"), ValueError, "[conv2d]", "stride");
  EMBER_CHECK_THROWS(conv2d(x, w, {}, 1, "full"), ValueError, "[conv2d]", "full");
}

TEST_CASE("conv2d_relu: on the CPU bitwise relu(conv2d), gradients included, errors name it") {
  for (DType dt : {kFloat32, kFloat64, kBFloat16}) {
    INFO(dt);
    Tensor x = rnd({2, 4, 7, 6}, 16).to(dt).requires_grad_(true);
    Tensor w = rnd({6, 2, 3, 3}, 17).to(dt).requires_grad_(true);
    Tensor b = rnd({6}, 18).to(dt).requires_grad_(true);
    Tensor y = conv2d_relu(x, w, b, 2, 1, 1, 2);
    Tensor x2 = x.detach().requires_grad_(true), w2 = w.detach().requires_grad_(true),
           b2 = b.detach().requires_grad_(true);
    Tensor r = relu(conv2d(x2, w2, b2, 2, 1, 1, 2));
    CHECK(test::bitwise_equal(y, r));
    const std::vector<double> v = test::values(y.to(kFloat64));
    CHECK(std::count(v.begin(), v.end(), 0.0) > 0);  // the ReLU cut something
    CHECK(std::count_if(v.begin(), v.end(), [](double e) { return e > 0; }) > 0);
    Tensor dy = rnd({2, 6, 4, 3}, 19).to(dt);
    y.backward(dy);
    r.backward(dy);
    CHECK(test::bitwise_equal(x.grad(), x2.grad()));
    CHECK(test::bitwise_equal(w.grad(), w2.grad()));
    CHECK(test::bitwise_equal(b.grad(), b2.grad()));
  }
  Tensor x = rnd({1, 4, 5, 5}, 20), w = rnd({2, 3, 3, 3}, 21);
  EMBER_CHECK_THROWS(conv2d_relu(x, w), ShapeError, "[conv2d_relu]", "(1, 4, 5, 5)",
                     "(2, 3, 3, 3)");
}

TEST_CASE("conv_transpose2d is the adjoint of conv2d and matches a direct reference") {
  int cases = 0;
  uint64_t seed = 200;
  for (int64_t groups : {1, 2})
    for (const Geometry& g : {Geometry{3, 3, 1, 1, 1, 1, 1, 1}, Geometry{3, 3, 2, 2, 1, 1, 1, 1},
                              Geometry{2, 3, 2, 3, 0, 1, 1, 1}, Geometry{3, 2, 3, 1, 1, 0, 2, 2},
                              Geometry{1, 1, 1, 1, 0, 0, 1, 1}, Geometry{4, 4, 2, 2, 1, 1, 1, 1}}) {
      const int64_t H = 9, W = 8;
      Tensor x = rnd({2, 4, H, W}, ++seed);
      Tensor w = rnd({6, 4 / groups, g.kh, g.kw}, ++seed);
      Tensor y = conv2d(x, w, {}, {g.sh, g.sw}, {g.ph, g.pw}, {g.dh, g.dw}, groups);
      Tensor dy = rnd(y.sizes(), ++seed);
      // output_padding recovers (H, W): the rows the strided conv skipped at the end.
      const int64_t oph = (H + 2 * g.ph - g.dh * (g.kh - 1) - 1) % g.sh;
      const int64_t opw = (W + 2 * g.pw - g.dw * (g.kw - 1) - 1) % g.sw;
      Tensor xt =
          conv_transpose2d(dy, w, {}, {g.sh, g.sw}, {g.ph, g.pw}, {oph, opw}, groups, {g.dh, g.dw});
      REQUIRE(xt.sizes() == x.sizes());
      CHECK(std::abs(inner(y, dy) - inner(x, xt)) < 1e-9);
      Tensor b = rnd({w.size(1) * groups}, ++seed);
      Tensor z =
          conv_transpose2d(dy, w, b, {g.sh, g.sw}, {g.ph, g.pw}, {oph, opw}, groups, {g.dh, g.dw});
      CHECK(close(z, conv_transpose2d_reference(dy, w, b, g, oph, opw, groups)));
      ++cases;
    }
  CHECK(cases == 12);
  // output_padding >= stride is allowed when it is smaller than the dilation.
  Tensor x = rnd({1, 2, 4, 4}, 300), w = rnd({2, 3, 3, 3}, 301);
  Geometry g{3, 3, 1, 1, 0, 0, 3, 3};
  Tensor z = conv_transpose2d(x, w, {}, 1, 0, 2, 1, 3);
  CHECK(close(z, conv_transpose2d_reference(x, w, {}, g, 2, 2, 1)));
  // Hand-computed: a single 1 spreads the kernel at stride 2.
  Tensor one = zeros({1, 1, 2, 2}, kFloat64);
  one.index_put_({0, 0, 1, 1}, 1.0);
  Tensor k = arange(1, 5, kFloat64).reshape({1, 1, 2, 2});
  CHECK(values(conv_transpose2d(one, k, {}, 2)) ==
        std::vector<double>{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4});
}

TEST_CASE("conv_transpose1d matches conv_transpose2d through a unit H dim") {
  Tensor x = rnd({2, 4, 7}, 20), w = rnd({4, 3, 3}, 21), b = rnd({6}, 22);
  Tensor y = conv_transpose1d(x, w, b, 2, 1, 1, 2, 1);
  CHECK(y.sizes() == IntArrayRef({2, 6, 14}));
  CHECK(close(
      y,
      conv_transpose2d(x.unsqueeze(2), w.unsqueeze(2), b, {1, 2}, {0, 1}, {0, 1}, 2).squeeze(2)));
  CHECK(close(conv_transpose1d(x[0], w, b, 2, 1, 1, 2), y[0]));
}

TEST_CASE("conv: non-contiguous inputs give bitwise the contiguous results, half types") {
  Tensor x = rnd({2, 3, 8, 9}, 30, kFloat32), w = rnd({4, 3, 3, 3}, 31, kFloat32);
  Tensor xn = test::non_contiguous(x), wn = test::non_contiguous(w);
  REQUIRE_FALSE(xn.is_contiguous());
  CHECK(test::bitwise_equal(conv2d(xn, wn, {}, 2, 1), conv2d(x, w, {}, 2, 1)));
  Tensor yt = rnd({2, 4, 4, 5}, 32, kFloat32);
  CHECK(test::bitwise_equal(conv_transpose2d(test::non_contiguous(yt), wn, {}, 2, 1),
                            conv_transpose2d(yt, w, {}, 2, 1)));
  for (DType dt : {kFloat16, kBFloat16}) {
    Tensor y = conv2d(x.to(dt), w.to(dt), {}, 1, 1);
    REQUIRE(y.dtype() == dt);
    Tensor ref = conv2d(x.to(dt).to(kFloat32), w.to(dt).to(kFloat32), {}, 1, 1);
    CHECK(close(y, ref, dt == kFloat16 ? 4e-3 : 2e-2));
  }
}

TEST_CASE(
    "pooling, upsampling, unfold: non-contiguous inputs give bitwise the contiguous results") {
  Tensor x = rnd({2, 3, 7, 9}, 33, kFloat32);
  Tensor xn = test::non_contiguous(x);
  REQUIRE_FALSE(xn.is_contiguous());
  CHECK(test::bitwise_equal(unfold(xn, {2, 3}, 1, 1, 2), unfold(x, {2, 3}, 1, 1, 2)));
  CHECK(test::bitwise_equal(fold(test::non_contiguous(unfold(x, 3)), {7, 9}, 3),
                            fold(unfold(x, 3), {7, 9}, 3)));
  CHECK(test::bitwise_equal(avg_pool2d(xn, 3, 2, 1), avg_pool2d(x, 3, 2, 1)));
  CHECK(test::bitwise_equal(adaptive_avg_pool2d(xn, {3, 4}), adaptive_avg_pool2d(x, {3, 4})));
  CHECK(test::bitwise_equal(std::get<1>(adaptive_max_pool2d(xn, {3, 4})),
                            std::get<1>(adaptive_max_pool2d(x, {3, 4}))));
  CHECK(test::bitwise_equal(upsample_bilinear2d(xn, {11, 5}, true),
                            upsample_bilinear2d(x, {11, 5}, true)));
  CHECK(test::bitwise_equal(upsample_nearest2d(xn, {11, 5}), upsample_nearest2d(x, {11, 5})));
}

TEST_CASE("conv: errors name the op and the shapes") {
  Tensor x = rnd({1, 4, 5, 5}, 40), w = rnd({2, 3, 3, 3}, 41);
  EMBER_CHECK_THROWS(conv2d(x, w), ShapeError, "[conv2d]", "(1, 4, 5, 5)", "(2, 3, 3, 3)");
  EMBER_CHECK_THROWS(conv2d(x, rnd({2, 4, 3, 3}, 1), {}, 1, 0, 1, 3), ShapeError, "[conv2d]",
                     "groups 3", "(1, 4, 5, 5)");
  EMBER_CHECK_THROWS(conv2d(x, rnd({3, 2, 3, 3}, 1), {}, 1, 0, 1, 2), ShapeError, "[conv2d]",
                     "(3, 2, 3, 3)");
  EMBER_CHECK_THROWS(conv2d(x, rnd({2, 4, 7, 7}, 1)), ShapeError, "[conv2d]", "(7, 7)", "(5, 5)");
  EMBER_CHECK_THROWS(conv2d(x, rnd({2, 4, 3, 3}, 1), {}, 0), ValueError, "[conv2d]", "stride");
  EMBER_CHECK_THROWS(conv2d(x, rnd({2, 4, 3, 3}, 1), {}, {1, 2, 3}), ValueError, "[conv2d]",
                     "(1, 2, 3)");
  EMBER_CHECK_THROWS(conv2d(x, rnd({2, 4, 3, 3}, 1), rnd({3}, 1)), ShapeError, "[conv2d]", "bias",
                     "(3,)");
  EMBER_CHECK_THROWS(conv2d(x, rnd({2, 4, 3, 3}, 1, kFloat32)), DTypeError, "[conv2d]", "float32");
  EMBER_CHECK_THROWS(conv2d(ones({1, 4, 5, 5}, kInt64), ones({2, 4, 3, 3}, kInt64)), DTypeError,
                     "[conv2d]", "int64");
  EMBER_CHECK_THROWS(conv2d(rnd({4, 5}, 1), w), ShapeError, "[conv2d]", "(4, 5)");
  EMBER_CHECK_THROWS(conv1d(rnd({1, 4, 2}, 1), rnd({2, 4, 3}, 1)), ShapeError, "[conv1d]", "(3,)",
                     "(2,)");
  EMBER_CHECK_THROWS(conv_transpose2d(x, rnd({3, 2, 3, 3}, 1)), ShapeError, "[conv_transpose2d]",
                     "(1, 4, 5, 5)");
  EMBER_CHECK_THROWS(conv_transpose2d(x, rnd({4, 2, 3, 3}, 1), {}, 2, 0, 2), ValueError,
                     "[conv_transpose2d]", "output_padding");
  EMBER_CHECK_THROWS(unfold(rnd({1, 1, 2, 2}, 1), 3), ShapeError, "[unfold]", "(3, 3)", "(2, 2)");
  EMBER_CHECK_THROWS(fold(rnd({1, 4, 5}, 1), {3, 3}, 2), ShapeError, "[fold]", "(1, 4, 5)");
  EMBER_CHECK_THROWS(fold(rnd({1, 5, 4}, 1), {3, 3}, 2), ShapeError, "[fold]", "(1, 5, 4)");
}

// ---- pooling ----

namespace {

/// PyTorch's pooling output size.
int64_t pool_size(int64_t in, int64_t k, int64_t p, int64_t s, int64_t d, bool ceil_mode) {
  const int64_t num = in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  int64_t out = num / s + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

/// Max pooling by brute force over every tap (float64): values and flat indices.
std::pair<Tensor, Tensor> max_pool2d_reference(const Tensor& x, const Geometry& g, bool ceil_mode) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = pool_size(H, g.kh, g.ph, g.sh, g.dh, ceil_mode);
  const int64_t OW = pool_size(W, g.kw, g.pw, g.sw, g.dw, ceil_mode);
  const std::vector<double> xv = values(x);
  std::vector<double> v;
  std::vector<int64_t> idx;
  for (int64_t p = 0; p < N * C; ++p)
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox) {
        double best = -std::numeric_limits<double>::infinity();
        int64_t at = -1;
        for (int64_t i = 0; i < g.kh; ++i)
          for (int64_t j = 0; j < g.kw; ++j) {
            const int64_t iy = oy * g.sh - g.ph + i * g.dh, ix = ox * g.sw - g.pw + j * g.dw;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
            const double e = xv[static_cast<size_t>((p * H + iy) * W + ix)];
            if (at < 0 || e > best) {
              best = e;
              at = iy * W + ix;
            }
          }
        v.push_back(best);
        idx.push_back(at);
      }
  return {tensor(v, kFloat64).reshape({N, C, OH, OW}), tensor(idx).reshape({N, C, OH, OW})};
}

/// Average pooling as PyTorch's CPU kernel computes it (float64).
Tensor avg_pool2d_reference(const Tensor& x, const Geometry& g, bool ceil_mode, bool include_pad,
                            std::optional<int64_t> divisor) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t OH = pool_size(H, g.kh, g.ph, g.sh, 1, ceil_mode);
  const int64_t OW = pool_size(W, g.kw, g.pw, g.sw, 1, ceil_mode);
  const std::vector<double> xv = values(x);
  std::vector<double> v;
  for (int64_t p = 0; p < N * C; ++p)
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox) {
        int64_t hs = oy * g.sh - g.ph, ws = ox * g.sw - g.pw;
        int64_t he = std::min(hs + g.kh, H + g.ph), we = std::min(ws + g.kw, W + g.pw);
        const int64_t pool = (he - hs) * (we - ws);
        hs = std::max<int64_t>(hs, 0);
        ws = std::max<int64_t>(ws, 0);
        he = std::min(he, H);
        we = std::min(we, W);
        double s = 0;
        for (int64_t iy = hs; iy < he; ++iy)
          for (int64_t ix = ws; ix < we; ++ix) s += xv[static_cast<size_t>((p * H + iy) * W + ix)];
        const double div = divisor
                               ? static_cast<double>(*divisor)
                               : static_cast<double>(include_pad ? pool : (he - hs) * (we - ws));
        v.push_back(s / div);
      }
  return tensor(v, kFloat64).reshape({N, C, OH, OW});
}

}  // namespace

TEST_CASE("max_pool2d: hand-computed values and indices") {
  Tensor x =
      tensor(
          {{1.0, 5.0, 2.0, 0.0}, {3.0, 4.0, 8.0, 7.0}, {9.0, 0.0, 1.0, 1.0}, {2.0, 6.0, 1.0, 3.0}},
          kFloat64)
          .reshape({1, 1, 4, 4});
  auto [v, i] = max_pool2d_with_indices(x, 2);
  CHECK(values(v) == std::vector<double>{5, 8, 9, 3});
  CHECK(i.dtype() == kInt64);
  CHECK(values(i) == std::vector<double>{1, 6, 8, 15});
  // Padding 1, stride 2, ceil_mode: windows rows {-1,0}, {1,2}, {3,4}: the padding never wins.
  Tensor n = -x;
  auto [v2, i2] = max_pool2d_with_indices(n, 2, 2, 1, 1, true);
  REQUIRE(v2.sizes() == IntArrayRef({1, 1, 3, 3}));
  CHECK(values(v2) == std::vector<double>{-1, -2, 0, -3, 0, -1, -2, -1, -3});
  CHECK(values(i2) == std::vector<double>{0, 2, 3, 4, 9, 11, 12, 14, 15});
  // Ties keep the first position; NaN propagates.
  Tensor t = tensor({{2.0, 2.0}, {2.0, std::nan("")}}, kFloat64).reshape({1, 2, 2});
  auto [tv, ti] = max_pool2d_with_indices(t.slice(2, 0, 1), {2, 1});
  CHECK(values(ti) == std::vector<double>{0});
  CHECK(std::isnan(max_pool2d(t, 2).item<double>()));
  CHECK(values(max_pool1d(tensor({{1.0, 3.0, 2.0, 5.0, 4.0}}, kFloat64), 2)) ==
        std::vector<double>{3, 5});
}

TEST_CASE("max_pool2d matches a brute-force reference (padding, dilation, ceil_mode, strides)") {
  int cases = 0;
  uint64_t seed = 400;
  for (bool ceil_mode : {false, true})
    for (const Geometry& g : {Geometry{2, 2, 2, 2, 0, 0, 1, 1}, Geometry{3, 3, 2, 2, 1, 1, 1, 1},
                              Geometry{3, 2, 1, 2, 1, 1, 1, 1}, Geometry{2, 3, 3, 2, 1, 0, 2, 2},
                              Geometry{5, 3, 2, 3, 2, 1, 1, 2}}) {
      Tensor base = rnd({2, 3, 11, 20}, ++seed);
      Tensor x = base.slice(3, 0, std::nullopt, 2);  // (2, 3, 11, 10), strided
      auto [v, i] = max_pool2d_with_indices(x, {g.kh, g.kw}, {g.sh, g.sw}, {g.ph, g.pw},
                                            {g.dh, g.dw}, ceil_mode);
      auto [rv, ri] = max_pool2d_reference(x, g, ceil_mode);
      INFO("kernel (" << g.kh << ", " << g.kw << ") ceil_mode " << ceil_mode);
      CHECK(test::bitwise_equal(v, rv));
      CHECK(test::bitwise_equal(i, ri));
      auto [vc, ic] = max_pool2d_with_indices(x.contiguous(), {g.kh, g.kw}, {g.sh, g.sw},
                                              {g.ph, g.pw}, {g.dh, g.dw}, ceil_mode);
      CHECK(test::bitwise_equal(v, vc));
      ++cases;
    }
  CHECK(cases == 10);
  // float32 and half, unbatched.
  Tensor x = rnd({3, 7, 7}, 410);
  for (DType dt : {kFloat32, kFloat16, kBFloat16}) {
    Tensor y = max_pool2d(x.to(dt), 3, 2, 1);
    REQUIRE(y.dtype() == dt);
    CHECK(test::bitwise_equal(y, max_pool2d(x, 3, 2, 1).to(dt)));
  }
}

TEST_CASE("avg_pool2d: hand-computed and against PyTorch's rule over a grid") {
  Tensor x = arange(1, 17, kFloat64).reshape({1, 1, 4, 4});
  CHECK(values(avg_pool2d(x, 2)) == std::vector<double>{3.5, 5.5, 11.5, 13.5});
  // Padding 1, stride 2: corner window holds 1 input element of 4 positions.
  CHECK(values(avg_pool2d(x, 2, 2, 1)).front() == 0.25);
  CHECK(values(avg_pool2d(x, 2, 2, 1, false, false)).front() == 1.0);
  CHECK(values(avg_pool2d(x, 2, 2, 0, false, true, 3)).front() == 14.0 / 3);
  CHECK(values(avg_pool1d(tensor({{1.0, 2.0, 3.0, 4.0, 5.0}}, kFloat64), 2, 2, 0, true)) ==
        std::vector<double>{1.5, 3.5, 5});
  int cases = 0;
  uint64_t seed = 500;
  for (bool ceil_mode : {false, true})
    for (bool include_pad : {false, true})
      for (std::optional<int64_t> div : {std::optional<int64_t>(), std::optional<int64_t>(5)})
        for (const Geometry& g :
             {Geometry{3, 3, 2, 2, 1, 1, 1, 1}, Geometry{2, 3, 3, 2, 1, 1, 1, 1},
              Geometry{4, 2, 1, 2, 2, 0, 1, 1}}) {
          Tensor x2 = test::non_contiguous(rnd({2, 2, 9, 8}, ++seed));
          Tensor y =
              avg_pool2d(x2, {g.kh, g.kw}, {g.sh, g.sw}, {g.ph, g.pw}, ceil_mode, include_pad, div);
          CHECK(close(y, avg_pool2d_reference(x2, g, ceil_mode, include_pad, div)));
          ++cases;
        }
  CHECK(cases == 24);
  Tensor h = rnd({2, 5, 6}, 510);
  CHECK(close(avg_pool2d(h.to(kFloat16), 2), avg_pool2d(h, 2), 1e-3));
}

TEST_CASE("adaptive pooling: PyTorch's bins") {
  // H = 5 into 3 bins: [0, 2), [1, 4), [3, 5).
  Tensor x = arange(5, kFloat64).reshape({1, 1, 5});
  CHECK(values(adaptive_avg_pool1d(x, 3)) == std::vector<double>{0.5, 2.0, 3.5});
  auto [mv, mi] = adaptive_max_pool1d(x, 3);
  CHECK(values(mv) == std::vector<double>{1, 3, 4});
  CHECK(values(mi) == std::vector<double>{1, 3, 4});
  Tensor y = rnd({2, 3, 7, 10}, 600);
  for (int64_t oh : {1, 3, 7, 9})
    for (int64_t ow : {1, 4}) {
      Tensor a = adaptive_avg_pool2d(y, {oh, ow});
      auto [m, mi2] = adaptive_max_pool2d(y, {oh, ow});
      REQUIRE(a.sizes() == IntArrayRef({2, 3, oh, ow}));
      // Reference: slices and mean/amax per bin.
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          const int64_t h0 = i * 7 / oh, h1 = ((i + 1) * 7 + oh - 1) / oh;
          const int64_t w0 = j * 10 / ow, w1 = ((j + 1) * 10 + ow - 1) / ow;
          Tensor bin = y.slice(2, h0, h1).slice(3, w0, w1);
          CHECK(close(a.select(2, i).select(2, j), bin.mean({2, 3})));
          CHECK(close(m.select(2, i).select(2, j), bin.amax({2, 3})));
        }
    }
  CHECK(adaptive_avg_pool2d(y[0], 2).sizes() == IntArrayRef({3, 2, 2}));
}

TEST_CASE("pooling: errors name the op and the shapes") {
  Tensor x = rnd({1, 2, 4, 4}, 700);
  EMBER_CHECK_THROWS(max_pool2d(x, 2, 2, 2), ValueError, "[max_pool2d]", "padding", "(2, 2)");
  EMBER_CHECK_THROWS(max_pool2d(x, 5), ShapeError, "[max_pool2d]", "(1, 2, 4, 4)");
  EMBER_CHECK_THROWS(max_pool2d(x, 2, 0), ValueError, "[max_pool2d]", "stride");
  EMBER_CHECK_THROWS(max_pool2d(rnd({4, 4}, 1), 2), ShapeError, "[max_pool2d]", "(4, 4)");
  EMBER_CHECK_THROWS(max_pool2d(ones({1, 4, 4}, kInt64), 2), DTypeError, "[max_pool2d]", "int64");
  EMBER_CHECK_THROWS(avg_pool2d(x, 2, 2, 0, false, true, 0), ValueError, "[avg_pool2d]", "divisor");
  EMBER_CHECK_THROWS(avg_pool1d(rnd({2, 3}, 1), 4), ShapeError, "[avg_pool1d]", "(2, 3)");
  EMBER_CHECK_THROWS(adaptive_avg_pool2d(x, {0, 2}), ValueError, "[adaptive_avg_pool2d]", "(0, 2)");
  EMBER_CHECK_THROWS(adaptive_max_pool2d(zeros({1, 0, 3}, kFloat64), 2), ShapeError,
                     "[adaptive_max_pool2d]", "(1, 0, 3)");
}

// ---- upsampling ----

TEST_CASE("upsample_nearest: PyTorch's source indices") {
  Tensor x = arange(3, kFloat64).reshape({1, 1, 3});
  // 3 -> 5: scale 0.6, floor(0, 0.6, 1.2, 1.8, 2.4).
  CHECK(values(upsample_nearest1d(x, {5})) == std::vector<double>{0, 0, 1, 1, 2});
  // 3 -> 2: scale 1.5, floor(0, 1.5).
  CHECK(values(upsample_nearest1d(x, {2})) == std::vector<double>{0, 1});
  Tensor q = tensor({{1.0, 2.0}, {3.0, 4.0}}, kFloat64).reshape({1, 1, 2, 2});
  CHECK(values(upsample_nearest2d(q, {4, 4})) ==
        std::vector<double>{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  CHECK(values(upsample_nearest2d(q, {3, 2})) == std::vector<double>{1, 2, 1, 2, 3, 4});
  // A given scale factor is used as is: 3 * 1.7 -> 5 outputs, source floor(dst / 1.7).
  CHECK(values(interpolate(x, std::nullopt, std::vector<double>{1.7})) ==
        std::vector<double>{0, 0, 1, 1, 2});
  CHECK(values(interpolate(q, std::vector<int64_t>{4, 4})) ==
        values(upsample_nearest2d(q, {4, 4})));
}

TEST_CASE("upsample_bilinear2d: PyTorch's values for both align_corners") {
  Tensor q = tensor({{1.0, 2.0}, {3.0, 4.0}}, kFloat64).reshape({1, 1, 2, 2});
  Tensor a = upsample_bilinear2d(q, {4, 4}, false);
  CHECK(close(a, tensor({{1.0, 1.25, 1.75, 2.0},
                         {1.5, 1.75, 2.25, 2.5},
                         {2.5, 2.75, 3.25, 3.5},
                         {3.0, 3.25, 3.75, 4.0}},
                        kFloat64)
                     .reshape({1, 1, 4, 4})));
  Tensor b = upsample_bilinear2d(q, {4, 4}, true);
  const double t = 1.0 / 3;
  CHECK(close(b, tensor({{1.0, 1 + t, 2 - t, 2.0},
                         {1 + 2 * t, 2.0, 2 + t, 3 - t},
                         {3 - 2 * t, 3 - t, 3.0, 3 + t},
                         {3.0, 3 + t, 4 - t, 4.0}},
                        kFloat64)
                     .reshape({1, 1, 4, 4})));
  // Linear 1-D, downsampling 4 -> 3 (align_corners false): sources 1/6, 3/2, 17/6.
  Tensor l = upsample_linear1d(arange(4, kFloat64).reshape({1, 1, 4}), {3}, false);
  CHECK(close(l, tensor({{{1.0 / 6, 1.5, 17.0 / 6}}}, kFloat64)));
  CHECK(close(interpolate(q, std::nullopt, std::vector<double>{2.0}, "bilinear"), a));
  CHECK(close(interpolate(q, std::vector<int64_t>{4}, std::nullopt, "bilinear", true), b));
  // Against per-element interpolation on random input (float32 and odd sizes).
  Tensor x = rnd({2, 3, 5, 7}, 800, kFloat32);
  for (bool ac : {false, true}) {
    Tensor y = upsample_bilinear2d(test::non_contiguous(x), {8, 4}, ac);
    std::vector<double> xv = values(x), yv = values(y);
    for (int64_t oy = 0; oy < 8; ++oy)
      for (int64_t ox = 0; ox < 4; ++ox) {
        auto src = [&](int64_t o, int64_t in, int64_t out) {
          const float s = ac ? static_cast<float>(in - 1) / static_cast<float>(out - 1)
                             : static_cast<float>(in) / static_cast<float>(out);
          const float r =
              ac ? s * static_cast<float>(o) : s * (static_cast<float>(o) + 0.5f) - 0.5f;
          return std::max(r, 0.0f);
        };
        const float sy = src(oy, 5, 8), sx = src(ox, 7, 4);
        const int64_t y0 = static_cast<int64_t>(sy), x0 = static_cast<int64_t>(sx);
        const int64_t y1 = std::min<int64_t>(y0 + 1, 4), x1 = std::min<int64_t>(x0 + 1, 6);
        const double ly = sy - static_cast<float>(y0), lx = sx - static_cast<float>(x0);
        for (int64_t p = 0; p < 6; ++p) {
          auto at = [&](int64_t r, int64_t c) {
            return xv[static_cast<size_t>((p * 5 + r) * 7 + c)];
          };
          const double want = (1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) +
                              ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1));
          CHECK(std::abs(yv[static_cast<size_t>((p * 8 + oy) * 4 + ox)] - want) < 1e-5);
        }
      }
  }
  Tensor h = upsample_bilinear2d(x.to(kBFloat16), {8, 4}, false);
  CHECK(h.dtype() == kBFloat16);
  CHECK(
      close(h, upsample_bilinear2d(x.to(kBFloat16).to(kFloat32), {8, 4}, false).to(kBFloat16), 0));
}

TEST_CASE("upsampling: errors name the op and the shapes") {
  Tensor q = rnd({1, 1, 2, 2}, 900);
  EMBER_CHECK_THROWS(interpolate(q), ValueError, "[interpolate]", "size");
  EMBER_CHECK_THROWS(interpolate(q, std::vector<int64_t>{4}, std::vector<double>{2.0}), ValueError,
                     "[interpolate]");
  EMBER_CHECK_THROWS(interpolate(q, std::vector<int64_t>{4}, std::nullopt, "nearest", true),
                     ValueError, "[interpolate]", "align_corners");
  EMBER_CHECK_THROWS(interpolate(q, std::vector<int64_t>{4}, std::nullopt, "linear"), ShapeError,
                     "[interpolate]", "(1, 1, 2, 2)");
  EMBER_CHECK_THROWS(interpolate(q, std::vector<int64_t>{4}, std::nullopt, "cubic"), ValueError,
                     "[interpolate]", "cubic");
  EMBER_CHECK_THROWS(interpolate(rnd({2, 2}, 1), std::vector<int64_t>{4}), ShapeError,
                     "[interpolate]", "(2, 2)");
  EMBER_CHECK_THROWS(upsample_nearest2d(q, {4}), ValueError, "[upsample_nearest2d]", "(4,)");
  EMBER_CHECK_THROWS(upsample_bilinear2d(q, {4, 0}, false), ValueError, "[upsample_bilinear2d]",
                     "(4, 0)");
  EMBER_CHECK_THROWS(upsample_nearest2d(ones({1, 1, 2, 2}, kInt64), {4, 4}), DTypeError,
                     "[upsample_nearest2d]", "int64");
}
