// Fréchet distance: see fid.hpp.
#include "gan/fid.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "ember/ember.hpp"

namespace ember_examples::fid {

std::pair<Tensor, Tensor> feature_statistics(const Tensor& features) {
  EMBER_CHECK(features.dim() == 2 && features.size(0) >= 2, ember::ShapeError,
              "[feature_statistics] expected features (N, F) with N >= 2, got ", features.sizes());
  Tensor f = features.to(ember::kFloat64);
  Tensor mu = f.mean({0});
  Tensor centered = f - mu;
  Tensor cov = ember::matmul(centered.t(), centered) / static_cast<double>(f.size(0) - 1);
  return {mu, cov};
}

std::pair<std::vector<double>, Tensor> symmetric_eigen(const Tensor& a) {
  EMBER_CHECK(a.dim() == 2 && a.size(0) == a.size(1), ember::ShapeError,
              "[symmetric_eigen] expected a square matrix, got ", a.sizes());
  const int64_t n = a.size(0);
  Tensor ac = a.to(ember::kFloat64).contiguous().clone();
  Tensor vc = ember::eye(n, ember::TensorOptions().dtype(ember::kFloat64));
  double* m = ac.data_ptr<double>();
  double* v = vc.data_ptr<double>();
  auto at = [n](double* p, int64_t i, int64_t j) -> double& { return p[i * n + j]; };
  // Cyclic Jacobi: rotate away each off-diagonal element in turn until they are negligible.
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0, diag = 0;
    for (int64_t i = 0; i < n; ++i) {
      diag += at(m, i, i) * at(m, i, i);
      for (int64_t j = i + 1; j < n; ++j) off += at(m, i, j) * at(m, i, j);
    }
    if (off <= 1e-30 * std::max(diag, 1e-300)) break;
    for (int64_t p = 0; p < n; ++p) {
      for (int64_t q = p + 1; q < n; ++q) {
        const double apq = at(m, p, q);
        if (apq == 0.0) continue;
        const double theta = (at(m, q, q) - at(m, p, p)) / (2.0 * apq);
        const double t =
            (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1.0 / std::sqrt(t * t + 1), s = t * c;
        for (int64_t k = 0; k < n; ++k) {  // columns p and q
          const double mkp = at(m, k, p), mkq = at(m, k, q);
          at(m, k, p) = c * mkp - s * mkq;
          at(m, k, q) = s * mkp + c * mkq;
        }
        for (int64_t k = 0; k < n; ++k) {  // rows p and q
          const double mpk = at(m, p, k), mqk = at(m, q, k);
          at(m, p, k) = c * mpk - s * mqk;
          at(m, q, k) = s * mpk + c * mqk;
        }
        for (int64_t k = 0; k < n; ++k) {
          const double vkp = at(v, k, p), vkq = at(v, k, q);
          at(v, k, p) = c * vkp - s * vkq;
          at(v, k, q) = s * vkp + c * vkq;
        }
      }
    }
  }
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int64_t x, int64_t y) { return at(m, x, x) < at(m, y, y); });
  std::vector<double> values;
  for (int64_t i : order) values.push_back(at(m, i, i));
  return {values, vc.index_select(1, ember::tensor(order))};
}

double frechet_distance(const Tensor& mu1, const Tensor& cov1, const Tensor& mu2,
                        const Tensor& cov2) {
  const int64_t F = mu1.numel();
  const std::vector<int64_t> square{F, F};
  EMBER_CHECK(mu1.dim() == 1 && mu2.sizes() == mu1.sizes() && cov1.sizes() == square &&
                  cov2.sizes() == square,
              ember::ShapeError,
              "[frechet_distance] expected mu (F,) and cov (F, F) for both, got ", mu1.sizes(),
              ", ", cov1.sizes(), " and ", mu2.sizes(), ", ", cov2.sizes());
  Tensor c1 = cov1.to(ember::kFloat64), c2 = cov2.to(ember::kFloat64);
  auto [l1, v1] = symmetric_eigen(c1);
  std::vector<double> root(l1.size());
  for (size_t i = 0; i < l1.size(); ++i) root[i] = std::sqrt(std::max(l1[i], 0.0));
  Tensor half = ember::matmul(v1 * ember::tensor(root), v1.t());  // S1^{1/2}
  Tensor inner = ember::matmul(ember::matmul(half, c2), half);
  inner = (inner + inner.t()) * 0.5;  // symmetric up to rounding
  double tr_sqrt = 0;
  for (double l : symmetric_eigen(inner).first) tr_sqrt += std::sqrt(std::max(l, 0.0));
  const double mean_term =
      (mu1.to(ember::kFloat64) - mu2.to(ember::kFloat64)).pow(2).sum().item<double>();
  return mean_term + ember::diagonal(c1).sum().item<double>() +
         ember::diagonal(c2).sum().item<double>() - 2.0 * tr_sqrt;
}

}  // namespace ember_examples::fid
