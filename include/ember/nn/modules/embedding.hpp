// Embedding: a lookup table of learned vectors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "ember/nn/module.hpp"

namespace ember::nn {

/// Integer indices (*) -> (*, embedding_dim). weight (num_embeddings, embedding_dim) ~ N(0, 1),
/// with the padding_idx row zeroed; that row gets no gradient. A negative padding_idx counts
/// from the end, as in PyTorch.
class EmbeddingImpl : public Module {
 public:
  EmbeddingImpl(int64_t num_embeddings, int64_t embedding_dim,
                std::optional<int64_t> padding_idx = std::nullopt);
  /// An embedding whose weight is `embeddings` (frozen unless freeze is false).
  static std::shared_ptr<EmbeddingImpl> from_pretrained(
      const Tensor& embeddings, bool freeze = true,
      std::optional<int64_t> padding_idx = std::nullopt);
  Tensor forward(const Tensor& indices);
  void reset_parameters();
  std::string extra_repr() const override;

  int64_t num_embeddings, embedding_dim;
  std::optional<int64_t> padding_idx;
  Tensor weight;
};
EMBER_MODULE(Embedding);

}  // namespace ember::nn
