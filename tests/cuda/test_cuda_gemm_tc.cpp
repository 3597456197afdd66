// The tensor-core GEMM (src/cuda/gemm_tc.cu) against a float64 CPU reference computed from the
// same bfloat16/float16 inputs: odd shapes (M and N multiples of no tile, K a multiple of 8 but
// not of the 32-deep slab), both B layouts (a Linear weight (N, K) read transposed, and row-major
// (K, N)), lda wider than K, batches (broadcast too), and every epilogue part (alpha, beta with
// out's old values, bias, ReLU/GELU/GELU-tanh, residual) into strided outputs that start
// poisoned; each tile configuration (set_gemm_tc_config: 1, 0, 2 (wgmma), 3 (TMA + wgmma,
// warp-specialised), 5 (its ping-pong form) and 6 (5 in clusters of two blocks sharing B by TMA
// multicast; tiles wholly past M in the last cluster's unit) on sm_90a, 4-6 (persistent) on more
// tiles than SMs; the emulator models wgmma, TMA, mbarriers and clusters). float32
// on TF32 (cuda::set_allow_tf32): against float64 on the inputs rounded as cvt.rna.tf32 rounds
// them (float32 accuracy) and on the exact inputs (TF32 accuracy, 2e-3 of the largest |value|).
// Tolerance: one rounding of the output dtype relative (test::tolerance), plus 1e-3 of that
// times the largest |reference| for sums that cancel. The output cast (16-bit operands into a
// float32 out, mm/bmm/addmm's out_dtype) is held to float32 accumulation's bound (close_f32).
// Layouts the kernel does not take return false and leave out untouched; matmul on 16-bit CUDA
// tensors goes through it. Without a GPU each case prints "skipped".
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/kernels.hpp"
#include "cuda/cuda_test_util.hpp"
#include "ember/cuda/cuda.hpp"
#include "ember/ember.hpp"

using namespace ember;
using ember::test::gpu;

namespace {

const Device cu(kCUDA);

/// out = act(alpha a @ b + beta old + bias) + residual in float64 on the CPU.
Tensor reference(const Tensor& a, const Tensor& b, const GemmEpilogue& e, const Tensor& old) {
  auto f64 = [](const Tensor& t) { return t.cpu().to(kFloat64); };
  Tensor v = matmul(f64(a), f64(b)) * e.alpha;
  if (e.beta != 0.0) v = v + f64(old) * e.beta;
  if (e.bias.defined()) v = v + f64(e.bias);
  switch (e.act) {
    case GemmAct::kNone:
      break;
    case GemmAct::kRelu:
      v = relu(v);
      break;
    case GemmAct::kGelu:
      v = gelu(v);
      break;
    case GemmAct::kGeluTanh:
      v = gelu(v, "tanh");
      break;
  }
  if (e.residual.defined()) v = v + f64(e.residual);
  return v;
}

/// got (any device, 16-bit) agrees with the float64 reference as the file's comment says.
bool close(const Tensor& got, const Tensor& ref, DType dt) {
  const std::vector<double> x = test::values(got.cpu().to(kFloat64)), y = test::values(ref);
  if (x.size() != y.size()) return false;
  double scale = 0;
  for (double v : y) scale = std::max(scale, std::abs(v));
  const double r = test::tolerance(dt);
  for (size_t i = 0; i < x.size(); ++i) {
    if (!(std::abs(x[i] - y[i]) <= r * std::abs(y[i]) + 1e-3 * r * scale)) {
      UNSCOPED_INFO("element " << i << ": got " << x[i] << ", expected " << y[i]);
      return false;
    }
  }
  return true;
}

Tensor rnd(IntArrayRef shape, DType dt, Generator& g) { return randn(shape, g).to(dt).to(cu); }

/// got (float32, the output cast) agrees with the float64 reference to float32 accumulation:
/// |got - ref| <= 2^-24 (2 K + 16) bound + 2^-22 |ref|, bound the reference's sum of absolute
/// terms (|alpha| |a| @ |b| + |beta old| + |bias| + |residual|). A rounding to 16 bits anywhere
/// is hundreds of times larger.
bool close_f32(const Tensor& got, const Tensor& a, const Tensor& b, const GemmEpilogue& e,
               const Tensor& old) {
  if (got.dtype() != kFloat32) return false;
  auto abs64 = [](const Tensor& t) { return t.defined() ? abs(t.cpu().to(kFloat64)) : t; };
  GemmEpilogue ea;
  ea.alpha = std::abs(e.alpha);
  ea.beta = std::abs(e.beta);
  ea.bias = abs64(e.bias);
  ea.residual = abs64(e.residual);
  const Tensor ref = reference(a, b, e, old);
  const std::vector<double> x = test::values(got.cpu().to(kFloat64)), y = test::values(ref),
                            m = test::values(reference(abs64(a), abs64(b), ea, abs64(old)));
  const double u = std::ldexp(1.0, -24), K = static_cast<double>(a.size(2));
  for (size_t i = 0; i < x.size(); ++i) {
    if (!(std::abs(x[i] - y[i]) <= u * (2 * K + 16) * m[i] + 4 * u * std::abs(y[i]))) {
      UNSCOPED_INFO("element " << i << ": got " << x[i] << ", expected " << y[i]);
      return false;
    }
  }
  return true;
}

const char* act_name(GemmAct a) {
  switch (a) {
    case GemmAct::kNone:
      return "none";
    case GemmAct::kRelu:
      return "relu";
    case GemmAct::kGelu:
      return "gelu";
    case GemmAct::kGeluTanh:
      return "gelu_tanh";
  }
  return "?";
}

}  // namespace

