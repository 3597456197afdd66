// ember-train-resnet: trains a ResNet classifier on Fashion-MNIST (default), CIFAR-10 or an
// ImageFolder tree, with the classic recipe: random crop with padding 4, horizontal flip,
// normalize; SGD with Nesterov momentum and weight decay; a OneCycle or cosine schedule stepped
// per batch; test accuracy every epoch; checkpoints that resume bit-identically.
//
//   ember-train-resnet                              # ResNet-20, Fashion-MNIST, 5 epochs
//   ember-train-resnet --dataset cifar10 --data ~/cifar-10-batches-bin --model resnet56
//   ember-train-resnet --resume runs/resnet/last.ckpt
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "common/train_util.hpp"
#include "ember/ember.hpp"
#include "resnet/models.hpp"

namespace fs = std::filesystem;
namespace data = ember::data;
namespace T = ember::data::transforms;
using ember::Tensor;
using namespace ember_examples;

namespace {

struct Args : TrainArgs {
  std::string model = "resnet20", dataset = "fashion-mnist", schedule = "onecycle", pretrained;
  int64_t eval_every = 1, limit_test = 0, image_size = 224;
  double lr = 0.1, momentum = 0.9, weight_decay = 5e-4;
  bool freeze_backbone = false, channels_last = false;
};

/// A batch of images on the model's device, channels-last when the run asks for it.
Tensor to_model(const Tensor& images, ember::Device device, bool channels_last) {
  Tensor x = images.to(device);
  return channels_last ? x.contiguous(ember::MemoryFormat::ChannelsLast) : x;
}

struct Data {
  data::DatasetPtr train, test;
  int64_t num_classes = 10, in_channels = 1;
};

Data load_data(const Args& a) {
  Data d;
  if (a.dataset == "fashion-mnist") {
    const std::string root = a.data.empty() ? data::default_fashion_mnist_root() : a.data;
    auto norm = T::Normalize({0.2860}, {0.3530});
    d.train = std::make_shared<data::FashionMNIST>(
        root, true,
        T::Compose({T::RandomCrop(28, 4), T::RandomHorizontalFlip(), T::ToTensor(), norm}));
    d.test = std::make_shared<data::FashionMNIST>(root, false, T::Compose({T::ToTensor(), norm}));
    d.in_channels = 1;
  } else if (a.dataset == "cifar10") {
    EMBER_CHECK(!a.data.empty(), ember::ValueError,
                "--dataset cifar10 needs --data DIR (the folder of data_batch_*.bin)");
    auto norm = T::Normalize({0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616});
    d.train = std::make_shared<data::CIFAR10>(
        a.data, true,
        T::Compose({T::RandomCrop(32, 4), T::RandomHorizontalFlip(), T::ToTensor(), norm}));
    d.test = std::make_shared<data::CIFAR10>(a.data, false, T::Compose({T::ToTensor(), norm}));
    d.in_channels = 3;
  } else if (a.dataset == "folder") {
    EMBER_CHECK(
        !a.data.empty(), ember::ValueError,
        "--dataset folder needs --data DIR with DIR/train/<class>/... and DIR/val/<class>/...");
    auto norm = T::Normalize({0.485, 0.456, 0.406}, {0.229, 0.224, 0.225});
    const int64_t s = a.image_size;
    auto train = std::make_shared<data::ImageFolder>(
        (fs::path(a.data) / "train").string(),
        T::Compose({T::RandomResizedCrop(s), T::RandomHorizontalFlip(), T::ToTensor(), norm}));
    d.num_classes = static_cast<int64_t>(train->classes().size());
    d.train = train;
    d.test = std::make_shared<data::ImageFolder>(
        (fs::path(a.data) / "val").string(),
        T::Compose({T::Resize(s * 256 / 224), T::CenterCrop(s), T::ToTensor(), norm}));
    d.in_channels = 3;
  } else {
    throw ember::ValueError("--dataset must be fashion-mnist, cifar10 or folder, got '" +
                            a.dataset + "'");
  }
  d.train = first_examples(d.train, a.limit_train);
  d.test = first_examples(d.test, a.limit_test);
  return d;
}

// Loss and accuracy over a dataset, in eval mode.
std::pair<double, double> evaluate(resnet::Classifier& model, const data::DatasetPtr& ds,
                                   const Args& a) {
  ember::NoGradGuard no_grad;
  model->eval();
  double loss_sum = 0;
  int64_t correct = 0, n = 0;
  data::DataLoader loader(ds, data::DataLoaderOptions(256).num_workers(a.workers));
  for (data::Example& b : loader) {
    const ember::Device device = model->fc->weight.device();
    Tensor logits = model->forward(to_model(b.data, device, a.channels_last));
    Tensor target = b.target.to(device);
    loss_sum += ember::nn::functional::cross_entropy(logits, target).item<double>() *
                static_cast<double>(b.data.size(0));
    correct += logits.argmax(1).eq(target).sum().item<int64_t>();
    n += b.data.size(0);
  }
  model->train();
  return {loss_sum / static_cast<double>(std::max<int64_t>(n, 1)),
          static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(n, 1))};
}

