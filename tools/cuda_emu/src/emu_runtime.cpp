// cuda_emu: the emulated GPU. One device (H200-like properties); device memory is host memory
// from mmap with guard pages; streams and events are synchronous (work runs at the call); a
// kernel launch runs its grid block by block, each thread of a block a fiber with its own stack
// on the calling OS thread, switched only at barriers, warp collectives and exit.
//
// Misuse aborts with a message naming the kernel, block and thread: a __syncthreads that some
// thread of the block never reaches, threads waiting at different barriers, warp collectives with
// mismatched masks or a lane that exited, bad launch geometry, shared memory over the limit, a
// kernel pointer argument or a copy range outside device memory, and (via SIGSEGV) accesses past
// an allocation's end or a fiber stack overflow.
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#if !defined(__x86_64__)
#error "cuda_emu: the fiber switch is written for x86-64"
#endif

struct CUstream_st {
  unsigned flags;
  int priority;
};
struct CUevent_st {
  unsigned flags;
  bool recorded;
  std::chrono::steady_clock::time_point time;
};

// ---- the fiber switch: saves the callee-saved registers. MXCSR and the x87 control word are
// not switched (slow, and nothing in device code changes them). ----
extern "C" void ember_emu_switch(void** save_sp, void* load_sp);
asm(R"(
  .text
  .globl ember_emu_switch
  .hidden ember_emu_switch
  .type ember_emu_switch, @function
ember_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size ember_emu_switch, .-ember_emu_switch
)");

bool stream_is_live(cudaStream_t s);

namespace ember_emu {
namespace {

// ---- device properties (H200) ----
constexpr int kSMs = 132;  // EMBER_EMU_SMS=n emulates n of them (sm_count())
constexpr size_t kStaticSharedLimit = 48 * 1024;
constexpr size_t kSharedOptinLimit = 227 * 1024;
constexpr size_t kSharedPerSM = 228 * 1024;
constexpr int kMaxThreads = 1024;
constexpr size_t kTotalMemory = size_t{143771} << 20;  // 141 GiB-ish, as an H200 reports
constexpr size_t kPage = 4096;

size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

/// The emulated GPU's SMs: kSMs, or EMBER_EMU_SMS (1 .. kSMs), so that a persistent kernel's
/// grid, sized by the SM count, is small enough to run its blocks together.
int sm_count() {
  static const int n = [] {
    const char* e = std::getenv("EMBER_EMU_SMS");
    const int v = e != nullptr ? std::atoi(e) : kSMs;
    return v >= 1 && v <= kSMs ? v : kSMs;
  }();
  return n;
}

// ---- errors ----
thread_local cudaError_t t_last_error = cudaSuccess;
cudaError_t fail(cudaError_t e) {
  t_last_error = e;
  return e;
}

// ---- device memory: each allocation between two PROT_NONE guard pages, its end at the upper one ----
struct Allocation {
  size_t size;
  char* map_base;
  size_t map_len;
};
std::mutex g_mem_mutex;
std::map<uintptr_t, Allocation> g_allocations;  // by start address
size_t g_used = 0;

// ---- the kernel being run ----
enum class FiberState : int { kReady, kBlockWait, kWarpWait, kDone };

struct Fiber {
  void* sp = nullptr;
  FiberState state = FiberState::kReady;
  uint3 tid{0, 0, 0};
  int block = 0;                        // its block's rank in the cluster (0 without one)
  bool cluster_armed = false;           // arrived at barrier.cluster, not yet waited
  uint64_t cluster_generation = 0;      // the barrier.cluster phase it arrived in
  const char* polling = nullptr;        // set by spin_yield until the fiber runs again
  std::vector<WgmmaOp> wgmma_ops;       // issued, not yet run (wgmma.mma_async)
  std::vector<std::pair<uint32_t, uint32_t>> wgmma_reads;  // their shared byte ranges [lo, hi)
  std::vector<size_t> wgmma_groups;     // end index in wgmma_ops of each committed group
  std::vector<uint64_t> wgmma_seq;      // per queued op: its number among this thread's
                                        // register-A wgmma (the key of its warp's fragments)
  uint64_t wgmma_rs_issued = 0;         // register-A wgmma issued by this thread
  struct Copy {
    void* dst;
    unsigned char data[16];
  };
  std::vector<Copy> copies;             // cp.async issued, not yet landed
  std::vector<size_t> copy_groups;      // end index in copies of each committed group
  struct BulkReduce {                   // cp.reduce.async.bulk.tensor issued, not yet complete
    uint32_t base;                      // its source box's shared address
    const void* tmap;                   // its tensor map (the kernel's parameter)
    int32_t coords[5];
    bool read;                          // its source already read into `image`
    std::vector<char> image;
  };
  std::vector<BulkReduce> bulk;
  std::vector<size_t> bulk_groups;      // end index in bulk of each committed group
};

struct Mbarrier {
  uint32_t expected = 0, pending = 0;
  int64_t tx = 0;  // transaction bytes still expected (negative while copies land first)
  uint32_t phase = 0;
};

struct Warp {
  uint32_t expected = 0, arrived = 0;
  unsigned mask = 0;
  WarpOp op = WarpOp::kSync;
  int width = 32;
  const char* what = "";
  uint64_t values[32];
  int params[32];
  uint64_t results[32];
};

struct Stack {
  char* base;  // lowest address, a guard page
  size_t len;
};

struct Exec {
  const LaunchConfig* config = nullptr;
  bool active = false;
  // A launch runs one cluster of blocks at a time (a block alone without clusters): the fibers
  // of every thread of its blocks run together, block b's thread t at fiber b * block_threads +
  // t, its warp w at warps[b * warps_per_block + w].
  int nthreads = 0;  // fibers: threads of the cluster
  int block_threads = 0, warps_per_block = 0, cluster = 1;
  bool cooperative = false;  // a cooperative launch: `cluster` is the whole grid, no cluster ops
  int first = 0;             // the block that runs first (cooperative: rotates launch by launch)
  uint64_t cooperative_launches = 0;
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  std::vector<Stack> stacks;
  size_t stack_size = 0;
  void* scheduler_sp = nullptr;
  int current = -1;
  int done = 0;  // fibers exited
  ThreadEntry entry = nullptr;
  void* ctx = nullptr;
  // Named barriers 1-15 (bar.sync / bar.arrive; 0 is __syncthreads): the count of the phase in
  // progress, its arrivals so far, and how many phases have completed.
  struct NamedBarrier {
    int count = 0, arrived = 0;
    uint64_t generation = 0;
  };
  struct Block {  // one block of the cluster being run
    uint3 idx{0, 0, 0};
    int done = 0;     // threads exited
    int arrived = 0;  // at the __syncthreads in progress
    int barrier_count = 0;  // __syncthreads_count's running sum
    int barrier_result = 0;
    const char* barrier_file = nullptr;
    int barrier_line = 0;
    std::array<NamedBarrier, 16> named{};
    char* dynamic = nullptr;  // its dynamic shared memory
    char* dynamic_map = nullptr;
    size_t dynamic_map_len = 0;
    // What the async proxy (wgmma's operand reads) sees of the dynamic shared memory: written by
    // TMA and cp.async.bulk as they write `dynamic`, and brought up to date with the generic
    // proxy's writes (stores, cp.async) only by fence.proxy.async.
    std::vector<char> async_view;
  };
  std::vector<Block> blocks;
  int cluster_arrived = 0;          // barrier.cluster: arrivals in the phase in progress
  uint64_t cluster_generation = 0;  // and phases completed
  // shared memory
  std::vector<void*> shared_vars;
  size_t static_shared = 0;
  size_t shared_limit = 0;  // static + dynamic
  bool reverse = false;  // EMBER_EMU_REVERSE=1: blocks and threads in reverse order
  bool warp_priority = false;  // EMBER_EMU_WARP_PRIORITY=1: a block's warps by priority
  std::vector<int> priority_order;  // EMBER_EMU_WARP_PRIORITY=list: that order (empty: natural)
  bool block_sweep = false;    // EMBER_EMU_BLOCK_SWEEP=1: every block of a cluster each round
  bool shuffle = false;        // EMBER_EMU_SHUFFLE=n: blocks and warps in a random order
  std::mt19937_64 rng;         // its generator, seeded by n once
  uint64_t shuffle_seed = 0;
  std::vector<int> block_order, warp_order;  // this round's, when shuffling
  uint64_t epoch = 0;    // bumped by every mbarrier change (spin_yield's progress test)
  std::map<const void*, Mbarrier> mbarriers;  // the cluster's, by address
  // TMA and bulk copies issued and not yet landed: their bytes reach shared memory (and complete
  // on their mbarrier) only when a thread polls that mbarrier, so a stage read without waiting
  // for its barrier, or after waiting for another stage's, holds its old bytes.
  struct InFlight {
    void* bar;   // the mbarrier it completes on (in the destination block)
    int block;   // the destination block
    char* dst;   // the first shared byte it may write
    std::vector<char> image;      // what it writes from dst on
    std::vector<uint8_t> written;  // which of those bytes (a box may leave holes)
    uint64_t bytes;               // the transaction bytes it completes
    const char* what;
  };
  std::vector<InFlight> in_flight;
  size_t wgmma_pending = 0;                   // issued wgmma not yet run, all threads
  // Register-A wgmma: the A fragments of a warp's 32 lanes (4 registers each) by (warp, issue
  // number), and how many lanes have still to run that wgmma.
  struct Fragments {
    uint32_t regs[32][4];
    int left = 32;
  };
  std::map<std::pair<int, uint64_t>, Fragments> wgmma_frags;
  bool restart = false;  // an mbarrier phase completed: the next round starts at once
};

Exec g_exec;
void land_copies(Fiber& f, size_t count);

/// Fiber t's warp (an index into Exec::warps), and the fiber of lane `lane` of warp w.
int warp_of(int t) {
  const Exec& x = g_exec;
  return t / x.block_threads * x.warps_per_block + t % x.block_threads / 32;
}
int fiber_of(int w, int lane) {
  const Exec& x = g_exec;
  return w / x.warps_per_block * x.block_threads + w % x.warps_per_block * 32 + lane;
}
/// The block of the calling thread.
Exec::Block& current_block() {
  Exec& x = g_exec;
  return x.blocks[static_cast<size_t>(x.fibers[static_cast<size_t>(x.current)].block)];
}
std::mutex g_launch_mutex;
std::mutex g_func_mutex;
std::map<const void*, int> g_max_dynamic_shared;  // cudaFuncAttributeMaxDynamicSharedMemorySize

std::string where() {
  if (!g_exec.active) return "host code";
  char buf[512];
  const uint3 b = blockIdx;
  std::snprintf(buf, sizeof buf, "kernel %s, block (%u,%u,%u)", g_exec.config->name, b.x, b.y, b.z);
  std::string s = buf;
  if (g_exec.current >= 0) {
    const uint3 t = g_exec.fibers[static_cast<size_t>(g_exec.current)].tid;
    std::snprintf(buf, sizeof buf, ", thread (%u,%u,%u)", t.x, t.y, t.z);
    s += buf;
  }
  return s;
}

// ---- SIGSEGV: say where it happened ----
char g_alt_stack[64 * 1024];
void on_segv(int sig, siginfo_t* info, void*) {
  char buf[768];
  const std::string w = where();
  const int n = std::snprintf(buf, sizeof buf,
                              "[cuda_emu] segmentation fault at address %p in %s (an access past a "
                              "device allocation, a host pointer dereferenced, or a fiber stack "
                              "overflow: EMBER_EMU_STACK_KB)\n",
                              info->si_addr, w.c_str());
  if (n > 0) (void)!write(2, buf, static_cast<size_t>(n));
  signal(sig, SIG_DFL);
  raise(sig);
}
void install_segv_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    stack_t ss{};
    ss.ss_sp = g_alt_stack;
    ss.ss_size = sizeof g_alt_stack;
    sigaltstack(&ss, nullptr);
    struct sigaction sa{};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, nullptr);
    sigaction(SIGBUS, &sa, nullptr);
  });
}

// ---- fibers ----
void switch_to_scheduler() {
  Fiber& f = g_exec.fibers[static_cast<size_t>(g_exec.current)];
  ember_emu_switch(&f.sp, g_exec.scheduler_sp);
}

