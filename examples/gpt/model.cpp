// GPT model: see model.hpp. The structure and initialisation follow GPT-2 (Radford et al. 2019)
// as Hugging Face's GPT2LMHeadModel and nanoGPT lay it out.
#include "gpt/model.hpp"

#include <array>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

namespace ember_examples::gpt {

namespace F = ember::nn::functional;

// ---- config ----

GPTConfig GPTConfig::preset(const std::string& name, int64_t vocab_size) {
  GPTConfig c;
  if (name == "default") {
    // 4 layers, 256 wide, 4 heads, context 128: the struct's defaults.
  } else if (name == "tiny") {
    c.n_layer = 2;
    c.n_embd = 64;
    c.n_head = 4;
    c.block_size = 32;
  } else if (name == "gpt2") {
    c.n_layer = 12;
    c.n_embd = 768;
    c.n_head = 12;
    c.block_size = 1024;
    c.vocab_size = 50257;
    c.dropout = 0.0;
  } else {
    throw ember::ValueError("[GPTConfig] unknown preset '" + name +
                            "' (expected default, tiny or gpt2)");
  }
  if (vocab_size > 0) c.vocab_size = vocab_size;
  return c;
}

void GPTConfig::validate() const {
  EMBER_CHECK(vocab_size > 0, ember::ValueError, "[GPTConfig] vocab_size must be positive, got ",
              vocab_size);
  EMBER_CHECK(block_size > 0 && n_layer > 0 && n_head > 0 && n_embd > 0, ember::ValueError,
              "[GPTConfig] block_size, n_layer, n_head and n_embd must be positive, got ",
              block_size, ", ", n_layer, ", ", n_head, ", ", n_embd);
  EMBER_CHECK(n_embd % n_head == 0, ember::ValueError, "[GPTConfig] n_embd (", n_embd,
              ") must be divisible by n_head (", n_head, ")");
  EMBER_CHECK(dropout >= 0.0 && dropout < 1.0, ember::ValueError,
              "[GPTConfig] dropout must be in [0, 1), got ", dropout);
}

// ---- modules ----

CausalSelfAttentionImpl::CausalSelfAttentionImpl(const GPTConfig& config)
    : n_head(config.n_head), dropout(config.dropout) {
  c_attn = register_module("c_attn", nn::Linear(config.n_embd, 3 * config.n_embd, config.bias));
  c_proj = register_module("c_proj", nn::Linear(config.n_embd, config.n_embd, config.bias));
  resid_dropout = register_module("resid_dropout", nn::Dropout(config.dropout));
}

namespace {

/// residual + drop(proj(h)): one linear_residual (the residual added in the projection's GEMM
/// epilogue on a GPU) when the dropout drops nothing.
Tensor project_residual(nn::Linear proj, nn::Dropout drop, const Tensor& h,
                        const Tensor& residual) {
  if (drop->is_training() && drop->p > 0.0) return residual + drop(proj(h));
  return ember::linear_residual(h, proj->weight, proj->bias, residual);
}

}  // namespace

Tensor CausalSelfAttentionImpl::forward(const Tensor& x) {
  return resid_dropout(c_proj(attend(x)));
}

Tensor CausalSelfAttentionImpl::forward(const Tensor& x, const Tensor& residual) {
  return project_residual(c_proj, resid_dropout, attend(x), residual);
}

Tensor CausalSelfAttentionImpl::attend(const Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), C = x.size(2), D = C / n_head;
  std::vector<Tensor> qkv = c_attn(x).split(C, 2);  // 3 x (B, T, C)
  auto heads = [&](const Tensor& t) { return t.view({B, T, n_head, D}).transpose(1, 2); };
  Tensor y = F::scaled_dot_product_attention(heads(qkv[0]), heads(qkv[1]), heads(qkv[2]), {},
                                             is_training() ? dropout : 0.0,
                                             /*is_causal=*/true);  // (B, H, T, D)
  return y.transpose(1, 2).reshape({B, T, C});
}

MLPImpl::MLPImpl(const GPTConfig& config) {
  c_fc = register_module("c_fc", nn::Linear(config.n_embd, 4 * config.n_embd, config.bias));
  c_proj = register_module("c_proj", nn::Linear(4 * config.n_embd, config.n_embd, config.bias));
  dropout = register_module("dropout", nn::Dropout(config.dropout));
}

