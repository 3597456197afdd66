// torch.nn.init equivalents. All fills run without recording a graph.
#include "ember/nn/init.hpp"

#include <cmath>
#include <vector>

#include "ember/autograd.hpp"
#include "ember/ops.hpp"

namespace ember::nn::init {

namespace {

void check_defined(const Tensor& t, const char* op) {
  EMBER_CHECK(t.defined(), ValueError, "[", op, "] the tensor is undefined");
  EMBER_CHECK(t.is_floating_point(), DTypeError, "[", op, "] expected a floating tensor, got ",
              t.dtype());
}

int64_t fan(const Tensor& t, const std::string& mode, const char* op) {
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  EMBER_CHECK(mode == "fan_in" || mode == "fan_out", ValueError, "[", op,
              "] mode must be 'fan_in' or 'fan_out', got '", mode, "'");
  const int64_t f = mode == "fan_in" ? fan_in : fan_out;
  EMBER_CHECK(f > 0, ValueError, "[", op, "] cannot initialise a tensor of shape ", t.sizes(),
              " with zero ", mode);
  return f;
}

/// Fills t (any dtype, any strides) from a float64 tensor of its shape.
Tensor& assign(Tensor& t, const Tensor& values) {
  NoGradGuard no_grad;
  t.copy_(values);
  return t;
}

/// Inverse error function in double: a rational first guess refined by Newton steps on erf.
double erfinv(double y) {
  if (y <= -1.0) return -INFINITY;
  if (y >= 1.0) return INFINITY;
  const double w = -std::log((1.0 - y) * (1.0 + y));
  double x;
  if (w < 5.0) {  // Giles (2010), single-precision approximation as the starting point
    double v = w - 2.5;
    double p = 2.81022636e-08;
    for (double c : {3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
                     -0.00417768164, 0.246640727, 1.50140941})
      p = p * v + c;
    x = p * y;
  } else {
    double v = std::sqrt(w) - 3.0;
    double p = -0.000200214257;
    for (double c : {0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
                     0.00943887047, 1.00167406, 2.83297682})
      p = p * v + c;
    x = p * y;
  }
  const double two_over_sqrt_pi = 1.1283791670955126;
  for (int i = 0; i < 3; ++i) {
    const double err = std::erf(x) - y;
    x -= err / (two_over_sqrt_pi * std::exp(-x * x));
  }
  return x;
}

}  // namespace

double calculate_gain(const std::string& nl, double param) {
  if (nl == "linear" || nl == "conv1d" || nl == "conv2d" || nl == "conv3d" ||
      nl == "conv_transpose1d" || nl == "conv_transpose2d" || nl == "sigmoid")
    return 1.0;
  if (nl == "tanh") return 5.0 / 3.0;
  if (nl == "relu") return std::sqrt(2.0);
  if (nl == "leaky_relu") return std::sqrt(2.0 / (1.0 + param * param));
  if (nl == "selu") return 3.0 / 4.0;
  EMBER_CHECK(false, ValueError, "[calculate_gain] unsupported nonlinearity '", nl, "'");
  return 0.0;
}

std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t) {
  EMBER_CHECK(t.defined() && t.dim() >= 2, ShapeError,
              "[calculate_fan_in_and_fan_out] fan in and fan out need a tensor of at least 2 "
              "dims, got ",
              t.defined() ? t.sizes() : IntArrayRef());
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.size(d);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

Tensor& uniform_(Tensor& t, double a, double b, Generator& gen) {
  check_defined(t, "uniform_");
  NoGradGuard no_grad;
  return ember::uniform_(t, a, b, gen);
}
Tensor& uniform_(Tensor& t, double a, double b) {
  return init::uniform_(t, a, b, default_generator());
}

Tensor& normal_(Tensor& t, double mean, double std, Generator& gen) {
  check_defined(t, "normal_");
  NoGradGuard no_grad;
  return ember::normal_(t, mean, std, gen);
}
Tensor& normal_(Tensor& t, double mean, double std) {
  return init::normal_(t, mean, std, default_generator());
}

Tensor& constant_(Tensor& t, double value) {
  EMBER_CHECK(t.defined(), ValueError, "[constant_] the tensor is undefined");
  NoGradGuard no_grad;
  t.fill_(value);
  return t;
}
Tensor& zeros_(Tensor& t) { return constant_(t, 0.0); }
Tensor& ones_(Tensor& t) { return constant_(t, 1.0); }

Tensor& eye_(Tensor& t) {
  EMBER_CHECK(t.defined() && t.dim() == 2, ShapeError, "[eye_] expected a 2-D tensor, got ",
              t.defined() ? t.sizes() : IntArrayRef());
  return assign(t, eye(t.size(0), t.size(1), kFloat64));
}

Tensor& xavier_uniform_(Tensor& t, double gain) {
  check_defined(t, "xavier_uniform_");
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  return init::uniform_(t, -bound, bound);
}

Tensor& xavier_normal_(Tensor& t, double gain) {
  check_defined(t, "xavier_normal_");
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  return init::normal_(t, 0.0, gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out)));
}

