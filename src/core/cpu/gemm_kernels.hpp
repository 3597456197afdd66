// GEMM micro-kernels that live in their own translation units (compiled for an instruction set the
// rest of the library does not assume) and the run-time choice between them. Internal to
// src/core/cpu.
#pragma once

#include <cmath>
#include <cstdint>

namespace ember::cpu {

/// Which micro-kernel the packed GEMM runs. Baseline is what the build targets (the AVX2 6 x 16
/// kernel, or a portable loop without AVX2); Avx512 is chosen at startup when the CPU has AVX-512F
/// (unless EMBER_GEMM_ISA=baseline). Both give bitwise the same results.
enum class GemmIsa { Baseline, Avx512 };
bool gemm_isa_available(GemmIsa isa);
GemmIsa gemm_isa();
/// For tests and benchmarks; throws DeviceError when `isa` is not available.
void set_gemm_isa(GemmIsa isa);

/// Rows of the AVX-512 tile; its columns are two vectors (32 floats or 16 doubles).
inline constexpr int kGemmAvx512MR = 12;

/// acc(12, 2 vectors) = a_sliver(kc, 12)^T @ b_sliver(kc, 2 vectors); a full tile of a row-major C
/// (full && sc == 1) is stored into c with alpha/beta/first as store_tile does, returning true;
/// otherwise the tile is left in acc_out and false is returned. Call only when
/// gemm_isa_available(GemmIsa::Avx512).
bool micro_kernel_avx512_f32(int64_t kc, const float* __restrict a, const float* __restrict b,
                             float* __restrict acc_out, float* c, int64_t sr, int64_t sc,
                             bool full, float alpha, float beta, bool first);
bool micro_kernel_avx512_f64(int64_t kc, const double* __restrict a, const double* __restrict b,
                             double* __restrict acc_out, double* c, int64_t sr, int64_t sc,
                             bool full, double alpha, double beta, bool first);

/// A micro-kernel's signature (the packed GEMM and the attention kernel call them through it).
template <class C>
using MicroKernel = bool (*)(int64_t kc, const C* a, const C* b, C* acc_out, C* c, int64_t sr,
                             int64_t sc, bool full, C alpha, C beta, bool first);

/// The portable micro-kernel: acc(MR, NR) = a_sliver(kc, MR)^T b_sliver(kc, NR), one fma chain per
/// element in k order (the arithmetic of every other kernel); `omp simd` vectorizes along NR and
/// the fixed trip counts keep acc in registers. Always leaves the tile in `acc_out`.
template <class C, int MR, int NR>
bool micro_kernel_portable(int64_t kc, const C* __restrict a, const C* __restrict b,
                           C* __restrict acc_out, C*, int64_t, int64_t, bool, C, C, bool) {
  C acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    const C* ap = a + p * MR;
    const C* bp = b + p * NR;
    for (int i = 0; i < MR; ++i) {
      const C ai = ap[i];
#pragma omp simd
      for (int j = 0; j < NR; ++j) acc[i][j] = std::fma(ai, bp[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc_out[i * NR + j] = acc[i][j];
  return false;
}

}  // namespace ember::cpu
