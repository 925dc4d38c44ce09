#!/usr/bin/env python3
"""Reference values for OnDevice.Evaluation.Statistics, computed independently with SciPy.

Run once (Debian: apt-get install python3-scipy) and commit the output:
    /usr/bin/python3 tests/OnDevice.Evaluation.Tests/Fixtures/make_stats_fixtures.py > tests/OnDevice.Evaluation.Tests/Fixtures/stats_fixtures.json
Produced with SciPy 1.10.1 / NumPy (Debian bookworm python3-scipy).
"""
import itertools
import json
import sys

import numpy as np
import scipy
from scipy import stats

out = {"scipy": scipy.__version__}

# McNemar exact = two-sided binomial test on the discordant pairs; mid-p = 2*P(X<=k) - P(X=k).
mc = []
for b, c in [(1, 0), (3, 9), (10, 10), (25, 40), (7, 0), (0, 6), (120, 150), (400, 330), (2, 17)]:
    n, k = b + c, min(b, c)
    exact = stats.binomtest(b, n, 0.5, alternative="two-sided").pvalue
    mid = min(1.0, 2 * stats.binom.cdf(k, n, 0.5) - stats.binom.pmf(k, n, 0.5))
    mc.append({"b": b, "c": c, "exact": float(exact), "mid": float(mid)})
out["mcnemar"] = mc

# Paired permutation test of the mean difference, exact (all 2^n sign swaps), SciPy's permutation_test,
# cross-checked here against a brute-force enumeration.
rng = np.random.default_rng(20261121)
perm = []
for n in [5, 8, 11, 14]:
    x = np.round(rng.normal(0.3, 0.2, n), 4)
    y = np.round(x + rng.normal(0.08, 0.15, n), 4)
    res = stats.permutation_test((x, y), lambda a, b: np.mean(b) - np.mean(a), permutation_type="samples",
                                 n_resamples=np.inf, alternative="two-sided")
    obs = np.mean(y) - np.mean(x)
    ts = []
    for flips in itertools.product([False, True], repeat=n):
        f = np.array(flips)
        ts.append(np.mean(np.where(f, x, y)) - np.mean(np.where(f, y, x)))
    ts = np.array(ts)
    tol = 1e-12 * max(1, abs(obs))
    brute = min(1.0, 2 * min(np.mean(ts <= obs + tol), np.mean(ts >= obs - tol)))
    assert abs(brute - res.pvalue) < 1e-12, (brute, res.pvalue)
    perm.append({"a": x.tolist(), "b": y.tolist(), "statistic": float(obs), "p": float(res.pvalue)})
out["permutation"] = perm

# A ratio metric (sum of edits / sum of reference lengths, like CER), brute force: SciPy's permutation_test
# only sees one value per example, so the pairs of (edits, length) are enumerated directly.
ratio = []
for n in [6, 10]:
    length = rng.integers(5, 30, n)
    ea = rng.integers(0, 4, n)
    eb = np.maximum(0, ea + rng.integers(-1, 3, n))
    obs = eb.sum() / length.sum() - ea.sum() / length.sum()
    ts = []
    for flips in itertools.product([False, True], repeat=n):
        f = np.array(flips)
        ts.append(np.where(f, ea, eb).sum() / length.sum() - np.where(f, eb, ea).sum() / length.sum())
    ts = np.array(ts)
    tol = 1e-12 * max(1, abs(obs))
    p = min(1.0, 2 * min(np.mean(ts <= obs + tol), np.mean(ts >= obs - tol)))
    ratio.append({"length": length.tolist(), "editsA": ea.tolist(), "editsB": eb.tolist(), "statistic": float(obs), "p": float(p)})
out["permutationRatio"] = ratio

# Paired bootstrap percentile CI of mean(B) - mean(A) on correctness outcomes; SciPy with many resamples.
n = 300
a = (rng.random(n) < 0.82).astype(float)
b = a.copy()
flip = rng.random(n) < 0.12
b[flip] = 1 - b[flip]
res = stats.bootstrap((a, b), lambda x, y, axis=-1: np.mean(y, axis=axis) - np.mean(x, axis=axis), paired=True,
                      vectorized=True, method="percentile", n_resamples=200000, confidence_level=0.95, random_state=0)
out["bootstrap"] = {"a": a.astype(int).tolist(), "b": b.astype(int).tolist(), "delta": float(b.mean() - a.mean()),
                    "ciLow": float(res.confidence_interval.low), "ciHigh": float(res.confidence_interval.high)}


# Holm: an independent reference implementation (statsmodels' multipletests 'holm' definition).
def holm(p):
    m = len(p)
    order = sorted(range(m), key=lambda i: (p[i], i))
    adj = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, p[i] * (m - rank)))
        adj[i] = running
    return adj


holm_cases = [[0.01, 0.04, 0.03, 0.005], [0.2, 0.001, 0.5, 0.04, 0.04], [0.9]]
out["holm"] = [{"p": p, "adjusted": holm(p)} for p in holm_cases]

json.dump(out, sys.stdout, indent=1)
sys.stdout.write("\n")
