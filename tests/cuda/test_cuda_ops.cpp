// One table of ops, each run on the CPU and on CUDA with the same seeded inputs: outputs and the
// gradients of every floating input (backward from the same random output gradient) must agree
// within the op's tolerance. Each op runs on contiguous inputs and on non-contiguous views of the
// same values (every input transposed in memory), at sizes that are multiples of no tile. CUDA
// allocations are poisoned (NaN, -1), so an element a kernel leaves unwritten fails the
// comparison. The kernel families have their own suites next to this one (odd cases, dtypes,
// errors); this table covers the op surface that users call. Without a GPU each case prints
// "skipped".
#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

#include "cuda/cuda_test_util.hpp"
#include "ember/ember.hpp"
#include "ember/nn/functional.hpp"

using namespace ember;
namespace F = ember::nn::functional;
using ember::test::agree;
using ember::test::gpu;

namespace {

/// An input: shape, dtype, and how its values are drawn.
enum class Fill { Normal, Positive, Unit, Labels, Mask };
struct Input {
  std::vector<int64_t> shape;
  DType dtype = kFloat32;
  Fill fill = Fill::Normal;
  int64_t high = 0;  // Labels: values in [0, high)
};

struct OpCase {
  std::string name;
  std::vector<Input> inputs;
  std::function<Tensor(const std::vector<Tensor>&)> f;
  double tol = 1e-5;  // relative, float32
};

Input in(std::vector<int64_t> shape, Fill fill = Fill::Normal) { return {std::move(shape), kFloat32, fill, 0}; }
Input labels(std::vector<int64_t> shape, int64_t high) {
  return {std::move(shape), kInt64, Fill::Labels, high};
}
Input mask(std::vector<int64_t> shape) { return {std::move(shape), kBool, Fill::Mask, 0}; }

Tensor make_input(const Input& s, Generator& g) {
  switch (s.fill) {
    case Fill::Normal: return randn(s.shape, g);
    case Fill::Positive: return rand(s.shape, g) * 2.0 + 0.1;
    case Fill::Unit: return rand(s.shape, g) * 0.98 + 0.01;
    case Fill::Labels: return randint(0, s.high, s.shape, g);
    case Fill::Mask: return rand(s.shape, g) > 0.5;
  }
  return {};
}

/// The same values in a transposed memory layout (a non-contiguous view); 0-d and 1-d inputs are
/// taken as every other element of a twice-as-long tensor.
Tensor strided_copy(const Tensor& t) {
  if (t.dim() == 0) return t;
  if (t.dim() == 1) {
    Tensor wide = zeros({t.size(0), 2}, TensorOptions(t.dtype()).device(t.device()));
    wide.select(1, 0).copy_(t);
    return wide.select(1, 0);
  }
  return t.transpose(0, t.dim() - 1).contiguous().transpose(0, t.dim() - 1);
}

std::vector<OpCase> op_table() {
  using V = const std::vector<Tensor>&;
  return {
      // ---- elementwise ----
      {"add broadcast", {in({7, 13}), in({13})}, [](V x) { return x[0] + x[1]; }},
      {"sub alpha", {in({7, 13}), in({7, 1})}, [](V x) { return sub(x[0], x[1], 0.5); }},
      {"mul", {in({5, 3, 9}), in({3, 9})}, [](V x) { return x[0] * x[1]; }},
      {"div", {in({7, 13}), in({7, 13}, Fill::Positive)}, [](V x) { return x[0] / x[1]; }},
      {"pow", {in({7, 13}, Fill::Positive), in({7, 13})}, [](V x) { return pow(x[0], x[1]); }, 1e-5},
      {"maximum/minimum", {in({7, 13}), in({7, 13})},
       [](V x) { return maximum(x[0], x[1]) - minimum(x[0], x[1]) * 2.0; }},
      {"exp log sqrt", {in({9, 11}, Fill::Positive)},
       [](V x) { return exp(x[0] * 0.5) + log(x[0]) + sqrt(x[0]) + rsqrt(x[0]); }},
      {"tanh sigmoid", {in({9, 11})}, [](V x) { return tanh(x[0]) * sigmoid(x[0]); }},
      {"relu gelu silu", {in({9, 11})},
       [](V x) { return relu(x[0]) + gelu(x[0]) + gelu(x[0], "tanh") + silu(x[0]); }},
      {"elu leaky softplus", {in({9, 11})},
       [](V x) { return elu(x[0]) + leaky_relu(x[0], 0.1) + softplus(x[0], 2.0); }},
      {"abs clamp erf", {in({9, 11})},
       [](V x) { return abs(x[0]) + clamp(x[0], -0.5, 0.7) + erf(x[0]); }},
      {"sin cos", {in({9, 11})}, [](V x) { return sin(x[0]) * cos(x[0]); }},
      {"where masked_fill", {mask({7, 13}), in({7, 13}), in({13})},
       [](V x) { return masked_fill(where(x[0], x[1], x[2]), x[0].logical_not(), 0.25); }},
      // ---- reductions ----
      {"sum mean", {in({6, 7, 13})},
       [](V x) { return sum(x[0], {1}) + mean(x[0], {1}) * 3.0; }},
      {"sum all", {in({37, 29})}, [](V x) { return x[0].sum(); }},
      {"var std", {in({6, 7, 13})}, [](V x) { return var(x[0], {0, 2}) + ember::std(x[0], {0, 2}, 0); }},
      {"amax amin", {in({6, 7, 13})}, [](V x) { return amax(x[0], {2}) - amin(x[0], {0}, true).sum(); }},
      {"max with indices", {in({6, 13})},
       [](V x) { return std::get<0>(max(x[0], 1)) * std::get<1>(max(x[0], 1)).to(kFloat32); }},
      {"prod", {in({6, 7}, Fill::Positive)}, [](V x) { return prod(x[0], 1); }},
      {"logsumexp", {in({6, 7, 13})}, [](V x) { return logsumexp(x[0], {2}); }},
      {"norm", {in({6, 13})}, [](V x) { return norm(x[0], 2, {1}) + norm(x[0], 1, {0}).sum(); }},
      {"softmax log_softmax", {in({6, 7, 13})},
       [](V x) { return softmax(x[0], 1) + log_softmax(x[0], 2); }},
      {"cumsum", {in({6, 13})}, [](V x) { return cumsum(x[0], 1); }},
      // ---- linear algebra ----
      {"matmul", {in({7, 33}), in({33, 19})}, [](V x) { return matmul(x[0], x[1]); }, 1e-4},
      {"matmul batched broadcast", {in({3, 7, 17}), in({17, 5})},
       [](V x) { return matmul(x[0], x[1]); }, 1e-4},
      {"bmm", {in({3, 9, 17}), in({3, 17, 65})}, [](V x) { return bmm(x[0], x[1]); }, 1e-4},
      {"linear", {in({5, 7, 33}), in({19, 33}), in({19})},
       [](V x) { return linear(x[0], x[1], x[2]); }, 1e-4},
      {"addmm", {in({7, 19}), in({7, 33}), in({33, 19})},
       [](V x) { return addmm(x[0], x[1], x[2], 0.5, 2.0); }, 1e-4},
      {"outer dot", {in({13}), in({7})}, [](V x) { return outer(x[0], x[1]) * dot(x[1], x[1]); }, 1e-4},
      // ---- shape and copy ----
      {"cat stack", {in({3, 5}), in({4, 5})},
       [](V x) { return cat({x[0], x[1]}, 0) + stack({x[1].sum(0), x[0].sum(0)}).sum(0); }},
      {"permute reshape", {in({3, 5, 7})},
       [](V x) { return x[0].permute({2, 0, 1}).reshape({7, 15}) * 2.0; }},
      {"narrow select flip roll", {in({9, 11})},
       [](V x) { return flip(x[0].narrow(1, 2, 5), {0}) + roll(x[0].select(1, 3), {2}).unsqueeze(1); }},
      {"repeat expand", {in({3, 1, 5})},
       [](V x) { return repeat(x[0], {2, 3, 1}) + x[0].expand({3, 3, 5}).repeat({2, 1, 1}); }},
      {"tril triu diagonal", {in({7, 7})},
       [](V x) { return tril(x[0], -1) + triu(x[0], 2) + diagonal(x[0]).unsqueeze(0); }},
      {"pad", {in({2, 3, 5, 6})},
       [](V x) { return pad(x[0], {1, 2, 0, 3}) + 1.0; }},
      {"pad reflect", {in({2, 3, 5, 6})}, [](V x) { return pad(x[0], {2, 1, 1, 2}, "reflect"); }},
      {"split chunk", {in({10, 7})},
       [](V x) { return x[0].split(3, 0)[1] * chunk(x[0], 5, 0)[2].sum(); }},
      // ---- indexing ----
      {"index_select", {in({9, 7}), labels({12}, 9)}, [](V x) { return index_select(x[0], 0, x[1]); }},
      {"gather", {in({6, 9}), labels({6, 4}, 9)}, [](V x) { return gather(x[0], 1, x[1]); }},
      {"scatter_add", {in({6, 9}), labels({6, 12}, 9), in({6, 12})},
       [](V x) { return scatter_add(x[0], 1, x[1], x[2]); }},
      {"index_add", {in({9, 7}), labels({12}, 9), in({12, 7})},
       [](V x) { return index_add(x[0], 0, x[1], x[2], 0.5); }},
      {"embedding", {in({11, 6}), labels({4, 5}, 11)}, [](V x) { return embedding(x[0], x[1]); }},
      {"masked_select", {in({7, 9}), mask({7, 9})}, [](V x) { return masked_select(x[0], x[1]); }},
      {"one_hot", {labels({13}, 5)}, [](V x) { return one_hot(x[0], 5).to(kFloat32); }},
      {"sort topk", {in({5, 37})},
       [](V x) { return std::get<0>(sort(x[0], 1, true)).narrow(1, 0, 4) + std::get<0>(topk(x[0], 4)); }},
      // ---- nn ----
      {"layer_norm", {in({6, 5, 33}), in({33}), in({33})},
       [](V x) { return F::layer_norm(x[0], {33}, x[1], x[2], 1e-5); }, 1e-4},
      {"batch_norm", {in({6, 5, 7, 3}), in({5}), in({5})},
       [](V x) { return F::batch_norm(x[0], {}, {}, x[1], x[2], true, 0.1, 1e-5); }, 1e-4},
      {"group_norm", {in({4, 6, 5, 3}), in({6}), in({6})},
       [](V x) { return F::group_norm(x[0], 3, x[1], x[2], 1e-5); }, 1e-4},
      {"rms_norm", {in({6, 33}), in({33})},
       [](V x) { return F::rms_norm(x[0], {33}, x[1], 1e-6); }, 1e-4},
      {"conv2d", {in({2, 3, 11, 9}), in({5, 3, 3, 3}), in({5})},
       [](V x) { return F::conv2d(x[0], x[1], x[2], 2, 1); }, 1e-4},
      {"conv2d groups dilation", {in({2, 4, 11, 9}), in({6, 2, 3, 3})},
       [](V x) { return F::conv2d(x[0], x[1], {}, 1, 2, 2, 2); }, 1e-4},
      {"conv2d depthwise", {in({2, 4, 11, 9}), in({4, 1, 3, 3})},
       [](V x) { return F::conv2d(x[0], x[1], {}, 1, 1, 1, 4); }, 1e-4},
      {"conv_transpose2d", {in({2, 4, 5, 6}), in({4, 3, 3, 3}), in({3})},
       [](V x) { return F::conv_transpose2d(x[0], x[1], x[2], 2, 1, 1); }, 1e-4},
      {"max_pool2d", {in({2, 3, 11, 9})}, [](V x) { return F::max_pool2d(x[0], {3, 3}, {2, 2}, {1, 1}); }},
      {"avg_pool2d", {in({2, 3, 11, 9})}, [](V x) { return F::avg_pool2d(x[0], {3, 2}, {2, 2}); }},
      {"adaptive_avg_pool2d", {in({2, 3, 11, 9})}, [](V x) { return F::adaptive_avg_pool2d(x[0], {4, 3}); }},
      {"interpolate bilinear", {in({2, 3, 5, 7})},
       [](V x) { return F::interpolate(x[0], std::vector<int64_t>{9, 11}, std::nullopt, "bilinear", false); }},
      {"unfold fold", {in({2, 3, 7, 8})},
       [](V x) { return F::fold(F::unfold(x[0], {3, 3}, 1, 1, 2), {7, 8}, {3, 3}, 1, 1, 2); }},
      {"attention causal", {in({2, 3, 9, 16}), in({2, 3, 9, 16}), in({2, 3, 9, 8})},
       [](V x) { return F::scaled_dot_product_attention(x[0], x[1], x[2], {}, 0.0, true); }, 1e-4},
      {"attention masked", {in({2, 9, 16}), in({2, 11, 16}), in({2, 11, 8}), mask({9, 11})},
       [](V x) { return F::scaled_dot_product_attention(x[0], x[1], x[2], x[3].logical_not()); }, 1e-4},
      // ---- losses ----
      {"cross_entropy", {in({13, 7}), labels({13}, 7)}, [](V x) { return F::cross_entropy(x[0], x[1]); }},
      {"cross_entropy 2d smoothing", {in({3, 7, 4, 5}), labels({3, 4, 5}, 7)},
       [](V x) { return F::cross_entropy(x[0], x[1], {}, -100, "sum", 0.1); }},
      {"nll_loss", {in({13, 7}), labels({13}, 7)},
       [](V x) { return F::nll_loss(log_softmax(x[0], 1), x[1]); }},
      {"mse l1 smooth_l1 huber", {in({9, 7}), in({9, 7})},
       [](V x) {
         return F::mse_loss(x[0], x[1]) + F::l1_loss(x[0], x[1], "sum") +
                F::smooth_l1_loss(x[0], x[1]) + F::huber_loss(x[0], x[1], "mean", 0.5);
       }},
      {"binary_cross_entropy", {in({9, 7}, Fill::Unit), in({9, 7}, Fill::Unit)},
       [](V x) { return F::binary_cross_entropy(x[0], x[1]); }},
      {"bce_with_logits", {in({9, 7}), in({9, 7}, Fill::Unit), in({7}, Fill::Positive)},
       [](V x) { return F::binary_cross_entropy_with_logits(x[0], x[1], {}, "mean", x[2]); }},
      {"kl_div", {in({9, 7}), in({9, 7}, Fill::Unit)},
       [](V x) { return F::kl_div(log_softmax(x[0], 1), x[1], "batchmean"); }},
  };
}

/// Runs c on `device` with inputs moved there; returns the output and the gradient of each
/// floating input from backward(grad_out).
std::pair<Tensor, std::vector<Tensor>> run(const OpCase& c, const std::vector<Tensor>& cpu_inputs,
                                           Device device, const Tensor& grad_seed) {
  std::vector<Tensor> xs;
  for (const Tensor& t : cpu_inputs) {
    Tensor d = t.to(device).contiguous().clone();  // never the caller's tensor
    if (!t.is_contiguous()) d = strided_copy(d);   // the same layout on this device
    if (is_floating(d.dtype())) d.requires_grad_(true);
    xs.push_back(d);
  }
  Tensor out = c.f(xs);
  std::vector<Tensor> grads;
  if (out.requires_grad()) {
    out.backward(grad_seed.to(device).to(out.dtype()));
    for (const Tensor& x : xs)
      grads.push_back(x.requires_grad() && x.grad().defined() ? x.grad().cpu() : Tensor());
  }
  return {out.detach().cpu(), grads};
}

}  // namespace