TEST_CASE("cuda gemm_tc: odd shapes, both B layouts, against float64") {
  if (!gpu()) return;
  Generator g(9001);
  struct Shape {
    int64_t M, N, K;
  };
  const Shape shapes[] = {{1, 8, 8},      {37, 72, 40},   {130, 136, 264},
                          {257, 120, 96}, {128, 128, 32}, {300, 264, 1032}};
  for (int config : {1, 0, 2, 3, 5, 6}) {
    cuda::set_gemm_tc_config(config);
    for (DType dt : {kBFloat16, kFloat16}) {
      for (const Shape& s : shapes) {
        for (bool weight_layout : {true, false}) {
          INFO("config " << config << " " << dt << " M=" << s.M << " N=" << s.N << " K=" << s.K
                         << (weight_layout ? " B=(N,K)^T" : " B=(K,N)"));
          const Tensor a = rnd({1, s.M, s.K}, dt, g);
          const Tensor b =
              weight_layout ? rnd({1, s.N, s.K}, dt, g).transpose(1, 2) : rnd({1, s.K, s.N}, dt, g);
          Tensor out = empty({1, s.M, s.N}, TensorOptions(dt).device(cu));  // poisoned
          GemmEpilogue e;
          REQUIRE(cuda::gemm_tc(out, a, b, e));
          CHECK(close(out, reference(a, b, e, Tensor()), dt));
        }
      }
    }
  }
  cuda::set_gemm_tc_config(-1);
}

TEST_CASE("cuda gemm_tc: every configuration reads an M-contiguous A (dY^T) in place") {
  // The TMA configurations (3 5 6) read it through M-major tensor maps, the mma.sync ones (0, 1,
  // and 2, which falls back to 1) through k-row stages and ldmatrix .trans, with a chunk reaching
  // past M copied in part.
  if (!gpu()) return;
  Generator g(9006);
  struct Shape {
    int64_t M, N, K, lda;
  };
  // M not a multiple of 64, K not of 64 (nor of 8 where B is (K, N): A's and B's K is then
  // their row count), N past one tile; M = 51 and 13: rows of a wider A (lda 56, 16), so the
  // last chunk of each k row holds 3 and 5 columns inside M.
  const Shape shapes[] = {{40, 72, 40, 40}, {136, 264, 136, 136}, {200, 56, 64, 200},
                          {48, 64, 37, 48}, {51, 136, 72, 56},    {13, 24, 19, 16}};
  for (int config : {3, 5, 6, 0, 1, 2, -1}) {
    cuda::set_gemm_tc_config(config);
    const bool tma = config >= 3;
    for (DType dt : {kBFloat16, kFloat16})
      for (const Shape& s : shapes)
        for (bool weight_layout : {true, false}) {
          INFO("config " << config << " " << dt << " M=" << s.M << " N=" << s.N << " K=" << s.K
                         << " lda=" << s.lda << (weight_layout ? " B=(N,K)^T" : " B=(K,N)"));
          const Tensor a = rnd({2, s.K, s.lda}, dt, g).narrow(2, 0, s.M).transpose(1, 2);
          // A weight-layout B with K not whole chunks: rows of a wider (N, 8 ceil(K / 8)) B.
          const int64_t ldb = (s.K + 7) / 8 * 8;
          const Tensor b = weight_layout
                               ? rnd({2, s.N, ldb}, dt, g).narrow(2, 0, s.K).transpose(1, 2)
                               : rnd({2, s.K, s.N}, dt, g);
          Tensor out = rnd({2, s.M, s.N}, dt, g);
          const Tensor old = out.clone();
          GemmEpilogue e;
          e.bias = rnd({s.N}, dt, g);
          e.alpha = 0.5, e.beta = 1.0;
          if (tma || !weight_layout || s.K % 8 == 0) {
            REQUIRE(cuda::gemm_tc(out, a, b, e));
            CHECK(close(out, reference(a, b, e, old), dt));
          } else {  // the mma.sync kernels: B's last chunk would read past K: declined, untouched
            CHECK_FALSE(cuda::gemm_tc(out, a, b, e));
            CHECK(test::bitwise_equal(out.cpu(), old.cpu()));
          }
        }
  }
  cuda::set_gemm_tc_config(-1);
}

TEST_CASE("cuda gemm_tc: configurations 4-6 (persistent) walk several tiles per block") {
  if (!gpu()) return;
  Generator g(9007);
  // 34 batches of 2 x 2 tiles of 128 x 256 (configuration 4): 136 items for the GPU's SMs (132 on
  // an H100/H200, and the emulator's), so some blocks take two items, each 3 slabs deep: the
  // stages' phases run on across items (3 slabs a tile against 4 stages). Configuration 5's
  // 128 x 128 tiles make 272 items: every block takes two or three, so both of its consumer
  // warpgroups work (ping-pong), one of them twice, on slabs interleaved in the 6-stage ring.
  // Configuration 6: 102 units of two vertically adjacent tiles for 66 clusters of two blocks.
  // Both operand layouts of each side.
  const int64_t Bt = 34, M = 136, N = 264, K = 136;
  for (const int config : {4, 5, 6}) {
    cuda::set_gemm_tc_config(config);
    for (const bool transposed : {false, true}) {
      const DType dt = transposed ? kFloat16 : kBFloat16;
      INFO("config " << config << " " << dt
                     << (transposed ? " A (M, K) M-contiguous, B (K, N)" : " A (M, K), B=(N,K)^T"));
      const Tensor a =
          transposed ? rnd({Bt, K, M}, dt, g).transpose(1, 2) : rnd({Bt, M, K}, dt, g);
      const Tensor b =
          transposed ? rnd({Bt, K, N}, dt, g) : rnd({Bt, N, K}, dt, g).transpose(1, 2);
      Tensor out = empty({Bt, M, N}, TensorOptions(dt).device(cu));  // poisoned
      GemmEpilogue e;
      e.bias = rnd({N}, dt, g);
      REQUIRE(cuda::gemm_tc(out, a, b, e));
      CHECK(close(out, reference(a, b, e, Tensor()), dt));
    }
  }
  cuda::set_gemm_tc_config(-1);
}

