// ember-train-gpt: trains a GPT language model on a UTF-8 text file with a character-level or
// byte-level BPE tokenizer; by default on the King James Bible as Debian's bible-kjv prints it.
// AdamW (no weight decay on biases and norms), linear warmup then cosine decay, gradient clipping.
// Reports train and validation loss in nats per token and bits per character, samples text at the
// end, and `--sample` generates text from a checkpoint or from GPT-2 weights.
//
//   ember-train-gpt                                   # 4 layers x 256, KJV, char tokenizer
//   ember-train-gpt --data input.txt --tokenizer bpe --vocab-size 1024 --steps 5000
//   ember-train-gpt --sample --resume runs/gpt/last.ckpt --prompt "And God said" --top-k 40
#include <CLI/CLI.hpp>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <numbers>
#include <variant>

#include "common/train_util.hpp"
#include "ember/ember.hpp"
#include "gpt/model.hpp"

namespace fs = std::filesystem;
namespace data = ember::data;
using ember::Tensor;
using namespace ember_examples;

namespace {

struct Args : TrainArgs {
  std::string config = "default", tokenizer = "char", tokenizer_file, pretrained, prompt = "\n";
  int64_t vocab_size = 512, n_layer = 0, n_head = 0, n_embd = 0, block_size = 0;
  int64_t warmup = 100, eval_every = 250, eval_batches = 20, max_new_tokens = 300, top_k = 40;
  double dropout = -1, lr = 1e-3, min_lr = 1e-4, weight_decay = 0.1, beta2 = 0.99, grad_clip = 1.0;
  double temperature = 0.8, val_fraction = 0.1;
  bool sample = false;
};

// ---- text and tokenizer ----

using Tokenizer = std::variant<data::CharTokenizer, data::BPETokenizer>;

std::vector<int64_t> encode(const Tokenizer& tok, std::string_view text) {
  return std::visit([&](const auto& t) { return t.encode(text); }, tok);
}
std::string decode(const Tokenizer& tok, const Tensor& ids) {
  return std::visit([&](const auto& t) { return t.decode(ids); }, tok);
}
int64_t vocab_size(const Tokenizer& tok) {
  return std::visit([](const auto& t) { return t.vocab_size(); }, tok);
}
Tokenizer load_tokenizer(const std::string& path) {
  const std::string json = data::read_text_file(path);
  if (json.find("\"type\": \"bpe\"") != std::string::npos ||
      json.find("\"type\":\"bpe\"") != std::string::npos)
    return data::BPETokenizer::load(path);
  return data::CharTokenizer::load(path);
}

// The corpus: --data, or the KJV text printed by Debian's `bible` (cached as <out>/kjv.txt).
std::string load_corpus(const Args& a) {
  if (!a.data.empty()) return data::read_text_file(a.data);
  const std::string cached = (fs::path(a.out) / "kjv.txt").string();
  if (fs::exists(cached)) return data::read_text_file(cached);
  std::string text;
  if (FILE* p = popen("bible -f gen1:1-rev22:21 2>/dev/null", "r")) {
    char buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) text.append(buf, n);
    const int status = pclose(p);
    if (status != 0) text.clear();
  }
  EMBER_CHECK(text.size() > 1000000, ember::IOError,
              "the default corpus needs Debian's bible-kjv (`apt-get install bible-kjv`), whose "
              "`bible -f gen1:1-rev22:21` prints the King James text; or give --data FILE");
  data::write_text_file(cached, text);
  return text;
}

