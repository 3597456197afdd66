// CUDA GEMM: out[b] = beta * out[b] + alpha * a[b] @ b[b] for (B, M, K) x (B, K, N) -> (B, M, N),
// with the CPU kernel's semantics (src/core/cpu/linalg.cpp): any strides on all three tensors
// (transposed operands read in place, stride 0 for broadcast batches), beta == 0 ignores out's old
// contents (NaN included), K == 0 gives beta * out; float16/bfloat16 accumulate in float and round
// once (or not at all into a float32 out, the output cast), integers sum in wrapping uint64; bool
// is a DTypeError. No cuBLAS, unless the user chose it (cuda::set_backend(Backend::kVendor): then
// cublas.cu takes what it maps). float16/bfloat16 products go to the tensor-core kernel
// (gemm_tc.cu) when their layout allows, and so do float32 products when TF32 is allowed
// (cuda::set_allow_tf32); what remains, and every other dtype, runs here: float32 is then exact
// float32 FMA arithmetic.
//
// Algorithm: the classic shared-memory tiled GEMM with register blocking (as in Volkov & Demmel,
// "Benchmarking GPUs to tune dense linear algebra", SC 2008). Each block of 256 threads owns a
// (BM, BN) tile of one batch's output; the K dimension is walked in slabs of kSlab = 8:
//   global -> registers (the next slab, prefetched while the current one is multiplied)
//          -> shared As[kSlab][BM], Bs[kSlab][BN] (double-buffered: one barrier per slab)
//          -> each thread's (TM, TN) micro-tile of accumulators, kSlab rank-1 updates.
// Tiles: (128, 128) with 8 x 8 per thread for float32/16-bit floats when there are enough tiles
// to fill the GPU, else (64, 64) with 4 x 4 per thread (also the tile of float64 and integers).
// A thread's micro-tile rows (columns) are groups of 4 adjacent ones, the groups BM / (TM / 4)
// apart, so a warp's shared-memory reads of a slab row are contiguous (conflict-free float4).
// Operands are read through one loader: element (r, k) of A at a + r * s_r + k * s_k, and B as its
// transpose (column n, row k), so every layout is one code path; the load order follows the
// smaller stride (coalesced for row- and column-major operands alike) and padding of the shared
// rows keeps either order's stores free of bank conflicts. Edges: out-of-range loads are zero
// (a zero k column adds fma(0, 0, acc) == acc), stores are guarded.
// Grid: x over column tiles, y over row tiles, z over batches, each grid-stride (any size).
//
// Determinism: each output element is one fma chain over k = 0 .. K-1 in order, from 0, then
// combined with out once; no atomics, no split-K. The result does not depend on the tile choice
// or the launch shape, so it repeats bitwise run to run. It is not bitwise the CPU's for K > 256
// (the CPU restarts its chains every 256).
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <type_traits>

#include "core/kernels.hpp"
#include "cuda/common.cuh"
#include "cuda/loops.cuh"
#include "ember/cuda/cuda.hpp"

