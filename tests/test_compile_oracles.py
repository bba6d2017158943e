"""Oracles for the scenario-to-arrays layer (`sim.engine.model.compile_scenario`).

The pure-Python twin reads the same `ModelArrays` as the kernel, so a wrong conversion in
`compile_scenario` (units, per-step rates, schedules, recoveries, the refinancing logit, the
sentiment step) is trusted by both. These tests state, field family by field family, what
each scenario field *means* (docs/model.md, docs/scenarios.md, the field docs in
sim/scenario/schema.py) and check the compiled arrays against that meaning, computed here
from first principles. Nothing here calls or copies the helpers of sim/engine/model.py.

One row per field family: each row builds a small scenario, compiles it and checks the
arrays that family produces. The checks are written as properties of the meaning (the
probability of no transition over a year, the one-step variance of an Ornstein-Uhlenbeck
process, a schedule's total and the dates it falls on, ...), not as the formula the code
happens to use.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from sim.engine.model import compile_scenario
from sim.scenario.loader import scenario_from_dict

# A minimal valid scenario; each row below changes what it tests.
BASE = {
    "name": "oracle",
    "time": {"start_year": 2026, "steps_per_year": 4, "horizon_years": 4},
    "revenue": {"initial": 12.0, "growth0": 0.6, "growth_inf": 0.1, "half_life": 1.5, "volatility": 0.3},
    "regime": {"enabled": True, "enter_prob": 0.2, "exit_prob": 0.5},
    "sentiment": {"mean_reversion": 0.8, "volatility": 0.3, "rho": 0.4},
    "lab": {"entity": "Lab"},
    "entity": [
        {"name": "Lab", "kind": "lab", "cash": 5.0},
        {"name": "B", "cash": 3.0, "debt": 40.0, "market_equity": 50.0, "book_equity": 10.0},
    ],
}


def _compile(changes: dict | None = None, entity: dict | None = None, **arrays):
    d = copy.deepcopy(BASE)
    for section, values in (changes or {}).items():
        d.setdefault(section, {}).update(values)
    if entity:
        d["entity"][1].update(entity)
    d.update(copy.deepcopy(arrays))
    return compile_scenario(scenario_from_dict(d)), d


def _steps_of_year(year, start=2026, spy=4):
    """The step indices of a calendar year: the grid starts on 1 January of start_year and
    each step is 1/spy year long, so year Y covers steps (Y - start) spy ... + spy - 1."""
    first = (year - start) * spy
    return list(range(first, first + spy))


# ------------------------------------------------------------------ per-step probabilities
def _row_regime_probabilities():
    """enter_prob / exit_prob are probabilities per *year*. Per step they must be the
    probability of the same constant intensity: staying put for the spy steps of a year
    has probability exactly 1 - p_year (so a chain that never comes back, e.g. boom with
    exit impossible, leaves within a year with probability p_year)."""
    for spy in (1, 4, 12):
        for p_in, p_out in ((0.2, 0.5), (0.0, 1.0), (0.05, 0.999)):
            M, _ = _compile({"time": {"steps_per_year": spy},
                             "regime": {"enter_prob": p_in, "exit_prob": p_out}})
            assert (1.0 - M.p_enter) ** spy == pytest.approx(1.0 - p_in, rel=1e-12, abs=1e-15)
            assert (1.0 - M.p_exit) ** spy == pytest.approx(1.0 - p_out, rel=1e-12, abs=1e-15)
            # a per-step probability is never larger than the yearly one (spy >= 1)
            assert 0.0 <= M.p_enter <= p_in + 1e-15 and 0.0 <= M.p_exit <= p_out + 1e-15
    # intensity check without the spy-th power: with p_year = 1 - e^{-lambda}, the step
    # probability is 1 - e^{-lambda / spy}
    lam = 0.7
    M, _ = _compile({"regime": {"enter_prob": 1 - math.exp(-lam)}})
    assert M.p_enter == pytest.approx(1 - math.exp(-lam / 4), rel=1e-12)
    # a certain yearly transition is certain per step
    M, _ = _compile({"regime": {"exit_prob": 1.0}})
    assert M.p_exit == 1.0
    return "regime enter/exit"


# ------------------------------------------------------------------ the sentiment step
def _row_sentiment_step():
    """log sentiment is an Ornstein-Uhlenbeck process dx = -kappa x dt + sigma dW.
    Its exact one-step transition over dt: mean x e^{-kappa dt}, variance
    sigma^2 (1 - e^{-2 kappa dt}) / (2 kappa) (sigma^2 dt when kappa = 0, Brownian motion).
    The step's shock has standard deviation sent_sd; the mean is scaled by sent_decay."""
    for spy in (1, 4, 12):
        dt = 1.0 / spy
        for kappa, sigma in ((0.8, 0.3), (2.5, 0.5), (0.05, 0.2)):
            M, _ = _compile({"time": {"steps_per_year": spy},
                             "sentiment": {"mean_reversion": kappa, "volatility": sigma}})
            var = sigma**2 * (1 - math.exp(-2 * kappa * dt)) / (2 * kappa)
            assert M.sent_sd**2 == pytest.approx(var, rel=1e-12)
            assert M.sent_decay == pytest.approx(math.exp(-kappa * dt), rel=1e-14)
            # for a small step the variance is close to sigma^2 dt (the continuous limit)
            assert M.sent_sd**2 == pytest.approx(sigma**2 * dt, rel=kappa * dt * 1.01 + 1e-12)
        M, _ = _compile({"time": {"steps_per_year": spy},
                         "sentiment": {"mean_reversion": 0.0, "volatility": 0.4}})
        assert M.sent_decay == 1.0
        assert M.sent_sd == pytest.approx(0.4 * math.sqrt(dt), rel=1e-14)
    M, _ = _compile({"sentiment": {"rho": -0.35}})
    assert M.rho == -0.35
    return "sentiment OU step"