// linear_gelu is gelu(c_fc(x)); on a GPU one GEMM with the bias and GELU in its epilogue.
Tensor MLPImpl::forward(const Tensor& x) {
  return dropout(c_proj(ember::linear_gelu(x, c_fc->weight, c_fc->bias, "tanh")));
}

Tensor MLPImpl::forward(const Tensor& x, const Tensor& residual) {
  return project_residual(c_proj, dropout, ember::linear_gelu(x, c_fc->weight, c_fc->bias, "tanh"),
                          residual);
}

BlockImpl::BlockImpl(const GPTConfig& config) {
  ln_1 = register_module(
      "ln_1", nn::LayerNorm(std::vector<int64_t>{config.n_embd}, 1e-5, true, config.bias));
  attn = register_module("attn", CausalSelfAttention(config));
  ln_2 = register_module(
      "ln_2", nn::LayerNorm(std::vector<int64_t>{config.n_embd}, 1e-5, true, config.bias));
  mlp = register_module("mlp", MLP(config));
}

// x + attn(ln_1(x)), then y + mlp(ln_2(y)): the skip connections ride in the output
// projections' GEMMs where no dropout sits between.
Tensor BlockImpl::forward(const Tensor& x) {
  Tensor y = attn->forward(ln_1(x), x);
  return mlp->forward(ln_2(y), y);
}

TransformerImpl::TransformerImpl(const GPTConfig& config) {
  wte = register_module("wte", nn::Embedding(config.vocab_size, config.n_embd));
  wpe = register_module("wpe", nn::Embedding(config.block_size, config.n_embd));
  drop = register_module("drop", nn::Dropout(config.dropout));
  h = register_module("h", nn::ModuleList());
  for (int64_t i = 0; i < config.n_layer; ++i) h->push_back(Block(config));
  ln_f = register_module(
      "ln_f", nn::LayerNorm(std::vector<int64_t>{config.n_embd}, 1e-5, true, config.bias));
}

GPTImpl::GPTImpl(const GPTConfig& cfg) : config(cfg) {
  config.validate();
  transformer = register_module("transformer", Transformer(config));
  ember::NoGradGuard no_grad;
  const double proj_std = 0.02 / std::sqrt(2.0 * static_cast<double>(config.n_layer));
  for (const auto& [name, value] : named_parameters()) {
    Tensor p = value;  // a handle to the parameter itself
    const bool is_bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    const bool is_ln = name.find(".ln_") != std::string::npos;
    if (is_ln) {
      if (is_bias)
        nn::init::zeros_(p);
      else
        nn::init::ones_(p);
    } else if (is_bias) {
      nn::init::zeros_(p);
    } else if (name.find("c_proj.weight") != std::string::npos) {
      nn::init::normal_(p, 0.0, proj_std);
    } else {
      nn::init::normal_(p, 0.0, 0.02);
    }
  }
}

Tensor GPTImpl::forward(const Tensor& idx) {
  EMBER_CHECK(idx.dim() == 2, ember::ShapeError, "[GPT] expected token ids (B, T), got ",
              idx.sizes());
  const int64_t T = idx.size(1);
  EMBER_CHECK(T >= 1 && T <= config.block_size, ember::ShapeError, "[GPT] sequence length ", T,
              " must be in [1, block_size = ", config.block_size, "]: ids ", idx.sizes());
  // The embeddings of positions 0 .. T-1 are wpe's first T rows: a view added over the batch,
  // where wpe(arange(T)) made the ids on the GPU, read them back for the index check (a wait for
  // the GPU) and gathered; wpe's gradient is dy summed over the batch, into those rows.
  const Tensor pos_emb = transformer->wpe->weight.narrow(0, 0, T);  // (T, C)
  Tensor x = transformer->drop(transformer->wte(idx) + pos_emb);    // (B, T, C)
  for (size_t i = 0; i < transformer->h->size(); ++i)
    x = transformer->h->at<BlockImpl>(i)->forward(x);
  x = transformer->ln_f(x);
  // The head, tied to wte: linear(x, wte) = x @ wte^T, one (B T, C) x (C, V) product, in the
  // product's dtype: 16-bit logits under autocast (as PyTorch's autocast and llm.c give them),
  // which the fused cross-entropy reads as they are and computes in float32. At GPT-2's 8192 x
  // 50304 logits that moves 3.3 GB per step where float32 logits moved 9.1 GB (written, read
  // forward and backward, their float32 gradient written, read and cast down). As linear's
  // weight, wte is cast to 16 bits as it lies (one vector pass; mm(x, wte.t()) cast the
  // transposed view element by element) and its gradient comes back in float32 from the product
  // (no 16-bit gradient, cast and transposed add: docs/amp.md).
  return ember::linear(x, transformer->wte->weight);  // (B, T, V)
}