int run(const Args& a) {
  if (a.threads > 0) ember::set_num_threads(a.threads);
  ember::manual_seed(a.seed);
  Data d = load_data(a);

  // The ImageNet-layout models (resnet18/34/50) get the small-input stem (3x3 conv, no max pool)
  // on 28x28 and 32x32 images.
  const bool small_input = a.dataset != "folder";
  // Model: fresh, or from pretrained weights (a torchvision export), with a new head when the
  // number of classes differs.
  resnet::Classifier model = resnet::make_model(a.model, d.num_classes, d.in_channels, small_input);
  if (!a.pretrained.empty()) {
    ember::StateDict sd = ember::load_safetensors(a.pretrained);
    const int64_t pretrained_classes = sd.at("fc.weight").size(0);
    if (pretrained_classes != d.num_classes) {
      model = resnet::make_model(a.model, pretrained_classes, d.in_channels, small_input);
      model->load_state_dict(sd);
      resnet::replace_head(model, d.num_classes);
    } else {
      model->load_state_dict(sd);
    }
  }
  if (a.freeze_backbone) resnet::freeze_backbone(model);
  if (a.device != "cpu") model->to(ember::Device(a.device));
  if (a.channels_last) model->to(ember::MemoryFormat::ChannelsLast);

  std::vector<Tensor> params;
  for (const Tensor& p : model->parameters())
    if (p.requires_grad()) params.push_back(p);
  ember::optim::SGD opt(params, ember::optim::SGDOptions(a.lr)
                                    .momentum(a.momentum)
                                    .nesterov(true)
                                    .weight_decay(a.weight_decay));

  data::DataLoader loader(d.train, data::DataLoaderOptions(a.batch_size)
                                       .shuffle(true)
                                       .drop_last(true)
                                       .num_workers(a.workers)
                                       .seed(a.seed));
  const int64_t per_epoch = loader.size();
  EMBER_CHECK(per_epoch > 0, ember::ValueError, "the training set (", d.train->size(),
              " images) is smaller than one batch of ", a.batch_size);
  const int64_t total =
      a.steps > 0 ? std::min(a.steps, a.epochs * per_epoch) : a.epochs * per_epoch;
  std::unique_ptr<ember::optim::LRScheduler> sched;
  if (a.schedule == "onecycle") {
    sched = std::make_unique<ember::optim::OneCycleLR>(opt, a.lr, total);
  } else if (a.schedule == "cosine") {
    sched = std::make_unique<ember::optim::CosineAnnealingLR>(opt, total);
  } else {
    throw ember::ValueError("--schedule must be onecycle or cosine, got '" + a.schedule + "'");
  }

  // The loss logged every log_every steps is the mean since the last log; these sums, the
  // running average and the last evaluation travel in the checkpoint, so a resumed run logs and
  // prints what an uninterrupted run does.
  int64_t step = 0, interval_n = 0;
  double interval_loss = 0, train_loss_ema = 0, last_acc = 0, last_test_loss = 0;
  Amp amp(a.amp);
  const std::string ckpt_path = (fs::path(a.out) / "last.ckpt").string();
  if (!a.resume.empty()) {
    ember::Checkpoint c = ember::load_checkpoint(a.resume);
    model->load_state_dict(c.model);
    opt.load_state_dict(c.optimizer);
    sched->load_state_dict(c.scheduler);
    ember::restore_rng(c);
    step = c.step;
    interval_loss = get_exact(c.metadata, "train.interval_loss");
    interval_n = static_cast<int64_t>(get_exact(c.metadata, "train.interval_steps"));
    train_loss_ema = get_exact(c.metadata, "train.loss_ema");
    last_acc = get_exact(c.metadata, "test.accuracy");
    last_test_loss = get_exact(c.metadata, "test.loss");
    amp.load(c.metadata);
    std::printf("resumed from %s at step %lld\n", a.resume.c_str(), static_cast<long long>(step));
  }
  auto save = [&](int64_t at) {
    ember::Checkpoint c;
    c.model = model->state_dict();
    c.optimizer = opt.state_dict();
    c.scheduler = sched->state_dict();
    c.step = at;
    c.metadata["model"] = a.model;
    c.metadata["dataset"] = a.dataset;
    set_exact(c.metadata, "train.interval_loss", interval_loss);
    set_exact(c.metadata, "train.interval_steps", static_cast<double>(interval_n));
    set_exact(c.metadata, "train.loss_ema", train_loss_ema);
    set_exact(c.metadata, "test.accuracy", last_acc);
    set_exact(c.metadata, "test.loss", last_test_loss);
    amp.save(c.metadata);
    ember::save_checkpoint(ckpt_path, c);
  };

  remove_stale_temporaries(ckpt_path);
  MetricsLogger log(a.out, step);
  install_stop_handler();
  std::printf(
      "%s on %s: %lld train / %lld test images, %lld steps of %lld (%lld per epoch), "
      "%lld parameters\n",
      a.model.c_str(), a.dataset.c_str(), static_cast<long long>(d.train->size()),
      static_cast<long long>(d.test->size()), static_cast<long long>(total - step),
      static_cast<long long>(a.batch_size), static_cast<long long>(per_epoch),
      static_cast<long long>(model->num_parameters()));

  const auto t_start = std::chrono::steady_clock::now();
  model->train();
  while (step < total && !stop_requested()) {
    const int64_t epoch = step / per_epoch;
    ProgressBar bar(std::min(per_epoch, total - epoch * per_epoch), "it");
    const auto t_epoch = std::chrono::steady_clock::now();
    for (auto it = loader.iterate(epoch, step % per_epoch); it != loader.end(); ++it) {
      if (step >= total || stop_requested()) break;
      opt.zero_grad();
      const ember::Device device(a.device);
      Tensor loss;
      {
        auto autocast = amp.scope();
        loss = ember::nn::functional::cross_entropy(
            model->forward(to_model(it->data, device, a.channels_last)), it->target.to(device));
      }
      amp.scaler().scale(loss).backward();
      amp.scaler().step(opt);
      amp.scaler().update();
      sched->step();
      ++step;
      const double l = loss.item<double>();
      interval_loss += l;
      ++interval_n;
      train_loss_ema = step == 1 ? l : 0.98 * train_loss_ema + 0.02 * l;
      char postfix[64];
      std::snprintf(postfix, sizeof(postfix), "loss %.4f", train_loss_ema);
      bar.update(it.batch_index() + 1, postfix);
      if (step % a.log_every == 0) {
        const double ips = bar.rate() * static_cast<double>(a.batch_size);
        log.scalar("train/loss", interval_loss / static_cast<double>(interval_n), step);
        log.scalar("train/lr", opt.param_groups()[0].options().lr(), step);
        log.scalar("train/images_per_sec", ips, step);
        if (!bar.interactive()) {
          std::printf("epoch %lld step %lld/%lld loss %.4f lr %.5f %.0f img/s\n",
                      static_cast<long long>(epoch + 1), static_cast<long long>(step),
                      static_cast<long long>(total),
                      interval_loss / static_cast<double>(interval_n),
                      opt.param_groups()[0].options().lr(), ips);
          std::fflush(stdout);
        }
        interval_loss = 0;
        interval_n = 0;
      }
      // The epoch's evaluation belongs to its last step and comes before that step's checkpoint:
      // a run stopped or killed after the checkpoint resumes with the evaluation already logged.
      const bool epoch_done = step % per_epoch == 0 || step == total;
      if (epoch_done && ((epoch + 1) % a.eval_every == 0 || step == total)) {
        bar.finish();
        auto [tl, acc] = evaluate(model, d.test, a);
        last_acc = acc;
        last_test_loss = tl;
        const double secs = seconds_since(t_epoch);
        log.scalar("test/loss", tl, step);
        log.scalar("test/accuracy", acc, step);
        log.scalar("time/epoch_seconds", secs, step);
        std::printf("epoch %lld: test loss %.4f, accuracy %.2f%% (%s)\n",
                    static_cast<long long>(epoch + 1), tl, 100 * acc,
                    format_duration(secs).c_str());
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
      "summary: model=%s dataset=%s steps=%lld test_accuracy=%.4f test_loss=%.4f "
      "train_loss=%.4f time=%s checkpoint=%s\n",
      a.model.c_str(), a.dataset.c_str(), static_cast<long long>(step), last_acc, last_test_loss,
      train_loss_ema, format_duration(secs).c_str(), ckpt_path.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"Train a ResNet classifier with Ember (Fashion-MNIST by default)."};
  app.add_option("--model", a.model,
                 "resnet20, resnet32, resnet56, resnet110, resnet18, resnet34, resnet50")
      ->capture_default_str();
  app.add_option("--dataset", a.dataset, "fashion-mnist, cifar10 or folder")->capture_default_str();
  app.add_option("--data", a.data,
                 "dataset folder (default for fashion-mnist: Debian's "
                 "/usr/share/datasets/fashion-mnist or $EMBER_FASHION_MNIST)");
  app.add_option("--lr", a.lr, "peak learning rate (OneCycle max_lr or cosine start)")
      ->capture_default_str();
  app.add_option("--momentum", a.momentum, "SGD Nesterov momentum")->capture_default_str();
  app.add_option("--weight-decay", a.weight_decay, "SGD weight decay")->capture_default_str();
  app.add_option("--schedule", a.schedule, "onecycle or cosine, stepped per batch")
      ->capture_default_str();
  app.add_option("--eval-every", a.eval_every, "evaluate on the test set every N epochs")
      ->capture_default_str();
  app.add_option("--limit-test", a.limit_test, "use only the first N test images (0: all)")
      ->capture_default_str();
  app.add_option("--image-size", a.image_size, "crop size for --dataset folder")
      ->capture_default_str();
  app.add_option("--pretrained", a.pretrained,
                 "safetensors weights with torchvision's names (e.g. exported resnet18)");
  app.add_flag("--freeze-backbone", a.freeze_backbone, "train only the classifier head");
  app.add_flag("--channels-last", a.channels_last,
               "keep images, activations and convolution weights channels-last (NHWC memory), "
               "the layout the CUDA convolution kernels read without a transpose");
  a.out = "runs/resnet";
  add_train_options(app, a);
  CLI11_PARSE(app, argc, argv);
  if (!check_train_options(a)) return 2;
  if (a.eval_every < 1) {
    std::fprintf(stderr, "error: --eval-every must be at least 1\n");
    return 2;
  }
  return run_guarded([&] { return run(a); });
}