TEST_CASE("cuda gemm_tc: every epilogue part, strided outputs, batches") {
  if (!gpu()) return;
  Generator g(9002);
  const int64_t Bt = 3, M = 75, N = 200, K = 72;
  for (int config : {1, 0, 2, 3, 5, 6})
    for (DType dt : {kBFloat16, kFloat16}) {
      cuda::set_gemm_tc_config(config);
      // A rows 80 apart (lda > K), B a broadcast weight (batch stride 0).
      const Tensor a_buf = rnd({Bt, M, 80}, dt, g);
      const Tensor a = a_buf.narrow(2, 0, K);
      const Tensor w = rnd({N, K}, dt, g);
      const Tensor b = w.t().unsqueeze(0).expand({Bt, K, N});
      for (GemmAct act : {GemmAct::kNone, GemmAct::kRelu, GemmAct::kGelu, GemmAct::kGeluTanh}) {
        for (int parts = 0; parts < 8; ++parts) {  // bias, residual, alpha/beta: each on or off
          INFO("config " << config << " " << dt << " act " << act_name(act) << " parts " << parts);
          GemmEpilogue e;
          e.act = act;
          if (parts & 1) e.bias = rnd({N}, dt, g);
          if (parts & 2) e.residual = rnd({Bt, M, N}, dt, g);
          if (parts & 4) e.alpha = 0.5, e.beta = -1.5;
          // out: a transposed view of an (N, M) buffer per batch, old values random
          Tensor out = rnd({Bt, N, M}, dt, g).transpose(1, 2);
          const Tensor old = out.clone();
          REQUIRE(cuda::gemm_tc(out, a, b, e));
          CHECK(close(out, reference(a, b, e, old), dt));
        }
      }
    }
  cuda::set_gemm_tc_config(-1);
}

TEST_CASE("cuda gemm_tc: the output cast, 16-bit operands into float32 with every epilogue part") {
  if (!gpu()) return;
  Generator g(9010);
  const int64_t Bt = 2, M = 75, N = 136, K = 72;
  for (int config : {1, 0, 2, 3, 5, 6})
    for (DType dt : {kBFloat16, kFloat16}) {
      cuda::set_gemm_tc_config(config);
      const Tensor a = rnd({Bt, M, K}, dt, g);
      const Tensor b = rnd({Bt, N, K}, dt, g).transpose(1, 2);  // a weight's layout
      for (GemmAct act : {GemmAct::kNone, GemmAct::kGeluTanh}) {
        for (int parts : {0, 3, 7}) {  // bias, residual (float32), alpha/beta
          INFO("config " << config << " " << dt << " act " << act_name(act) << " parts " << parts);
          GemmEpilogue e;
          e.act = act;
          if (parts & 1) e.bias = rnd({N}, kFloat32, g);
          if (parts & 2) e.residual = rnd({Bt, M, N}, kFloat32, g);
          if (parts & 4) e.alpha = 0.5, e.beta = -1.5;
          // out: float32, a transposed view, old values random (beta) or poisoned
          Tensor out = (parts & 4) ? rnd({Bt, N, M}, kFloat32, g).transpose(1, 2)
                                   : empty({Bt, M, N}, TensorOptions(kFloat32).device(cu));
          const Tensor old = out.clone();
          REQUIRE(cuda::gemm_tc(out, a, b, e));
          CHECK(close_f32(out, a, b, e, old));
          // Not rounded to 16 bits: some element is no 16-bit value.
          CHECK_FALSE(test::bitwise_equal(out.cpu(), out.cpu().to(dt).to(kFloat32)));
        }
      }
    }
  cuda::set_gemm_tc_config(-1);
  // Epilogue tensors of the operands' dtype, or an out of a third dtype, are declined.
  const Tensor a = rnd({1, 40, 64}, kBFloat16, g), b = rnd({1, 64, 48}, kBFloat16, g);
  Tensor out = zeros({1, 40, 48}, TensorOptions(kFloat32).device(cu));
  GemmEpilogue bias16;
  bias16.bias = rnd({48}, kBFloat16, g);
  CHECK_FALSE(cuda::gemm_tc(out, a, b, bias16));
  Tensor out16 = zeros({1, 40, 48}, TensorOptions(kFloat16).device(cu));
  CHECK_FALSE(cuda::gemm_tc(out16, a, b, GemmEpilogue()));
  CHECK(equal(out.cpu(), zeros({1, 40, 48})));
  CHECK(equal(out16.cpu(), zeros({1, 40, 48}, TensorOptions(kFloat16))));
}