[[noreturn]] void fiber_main();

void* init_stack(const Stack& s, int t) {
  // Stacks are a multiple of the page size apart: without an offset every fiber's hot frames
  // would fall in the same cache sets.
  const uintptr_t color = static_cast<uintptr_t>(t % 61) * 64 + static_cast<uintptr_t>(t / 61 % 4) * 4096;
  uintptr_t top = (reinterpret_cast<uintptr_t>(s.base + s.len) - color) & ~uintptr_t{15};
  uint64_t* sp = reinterpret_cast<uint64_t*>(top);
  *--sp = 0;                                            // fiber_main's "return address"
  *--sp = reinterpret_cast<uint64_t>(&fiber_main);      // ember_emu_switch returns here
  for (int i = 0; i < 6; ++i) *--sp = 0;                // rbp rbx r12-r15
  return sp;
}

void ensure_stacks(int n) {
  if (g_exec.stack_size == 0) {
    size_t kb = 128;
    if (const char* e = std::getenv("EMBER_EMU_STACK_KB")) kb = std::max<size_t>(16, std::strtoull(e, nullptr, 10));
    g_exec.stack_size = round_up(kb * 1024, kPage);
  }
  while (static_cast<int>(g_exec.stacks.size()) < n) {
    const size_t len = g_exec.stack_size + kPage;
    void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) fatal("cannot map a %zu-byte fiber stack", len);
    mprotect(m, kPage, PROT_NONE);  // overflow guard
    g_exec.stacks.push_back(Stack{static_cast<char*>(m), len});
  }
}

const char* state_name(FiberState s) {
  switch (s) {
    case FiberState::kReady: return "runnable";
    case FiberState::kBlockWait: return "waiting at __syncthreads";
    case FiberState::kWarpWait: return "waiting at a warp collective";
    case FiberState::kDone: return "exited";
  }
  return "?";
}

[[noreturn]] void report_deadlock() {
  g_exec.current = -1;
  std::string detail;
  int shown = 0;
  for (int t = 0; t < g_exec.nthreads && shown < 8; ++t) {
    const Fiber& f = g_exec.fibers[static_cast<size_t>(t)];
    if (f.state == FiberState::kDone) continue;
    char buf[160];
    std::snprintf(buf, sizeof buf, "\n  thread (%u,%u,%u): %s", f.tid.x, f.tid.y, f.tid.z, state_name(f.state));
    detail += buf;
    if (g_exec.cluster > 1) detail += " of block rank " + std::to_string(f.block);
    if (f.state == FiberState::kWarpWait) detail += std::string(" (") + g_exec.warps[static_cast<size_t>(warp_of(t))].what + ")";
    if (f.state == FiberState::kReady && f.polling) detail += std::string(" polling ") + f.polling;
    ++shown;
  }
  const Exec::Block& b = g_exec.blocks[0];
  fatal("deadlock in %s: %d of %d threads exited, none of the others can proceed "
        "(__syncthreads at %s:%d has %d arrivals%s)%s",
        where().c_str(), g_exec.done, g_exec.nthreads, b.barrier_file ? b.barrier_file : "-",
        b.barrier_line, b.arrived, g_exec.cluster > 1 ? " in block rank 0" : "", detail.c_str());
}

void thread_exited() {
  Exec& x = g_exec;
  const int t = x.current;
  Fiber& f = x.fibers[static_cast<size_t>(t)];
  Exec::Block& b = x.blocks[static_cast<size_t>(f.block)];
  if (b.arrived > 0)
    fatal("%s exited while %d thread(s) wait at __syncthreads (%s:%d): a barrier not reached by "
          "every thread of the block",
          where().c_str(), b.arrived, b.barrier_file, b.barrier_line);
  if (x.cluster_arrived > 0)
    fatal("%s exited while %d thread(s) of the cluster wait at barrier.cluster: a barrier not "
          "reached by every thread of the cluster",
          where().c_str(), x.cluster_arrived);
  Warp& w = x.warps[static_cast<size_t>(warp_of(t))];
  const uint32_t bit = 1u << (t % x.block_threads % 32);
  if (w.arrived != 0 && (w.expected & bit))
    fatal("%s exited while lanes of its warp wait for it at %s (mask 0x%08x)", where().c_str(), w.what, w.mask);
  if (!f.wgmma_ops.empty())
    fatal("%s exited with %zu wgmma.mma_async not retired by a wgmma.wait_group", where().c_str(),
          f.wgmma_ops.size());
  land_copies(f, f.copies.size());  // what a thread leaves in flight lands before the block ends
  f.state = FiberState::kDone;
  ++x.done;
  ++b.done;
}

[[noreturn]] void fiber_main() {
  try {
    g_exec.entry(g_exec.ctx);
  } catch (const std::exception& e) {
    fatal("C++ exception escaped %s: %s", where().c_str(), e.what());
  } catch (...) {
    fatal("C++ exception escaped %s", where().c_str());
  }
  thread_exited();
  switch_to_scheduler();
  fatal("an exited fiber was resumed");
}

void set_thread_builtins(int t) {
  const Fiber& f = g_exec.fibers[static_cast<size_t>(t)];
  threadIdx = f.tid;
  blockIdx = g_exec.blocks[static_cast<size_t>(f.block)].idx;
}

/// EMBER_EMU_WARP_PRIORITY as a list of warps and ranges ("0,3-11,1,2"): the block's warps in
/// that order, those it leaves out after them in their own order; empty for "1", "0" or unset.
std::vector<int> warp_priority_order(const char* spec, int warps) {
  std::vector<int> order;
  if (spec == nullptr || (std::strchr(spec, ',') == nullptr && std::strchr(spec, '-') == nullptr))
    return order;  // "1" is the flag; a list of one warp is written "3,"
  std::vector<bool> listed(static_cast<size_t>(warps), false);
  for (const char* p = spec; *p != '\0';) {
    char* end = nullptr;
    const long lo = std::strtol(p, &end, 10);
    long hi = lo;
    if (end == p) fatal("EMBER_EMU_WARP_PRIORITY=%s: expected a warp number at '%s'", spec, p);
    p = end;
    if (*p == '-') {
      hi = std::strtol(++p, &end, 10);
      if (end == p) fatal("EMBER_EMU_WARP_PRIORITY=%s: expected a warp number at '%s'", spec, p);
      p = end;
    }
    if (lo < 0 || hi < lo) fatal("EMBER_EMU_WARP_PRIORITY=%s: bad range %ld-%ld", spec, lo, hi);
    for (long w = lo; w <= hi && w < warps; ++w)
      if (!listed[static_cast<size_t>(w)]) {
        listed[static_cast<size_t>(w)] = true;
        order.push_back(static_cast<int>(w));
      }
    if (*p == ',') ++p;
    else if (*p != '\0') fatal("EMBER_EMU_WARP_PRIORITY=%s: unexpected '%c'", spec, *p);
  }
  for (int w = 0; w < warps; ++w)
    if (!listed[static_cast<size_t>(w)]) order.push_back(w);
  return order;
}

/// EMBER_EMU_SHUFFLE: this round's random order of the cluster's blocks and of a block's warps.
void shuffle_round(Exec& x) {
  x.block_order.resize(static_cast<size_t>(x.cluster));
  x.warp_order.resize(static_cast<size_t>((x.block_threads + 31) / 32));
  for (size_t i = 0; i < x.block_order.size(); ++i) x.block_order[i] = static_cast<int>(i);
  for (size_t i = 0; i < x.warp_order.size(); ++i) x.warp_order[i] = static_cast<int>(i);
  std::shuffle(x.block_order.begin(), x.block_order.end(), x.rng);
  std::shuffle(x.warp_order.begin(), x.warp_order.end(), x.rng);
}

/// Runs the blocks of one cluster (one block without clusters), x.blocks[*].idx set.
void run_cluster() {
  Exec& x = g_exec;
  const int n = x.nthreads;
  for (int t = 0; t < n; ++t) {
    Fiber& f = x.fibers[static_cast<size_t>(t)];
    f.state = FiberState::kReady;
    f.cluster_armed = false;
    f.sp = init_stack(x.stacks[static_cast<size_t>(t)], t);
    f.polling = nullptr;
    f.wgmma_ops.clear();
    f.wgmma_reads.clear();
    f.wgmma_groups.clear();
    f.wgmma_seq.clear();
    f.wgmma_rs_issued = 0;
    f.copies.clear();
    f.copy_groups.clear();
    f.bulk.clear();
    f.bulk_groups.clear();
  }
  x.wgmma_pending = 0;
  x.wgmma_frags.clear();
  x.mbarriers.clear();
  x.in_flight.clear();
  for (Warp& w : x.warps) w.arrived = 0;
  x.done = 0;
  x.cluster_arrived = 0;
  for (Exec::Block& b : x.blocks) {
    b.named.fill({});
    b.done = 0;
    b.arrived = 0;
    b.barrier_count = 0;
    if (b.dynamic != nullptr) std::memset(b.dynamic, 0xFF, x.config->shmem);
    std::fill(b.async_view.begin(), b.async_view.end(), static_cast<char>(0xFF));
  }
  x.shared_vars.clear();
  x.static_shared = 0;
  while (x.done < n) {
    // Progress: a thread that ran and stopped for any reason but polling, or an mbarrier change.
    // The blocks of a cluster run by priority: the first (the last with EMBER_EMU_REVERSE; a
    // cooperative launch counts from block `first`) until none of its threads can move, only
    // then the next, so a block gets as far ahead of its peers as the protocol lets it: the
    // adversarial order for one that refills a peer's stage, or arrives on its barriers, too
    // early.
    // With EMBER_EMU_WARP_PRIORITY=1 the warps of a block run by the same rule: the first (the
    // last in reverse) until none of its lanes can move, then the next, so one warp or
    // warpgroup gets as far ahead of the others in its block as the barriers allow. A list of
    // warps instead of 1 sets the order (e.g. 0,3-11,1,2: a helper warp last, so the warps it
    // serves run ahead of it).
    // With EMBER_EMU_BLOCK_SWEEP=1 every block of the cluster runs its turn each round instead,
    // as the SMs of a GPU run together: blocks that take work from a shared counter each get
    // some, and a wait on another block's progress meets a peer part-way through its own.
    // With EMBER_EMU_SHUFFLE=n (a seed, not 0) each round takes the blocks, and the warps of
    // each block, in a random order (a generator seeded once by n, so two launches differ): a
    // result that depends on the order of the threads' work shows as two runs that differ.
    bool progressed = false;
    const uint64_t epoch = x.epoch;
    if (x.shuffle) shuffle_round(x);
    for (int k = 0; k < x.cluster && (x.block_sweep || (!progressed && x.epoch == epoch)); ++k) {
      const int b = x.shuffle ? x.block_order[static_cast<size_t>(k)]
                              : ((x.reverse ? x.cluster - 1 - k : k) + x.first) % x.cluster;
      const uint64_t block_epoch = x.epoch;
      bool moved = false;  // a thread of this block ran and stopped for a reason but polling
      int warp = -1;
      // The warps in a set order: this round's shuffle, or EMBER_EMU_WARP_PRIORITY's list.
      const std::vector<int>* order = x.shuffle                    ? &x.warp_order
                                      : !x.priority_order.empty() ? &x.priority_order
                                                                  : nullptr;
      const int slots = order != nullptr ? static_cast<int>(order->size()) * 32 : x.block_threads;
      for (int i = 0; i < slots; ++i) {
        int local = x.reverse ? x.block_threads - 1 - i : i;
        if (order != nullptr) {  // warp (*order)[i / 32]'s lane i % 32 (a partial last warp: fewer)
          local = (*order)[static_cast<size_t>(i / 32)] * 32 + i % 32;
          if (local >= x.block_threads) continue;
        }
        const int t = b * x.block_threads + local;
        if (x.warp_priority && t % x.block_threads / 32 != warp) {
          if (moved || x.epoch != block_epoch) break;  // a warp moved: start again from the first
          warp = t % x.block_threads / 32;
        }
        Fiber& f = x.fibers[static_cast<size_t>(t)];
        if (f.state != FiberState::kReady) continue;
        x.current = t;
        set_thread_builtins(t);
        f.polling = nullptr;
        ember_emu_switch(&x.scheduler_sp, f.sp);
        if (f.polling == nullptr) progressed = moved = true;
        if (x.restart) {  // the threads waiting for the phase run before anyone else moves on
          x.restart = false;  // (sweeping, before this block's other threads)
          break;
        }
      }
    }
    x.current = -1;
    if (!progressed && x.epoch == epoch && x.done < n) report_deadlock();
  }
  for (const Fiber& f : x.fibers)
    if (!f.bulk.empty())
      fatal("%s: a thread of block rank %d ended with %zu cp.reduce.async.bulk.tensor not waited "
            "for (cp.async.bulk.wait_group)",
            where().c_str(), f.block, f.bulk.size());
  if (!x.in_flight.empty())
    fatal("%s: the block ended with %zu TMA or bulk copies in flight (%s into block rank %d) that "
          "no thread waited for on their mbarrier",
          where().c_str(), x.in_flight.size(), x.in_flight[0].what, x.in_flight[0].block);
  for (const Exec::Block& b : x.blocks)
    for (size_t id = 1; id < b.named.size(); ++id)
      if (b.named[id].arrived != 0)
        fatal("%s: the block ended with %d of %d arrivals at named barrier %zu (bar.arrive "
              "without a matching bar.sync)",
              where().c_str(), b.named[id].arrived, b.named[id].count, id);
}

}  // namespace