// Code points (not bytes) of UTF-8 text: the denominator of bits per character.
int64_t count_chars(std::string_view s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// ---- evaluation ----

// Mean loss over up to `batches` batches of non-overlapping validation windows, spread evenly over
// the split (the same windows every time).
double evaluate(gpt::GPT& model, const data::TokenDataset& val, int64_t batches, int64_t batch) {
  ember::NoGradGuard no_grad;
  model->eval();
  const int64_t n = std::min(val.size(), batches * batch);
  const int64_t spacing = std::max<int64_t>(val.size() / std::max<int64_t>(n, 1), 1);
  double sum = 0;
  for (int64_t start = 0; start < n; start += batch) {
    std::vector<Tensor> xs, ys;
    for (int64_t i = start; i < std::min(n, start + batch); ++i) {
      data::Example e = val.get(i * spacing);
      xs.push_back(e.data);
      ys.push_back(e.target);
    }
    const ember::Device device = model->parameters()[0].device();
    Tensor logits = model->forward(ember::stack(xs).to(device));
    sum += gpt::lm_loss(logits, ember::stack(ys).to(device)).item<double>() *
           static_cast<double>(xs.size());
  }
  model->train();
  return sum / static_cast<double>(std::max<int64_t>(n, 1));
}

// The preset with the flags' overrides. The vocabulary is the tokenizer's, or that of the
// --pretrained weights (e.g. GPT-2's 50257 rows).
gpt::GPTConfig model_config(const Args& a, int64_t vocab) {
  int64_t rows = vocab;
  if (!a.pretrained.empty()) {
    ember::StateDict w = ember::load_safetensors(a.pretrained);  // a mapping: cheap
    const ember::Tensor* wte = w.find("wte.weight");
    if (!wte) wte = w.find("transformer.wte.weight");
    EMBER_CHECK(wte && wte->dim() == 2, ember::ValueError, "--pretrained ", a.pretrained,
                " has no 2-D wte.weight: not GPT-2 weights");
    rows = wte->size(0);
  }
  gpt::GPTConfig c = gpt::GPTConfig::preset(a.config, rows);
  if (a.n_layer > 0) c.n_layer = a.n_layer;
  if (a.n_head > 0) c.n_head = a.n_head;
  if (a.n_embd > 0) c.n_embd = a.n_embd;
  if (a.block_size > 0) c.block_size = a.block_size;
  if (a.dropout >= 0) c.dropout = a.dropout;
  EMBER_CHECK(c.vocab_size >= vocab, ember::ValueError, "the tokenizer has ", vocab,
              " tokens but the model only ", c.vocab_size);
  return c;
}

void write_config(std::map<std::string, std::string>& m, const gpt::GPTConfig& c) {
  m["vocab_size"] = std::to_string(c.vocab_size);
  m["block_size"] = std::to_string(c.block_size);
  m["n_layer"] = std::to_string(c.n_layer);
  m["n_head"] = std::to_string(c.n_head);
  m["n_embd"] = std::to_string(c.n_embd);
  m["dropout"] = std::to_string(c.dropout);
  m["bias"] = c.bias ? "1" : "0";
}

gpt::GPTConfig read_config(const std::map<std::string, std::string>& m) {
  auto get = [&](const char* k) {
    auto it = m.find(k);
    EMBER_CHECK(it != m.end(), ember::IOError, "the checkpoint has no '", k,
                "' entry: was it written by ember-train-gpt?");
    return it->second;
  };
  gpt::GPTConfig c;
  c.vocab_size = std::stoll(get("vocab_size"));
  c.block_size = std::stoll(get("block_size"));
  c.n_layer = std::stoll(get("n_layer"));
  c.n_head = std::stoll(get("n_head"));
  c.n_embd = std::stoll(get("n_embd"));
  c.dropout = std::stod(get("dropout"));
  c.bias = get("bias") == "1";
  return c;
}

// ---- sampling mode ----

int sample(const Args& a) {
  EMBER_CHECK(!a.resume.empty() || !a.pretrained.empty(), ember::ValueError,
              "--sample needs a checkpoint (--resume FILE) or GPT-2 weights (--pretrained FILE)");
  std::string tok_path = a.tokenizer_file;
  if (tok_path.empty() && !a.resume.empty())
    tok_path = (fs::path(a.resume).parent_path() / "tokenizer.json").string();
  EMBER_CHECK(!tok_path.empty(), ember::ValueError,
              "--sample with --pretrained needs "
              "--tokenizer-file (GPT-2's, converted by tools/gpt2_tokenizer.py)");
  Tokenizer tok = load_tokenizer(tok_path);
  gpt::GPT model{nullptr};
  if (!a.resume.empty()) {
    ember::Checkpoint c = ember::load_checkpoint(a.resume);
    model = gpt::GPT(read_config(c.metadata));
    model->load_state_dict(c.model);
  } else {
    model = gpt::GPT(model_config(a, vocab_size(tok)));
    gpt::load_gpt2_weights(model, a.pretrained);
  }
  if (a.device != "cpu") model->to(ember::Device(a.device));
  ember::Generator gen(a.seed);
  Tensor prompt = ember::tensor(encode(tok, a.prompt)).view({1, -1});
  EMBER_CHECK(prompt.numel() > 0, ember::ValueError, "--prompt is empty");
  prompt = prompt.to(ember::Device(a.device));
  Tensor out = gpt::generate(model, prompt, a.max_new_tokens, a.temperature, a.top_k, &gen);
  std::printf("%s\n", decode(tok, out.view({-1}).cpu()).c_str());
  return 0;
}

// ---- training ----

int run(const Args& a) {
  if (a.threads > 0) ember::set_num_threads(a.threads);
  if (a.sample) return sample(a);
  ember::manual_seed(a.seed);
  fs::create_directories(a.out);

  // Text -> tokenizer (kept beside the checkpoint) -> token ids, split 90/10 into train and val.
  const std::string text = load_corpus(a);
  const std::string tok_out = (fs::path(a.out) / "tokenizer.json").string();
  Tokenizer tok;
  if (!a.tokenizer_file.empty()) {
    tok = load_tokenizer(a.tokenizer_file);
  } else if (!a.resume.empty()) {
    tok = load_tokenizer((fs::path(a.resume).parent_path() / "tokenizer.json").string());
  } else if (a.tokenizer == "char") {
    tok = data::CharTokenizer::from_text(text);
  } else if (a.tokenizer == "bpe") {
    const size_t train_bytes =
        static_cast<size_t>(static_cast<double>(text.size()) * (1.0 - a.val_fraction));
    tok = data::BPETokenizer::train(std::string_view(text).substr(0, train_bytes), a.vocab_size);
  } else {
    throw ember::ValueError("--tokenizer must be char or bpe, got '" + a.tokenizer + "'");
  }
  std::visit([&](const auto& t) { t.save(tok_out); }, tok);
  const Tensor tokens = ember::tensor(encode(tok, text));
  const int64_t n_val = static_cast<int64_t>(static_cast<double>(tokens.numel()) * a.val_fraction);
  const Tensor train_tokens = tokens.narrow(0, 0, tokens.numel() - n_val);
  const Tensor val_tokens = tokens.narrow(0, tokens.numel() - n_val, n_val);
  const double chars_per_token =
      static_cast<double>(count_chars(decode(tok, val_tokens))) / static_cast<double>(n_val);

  const gpt::GPTConfig cfg = model_config(a, vocab_size(tok));
  gpt::GPT model(cfg);
  if (!a.pretrained.empty()) gpt::load_gpt2_weights(model, a.pretrained);
  const ember::Device device(a.device);
  if (a.device != "cpu") model->to(device);

  const data::DatasetPtr train_set = first_examples(
      std::make_shared<data::TokenDataset>(train_tokens, cfg.block_size), a.limit_train);
  const data::TokenDataset val_set(val_tokens, cfg.block_size, cfg.block_size);
  EMBER_CHECK(val_set.size() > 0, ember::ValueError, "the validation split (", n_val,
              " tokens) is shorter than one context of ", cfg.block_size + 1, " tokens");
  data::DataLoader loader(train_set, data::DataLoaderOptions(a.batch_size)
                                         .shuffle(true)
                                         .drop_last(true)
                                         .num_workers(a.workers)
                                         .seed(a.seed));
  const int64_t per_epoch = loader.size();
  EMBER_CHECK(per_epoch > 0, ember::ValueError, "the training split (", train_tokens.numel(),
              " tokens) holds fewer than one batch of ", a.batch_size, " contexts");
  const int64_t total =
      a.steps > 0 ? std::min(a.steps, a.epochs * per_epoch) : a.epochs * per_epoch;

  // AdamW: weight decay on the matrices (embeddings and Linear weights) only.
  std::vector<Tensor> decay, no_decay;
  for (const Tensor& p : model->parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  std::vector<ember::optim::OptimizerParamGroup> groups{
      ember::optim::OptimizerParamGroup(
          decay,
          std::make_unique<ember::optim::AdamWOptions>(
              ember::optim::AdamWOptions(a.lr).betas({0.9, a.beta2}).weight_decay(a.weight_decay))),
      ember::optim::OptimizerParamGroup(
          no_decay, std::make_unique<ember::optim::AdamWOptions>(
                        ember::optim::AdamWOptions(a.lr).betas({0.9, a.beta2}).weight_decay(0.0)))};
  ember::optim::AdamW opt(std::move(groups));
  // Linear warmup over `warmup` steps, then cosine decay to min_lr at the last step.
  const double floor = a.min_lr / a.lr;
  ember::optim::LambdaLR sched(opt, [&, total](int64_t s) {
    if (s < a.warmup) return static_cast<double>(s + 1) / static_cast<double>(a.warmup);
    const double t = std::min(1.0, static_cast<double>(s - a.warmup) /
                                       static_cast<double>(std::max<int64_t>(total - a.warmup, 1)));
    return floor + 0.5 * (1.0 - floor) * (1.0 + std::cos(std::numbers::pi * t));
  });

  // The loss logged every log_every steps is the mean since the last log; these sums and the
  // running average travel in the checkpoint, so a resumed run logs what an uninterrupted run does.
  int64_t step = 0, interval_n = 0;
  double train_ema = 0, interval_loss = 0;
  Amp amp(a.amp);
  const std::string ckpt_path = (fs::path(a.out) / "last.ckpt").string();
  if (!a.resume.empty()) {
    ember::Checkpoint c = ember::load_checkpoint(a.resume);
    model->load_state_dict(c.model);
    opt.load_state_dict(c.optimizer);
    sched.load_state_dict(c.scheduler);
    ember::restore_rng(c);
    step = c.step;
    interval_loss = get_exact(c.metadata, "train.interval_loss");
    interval_n = static_cast<int64_t>(get_exact(c.metadata, "train.interval_steps"));
    train_ema = get_exact(c.metadata, "train.loss_ema");
    amp.load(c.metadata);
    std::printf("resumed from %s at step %lld\n", a.resume.c_str(), static_cast<long long>(step));
  }
  auto save = [&](int64_t at) {
    ember::Checkpoint c;
    c.model = model->state_dict();
    c.optimizer = opt.state_dict();
    c.scheduler = sched.state_dict();
    c.step = at;
    write_config(c.metadata, cfg);
    c.metadata["tokenizer"] = tok.index() == 0 ? "char" : "bpe";
    set_exact(c.metadata, "train.interval_loss", interval_loss);
    set_exact(c.metadata, "train.interval_steps", static_cast<double>(interval_n));
    set_exact(c.metadata, "train.loss_ema", train_ema);
    amp.save(c.metadata);
    ember::save_checkpoint(ckpt_path, c);
  };

  remove_stale_temporaries(ckpt_path);
  MetricsLogger log(a.out, step);
  install_stop_handler();
  std::printf(
      "GPT %lld layers x %lld wide, %lld heads, context %lld, %lld parameters; %s "
      "tokenizer, %lld tokens (%lld train / %lld val, %.3f chars/token); %lld steps of "
      "%lld contexts\n",
      static_cast<long long>(cfg.n_layer), static_cast<long long>(cfg.n_embd),
      static_cast<long long>(cfg.n_head), static_cast<long long>(cfg.block_size),
      static_cast<long long>(model->num_parameters()), tok.index() == 0 ? "char" : "bpe",
      static_cast<long long>(tokens.numel()), static_cast<long long>(train_tokens.numel()),
      static_cast<long long>(n_val), chars_per_token, static_cast<long long>(total - step),
      static_cast<long long>(a.batch_size));
  std::fflush(stdout);

  auto report_val = [&](int64_t at) {
    const double v = evaluate(model, val_set, a.eval_batches, a.batch_size);
    const double bpc = v / chars_per_token / std::numbers::ln2;
    log.scalar("val/loss", v, at);
    log.scalar("val/bpc", bpc, at);
    std::printf("step %lld: val loss %.4f nats/token, %.4f bits/char\n", static_cast<long long>(at),
                v, bpc);
    std::fflush(stdout);
    return v;
  };

  const double tokens_per_step = static_cast<double>(a.batch_size * cfg.block_size);
  double val_loss = std::nan("");
  const auto t_start = std::chrono::steady_clock::now();
  model->train();
  while (step < total && !stop_requested()) {
    const int64_t epoch = step / per_epoch;
    ProgressBar bar(std::min(per_epoch, total - epoch * per_epoch), "it");
    for (auto it = loader.iterate(epoch, step % per_epoch); it != loader.end(); ++it) {
      if (step >= total || stop_requested()) break;
      opt.zero_grad();
      Tensor loss;
      {
        auto autocast = amp.scope();
        loss = gpt::lm_loss(model->forward(it->data.to(device)), it->target.to(device));
      }
      amp.scaler().scale(loss).backward();
      amp.scaler().unscale_(opt);
      // The norm stays on the model's device until a log line reads it (no host wait here).
      const Tensor norm = ember::nn::utils::clip_grad_norm_(model->parameters(), a.grad_clip);
      amp.scaler().step(opt);
      amp.scaler().update();
      sched.step();
      ++step;
      const double l = loss.item<double>();
      interval_loss += l;
      ++interval_n;
      train_ema = step == 1 ? l : 0.98 * train_ema + 0.02 * l;
      char postfix[64];
      std::snprintf(postfix, sizeof(postfix), "loss %.4f", train_ema);
      bar.update(it.batch_index() + 1, postfix);
      if (step % a.log_every == 0) {
        const double tps = bar.rate() * tokens_per_step;
        const double mean = interval_loss / static_cast<double>(interval_n);
        log.scalar("train/loss", mean, step);
        log.scalar("train/lr", opt.param_groups()[0].options().lr(), step);
        const double grad_norm = norm.item<double>();
        log.scalar("train/grad_norm", grad_norm, step);
        log.scalar("train/tokens_per_sec", tps, step);
        if (!bar.interactive()) {
          std::printf("step %lld/%lld loss %.4f lr %.2e grad norm %.3f %.0f tok/s\n",
                      static_cast<long long>(step), static_cast<long long>(total), mean,
                      opt.param_groups()[0].options().lr(), grad_norm, tps);
          std::fflush(stdout);
        }
        interval_loss = 0;
        interval_n = 0;
      }
      if (step % a.eval_every == 0 && step < total) val_loss = report_val(step);
      if (a.ckpt_every > 0 && step % a.ckpt_every == 0) save(step);
      if (step == a.stop_at) std::raise(SIGINT);  // the test hook: an interruption at this step
    }
    bar.finish();
  }
  save(step);
  const double secs = seconds_since(t_start);
  if (report_interrupted(step, ckpt_path)) return 130;
  val_loss = report_val(step);
  // A sample from the trained model, printed and kept as <out>/sample.txt.
  ember::Generator gen(a.seed + 1);
  Tensor prompt = ember::tensor(encode(tok, a.prompt)).view({1, -1}).to(device);
  const std::string text_out =
      decode(tok, gpt::generate(model, prompt, a.max_new_tokens, a.temperature, a.top_k, &gen)
                      .view({-1})
                      .cpu());
  data::write_text_file((fs::path(a.out) / "sample.txt").string(), text_out);
  std::printf("---- sample (temperature %.2f, top-k %lld) ----\n%s\n----\n", a.temperature,
              static_cast<long long>(a.top_k), text_out.c_str());
  std::printf(
      "summary: steps=%lld train_loss=%.4f val_loss=%.4f val_bpc=%.4f tokens_per_sec=%.0f "
      "time=%s checkpoint=%s\n",
      static_cast<long long>(step), train_ema, val_loss,
      val_loss / chars_per_token / std::numbers::ln2,
      secs > 0 ? static_cast<double>(step) * tokens_per_step / secs : 0.0,
      format_duration(secs).c_str(), ckpt_path.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  a.steps = 1500;
  a.batch_size = 32;
  a.log_every = 50;
  a.workers = 1;
  a.epochs = 1;  // one epoch is every context of the train split once (KJV: ~120K steps)
  CLI::App app{"Train a GPT language model with Ember (the King James Bible by default)."};
  app.add_option("--data", a.data,
                 "UTF-8 text file (default: the KJV text of Debian's bible-kjv, cached as "
                 "<out>/kjv.txt)");
  app.add_option("--config", a.config, "default, tiny or gpt2 (GPT-2 124M)")->capture_default_str();
  app.add_option("--n-layer", a.n_layer, "override the config's layer count (0: keep)");
  app.add_option("--n-head", a.n_head, "override the config's head count (0: keep)");
  app.add_option("--n-embd", a.n_embd, "override the config's width (0: keep)");
  app.add_option("--block-size", a.block_size, "override the config's context (0: keep)");
  app.add_option("--dropout", a.dropout, "override the config's dropout (<0: keep)");
  app.add_option("--tokenizer", a.tokenizer, "char or bpe (byte-level, trained on the train split)")
      ->capture_default_str();
  app.add_option("--vocab-size", a.vocab_size, "BPE vocabulary size")->capture_default_str();
  app.add_option("--tokenizer-file", a.tokenizer_file,
                 "use this tokenizer JSON (Ember's char or bpe format) instead of building one");
  app.add_option("--lr", a.lr, "peak AdamW learning rate")->capture_default_str();
  app.add_option("--min-lr", a.min_lr, "learning rate at the end of the cosine decay")
      ->capture_default_str();
  app.add_option("--warmup", a.warmup, "linear warmup steps")->capture_default_str();
  app.add_option("--weight-decay", a.weight_decay, "AdamW weight decay (matrices only)")
      ->capture_default_str();
  app.add_option("--beta2", a.beta2, "AdamW beta2 (beta1 is 0.9)")->capture_default_str();
  app.add_option("--grad-clip", a.grad_clip, "clip the gradient norm to this")
      ->capture_default_str();
  app.add_option("--val-fraction", a.val_fraction, "the last fraction of tokens held out")
      ->capture_default_str();
  app.add_option("--eval-every", a.eval_every, "validation loss every N steps")
      ->capture_default_str();
  app.add_option("--eval-batches", a.eval_batches, "validation batches per evaluation")
      ->capture_default_str();
  app.add_option("--pretrained", a.pretrained,
                 "GPT-2 weights (Hugging Face model.safetensors) to start from or sample from");
  app.add_flag("--sample", a.sample,
               "generate text from --resume's checkpoint (or --pretrained) instead of training");
  app.add_option("--prompt", a.prompt, "text the sample continues (default: a newline)");
  app.add_option("--max-new-tokens", a.max_new_tokens, "tokens to generate")->capture_default_str();
  app.add_option("--temperature", a.temperature, "sampling temperature (0: greedy)")
      ->capture_default_str();
  app.add_option("--top-k", a.top_k, "sample among the k most likely tokens (0: all)")
      ->capture_default_str();
  a.out = "runs/gpt";
  add_train_options(app, a);
  CLI11_PARSE(app, argc, argv);
  if (!check_train_options(a)) return 2;
  if (a.eval_every < 1 || a.eval_batches < 1 || a.warmup < 0 || a.vocab_size < 1 ||
      !(a.val_fraction > 0 && a.val_fraction < 1) || !(a.lr > 0) || a.grad_clip <= 0) {
    std::fprintf(stderr,
                 "error: --eval-every, --eval-batches and --vocab-size must be at least 1, "
                 "--warmup at least 0, --lr and --grad-clip positive, --val-fraction in (0, 1)\n");
    return 2;
  }
  return run_guarded([&] { return run(a); });
}
