"""Prints the Fréchet distances that tests/nn/test_gan_fid.cpp expects, computed with numpy in the
way pytorch-fid does (tr sqrt(S1 S2) from the eigenvalues of the product S1 S2, a different route
from Ember's symmetric square root). The features are formulas, so no file is needed:
  a[i, j] = sin(1.3 i + 0.7 j) + 0.1 j       i < 200, j < 8
  b[i, j] = cos(0.9 i - 0.4 j) * (1 + 0.05 j) + 0.3    i < 150, j < 8
Run: python3 tests/nn/make_fid_golden.py
"""
import numpy as np


def features(n, f, kind):
    i = np.arange(n)[:, None].astype(np.float64)
    j = np.arange(f)[None, :].astype(np.float64)
    if kind == "a":
        return np.sin(1.3 * i + 0.7 * j) + 0.1 * j
    return np.cos(0.9 * i - 0.4 * j) * (1 + 0.05 * j) + 0.3


def fid(x, y):
    m1, m2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    ev = np.linalg.eigvals(s1 @ s2)
    return float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(ev.real.clip(0)).sum())


a, b = features(200, 8, "a"), features(150, 8, "b")
print(f"fid(a, b) = {fid(a, b):.12f}")
print(f"fid(a, a) = {fid(a, a):.12f}")
