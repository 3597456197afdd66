// Parameter initialisation, as torch.nn.init: each function fills a tensor in place (without
// recording a graph) and returns it. Random ones draw from the default generator unless one is
// given, so manual_seed makes model construction reproducible.
#pragma once

#include <string>
#include <utility>

#include "ember/random.hpp"
#include "ember/tensor.hpp"

namespace ember::nn::init {

/// The recommended gain for a nonlinearity: "linear", "conv1d", "conv2d", "sigmoid" -> 1,
/// "tanh" -> 5/3, "relu" -> sqrt(2), "leaky_relu" -> sqrt(2 / (1 + param^2)) (param: negative
/// slope, default 0.01), "selu" -> 3/4.
double calculate_gain(const std::string& nonlinearity, double param = 0.01);
/// (fan_in, fan_out) of a weight of at least 2 dims: (size(1) * receptive, size(0) * receptive).
std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t);

Tensor& uniform_(Tensor& t, double a = 0.0, double b = 1.0);
Tensor& normal_(Tensor& t, double mean = 0.0, double std = 1.0);
Tensor& constant_(Tensor& t, double value);
Tensor& zeros_(Tensor& t);
Tensor& ones_(Tensor& t);
/// The identity for a 2-D tensor (ones on the diagonal).
Tensor& eye_(Tensor& t);
/// Uniform in [-b, b], b = gain * sqrt(6 / (fan_in + fan_out)).
Tensor& xavier_uniform_(Tensor& t, double gain = 1.0);
/// Normal(0, gain * sqrt(2 / (fan_in + fan_out))).
Tensor& xavier_normal_(Tensor& t, double gain = 1.0);
/// Uniform in [-b, b], b = gain * sqrt(3 / fan) with gain = calculate_gain(nonlinearity, a);
/// mode "fan_in" or "fan_out".
Tensor& kaiming_uniform_(Tensor& t, double a = 0.0, const std::string& mode = "fan_in",
                         const std::string& nonlinearity = "leaky_relu");
/// Normal(0, gain / sqrt(fan)).
Tensor& kaiming_normal_(Tensor& t, double a = 0.0, const std::string& mode = "fan_in",
                        const std::string& nonlinearity = "leaky_relu");
/// Normal(mean, std) truncated to [a, b] (absolute bounds), by the inverse-CDF method.
Tensor& trunc_normal_(Tensor& t, double mean = 0.0, double std = 1.0, double a = -2.0,
                      double b = 2.0);
/// A (semi-)orthogonal matrix (the tensor viewed as (size(0), rest)) times gain, from the QR
/// decomposition of a Gaussian matrix with the signs fixed by R's diagonal, as PyTorch does.
Tensor& orthogonal_(Tensor& t, double gain = 1.0);

// Generator-explicit forms.
Tensor& uniform_(Tensor& t, double a, double b, Generator& gen);
Tensor& normal_(Tensor& t, double mean, double std, Generator& gen);
Tensor& kaiming_uniform_(Tensor& t, double a, const std::string& mode,
                         const std::string& nonlinearity, Generator& gen);
Tensor& trunc_normal_(Tensor& t, double mean, double std, double a, double b, Generator& gen);
Tensor& orthogonal_(Tensor& t, double gain, Generator& gen);

}  // namespace ember::nn::init
