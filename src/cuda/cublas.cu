// The vendor backend of matrix products (cuda::set_backend(Backend::kVendor)): cuda::gemm's
// problem out[b] = alpha * a[b] @ b[b] + beta * out[b] handed to cuBLAS
// (cublasGemmStridedBatchedEx) instead of Ember's kernels, for users who want NVIDIA's library
// under Ember's ops, and as the reference point the benchmarks measure Ember's kernels against.
//
// Mapping: cuBLAS is column-major, so a row-major out (M, N) with unit column stride is the
// column-major C^T (N, M) with ld = its row stride, and C^T = B^T A^T: B^T is B's memory read as
// (N, K) column-major (no transpose when B's n stride is 1, CUBLAS_OP_T when its k stride is 1),
// likewise A^T. Batches are one strided-batched call (stride 0 for a broadcast operand). Types:
// float32 (CUBLAS_COMPUTE_32F, or _FAST_TF32 when cuda::allow_tf32()), float64, and
// float16/bfloat16 with float32 accumulation. Anything else (integers, an out without a unit
// stride, operands with no unit stride, sizes past int32) returns false and the caller runs
// Ember's kernel.
//
// One cuBLAS handle per thread and device (cuBLAS handles are not for concurrent use), made on
// first use and set to the current stream on every call. Under the CPU emulator there is no
// cuBLAS: cublas_available() is false and set_backend refuses kVendor.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>

#include "core/kernels.hpp"
#include "cuda/common.cuh"
#include "cuda/loops.cuh"
#include "ember/cuda/cuda.hpp"

#if !defined(EMBER_CUDA_EMULATED)
#include <cublas_v2.h>
#endif

namespace ember::cuda {

#if defined(EMBER_CUDA_EMULATED)

bool cublas_available() { return false; }
bool cublas_gemm(const Tensor&, const Tensor&, const Tensor&, Scalar, Scalar) { return false; }

#else

namespace {

void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw DeviceError(
        ember::detail::str_cat("[cublas] ", what, " failed: ", cublasGetStatusString(s)));
}

/// The calling thread's handle for `device` (the current device), made on first use.
cublasHandle_t handle_for(int device) {
  struct Handles {
    std::map<int, cublasHandle_t> by_device;
    ~Handles() {
      for (auto& [d, h] : by_device) (void)cublasDestroy(h);
    }
  };
  thread_local Handles handles;
  auto it = handles.by_device.find(device);
  if (it != handles.by_device.end()) return it->second;
  cublasHandle_t h = nullptr;
  check_cublas(cublasCreate(&h), "cublasCreate");
  handles.by_device.emplace(device, h);
  return h;
}

/// How cuBLAS reads one matrix: the operation and the leading dimension of what is stored.
struct Operand {
  cublasOperation_t op;
  int64_t ld;
};

/// The column-major (R, C) matrix X with X(i, j) at i * s_i + j * s_j: stored as is (CUBLAS_OP_N,
/// ld s_j) when s_i is 1, or as its transpose (CUBLAS_OP_T, ld s_i) when s_j is 1; a size-1
/// dimension's stride never matters. False when neither holds with a valid ld (>= the stored
/// matrix's rows), e.g. a broadcast (stride 0) or a doubly strided view.
bool operand_of(int64_t R, int64_t C, int64_t s_i, int64_t s_j, Operand& o) {
  const int64_t rows = R > 1 ? R : 1, cols = C > 1 ? C : 1;
  if (s_i == 1 || R == 1) {
    const int64_t ld = C == 1 ? rows : s_j;
    if (ld >= rows) {
      o = {CUBLAS_OP_N, ld};
      return true;
    }
  }
  if (s_j == 1 || C == 1) {
    const int64_t ld = R == 1 ? cols : s_i;
    if (ld >= cols) {
      o = {CUBLAS_OP_T, ld};
      return true;
    }
  }
  return false;
}

bool fits_int(int64_t v) { return v >= 0 && v <= std::numeric_limits<int>::max(); }

}  // namespace

