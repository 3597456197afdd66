// ember-train-gan: a DCGAN on Fashion-MNIST (28x28). The generator maps z (100) through
// transposed convolutions 100 -> 256x7x7 -> 128x14x14 -> 1x28x28 (BatchNorm, ReLU, Tanh); the
// discriminator is Conv(64, stride 2) - LeakyReLU - Conv(128, stride 2) - BatchNorm - LeakyReLU -
// Linear. Adam(2e-4, betas 0.5/0.999). `--loss wgan-gp` trains a critic (no BatchNorm) with the
// gradient penalty of Gulrajani et al. 2017, computed with double backward.
//
//   ember-train-gan                       # 5 epochs; samples in runs/gan/samples_epochN.png
//   ember-train-gan --loss wgan-gp --epochs 10
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "common/train_util.hpp"
#include "ember/ember.hpp"
#include "gan/fid.hpp"
#include "gan/models.hpp"
#include "resnet/models.hpp"

namespace fs = std::filesystem;
namespace data = ember::data;
namespace nn = ember::nn;
namespace F = ember::nn::functional;
namespace T = ember::data::transforms;
namespace fid = ember_examples::fid;
namespace resnet = ember_examples::resnet;
using ember::Tensor;
using namespace ember_examples;
using ember_examples::gan::kNoise;

namespace {

struct Args : TrainArgs {
  std::string loss = "bce", fid_classifier;
  int64_t critic_steps = 5, fid_samples = 2000;
  double lr = 2e-4, gp_weight = 10.0;
};

// Both networks' state in one dict, under "G." and "D.".
ember::StateDict joined(const ember::StateDict& g, const ember::StateDict& d) {
  ember::StateDict out;
  out.update(g, "G.");
  out.update(d, "D.");
  return out;
}

// ---- quality score ----

// The Fréchet distance in the feature space of a Fashion-MNIST classifier written by
// ember-train-resnet: the real statistics come from the first n test images, the generated ones
// from n samples of fixed noise (their own generator, so training's random stream is untouched).
class QualityScore {
 public:
  QualityScore(const std::string& checkpoint, const std::string& root, int64_t n, uint64_t seed)
      : n_(n), seed_(seed) {
    ember::Checkpoint c = ember::load_checkpoint(checkpoint);
    auto meta = [&](const char* k) {
      auto it = c.metadata.find(k);
      return it == c.metadata.end() ? std::string() : it->second;
    };
    EMBER_CHECK(meta("dataset") == "fashion-mnist" && c.model.contains("fc.weight"),
                ember::ValueError, "--fid-classifier ", checkpoint,
                " is not a Fashion-MNIST checkpoint of ember-train-resnet");
    model_ = resnet::make_model(meta("model"), c.model.at("fc.weight").size(0), 1, true);
    model_->load_state_dict(c.model);
    model_->eval();
    auto to_range = T::Compose({T::ToTensor(), T::Normalize({0.5}, {0.5})});  // [-1, 1]
    std::tie(mu_real_, cov_real_) = statistics(data::FashionMNIST(root, false, to_range));
    // The floor: real training images against the test images, at the same sample size.
    auto [mu, cov] = statistics(data::FashionMNIST(root, true, to_range));
    floor_ = fid::frechet_distance(mu_real_, cov_real_, mu, cov);
  }
  double floor() const { return floor_; }

  // The score of generator G (evaluated in eval mode).
  double operator()(nn::Sequential& G) {
    ember::NoGradGuard no_grad;
    G->eval();
    ember::Generator gen(seed_ + 2);
    std::vector<Tensor> feats;
    for (int64_t start = 0; start < n_; start += 250) {
      const int64_t b = std::min<int64_t>(250, n_ - start);
      const Tensor z = ember::randn({b, kNoise, 1, 1}, gen).to(G->parameters()[0].device());
      feats.push_back(features(G->forward(z)));
    }
    G->train();
    auto [mu, cov] = fid::feature_statistics(ember::cat(feats));
    return fid::frechet_distance(mu_real_, cov_real_, mu, cov);
  }

