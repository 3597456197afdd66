// Helpers shared by the example trainers: a terminal progress bar (plain log lines when stdout is
// not a terminal), metrics to metrics.csv and TensorBoard, Ctrl-C handling, and small formatting.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "ember/autocast.hpp"
#include "ember/data/dataset.hpp"
#include "ember/io/tensorboard.hpp"
#include "ember/optim/grad_scaler.hpp"

namespace ember_examples {

/// The flags every trainer has. A trainer sets its own defaults (e.g. `out`) before
/// add_train_options, which records them for --help.
struct TrainArgs {
  std::string data, out, resume, device = "cpu";
  int64_t epochs = 5, steps = 0, batch_size = 128, log_every = 50, ckpt_every = 0;
  int64_t limit_train = 0, stop_at = 0;
  int threads = 0, workers = 2;
  uint64_t seed = 0;
  std::string amp = "off";
};
/// Adds --epochs --steps --batch-size --device --threads --workers --seed --out --resume
/// --log-every --ckpt-every --limit-train --stop-at-step --amp (each with its default in --help).
void add_train_options(CLI::App& app, TrainArgs& a);
/// Checks the shared flags; false (after a message on stderr) when one is out of range.
bool check_train_options(const TrainArgs& a);

/// Runs a trainer's body: its exit status, or 1 after "error: <message>" on stderr when it throws
/// (bad data, a typed library error), so that no error ends in a crash.
int run_guarded(const std::function<int()>& body);

/// The first n examples of ds (all of them when n <= 0 or n >= its size).
ember::data::DatasetPtr first_examples(ember::data::DatasetPtr ds, int64_t n);

/// Seconds as "1h02m", "3m05s" or "12.3s".
std::string format_duration(double seconds);

/// step/total, rate, ETA and a caller-supplied postfix (e.g. the running loss). On a terminal it
/// redraws one line; otherwise update() prints nothing and the caller prints log lines.
class ProgressBar {
 public:
  ProgressBar(int64_t total, std::string unit);
  /// `done` steps finished of total; call at most a few times per second (it throttles itself).
  void update(int64_t done, const std::string& postfix = "");
  /// Ends the bar's line (terminal only); later calls do nothing.
  void finish();
  bool interactive() const { return interactive_; }
  /// Steps per second since the bar started (from its first update).
  double rate() const;

 private:
  int64_t total_, first_done_ = -1, done_ = 0;
  std::string unit_;
  bool interactive_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

/// Appends (step, tag, value) rows to <out>/metrics.csv and scalars to a TensorBoard event file
/// under <out>/tb. A resumed run appends to the same CSV (rows after the resume step are dropped
/// first, so the file never holds two values for one step and tag; the shortened file replaces the
/// old one by rename, so a kill at that moment loses no rows).
class MetricsLogger {
 public:
  MetricsLogger(const std::string& out_dir, int64_t resume_step);
  void scalar(const std::string& tag, double value, int64_t step);
  void image(const std::string& tag, const ember::Tensor& image, int64_t step);
  ember::TensorBoardWriter& tensorboard() { return *tb_; }

 private:
  std::ofstream csv_;
  std::unique_ptr<ember::TensorBoardWriter> tb_;
};

/// Installs a SIGINT/SIGTERM handler that only sets a flag: the training loop checks
/// stop_requested(), saves a checkpoint and exits. A second Ctrl-C kills the process as usual.
void install_stop_handler();
bool stop_requested();
/// After the final checkpoint: true, once "interrupted: checkpoint saved at step N to PATH" is
/// printed, when a stop was requested (the trainer then exits with status 130).
bool report_interrupted(int64_t step, const std::string& ckpt_path);

/// Doubles kept exactly in a checkpoint's metadata (hex-float text). A trainer keeps its running
/// loss sums and averages there, so that a resumed run logs what an uninterrupted run logs.
void set_exact(std::map<std::string, std::string>& metadata, const std::string& key, double v);
/// The value set_exact stored under key; `fallback` when there is none (an older checkpoint).
double get_exact(const std::map<std::string, std::string>& metadata, const std::string& key,
                 double fallback = 0);

/// --amp off|bf16|fp16: mixed precision for a trainer. The forward pass and the loss run inside
/// scope() (ember::autocast: matmuls and convolutions in the reduced dtype, losses in float32);
/// the weights and the optimizer stay float32. With fp16 the scaler does dynamic loss scaling
/// (a step with an overflowing gradient is skipped); otherwise it is disabled and passes through:
///
///   { auto ac = amp.scope(); loss = loss_fn(model->forward(x), y); }
///   amp.scaler().scale(loss).backward();
///   amp.scaler().unscale_(opt);   // before clipping
///   clip_grad_norm_(...);
///   amp.scaler().step(opt);
///   amp.scaler().update();
class Amp {
 public:
  /// ValueError for a mode other than off, bf16, fp16.
  explicit Amp(const std::string& mode);
  bool enabled() const { return enabled_; }
  ember::AutocastGuard scope() const {
    return ember::AutocastGuard(dtype_, std::nullopt, enabled_);
  }
  ember::optim::GradScaler& scaler() { return scaler_; }
  /// The scaler's state (scale, growth tracker) in a checkpoint's metadata, exactly.
  void save(std::map<std::string, std::string>& metadata) const;
  void load(const std::map<std::string, std::string>& metadata);

 private:
  bool enabled_;
  ember::DType dtype_;
  ember::optim::GradScaler scaler_;
};

/// Removes the temporary files that a writer of `path` killed mid-write left beside it
/// (".<name>.tmp.<pid>.<n>", see io/file.cpp) when process <pid> no longer exists or is this one
/// (a reused id): a run in the same output folder calls it once at start. Returns how many.
int remove_stale_temporaries(const std::string& path);

/// Seconds since t.
double seconds_since(std::chrono::steady_clock::time_point t);

}  // namespace ember_examples