// ---- the device-side interface ----

void fatal(const char* fmt, ...) {
  std::fflush(stdout);
  std::fprintf(stderr, "[cuda_emu] ");
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "\n");
  std::fflush(stderr);
  std::abort();
}

void syncthreads(const char* file, int line) { (void)syncthreads_count(0, file, line); }

int syncthreads_count(int predicate, const char* file, int line) {
  Exec& x = g_exec;
  if (!x.active || x.current < 0) fatal("__syncthreads called outside a kernel (%s:%d)", file, line);
  Exec::Block& b = current_block();
  if (b.done > 0)
    fatal("%s reached __syncthreads at %s:%d after %d thread(s) of the block exited: a barrier not "
          "reached by every thread of the block",
          where().c_str(), file, line, b.done);
  if (b.arrived == 0) {
    b.barrier_file = file;
    b.barrier_line = line;
    b.barrier_count = 0;
  } else if (b.barrier_line != line || std::strcmp(b.barrier_file, file) != 0) {
    fatal("%s waits at __syncthreads %s:%d while other threads of the block wait at %s:%d "
          "(divergent barriers)",
          where().c_str(), file, line, b.barrier_file, b.barrier_line);
  }
  b.barrier_count += predicate;
  if (++b.arrived == x.block_threads) {
    b.arrived = 0;
    b.barrier_result = b.barrier_count;
    const int rank = x.fibers[static_cast<size_t>(x.current)].block;
    for (Fiber& f : x.fibers)
      if (f.block == rank && f.state == FiberState::kBlockWait) f.state = FiberState::kReady;
    // The last to arrive stops too, and the round starts over: past a barrier the threads go on
    // in the round's order (the first thread first; the last with EMBER_EMU_REVERSE=1), not the
    // last arrival first, so a read of what another thread writes after the barrier, made
    // without waiting for it, finds it unwritten in one of the two orders.
    const int result = b.barrier_result;
    x.restart = true;
    switch_to_scheduler();
    return result;
  }
  x.fibers[static_cast<size_t>(x.current)].state = FiberState::kBlockWait;
  switch_to_scheduler();
  return b.barrier_result;
}

namespace {
uint32_t lanes_existing(int warp) {
  const int live = std::min(32, g_exec.block_threads - warp % g_exec.warps_per_block * 32);
  return live >= 32 ? 0xffffffffu : ((1u << live) - 1u);
}
constexpr uint64_t kPoison = ~uint64_t{0};

void complete_warp(Warp& w) {
  uint64_t any = 0, all = 1, ballot = 0;
  for (int l = 0; l < 32; ++l)
    if (w.expected & (1u << l)) {
      const bool p = w.values[l] != 0;
      ballot |= uint64_t{p} << l;
      any |= p;
      all &= p;
    }
  for (int l = 0; l < 32; ++l) {
    if (!(w.expected & (1u << l))) continue;
    const int seg = l & ~(w.width - 1);
    int src = l;
    switch (w.op) {
      case WarpOp::kSync: break;
      case WarpOp::kBallot: w.results[l] = ballot; continue;
      case WarpOp::kAny: w.results[l] = any; continue;
      case WarpOp::kAll: w.results[l] = all; continue;
      case WarpOp::kShflIdx: src = seg + (w.params[l] & (w.width - 1)); break;
      case WarpOp::kShflUp: src = l - w.params[l] >= seg ? l - w.params[l] : l; break;
      case WarpOp::kShflDown: src = l + w.params[l] < seg + w.width ? l + w.params[l] : l; break;
      case WarpOp::kShflXor: src = (l ^ w.params[l]) < seg + w.width ? (l ^ w.params[l]) : l; break;
    }
    // a source lane outside the collective (inactive, absent or not in the mask): undefined on
    // a GPU; all one bits here (NaN, -1) so it shows
    w.results[l] = (src >= 0 && src < 32 && (w.expected & (1u << src))) ? w.values[src] : kPoison;
  }
}
}  // namespace

uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t value, int param, int width,
                         const char* what) {
  Exec& x = g_exec;
  if (!x.active || x.current < 0) fatal("%s called outside a kernel", what);
  if (width <= 0 || width > 32 || (width & (width - 1)) != 0)
    fatal("%s in %s: width %d is not a power of two <= 32", what, where().c_str(), width);
  const int t = x.current, lane = t % x.block_threads % 32, wi = warp_of(t);
  Warp& w = x.warps[static_cast<size_t>(wi)];
  const uint32_t bit = 1u << lane;
  if (!(mask & bit))
    fatal("%s in %s: the calling lane %d is not in the mask 0x%08x", what, where().c_str(), lane, mask);
  if (w.arrived == 0) {
    w.mask = mask;
    w.op = op;
    w.width = width;
    w.what = what;
    w.expected = mask & lanes_existing(wi);
    for (int l = 0; l < 32; ++l)
      if ((w.expected & (1u << l)) && x.fibers[static_cast<size_t>(fiber_of(wi, l))].state == FiberState::kDone)
        fatal("%s in %s: lane %d of the mask 0x%08x has exited", what, where().c_str(), l, mask);
  } else if (w.mask != mask || w.op != op || w.width != width) {
    fatal("%s in %s (mask 0x%08x) while other lanes of the warp wait at %s (mask 0x%08x)", what,
          where().c_str(), mask, w.what, w.mask);
  }
  w.values[lane] = value;
  w.params[lane] = param;
  w.arrived |= bit;
  if (w.arrived == w.expected) {
    complete_warp(w);
    w.arrived = 0;
    for (int l = 0; l < 32; ++l)
      if ((w.expected & (1u << l)) && l != lane)
        x.fibers[static_cast<size_t>(fiber_of(wi, l))].state = FiberState::kReady;
    return w.results[lane];
  }
  x.fibers[static_cast<size_t>(t)].state = FiberState::kWarpWait;
  switch_to_scheduler();
  return w.results[lane];
}

unsigned active_mask() {
  Exec& x = g_exec;
  if (!x.active || x.current < 0) fatal("__activemask called outside a kernel");
  const int w = warp_of(x.current);
  const uint32_t lanes = lanes_existing(w);
  unsigned m = 0;
  for (int l = 0; l < 32; ++l)
    if ((lanes >> l & 1u) && x.fibers[static_cast<size_t>(fiber_of(w, l))].state != FiberState::kDone)
      m |= 1u << l;
  return m;
}

void shared_var(void* p, size_t bytes) {
  Exec& x = g_exec;
  if (!x.active) fatal("a __shared__ variable declared outside a kernel");
  if (x.cluster > 1)
    fatal("%s: a static __shared__ variable in a cluster or cooperative launch (not emulated: "
          "the blocks run together; use extern __shared__ memory)",
          where().c_str());
  for (void* q : x.shared_vars)
    if (q == p) return;
  x.shared_vars.push_back(p);
  x.static_shared += bytes;
  if (x.static_shared > kStaticSharedLimit)
    fatal("%s: %zu bytes of static __shared__ memory, over the 48 KiB limit", where().c_str(), x.static_shared);
  if (x.static_shared + x.config->shmem > x.shared_limit)
    fatal("%s: %zu bytes static + %zu bytes dynamic shared memory, over the limit", where().c_str(),
          x.static_shared, x.config->shmem);
  std::memset(p, 0xFF, bytes);  // uninitialized shared memory: NaN / -1
}

void* dynamic_shared() {
  Exec& x = g_exec;
  if (!x.active || x.current < 0) fatal("extern __shared__ used outside a kernel");
  return current_block().dynamic;  // null without dynamic shared memory: any use faults
}

// ---- Hopper: shared addresses, mbarriers, TMA, wgmma ----

namespace {
/// Shared addresses of block b (its dynamic shared memory) start at the 1024-byte boundary at or
/// below the memory's start.
uintptr_t shared_origin(const Exec::Block& b) {
  if (b.dynamic == nullptr)
    fatal("%s: a shared-memory address without dynamic shared memory (only extern __shared__ "
          "memory has addresses under the emulator)",
          where().c_str());
  return reinterpret_cast<uintptr_t>(b.dynamic) & ~uintptr_t{1023};
}
uintptr_t shared_origin() {
  const Exec& x = g_exec;
  if (!x.active || x.current < 0) fatal("a shared-memory address taken outside a kernel");
  return shared_origin(current_block());
}

/// The rank of the block whose dynamic shared memory holds p, or -1.
int block_holding(const void* p) {
  const Exec& x = g_exec;
  const auto a = reinterpret_cast<uintptr_t>(p);
  for (size_t r = 0; r < x.blocks.size(); ++r) {
    const auto lo = reinterpret_cast<uintptr_t>(x.blocks[r].dynamic);
    if (x.blocks[r].dynamic != nullptr && a >= lo && a < lo + x.config->shmem)
      return static_cast<int>(r);
  }
  return -1;
}

/// Aborts unless block `rank` of the cluster is still running: its shared memory is gone once its
/// threads have all exited (a block must not exit while the cluster may still access it).
void require_block_alive(int rank, const char* what) {
  const Exec& x = g_exec;
  if (x.blocks[static_cast<size_t>(rank)].done == x.block_threads)
    fatal("%s: %s reaches the shared memory of block rank %d of the cluster, whose threads have "
          "all exited (a block must not exit while others of its cluster may still access its "
          "shared memory: end with a cluster barrier)",
          where().c_str(), what, rank);
}

Mbarrier& mbarrier_at(void* bar, const char* what) {
  Exec& x = g_exec;
  if (!x.active || x.current < 0) fatal("%s outside a kernel", what);
  if (reinterpret_cast<uintptr_t>(bar) % 8 != 0)
    fatal("%s in %s: mbarrier %p is not 8-byte aligned", what, where().c_str(), bar);
  auto it = x.mbarriers.find(bar);
  if (it == x.mbarriers.end())
    fatal("%s in %s: mbarrier %p used before mbarrier.init in this block", what, where().c_str(), bar);
  const int rank = block_holding(bar);
  if (rank >= 0) require_block_alive(rank, what);
  return it->second;
}

void mbarrier_check(Mbarrier& m, void* bar) {
  if (m.pending == 0 && m.tx < 0)
    fatal("%s: mbarrier %p completed %lld transaction bytes more than were expected",
          where().c_str(), bar, static_cast<long long>(-m.tx));
  ++g_exec.epoch;
  if (m.pending == 0 && m.tx == 0) {
    ++m.phase;
    m.pending = m.expected;
    // The completing thread stops here and the block's round starts over, so the threads that
    // poll this barrier (a producer waiting for a free stage, say) run before the completing
    // thread and its neighbours go on: the adversarial order for "released too early" bugs.
    g_exec.restart = true;
    switch_to_scheduler();
  }
}

struct EmuTensorMap {  // what cuTensorMapEncodeTiled stores in CUtensorMap's 128 bytes
  uint64_t magic;
  char* address;
  uint32_t rank, element_bytes;
  uint64_t dims[5];
  uint64_t strides[5];  // bytes; strides[0] = element_bytes
  uint32_t box[5];
  uint32_t swizzle;  // CUtensorMapSwizzle
};
static_assert(sizeof(EmuTensorMap) <= sizeof(CUtensorMap));
constexpr uint64_t kTensorMapMagic = 0x54454e534f524d41ull;

/// The swizzled shared address: 16-byte chunk bits [4, 4 + b) XOR address bits [7, 7 + b), with
/// b = 1, 2, 3 for the 32-, 64- and 128-byte patterns (mode 1, 2, 3 as in CUtensorMapSwizzle).
uint32_t swizzled(uint32_t address, uint32_t mode) {
  if (mode == 0) return address;
  const uint32_t mask = (1u << mode) - 1u;
  return address ^ (((address >> 7) & mask) << 4);
}

/// A wgmma operand in shared memory: 2-byte elements, the descriptor's fields as the PTX ISA gives
/// them (start, leading and stride byte offsets in 16-byte units; the layout in bits 62-63: 0 no
/// swizzle, 1 128-byte, 2 64-byte, 3 32-byte swizzle), K-major or, transposed, M/N-major. The
/// PTX ISA's canonical layouts ("Shared Memory Matrix Layout", in CuTe notation, T = 8 elements
/// of 16 bytes, S = swizzle bytes / 16), element (mn, k):
///   K-major, no swizzle   ((8,m),(T,2k)):((1T,SBO),(1,LBO))
///   K-major, swizzled     ((8,m),(T,2k)):((S T,SBO),(1,T))        (LBO unused)
///   MN-major, no swizzle  ((T,1,m),(8,k)):((1,T,SBO),(1T,LBO))
///   MN-major, swizzled    ((T,S,m),(8,k)):((1,T,LBO),(S T,SBO))
/// then the swizzle of the shared address (16-byte chunk bits XOR address bits 7..).
struct WgmmaOperand {
  uint32_t start, lbo, sbo, mode;  // mode: the swizzle's bit count (0 none, 3 for 128 bytes)
  bool core_matrices;              // layout 0: 8-row x 16-byte core matrices
  bool mn_major;                   // transposed: M or N contiguous
  uintptr_t origin;
  size_t limit;  // bytes of shared addresses in range
  const Exec::Block* block;  // whose async view the operand is read from
  const char* name;          // "A" or "B"