bool cublas_available() { return true; }

bool cublas_gemm(const Tensor& out, const Tensor& a, const Tensor& b, Scalar alpha, Scalar beta) {
  const DType dt = a.dtype();  // the operands'; out's too, or float32 for 16-bit ones
  cudaDataType_t type;
  cublasComputeType_t compute;
  switch (dt) {
    case kFloat32:
      type = CUDA_R_32F;
      compute = allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
      break;
    case kFloat64:
      type = CUDA_R_64F;
      compute = CUBLAS_COMPUTE_64F;
      break;
    case kFloat16:
      type = CUDA_R_16F;
      compute = CUBLAS_COMPUTE_32F;
      break;
    case kBFloat16:
      type = CUDA_R_16BF;
      compute = CUBLAS_COMPUTE_32F;
      break;
    default:
      return false;
  }
  if (b.dtype() != dt) return false;
  const bool out_f32 = out.dtype() == kFloat32 && (dt == kFloat16 || dt == kBFloat16);
  if (out.dtype() != dt && !out_f32) return false;
  const cudaDataType_t out_type = out_f32 ? CUDA_R_32F : type;
  const int64_t batches = out.size(0), M = out.size(1), N = out.size(2), K = a.size(2);
  if (!fits_int(M) || !fits_int(N) || !fits_int(K) || !fits_int(batches)) return false;
  // C^T (N, M) column-major: element (n, m) at n * o_c + m * o_r; needs o_c == 1.
  Operand c;
  if (!operand_of(N, M, out.stride(2), out.stride(1), c) || c.op != CUBLAS_OP_N) return false;
  // B^T (N, K): element (n, k) at n * b.stride(2) + k * b.stride(1).
  Operand ob, oa;
  if (!operand_of(N, K, b.stride(2), b.stride(1), ob)) return false;
  // A^T (K, M): element (k, m) at k * a.stride(2) + m * a.stride(1).
  if (!operand_of(K, M, a.stride(2), a.stride(1), oa)) return false;
  if (!fits_int(c.ld) || !fits_int(ob.ld) || !fits_int(oa.ld)) return false;
  if (batches == 0 || M == 0 || N == 0) return true;

  detail::DeviceGuard guard(out.device().index());
  const cublasHandle_t h = handle_for(out.device().index());
  check_cublas(cublasSetStream(h, detail::stream_of(out)), "cublasSetStream");
  const float alpha_f = static_cast<float>(alpha.to<double>()),
              beta_f = static_cast<float>(beta.to<double>());
  const double alpha_d = alpha.to<double>(), beta_d = beta.to<double>();
  const void* al = dt == kFloat64 ? static_cast<const void*>(&alpha_d) : &alpha_f;
  const void* be = dt == kFloat64 ? static_cast<const void*>(&beta_d) : &beta_f;
  const int64_t sb_b = batches > 1 ? b.stride(0) : 0, sb_a = batches > 1 ? a.stride(0) : 0;
  const int64_t sb_c = batches > 1 ? out.stride(0) : 0;
  // cuBLAS reads K == 0 as "out = beta * out", as Ember's kernels do.
  check_cublas(cublasGemmStridedBatchedEx(h, ob.op, oa.op, static_cast<int>(N), static_cast<int>(M),
                                          static_cast<int>(K), al, b.data_ptr(), type,
                                          static_cast<int>(ob.ld), sb_b, a.data_ptr(), type,
                                          static_cast<int>(oa.ld), sb_a, be, out.data_ptr(),
                                          out_type, static_cast<int>(c.ld), sb_c,
                                          static_cast<int>(batches), compute, CUBLAS_GEMM_DEFAULT),
               "cublasGemmStridedBatchedEx");
  return true;
}

#endif

}  // namespace ember::cuda
