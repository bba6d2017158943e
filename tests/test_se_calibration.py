"""The reported Monte Carlo errors are honest: checked against the spread over seeds.

For k independent seeds, (k - 1) s^2 / sigma^2 is chi-square with k - 1 degrees of freedom
(s the seed-to-seed standard deviation of an estimate, sigma its true standard error,
estimated by the root mean square of the reported errors). The bounds below are the 0.1%
and 99.9% points (a correct error fails 1 time in 500 per statistic); with 40 seeds they
are about (0.67, 1.36), so an error understated or overstated 2x passes with probability
about 0.2% (1.5x understated: about 22%). Small runs (400 paths each) keep this fast.

The 95% Wilson interval is checked against its definition: its ends are the two
probabilities p at which the observed share is exactly z standard errors sqrt(p (1-p) / n)
away from p.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from scipy.stats import chi2, norm

from sim.engine.api import run
from sim.engine.stats import Z95, proportion_se, wilson_interval
from sim.scenario.loader import scenario_from_dict

from .conftest import SMALL

K_SEEDS = 40
PATHS = 400


@pytest.fixture(scope="module")
def seed_runs():
    sc = scenario_from_dict(copy.deepcopy(SMALL))
    return [run(sc, paths=PATHS, seed=1000 + k, chunk_size=PATHS, threads=1) for k in range(K_SEEDS)]


def _chi2_band(k):
    return tuple(math.sqrt(chi2.ppf(q, k - 1) / (k - 1)) for q in (0.001, 0.999))


@pytest.mark.parametrize("stat", ["lab_pd", "builder_pd_2028", "p2", "loss_mean"])
def test_reported_errors_match_seed_to_seed_spread(seed_runs, stat):
    get = {
        "lab_pd": lambda r: (r.pd[0, -1], r.pd_se[0, -1]),
        "builder_pd_2028": lambda r: (r.pd[1, 2], r.pd_se[1, 2]),
        "p2": lambda r: (r.p2, r.p2_se),
        "loss_mean": lambda r: (r.loss_mean, r.loss_mean_se),
    }[stat]
    values, ses = np.array([get(r) for r in seed_runs]).T
    assert np.all(ses > 0) and np.std(values) > 0  # the statistic is not degenerate here
    ratio = np.std(values, ddof=1) / math.sqrt(np.mean(ses**2))
    lo, hi = _chi2_band(K_SEEDS)
    assert chi2.cdf((hi / 2) ** 2 * (K_SEEDS - 1), K_SEEDS - 1) < 0.005  # 2x understated: caught
    assert lo < ratio < hi, (stat, ratio, lo, hi)


@pytest.mark.parametrize("count,n", [(0, 50), (1, 50), (17, 50), (49, 50), (50, 50), (3, 10_000), (4_000, 10_000)])
def test_wilson_interval_ends_solve_its_definition(count, n):
    lo, hi = (float(x) for x in wilson_interval(count, n))
    share = count / n
    assert Z95 == pytest.approx(norm.ppf(0.975), rel=1e-12)
    for p in (lo, hi):
        if 0.0 < p < 1.0:
            assert (share - p) ** 2 == pytest.approx(Z95**2 * p * (1 - p) / n, rel=1e-9, abs=1e-15)
    assert lo - 1e-15 <= share <= hi + 1e-15
    if count == 0:
        assert lo == pytest.approx(0.0, abs=1e-15)  # (centre - half cancels to rounding)
    if count == n:
        assert hi == pytest.approx(1.0, abs=1e-15)


def test_proportion_se_is_the_binomial_error():
    assert float(proportion_se(30, 120)) == pytest.approx(math.sqrt(0.25 * 0.75 / 120), rel=1e-14)
    assert float(proportion_se(0, 10)) == 0.0