  WgmmaOperand(uint64_t desc, bool transposed, uintptr_t o, size_t lim, const Exec::Block* b,
               const char* n)
      : mn_major(transposed), origin(o), limit(lim), block(b), name(n) {
    start = static_cast<uint32_t>(desc & 0x3FFF) << 4;
    lbo = static_cast<uint32_t>((desc >> 16) & 0x3FFF) << 4;
    sbo = static_cast<uint32_t>((desc >> 32) & 0x3FFF) << 4;
    const uint32_t base_offset = static_cast<uint32_t>((desc >> 49) & 7);
    const uint32_t layout = static_cast<uint32_t>(desc >> 62);
    if (base_offset != 0) fatal("%s: wgmma descriptor with a base offset (not emulated)", where().c_str());
    core_matrices = layout == 0;
    mode = layout == 1 ? 3 : layout == 2 ? 2 : layout == 3 ? 1 : 0;
  }
  /// Element (row, k), row along M or N, k < 16.
  uint16_t at(int row, int k) const {
    uint32_t address;
    const uint32_t r = static_cast<uint32_t>(row), kk = static_cast<uint32_t>(k);
    if (mn_major && core_matrices)  // 8-element x 8-k core matrices, SBO along M/N, LBO along K
      address = start + (r / 8) * sbo + (kk / 8) * lbo + (kk % 8) * 16 + (r % 8) * 2;
    else if (mn_major)  // k rows of 16 << mode bytes holding 8 << mode M/N elements
      address = swizzled(start + (r / (8u << mode)) * lbo + (kk / 8) * sbo +
                             (kk % 8) * (16u << mode) + (r % (8u << mode)) * 2,
                         mode);
    else if (core_matrices)
      address = start + static_cast<uint32_t>(row / 8) * sbo + static_cast<uint32_t>(k / 8) * lbo +
                static_cast<uint32_t>(row % 8) * 16 + static_cast<uint32_t>(k % 8) * 2;
    else  // rows of 128, 64 or 32 bytes, 8-row groups sbo apart, swizzled by address
      address = swizzled(start + static_cast<uint32_t>(row / 8) * sbo +
                             static_cast<uint32_t>(row % 8) * (16u << mode) + static_cast<uint32_t>(k) * 2,
                         mode);
    const uintptr_t p = origin + address;
    if (p < origin || address + 2 > limit)
      fatal("%s: wgmma operand element (%d, %d) at shared address 0x%x, outside dynamic shared memory",
            where().c_str(), row, k, address);
    uint16_t bits, seen;
    std::memcpy(&bits, reinterpret_cast<const void*>(p), 2);
    const uintptr_t lo = reinterpret_cast<uintptr_t>(block->dynamic);
    if (p >= lo && p + 2 <= lo + block->async_view.size()) {
      std::memcpy(&seen, block->async_view.data() + (p - lo), 2);
      if (seen != bits)
        fatal("%s: wgmma operand %s element (%d, %d) at shared address 0x%x was written through "
              "the generic proxy (a store or cp.async) after the last fence.proxy.async of the "
              "block, or while the wgmma was in flight: the async proxy may read the old bytes "
              "(fence.proxy.async after the writes, then a barrier, before the wgmma)",
              where().c_str(), name, row, k, address);
    }
    return bits;
  }
};

/// The shared bytes a wgmma operand of `rows` rows (M or N) can read: whole 128-, 64- or 32-byte
/// rows for the swizzled layouts (the swizzle permutes 16-byte chunks within a row), whole core
/// matrices otherwise.
std::pair<uint32_t, uint32_t> operand_footprint(uint64_t desc, int rows, bool mn_major) {
  const uint32_t start = static_cast<uint32_t>(desc & 0x3FFF) << 4;
  const uint32_t lbo = static_cast<uint32_t>((desc >> 16) & 0x3FFF) << 4;
  const uint32_t sbo = static_cast<uint32_t>((desc >> 32) & 0x3FFF) << 4;
  const uint32_t layout = static_cast<uint32_t>(desc >> 62);
  const uint32_t groups = static_cast<uint32_t>(rows + 7) / 8;
  if (mn_major) {  // 2 k groups; M/N blocks of 8 (no swizzle) or of one swizzle row
    if (layout == 0) return {start, start + (groups - 1) * sbo + lbo + 128};
    const uint32_t row_bytes = layout == 1 ? 128 : layout == 2 ? 64 : 32;
    const uint32_t blocks = (static_cast<uint32_t>(rows) * 2 + row_bytes - 1) / row_bytes;
    const uint32_t lo = start / row_bytes * row_bytes;
    return {lo, (start + (blocks - 1) * lbo + sbo + 8 * row_bytes + row_bytes - 1) / row_bytes *
                    row_bytes};
  }
  if (layout == 0) return {start, start + (groups - 1) * sbo + lbo + 128};
  const uint32_t row_bytes = layout == 1 ? 128 : layout == 2 ? 64 : 32;
  const uint32_t lo = start / row_bytes * row_bytes;
  return {lo, (start + (groups - 1) * sbo + 7 * row_bytes + 32 + row_bytes - 1) / row_bytes * row_bytes};
}

/// Aborts if shared bytes [lo, hi) are read by a wgmma some thread has issued and not yet retired
/// (the async proxy may still be reading them: a stage refilled too early, or, at a copy's
/// landing, read before it landed).
void check_no_pending_reads(int block, uint32_t lo, uint32_t hi, const char* writer,
                            const char* hint = "the buffer is refilled too early") {
  const Exec& x = g_exec;
  if (x.wgmma_pending == 0) return;
  for (int t = 0; t < x.nthreads; ++t) {
    const Fiber& f = x.fibers[static_cast<size_t>(t)];
    if (f.block != block) continue;
    for (const auto& [rlo, rhi] : f.wgmma_reads)
      if (lo < rhi && rlo < hi)
        fatal("%s: %s writes shared bytes [0x%x, 0x%x) that a wgmma of thread (%u,%u,%u) reads and "
              "has not retired (wgmma.wait_group): %s",
              where().c_str(), writer, lo, hi, f.tid.x, f.tid.y, f.tid.z, hint);
  }
}

float element_to_float(uint16_t bits, bool bf16) {
  return bf16 ? bf16_bits_to_float(bits) : half_bits_to_float(bits);  // cuda_bf16.h, cuda_fp16.h
}

/// Runs one wgmma for the calling thread: its accumulators of D (64 x n) += A (64 x 16) B (16 x n).
/// Lane t of warp w (of the warpgroup) holds rows 16 w + t / 4 (+ 8) and, in each 8-column block
/// i, columns 8 i + 2 (t % 4) (+ 1): d[4 i + e], e = 2 (row half) + column parity.
void run_wgmma(const WgmmaOp& op, int rank, uint64_t seq) {
  Exec& x = g_exec;
  const uintptr_t origin = shared_origin();
  const size_t limit = reinterpret_cast<uintptr_t>(current_block().dynamic) + x.config->shmem - origin;
  const Exec::Block& blk = current_block();
  const WgmmaOperand a(op.desc_a, op.trans_a, origin, limit, &blk, "A"),
      b(op.desc_b, op.trans_b, origin, limit, &blk, "B");
  const int w = rank / 32, lane = rank % 32;
  float arow[2][16];
  if (op.a_regs) {
    // Row g (+ 8 h) of the warp's slice, k: lane 4 g + (k % 8) / 2, register h + 2 (k / 8), the
    // low half for even k (mma.m16n8k16's A fragment layout).
    const auto it = x.wgmma_frags.find({warp_of(x.current), seq});
    if (it == x.wgmma_frags.end())
      fatal("%s: register-A wgmma %llu of this warp has no fragments", where().c_str(),
            static_cast<unsigned long long>(seq));
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 16; ++k) {
        const uint32_t r = it->second.regs[(lane / 4) * 4 + (k % 8) / 2][h + 2 * (k / 8)];
        arow[h][k] = element_to_float(static_cast<uint16_t>(k % 2 ? r >> 16 : r & 0xFFFF), op.bf16);
      }
    if (--it->second.left == 0) x.wgmma_frags.erase(it);
  } else {
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 16; ++k)
        arow[h][k] = element_to_float(a.at(16 * w + lane / 4 + 8 * h, k), op.bf16);
  }
  for (int i = 0; i < op.n / 8; ++i)
    for (int c = 0; c < 2; ++c) {
      const int col = 8 * i + 2 * (lane % 4) + c;
      float bcol[16];
      for (int k = 0; k < 16; ++k) bcol[k] = element_to_float(b.at(col, k), op.bf16);
      for (int h = 0; h < 2; ++h) {
        float& d = op.d[4 * i + 2 * h + c];
        float acc = op.scale_d ? d : 0.f;
        for (int k = 0; k < 16; ++k) acc = std::fma(arow[h][k], bcol[k], acc);
        d = acc;
      }
    }
}
}  // namespace

uint32_t shared_address(const void* p) {
  const Exec& x = g_exec;
  const uintptr_t origin = shared_origin(), a = reinterpret_cast<uintptr_t>(p);
  const auto lo = reinterpret_cast<uintptr_t>(current_block().dynamic);
  if (a < lo || a >= lo + x.config->shmem)
    fatal("%s: shared-memory address of %p, outside the block's dynamic shared memory",
          where().c_str(), p);
  return static_cast<uint32_t>(a - origin);
}

namespace {
/// Shared address `address` (+ bytes) of block b as a pointer; aborts outside its memory.
void* shared_pointer_in(const Exec::Block& b, uint32_t address, size_t bytes) {
  const Exec& x = g_exec;
  const uintptr_t p = shared_origin(b) + address, lo = reinterpret_cast<uintptr_t>(b.dynamic);
  if (p < lo || p + bytes > lo + x.config->shmem)
    fatal("%s: shared-memory address 0x%x (+%zu bytes) outside the launch's %zu bytes of dynamic "
          "shared memory",
          where().c_str(), address, bytes, x.config->shmem);
  return reinterpret_cast<void*>(p);
}
}  // namespace

