// Crash safety of checkpoints: ember-train-gpt (a 4.9 MB checkpoint after every step) is killed
// with SIGKILL 20 times, each time at a seeded random moment shortly after a checkpoint write
// began (inotify on the output folder reports the writer's temporary file), and resumed from
// what survived. After every kill last.ckpt loads, holds one of the two latest steps, and no
// partial file stands in for it; temporary files the kill left behind are removed when the next
// run starts. The chain of 20 killed runs, finished by one more run, must end bitwise where an
// uninterrupted run ends.
//
// The trainer starts through posix_spawn (the child only execs, so it is safe with threads in
// this process); stdout goes to a file the harness reads for the steps logged.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ember/ember.hpp"
#include "examples/trainer_test_util.hpp"
#include "io/io_test_util.hpp"

extern char** environ;

using namespace ember;
using namespace ember::test;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// The words of s (split at spaces).
std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// Starts `args` (args[0] is the program) with stdout and stderr going to `log`; its process id.
pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  REQUIRE(posix_spawn_file_actions_init(&actions) == 0);
  REQUIRE(posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                           0644) == 0);
  REQUIRE(posix_spawn_file_actions_adddup2(&actions, 1, 2) == 0);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE(rc == 0);
  return pid;
}

// Waits for pid; its exit status, or 128 + the signal that ended it.
int wait_for(pid_t pid) {
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The writer's process id when `name` is a temporary file AtomicWriter makes for last.ckpt
// (".last.ckpt.tmp.<pid>.<n>"), else 0.
pid_t temporary_writer(const std::string& name) {
  const std::string prefix = ".last.ckpt.tmp.";
  if (name.compare(0, prefix.size(), prefix) != 0) return 0;
  return static_cast<pid_t>(std::atol(name.c_str() + prefix.size()));
}

// The temporary files for <dir>/last.ckpt now in the folder, by name, with their writers.
std::map<std::string, pid_t> temporaries(const std::string& dir) {
  std::map<std::string, pid_t> found;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (pid_t writer = temporary_writer(name)) found[name] = writer;
  }
  return found;
}

// An inotify watch on a folder for files created, renamed away or removed.
struct DirWatch {
  int fd;
  explicit DirWatch(const std::string& dir) : fd(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) {
    REQUIRE(fd >= 0);
    REQUIRE(::inotify_add_watch(fd, dir.c_str(), IN_CREATE | IN_MOVED_FROM | IN_DELETE) >= 0);
  }
  ~DirWatch() { ::close(fd); }
  DirWatch(const DirWatch&) = delete;
  DirWatch& operator=(const DirWatch&) = delete;
};

// The events that arrive within 100 ms, as (file name, mask).
std::vector<std::pair<std::string, uint32_t>> next_events(int fd) {
  std::vector<std::pair<std::string, uint32_t>> events;
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 100) <= 0) return events;
  alignas(inotify_event) char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    for (ssize_t at = 0; at < n;) {
      const auto* e = reinterpret_cast<const inotify_event*>(buf + at);
      if (e->len > 0) events.emplace_back(e->name, e->mask);
      at += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
    }
  }
  return events;
}

// The last "step N/..." line of a trainer's log (0 when there is none) and the step of its
// "resumed from ... at step N" line (-1 when there is none).
std::pair<int64_t, int64_t> logged_steps(const std::string& log) {
  std::ifstream in(log);
  std::string line;
  int64_t last = 0, resumed = -1;
  while (std::getline(in, line)) {
    long long n = 0;
    if (std::sscanf(line.c_str(), "step %lld/", &n) == 1) last = n;
    const size_t at = line.find(" at step ");
    if (line.rfind("resumed from ", 0) == 0 && at != std::string::npos)
      resumed = std::atoll(line.c_str() + at + 9);
  }
  return {last, resumed};
}

bool process_exists(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

}  // namespace

