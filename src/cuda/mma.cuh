// Warp-level tensor-core and asynchronous-copy primitives (PTX), shared by the tensor-core
// kernels (gemm_tc.cu):
//   cp_async_16      16-byte global -> shared copy (cp.async.cg), zero-filling what is not read
//   ldmatrix_x4      four 8x8 16-bit matrices from shared memory into the mma fragment layout
//                    (_trans: each matrix transposed on the way)
//   mma_16816        D (16x8, float) += A (16x16, row) * B (16x8, col), bf16 or fp16 inputs
//   to_tf32, mma_1688_tf32   float -> TF32 rounding; D (16x8) += A (16x8) * B (8x8), TF32 inputs
// Fragment layouts (PTX ISA, "Matrix fragments for mma.m16n8k16"): lane t, g = t / 4, q = t % 4;
// A: a0 = A[g][2q..2q+1], a1 = A[g+8][2q..], a2 = A[g][2q+8..], a3 = A[g+8][2q+8..];
// B: b0 = B[2q..2q+1][g], b1 = B[2q+8..2q+9][g]; C/D: c0,c1 = C[g][2q..2q+1], c2,c3 = C[g+8][..].
// Lower k (or column) in the low 16 bits of each 32-bit register.
//
// Under the CPU emulator (EMBER_CUDA_EMULATED, tools/cuda_emu) the same functions are written in
// plain C++ on the emulator's warp shuffles: a fragment is gathered from the lanes that hold it as
// the layouts above say, so a kernel's indexing is checked by the emulated test suites. There a
// cp.async lands in shared memory only at the cp.async.wait_group that retires its group, so a
// missing wait (or a missing barrier after it) reads poisoned shared memory.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace ember::cuda::mma {

#if defined(EMBER_CUDA_EMULATED)
namespace emu {
__device__ inline int lane() { return static_cast<int>(threadIdx.x) & 31; }
template <class T>
__device__ inline float to_float(uint16_t bits) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    const uint32_t w = static_cast<uint32_t>(bits) << 16;
    float f;
    std::memcpy(&f, &w, 4);
    return f;
  } else {
    __half h;
    std::memcpy(&h, &bits, 2);
    return __half2float(h);
  }
}
}  // namespace emu
#endif

/// Copies 16 bytes from global memory to shared memory asynchronously; only the first src_bytes
/// (0 or 16 in the kernels here) are read, the rest of the 16 are zeros. Both addresses 16-byte
/// aligned; with src_bytes == 0 gmem is not read but must still be a valid address.
__device__ inline void cp_async_16(void* smem, const void* gmem, int src_bytes) {
#if defined(EMBER_CUDA_EMULATED)
  ::ember_emu::cp_async(smem, gmem, src_bytes);
#else
  const auto s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem),
               "r"(src_bytes));
#endif
}

/// Closes the group of cp.async issued since the last commit.
__device__ inline void cp_async_commit() {
#if defined(EMBER_CUDA_EMULATED)
  ::ember_emu::cp_async_commit();
#else
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}

/// Waits until at most N committed groups of this thread are still in flight.
template <int N>
__device__ inline void cp_async_wait() {
#if defined(EMBER_CUDA_EMULATED)
  ::ember_emu::cp_async_wait(N);
#else
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}

/// The prologue of a cp.async pipeline of kStages stages: slabs 0 .. kStages - 2 into their
/// stages (load(stage, slab)), one cp.async group each (empty groups past the last slab keep the
/// wait counts uniform).
template <int kStages, class Load>
__device__ __forceinline__ void fill_stages(Load& load, int64_t KT) {
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < KT) load(s, s);
    cp_async_commit();
  }
}

/// Loads four 8x8 matrices of 16-bit elements: lanes 8j..8j+7 give the addresses of rows 0..7 of
/// matrix j (16 bytes each, 16-byte aligned, in shared memory); r[j] is lane t's part of matrix j:
/// row t / 4, columns 2 (t % 4) and 2 (t % 4) + 1. kTrans: the transposed matrix's part, i.e.
/// rows 2 (t % 4) and 2 (t % 4) + 1 of column t / 4.
template <bool kTrans>
__device__ inline void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
#if defined(EMBER_CUDA_EMULATED)
  const int t = emu::lane();
  const auto mine = reinterpret_cast<unsigned long long>(row);
  for (int j = 0; j < 4; ++j) {
    uint16_t lo, hi;
    if constexpr (!kTrans) {
      const auto* p =
          reinterpret_cast<const uint16_t*>(__shfl_sync(0xffffffffu, mine, j * 8 + t / 4));
      lo = p[2 * (t % 4)];
      hi = p[2 * (t % 4) + 1];
    } else {
      const auto* p0 =
          reinterpret_cast<const uint16_t*>(__shfl_sync(0xffffffffu, mine, j * 8 + 2 * (t % 4)));
      const auto* p1 = reinterpret_cast<const uint16_t*>(
          __shfl_sync(0xffffffffu, mine, j * 8 + 2 * (t % 4) + 1));
      lo = p0[t / 4];
      hi = p1[t / 4];
    }
    r[j] = static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
  }