void* shared_pointer(uint32_t address, size_t bytes) {
  if (!g_exec.active || g_exec.current < 0) fatal("a shared-memory address used outside a kernel");
  return shared_pointer_in(current_block(), address, bytes);
}

void spin_yield(const char* what) {
  Exec& x = g_exec;
  if (!x.active || x.current < 0) fatal("%s outside a kernel", what);
  x.fibers[static_cast<size_t>(x.current)].polling = what;
  switch_to_scheduler();
}

void release_yield() {
  Exec& x = g_exec;
  if (!x.active || x.current < 0) fatal("a release store (flag_set) outside a kernel");
  ++x.epoch;
  x.restart = true;
  switch_to_scheduler();
}

void named_barrier(int id, int count, bool wait) {
  Exec& x = g_exec;
  if (!x.active || x.current < 0) fatal("bar.sync / bar.arrive outside a kernel");
  if (id < 1 || id > 15)
    fatal("%s: named barrier %d (1 .. 15; 0 is __syncthreads)", where().c_str(), id);
  if (count <= 0 || count % 32 != 0 || count > x.block_threads)
    fatal("%s: named barrier %d with a count of %d threads (a multiple of 32, at most the "
          "block's %d)",
          where().c_str(), id, count, x.block_threads);
  Exec::NamedBarrier& b = current_block().named[static_cast<size_t>(id)];
  if (b.arrived == 0)
    b.count = count;
  else if (b.count != count)
    fatal("%s: named barrier %d with a count of %d while its phase in progress counts %d",
          where().c_str(), id, count, b.count);
  const uint64_t generation = b.generation;
  ++x.epoch;
  if (++b.arrived == b.count) {
    b.arrived = 0;
    ++b.generation;
    return;
  }
  if (wait)
    while (b.generation == generation) spin_yield("a named barrier (bar.sync)");
}

void mbar_init(void* bar, uint32_t count) {
  Exec& x = g_exec;
  if (!x.active || x.current < 0) fatal("mbarrier.init outside a kernel");
  if (count == 0 || count > (1u << 20) - 1)
    fatal("%s: mbarrier.init with count %u (1 .. 2^20 - 1)", where().c_str(), count);
  if (reinterpret_cast<uintptr_t>(bar) % 8 != 0)
    fatal("%s: mbarrier.init of %p, not 8-byte aligned", where().c_str(), bar);
  x.mbarriers[bar] = Mbarrier{count, count, 0, 0};
  std::memset(bar, 0, 8);
  ++x.epoch;
}

void mbar_arrive(void* bar, uint32_t expect_tx_bytes) {
  Mbarrier& m = mbarrier_at(bar, "mbarrier.arrive");
  m.tx += expect_tx_bytes;
  if (m.pending == 0) fatal("%s: mbarrier %p: an arrival beyond its count", where().c_str(), bar);
  --m.pending;
  mbarrier_check(m, bar);
}

namespace {
void land(void* bar);
}
bool mbar_test_parity(void* bar, uint32_t parity) {
  land(bar);  // the copies it waits for arrive now, not at their issue
  const Mbarrier& m = mbarrier_at(bar, "mbarrier.try_wait.parity");
  return (m.phase & 1u) != (parity & 1u);
}

