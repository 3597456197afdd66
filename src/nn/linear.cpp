// Identity, Linear, Flatten, Unflatten, Embedding and the activation modules.
#include "ember/nn/modules/linear.hpp"

#include <cmath>
#include <sstream>

#include "ember/nn/init.hpp"
#include "ember/nn/modules/activation.hpp"
#include "ember/nn/modules/embedding.hpp"
#include "ember/ops.hpp"
#include "nn/repr.hpp"

namespace ember::nn {

namespace {
using detail::repr;
}  // namespace

// ---- Linear ----

LinearImpl::LinearImpl(int64_t in, int64_t out, bool with_bias)
    : in_features(in), out_features(out) {
  EMBER_CHECK(in >= 0 && out >= 0, ValueError,
              "[Linear] expected non-negative sizes, got in_features=", in, ", out_features=", out);
  weight = register_parameter("weight", empty({out, in}));
  if (with_bias) bias = register_parameter("bias", empty({out}));
  reset_parameters();
}

void LinearImpl::reset_parameters() {
  // PyTorch: kaiming_uniform_(w, a=sqrt(5)) gives the bound 1/sqrt(fan_in); the bias uses it too.
  if (in_features > 0) init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const double bound = in_features > 0 ? 1.0 / std::sqrt(static_cast<double>(in_features)) : 0.0;
    init::uniform_(bias, -bound, bound);
  }
}

Tensor LinearImpl::forward(const Tensor& x) {
  EMBER_CHECK(x.dim() >= 1 && x.size(-1) == in_features, ShapeError, "[Linear] expected input (*, ",
              in_features, "), got ", x.sizes());
  return linear(x, weight, bias);
}

std::string LinearImpl::extra_repr() const {
  return repr("in_features=", in_features, ", out_features=", out_features,
              ", bias=", bias.defined());
}

std::string FlattenImpl::extra_repr() const {
  return repr("start_dim=", start_dim, ", end_dim=", end_dim);
}

std::string UnflattenImpl::extra_repr() const {
  return repr("dim=", dim, ", unflattened_size=", IntArrayRef(sizes));
}

// ---- Embedding ----

EmbeddingImpl::EmbeddingImpl(int64_t num, int64_t dim, std::optional<int64_t> pad)
    : num_embeddings(num), embedding_dim(dim) {
  EMBER_CHECK(num >= 0 && dim >= 0, ValueError,
              "[Embedding] expected non-negative sizes, got num_embeddings=", num,
              ", embedding_dim=", dim);
  if (pad) {
    EMBER_CHECK(*pad < num && *pad >= -num, IndexError, "[Embedding] padding_idx ", *pad,
                " is out of range for ", num, " embeddings");
    padding_idx = *pad < 0 ? *pad + num : *pad;
  }
  weight = register_parameter("weight", empty({num, dim}));
  reset_parameters();
}

void EmbeddingImpl::reset_parameters() {
  init::normal_(weight);
  if (padding_idx) {
    NoGradGuard no_grad;
    weight.select(0, *padding_idx).zero_();
  }
}

std::shared_ptr<EmbeddingImpl> EmbeddingImpl::from_pretrained(const Tensor& embeddings, bool freeze,
                                                              std::optional<int64_t> pad) {
  EMBER_CHECK(embeddings.defined() && embeddings.dim() == 2, ShapeError,
              "[Embedding.from_pretrained] expected a 2-D tensor, got ",
              embeddings.defined() ? embeddings.sizes() : IntArrayRef());
  auto e = std::make_shared<EmbeddingImpl>(embeddings.size(0), embeddings.size(1), pad);
  {
    NoGradGuard no_grad;
    e->weight.copy_(embeddings);
  }
  e->weight.requires_grad_(!freeze);
  return e;
}

Tensor EmbeddingImpl::forward(const Tensor& indices) {
  return embedding(weight, indices, padding_idx ? *padding_idx : -1);
}

std::string EmbeddingImpl::extra_repr() const {
  std::string s = repr(num_embeddings, ", ", embedding_dim);
  if (padding_idx) s += repr(", padding_idx=", *padding_idx);
  return s;
}

// ---- activations ----

Tensor ReLUImpl::forward(const Tensor& x) { return relu(x); }
Tensor LeakyReLUImpl::forward(const Tensor& x) { return leaky_relu(x, negative_slope); }
std::string LeakyReLUImpl::extra_repr() const { return repr("negative_slope=", negative_slope); }
GELUImpl::GELUImpl(std::string a) : approximate(std::move(a)) {
  EMBER_CHECK(approximate == "none" || approximate == "tanh", ValueError,
              "[GELU] approximate must be 'none' or 'tanh', got '", approximate, "'");
}
Tensor GELUImpl::forward(const Tensor& x) { return gelu(x, approximate); }
std::string GELUImpl::extra_repr() const {
  return approximate == "none" ? "" : repr("approximate='", approximate, "'");
}
Tensor SiLUImpl::forward(const Tensor& x) { return silu(x); }
Tensor TanhImpl::forward(const Tensor& x) { return tanh(x); }
Tensor SigmoidImpl::forward(const Tensor& x) { return sigmoid(x); }
Tensor ELUImpl::forward(const Tensor& x) { return elu(x, alpha); }
std::string ELUImpl::extra_repr() const { return repr("alpha=", alpha); }
Tensor SoftmaxImpl::forward(const Tensor& x) { return softmax(x, dim); }
std::string SoftmaxImpl::extra_repr() const { return repr("dim=", dim); }
Tensor LogSoftmaxImpl::forward(const Tensor& x) { return log_softmax(x, dim); }
std::string LogSoftmaxImpl::extra_repr() const { return repr("dim=", dim); }

}  // namespace ember::nn
