// The vendor backend of convolution (cuda::set_backend(Backend::kVendor)): conv2d's forward,
// input gradient and weight gradient handed to NVIDIA's cuDNN (its convolution API:
// cudnnConvolutionForward / BackwardData / BackwardFilter) instead of Ember's implicit-GEMM
// kernels, with the same entry points (kernels.hpp: conv2d_implicit_gemm's signatures), so
// src/core/ops/conv.cpp routes either set of kernels through one path.
//
// cuDNN is not a link dependency of libember: it is loaded on first use with dlopen
// ("libcudnn.so.9"), its functions found by name, their types taken from the cudnn.h this file was
// compiled against (EMBER_HAVE_CUDNN_H; without the header cudnn_available() is false). A machine
// without cuDNN 9 keeps everything else: the vendor backend then runs convolution as im2col +
// cuBLAS, as before this file existed.
//
// Types: float32 (CUDNN_FMA_MATH, exact float32, unless cuda::allow_tf32(): then cuDNN may use
// TF32 tensor cores), float64, and float16/bfloat16 with float32 accumulation
// (CUDNN_TENSOR_OP_MATH). NCHW tensors of any strides for x, y, dy and dx; filters are made
// contiguous. Algorithms: the _v7 heuristic's ranking, first deterministic one (cuDNN reports
// each algorithm's determinism), so the vendor backend keeps Ember's promise of the same bits run
// to run, as PyTorch does under torch.backends.cudnn.deterministic; chosen once per problem
// (shapes, strides, types, window, groups, math mode) and cached. Workspaces come from Ember's
// caching allocator. Each entry point returns false, having written nothing, when cuDNN is absent,
// for a dtype it does not take, sizes past int32, a ReLU request, an output whose extent is not
// exactly the convolution's (the crop conv_transpose2d's backward needs: the caller's ops run it),
// or when no deterministic algorithm exists for the problem.
//
// One cuDNN handle per thread and device (handles are not for concurrent use), set to the current
// stream on every call; handles are not destroyed at exit (the CUDA runtime may already be gone).
#include <cuda_runtime.h>

#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "core/kernels.hpp"
#include "core/tensor_impl.hpp"
#include "cuda/common.cuh"
#include "cuda/loops.cuh"
#include "ember/cuda/cuda.hpp"

#if !defined(EMBER_CUDA_EMULATED) && defined(EMBER_HAVE_CUDNN_H)
#include <cudnn.h>
#include <dlfcn.h>
#define EMBER_CUDNN_ENABLED 1
#endif

namespace ember::cuda {

#if !defined(EMBER_CUDNN_ENABLED)

bool cudnn_available() { return false; }
int64_t cudnn_version() { return 0; }
bool cudnn_conv2d(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Window2d&,
                  int64_t, bool) {
  return false;
}
bool cudnn_conv2d_input_grad(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                             const Window2d&, int64_t) {
  return false;
}
bool cudnn_conv2d_weight_grad(const Tensor&, const Tensor&, const Tensor&, const Window2d&,
                              int64_t) {
  return false;
}

#else

namespace {

// The cuDNN functions this file calls: X(name) per function, typed by cudnn.h's declaration.
#define EMBER_CUDNN_FUNCTIONS(X)                    \
  X(cudnnGetVersion)                                \
  X(cudnnGetErrorString)                            \
  X(cudnnCreate)                                    \
  X(cudnnSetStream)                                 \
  X(cudnnCreateTensorDescriptor)                    \
  X(cudnnSetTensorNdDescriptor)                     \
  X(cudnnDestroyTensorDescriptor)                   \
  X(cudnnCreateFilterDescriptor)                    \
  X(cudnnSetFilter4dDescriptor)                     \
  X(cudnnDestroyFilterDescriptor)                   \
  X(cudnnCreateConvolutionDescriptor)               \
  X(cudnnSetConvolution2dDescriptor)                \
  X(cudnnSetConvolutionGroupCount)                  \
  X(cudnnSetConvolutionMathType)                    \
  X(cudnnDestroyConvolutionDescriptor)              \
  X(cudnnGetConvolution2dForwardOutputDim)          \
  X(cudnnGetConvolutionForwardAlgorithm_v7)         \
  X(cudnnGetConvolutionForwardWorkspaceSize)        \
  X(cudnnConvolutionForward)                        \
  X(cudnnGetConvolutionBackwardDataAlgorithm_v7)    \
  X(cudnnGetConvolutionBackwardDataWorkspaceSize)   \
  X(cudnnConvolutionBackwardData)                   \
  X(cudnnGetConvolutionBackwardFilterAlgorithm_v7)  \
  X(cudnnGetConvolutionBackwardFilterWorkspaceSize) \
  X(cudnnConvolutionBackwardFilter)                 \
  X(cudnnAddTensor)

/// The loaded library: every function above, or none (`ok` false) when libcudnn.so.9 is not
/// found, lacks one of them, or is not a cuDNN 9.
struct Library {
#define EMBER_CUDNN_MEMBER(name) decltype(&::name) name = nullptr;
  EMBER_CUDNN_FUNCTIONS(EMBER_CUDNN_MEMBER)
#undef EMBER_CUDNN_MEMBER
  bool ok = false;
  int64_t version = 0;