namespace {
/// Completes `bytes` transaction bytes on the mbarrier at bar (a TMA or bulk copy's completion).
void complete_tx(void* bar, uint64_t bytes, const char* what) {
  Mbarrier& m = mbarrier_at(bar, what);
  m.tx -= static_cast<int64_t>(bytes);
  if (m.pending != 0) ++g_exec.epoch;
  else mbarrier_check(m, bar);
}

/// The tensor map behind a CUtensorMap, checked.
EmuTensorMap tensor_map(const void* tmap) {
  EmuTensorMap t;
  std::memcpy(&t, tmap, sizeof t);
  if (t.magic != kTensorMapMagic)
    fatal("%s: cp.async.bulk.tensor with a tensor map cuTensorMapEncodeTiled did not make",
          where().c_str());
  return t;
}

/// The elements of one box of t.
uint64_t box_elements(const EmuTensorMap& t) {
  uint64_t count = 1;
  for (uint32_t d = 0; d < t.rank; ++d) count *= t.box[d];
  return count;
}

/// Element e (innermost fastest) of the box of t at coords: false where it lies out of bounds,
/// else its byte offset from t.address in `offset`.
bool box_element(const EmuTensorMap& t, const int32_t* coords, uint64_t e, uint64_t& offset) {
  uint64_t rest = e;
  bool inside = true;
  offset = 0;
  for (uint32_t d = 0; d < t.rank; ++d) {
    const int64_t c = static_cast<int64_t>(coords[d]) + static_cast<int64_t>(rest % t.box[d]);
    rest /= t.box[d];
    if (c < 0 || c >= static_cast<int64_t>(t.dims[d])) inside = false;
    else offset += static_cast<uint64_t>(c) * t.strides[d];
  }
  return inside;
}

/// The box of t at coords for block `rank`'s shared memory at shared address base (swizzled as
/// the map says, out-of-bounds elements zero), read from global memory now, put in flight to
/// land when a thread polls bar (in that block).
void tma_box(int rank, uint32_t base, const EmuTensorMap& t, const int32_t* coords, void* bar) {
  Exec::Block& blk = g_exec.blocks[static_cast<size_t>(rank)];
  if (base % 128 != 0)
    fatal("%s: cp.async.bulk.tensor into shared address 0x%x, not 128-byte aligned",
          where().c_str(), base);
  const uint64_t count = box_elements(t);
  const uint64_t bytes = count * t.element_bytes;
  // the whole box lies inside shared memory (a swizzle permutes chunks within 128-byte rows)
  char* const first = static_cast<char*>(shared_pointer_in(blk, base, bytes));
  check_no_pending_reads(rank, base, base + static_cast<uint32_t>(bytes), "cp.async.bulk.tensor");
  Exec::InFlight f{bar, rank, first, std::vector<char>(round_up(bytes, 128)),
                   std::vector<uint8_t>(round_up(bytes, 128)), bytes, "cp.async.bulk.tensor"};
  for (uint64_t e = 0; e < count; ++e) {
    uint64_t offset = 0;
    const bool inside = box_element(t, coords, e, offset);
    const char* to = static_cast<const char*>(shared_pointer_in(
        blk, swizzled(base + static_cast<uint32_t>(e * t.element_bytes), t.swizzle), t.element_bytes));
    const auto at = static_cast<size_t>(to - first);
    if (to < first || at + t.element_bytes > f.image.size())
      fatal("%s: cp.async.bulk.tensor element %llu lands outside its box's shared rows",
            where().c_str(), static_cast<unsigned long long>(e));
    if (inside) {
      require_device_range(t.address + offset, t.element_bytes, "cp.async.bulk.tensor source");
      std::memcpy(f.image.data() + at, t.address + offset, t.element_bytes);
    }  // else zeros, as the image starts
    std::fill_n(f.written.begin() + static_cast<std::ptrdiff_t>(at), t.element_bytes, uint8_t{1});
  }
  g_exec.in_flight.push_back(std::move(f));
}

/// Lands the copies in flight to the mbarrier at bar (a thread polls it): their bytes into
/// shared memory and the async proxy's view, then their transaction bytes on the barrier, in the
/// order they were issued.
void land(void* bar) {
  Exec& x = g_exec;
  std::vector<Exec::InFlight> now;
  for (size_t i = 0; i < x.in_flight.size();) {
    if (x.in_flight[i].bar == bar) {
      now.push_back(std::move(x.in_flight[i]));
      x.in_flight.erase(x.in_flight.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
  for (Exec::InFlight& f : now) {
    Exec::Block& b = x.blocks[static_cast<size_t>(f.block)];
    const uint32_t lo = static_cast<uint32_t>(f.dst - reinterpret_cast<char*>(shared_origin(b)));
    check_no_pending_reads(f.block, lo, lo + static_cast<uint32_t>(f.image.size()), f.what,
                           "the wgmma was issued before this copy landed (a missing or wrong "
                           "mbarrier wait)");
    char* const view = b.async_view.data() + (f.dst - b.dynamic);
    for (size_t i = 0; i < f.image.size(); ++i)
      if (f.written[i]) f.dst[i] = view[i] = f.image[i];
  }
  for (const Exec::InFlight& f : now) complete_tx(f.bar, f.bytes, f.what);
}

/// Aborts in a cooperative launch: its blocks run together here, but they are no cluster.
void require_cluster(const char* what) {
  if (g_exec.cooperative)
    fatal("%s: %s in a cooperative launch without a cluster (its blocks share no cluster)",
          where().c_str(), what);
}

/// p (in the calling block's dynamic shared memory) at the same offset in block `rank`'s.
void* in_block(const void* p, int rank, const char* what) {
  const Exec& x = g_exec;
  require_cluster(what);
  if (rank < 0 || rank >= x.cluster)
    fatal("%s: %s names block rank %d of a cluster of %d", where().c_str(), what, rank, x.cluster);
  const Exec::Block& own = current_block();
  const auto a = reinterpret_cast<uintptr_t>(p), lo = reinterpret_cast<uintptr_t>(own.dynamic);
  if (own.dynamic == nullptr || a < lo || a >= lo + x.config->shmem)
    fatal("%s: %s of %p, outside the block's dynamic shared memory", where().c_str(), what, p);
  return x.blocks[static_cast<size_t>(rank)].dynamic + (a - lo);
}
}  // namespace

void tma_load(void* dst, const void* tmap, const int32_t* coords, void* bar) {
  const EmuTensorMap t = tensor_map(tmap);
  const int rank = g_exec.fibers[static_cast<size_t>(g_exec.current)].block;
  (void)mbarrier_at(bar, "cp.async.bulk.tensor's mbarrier");
  tma_box(rank, shared_address(dst), t, coords, bar);
}

void tma_load_multicast(void* dst, const void* tmap, const int32_t* coords, void* bar,
                        uint16_t mask) {
  const Exec& x = g_exec;
  const EmuTensorMap t = tensor_map(tmap);
  const uint32_t base = shared_address(dst);
  if (mask == 0 || (x.cluster < 16 && (mask >> x.cluster) != 0))
    fatal("%s: cp.async.bulk.tensor .multicast::cluster with the CTA mask 0x%x in a cluster of %d",
          where().c_str(), mask, x.cluster);
  (void)mbarrier_at(bar, "cp.async.bulk.tensor's mbarrier");
  for (int r = 0; r < x.cluster; ++r) {
    if (!(mask >> r & 1u)) continue;
    require_block_alive(r, "cp.async.bulk.tensor .multicast::cluster");
    tma_box(r, base, t, coords, in_block(bar, r, "cp.async.bulk.tensor's mbarrier"));
  }
}

void bulk_load(void* dst, const void* src, uint32_t bytes, void* bar) {
  const uint32_t base = shared_address(dst);
  if (base % 16 != 0 || reinterpret_cast<uintptr_t>(src) % 16 != 0 || bytes % 16 != 0 ||
      bytes == 0)
    fatal("%s: cp.async.bulk of %u bytes from %p into shared address 0x%x (addresses 16-byte "
          "aligned, a non-zero multiple of 16 bytes)",
          where().c_str(), bytes, src, base);
  (void)shared_pointer(base, bytes);
  check_no_pending_reads(g_exec.fibers[static_cast<size_t>(g_exec.current)].block, base,
                         base + bytes, "cp.async.bulk");
  require_device_range(src, bytes, "cp.async.bulk source");
  (void)mbarrier_at(bar, "cp.async.bulk's mbarrier");
  const char* const from = static_cast<const char*>(src);
  g_exec.in_flight.push_back({bar, g_exec.fibers[static_cast<size_t>(g_exec.current)].block,
                              static_cast<char*>(dst), std::vector<char>(from, from + bytes),
                              std::vector<uint8_t>(bytes, 1), bytes, "cp.async.bulk"});
}

void fence_proxy_async() {
  Exec& x = g_exec;
  if (!x.active || x.current < 0) fatal("fence.proxy.async outside a kernel");
  Exec::Block& b = current_block();
  if (!b.async_view.empty()) std::memcpy(b.async_view.data(), b.dynamic, b.async_view.size());
}

void wgmma_issue(const WgmmaOp& op) {
  Exec& x = g_exec;
  if (!x.active || x.current < 0) fatal("wgmma.mma_async outside a kernel");
  if (op.n % 8 != 0 || op.n < 8 || op.n > 256)
    fatal("%s: wgmma with n = %d", where().c_str(), op.n);
  Fiber& f = x.fibers[static_cast<size_t>(x.current)];
  f.wgmma_ops.push_back(op);
  uint64_t seq = 0;
  if (op.a_regs) {  // the warp's lanes issue it together: collect their fragments
    seq = f.wgmma_rs_issued++;
    Exec::Fragments& fr = x.wgmma_frags[{warp_of(x.current), seq}];
    std::memcpy(fr.regs[x.current % x.block_threads % 32], op.a_frag, sizeof op.a_frag);
  }
  f.wgmma_seq.push_back(seq);
  const auto a = op.a_regs ? std::pair<uint32_t, uint32_t>{0, 0}
                           : operand_footprint(op.desc_a, 64, op.trans_a),
             b = operand_footprint(op.desc_b, op.n, op.trans_b);
  f.wgmma_reads.push_back(a);
  f.wgmma_reads.push_back(b);
  ++x.wgmma_pending;
}

void shared_write(const void* p, size_t bytes, const char* writer) {
  const Exec& x = g_exec;
  if (x.wgmma_pending == 0 || x.current < 0) return;
  const Exec::Block& b = current_block();
  if (b.dynamic == nullptr) return;
  const auto a = reinterpret_cast<uintptr_t>(p), lo = reinterpret_cast<uintptr_t>(b.dynamic);
  if (a < lo || a >= lo + x.config->shmem) return;  // static shared memory: wgmma reads none
  const uint32_t address = shared_address(p);
  check_no_pending_reads(x.fibers[static_cast<size_t>(x.current)].block, address,
                         address + static_cast<uint32_t>(bytes), writer);
}

namespace {
/// The calling thread's fiber; aborts naming `what` outside a kernel.
Fiber& current_fiber(const char* what) {
  Exec& x = g_exec;
  if (!x.active || x.current < 0) fatal("%s outside a kernel", what);
  return x.fibers[static_cast<size_t>(x.current)];
}

/// Retires the oldest committed groups until at most `pending` remain: complete(end) is called
/// with the end (exclusive) of each group's items in the queue, which it drops; the group ends
/// that remain shift down by it.
template <class Complete>
void retire_groups(std::vector<size_t>& groups, int pending, Complete&& complete) {
  while (static_cast<int>(groups.size()) > pending) {
    const size_t end = groups.front();
    complete(end);
    groups.erase(groups.begin());
    for (size_t& g : groups) g -= end;
  }
}

/// Writes the first `count` queued copies of f into shared memory (in issue order) and drops them.
void land_copies(Fiber& f, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    shared_write(f.copies[i].dst, 16, "cp.async");
    std::memcpy(f.copies[i].dst, f.copies[i].data, 16);
  }
  f.copies.erase(f.copies.begin(), f.copies.begin() + static_cast<std::ptrdiff_t>(count));
}
}  // namespace

void cp_async(void* dst, const void* src, int src_bytes) {
  Exec& x = g_exec;
  if (!x.active || x.current < 0) fatal("cp.async outside a kernel");
  if (reinterpret_cast<uintptr_t>(dst) % 16 != 0 || reinterpret_cast<uintptr_t>(src) % 16 != 0)
    fatal("%s: cp.async of 16 bytes with a misaligned address (dst %p, src %p)", where().c_str(), dst, src);
  if (src_bytes < 0 || src_bytes > 16) fatal("%s: cp.async with src-size %d", where().c_str(), src_bytes);
  Fiber::Copy c{dst, {}};
  if (src_bytes > 0) {
    require_device_range(src, static_cast<size_t>(src_bytes), "cp.async source");
    std::memcpy(c.data, src, static_cast<size_t>(src_bytes));  // global memory is read at issue
  }
  x.fibers[static_cast<size_t>(x.current)].copies.push_back(c);
}

void cp_async_commit() {
  Fiber& f = current_fiber("cp.async.commit_group");
  f.copy_groups.push_back(f.copies.size());
}

void cp_async_wait(int pending) {
  Fiber& f = current_fiber("cp.async.wait_group");
  if (pending == 0) {  // wait_group 0 (and wait_all) also lands copies not yet committed
    land_copies(f, f.copies.size());
    f.copy_groups.clear();
    return;
  }
  retire_groups(f.copy_groups, pending, [&f](size_t end) { land_copies(f, end); });
}

namespace {
/// Reads the source box of the reduction r (issued by a thread of block `rank`) from the async
/// proxy's view of shared memory, element by element as tma_box lays the box out.
void read_bulk_source(Fiber::BulkReduce& r, int rank) {
  const EmuTensorMap t = tensor_map(r.tmap);
  Exec::Block& blk = g_exec.blocks[static_cast<size_t>(rank)];
  const uint64_t count = box_elements(t);
  r.image.resize(count * t.element_bytes);
  for (uint64_t e = 0; e < count; ++e) {
    const char* at = static_cast<const char*>(shared_pointer_in(
        blk, swizzled(r.base + static_cast<uint32_t>(e * t.element_bytes), t.swizzle),
        t.element_bytes));
    std::memcpy(r.image.data() + e * t.element_bytes,
                blk.async_view.data() + (at - blk.dynamic), t.element_bytes);
  }
  r.read = true;
}

/// Adds the box of r (read) into global memory, skipping out-of-bounds elements.
void apply_bulk_reduce(const Fiber::BulkReduce& r) {
  const EmuTensorMap t = tensor_map(r.tmap);
  const uint64_t count = box_elements(t);
  for (uint64_t e = 0; e < count; ++e) {
    uint64_t offset = 0;
    if (!box_element(t, r.coords, e, offset)) continue;
    require_device_range(t.address + offset, 4, "cp.reduce.async.bulk.tensor destination");
    float sum, add;
    std::memcpy(&sum, t.address + offset, 4);
    std::memcpy(&add, r.image.data() + e * 4, 4);
    sum += add;
    std::memcpy(t.address + offset, &sum, 4);
  }
}
}  // namespace

void tma_reduce_add(const void* src, const void* tmap, const int32_t* coords) {
  Fiber& f = current_fiber("cp.reduce.async.bulk.tensor");
  const EmuTensorMap t = tensor_map(tmap);
  const uint32_t base = shared_address(src);
  if (t.element_bytes != 4)
    fatal("%s: cp.reduce.async.bulk.tensor .add is emulated for 4-byte (float32) maps only",
          where().c_str());
  if (base % 128 != 0)
    fatal("%s: cp.reduce.async.bulk.tensor from shared address 0x%x, not 128-byte aligned",
          where().c_str(), base);
  (void)shared_pointer(base, static_cast<size_t>(box_elements(t) * 4));  // the box lies in shared memory
  Fiber::BulkReduce r{base, tmap, {}, false, {}};
  for (uint32_t d = 0; d < t.rank; ++d) r.coords[d] = coords[d];
  f.bulk.push_back(std::move(r));
}

void bulk_commit() {
  Fiber& f = current_fiber("cp.async.bulk.commit_group");
  f.bulk_groups.push_back(f.bulk.size());
}

void bulk_wait(int pending, bool read) {
  Fiber& f = current_fiber("cp.async.bulk.wait_group");
  // The groups past the newest `pending`: their sources read now (the latest the hardware may),
  // and without .read their sums added and the group gone.
  const size_t keep = static_cast<size_t>(std::max(pending, 0));
  if (f.bulk_groups.size() <= keep) return;
  const size_t end = f.bulk_groups[f.bulk_groups.size() - 1 - keep];
  for (size_t i = 0; i < end; ++i)
    if (!f.bulk[i].read) read_bulk_source(f.bulk[i], f.block);
  if (read) return;
  for (size_t i = 0; i < end; ++i) apply_bulk_reduce(f.bulk[i]);
  retire_groups(f.bulk_groups, pending, [&f](size_t n) {
    f.bulk.erase(f.bulk.begin(), f.bulk.begin() + static_cast<std::ptrdiff_t>(n));
  });
}

void wgmma_commit() {
  Fiber& f = current_fiber("wgmma.commit_group");
  f.wgmma_groups.push_back(f.wgmma_ops.size());
}

void wgmma_wait(int pending) {
  Fiber& f = current_fiber("wgmma.wait_group");
  const int rank = g_exec.current % g_exec.block_threads % 128;
  // .sync.aligned: every lane of the warp has issued what it waits for (a register-A wgmma needs
  // the other lanes' fragments) before any runs.
  (void)warp_collective(WarpOp::kSync, 0xffffffffu, 0, 0, 32, "wgmma.wait_group");
  retire_groups(f.wgmma_groups, pending, [&f, rank](size_t end) {
    for (size_t i = 0; i < end; ++i) run_wgmma(f.wgmma_ops[i], rank, f.wgmma_seq[i]);
    f.wgmma_ops.erase(f.wgmma_ops.begin(), f.wgmma_ops.begin() + static_cast<std::ptrdiff_t>(end));
    f.wgmma_seq.erase(f.wgmma_seq.begin(), f.wgmma_seq.begin() + static_cast<std::ptrdiff_t>(end));
    f.wgmma_reads.erase(f.wgmma_reads.begin(),
                        f.wgmma_reads.begin() + static_cast<std::ptrdiff_t>(2 * end));
    g_exec.wgmma_pending -= end;
  });
  // .sync.aligned: the warp's lanes leave together (each has run its part)
  (void)warp_collective(WarpOp::kSync, 0xffffffffu, 0, 0, 32, "wgmma.wait_group");
}

// ---- thread-block clusters ----

int max_active_clusters(size_t shmem, unsigned size) {
  return shmem <= kSharedOptinLimit && size > 0 ? sm_count() / static_cast<int>(size)
                                                : 0;
}

int cluster_ctarank() {
  const int rank = current_fiber("%cluster_ctarank").block;
  require_cluster("%cluster_ctarank");
  return rank;
}
int cluster_nctarank() {
  (void)current_fiber("%cluster_nctarank");
  require_cluster("%cluster_nctarank");
  return g_exec.cluster;
}

void cluster_arrive() {
  Exec& x = g_exec;
  Fiber& f = current_fiber("barrier.cluster.arrive");
  require_cluster("barrier.cluster.arrive");
  if (f.cluster_armed)
    fatal("%s: barrier.cluster.arrive twice without a barrier.cluster.wait between",
          where().c_str());
  f.cluster_armed = true;
  f.cluster_generation = x.cluster_generation;
  ++x.epoch;
  if (++x.cluster_arrived == x.nthreads) {
    x.cluster_arrived = 0;
    ++x.cluster_generation;
  }
}

void cluster_wait() {
  Exec& x = g_exec;
  Fiber& f = current_fiber("barrier.cluster.wait");
  if (!f.cluster_armed)
    fatal("%s: barrier.cluster.wait without a barrier.cluster.arrive before it", where().c_str());
  while (x.cluster_generation == f.cluster_generation) spin_yield("barrier.cluster.wait");
  f.cluster_armed = false;
}

void* map_shared_rank(const void* p, int rank) {
  (void)current_fiber("mapa");
  void* q = in_block(p, rank, "mapa");
  require_block_alive(rank, "mapa");
  return q;
}

}  // namespace ember_emu

CUresult cuTensorMapEncodeTiled(CUtensorMap* tensorMap, CUtensorMapDataType tensorDataType,
                                cuuint32_t tensorRank, void* globalAddress,
                                const cuuint64_t* globalDim, const cuuint64_t* globalStrides,
                                const cuuint32_t* boxDim, const cuuint32_t* elementStrides,
                                CUtensorMapInterleave interleave, CUtensorMapSwizzle swizzle,
                                CUtensorMapL2promotion l2Promotion,
                                CUtensorMapFloatOOBfill oobFill) {
  using namespace ember_emu;
  (void)elementStrides, (void)l2Promotion, (void)oobFill;
  uint32_t esize = 0;
  switch (tensorDataType) {
    case CU_TENSOR_MAP_DATA_TYPE_UINT8: esize = 1; break;
    case CU_TENSOR_MAP_DATA_TYPE_UINT16:
    case CU_TENSOR_MAP_DATA_TYPE_FLOAT16:
    case CU_TENSOR_MAP_DATA_TYPE_BFLOAT16: esize = 2; break;
    case CU_TENSOR_MAP_DATA_TYPE_UINT64:
    case CU_TENSOR_MAP_DATA_TYPE_INT64:
    case CU_TENSOR_MAP_DATA_TYPE_FLOAT64: esize = 8; break;
    default: esize = 4; break;
  }
  if (tensorMap == nullptr || reinterpret_cast<uintptr_t>(tensorMap) % 64 != 0) return CUDA_ERROR_INVALID_VALUE;
  if (tensorRank == 0 || tensorRank > 5) return CUDA_ERROR_INVALID_VALUE;
  if (reinterpret_cast<uintptr_t>(globalAddress) % 16 != 0) return CUDA_ERROR_INVALID_VALUE;
  if (interleave != CU_TENSOR_MAP_INTERLEAVE_NONE) return CUDA_ERROR_INVALID_VALUE;  // not emulated
  EmuTensorMap t{};
  t.magic = kTensorMapMagic;
  t.address = static_cast<char*>(globalAddress);
  t.rank = tensorRank;
  t.element_bytes = esize;
  for (uint32_t d = 0; d < tensorRank; ++d) {
    if (globalDim[d] == 0 || globalDim[d] > (uint64_t{1} << 32)) return CUDA_ERROR_INVALID_VALUE;
    if (boxDim[d] == 0 || boxDim[d] > 256) return CUDA_ERROR_INVALID_VALUE;
    t.dims[d] = globalDim[d];
    t.box[d] = boxDim[d];
    if (d == 0) {
      t.strides[d] = esize;
    } else {
      const uint64_t s = globalStrides[d - 1];
      if (s % 16 != 0 || s >= (uint64_t{1} << 40)) return CUDA_ERROR_INVALID_VALUE;
      t.strides[d] = s;
    }
  }
  const uint64_t inner = uint64_t{boxDim[0]} * esize;
  if (inner % 16 != 0) return CUDA_ERROR_INVALID_VALUE;
  const uint32_t mode = static_cast<uint32_t>(swizzle);
  if (mode > 3 || (mode != 0 && inner > (16u << mode))) return CUDA_ERROR_INVALID_VALUE;
  t.swizzle = mode;
  std::memset(tensorMap, 0, sizeof *tensorMap);
  std::memcpy(tensorMap, &t, sizeof t);
  return CUDA_SUCCESS;
}

namespace ember_emu {

bool is_device_range(const void* p, size_t bytes) {
  std::lock_guard<std::mutex> lock(g_mem_mutex);
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = g_allocations.upper_bound(a);
  if (it == g_allocations.begin()) return false;
  --it;
  return a >= it->first && a + bytes <= it->first + it->second.size && a + bytes >= a;
}

void require_device_range(const void* p, size_t bytes, const char* what) {
  if (bytes == 0) return;
  if (!is_device_range(p, bytes))
    fatal("%s: [%p, +%zu bytes) is not inside one device allocation (in %s)", what, p, bytes, where().c_str());
}

void check_kernel_pointer(const char* kernel, int index, const void* p) {
  if (p == nullptr) return;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> lock(g_mem_mutex);
  auto it = g_allocations.upper_bound(a);
  if (it != g_allocations.begin()) {
    --it;
    if (a >= it->first && a <= it->first + it->second.size) return;  // one past the end is fine
  }
  fatal("launch of %s: pointer argument %d (%p) is not device memory", kernel, index, p);
}

namespace {
std::atomic<unsigned long long> g_launches{0}, g_host_waits{0};

/// EMBER_EMU_TRACE=1: every launch (the kernel's name and geometry) and every host wait on
/// stderr, for a census of what a step runs.
bool trace_on() {
  static const bool on = [] {
    const char* e = std::getenv("EMBER_EMU_TRACE");
    return e != nullptr && *e != '\0' && *e != '0';
  }();
  return on;
}
}  // namespace

void host_wait(const char* what) {
  ++g_host_waits;
  if (trace_on()) std::fprintf(stderr, "[emu] host wait: %s\n", what);
}

Counts counts() { return Counts{g_launches.load(), g_host_waits.load()}; }

void run_kernel(const LaunchConfig& c, ThreadEntry entry, void* ctx) {
  std::lock_guard<std::mutex> lock(g_launch_mutex);
  ++g_launches;
  if (trace_on())
    std::fprintf(stderr, "[emu] launch %s grid (%u, %u, %u) block (%u, %u, %u)\n", c.name, c.grid.x,
                 c.grid.y, c.grid.z, c.block.x, c.block.y, c.block.z);
  install_segv_handler();
  const unsigned long long threads = 1ull * c.block.x * c.block.y * c.block.z;
  if (c.block.x == 0 || c.block.y == 0 || c.block.z == 0 || threads > kMaxThreads ||
      c.block.x > 1024 || c.block.y > 1024 || c.block.z > 64)
    fatal("launch of %s: block (%u,%u,%u) is not a valid block (at most 1024 threads, z <= 64)",
          c.name, c.block.x, c.block.y, c.block.z);
  if (c.grid.x == 0 || c.grid.y == 0 || c.grid.z == 0 || c.grid.x > 0x7fffffffu ||
      c.grid.y > 65535 || c.grid.z > 65535)
    fatal("launch of %s: grid (%u,%u,%u) is not a valid grid (x in [1, 2^31-1], y and z in [1, 65535])",
          c.name, c.grid.x, c.grid.y, c.grid.z);
  size_t dyn_limit = kStaticSharedLimit;
  g_exec.shared_limit = kStaticSharedLimit;
  {
    std::lock_guard<std::mutex> flock(g_func_mutex);
    // Launches go through a lambda (rewrite_launches.py), so the kernel's address is unknown:
    // the largest opt-in any kernel was given applies to all.
    for (const auto& [func, bytes] : g_max_dynamic_shared) {
      dyn_limit = std::max(dyn_limit, static_cast<size_t>(bytes));
      g_exec.shared_limit = kSharedOptinLimit;
    }
  }
  if (c.shmem > dyn_limit)
    fatal("launch of %s: %zu bytes of dynamic shared memory, over the %zu-byte limit%s", c.name,
          c.shmem, dyn_limit,
          dyn_limit == kStaticSharedLimit ? " (cudaFuncSetAttribute(MaxDynamicSharedMemorySize) raises it)" : "");
  if (!::stream_is_live(c.stream))
    fatal("launch of %s: stream %p is not a live stream", c.name, static_cast<void*>(c.stream));
  const dim3 cl = c.cooperative ? c.grid : c.cluster;
  const unsigned cluster = cl.x * cl.y * cl.z;
  if (c.cooperative) {
    // Every block resident at once: the SM count times the blocks an SM holds by threads and
    // shared memory (1 KiB of each block's reserved by the system, as on Hopper).
    const size_t by_smem = kSharedPerSM / (c.shmem + 1024);
    const size_t per_sm = std::min<size_t>({2048 / threads, by_smem, 32});
    if (c.cluster.x * c.cluster.y * c.cluster.z != 1 || cluster > per_sm * sm_count())
      fatal("cooperative launch of %s: grid (%u,%u,%u) of %u blocks, cluster (%u,%u,%u) (at most "
            "%zu blocks can be resident, %zu per SM on %d SMs; clusters in a cooperative launch "
            "are not emulated)",
            c.name, c.grid.x, c.grid.y, c.grid.z, cluster, c.cluster.x, c.cluster.y, c.cluster.z,
            per_sm * sm_count(), per_sm, sm_count());
  } else if (cl.x == 0 || cl.y == 0 || cl.z == 0 || cluster > 8 || c.grid.x % cl.x != 0 ||
      c.grid.y % cl.y != 0 || c.grid.z % cl.z != 0)
    fatal("launch of %s: cluster (%u,%u,%u) for grid (%u,%u,%u) (at most 8 blocks, the portable "
          "limit, and the grid a whole number of clusters along each dimension)",
          c.name, cl.x, cl.y, cl.z, c.grid.x, c.grid.y, c.grid.z);
  if (cluster > 1 && threads % 32 != 0)
    fatal("launch of %s: a cluster of blocks of %llu threads (the emulator runs clusters of "
          "whole warps only)",
          c.name, threads);

  Exec& x = g_exec;
  x.config = &c;
  x.entry = entry;
  x.ctx = ctx;
  x.block_threads = static_cast<int>(threads);
  x.warps_per_block = static_cast<int>((threads + 31) / 32);
  x.cluster = static_cast<int>(cluster);
  x.cooperative = c.cooperative;
  // A cooperative launch's blocks run together, the first by priority a different one each
  // launch, so that two runs of a kernel whose blocks hand work to each other see different
  // orders (a result that depends on the order differs between them).
  x.first = c.cooperative ? static_cast<int>(x.cooperative_launches++ % cluster) : 0;
  x.nthreads = x.block_threads * x.cluster;
  const auto flag = [](const char* name) {
    const char* e = std::getenv(name);
    return e != nullptr && e[0] == '1';
  };
  x.reverse = flag("EMBER_EMU_REVERSE");
  x.warp_priority = flag("EMBER_EMU_WARP_PRIORITY");
  x.priority_order = warp_priority_order(std::getenv("EMBER_EMU_WARP_PRIORITY"), x.warps_per_block);
  x.warp_priority = x.warp_priority || !x.priority_order.empty();
  x.block_sweep = flag("EMBER_EMU_BLOCK_SWEEP");
  const char* seed = std::getenv("EMBER_EMU_SHUFFLE");
  const uint64_t n = seed != nullptr ? std::strtoull(seed, nullptr, 10) : 0;
  x.shuffle = n != 0;
  if (x.shuffle && n != x.shuffle_seed) {  // a new seed: the generator starts over
    x.shuffle_seed = n;
    x.rng.seed(n);
  }
  ensure_stacks(x.nthreads);
  x.fibers.assign(static_cast<size_t>(x.nthreads), Fiber{});
  x.warps.assign(static_cast<size_t>(x.warps_per_block * x.cluster), Warp{});
  for (int t = 0; t < x.nthreads; ++t) {
    const unsigned ut = static_cast<unsigned>(t % x.block_threads);
    Fiber& f = x.fibers[static_cast<size_t>(t)];
    f.tid = uint3{ut % c.block.x, ut / c.block.x % c.block.y, ut / (c.block.x * c.block.y)};
    f.block = t / x.block_threads;
  }
  x.blocks.assign(cluster, Exec::Block{});
  if (c.shmem > 0) {
    for (Exec::Block& b : x.blocks) {
      const size_t len = round_up(c.shmem, kPage) + kPage;
      void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (m == MAP_FAILED) fatal("cannot map dynamic shared memory");
      mprotect(static_cast<char*>(m) + len - kPage, kPage, PROT_NONE);
      b.dynamic_map = static_cast<char*>(m);
      b.dynamic_map_len = len;
      b.dynamic = b.dynamic_map + len - kPage - round_up(c.shmem, 16);
      b.async_view.assign(c.shmem, static_cast<char>(0xFF));
    }
  }
  blockDim = c.block;
  gridDim = c.grid;
  x.active = true;
  // Clusters in order (x fastest), the blocks of each by rank: %cluster_ctarank = x + cx (y +
  // cy z) within the cluster.
  const dim3 per{c.grid.x / cl.x, c.grid.y / cl.y, c.grid.z / cl.z};
  const uint64_t nclusters = uint64_t{per.x} * per.y * per.z;
  for (uint64_t i = 0; i < nclusters; ++i) {
    const uint64_t k = x.reverse ? nclusters - 1 - i : i;
    const unsigned kx = static_cast<unsigned>(k % per.x), ky = static_cast<unsigned>(k / per.x % per.y),
                   kz = static_cast<unsigned>(k / (uint64_t{per.x} * per.y));
    for (unsigned r = 0; r < cluster; ++r)
      x.blocks[r].idx = uint3{kx * cl.x + r % cl.x, ky * cl.y + r / cl.x % cl.y,
                              kz * cl.z + r / (cl.x * cl.y)};
    blockIdx = x.blocks[0].idx;
    run_cluster();
  }
  x.active = false;
  for (Exec::Block& b : x.blocks)
    if (b.dynamic_map != nullptr) munmap(b.dynamic_map, b.dynamic_map_len);
  x.blocks.clear();
  x.config = nullptr;
}

}  // namespace ember_emu

// ---- the runtime API ----
using namespace ember_emu;

namespace {
std::mutex g_handle_mutex;
std::set<cudaStream_t> g_streams;
std::set<cudaEvent_t> g_events;
thread_local int t_device = 0;

bool valid_stream(cudaStream_t s) {
  if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) return true;
  std::lock_guard<std::mutex> lock(g_handle_mutex);
  return g_streams.count(s) != 0;
}
bool valid_event(cudaEvent_t e) {
  std::lock_guard<std::mutex> lock(g_handle_mutex);
  return e != nullptr && g_events.count(e) != 0;
}

const char* kind_name(cudaMemcpyKind k) {
  switch (k) {
    case cudaMemcpyHostToHost: return "HostToHost";
    case cudaMemcpyHostToDevice: return "HostToDevice";
    case cudaMemcpyDeviceToHost: return "DeviceToHost";
    case cudaMemcpyDeviceToDevice: return "DeviceToDevice";
    case cudaMemcpyDefault: return "Default";
  }
  return "?";
}

cudaError_t copy(void* dst, const void* src, size_t count, cudaMemcpyKind kind, cudaStream_t stream,
                 const char* what) {
  if (!valid_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
  if (count == 0) return cudaSuccess;
  const bool dst_dev = is_device_range(dst, count), src_dev = is_device_range(src, count);
  bool ok = true;
  switch (kind) {
    case cudaMemcpyHostToHost: ok = !dst_dev && !src_dev; break;
    case cudaMemcpyHostToDevice: ok = dst_dev && !src_dev; break;
    case cudaMemcpyDeviceToHost: ok = !dst_dev && src_dev; break;
    case cudaMemcpyDeviceToDevice: ok = dst_dev && src_dev; break;
    case cudaMemcpyDefault: break;
    default: return fail(cudaErrorInvalidMemcpyDirection);
  }
  if (!ok)
    fatal("%s(%s, %zu bytes): dst %p is %s, src %p is %s", what, kind_name(kind), count, dst,
          dst_dev ? "device memory" : "not (wholly) device memory", src,
          src_dev ? "device memory" : "not (wholly) device memory");
  std::memmove(dst, src, count);
  return cudaSuccess;
}
}  // namespace

bool stream_is_live(cudaStream_t s) { return valid_stream(s); }

cudaError_t cudaGetLastError() {
  const cudaError_t e = t_last_error;
  t_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return t_last_error; }

const char* cudaGetErrorName(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidSymbol: return "cudaErrorInvalidSymbol";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidSymbol: return "invalid device symbol";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
  }
  return "unknown error";
}

cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return fail(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr) return fail(cudaErrorInvalidValue);
  *device = t_device;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice);
  t_device = device;
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() {
  host_wait("cudaDeviceSynchronize");
  return cudaSuccess;
}
cudaError_t cudaDeviceReset() { return cudaSuccess; }

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (value == nullptr) return fail(cudaErrorInvalidValue);
  if (device != 0) return fail(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = kMaxThreads; break;
    case cudaDevAttrMaxBlockDimX: *value = 1024; break;
    case cudaDevAttrMaxBlockDimY: *value = 1024; break;
    case cudaDevAttrMaxBlockDimZ: *value = 64; break;
    case cudaDevAttrMaxGridDimX: *value = 0x7fffffff; break;
    case cudaDevAttrMaxGridDimY: *value = 65535; break;
    case cudaDevAttrMaxGridDimZ: *value = 65535; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = static_cast<int>(kStaticSharedLimit); break;
    case cudaDevAttrTotalConstantMemory: *value = 65536; break;
    case cudaDevAttrWarpSize: *value = 32; break;
    case cudaDevAttrMaxRegistersPerBlock: *value = 65536; break;
    case cudaDevAttrClockRate: *value = 1980000; break;
    case cudaDevAttrMultiProcessorCount: *value = sm_count(); break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *value = 2048; break;
    case cudaDevAttrComputeCapabilityMajor: *value = 9; break;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = static_cast<int>(kSharedPerSM); break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = static_cast<int>(kSharedOptinLimit); break;
    default: return fail(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (p == nullptr) return fail(cudaErrorInvalidValue);
  if (device != 0) return fail(cudaErrorInvalidDevice);
  std::memset(p, 0, sizeof *p);
  std::snprintf(p->name, sizeof p->name, "NVIDIA H200 (cuda_emu)");
  p->totalGlobalMem = kTotalMemory;
  p->sharedMemPerBlock = kStaticSharedLimit;
  p->regsPerBlock = 65536;
  p->warpSize = 32;
  p->maxThreadsPerBlock = kMaxThreads;
  p->maxThreadsDim[0] = 1024, p->maxThreadsDim[1] = 1024, p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 0x7fffffff, p->maxGridSize[1] = 65535, p->maxGridSize[2] = 65535;
  p->totalConstMem = 65536;
  p->major = 9, p->minor = 0;
  p->multiProcessorCount = sm_count();
  p->maxThreadsPerMultiProcessor = 2048;
  p->sharedMemPerMultiprocessor = kSharedPerSM;
  p->sharedMemPerBlockOptin = kSharedOptinLimit;
  p->regsPerMultiprocessor = 65536;
  p->l2CacheSize = 50 * 1024 * 1024;
  p->memoryBusWidth = 6144;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetStreamPriorityRange(int* least, int* greatest) {
  if (least) *least = 0;
  if (greatest) *greatest = -5;
  return cudaSuccess;
}
cudaError_t cudaDeviceCanAccessPeer(int* can, int, int) {
  if (can) *can = 0;
  return cudaSuccess;
}
cudaError_t cudaDeviceEnablePeerAccess(int, unsigned int) { return fail(cudaErrorInvalidDevice); }

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  std::lock_guard<std::mutex> lock(g_mem_mutex);
  if (free_bytes) *free_bytes = kTotalMemory - g_used;
  if (total_bytes) *total_bytes = kTotalMemory;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** ptr, size_t size) {
  if (ptr == nullptr) return fail(cudaErrorInvalidValue);
  *ptr = nullptr;
  if (size == 0) return cudaSuccess;
  std::lock_guard<std::mutex> lock(g_mem_mutex);
  if (size > kTotalMemory - g_used) return fail(cudaErrorMemoryAllocation);
  const size_t body = round_up(size, kPage);
  const size_t len = body + 2 * kPage;
  void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return fail(cudaErrorMemoryAllocation);
  char* base = static_cast<char*>(m);
  mprotect(base, kPage, PROT_NONE);
  mprotect(base + kPage + body, kPage, PROT_NONE);
  // the allocation ends at the upper guard page (256-byte aligned start, as cudaMalloc's)
  char* p = base + kPage + body - round_up(size, 256);
  g_allocations[reinterpret_cast<uintptr_t>(p)] = Allocation{size, base, len};
  g_used += size;
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  std::lock_guard<std::mutex> lock(g_mem_mutex);
  auto it = g_allocations.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == g_allocations.end()) fatal("cudaFree(%p): not a pointer cudaMalloc returned (or freed twice)", ptr);
  g_used -= it->second.size;
  munmap(it->second.map_base, it->second.map_len);
  g_allocations.erase(it);
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, size_t size) {
  if (ptr == nullptr) return fail(cudaErrorInvalidValue);
  *ptr = std::malloc(size == 0 ? 1 : size);
  return *ptr ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}