TEST_CASE("cuda op table: every op's output and input gradients equal the CPU's") {
  if (!gpu()) return;
  const Device cu(kCUDA);
  uint64_t seed = 9000;
  for (const OpCase& c : op_table()) {
    for (bool strided : {false, true}) {
      Generator g(++seed);
      std::vector<Tensor> inputs;
      for (const Input& s : c.inputs) {
        Tensor t = make_input(s, g);
        inputs.push_back(strided ? strided_copy(t) : t);
      }
      INFO(c.name << (strided ? " (strided inputs)" : ""));
      Tensor probe;
      {
        NoGradGuard no_grad;
        probe = c.f(inputs);
      }
      const Tensor grad_seed = randn(probe.sizes(), g);
      auto [cpu_out, cpu_grads] = run(c, inputs, Device(kCPU), grad_seed);
      auto [gpu_out, gpu_grads] = run(c, inputs, cu, grad_seed);
      CHECK(agree(gpu_out, cpu_out, c.tol));
      REQUIRE(gpu_grads.size() == cpu_grads.size());
      for (size_t i = 0; i < cpu_grads.size(); ++i) {
        INFO("gradient of input " << i);
        CHECK(cpu_grads[i].defined() == gpu_grads[i].defined());
        if (cpu_grads[i].defined()) CHECK(agree(gpu_grads[i], cpu_grads[i], 10 * c.tol));
      }
    }
  }
}
