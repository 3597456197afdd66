// GEMM micro-kernels that live in their own translation units (compiled for an instruction set the
// rest of the library does not assume) and the run-time choice between them. Internal to
// src/core/cpu.
#pragma once

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

}  // namespace ember::cpu