#else
  const auto s = static_cast<uint32_t>(__cvta_generic_to_shared(row));
  if constexpr (kTrans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
#endif
}

/// d += a * b for one m16n8k16 tile, T = __nv_bfloat16 or __half, float accumulators.
template <class T>
__device__ inline void mma_16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  static_assert(std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>,
                "mma_16816: bf16 or fp16 inputs");
#if defined(EMBER_CUDA_EMULATED)
  // Gather rows g and g + 8 of A and columns 2q, 2q + 1 of B, k pair by k pair, then multiply.
  const int t = emu::lane(), g = t / 4, q = t % 4;
  float acc[4] = {d[0], d[1], d[2], d[3]};
  for (int p = 0; p < 8; ++p) {  // k = 2p, 2p + 1
    const int hi = p / 4, src = p % 4;
    const uint32_t a_top = __shfl_sync(0xffffffffu, a[2 * hi], g * 4 + src);
    const uint32_t a_bot = __shfl_sync(0xffffffffu, a[2 * hi + 1], g * 4 + src);
    const uint32_t b_c0 = __shfl_sync(0xffffffffu, b[hi], (2 * q) * 4 + src);
    const uint32_t b_c1 = __shfl_sync(0xffffffffu, b[hi], (2 * q + 1) * 4 + src);
    for (int h = 0; h < 2; ++h) {
      const auto part = [h](uint32_t w) {
        return emu::to_float<T>(static_cast<uint16_t>(w >> (16 * h)));
      };
      acc[0] = std::fma(part(a_top), part(b_c0), acc[0]);
      acc[1] = std::fma(part(a_top), part(b_c1), acc[1]);
      acc[2] = std::fma(part(a_bot), part(b_c0), acc[2]);
      acc[3] = std::fma(part(a_bot), part(b_c1), acc[3]);
    }
  }
  for (int i = 0; i < 4; ++i) d[i] = acc[i];
#else
  if constexpr (std::is_same_v<T, __nv_bfloat16>)
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

/// x rounded to TF32 (10 explicit mantissa bits, round to nearest, ties away from zero, as
/// cvt.rna.tf32.f32), in a float's 32 bits with the low 13 bits zero. Inf and NaN pass.
__device__ inline uint32_t to_tf32(float x) {
#if defined(EMBER_CUDA_EMULATED)
  uint32_t w;
  std::memcpy(&w, &x, 4);
  if ((w & 0x7f800000u) == 0x7f800000u) return w;  // inf, NaN
  return (w + 0x1000u) & 0xffffe000u;  // a carry into the exponent rounds up to the next binade
#else
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
#endif
}