  Library() {
    void* lib = nullptr;
    for (const char* file : {"libcudnn.so.9", "libcudnn.so"}) {
      lib = dlopen(file, RTLD_NOW | RTLD_LOCAL);
      if (lib != nullptr) break;
    }
    if (lib == nullptr) return;
    bool all = true;
#define EMBER_CUDNN_LOAD(name)                                   \
  name = reinterpret_cast<decltype(&::name)>(dlsym(lib, #name)); \
  all = all && name != nullptr;
    EMBER_CUDNN_FUNCTIONS(EMBER_CUDNN_LOAD)
#undef EMBER_CUDNN_LOAD
    if (!all) return;  // the library stays loaded (dlclose is never safe mid-process here)
    version = static_cast<int64_t>(cudnnGetVersion());
    ok = version / 10000 == CUDNN_MAJOR;  // the ABI of the header compiled against
  }
};

const Library& library() {
  static const Library lib;
  return lib;
}

void check(cudnnStatus_t s, const char* what) {
  if (s != CUDNN_STATUS_SUCCESS)
    throw DeviceError(
        ember::detail::str_cat("[cudnn] ", what, " failed: ", library().cudnnGetErrorString(s)));
}

/// The calling thread's handle for `device` (the current device), made on first use.
cudnnHandle_t handle_for(int device) {
  thread_local std::map<int, cudnnHandle_t> by_device;
  auto it = by_device.find(device);
  if (it != by_device.end()) return it->second;
  cudnnHandle_t h = nullptr;
  check(library().cudnnCreate(&h), "cudnnCreate");
  by_device.emplace(device, h);
  return h;
}

bool fits_int(int64_t v) { return v >= 0 && v <= std::numeric_limits<int>::max(); }

/// cuDNN's storage and compute types and math mode for a dtype; false for one it does not take.
struct Types {
  cudnnDataType_t data, compute;
  cudnnMathType_t math;
};
bool types_of(DType dt, Types& t) {
  switch (dt) {
    case kFloat32:
      t = {CUDNN_DATA_FLOAT, CUDNN_DATA_FLOAT, allow_tf32() ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH};
      return true;
    case kFloat64:
      t = {CUDNN_DATA_DOUBLE, CUDNN_DATA_DOUBLE, CUDNN_DEFAULT_MATH};
      return true;
    case kFloat16:
      t = {CUDNN_DATA_HALF, CUDNN_DATA_FLOAT, CUDNN_TENSOR_OP_MATH};
      return true;
    case kBFloat16:
      t = {CUDNN_DATA_BFLOAT16, CUDNN_DATA_FLOAT, CUDNN_TENSOR_OP_MATH};
      return true;
    default:
      return false;
  }
}

/// A 4-d tensor's sizes and strides as int, or false past int32.
bool dims_of(const Tensor& t, int (&size)[4], int (&stride)[4]) {
  if (t.dim() != 4) return false;
  for (int i = 0; i < 4; ++i) {
    // cuDNN wants strides >= 1 even along size-1 dims (where they never matter).
    const int64_t s = t.size(i) == 1 ? 1 : t.stride(i);
    if (!fits_int(t.size(i)) || !fits_int(s) || s == 0) return false;
    size[i] = static_cast<int>(t.size(i));
    stride[i] = static_cast<int>(s);
  }
  return true;
}

/// One convolution problem's descriptors: x (the convolution's input), y (its output), the
/// filter and the convolution, made from tensors and released at scope exit.
class Problem {
 public:
  /// x (N, C, H, W) -> y (N, O, OH, OW) by filter w (O, C/groups, kh, kw) contiguous.
  Problem(const Tensor& x, const Tensor& y, const Tensor& w, const Window2d& win, int64_t groups,
          const Types& t) {
    const Library& L = library();
    int xs[4], xst[4], ys[4], yst[4];
    if (!dims_of(x, xs, xst) || !dims_of(y, ys, yst) || !w.is_contiguous() ||
        !fits_int(w.numel()) || !fits_int(groups) || !fits_int(win.kh) || !fits_int(win.kw) ||
        !fits_int(win.ph) || !fits_int(win.pw) || !fits_int(win.sh) || !fits_int(win.sw) ||
        !fits_int(win.dh) || !fits_int(win.dw))
      return;
    check(L.cudnnCreateTensorDescriptor(&x_), "cudnnCreateTensorDescriptor");
    check(L.cudnnCreateTensorDescriptor(&y_), "cudnnCreateTensorDescriptor");
    check(L.cudnnCreateFilterDescriptor(&w_), "cudnnCreateFilterDescriptor");
    check(L.cudnnCreateConvolutionDescriptor(&conv_), "cudnnCreateConvolutionDescriptor");
    check(L.cudnnSetTensorNdDescriptor(x_, t.data, 4, xs, xst), "cudnnSetTensorNdDescriptor");
    check(L.cudnnSetTensorNdDescriptor(y_, t.data, 4, ys, yst), "cudnnSetTensorNdDescriptor");
    check(L.cudnnSetFilter4dDescriptor(w_, t.data, CUDNN_TENSOR_NCHW, static_cast<int>(w.size(0)),
                                       static_cast<int>(w.size(1)), static_cast<int>(w.size(2)),
                                       static_cast<int>(w.size(3))),
          "cudnnSetFilter4dDescriptor");
    check(L.cudnnSetConvolution2dDescriptor(
              conv_, static_cast<int>(win.ph), static_cast<int>(win.pw), static_cast<int>(win.sh),
              static_cast<int>(win.sw), static_cast<int>(win.dh), static_cast<int>(win.dw),
              CUDNN_CROSS_CORRELATION, t.compute),
          "cudnnSetConvolution2dDescriptor");
    check(L.cudnnSetConvolutionGroupCount(conv_, static_cast<int>(groups)),
          "cudnnSetConvolutionGroupCount");
    check(L.cudnnSetConvolutionMathType(conv_, t.math), "cudnnSetConvolutionMathType");
    // cuDNN computes y's extent from x's; the problem stands only when y has exactly it.
    int n = 0, c = 0, h = 0, wd = 0;
    check(L.cudnnGetConvolution2dForwardOutputDim(conv_, x_, w_, &n, &c, &h, &wd),
          "cudnnGetConvolution2dForwardOutputDim");
    valid_ = n == ys[0] && c == ys[1] && h == ys[2] && wd == ys[3];
  }
  ~Problem() {
    const Library& L = library();
    if (conv_ != nullptr) (void)L.cudnnDestroyConvolutionDescriptor(conv_);
    if (w_ != nullptr) (void)L.cudnnDestroyFilterDescriptor(w_);
    if (y_ != nullptr) (void)L.cudnnDestroyTensorDescriptor(y_);
    if (x_ != nullptr) (void)L.cudnnDestroyTensorDescriptor(x_);
  }
  Problem(const Problem&) = delete;
  Problem& operator=(const Problem&) = delete;

  bool valid() const { return valid_; }

  cudnnTensorDescriptor_t x_ = nullptr, y_ = nullptr;
  cudnnFilterDescriptor_t w_ = nullptr;
  cudnnConvolutionDescriptor_t conv_ = nullptr;

 private:
  bool valid_ = false;
};

enum class Pass { kForward, kData, kFilter };

/// The algorithm chosen for a problem (and the math mode it was ranked with), cached by everything
/// that decides it.
struct Choice {
  int algo = -1;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};
using ProblemKey = std::tuple<int, int, int, std::vector<int64_t> >;

/// The first algorithm of the heuristic's ranked list that cuDNN reports as supported and
/// deterministic and, for exact float32, that does not use tensor cores; algo -1: none.
template <class Perf>
Choice choose(const Perf* perf, int n, const Types& t) {
  for (int i = 0; i < n; ++i) {
    const Perf& p = perf[i];
    if (p.status != CUDNN_STATUS_SUCCESS || p.determinism != CUDNN_DETERMINISTIC) continue;
    if (t.math == CUDNN_FMA_MATH && p.mathType != CUDNN_FMA_MATH) continue;
    return Choice{static_cast<int>(p.algo), p.mathType};
  }
  return Choice{};
}

ProblemKey key_of(Pass pass, int device, const Types& t, const Tensor& x, const Tensor& y,
                  const Tensor& w, const Window2d& win, int64_t groups) {
  std::vector<int64_t> v;
  for (const Tensor* a : {&x, &y, &w}) {
    for (int64_t s : a->sizes()) v.push_back(s);
    for (int64_t s : a->strides()) v.push_back(s);
  }
  for (int64_t p : {win.kh, win.kw, win.dh, win.dw, win.ph, win.pw, win.sh, win.sw, groups})
    v.push_back(p);
  return {static_cast<int>(pass), device, static_cast<int>(t.data) * 16 + static_cast<int>(t.math),
          std::move(v)};
}

/// The cached choice for `key`, made by `choose_now()` on first use.
template <class F>
Choice cached_choice(const ProblemKey& key, F&& choose_now) {
  static std::mutex mutex;
  static std::map<ProblemKey, Choice> cache;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
  }
  const Choice c = choose_now();
  std::lock_guard<std::mutex> lock(mutex);
  cache.emplace(key, c);
  return c;
}

/// A workspace of `bytes` from the caching allocator (kept alive by the returned tensor, which
/// the stream-ordered allocator may reuse only after this stream's work is done).
Tensor workspace(size_t bytes, const Device& device) {
  return make_tensor({static_cast<int64_t>(bytes > 0 ? bytes : 1)}, kUInt8, device, "cudnn");
}

/// Adds bias (C) to out (N, C, H, W) through cuDNN (out += bias broadcast over N, H, W).
void add_bias(cudnnHandle_t h, cudnnTensorDescriptor_t out_desc, void* out, const Tensor& bias,
              const Types& t) {
  const Library& L = library();
  cudnnTensorDescriptor_t b = nullptr;
  check(L.cudnnCreateTensorDescriptor(&b), "cudnnCreateTensorDescriptor");
  const int sizes[4] = {1, static_cast<int>(bias.numel()), 1, 1};
  const int strides[4] = {static_cast<int>(bias.numel()), 1, 1, 1};
  cudnnStatus_t s = L.cudnnSetTensorNdDescriptor(b, t.data, 4, sizes, strides);
  const float one_f = 1.0f;
  const double one_d = 1.0;
  const void* one = t.data == CUDNN_DATA_DOUBLE ? static_cast<const void*>(&one_d) : &one_f;
  if (s == CUDNN_STATUS_SUCCESS)
    s = L.cudnnAddTensor(h, one, b, bias.data_ptr(), one, out_desc, out);
  (void)L.cudnnDestroyTensorDescriptor(b);
  check(s, "cudnnAddTensor");
}

/// alpha = 1, beta = 0 in the type cuDNN scales with (double for float64, else float).
struct Scale {
  float one_f = 1.0f, zero_f = 0.0f;
  double one_d = 1.0, zero_d = 0.0;
  bool dbl;
  explicit Scale(const Types& t) : dbl(t.data == CUDNN_DATA_DOUBLE) {}
  const void* one() const { return dbl ? static_cast<const void*>(&one_d) : &one_f; }
  const void* zero() const { return dbl ? static_cast<const void*>(&zero_d) : &zero_f; }
};

/// Common checks: cuDNN loaded, every tensor on one CUDA device with one dtype cuDNN takes, bias
/// (when defined) 1-d contiguous of that dtype.
bool usable(const std::vector<const Tensor*>& ts, const Tensor& bias, Types& t) {
  if (!library().ok || !types_of(ts[0]->dtype(), t)) return false;
  for (const Tensor* a : ts)
    if (a->dtype() != ts[0]->dtype() || a->device() != ts[0]->device() || a->dim() != 4)
      return false;
  if (bias.defined() && (bias.dtype() != ts[0]->dtype() || bias.dim() != 1 ||
                         !bias.is_contiguous() || bias.device() != ts[0]->device()))
    return false;
  return true;
}

}  // namespace

bool cudnn_available() { return library().ok; }
int64_t cudnn_version() { return library().ok ? library().version : 0; }

namespace {

/// The steps every pass shares, for the convolution x (N, C, H, W) -> y by the filter w, on the
/// device and stream of `on`: descriptors (false when they do not describe the problem), the
/// handle, the cached algorithm (`rank(h, problem, perf, &n)` fills the heuristic's ranking),
/// its workspace (`workspace_size(h, problem, algo, &bytes)`), then `run(h, problem, algo,
/// workspace, bytes, scale)`.
template <class Perf, class Algo, int kCount, class Rank, class WorkspaceSize, class Run>
bool run_pass(Pass pass, const Tensor& on, const Tensor& x, const Tensor& y, const Tensor& w,
              const Window2d& win, int64_t groups, const Types& t, Rank&& rank,
              WorkspaceSize&& workspace_size, Run&& run) {
  Problem p(x, y, w, win, groups, t);
  if (!p.valid()) return false;
  const int device = on.device().index();
  detail::DeviceGuard guard(device);
  const Library& L = library();
  const cudnnHandle_t h = handle_for(device);
  check(L.cudnnSetStream(h, detail::stream_of(on)), "cudnnSetStream");
  const Choice c = cached_choice(key_of(pass, device, t, x, y, w, win, groups), [&]() -> Choice {
    Perf perf[kCount];
    int n = 0;
    rank(h, p, perf, &n);
    return choose(perf, n, t);
  });
  if (c.algo < 0) return false;
  check(L.cudnnSetConvolutionMathType(p.conv_, c.math), "cudnnSetConvolutionMathType");
  const auto algo = static_cast<Algo>(c.algo);
  size_t bytes = 0;
  workspace_size(h, p, algo, &bytes);
  const Tensor ws = workspace(bytes, on.device());
  run(h, p, algo, ws.data_ptr(), bytes, Scale(t));
  return true;
}

}  // namespace

bool cudnn_conv2d(const Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias,
                  const Window2d& win, int64_t groups, bool relu) {
  Types t{};
  if (relu || !usable({&out, &x, &weight}, bias, t)) return false;
  if (out.numel() == 0 || x.numel() == 0 || weight.numel() == 0) return false;
  const Tensor w = weight.contiguous();
  const Library& L = library();
  using Algo = cudnnConvolutionFwdAlgo_t;
  return run_pass<cudnnConvolutionFwdAlgoPerf_t, Algo, CUDNN_CONVOLUTION_FWD_ALGO_COUNT>(
      Pass::kForward, out, x, out, w, win, groups, t,
      [&](cudnnHandle_t h, const Problem& p, cudnnConvolutionFwdAlgoPerf_t* perf, int* n) {
        check(L.cudnnGetConvolutionForwardAlgorithm_v7(h, p.x_, p.w_, p.conv_, p.y_,
                                                       CUDNN_CONVOLUTION_FWD_ALGO_COUNT, n, perf),
              "cudnnGetConvolutionForwardAlgorithm_v7");
      },
      [&](cudnnHandle_t h, const Problem& p, Algo algo, size_t* bytes) {
        check(L.cudnnGetConvolutionForwardWorkspaceSize(h, p.x_, p.w_, p.conv_, p.y_, algo, bytes),
              "cudnnGetConvolutionForwardWorkspaceSize");
      },
      [&](cudnnHandle_t h, const Problem& p, Algo algo, void* ws, size_t bytes, const Scale& s) {
        check(L.cudnnConvolutionForward(h, s.one(), p.x_, x.data_ptr(), p.w_, w.data_ptr(), p.conv_,
                                        algo, ws, bytes, s.zero(), p.y_, out.data_ptr()),
              "cudnnConvolutionForward");
        if (bias.defined()) add_bias(h, p.y_, out.data_ptr(), bias, t);
      });
}

bool cudnn_conv2d_input_grad(const Tensor& dx, const Tensor& dy, const Tensor& weight,
                             const Tensor& bias, const Window2d& win, int64_t groups) {
  Types t{};
  if (!usable({&dx, &dy, &weight}, bias, t)) return false;
  if (dx.numel() == 0 || dy.numel() == 0 || weight.numel() == 0) return false;
  const Tensor w = weight.contiguous();
  const Library& L = library();
  using Algo = cudnnConvolutionBwdDataAlgo_t;
  return run_pass<cudnnConvolutionBwdDataAlgoPerf_t, Algo, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT>(
      Pass::kData, dx, dx, dy, w, win, groups, t,  // the convolution's x is dx, its y dy
      [&](cudnnHandle_t h, const Problem& p, cudnnConvolutionBwdDataAlgoPerf_t* perf, int* n) {
        check(L.cudnnGetConvolutionBackwardDataAlgorithm_v7(
                  h, p.w_, p.y_, p.conv_, p.x_, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, n, perf),
              "cudnnGetConvolutionBackwardDataAlgorithm_v7");
      },
      [&](cudnnHandle_t h, const Problem& p, Algo algo, size_t* bytes) {
        check(L.cudnnGetConvolutionBackwardDataWorkspaceSize(h, p.w_, p.y_, p.conv_, p.x_, algo,
                                                             bytes),
              "cudnnGetConvolutionBackwardDataWorkspaceSize");
      },
      [&](cudnnHandle_t h, const Problem& p, Algo algo, void* ws, size_t bytes, const Scale& s) {
        check(
            L.cudnnConvolutionBackwardData(h, s.one(), p.w_, w.data_ptr(), p.y_, dy.data_ptr(),
                                           p.conv_, algo, ws, bytes, s.zero(), p.x_, dx.data_ptr()),
            "cudnnConvolutionBackwardData");
        if (bias.defined()) add_bias(h, p.x_, dx.data_ptr(), bias, t);
      });
}

bool cudnn_conv2d_weight_grad(const Tensor& dw, const Tensor& dy, const Tensor& x,
                              const Window2d& win, int64_t groups) {
  Types t{};
  if (!usable({&dw, &dy, &x}, Tensor(), t) || !dw.is_contiguous()) return false;
  if (dw.numel() == 0 || dy.numel() == 0 || x.numel() == 0) return false;
  const Library& L = library();
  using Algo = cudnnConvolutionBwdFilterAlgo_t;
  return run_pass<cudnnConvolutionBwdFilterAlgoPerf_t, Algo,
                  CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT>(
      Pass::kFilter, dw, x, dy, dw, win, groups, t,
      [&](cudnnHandle_t h, const Problem& p, cudnnConvolutionBwdFilterAlgoPerf_t* perf, int* n) {
        check(L.cudnnGetConvolutionBackwardFilterAlgorithm_v7(
                  h, p.x_, p.y_, p.conv_, p.w_, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, n, perf),
              "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
      },
      [&](cudnnHandle_t h, const Problem& p, Algo algo, size_t* bytes) {
        check(L.cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p.x_, p.y_, p.conv_, p.w_, algo,
                                                               bytes),
              "cudnnGetConvolutionBackwardFilterWorkspaceSize");
      },
      [&](cudnnHandle_t h, const Problem& p, Algo algo, void* ws, size_t bytes, const Scale& s) {
        check(L.cudnnConvolutionBackwardFilter(h, s.one(), p.x_, x.data_ptr(), p.y_, dy.data_ptr(),
                                               p.conv_, algo, ws, bytes, s.zero(), p.w_,
                                               dw.data_ptr()),
              "cudnnConvolutionBackwardFilter");
      });
}

#endif

}  // namespace ember::cuda
