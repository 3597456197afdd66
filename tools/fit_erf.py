#!/usr/bin/env python3
"""Fits the float32 erf approximation in src/core/cpu/vec_math.hpp (run once; prints C++).

  |x| <  1:  erf(x) = x * P(x^2)                 P: degree 6 in x^2, fitted to erf(x)/x
  1 <= |x| < 4: erf(x) = 1 - exp(Q(|x| - 2.5))   Q: degree 10, fitted to log(erfc(|x|))
  |x| >= 4:  erf(x) = +-1 (erfc(3.92) is below half a float ulp of 1)

Least squares in double on dense Chebyshev-distributed points, weighted toward relative error;
the C++ test (tests/core/test_vec_math.cpp) measures the float error against std::erf.
"""
import math

import numpy as np


def cheb_points(lo, hi, n):
    k = np.arange(n)
    return (lo + hi) / 2 + (hi - lo) / 2 * np.cos(np.pi * (k + 0.5) / n)


def fit(x, y, deg, weight):
    A = np.vander(x, deg + 1, increasing=True) * weight[:, None]
    coef, *_ = np.linalg.lstsq(A, y * weight, rcond=None)
    return coef


erf = np.vectorize(math.erf)
erfc = np.vectorize(math.erfc)

# Region 1: erf(x)/x as a polynomial in s = x^2, relative error.
x1 = cheb_points(1e-4, 1.0, 4000)
s1 = x1 * x1
p = fit(s1, erf(x1) / x1, 6, 1 / (erf(x1) / x1))
err1 = np.max(np.abs(np.polyval(p[::-1], s1) * x1 / erf(x1) - 1))

# Region 2: log(erfc(a)) as a polynomial in u = a - 2.5, absolute error (it becomes erfc's relative
# error).
a2 = cheb_points(1.0, 4.0, 6000)
q = fit(a2 - 2.5, np.log(erfc(a2)), 10, np.ones_like(a2))
err2 = np.max(np.abs(np.polyval(q[::-1], a2 - 2.5) - np.log(erfc(a2))))

print(f"// region 1 max relative error {err1:.2e}, region 2 max |log erfc| error {err2:.2e}")
print("P (x^2, ascending):", ", ".join(f"{float(np.float32(c))!r}f" for c in p))
print("Q (a - 2.5, ascending):", ", ".join(f"{float(np.float32(c))!r}f" for c in q))