 private:
  // Images in [-1, 1] (the GAN's range) -> the classifier's normalization -> pooled features.
  Tensor features(const Tensor& x) {
    ember::NoGradGuard no_grad;
    return model_->features(((x.cpu() + 1.0) * 0.5 - 0.2860) / 0.3530);  // the classifier: CPU
  }
  // Feature statistics of the first n_ images of ds.
  std::pair<Tensor, Tensor> statistics(const data::Dataset& ds) {
    const int64_t count = std::min(n_, ds.size());
    std::vector<Tensor> feats;
    for (int64_t start = 0; start < count; start += 250) {
      std::vector<Tensor> xs;
      for (int64_t i = start; i < std::min(count, start + 250); ++i) xs.push_back(ds.get(i).data);
      feats.push_back(features(ember::stack(xs)));
    }
    return fid::feature_statistics(ember::cat(feats));
  }
  resnet::Classifier model_{nullptr};
  Tensor mu_real_, cov_real_;
  double floor_ = 0;
  int64_t n_;
  uint64_t seed_;
};

int run(const Args& a) {
  EMBER_CHECK(a.loss == "bce" || a.loss == "wgan-gp", ember::ValueError,
              "--loss must be bce or wgan-gp, got '", a.loss, "'");
  if (a.threads > 0) ember::set_num_threads(a.threads);
  ember::manual_seed(a.seed);
  const bool wgan = a.loss == "wgan-gp";
  const std::string root = a.data.empty() ? data::default_fashion_mnist_root() : a.data;
  data::DatasetPtr train = std::make_shared<data::FashionMNIST>(
      root, true, T::Compose({T::ToTensor(), T::Normalize({0.5}, {0.5})}));  // [-1, 1]
  train = first_examples(train, a.limit_train);

  nn::Sequential G = gan::make_generator(), D = gan::make_discriminator(!wgan);
  gan::dcgan_init(*G);
  gan::dcgan_init(*D);
  if (a.device != "cpu") {
    G->to(ember::Device(a.device));
    D->to(ember::Device(a.device));
  }
  // WGAN-GP's recommended Adam (lr 1e-4, betas 0 / 0.9) is left to the flags; DCGAN's betas here.
  const auto betas = wgan ? std::make_tuple(0.0, 0.9) : std::make_tuple(0.5, 0.999);
  ember::optim::Adam opt_g(G->parameters(), ember::optim::AdamOptions(a.lr).betas(betas));
  ember::optim::Adam opt_d(D->parameters(), ember::optim::AdamOptions(a.lr).betas(betas));

  data::DataLoader loader(train, data::DataLoaderOptions(a.batch_size)
                                     .shuffle(true)
                                     .drop_last(true)
                                     .num_workers(a.workers)
                                     .seed(a.seed));
  const int64_t per_epoch = loader.size();
  EMBER_CHECK(per_epoch > 0, ember::ValueError, "the training set (", train->size(),
              " images) is smaller than one batch of ", a.batch_size);
  const int64_t total =
      a.steps > 0 ? std::min(a.steps, a.epochs * per_epoch) : a.epochs * per_epoch;

  std::unique_ptr<QualityScore> quality;
  if (!a.fid_classifier.empty()) {
    quality = std::make_unique<QualityScore>(a.fid_classifier, root, a.fid_samples, a.seed);
    std::printf(
        "quality score: Frechet distance of real training vs test images %.3f (the floor)\n",
        quality->floor());
  }

  // 64 fixed noise vectors for the sample grid, from their own generator.
  ember::Generator fixed_gen(a.seed + 1);
  const ember::Device device(a.device);
  const auto on_device = ember::TensorOptions().device(device);
  const Tensor fixed_noise = ember::randn({64, kNoise, 1, 1}, fixed_gen).to(device);

  // The running averages travel in the checkpoint: WGAN-GP logs the generator's average on the
  // steps where only the critic trains, so a resumed run needs it to log what an uninterrupted
  // run does.
  int64_t step = 0;
  double d_ema = 0, g_ema = 0, last_fid = std::nan("");
  // --amp: one scaler for both optimizers, updated once per step (as PyTorch recommends).
  Amp amp(a.amp);
  const std::string ckpt_path = (fs::path(a.out) / "last.ckpt").string();
  if (!a.resume.empty()) {
    ember::Checkpoint c = ember::load_checkpoint(a.resume);
    G->load_state_dict(c.model.sub("G."));
    D->load_state_dict(c.model.sub("D."));
    opt_g.load_state_dict(c.optimizer.sub("G."));
    opt_d.load_state_dict(c.optimizer.sub("D."));
    ember::restore_rng(c);
    step = c.step;
    d_ema = get_exact(c.metadata, "train.d_loss_ema");
    g_ema = get_exact(c.metadata, "train.g_loss_ema");
    last_fid = get_exact(c.metadata, "quality.fid", std::nan(""));
    amp.load(c.metadata);
    std::printf("resumed from %s at step %lld\n", a.resume.c_str(), static_cast<long long>(step));
  }
  auto save = [&](int64_t at) {
    ember::Checkpoint c;
    c.model = joined(G->state_dict(), D->state_dict());
    c.optimizer = joined(opt_g.state_dict(), opt_d.state_dict());
    c.step = at;
    c.metadata["loss"] = a.loss;
    set_exact(c.metadata, "train.d_loss_ema", d_ema);
    set_exact(c.metadata, "train.g_loss_ema", g_ema);
    set_exact(c.metadata, "quality.fid", last_fid);
    amp.save(c.metadata);
    ember::save_checkpoint(ckpt_path, c);
  };

  remove_stale_temporaries(ckpt_path);
  MetricsLogger log(a.out, step);
  install_stop_handler();
  std::printf("DCGAN (%s) on Fashion-MNIST: %lld images, %lld steps of %lld (%lld per epoch)\n",
              a.loss.c_str(), static_cast<long long>(train->size()),
              static_cast<long long>(total - step), static_cast<long long>(a.batch_size),
              static_cast<long long>(per_epoch));

  const auto t_start = std::chrono::steady_clock::now();
  while (step < total && !stop_requested()) {
    const int64_t epoch = step / per_epoch;
    ProgressBar bar(std::min(per_epoch, total - epoch * per_epoch), "it");
    for (auto it = loader.iterate(epoch, step % per_epoch); it != loader.end(); ++it) {
      if (step >= total || stop_requested()) break;
      const Tensor real = it->data.to(device);  // (B, 1, 28, 28) in [-1, 1]
      const int64_t b = real.size(0);
      // Discriminator (critic) step.
      Tensor fake, d_loss;
      {
        auto d_autocast = amp.scope();
        fake = G->forward(ember::randn({b, kNoise, 1, 1}, on_device));
        Tensor d_real = D->forward(real), d_fake = D->forward(fake.detach());
        if (wgan) {
          Tensor eps = ember::rand({b, 1, 1, 1}, on_device);
          Tensor mix = (eps * real + (1.0 - eps) * fake.detach()).requires_grad_(true);
          Tensor score = D->forward(mix);
          Tensor grad = ember::autograd::grad({score.sum()}, {mix}, {}, std::nullopt, true)[0];
          Tensor gp = (grad.flatten(1).pow(2).sum(1).add(1e-12).sqrt() - 1.0).pow(2).mean();
          d_loss = d_fake.mean() - d_real.mean() + a.gp_weight * gp;
        } else {
          d_loss = F::binary_cross_entropy_with_logits(d_real, ember::ones_like(d_real)) +
                   F::binary_cross_entropy_with_logits(d_fake, ember::zeros_like(d_fake));
        }
      }
      opt_d.zero_grad();
      amp.scaler().scale(d_loss).backward();
      amp.scaler().step(opt_d);
      // Generator step (every step for DCGAN; every critic_steps-th for WGAN-GP).
      double g_value = g_ema;
      if (!wgan || step % a.critic_steps == 0) {
        Tensor g_loss;
        {
          auto g_autocast = amp.scope();
          Tensor out = D->forward(fake);
          g_loss =
              wgan ? -out.mean() : F::binary_cross_entropy_with_logits(out, ember::ones_like(out));
        }
        opt_g.zero_grad();
        amp.scaler().scale(g_loss).backward();
        amp.scaler().step(opt_g);
        g_value = g_loss.item<double>();
      }
      amp.scaler().update();
      ++step;
      const double d_value = d_loss.item<double>();
      d_ema = step == 1 ? d_value : 0.98 * d_ema + 0.02 * d_value;
      g_ema = step == 1 ? g_value : 0.98 * g_ema + 0.02 * g_value;
      char postfix[80];
      std::snprintf(postfix, sizeof(postfix), "D %.4f G %.4f", d_ema, g_ema);
      bar.update(it.batch_index() + 1, postfix);
      if (step % a.log_every == 0) {
        log.scalar("train/d_loss", d_value, step);
        log.scalar("train/g_loss", g_value, step);
        log.scalar("train/images_per_sec", bar.rate() * static_cast<double>(a.batch_size), step);
        if (!bar.interactive()) {
          std::printf("epoch %lld step %lld/%lld D %.4f G %.4f\n",
                      static_cast<long long>(epoch + 1), static_cast<long long>(step),
                      static_cast<long long>(total), d_value, g_value);
          std::fflush(stdout);
        }
      }
      // The epoch's sample grid (and score) belongs to its last step and comes before that
      // step's checkpoint: a run stopped or killed after the checkpoint resumes with it written.
      if (step % per_epoch == 0 || step == total) {
        bar.finish();
        ember::NoGradGuard no_grad;
        G->eval();
        Tensor grid =
            ember::make_grid(G->forward(fixed_noise).cpu(), 8, 2, std::make_pair(-1.0, 1.0));
        G->train();
        const std::string png =
            (fs::path(a.out) / ("samples_epoch" + std::to_string(epoch + 1) + ".png")).string();
        ember::save_image(grid, png);
        log.image("samples", grid, step);
        std::printf("epoch %lld: samples in %s\n", static_cast<long long>(epoch + 1), png.c_str());
        if (quality) {
          last_fid = (*quality)(G);
          log.scalar("quality/fid", last_fid, step);
          std::printf("epoch %lld: Frechet distance %.3f (%lld samples, classifier features)\n",
                      static_cast<long long>(epoch + 1), last_fid,
                      static_cast<long long>(a.fid_samples));
        }
        std::fflush(stdout);
      }
      if (a.ckpt_every > 0 && step % a.ckpt_every == 0) save(step);
      if (step == a.stop_at) std::raise(SIGINT);  // the test hook: an interruption at this step
    }
    bar.finish();
  }
  save(step);
  const double secs = seconds_since(t_start);
  if (report_interrupted(step, ckpt_path)) return 130;
  std::printf(
      "summary: loss=%s steps=%lld d_loss=%.4f g_loss=%.4f fid=%.3f time=%s "
      "checkpoint=%s\n",
      a.loss.c_str(), static_cast<long long>(step), d_ema, g_ema, last_fid,
      format_duration(secs).c_str(), ckpt_path.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"Train a DCGAN on Fashion-MNIST with Ember."};
  app.add_option("--data", a.data,
                 "Fashion-MNIST folder (default: Debian's /usr/share/datasets/fashion-mnist or "
                 "$EMBER_FASHION_MNIST)");
  app.add_option("--loss", a.loss, "bce (DCGAN) or wgan-gp (critic with gradient penalty)")
      ->capture_default_str();
  app.add_option("--lr", a.lr, "Adam learning rate of both networks")->capture_default_str();
  app.add_option("--gp-weight", a.gp_weight, "gradient-penalty weight (wgan-gp)")
      ->capture_default_str();
  app.add_option("--critic-steps", a.critic_steps, "critic steps per generator step (wgan-gp)")
      ->capture_default_str();
  app.add_option("--fid-classifier", a.fid_classifier,
                 "checkpoint of ember-train-resnet on Fashion-MNIST: score each epoch by the "
                 "Frechet distance in its feature space (e.g. runs/demo/last.ckpt)");
  app.add_option("--fid-samples", a.fid_samples, "images per Frechet distance (real and generated)")
      ->capture_default_str();
  a.out = "runs/gan";
  add_train_options(app, a);
  CLI11_PARSE(app, argc, argv);
  if (!check_train_options(a)) return 2;
  if (a.critic_steps < 1 || a.fid_samples < 2) {
    std::fprintf(stderr, "error: --critic-steps must be at least 1, --fid-samples at least 2\n");
    return 2;
  }
  return run_guarded([&] { return run(a); });
}