TEST_CASE("cuda mm, bmm, addmm with out_dtype float32, and addmm's input fused in the epilogue") {
  if (!gpu()) return;
  Generator g(9011);
  for (DType dt : {kBFloat16, kFloat16}) {
    INFO(dt);
    const Tensor a = rnd({3, 37, 96}, dt, g), w = rnd({130, 96}, dt, g);
    const Tensor b = w.t().unsqueeze(0).expand({3, 96, 130});
    // mm and bmm: one tensor-core GEMM storing float32, bitwise gemm_tc's output cast.
    const Tensor y = bmm(a, b, kFloat32);
    REQUIRE(y.dtype() == kFloat32);
    Tensor direct = empty({3, 37, 130}, TensorOptions(kFloat32).device(cu));
    REQUIRE(cuda::gemm_tc(direct, a, b, GemmEpilogue()));
    CHECK(test::bitwise_equal(y.cpu(), direct.cpu()));
    CHECK(close_f32(y, a, b, GemmEpilogue(), Tensor()));
    const Tensor y2 = mm(a[1], w.t(), kFloat32);
    CHECK(test::bitwise_equal(y2.cpu(), direct[1].cpu()));
    // A layout the tensor cores decline (K = 60 is no multiple of 8): the widened operands.
    const Tensor a60 = a.narrow(2, 0, 60), b60 = b.narrow(1, 0, 60);
    const Tensor y60 = bmm(a60, b60, kFloat32);
    CHECK(close_f32(y60, a60, b60, GemmEpilogue(), Tensor()));
    // addmm: a float32 bias row, or a float32 residual, added in the epilogue (bitwise gemm_tc
    // with the bias or the residual); alpha scales the product.
    const Tensor bias = rnd({130}, kFloat32, g), res = rnd({37, 130}, kFloat32, g);
    GemmEpilogue eb;
    eb.bias = bias;
    eb.alpha = 0.5;
    REQUIRE(cuda::gemm_tc(direct.narrow(0, 0, 1), a.narrow(0, 0, 1), b.narrow(0, 0, 1), eb));
    CHECK(test::bitwise_equal(addmm(bias, a[0], w.t(), kFloat32, 1, 0.5).cpu(), direct[0].cpu()));
    GemmEpilogue er;
    er.residual = res.unsqueeze(0);
    REQUIRE(cuda::gemm_tc(direct.narrow(0, 0, 1), a.narrow(0, 0, 1), b.narrow(0, 0, 1), er));
    CHECK(test::bitwise_equal(addmm(res, a[0], w.t(), kFloat32).cpu(), direct[0].cpu()));
    CHECK(close_f32(addmm(res, a[0], w.t(), kFloat32).unsqueeze(0), a.narrow(0, 0, 1),
                    b.narrow(0, 0, 1), er, Tensor()));
    // beta != 1 takes the copy into out and the product's beta: the same sum, within float32.
    GemmEpilogue ebeta;
    ebeta.beta = 2.0;
    const Tensor z = addmm(res, a[0], w.t(), kFloat32, 2.0);
    CHECK(close_f32(z.unsqueeze(0), a.narrow(0, 0, 1), b.narrow(0, 0, 1), ebeta, res.unsqueeze(0)));
    // The same routes in 16 bits: a Linear's addmm(bias, x, W^T) is one GEMM.
    const Tensor bias16 = rnd({130}, dt, g);
    GemmEpilogue e16;
    e16.bias = bias16;
    Tensor direct16 = empty({1, 37, 130}, TensorOptions(dt).device(cu));
    REQUIRE(cuda::gemm_tc(direct16, a.narrow(0, 0, 1), b.narrow(0, 0, 1), e16));
    CHECK(test::bitwise_equal(addmm(bias16, a[0], w.t()).cpu(), direct16[0].cpu()));
    const Tensor res3 = rnd({3, 37, 130}, kFloat32, g);
    GemmEpilogue e3;
    e3.residual = res3;
    REQUIRE(cuda::gemm_tc(direct, a, b, e3));
    CHECK(test::bitwise_equal(baddbmm(res3, a, b, kFloat32).cpu(), direct.cpu()));
    // One (M, N) input for every batch: the residual read with batch stride 0.
    e3.residual = res.unsqueeze(0).expand({3, 37, 130});
    REQUIRE(cuda::gemm_tc(direct, a, b, e3));
    CHECK(test::bitwise_equal(baddbmm(res, a, b, kFloat32).cpu(), direct.cpu()));
    // Gradients come back in the operands' dtype.
    const Tensor aw = a[0].detach().requires_grad_(), ww = w.detach().requires_grad_();
    addmm(bias, aw, ww.t(), kFloat32).sum().backward();
    CHECK(aw.grad().dtype() == dt);
    CHECK(ww.grad().dtype() == dt);
    const Tensor ones16 = ones({37, 130}, TensorOptions(dt).device(cu));
    CHECK(test::bitwise_equal(aw.grad().cpu(), mm(ones16, w).cpu()));
  }
}

TEST_CASE("cuda gemm_tc: odd N, so column pairs straddle the edge and rows start unaligned") {
  if (!gpu()) return;
  Generator g(9004);
  const int64_t M = 21, N = 75, K = 48;
  for (int config : {1, 0, 2, 3, 5, 6})
    for (DType dt : {kBFloat16, kFloat16}) {
      INFO("config " << config << " " << dt);
      cuda::set_gemm_tc_config(config);
      const Tensor a = rnd({2, M, K}, dt, g);
      const Tensor b = rnd({2, N, K}, dt, g).transpose(1, 2);       // (K, N), K contiguous
      Tensor out = empty({2, M, N}, TensorOptions(dt).device(cu));  // rows 75 apart: odd
      GemmEpilogue e;
      e.bias = rnd({N}, dt, g);
      e.act = GemmAct::kRelu;
      REQUIRE(cuda::gemm_tc(out, a, b, e));
      CHECK(close(out, reference(a, b, e, Tensor()), dt));
    }
  cuda::set_gemm_tc_config(-1);
}

TEST_CASE(
    "cuda matmul: dY^T is read in place, a misaligned 16-bit B repacked for the tensor "
    "cores") {
  if (!gpu()) return;
  Generator g(9005);
  for (DType dt : {kBFloat16, kFloat16}) {
    INFO(dt);
    // A weight gradient's product dY^T X: A = dY^T has K (the 72 rows) strided and M contiguous,
    // which gemm_tc reads in place, to the bits of the product of a K-contiguous copy.
    const Tensor dy = rnd({72, 40}, dt, g), x = rnd({72, 56}, dt, g);
    const Tensor dw = matmul(dy.t(), x);
    CHECK(close(dw, matmul(dy.cpu().to(kFloat64).t(), x.cpu().to(kFloat64)), dt));
    Tensor direct = empty({1, 40, 56}, TensorOptions(dt).device(cu));
    REQUIRE(cuda::gemm_tc(direct, dy.t().unsqueeze(0), x.unsqueeze(0), GemmEpilogue()));
    CHECK(test::bitwise_equal(dw.cpu(), direct.squeeze(0).cpu()));  // the tensor-core result
    Tensor copied = empty({1, 40, 56}, TensorOptions(dt).device(cu));
    REQUIRE(
        cuda::gemm_tc(copied, dy.t().contiguous().unsqueeze(0), x.unsqueeze(0), GemmEpilogue()));
    CHECK(test::bitwise_equal(copied.cpu(), direct.cpu()));
    // B misaligned by one element (a column slice) and N = 53: repacked K-contiguous.
    const Tensor xb = rnd({72, 54}, dt, g).narrow(1, 1, 53);
    const Tensor y = matmul(dy.t(), xb);
    CHECK(close(y, matmul(dy.cpu().to(kFloat64).t(), xb.cpu().to(kFloat64)), dt));
    Tensor packed = empty({1, 40, 53}, TensorOptions(dt).device(cu));
    REQUIRE(cuda::gemm_tc(packed, dy.t().contiguous().unsqueeze(0),
                          xb.t().contiguous().t().unsqueeze(0), GemmEpilogue()));
    CHECK(test::bitwise_equal(y.cpu(), packed.squeeze(0).cpu()));
  }
}

