"""Small deterministic networks worked out on paper, and conservation of cash from outside.

Every volatility is 0, the regime is off and nothing rolls over (refi_prob 0 or 1), so each
path is the same and every number below can be computed by hand (the arithmetic is in the
comments, docs/model.md sections 6-10). Each scenario is run through the engine (`run`:
the reported results) and replayed with `simulate_path` (the state at the end), and each
default, its kind, its loss to outside creditors, the backlog lost and the stakes written
off are asserted to rounding (rel 1e-12).

Conservation from outside: on stochastic paths with no defaults, the change in the total
cash of the system each step equals what came in from outside (the lab's revenue net of
opex, outside cash flows, re-let income, equity raised) less what went out (delivery
costs, interest and principal paid to outside creditors), each computed here from the
scenario and the recorded revenue, need and gap, not from the kernel's diagnostic.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from sim.engine import kernel as K
from sim.engine import new_path_buffers
from sim.engine.api import run
from sim.engine.model import compile_scenario
from sim.scenario.loader import scenario_from_dict

REL = 1e-12
NEVER, ALWAYS = 0.0, 1.0  # refi_prob: maturing principal never / always rolls over

QUIET = {  # no randomness anywhere
    "time": {"start_year": 2026, "steps_per_year": 1, "horizon_years": 3},
    "revenue": {"initial": 4.0, "growth0": 0.0, "growth_inf": 0.0, "volatility": 0.0},
    "regime": {"enabled": False},
    "sentiment": {"volatility": 0.0},
    "lab": {"entity": "Lab", "opex_share_start": 0.0, "opex_share_end": 0.0, "raise_share": 0.0,
            "raise_share_winter": 0.0, "valuation_multiple": 25.0},
}
QUIET_ENTITY = {"ocf_volatility": 0.0, "ocf_growth": 0.0, "refi_prob": NEVER}


def _scenario(name, entities, **arrays):
    d = copy.deepcopy(QUIET)
    d["name"] = name
    d["entity"] = [{**QUIET_ENTITY, **e} for e in entities]
    d.update(copy.deepcopy(arrays))
    return scenario_from_dict(d)


def _replay(sc):
    """The end-of-horizon state of one path (all paths are the same here)."""
    M = compile_scenario(sc)
    st, ws, rec, shocks, tranche_u = new_path_buffers(M)
    shocks[:, 2] = 0.5  # the regime uniform (regime off anyway)
    shocks[:, 5::2] = 0.5  # refinancing uniforms: 0.5 is above refi_prob 0 and below 1
    # normals stay 0 (every volatility is 0 anyway)
    K.simulate_path(M, shocks, tranche_u, st, ws, rec)
    return st, rec


# --------------------------------------------------------------------------------------
# 1. The lab cannot pay its builder; the builder's write-off makes it insolvent.
# --------------------------------------------------------------------------------------
# Yearly steps (dt = 1), 2026-2028. Lab: cash 2, revenue 4/yr (no opex, no raising), outside
# debt 5 at 4% amortising over 5 years. Builder: cash 1, outside cash flow 3/yr, debt 20 at
# 5% over 10 years, recovery 50%. Contract Lab -> Builder: 10 a year 2026-2028, delivery
# cost 50%, capex share 30%, re-let 50% at a 20% discount after 1 year.
#
# Step 0 (2026):
#   Lab: outside assets e = 2 + 4 = 6; outside claims el = interest 0.04*5 + principal 5/5 = 1.2;
#        owes the builder 10: p-bar = 11.2 > 6 -> liquidity default, pays p = 6 (alpha = 1),
#        a fraction f = 6 / 11.2 of every claim.
#        need = 11.2 - 6 = 5.2, nothing raised -> gap 5.2.
#        loss to outside creditors: unpaid claims 1.2 (1 - f) = 0.55714... plus
#        (1 - 0.4) * remaining debt 4 = 2.4 -> 2.957142857...; exposure 1.2 + 4 = 5.2.
#        fundamental: no network counterparty owes it anything.
#   Builder: net outside flow 3 - 0.5*10 = -2 -> el = interest 1 + principal 2 + 2 = 5, e = 1;
#        receives 10 f = 5.357142857..., pays 5 in full: cash 1 + 5.3571 - 5 = 1.357142857...,
#        debt 18. Lab's default ends the contract: backlog 20 (2027, 2028) lost;
#        impairment 0.3 * 20 * (1 - 0.5 * (1 - 0.2)) = 3.6.
#        book equity 1 + (1.3571 - 1) - (18 - 20) - 3.6 = -0.242857... < 0 -> solvency default.
#        contagious: had the lab paid in full its cash would be 1 + 10 - 5 = 6 and its book
#        equity 1 + 5 + 2 = 8 >= 0 without the write-off.
#        loss: (1 - 0.5) * (debt 18 - cash 1.357142857) = 8.3214285714...; exposure 18.
LAB = {"name": "Lab", "kind": "lab", "cash": 2.0, "debt": 5.0, "rate": 0.04, "amortisation_years": 5.0,
       "recovery": 0.4, "solvency_default": False}
BUILDER = {"name": "Builder", "cash": 1.0, "ocf": 3.0, "debt": 20.0, "rate": 0.05, "amortisation_years": 10.0,
           "recovery": 0.5, "book_equity": 1.0}
BUILD = {"name": "Build", "payer": "Lab", "payee": "Builder", "schedule": {"2026": 10.0, "2027": 10.0, "2028": 10.0},
         "cost_ratio": 0.5, "capex_share": 0.3, "relet_share": 0.5, "relet_discount": 0.2, "relet_delay": 1.0}

F1 = 6.0 / 11.2
LAB_LOSS = 1.2 * (1 - F1) + 0.6 * 4.0
BUILDER_CASH = 1.0 + 10.0 * F1 - 5.0
BUILDER_LOSS = 0.5 * (18.0 - BUILDER_CASH)


@pytest.fixture(scope="module")
def builder_case():
    sc = _scenario("builder", [LAB, BUILDER], contract=[BUILD])
    return sc, run(sc, paths=64, seed=1, chunk_size=32, threads=1)


def test_builder_case_defaults_kinds_losses(builder_case):
    _, r = builder_case
    assert r.entities == ["Lab", "Builder"]
    np.testing.assert_array_equal(r.pd[:, 0], [1.0, 1.0])  # both default in 2026
    np.testing.assert_array_equal(r.p_fundamental, [1.0, 0.0])
    np.testing.assert_array_equal(r.p_contagious, [0.0, 1.0])
    np.testing.assert_array_equal(r.liquidity_share, [1.0, 0.0])  # Lab: liquidity; Builder: solvency
    assert r.expected_loss[0] == pytest.approx(LAB_LOSS, rel=REL)  # 2.957142857...
    assert r.expected_loss[1] == pytest.approx(BUILDER_LOSS, rel=REL)  # 8.321428571...
    assert r.lgd[0] == pytest.approx(LAB_LOSS / 5.2, rel=REL)
    assert r.lgd[1] == pytest.approx(BUILDER_LOSS / 18.0, rel=REL)
    assert r.loss_mean == pytest.approx(LAB_LOSS + BUILDER_LOSS, rel=REL)  # 11.278571428...
    assert r.loss_mean_se == pytest.approx(0.0, abs=1e-6)  # identical paths (rounding in sum of squares)
    np.testing.assert_array_equal(r.lost_backlog, [0.0, 20.0])
    assert r.p2 == 1.0 and r.cascade[2] == 1.0
    assert r.p_need[0] == 1.0 and r.mean_need[0] == pytest.approx(5.2, rel=REL)
    assert r.p_gap[0] == 1.0
    np.testing.assert_array_equal(r.p_need[1:], [0.0, 0.0])  # a defaulted lab needs nothing


def test_builder_case_state(builder_case):
    sc, _ = builder_case
    st, rec = _replay(sc)
    assert list(rec.default_step) == [0, 0]
    assert list(rec.default_kind) == [K.LIQUIDITY, K.SOLVENCY]
    assert list(rec.contagious) == [False, True]
    assert rec.exposure[0] == pytest.approx(5.2, rel=REL)
    assert rec.exposure[1] == pytest.approx(18.0, rel=REL)
    assert st.impairment[1] == pytest.approx(3.6, rel=REL)
    assert rec.gap[0] == pytest.approx(5.2, rel=REL)


def test_builder_survives_just_above_its_threshold():
    """Builder's book equity after 2026 is book0 + 0.357142857 + 2 - 3.6, so it defaults iff
    book0 < 1.242857142857...; at 1.25 it survives, and then (cash by hand):
      2027: no contract (ended), margin lost; ocf 3, interest 0.9, principal 2:
            cash 1.357142857 + 3 - 2.9 = 1.457142857, debt 16
      2028: re-let income 0.5 * 10 * ((1 - 0.2) - 0.5) = 1.5; interest 0.8, principal 2:
            cash 1.457142857 + 4.5 - 2.8 = 3.157142857, debt 14."""
    sc = _scenario("builder-survives", [LAB, {**BUILDER, "book_equity": 1.25}], contract=[BUILD])
    st, rec = _replay(sc)
    assert list(rec.default_step) == [0, -1]
    assert rec.lost_backlog[1] == pytest.approx(20.0, rel=REL)
    assert st.cash[1] == pytest.approx(BUILDER_CASH + 3.0 - 2.9 + 4.5 - 2.8, rel=REL)
    assert st.debt[1] == pytest.approx(14.0, rel=REL)
    assert st.impairment[1] == pytest.approx(3.6, rel=REL)
    sc = _scenario("builder-fails", [LAB, {**BUILDER, "book_equity": 1.24}], contract=[BUILD])
    _, rec = _replay(sc)
    assert list(rec.default_step) == [0, 0]


# --------------------------------------------------------------------------------------
# 2. A stake written off, a fundamental default inside the network, a bullet maturity.
# --------------------------------------------------------------------------------------
# Yearly steps. Lab: no cash, revenue 4, a bullet of 10 due in 2026 (rate 0), no network
# obligations. Holder: cash 5, debt 10 (rate 0, always rolled over, recovery 0.3), holds 20%
# of the lab, book equity 18.5. Partner: cash 0.5, debt 2 at 10% all due in 2026 (never
# rolled), owes the holder 1 in 2026 (cost ratio 0 for the holder).
#
# Step 0:
#   Lab: e = 4, el = 10 -> pays 4, liquidity default; loss 10 - 4 = 6 (no debt left);
#        exposure 10; fundamental (nobody owes it anything). Its equity this step is
#        25 * 4 * 1 = 100, the holder's stake 0.2 * 100 = 20 is written off.
#   Partner: el = 0.2 + 2 = 2.2, owes 1: p-bar 3.2 > e = 0.5 -> liquidity default, pays
#        0.5, a fraction 0.5 / 3.2 = 0.15625; outside creditors get 2.2 * 0.15625 = 0.34375,
#        lose 1.85625 (no debt left); exposure 2.2. Fundamental: nobody owes it anything.
#   Holder: receives 1 * 0.15625; its principal rolls over; cash 5.15625, debt 10.
#        After the lab's default its book equity is 18.5 + 0.15625 - 20 = -1.34375 -> solvency
#        default. Contagious: with everything paid (cash 6) and the stake written off by
#        others added back, 18.5 + 1 + (0 - 20) + 20 = 19.5 >= 0 (without adding it back:
#        -0.5, which would wrongly make it fundamental).
#        loss (1 - 0.3) * (10 - 5.15625) = 3.390625; exposure 10.
HOLDER = {"name": "Holder", "cash": 5.0, "debt": 10.0, "rate": 0.0, "refi_prob": ALWAYS, "recovery": 0.3,
          "book_equity": 18.5}
PARTNER = {"name": "Partner", "cash": 0.5, "debt": 2.0, "rate": 0.1, "maturities": {"2026": 2.0}}
STAKE_LAB = {"name": "Lab", "kind": "lab", "cash": 0.0, "debt": 10.0, "rate": 0.0,
             "maturities": {"2026": 10.0}, "solvency_default": False}
SUPPLY = {"name": "Supply", "payer": "Partner", "payee": "Holder", "schedule": {"2026": 1.0}, "cost_ratio": 0.0}


@pytest.fixture(scope="module")
def stake_case():
    sc = _scenario("stake", [STAKE_LAB, HOLDER, PARTNER], contract=[SUPPLY],
                   stake=[{"holder": "Holder", "issuer": "Lab", "share": 0.2}])
    return sc, run(sc, paths=64, seed=2, chunk_size=32, threads=1)


def test_stake_case(stake_case):
    sc, r = stake_case
    assert r.entities == ["Lab", "Holder", "Partner"]
    np.testing.assert_array_equal(r.pd[:, 0], [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(r.p_fundamental, [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(r.p_contagious, [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(r.liquidity_share, [1.0, 0.0, 1.0])
    np.testing.assert_allclose(r.expected_loss, [6.0, 0.7 * (10 - 5.15625), 2.2 - 0.34375], rtol=REL)
    np.testing.assert_allclose(r.lgd, [0.6, 0.7 * (10 - 5.15625) / 10, (2.2 - 0.34375) / 2.2], rtol=REL)
    assert r.loss_mean == pytest.approx(6.0 + 3.390625 + 1.85625, rel=REL)
    assert r.cascade[3] == 1.0
    st, rec = _replay(sc)
    assert list(rec.contagious) == [False, True, False]
    assert st.stake_lost[1] == pytest.approx(20.0, rel=REL)  # 0.2 * 25 * 4
    assert list(rec.exposure) == pytest.approx([10.0, 10.0, 2.2], rel=REL)


def test_stake_write_off_threshold():
    """With book equity 19.9 the holder survives the write-off of 20 (19.9 + 0.15625 - 20 > 0)."""
    sc = _scenario("stake-survives", [STAKE_LAB, {**HOLDER, "book_equity": 19.9}, PARTNER], contract=[SUPPLY],
                   stake=[{"holder": "Holder", "issuer": "Lab", "share": 0.2}])
    st, rec = _replay(sc)
    assert list(rec.default_step) == [0, -1, 0]
    assert st.cash[1] == pytest.approx(5.15625, rel=REL)
    assert st.debt[1] == pytest.approx(10.0, rel=REL)


# --------------------------------------------------------------------------------------
# 3. Costs of default (Rogers-Veraart) and a network loan, by hand.
# --------------------------------------------------------------------------------------
def test_default_costs_and_loan_write_off():
    """Yearly steps. Borrower: cash 1, ocf 2, alpha 0.5, beta 1, owes the lender a loan of
    10 at 10% due in 2026 and nothing outside. Lender: cash 3, book equity 5.

    Step 0: borrower e = 1 + 2 = 3, owes 10 * 0.1 + 10 = 11 -> defaults; pays
    alpha * e = 1.5 (Rogers-Veraart: half its outside assets are lost in default).
    Lender receives 1.5: cash 4.5. The loan (10 outstanding) is written off:
    lender's book equity 5 + (4.5 - 3) - 10 = -3.5 < 0 -> solvency default, contagious
    (had the borrower paid 11, its cash would be 14 and book equity 5 + 11 - 0 >= 0).
    No outside debt anywhere: losses 0, exposure 0."""
    sc = _scenario("loan", [{"name": "Lab", "kind": "lab", "cash": 100.0, "solvency_default": False},
                            {"name": "Borrower", "cash": 1.0, "ocf": 2.0, "alpha": 0.5, "solvency_default": False},
                            {"name": "Lender", "cash": 3.0, "book_equity": 5.0}],
                   loan=[{"name": "L", "lender": "Lender", "borrower": "Borrower", "amount": 10.0, "rate": 0.1,
                          "maturity": 2026.5}])
    st, rec = _replay(sc)
    assert list(rec.default_step) == [-1, 0, 0]
    assert list(rec.default_kind[1:]) == [K.LIQUIDITY, K.SOLVENCY]
    assert list(rec.contagious) == [False, False, True]
    assert st.stake_lost[2] == pytest.approx(10.0, rel=REL)
    # the lender's cash before its default: 3 + 1.5 (then seized)
    M = compile_scenario(sc)
    st2, ws, rec2, shocks, tu = new_path_buffers(M)
    K.reset_path(M, st2, rec2, tu)
    sh = np.zeros(shocks.shape[1])
    sh[2] = 0.5
    sh[5::2] = 0.5
    K.step(0, M, sh, st2, ws, rec2)
    assert ws.p[1] == pytest.approx(1.5, rel=REL)
    assert ws.receipts[2] == pytest.approx(1.5, rel=REL)
    assert list(rec2.loss) == [0.0, 0.0, 0.0]


# --------------------------------------------------------------------------------------
# 4. Conservation of cash, from outside.
# --------------------------------------------------------------------------------------
CONSERVE = {
    "name": "conserve",
    "time": {"start_year": 2026, "steps_per_year": 4, "horizon_years": 3},
    "revenue": {"initial": 30.0, "growth0": 0.5, "growth_inf": 0.1, "volatility": 0.4},
    "regime": {"enabled": True, "enter_prob": 0.4, "exit_prob": 0.5, "jump_mean": -0.3, "jump_sd": 0.2},
    "sentiment": {"volatility": 0.3},
    "lab": {"entity": "Lab", "opex_share_start": 0.4, "opex_share_end": 0.2, "opex_years": 2.0,
            "raise_share": 1.0, "raise_share_winter": 1.0, "valuation_multiple_winter": 25.0},
    "entity": [
        {"name": "Lab", "kind": "lab", "cash": 3.0, "debt": 6.0, "rate": 0.07, "amortisation_years": 3.0,
         "refi_prob": 0.5, "book_equity": 1e4},
        {"name": "Cloud", "cash": 50.0, "debt": 40.0, "rate": 0.05, "maturities": {"2027": 10.0},
         "amortisation_years": 4.0, "refi_prob": 0.6, "ocf": 30.0, "ocf_volatility": 0.3,
         "ocf_growth": 0.05, "ocf_growth_winter": -0.1, "market_equity": 500.0, "book_equity": 1e4},
        {"name": "Fund", "cash": 80.0, "ocf": 4.0, "market_equity": 100.0, "book_equity": 1e4},
    ],
    "contract": [{"name": "C", "payer": "Lab", "payee": "Cloud", "total": 60.0, "start": 2026.25, "years": 2.5,
                  "ramp_years": 0.5, "cost_ratio": 0.6}],
    "investment": [{"name": "I", "investor": "Fund", "investee": "Lab",
                    "tranche": [{"date": 2026.5, "amount": 5.0, "probability": 0.5}]}],
    "loan": [{"name": "V", "lender": "Fund", "borrower": "Cloud", "amount": 8.0, "rate": 0.06, "maturity": 2027.5}],
}


def test_total_cash_changes_by_outside_flows_only():
    """On paths where nobody defaults, sum_i cash_{t+1} - sum_i cash_t equals
        lab revenue R_{t+1} dt (1 - opex_t) + sum_i ocf_i X_i dt + raised
        - sum_c cost_c A_c,t - sum_i rate_i D_i dt - sum_i (D_i - D_i after)
    where raised = need - gap (recorded) and the debt paid down is what left the balance
    sheet; contracts, tranches and loans between entities cancel. Computed step by step
    from the scenario's own numbers and the path's recorded revenue."""
    d = copy.deepcopy(CONSERVE)
    sc = scenario_from_dict(d)
    M = compile_scenario(sc)
    st, ws, rec, shocks, tu = new_path_buffers(M)
    rng = np.random.default_rng(11)
    dt = 0.25
    ents = d["entity"]
    opex = [0.4 - 0.2 * min(t * dt / 2.0, 1.0) for t in range(M.n_steps)]
    raised_any = winter_any = defaulted = 0
    checked = 0
    for _ in range(60):
        shocks[:] = rng.standard_normal(shocks.shape)
        shocks[:, 2] = rng.random(shocks.shape[0])  # regime uniform
        shocks[:, 5::2] = rng.random((shocks.shape[0], 3))  # refinancing uniforms
        tu[:] = rng.random(tu.shape)
        K.reset_path(M, st, rec, tu)
        log_x = np.zeros(3)
        for t in range(M.n_steps):
            cash_before, debt_before = st.cash.copy(), st.debt.copy()
            K.step(t, M, shocks[t], st, ws, rec)
            if np.any(rec.default_step >= 0):  # the identity is for steps without defaults
                defaulted += 1
                break
            winter = rec.winter[t] > 0.5
            winter_any += winter
            # outside cash flows X_i: log-normal with the scenario's drift and volatility,
            # shock loading * z_S + sqrt(1 - loading^2) z_i, z_S = rho z_R + sqrt(1 - rho^2) z'_S
            z_s = 0.5 * shocks[t, 0] + math.sqrt(1 - 0.25) * shocks[t, 1]
            inflow = 0.0
            for i, e in enumerate(ents):
                s = e.get("ocf_volatility", 0.15)
                g = e.get("ocf_growth_winter", e.get("ocf_growth", 0.0)) if winter else e.get("ocf_growth", 0.0)
                z = 0.5 * z_s + math.sqrt(0.75) * shocks[t, 4 + 2 * i]
                log_x[i] += (g - s * s / 2) * dt + s * math.sqrt(dt) * z
                inflow += e.get("ocf", 0.0) * math.exp(log_x[i]) * dt
            inflow += rec.revenue[t] * dt * (1 - opex[t])
            raised = rec.need[t] - rec.gap[t]
            raised_any += raised > 0
            delivery = 0.6 * M.c_amount[0, t]  # the contract's schedule is checked in test_compile_oracles
            rates = np.array([e.get("rate", 0.05) for e in ents])
            interest = float((rates * debt_before * dt).sum())
            principal = float((debt_before - st.debt).sum())
            expect = inflow + raised - delivery - interest - principal
            assert st.cash.sum() - cash_before.sum() == pytest.approx(expect, rel=1e-9, abs=1e-9), t
            checked += 1
    assert defaulted <= 6 and checked >= 50 * M.n_steps  # (the lab can fail in a deep winter)
    assert raised_any > 0 and winter_any > 0  # both outside flows that are easy to get wrong occur
