// The AVX-512 tiles of the direct convolution (conv_direct.hpp), chosen at run time on CPUs with
// AVX-512F. This file alone is compiled with -mavx512f.
//
// Forward tile: 8 output channels x 3 vectors of positions (48 floats or 24 doubles) = 24 of the
// 32 zmm accumulators, three B vectors and one broadcast; and 6 x 4 vectors (24 accumulators,
// four B vectors) for GEMMs of exactly four vectors. Weight-gradient tile: 12 taps x 2 vectors of
// output channels = 24 accumulators, two dY vectors and one broadcast.
#include "core/cpu/conv_direct.hpp"
#include "core/cpu/simd_avx512.hpp"

namespace ember::cpu {

ConvDirectTiles<float> conv_direct_tiles_avx512_f32() {
  return conv_direct_detail::make_tiles<Simd512<float>, 8, 12, 6>();
}

ConvDirectTiles<double> conv_direct_tiles_avx512_f64() {
  return conv_direct_detail::make_tiles<Simd512<double>, 8, 12, 6>();
}

}  // namespace ember::cpu