TEST_CASE("cuda gemm_tc: layouts it does not take return false and write nothing") {
  if (!gpu()) return;
  Generator g(9003);
  const DType dt = kBFloat16;
  const Tensor a = rnd({1, 40, 64}, dt, g), b = rnd({1, 64, 48}, dt, g);
  Tensor out = zeros({1, 40, 48}, TensorOptions(dt).device(cu));
  const GemmEpilogue e;
  CHECK_FALSE(cuda::gemm_tc(out, a.narrow(2, 0, 60), b.narrow(1, 0, 60), e));  // K % 8 != 0
  // Neither of A's strides 1.
  CHECK_FALSE(cuda::gemm_tc(out, rnd({1, 40, 64, 2}, dt, g).select(3, 0), b, e));
  // An M-contiguous A beside a K-contiguous B with K = 60 (rows of 64) on the mma.sync
  // configurations: B's last chunk would read past K.
  CHECK_FALSE(cuda::gemm_tc(out, rnd({1, 60, 40}, dt, g).transpose(1, 2),
                            rnd({1, 48, 64}, dt, g).narrow(2, 0, 60).transpose(1, 2), e));
  CHECK_FALSE(cuda::gemm_tc(out, a.narrow(2, 1, 56), b.narrow(1, 0, 56), e));  // misaligned A
  CHECK_FALSE(cuda::gemm_tc(out.narrow(2, 0, 44), a, b.narrow(2, 0, 44), e));  // row-major B, N % 8
  CHECK_FALSE(cuda::gemm_tc(out.to(kFloat32), a.to(kFloat32), b.to(kFloat32), e));  // float32
  GemmEpilogue wrong_bias;
  wrong_bias.bias = rnd({47}, dt, g);
  CHECK_FALSE(cuda::gemm_tc(out, a, b, wrong_bias));
  CHECK(equal(out.cpu(), zeros({1, 40, 48}, TensorOptions(dt))));
  EMBER_CHECK_THROWS(cuda::set_gemm_tc_config(7), ValueError, "set_gemm_tc_config");
}

TEST_CASE("cuda matmul and linear in 16-bit floats go through the tensor cores") {
  if (!gpu()) return;
  Generator g(9004);
  for (DType dt : {kBFloat16, kFloat16}) {
    INFO(dt);
    const Tensor x = rnd({4, 33, 96}, dt, g), w = rnd({130, 96}, dt, g), bias = rnd({130}, dt, g);
    GemmEpilogue e;
    e.bias = bias;
    const Tensor y = linear(x, w, bias);
    CHECK(close(y.reshape({1, 4 * 33, 130}),
                reference(x.reshape({1, 4 * 33, 96}), w.t().unsqueeze(0), e, Tensor()), dt));
    // The bias is added in the GEMM's epilogue: bitwise gemm_tc with a bias.
    Tensor fused = empty({1, 4 * 33, 130}, TensorOptions(dt).device(cu));
    REQUIRE(cuda::gemm_tc(fused, x.reshape({1, 4 * 33, 96}), w.t().unsqueeze(0), e));
    CHECK(test::bitwise_equal(y.reshape({1, 4 * 33, 130}).cpu(), fused.cpu()));
    // A non-contiguous input and a 1-D input take it too.
    const Tensor xt = rnd({96, 33}, dt, g).t();
    CHECK(test::bitwise_equal(linear(xt, w, bias).cpu(), linear(xt.contiguous(), w, bias).cpu()));
    CHECK(close(linear(xt.select(0, 5), w, bias).reshape({1, 1, 130}),
                reference(xt.select(0, 5).reshape({1, 1, 96}), w.t().unsqueeze(0), e, Tensor()),
                dt));
    const Tensor m = matmul(x, w.t());
    CHECK(close(m, matmul(x.cpu().to(kFloat64), w.cpu().to(kFloat64).t()), dt));
    // Repeats bitwise.
    CHECK(test::bitwise_equal(matmul(x, w.t()).cpu(), m.cpu()));
  }
}

TEST_CASE("cuda autocast: float32 linear runs in 16 bits on the tensor cores, grads in float32") {
  if (!gpu()) return;
  Generator g(9005);
  const Tensor x = rnd({4, 33, 96}, kFloat32, g), b = rnd({130}, kFloat32, g);
  Tensor w = rnd({130, 96}, kFloat32, g).requires_grad_(true);
  for (DType dt : {kBFloat16, kFloat16}) {
    INFO(dt);
    Tensor y;
    {
      auto scope = autocast(dt, kCUDA);
      y = linear(x, w, b);
      // A CPU-only scope leaves CUDA ops alone.
      auto cpu_only = autocast(dt, kCPU);
      auto cuda_off = autocast(dt, kCUDA, /*enabled=*/false);
      CHECK(linear(x, w, b).dtype() == kFloat32);
    }
    REQUIRE(y.dtype() == dt);
    REQUIRE(y.is_cuda());
    // Exactly the 16-bit GEMM on inputs cast by hand.
    const Tensor by_hand = linear(x.to(dt), w.detach().to(dt), b.to(dt));
    CHECK(test::bitwise_equal(y.cpu(), by_hand.cpu()));
    // Against float64 on the inputs as autocast rounds them.
    GemmEpilogue rounded_bias;
    rounded_bias.bias = b.to(dt);
    CHECK(close(y.reshape({1, 4 * 33, 130}),
                reference(x.to(dt).reshape({1, 4 * 33, 96}), w.detach().to(dt).t().unsqueeze(0),
                          rounded_bias, Tensor()),
                dt));
    // The gradient reaches the float32 weight in float32.
    w.mutable_grad() = Tensor();
    y.to(kFloat32).sum().backward();
    REQUIRE(w.grad().defined());
    CHECK(w.grad().dtype() == kFloat32);
    CHECK(close(w.grad(), x.to(dt).cpu().to(kFloat64).reshape({-1, 96}).sum(0).expand({130, 96}),
                dt));
  }
}

