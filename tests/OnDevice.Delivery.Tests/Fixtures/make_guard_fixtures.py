#!/usr/bin/env python3
"""Reference values for OnDevice.Delivery.Guards (Probability, quantile bounds, guard p-values), computed
independently with SciPy from the definitions in docs/telemetry.md.

Run once (Debian: apt-get install python3-scipy) and commit the output:
    /usr/bin/python3 tests/OnDevice.Delivery.Tests/Fixtures/make_guard_fixtures.py > tests/OnDevice.Delivery.Tests/Fixtures/guard_fixtures.json
"""
import bisect
import json
import math

import numpy as np
import scipy
from scipy import special, stats

out = {"scipy": scipy.__version__}

# Binomial tails, including very large n.
binom = []
for k, n, p in [(0, 10, 0.3), (3, 10, 0.3), (10, 10, 0.3), (1, 1000, 0.0001), (0, 46000, 0.0001), (5, 46000, 0.0001),
                (25, 1000, 0.01), (3, 1000, 0.01), (1500, 100000, 0.01), (800, 100000, 0.01), (123456, 1000000, 0.12),
                (9_990_000, 1_000_000_000, 0.01), (10_010_000, 1_000_000_000, 0.01), (40, 60, 0.5), (2, 7, 0.9)]:
    binom.append({"k": k, "n": n, "p": p, "cdf": float(stats.binom.cdf(k, n, p)), "sf": float(stats.binom.sf(k - 1, n, p))})
out["binomial"] = binom

beta = []
for a, b, x in [(0.5, 0.5, 0.3), (2, 3, 0.4), (10, 20, 0.2), (100, 200, 0.35), (1e4, 2e4, 0.334), (1e6, 1e6, 0.5005), (3.5, 1.25, 0.9)]:
    beta.append({"a": a, "b": b, "x": x, "value": float(special.betainc(a, b, x))})
out["incomplete_beta"] = beta
out["log_gamma"] = [{"x": x, "value": float(special.gammaln(x))} for x in [0.1, 0.5, 1, 2.5, 10, 171.3, 1e5, 1e9]]

# The bucket scheme, re-derived.
PER_DECADE, EDGES = 48, 279
LAST = EDGES  # index of the overflow bucket
edges = [float("%.12g" % (0.1 * 10 ** (i / PER_DECADE))) for i in range(EDGES)]
def lower(b): return 0.0 if b == 0 else edges[b - 1]
def upper(b): return math.inf if b == LAST else edges[b]
def bucket_of(ms): return bisect.bisect_right(edges, ms)
def hist(samples):
    h = [0] * (LAST + 1)
    for s in samples: h[bucket_of(s)] += 1
    return h
def quantile(h, q):
    n = sum(h); rank = q * n; below = 0
    for b, c in enumerate(h):
        if c == 0: continue
        if below + c >= rank:
            f = min(1, max(0, (rank - below) / c))
            if b == 0: return upper(0) * f
            if b == LAST: return lower(b)
            return lower(b) * (upper(b) / lower(b)) ** f
        below += c
def bucket_of_rank(h, j):
    cum = 0
    for b, c in enumerate(h):
        cum += c
        if cum >= j: return b
    return LAST
def upper_bound(h, q, a):
    n = sum(h)
    if stats.binom.cdf(n - 1, n, q) < 1 - a: return math.inf
    j = next(j for j in range(1, n + 1) if stats.binom.cdf(j - 1, n, q) >= 1 - a)
    return upper(bucket_of_rank(h, j))
def lower_bound(h, q, a):
    n = sum(h)
    if stats.binom.sf(0, n, q) < 1 - a: return 0.0
    j = max(j for j in range(1, n + 1) if stats.binom.sf(j - 1, n, q) >= 1 - a)
    return lower(bucket_of_rank(h, j))
def surely_above(h, t): return sum(c for b, c in enumerate(h) if lower(b) >= t)
def possibly_above(h, t): return sum(c for b, c in enumerate(h) if upper(b) > t)

out["edges"] = {str(i): edges[i] for i in [0, 1, 23, 24, 47, 48, 96, 144, 192, 240, 278]}

