// The direct convolution kernels (src/core/cpu/conv_direct.cpp) against unfold + matmul and a
// scatter reference on fresh random inputs: odd channel counts that fill no tile, odd image
// sizes, strides 1-3, padding, dilation, non-contiguous inputs, batches smaller and larger than
// the thread count, more taps than one pass takes (KC), GEMMs of 1-3 rows (the narrow tiles),
// both instruction sets and 1-3 threads; and the backward of conv2d and conv_transpose2d (the
// kernels first order, the ops under create_graph) against each other.
#include <cmath>
#include <vector>

#include "core/cpu/gemm_kernels.hpp"
#include "core/kernels.hpp"
#include "test_util.hpp"

using namespace ember;
using test::rel_err;

namespace {

Tensor rnd(IntArrayRef sizes, uint64_t seed, DType dt) {
  Generator g(seed);
  Tensor t = empty(sizes, kFloat64);
  uniform_(t, -1.0, 1.0, g);
  return t.to(dt);
}

struct Case {
  int64_t N, C, O, H, W;
  Window2d w;
};

// (kh, kw, dh, dw, ph, pw, sh, sw)
const Case kCases[] = {
    {3, 5, 13, 9, 11, Window2d{3, 3, 1, 1, 1, 1, 1, 1}},     // O fills no tile
    {1, 3, 17, 28, 28, Window2d{3, 3, 1, 1, 1, 1, 1, 1}},    // batch < threads
    {4, 16, 16, 14, 14, Window2d{3, 3, 1, 1, 1, 1, 2, 2}},   // ResNet downsampling
    {2, 6, 9, 13, 10, Window2d{4, 4, 1, 1, 1, 1, 2, 2}},     // DCGAN-style 4x4 stride 2
    {2, 4, 5, 17, 19, Window2d{3, 2, 2, 1, 2, 0, 2, 3}},     // dilation, asymmetric stride
    {3, 2, 7, 12, 11, Window2d{1, 1, 1, 1, 0, 0, 2, 2}},     // 1x1 stride 2
    {2, 3, 4, 5, 6, Window2d{5, 5, 1, 1, 2, 2, 1, 1}},       // kernel as large as the image
    {2, 70, 12, 7, 7, Window2d{3, 3, 1, 1, 1, 1, 1, 1}},     // 630 taps: two passes of KC
    {2, 1, 8, 10, 9, Window2d{3, 3, 1, 1, 0, 0, 3, 1}},      // one channel, stride 3, no padding
    {2, 3, 1, 14, 14, Window2d{4, 4, 1, 1, 1, 1, 2, 2}},     // one output channel (1-row tile)
    {3, 2, 2, 9, 8, Window2d{3, 3, 1, 1, 1, 1, 1, 1}},       // two rows each way
    {3, 5, 13, 7, 7, Window2d{3, 3, 1, 1, 1, 1, 1, 1}},      // 7x7: the wide tile, 13 rows
    {2, 7, 11, 14, 14, Window2d{4, 4, 1, 1, 1, 1, 2, 2}},    // 14 -> 7 stride 2: wide both ways
};

int64_t out_size(int64_t in, int64_t k, int64_t d, int64_t p, int64_t s) {
  return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

/// gx (N, C, H, W) float64 = every dY element scattered through the taps (nested loops).
Tensor input_grad_reference(const Tensor& dy, const Tensor& weight, int64_t C, int64_t H,
                            int64_t W, const Window2d& w) {
  const int64_t N = dy.size(0), O = dy.size(1), OH = dy.size(2), OW = dy.size(3);
  const std::vector<double> y = test::values(dy), k = test::values(weight);
  std::vector<double> gx(static_cast<size_t>(N * C * H * W), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow)
          for (int64_t c = 0; c < C; ++c)
            for (int64_t r = 0; r < w.kh; ++r)
              for (int64_t s = 0; s < w.kw; ++s) {
                const int64_t iy = oh * w.sh - w.ph + r * w.dh, ix = ow * w.sw - w.pw + s * w.dw;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                gx[static_cast<size_t>(((n * C + c) * H + iy) * W + ix)] +=
                    y[static_cast<size_t>(((n * O + o) * OH + oh) * OW + ow)] *
                    k[static_cast<size_t>((o * C + c) * w.kh * w.kw + r * w.kw + s)];
              }
  return tensor(gx, kFloat64).reshape({N, C, H, W});
}

}  // namespace

TEST_CASE("conv2d_direct matches unfold + matmul, bitwise across threads and ISAs") {
  const int saved = get_num_threads();
  const cpu::GemmIsa saved_isa = cpu::gemm_isa();
  uint64_t seed = 4100;
  for (const Case& c : kCases)
    for (DType dt : {kFloat32, kFloat64}) {
      const Window2d& w = c.w;
      const int64_t OH = out_size(c.H, w.kh, w.dh, w.ph, w.sh);
      const int64_t OW = out_size(c.W, w.kw, w.dw, w.pw, w.sw);
      const int64_t K = c.C * w.kh * w.kw;
      INFO("N " << c.N << " C " << c.C << " O " << c.O << " H " << c.H << " W " << c.W << " "
                << dt);
      Tensor x = test::non_contiguous(rnd({c.N, c.C, c.H, c.W}, ++seed, dt));
      Tensor weight = rnd({c.O, K}, ++seed, dt), bias = rnd({c.O}, ++seed, dt);
      Tensor cols = unfold(x.to(kFloat64), {w.kh, w.kw}, {w.dh, w.dw}, {w.ph, w.pw}, {w.sh, w.sw});
      const Tensor ref = matmul(weight.to(kFloat64), cols).reshape({c.N, c.O, OH, OW}) +
                         bias.to(kFloat64).reshape({c.O, 1, 1});
      Tensor first;
      for (cpu::GemmIsa isa : {cpu::GemmIsa::Baseline, cpu::GemmIsa::Avx512}) {
        if (!cpu::gemm_isa_available(isa)) continue;
        cpu::set_gemm_isa(isa);
        for (int threads : {1, 2, 3}) {
          set_num_threads(threads);
          Tensor out = full({c.N, c.O, OH, OW}, std::nan(""), TensorOptions(dt));  // poisoned
          cpu::conv2d_direct(out, x, weight, bias, w);
          if (!first.defined()) {
            first = out;
            CHECK(rel_err(out, ref) < (dt == kFloat32 ? 1e-5 : 1e-13));
          } else {
            CHECK(test::bitwise_equal(out, first));
          }
        }
      }
      cpu::set_gemm_isa(saved_isa);
      set_num_threads(saved);
      // Without a bias, and a non-contiguous weight.
      Tensor out = empty({c.N, c.O, OH, OW}, TensorOptions(dt));
      cpu::conv2d_direct(out, x, test::non_contiguous(weight), Tensor(), w);
      CHECK(rel_err(out, ref - bias.to(kFloat64).reshape({c.O, 1, 1})) <
            (dt == kFloat32 ? 1e-5 : 1e-13));
    }
}

TEST_CASE("conv2d_direct_weight_grad matches the sum over samples, bitwise across threads, ISAs") {
  const int saved = get_num_threads();
  const cpu::GemmIsa saved_isa = cpu::gemm_isa();
  uint64_t seed = 4200;
  for (const Case& c : kCases)
    for (DType dt : {kFloat32, kFloat64}) {
      const Window2d& w = c.w;
      const int64_t OH = out_size(c.H, w.kh, w.dh, w.ph, w.sh);
      const int64_t OW = out_size(c.W, w.kw, w.dw, w.pw, w.sw), L = OH * OW;
      const int64_t K = c.C * w.kh * w.kw;
      INFO("N " << c.N << " C " << c.C << " O " << c.O << " H " << c.H << " W " << c.W << " "
                << dt);
      Tensor x = test::non_contiguous(rnd({c.N, c.C, c.H, c.W}, ++seed, dt));
      Tensor dy = rnd({c.N, c.O, OH, OW}, ++seed, dt).transpose(2, 3).contiguous().transpose(2, 3);
      Tensor cols = unfold(x.to(kFloat64), {w.kh, w.kw}, {w.dh, w.dw}, {w.ph, w.pw}, {w.sh, w.sw});
      const Tensor ref = matmul(dy.to(kFloat64).reshape({c.N, c.O, L}), cols.transpose(1, 2))
                             .sum({0});  // (O, K)
      Tensor first;  // one fma chain per element in a fixed order: equal across ISAs too
      for (cpu::GemmIsa isa : {cpu::GemmIsa::Baseline, cpu::GemmIsa::Avx512}) {
        if (!cpu::gemm_isa_available(isa)) continue;
        cpu::set_gemm_isa(isa);
        for (int threads : {1, 2, 3}) {
          set_num_threads(threads);
          Tensor gw = full({c.O, K}, std::nan(""), TensorOptions(dt));
          cpu::conv2d_direct_weight_grad(gw, dy, x, w);
          if (!first.defined()) {
            first = gw;
            CHECK(rel_err(gw, ref) < (dt == kFloat32 ? 2e-5 : 1e-12));
          } else {
            CHECK(test::bitwise_equal(gw, first));
          }
        }
      }
      cpu::set_gemm_isa(saved_isa);
      set_num_threads(saved);
    }
  // More samples than one chunk holds (16 chunks of 8+): the chunk partials add in order. 37
  // output channels: two-vector and one-vector tiles, and padded channels.
  Tensor x = rnd({137, 3, 6, 5}, 4290, kFloat64), dy = rnd({137, 37, 6, 5}, 4291, kFloat64);
  const Window2d w{3, 3, 1, 1, 1, 1, 1, 1};
  Tensor gw = empty({37, 27}, TensorOptions(kFloat64));
  cpu::conv2d_direct_weight_grad(gw, dy, x, w);
  Tensor cols = unfold(x, 3, 1, 1, 1);
  CHECK(rel_err(gw, matmul(dy.reshape({137, 37, 30}), cols.transpose(1, 2)).sum({0})) < 1e-12);
  // Samples too large for one tile call per chunk (dY^T of 64 x 48x48 doubles is 1.2 MB: groups
  // of 3 in a chunk of 8): each group continues the chunk's fma chains.
  Tensor xl = rnd({8, 1, 48, 48}, 4292, kFloat64), dyl = rnd({8, 64, 48, 48}, 4293, kFloat64);
  Tensor gwl = empty({64, 9}, TensorOptions(kFloat64));
  cpu::conv2d_direct_weight_grad(gwl, dyl, xl, w);
  Tensor colsl = unfold(xl, 3, 1, 1, 1);
  CHECK(rel_err(gwl, matmul(dyl.reshape({8, 64, 2304}), colsl.transpose(1, 2)).sum({0})) < 1e-12);
}

TEST_CASE("conv2d_direct_input_grad matches the scatter reference, bitwise across threads, ISAs") {
  const int saved = get_num_threads();
  const cpu::GemmIsa saved_isa = cpu::gemm_isa();
  uint64_t seed = 4400;
  for (const Case& c : kCases)
    for (int64_t extra : {0, 1})  // extra: an input larger than the windows cover
      for (DType dt : {kFloat32, kFloat64}) {
        const Window2d& w = c.w;
        const int64_t H = c.H + extra, W = c.W + extra;
        const int64_t OH = out_size(c.H, w.kh, w.dh, w.ph, w.sh);
        const int64_t OW = out_size(c.W, w.kw, w.dw, w.pw, w.sw);
        const int64_t K = c.C * w.kh * w.kw;
        INFO("N " << c.N << " C " << c.C << " O " << c.O << " H " << H << " W " << W << " "
                  << dt);
        Tensor dy = test::non_contiguous(rnd({c.N, c.O, OH, OW}, ++seed, dt));
        Tensor weight = rnd({c.O, K}, ++seed, dt);
        const Tensor ref = input_grad_reference(dy, weight, c.C, H, W, w);
        Tensor first;
        for (cpu::GemmIsa isa : {cpu::GemmIsa::Baseline, cpu::GemmIsa::Avx512}) {
          if (!cpu::gemm_isa_available(isa)) continue;
          cpu::set_gemm_isa(isa);
          for (int threads : {1, 2, 3}) {
            set_num_threads(threads);
            Tensor gx = full({c.N, c.C, H, W}, std::nan(""), TensorOptions(dt));  // poisoned
            cpu::conv2d_direct_input_grad(gx, dy, weight, w);
            if (!first.defined()) {
              first = gx;
              CHECK(rel_err(gx, ref) < (dt == kFloat32 ? 1e-5 : 1e-13));
            } else {
              CHECK(test::bitwise_equal(gx, first));
            }
          }
        }
        cpu::set_gemm_isa(saved_isa);
        set_num_threads(saved);
      }
}

TEST_CASE("conv_transpose2d backward: the kernels (first order) equal the ops (create_graph)") {
  uint64_t seed = 4500;
  struct T {
    int64_t N, Cin, Cout, H, W;
    Window2d w;
    int64_t oph, opw;
  };
  // (kh, kw, dh, dw, ph, pw, sh, sw): DCGAN's 4x4 stride 2, output padding, dilation.
  const T cases[] = {{3, 8, 5, 4, 4, Window2d{4, 4, 1, 1, 1, 1, 2, 2}, 0, 0},
                     {2, 3, 7, 5, 6, Window2d{3, 3, 1, 1, 1, 1, 2, 2}, 1, 1},
                     {2, 4, 3, 6, 5, Window2d{3, 2, 2, 1, 1, 0, 1, 3}, 0, 2},
                     {1, 5, 9, 1, 1, Window2d{4, 4, 1, 1, 0, 0, 1, 1}, 0, 0}};
  for (const T& c : cases) {
    const Window2d& w = c.w;
    INFO("N " << c.N << " Cin " << c.Cin << " Cout " << c.Cout << " stride " << w.sh << "x" << w.sw);
    Tensor x = rnd({c.N, c.Cin, c.H, c.W}, ++seed, kFloat64).requires_grad_(true);
    Tensor weight = rnd({c.Cin, c.Cout, w.kh, w.kw}, ++seed, kFloat64).requires_grad_(true);
    Tensor y = conv_transpose2d(x, weight, {}, {w.sh, w.sw}, {w.ph, w.pw}, {c.oph, c.opw}, 1,
                                {w.dh, w.dw});
    Tensor dy = rnd(y.sizes(), ++seed, kFloat64);
    const std::vector<Tensor> kern = autograd::grad({y}, {x, weight}, {dy}, true, false);
    const std::vector<Tensor> ops = autograd::grad({y}, {x, weight}, {dy}, true, true);
    for (size_t i = 0; i < 2; ++i) CHECK(rel_err(kern[i], ops[i].detach()) < 1e-12);
    // The adjoint identity <conv_transpose2d(x), dy> = <x, conv2d(dy)>.
    Tensor back = conv2d(dy, weight.detach(), {}, {w.sh, w.sw}, {w.ph, w.pw}, {w.dh, w.dw})
                      .slice(2, 0, c.H)
                      .slice(3, 0, c.W);
    CHECK(std::abs((y.detach() * dy).sum().item<double>() -
                   (x.detach() * back).sum().item<double>()) < 1e-10);
  }
}

TEST_CASE("conv2d backward: the kernels (first order) equal the ops (create_graph)") {
  uint64_t seed = 4300;
  for (const Case& c : kCases) {
    const Window2d& w = c.w;
    INFO("N " << c.N << " C " << c.C << " O " << c.O << " stride " << w.sh << "x" << w.sw);
    Tensor x = rnd({c.N, c.C, c.H, c.W}, ++seed, kFloat64).requires_grad_(true);
    Tensor weight = rnd({c.O, c.C, w.kh, w.kw}, ++seed, kFloat64).requires_grad_(true);
    Tensor bias = rnd({c.O}, ++seed, kFloat64).requires_grad_(true);
    Tensor y = conv2d(x, weight, bias, {w.sh, w.sw}, {w.ph, w.pw}, {w.dh, w.dw});
    Tensor dy = rnd(y.sizes(), ++seed, kFloat64);
    const std::vector<Tensor> kern = autograd::grad({y}, {x, weight, bias}, {dy}, true, false);
    const std::vector<Tensor> ops = autograd::grad({y}, {x, weight, bias}, {dy}, true, true);
    for (size_t i = 0; i < 3; ++i) CHECK(rel_err(kern[i], ops[i].detach()) < 1e-12);
    CHECK(ops[1].requires_grad());  // the create_graph gradient is itself differentiable
  }
}
