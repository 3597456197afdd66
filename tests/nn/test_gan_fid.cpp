// The GAN trainer's quality score (examples/gan/fid.hpp): feature statistics, the symmetric
// eigen-decomposition, and the Fréchet distance against numpy (tests/nn/make_fid_golden.py).
//
// Needs examples/gan/fid.cpp and the include dir examples/ in the test target.
#include <cmath>

#include "gan/fid.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::test;
namespace fid = ember_examples::fid;

namespace {

// The formulas of make_fid_golden.py.
Tensor features(int64_t n, int64_t f, bool a) {
  Tensor i = arange(n, kFloat64).view({n, 1}), j = arange(f, kFloat64).view({1, f});
  if (a) return (i * 1.3 + j * 0.7).sin() + j * 0.1;
  return (i * 0.9 - j * 0.4).cos() * (j * 0.05 + 1.0) + 0.3;
}

// The (n, n) matrix with d on its diagonal.
Tensor diag_matrix(const Tensor& d) {
  const int64_t n = d.numel();
  return eye(n, TensorOptions().dtype(kFloat64)) * d.view({1, n});
}

}  // namespace

TEST_CASE("fid: feature statistics are the mean and the unbiased covariance") {
  Tensor x = tensor({{1.0, 2.0}, {3.0, 6.0}, {5.0, 4.0}});
  auto [mu, cov] = fid::feature_statistics(x);
  REQUIRE(values(mu) == std::vector<double>{3.0, 4.0});
  REQUIRE(values(cov) == std::vector<double>{4.0, 2.0, 2.0, 4.0});
  REQUIRE_THROWS_AS(fid::feature_statistics(zeros({1, 3})), ShapeError);
  REQUIRE_THROWS_AS(fid::feature_statistics(zeros({4})), ShapeError);
}

TEST_CASE("fid: symmetric_eigen reconstructs the matrix") {
  manual_seed(3);
  Tensor r = randn({7, 7}, kFloat64);
  Tensor a = r + r.t();
  auto [values_, vectors] = fid::symmetric_eigen(a);
  REQUIRE(values_.size() == 7);
  for (size_t i = 1; i < values_.size(); ++i) REQUIRE(values_[i - 1] <= values_[i]);
  Tensor rebuilt = matmul(vectors * tensor(values_), vectors.t());
  REQUIRE((rebuilt - a).abs().max().item<double>() < 1e-10);
  Tensor orth = matmul(vectors.t(), vectors) - eye(7, TensorOptions().dtype(kFloat64));
  REQUIRE(orth.abs().max().item<double>() < 1e-10);
}

TEST_CASE("fid: Fréchet distance matches numpy, is 0 for equal sets, closed form for diagonals") {
  auto [ma, ca] = fid::feature_statistics(features(200, 8, true));
  auto [mb, cb] = fid::feature_statistics(features(150, 8, false));
  // numpy's route (eigenvalues of the non-symmetric S1 S2) is itself good to about 1e-7.
  REQUIRE(std::abs(fid::frechet_distance(ma, ca, mb, cb) - 2.665239327195) < 1e-6);
  REQUIRE(std::abs(fid::frechet_distance(mb, cb, ma, ca) - 2.665239327195) < 1e-6);
  // a's covariance has rank 2: the square roots of its rounding-level eigenvalues leave ~1e-8.
  REQUIRE(std::abs(fid::frechet_distance(ma, ca, ma, ca)) < 1e-6);
  // Diagonal covariances: sum (sqrt(s1) - sqrt(s2))^2 + |mu1 - mu2|^2.
  Tensor d1 = tensor({4.0, 9.0, 1.0}), d2 = tensor({1.0, 4.0, 1.0});
  Tensor m1 = tensor({0.0, 1.0, 2.0}), m2 = tensor({1.0, 1.0, 0.0});
  const double expected = (1.0 + 1.0 + 0.0) + (1.0 + 0.0 + 4.0);
  REQUIRE(std::abs(fid::frechet_distance(m1, diag_matrix(d1), m2, diag_matrix(d2)) - expected) <
          1e-12);
  REQUIRE_THROWS_AS(fid::frechet_distance(ma, ca, m1, diag_matrix(d1)), ShapeError);
}