# ------------------------------------------------------------------ the refinancing logit
def _row_refinancing_logit():
    """refi_prob is the roll-over probability at sentiment 1 (log sentiment 0), zero
    leverage, boom: the logistic of the compiled intercept must give it back, and the
    slopes are logit units per unit of log sentiment / leverage (passed through as given)."""
    for p in (0.05, 0.5, 0.8, 0.97):
        M, _ = _compile({"refinancing": {"sentiment_slope": 1.7, "leverage_slope": 0.6, "winter_shift": -1.2}},
                        entity={"refi_prob": p})
        assert 1.0 / (1.0 + math.exp(-M.refi_logit[1])) == pytest.approx(p, rel=1e-12)
        assert (M.refi_sent_slope, M.refi_lev_slope, M.refi_winter_shift) == (1.7, 0.6, -1.2)
    # the two ends: (almost) never and (almost) always
    M, _ = _compile(entity={"refi_prob": 0.0})
    assert 1.0 / (1.0 + math.exp(-M.refi_logit[1])) < 1e-9
    M, _ = _compile(entity={"refi_prob": 1.0})
    assert 1.0 / (1.0 + math.exp(-M.refi_logit[1])) > 1 - 1e-9
    return "refinancing logit"


# ------------------------------------------------------------------ recoveries and default costs
def _row_recoveries_and_default_costs():
    """`recovery` is the share of outside debt creditors *get back* (not the loss given
    default); alpha and beta are the shares of outside assets / network receivables
    realised in default (1 = no cost). All are shares, passed as shares."""
    M, _ = _compile(entity={"recovery": 0.15, "alpha": 0.7, "beta": 0.85})
    assert M.recovery[1] == 0.15  # a recovery of 15%, i.e. a loss of 85% of the debt
    assert (M.alpha[1], M.beta[1]) == (0.7, 0.85)
    # defaults of the schema: 40% recovery, no default costs
    assert (M.recovery[0], M.alpha[0], M.beta[0]) == (0.4, 1.0, 1.0)
    return "recovery, alpha, beta"


# ------------------------------------------------------------------ revenue and units
def _row_revenue_and_units():
    """Money in $B and rates per year stay per year (the kernel multiplies by dt); the
    revenue level enters as its log; growth and volatility are per year and per sqrt(year)."""
    M, _ = _compile({"time": {"steps_per_year": 12}})
    assert M.dt == pytest.approx(1 / 12, rel=1e-15) and M.steps_per_year == 12
    assert M.n_steps == 12 * 4
    assert math.exp(M.log_r0) == pytest.approx(12.0, rel=1e-14)
    assert (M.growth0, M.growth_inf, M.half_life, M.volatility) == (0.6, 0.1, 1.5, 0.3)
    M, _ = _compile(entity={"rate": 0.07, "ocf": 30.0, "ocf_growth": 0.02, "ocf_volatility": 0.2,
                            "ocf_loading": 0.3, "cash": 3.5, "book_equity": 11.0})
    assert M.rate[1] == 0.07  # per year
    assert M.ocf0[1] == 30.0  # $B per year
    assert (M.ocf_growth[1], M.ocf_vol[1], M.ocf_loading[1]) == (0.02, 0.2, 0.3)
    assert M.ocf_growth_winter[1] == 0.02  # not set: the boom drift
    M, _ = _compile(entity={"ocf_growth_winter": -0.1})
    assert M.ocf_growth_winter[1] == -0.1
    assert (M.cash0[1], M.debt0[1], M.market_equity[1], M.book0[1]) == (3.0, 40.0, 50.0, 10.0)
    assert M.lab == 0
    return "units"