/// d += a * b for one m16n8k8 tile of TF32 inputs (to_tf32's words), float accumulators.
/// Fragments (PTX ISA, "Matrix fragments for mma.m16n8k8", .tf32): lane t, g = t / 4, q = t % 4;
/// a0 = A[g][q], a1 = A[g+8][q], a2 = A[g][q+4], a3 = A[g+8][q+4]; b0 = B[q][g], b1 = B[q+4][g];
/// C/D as mma_16816's.
__device__ inline void mma_1688_tf32(float (&d)[4], const uint32_t (&a)[4],
                                     const uint32_t (&b)[2]) {
#if defined(EMBER_CUDA_EMULATED)
  const int t = emu::lane(), g = t / 4, q = t % 4;
  const auto f = [](uint32_t w) {
    float v;
    std::memcpy(&v, &w, 4);
    return v;
  };
  float acc[4] = {d[0], d[1], d[2], d[3]};
  for (int k = 0; k < 8; ++k) {
    const int hi = k / 4, src = k % 4;
    const float a_top = f(__shfl_sync(0xffffffffu, a[2 * hi], g * 4 + src));
    const float a_bot = f(__shfl_sync(0xffffffffu, a[2 * hi + 1], g * 4 + src));
    const float b_c0 = f(__shfl_sync(0xffffffffu, b[hi], (2 * q) * 4 + src));
    const float b_c1 = f(__shfl_sync(0xffffffffu, b[hi], (2 * q + 1) * 4 + src));
    acc[0] = std::fma(a_top, b_c0, acc[0]);
    acc[1] = std::fma(a_top, b_c1, acc[1]);
    acc[2] = std::fma(a_bot, b_c0, acc[2]);
    acc[3] = std::fma(a_bot, b_c1, acc[3]);
  }
  for (int i = 0; i < 4; ++i) d[i] = acc[i];
#else
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

// ---- Hopper warpgroup MMA (sm_90a; emulated under tools/cuda_emu) ----
// wgmma_m64n{64,128,256}k16<T>: the 4 warps of a warpgroup compute D (64 x N, float) += A (64 x 16)
// B (16 x N) with A and B in shared memory, described by 64-bit matrix descriptors (smem_desc,
// smem_desc_sw128, smem_desc_sw128_mn), K-major, or M/N-major where kTransA / kTransB (the
// instruction's imm-trans-a / imm-trans-b, 16-bit types only). D's layout: warp w of the group
// holds rows 16w..16w+15; in it lane t holds, for each 8-column block j, d[4j], d[4j+1] =
// D[16w + t/4][8j + 2(t%4) + 0/1] and d[4j+2], d[4j+3] the same columns of row + 8 (mma.m16n8's
// C layout, repeated along N).
// The instructions are asynchronous: issued after wgmma_fence, closed into a group by
// wgmma_commit, complete (accumulators readable, shared operands free) after wgmma_wait<N>.
// Under the emulator they queue per thread and run at the wait that retires them, reading shared
// memory then; the descriptors are decoded as the PTX ISA specifies (tools/cuda_emu/README.md).
#if defined(__CUDA_ARCH_FEAT_SM90_ALL) || defined(EMBER_CUDA_EMULATED)
#define EMBER_HAVE_WGMMA 1

/// A shared-memory matrix descriptor without swizzle: 8 x 16-byte core matrices stored as 128
/// contiguous bytes each; lbo = bytes between core matrices adjacent along K, sbo = along M/N.
__device__ inline uint64_t smem_desc(const void* smem, uint32_t lbo, uint32_t sbo) {
  const auto a = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  return static_cast<uint64_t>((a & 0x3FFFF) >> 4) | (static_cast<uint64_t>(lbo >> 4) << 16) |
         (static_cast<uint64_t>(sbo >> 4) << 32);
}

/// A descriptor of a K-major operand in the 128-byte swizzle layout TMA writes with
/// CU_TENSOR_MAP_SWIZZLE_128B: rows of 64 16-bit elements (128 bytes), 16-byte chunk c of row r
/// stored at chunk c ^ (r % 8), 8-row groups 1024 bytes apart (SBO; LBO unused, 1 by convention).
/// The k16 step s of a 64-deep slab starts 32 s bytes into the row (the swizzle is a function of
/// the address, so the stage must be 1024-byte aligned).
__device__ inline uint64_t smem_desc_sw128(const void* smem) {
  const auto a = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  return static_cast<uint64_t>((a & 0x3FFFF) >> 4) | (uint64_t{1} << 16) |
         (uint64_t{1024 >> 4} << 32) | (uint64_t{1} << 62);
}

/// A descriptor of an M/N-major operand (M or N contiguous; the wgmma's kTransA / kTransB) in the
/// 128-byte swizzle layout TMA writes for boxes of 64 M/N elements x K rows: row k holds 64
/// consecutive M/N elements (128 bytes, chunks swizzled by k % 8), 8-row K groups 1024 bytes
/// apart (SBO), 64-element M/N blocks `block_bytes` apart (LBO; the PTX ISA's canonical MN-major
/// layout ((T,8,m),(8,k)):((1,T,LBO),(8T,SBO))). The k16 step s starts 16 rows = 2048 s bytes
/// in: whole swizzle atoms, so every start stays 1024-byte aligned.
__device__ inline uint64_t smem_desc_sw128_mn(const void* smem, uint32_t block_bytes) {
  const auto a = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  return static_cast<uint64_t>((a & 0x3FFFF) >> 4) |
         (static_cast<uint64_t>((block_bytes & 0x3FFFF) >> 4) << 16) | (uint64_t{1024 >> 4} << 32) |
         (uint64_t{1} << 62);
}

#if defined(EMBER_CUDA_EMULATED)
__device__ inline void fence_proxy_async() { ::ember_emu::fence_proxy_async(); }
template <class R, int N>
__device__ inline void fence_operands(R (&)[N]) {}
__device__ inline void wgmma_fence() {}
__device__ inline void wgmma_commit() { ::ember_emu::wgmma_commit(); }
template <int N>
__device__ inline void wgmma_wait() {
  ::ember_emu::wgmma_wait(N);
}
template <class T, bool kTransA, bool kTransB, int kRegs>
__device__ inline void wgmma_emulated(float (&d)[kRegs], uint64_t desc_a, uint64_t desc_b) {
  static_assert(std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>,
                "wgmma: bf16 or fp16 inputs");
  ::ember_emu::wgmma_issue(::ember_emu::WgmmaOp{
      d, 2 * kRegs, desc_a, desc_b, std::is_same_v<T, __nv_bfloat16>, true, kTransA, kTransB});
}
template <class T, bool kTransA = false, bool kTransB = false>
__device__ inline void wgmma_m64n64k16(float (&d)[32], uint64_t desc_a, uint64_t desc_b) {
  wgmma_emulated<T, kTransA, kTransB>(d, desc_a, desc_b);
}
template <class T, bool kTransA = false, bool kTransB = false>
__device__ inline void wgmma_m64n128k16(float (&d)[64], uint64_t desc_a, uint64_t desc_b) {
  wgmma_emulated<T, kTransA, kTransB>(d, desc_a, desc_b);
}
template <class T, bool kTransA = false, bool kTransB = false>
__device__ inline void wgmma_m64n256k16(float (&d)[128], uint64_t desc_a, uint64_t desc_b) {
  wgmma_emulated<T, kTransA, kTransB>(d, desc_a, desc_b);
}
template <class T, bool kTransB, int kRegs>
__device__ inline void wgmma_rs_emulated(float (&d)[kRegs], const uint32_t (&a)[4],
                                         uint64_t desc_b) {
  static_assert(std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>,
                "wgmma: bf16 or fp16 inputs");
  ::ember_emu::WgmmaOp op{d,    2 * kRegs, 0,       desc_b, std::is_same_v<T, __nv_bfloat16>,
                          true, false,     kTransB, true,   {a[0], a[1], a[2], a[3]}};
  ::ember_emu::wgmma_issue(op);
}
template <class T, bool kTransB = false>
__device__ inline void wgmma_m64n64k16_rs(float (&d)[32], const uint32_t (&a)[4], uint64_t desc_b) {
  wgmma_rs_emulated<T, kTransB>(d, a, desc_b);
}
template <class T, bool kTransB = false>
__device__ inline void wgmma_m64n128k16_rs(float (&d)[64], const uint32_t (&a)[4],
                                           uint64_t desc_b) {
  wgmma_rs_emulated<T, kTransB>(d, a, desc_b);
}
#else
/// Orders this thread's earlier shared-memory writes (cp.async included) before the async
/// proxy's reads (wgmma); then a barrier makes them everyone's.
__device__ inline void fence_proxy_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
/// Pins a wgmma's register operands (accumulators, register A fragments) where the program puts
/// them: an empty asm reading and writing each, so the compiler moves no other access to them
/// (zeroing, rescaling, packing, the epilogue's reads) across wgmma_fence or wgmma_wait. The PTX
/// ISA requires a wgmma.fence between any access to a register and the wgmma using it; without
/// the pin, nvcc 13 was seen sinking an accumulator's zeroing below the fence (ptxas rescued it
/// as scale-d = 0, which nothing guarantees).
template <int N>
__device__ __forceinline__ void fence_operands(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}
template <int N>
__device__ __forceinline__ void fence_operands(uint32_t (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+r"(r[i])::"memory");
}
__device__ inline void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ inline void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int N>
__device__ inline void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

// The accumulator operands of the wgmma forms by count N (32, 64, 128 floats): their names in
// the instruction (EMBER_WGMMA_REGS_N) and the asm output list (EMBER_WGMMA_OUT_N).
#define EMBER_WGMMA_REGS_32                                                \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
#define EMBER_WGMMA_REGS_64                                                                \
  EMBER_WGMMA_REGS_32                                                                      \
      ", %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
#define EMBER_WGMMA_REGS_128                                                                       \
  EMBER_WGMMA_REGS_64                                                                              \
      ", %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "         \
      "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "           \
      "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, "     \
      "%111, "                                                                                     \
      "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, " \
      "%127"
#define EMBER_WGMMA_OUT_32                                                                        \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
      "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]),    \
      "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]),  \
      "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]),  \
      "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#define EMBER_WGMMA_OUT_64                                                                       \
  EMBER_WGMMA_OUT_32, "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]),           \
      "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), \
      "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), \
      "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), \
      "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
