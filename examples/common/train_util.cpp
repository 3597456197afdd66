#include "train_util.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <vector>

#include "ember/error.hpp"

namespace ember_examples {

std::string format_duration(double s) {
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%dh%02dm", static_cast<int>(s / 3600),
                  static_cast<int>(s / 60) % 60);
  } else if (s >= 60) {
    std::snprintf(buf, sizeof(buf), "%dm%02ds", static_cast<int>(s / 60), static_cast<int>(s) % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%.1fs", s);
  }
  return buf;
}

// ---- flags ----

void add_train_options(CLI::App& app, TrainArgs& a) {
  app.add_option("--epochs", a.epochs, "epochs to train")->capture_default_str();
  app.add_option("--steps", a.steps, "stop after this many steps in all (0: epochs decide)")
      ->capture_default_str();
  app.add_option("--batch-size", a.batch_size, "examples per step (images; contexts for GPT)")
      ->capture_default_str();
  app.add_option("--device", a.device, "cpu or cuda")->capture_default_str();
  app.add_option("--threads", a.threads, "CPU threads for kernels (0: all cores)")
      ->capture_default_str();
  app.add_option("--workers", a.workers, "data-loading threads")->capture_default_str();
  app.add_option("--seed", a.seed, "seed for weights, noise, shuffling and augmentation")
      ->capture_default_str();
  app.add_option("--out", a.out, "output folder: metrics.csv, tb/ (TensorBoard), last.ckpt")
      ->capture_default_str();
  app.add_option("--resume", a.resume, "checkpoint to continue from (e.g. <out>/last.ckpt)");
  app.add_option("--log-every", a.log_every, "log training metrics every N steps")
      ->capture_default_str();
  app.add_option("--ckpt-every", a.ckpt_every, "checkpoint every N steps (0: only at the end)")
      ->capture_default_str();
  app.add_option("--limit-train", a.limit_train, "use only the first N training examples (0: all)")
      ->capture_default_str();
  app.add_option("--stop-at-step", a.stop_at,
                 "act as if Ctrl-C came after step N: checkpoint and exit (for resume tests)")
      ->capture_default_str();
  app.add_option("--amp", a.amp,
                 "mixed precision: off, bf16 or fp16 (autocast; fp16 adds loss scaling)")
      ->check(CLI::IsMember({"off", "bf16", "fp16"}))
      ->capture_default_str();
}

bool check_train_options(const TrainArgs& a) {
  if (a.epochs < 1 || a.batch_size < 1 || a.log_every < 1 || a.steps < 0 || a.ckpt_every < 0 ||
      a.workers < 0 || a.threads < 0) {
    std::fprintf(stderr,
                 "error: --epochs, --batch-size and --log-every must be at least 1; --steps, "
                 "--ckpt-every, --workers and --threads at least 0\n");
    return false;
  }
  return true;
}

int run_guarded(const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}

ember::data::DatasetPtr first_examples(ember::data::DatasetPtr ds, int64_t n) {
  if (n <= 0 || n >= ds->size()) return ds;
  std::vector<int64_t> first(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) first[static_cast<size_t>(i)] = i;
  return std::make_shared<ember::data::Subset>(ds, first);
}

// ---- ProgressBar ----

ProgressBar::ProgressBar(int64_t total, std::string unit)
    : total_(total), unit_(std::move(unit)), interactive_(isatty(fileno(stdout)) != 0) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

double ProgressBar::rate() const {
  const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return t > 0 && first_done_ >= 0 ? static_cast<double>(done_ - first_done_) / t : 0.0;
}

void ProgressBar::update(int64_t done, const std::string& postfix) {
  const auto now = std::chrono::steady_clock::now();
  if (first_done_ < 0) {
    first_done_ = done;
    start_ = now;
  }
  done_ = done;
  if (!interactive_) return;
  if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double r = elapsed > 0 ? static_cast<double>(done - first_done_) / elapsed : 0.0;
  const double eta = r > 0 ? static_cast<double>(total_ - done) / r : 0.0;
  constexpr int kWidth = 28;
  const int filled =
      total_ > 0
          ? static_cast<int>(kWidth * static_cast<double>(done) / static_cast<double>(total_))
          : 0;
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(kWidth, '.');
  std::printf("\r[%s] %lld/%lld %s  %.2f %s/s  eta %s  %s\033[K", bar.c_str(),
              static_cast<long long>(done), static_cast<long long>(total_), unit_.c_str(), r,
              unit_.c_str(), format_duration(eta).c_str(), postfix.c_str());
  std::fflush(stdout);
}

void ProgressBar::finish() {
  if (interactive_ && !finished_) std::printf("\n");
  finished_ = true;
}

// ---- MetricsLogger ----