# ------------------------------------------------------------------ lab costs and funding
def _row_lab_costs():
    """opex share glides linearly from opex_share_start (at time 0) to opex_share_end (at
    opex_years) and stays there; the share of a step is the one at the step's start."""
    M, _ = _compile({"lab": {"opex_share_start": 0.4, "opex_share_end": 0.1, "opex_years": 2.0,
                             "valuation_multiple": 30.0, "valuation_multiple_winter": 8.0,
                             "raise_share": 0.12, "raise_share_winter": 0.02}})
    for t in range(M.n_steps):
        years = t / 4
        expect = 0.4 - 0.3 * years / 2.0 if years < 2.0 else 0.1
        assert M.opex_share[t] == pytest.approx(expect, rel=1e-12), t
    assert (M.multiple, M.multiple_winter, M.raise_share, M.raise_share_winter) == (30.0, 8.0, 0.12, 0.02)
    return "lab opex glide, multiples, raise shares"


# ------------------------------------------------------------------ outside debt schedule
def _row_debt_schedule():
    """`maturities` are bullet repayments by calendar year, part of `debt`, due on the year's
    first step; the rest amortises evenly over `amortisation_years`, i.e. per step
    (debt - sum of maturities) / amortisation_years / steps_per_year."""
    M, _ = _compile(entity={"debt": 50.0, "maturities": {"2027": 10.0, "2029": 15.0}, "amortisation_years": 5.0})
    assert M.bullet[1].sum() == pytest.approx(25.0, rel=1e-15)
    assert M.bullet_total[1] == pytest.approx(25.0, rel=1e-15)
    assert M.bullet[1, _steps_of_year(2027)[0]] == 10.0
    assert M.bullet[1, _steps_of_year(2029)[0]] == 15.0
    assert np.count_nonzero(M.bullet[1]) == 2
    assert M.amort[1] == pytest.approx((50.0 - 25.0) / 5.0 / 4, rel=1e-14)
    # monthly steps: the same debt amortises 12 times a year by a twelfth of the yearly amount
    M, _ = _compile({"time": {"steps_per_year": 12}}, entity={"debt": 60.0, "amortisation_years": 10.0})
    assert M.amort[1] * 12 == pytest.approx(6.0, rel=1e-14)
    assert M.bullet[1].sum() == 0.0
    return "debt maturities and amortisation"


# ------------------------------------------------------------------ contracts
def _row_contract_schedule():
    """A schedule {year: amount} is due evenly over that year's steps: totals conserved,
    nothing due outside the years named. The value still due from step t on is the sum of
    what is due at t and after."""
    sched = {"2026": 8.0, "2028": 20.0, "2029": 4.0}
    for spy in (1, 4, 12):
        M, _ = _compile({"time": {"steps_per_year": spy}}, contract=[
            {"name": "c", "payer": "Lab", "payee": "B", "schedule": sched, "cost_ratio": 0.55,
             "capex_share": 0.25, "relet_share": 0.4, "relet_delay": 1.5, "relet_discount": 0.2}])
        amounts = M.c_amount[0]
        assert amounts.sum() == pytest.approx(32.0, rel=1e-14)
        for year in range(2026, 2030):
            steps = _steps_of_year(year, spy=spy)
            expect = float(sched.get(str(year), 0.0))
            assert np.allclose(amounts[steps], expect / spy, rtol=1e-14, atol=0), (spy, year)
        for t in range(M.n_steps + 1):
            assert M.c_remaining[0, t] == pytest.approx(amounts[t:].sum(), rel=1e-12, abs=1e-12)
        assert M.c_remaining[0, M.n_steps] == 0.0
        assert (M.c_cost[0], M.c_capex[0], M.c_relet_share[0], M.c_relet_discount[0]) == (0.55, 0.25, 0.4, 0.2)
        assert M.c_relet_delay[0] == round(1.5 * spy)  # years -> steps
        assert (M.c_payer[0], M.c_payee[0]) == (0, 1)
    return "contract schedule"