#define EMBER_WGMMA_OUT_128                                                                      \
  EMBER_WGMMA_OUT_64, "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]),           \
      "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), \
      "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), \
      "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), \
      "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), \
      "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]),           \
      "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]),        \
      "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]),        \
      "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]),        \
      "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]),        \
      "+f"(d[127])

// One wgmma of SHAPE (e.g. "m64n64k16") for input types TYPES ("bf16.bf16" or "f16.f16") on the
// thread's N accumulators, d += A B (scale-d set through the predicate operand P_INDEX);
// OPERANDS names the A and B operands and the trailing immediates, the rest are the asm inputs.
#define EMBER_WGMMA_ASM(SHAPE, TYPES, N, P_INDEX, OPERANDS, ...)                             \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " P_INDEX                                   \
               ", 0;\n"                                                                      \
               "wgmma.mma_async.sync.aligned." SHAPE ".f32." TYPES " {" EMBER_WGMMA_REGS_##N \
               "}, " OPERANDS ";\n}\n"                                                       \
               : EMBER_WGMMA_OUT_##N                                                         \
               : __VA_ARGS__)

// A and B from shared memory (descriptors), A / B transposed (M/N-major) when kTransA / kTransB
// (immediates).
#define EMBER_WGMMA_M64N64K16(TYPES)                                                         \
  EMBER_WGMMA_ASM("m64n64k16", TYPES, 32, "%34", "%32, %33, p, 1, 1, %35, %36", "l"(desc_a), \
                  "l"(desc_b), "r"(1), "n"(kTransA ? 1 : 0), "n"(kTransB ? 1 : 0))