MetricsLogger::MetricsLogger(const std::string& out_dir, int64_t resume_step) {
  namespace fs = std::filesystem;
  fs::create_directories(out_dir);
  const std::string path = (fs::path(out_dir) / "metrics.csv").string();
  if (resume_step > 0 && fs::exists(path)) {  // keep the rows up to the resume step
    std::vector<std::string> keep;
    {
      std::ifstream in(path);
      std::string line;
      std::getline(in, line);  // header
      while (std::getline(in, line)) {
        const long long step = std::atoll(line.c_str());
        if (step <= resume_step) keep.push_back(line);
      }
    }
    // The shortened file replaces the old one by rename: truncating in place would lose every
    // row if the process were killed before they were written back.
    const std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << "step,tag,value\n";
      for (const std::string& l : keep) out << l << "\n";
      out.close();
      EMBER_CHECK(out.good(), ember::IOError, "[MetricsLogger] cannot write '", tmp, "'");
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    EMBER_CHECK(!ec, ember::IOError, "[MetricsLogger] cannot rename '", tmp, "' to '", path,
                "': ", ec.message());
    csv_.open(path, std::ios::app);
  } else {
    csv_.open(path, std::ios::trunc);
    csv_ << "step,tag,value\n";
  }
  EMBER_CHECK(csv_.good(), ember::IOError, "[MetricsLogger] cannot write '", path, "'");
  csv_.flush();
  tb_ = std::make_unique<ember::TensorBoardWriter>((fs::path(out_dir) / "tb").string());
}

void MetricsLogger::scalar(const std::string& tag, double value, int64_t step) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.9g", value);
  csv_ << step << "," << tag << "," << buf << "\n";
  csv_.flush();
  tb_->add_scalar(tag, value, step);
}

void MetricsLogger::image(const std::string& tag, const ember::Tensor& image, int64_t step) {
  tb_->add_image(tag, image, step);
}

// ---- stop handling ----

namespace {
std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int sig) {
  if (g_stop.exchange(true)) {  // second signal: default action
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}
}  // namespace

void install_stop_handler() {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

bool stop_requested() { return g_stop.load(); }

bool report_interrupted(int64_t step, const std::string& ckpt_path) {
  if (!stop_requested()) return false;
  std::printf("interrupted: checkpoint saved at step %lld to %s\n", static_cast<long long>(step),
              ckpt_path.c_str());
  return true;
}

// ---- checkpoint helpers ----

void set_exact(std::map<std::string, std::string>& metadata, const std::string& key, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%a", v);  // hex float: every bit round-trips through strtod
  metadata[key] = buf;
}

namespace {
ember::optim::GradScalerOptions scaler_options(const std::string& mode) {
  ember::optim::GradScalerOptions o;
  o.enabled = mode == "fp16";
  return o;
}
}  // namespace

Amp::Amp(const std::string& mode)
    : enabled_(mode != "off"),
      dtype_(mode == "fp16" ? ember::kFloat16 : ember::kBFloat16),
      scaler_(scaler_options(mode)) {
  EMBER_CHECK(mode == "off" || mode == "bf16" || mode == "fp16", ember::ValueError,
              "[--amp] expected off, bf16 or fp16, got '", mode, "'");
}

void Amp::save(std::map<std::string, std::string>& metadata) const {
  const ember::StateDict sd = scaler_.state_dict();
  set_exact(metadata, "train.amp_scale", sd.get_double("scale"));
  set_exact(metadata, "train.amp_growth_tracker",
            static_cast<double>(sd.get_int("_growth_tracker")));
}

void Amp::load(const std::map<std::string, std::string>& metadata) {
  if (!metadata.count("train.amp_scale")) return;  // written without --amp fp16: fresh scaler
  ember::StateDict sd = scaler_.state_dict();
  sd.set_double("scale", get_exact(metadata, "train.amp_scale"));
  sd.set_int("_growth_tracker",
             static_cast<int64_t>(get_exact(metadata, "train.amp_growth_tracker")));
  scaler_.load_state_dict(sd);
}

double get_exact(const std::map<std::string, std::string>& metadata, const std::string& key,
                 double fallback) {
  auto it = metadata.find(key);
  if (it == metadata.end()) return fallback;
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  EMBER_CHECK(end != it->second.c_str() && *end == '\0', ember::IOError, "the checkpoint's '", key,
              "' is not a number: '", it->second, "'");
  return v;
}

int remove_stale_temporaries(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path p(path);
  const fs::path dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  const std::string prefix = "." + p.filename().string() + ".tmp.";
  std::vector<fs::path> stale;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    char* rest = nullptr;
    const long pid = std::strtol(name.c_str() + prefix.size(), &rest, 10);
    if (pid <= 0 || *rest != '.') continue;  // not a name AtomicWriter makes
    const bool writer_gone = pid == static_cast<long>(::getpid()) ||
                             (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH);
    if (writer_gone) stale.push_back(it->path());
  }
  int removed = 0;
  for (const fs::path& f : stale) removed += fs::remove(f, ec) ? 1 : 0;
  return removed;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace ember_examples