def _row_contract_total():
    """total/start/years: the total is paid over [start, start + years), at a flat rate
    after a linear ramp of ramp_years (the rate rises linearly from 0 to the flat rate).
    With flat rate r: total = r (years - ramp / 2). So, per step of length dt inside the
    flat part, r dt is due; nothing before start or after start + years."""
    total, start, years, ramp = 60.0, 2026.5, 2.5, 1.0
    M, _ = _compile(contract=[{"name": "c", "payer": "Lab", "payee": "B", "total": total, "start": start,
                               "years": years, "ramp_years": ramp}])
    a = M.c_amount[0]
    dt = 0.25
    rate = total / (years - ramp / 2)  # $B per year on the flat part
    assert a.sum() == pytest.approx(total, rel=1e-12)
    first, end = int((start - 2026) / dt), int((start + years - 2026) / dt)  # steps 2 .. 11
    assert np.all(a[:first] == 0) and np.all(a[end:] == 0)
    # the ramp: cumulative due by time s into the ramp is rate s^2 / (2 ramp)
    for k in range(first, first + int(ramp / dt)):
        s0, s1 = (k - first) * dt, (k - first + 1) * dt
        assert a[k] == pytest.approx(rate * (s1**2 - s0**2) / (2 * ramp), rel=1e-12), k
    for k in range(first + int(ramp / dt), end):
        assert a[k] == pytest.approx(rate * dt, rel=1e-12), k
    # no ramp: evenly spread
    M, _ = _compile(contract=[{"name": "c", "payer": "Lab", "payee": "B", "total": 30.0, "start": 2027.0,
                               "years": 2.0}])
    a = M.c_amount[0]
    assert np.allclose(a[4:12], 30.0 / 8, rtol=1e-14) and a[:4].sum() == 0 and a[12:].sum() == 0
    return "contract total/start/years/ramp"


# ------------------------------------------------------------------ tranches, stakes, loans
def _row_tranches_stakes_loans():
    """Dates are decimal years: the step containing a date is floor((date - start) spy);
    a tranche without `expires` can pay until the last step; milestones refer to contracts
    by name; stakes are holder x issuer shares; loan maturity is the step containing it."""
    M, _ = _compile(
        contract=[{"name": "c0", "payer": "B", "payee": "Lab", "schedule": {"2026": 1.0}},
                  {"name": "c1", "payer": "Lab", "payee": "B", "schedule": {"2027": 2.0}}],
        investment=[{"name": "i", "investor": "B", "investee": "Lab", "tranche": [
            {"date": 2026.6, "amount": 3.0, "probability": 0.4, "expires": 2027.3},
            {"date": 2028.0, "amount": 5.0, "milestone_contract": "c1", "milestone_amount": 1.5}]}],
        stake=[{"holder": "B", "issuer": "Lab", "share": 0.15}],
        loan=[{"name": "l", "lender": "B", "borrower": "Lab", "amount": 7.0, "rate": 0.08, "maturity": 2028.8}])
    assert list(M.t_first) == [2, 8]  # 2026.6 lies in step 2 ([2026.5, 2026.75)); 2028.0 starts step 8
    assert list(M.t_last) == [5, M.n_steps - 1]  # 2027.3 lies in step 5
    assert list(M.t_amount) == [3.0, 5.0] and list(M.t_prob) == [0.4, 1.0]
    assert list(M.t_contract) == [-1, 1] and M.t_milestone[1] == 1.5
    assert (M.t_investor[0], M.t_investee[0]) == (1, 0)
    assert M.share0[1, 0] == 0.15 and M.share0.sum() == 0.15  # holder B, issuer Lab
    assert (M.l_lender[0], M.l_borrower[0], M.l_amount[0], M.l_rate[0]) == (1, 0, 7.0, 0.08)
    assert M.l_maturity[0] == 11  # 2028.8 lies in step 11 ([2028.75, 2029))
    return "tranches, stakes, loans"


ROWS = [
    _row_regime_probabilities,
    _row_sentiment_step,
    _row_refinancing_logit,
    _row_recoveries_and_default_costs,
    _row_revenue_and_units,
    _row_lab_costs,
    _row_debt_schedule,
    _row_contract_schedule,
    _row_contract_total,
    _row_tranches_stakes_loans,
]


@pytest.mark.parametrize("row", ROWS, ids=[r.__name__[5:] for r in ROWS])
def test_compiled_arrays_mean_what_the_scenario_says(row):
    assert row()
