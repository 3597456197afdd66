// The Fréchet distance between two sets of features (Heusel et al. 2017, "GANs Trained by a Two
// Time-Scale Update Rule Converge to a Local Nash Equilibrium"), the GAN trainer's quality score:
//   d = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^{1/2})
// with mu, S the mean and covariance of each set. FID proper uses Inception-v3 features; the GAN
// trainer uses a Fashion-MNIST classifier's pooled features instead (see docs/examples.md), so its
// figures compare runs of this trainer, not published FIDs.
//
//   auto [mu_r, cov_r] = fid::feature_statistics(real_features);  // (N, F) -> (F,), (F, F)
//   auto [mu_g, cov_g] = fid::feature_statistics(fake_features);
//   double d = fid::frechet_distance(mu_r, cov_r, mu_g, cov_g);
#pragma once

#include <utility>
#include <vector>

#include "ember/tensor.hpp"

namespace ember_examples::fid {

using ember::Tensor;

/// Mean (F,) and unbiased covariance (F, F), both float64, of features (N, F), N >= 2.
/// ShapeError otherwise.
std::pair<Tensor, Tensor> feature_statistics(const Tensor& features);

/// Eigenvalues (ascending) and eigenvectors (the columns of the returned (F, F)) of the symmetric
/// float64 matrix a (F, F), by cyclic Jacobi rotations.
std::pair<std::vector<double>, Tensor> symmetric_eigen(const Tensor& a);

/// The Fréchet distance above. tr((S1 S2)^{1/2}) is computed as the sum of the square roots of the
/// eigenvalues of S1^{1/2} S2 S1^{1/2} (symmetric, so no complex square root arises; tiny negative
/// eigenvalues from rounding count as 0). ShapeError when the shapes do not match.
double frechet_distance(const Tensor& mu1, const Tensor& cov1, const Tensor& mu2,
                        const Tensor& cov2);

}  // namespace ember_examples::fid