cudaError_t cudaHostAlloc(void** ptr, size_t size, unsigned int flags) {
  if (flags != cudaHostAllocDefault) return fail(cudaErrorInvalidValue);
  return cudaMallocHost(ptr, size);
}
cudaError_t cudaFreeHost(void* ptr) {
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
  if (count > 0 && is_device_range(src, count)) host_wait("cudaMemcpy from the device");
  return copy(dst, src, count, kind, nullptr, "cudaMemcpy");
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind kind, cudaStream_t stream) {
  return copy(dst, src, count, kind, stream, "cudaMemcpyAsync");
}
cudaError_t cudaMemcpyPeer(void* dst, int dst_device, const void* src, int src_device, size_t count) {
  return cudaMemcpyPeerAsync(dst, dst_device, src, src_device, count, nullptr);
}
cudaError_t cudaMemcpyPeerAsync(void* dst, int dst_device, const void* src, int src_device, size_t count,
                                cudaStream_t stream) {
  if (dst_device != 0 || src_device != 0) return fail(cudaErrorInvalidDevice);
  return copy(dst, src, count, cudaMemcpyDeviceToDevice, stream, "cudaMemcpyPeerAsync");
}
cudaError_t cudaMemset(void* dst, int value, size_t count) { return cudaMemsetAsync(dst, value, count, nullptr); }
cudaError_t cudaMemsetAsync(void* dst, int value, size_t count, cudaStream_t stream) {
  if (!valid_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
  require_device_range(dst, count, "cudaMemsetAsync");
  if (count > 0) std::memset(dst, value, count);
  return cudaSuccess;
}

cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* a, const void* ptr) {
  if (a == nullptr) return fail(cudaErrorInvalidValue);
  const bool dev = is_device_range(ptr, 1);
  a->type = dev ? cudaMemoryTypeDevice : cudaMemoryTypeUnregistered;
  a->device = dev ? 0 : -2;
  a->devicePointer = dev ? const_cast<void*>(ptr) : nullptr;
  a->hostPointer = dev ? nullptr : const_cast<void*>(ptr);
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithPriority(stream, 0, 0); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  return cudaStreamCreateWithPriority(stream, flags, 0);
}
cudaError_t cudaStreamCreateWithPriority(cudaStream_t* stream, unsigned int flags, int priority) {
  if (stream == nullptr || flags > 1) return fail(cudaErrorInvalidValue);
  *stream = new CUstream_st{flags, std::clamp(priority, -5, 0)};
  std::lock_guard<std::mutex> lock(g_handle_mutex);
  g_streams.insert(*stream);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(g_handle_mutex);
  if (g_streams.erase(stream) == 0) return fail(cudaErrorInvalidResourceHandle);
  delete stream;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  host_wait("cudaStreamSynchronize");
  return valid_stream(stream) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaStreamQuery(cudaStream_t stream) {
  return valid_stream(stream) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int) {
  if (!valid_stream(stream) || !valid_event(event)) return fail(cudaErrorInvalidResourceHandle);
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  if (event == nullptr || flags > 7) return fail(cudaErrorInvalidValue);
  *event = new CUevent_st{flags, false, {}};
  std::lock_guard<std::mutex> lock(g_handle_mutex);
  g_events.insert(*event);
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  std::lock_guard<std::mutex> lock(g_handle_mutex);
  if (g_events.erase(event) == 0) return fail(cudaErrorInvalidResourceHandle);
  delete event;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (!valid_event(event) || !valid_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
  event->recorded = true;
  event->time = std::chrono::steady_clock::now();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  host_wait("cudaEventSynchronize");
  return valid_event(event) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventQuery(cudaEvent_t event) {
  return valid_event(event) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (ms == nullptr) return fail(cudaErrorInvalidValue);
  if (!valid_event(start) || !valid_event(end)) return fail(cudaErrorInvalidResourceHandle);
  if ((start->flags & cudaEventDisableTiming) || (end->flags & cudaEventDisableTiming))
    return fail(cudaErrorInvalidResourceHandle);
  if (!start->recorded || !end->recorded) return fail(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(end->time - start->time).count();
  return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  if (func == nullptr) return fail(cudaErrorInvalidValue);
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    if (value < 0 || static_cast<size_t>(value) > kSharedOptinLimit) return fail(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> lock(g_func_mutex);
    g_max_dynamic_shared[func] = value;
  }
  return cudaSuccess;
}