TEST_CASE("ember-train-gpt: SIGKILL during checkpoint writes always leaves a loadable checkpoint",
          "[examples][crash]") {
  TempDir tmp;
  const std::string corpus = tmp.file("corpus.txt");
  data::write_text_file(corpus, tiny_corpus());
  // 2 layers x 128 wide: 407K parameters, a 4.9 MB checkpoint (weights and AdamW's two moments);
  // 2 contexts per step, so the checkpoint after every step takes about as long as the step.
  const std::vector<std::string> flags =
      words(std::string(EMBER_TRAIN_GPT) + " --data " + corpus +
            " --config tiny --n-embd 128 --steps 240 --batch-size 2 --threads 1 --workers 0"
            " --log-every 1 --eval-every 1000 --eval-batches 1 --max-new-tokens 1 --seed 11");
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = flags;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };

  // The reference: uninterrupted, one checkpoint at the end.
  const std::string ref = tmp.file("ref"), out = tmp.file("run");
  REQUIRE(wait_for(spawn(with({"--out", ref}), tmp.file("ref.log"))) == 0);
  REQUIRE(load_checkpoint(ref + "/last.ckpt").step == 240);

  fs::create_directories(out);
  DirWatch watch(out);
  constexpr uint64_t kSeed = 1234;
  constexpr int kKills = 20;
  std::mt19937_64 rng(kSeed);
  std::printf("SIGKILL harness: seed %llu, %d kills\n", static_cast<unsigned long long>(kSeed),
              kKills);
  int mid_write = 0, partial_rejected = 0, loads_ok = 0;
  double lifetime_sum_us = 0;  // how long temporary files lived, over all writes watched
  int64_t lifetime_n = 0, resume_step = 0;
  for (int kill_no = 0; kill_no < kKills; ++kill_no) {
    // Kill within the k-th checkpoint write of this run (the first run: once a checkpoint
    // exists), a random fraction in [0, 1) of the mean write time after its file appeared:
    // most kills land mid-write, a few just after the rename.
    const int k = kill_no == 0 ? 2 + static_cast<int>(rng() % 7) : 1 + static_cast<int>(rng() % 8);
    const double fraction = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    const std::string log = tmp.file("kill" + std::to_string(kill_no) + ".log");
    std::vector<std::string> extra = {"--out", out, "--ckpt-every", "1"};
    if (kill_no > 0) extra.insert(extra.end(), {"--resume", out + "/last.ckpt"});
    const pid_t pid = spawn(with(extra), log);
    INFO("kill " << kill_no << " (seed " << kSeed << "): pid " << pid << ", write " << k
                 << ", fraction " << fraction);

    // Watch the folder (inotify: woken as the file is created) for this process's temporary
    // files: the k-th one to appear triggers the kill; the renames time the writes.
    std::map<std::string, Clock::time_point> open;
    int appeared = 0;
    const Clock::time_point started = Clock::now();
    Clock::time_point trigger;
    while (appeared < k) {
      int status = 0;
      REQUIRE(::waitpid(pid, &status, WNOHANG) == 0);  // still running: the kill is not vacuous
      if (Clock::now() - started > std::chrono::seconds(60)) {
        ::kill(pid, SIGKILL);
        FAIL("no checkpoint write seen for 60 s");
      }
      for (const auto& [name, mask] : next_events(watch.fd)) {
        const Clock::time_point now = Clock::now();
        if (temporary_writer(name) != pid) continue;
        if (mask & IN_CREATE) {
          if (open.emplace(name, now).second && ++appeared == k) trigger = now;
        } else if (auto it = open.find(name); it != open.end()) {  // renamed or removed
          lifetime_sum_us += std::chrono::duration<double, std::micro>(now - it->second).count();
          ++lifetime_n;
          open.erase(it);
        }
      }
    }
    const double mean_us =
        lifetime_n > 0 ? lifetime_sum_us / static_cast<double>(lifetime_n) : 5000.0;
    const auto delay = std::chrono::microseconds(static_cast<int64_t>(fraction * mean_us));
    std::this_thread::sleep_until(trigger + delay);
    REQUIRE(::kill(pid, SIGKILL) == 0);
    REQUIRE(wait_for(pid) == 128 + SIGKILL);

    // What the kill left: the killed run's temporary file if it landed mid-write (a partial one
    // must fail to load); no leftover of an earlier run (the killed run removed them at start).
    bool left_temp = false, partial = false;
    for (const auto& [name, writer] : temporaries(out)) {
      INFO("leftover " << name);
      if (writer != pid) {
        REQUIRE(process_exists(writer));  // only a live writer's file may stay
        continue;
      }
      left_temp = true;
      try {
        (void)load_checkpoint(out + "/" + name);
      } catch (const IOError&) {
        partial = true;
      }
    }
    mid_write += left_temp;
    partial_rejected += partial;

    // last.ckpt is the old or the new checkpoint: it loads (checksum verified) and holds the
    // step logged last or the one before (the checkpoint of step N is written after N's log
    // line, and N's training starts only once checkpoint N - 1 is in place).
    const Checkpoint c = load_checkpoint(out + "/last.ckpt");
    ++loads_ok;
    const auto [last_logged, resumed] = logged_steps(log);
    REQUIRE(resumed == (kill_no == 0 ? -1 : resume_step));  // resumed from what survived
    REQUIRE(c.step >= 1);
    REQUIRE(c.step >= resume_step);
    REQUIRE((c.step == last_logged || c.step == last_logged - 1));
    std::printf(
        "kill %2d: pid %d, %5.0f us after write %d of the run began; last.ckpt holds step %lld "
        "(last logged %lld)%s\n",
        kill_no, static_cast<int>(pid), std::chrono::duration<double, std::micro>(delay).count(), k,
        static_cast<long long>(c.step), static_cast<long long>(last_logged),
        left_temp ? (partial ? "; partial temporary file left (rejected on load)"
                             : "; complete temporary file left (killed before the rename)")
                  : "");
    resume_step = c.step;
  }

  // The last run resumes from what the 20th kill left and finishes: bitwise the uninterrupted
  // run (weights, AdamW state, schedule, generators, metadata, every logged value), with every
  // temporary file gone.
  REQUIRE(wait_for(spawn(with({"--out", out, "--ckpt-every", "1", "--resume", out + "/last.ckpt"}),
                         tmp.file("final.log"))) == 0);
  REQUIRE(logged_steps(tmp.file("final.log")).second == resume_step);
  for (const auto& [name, writer] : temporaries(out)) {
    INFO("leftover " << name);
    REQUIRE(process_exists(writer));
  }
  require_same_checkpoint(ref + "/last.ckpt", out + "/last.ckpt");
  require_same_rows(metric_rows(out), metric_rows(ref));

  const double mean_ms =
      lifetime_n > 0 ? lifetime_sum_us / 1000.0 / static_cast<double>(lifetime_n) : 0;
  WARN("SIGKILL harness (seed " << kSeed << "): " << kKills << " kills, " << mid_write
                                << " with the killed writer's temporary file present ("
                                << partial_rejected << " partial, rejected on load), " << loads_ok
                                << " loads of last.ckpt OK; temporary files lived " << mean_ms
                                << " ms on average over " << lifetime_n << " writes watched");
  REQUIRE(loads_ok == kKills);
  // The harness aims its kills at writes (about 3 in 4 land mid-write on an idle machine); far
  // fewer would mean it no longer finds them.
  REQUIRE(mid_write >= kKills / 4);
}