namespace ember::cuda {
namespace {

using detail::convert;
using detail::is_reduced_v;

constexpr int kSlab = 8;  // K depth of one shared-memory slab
constexpr int kPad = 4;   // extra elements per shared row: conflict-free stores in either order

/// The accumulator type of a storage type: float for float16/bfloat16, wrapping uint64 for the
/// integers (as the CPU), T for float32/float64.
template <class T>
using acc_t = std::conditional_t<std::is_integral_v<T>, uint64_t, detail::compute_t<T>>;

/// One (B, R, C) operand or the output: base pointer and element strides.
template <class T>
struct Mat {
  T* data;
  int64_t sb, sr, sc;  // batch, row, column strides
};

template <class T>
Mat<T> mat_of(const Tensor& t) {
  return Mat<T>{static_cast<T*>(t.data_ptr()), t.stride(0), t.stride(1), t.stride(2)};
}

/// The problem as the kernel sees it. B is read as its transpose (N, K): b_t.sr steps along n,
/// b_t.sc along k. *_k_fast: the loader walks k fastest (k is the smaller stride).
template <class T>
struct GemmProblem {
  Mat<T> out;
  Mat<const T> a, b_t;
  int64_t B, M, N, K;
  bool a_k_fast, b_k_fast;
};

/// True when consecutive k of an (rows, K) operand are closer in memory than consecutive rows
/// (a size-1 dim never decides).
bool k_is_fast(int64_t rows, int64_t K, int64_t s_r, int64_t s_k) {
  if (rows == 1) return true;
  if (K == 1) return false;
  return std::llabs(s_k) <= std::llabs(s_r);
}

// ---- device helpers ----

/// acc + x * y: one rounding for floating types (explicit, whatever the contraction flags),
/// wrapping for uint64.
template <class A>
__device__ __forceinline__ A mul_add(A x, A y, A acc) {
  if constexpr (std::is_same_v<A, float>)
    return __fmaf_rn(x, y, acc);
  else if constexpr (std::is_same_v<A, double>)
    return __fma_rn(x, y, acc);
  else
    return x * y + acc;
}

/// dst[0..3] = src[0..3]; src is 16-byte aligned for float (one float4) and double (two double2).
template <class A>
__device__ __forceinline__ void load4(A* dst, const A* src) {
  if constexpr (std::is_same_v<A, float>) {
    const float4 v = *reinterpret_cast<const float4*>(src);
    dst[0] = v.x, dst[1] = v.y, dst[2] = v.z, dst[3] = v.w;
  } else if constexpr (std::is_same_v<A, double>) {
    const double2 v0 = *reinterpret_cast<const double2*>(src);
    const double2 v1 = *reinterpret_cast<const double2*>(src + 2);
    dst[0] = v0.x, dst[1] = v0.y, dst[2] = v1.x, dst[3] = v1.y;
  } else {
#pragma unroll
    for (int i = 0; i < 4; ++i) dst[i] = src[i];
  }
}

/// Position (r, k) within an (R, kSlab) slab of the loader's e-th element.
template <int R>
__device__ __forceinline__ void slab_position(int e, bool k_fast, int& r, int& k) {
  if (k_fast) {
    k = e % kSlab;
    r = e / kSlab;
  } else {
    r = e % R;
    k = e / R;
  }
}

/// Loads this thread's share of the slab rows [r0, r0 + R) x k [k0, k0 + kSlab) of an operand
/// (element (r, k) at m.data + batch offset + r * m.sr + k * m.sc) into registers; zero outside
/// (rows, K).
template <class T, class A, int R, int NT>
__device__ __forceinline__ void load_slab(A (&reg)[R * kSlab / NT], const T* base, int64_t s_r,
                                          int64_t s_k, int64_t rows, int64_t K, int64_t r0,
                                          int64_t k0, bool k_fast) {
#pragma unroll
  for (int i = 0; i < R * kSlab / NT; ++i) {
    int r, k;
    slab_position<R>(static_cast<int>(threadIdx.x) + i * NT, k_fast, r, k);
    const int64_t row = r0 + r, kk = k0 + k;
    reg[i] = (row < rows && kk < K) ? convert<A>(base[row * s_r + kk * s_k]) : A(0);
  }
}

/// Stores the registers of load_slab into shared S[k][r].
template <class A, int R, int NT>
__device__ __forceinline__ void store_slab(A (*S)[R + kPad], const A (&reg)[R * kSlab / NT],
                                           bool k_fast) {
#pragma unroll
  for (int i = 0; i < R * kSlab / NT; ++i) {
    int r, k;
    slab_position<R>(static_cast<int>(threadIdx.x) + i * NT, k_fast, r, k);
    S[k][r] = reg[i];
  }
}

/// *o = beta * *o + alpha * sum by the CPU's rules for T; `empty` (K == 0): no sum at all.
/// *o is not read when beta == 0.
template <class T, class A>
__device__ __forceinline__ void store_result(T* o, A sum, bool empty, A alpha, A beta) {
  if constexpr (std::is_integral_v<A>) {
    A v = alpha * sum;  // sum == 0 when empty
    if (beta != A(0)) v += beta * convert<A>(*o);
    *o = static_cast<T>(static_cast<int64_t>(v));
  } else if constexpr (is_reduced_v<T>) {
    // The CPU: v = alpha * sum in float (0 for an empty sum), then one rounding of
    // fma(beta, out, v).
    const float v = empty ? 0.0f : alpha * sum;
    *o = convert<T>(beta == 0.0f ? v : __fmaf_rn(beta, convert<float>(*o), v));
  } else if (empty) {
    *o = beta == A(0) ? A(0) : beta * *o;
  } else {
    *o = beta == A(0) ? alpha * sum : mul_add(alpha, sum, beta * *o);
  }
}

// ---- the kernel ----

/// One (BM, BN) output tile per block (grid-stride over tiles and batches); NT = (BM / TM) x
/// (BN / TN) threads. See the file comment.
template <class T, int BM, int BN, int TM, int TN>
__global__ void __launch_bounds__((BM / TM) * (BN / TN))
    gemm_tiled_kernel(GemmProblem<T> p, acc_t<T> alpha, acc_t<T> beta) {
  using A = acc_t<T>;
  constexpr int NT = (BM / TM) * (BN / TN);
  constexpr int GM = TM / 4, GN = TN / 4;    // groups of 4 rows / columns per thread
  constexpr int RM = BM / GM, RN = BN / GN;  // distance between a thread's groups
  static_assert(TM % 4 == 0 && TN % 4 == 0, "micro-tiles are made of groups of 4");
  static_assert((BM * kSlab) % NT == 0 && (BN * kSlab) % NT == 0, "whole slabs per thread");
  __shared__ __align__(16) A As[2][kSlab][BM + kPad];  // A slab, k-major: As[k][row]
  __shared__ __align__(16) A Bs[2][kSlab][BN + kPad];  // B slab: Bs[k][column]

  const int tx = static_cast<int>(threadIdx.x) % (BN / TN);
  const int ty = static_cast<int>(threadIdx.x) / (BN / TN);
  const int64_t tiles_m = (p.M + BM - 1) / BM, tiles_n = (p.N + BN - 1) / BN;
  const int64_t slabs = (p.K + kSlab - 1) / kSlab;

  for (int64_t bi = blockIdx.z; bi < p.B; bi += gridDim.z)
    for (int64_t tm = blockIdx.y; tm < tiles_m; tm += gridDim.y)
      for (int64_t tn = blockIdx.x; tn < tiles_n; tn += gridDim.x) {
        const int64_t row0 = tm * BM, col0 = tn * BN;
        const T* a = p.a.data + bi * p.a.sb;      // (M, K)
        const T* b = p.b_t.data + bi * p.b_t.sb;  // (N, K), b's transpose
        A ra[BM * kSlab / NT], rb[BN * kSlab / NT];
        A acc[TM][TN];
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
          for (int j = 0; j < TN; ++j) acc[i][j] = A(0);

        // The previous tile's last barrier guarantees nobody still reads buffer 0.
        if (slabs > 0) {
          load_slab<T, A, BM, NT>(ra, a, p.a.sr, p.a.sc, p.M, p.K, row0, 0, p.a_k_fast);
          load_slab<T, A, BN, NT>(rb, b, p.b_t.sr, p.b_t.sc, p.N, p.K, col0, 0, p.b_k_fast);
          store_slab<A, BM, NT>(As[0], ra, p.a_k_fast);
          store_slab<A, BN, NT>(Bs[0], rb, p.b_k_fast);
        }
        __syncthreads();
        for (int64_t s = 0; s < slabs; ++s) {
          const int cur = static_cast<int>(s & 1);
          const bool more = s + 1 < slabs;  // uniform over the block
          if (more) {
            const int64_t k0 = (s + 1) * kSlab;
            load_slab<T, A, BM, NT>(ra, a, p.a.sr, p.a.sc, p.M, p.K, row0, k0, p.a_k_fast);
            load_slab<T, A, BN, NT>(rb, b, p.b_t.sr, p.b_t.sc, p.N, p.K, col0, k0, p.b_k_fast);
          }
#pragma unroll
          for (int k = 0; k < kSlab; ++k) {
            A af[TM], bf[TN];
#pragma unroll
            for (int g = 0; g < GM; ++g) load4(af + 4 * g, &As[cur][k][g * RM + ty * 4]);
#pragma unroll
            for (int g = 0; g < GN; ++g) load4(bf + 4 * g, &Bs[cur][k][g * RN + tx * 4]);
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
              for (int j = 0; j < TN; ++j) acc[i][j] = mul_add(af[i], bf[j], acc[i][j]);
          }
          // Buffer cur ^ 1 was last read in slab s - 1, before the barrier that ended it.
          if (more) {
            store_slab<A, BM, NT>(As[cur ^ 1], ra, p.a_k_fast);
            store_slab<A, BN, NT>(Bs[cur ^ 1], rb, p.b_k_fast);
          }
          __syncthreads();
        }

        T* o = p.out.data + bi * p.out.sb;
#pragma unroll
        for (int i = 0; i < TM; ++i) {
          const int64_t row = row0 + (i / 4) * RM + ty * 4 + i % 4;
          if (row >= p.M) continue;
#pragma unroll
          for (int j = 0; j < TN; ++j) {
            const int64_t col = col0 + (j / 4) * RN + tx * 4 + j % 4;
            if (col < p.N)
              store_result<T, A>(o + row * p.out.sr + col * p.out.sc, acc[i][j], p.K == 0, alpha,
                                 beta);
          }
        }
      }
}

// ---- launch ----


unsigned grid_dim(int64_t n, int64_t limit) { return static_cast<unsigned>(n < limit ? n : limit); }

template <class T, int BM, int BN, int TM, int TN>
void launch_tiled(const GemmProblem<T>& p, acc_t<T> alpha, acc_t<T> beta, cudaStream_t stream) {
  constexpr int NT = (BM / TM) * (BN / TN);
  const dim3 grid(grid_dim((p.N + BN - 1) / BN, int64_t{1} << 30),
                  grid_dim((p.M + BM - 1) / BM, 65535), grid_dim(p.B, 65535));
  gemm_tiled_kernel<T, BM, BN, TM, TN><<<grid, NT, 0, stream>>>(p, alpha, beta);
  EMBER_CUDA_CHECK_LAUNCH();
}

/// alpha or beta in the accumulator type, converted as the CPU converts it.
template <class T>
acc_t<T> coefficient(Scalar s) {
  if constexpr (std::is_integral_v<T>)
    return static_cast<uint64_t>(s.to<int64_t>());
  else
    return s.to<acc_t<T>>();
}

template <class T>
void gemm_typed(const Tensor& out, const Tensor& a, const Tensor& b, Scalar alpha, Scalar beta) {
  if constexpr (detail::is_reduced_v<T> || std::is_same_v<T, float>) {
    // 16-bit floats, and float32 when TF32 is allowed (cuda::set_allow_tf32): the tensor-core
    // kernel when it takes the layout (gemm_tc.cu).
    GemmEpilogue e;
    e.alpha = alpha.to<double>();
    e.beta = beta.to<double>();
    if (gemm_tc(out, a, b, e)) return;
    // gemm_tc reads A with K or M contiguous and B with K or N contiguous, in whole 16-byte
    // chunks. Other layouts (sliced or misaligned operands, A with neither stride 1) get
    // contiguous copies: one pass over each operand, against 2 M N K FLOP that would otherwise
    // run on the CUDA cores.
    const int64_t chunk = std::is_same_v<T, float> ? 4 : 8;
    if (a.size(2) % chunk == 0 && (std::is_same_v<T, float> ? allow_tf32() : true)) {
      // x's strides but its unit-stride dimension `unit` in whole chunks, and its base aligned.
      const auto whole = [chunk](const Tensor& x, int unit) {
        for (int d = 0; d < 3; ++d)
          if (d != unit && x.stride(d) % chunk != 0) return false;
        return detail::aligned16(x.data_ptr());
      };
      const Tensor a2 = a.stride(2) == 1 && whole(a, 2) ? a : a.contiguous();
      const bool b_ok = (b.stride(1) == 1 && whole(b, 1)) ||
                        (b.stride(2) == 1 && whole(b, 2) && b.size(2) % chunk == 0);
      // B repacked K-contiguous: no condition on N, and the layout the wgmma kernels read
      const Tensor b2 = b_ok ? b : b.transpose(1, 2).contiguous().transpose(1, 2);
      if ((a2.data_ptr() != a.data_ptr() || b2.data_ptr() != b.data_ptr()) &&
          gemm_tc(out, a2, b2, e))
        return;
    }
  }
  if constexpr (detail::is_reduced_v<T>) {
    if (out.dtype() != a.dtype()) {
      // The output cast in a layout gemm_tc does not take: the operands widened to float32 (exact:
      // every 16-bit float is a float32, and a TF32 too) and float32's gemm.
      gemm_typed<float>(out, a.to(kFloat32), b.to(kFloat32), alpha, beta);
      return;
    }
  }
  GemmProblem<T> p;
  p.out = mat_of<T>(out);
  p.a = mat_of<const T>(a);
  const Mat<const T> mb = mat_of<const T>(b);
  p.b_t = Mat<const T>{mb.data, mb.sb, mb.sc, mb.sr};
  p.B = out.size(0), p.M = out.size(1), p.N = out.size(2), p.K = a.size(2);
  p.a_k_fast = k_is_fast(p.M, p.K, p.a.sr, p.a.sc);
  p.b_k_fast = k_is_fast(p.N, p.K, p.b_t.sr, p.b_t.sc);
  const acc_t<T> al = coefficient<T>(alpha), be = coefficient<T>(beta);
  const cudaStream_t stream = detail::stream_of(out);
  if constexpr (std::is_same_v<acc_t<T>, float>) {
    // Large tiles only when they still give every SM a block.
    const int64_t big_tiles = p.B * ((p.M + 127) / 128) * ((p.N + 127) / 128);
    if (big_tiles >= detail::sm_count(out.device().index()))
      return launch_tiled<T, 128, 128, 8, 8>(p, al, be, stream);
  }
  launch_tiled<T, 64, 64, 4, 4>(p, al, be, stream);
}

}  // namespace

void gemm(const Tensor& out, const Tensor& a, const Tensor& b, Scalar alpha, Scalar beta) {
  EMBER_CHECK(out.dtype() != kBool, DTypeError, "[gemm] bool tensors are not supported");
  if (out.size(0) == 0 || out.size(1) == 0 || out.size(2) == 0) return;
  if (backend() == Backend::kVendor && cublas_gemm(out, a, b, alpha, beta)) return;
  detail::DeviceGuard guard(out.device().index());
  detail::visit_device_dtype(a.dtype(), [&](auto tag) {  // the operands' (out may be float32)
    using T = typename decltype(tag)::type;
    if constexpr (!std::is_same_v<T, bool>) gemm_typed<T>(out, a, b, alpha, beta);
  });
}

}  // namespace ember::cuda