Tensor& kaiming_uniform_(Tensor& t, double a, const std::string& mode,
                         const std::string& nonlinearity, Generator& gen) {
  check_defined(t, "kaiming_uniform_");
  const double std = calculate_gain(nonlinearity, a) /
                     std::sqrt(static_cast<double>(fan(t, mode, "kaiming_uniform_")));
  const double bound = std::sqrt(3.0) * std;
  return init::uniform_(t, -bound, bound, gen);
}
Tensor& kaiming_uniform_(Tensor& t, double a, const std::string& mode,
                         const std::string& nonlinearity) {
  return kaiming_uniform_(t, a, mode, nonlinearity, default_generator());
}

Tensor& kaiming_normal_(Tensor& t, double a, const std::string& mode,
                        const std::string& nonlinearity) {
  check_defined(t, "kaiming_normal_");
  const double std = calculate_gain(nonlinearity, a) /
                     std::sqrt(static_cast<double>(fan(t, mode, "kaiming_normal_")));
  return init::normal_(t, 0.0, std);
}

Tensor& trunc_normal_(Tensor& t, double mean, double std, double a, double b, Generator& gen) {
  check_defined(t, "trunc_normal_");
  EMBER_CHECK(std > 0 && a < b && std::isfinite(mean), ValueError,
              "[trunc_normal_] expected std > 0 and a < b, got mean=", mean, ", std=", std,
              ", a=", a, ", b=", b);
  // Uniform u in (2 Phi(alpha) - 1, 2 Phi(beta) - 1) maps to the truncated normal through
  // mean + std * sqrt(2) * erfinv(u).
  auto cdf = [](double x) { return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))); };
  const double lo = 2.0 * cdf((a - mean) / std) - 1.0, hi = 2.0 * cdf((b - mean) / std) - 1.0;
  NoGradGuard no_grad;
  Tensor u = empty(t.sizes(), kFloat64);
  ember::uniform_(u, 0.0, 1.0, gen);
  double* p = u.data_ptr<double>();
  for (int64_t i = 0; i < u.numel(); ++i) {
    const double x = mean + std * std::sqrt(2.0) * erfinv(lo + (hi - lo) * p[i]);
    p[i] = std::min(std::max(x, a), b);
  }
  return assign(t, u);
}
Tensor& trunc_normal_(Tensor& t, double mean, double std, double a, double b) {
  return trunc_normal_(t, mean, std, a, b, default_generator());
}

Tensor& orthogonal_(Tensor& t, double gain, Generator& gen) {
  check_defined(t, "orthogonal_");
  EMBER_CHECK(t.dim() >= 2, ShapeError, "[orthogonal_] expected at least 2 dims, got ", t.sizes());
  if (t.numel() == 0) return t;
  const int64_t rows = t.size(0), cols = t.numel() / rows;
  // Work on an (m, n) Gaussian matrix with m >= n; transpose back at the end.
  const bool transposed = rows < cols;
  const int64_t m = transposed ? cols : rows, n = transposed ? rows : cols;
  NoGradGuard no_grad;
  Tensor g = empty({m, n}, kFloat64);
  ember::normal_(g, 0.0, 1.0, gen);
  std::vector<double> q(static_cast<size_t>(m * n));
  const double* src = g.data_ptr<double>();
  for (int64_t i = 0; i < m * n; ++i) q[static_cast<size_t>(i)] = src[i];
  auto at = [&](int64_t r, int64_t c) -> double& { return q[static_cast<size_t>(r * n + c)]; };
  // Modified Gram-Schmidt on the columns: A = QR; then Q *= sign(diag(R)), PyTorch's fix that
  // makes Q uniformly distributed.
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t k = 0; k < j; ++k) {
      double dot = 0;
      for (int64_t r = 0; r < m; ++r) dot += at(r, k) * at(r, j);
      for (int64_t r = 0; r < m; ++r) at(r, j) -= dot * at(r, k);
    }
    double norm = 0;
    for (int64_t r = 0; r < m; ++r) norm += at(r, j) * at(r, j);
    norm = std::sqrt(norm);
    EMBER_CHECK(norm > 0, ValueError, "[orthogonal_] degenerate random matrix");
    for (int64_t r = 0; r < m; ++r) at(r, j) /= norm;
    // diag(R)_j = <q_j, a_j> = norm > 0 in Gram-Schmidt, so no sign flip is needed here.
  }
  Tensor qt = from_blob(q.data(), {m, n}, kFloat64).clone();
  if (transposed) qt = qt.t();
  return assign(t, (qt * gain).reshape(t.sizes()));
}
Tensor& orthogonal_(Tensor& t, double gain) { return orthogonal_(t, gain, default_generator()); }

}  // namespace ember::nn::init