rng = np.random.default_rng(20261121)
base = rng.lognormal(math.log(20), 0.35, 6000)
same = rng.lognormal(math.log(20), 0.35, 5000)
slow = rng.lognormal(math.log(40), 0.35, 3000)  # every quantile 2x
hb, hs, hw = hist(base), hist(same), hist(slow)
alpha = 0.01
cases = []
for name, h in [("baseline", hb), ("same", hs), ("slow", hw)]:
    cases.append({"name": name, "hist": h, "p50": quantile(h, 0.5), "p99": quantile(h, 0.99),
                  "exact_p99": float(np.quantile(base if name == "baseline" else same if name == "same" else slow, 0.99)),
                  "upper_p99": upper_bound(h, 0.99, alpha / 2), "lower_p99": lower_bound(h, 0.99, alpha / 2),
                  "upper_p50": upper_bound(h, 0.5, alpha / 2), "lower_p50": lower_bound(h, 0.5, alpha / 2)})
out["histograms"] = cases

# Guard p-values, from the definitions.
g = []
# p99_latency_ms > 1.2x baseline on "slow" vs "baseline": fail p = 2*sf(x; n, 0.01) with x surely above 1.2*U_b.
ub = upper_bound(hb, 0.99, alpha / 2); lb = lower_bound(hb, 0.99, alpha / 2)
for cand_name, hc in [("slow", hw), ("same", hs)]:
    n = sum(hc)
    xf = surely_above(hc, 1.2 * ub); xp = possibly_above(hc, 1.2 * lb)
    g.append({"rule": "p99_latency_ms > 1.2x baseline", "candidate": cand_name,
              "p_fail": min(1, 2 * float(stats.binom.sf(xf - 1, n, 0.01))), "p_pass": min(1, 2 * float(stats.binom.cdf(xp, n, 0.01)))})
# p99_latency_ms > 50 (absolute) with baseline: fail = max(sf test vs 50, baseline test at 1x); pass = 2*min(cdf vs 50, baseline pass at 1.2x).
for cand_name, hc in [("slow", hw), ("same", hs)]:
    n = sum(hc)
    f1 = float(stats.binom.sf(surely_above(hc, 50) - 1, n, 0.01))
    f2 = min(1, 2 * float(stats.binom.sf(surely_above(hc, ub) - 1, n, 0.01)))
    p1 = float(stats.binom.cdf(possibly_above(hc, 50), n, 0.01))
    p2 = min(1, 2 * float(stats.binom.cdf(possibly_above(hc, 1.2 * lb), n, 0.01)))
    g.append({"rule": "p99_latency_ms > 50", "candidate": cand_name, "p_fail": max(f1, f2), "p_pass": min(1, 2 * min(p1, p2))})
out["latency_guards"] = g

# Rates: absolute with baseline (IUT / Bonferroni) and relative (conditional Poisson-ratio test).
r = []
for kc, nc, kb, nb, bound, relative in [(12, 20000, 30, 200000, 0.0001, False), (40, 20000, 30, 200000, 0.0001, False),
                                         (0, 60000, 2, 300000, 0.0001, False), (30, 20000, 80, 200000, 2.0, True),
                                         (6, 20000, 80, 200000, 2.0, True), (900, 50000, 1500, 100000, 0.01, False)]:
    if relative:
        K = kc + kb; pi = bound * nc / (bound * nc + nb)
        pf = float(stats.binom.sf(kc - 1, K, pi)); pp = float(stats.binom.cdf(kc, K, pi))
    else:
        f1 = float(stats.binom.sf(kc - 1, nc, bound)); p1 = float(stats.binom.cdf(kc, nc, bound))
        K = kc + kb
        pi1 = nc / (nc + nb); pim = 1.2 * nc / (1.2 * nc + nb)
        f2 = float(stats.binom.sf(kc - 1, K, pi1)) if K > 0 else 1.0
        p2 = float(stats.binom.cdf(kc, K, pim)) if K > 0 else 1.0
        pf = max(f1, f2); pp = min(1, 2 * min(p1, p2))
    r.append({"kc": kc, "nc": nc, "kb": kb, "nb": nb, "bound": bound, "relative": relative, "p_fail": pf, "p_pass": pp})
out["rate_guards"] = r

json.dump(out, __import__("sys").stdout, indent=1)
print()