Tensor lm_loss(const Tensor& logits, const Tensor& targets) {
  const int64_t V = logits.size(-1);
  return F::cross_entropy(logits.reshape({-1, V}), targets.reshape({-1}));
}

// ---- sampling ----

Tensor generate(GPT& model, const Tensor& idx, int64_t max_new_tokens, double temperature,
                int64_t top_k, ember::Generator* gen) {
  EMBER_CHECK(idx.dim() == 2 && idx.size(0) == 1, ember::ShapeError,
              "[generate] expected a prompt of shape (1, T), got ", idx.sizes());
  EMBER_CHECK(temperature >= 0.0, ember::ValueError, "[generate] temperature must be >= 0, got ",
              temperature);
  ember::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  const int64_t block = model->config.block_size, V = model->config.vocab_size;
  Tensor out = idx;
  for (int64_t i = 0; i < max_new_tokens; ++i) {
    const int64_t T = out.size(1);
    Tensor ctx = T > block ? out.narrow(1, T - block, block) : out;
    Tensor logits = model->forward(ctx).select(1, -1);  // (1, V)
    Tensor next;
    if (temperature == 0.0) {
      next = logits.argmax(-1, /*keepdim=*/true);
    } else {
      logits = logits / temperature;
      if (top_k > 0 && top_k < V) {
        Tensor kth = std::get<0>(ember::topk(logits, top_k)).narrow(1, top_k - 1, 1);  // (1, 1)
        logits = logits.masked_fill(logits.lt(kth), -std::numeric_limits<double>::infinity());
      }
      Tensor probs = ember::softmax(logits, -1);
      next = gen ? ember::multinomial(probs, 1, false, *gen) : ember::multinomial(probs, 1);
    }
    out = ember::cat({out, next.to(ember::kInt64)}, 1);
  }
  model->train(was_training);
  return out;
}

// ---- GPT-2 weights ----

std::array<int64_t, 256> gpt2_byte_token_ids() {
  std::array<int64_t, 256> ids{};
  int64_t next = 0;
  auto printable = [](int b) {
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  };
  for (int b = 0; b < 256; ++b)
    if (printable(b)) ids[b] = next++;
  for (int b = 0; b < 256; ++b)
    if (!printable(b)) ids[b] = next++;
  return ids;
}

void load_gpt2_weights(GPT& model, const std::string& path, bool gpt2_byte_order) {
  ember::StateDict raw = ember::load_safetensors(path);
  ember::StateDict sd;
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  for (const auto& [key, value] : raw) {
    if (ends_with(key, ".attn.bias") || ends_with(key, ".attn.masked_bias") ||
        key == "lm_head.weight")
      continue;  // the causal-mask buffers, and the tied head (it is wte)
    const std::string name = key.rfind("transformer.", 0) == 0 ? key : "transformer." + key;
    const bool conv1d = ends_with(name, "c_attn.weight") || ends_with(name, "c_proj.weight") ||
                        ends_with(name, "c_fc.weight");
    Tensor t = conv1d ? value.t().contiguous() : value;
    if (name == "transformer.wte.weight" && gpt2_byte_order) {
      EMBER_CHECK(t.dim() == 2 && t.size(0) >= 256, ember::ShapeError,
                  "[load_gpt2_weights] wte.weight must have at least 256 rows, got ", t.sizes());
      // Ember's byte token b is GPT-2's token ids[b].
      const std::array<int64_t, 256> ids = gpt2_byte_token_ids();
      Tensor index = ember::tensor(std::vector<int64_t>(ids.begin(), ids.end()));
      Tensor reordered = t.clone();
      reordered.narrow(0, 0, 256).copy_(t.index_select(0, index));
      t = reordered;
    }
    sd.insert(name, t);
  }
  model->load_state_dict(sd);
}

}  // namespace ember_examples::gpt
