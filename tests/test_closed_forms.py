"""The engine against closed forms computed from the scenario's inputs, not from `ModelArrays`.

- Revenue with a decaying drift: with zero shocks log revenue follows the documented
  log-Euler recursion exactly (docs/model.md section 3), i.e. ln R0 plus the drift
  integrated step by step; with monthly steps that sum is within its O(dt) bound of the
  continuous integral of g. Through the engine (its own random numbers), P(R_T < K) at
  three levels and three horizons matches the lognormal law with that integrated drift.
- Log sentiment (an Ornstein-Uhlenbeck process, section 4): replaying the kernel on shocks
  drawn here, its variance at 1 and 6 years is sigma^2 (1 - e^{-2 kappa t}) / (2 kappa)
  (transient and nearly stationary), and its covariance with log revenue is what the
  correlation rho implies.
- Regime occupancy through the engine against the powers of a transition matrix built
  here from the yearly `enter_prob` / `exit_prob` (same intensity per step).

Each Monte Carlo check is at Z standard errors and uses enough paths that a 10% error in
a volatility moves the statistic by more than Z + 2 standard errors (asserted in the tests,
so the check cannot quietly lose its power); a shift of Z + 2 standard errors is caught
with probability above 97%.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from scipy.stats import norm

from sim.engine import kernel as K
from sim.engine import new_path_buffers, simulate
from sim.engine.model import compile_scenario
from sim.engine.stats import bin_edges
from sim.scenario.loader import scenario_from_dict

Z = 4.5  # tolerance in standard errors

R0, G0, GINF, HALF, VOL = 20.0, 0.9, 0.1, 1.5, 0.35
KAPPA, SIGMA_S, RHO = 0.6, 0.3, 0.5

BASE = {
    "name": "closed-forms",
    "time": {"start_year": 2026, "steps_per_year": 4, "horizon_years": 4},
    "revenue": {"initial": R0, "growth0": G0, "growth_inf": GINF, "half_life": HALF, "volatility": VOL},
    "regime": {"enabled": False},
    "sentiment": {"mean_reversion": KAPPA, "volatility": SIGMA_S, "rho": RHO},
    "lab": {"entity": "Lab"},
    # a lab with a large cash pile and no obligations: nothing defaults, the processes run free
    "entity": [{"name": "Lab", "kind": "lab", "cash": 1e5, "book_equity": 1e5},
               {"name": "Other", "cash": 1.0, "book_equity": 1.0}],
}


def _scenario(**changes):
    d = copy.deepcopy(BASE)
    for section, values in changes.items():
        d[section].update(values)
    return scenario_from_dict(d)


def growth(t_years: float) -> float:
    """The documented boom drift at time t (years): growth_inf + (growth0 - growth_inf) 2^(-t / half_life)."""
    return GINF + (G0 - GINF) * 2.0 ** (-t_years / HALF)


def integrated_drift(n_steps: int, spy: int) -> float:
    """The drift of log revenue accumulated over the first n_steps steps of the log-Euler
    scheme of docs/model.md: sum over steps of (g at the step's start - vol^2 / 2) * dt."""
    dt = 1.0 / spy
    return sum((growth(k * dt) - 0.5 * VOL * VOL) * dt for k in range(n_steps))


def continuous_integral(T: float) -> float:
    """int_0^T g(s) ds - vol^2 T / 2, in closed form."""
    lam = math.log(2.0) / HALF
    return GINF * T + (G0 - GINF) * (1.0 - math.exp(-lam * T)) / lam - 0.5 * VOL * VOL * T


def _replay(M, shocks_per_path):
    """Run the kernel's `simulate_path` on each path's hand-made shocks; return the final
    state's (log revenue, log sentiment) and the recorded revenue of every step."""
    st, ws, rec, shocks, tranche_u = new_path_buffers(M)
    out = np.empty((len(shocks_per_path), 2))
    revenue = np.empty((len(shocks_per_path), M.n_steps))
    for k, sh in enumerate(shocks_per_path):
        shocks[:] = sh
        K.simulate_path(M, shocks, tranche_u, st, ws, rec)
        out[k] = st.sc[0], st.sc[1]
        revenue[k] = rec.revenue
    return out, revenue


# ---------------------------------------------------------------------------- revenue
@pytest.mark.parametrize("spy", [1, 4, 12])
def test_zero_shock_revenue_is_the_integrated_drift(spy):
    sc = _scenario(time={"steps_per_year": spy})
    M = compile_scenario(sc)
    shocks = np.zeros((M.n_steps, 8))
    shocks[:, 2] = 0.5  # uniforms (regime off anyway)
    _, revenue = _replay(M, [shocks])
    for t in range(M.n_steps):  # revenue recorded at the end of step t
        expect = math.log(R0) + integrated_drift(t + 1, spy)
        assert math.log(revenue[0, t]) == pytest.approx(expect, rel=1e-12, abs=1e-12), (spy, t)
    # with monthly steps the scheme's drift is within its O(dt) bound of the continuous
    # integral: the left sum overestimates a decreasing g by at most (g(0) - g(T)) dt
    if spy == 12:
        T = M.n_steps / spy
        gap = integrated_drift(M.n_steps, spy) - continuous_integral(T)
        assert 0.0 <= gap <= (growth(0.0) - growth(T)) / spy + 1e-12


@pytest.fixture(scope="module")
def revenue_run():
    M = compile_scenario(_scenario())
    n = 40_000
    stats, _, _ = simulate(M, n, seed=101, chunk_size=5_000, threads=1)
    return M, stats, n


def test_revenue_distribution_with_decaying_drift(revenue_run):
    """P(R_T < K) = N((ln(K / R0) - D(T)) / (vol sqrt T)), D(T) the integrated drift."""
    M, stats, n = revenue_run
    edges = bin_edges(K.REV_LO, K.REV_HI, K.REV_BINS)
    for years in (1, 2, 4):
        steps = years * 4
        hist = stats.rev_hist[steps - 1]
        drift = integrated_drift(steps, 4)
        sd = VOL * math.sqrt(years)
        for q in (0.1, 0.5, 0.9):
            k = int(np.searchsorted(edges, R0 * math.exp(drift + sd * norm.ppf(q))))
            level = edges[k]
            z = (math.log(level / R0) - drift) / sd
            exact = norm.cdf(z)
            est = hist[: k + 1].sum() / n  # bins 0..k hold values below edges[k]
            se = math.sqrt(exact * (1 - exact) / n)
            assert abs(est - exact) < Z * se, (years, q, est, exact, se)
            if q == 0.1:  # power: a 10% error in the volatility would be caught here (at the
                # 0.9 level the vol^2 / 2 in the drift partly offsets the wider spread)
                for f in (0.9, 1.1):
                    alt = norm.cdf((math.log(level / R0) - (drift + 0.5 * VOL**2 * years * (1 - f * f)))
                                   / (f * sd))
                    assert abs(alt - exact) > (Z + 2) * se, (years, q, f)
            # and so would a drift evaluated one step late (g at the step's end, not start)
            late = integrated_drift(steps + 1, 4) - (growth(0.0) - 0.5 * VOL**2) * 0.25
            assert abs(norm.cdf((math.log(level / R0) - late) / sd) - exact) > (Z + 2) * se or q == 0.5


# ---------------------------------------------------------------------------- sentiment
@pytest.fixture(scope="module")
def sentiment_replay():
    """Log sentiment and log revenue at 1 and 6 years, the kernel replayed on shocks drawn
    here with numpy (independent of the engine's own random streams)."""
    rng = np.random.default_rng(20261130)
    n = 5_000
    out = {}
    for years in (1, 6):
        M = compile_scenario(_scenario(time={"horizon_years": years}))
        paths = []
        for _ in range(n):
            sh = np.zeros((M.n_steps, 8))
            sh[:, 0] = rng.standard_normal(M.n_steps)  # revenue
            sh[:, 1] = rng.standard_normal(M.n_steps)  # sentiment (own part)
            sh[:, 2] = 0.5
            paths.append(sh)
        final, _ = _replay(M, paths)
        out[years] = final
    return out, n


@pytest.mark.parametrize("years", [1, 6])
def test_log_sentiment_variance_is_the_ou_variance(sentiment_replay, years):
    finals, n = sentiment_replay
    x = finals[years][:, 1]
    var_exact = SIGMA_S**2 * (1 - math.exp(-2 * KAPPA * years)) / (2 * KAPPA)
    # the sample variance of n normals has standard error var sqrt(2 / (n - 1))
    se = var_exact * math.sqrt(2.0 / (n - 1))
    assert abs(np.var(x, ddof=1) - var_exact) < Z * se, (years, np.var(x, ddof=1), var_exact)
    assert abs(np.mean(x)) < Z * math.sqrt(var_exact / n)  # mean 0
    # power: a volatility 10% off changes the variance by 19-21%, far outside the band
    assert 0.19 * var_exact > (Z + 2) * se


def test_log_sentiment_covariance_with_revenue(sentiment_replay):
    """The step's sentiment shock is rho z_R + sqrt(1 - rho^2) z': Cov(x_T, ln R_T) is the
    sum over steps of rho * vol sqrt(dt) * (OU step sd) * e^{-kappa (T - t_k - dt)}."""
    finals, n = sentiment_replay
    years, dt = 6, 0.25
    x, lr = finals[years][:, 1], finals[years][:, 0]
    step_sd = SIGMA_S * math.sqrt((1 - math.exp(-2 * KAPPA * dt)) / (2 * KAPPA))
    steps = years * 4
    cov_exact = sum(RHO * VOL * math.sqrt(dt) * step_sd * math.exp(-KAPPA * dt * (steps - 1 - k))
                    for k in range(steps))
    var_x = SIGMA_S**2 * (1 - math.exp(-2 * KAPPA * years)) / (2 * KAPPA)
    var_r = VOL**2 * years
    # standard error of a sample covariance of bivariate normals: sqrt((var_x var_r + cov^2) / n)
    se = math.sqrt((var_x * var_r + cov_exact**2) / n)
    assert abs(np.cov(x, lr)[0, 1] - cov_exact) < Z * se
    assert abs(np.var(lr, ddof=1) - var_r) < Z * var_r * math.sqrt(2.0 / (n - 1))


# ---------------------------------------------------------------------------- regime
def test_regime_occupancy_against_matrix_from_yearly_inputs():
    """P(winter at step t) from the 2x2 chain whose per-step probabilities have the yearly
    inputs' intensity: staying in a state for a year (spy steps) has probability
    1 - p_year. The regime moves at the start of each step, so step t is after t + 1 moves."""
    enter, leave, spy = 0.75, 0.85, 4
    sc = _scenario(regime={"enabled": True, "enter_prob": enter, "exit_prob": leave})
    M = compile_scenario(sc)
    n = 20_000
    stats, _, _ = simulate(M, n, seed=5, chunk_size=5_000, threads=1)
    stay_boom = (1.0 - enter) ** (1.0 / spy)
    stay_winter = (1.0 - leave) ** (1.0 / spy)
    P = np.array([[stay_boom, 1 - stay_boom], [1 - stay_winter, stay_winter]])
    # a chain converted as p_year / spy instead (a plausible slip) must be distinguishable
    P_slip = np.array([[1 - enter / spy, enter / spy], [leave / spy, 1 - leave / spy]])
    distinguished = 0
    for t in range(M.n_steps):
        exact = np.linalg.matrix_power(P, t + 1)[0, 1]
        est = stats.winter[t] / n
        se = math.sqrt(exact * (1 - exact) / n)
        assert abs(est - exact) < Z * se, (t, est, exact)
        if abs(np.linalg.matrix_power(P_slip, t + 1)[0, 1] - exact) > (Z + 2) * se:
            distinguished += 1
    assert distinguished >= M.n_steps // 4
    # long-run occupancy approaches the stationary share of the per-step chain
    pi = (1 - stay_boom) / ((1 - stay_boom) + (1 - stay_winter))
    assert np.linalg.matrix_power(P, 400)[0, 1] == pytest.approx(pi, rel=1e-9)
