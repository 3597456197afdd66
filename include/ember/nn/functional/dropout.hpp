// Dropout functionals, as torch.nn.functional: dropout, dropout1d, dropout2d, alpha_dropout.
// Masks come from the default generator (ember::manual_seed makes them reproducible, and
// ember::checkpoint replays them). With training = false each is the identity (returns input).
// p outside [0, 1] is a ValueError.
#pragma once

#include "ember/tensor.hpp"

namespace ember::nn::functional {

/// Zeroes each element with probability p and scales the rest by 1 / (1 - p), so the expectation
/// is unchanged; p = 1 gives zeros (with a zero gradient).
Tensor dropout(const Tensor& input, double p = 0.5, bool training = true);

/// Zeroes whole channels: input (N, C, L) or unbatched (C, L); one draw per (sample, channel).
Tensor dropout1d(const Tensor& input, double p = 0.5, bool training = true);

/// Zeroes whole channels: input (N, C, H, W) or unbatched (C, H, W); one draw per (sample,
/// channel).
Tensor dropout2d(const Tensor& input, double p = 0.5, bool training = true);

/// Dropout for self-normalizing (SELU) networks: dropped elements are set to SELU's negative
/// saturation value and the result is affinely rescaled to keep zero mean and unit variance.
Tensor alpha_dropout(const Tensor& input, double p = 0.5, bool training = false);

}  // namespace ember::nn::functional