namespace {

/// x rounded to TF32 as cvt.rna.tf32.f32 does (10 mantissa bits, ties away from zero), in float64.
Tensor tf32_rounded(const Tensor& x) {
  std::vector<float> v(static_cast<size_t>(x.numel()));
  const Tensor c = x.cpu().contiguous();
  std::copy_n(static_cast<const float*>(c.data_ptr()), v.size(), v.begin());
  for (float& f : v) {
    uint32_t w;
    std::memcpy(&w, &f, 4);
    if ((w & 0x7f800000u) != 0x7f800000u) w = (w + 0x1000u) & 0xffffe000u;
    std::memcpy(&f, &w, 4);
  }
  Tensor r = empty(x.sizes(), TensorOptions(kFloat32));
  std::copy(v.begin(), v.end(), static_cast<float*>(r.data_ptr()));
  return r.to(kFloat64);
}

/// |got - ref| <= atol_rel * max |ref| elementwise (float64 on the CPU).
bool close_scaled(const Tensor& got, const Tensor& ref, double atol_rel) {
  const std::vector<double> x = test::values(got.cpu().to(kFloat64)), y = test::values(ref);
  if (x.size() != y.size()) return false;
  double scale = 0;
  for (double v : y) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < x.size(); ++i)
    if (!(std::abs(x[i] - y[i]) <= atol_rel * scale)) {
      UNSCOPED_INFO("element " << i << ": got " << x[i] << ", expected " << y[i] << " (scale "
                               << scale << ")");
      return false;
    }
  return true;
}

/// Sets cuda::allow_tf32 for a scope.
struct Tf32Scope {
  bool previous = cuda::allow_tf32();
  explicit Tf32Scope(bool on) { cuda::set_allow_tf32(on); }
  ~Tf32Scope() { cuda::set_allow_tf32(previous); }
};

}  // namespace

TEST_CASE("cuda gemm_tc: float32 on TF32 tensor cores when allowed") {
  if (!gpu()) return;
  Generator g(9006);
  const Tf32Scope tf32(true);
  struct Shape {
    int64_t M, N, K;
  };
  // K a multiple of 4 (16-byte chunks of floats), not always of the 32-deep slab.
  const Shape shapes[] = {{1, 4, 4},      {37, 72, 44},   {130, 136, 260},
                          {257, 120, 96}, {128, 128, 32}, {300, 264, 1028}};
  for (const Shape& s : shapes) {
    for (bool weight_layout : {true, false}) {
      INFO("M=" << s.M << " N=" << s.N << " K=" << s.K
                << (weight_layout ? " B=(N,K)^T" : " B=(K,N)"));
      const Tensor a = rnd({1, s.M, s.K}, kFloat32, g);
      const Tensor b = weight_layout ? rnd({1, s.N, s.K}, kFloat32, g).transpose(1, 2)
                                     : rnd({1, s.K, s.N}, kFloat32, g);
      Tensor out = empty({1, s.M, s.N}, TensorOptions(kFloat32).device(cu));  // poisoned
      REQUIRE(cuda::gemm_tc(out, a, b, GemmEpilogue()));
      // The products of the TF32-rounded inputs, summed in float32: float32 accuracy against
      // float64 on the rounded inputs (so the rounding is cvt.rna's, not a truncation)...
      CHECK(close_scaled(out, matmul(tf32_rounded(a), tf32_rounded(b)), 2e-6));
      // ... and TF32 accuracy against the exact float32 inputs.
      CHECK(close_scaled(out, matmul(a.cpu().to(kFloat64), b.cpu().to(kFloat64)), 2e-3));
    }
  }
  // The epilogue, batches, a broadcast weight and a strided output, as for 16-bit floats.
  const int64_t Bt = 2, M = 75, N = 200, K = 68;
  const Tensor a = rnd({Bt, M, 72}, kFloat32, g).narrow(2, 0, K);
  const Tensor w = rnd({N, K}, kFloat32, g);
  const Tensor b = w.t().unsqueeze(0).expand({Bt, K, N});
  GemmEpilogue e;
  e.act = GemmAct::kGelu;
  e.bias = rnd({N}, kFloat32, g);
  e.residual = rnd({Bt, M, N}, kFloat32, g);
  e.alpha = 0.5, e.beta = -1.5;
  Tensor out = rnd({Bt, N, M}, kFloat32, g).transpose(1, 2);
  const Tensor old = out.clone();
  REQUIRE(cuda::gemm_tc(out, a, b, e));
  const Tensor ref = reference(tf32_rounded(a), tf32_rounded(b.contiguous()), e, old);
  CHECK(close_scaled(out, ref, 1e-5));
  // Layouts in 4-float units: K % 4 != 0 and a misaligned A are declined.
  Tensor o2 = zeros({1, 8, 8}, TensorOptions(kFloat32).device(cu));
  const Tensor a2 = rnd({1, 8, 16}, kFloat32, g), b2 = rnd({1, 16, 8}, kFloat32, g);
  CHECK_FALSE(cuda::gemm_tc(o2, a2.narrow(2, 0, 14), b2.narrow(1, 0, 14), GemmEpilogue()));
  CHECK_FALSE(cuda::gemm_tc(o2, a2.narrow(2, 1, 12), b2.narrow(1, 0, 12), GemmEpilogue()));
  CHECK(equal(o2.cpu(), zeros({1, 8, 8})));
}

TEST_CASE("cuda matmul in float32: exact unless TF32 is allowed") {
  if (!gpu()) return;
  Generator g(9007);
  const Tensor x = rnd({3, 40, 96}, kFloat32, g), w = rnd({72, 96}, kFloat32, g);
  const Tensor exact64 = matmul(x.cpu().to(kFloat64), w.cpu().to(kFloat64).t());
  Tensor exact, tf32;
  {
    const Tf32Scope off(false);
    exact = matmul(x, w.t());
    CHECK_FALSE(cuda::gemm_tc(empty({1, 40, 72}, TensorOptions(kFloat32).device(cu)),
                              x.narrow(0, 0, 1), w.t().unsqueeze(0), GemmEpilogue()));
  }
  {
    const Tf32Scope on(true);
    tf32 = matmul(x, w.t());
    CHECK(test::bitwise_equal(matmul(x, w.t()).cpu(), tf32.cpu()));  // repeats bitwise
  }
  CHECK(close_scaled(exact, exact64, 1e-6));
  CHECK(close_scaled(tf32, exact64, 2e-3));
  // TF32's rounding shows: the two differ by more than float32 accuracy.
  CHECK_FALSE(close_scaled(tf32, exact64, 1e-6));
}