#define EMBER_WGMMA_M64N128K16(TYPES)                                                         \
  EMBER_WGMMA_ASM("m64n128k16", TYPES, 64, "%66", "%64, %65, p, 1, 1, %67, %68", "l"(desc_a), \
                  "l"(desc_b), "r"(1), "n"(kTransA ? 1 : 0), "n"(kTransB ? 1 : 0))
#define EMBER_WGMMA_M64N256K16(TYPES)                                                  \
  EMBER_WGMMA_ASM("m64n256k16", TYPES, 128, "%130", "%128, %129, p, 1, 1, %131, %132", \
                  "l"(desc_a), "l"(desc_b), "r"(1), "n"(kTransA ? 1 : 0), "n"(kTransB ? 1 : 0))

// The register-A forms: A (64 x 16) from registers, this thread's 4 in mma.m16n8k16's A layout
// for its warp's 16 rows (imm-trans-b only; A is never transposed).
#define EMBER_WGMMA_M64N64K16_RS(TYPES)                                                     \
  EMBER_WGMMA_ASM("m64n64k16", TYPES, 32, "%37", "{%32, %33, %34, %35}, %36, p, 1, 1, %38", \
                  "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1),          \
                  "n"(kTransB ? 1 : 0))
#define EMBER_WGMMA_M64N128K16_RS(TYPES)                                                     \
  EMBER_WGMMA_ASM("m64n128k16", TYPES, 64, "%69", "{%64, %65, %66, %67}, %68, p, 1, 1, %70", \
                  "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1),           \
                  "n"(kTransB ? 1 : 0))

template <class T, bool kTransA = false, bool kTransB = false>
__device__ inline void wgmma_m64n64k16(float (&d)[32], uint64_t desc_a, uint64_t desc_b) {
  static_assert(std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>,
                "wgmma_m64n64k16: bf16 or fp16 inputs");
  if constexpr (std::is_same_v<T, __nv_bfloat16>)
    EMBER_WGMMA_M64N64K16("bf16.bf16");
  else
    EMBER_WGMMA_M64N64K16("f16.f16");
}
template <class T, bool kTransA = false, bool kTransB = false>
__device__ inline void wgmma_m64n128k16(float (&d)[64], uint64_t desc_a, uint64_t desc_b) {
  static_assert(std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>,
                "wgmma_m64n128k16: bf16 or fp16 inputs");
  if constexpr (std::is_same_v<T, __nv_bfloat16>)
    EMBER_WGMMA_M64N128K16("bf16.bf16");
  else
    EMBER_WGMMA_M64N128K16("f16.f16");
}
template <class T, bool kTransA = false, bool kTransB = false>
__device__ inline void wgmma_m64n256k16(float (&d)[128], uint64_t desc_a, uint64_t desc_b) {
  static_assert(std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>,
                "wgmma_m64n256k16: bf16 or fp16 inputs");
  if constexpr (std::is_same_v<T, __nv_bfloat16>)
    EMBER_WGMMA_M64N256K16("bf16.bf16");
  else
    EMBER_WGMMA_M64N256K16("f16.f16");
}
#undef EMBER_WGMMA_M64N64K16
#undef EMBER_WGMMA_M64N128K16
template <class T, bool kTransB = false>
__device__ inline void wgmma_m64n64k16_rs(float (&d)[32], const uint32_t (&a)[4], uint64_t desc_b) {
  static_assert(std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>,
                "wgmma_m64n64k16_rs: bf16 or fp16 inputs");
  if constexpr (std::is_same_v<T, __nv_bfloat16>)
    EMBER_WGMMA_M64N64K16_RS("bf16.bf16");
  else
    EMBER_WGMMA_M64N64K16_RS("f16.f16");
}
template <class T, bool kTransB = false>
__device__ inline void wgmma_m64n128k16_rs(float (&d)[64], const uint32_t (&a)[4],
                                           uint64_t desc_b) {
  static_assert(std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>,
                "wgmma_m64n128k16_rs: bf16 or fp16 inputs");
  if constexpr (std::is_same_v<T, __nv_bfloat16>)
    EMBER_WGMMA_M64N128K16_RS("bf16.bf16");
  else
    EMBER_WGMMA_M64N128K16_RS("f16.f16");
}
#undef EMBER_WGMMA_M64N256K16
#undef EMBER_WGMMA_M64N64K16_RS
#undef EMBER_WGMMA_M64N128K16_RS
#undef EMBER_WGMMA_ASM
#undef EMBER_WGMMA_REGS_32
#undef EMBER_WGMMA_REGS_64
#undef EMBER_WGMMA_REGS_128
#undef EMBER_WGMMA_OUT_32
#undef EMBER_WGMMA_OUT_64
#undef EMBER_WGMMA_OUT_128
#endif  // EMBER_CUDA_EMULATED

/// The main loop of a block whose threads fill kStages shared-memory stages by cp.async
/// (load(stage, slab)) for its warpgroups' wgmma (issue(stage): this warpgroup's wgmma on the
/// stage, between the wgmma_fence and the commit done here) into accumulators d, zeroed first:
/// per slab kt, wait until it has landed, make it visible to the async proxy and every thread,
/// issue and commit, wait until only this slab's group is pending (slab kt - 1's products are
/// done), a barrier (and everyone's: its stage may be refilled), refill it; then drain both.
template <int kStages, int N, class Load, class Issue>
__device__ __forceinline__ void wgmma_cp_async_loop(float (&d)[N], int64_t KT, Load& load,
                                                    Issue&& issue) {
#pragma unroll
  for (int i = 0; i < N; ++i) d[i] = 0.f;
  fence_operands(d);
  fill_stages<kStages>(load, KT);
  for (int64_t kt = 0; kt < KT; ++kt) {
    cp_async_wait<kStages - 2>();  // slab kt has landed (this thread's copies)
    fence_proxy_async();           // visible to wgmma's reads
    __syncthreads();               // everyone's
    wgmma_fence();
    issue(static_cast<int>(kt % kStages));
    wgmma_commit();
    wgmma_wait<1>();  // slab kt - 1's products are done
    __syncthreads();  // everyone's: its stage may be refilled
    const int64_t next = kt + kStages - 1;
    if (next < KT) load(static_cast<int>(next % kStages), next);
    cp_async_commit();
  }
  wgmma_wait<0>();
  fence_operands(d);
  cp_async_wait<0>();
}
#endif  // wgmma

}  // namespace ember::cuda::mma