TEST_CASE("cuda gemm_tc: pre_act receives the activation's input") {
  if (!gpu()) return;
  Generator g(9008);
  for (DType dt : {kBFloat16, kFloat16}) {
    INFO(dt);
    const Tensor a = rnd({2, 37, 40}, dt, g), b = rnd({2, 40, 72}, dt, g);
    GemmEpilogue e;
    e.bias = rnd({72}, dt, g);
    e.act = GemmAct::kGeluTanh;
    e.pre_act = rnd({2, 72, 37}, dt, g).transpose(1, 2);  // strided
    Tensor out = empty({2, 37, 72}, TensorOptions(dt).device(cu));
    REQUIRE(cuda::gemm_tc(out, a, b, e));
    CHECK(close(out, reference(a, b, e, Tensor()), dt));
    GemmEpilogue plain;
    plain.bias = e.bias;
    CHECK(close(e.pre_act, reference(a, b, plain, Tensor()), dt));
    // The output is the activation of what pre_act holds (before its rounding).
    GemmEpilogue wrong = e;
    wrong.pre_act = rnd({2, 37, 71}, dt, g);
    CHECK_FALSE(cuda::gemm_tc(out, a, b, wrong));
  }
}

TEST_CASE("cuda linear_gelu: one GEMM with the GELU fused, gradients as the composite's") {
  if (!gpu()) return;
  Generator g(9009);
  for (const char* approximate : {"tanh", "none"}) {
    for (DType dt : {kBFloat16, kFloat16}) {
      INFO(dt << " " << approximate);
      Tensor x = rnd({3, 11, 64}, dt, g).requires_grad_(true);
      Tensor w = rnd({96, 64}, dt, g).requires_grad_(true);
      Tensor b = rnd({96}, dt, g).requires_grad_(true);
      const Tensor y = linear_gelu(x, w, b, approximate);
      REQUIRE(y.grad_fn() != nullptr);
      CHECK(y.grad_fn()->name() == "linear_gelu");
      // float64 reference on the same (rounded) values.
      auto f64 = [](const Tensor& t) { return t.detach().cpu().to(kFloat64).requires_grad_(true); };
      Tensor x64 = f64(x), w64 = f64(w), b64 = f64(b);
      const Tensor y64 = gelu(linear(x64, w64, b64), approximate);
      CHECK(close(y.reshape({1, 33, 96}), y64.detach().reshape({1, 33, 96}), dt));
      const Tensor dy = rnd({3, 11, 96}, dt, g);
      y.backward(dy);
      y64.backward(dy.cpu().to(kFloat64));
      // Gradients: K- or M-long sums of 16-bit products, so 1e-2 of the largest value.
      auto near = [](const Tensor& got, const Tensor& want) {
        const std::vector<double> p = test::values(got.cpu().to(kFloat64)), q = test::values(want);
        double scale = 0;
        for (double v : q) scale = std::max(scale, std::abs(v));
        for (size_t i = 0; i < p.size(); ++i)
          if (!(std::abs(p[i] - q[i]) <= 1e-2 * scale)) return false;
        return p.size() == q.size();
      };
      CHECK(near(x.grad(), x64.grad()));
      CHECK(near(w.grad(), w64.grad()));
      CHECK(near(b.grad(), b64.grad()));
    }
  }
  // Without a bias, or on the CPU: exactly gelu(linear(...)).
  const Tensor x = rnd({5, 64}, kBFloat16, g), w = rnd({32, 64}, kBFloat16, g);
  CHECK(test::bitwise_equal(linear_gelu(x, w, Tensor(), "tanh").cpu(),
                            gelu(linear(x, w), "tanh").cpu()));
  const Tensor xc = randn({5, 64}, g), wc = randn({32, 64}, g), bc = randn({32}, g);
  CHECK(test::bitwise_equal(linear_gelu(xc, wc, bc), gelu(linear(xc, wc, bc))));
  EMBER_CHECK_THROWS(linear_gelu(xc, wc, bc, "fast"), ValueError, "linear_gelu");
}

TEST_CASE("cuda linear_relu: one GEMM with the bias and ReLU fused, bitwise the composite") {
  if (!gpu()) return;
  Generator g(9011);
  for (DType dt : {kBFloat16, kFloat16}) {
    INFO(dt);
    const Tensor x0 = rnd({3, 11, 64}, dt, g), w0 = rnd({96, 64}, dt, g), b0 = rnd({96}, dt, g);
    const Tensor dy = rnd({3, 11, 96}, dt, g);
    Tensor x = x0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true),
           b = b0.clone().requires_grad_(true);
    const Tensor y = linear_relu(x, w, b);
    REQUIRE(y.grad_fn() != nullptr);
    CHECK(y.grad_fn()->name() == "linear_relu");
    // The GEMM's ReLU: bitwise the direct call, some outputs cut and others kept.
    GemmEpilogue e;
    e.bias = b0;
    e.act = GemmAct::kRelu;
    Tensor direct = empty({1, 33, 96}, TensorOptions(dt).device(cu));
    REQUIRE(cuda::gemm_tc(direct, x0.reshape({1, 33, 64}), w0.t().unsqueeze(0), e));
    CHECK(test::bitwise_equal(y.detach().reshape({1, 33, 96}).cpu(), direct.cpu()));
    const std::vector<double> v = test::values(y.detach().cpu().to(kFloat64));
    CHECK(std::count(v.begin(), v.end(), 0.0) > 0);
    CHECK(std::count_if(v.begin(), v.end(), [](double t) { return t > 0; }) > 0);
    // relu after the one rounding is the rounding after relu, and both backward passes mask dY
    // where the output is <= 0: the composite's bits, gradients included.
    Tensor xr = x0.clone().requires_grad_(true), wr = w0.clone().requires_grad_(true),
           br = b0.clone().requires_grad_(true);
    const Tensor yr = relu(linear(xr, wr, br));
    y.backward(dy);
    yr.backward(dy);
    CHECK(test::bitwise_equal(y.detach().cpu(), yr.detach().cpu()));
    CHECK(test::bitwise_equal(x.grad().cpu(), xr.grad().cpu()));
    CHECK(test::bitwise_equal(w.grad().cpu(), wr.grad().cpu()));
    CHECK(test::bitwise_equal(b.grad().cpu(), br.grad().cpu()));
  }
  // create_graph: the node's backward is differentiable again, with the composite's result.
  const Tensor x0 = rnd({4, 64}, kFloat16, g), w = rnd({16, 64}, kFloat16, g),
               b = rnd({16}, kFloat16, g);
  std::vector<Tensor> gg[2];
  for (int fused = 0; fused < 2; ++fused) {
    Tensor x = x0.clone().requires_grad_(true);
    const Tensor y = fused ? linear_relu(x, w, b) : relu(linear(x, w, b));
    const Tensor gx = autograd::grad({(y * y).sum()}, {x}, {}, true, true)[0];
    gg[fused] = autograd::grad({(gx * gx).sum()}, {x});
  }
  CHECK(test::bitwise_equal(gg[0][0].cpu(), gg[1][0].cpu()));
  // Without a bias: exactly relu(linear(...)).
  const Tensor xn = rnd({5, 64}, kBFloat16, g), wn = rnd({32, 64}, kBFloat16, g);
  CHECK(test::bitwise_equal(linear_relu(xn, wn, Tensor()).cpu(), relu(linear(xn, wn)).cpu()));
}

TEST_CASE("cuda linear_residual: one GEMM adds the bias and the residual, one rounding") {
  // residual + x @ w^T + b with the bias and the residual in the GEMM's epilogue, written in the
  // residual's dtype: a float32 residual beside bf16/fp16 operands (the output cast) and one of
  // the operands' dtype. Against float64 on the same values; gradients bitwise the composite's
  // (the backward is the composite's from the same dY).
  if (!gpu()) return;
  Generator g(9013);
  for (DType dt : {kBFloat16, kFloat16}) {
    for (DType rdt : {kFloat32, dt}) {
      for (bool with_bias : {true, false}) {
        INFO(dt << " residual " << rdt << " bias " << with_bias);
        const Tensor x0 = rnd({3, 11, 64}, dt, g), w0 = rnd({96, 64}, dt, g);
        const Tensor b0 = with_bias ? rnd({96}, dt, g) : Tensor();
        const Tensor r0 = rnd({3, 11, 96}, rdt, g), dy = rnd({3, 11, 96}, rdt, g);
        Tensor x = x0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true);
        Tensor b = with_bias ? b0.clone().requires_grad_(true) : Tensor();
        Tensor r = r0.clone().requires_grad_(true);
        const Tensor y = linear_residual(x, w, b, r);
        REQUIRE(y.grad_fn() != nullptr);
        CHECK(y.grad_fn()->name() == "linear_residual");
        CHECK(y.dtype() == rdt);
        // float64 of the same values: one rounding of a float32 sum (2^-8 of the largest value
        // for a 16-bit result, 1e-5 for float32).
        const Tensor want =
            r0.cpu().to(kFloat64) + linear(x0.cpu().to(kFloat64), w0.cpu().to(kFloat64),
                                           with_bias ? b0.cpu().to(kFloat64) : Tensor());
        CHECK(test::rel_err(y.detach().cpu().to(kFloat64), want) <=
              (rdt == kFloat32 ? 1e-5 : 8e-3));
        Tensor xr = x0.clone().requires_grad_(true), wr = w0.clone().requires_grad_(true);
        Tensor br = with_bias ? b0.clone().requires_grad_(true) : Tensor();
        Tensor rr = r0.clone().requires_grad_(true);
        const Tensor yr = rr + linear(xr, wr, br);
        y.backward(dy);
        yr.backward(dy);
        CHECK(test::bitwise_equal(x.grad().cpu(), xr.grad().cpu()));
        CHECK(test::bitwise_equal(w.grad().cpu(), wr.grad().cpu()));
        if (with_bias) CHECK(test::bitwise_equal(b.grad().cpu(), br.grad().cpu()));
        CHECK(test::bitwise_equal(r.grad().cpu(), rr.grad().cpu()));
      }
    }
  }
  // Under autocast: float32 x, weight, bias cast to bf16, the float32 residual kept; one node.
  {
    const Tensor x = randn({2, 9, 64}, g).to(cu), w = randn({32, 64}, g).to(cu);
    const Tensor b = randn({32}, g).to(cu);
    Tensor r = randn({2, 9, 32}, g).to(cu).requires_grad_(true);
    auto scope = autocast(kBFloat16);
    const Tensor y = linear_residual(x, w, b, r);
    CHECK(y.dtype() == kFloat32);
    REQUIRE(y.grad_fn() != nullptr);
    CHECK(y.grad_fn()->name() == "linear_residual");
  }
  // A residual of another shape, or a float64 one: the composite.
  const Tensor x = rnd({4, 64}, kBFloat16, g), w = rnd({16, 64}, kBFloat16, g);
  const Tensor r1 = rnd({16}, kFloat32, g), r64 = rnd({4, 16}, kFloat64, g);
  CHECK(test::bitwise_equal(linear_residual(x, w, Tensor(), r1).cpu(), (r1 + linear(x, w)).cpu()));
  CHECK(
      test::bitwise_equal(linear_residual(x, w, Tensor(), r64).cpu(), (r64 + linear(x, w)).cpu()));
}

TEST_CASE("cuda linear_gelu: double backward through the composite") {
  if (!gpu()) return;
  Generator g(9010);
  Tensor x = rnd({4, 64}, kFloat16, g).requires_grad_(true);
  const Tensor w = rnd({16, 64}, kFloat16, g), b = rnd({16}, kFloat16, g);
  const Tensor y = linear_gelu(x, w, b, "tanh");
  const std::vector<Tensor> gx = autograd::grad({y.sum()}, {x}, {}, /*retain_graph=*/true,
                                                /*create_graph=*/true);
  REQUIRE(gx[0].requires_grad());
  const std::vector<Tensor> ggx = autograd::grad({gx[0].sum()}, {x});
  // The same second derivative as the composite's.
  Tensor xr = x.detach().requires_grad_(true);
  const Tensor yr = gelu(linear(xr, w, b), "tanh");
  const std::vector<Tensor> gr =
      autograd::grad({yr.sum()}, {xr}, {}, /*retain_graph=*/true, /*create_graph=*/true);
  const std::vector<Tensor> ggr = autograd::grad({gr[0].sum()}, {xr});
  CHECK(test::bitwise_equal(gx[0].cpu(), gr[0].cpu()));
  CHECK(test::bitwise_equal(ggx[0].cpu(), ggr[0].cpu()));
}
